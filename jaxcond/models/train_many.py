"""Same-size training sets fitted together: one jitted epoch vmapped over models, early
stopping and the best parameters kept per model.

Model m draws exactly what `train.fit(train=trains[m], seed=seeds[m])` draws (its init,
shuffles and negatives come from its own seed), so the results equal fitting the sets one
by one, up to float rounding; a test holds the two side by side.
"""

from __future__ import annotations

import concurrent.futures
import functools
import hashlib
import os
import time
from typing import Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxcond.data.interactions import Interactions
from jaxcond.data.split import DatasetSplit
from jaxcond.models import ModelConfig, Recommender
from jaxcond.models import evaluate as evaluate_lib
from jaxcond.models import train as train_lib
from jaxcond.models.graph import BITMAP_LIMIT_BITS, DENSE_ADJ_LIMIT, Graph, build_graph


def default_group() -> int | None:
  """Models per program: all of them on an accelerator; one on a CPU, where a vmapped
  epoch of several models measured slower per model than one at a time (the stacked
  tables fall out of cache; benchmarks/RESULTS.md, "Many evaluators")."""
  return 1 if jax.default_backend() == "cpu" else None


def default_workers() -> int:
  """Programs run at once: two threads on a CPU of two or more cores (one model each
  measured 1.35x one at a time on ML-100k's 25% sets, benchmarks/many_evaluators.py),
  else one."""
  return min(2, os.cpu_count() or 1) if jax.default_backend() == "cpu" else 1


def fit_many(model: Recommender, data: DatasetSplit, trains: Sequence[Interactions],
             seeds: Sequence[int], *, hparams: ModelConfig = ModelConfig(),
             cfg: train_lib.TrainConfig = train_lib.TrainConfig(),
             avoids: Sequence[Interactions | None] | None = None, exclude_valid: tuple = (),
             group: int | None = -1, workers: int = -1,
             progress: Callable[[int, dict], None] | None = None,
             memo: dict | None = None) -> list[train_lib.FitResult]:
  """`train.fit` of each (trains[m], seeds[m], avoids[m]), `group` models per program.

  All sets must have the same number of pairs. group=None puts all in one program; the
  default (-1) takes `default_group()`. `workers` programs run at once, in threads (-1:
  `default_workers()`). progress(m, row) sees each model's validation rows. With a `memo`
  (a dict kept across calls), a fit whose inputs (fit_key) were fitted before, or appear
  twice in this call, is read from it, not trained again, and every new fit is added to it.
  """
  n = len(trains)
  avoids = [None] * n if avoids is None else list(avoids)
  _check(model, data, trains, seeds, avoids)
  if memo is not None:
    keys = [fit_key(model, data, t, s, a, hparams, cfg, exclude_valid)
            for t, s, a in zip(trains, seeds, avoids)]
    first = {}  # each key's first model: equal inputs within the call are trained once
    for m in range(n):
      first.setdefault(keys[m], m)
    todo = [m for k, m in first.items() if k not in memo]
    if todo:
      fitted = fit_many(model, data, [trains[m] for m in todo], [seeds[m] for m in todo],
                        hparams=hparams, cfg=cfg, avoids=[avoids[m] for m in todo],
                        exclude_valid=exclude_valid, group=group, workers=workers,
                        progress=None if progress is None else
                        (lambda j, row: progress(todo[j], row)))
      memo.update(zip((keys[m] for m in todo), fitted))
    return [memo[k] for k in keys]
  group = default_group() if group == -1 else group
  group = n if group is None else max(1, int(group))
  parts = [list(range(s, min(s + group, n))) for s in range(0, n, group)]

  def run(part):
    return _fit_group(model, data, [trains[m] for m in part], [seeds[m] for m in part],
                      [avoids[m] for m in part], hparams, cfg, exclude_valid,
                      None if progress is None else
                      (lambda j, row, part=part: progress(part[j], row)))

  workers = default_workers() if workers == -1 else max(1, workers)
  with concurrent.futures.ThreadPoolExecutor(workers) as pool:
    fitted = list(pool.map(run, parts))
  return [fit for part_fits in fitted for fit in part_fits]


def fit_key(model: Recommender, data: DatasetSplit, train: Interactions, seed: int,
            avoid: Interactions | None, hparams: ModelConfig, cfg: train_lib.TrainConfig,
            exclude_valid: tuple = ()) -> str:
  """A digest of everything a fit's numbers depend on: the model, its settings, the seed,
  the pairs it trains on, its negatives avoid (as _fit_group unites them), it is validated
  on and has masked (empty exclusions change nothing, so they are left out)."""
  h = hashlib.sha256(repr((model.name, hparams, cfg, int(seed))).encode())
  parts = [data.train, data.valid, train, train if avoid is None else train.union(avoid)]
  parts += [x for x in exclude_valid if x.nnz]
  for i, x in enumerate(parts):
    h.update(f"|{i}:{x.n_users}x{x.n_items}|".encode())
    h.update(np.ascontiguousarray(x.indptr, np.int64).tobytes())
    h.update(np.ascontiguousarray(x.indices, np.int32).tobytes())
  return h.hexdigest()


