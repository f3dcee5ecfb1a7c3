"""Named arrays and JSON metadata in one npz, written atomically, read back checked."""

from __future__ import annotations

import hashlib
import json
import pathlib
import zipfile

import numpy as np

from jaxcond.core import atomic
from jaxcond.core.errors import DataError


def _arrays_checksum(arrays: dict) -> str:
  h = hashlib.sha256()
  for name in sorted(arrays):
    h.update(name.encode())
    h.update(np.ascontiguousarray(arrays[name]).tobytes())
  return h.hexdigest()


def save_arrays(path: pathlib.Path, arrays: dict, meta: dict) -> None:
  """Named arrays (e.g. a model's params) and JSON metadata, atomically, with a checksum."""
  arrays = {k: np.asarray(v) for k, v in arrays.items()}
  blob = {"meta": np.array(json.dumps({**meta, "checksum": _arrays_checksum(arrays)}))}
  path.parent.mkdir(parents=True, exist_ok=True)
  with atomic.atomic_write(path) as f:
    np.savez(f, **blob, **{f"a_{k}": v for k, v in arrays.items()})


def load_arrays(path: pathlib.Path) -> tuple[dict, dict]:
  """Reads what save_arrays wrote; a DataError if unreadable or not matching its checksum."""
  try:
    with np.load(path, allow_pickle=False) as z:
      meta = json.loads(str(z["meta"]))
      arrays = {k[2:]: z[k] for k in z.files if k.startswith("a_")}
  except (OSError, KeyError, ValueError, zipfile.BadZipFile) as e:
    raise DataError(f"cached file {path} is unreadable ({e}); delete it to rebuild") from e
  if _arrays_checksum(arrays) != meta.get("checksum"):
    raise DataError(f"cached file {path} does not match its checksum; delete it to rebuild")
  return arrays, meta
