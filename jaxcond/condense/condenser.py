"""The outer loop: Bernoulli keep logits updated by REINFORCE, under a budget.

`make_step` returns one jitted function of (state, key, data) that samples K masks,
runs K inner trainings (vmapped), takes their rewards, forms the REINFORCE estimate,
applies the optimiser and restores the budget; it returns the new state and a dict of
measurements. `condense` runs it and selects the final set.
"""

from __future__ import annotations

import dataclasses
import functools
import pathlib
import time
from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxcond.condense import budget as budget_lib
from jaxcond.condense import inner as inner_lib
from jaxcond.condense import reinforce
from jaxcond.condense import tail as tail_lib
from jaxcond.condense.pool import Pool, Rows
from jaxcond.core import checkpoint, sharding
from jaxcond.models import ModelConfig, negatives
from jaxcond.models.graph import Graph

CREDITS = ("user", "global")
OUTER_OPTIMIZERS = ("adam", "rms_sgd")
ACCOUNTINGS = ("honest", "official")
SELECTIONS = ("top", "sample")


@dataclasses.dataclass(frozen=True)
class CondenseConfig:
  """The outer optimisation (defaults: DConRec's K = 4 and Adam; see README for the
  measurements behind the learning rate and the inner training)."""

  ratio: float = 0.25
  accounting: str = "honest"  # honest: |S| <= ratio * N; official: ratio * (N + pseudo)
  num_samples: int = 4
  outer_steps: int = 200
  # adam: the official choice (per-logit normalised steps); rms_sgd: SGD on the estimate
  # divided by its root mean square over the logits, so that steps keep the estimate's
  # relative sizes and noise averages out over steps instead of driving a random walk.
  outer_optimizer: str = "adam"
  outer_lr: float = 0.1  # official 1e-2, decayed x0.1 every 70 steps: slower here (README)
  lr_decay_every: int = 1000
  lr_decay: float = 0.1
  baseline: str = "loo"
  credit: str = "user"  # user: each logit credited with its user's reward only
  inner: inner_lib.InnerConfig = inner_lib.InnerConfig()
  selection: str = "top"
  seed: int = 0

  def __post_init__(self):
    if not 0 < self.ratio < 1:
      raise ValueError(f"ratio must be in (0, 1), got {self.ratio}")
    for name, known in (("accounting", ACCOUNTINGS), ("baseline", reinforce.BASELINES),
                        ("outer_optimizer", OUTER_OPTIMIZERS),
                        ("credit", CREDITS), ("selection", SELECTIONS)):
      if getattr(self, name) not in known:
        raise ValueError(f"{name} must be one of {known}, got {getattr(self, name)!r}")
    if self.num_samples < 2 and self.baseline == "loo":
      raise ValueError("the leave-one-out baseline needs num_samples >= 2")
    if self.num_samples < 1 or self.outer_steps < 0 or not self.outer_lr > 0:
      raise ValueError(f"need num_samples >= 1, outer_steps >= 0, outer_lr > 0; got "
                       f"{self.num_samples}, {self.outer_steps}, {self.outer_lr}")
    if self.credit == "user" and self.inner.update != "users":
      raise ValueError("credit='user' is unbiased only when the inner training updates the "
                       "user table alone (inner update='users'); use credit='global'")


class BudgetError(ValueError):
  """A ratio that leaves no free budget (the fixed pairs already fill it) or no choice."""


def budget_of(pool: Pool, n_train: int, cfg: CondenseConfig) -> dict:
  """Sizes under the accounting: total |S| target, fixed pairs, and the free budget."""
  n_fixed = int(pool.fixed_C.sum())
  n_free = pool.size - n_fixed
  if cfg.accounting == "honest":
    total = int(round(cfg.ratio * n_train))
    free = total - n_fixed
  else:  # official DConRec: ratio of the originals and pseudo pairs, fixed pairs on top
    free = int(round(cfg.ratio * n_free))
    total = free + n_fixed
  if not 0 < free < n_free:
    raise BudgetError(f"ratio {cfg.ratio} ({cfg.accounting} accounting) leaves a budget of "
                      f"{free} free pairs out of {n_free} candidates ({n_fixed} fixed pairs "
                      f"already count against {total}); it must be between 0 and {n_free}"
                      + (" (fewer tail users: a lower tail tau, a tail quantile, or tail "
                         "'floor' / 'none')" if n_fixed else ""))
  return {"total": total, "free": free, "fixed": n_fixed, "candidates": pool.size,
          "n_train": n_train}


