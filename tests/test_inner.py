"""The one-step fast path against autodiff training, and the rewards by hand."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxcond.condense import inner
from jaxcond.condense import pool as pool_lib
from jaxcond.data.interactions import Interactions
from jaxcond.models import ModelConfig


def _setup(row_len=4, seed=0):
  rng = np.random.default_rng(seed)
  n_users, n_items, dim = 7, 15, 5
  users = np.repeat(np.arange(n_users), 5)
  items = np.concatenate([rng.choice(n_items, 5, replace=False) for _ in range(n_users)])
  train = Interactions.from_pairs(users, items, n_users=n_users, n_items=n_items)
  pool = pool_lib.build_pool(train)
  rows = pool_lib.rows_of(pool, row_len)
  valid_users = np.arange(n_users, dtype=np.int32)
  valid_items = rng.integers(0, n_items, n_users).astype(np.int32)
  start = {"user": jnp.asarray(rng.normal(size=(n_users, dim)), jnp.float32),
           "item": jnp.asarray(rng.normal(size=(n_items, dim)), jnp.float32)}
  data = inner.InnerData(
      users_C=jnp.asarray(pool.users_C), items_C=jnp.asarray(pool.items_C),
      cand_RxL=jnp.asarray(rows.cand_RxL), user_R=jnp.asarray(rows.user_R),
      items_RxL=jnp.asarray(np.append(pool.items_C, 0)[rows.cand_RxL]),
      original_RxL=jnp.asarray(np.append(~pool.pseudo_C, False)[rows.cand_RxL], jnp.float32),
      valid_users_T=jnp.asarray(valid_users), valid_items_T=jnp.asarray(valid_items),
      start=start, norm=jnp.asarray(2.5, jnp.float32))
  negs_C = jnp.asarray(rng.integers(0, n_items, pool.size), jnp.int32)
  masks = jnp.asarray(rng.random((3, pool.size)) < 0.5, jnp.float32)
  valid_negs = jnp.asarray(rng.integers(0, n_items, 6), jnp.int32)
  return data, negs_C, masks, valid_negs


# Not adam with ndcg: Adam's first step g / (|g| + eps) magnifies float rounding of tiny
# gradient entries, and a rank-based reward turns that into whole rank swaps.
@pytest.mark.parametrize("optimizer, reward", [("sgd", "bpr"), ("sgd", "ndcg"), ("adam", "bpr")])
def test_fast_step_equals_autodiff_step(optimizer, reward):
  data, negs_C, masks, valid_negs = _setup()
  cfg = inner.InnerConfig(steps=1, lr=0.3, optimizer=optimizer, start="warm", update="users",
                          user_norm="budget", reward=reward, reg=0.01)
  grads = inner.first_step_grads(data, negs_C[:, None])
  fast = inner.user_step_rewards(masks, grads, valid_negs, data, cfg)
  slow = inner.trained_rewards(masks, negs_C, valid_negs, jax.random.key(0), 0, data, cfg,
                               ModelConfig(dim=5))
  np.testing.assert_allclose(np.asarray(fast), np.asarray(slow), rtol=2e-5, atol=1e-6)


def test_bpr_reward_by_hand():
  data, _, _, valid_negs = _setup()
  cfg = inner.InnerConfig(reward="bpr")
  u, q = np.asarray(data.start["user"], np.float64), np.asarray(data.start["item"], np.float64)
  vu, vi, negs = map(np.asarray, (data.valid_users_T, data.valid_items_T, valid_negs))
  margins = (u[vu] * q[vi]).sum(1)[:, None] - u[vu] @ q[negs].T
  expected = np.log1p(np.exp(-margins)).mean(1) / len(vu)  # one validation pair per user
  got = inner.valid_loss_per_user(data.start["user"], data.start["item"], valid_negs, data, cfg)
  np.testing.assert_allclose(np.asarray(got), expected, rtol=1e-5)


def test_user_rewards_depend_on_own_candidates_only():
  data, negs_C, masks, valid_negs = _setup()
  cfg = inner.InnerConfig(start="warm_items")
  grads = inner.first_step_grads(data, negs_C[:, None])
  base = np.asarray(inner.user_step_rewards(masks, grads, valid_negs, data, cfg))
  flipped = masks.at[:, np.asarray(data.users_C) == 2].set(1.0)
  after = np.asarray(inner.user_step_rewards(flipped, grads, valid_negs, data, cfg))
  others = np.arange(base.shape[1]) != 2
  np.testing.assert_allclose(after[:, others], base[:, others], rtol=1e-6)
  assert np.any(after[:, 2] != base[:, 2])


def test_full_reward_adds_training_pairs_loss():
  data, negs_C, masks, valid_negs = _setup()
  grads = inner.first_step_grads(data, negs_C[:, None])
  cfg = inner.InnerConfig(reward="bpr")
  full = dataclasses.replace(cfg, reward="full", full_negatives=4)
  a = np.asarray(inner.user_step_rewards(masks, grads, valid_negs, data, cfg))
  b = np.asarray(inner.user_step_rewards(masks, grads, valid_negs, data, full))
  assert np.all(b > a)


def test_config_errors():
  with pytest.raises(ValueError, match="inner start"):
    inner.InnerConfig(start="hot")
  with pytest.raises(ValueError, match="steps"):
    inner.InnerConfig(steps=0)
  with pytest.raises(ValueError, match="one-step user update only"):
    inner.InnerConfig(reward="full", steps=3)
  data, negs_C, masks, valid_negs = _setup()
  with pytest.raises(ValueError, match="one user step"):
    inner.user_step_rewards(masks, None, valid_negs, data, inner.InnerConfig(steps=2))


@pytest.mark.parametrize("row_block", [1, 2, 3])
def test_first_step_grads_block_by_block_equal_the_whole(row_block):
  data, negs_C, _, _ = _setup()
  negs_CxM = jnp.stack([negs_C, jnp.roll(negs_C, 1)], axis=1)
  whole = inner.first_step_grads(data, negs_CxM)
  assert data.cand_RxL.shape[0] > row_block  # the blocked path runs
  blocked = jax.jit(inner.first_step_grads, static_argnums=2)(data, negs_CxM, row_block)
  np.testing.assert_allclose(np.asarray(blocked), np.asarray(whole), rtol=1e-6, atol=1e-7)
