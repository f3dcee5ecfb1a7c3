"""The whole condensation job: proxy, candidate pool, outer loop, final set, evaluation.

`run` returns the report (a dict ready for JSON): for every seed the condensed set is
built, exported and judged by the evaluator models, beside the same evaluators trained on
all training pairs (cached across runs) and on same-size baselines.
"""

from __future__ import annotations

import dataclasses
import hashlib
import pathlib
import time
from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np

from jaxcond import cache, condenser, datasets, export, models, pool as pool_lib, report
from jaxcond import train as train_lib
from jaxcond.graph import build_graph
from jaxcond.split import DatasetSplit

BASELINES = ("random", "zero_update")
HEADLINE = ("ndcg@10", "recall@10", "ndcg@20", "recall@20", "ndcg@5", "recall@5")


@dataclasses.dataclass(frozen=True)
class JobConfig:
  condense: condenser.CondenseConfig = condenser.CondenseConfig()
  seeds: tuple = (0, 1, 2)
  eval_models: tuple = ("bpr_mf",)
  rho: float = 0.9  # pseudo pairs per user: max(pseudo_min, floor(rho * |I_u|)); 0: none
  pseudo_min: int = 5
  proxy_seed: int = 0
  baselines: tuple = BASELINES
  row_len: int = 16

  def __post_init__(self):
    if not self.seeds:
      raise ValueError("need at least one seed")
    for name in self.eval_models:
      models.get_model(name)
    unknown = set(self.baselines) - set(BASELINES)
    if unknown:
      raise ValueError(f"unknown baselines {sorted(unknown)}; known: {', '.join(BASELINES)}")
    if self.rho < 0 or self.pseudo_min < 0:
      raise ValueError(f"need rho >= 0 and pseudo_min >= 0; got {self.rho}, {self.pseudo_min}")


def fit_full(model_name: str, data: DatasetSplit, protocol: dict, *,
             model_cfg: models.ModelConfig, train_cfg: train_lib.TrainConfig, seed: int,
             cache_dir=None, log: Callable[[str], None] = print) -> tuple[dict | None, dict]:
  """The evaluator trained on all training pairs: (params, metrics), cached on disk under
  the data checksum, the settings and the training code."""
  settings = {"data": protocol["data_checksum"], "model": model_name, "seed": seed,
              "model_cfg": dataclasses.asdict(model_cfg),
              "train_cfg": dataclasses.asdict(train_cfg), "code": _code_version()}
  path = (datasets.resolve_cache_dir(cache_dir) / "fits"
          / f"{model_name}-{cache.settings_key(settings)}.npz")
  if path.exists():
    try:
      params, meta = cache.load_arrays(path)
      log(f"full-data {model_name} (seed {seed}): cached {path}")
      return (params or None), meta["metrics"]
    except Exception as e:  # noqa: BLE001 - a bad cache file is rebuilt, and said so
      log(f"{e}; retraining")
  log(f"full-data {model_name} (seed {seed}): training")
  params, metrics = evaluate_on(model_name, data, data.train, model_cfg=model_cfg,
                                train_cfg=train_cfg, seed=seed, log=log)
  arrays = {k: np.asarray(v) for k, v in params.items()} if isinstance(params, dict) else {}
  try:
    cache.save_arrays(path, arrays, {"metrics": metrics, "settings": settings})
  except OSError as e:
    log(f"could not cache the full-data run at {path} ({e})")
  return (arrays or None), metrics


