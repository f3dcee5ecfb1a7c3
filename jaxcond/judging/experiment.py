"""Train a recommender on a prepared split and evaluate it on the test part."""

from __future__ import annotations

import dataclasses
import time
from typing import Callable

from jaxcond import models
from jaxcond.condense import tail
from jaxcond.core import records
from jaxcond.data.split import DatasetSplit
from jaxcond.models import train as train_lib


def train_and_evaluate(data: DatasetSplit, *, model: str = "bpr_mf",
                       model_cfg: models.ModelConfig = models.ModelConfig(),
                       train_cfg: train_lib.TrainConfig = train_lib.TrainConfig(),
                       seed: int = 0, protocol: dict | None = None, tail_fraction: float = 0.2,
                       progress: Callable[[dict], None] | None = None) -> dict:
  """Fits on data.train with early stopping; tests with train and valid items masked,
  overall and for the tail_fraction least active users ("tail") and the rest ("head")."""
  recommender = models.get_model(model)
  t0 = time.perf_counter()
  fit = train_lib.fit(recommender, data, hparams=model_cfg, cfg=train_cfg, seed=seed,
                      progress=progress)
  test = train_lib.evaluate_model(recommender, fit.params, fit.graph, model_cfg,
                                  history=data.train,
                                  exclude=(data.train, data.valid), target=data.test,
                                  block_users=train_cfg.eval_block_users,
                                  groups=tail.user_groups(data.train, tail_fraction),
                                  popularity_I=data.train.item_degrees())
  groups, items = test.pop("groups"), test.pop("items")
  return {
      "test": test,
      "groups": {g: {"test": m} for g, m in groups.items()},
      "items": items,
      "valid": fit.best_valid,
      "n_train": data.train.nnz,
      "train_seconds": fit.train_seconds,
      "total_seconds": time.perf_counter() - t0,
      "epochs": fit.epochs,
      "best_epoch": fit.best_epoch,
      "config": {"model": model, "seed": seed, "model_cfg": dataclasses.asdict(model_cfg),
                 "train_cfg": dataclasses.asdict(train_cfg),
                 "tail_group": f"the {tail_fraction:.0%} of users with the fewest training "
                               f"pairs (ties: lower user id)"},
      "protocol": protocol or {},
      "versions": records.versions(),
      "history": fit.history,
  }
