"""BPR training: a jitted epoch (lax.scan over mini-batches) and early stopping on validation."""

from __future__ import annotations

import dataclasses
import functools
import time
from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxcond.core import sharding
from jaxcond.data.interactions import Interactions
from jaxcond.data.split import DatasetSplit
from jaxcond.models import ModelConfig, Recommender, negatives
from jaxcond.models import evaluate as evaluate_lib
from jaxcond.models.graph import BITMAP_LIMIT_BITS, DENSE_ADJ_LIMIT, Graph, build_graph


@dataclasses.dataclass(frozen=True)
class TrainConfig:
  """Optimisation and stopping settings; the defaults are DConRec's evaluator protocol
  (embedding 64, batch 4096, Adam lr 5e-4, reg 1e-4, early stopping on NDCG@10 after 10
  epochs without a new best), validated every 2nd epoch: on ML-1M and Dianping that
  chose the same test figures as every epoch (within 0.04%) at 0.70x and 0.73x of the
  time (benchmarks/RESULTS.md, "Judging in seconds")."""

  lr: float = 5e-4
  batch_size: int = 4096
  reg: float = 1e-4  # L2 on the batch's layer-0 embeddings
  max_epochs: int = 300
  eval_every: int = 2
  patience: int = 5  # evaluations without a new best before stopping ...
  min_epochs: int = 40  # ... but never before this epoch (BPR-MF's early plateau)
  stop_metric: str = "ndcg@10"
  eval_block_users: int = 256
  valid_users: int = 0  # > 0: validate on a fixed random sample of this many users

  def __post_init__(self):
    for name in ("batch_size", "max_epochs", "eval_every", "patience", "eval_block_users"):
      if getattr(self, name) < 1:
        raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
    if stop_cutoff(self.stop_metric) < 1:
      raise ValueError(f"stop_metric {self.stop_metric!r} needs a cut-off K >= 1")
    if self.valid_users < 0:
      raise ValueError(f"valid_users must be >= 0 (0: all users), got {self.valid_users}")
    if not (self.lr > 0 and self.reg >= 0 and self.min_epochs >= 0):
      raise ValueError(f"need lr > 0, reg >= 0, min_epochs >= 0; got lr={self.lr}, "
                       f"reg={self.reg}, min_epochs={self.min_epochs}")


def stop_cutoff(stop_metric: str) -> int:
  """K of a stop metric such as "ndcg@10": validation while training ranks only the top K.

  The top K items are the first K of any longer top list (ties in index order), so the
  stop metric, and with it the best epoch, is the one a full validation would give.
  """
  name, _, k = stop_metric.partition("@")
  if name not in evaluate_lib.METRICS or not k.isdigit():
    raise ValueError(f"stop_metric must be <{'|'.join(evaluate_lib.METRICS)}>@<K>, "
                     f"got {stop_metric!r}")
  return int(k)


def bpr_loss(model: Recommender, hparams: ModelConfig, reg: float, params, graph: Graph,
             users_B, pos_B, neg_B, weight_B):
  """Mean of -log sigmoid(s(u, i) - s(u, j)) over the batch, plus L2 on its embeddings."""
  user_UxD, item_IxD = model.represent(params, graph, hparams)
  rows = [user_UxD[users_B], item_IxD[pos_B], item_IxD[neg_B]]
  if user_UxD is params["user"] and item_IxD is params["item"]:
    ego = rows  # matrix factorisation: the layer-0 rows are the scored rows
  else:
    ego = [params["user"][users_B], params["item"][pos_B], params["item"][neg_B]]
  diff_B = jnp.sum(rows[0] * (rows[1] - rows[2]), axis=-1)
  n = jnp.maximum(weight_B.sum(), 1.0)
  loss = -jnp.sum(weight_B * jax.nn.log_sigmoid(diff_B)) / n
  ego_sq_B = sum(jnp.sum(e * e, axis=-1) for e in ego)
  return loss + reg * 0.5 * jnp.sum(weight_B * ego_sq_B) / n


