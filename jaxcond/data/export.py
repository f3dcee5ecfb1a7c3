"""Export of interaction sets in original ids: delimited text and RecBole `.inter`.

Every file is written to a temporary file beside it and renamed into place, so a killed
run never leaves a truncated file; what is written reads back (jaxcond.data.readers) as the
same pairs, ids, ratings, timestamps and split tags.

Pseudo flags (`pseudo_N`: which pairs the proxy model added, not in the user's file) are
written as a last column `pseudo` of 0 / 1: in text files after the other columns, in
RecBole files as the field `pseudo:float`, which jaxcond.data.readers.read_inter skips.
"""

from __future__ import annotations

import dataclasses
import gzip
import pathlib
from collections.abc import Sequence

import numpy as np

from jaxcond.core import atomic
from jaxcond.data.interactions import DataError, Interactions

# Names written for TRAIN, VALID and TEST.
SPLIT_NAMES = ("train", "valid", "test")


def write_delimited(inter: Interactions, path, *, delimiter: str = "\t", header: bool = True,
                    split_tag_names: Sequence[str] | None = None, pseudo_N=None) -> None:
  """Writes pairs in original ids, with rating, timestamp and split columns if present,
  and a last column `pseudo` (0 / 1) when `pseudo_N` ([nnz] bool, CSR order) is given.

  The split column holds `split_tag_names[tag]` (default SPLIT_NAMES). A `.gz` path is
  gzip'ed. The file is written to a temporary file and moved in atomically.
  """
  names, cols = _export_columns(inter, delimiter, split_tag_names, pseudo_N)
  _write_rows(path, names if header else None, cols, delimiter)


def write_inter(inter: Interactions, path, *, pseudo_N=None) -> None:
  """Writes a RecBole atomic `.inter` file in original ids (atomically), with a field
  `pseudo:float` (0 / 1) when `pseudo_N` ([nnz] bool, CSR order) is given."""
  names, cols = _export_columns(inter, "\t", None, pseudo_N)
  types = {"user": "user_id:token", "item": "item_id:token", "rating": "rating:float",
           "timestamp": "timestamp:float", "pseudo": "pseudo:float"}
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


def read_npz(path, like: Interactions) -> Interactions:
  """Pairs written by `write_npz` (or with dense ids alone: "user_index", "item_index"),
  in the id space of `like`, the training split they were drawn from. Original ids, where
  the file holds them, must be `like`'s."""
  path = pathlib.Path(path)
  if not path.is_file():
    raise DataError(f"no condensed set at {path}")
  try:
    with np.load(path, allow_pickle=False) as z:
      users, items = z["user_index"], z["item_index"]
      ids = (z["user"], z["item"]) if "user" in z and "item" in z else None
  except (OSError, ValueError, KeyError) as e:
    raise DataError(f"{path} is not a pairs npz ({e})") from e
  if users.shape != items.shape or (users.size and (
      min(users.min(), items.min()) < 0 or users.max() >= like.n_users
      or items.max() >= like.n_items)):
    raise DataError(f"{path} holds pairs outside the {like.n_users} users x {like.n_items} "
                    "items of the data it is read against")
  if ids is not None and not (
      np.array_equal(np.asarray(like.user_ids).astype(str)[users], ids[0])
      and np.array_equal(np.asarray(like.item_ids).astype(str)[items], ids[1])):
    raise DataError(f"{path} holds other user or item ids than the data it is read against")
  return Interactions.from_pairs(users, items, n_users=like.n_users, n_items=like.n_items,
                                 user_ids=like.user_ids, item_ids=like.item_ids)


def export_condensed(out_dir, name: str, condensed: Interactions, valid: Interactions,
                     test: Interactions, *, pseudo_N=None,
                     false_negatives: Interactions | None = None) -> dict:
  """The condensed training set in original ids as CSV, TSV and npz, and as RecBole
  benchmark files (`recbole/<name>/<name>.{train,valid,test}.inter`, the original
  validation and test kept apart). Returns {format: path}.

  With `pseudo_N` ([nnz] bool in the CSR order of `condensed`: the pairs the proxy model
  added), every file flags them: a `pseudo` column (0 / 1) in the CSV and TSV, `pseudo` in
  the npz, and a `pseudo:float` field in the RecBole files (0 throughout validation and
  test, so that the three files have the same fields).

  With `false_negatives` (the pairs an evaluator of the set draws no negative from), those
  outside the set are written to `false_negatives.csv` (user, item in original ids): a
  model trained on the set reproduces the report's figures only if its negatives avoid
  them too."""
  pseudo_N = None if pseudo_N is None else _flags(pseudo_N, condensed.nnz)
  out = pathlib.Path(out_dir)
  recbole = out / "recbole" / name
  recbole.mkdir(parents=True, exist_ok=True)
  paths = {"csv": out / "condensed.csv", "tsv": out / "condensed.tsv",
           "npz": out / "condensed.npz"}
  write_delimited(condensed, paths["csv"], delimiter=",", pseudo_N=pseudo_N)
  write_delimited(condensed, paths["tsv"], delimiter="\t", pseudo_N=pseudo_N)
  extra = {} if pseudo_N is None else {"pseudo": pseudo_N}
  write_npz(condensed, paths["npz"], **extra)
  for part, inter in (("train", condensed), ("valid", valid), ("test", test)):
    bare = dataclasses.replace(inter, ratings=None, timestamps=None, split_tags=None)
    flags = (None if pseudo_N is None else pseudo_N if part == "train"
             else np.zeros(inter.nnz, bool))
    paths[f"recbole_{part}"] = recbole / f"{name}.{part}.inter"
    write_inter(bare, paths[f"recbole_{part}"], pseudo_N=flags)
  if false_negatives is not None:
    paths["false_negatives"] = out / "false_negatives.csv"
    write_delimited(_outside(false_negatives, condensed), paths["false_negatives"],
                    delimiter=",")
  return {k: str(v) for k, v in paths.items()}


def _outside(pairs: Interactions, of: Interactions) -> Interactions:
  """The pairs of `pairs` not in `of` (same id space), without per-pair fields."""
  if (pairs.n_users, pairs.n_items) != (of.n_users, of.n_items):
    raise ValueError(f"false negatives over ({pairs.n_users}, {pairs.n_items}) users x items, "
                     f"the set over ({of.n_users}, {of.n_items})")
  bare = dataclasses.replace(pairs, ratings=None, timestamps=None, split_tags=None)
  return bare.subset(~np.isin(pairs.pair_keys(), of.pair_keys()))


def _flags(pseudo_N, nnz: int) -> np.ndarray:
  """[nnz] bool pseudo flags, checked."""
  flags = np.asarray(pseudo_N)
  if flags.shape != (nnz,):
    raise ValueError(f"pseudo flags have shape {flags.shape}, expected ({nnz},)")
  if flags.dtype != bool and not np.isin(flags, (0, 1)).all():
    raise ValueError("pseudo flags must be booleans or 0 / 1")
  return flags.astype(bool)


def _export_columns(inter, delimiter, split_tag_names, pseudo_N=None):
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
  if pseudo_N is not None:
    names.append("pseudo")
    cols.append(np.array(["0", "1"])[_flags(pseudo_N, inter.nnz).astype(np.int64)])
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