def evaluate_on(model_name: str, data: DatasetSplit, train, *, model_cfg, train_cfg,
                seed: int, log: Callable[[str], None] | None = None) -> tuple[object, dict]:
  """Trains on `train` (a subset, with a step-matched schedule) and tests with all
  original training and validation items masked."""
  model = models.get_model(model_name)
  cfg = train_lib.matched_to(train_cfg, data.train.nnz, train.nnz)

  def progress(row):
    if log is not None and (row["epoch"] // cfg.eval_every) % 10 == 0:
      log(f"  {model_name} epoch {row['epoch']}: valid ndcg@10 {row['valid']['ndcg@10']:.4f} "
          f"(best epoch {row['best_epoch']}, {row['seconds']:.0f}s)")

  fit = train_lib.fit(model, data, hparams=model_cfg, cfg=cfg, seed=seed, train=train,
                      progress=progress)
  test = train_lib.evaluate_model(model, fit.params, fit.graph, model_cfg, history=data.train,
                                  exclude=(data.train, data.valid), target=data.test,
                                  block_users=cfg.eval_block_users)
  return fit.params, {"test": test, "valid": fit.best_valid, "n_train": train.nnz,
                      "best_epoch": fit.best_epoch, "epochs": fit.epochs,
                      "train_seconds": fit.train_seconds}


def build_pool(data: DatasetSplit, proxy: dict, cfg: JobConfig) -> pool_lib.Pool:
  """Original pairs plus the proxy's top unseen items per user (pre-augmentation)."""
  if cfg.rho == 0:
    return pool_lib.build_pool(data.train)
  k_U = pool_lib.pseudo_counts(data.train, cfg.rho, cfg.pseudo_min)
  user_UxD, item_IxD = jnp.asarray(proxy["user"]), jnp.asarray(proxy["item"])
  pu, pi = pool_lib.top_unseen(lambda users_B: user_UxD[users_B] @ item_IxD.T, data.train, k_U)
  return pool_lib.build_pool(data.train, pseudo_users=pu, pseudo_items=pi)


def _summary(rows: list[dict]) -> dict:
  """Mean, std and worst (min) over seeds of every test metric."""
  keys = [k for k in rows[0] if k != "n_users"]
  values = {k: np.array([r[k] for r in rows]) for k in keys}
  return {"mean": {k: float(v.mean()) for k, v in values.items()},
          "std": {k: float(v.std()) for k, v in values.items()},
          "worst": {k: float(v.min()) for k, v in values.items()}}


def _retention(part: list[dict], full: list[dict]) -> dict:
  """Per-seed ratios metric(S) / metric(full), summarised over seeds."""
  ratios = [{k: s[k] / f[k] if f[k] > 0 else float("nan") for k in HEADLINE}
            for s, f in zip(part, full)]
  out = _summary(ratios)
  return {**out["mean"], "std": out["std"], "worst": out["worst"]}


def run(data: DatasetSplit, protocol: dict, cfg: JobConfig, *, model_cfg: models.ModelConfig,
        train_cfg: train_lib.TrainConfig, out_dir, cache_dir=None,
        log: Callable[[str], None] = print) -> dict:
  """Condenses once per seed, exports, evaluates; returns the report."""
  out_dir = pathlib.Path(out_dir)
  n_train = data.train.nnz
  t0 = time.perf_counter()
  proxy, proxy_metrics = fit_full("bpr_mf", data, protocol, model_cfg=model_cfg,
                                  train_cfg=train_cfg, seed=cfg.proxy_seed,
                                  cache_dir=cache_dir, log=log)
  proxy_seconds = proxy_metrics["train_seconds"]
  pool = build_pool(data, proxy, cfg)
  rows = pool_lib.rows_of(pool, cfg.row_len)
  sizes = condenser.budget_of(pool, n_train, cfg.condense)
  graph = build_graph(data.train, dense_limit=0)
  max_degree = int(data.train.user_degrees().max(initial=0))
  pool_seconds = time.perf_counter() - t0
  log(f"pool: {pool.n_original:,} original + {pool.size - pool.n_original:,} pseudo pairs; "
      f"budget {sizes['total']:,} pairs = {sizes['total'] / n_train:.3f} N "
      f"({cfg.condense.accounting} accounting)")

  per_seed, snr, histories, files = [], [], {}, {}
  evals = {m: {"condensed": [], "full": [], **{b: [] for b in cfg.baselines}}
           for m in cfg.eval_models}
  for seed in cfg.seeds:
    ccfg = dataclasses.replace(cfg.condense, seed=seed)
    t_seed = time.perf_counter()
    sdata = condenser.step_data(pool, rows, proxy, data.valid, graph, sizes, ccfg, max_degree)
    state0 = condenser.init_state(sdata, ccfg)
    key = jax.random.key(seed)
    signal_start = condenser.reward_signal(state0.logits_C, key, sdata, ccfg, model_cfg, max_degree)

    def progress(row, seed=seed):
      log(f"seed {seed} outer {row['step']:5d}/{ccfg.outer_steps}  reward {row['reward']:.5f}"
          f"  (std over K {row['reward_std']:.5f})  E|S| {row['expected_free']:,.0f}"
          f"  {row['seconds']:.1f}s")

    result = condenser.condense(pool, sdata, ccfg, hparams=model_cfg, max_degree=max_degree,
                                sizes=sizes, progress=progress,
                                log_every=max(1, ccfg.outer_steps // 20))
    signal_end = condenser.reward_signal(jnp.asarray(result.logits_C), key, sdata, ccfg,
                                         model_cfg, max_degree)
    condense_seconds = time.perf_counter() - t_seed
    keep = result.keep_C
    condensed = pool.to_interactions(keep)
    files[seed] = export.export_condensed(out_dir / f"seed{seed}", "condensed", condensed,
                                          data.valid, data.test, pseudo_N=_pseudo_of(pool, keep))
    sets = {"condensed": condensed}
    if "random" in cfg.baselines:
      rng = np.random.default_rng([seed, 11])
      sets["random"] = data.train.subset(rng.permutation(n_train) < condensed.nnz)
    if "zero_update" in cfg.baselines:
      sets["zero_update"] = pool.to_interactions(
          condenser.select(state0.logits_C, pool, sizes, ccfg, seed))
    for model_name in cfg.eval_models:
      for name, subset in sets.items():
        _, metrics = evaluate_on(model_name, data, subset, model_cfg=model_cfg,
                                 train_cfg=train_cfg, seed=seed, log=log)
        evals[model_name][name].append(metrics)
        log(f"seed {seed} {model_name} on {name} ({subset.nnz / n_train:.3f} N): test "
            f"ndcg@10 {metrics['test']['ndcg@10']:.4f} recall@10 "
            f"{metrics['test']['recall@10']:.4f} (best epoch {metrics['best_epoch']})")
      _, full = fit_full(model_name, data, protocol, model_cfg=model_cfg, train_cfg=train_cfg,
                         seed=seed, cache_dir=cache_dir, log=log)
      evals[model_name]["full"].append(full)
    per_seed.append({"seed": seed, "size": int(keep.sum()), "size_fraction": keep.sum() / n_train,
                     "pseudo_kept": int(pool.pseudo_C[keep].sum()),
                     "condense_seconds": condense_seconds, "timing": result.seconds})
    snr.append({"seed": seed, "start": signal_start, "end": signal_end})
    histories[seed] = result.history

  models_report = {}
  for model_name, ev in evals.items():
    full_tests = [m["test"] for m in ev["full"]]
    entry = {"full": {"test": _summary(full_tests)["mean"], "per_seed": ev["full"]},
             "condensed": {"test": _summary([m["test"] for m in ev["condensed"]])["mean"],
                           "per_seed": ev["condensed"]},
             "retention": _retention([m["test"] for m in ev["condensed"]], full_tests)}
    entry["baselines"] = {
        b: {"test": _summary([m["test"] for m in ev[b]])["mean"],
            "retention": _retention([m["test"] for m in ev[b]], full_tests),
            "size_fraction": float(np.mean([m["n_train"] for m in ev[b]])) / n_train,
            "per_seed": ev[b]} for b in cfg.baselines}
    models_report[model_name] = entry
  head = models_report[cfg.eval_models[0]]
  sizes_kept = np.array([r["size"] for r in per_seed])
  return {
      "ratio": cfg.condense.ratio,
      "accounting": cfg.condense.accounting,
      "size_fraction": float(sizes_kept.mean() / n_train),
      "size_fraction_of_candidates": float(sizes_kept.mean() / pool.size),
      "condense_seconds": float(np.mean([r["condense_seconds"] for r in per_seed])),
      "proxy_seconds": proxy_seconds,
      "pool_seconds": pool_seconds,
      "full": {"test": head["full"]["test"]},
      "condensed": {"test": head["condensed"]["test"]},
      "retention": head["retention"],
      "baselines": head["baselines"],
      "models": models_report,
      "seeds": list(cfg.seeds),
      "per_seed": per_seed,
      "reward_signal": snr,
      "sizes": {**sizes, "pseudo_candidates": pool.size - pool.n_original},
      "config": {"job": _jsonable(dataclasses.asdict(cfg)),
                 "model_cfg": dataclasses.asdict(model_cfg),
                 "train_cfg": dataclasses.asdict(train_cfg),
                 "evaluator_schedule": "train.matched_to: steps-matched to the full-data run"},
      "files": {str(k): v for k, v in files.items()},
      "history": {str(k): v for k, v in histories.items()},
      "protocol": protocol,
      "versions": report.versions(),
  }


def _pseudo_of(pool: pool_lib.Pool, keep_C: np.ndarray) -> np.ndarray:
  """Pseudo flags of the kept pairs in the (user, item) order of pool.to_interactions."""
  users, items, pseudo = pool.users_C[keep_C], pool.items_C[keep_C], pool.pseudo_C[keep_C]
  return pseudo[np.lexsort((items, users))]


def _jsonable(x):
  if isinstance(x, dict):
    return {k: _jsonable(v) for k, v in x.items()}
  if isinstance(x, (list, tuple)):
    return [_jsonable(v) for v in x]
  return x


def _code_version() -> str:
  h = hashlib.sha256()
  for name in ("train.py", "mf.py", "lightgcn.py", "ease.py", "negatives.py", "evaluate.py",
               "graph.py", "models.py"):
    h.update((pathlib.Path(__file__).parent / name).read_bytes())
  return h.hexdigest()[:16]
