"""The whole condensation job: proxy, candidate pool, outer loop, final set, evaluation.

`run` returns the report (a dict ready for JSON): for every seed the condensed set is
built, exported and judged by the evaluator models, beside the same evaluators trained on
all training pairs (cached across runs) and on same-size baselines; overall, for tail
and head users apart, and on the item side (coverage and popularity).
"""

from __future__ import annotations

import dataclasses
import hashlib
import pathlib
import shutil
import time
from typing import Callable, NamedTuple

import jax
import numpy as np

from jaxcond import baselines, cache, checkpoint, condenser, datasets, export, holdout, judge
from jaxcond import models
from jaxcond import pool as pool_lib, proxy as proxy_lib
from jaxcond import report, sharding, tail as tail_lib
from jaxcond import train as train_lib
from jaxcond.graph import Graph, build_graph
from jaxcond.interactions import Interactions
from jaxcond.split import DatasetSplit

# Same-size sets the condensed set is judged against: a random sample, the loop's own
# start, and the proxy heuristics that need no loop (baselines.py).
BASELINES = ("random", "zero_update", "proxy_top", "proxy_half")
PROXY_BASELINES = ("proxy_top", "proxy_half")
# The loop's start: the prior over every candidate, or over the originals (pseudo pairs
# out of reach) or the pseudo pairs alone, or a proxy heuristic's set (its pairs raised
# above every other candidate, each part keeping the prior's order); "best": whichever ranks the
# held-out validation pairs best (needs holdout_every > 0).
STARTS = ("prior", "originals", "pseudo", *PROXY_BASELINES, "best")
OUT_OF_REACH = 100.0  # a logit this far below the rest keeps probability ~0 for good
CHECKPOINT = "checkpoint.npz"
SNAPSHOTS = "snapshots"  # holdout: the outer loop's logits every holdout_every steps
START_SNAPSHOTS = "starts"  # start="best": each candidate start's logits and scores
SEED_RECORD = "record.json"
CONDENSED_RECORD = "condensed.json"  # a condensed seed's record before judging
SETS = "sets.npz"  # the sets a condensed seed is judged on
HEADLINE = ("ndcg@10", "recall@10", "ndcg@20", "recall@20", "ndcg@5", "recall@5")