def _check(model, data, trains, seeds, avoids) -> None:
  if not trains:
    raise ValueError("fit_many needs at least one training set")
  if not model.trainable:
    raise ValueError(f"{model.name} is fitted in closed form: use train.fit")
  if len(seeds) != len(trains) or len(avoids) != len(trains):
    raise ValueError(f"{len(trains)} training sets, {len(seeds)} seeds and {len(avoids)} "
                     f"avoid sets: need one of each per set")
  sizes = sorted({t.nnz for t in trains})
  if len(sizes) > 1:
    raise ValueError(f"fit_many trains same-size sets together; got sizes {sizes}")
  for t in trains:
    if (t.n_users, t.n_items) != (data.train.n_users, data.train.n_items):
      raise ValueError(f"a training set has shape ({t.n_users}, {t.n_items}), the data has "
                       f"({data.train.n_users}, {data.train.n_items})")


def _fit_group(model, data, trains, seeds, avoids, hparams, cfg, exclude_valid, progress):
  """Trains len(trains) models in one vmapped program until each has stopped."""
  n, nnz = len(trains), trains[0].nnz
  t0 = time.perf_counter()
  graphs = [build_graph(t, dense_limit=DENSE_ADJ_LIMIT if model.propagates else 0,
                        bitmap_limit_bits=BITMAP_LIMIT_BITS) for t in trains]
  avoid_sets = [t if a is None else t.union(a) for t, a in zip(trains, avoids)]
  avoid_graphs = _same_length([build_graph(a, dense_limit=0) for a in avoid_sets])
  max_degree = max(int(a.user_degrees().max(initial=0)) for a in avoid_sets)
  keys = [jax.random.key(s) for s in seeds]
  params = stack([model.init(jax.random.fold_in(k, 0), data.train.n_users,
                              data.train.n_items, hparams) for k in keys])
  opt_state = jax.vmap(optax.adam(cfg.lr).init)(params)
  valid_target = train_lib.validation_target(data.valid, cfg.valid_users)

  def validate(params_N, graphs_N, ks=evaluate_lib.DEFAULT_KS):
    return evaluate_lib.evaluate(model.score, _represent(model, hparams)(params_N, graphs_N),
                                 history=data.train, exclude=(data.train, *exclude_valid),
                                 target=valid_target, ks=ks, block_users=cfg.eval_block_users,
                                 stacked=True)
  rows = list(range(n))  # model of each stacked row
  live = set(rows)
  best = [(-np.inf, 0, None)] * n  # score, epoch, params
  history, stopped = [[] for _ in range(n)], [cfg.max_epochs] * n
  stacked = (stack(graphs), stack(avoid_graphs))
  for epoch in range(1, cfg.max_epochs + 1):
    epoch_fn = train_lib.compiled_epoch(model, hparams, cfg.batch_size, cfg.reg, cfg.lr,
                                        data.train.n_items, max_degree, nnz, len(rows))
    params, opt_state, meas = epoch_fn(
        params, opt_state, jnp.stack([jax.random.fold_in(keys[m], epoch) for m in rows]),
        np.stack([train_lib.shuffle(seeds[m], epoch, nnz) for m in rows]), *stacked)
    if epoch % cfg.eval_every and epoch != cfg.max_epochs:
      continue
    valids = validate(params, stacked[0], (train_lib.stop_cutoff(cfg.stop_metric),))
    losses = np.asarray(meas["loss"])
    for j, m in enumerate(rows):
      if m not in live:
        continue
      row = {"epoch": epoch, "loss": float(losses[j]), "valid": valids[j],
             "seconds": time.perf_counter() - t0}
      history[m].append(row)
      if not np.isfinite(row["loss"]):
        raise FloatingPointError(f"training loss of set {m} became {row['loss']} at epoch "
                                 f"{epoch}")
      if valids[j][cfg.stop_metric] > best[m][0]:
        best[m] = (valids[j][cfg.stop_metric], epoch, jax.tree.map(lambda x: x[j], params))
      if progress is not None:
        progress(m, dict(row, best_epoch=best[m][1]))
      if train_lib.should_stop(epoch, best[m][1], cfg):
        live.discard(m)
        stopped[m] = epoch
    if not live:
      break
    if len(live) <= len(rows) // 2:  # drop the stopped models: one compile per halving
      keep = [j for j, m in enumerate(rows) if m in live]
      params, opt_state, stacked = jax.tree.map(lambda x: x[np.array(keep)],
                                                (params, opt_state, stacked))
      rows = [rows[j] for j in keep]
  best_valids = validate(stack([b[2] for b in best]), stack(graphs))  # every metric and K
  return [train_lib.FitResult(params=best[m][2], best_epoch=best[m][1], epochs=stopped[m],
                              best_valid=best_valids[m], history=history[m],
                              train_seconds=history[m][-1]["seconds"], graph=graphs[m])
          for m in range(n)]


def stack(trees):
  """Pytrees with the same structure and shapes, stacked along a new leading axis."""
  return jax.tree.map(lambda *xs: jnp.stack(xs), *trees)


def _same_length(graphs: list[Graph]) -> list[Graph]:
  """Pads every graph's per-pair arrays to the longest (the padding lies past each CSR
  row's end, so no lookup reaches it)."""
  n = max(g.items_E.shape[0] for g in graphs)

  def pad(g: Graph) -> Graph:
    extra = n - g.items_E.shape[0]
    return g._replace(**{f: jnp.pad(getattr(g, f), (0, extra))
                         for f in ("users_E", "items_E", "weight_E", "by_item_E")})

  return [pad(g) for g in graphs]


@functools.cache
def _represent(model: Recommender, hparams: ModelConfig):
  return jax.jit(jax.vmap(functools.partial(model.represent, hparams=hparams)))
