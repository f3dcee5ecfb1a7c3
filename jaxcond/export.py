"""Export of interaction sets in original ids: delimited text and RecBole `.inter`.

Every file is written to a temporary file beside it and renamed into place, so a killed
run never leaves a truncated file; what is written reads back (jaxcond.readers) as the
same pairs, ids, ratings, timestamps and split tags.
"""

from __future__ import annotations

import dataclasses
import gzip
import pathlib
from collections.abc import Sequence

import numpy as np

from jaxcond import atomic
from jaxcond.interactions import DataError, Interactions

# Names written for TRAIN, VALID and TEST.
SPLIT_NAMES = ("train", "valid", "test")


def write_delimited(inter: Interactions, path, *, delimiter: str = "\t", header: bool = True,
                    split_tag_names: Sequence[str] | None = None) -> None:
  """Writes pairs in original ids, with rating, timestamp and split columns if present.

  The split column holds `split_tag_names[tag]` (default SPLIT_NAMES). A `.gz` path is
  gzip'ed. The file is written to a temporary file and moved in atomically.
  """
  names, cols = _export_columns(inter, delimiter, split_tag_names)
  _write_rows(path, names if header else None, cols, delimiter)


def write_inter(inter: Interactions, path) -> None:
  """Writes a RecBole atomic `.inter` file in original ids (atomically)."""
  names, cols = _export_columns(inter, "\t", None)
  types = {"user": "user_id:token", "item": "item_id:token", "rating": "rating:float",
           "timestamp": "timestamp:float"}
  keep = [j for j, name in enumerate(names) if name in types]
  _write_rows(path, [types[names[j]] for j in keep], [cols[j] for j in keep], "\t")


def write_npz(inter: Interactions, path, **extra_N) -> None:
  """Pairs as npz: original ids (as text) and dense ids, plus extra [nnz] columns."""
  users_N = inter.users()
  arrays = {"user": np.asarray(inter.user_ids).astype(str)[users_N],
            "item": np.asarray(inter.item_ids).astype(str)[inter.indices],
            "user_index": users_N, "item_index": inter.indices}
  for name, col in extra_N.items():
    if np.shape(col) != (inter.nnz,):
      raise ValueError(f"column {name!r} has shape {np.shape(col)}, expected ({inter.nnz},)")
    arrays[name] = np.asarray(col)
  with atomic.atomic_write(path) as f:
    np.savez(f, **arrays)


def export_condensed(out_dir, name: str, condensed: Interactions, valid: Interactions,
                     test: Interactions, *, pseudo_N=None) -> dict:
  """The condensed training set in original ids as CSV, TSV and npz, and as RecBole
  benchmark files (`recbole/<name>/<name>.{train,valid,test}.inter`, the original
  validation and test kept apart). Returns {format: path}."""
  out = pathlib.Path(out_dir)
  recbole = out / "recbole" / name
  recbole.mkdir(parents=True, exist_ok=True)
  paths = {"csv": out / "condensed.csv", "tsv": out / "condensed.tsv",
           "npz": out / "condensed.npz"}
  write_delimited(condensed, paths["csv"], delimiter=",")
  write_delimited(condensed, paths["tsv"], delimiter="\t")
  extra = {} if pseudo_N is None else {"pseudo": np.asarray(pseudo_N, bool)}
  write_npz(condensed, paths["npz"], **extra)
  for part, inter in (("train", condensed), ("valid", valid), ("test", test)):
    bare = dataclasses.replace(inter, ratings=None, timestamps=None, split_tags=None)
    paths[f"recbole_{part}"] = recbole / f"{name}.{part}.inter"
    write_inter(bare, paths[f"recbole_{part}"])
  return {k: str(v) for k, v in paths.items()}


def _export_columns(inter, delimiter, split_tag_names):
  users_N = inter.users()
  names = ["user", "item"]
  cols = [_id_strings(inter.user_ids, delimiter, "user")[users_N],
          _id_strings(inter.item_ids, delimiter, "item")[inter.indices]]
  if inter.ratings is not None:
    values, inverse = np.unique(inter.ratings, return_inverse=True)
    text = (values.astype(np.int64).astype(str) if np.all(values == np.rint(values))
            else values.astype(str))
    names.append("rating")
    cols.append(text[inverse.ravel()])
  if inter.timestamps is not None:
    names.append("timestamp")
    cols.append(np.array(list(map(str, inter.timestamps.tolist())), dtype=str))
  if inter.split_tags is not None:
    tag_names = np.array(SPLIT_NAMES if split_tag_names is None else split_tag_names)
    names.append("split")
    cols.append(tag_names[inter.split_tags.astype(np.int64)])
  return names, cols


def _id_strings(ids, delimiter, what) -> np.ndarray:
  """Text of unique ids, checked to read back as the same ids."""
  text = np.asarray(ids).astype(str)
  forbidden = ["\n", "\r"] + ([" ", "\t"] if delimiter == " " else [delimiter])
  for bad in forbidden:
    if np.any(np.strings.find(text, bad) >= 0):
      raise DataError(f"cannot write a {what} id containing {bad!r} "
                      f"with delimiter {delimiter!r}")
  if np.any(text == "") or np.any(np.strings.strip(text) != text):
    raise DataError(f"cannot write a {what} id that is empty or has surrounding whitespace")
  return text


def _write_rows(path, names, cols, delimiter) -> None:
  """Writes the lines (gzip'ed for a `.gz` path) atomically."""
  lines = [delimiter.join(names)] if names else []
  lines.extend(map(delimiter.join, zip(*[c.tolist() for c in cols])))
  payload = ("\n".join(lines) + "\n").encode("utf-8")
  if pathlib.Path(path).name.endswith(".gz"):
    payload = gzip.compress(payload, mtime=0)
  with atomic.atomic_write(path) as f:
    f.write(payload)
