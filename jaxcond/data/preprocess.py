"""Filters applied before splitting: rating threshold, duplicate removal, iterative k-core."""

from __future__ import annotations

import math
from typing import Callable

import numpy as np

from jaxcond.data.interactions import DataError, Interactions


def filter_rating(inter: Interactions, min_rating: float, *, source: str = "data") -> Interactions:
  """Keeps pairs with rating >= min_rating (RecBole's `val_interval: rating: [t, inf)`)."""
  if not math.isfinite(min_rating):
    raise DataError(f"min_rating must be a finite number, got {min_rating!r}")
  if inter.ratings is None:
    raise DataError(f"{source} has no ratings, so --min_rating={min_rating} cannot apply")
  lo, hi = float(inter.ratings.min()), float(inter.ratings.max())
  if min_rating > hi:
    raise DataError(
        f"min_rating={min_rating} is above every rating of {source} (ratings lie in [{lo}, {hi}])")
  return inter.subset(inter.ratings >= min_rating)


def dedup(inter: Interactions) -> Interactions:
  """Drops repeated (user, item) pairs, keeping the first occurrence in file order."""
  # from_pairs sorts stably, so repeats are adjacent and the first one comes first.
  users_N = inter.users()
  repeat_N = np.zeros(inter.nnz, dtype=bool)
  repeat_N[1:] = (users_N[1:] == users_N[:-1]) & (inter.indices[1:] == inter.indices[:-1])
  return inter if not repeat_N.any() else inter.subset(~repeat_N)


def kcore(inter: Interactions, k_user: int, k_item: int | None = None) -> Interactions:
  """Iteratively drops users and items with fewer than k pairs, until none is left."""
  k_item = k_user if k_item is None else k_item
  if k_user < 0 or k_item < 0:
    raise DataError(f"k-core thresholds must be >= 0, got {k_user}, {k_item}")
  keep_N = np.ones(inter.nnz, dtype=bool)
  users_N = inter.users()
  while True:
    user_deg = np.bincount(users_N[keep_N], minlength=inter.n_users)
    item_deg = np.bincount(inter.indices[keep_N], minlength=inter.n_items)
    bad_N = keep_N & ((user_deg[users_N] < k_user) | (item_deg[inter.indices] < k_item))
    if not bad_N.any():
      break
    keep_N &= ~bad_N
  return inter.subset(keep_N)


def preprocess(inter: Interactions, *, min_rating: float | None = None, remove_duplicates=True,
               kcore_k: int = 0, source: str = "data",
               log: Callable[[str], None] = lambda s: None) -> Interactions:
  """Threshold, dedup and k-core in that order, then renumbers ids densely; logs how many
  repeated pairs dedup dropped."""
  if min_rating is not None:
    inter = filter_rating(inter, min_rating, source=source)
  if remove_duplicates:
    before = inter.nnz
    inter = dedup(inter)
    if inter.nnz < before:
      log(f"{source}: dropped {before - inter.nnz:,} repeated (user, item) pairs, keeping the "
          f"first of each in file order")
  if kcore_k:
    inter = kcore(inter, kcore_k)
  inter = inter.compact()
  if inter.nnz == 0:
    raise DataError(
        f"no interactions left in {source} after filtering "
        f"(min_rating={min_rating}, kcore={kcore_k})")
  return inter
