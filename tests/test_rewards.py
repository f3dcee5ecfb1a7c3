"""Rewards of both sides: against plain numpy, against the loop's one-step reward, and the
two-part REINFORCE credit against the exact gradient by enumeration."""

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import scipy.sparse as sp
from test_inner import _setup

from jaxcond.condense import inner, reinforce, rewards


def _pairs(seed=0, n_users=6, n_items=9, dim=4, n_cand=20, n_neg=3):
  rng = np.random.default_rng(seed)
  users = np.sort(rng.integers(0, n_users, n_cand)).astype(np.int32)
  items = rng.integers(0, n_items, n_cand).astype(np.int32)
  tables = {"user": jnp.asarray(rng.normal(size=(n_users, dim)), jnp.float32),
            "item": jnp.asarray(rng.normal(size=(n_items, dim)), jnp.float32)}
  pairs = rewards.Pairs(
      users_C=jnp.asarray(users), items_C=jnp.asarray(items),
      negs_CxM=jnp.asarray(rng.integers(0, n_items, (n_cand, n_neg)), jnp.int32),
      original_C=jnp.asarray(rng.random(n_cand) < 0.7, jnp.float32),
      target_users_T=jnp.asarray(rng.integers(0, n_users, 11), jnp.int32),
      target_items_T=jnp.asarray(rng.integers(0, n_items, 11), jnp.int32),
      target_negs_N=jnp.asarray(rng.integers(0, n_items, 5), jnp.int32))
  masks = jnp.asarray(rng.random((3, n_cand)) < 0.5, jnp.float32)
  return tables, pairs, masks


def _numpy_one_step(mask, tables, pairs, side, lr, reg):
  """The step and the target loss, pair by pair in float64."""
  u0, q0 = (np.asarray(tables[k], np.float64) for k in ("user", "item"))
  users, items, negs = (np.asarray(x) for x in (pairs.users_C, pairs.items_C, pairs.negs_CxM))
  table = (u0 if side == "user" else q0).copy()
  rows = users if side == "user" else items
  moved = table.copy()
  for r in range(table.shape[0]):
    kept = [c for c in range(len(users)) if rows[c] == r and mask[c] > 0]
    if not kept:
      continue
    g = np.zeros(table.shape[1])
    for c in kept:
      for j in negs[c]:
        diff = q0[items[c]] - q0[j]
        s = 1 / (1 + np.exp(u0[users[c]] @ diff))  # sigmoid(-margin)
        g += -s * (diff if side == "user" else u0[users[c]]) / negs.shape[1]
    moved[r] = table[r] - lr * (g / len(kept) + reg * table[r])
  u1, q1 = (moved, q0) if side == "user" else (u0, moved)
  tu, ti, tn = (np.asarray(x) for x in (pairs.target_users_T, pairs.target_items_T,
                                         pairs.target_negs_N))
  out = np.zeros(table.shape[0])
  for t in range(len(tu)):
    margins = u1[tu[t]] @ q1[ti[t]] - u1[tu[t]] @ q0[tn].T
    out[(tu if side == "user" else ti)[t]] += np.log1p(np.exp(-margins)).mean() / len(tu)
  return out


def test_one_step_matches_numpy_on_both_sides():
  tables, pairs, masks = _pairs()
  got = rewards.one_step(masks, tables, pairs, lr=0.7, reg=0.05)
  for side in ("user", "item"):
    for k in range(masks.shape[0]):
      want = _numpy_one_step(np.asarray(masks[k]), tables, pairs, side, 0.7, 0.05)
      np.testing.assert_allclose(np.asarray(got[side][k]), want, rtol=2e-5, atol=1e-7)


def test_user_part_from_zero_users_is_the_loops_reward():
  data, _, masks, valid_negs = _setup()
  rng = np.random.default_rng(5)
  negs_CxM = jnp.asarray(rng.integers(0, 15, (data.users_C.shape[0], 4)), jnp.int32)
  start = {"user": jnp.zeros_like(data.start["user"]), "item": data.start["item"]}
  data = data._replace(start=start)
  cfg = inner.InnerConfig()  # the loop's default: one SGD step, lr 1, items held, kept norm
  loop = inner.user_step_rewards(masks, inner.first_step_grads(data, negs_CxM), valid_negs,
                                 data, cfg)
  pairs = rewards.Pairs(users_C=data.users_C, items_C=data.items_C, negs_CxM=negs_CxM,
                        original_C=jnp.ones(data.users_C.shape, jnp.float32),
                        target_users_T=data.valid_users_T, target_items_T=data.valid_items_T,
                        target_negs_N=valid_negs)
  ours = rewards.one_step(masks, start, pairs, lr=cfg.lr, reg=cfg.reg, sides=("user",))
  np.testing.assert_allclose(np.asarray(ours["user"]), np.asarray(loop), rtol=1e-5, atol=1e-7)


