"""SVP-CF (Sachdeva, Wu, McAuley, WSDM 2022): keep the pairs a small BPR-MF proxy forgets
most, at the interaction or the user level."""


from __future__ import annotations

import functools
import time
from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxcond import models
from jaxcond.baselines.samplers import (
  SVP_SCORES,
  BaselineConfig,
  Selection,
  _rng,
  _subset,
  whole_users,
)
from jaxcond.condense import budget as budget_lib
from jaxcond.data.interactions import Interactions
from jaxcond.models import negatives
from jaxcond.models import train as train_lib
from jaxcond.models.graph import Graph, build_graph


class Forgetting(NamedTuple):
  """Per-pair statistics over the presentations so far (device arrays, [N])."""

  forgotten_N: jnp.ndarray  # int32: correct at one presentation, incorrect at the next
  last_N: jnp.ndarray  # bool: correct at the last presentation
  learned_N: jnp.ndarray  # bool: correct at some presentation
  incorrect_N: jnp.ndarray  # int32: presentations at which it was incorrect


def forgetting_init(n_pairs: int) -> Forgetting:
  return Forgetting(*(jnp.zeros(n_pairs, t) for t in (jnp.int32, bool, bool, jnp.int32)))


def forgetting_update(track: Forgetting, correct_N) -> Forgetting:
  """One presentation of every pair: correct_N says whether its positive beat the sampled
  negative (before that step's update)."""
  correct_N = jnp.asarray(correct_N, bool)
  return Forgetting(track.forgotten_N + (track.last_N & ~correct_N),
                    correct_N, track.learned_N | correct_N,
                    track.incorrect_N + (~correct_N))


def forgetting_scores(stats: dict, mode: str = "transitions") -> np.ndarray:
  """float64 [N], higher = harder. transitions: forgetting events, pairs never learned
  above all (Toneva et al. count them as forgotten infinitely often); incorrect: the
  share of presentations at which the pair was incorrect (sampling_cf's count)."""
  if mode == "transitions":
    never = ~np.asarray(stats["learned_N"], bool)
    return np.where(never, stats["epochs"] + 1.0, np.asarray(stats["forgotten_N"], np.float64))
  if mode == "incorrect":
    return np.asarray(stats["incorrect_N"], np.float64) / max(stats["epochs"], 1)
  raise ValueError(f"svp score must be one of {SVP_SCORES}, got {mode!r}")


