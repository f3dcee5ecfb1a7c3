"""Where the outer loop starts: the proxy's prior, a part of the pool, or a heuristic's set;
and, for start="best", the choice among them on validation pairs no reward reads."""

from __future__ import annotations

import pathlib
from typing import Callable

import numpy as np

from jaxcond.condense import holdout
from jaxcond.condense import pool as pool_lib
from jaxcond.data.interactions import Interactions

# Baselines whose set can be a start.
HEURISTICS = ("proxy_top", "proxy_half", "proxy_top_sqrt", "proxy_half_sqrt")
# The prior over every candidate, or over the originals (pseudo pairs out of reach) or the
# pseudo pairs alone, or a proxy heuristic's set (its pairs raised above every other
# candidate, each part keeping the prior's order); "best": whichever ranks the held-out
# validation pairs best (needs a hold-out).
STARTS = ("prior", "originals", "pseudo", *HEURISTICS, "best")
NEEDS_PSEUDO = ("pseudo", "proxy_half", "proxy_half_sqrt")
# The candidates of "best": the heuristics. No run of the defaults' grids chose the prior
# (nine runs) or, once the square-root heuristics were candidates, the originals or the
# pseudo pairs (eight runs; benchmarks/RESULTS.md, "Choosing the start on two fits").
BEST_OF = HEURISTICS
# A seed's start is chosen on fits with the run's other seeds, then CHOICE_SEED,
# CHOICE_SEED + 1, ... (JobConfig.choice_seeds_for): a set chosen on its own judging fit's
# validation score would carry that fit's luck into its judged figures (a fit that ranks
# validation well tends to rank test well).
CHOICE_SEED = 1000
OUT_OF_REACH = 100.0  # a logit this far below the rest keeps probability ~0 for good


def initial_logits(prior_C: np.ndarray | None, pool: pool_lib.Pool, kind: str,
                   heuristic_C: np.ndarray | None = None) -> np.ndarray | None:
  """The start's logits [C]: the prior (None, the uniform start, without one), or it with
  the pseudo pairs ("originals") or the original pairs ("pseudo") pushed out of reach, or
  with a heuristic's pairs (bool heuristic_C, for proxy_top / proxy_half) lifted above
  all others, so that the start's selected set is the heuristic's and the loop can still
  swap pairs."""
  if kind == "prior":
    return prior_C
  base = np.zeros(pool.size, np.float32) if prior_C is None else np.asarray(prior_C, np.float32)
  if kind in HEURISTICS:
    if heuristic_C is None or heuristic_C.shape != (pool.size,):
      raise ValueError(f"start {kind!r} needs its set as a mask over the {pool.size} "
                       "candidates")
    lift = float(base.max() - base.min()) + 1.0 if base.size else 1.0  # above the prior's span
    return np.where(heuristic_C, base + lift, base).astype(np.float32)
  drop = pool.pseudo_C if kind == "originals" else ~pool.pseudo_C
  return np.where(drop, base - OUT_OF_REACH, base).astype(np.float32)


def heuristic_mask(pool: pool_lib.Pool, subset: Interactions) -> np.ndarray:
  """bool [C]: the candidates that are pairs of `subset` (original or pseudo)."""
  key_C = pool.users_C.astype(np.int64) * pool.n_items + pool.items_C
  key_N = subset.users().astype(np.int64) * pool.n_items + subset.indices
  return np.isin(key_C, key_N)


def start_kinds(augment: bool) -> list[str]:
  """The candidate starts `best` chooses among (those with pseudo pairs need them)."""
  return [k for k in BEST_OF if augment or k not in NEEDS_PSEUDO]


def choose_start(logits_of: Callable[[str], np.ndarray | None], size: int, names: list[str],
                 starts_dir: pathlib.Path, scores_of: Callable, run_id: str,
                 log: Callable[[str], None]) -> dict:
  """Saves each candidate start's logits [size] (logits_of(name); None: uniform) under
  starts_dir and scores their sets (scores_of: on validation pairs no reward reads),
  together (holdout.choose: read back on a rerun); the best is "chosen_step"."""
  for name in names:
    if not (starts_dir / f"step{name}.npz").exists():
      logits_C = logits_of(name)
      holdout.save_snapshot(starts_dir / f"step{name}.npz", np.zeros(size, np.float32)
                            if logits_C is None else logits_C, 0, run_id)
  choice = holdout.choose(starts_dir, names, scores_of, run_id, log=log, what="start")
  log(f"the loop starts from the '{choice['chosen_step']}' start (best on the choosing "
      "validation pairs)")
  return choice
