"""Rewards of a kept subset that see both sides of training, split by row for credit.

Every reward here is a loss (lower is better) of a batch of keep masks over candidate
pairs, returned as additive parts {"user": [K, U], "item": [K, I]}: part "user" of user
u depends only on the masks of u's candidates, part "item" of item i only on the masks of
the candidates whose positive item is i. So REINFORCE may credit a candidate (u, i) with
its user's and its item's parts alone (`credit_parts`) and stay unbiased
(tests/test_rewards.py checks this by enumeration).

  - `one_step`: one SGD step of the user table (items held) and, apart, of the item table
    (users held) from the given tables, on the kept pairs; the reward is the BPR loss of
    the target pairs (e.g. a share of validation) after each step. From zero users and the
    proxy's items, the user part is the loop's original reward (inner.user_step_rewards).
  - `grad_match`: how far each row's mean gradient on the kept pairs is from its mean
    gradient on all original pairs, at given tables (gradient matching, row by row).
  - `scratch_training`: both tables trained from a fresh initialisation for a few
    full-batch Adam steps on the kept pairs. Both tables move, so its parts do not
    separate by row: it takes global credit only (its "user" part is the target loss per
    user, for reporting).

Summed over several tables (checkpoints of a full-data training run: `trajectory`), these
see the early part of training that a model trained from scratch on the subset goes
through, not only the finished proxy.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

SIDES = ("user", "item")


class Pairs(NamedTuple):
  """Candidate pairs with their training negatives, and the pairs a reward is judged on."""

  users_C: jnp.ndarray  # int32
  items_C: jnp.ndarray  # int32
  negs_CxM: jnp.ndarray  # int32: M negative items per candidate, drawn once
  original_C: jnp.ndarray  # float32: 1 for an original training pair, 0 for a pseudo pair
  target_users_T: jnp.ndarray  # int32: the pairs the reward is a loss on
  target_items_T: jnp.ndarray
  target_negs_N: jnp.ndarray  # int32: items each target pair is ranked against


def candidate_grads(tables: dict, pairs: Pairs):
  """Per candidate, the BPR term's gradient w.r.t. its user row and w.r.t. its positive
  item row at `tables`, averaged over its M negatives: ([C, D], [C, D])."""
  user_CxD = tables["user"][pairs.users_C]
  pos_CxD = tables["item"][pairs.items_C]
  diff_CxMxD = pos_CxD[:, None, :] - tables["item"][pairs.negs_CxM]
  margin_CxM = jnp.einsum("cd,cmd->cm", user_CxD, diff_CxMxD)
  weight_CxM = jax.nn.sigmoid(-margin_CxM)  # -d log sigmoid(margin) / d margin
  grad_user_CxD = -jnp.mean(weight_CxM[..., None] * diff_CxMxD, axis=1)
  grad_item_CxD = -jnp.mean(weight_CxM, axis=1)[:, None] * user_CxD
  return grad_user_CxD, grad_item_CxD


def _row_means(masks_KxC, grad_CxD, rows_C, n_rows: int, table_RxD, reg: float):
  """Per sample and row: the mean over kept candidates of grad + reg * row: [K, R, D]
  (zero for a row that keeps nothing), and the kept counts [K, R]."""

  def one(mask_C):
    sum_RxD = jax.ops.segment_sum(mask_C[:, None] * grad_CxD, rows_C, num_segments=n_rows)
    kept_R = jax.ops.segment_sum(mask_C, rows_C, num_segments=n_rows)
    mean_RxD = (sum_RxD + reg * kept_R[:, None] * table_RxD) / jnp.maximum(kept_R, 1.0)[:, None]
    return mean_RxD, kept_R

  return jax.lax.map(one, masks_KxC)


def target_loss(user_UxD, item_IxD, neg_item_IxD, pairs: Pairs, side: str):
  """BPR loss of each target pair against the sampled items, summed per user or per item
  (by `side`) and divided by the number of target pairs: [U] or [I]."""
  u_TxD = user_UxD[pairs.target_users_T]
  pos_T = jnp.sum(u_TxD * item_IxD[pairs.target_items_T], axis=-1)
  neg_TxN = u_TxD @ neg_item_IxD[pairs.target_negs_N].T
  loss_T = -jnp.mean(jax.nn.log_sigmoid(pos_T[:, None] - neg_TxN), axis=1)
  rows_T = pairs.target_users_T if side == "user" else pairs.target_items_T
  n_rows = user_UxD.shape[0] if side == "user" else item_IxD.shape[0]
  return jax.ops.segment_sum(loss_T, rows_T, num_segments=n_rows) / loss_T.shape[0]


def one_step(masks_KxC, tables: dict, pairs: Pairs, *, lr: float = 1.0, reg: float = 1e-4,
             sides=SIDES) -> dict:
  """One SGD step per side on the kept pairs (each row moves by lr times its mean kept
  gradient), the other side held: the target loss per row, {"user": [K, U], "item": [K, I]}."""
  grad_user_CxD, grad_item_CxD = candidate_grads(tables, pairs)
  out = {}
  if "user" in sides:
    mean_KxUxD, _ = _row_means(masks_KxC, grad_user_CxD, pairs.users_C,
                               tables["user"].shape[0], tables["user"], reg)
    out["user"] = jax.lax.map(
        lambda m: target_loss(tables["user"] - lr * m, tables["item"], tables["item"], pairs,
                              "user"), mean_KxUxD)
  if "item" in sides:
    mean_KxIxD, _ = _row_means(masks_KxC, grad_item_CxD, pairs.items_C,
                               tables["item"].shape[0], tables["item"], reg)
    # The sampled items the targets are ranked against stay at `tables` (they are other
    # items' rows): the item part of item i reads only the masks of i's candidates.
    out["item"] = jax.lax.map(
        lambda m: target_loss(tables["user"], tables["item"] - lr * m, tables["item"], pairs,
                              "item"), mean_KxIxD)
  return out


class MatchTarget(NamedTuple):
  """What `grad_match` compares a mask against, computed once at given tables."""

  grads: dict  # side -> [C, D]: each candidate's gradient w.r.t. its row of that side
  rows: dict  # side -> [C] int32: the candidate's row (its user, its positive item)
  full: dict  # side -> [R, D]: each row's mean gradient over its original pairs
  scale: dict  # side -> [R]: the squared norm of `full`'s row (floored)
  has: dict  # side -> [R] float32: 1 for a row with an original pair


def match_target(tables: dict, pairs: Pairs, *, sides=SIDES) -> MatchTarget:
  """The candidates' gradients at `tables` and every row's full-data mean gradient."""
  grads = dict(zip(SIDES, candidate_grads(tables, pairs)))
  rows = {"user": pairs.users_C, "item": pairs.items_C}
  full, scale, has = {}, {}, {}
  for side in sides:
    mean_1xRxD, kept_1xR = _row_means(pairs.original_C[None], grads[side], rows[side],
                                      tables[side].shape[0], tables[side], 0.0)
    full[side] = mean_1xRxD[0]
    scale[side] = jnp.maximum(jnp.sum(full[side] ** 2, axis=-1), 1e-12)
    has[side] = (kept_1xR[0] > 0).astype(jnp.float32)
  return MatchTarget({k: grads[k] for k in sides}, {k: rows[k] for k in sides}, full, scale,
                     has)


def match_parts(masks_KxC, target: MatchTarget) -> dict:
  """`grad_match`'s parts of each mask against a precomputed target."""
  out = {}
  for side, full_RxD in target.full.items():
    mean_KxRxD, kept_KxR = _row_means(masks_KxC, target.grads[side], target.rows[side],
                                      full_RxD.shape[0], full_RxD, 0.0)
    dist_KxR = jnp.sum((mean_KxRxD - full_RxD) ** 2, axis=-1) / target.scale[side]
    dist_KxR = jnp.where(kept_KxR > 0, dist_KxR, 1.0)
    has_R = target.has[side]
    out[side] = dist_KxR * has_R / jnp.maximum(jnp.sum(has_R), 1.0)
  return out


