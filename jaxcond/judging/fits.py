"""Evaluator fits: one model trained on a set and tested; on all training pairs, cached."""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import pathlib
from typing import Callable

import numpy as np

from jaxcond import models
from jaxcond.core import npz
from jaxcond.data import cache, datasets
from jaxcond.data.interactions import Interactions
from jaxcond.data.split import DatasetSplit
from jaxcond.judging import judge
from jaxcond.models import train as train_lib
from jaxcond.models import train_many

# The modules whose code decides a fit's numbers: a change in any invalidates cached fits.
FIT_CODE = ("train.py", "mf.py", "lightgcn.py", "ease.py", "negatives.py", "evaluate.py",
            "graph.py", "__init__.py")


def fit_full(model_name: str, data: DatasetSplit, protocol: dict, *,
             model_cfg: models.ModelConfig, train_cfg: train_lib.TrainConfig, seed: int,
             tail_fraction: float = 0.2, cache_dir=None,
             log: Callable[[str], None] = print) -> tuple[dict | None, dict]:
  """The evaluator trained on all training pairs: (params, metrics), cached on disk under
  the data checksum, the settings and the training code."""
  return fit_full_seeds(model_name, data, protocol, model_cfg=model_cfg, train_cfg=train_cfg,
                        seeds=[seed], tail_fraction=tail_fraction, cache_dir=cache_dir,
                        log=log)[0]


def fit_full_seeds(model_name: str, data: DatasetSplit, protocol: dict, *,
                   model_cfg: models.ModelConfig, train_cfg: train_lib.TrainConfig,
                   seeds, tail_fraction: float = 0.2, cache_dir=None,
                   log: Callable[[str], None] = print) -> list[tuple[dict | None, dict]]:
  """fit_full of each seed; the seeds not cached are trained together (fit_many)."""
  settings = [_settings(model_name, protocol, model_cfg, train_cfg, seed, tail_fraction)
              for seed in seeds]
  folder = datasets.resolve_cache_dir(cache_dir) / "fits"
  paths = [folder / f"{model_name}-{cache.settings_key(s)}.npz" for s in settings]
  out = [_read_full(path, model_name, seed, log) for path, seed in zip(paths, seeds)]
  todo = [m for m, got in enumerate(out) if got is None]
  for m in todo:
    log(f"full-data {model_name} (seed {seeds[m]}): training")
  trained = _train_full(model_name, data, [seeds[m] for m in todo], model_cfg, train_cfg,
                        tail_fraction, log)
  for m, (params, metrics) in zip(todo, trained):
    arrays = {k: np.asarray(v) for k, v in params.items()} if isinstance(params, dict) else {}
    try:
      npz.save_arrays(paths[m], arrays, {"metrics": metrics, "settings": settings[m]})
    except OSError as e:
      log(f"could not cache the full-data run at {paths[m]} ({e})")
    out[m] = (arrays or None), metrics
  return out


def _settings(model_name, protocol, model_cfg, train_cfg, seed, tail_fraction) -> dict:
  return {"data": protocol["data_checksum"], "model": model_name, "seed": seed,
          "tail_fraction": tail_fraction, "model_cfg": dataclasses.asdict(model_cfg),
          "train_cfg": dataclasses.asdict(train_cfg), "code": code_version()}


def _read_full(path: pathlib.Path, model_name: str, seed: int, log):
  """(params or None, metrics) of a cached full-data fit; None if absent or unreadable."""
  if not path.exists():
    return None
  try:
    params, meta = npz.load_arrays(path)
  except Exception as e:  # noqa: BLE001 - a bad cache file is rebuilt, and said so
    log(f"{e}; retraining")
    return None
  log(f"full-data {model_name} (seed {seed}): cached {path}")
  return (params or None), meta["metrics"]


def _train_full(model_name: str, data: DatasetSplit, seeds: list, model_cfg, train_cfg,
                tail_fraction, log) -> list[tuple[object, dict]]:
  """(params, test_metrics) of the model trained on all training pairs with each seed."""
  if not seeds:
    return []
  model = models.get_model(model_name)
  if model.trainable:
    progress = judge.progress_log(model_name, [f"all pairs, seed {s}" for s in seeds],
                                  train_cfg, log)
    fitted = train_many.fit_many(model, data, [data.train] * len(seeds), seeds,
                                 hparams=model_cfg, cfg=train_cfg, progress=progress)
  else:
    fitted = [train_lib.fit(model, data, hparams=model_cfg, cfg=train_cfg, seed=seed)
              for seed in seeds]
  return [(fit.params, judge.test_metrics(model_name, data, fit, model_cfg=model_cfg,
                                          train_cfg=train_cfg, n_train=data.train.nnz,
                                          tail_fraction=tail_fraction)) for fit in fitted]


def evaluate_on(model_name: str, data: DatasetSplit, train, *, model_cfg, train_cfg,
                seed: int, avoid: Interactions | None = None, tail_fraction: float = 0.2,
                log: Callable[[str], None] | None = None, mesh=None) -> tuple[object, dict]:
  """Trains on `train` (a subset, with a step-matched schedule; negatives also outside
  `avoid`) and tests with all original training and validation items masked: overall,
  per user group (tail_fraction least active users, the rest), and item coverage."""
  model = models.get_model(model_name)
  cfg = train_lib.matched_to(train_cfg, data.train.nnz, train.nnz)

  def progress(row):
    if log is not None and (row["epoch"] // cfg.eval_every) % 10 == 0:
      log(f"  {model_name} epoch {row['epoch']}: valid ndcg@10 {row['valid']['ndcg@10']:.4f} "
          f"(best epoch {row['best_epoch']}, {row['seconds']:.0f}s)")

  fit = train_lib.fit(model, data, hparams=model_cfg, cfg=cfg, seed=seed, train=train,
                      avoid=avoid, progress=progress)
  return fit.params, judge.test_metrics(model_name, data, fit, model_cfg=model_cfg,
                                        train_cfg=cfg, n_train=train.nnz,
                                        tail_fraction=tail_fraction, mesh=mesh)


@functools.cache
def code_version() -> str:
  """A digest of the training and evaluation code (FIT_CODE), read once per process."""
  h = hashlib.sha256()
  for name in FIT_CODE:
    h.update((pathlib.Path(models.__file__).parent / name).read_bytes())
  return h.hexdigest()[:16]