@dataclasses.dataclass(frozen=True)
class JobConfig:
  condense: condenser.CondenseConfig = condenser.CondenseConfig()
  seeds: tuple = (0, 1, 2)
  eval_models: tuple = ("bpr_mf",)
  # The proxy's top unseen items per user, k_u = max(pseudo_min, floor(rho * |I_u|)):
  # pseudo candidates (augment) and false negatives that no negative sampling draws.
  rho: float = 0.9
  pseudo_min: int = 5
  augment: bool = True
  exclude_false_negatives: bool = True
  prior_scale: float = 10.0  # start logits from the proxy's within-user ranks; 0: uniform
  proxy_model: str = "bpr_mf"
  proxy_seed: int = 0
  # Long-tail compensation: keep (all pairs of tail users fixed), floor (every user keeps
  # >= ceil(tail_floor * |I_u|) pairs) or none. Tail users: <= tail_tau pairs, or the
  # least active tail_quantile of users when given.
  tail: str = "keep"
  tail_tau: int = 10
  tail_quantile: float | None = None
  tail_floor: float = 0.2
  report_tail_fraction: float = 0.2  # the "tail" group of every report
  baselines: tuple = BASELINES
  reward_signal: bool = True  # measure the reward's SNR at the start and end (costs time)
  row_len: int = 16
  # > 0: the reward sees the validation pairs less a held-out share; the logits saved
  # every holdout_every steps (and at 0 and the end) are each judged by the proxy model
  # trained on their set and ranking the held-out pairs; the best gives the set (holdout.py).
  holdout_every: int = 0
  holdout_share: float = 0.5
  start: str = "prior"  # see STARTS

  def __post_init__(self):
    if self.tail not in tail_lib.MODES:
      raise ValueError(f"tail must be one of {tail_lib.MODES}, got {self.tail!r}")
    if self.tail_quantile is not None and not 0 <= self.tail_quantile < 1:
      raise ValueError(f"tail_quantile must be in [0, 1), got {self.tail_quantile}")
    if not (0 <= self.tail_floor <= 1 and 0 < self.report_tail_fraction < 1):
      raise ValueError(f"need tail_floor in [0, 1] and report_tail_fraction in (0, 1); got "
                       f"{self.tail_floor}, {self.report_tail_fraction}")
    if self.prior_scale < 0:
      raise ValueError(f"prior_scale must be >= 0, got {self.prior_scale}")
    if not self.seeds:
      raise ValueError("need at least one seed")
    for name in (*self.eval_models, self.proxy_model):
      models.get_model(name)
    if not models.get_model(self.proxy_model).trainable:
      raise ValueError(f"the proxy must be an embedding model (bpr_mf, lightgcn), got "
                       f"{self.proxy_model!r}")
    unknown = set(self.baselines) - set(BASELINES)
    if unknown:
      raise ValueError(f"unknown baselines {sorted(unknown)}; known: {', '.join(BASELINES)}")
    if self.rho < 0 or self.pseudo_min < 0:
      raise ValueError(f"need rho >= 0 and pseudo_min >= 0; got {self.rho}, {self.pseudo_min}")
    if self.start not in STARTS:
      raise ValueError(f"start must be one of {STARTS}, got {self.start!r}")
    if self.start == "best" and not self.holdout_every:
      raise ValueError("start 'best' is chosen on held-out validation pairs: set "
                       "holdout_every > 0 too")
    if self.start in ("pseudo", "proxy_half") and not self.augment:
      raise ValueError(f"start {self.start!r} needs pseudo candidates (augment)")
    if self.holdout_every < 0 or not 0 < self.holdout_share < 1:
      raise ValueError(f"need holdout_every >= 0 and holdout_share in (0, 1); got "
                       f"{self.holdout_every}, {self.holdout_share}")


def fit_full(model_name: str, data: DatasetSplit, protocol: dict, *,
             model_cfg: models.ModelConfig, train_cfg: train_lib.TrainConfig, seed: int,
             tail_fraction: float = 0.2, cache_dir=None,
             log: Callable[[str], None] = print) -> tuple[dict | None, dict]:
  """The evaluator trained on all training pairs: (params, metrics), cached on disk under
  the data checksum, the settings and the training code."""
  settings = {"data": protocol["data_checksum"], "model": model_name, "seed": seed,
              "tail_fraction": tail_fraction,
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
                                train_cfg=train_cfg, seed=seed, tail_fraction=tail_fraction,
                                log=log)
  arrays = {k: np.asarray(v) for k, v in params.items()} if isinstance(params, dict) else {}
  try:
    cache.save_arrays(path, arrays, {"metrics": metrics, "settings": settings})
  except OSError as e:
    log(f"could not cache the full-data run at {path} ({e})")
  return (arrays or None), metrics


