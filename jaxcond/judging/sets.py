"""Judging a finished set, made by jaxcond or elsewhere: evaluators trained from scratch on
it, on all training pairs and on same-size baselines, tested on the dataset's test pairs."""

from __future__ import annotations

from typing import Callable

import numpy as np

from jaxcond import baselines, models
from jaxcond.condense import proxy as proxy_lib
from jaxcond.core import records
from jaxcond.core.errors import DataError
from jaxcond.data import readers
from jaxcond.data.interactions import Interactions
from jaxcond.data.split import DatasetSplit
from jaxcond.judging import fits, judge, retention
from jaxcond.models import train as train_lib

DEFAULT_BASELINES = ("random", "proxy_top", "proxy_half", "proxy_top_sqrt", "proxy_half_sqrt")


def to_dataset_ids(pairs: Interactions, train: Interactions, source: str) -> Interactions:
  """`pairs` (read in original ids) over the dense ids of `train`'s dataset; a DataError
  naming `source` and the first unknown id when a user or item is not the dataset's."""
  for what, ids, known in (("user", pairs.user_ids, train.user_ids),
                           ("item", pairs.item_ids, train.item_ids)):
    unknown = ~np.isin(ids.astype(str), known.astype(str))
    if unknown.any():
      raise DataError(f"{source}: {unknown.sum():,} {what} ids are not in the dataset "
                      f"(the first: {str(ids[unknown][0])!r}); the set must use its original ids")
  dense = {}  # each of the file's own ids -> the dataset's dense id
  for what, ids, known in (("user", pairs.user_ids, train.user_ids),
                           ("item", pairs.item_ids, train.item_ids)):
    index = {str(v): i for i, v in enumerate(known)}
    dense[what] = np.array([index[str(v)] for v in ids], np.int64)
  users_N, items_N = dense["user"][pairs.users()], dense["item"][pairs.indices]
  return Interactions.from_pairs(users_N, items_N, n_users=train.n_users,
                                 n_items=train.n_items, user_ids=train.user_ids,
                                 item_ids=train.item_ids)


def read_set(path, train: Interactions, *, columns=("user", "item"), delimiter=None,
             header=None) -> Interactions:
  """A delimited file of (user, item) pairs in the dataset's original ids (a condensed
  set's condensed.csv / .tsv reads as it is), over the dataset's dense ids."""
  pairs = readers.read_delimited(path, columns=columns, delimiter=delimiter, header=header)
  subset = to_dataset_ids(pairs, train, str(path))
  if not 0 < subset.nnz < train.nnz:
    raise DataError(f"{path}: the set has {subset.nnz:,} pairs; a set to judge needs "
                    f"between 1 and {train.nnz - 1:,} (the training split's size less one)")
  return subset


def judge_set(data: DatasetSplit, protocol: dict, subset: Interactions, *,
              model_cfg: models.ModelConfig, train_cfg: train_lib.TrainConfig,
              seeds=(0, 1, 2), eval_models=("bpr_mf",), names=DEFAULT_BASELINES,
              proxy_model: str = "bpr_mf", tail_fraction: float = 0.2, cache_dir=None,
              log: Callable[[str], None] = print) -> dict:
  """The report of `subset` beside the full data and the baselines `names` (same size),
  every evaluator trained with each seed: retention overall, per user group, items."""
  proxy = None
  if any(name in baselines.USES_PROXY for name in names):
    params, _ = fits.fit_full(proxy_model, data, protocol, model_cfg=model_cfg,
                              train_cfg=train_cfg, seed=0, tail_fraction=tail_fraction,
                              cache_dir=cache_dir, log=log)
    proxy = proxy_lib.tables(proxy_model, params, data.train, model_cfg)
  jobs = {(seed, "condensed"): judge.Job(subset, seed) for seed in seeds}
  for name in names:
    for seed in seeds:
      chosen = baselines.select(name, data.train, subset.nnz, proxy=proxy, seed=seed).train
      jobs[seed, name] = judge.Job(chosen, seed)
  report_models = {}
  for m in eval_models:
    done = judge.judge(m, data, jobs, model_cfg=model_cfg, train_cfg=train_cfg,
                       tail_fraction=tail_fraction, log=log)
    ev = {name: [done[seed, name] for seed in seeds] for name in ("condensed", *names)}
    ev["full"] = [fits.fit_full(m, data, protocol, model_cfg=model_cfg, train_cfg=train_cfg,
                                seed=seed, tail_fraction=tail_fraction, cache_dir=cache_dir,
                                log=log)[1] for seed in seeds]
    report_models[m] = retention.model_report(ev, ("condensed", *names), data.train.nnz)
  head = report_models[eval_models[0]]
  fraction = subset.nnz / data.train.nnz
  return {"ratio": round(fraction, 4), "accounting": "given set", "size": subset.nnz,
          "size_fraction": fraction,
          **{k: head[k] for k in ("full", "condensed", "retention", "baselines", "groups",
                                  "items")},
          "models": report_models, "seeds": list(seeds),
          "degrees": {"train": records.degree_profile(data.train),
                      "set": records.degree_profile(subset)},
          "protocol": protocol, "versions": records.versions()}