def test_parts_depend_on_their_own_rows_candidates_only():
  tables, pairs, masks = _pairs(seed=1)
  base = rewards.one_step(masks[:1], tables, pairs)
  match = rewards.grad_match(masks[:1], tables, pairs)
  c = 4  # flip one candidate: only its user's and its item's parts may move
  flipped = masks[:1].at[0, c].set(1 - masks[0, c])
  for fn, before in ((rewards.one_step, base), (rewards.grad_match, match)):
    after = fn(flipped, tables, pairs)
    for side, row in (("user", int(pairs.users_C[c])), ("item", int(pairs.items_C[c]))):
      moved = np.flatnonzero(np.abs(np.asarray(after[side] - before[side]))[0] > 0)
      assert set(moved.tolist()) <= {row}, (fn.__name__, side, moved, row)


def test_grad_match_by_hand():
  tables, pairs, masks = _pairs(seed=2)
  got = rewards.grad_match(masks, tables, pairs, sides=("user",))["user"]
  g_user, _ = (np.asarray(x, np.float64) for x in rewards.candidate_grads(tables, pairs))
  users, orig = np.asarray(pairs.users_C), np.asarray(pairs.original_C)
  has = [u for u in range(6) if orig[users == u].sum() > 0]
  for k in range(masks.shape[0]):
    m = np.asarray(masks[k])
    for u in range(6):
      if u not in has:
        assert got[k, u] == 0
        continue
      full = g_user[(users == u) & (orig > 0)].mean(0)
      kept = g_user[(users == u) & (m > 0)]
      want = 1.0 if not len(kept) else np.sum((kept.mean(0) - full) ** 2) / np.sum(full ** 2)
      np.testing.assert_allclose(float(got[k, u]), want / len(has), rtol=1e-4)


def test_two_part_credit_is_unbiased_by_enumeration():
  # 8 candidates over 3 users and 3 items; the reward is one_step's user and item parts.
  tables, pairs, _ = _pairs(seed=3, n_users=3, n_items=3, n_cand=8, n_neg=2)
  all_masks = jnp.asarray(list(itertools.product([0.0, 1.0], repeat=8)), jnp.float32)
  parts = rewards.one_step(all_masks, tables, pairs, lr=2.0)
  table = np.asarray(rewards.total(parts), np.float64)
  logits = np.random.default_rng(4).normal(size=8)
  p = 1 / (1 + np.exp(-logits))
  m = np.asarray(all_masks, np.float64)
  prob = np.prod(np.where(m == 1, p, 1 - p), axis=1)
  exact = ((prob * table)[:, None] * (m - p)).sum(0)
  probs = jnp.asarray(p, jnp.float32)
  index = 2 ** np.arange(7, -1, -1)

  @jax.jit
  def one(key):
    masks = reinforce.sample_masks(key, probs, 4)
    row = (masks @ index).astype(jnp.int32)
    sampled = jax.tree.map(lambda v: v[row], parts)
    return sum(reinforce.estimate(r, masks, probs, g)
               for r, g in rewards.credit_parts(sampled, pairs))

  est = np.asarray(jax.lax.map(one, jax.random.split(jax.random.key(0), 40000),
                               batch_size=4000), np.float64)
  se = est.std(0) / np.sqrt(est.shape[0])
  assert np.all(np.abs(est.mean(0) - exact) < 4.5 * se), (est.mean(0), exact, se)
  assert np.max(np.abs(exact)) > 10 * np.max(se)  # the test can tell a wrong estimate


def test_scratch_training_moves_both_tables_and_reads_only_kept_pairs():
  tables, pairs, masks = _pairs(seed=6)
  none = jnp.zeros_like(masks[:1])
  out = rewards.scratch_training(jnp.concatenate([none, masks[:1]]), tables, pairs, steps=5)
  untouched = rewards.target_loss(tables["user"], tables["item"], tables["item"], pairs, "user")
  np.testing.assert_allclose(np.asarray(out["user"][0]), np.asarray(untouched), rtol=1e-6)
  assert not np.allclose(np.asarray(out["user"][1]), np.asarray(untouched))


def test_draw_negatives_avoid_the_users_items():
  rng = np.random.default_rng(0)
  avoid = sp.csr_matrix((np.ones(6), ([0, 0, 0, 1, 2, 2], [0, 1, 2, 3, 0, 4])), shape=(3, 5))
  negs = rewards.draw_negatives(np.array([0, 1, 2, 0]), avoid, 5, 50, rng)
  assert negs.shape == (4, 50) and negs.dtype == np.int32
  for row, user in zip(negs, [0, 1, 2, 0]):
    assert not set(row.tolist()) & set(avoid[user].indices.tolist())
