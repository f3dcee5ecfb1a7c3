"""Named datasets: where their files live and how to load them as raw interactions.

`load_raw(name)` gives every interaction of a dataset in original ids, duplicates
kept, with ratings / timestamps where the dataset has them and `split_tags` where it
ships its own split. Files are looked for in `<data_dir>/<name>/` (the argument, else
$JAXCOND_DATA_DIR), then in `<cache_dir>/<name>/` ($JAXCOND_CACHE_DIR, default
~/.cache/jaxcond). ML-100k falls back to the copy inside the `neighbors` wheel.
Nothing is ever written into a data directory (it may be read-only): downloads, splits
and model fits go to the cache directory.
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib.metadata
import importlib.util
import os
import pathlib
import urllib.error
import urllib.parse
import urllib.request
import zipfile
from collections.abc import Callable

import numpy as np

from jaxcond.core import atomic
from jaxcond.data import readers
from jaxcond.data.interactions import TEST, TRAIN, VALID, DataError, Interactions

DATA_DIR_ENV = "JAXCOND_DATA_DIR"
CACHE_DIR_ENV = "JAXCOND_CACHE_DIR"
DEFAULT_CACHE_DIR = pathlib.Path("~/.cache/jaxcond")
SPLIT_CODES = {"train": TRAIN, "valid": VALID, "val": VALID, "test": TEST}

_NEIGHBORS_ML100K = "neighbors/data/movielens100k.csv"


@dataclasses.dataclass(frozen=True)
class DatasetSpec:
  """How to find and read one dataset."""

  files: tuple[str, ...]  # source files, relative to <data_dir>/<name>/
  load: Callable[[pathlib.Path], Interactions]  # reads them from that folder
  ratings: bool = False  # whether load_raw gives ratings
  timestamps: bool = False
  split: bool = False  # whether load_raw gives the dataset's own split as split_tags
  # relative path -> (url, sha256) of files `fetch` may download; only verified ones.
  downloads: dict = dataclasses.field(default_factory=dict)


# --- loaders (each takes the dataset's folder) ------------------------------


def _load_dianping(folder):
  table = readers.read_table(folder / "dianping_interactions.tsv.gz",
                             {"user": "user", "item": "item", "split": "split"},
                             delimiter="\t", header=True)
  return readers.build_interactions(table, split_tags_N=table.tags("split", SPLIT_CODES))


def _load_ml1m(folder):
  table = readers.read_table(folder / "ratings.dat.gz", (0, 1, 2, 3), delimiter="::",
                             header=False)
  index_path = folder / "distill_cf_split_index.npz"
  try:
    with np.load(index_path) as npz:
      split_N = np.asarray(npz["data"]).ravel()
  except (OSError, KeyError, ValueError) as e:
    raise DataError(f"cannot read the split index {index_path}: {e}") from e
  if split_N.shape[0] != len(table):
    raise DataError(f"{index_path} has {split_N.shape[0]} entries for {len(table)} lines "
                    f"of {table.source}")
  if not np.isin(split_N, (TRAIN, VALID, TEST)).all():
    raise DataError(f"{index_path}: split values must be 0, 1 or 2")
  return readers.build_interactions(table, split_tags_N=split_N)


def _load_item_lists(folder):
  tables = [readers.read_item_lists(folder / f"{part}.txt.gz") for part in ("train", "test")]
  return readers.build_interactions(tables, split_tags_N=_tags_by_table(tables, (TRAIN, TEST)))


def _load_yelp_diffnet(folder):
  path = folder / "diff_net_yelp.zip"
  tables = []
  try:
    with zipfile.ZipFile(path) as archive:
      for part in ("train", "val", "test"):
        member = f"diffnet_yelp/yelp.{part}.rating"
        tables.append(readers.read_table(f"{path}:{member}", (0, 1), delimiter="\t",
                                         header=False, data=archive.read(member)))
  except (zipfile.BadZipFile, KeyError, OSError) as e:
    raise DataError(f"cannot read {path}: {e}") from e
  return readers.build_interactions(
      tables, split_tags_N=_tags_by_table(tables, (TRAIN, VALID, TEST)))


def _load_douban(folder):
  table = readers.read_table(folder / "ratings.tsv.gz",
                             {"user": "user", "item": "item", "rating": "rating",
                              "split": "split"}, delimiter="\t", header=True)
  return readers.build_interactions(table, split_tags_N=table.tags("split", SPLIT_CODES))


def _load_magazine(folder):
  table = readers.read_table(folder / "ratings.tsv.gz",
                             {"user": "user", "item": "item", "rating": "rating",
                              "split": "distill_cf_split"}, delimiter="\t", header=True)
  split_N = table.ints("split")
  if not np.isin(split_N, (-1, TRAIN, VALID, TEST)).all():
    raise DataError(f"{table.source}: distill_cf_split values must be -1, 0, 1 or 2")
  keep_N = split_N >= 0  # -1: dropped by Distill-CF (user with < 3 ratings)
  return readers.build_interactions(table.subset(keep_N), split_tags_N=split_N[keep_N])


def _load_columns(filename, columns, delimiter, header=False):
  def load(folder):
    return readers.read_delimited(folder / filename, columns=columns, delimiter=delimiter,
                                  header=header)
  return load


def _tags_by_table(tables, tags):
  return np.concatenate([np.full(len(t), tag, dtype=np.int8) for t, tag in zip(tables, tags)])


DATASETS: dict[str, DatasetSpec] = {
    "dianping": DatasetSpec(("dianping_interactions.tsv.gz",), _load_dianping, split=True),
    "ml-100k": DatasetSpec(("u.data.gz",), _load_columns("u.data.gz", (0, 1, 2, 3), "\t"),
                           ratings=True, timestamps=True),
    "ml-1m": DatasetSpec(("ratings.dat.gz", "distill_cf_split_index.npz"), _load_ml1m,
                         ratings=True, timestamps=True, split=True),
    "ciao": DatasetSpec(("ratings.tsv.gz",),
                        _load_columns("ratings.tsv.gz", ("user", "item", "rating"), "\t",
                                      header=True), ratings=True),
    "gowalla": DatasetSpec(("train.txt.gz", "test.txt.gz"), _load_item_lists, split=True),
    "yelp_hin": DatasetSpec(("user_business.dat.gz",),
                            _load_columns("user_business.dat.gz", (0, 1, 2), "\t"),
                            ratings=True),
    "yelp_diffnet": DatasetSpec(("diff_net_yelp.zip",), _load_yelp_diffnet, split=True),
    "amazon-book_kgat": DatasetSpec(("train.txt.gz", "test.txt.gz"), _load_item_lists,
                                    split=True),
    "douban_monti": DatasetSpec(("ratings.tsv.gz",), _load_douban, ratings=True, split=True),
    "amazon-magazine": DatasetSpec(("ratings.tsv.gz",), _load_magazine, ratings=True,
                                   split=True),
    "filmtrust": DatasetSpec(("ratings.txt.gz",),
                             _load_columns("ratings.txt.gz", (0, 1, 2), " "), ratings=True),
}


# --- locating files --------------------------------------------------------


def resolve_data_dir(data_dir=None) -> pathlib.Path | None:
  """`data_dir` if given, else $JAXCOND_DATA_DIR, else None."""
  if data_dir is None:
    data_dir = os.environ.get(DATA_DIR_ENV) or None
  return None if data_dir is None else pathlib.Path(data_dir).expanduser()


def resolve_cache_dir(cache_dir=None) -> pathlib.Path:
  """`cache_dir` if given, else $JAXCOND_CACHE_DIR, else ~/.cache/jaxcond."""
  if cache_dir is None:
    cache_dir = os.environ.get(CACHE_DIR_ENV) or DEFAULT_CACHE_DIR
  return pathlib.Path(cache_dir).expanduser()


def get_spec(name: str) -> DatasetSpec:
  """The spec of dataset `name`; an unknown name is an error listing the known ones."""
  if name not in DATASETS:
    raise DataError(f"unknown dataset {name!r}; known datasets: {', '.join(sorted(DATASETS))}")
  return DATASETS[name]


def locate(name: str, data_dir=None) -> tuple[pathlib.Path, tuple[str, ...]]:
  """(folder, relative paths) of the source files of dataset `name`.

  Looks in <data_dir>/<name>, then <cache_dir>/<name> (downloading registered files
  there if needed); ML-100k falls back to the `neighbors` wheel's copy.
  """
  spec = get_spec(name)
  data_dir = resolve_data_dir(data_dir)
  cache = resolve_cache_dir() / name
  folders = ([data_dir / name] if data_dir is not None else []) + [cache]
  for folder in folders:
    if all((folder / f).is_file() for f in spec.files):
      return folder, spec.files
  if spec.downloads and set(spec.downloads) >= set(spec.files):
    for rel, (url, sha256) in spec.downloads.items():
      fetch(url, sha256, (cache / rel).parent, filename=pathlib.Path(rel).name)
    return cache, spec.files
  if name == "ml-100k":
    csv = neighbors_ml100k_path()
    if csv is not None:
      return csv.parent, (csv.name,)
  looked = [str(folder / f) for folder in folders for f in spec.files]
  unset = "" if data_dir is not None else f" (no data_dir given and ${DATA_DIR_ENV} is unset)"
  how = (f"put its files in <data_dir>/{name}/ and pass --data_dir <data_dir> or set "
         f"${DATA_DIR_ENV}=<data_dir>")
  if name == "ml-100k":
    how += ", or install the `neighbors` wheel (pip install neighbors==0.2.1)"
  raise DataError(f"dataset {name!r} not found{unset}. Looked for: {', '.join(looked)}. "
                  f"To provide it, {how}.")


def neighbors_ml100k_path() -> pathlib.Path | None:
  """The ML-100k CSV inside the installed `neighbors` wheel, found without importing it."""
  try:
    path = pathlib.Path(importlib.metadata.distribution("neighbors").locate_file(
        _NEIGHBORS_ML100K))
    if path.is_file():
      return path
  except importlib.metadata.PackageNotFoundError:
    pass
  spec = importlib.util.find_spec("neighbors")  # top-level: finds it, runs nothing
  for location in (spec.submodule_search_locations or []) if spec else []:
    path = pathlib.Path(location) / "data" / pathlib.Path(_NEIGHBORS_ML100K).name
    if path.is_file():
      return path
  return None


def _load_neighbors_ml100k(path) -> Interactions:
  return readers.read_delimited(path, columns=("User", "Item", "Rating", "Timestamp"),
                                delimiter=",", header=True)


# --- public entry points ------------------------------------------------------


def load_raw(name: str, data_dir=None) -> Interactions:
  """All interactions of dataset `name` in original ids (duplicates kept)."""
  folder, files = locate(name, data_dir)
  if name == "ml-100k" and files != DATASETS[name].files:
    return _load_neighbors_ml100k(folder / files[0])
  return DATASETS[name].load(folder)


def file_checksums(name: str, data_dir=None) -> dict[str, str]:
  """{relative path: sha256} of the source files `load_raw(name, data_dir)` reads."""
  folder, files = locate(name, data_dir)
  return {f: sha256_file(folder / f) for f in files}


def sha256_file(path) -> str:
  with open(path, "rb") as f:
    return hashlib.file_digest(f, "sha256").hexdigest()


def fetch(url: str, sha256: str, cache_dir, *, filename: str | None = None,
          timeout: float = 60.0) -> pathlib.Path:
  """Downloads `url` into `cache_dir` unless there already, checking its sha256.

  The download goes to a temporary file in `cache_dir` and is moved in atomically only
  when its sha256 matches; a mismatch is a DataError and leaves nothing behind.
  """
  cache_dir = pathlib.Path(cache_dir).expanduser()
  filename = filename or pathlib.PurePosixPath(urllib.parse.urlparse(url).path).name
  if not filename:
    raise DataError(f"cannot tell a file name from {url!r}")
  dest = cache_dir / filename
  if dest.is_file() and sha256_file(dest) == sha256.lower():
    return dest
  try:
    with atomic.atomic_write(dest) as out, urllib.request.urlopen(url, timeout=timeout) as resp:
      digest = hashlib.sha256()
      while chunk := resp.read(1 << 20):
        digest.update(chunk)
        out.write(chunk)
      if digest.hexdigest() != sha256.lower():
        raise DataError(f"checksum mismatch for {url}: expected sha256 {sha256.lower()}, "
                        f"got {digest.hexdigest()}; nothing was saved")
  except (urllib.error.URLError, OSError) as e:
    raise DataError(f"cannot download {url}: {e}") from e
  return dest