def evaluate_on(model_name: str, data: DatasetSplit, train, *, model_cfg, train_cfg,
                seed: int, avoid: Interactions | None = None, tail_fraction: float = 0.2,
                log: Callable[[str], None] | None = None, mesh=None) -> tuple[object, dict]:
  """Trains on `train` (a subset, with a step-matched schedule; negatives also outside
  `avoid`) and tests with all original training and validation items masked: overall,
  per user group (tail_fraction least active users, the rest), and item coverage."""
  model = models.get_model(model_name)
  cfg = train_lib.matched_to(train_cfg, data.train.nnz, train.nnz)

  def progress(row):
    if log is not None and (row["epoch"] // cfg.eval_every) % 10 == 0:
      log(f"  {model_name} epoch {row['epoch']}: valid ndcg@10 {row['valid']['ndcg@10']:.4f} "
          f"(best epoch {row['best_epoch']}, {row['seconds']:.0f}s)")

  fit = train_lib.fit(model, data, hparams=model_cfg, cfg=cfg, seed=seed, train=train,
                      avoid=avoid, progress=progress)
  return fit.params, judge.test_metrics(model_name, data, fit, model_cfg=model_cfg,
                                        train_cfg=cfg, n_train=train.nnz,
                                        tail_fraction=tail_fraction, mesh=mesh)


def build_pool(data: DatasetSplit, proxy: dict,
               cfg: JobConfig) -> tuple[pool_lib.Pool, Interactions | None]:
  """Original pairs, plus the proxy's top unseen items per user (pre-augmentation), with
  the tail users' pairs fixed (tail="keep"); and the false negatives (or None)."""
  unseen = None
  if cfg.augment or cfg.exclude_false_negatives:
    unseen = proxy_lib.top_unseen_pairs(data.train, proxy, cfg.rho, cfg.pseudo_min)
  fixed = None
  if cfg.tail == "keep":
    fixed = np.flatnonzero(tail_lib.tail_users(data.train, tau=cfg.tail_tau,
                                               quantile=cfg.tail_quantile))
  pseudo = {"pseudo_users": unseen.users(), "pseudo_items": unseen.indices} if cfg.augment else {}
  pool = pool_lib.build_pool(data.train, fixed_users=fixed, **pseudo)
  return pool, (unseen if cfg.exclude_false_negatives else None)


class LoopInputs(NamedTuple):
  pool: pool_lib.Pool
  false_neg: Interactions | None
  rows: pool_lib.Rows
  sizes: dict  # condenser.budget_of
  graph: Graph  # the pairs inner negatives avoid: training pairs and false negatives
  max_degree: int  # the largest user degree of that graph
  prior: np.ndarray | None  # the start's logits (None: a uniform start)


def loop_inputs(data: DatasetSplit, proxy: dict, cfg: JobConfig) -> LoopInputs:
  """The candidate pool and what the outer loop reads of it, besides validation pairs."""
  pool, false_neg = build_pool(data, proxy, cfg)
  avoid = data.train if false_neg is None else data.train.union(false_neg)
  prior = None
  if cfg.prior_scale > 0:
    prior = proxy_lib.prior_logits(pool, proxy_lib.scores_of(proxy, pool.users_C, pool.items_C),
                                   cfg.prior_scale)
  return LoopInputs(pool, false_neg, pool_lib.rows_of(pool, cfg.row_len),
                    condenser.budget_of(pool, data.train.nnz, cfg.condense),
                    build_graph(avoid, dense_limit=0), int(avoid.user_degrees().max(initial=0)),
                    prior)


def initial_logits(prior_C: np.ndarray | None, pool: pool_lib.Pool, kind: str,
                   heuristic_C: np.ndarray | None = None) -> np.ndarray | None:
  """The start's logits [C]: the prior (None, the uniform start, without one), or it with
  the pseudo pairs ("originals") or the original pairs ("pseudo") pushed out of reach, or
  with a heuristic's pairs (bool heuristic_C, for proxy_top / proxy_half) lifted above
  all others, so that the start's selected set is the heuristic's and the loop can still
  swap pairs."""
  if kind == "prior":
    return prior_C
  base = np.zeros(pool.size, np.float32) if prior_C is None else np.asarray(prior_C, np.float32)
  if kind in PROXY_BASELINES:
    if heuristic_C is None or heuristic_C.shape != (pool.size,):
      raise ValueError(f"start {kind!r} needs its set as a mask over the {pool.size} "
                       "candidates")
    lift = float(base.max() - base.min()) + 1.0 if base.size else 1.0  # above the prior's span
    return np.where(heuristic_C, base + lift, base).astype(np.float32)
  drop = pool.pseudo_C if kind == "originals" else ~pool.pseudo_C
  return np.where(drop, base - OUT_OF_REACH, base).astype(np.float32)


def heuristic_mask(pool: pool_lib.Pool, subset: Interactions) -> np.ndarray:
  """bool [C]: the candidates that are pairs of `subset` (original or pseudo)."""
  key_C = pool.users_C.astype(np.int64) * pool.n_items + pool.items_C
  key_N = subset.users().astype(np.int64) * pool.n_items + subset.indices
  return np.isin(key_C, key_N)


def start_kinds(cfg: JobConfig) -> list[str]:
  """The candidate starts `best` chooses among (those with pseudo pairs need them)."""
  return [k for k in STARTS[:-1] if cfg.augment or k not in ("pseudo", "proxy_half")]


def choose_start(logits_of: Callable[[str], np.ndarray | None], pool: pool_lib.Pool,
                 cfg: JobConfig, starts_dir: pathlib.Path, score_of: Callable, run_id: str,
                 log: Callable[[str], None]) -> dict:
  """Saves each candidate start's logits (logits_of(kind)) under starts_dir and scores its
  set on the held-out pairs (holdout.choose: read back on a rerun); the best is
  "chosen_step"."""
  kinds = start_kinds(cfg)
  for kind in kinds:
    if not (starts_dir / f"step{kind}.npz").exists():
      logits_C = logits_of(kind)
      holdout.save_snapshot(starts_dir / f"step{kind}.npz", np.zeros(pool.size, np.float32)
                            if logits_C is None else logits_C, 0, run_id)
  choice = holdout.choose(starts_dir, kinds, score_of, run_id, log=log, what="start")
  log(f"the loop starts from the '{choice['chosen_step']}' start (best on the held-out "
      "validation pairs)")
  return choice


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
        log: Callable[[str], None] = print, resume: bool = True,
        checkpoint_every: int = 20, mesh=None) -> dict:
  """Condenses once per seed, exports, evaluates; returns the report.

  Resumable: each seed's outer loop checkpoints to <out_dir>/seed<k>/checkpoint.npz every
  `checkpoint_every` steps, and a finished seed's record (<out_dir>/seed<k>/record.json) is
  read back instead of rerun, when made by the same settings and data (else ValueError).
  resume=False deletes both first. With a `mesh` (sharding.make_mesh) the outer loop runs
  split along users over its devices, in one process or several.
  """
  out_dir = pathlib.Path(out_dir)
  n_train = data.train.nnz
  tail_fraction = cfg.report_tail_fraction
  t0 = time.perf_counter()
  proxy_params, proxy_metrics = fit_full(cfg.proxy_model, data, protocol, model_cfg=model_cfg,
                                         train_cfg=train_cfg, seed=cfg.proxy_seed,
                                         tail_fraction=tail_fraction, cache_dir=cache_dir,
                                         log=log)
  proxy = proxy_lib.tables(cfg.proxy_model, proxy_params, data.train, model_cfg)
  proxy_seconds = proxy_metrics["train_seconds"]
  pool, false_neg, rows, sizes, graph, max_degree, prior = loop_inputs(data, proxy, cfg)
  floor_U = None
  if cfg.tail == "floor":
    free_U = np.bincount(pool.users_C[~pool.fixed_C], minlength=pool.n_users)
    floor_U = tail_lib.floor_counts(data.train.user_degrees(), free_U, cfg.tail_floor)
  pool_seconds = time.perf_counter() - t0
  log(f"pool: {pool.n_original:,} original + {pool.size - pool.n_original:,} pseudo pairs, "
      f"{sizes['fixed']:,} fixed (tail users); "
      f"{0 if false_neg is None else false_neg.nnz:,} false negatives avoided; "
      f"budget {sizes['total']:,} pairs = {sizes['total'] / n_train:.3f} N "
      f"({cfg.condense.accounting} accounting)")

  names = ("condensed", *cfg.baselines)
  # The subset evaluators' test ranking goes over the mesh in one process (across
  # processes every process evaluates on its own device: the same numbers).
  eval_mesh = mesh if mesh is not None and jax.process_count() == 1 else None
  seed_fp = checkpoint.fingerprint(
      protocol["data_checksum"], _jsonable({**fingerprinted(dataclasses.asdict(cfg)),
                                            "seeds": None}),
      dataclasses.asdict(model_cfg), dataclasses.asdict(train_cfg), _code_version(),
      "unpadded" if mesh is None else f"padded to {sharding.PAD}")

  def one_seed(seed: int) -> tuple[dict, dict]:
    """Condenses with `seed` and exports: the sets to judge {name: (subset, avoid)} and
    the seed's record (JSON-able) but its evaluations."""
    ccfg = dataclasses.replace(cfg.condense, seed=seed)
    t_seed = time.perf_counter()
    reward_valid, held_out = data.valid, None
    if cfg.holdout_every:
      reward_valid, held_out = holdout.split_valid(data.valid, cfg.holdout_share, seed)
    sdata = condenser.step_data(pool, rows, proxy, reward_valid, graph, sizes, ccfg,
                                max_degree, mesh=mesh)
    run_id = f"{seed_fp}-{seed}"  # names the loop's checkpoint and saved logits

    def score_of(logits_C):
      subset = pool.to_interactions(condenser.select(logits_C, pool, sizes, ccfg, seed,
                                                     floor_U))
      return holdout.held_out_score(data, subset, reward_valid, held_out,
                                    model_name=cfg.proxy_model, model_cfg=model_cfg,
                                    train_cfg=train_cfg, seed=seed, avoid=false_neg)

    def logits_of(kind):
      heuristic = None
      if kind in PROXY_BASELINES:  # the heuristic's set of the budget's size
        chosen = baselines.select(kind, data.train, sizes["total"], proxy=proxy,
                                  seed=seed).train
        heuristic = heuristic_mask(pool, chosen)
        if heuristic.sum() < chosen.nnz:
          log(f"start {kind}: {chosen.nnz - heuristic.sum():,} of its {chosen.nnz:,} pairs "
              "are not candidates (pseudo pairs beyond --rho); the prior fills their place")
      return initial_logits(prior, pool, kind, heuristic)

    start_choice = {"chosen_step": cfg.start}
    if cfg.start == "best":
      start_choice = choose_start(logits_of, pool, cfg,
                                  out_dir / f"seed{seed}" / START_SNAPSHOTS, score_of, run_id,
                                  log)
    start = condenser.init_state(sdata, ccfg, logits_of(start_choice["chosen_step"]),
                                 mesh=mesh)
    # A host copy (less padding): the outer loop donates `start`.
    start_logits = sharding.to_host(start.logits_C)[:pool.size].copy()
    key = jax.random.key(seed)
    signal = {}
    if cfg.reward_signal:
      signal["start"] = condenser.reward_signal(start_logits, key, sdata, ccfg, model_cfg,
                                                max_degree)

    def progress(row):
      log(f"seed {seed} outer {row['step']:5d}/{ccfg.outer_steps}  reward {row['reward']:.5f}"
          f"  (std over K {row['reward_std']:.5f})  E|S| {row['expected_free']:,.0f}"
          f"  {row['seconds']:.1f}s")

    ckpt = out_dir / f"seed{seed}" / CHECKPOINT
    if ckpt.exists():
      log(f"seed {seed}: resuming the outer loop from {ckpt}")
    snaps = out_dir / f"seed{seed}" / SNAPSHOTS
    snapshot = {}
    if cfg.holdout_every:
      if not ckpt.exists() or not (snaps / "step0.npz").exists():
        holdout.save_snapshot(snaps / "step0.npz", start_logits, 0, run_id)
      snapshot = {"snapshot_every": cfg.holdout_every,
                  "on_snapshot": lambda step, logits: holdout.save_snapshot(
                      snaps / f"step{step}.npz", logits, step, run_id)}
    result = condenser.condense(pool, sdata, ccfg, hparams=model_cfg, max_degree=max_degree,
                                state=start, sizes=sizes, floor_U=floor_U, progress=progress,
                                log_every=max(1, ccfg.outer_steps // 20), checkpoint_path=ckpt,
                                checkpoint_every=checkpoint_every,
                                run_id=run_id, mesh=mesh, **snapshot)
    if cfg.reward_signal:
      signal["end"] = condenser.reward_signal(result.logits_C, key, sdata, ccfg, model_cfg,
                                              max_degree)
    keep, chosen = result.keep_C, None
    t_holdout = time.perf_counter()
    if cfg.holdout_every:
      chosen = holdout.choose(snaps, holdout.snapshot_steps(ccfg.outer_steps,
                                                            cfg.holdout_every),
                              score_of, run_id, log=log)
      logits_C, _ = holdout.load_snapshot(snaps / f"step{chosen['chosen_step']}.npz")
      keep = condenser.select(logits_C, pool, sizes, ccfg, seed, floor_U)
      log(f"seed {seed}: the set of outer step {chosen['chosen_step']} (best on the "
          f"held-out validation pairs)")
      chosen["seconds"] = time.perf_counter() - t_holdout  # this call's (resumed: less)
    condense_seconds = time.perf_counter() - t_seed
    condensed = pool.to_interactions(keep)
    files = export.export_condensed(out_dir / f"seed{seed}", "condensed", condensed,
                                    data.valid, data.test, pseudo_N=_pseudo_of(pool, keep))
    sets = {"condensed": (condensed, false_neg)}
    if "random" in cfg.baselines:
      rng = np.random.default_rng([seed, 11])
      sets["random"] = (data.train.subset(rng.permutation(n_train) < condensed.nnz), None)
    if "zero_update" in cfg.baselines:
      zero = condenser.select(start_logits, pool, sizes, ccfg, seed, floor_U)
      sets["zero_update"] = (pool.to_interactions(zero), false_neg)
    for name in PROXY_BASELINES:  # as compare.py judges them: negatives outside S only
      if name in cfg.baselines:
        sets[name] = (baselines.select(name, data.train, condensed.nnz, proxy=proxy,
                                       seed=seed).train, None)
    return sets, {"fingerprint": seed_fp, "seed": seed, "files": files,
            "share": {n: _item_share(subset, data.train) for n, (subset, _) in sets.items()},
            "signal": signal, "history": result.history, "holdout": chosen,
            "start": start_choice,
            "degrees": report.degree_profile(condensed),
            "per_seed": {"seed": seed, "size": int(keep.sum()),
                         "size_fraction": float(keep.sum() / n_train),
                         "pseudo_kept": int(pool.pseudo_C[keep].sum()),
                         "fixed_kept": int(pool.fixed_C[keep].sum()),
                         "condense_seconds": condense_seconds, "timing": result.seconds}}

  pending, t_judge = {}, time.perf_counter()
  for seed in cfg.seeds:
    seed_dir = out_dir / f"seed{seed}"
    if not resume:
      for stale in (SEED_RECORD, CHECKPOINT, CONDENSED_RECORD, SETS):
        (seed_dir / stale).unlink(missing_ok=True)
      for stale in (SNAPSHOTS, START_SNAPSHOTS):
        shutil.rmtree(seed_dir / stale, ignore_errors=True)
    if (seed_dir / SEED_RECORD).exists():
      report.read_fingerprinted(seed_dir / SEED_RECORD, seed_fp, "seed")
      log(f"seed {seed}: done before, read back from {seed_dir / SEED_RECORD}")
    elif (seed_dir / CONDENSED_RECORD).exists() and (seed_dir / SETS).exists():
      part = report.read_fingerprinted(seed_dir / CONDENSED_RECORD, seed_fp, "seed")
      pending[seed] = (_load_sets(seed_dir / SETS, data.train, false_neg), part)
      log(f"seed {seed}: condensed before, read back from {seed_dir}")
    else:
      sets, part = one_seed(seed)
      _save_sets(seed_dir / SETS, sets)
      report.write_json_atomic(seed_dir / CONDENSED_RECORD, part)
      pending[seed] = (sets, part)
  if pending:
    t_judge = time.perf_counter()
    jobs = {(seed, name): judge.Job(subset, seed, avoid)
            for seed, (sets, _) in pending.items() for name, (subset, avoid) in sets.items()}
    evals = {m: judge.judge(m, data, jobs, model_cfg=model_cfg, train_cfg=train_cfg,
                            tail_fraction=tail_fraction, log=log, mesh=eval_mesh)
             for m in cfg.eval_models}
    for seed, (sets, part) in pending.items():
      part["evals"] = {m: {name: evals[m][seed, name] for name in sets} for m in evals}
      for m, name in ((m, name) for m in evals for name in sets):
        _log_eval(log, seed, m, name, evals[m][seed, name], n_train)
      report.write_json_atomic(out_dir / f"seed{seed}" / SEED_RECORD, part)
  judge_seconds = time.perf_counter() - t_judge
  records = [report.read_fingerprinted(out_dir / f"seed{seed}" / SEED_RECORD, seed_fp, "seed")
             for seed in cfg.seeds]

  per_seed = [r["per_seed"] for r in records]
  snr = [{"seed": r["seed"], **r["signal"]} for r in records]
  chosen = [{"seed": r["seed"], **r["holdout"]} for r in records if r.get("holdout")]
  starts = [{"seed": r["seed"], **r.get("start", {"chosen_step": "prior"})} for r in records]
  histories = {r["seed"]: r["history"] for r in records}
  files = {r["seed"]: r["files"] for r in records}
  degrees = {r["seed"]: r["degrees"] for r in records}
  share = {n: [r["share"][n] for r in records] for n in names}
  evals = {m: {n: [r["evals"][m][n] for r in records] for n in names} for m in cfg.eval_models}
  for model_name in cfg.eval_models:
    evals[model_name]["full"] = [
        fit_full(model_name, data, protocol, model_cfg=model_cfg, train_cfg=train_cfg,
                 seed=seed, tail_fraction=tail_fraction, cache_dir=cache_dir, log=log)[1]
        for seed in cfg.seeds]

  models_report = {m: _model_report(ev, names, n_train) for m, ev in evals.items()}
  head = models_report[cfg.eval_models[0]]
  sizes_kept = np.array([r["size"] for r in per_seed])
  items = {k: head["items"][k] for k in head["items"]}
  items["share_in_S"] = {n: float(np.mean(v)) for n, v in share.items()}
  return {
      "ratio": cfg.condense.ratio,
      "accounting": cfg.condense.accounting,
      "size_fraction": float(sizes_kept.mean() / n_train),
      "size_fraction_of_candidates": float(sizes_kept.mean() / pool.size),
      "condense_seconds": float(np.mean([r["condense_seconds"] for r in per_seed])),
      "proxy_seconds": proxy_seconds,
      "pool_seconds": pool_seconds,
      "judge_seconds": judge_seconds,
      "full": head["full"],
      "condensed": head["condensed"],
      "retention": head["retention"],
      "baselines": head["baselines"],
      "groups": head["groups"],
      "items": items,
      "models": models_report,
      "seeds": list(cfg.seeds),
      "per_seed": per_seed,
      "reward_signal": snr,
      "holdout": chosen,
      "start": starts,
      "degrees": {"train": report.degree_profile(data.train),
                  **{f"condensed_seed{k}": v for k, v in degrees.items()}},
      "sizes": {**sizes, "pseudo_candidates": pool.size - pool.n_original,
                "false_negatives": 0 if false_neg is None else false_neg.nnz},
      "config": {"job": _jsonable(dataclasses.asdict(cfg)),
                 "model_cfg": dataclasses.asdict(model_cfg),
                 "train_cfg": dataclasses.asdict(train_cfg),
                 "evaluator_schedule": "train.matched_to: steps-matched to the full-data run",
                 "tail_group": f"the {tail_fraction:.0%} of users with the fewest training "
                               f"pairs (ties: lower user id)"},
      "files": {str(k): v for k, v in files.items()},
      "history": {str(k): v for k, v in histories.items()},
      "protocol": protocol,
      "versions": report.versions(),
  }


def fingerprinted(job: dict) -> dict:
  """`job` (dataclasses.asdict of a JobConfig) less the hold-out's fields when it is off:
  runs without it keep the fingerprints they had before it existed."""
  if job.get("holdout_every"):
    return job
  return {k: v for k, v in job.items() if k not in ("holdout_every", "holdout_share")}


def _model_report(ev: dict, names: tuple, n_train: int) -> dict:
  """One evaluator's figures: overall, per user group, and on the item side."""
  full_tests = [m["test"] for m in ev["full"]]

  def part(select):
    full = [select(t) for t in full_tests]
    out = {"full": {"test": _summary(full)["mean"]}, "baselines": {}}
    for name in names:
      tests = [select(m["test"]) for m in ev[name]]
      entry = {"test": _summary(tests)["mean"], "retention": _retention(tests, full)}
      if name == "condensed":
        out.update(condensed={"test": entry["test"]}, retention=entry["retention"])
      else:
        out["baselines"][name] = entry
    return out

  entry = part(lambda t: {k: v for k, v in t.items() if k not in ("groups", "items")})
  entry["full"]["per_seed"] = ev["full"]
  entry["condensed"]["per_seed"] = ev["condensed"]
  for name in names[1:]:
    entry["baselines"][name].update(
        size_fraction=float(np.mean([m["n_train"] for m in ev[name]])) / n_train,
        per_seed=ev[name])
  entry["groups"] = {g: part(lambda t, g=g: t["groups"][g]) for g in full_tests[0]["groups"]}
  entry["items"] = {
      k: {n: float(np.mean([m["test"]["items"][k] for m in ev[n]])) for n in ("full", *names)}
      for k in full_tests[0]["items"]}
  return entry


def _log_eval(log, seed, model_name, name, metrics, n_train) -> None:
  test = metrics["test"]
  log(f"seed {seed} {model_name} on {name} ({metrics['n_train'] / n_train:.3f} N): test "
      f"ndcg@10 {test['ndcg@10']:.4f} recall@10 {test['recall@10']:.4f}, tail users' "
      f"ndcg@10 {test['groups']['tail']['ndcg@10']:.4f} (best epoch {metrics['best_epoch']})")


def _save_sets(path: pathlib.Path, sets: dict) -> None:
  arrays, avoids = {}, {}
  for name, (subset, avoid) in sets.items():
    arrays[f"{name}_users"], arrays[f"{name}_items"] = subset.users(), subset.indices
    avoids[name] = avoid is not None
  cache.save_arrays(path, arrays, {"avoid": avoids})


def _load_sets(path: pathlib.Path, train: Interactions, false_neg) -> dict:
  """What _save_sets wrote; sets marked to avoid get the false negatives again."""
  arrays, meta = cache.load_arrays(path)
  return {name: (Interactions.from_pairs(arrays[f"{name}_users"], arrays[f"{name}_items"],
                                         n_users=train.n_users, n_items=train.n_items),
                 false_neg if avoid else None)
          for name, avoid in meta["avoid"].items()}


def _item_share(subset: Interactions, train: Interactions) -> float:
  """Share of the items with a training pair that keep at least one pair in the subset."""
  return float((subset.item_degrees() > 0).sum() / max((train.item_degrees() > 0).sum(), 1))


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