class StepData(NamedTuple):
  """Everything the outer step reads besides its state (device arrays)."""

  inner: inner_lib.InnerData
  free_C: jnp.ndarray  # float32, 1 for candidates with a logit, 0 for fixed ones
  budget: jnp.ndarray  # scalar: expected number of kept free candidates
  neg_graph: Graph  # positives that inner negatives avoid (the original training pairs)
  grads_RxLxD: jnp.ndarray  # one-step mode: inner_lib.first_step_grads, else [0, 0, 0]
  # Keep probability of the candidates without a logit: None, all 1 (fixed pairs); on a
  # mesh (sharding.py) float32 [C], 1 for fixed pairs and 0 for padding.
  fixed_C: jnp.ndarray | None = None


class State(NamedTuple):
  logits_C: jnp.ndarray
  opt_state: optax.OptState
  step: jnp.ndarray


def step_data(pool: Pool, rows: Rows, start: dict, valid, neg_graph: Graph, sizes: dict,
              cfg: CondenseConfig, max_degree: int, mesh=None) -> StepData:
  """Device arrays of one condensation; in one-step mode also the candidates' first-step
  gradients, with cfg.inner.train_negatives negatives each drawn from cfg.seed.

  With a `mesh` (sharding.make_mesh), candidates, rows and users are padded and split
  along the mesh (see sharding.py), the rest replicated.
  """
  n_cand, n_users = pool.size, pool.n_users
  cand_RxL, user_R = rows.cand_RxL, rows.user_R
  users_C, items_C, free_C = pool.users_C, pool.items_C, (~pool.fixed_C).astype(np.float32)
  user_UxD = np.asarray(start_params(start, cfg.inner)["user"])
  fixed_C = None
  if mesh is not None:
    C, R, U = (sharding.padded(n, mesh) for n in (n_cand, user_R.shape[0], n_users))
    cand_RxL = sharding.pad_to(np.where(cand_RxL == n_cand, C, cand_RxL), R, fill=C)
    user_R = sharding.pad_to(user_R, R, fill=U - 1)  # still sorted: padded users come last
    users_C = sharding.pad_to(users_C, C, fill=n_users - 1)
    items_C = sharding.pad_to(items_C, C)
    fixed_C = sharding.pad_to(pool.fixed_C.astype(np.float32), C)
    free_C = sharding.pad_to(free_C, C)
    user_UxD = sharding.pad_to(user_UxD, U)
    n_cand = C
  in_row = np.minimum(cand_RxL, n_cand - 1)
  host = {
      "users_C": users_C, "items_C": items_C, "cand_RxL": cand_RxL, "user_R": user_R,
      "items_RxL": np.where(cand_RxL < n_cand, items_C[in_row], 0).astype(np.int32),
      "original_RxL": ((cand_RxL < n_cand) & ~sharding.pad_to(pool.pseudo_C, n_cand)[in_row]
                       ).astype(np.float32),
      "user": user_UxD}
  place = jnp.asarray if mesh is None else (lambda x: sharding.put(x, sharding.split(mesh)))
  keep = jnp.asarray if mesh is None else (lambda x: sharding.put(x, sharding.replicated(mesh)))
  inner = inner_lib.InnerData(
      users_C=place(host["users_C"]), items_C=place(host["items_C"]),
      cand_RxL=place(host["cand_RxL"]), user_R=place(host["user_R"]),
      items_RxL=place(host["items_RxL"]), original_RxL=place(host["original_RxL"]),
      valid_users_T=keep(np.asarray(valid.users(), np.int32)),
      valid_items_T=keep(np.asarray(valid.indices, np.int32)),
      start={"user": place(host["user"]),
             "item": keep(np.asarray(start_params(start, cfg.inner)["item"]))},
      norm=keep(np.float32(sizes["total"] / pool.n_users)))
  if mesh is not None:
    neg_graph = jax.tree.map(lambda x: sharding.put(sharding.to_host(x),
                                                    sharding.replicated(mesh)), neg_graph)
  grads = keep(np.zeros((0, 0, 0), np.float32))
  if cfg.inner.fast:
    grads = _first_step_grads(inner, neg_graph, jax.random.key(cfg.seed),
                              cfg.inner.train_negatives, max_degree)
  return StepData(inner=inner, free_C=place(free_C), budget=keep(np.float32(sizes["free"])),
                  neg_graph=neg_graph, grads_RxLxD=grads,
                  fixed_C=None if fixed_C is None else place(fixed_C))


