"""Do models rank the same when trained on a condensed set? Kendall's tau of configurations.

SVP-CF's criterion (Sachdeva et al., WSDM 2022): train several model configurations on
the full data and on the sample, rank them by a test metric, and compare the rankings
with Kendall's tau (tau-b, scipy.stats.kendalltau): 1 = the same order, -1 = reversed.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
from typing import NamedTuple

import numpy as np
import scipy.stats

from jaxcond import models
from jaxcond.models import train as train_lib

# Eight configurations: two models' hyper-parameter grids and a closed-form model. LightGCN
# propagates over the whole graph at every step, so it trains as experiments/flags/
# *-lightgcn.flags do: few large batches (one epoch of 4096-pair batches is 33 s on ML-1M
# on a 2-core CPU, one of 32768-pair batches a few seconds).
_LIGHTGCN = "batch_size=32768:lr=5e-3:min_epochs=20:eval_every=2:patience=5:max_epochs=150"
DEFAULT_CONFIGS = (
    "bpr_mf:dim=16:lr=1e-3", "bpr_mf:dim=16:lr=5e-3", "bpr_mf:dim=64:lr=1e-3",
    "bpr_mf:dim=64:lr=5e-3", f"lightgcn:n_layers=1:{_LIGHTGCN}",
    f"lightgcn:n_layers=2:{_LIGHTGCN}", "ease:ease_l2=50", "ease:ease_l2=500",
)
_MODEL_FIELDS = {f.name: f.type for f in dataclasses.fields(models.ModelConfig)}
_TRAIN_FIELDS = {f.name: f.type for f in dataclasses.fields(train_lib.TrainConfig)}


class Configuration(NamedTuple):
  """A model and its settings, named by the text it was parsed from."""

  name: str
  model: str
  model_cfg: models.ModelConfig
  train_cfg: train_lib.TrainConfig


def parse_config(text: str, model_cfg: models.ModelConfig = models.ModelConfig(),
                 train_cfg: train_lib.TrainConfig = train_lib.TrainConfig()) -> Configuration:
  """"model[:field=value]..." (fields of ModelConfig or TrainConfig) over the given
  defaults, e.g. "bpr_mf:dim=16:lr=1e-3" or "ease:ease_l2=50"."""
  model, *settings = text.strip().split(":")
  models.get_model(model)
  model_kw, train_kw = {}, {}
  for setting in settings:
    key, sep, value = setting.partition("=")
    if not sep:
      raise ValueError(f"configuration {text!r}: expected field=value, got {setting!r}")
    if key in _MODEL_FIELDS:
      model_kw[key] = _cast(text, key, value, getattr(model_cfg, key))
    elif key in _TRAIN_FIELDS:
      train_kw[key] = _cast(text, key, value, getattr(train_cfg, key))
    else:
      raise ValueError(f"configuration {text!r}: unknown field {key!r}; known: "
                       f"{', '.join([*_MODEL_FIELDS, *_TRAIN_FIELDS])}")
  return Configuration(text.strip(), model, dataclasses.replace(model_cfg, **model_kw),
                       dataclasses.replace(train_cfg, **train_kw))


def _cast(text: str, key: str, value: str, like):
  try:
    if isinstance(like, int):
      if float(value) != int(float(value)):
        raise ValueError(value)
      return int(float(value))
    return type(like)(value)
  except ValueError as e:
    raise ValueError(f"configuration {text!r}: {key}={value!r} is not a "
                     f"{type(like).__name__}") from e


def ranking(scores: dict[str, float]) -> list[str]:
  """Names by score, best first (ties: the order given)."""
  names = list(scores)
  order = sorted(range(len(names)), key=lambda j: (-scores[names[j]], j))
  return [names[j] for j in order]


def kendall_tau(full: dict[str, float], other: dict[str, float]) -> dict:
  """Kendall's tau-b between two sets of scores of the same configurations, with its
  p-value and both rankings (best first). NaN when fewer than two configurations."""
  names = [n for n in full if n in other]
  if len(names) != len(full) or len(names) != len(other):
    raise ValueError(f"the configurations differ: {sorted(full)} vs {sorted(other)}")
  x = np.array([full[n] for n in names], np.float64)
  y = np.array([other[n] for n in names], np.float64)
  if len(names) < 2:
    tau, p = math.nan, math.nan
  else:
    res = scipy.stats.kendalltau(x, y)
    tau, p = float(res.statistic), float(res.pvalue)
  return {"tau": tau, "p_value": p, "n_configs": len(names),
          "ranking_full": ranking(full), "ranking_other": ranking(other),
          "discordant": discordant_pairs(full, other)}


def discordant_pairs(full: dict[str, float], other: dict[str, float]) -> list[dict]:
  """The pairs the two scorings order oppositely, each as {"better", "worse"} (by full)
  with both gaps (full_gap > 0), smallest full-data gap first: a swap of two
  configurations the full data barely separates is a swap within its own noise."""
  pairs = []
  for a, b in itertools.combinations(full, 2):
    if full[a] < full[b]:
      a, b = b, a
    full_gap, other_gap = full[a] - full[b], other[a] - other[b]
    if full_gap > 0 and other_gap < 0:
      pairs.append({"better": a, "worse": b, "full_gap": float(full_gap),
                    "other_gap": float(other_gap)})
  return sorted(pairs, key=lambda d: d["full_gap"])


def full_data_agreement(full_by_seed: dict[int, dict[str, float]]) -> dict:
  """How well the full data agrees with itself across training seeds: Kendall's tau
  between every two seeds' scores, and the pairs every seed orders the same way (strictly),
  as [better, worse]. A set cannot be asked to keep an order the full data does not."""
  seeds = sorted(full_by_seed)
  if len(seeds) < 2:
    raise ValueError(f"need full-data scores of at least two seeds, got seeds {seeds}")
  first = full_by_seed[seeds[0]]
  self_tau = [{"seeds": [a, b], "tau": kendall_tau(full_by_seed[a], full_by_seed[b])["tau"]}
              for a, b in itertools.combinations(seeds, 2)]
  stable = []
  for a, b in itertools.combinations(first, 2):
    if first[a] < first[b]:
      a, b = b, a
    if all(full_by_seed[s][a] > full_by_seed[s][b] for s in seeds):
      stable.append([a, b])
  n = len(first)
  return {"seeds": seeds, "self_tau": self_tau, "stable_pairs": stable,
          "n_pairs": n * (n - 1) // 2}


def stable_swaps(stable_pairs: list, other: dict[str, float]) -> list[list[str]]:
  """The pairs of `full_data_agreement` (ordered alike by every full-data seed) that
  `other` orders the opposite way."""
  return [[a, b] for a, b in stable_pairs if other[a] < other[b]]