def grad_match(masks_KxC, tables: dict, pairs: Pairs, *, sides=SIDES) -> dict:
  """Per row, |mean kept gradient - mean gradient over the original pairs|^2 divided by
  the squared norm of the latter, plus 1 for a row whose original pairs are all dropped
  (nothing to match with): {"user": [K, U], "item": [K, I]}, each part a mean over rows."""
  return match_parts(masks_KxC, match_target(tables, pairs, sides=sides))


def scratch_training(masks_KxC, init_tables: dict, pairs: Pairs, *, steps: int = 50,
                     lr: float = 1e-2, reg: float = 1e-4) -> dict:
  """`steps` full-batch Adam steps of both tables from `init_tables` on the kept pairs
  (step s ranks each pair against its negative s mod M): {"user": [K, U]} target loss."""
  optimizer = optax.adam(lr)
  n_negs = pairs.negs_CxM.shape[1]

  def loss_fn(tables, mask_C, s):
    u = tables["user"][pairs.users_C]
    p = tables["item"][pairs.items_C]
    n = tables["item"][pairs.negs_CxM[:, s % n_negs]]
    sq = jnp.sum(u * u + p * p + n * n, axis=-1)
    terms = -jax.nn.log_sigmoid(jnp.sum(u * (p - n), axis=-1)) + 0.5 * reg * sq
    return jnp.sum(mask_C * terms) / jnp.maximum(jnp.sum(mask_C), 1.0)

  def one(mask_C):
    def step(carry, s):
      tables, state = carry
      grads = jax.grad(loss_fn)(tables, mask_C, s)
      updates, state = optimizer.update(grads, state, tables)
      return (optax.apply_updates(tables, updates), state), None

    (tables, _), _ = jax.lax.scan(step, (init_tables, optimizer.init(init_tables)),
                                  jnp.arange(steps))
    return target_loss(tables["user"], tables["item"], tables["item"], pairs, "user")

  return {"user": jax.lax.map(one, masks_KxC)}