def start_params(proxy: dict, cfg: inner_lib.InnerConfig) -> dict:
  """The inner trainings' start from the proxy's {"user", "item"} tables."""
  user = jnp.asarray(proxy["user"], jnp.float32)
  if cfg.start == "warm_items":
    user = jnp.zeros_like(user)
  return {"user": user, "item": jnp.asarray(proxy["item"], jnp.float32)}


@functools.partial(jax.jit, static_argnums=(3, 4))
def _first_step_grads(inner, neg_graph, key, n_negatives: int, max_degree: int):
  n_items = inner.start["item"].shape[0]
  keys = jax.random.split(jax.random.fold_in(key, 0x6E6567), n_negatives)
  negs_CxM = jnp.stack([_draw_negatives(k, inner.users_C, neg_graph, n_items, max_degree)
                        for k in keys], axis=1)
  return inner_lib.first_step_grads(inner, negs_CxM)


def outer_optimizer(cfg: CondenseConfig) -> optax.GradientTransformation:
  schedule = optax.exponential_decay(cfg.outer_lr, transition_steps=cfg.lr_decay_every,
                                     decay_rate=cfg.lr_decay, staircase=True)
  if cfg.outer_optimizer == "adam":
    return optax.adam(schedule)
  return optax.chain(scale_by_global_rms(), optax.scale_by_learning_rate(schedule))


def scale_by_global_rms(eps: float = 1e-30) -> optax.GradientTransformation:
  """Divides the update by its root mean square over all its entries (stateless)."""

  def init_fn(params):
    del params
    return optax.EmptyState()

  def update_fn(updates, state, params=None):
    del params
    leaves = jax.tree.leaves(updates)
    mean_sq = sum(jnp.sum(x * x) for x in leaves) / sum(x.size for x in leaves)
    scale = jax.lax.rsqrt(mean_sq + eps)
    return jax.tree.map(lambda x: x * scale, updates), state

  return optax.GradientTransformation(init_fn, update_fn)


def init_state(data: StepData, cfg: CondenseConfig, prior_C=None, mesh=None) -> State:
  """The start: `prior_C` logits (e.g. proxy.prior_logits, one per pool candidate) shifted
  to the budget, or equal keep probabilities on the free candidates. With a `mesh`, as
  step_data(mesh=...): padded and split along the mesh."""
  if prior_C is None:
    q = data.budget / jnp.sum(data.free_C)
    logits = jnp.where(data.free_C > 0, jnp.log(q) - jnp.log1p(-q), 0.0)
  else:
    prior_C = np.asarray(prior_C, np.float32)
    prior_C = (jnp.asarray(prior_C) if mesh is None else
               sharding.put(sharding.pad_to(prior_C, data.free_C.shape[0]),
                            sharding.split(mesh)))
    tau = budget_lib.budget_shift(prior_C, data.budget, data.free_C)
    logits = jnp.where(data.free_C > 0, prior_C - tau, 0.0)
  state = State(logits, outer_optimizer(cfg).init(logits), jnp.zeros((), jnp.int32))
  if mesh is None:
    return state
  return sharding.put_tree(state, state_shardings(state, mesh))


