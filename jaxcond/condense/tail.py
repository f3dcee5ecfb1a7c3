"""Long-tail users: who they are, their compensation in the condensed set, and user groups.

Value-driven sampling drops the pairs of users with little history first. Two remedies:
`keep` (DConRec's rule: every training pair of a tail user is kept, inside the budget)
and `floor` (a softer one: every user keeps at least ceil(f * |I_u|) of its candidates,
the rest of the budget going to the best keep logits overall).
"""

from __future__ import annotations

import numpy as np

from jaxcond.condense import budget as budget_lib
from jaxcond.data.interactions import Interactions

MODES = ("keep", "floor", "none")


def least_active(train: Interactions, fraction: float) -> np.ndarray:
  """bool [U]: the ceil(fraction * U) users with the fewest training pairs (ties: the
  lower user id first)."""
  if not 0 <= fraction <= 1:
    raise ValueError(f"tail fraction must be in [0, 1], got {fraction}")
  n = int(np.ceil(fraction * train.n_users))
  order = np.lexsort((np.arange(train.n_users), train.user_degrees()))
  member = np.zeros(train.n_users, bool)
  member[order[:n]] = True
  return member


def user_groups(train: Interactions, tail_fraction: float = 0.2) -> dict[str, np.ndarray]:
  """{"tail": the least active tail_fraction of users, "head": the others}, bool [U]."""
  tail = least_active(train, tail_fraction)
  return {"tail": tail, "head": ~tail}


def tail_users(train: Interactions, *, tau: int | None = 10,
               quantile: float | None = None) -> np.ndarray:
  """bool [U]: users with at most tau training pairs (DConRec), or, given a quantile,
  the least active quantile of users (for datasets where nobody has <= tau pairs)."""
  if quantile is not None:
    return least_active(train, quantile)
  if tau is None or tau < 0:
    raise ValueError(f"tail tau must be a count >= 0, got {tau}")
  return train.user_degrees() <= tau


def floor_counts(degrees_U: np.ndarray, candidates_U: np.ndarray, fraction: float) -> np.ndarray:
  """Pairs each user keeps at least: ceil(fraction * |I_u|), at most its candidates."""
  if not 0 <= fraction <= 1:
    raise ValueError(f"tail floor fraction must be in [0, 1], got {fraction}")
  return np.minimum(np.ceil(fraction * degrees_U - 1e-9).astype(np.int64), candidates_U)


def select_with_floor(scores_C: np.ndarray, users_C: np.ndarray, floor_U: np.ndarray, k: int,
                      tiebreak_C: np.ndarray) -> np.ndarray:
  """bool [C]: each user's floor_U best-scored candidates, then the best k - sum(floor)
  of the rest (ties to the lower tiebreak)."""
  scores_C = np.asarray(scores_C, np.float64)
  order = np.lexsort((tiebreak_C, -scores_C, users_C))
  users_sorted = users_C[order]
  first = np.searchsorted(users_sorted, users_sorted, side="left")
  rank = np.empty(scores_C.shape[0], np.int64)
  rank[order] = np.arange(order.size) - first
  reserved = rank < floor_U[users_C]
  n_reserved = int(reserved.sum())
  if n_reserved > k:
    raise ValueError(f"the per-user floors need {n_reserved} pairs, more than the budget {k}; "
                     f"lower the floor fraction")
  others = np.flatnonzero(~reserved)
  keep = reserved.copy()
  keep[others] = budget_lib.top_k_mask(scores_C[others], k - n_reserved, tiebreak_C[others])
  return keep
