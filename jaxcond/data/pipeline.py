"""From a dataset name or file to a cached train / valid / test split with its protocol."""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import pathlib
from typing import Callable

from jaxcond.data import cache, datasets, interactions, preprocess, readers
from jaxcond.data import split as split_lib
from jaxcond.data.interactions import DataError, Interactions


@dataclasses.dataclass(frozen=True)
class DataConfig:
  """Everything that decides the split a model sees (the evaluation protocol)."""

  dataset: str = "ml-100k"  # a known name, or a path to a delimited or .inter file
  data_dir: str | None = None
  columns: tuple = ("user", "item")  # for files: user, item[, rating[, timestamp]]
  delimiter: str | None = None
  header: bool | None = None
  min_rating: float | None = None
  kcore: int = 0
  split: str = "rs"  # "rs": per-user random 8:1:1 (RecBole); "given": the dataset's own
  ratios: tuple = (0.8, 0.1, 0.1)
  seed: int = 2020


def _is_file(dataset: str) -> bool:
  return dataset not in datasets.DATASETS and (
      pathlib.Path(dataset).suffix or "/" in dataset or pathlib.Path(dataset).exists())


def source_checksums(cfg: DataConfig) -> dict[str, str]:
  """{source file: sha256}, without parsing anything."""
  if _is_file(cfg.dataset):
    path = pathlib.Path(cfg.dataset)
    if not path.is_file():
      what = "is a directory, not a file" if path.is_dir() else "does not exist"
      raise DataError(f"dataset file {path} {what} (and {cfg.dataset!r} is not one of "
                      f"the known datasets: {', '.join(sorted(datasets.DATASETS))})")
    return {str(path): datasets.sha256_file(path)}
  return datasets.file_checksums(cfg.dataset, cfg.data_dir)


def read_source(cfg: DataConfig) -> Interactions:
  """All pairs of the source, in original ids."""
  if _is_file(cfg.dataset):
    path = pathlib.Path(cfg.dataset)
    if path.suffix == ".inter" or path.name.endswith(".inter.gz"):
      return readers.read_inter(path)
    return readers.read_delimited(path, columns=tuple(cfg.columns), delimiter=cfg.delimiter,
                                  header=cfg.header)
  return datasets.load_raw(cfg.dataset, cfg.data_dir)


def prepare(cfg: DataConfig, *, cache_dir: pathlib.Path | None = None, use_cache: bool = True,
            log: Callable[[str], None] = lambda s: None) -> tuple[split_lib.DatasetSplit, dict]:
  """Loads, filters and splits; reuses a cached split made with the same settings, sources
  and code (a cache hit reads no source file beyond hashing it).

  Repeated pairs are dropped (the first kept, the count logged). Fewer than 2 items, or a
  split without validation or test pairs (e.g. every user has one pair: it goes to train),
  is a DataError. A cache that cannot be written is logged and skipped, not an error.
  """
  if cfg.split not in ("rs", "given"):
    raise DataError(f"split must be 'rs' or 'given', got {cfg.split!r}")
  if cfg.kcore < 0:
    raise DataError(f"kcore must be >= 0, got {cfg.kcore}")
  settings = {k: v for k, v in dataclasses.asdict(cfg).items() if k != "data_dir"}
  settings["sources"] = source_checksums(cfg)
  if (cfg.min_rating is not None and _is_file(cfg.dataset) and len(cfg.columns) < 3
      and not cfg.dataset.endswith((".inter", ".inter.gz"))):
    named = ",".join(map(str, cfg.columns))
    raise DataError(f"{cfg.dataset}: no rating column selected (--columns={named} names the "
                    f"user and item columns only; add the rating column as the third, e.g. "
                    f"--columns={named},rating), so --min_rating={cfg.min_rating} cannot apply")
  key = cache.settings_key({**settings, "code": _code_version()})
  path = datasets.resolve_cache_dir(cache_dir) / "splits" / f"{_slug(cfg.dataset)}-{key}.npz"
  if use_cache and path.exists():
    try:
      data, meta = cache.load_split(path)
      log(f"loaded cached split {path}")
      return data, meta["protocol"]
    except DataError as e:
      log(f"{e}; rebuilding it")
  inter = preprocess.preprocess(read_source(cfg), min_rating=cfg.min_rating, kcore_k=cfg.kcore,
                                source=cfg.dataset, log=log)
  if inter.n_items < 2:
    raise DataError(f"{cfg.dataset} has {inter.n_items} item after filtering; ranking needs "
                    f"at least 2 items")
  if cfg.split == "rs":
    data = split_lib.random_split(inter, seed=cfg.seed, ratios=tuple(cfg.ratios))
  else:
    data = split_lib.given_split(inter, seed=cfg.seed, valid_ratio=cfg.ratios[1])
  _check_split(data, cfg)
  protocol = {**settings, "counts": data.summary(), "data_checksum": cache.split_checksum(data)}
  protocol = json.loads(json.dumps(protocol))  # the same types as when read back from the cache
  if use_cache:
    try:
      cache.save_split(path, data, {"protocol": protocol})
      log(f"cached split at {path}")
    except OSError as e:
      log(f"could not cache the split at {path} ({e}); continuing without cache")
  return data, protocol


def _check_split(data: split_lib.DatasetSplit, cfg: DataConfig) -> None:
  """Raises when validation or test is empty: nothing to stop early on or to measure."""
  empty = [part for part in ("valid", "test") if getattr(data, part).nnz == 0]
  if not empty:
    return
  degrees = data.train.user_degrees() + data.valid.user_degrees() + data.test.user_degrees()
  hint = ""
  if cfg.split == "rs":
    hint = (f" The random split puts a user's only pair in train and a user's two pairs in "
            f"train and test; {int((degrees < 3).sum()):,} of {degrees.size:,} users have "
            f"fewer than 3 pairs.")
  raise DataError(f"the split of {cfg.dataset} leaves no {' and no '.join(empty)} pairs "
                  f"({data.summary()}).{hint}")


@functools.cache
def _code_version() -> str:
  """sha256 of the modules that decide a split, so that changed code never reuses one."""
  h = hashlib.sha256()
  for module in (interactions, readers, datasets, preprocess, split_lib):
    h.update(pathlib.Path(module.__file__).read_bytes())
  return h.hexdigest()[:16]


def _slug(dataset: str) -> str:
  name = pathlib.Path(dataset).name if _is_file(dataset) else dataset
  return "".join(c if c.isalnum() or c in "-_." else "_" for c in name)[:60]
