"""The candidate pool: (user, item) pairs with one keep logit each, sorted by user.

Candidates are the original training pairs plus, optionally, pseudo pairs from a proxy
model (per user the top-k unseen items, DConRec's pre-augmentation), and some may be
fixed (always kept, e.g. long-tail users' pairs).
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jaxcond.data.interactions import DataError, Interactions
from jaxcond.models import topk


class Pool(NamedTuple):
  """Host arrays of the candidates, sorted by (user, pseudo, item)."""

  n_users: int
  n_items: int
  users_C: np.ndarray  # int32
  items_C: np.ndarray  # int32
  pseudo_C: np.ndarray  # bool: added by the proxy, not an original training pair
  fixed_C: np.ndarray  # bool: always kept
  indptr_U1: np.ndarray  # int64, candidates of user u are [indptr[u], indptr[u + 1])
  user_ids: np.ndarray  # original ids of the dense user and item ids
  item_ids: np.ndarray

  @property
  def size(self) -> int:
    return int(self.users_C.shape[0])

  @property
  def n_original(self) -> int:
    return int(self.size - self.pseudo_C.sum())

  def to_interactions(self, keep_C: np.ndarray) -> Interactions:
    keep_C = np.asarray(keep_C, bool)
    return Interactions.from_pairs(self.users_C[keep_C], self.items_C[keep_C],
                                   n_users=self.n_users, n_items=self.n_items,
                                   user_ids=self.user_ids, item_ids=self.item_ids)


def build_pool(train: Interactions, *, pseudo_users=None, pseudo_items=None,
               fixed_users=None) -> Pool:
  """Candidates: every pair of `train`, the pseudo pairs, and `fixed_users`' pairs fixed."""
  users = [train.users().astype(np.int32)]
  items = [train.indices.astype(np.int32)]
  pseudo = [np.zeros(train.nnz, bool)]
  if pseudo_users is not None:
    pu, pi = np.asarray(pseudo_users, np.int32), np.asarray(pseudo_items, np.int32)
    if pu.shape != pi.shape:
      raise DataError(f"pseudo users and items differ in length: {pu.shape} vs {pi.shape}")
    clash = _member(train, pu, pi)
    if clash.any():
      raise DataError(f"{int(clash.sum())} pseudo pairs are already training pairs, e.g. "
                      f"(user {pu[clash][0]}, item {pi[clash][0]})")
    users.append(pu)
    items.append(pi)
    pseudo.append(np.ones(pu.shape[0], bool))
  users_C, items_C, pseudo_C = (np.concatenate(x) for x in (users, items, pseudo))
  order = np.lexsort((items_C, pseudo_C, users_C))
  users_C, items_C, pseudo_C = users_C[order], items_C[order], pseudo_C[order]
  fixed_C = np.zeros(users_C.shape[0], bool)
  if fixed_users is not None:
    fixed_C = np.isin(users_C, np.asarray(fixed_users)) & ~pseudo_C
  indptr = np.zeros(train.n_users + 1, np.int64)
  np.cumsum(np.bincount(users_C, minlength=train.n_users), out=indptr[1:])
  return Pool(train.n_users, train.n_items, users_C, items_C, pseudo_C, fixed_C, indptr,
              train.user_ids, train.item_ids)


def _member(train: Interactions, users, items) -> np.ndarray:
  keys = train.pair_keys()
  return np.isin(users.astype(np.int64) * train.n_items + items, keys)


def pseudo_counts(train: Interactions, rho: float, minimum: int = 5) -> np.ndarray:
  """k_u = max(minimum, floor(rho * |I_u|)), capped by the user's unseen items: [U]."""
  if rho < 0:
    raise ValueError(f"rho must be >= 0, got {rho}")
  deg = train.user_degrees()
  k = np.maximum(minimum, np.floor(rho * deg).astype(np.int64))
  return np.minimum(k, train.n_items - deg)


def top_unseen(score_block, train: Interactions, k_U: np.ndarray, *,
               block_users: int = 256) -> tuple[np.ndarray, np.ndarray]:
  """Per user u its k_U[u] best-scored items outside its training items.

  score_block(users_B) -> scores_BxI (jax). Returns (users, items) pairs, sorted by user.
  """
  k_max = int(k_U.max(initial=0))
  if k_max == 0:
    return np.zeros(0, np.int32), np.zeros(0, np.int32)

  @jax.jit
  def top(users_B, rows_E, cols_E):
    s = score_block(users_B)
    s = s.at[rows_E, cols_E].set(-jnp.inf, mode="drop")
    return topk.top_k(s, k_max)[1]

  users_out, items_out = [], []
  for start in range(0, train.n_users, block_users):
    users_b = np.arange(start, min(start + block_users, train.n_users), dtype=np.int32)
    users_B = np.zeros(block_users, np.int32)
    users_B[:users_b.size] = users_b
    lo, hi = train.indptr[users_b[0]], train.indptr[users_b[-1] + 1]
    rows = (train.users()[lo:hi] - start).astype(np.int32) if hi > lo else np.zeros(0, np.int32)
    pad = _bucket(hi - lo)
    rows_E = np.full(pad, block_users, np.int32)  # out of range: dropped
    cols_E = np.zeros(pad, np.int32)
    rows_E[:hi - lo] = rows
    cols_E[:hi - lo] = train.indices[lo:hi]
    top_BxK = np.asarray(top(users_B, rows_E, cols_E))[:users_b.size]
    take_BxK = np.arange(k_max)[None, :] < k_U[users_b][:, None]
    users_out.append(np.broadcast_to(users_b[:, None], take_BxK.shape)[take_BxK])
    items_out.append(top_BxK[take_BxK].astype(np.int32))
  return np.concatenate(users_out), np.concatenate(items_out)


def _bucket(n: int) -> int:
  return max(1024, 1 << int(np.ceil(np.log2(max(n, 1)))))


class Rows(NamedTuple):
  """The pool cut into rows of L slots, each row holding one user's candidates, so that
  per-user sums over candidates are dense [R, L] contractions plus a small row sum."""

  cand_RxL: np.ndarray  # int32 candidate index, or C (a padding slot)
  user_R: np.ndarray  # int32


def rows_of(pool: Pool, row_len: int = 16) -> Rows:
  counts = np.diff(pool.indptr_U1)
  rows_per_user = -(-counts // row_len)
  user_R = np.repeat(np.arange(pool.n_users, dtype=np.int32), rows_per_user)
  first_row = np.concatenate([[0], np.cumsum(rows_per_user)[:-1]])
  slot_C = (first_row[pool.users_C] * row_len
            + np.arange(pool.size) - pool.indptr_U1[pool.users_C])
  cand = np.full(user_R.shape[0] * row_len, pool.size, np.int32)
  cand[slot_C] = np.arange(pool.size, dtype=np.int32)
  return Rows(cand.reshape(-1, row_len), user_R)
