"""A few-line Python API for notebooks: load a dataset, condense it, judge, evaluate, export.

  import jaxcond as jc
  ds = jc.load("ml-100k", min_rating=3)
  res = jc.condense(ds, ratio=0.25, out_dir="runs/ml-100k-condensed")
  print(res.table())

(`import jaxcond.api as jc` is the same.) Options carry the names of `jaxcond condense`'s
flags (inner training: `inner_<field>`, and `reward`) and default to the same dataclasses
the CLI's flags default to.
"""

from __future__ import annotations

import dataclasses
import difflib
import pathlib
from typing import Callable

import numpy as np

from jaxcond import condensation, models
from jaxcond.condense import condenser, inner
from jaxcond.core import records
from jaxcond.data import export as export_lib
from jaxcond.data import readers
from jaxcond.data.interactions import DataError, Interactions
from jaxcond.data.pipeline import DataConfig, prepare
from jaxcond.data.split import DatasetSplit
from jaxcond.judging import fits, sets
from jaxcond.models import train as train_lib
from jaxcond.report import summary


def _fields(cls, skip=()) -> list[str]:
  return [f.name for f in dataclasses.fields(cls) if f.name not in skip]


_DATA = {**{n: n for n in _fields(DataConfig, ("dataset",))}, "split_seed": "seed"}
_INNER = {**{f"inner_{n}": n for n in _fields(inner.InnerConfig)}, "reward": "reward"}
_CONDENSE = _fields(condenser.CondenseConfig, ("ratio", "inner", "seed"))
_JOB = _fields(condensation.JobConfig, ("condense",))
_MODEL = _fields(models.ModelConfig)
_TRAIN = _fields(train_lib.TrainConfig)
_OPTIONS = ["ratio", *_CONDENSE, *_INNER, *_JOB, *_MODEL, *_TRAIN]
_RUN = ["resume", "checkpoint_every"]  # condensation.run's own; unset: its (the CLI's) defaults


def _check(options: dict, known, what: str) -> None:
  """TypeError naming unknown options (and close matches), listing the valid ones."""
  for name in options:
    if name not in known:
      close = difflib.get_close_matches(name, known, n=1)
      hint = f" (did you mean {close[0]!r}?)" if close else ""
      raise TypeError(f"unknown {what} option {name!r}{hint}; valid: {', '.join(sorted(known))}")


def _pick(options: dict, names) -> dict:
  """The options among `names` (a list, or {option: field}), lists made tuples."""
  rename = names if isinstance(names, dict) else {n: n for n in names}
  return {rename[k]: tuple(v) if isinstance(v, list) else v
          for k, v in options.items() if k in rename}


@dataclasses.dataclass(frozen=True, eq=False)
class Dataset:
  """A prepared train / valid / test split (dense ids) and its protocol (settings, checksum)."""

  name: str
  split: DatasetSplit
  protocol: dict
  cache_dir: pathlib.Path | None = None

  @property
  def train(self) -> Interactions:
    return self.split.train

  def summary(self) -> str:
    s = self.split.summary()
    return (f"{self.name}: {s['users']:,} users, {s['items']:,} items; {s['train']:,} train / "
            f"{s['valid']:,} valid / {s['test']:,} test pairs; checksum "
            f"{self.protocol['data_checksum'][:16]}")

  def __repr__(self) -> str:
    return f"Dataset({self.summary()})"


def load(dataset: str, *, cache_dir=None, log: Callable[[str], None] | None = None,
         **data_options) -> Dataset:
  """Loads, filters and splits `dataset` (a known name or a file) as the CLI does, cached.

  data_options: the DataConfig fields (data_dir, columns, delimiter, header, min_rating,
  kcore, split, seed (or split_seed, the CLI's name), ratios).
  """
  _check(data_options, _DATA, "data")
  cfg = DataConfig(dataset=str(dataset), **_pick(data_options, _DATA))
  cache = None if cache_dir is None else pathlib.Path(cache_dir)
  split, protocol = prepare(cfg, cache_dir=cache, log=log or (lambda s: None))
  return Dataset(str(dataset), split, protocol, cache)