def state_shardings(state: State, mesh):
  """Logits and optimiser moments split along the mesh, counters replicated."""
  return sharding.first_axis_split(state, {state.logits_C.shape[0]}, mesh)


def keep_probs(logits_C, free_C, fixed_C=None):
  """Keep probabilities: sigmoid of the logit, else 1 (fixed), or fixed_C if given."""
  rest = 1.0 if fixed_C is None else fixed_C
  return jnp.where(free_C > 0, jax.nn.sigmoid(logits_C), rest)


def _draw_negatives(key, users, graph: Graph, n_items: int, max_degree: int):
  return negatives.sample(key, users, graph.indptr_U1, graph.items_E, n_items,
                          negatives.search_steps(max_degree), bits_UxW=graph.pos_bits_UxW)


def make_rewards_fn(cfg: CondenseConfig, hparams: ModelConfig, max_degree: int) -> Callable:
  """(masks_KxC, key, data) -> rewards [K, U]: the K inner trainings and their rewards."""
  inner_cfg = cfg.inner

  def rewards(masks_KxC, key, data: StepData):
    k_neg, k_valid, k_init, k_offset = jax.random.split(key, 4)
    d = data.inner
    n_items = d.start["item"].shape[0]
    # Items each validation pair is ranked against: uniform over all items (a validation
    # user's training items among them shift every sample's reward alike).
    valid_negs_N = jax.random.randint(k_valid, (inner_cfg.valid_negatives,), 0, n_items,
                                      dtype=jnp.int32)
    if inner_cfg.fast:
      return inner_lib.user_step_rewards(masks_KxC, data.grads_RxLxD, valid_negs_N, d,
                                         inner_cfg)
    negs_C = _draw_negatives(k_neg, d.users_C, data.neg_graph, n_items, max_degree)
    offset = jax.random.randint(k_offset, (), 0, d.users_C.shape[0])
    return inner_lib.trained_rewards(masks_KxC, negs_C, valid_negs_N, k_init, offset, d,
                                     inner_cfg, hparams)

  return rewards


def make_step(cfg: CondenseConfig, hparams: ModelConfig, max_degree: int,
              state_sharding=None) -> Callable:
  """The jitted outer step: (state, key, data) -> (state, measurements). On a mesh, pass
  state_shardings(...) so that the state keeps its layout from step to step."""
  optimizer = outer_optimizer(cfg)
  rewards_fn = make_rewards_fn(cfg, hparams, max_degree)

  def step(state: State, key, data: StepData):
    key = jax.random.fold_in(key, state.step)
    k_mask, k_inner = jax.random.split(key)
    probs_C = keep_probs(state.logits_C, data.free_C, data.fixed_C)
    masks_KxC = reinforce.sample_masks(k_mask, probs_C, cfg.num_samples)
    rewards_KxU = rewards_fn(masks_KxC, k_inner, data)
    group_C = data.inner.users_C if cfg.credit == "user" else None
    grad_C = reinforce.estimate(rewards_KxU, masks_KxC, probs_C, group_C,
                                baseline=cfg.baseline) * data.free_C
    updates, opt_state = optimizer.update(grad_C, state.opt_state, state.logits_C)
    logits = optax.apply_updates(state.logits_C, updates)
    tau = budget_lib.budget_shift(logits, data.budget, data.free_C)
    logits = jnp.where(data.free_C > 0, logits - tau, 0.0)
    reward_K = rewards_KxU.sum(axis=1)
    meas = {"reward": reward_K.mean(), "reward_std": reward_K.std(),
            "mask_size": masks_KxC.sum(axis=1).mean(),
            "expected_free": jnp.sum(jax.nn.sigmoid(logits) * data.free_C),
            "grad_norm": jnp.linalg.norm(grad_C)}
    return State(logits, opt_state, state.step + 1), meas

  if state_sharding is None:
    return jax.jit(step, donate_argnums=(0,))
  return jax.jit(step, donate_argnums=(0,), out_shardings=(state_sharding, None))


