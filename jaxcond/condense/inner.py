"""Inner training of BPR-MF on a sampled subset of candidates, and its held-out reward.

A mask m_C in {0, 1} weights the candidates' BPR terms; the loss is normalised per user
(by the user's kept pairs, or by a constant: `user_norm`), never by the whole mask's
size, so that a user's update depends on that user's candidates only. Two
implementations of the same maths (equal for user_norm="budget", tested):
  - `user_step_rewards`: one step on the user table from the start state (items held):
    the step is a masked sum of per-candidate gradients computed once, as a dense
    [R, L] row contraction (no autodiff, no scatter over candidates);
  - `trained_rewards`: any number of full- or mini-batch SGD/Adam steps, on the user
    table or on both tables, from the start state or a fresh initialisation (autodiff).
The reward is a loss on the validation pairs (lower is better), split per user.
"""

from __future__ import annotations

import dataclasses
import math
from typing import NamedTuple

import jax
import jax.numpy as jnp
import optax

from jaxcond.models import mf

REWARDS = ("bpr", "ndcg", "full")
STARTS = ("warm", "warm_items", "fresh")
OPTIMIZERS = ("sgd", "adam")
UPDATES = ("users", "all")
USER_NORMS = ("kept", "budget")


@dataclasses.dataclass(frozen=True)
class InnerConfig:
  """How each sampled subset is trained and judged."""

  steps: int = 1  # 1: the one-step update; n: the pool cut into n mini-batches
  lr: float = 1.0
  optimizer: str = "sgd"
  # warm: the proxy's parameters; warm_items: the proxy's item table and a zero user
  # table (a new user fitted to the subset); fresh: a new initialisation.
  start: str = "warm_items"
  update: str = "users"  # users: item table held (rewards separate by user); all: both
  reg: float = 1e-4
  # One-step mode: the user's step averages its kept pairs' gradients ("kept"), or sums
  # them over the budget per user ("budget", as the autodiff path always does), which
  # lets a reward prefer more pairs.
  user_norm: str = "kept"
  # bpr: validation BPR loss (official); ndcg: 1 - sampled NDCG of the validation items;
  # full (one-step mode): BPR loss on the validation pairs and on every original training
  # pair of the user, kept or not: how well the subset stands for the whole data.
  reward: str = "bpr"
  full_negatives: int = 8  # reward "full": sampled items each training pair is ranked against
  valid_negatives: int = 128  # sampled items, shared by all users and the K samples
  train_negatives: int = 4  # one-step mode: negatives averaged per candidate, drawn once

  def __post_init__(self):
    for name, known in (("reward", REWARDS), ("start", STARTS), ("optimizer", OPTIMIZERS),
                        ("update", UPDATES), ("user_norm", USER_NORMS)):
      if getattr(self, name) not in known:
        raise ValueError(f"inner {name} must be one of {known}, got {getattr(self, name)!r}")
    if min(self.steps, self.valid_negatives, self.train_negatives) < 1:
      raise ValueError(f"need inner steps, valid_negatives, train_negatives >= 1; got "
                       f"{self.steps}, {self.valid_negatives}, {self.train_negatives}")
    if not self.lr > 0 or self.reg < 0:
      raise ValueError(f"need inner lr > 0 and reg >= 0; got {self.lr}, {self.reg}")
    if self.reward == "full" and not self.fast:
      raise ValueError("reward 'full' is computed for the one-step user update only "
                       "(inner steps=1, update='users', start 'warm' or 'warm_items')")

  @property
  def fast(self) -> bool:
    """Whether `user_step_rewards` computes this configuration."""
    return self.steps == 1 and self.update == "users" and self.start != "fresh"


class InnerData(NamedTuple):
  """Device arrays the inner training reads (a pytree; the shapes are static)."""

  users_C: jnp.ndarray  # int32, candidates sorted by user
  items_C: jnp.ndarray
  cand_RxL: jnp.ndarray  # pool.Rows: candidate per slot, C for padding
  user_R: jnp.ndarray
  items_RxL: jnp.ndarray  # the slot's item (0 at padding)
  original_RxL: jnp.ndarray  # float32, 1 at slots holding an original training pair
  valid_users_T: jnp.ndarray
  valid_items_T: jnp.ndarray
  start: dict  # {"user": [U, D], "item": [I, D]}: the start (see InnerConfig.start)
  norm: jnp.ndarray  # scalar: the loss normaliser (budget / users)


# Rows of candidates per block of `first_step_grads` beyond which it works block by block.
GRAD_ROW_BLOCK = 131072