@functools.cache
def make_forgetting_epoch(hparams: models.ModelConfig, cfg: train_lib.TrainConfig,
                          n_items: int, max_degree: int, n_pairs: int) -> Callable:
  """A jitted BPR-MF epoch that also records, per pair, whether its positive outscored
  its sampled negative when presented: (params, opt_state, track, key, order_N, graph) ->
  (params, opt_state, track, correct_N, loss). Cached: one compilation per shape."""
  model = models.get_model("bpr_mf")
  optimizer = optax.adam(cfg.lr)
  n_steps = max(1, -(-n_pairs // cfg.batch_size))
  padded = n_steps * cfg.batch_size
  search = negatives.search_steps(max_degree)
  loss_fn = functools.partial(train_lib.bpr_loss, model, hparams, cfg.reg)

  def epoch(params, opt_state, track: Forgetting, key, order_N, graph: Graph):
    pad = jnp.full(padded - n_pairs, n_pairs, order_N.dtype)  # out of range: dropped
    batches = (jnp.concatenate([order_N, pad]).reshape(n_steps, cfg.batch_size),
               jax.random.split(key, n_steps))

    def step(carry, batch):
      params, opt_state, correct_N = carry
      idx_B, k = batch
      safe_B = jnp.minimum(idx_B, n_pairs - 1)
      users_B, pos_B = graph.users_E[safe_B], graph.items_E[safe_B]
      neg_B = negatives.sample(k, users_B, graph.indptr_U1, graph.items_E, n_items, search,
                               bits_UxW=graph.pos_bits_UxW)
      degree_B = graph.indptr_U1[users_B + 1] - graph.indptr_U1[users_B]
      weight_B = ((idx_B < n_pairs) & (degree_B < n_items)).astype(jnp.float32)
      user_UxD, item_IxD = params["user"], params["item"]
      diff_B = jnp.sum(user_UxD[users_B] * (item_IxD[pos_B] - item_IxD[neg_B]), axis=-1)
      correct_N = correct_N.at[idx_B].set(diff_B > 0, mode="drop")
      loss, grads = jax.value_and_grad(loss_fn)(params, graph, users_B, pos_B, neg_B, weight_B)
      updates, opt_state = optimizer.update(grads, opt_state, params)
      return (optax.apply_updates(params, updates), opt_state, correct_N), loss

    init = (params, opt_state, jnp.zeros(n_pairs, bool))
    (params, opt_state, correct_N), losses = jax.lax.scan(step, init, batches)
    return params, opt_state, forgetting_update(track, correct_N), correct_N, losses.mean()

  return jax.jit(epoch, donate_argnums=(0, 1, 2))


def svp_forgetting(train: Interactions, *, seed: int = 0, cfg: BaselineConfig = BaselineConfig(),
                   trajectory: bool = False) -> dict:
  """Trains SVP-CF's proxy (BPR-MF, cfg.svp_* settings) on all of `train` and returns per
  pair (in train's order) its forgetting statistics: numpy forgotten_N, learned_N,
  incorrect_N, and epochs, losses, seconds (and correct_ExN, each epoch's record, if
  `trajectory`)."""
  t0 = time.perf_counter()
  hparams = models.ModelConfig(dim=cfg.svp_dim)
  tcfg = train_lib.TrainConfig(lr=cfg.svp_lr, batch_size=cfg.svp_batch, reg=cfg.svp_reg)
  graph = build_graph(train, dense_limit=0)
  max_degree = int(train.user_degrees().max(initial=0))
  epoch_fn = make_forgetting_epoch(hparams, tcfg, train.n_items, max_degree, train.nnz)
  key = jax.random.key(seed)
  params = models.get_model("bpr_mf").init(jax.random.fold_in(key, 0), train.n_users,
                                           train.n_items, hparams)
  opt_state = optax.adam(tcfg.lr).init(params)
  track = forgetting_init(train.nnz)
  losses, records = [], []
  for epoch in range(1, cfg.svp_epochs + 1):
    params, opt_state, track, correct_N, loss = epoch_fn(
        params, opt_state, track, jax.random.fold_in(key, epoch),
        train_lib.shuffle(seed, epoch, train.nnz), graph)
    losses.append(float(loss))
    if trajectory:
      records.append(np.asarray(correct_N))
  out = {"forgotten_N": np.asarray(track.forgotten_N), "learned_N": np.asarray(track.learned_N),
         "incorrect_N": np.asarray(track.incorrect_N), "epochs": cfg.svp_epochs,
         "losses": losses, "seconds": time.perf_counter() - t0}
  if trajectory:
    out["correct_ExN"] = np.stack(records)
  return out


def _svp_info(stats: dict, scores_N: np.ndarray, keep_N: np.ndarray, cfg) -> dict:
  return {"svp_score": cfg.svp_score, "svp_epochs": stats["epochs"],
          "svp_seconds": stats["seconds"], "svp_final_loss": stats["losses"][-1],
          "never_learned_share": float(1 - np.mean(stats["learned_N"])),
          "mean_forgotten": float(np.mean(stats["forgotten_N"])),
          "mean_score_kept": float(scores_N[keep_N].mean()),
          "mean_score_all": float(scores_N.mean())}


def svp_cf(train: Interactions, budget: int, *, proxy=None, seed: int = 0,
           cfg: BaselineConfig = BaselineConfig()) -> Selection:
  """SVP-CF, interaction level: the `budget` pairs the proxy forgot most (ties random)."""
  del proxy
  stats = svp_forgetting(train, seed=seed, cfg=cfg)
  scores_N = forgetting_scores(stats, cfg.svp_score)
  keep = budget_lib.top_k_mask(scores_N, budget, _rng(seed, 15).permutation(train.nnz))
  return _subset(train, keep, _svp_info(stats, scores_N, keep, cfg))


def svp_cf_users(train: Interactions, budget: int, *, proxy=None, seed: int = 0,
                 cfg: BaselineConfig = BaselineConfig()) -> Selection:
  """SVP-CF, user level: whole users by their pairs' mean forgetting score, highest first,
  until the budget; the last user keeps its most forgotten pairs."""
  del proxy
  stats = svp_forgetting(train, seed=seed, cfg=cfg)
  scores_N = forgetting_scores(stats, cfg.svp_score)
  deg = train.user_degrees()
  mean_U = np.bincount(train.users(), scores_N, minlength=train.n_users) / np.maximum(deg, 1)
  rng = _rng(seed, 16)
  order = np.lexsort((rng.permutation(train.n_users), -mean_U))
  order = order[deg[order] > 0]
  keep = whole_users(train, order, budget, scores_N, rng.permutation(train.nnz))
  return _subset(train, keep, _svp_info(stats, scores_N, keep, cfg))


# --- k-center coreset over the proxy's user embeddings -------------------------------------