def make_epoch_fn(model: Recommender, hparams: ModelConfig, cfg: TrainConfig,
                  optimizer: optax.GradientTransformation, n_items: int, max_degree: int,
                  n_pairs: int) -> Callable:
  """A jitted epoch: (params, opt_state, key, order_N, graph[, avoid]) -> (params,
  opt_state, meas); see `epoch_body`."""
  return jax.jit(epoch_body(model, hparams, cfg, optimizer, n_items, max_degree, n_pairs),
                 donate_argnums=(0, 1))


def compiled_epoch(model: Recommender, hparams: ModelConfig, batch_size: int, reg: float,
                   lr: float, n_items: int, max_degree: int, n_pairs: int,
                   n_models: int = 0) -> Callable:
  """The jitted Adam epoch of `fit` (n_models = 0) or of `n_models` models at once (a
  leading axis on every argument), compiled once per shape and setting.

  max_degree is rounded up to 2^b - 1: the bisection takes as many steps for every
  degree of that bit length, and extra steps leave its answer unchanged.
  """
  bound = (1 << int(max_degree).bit_length()) - 1
  return _compiled_epoch(model, hparams, batch_size, reg, lr, n_items, bound, n_pairs,
                         n_models)


@functools.lru_cache(maxsize=64)
def _compiled_epoch(model, hparams, batch_size, reg, lr, n_items, bound, n_pairs, n_models):
  cfg = TrainConfig(lr=lr, batch_size=batch_size, reg=reg)
  body = epoch_body(model, hparams, cfg, optax.adam(lr), n_items, bound, n_pairs)
  if n_models == 1:  # vmap would turn the sampler's lax.cond into computing both branches
    batched = body

    def body(*args):
      out = batched(*jax.tree.map(lambda x: x[0], args))
      return jax.tree.map(lambda x: x[None], out)
  elif n_models:
    body = jax.vmap(body)
  return jax.jit(body, donate_argnums=(0, 1))