def select(logits_C, pool: Pool, sizes: dict, cfg: CondenseConfig, seed: int,
           floor_U: np.ndarray | None = None) -> np.ndarray:
  """The final keep mask [C] bool: fixed pairs, plus the top `free` budget by keep
  probability (ties in random order; with floor_U, each user's floor_U best free
  candidates first: tail.select_with_floor), or one Bernoulli sample of the keep
  probabilities."""
  logits_C = np.asarray(logits_C, np.float64)
  rng = np.random.default_rng([seed, 7])
  free = ~pool.fixed_C
  keep = pool.fixed_C.copy()
  tiebreak_C = rng.permutation(pool.size)
  if cfg.selection == "top" and floor_U is not None:
    at = np.flatnonzero(free)
    keep[at] = tail_lib.select_with_floor(logits_C[at], pool.users_C[at], floor_U,
                                          sizes["free"], tiebreak_C[at])
  elif cfg.selection == "top":
    keep |= budget_lib.top_k_mask(np.where(free, logits_C, -np.inf), sizes["free"], tiebreak_C)
  else:
    keep |= free & (rng.random(pool.size) < 1 / (1 + np.exp(-logits_C)))
  return keep


@dataclasses.dataclass
class CondenseResult:
  keep_C: np.ndarray  # bool mask of the pool: the condensed set
  logits_C: np.ndarray
  sizes: dict
  history: list  # one dict of measurements per logged outer step
  seconds: dict  # compile, outer loop, per step (median)


def condense(pool: Pool, data: StepData, cfg: CondenseConfig, *, hparams: ModelConfig,
             max_degree: int, state: State | None = None, sizes: dict,
             floor_U: np.ndarray | None = None,
             progress: Callable[[dict], None] | None = None, log_every: int = 10,
             checkpoint_path=None, checkpoint_every: int = 0,
             run_id: str = "", mesh=None, snapshot_every: int = 0,
             on_snapshot: Callable[[int, np.ndarray], None] | None = None) -> CondenseResult:
  """Runs cfg.outer_steps outer steps from `state` (default: the uniform start), then
  selects the set (with per-user floors floor_U if given).

  With `snapshot_every`, on_snapshot(step, host logits [C]) is called every that many
  steps and after the last (before that step's checkpoint, so a resumed run has them).

  With `checkpoint_path`, the loop resumes from the checkpoint there (if any) and writes
  one every `checkpoint_every` steps and at the end; `run_id` names what the caller
  knows determines the run (e.g. the data checksum), beside the settings and the pool.
  With a `mesh`, `data` (and `state`) come from step_data / init_state with that mesh.
  """
  key = jax.random.key(cfg.seed)
  state = init_state(data, cfg, mesh=mesh) if state is None else state
  layout = None if mesh is None else state_shardings(state, mesh)
  step_fn = make_step(cfg, hparams, max_degree, state_sharding=layout)
  history, step_s, elapsed = [], [], 0.0
  if checkpoint_path is not None:
    run_fp = checkpoint.fingerprint(
        run_id, dataclasses.asdict(cfg), dataclasses.asdict(hparams), max_degree,
        pool.users_C, pool.items_C, pool.fixed_C, pool.pseudo_C,
        sharding.to_host(state.logits_C), np.zeros(0) if floor_U is None else floor_U)
    restored = checkpoint.restore(checkpoint_path, state, run_fp)
    if restored is not None:
      if not np.array_equal(restored.key_data, jax.random.key_data(key)):
        raise ValueError(f"checkpoint {checkpoint_path} holds another PRNG key")
      state, history, step_s, elapsed = restored[0], *restored[2:]
      if mesh is not None:
        state = sharding.put_tree(state, layout)
  t0, compiled = time.perf_counter(), None
  if int(state.step) < cfg.outer_steps:  # no step left (outer_steps=0): nothing to compile
    compiled = step_fn.lower(state, key, data).compile()
  compile_s = time.perf_counter() - t0
  t_loop = time.perf_counter() - elapsed

  saved = int(state.step)

  def save():
    checkpoint.save(checkpoint_path, state, key, history=history, step_seconds=step_s,
                    elapsed=time.perf_counter() - t_loop, fingerprint=run_fp)
    return int(state.step)

  while int(state.step) < cfg.outer_steps:
    t = time.perf_counter()
    state, meas = compiled(state, key, data)
    meas = {k: float(v) for k, v in meas.items()}
    step_s.append(time.perf_counter() - t)
    done = int(state.step)
    if done % log_every == 0 or done == cfg.outer_steps or done == 1:
      row = dict(meas, step=done, seconds=time.perf_counter() - t_loop)
      history.append(row)
      if not np.isfinite(row["reward"]):
        raise FloatingPointError(f"reward became {row['reward']} at outer step {done}")
      if progress is not None:
        progress(row)
    if snapshot_every and (done % snapshot_every == 0 or done == cfg.outer_steps):
      on_snapshot(done, sharding.to_host(state.logits_C)[:pool.size])
    if checkpoint_path is not None and checkpoint_every and done % checkpoint_every == 0:
      saved = save()
  if checkpoint_path is not None and (saved != int(state.step) or
                                      not pathlib.Path(checkpoint_path).exists()):
    save()
  logits_C = sharding.to_host(state.logits_C)[:pool.size]  # less any padding
  keep = select(logits_C, pool, sizes, cfg, cfg.seed, floor_U)
  seconds = {"compile": compile_s, "loop": time.perf_counter() - t_loop,
             "per_step_median": float(np.median(step_s)) if step_s else 0.0}
  return CondenseResult(keep, logits_C, sizes, history, seconds)


