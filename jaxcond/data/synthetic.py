"""Synthetic implicit-feedback data with long-tailed degrees, for scale tests and sweeps.

Users' degrees follow a lognormal floored at `min_degree` (MovieLens keeps users with at
least 20 ratings), items are drawn with Zipf-like popularity p_i ~ 1 / (i + 10)^a, so both
degree distributions are long-tailed as in real data. No (user, item) pair repeats.
"""

from __future__ import annotations

import numpy as np

from jaxcond.data.interactions import Interactions


def degrees(n_users: int, nnz: int, rng, *, min_degree: int = 20, sigma: float = 1.0,
            max_degree: int | None = None) -> np.ndarray:
  """Per-user degrees [U] summing to about nnz: min_degree + a lognormal share."""
  if nnz < n_users * min_degree:
    raise ValueError(f"{nnz} pairs cannot give {n_users} users {min_degree} pairs each")
  extra_U = rng.lognormal(0.0, sigma, n_users)
  extra_U *= (nnz - n_users * min_degree) / extra_U.sum()
  deg_U = min_degree + np.floor(extra_U).astype(np.int64)
  if max_degree is not None:
    deg_U = np.minimum(deg_U, max_degree)
  return deg_U


def interactions(n_users: int, n_items: int, nnz: int, *, seed: int = 0,
                 min_degree: int = 20, zipf: float = 1.0) -> Interactions:
  """About nnz distinct pairs (a little fewer where a user's draws repeat items)."""
  rng = np.random.default_rng(seed)
  deg_U = degrees(n_users, nnz, rng, min_degree=min(min_degree, n_items),
                  max_degree=n_items // 2)
  p_I = 1.0 / (np.arange(n_items) + 10.0) ** zipf
  p_I = rng.permutation(p_I / p_I.sum())  # popular items anywhere in the id range
  users, items = [], []
  # Oversample, drop repeats, keep each user's first deg_U distinct items; in chunks of
  # users so that memory stays a few times the output.
  chunk = max(1, int(2_000_000 // max(deg_U.mean(), 1)))
  for lo in range(0, n_users, chunk):
    d_u = deg_U[lo:lo + chunk]
    draw_u = np.ceil(d_u * 1.5 + 8).astype(np.int64)
    u_N = np.repeat(np.arange(lo, lo + d_u.size), draw_u)
    i_N = rng.choice(n_items, size=u_N.size, p=p_I)
    key_N = u_N * n_items + i_N
    _, first = np.unique(key_N, return_index=True)
    first.sort()  # draw order: a user's first distinct items
    u_N, i_N = u_N[first], i_N[first]
    starts = np.searchsorted(u_N, np.arange(lo, lo + d_u.size))
    rank_N = np.arange(u_N.size) - np.repeat(starts, np.diff(np.append(starts, u_N.size)))
    keep = rank_N < d_u[u_N - lo]
    users.append(u_N[keep])
    items.append(i_N[keep])
  return Interactions.from_pairs(np.concatenate(users), np.concatenate(items),
                                 n_users=n_users, n_items=n_items)