def trajectory(fn, masks_KxC, tables_list, pairs: Pairs, **kwargs) -> dict:
  """`fn`'s parts summed over several tables (e.g. checkpoints of a full-data run)."""
  total = None
  for tables in tables_list:
    parts = fn(masks_KxC, tables, pairs, **kwargs)
    total = parts if total is None else jax.tree.map(jnp.add, total, parts)
  return total


def credit_parts(parts: dict, pairs: Pairs) -> list:
  """(rewards_KxG, group_C) per part, for reinforce.estimate: a candidate is credited
  with its user's and its positive item's parts."""
  group = {"user": pairs.users_C, "item": pairs.items_C}
  return [(parts[side], group[side]) for side in SIDES if side in parts]


def total(parts: dict):
  """The reward of each sample: [K]."""
  return sum(jnp.sum(v, axis=1) for v in parts.values())


def zero_side(tables: dict, side: str) -> dict:
  """`tables` with one side's rows set to zero (a new user, or item, table)."""
  return {**tables, side: jnp.zeros_like(tables[side])}


def draw_negatives(users_C: np.ndarray, avoid_csr, n_items: int, n_negatives: int,
                   rng: np.random.Generator) -> np.ndarray:
  """[C, M] int32 items drawn uniformly outside each candidate's user's row of `avoid_csr`
  (scipy CSR users x items). Colliding draws are redrawn, up to 100 rounds: a user who
  has every item gets any item, and one who lacks only a few items may keep a collision."""
  negs = rng.integers(0, n_items, (users_C.size, n_negatives))
  full_U = np.diff(avoid_csr.indptr) >= n_items
  for _ in range(100):
    hit = np.asarray(avoid_csr[np.repeat(users_C, n_negatives), negs.ravel()]).reshape(
        negs.shape) > 0
    hit &= ~full_U[users_C][:, None]
    if not hit.any():
      break
    negs[hit] = rng.integers(0, n_items, int(hit.sum()))
  return negs.astype(np.int32)