def epoch_body(model: Recommender, hparams: ModelConfig, cfg: TrainConfig,
               optimizer: optax.GradientTransformation, n_items: int, max_degree: int,
               n_pairs: int) -> Callable:
  """An epoch, not jitted: (params, opt_state, key, order_N, graph, avoid) -> (params,
  opt_state, meas).

  `order_N` is the epoch's shuffle of the pair indices, drawn on the host (`shuffle`):
  XLA's CPU sort makes jax.random.permutation cost more than the epoch's gradients.
  Negatives are drawn outside the pairs of `avoid` (a Graph; default `graph`), whose
  largest user degree max_degree must bound.
  """
  n_steps = max(1, -(-n_pairs // cfg.batch_size))
  padded = n_steps * cfg.batch_size
  search = negatives.search_steps(max_degree)
  loss_fn = functools.partial(bpr_loss, model, hparams, cfg.reg)

  def epoch(params, opt_state, neg_key, order_N, graph: Graph, avoid: Graph | None = None):
    avoid = graph if avoid is None else avoid
    order = jnp.concatenate([order_N, jnp.zeros(padded - n_pairs, order_N.dtype)])
    weight = (jnp.arange(padded) < n_pairs).astype(jnp.float32)
    batches = (order.reshape(n_steps, cfg.batch_size), weight.reshape(n_steps, cfg.batch_size),
               jax.random.split(neg_key, n_steps))

    def step(carry, batch):
      params, opt_state = carry
      idx_B, weight_B, k = batch
      users_B = graph.users_E[idx_B]
      pos_B = graph.items_E[idx_B]
      neg_B = negatives.sample(k, users_B, avoid.indptr_U1, avoid.items_E, n_items, search,
                               bits_UxW=avoid.pos_bits_UxW)
      # A user who saw (or must avoid) every item has no negative: no loss on its pairs.
      degree_B = avoid.indptr_U1[users_B + 1] - avoid.indptr_U1[users_B]
      weight_B = weight_B * (degree_B < n_items)
      loss, grads = jax.value_and_grad(loss_fn)(params, graph, users_B, pos_B, neg_B, weight_B)
      updates, opt_state = optimizer.update(grads, opt_state, params)
      return (optax.apply_updates(params, updates), opt_state), loss

    (params, opt_state), losses = jax.lax.scan(step, (params, opt_state), batches)
    return params, opt_state, {"loss": losses.mean()}

  return epoch


def matched_to(cfg: TrainConfig, n_full: int, n_subset: int) -> TrainConfig:
  """The schedule for training on n_subset pairs with as many optimiser steps between
  validations, before the first possible stop, and in all, as cfg gives on n_full pairs.

  An epoch of a 25% set takes a quarter of the steps: with the full-data schedule its
  evaluator would stop inside BPR-MF's early plateau (after a quarter of the steps).
  """
  if n_subset < 1:
    raise ValueError("cannot train on an empty set of pairs")
  f = max(1, round(n_full / n_subset))
  return dataclasses.replace(cfg, min_epochs=cfg.min_epochs * f, max_epochs=cfg.max_epochs * f,
                             eval_every=cfg.eval_every * f)


@dataclasses.dataclass
class FitResult:
  params: dict
  best_epoch: int
  epochs: int
  best_valid: dict
  history: list  # one dict per evaluation: epoch, loss, valid metrics, seconds
  train_seconds: float
  graph: Graph  # the training graph the params were fitted on
  snapshots: dict = dataclasses.field(default_factory=dict)  # epoch -> params (keep_epochs)


def shuffle(seed: int, epoch: int, n_pairs: int) -> np.ndarray:
  """The epoch's order of the training pairs: [n_pairs] int32, fixed by (seed, epoch)."""
  return np.random.default_rng([seed, epoch]).permutation(n_pairs).astype(np.int32)


VALID_SAMPLE_SEED = 20240601


def validation_target(valid: Interactions, n_users: int) -> Interactions:
  """The validation pairs early stopping reads: all of them (n_users = 0), else those of
  a fixed random sample of n_users users with validation pairs (the same for every seed
  and set, so that sets are stopped on the same users)."""
  have_U = np.flatnonzero(np.diff(valid.indptr) > 0)
  if not n_users or n_users >= have_U.size:
    return valid
  rng = np.random.default_rng(VALID_SAMPLE_SEED)
  chosen_U = np.zeros(valid.n_users, bool)
  chosen_U[rng.choice(have_U, n_users, replace=False)] = True
  return valid.subset(chosen_U[valid.users()])


def should_stop(epoch: int, best_epoch: int, cfg: TrainConfig) -> bool:
  """Patience counted in evaluations, never before min_epochs, no rounding of scores."""
  return epoch >= cfg.min_epochs and (epoch - best_epoch) >= cfg.patience * cfg.eval_every


def fit(model: Recommender, data: DatasetSplit, *, hparams: ModelConfig = ModelConfig(),
        cfg: TrainConfig = TrainConfig(), seed: int = 0, train: Interactions | None = None,
        exclude_valid: tuple = (), avoid: Interactions | None = None,
        progress: Callable[[dict], None] | None = None, keep_epochs=()) -> FitResult:
  """Trains `model` on `train` (default data.train) to the best validation stop_metric.

  Validation ranks all items with the user's `data.train` items masked (plus
  `exclude_valid`), so a model trained on a subset is judged as at serving time. While
  training it ranks only the stop metric's top K (`stop_cutoff`); the best epoch's
  parameters get every metric at the end (`best_valid`).
  Negatives are drawn outside the user's pairs in `train` and, if given, in `avoid`
  (e.g. false negatives flagged by a proxy model). The params after each epoch of
  `keep_epochs` that training reaches are kept in `snapshots` (a trajectory's checkpoints).
  """
  train = data.train if train is None else train
  # The dense adjacency serves propagation only, the positives bitmap negative sampling only.
  graph = build_graph(train, dense_limit=DENSE_ADJ_LIMIT if model.propagates else 0,
                      bitmap_limit_bits=BITMAP_LIMIT_BITS if model.trainable else 0)
  t0 = time.perf_counter()
  if not model.trainable:
    params = model.fit(train, hparams)
    valid = evaluate_model(model, params, graph, hparams, history=train,
                           exclude=(data.train, *exclude_valid), target=data.valid,
                           block_users=cfg.eval_block_users)
    seconds = time.perf_counter() - t0
    return FitResult(params, 0, 0, valid, [{"epoch": 0, "valid": valid, "seconds": seconds}],
                     seconds, graph)

  key = jax.random.key(seed)
  params = model.init(jax.random.fold_in(key, 0), train.n_users, train.n_items, hparams)
  optimizer = optax.adam(cfg.lr)
  opt_state = optimizer.init(params)
  avoid_graph = None
  if avoid is not None:
    avoid = train.union(avoid)
    avoid_graph = build_graph(avoid, dense_limit=0)
  max_degree = int((train if avoid is None else avoid).user_degrees().max(initial=0))
  epoch_fn = compiled_epoch(model, hparams, cfg.batch_size, cfg.reg, cfg.lr, train.n_items,
                            max_degree, train.nnz)
  valid_target = validation_target(data.valid, cfg.valid_users)

  def validate(params, ks=evaluate_lib.DEFAULT_KS):
    return evaluate_model(model, params, graph, hparams, history=train,
                          exclude=(data.train, *exclude_valid), target=valid_target, ks=ks,
                          block_users=cfg.eval_block_users)

  best = (-np.inf, 0, None)  # score, epoch, params
  history, snapshots = [], {}
  epoch = 0
  for epoch in range(1, cfg.max_epochs + 1):
    params, opt_state, meas = epoch_fn(params, opt_state, jax.random.fold_in(key, epoch),
                                       shuffle(seed, epoch, train.nnz), graph, avoid_graph)
    if epoch in keep_epochs:
      snapshots[epoch] = jax.tree.map(jnp.copy, params)
    if epoch % cfg.eval_every and epoch != cfg.max_epochs:
      continue
    valid = validate(params, (stop_cutoff(cfg.stop_metric),))
    row = {"epoch": epoch, "loss": float(meas["loss"]), "valid": valid,
           "seconds": time.perf_counter() - t0}
    history.append(row)
    if not np.isfinite(row["loss"]):
      raise FloatingPointError(f"training loss became {row['loss']} at epoch {epoch}")
    if valid[cfg.stop_metric] > best[0]:
      best = (valid[cfg.stop_metric], epoch, jax.tree.map(jnp.copy, params))
    if progress is not None:
      progress(dict(row, best_epoch=best[1]))
    if should_stop(epoch, best[1], cfg):
      break
  best_valid = validate(best[2])  # every metric and K, once
  return FitResult(params=best[2], best_epoch=best[1], epochs=epoch, best_valid=best_valid,
                   history=history, train_seconds=time.perf_counter() - t0, graph=graph,
                   snapshots=snapshots)


def evaluate_model(model: Recommender, params, graph: Graph, hparams: ModelConfig, *,
                   history: Interactions, exclude, target: Interactions,
                   ks=(5, 10, 20), block_users: int = 256, mesh=None, **kwargs) -> dict:
  """Full-ranking metrics of a fitted model; kwargs go to evaluate.evaluate (groups,
  popularity_I). With a `mesh`, the scored user blocks are split along users over its
  devices, and so are a dense adjacency's rows and the user table when the model
  propagates (LightGCN: users' rows of A times items, Aᵀ times users reduced across)."""
  if mesh is not None and graph.adj_UxI.size and "user" in params:
    n_rows = -(-graph.adj_UxI.shape[0] // mesh.size) * mesh.size  # zero rows: no effect
    split = sharding.split(mesh)
    graph = graph._replace(adj_UxI=sharding.put(
        sharding.pad_to(sharding.to_host(graph.adj_UxI), n_rows), split))
    params = {**params, "user": sharding.put(
        sharding.pad_to(sharding.to_host(params["user"]), n_rows), split)}
  reps = _represent(model, hparams)(params, graph)
  return evaluate_lib.evaluate(model.score, reps, history=history, exclude=exclude,
                               target=target, ks=ks, block_users=block_users, mesh=mesh,
                               **kwargs)


@functools.cache
def _represent(model: Recommender, hparams: ModelConfig):
  return jax.jit(functools.partial(model.represent, hparams=hparams))