def reward_signal(logits_C, key, data: StepData, cfg: CondenseConfig, hparams: ModelConfig,
                  max_degree: int, *, n_masks: int = 8, n_keys: int = 8) -> dict:
  """How much the reward tells masks apart: the spread of the mean reward across masks
  against the spread of one mask's reward across inner keys (negatives, initialisation).

  snr = std of the reward's mask effect / std of its key noise, for the total reward
  and per user (the median; per-user credit sees a user's own reward). reward_mean is
  the inner model's validation loss, beside ln 2 (what a model that learned nothing gets).
  """
  rewards_fn = jax.jit(make_rewards_fn(cfg, hparams, max_degree))
  logits_C = np.asarray(logits_C, np.float32)
  if data.fixed_C is not None:  # on a mesh: the padded length, split like free_C
    logits_C = sharding.put(sharding.pad_to(logits_C, data.free_C.shape[0]),
                            data.free_C.sharding)
  probs_C = keep_probs(logits_C, data.free_C, data.fixed_C)
  masks = reinforce.sample_masks(jax.random.fold_in(key, 1), probs_C, n_masks)
  table_MxKxU = np.stack([
      sharding.to_host(rewards_fn(masks, jax.random.fold_in(key, 100 + j), data)).astype(
          np.float64) for j in range(n_keys)], axis=1)
  out = {"reward_mean": float(table_MxKxU.sum(-1).mean()), "ln2": float(np.log(2.0)),
         "n_masks": n_masks, "n_keys": n_keys}
  out["global"] = _snr(table_MxKxU.sum(-1), n_keys)
  per_user = _snr(table_MxKxU, n_keys)
  out["per_user_median"] = {k: float(np.median(v)) for k, v in per_user.items()}
  return out


def _snr(table_MxK, n_keys: int) -> dict:
  within_var = table_MxK.var(axis=1, ddof=1).mean(axis=0)
  # The variance of key-averaged rewards across masks, less what key noise contributes.
  across_var = np.maximum(table_MxK.mean(axis=1).var(axis=0, ddof=1) - within_var / n_keys, 0)
  snr = np.sqrt(across_var / np.maximum(within_var, 1e-30))
  return {"std_across_masks": np.sqrt(across_var), "std_within_mask": np.sqrt(within_var),
          "snr": snr}
