"""Judging training sets: an evaluator trained on each (step-matched to the full data),
then tested with full ranking over every user; same-size sets trained together."""

from __future__ import annotations

import collections
from typing import Callable, Hashable, NamedTuple

from jaxcond import models
from jaxcond.condense import tail as tail_lib
from jaxcond.data.interactions import Interactions
from jaxcond.data.split import DatasetSplit
from jaxcond.models import train as train_lib
from jaxcond.models import train_many


class Job(NamedTuple):
  """One evaluator fit: its training set, seed, and pairs its negatives also avoid."""

  train: Interactions
  seed: int
  avoid: Interactions | None = None


def test_metrics(model_name: str, data: DatasetSplit, fit: train_lib.FitResult, *,
                 model_cfg: models.ModelConfig, train_cfg: train_lib.TrainConfig,
                 n_train: int, tail_fraction: float = 0.2, mesh=None) -> dict:
  """A fitted evaluator's record: test with all original training and validation items
  masked, overall, per user group (tail_fraction least active users, the rest), and item
  coverage; beside its validation figures and schedule."""
  model = models.get_model(model_name)
  test = train_lib.evaluate_model(model, fit.params, fit.graph, model_cfg, history=data.train,
                                  exclude=(data.train, data.valid), target=data.test,
                                  block_users=train_cfg.eval_block_users,
                                  groups=tail_lib.user_groups(data.train, tail_fraction),
                                  popularity_I=data.train.item_degrees(), mesh=mesh)
  return {"test": test, "valid": fit.best_valid, "n_train": n_train,
          "best_epoch": fit.best_epoch, "epochs": fit.epochs,
          "train_seconds": fit.train_seconds}


def judge(model_name: str, data: DatasetSplit, jobs: dict[Hashable, Job], *,
          model_cfg: models.ModelConfig, train_cfg: train_lib.TrainConfig,
          tail_fraction: float = 0.2, group: int | None = -1, workers: int = -1,
          log: Callable[[str], None] | None = None, mesh=None,
          memo: dict | None = None) -> dict[Hashable, dict]:
  """test_metrics of an evaluator trained on each job's set, keyed as `jobs`.

  Sets of one size share a schedule (train.matched_to) and are fitted together
  (train_many.fit_many, `group` models per program, `workers` programs at once; -1: its
  defaults; a fit found in `memo` is not trained again).
  """
  model = models.get_model(model_name)
  by_size = collections.defaultdict(list)
  for key, job in jobs.items():
    by_size[job.train.nnz].append(key)
  out = {}
  for nnz, keys in by_size.items():
    cfg = train_lib.matched_to(train_cfg, data.train.nnz, nnz)
    if model.trainable:
      fits = train_many.fit_many(
          model, data, [jobs[k].train for k in keys], [jobs[k].seed for k in keys],
          hparams=model_cfg, cfg=cfg, avoids=[jobs[k].avoid for k in keys], group=group,
          workers=workers, memo=memo,
          progress=None if log is None else progress_log(model_name, keys, cfg, log))
    else:
      fits = [train_lib.fit(model, data, hparams=model_cfg, cfg=cfg, seed=jobs[k].seed,
                            train=jobs[k].train) for k in keys]
    for key, fit in zip(keys, fits):
      out[key] = test_metrics(model_name, data, fit, model_cfg=model_cfg, train_cfg=cfg,
                              n_train=nnz, tail_fraction=tail_fraction, mesh=mesh)
  return out


def progress_log(model_name: str, keys: list, cfg: train_lib.TrainConfig,
                 log: Callable[[str], None]) -> Callable[[int, dict], None]:
  """fit_many's progress(m, row): a line for model keys[m] every 10th validation."""
  def progress(m, row):
    if (row["epoch"] // cfg.eval_every) % 10 == 0:
      log(f"  {model_name} on {keys[m]} epoch {row['epoch']}: valid ndcg@10 "
          f"{row['valid']['ndcg@10']:.4f} (best epoch {row['best_epoch']}, "
          f"{row['seconds']:.0f}s)")
  return progress
