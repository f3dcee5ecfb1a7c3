"""Same-size baselines for condensation: pure functions from the training pairs to a set S.

Every baseline has one signature, `fn(train, budget, *, proxy, seed, cfg) -> Selection`:
`train` the original training pairs (N of them), `budget` the size of S (round(r N), see
`budget_for`), `proxy` the proxy model's {"user": [U, D], "item": [I, D]} score tables
(`proxy.tables`; only the proxy methods read them), `seed` the only source of randomness.
S holds exactly `budget` pairs: a subset of the original pairs, or, for the proxy's
pseudo methods, original pairs plus the proxy's top unseen items. `BASELINES` maps names
to functions, `SOURCES` names to their definitions and where they come from.
"""

from __future__ import annotations

import functools
from typing import Callable

from jaxcond.baselines.samplers import (
  SVP_SCORES,
  BaselineConfig,
  Selection,
  budget_for,
  head_users,
  kcenter,
  proxy_half,
  proxy_mix,
  proxy_pseudo,
  proxy_top,
  random_pairs,
  random_users,
  stratified,
)
from jaxcond.baselines.svp import svp_cf, svp_cf_users
from jaxcond.data.interactions import Interactions

__all__ = ["SVP_SCORES", "BaselineConfig", "Selection", "budget_for", "proxy_mix",
           "BASELINES", "USES_PROXY", "SOURCES", "select"]


BASELINES: dict[str, Callable[..., Selection]] = {
    "random": random_pairs,
    "stratified": stratified,
    "random_users": random_users,
    "head_users": head_users,
    "svp_cf": svp_cf,
    "svp_cf_users": svp_cf_users,
    "kcenter": kcenter,
    "proxy_top": proxy_top,
    "proxy_pseudo": proxy_pseudo,
    "proxy_half": proxy_half,
    # Users' shares of the budget proportional to sqrt(|I_u|), not |I_u| (user_weights).
    "proxy_top_sqrt": functools.partial(proxy_top, power=0.5),
    "proxy_half_sqrt": functools.partial(proxy_half, power=0.5),
}
USES_PROXY = frozenset({"kcenter", "proxy_top", "proxy_pseudo", "proxy_half", "proxy_top_sqrt",
                        "proxy_half_sqrt"})
SOURCES = {
    "random": "uniform sample of round(rN) training pairs; the floor of DConRec's and "
              "SVP-CF's comparisons",
    "stratified": "per-user uniform sample of ~r|I_u| pairs (largest-remainder rounding)",
    "random_users": "whole random users until the budget (SVP-CF paper's 'random users')",
    "head_users": "whole users, most active first (SVP-CF paper's head-user sampling)",
    "svp_cf": "SVP-CF, interaction level (Sachdeva, Wu, McAuley, WSDM 2022; code "
              "noveens/sampling_cf): keep the pairs a BPR-MF proxy forgot most",
    "svp_cf_users": "SVP-CF, user level: users by mean forgetting of their pairs, highest "
                    "first (sampling_cf's forgetting_events_user)",
    "kcenter": "k-center greedy core-set (Sener & Savarese, ICLR 2018) over the proxy's user "
               "embeddings, whole users",
    "proxy_top": "per user the ~r|I_u| original pairs the proxy scores highest",
    "proxy_pseudo": "per user the proxy's ~r|I_u| top unseen items alone (DConRec's "
                    "pre-augmentation candidates)",
    "proxy_half": "half each user's top originals, half its top unseen items, by proxy score",
    "proxy_top_sqrt": "proxy_top with users' shares of the budget proportional to sqrt(|I_u|) "
                      "(light users keep a larger fraction of their pairs)",
    "proxy_half_sqrt": "proxy_half with users' shares proportional to sqrt(|I_u|)",
}


def select(name: str, train: Interactions, budget: int, *, proxy=None, seed: int = 0,
           cfg: BaselineConfig = BaselineConfig()) -> Selection:
  """Runs baseline `name`; checks that S has exactly `budget` distinct pairs."""
  if name not in BASELINES:
    raise ValueError(f"unknown baseline {name!r}; known: {', '.join(BASELINES)}")
  if not 0 < budget < train.nnz:
    raise ValueError(f"budget must be between 1 and {train.nnz - 1}, got {budget}")
  sel = BASELINES[name](train, budget, proxy=proxy, seed=seed, cfg=cfg)
  if sel.train.nnz != budget or sel.pseudo_N.shape != (budget,):
    raise AssertionError(f"baseline {name} returned {sel.train.nnz} pairs, not {budget}")
  return sel