def configs(ratio: float = condenser.CondenseConfig.ratio, **options):
  """(JobConfig, ModelConfig, TrainConfig) of `condense`'s options; unset: the CLI defaults."""
  _check(options, _OPTIONS, "condense")
  ccfg = dataclasses.replace(condensation.DEFAULT_CONDENSE, ratio=ratio,
                             inner=inner.InnerConfig(**_pick(options, _INNER)),
                             **_pick(options, _CONDENSE))
  return (condensation.JobConfig(condense=ccfg, **_pick(options, _JOB)),
          models.ModelConfig(**_pick(options, _MODEL)),
          train_lib.TrainConfig(**_pick(options, _TRAIN)))


@dataclasses.dataclass(frozen=True, eq=False)
class Result:
  """A condensation's report (the CLI's report.json), its folder and its dataset."""

  report: dict
  out_dir: pathlib.Path
  dataset: Dataset

  @property
  def retention(self) -> dict:
    """Metric(condensed) / metric(full data) of the first evaluator, mean over seeds."""
    return self.report["retention"]

  @property
  def size_fraction(self) -> float:
    return self.report["size_fraction"]

  def table(self) -> str:
    """The CLI's markdown table: full data, condensed set and baselines."""
    return summary.table(self.report)

  def condensed(self, seed: int | None = None) -> Interactions:
    """The condensed training set of `seed` (default: the first), read back from its npz,
    in the dataset's id space (ready for `evaluate`)."""
    seed = self.report["seeds"][0] if seed is None else seed
    files = self.report["files"]
    if str(seed) not in files:
      raise ValueError(f"no condensed set for seed {seed}; seeds: {self.report['seeds']}")
    try:
      return export_lib.read_npz(files[str(seed)]["npz"], self.dataset.train)
    except DataError as e:
      raise ValueError(f"{e} (dataset {self.dataset.name})") from None

  def pseudo(self, seed: int | None = None) -> np.ndarray:
    """Which pairs of `condensed(seed)` the proxy added (not in the data): [nnz] bool."""
    seed = self.report["seeds"][0] if seed is None else seed
    with np.load(self.report["files"][str(seed)]["npz"]) as z:
      return z["pseudo"].astype(bool)

  def false_negatives(self, seed: int | None = None) -> Interactions:
    """The proxy's false negatives outside `condensed(seed)`, in the dataset's id space:
    the report's evaluators drew no negative among them (pass as `evaluate`'s avoid)."""
    seed = self.report["seeds"][0] if seed is None else seed
    path = self.report["files"].get(str(seed), {}).get("false_negatives")
    if path is None:
      raise ValueError(f"seed {seed} of this run wrote no false negatives (a run with "
                       "exclude_false_negatives=False, or of another seed)")
    train = self.dataset.train
    if len(pathlib.Path(path).read_text().splitlines()) < 2:  # the header alone
      return train.subset(np.zeros(train.nnz, bool))
    return sets.to_dataset_ids(readers.read_delimited(path, columns=("user", "item")), train,
                               str(path))

  def __repr__(self) -> str:
    r = self.retention
    return (f"Result({self.dataset.name}, ratio {self.report['ratio']}, |S|/N "
            f"{self.size_fraction:.3f}, retention ndcg@10 {r['ndcg@10']:.3f} recall@10 "
            f"{r['recall@10']:.3f}, {self.out_dir})")


