import jax.numpy as jnp
import numpy as np
import pytest

from jaxcond.condense import pool as pool_lib
from jaxcond.data.interactions import DataError, Interactions


@pytest.fixture
def train():
  rng = np.random.default_rng(0)
  users = np.repeat(np.arange(12), 6)
  items = np.concatenate([rng.choice(30, 6, replace=False) for _ in range(12)])
  return Interactions.from_pairs(users, items, n_users=12, n_items=30,
                                 user_ids=np.array([f"u{u}" for u in range(12)]))


def test_top_unseen_matches_numpy(train):
  rng = np.random.default_rng(1)
  scores = rng.normal(size=(12, 30)).astype(np.float32)
  k = pool_lib.pseudo_counts(train, 0.5, minimum=2)  # floor(0.5 * 6) = 3
  np.testing.assert_array_equal(k, 3)
  scores_j = jnp.asarray(scores)
  pu, pi = pool_lib.top_unseen(lambda users_B: scores_j[users_B], train, k, block_users=5)
  for u in range(12):
    s = scores[u].copy()
    s[train.items_of(u)] = -np.inf
    np.testing.assert_array_equal(np.sort(pi[pu == u]), np.sort(np.argsort(-s)[:3]))


def test_pool_layout_and_interactions(train):
  pu, pi = np.array([0, 0, 5]), np.array([np.setdiff1d(np.arange(30), train.items_of(0))[0],
                                          np.setdiff1d(np.arange(30), train.items_of(0))[1],
                                          np.setdiff1d(np.arange(30), train.items_of(5))[0]])
  pool = pool_lib.build_pool(train, pseudo_users=pu, pseudo_items=pi, fixed_users=[3])
  assert pool.size == train.nnz + 3 and pool.n_original == train.nnz
  assert np.all(np.diff(pool.users_C) >= 0)
  np.testing.assert_array_equal(np.diff(pool.indptr_U1), np.bincount(pool.users_C, minlength=12))
  assert pool.fixed_C.sum() == 6 and np.all(pool.users_C[pool.fixed_C] == 3)
  keep = ~pool.pseudo_C
  back = pool.to_interactions(keep)
  np.testing.assert_array_equal(back.indices, train.indices)
  np.testing.assert_array_equal(back.user_ids, train.user_ids)


def test_pseudo_pair_that_is_a_training_pair_is_refused(train):
  with pytest.raises(DataError, match="already training pairs"):
    pool_lib.build_pool(train, pseudo_users=[0], pseudo_items=[train.items_of(0)[0]])


@pytest.mark.parametrize("row_len", [1, 4, 16])
def test_rows_hold_every_candidate_once_in_its_users_row(train, row_len):
  pool = pool_lib.build_pool(train)
  rows = pool_lib.rows_of(pool, row_len)
  slots = rows.cand_RxL.ravel()
  real = slots[slots < pool.size]
  np.testing.assert_array_equal(np.sort(real), np.arange(pool.size))
  users_RxL = np.broadcast_to(rows.user_R[:, None], rows.cand_RxL.shape)
  np.testing.assert_array_equal(users_RxL[rows.cand_RxL < pool.size],
                                pool.users_C[rows.cand_RxL[rows.cand_RxL < pool.size]])