def first_step_grads(data: InnerData, negs_CxM, row_block: int = GRAD_ROW_BLOCK):
  """Per slot of the rows, d/d user of the candidate's BPR term at the start state,
  averaged over its M negatives: [R, L, D] (zero at padding slots).

  Past row_block rows it fills the result block by block, so that its temporaries are
  those of one block, not several [R, L, D] arrays (the last block is aligned to the end
  and recomputes a few rows with the same values).
  """
  n_rows = data.cand_RxL.shape[0]
  if n_rows <= row_block:
    return _slot_grads(data, negs_CxM, data.cand_RxL, data.user_R)
  n_blocks = -(-n_rows // row_block)
  out_RxLxD = jnp.zeros((*data.cand_RxL.shape, data.start["item"].shape[1]), jnp.float32)

  def fill(b, out_RxLxD):
    lo = jnp.minimum(b * row_block, n_rows - row_block)
    cand_BxL = jax.lax.dynamic_slice_in_dim(data.cand_RxL, lo, row_block)
    user_B = jax.lax.dynamic_slice_in_dim(data.user_R, lo, row_block)
    block = _slot_grads(data, negs_CxM, cand_BxL, user_B)
    return jax.lax.dynamic_update_slice_in_dim(out_RxLxD, block, lo, axis=0)

  return jax.lax.fori_loop(0, n_blocks, fill, out_RxLxD)


def _slot_grads(data: InnerData, negs_CxM, cand_RxL, user_R):
  user_UxD, item_IxD = data.start["user"], data.start["item"]
  n_cand = data.users_C.shape[0]
  ok_RxL = (cand_RxL < n_cand).astype(jnp.float32)
  slot = jnp.minimum(cand_RxL, n_cand - 1)
  user_RxD = user_UxD[user_R]
  pos_RxLxD = item_IxD[data.items_C[slot]]
  total = jnp.zeros_like(pos_RxLxD)
  for m in range(negs_CxM.shape[1]):
    diff = pos_RxLxD - item_IxD[negs_CxM[:, m][slot]]
    margin_RxL = jnp.einsum("rd,rld->rl", user_RxD, diff)
    total = total - jax.nn.sigmoid(-margin_RxL)[..., None] * diff
  return total * (ok_RxL / negs_CxM.shape[1])[..., None]


def _adam_first_step(grad, lr):
  # optax.adam's first update from a zero state, bias-corrected: lr * g / (|g| + eps).
  return lr * grad / (jnp.abs(grad) + 1e-8)


def _per_user(x_KxR, user_R, n_users: int):
  return jax.vmap(lambda x: jax.ops.segment_sum(x, user_R, num_segments=n_users,
                                                indices_are_sorted=True))(x_KxR)


def user_step_rewards(masks_KxC, grads_RxLxD, valid_negs_N, data: InnerData,
                      cfg: InnerConfig):
  """One step on the user table from the start state, per sample: rewards [K, U].

  grads_RxLxD: `first_step_grads` (the step's gradient is their masked sum per user).
  """
  if not cfg.fast:
    raise ValueError(f"user_step_rewards computes one user step from a start, not {cfg}")
  user_UxD, item_IxD = data.start["user"], data.start["item"]
  n_users = user_UxD.shape[0]
  pad_KxC1 = jnp.concatenate([masks_KxC, jnp.zeros((masks_KxC.shape[0], 1))], axis=1)
  mask_KxRxL = pad_KxC1[:, data.cand_RxL]
  row_KxRxD = jnp.sum(mask_KxRxL[..., None] * grads_RxLxD[None], axis=2)
  sum_KxUxD = _per_user(row_KxRxD, data.user_R, n_users)
  kept_KxU = _per_user(mask_KxRxL.sum(-1), data.user_R, n_users)
  # L2 as in train.bpr_loss: reg / 2 * |u|^2 once per kept pair (the item terms do not
  # touch the user table).
  norm_KxU = jnp.maximum(kept_KxU, 1.0) if cfg.user_norm == "kept" else data.norm
  grad_KxUxD = (sum_KxUxD + cfg.reg * kept_KxU[..., None] * user_UxD) / norm_KxU[..., None]
  if cfg.optimizer == "sgd":
    step_KxUxD = cfg.lr * grad_KxUxD
  else:
    step_KxUxD = _adam_first_step(grad_KxUxD, cfg.lr)
  users_KxUxD = user_UxD - step_KxUxD
  rewards_KxU = jax.vmap(lambda u: valid_loss_per_user(u, item_IxD, valid_negs_N, data, cfg))(
      users_KxUxD)
  if cfg.reward == "full":
    rewards_KxU = rewards_KxU + jax.vmap(
        lambda u: train_loss_per_user(u, item_IxD, valid_negs_N[:cfg.full_negatives], data))(
            users_KxUxD)
  return rewards_KxU


def train_loss_per_user(user_UxD, item_IxD, negs_N, data: InnerData):
  """BPR loss of each user's original training pairs against the N items: [U], summing
  to the mean over the training pairs."""
  n_users = user_UxD.shape[0]
  user_RxD = user_UxD[data.user_R]
  pos_RxL = jnp.einsum("rd,rld->rl", user_RxD, item_IxD[data.items_RxL])
  neg_RxN = user_RxD @ item_IxD[negs_N].T
  loss_RxL = -jnp.mean(jax.nn.log_sigmoid(pos_RxL[..., None] - neg_RxN[:, None, :]), axis=-1)
  row_R = jnp.sum(loss_RxL * data.original_RxL, axis=1) / jnp.sum(data.original_RxL)
  return jax.ops.segment_sum(row_R, data.user_R, num_segments=n_users, indices_are_sorted=True)


def valid_loss_per_user(user_UxD, item_IxD, valid_negs_N, data: InnerData, cfg: InnerConfig):
  """Validation loss split by user: [U], summing to the mean over validation pairs.

  Each validation item is compared with the N sampled items (one matmul for all users).
  """
  pos_T = jnp.sum(user_UxD[data.valid_users_T] * item_IxD[data.valid_items_T], axis=-1)
  neg_UxN = user_UxD @ item_IxD[valid_negs_N].T
  neg_TxN = neg_UxN[data.valid_users_T]
  if cfg.reward in ("bpr", "full"):
    loss_T = -jnp.mean(jax.nn.log_sigmoid(pos_T[:, None] - neg_TxN), axis=1)
  else:  # 1 - NDCG of the validation item ranked among the user's sampled items
    rank_T = jnp.sum(neg_TxN >= pos_T[:, None], axis=1)
    loss_T = 1.0 - 1.0 / jnp.log2(rank_T + 2.0)
  n_users = user_UxD.shape[0]
  return jax.ops.segment_sum(loss_T, data.valid_users_T, num_segments=n_users,
                             indices_are_sorted=True) / loss_T.shape[0]


def trained_rewards(masks_KxC, negs_C, valid_negs_N, key, offset, data: InnerData,
                    cfg: InnerConfig, hparams):
  """cfg.steps SGD/Adam steps per sample, with autodiff: rewards [K, U].

  Mini-batch s holds the candidates [s * B, (s + 1) * B) of the pool rolled by `offset`
  (one pass over the pool in cfg.steps steps). `key` draws the fresh initialisation,
  shared by the K samples (common random numbers).
  """
  n_users, n_items = data.start["user"].shape[0], data.start["item"].shape[0]
  n_cand = data.users_C.shape[0]
  batch = math.ceil(n_cand / cfg.steps)
  padded = batch * cfg.steps
  order = (jnp.arange(padded) + offset) % n_cand
  valid_B = (jnp.arange(padded) < n_cand).astype(jnp.float32).reshape(cfg.steps, batch)
  order = order.reshape(cfg.steps, batch)
  if cfg.start != "fresh":
    params0 = data.start
  else:
    params0 = mf.init(key, n_users, n_items, hparams)
  optimizer = optax.sgd(cfg.lr) if cfg.optimizer == "sgd" else optax.adam(cfg.lr)
  norm = data.norm / cfg.steps

  def loss_fn(trainable, frozen, idx_B, weight_B):
    params = {**frozen, **trainable}
    u = params["user"][data.users_C[idx_B]]
    p = params["item"][data.items_C[idx_B]]
    n = params["item"][negs_C[idx_B]]
    margin = jnp.sum(u * (p - n), axis=-1)
    sq = jnp.sum(u * u, axis=-1)
    if cfg.update == "all":
      sq = sq + jnp.sum(p * p, axis=-1) + jnp.sum(n * n, axis=-1)
    return jnp.sum(weight_B * (-jax.nn.log_sigmoid(margin) + 0.5 * cfg.reg * sq)) / norm

  def one(mask_C):
    names = ("user",) if cfg.update == "users" else ("user", "item")
    trainable = {k: params0[k] for k in names}
    frozen = {k: v for k, v in params0.items() if k not in names}
    opt_state = optimizer.init(trainable)

    def step(carry, batch_in):
      trainable, opt_state = carry
      idx_B, ok_B = batch_in
      grads = jax.grad(loss_fn)(trainable, frozen, idx_B, mask_C[idx_B] * ok_B)
      updates, opt_state = optimizer.update(grads, opt_state, trainable)
      return (optax.apply_updates(trainable, updates), opt_state), None

    (trainable, _), _ = jax.lax.scan(step, (trainable, opt_state), (order, valid_B))
    params = {**frozen, **trainable}
    return valid_loss_per_user(params["user"], params["item"], valid_negs_N, data, cfg)

  return jax.vmap(one)(masks_KxC)
