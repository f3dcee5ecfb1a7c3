"""Uniform negative items drawn outside a user's positives, inside jit."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp


def search_steps(max_degree: int) -> int:
  """Bisection steps that locate any item within a row of max_degree items."""
  return max(1, math.ceil(math.log2(max_degree + 1)) + 1)


def bitmap_has(users_B, items_B, bits_UxW):
  """Whether bit items_B[b] of row users_B[b] of a packed [U, ceil(I / 32)] bitmap is set."""
  words_B = bits_UxW.reshape(-1)[users_B * bits_UxW.shape[1] + (items_B >> 5)]
  return ((words_B >> (items_B & 31).astype(jnp.uint32)) & 1).astype(bool)


def sample_exact(key, users_B, indptr_U1, indices_N, n_items: int, n_steps: int):
  """Uniform negatives without rejection: the r-th item outside the user's sorted row.

  With the row's positives p_0 < p_1 < ..., p_k - k items lie outside the row below p_k,
  so the r-th outside item (0-based) is r + #{k : p_k - k <= r}, found by bisection.
  """
  start = indptr_U1[users_B]
  end = indptr_U1[users_B + 1]
  n_free = jnp.maximum(n_items - (end - start), 1)
  r = jax.random.randint(key, users_B.shape, 0, n_free, dtype=jnp.int32)
  last = indices_N.shape[0] - 1

  def step(_, bounds):  # first k in [start, end) with p_k - (k - start) > r
    lo, hi = bounds
    mid = (lo + hi) // 2
    right = (lo < hi) & (indices_N[jnp.clip(mid, 0, last)] - (mid - start) <= r)
    return jnp.where(right, mid + 1, lo), jnp.where(right | (lo >= hi), hi, mid)

  lo, _ = jax.lax.fori_loop(0, n_steps, step, (start, end), unroll=True)
  return jnp.minimum(r + (lo - start), n_items - 1)


def sample(key, users_B, indptr_U1, indices_N, n_items: int, n_steps: int,
           n_candidates: int = 4, max_rounds: int = 4, bits_UxW=None):
  """For each user an item drawn uniformly from those outside its positives: [B] int32.

  Rejection sampling with n_candidates draws per round against the packed bitmap
  `bits_UxW` (one gather per test); users still without a negative after max_rounds
  (those who saw most items), and all users when no bitmap is given, take
  `sample_exact`. Both are uniform, so the mixture is. A user who saw every item has
  no negative and gets an arbitrary item (the trainer gives their pairs zero weight).
  """
  def draw(key, shape):
    return jax.random.randint(key, shape, 0, n_items, dtype=jnp.int32)

  if indices_N.shape[0] == 0:
    return draw(key, users_B.shape)
  exact_key, key = jax.random.split(key)
  if bits_UxW is None or not bits_UxW.size:
    return sample_exact(exact_key, users_B, indptr_U1, indices_N, n_items, n_steps)
  users_BxC = jnp.broadcast_to(users_B[:, None], (users_B.shape[0], n_candidates))

  def body(state):
    key, items_B, bad_B, rounds = state
    key, sub = jax.random.split(key)
    cand_BxC = draw(sub, users_BxC.shape)
    ok_BxC = ~bitmap_has(users_BxC, cand_BxC, bits_UxW)
    pick_B = jnp.take_along_axis(cand_BxC, jnp.argmax(ok_BxC, axis=1)[:, None], axis=1)[:, 0]
    found_B = ok_BxC.any(axis=1)
    return key, jnp.where(bad_B & found_B, pick_B, items_B), bad_B & ~found_B, rounds + 1

  def cond(state):
    return state[2].any() & (state[3] < max_rounds)

  init = (key, jnp.zeros(users_B.shape, jnp.int32), jnp.ones(users_B.shape, bool), 0)
  _, items_B, bad_B, _ = jax.lax.while_loop(cond, body, init)
  return jax.lax.cond(
      bad_B.any(),
      lambda: jnp.where(bad_B, sample_exact(exact_key, users_B, indptr_U1, indices_N, n_items,
                                            n_steps), items_B),
      lambda: items_B)
