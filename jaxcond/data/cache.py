"""Processed datasets cached as npz under a key of their settings, with a checksum."""

from __future__ import annotations

import hashlib
import json
import pathlib
import zipfile

import numpy as np

from jaxcond.core import atomic
from jaxcond.data.interactions import PAIR_FIELDS, DataError, Interactions
from jaxcond.data.split import DatasetSplit

FORMAT_VERSION = 1
_PARTS = ("train", "valid", "test")


def settings_key(settings: dict) -> str:
  blob = json.dumps({"format": FORMAT_VERSION, **settings}, sort_keys=True, default=str)
  return hashlib.sha256(blob.encode()).hexdigest()[:20]


def split_checksum(split: DatasetSplit) -> str:
  h = hashlib.sha256()
  for part in _PARTS:
    h.update(getattr(split, part).checksum().encode())
  return h.hexdigest()


def save_split(path: pathlib.Path, split: DatasetSplit, meta: dict) -> None:
  """Writes atomically: a temp file in the same folder, then os.replace."""
  arrays = {"meta": np.array(json.dumps({**meta, "checksum": split_checksum(split)}))}
  for part in _PARTS:
    inter = getattr(split, part)
    arrays[f"{part}_indptr"] = inter.indptr
    arrays[f"{part}_indices"] = inter.indices
    for name, col in inter.pair_fields().items():
      arrays[f"{part}_{name}"] = col
  arrays["user_ids"] = split.train.user_ids
  arrays["item_ids"] = split.train.item_ids
  with atomic.atomic_write(path) as f:
    np.savez(f, **arrays)


def load_split(path: pathlib.Path) -> tuple[DatasetSplit, dict]:
  """Reads a cached split and checks it against its stored checksum."""
  try:
    with np.load(path, allow_pickle=False) as z:
      meta = json.loads(str(z["meta"]))
      user_ids, item_ids = z["user_ids"], z["item_ids"]
      parts = {}
      for part in _PARTS:
        fields = {n: z[f"{part}_{n}"] for n in PAIR_FIELDS if f"{part}_{n}" in z}
        parts[part] = Interactions(n_users=user_ids.shape[0], n_items=item_ids.shape[0],
                                   indptr=z[f"{part}_indptr"], indices=z[f"{part}_indices"],
                                   user_ids=user_ids, item_ids=item_ids, **fields)
  except (OSError, KeyError, ValueError, zipfile.BadZipFile) as e:
    raise DataError(f"cached dataset {path} is unreadable ({e}); delete it to rebuild") from e
  split = DatasetSplit(**parts)
  if split_checksum(split) != meta.get("checksum"):
    raise DataError(f"cached dataset {path} does not match its checksum; delete it to rebuild")
  return split, meta