def condense(dataset: Dataset, ratio: float = condenser.CondenseConfig.ratio, *, out_dir,
             seeds=condensation.JobConfig.seeds, log: Callable[[str], None] | None = print,
             **options) -> Result:
  """Condenses `dataset`'s training split once per seed, as experiments/condense.py does.

  Writes out_dir/report.json, report.md and figures (jaxcond.report.summary), and every seed's
  condensed set under out_dir/seed<k>/; finished seeds and checkpoints found there are
  resumed (resume=False: start afresh). options: fields of CondenseConfig, JobConfig,
  ModelConfig and TrainConfig by name, of InnerConfig as inner_<name> (e.g. outer_steps=50,
  eval_models=("bpr_mf",), dim=64), and resume / checkpoint_every.
  """
  _check(options, _OPTIONS + _RUN, "condense")
  run_options = {k: options.pop(k) for k in _RUN if k in options}
  job, model_cfg, train_cfg = configs(ratio, seeds=seeds, **options)
  out = pathlib.Path(out_dir)
  rep = condensation.run(dataset.split, dataset.protocol, job, model_cfg=model_cfg,
                         train_cfg=train_cfg, out_dir=out, cache_dir=dataset.cache_dir,
                         log=log or (lambda s: None), **run_options)
  records.write_json_atomic(out / "report.json", rep)
  summary.write(rep, out)
  return Result(rep, out, dataset)


def evaluate(dataset: Dataset, train: Interactions, model: str = "bpr_mf", *, seed: int = 0,
             avoid: Interactions | None = None, log: Callable[[str], None] | None = None,
             **options) -> dict:
  """Trains `model` on `train` (pairs in the dataset's id space, e.g. `Result.condensed()`)
  with the evaluators' step-matched schedule; returns its test metrics (all training and
  validation items masked), with per-group ("groups") and item-side ("items") figures.
  Negatives are drawn outside `train` and `avoid`: with `Result.false_negatives()` as the
  report's evaluators draw them.

  options: ModelConfig and TrainConfig fields (dim, lr, max_epochs, ...).
  """
  _check(options, [*_MODEL, *_TRAIN], "evaluate")
  for name, pairs in (("train", train), ("avoid", avoid)):
    if pairs is not None and (pairs.n_users, pairs.n_items) != (dataset.train.n_users,
                                                                dataset.train.n_items):
      raise ValueError(f"{name} has {pairs.n_users} users x {pairs.n_items} items, the "
                       f"dataset {dataset.train.n_users} x {dataset.train.n_items}: not its "
                       "id space")
  _, metrics = fits.evaluate_on(
      model, dataset.split, train, seed=seed, avoid=avoid, log=log,
      model_cfg=models.ModelConfig(**_pick(options, _MODEL)),
      train_cfg=train_lib.TrainConfig(**_pick(options, _TRAIN)))
  return metrics["test"]


def export(interactions: Interactions, dataset: Dataset, out_dir, name: str = "condensed",
           pseudo_N=None) -> dict:
  """Writes `interactions` in original ids (CSV, TSV, npz) and RecBole benchmark files with
  the dataset's validation and test parts, with a `pseudo` column when pseudo_N ([nnz]
  bool, e.g. `Result.pseudo()`) is given; returns {format: path}."""
  s = dataset.split
  return export_lib.export_condensed(out_dir, name, interactions, s.valid, s.test,
                                     pseudo_N=pseudo_N)


def judge(dataset: Dataset, train, *, baselines=sets.DEFAULT_BASELINES, seeds=(0, 1, 2),
          eval_models=("bpr_mf",), out_dir=None, log: Callable[[str], None] | None = print,
          **options) -> dict:
  """Judges a finished set, as `jaxcond judge` does: `train` is Interactions in the dataset's
  id space or the path of a delimited file of (user, item) pairs in original ids. Returns
  the report (retention beside the full data and the same-size `baselines`); with out_dir,
  also writes it there as report.json.

  options: ModelConfig and TrainConfig fields (dim, lr, max_epochs, ...).
  """
  _check(options, [*_MODEL, *_TRAIN], "judge")
  if not isinstance(train, Interactions):
    train = sets.read_set(train, dataset.train)
  rep = sets.judge_set(dataset.split, dataset.protocol, train,
                       model_cfg=models.ModelConfig(**_pick(options, _MODEL)),
                       train_cfg=train_lib.TrainConfig(**_pick(options, _TRAIN)),
                       seeds=tuple(seeds), eval_models=tuple(eval_models),
                       names=tuple(baselines), cache_dir=dataset.cache_dir,
                       log=log or (lambda s: None))
  if out_dir is not None:
    records.write_json_atomic(pathlib.Path(out_dir) / "report.json", rep)
  return rep
