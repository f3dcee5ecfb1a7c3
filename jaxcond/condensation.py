"""The condensation job, in two steps.

The product: a proxy fit on all training pairs, the candidate pool, the outer loop from a
chosen start, the set of the chosen step, exported per seed (`condense_seeds`). Then the
judging: evaluators trained from scratch on every seed's set and its same-size baselines,
beside the same evaluators on all training pairs (`judge_seeds`), summed up in a report
(`report_of`). `run` does all three and is resumable between and within them.
"""

from __future__ import annotations

import dataclasses
import pathlib
import shutil
import time
from typing import Callable, NamedTuple

import jax
import numpy as np

from jaxcond import baselines, models
from jaxcond.condense import condenser, holdout, starts
from jaxcond.condense import pool as pool_lib
from jaxcond.condense import proxy as proxy_lib
from jaxcond.condense import tail as tail_lib
from jaxcond.core import checkpoint, npz, records, sharding
from jaxcond.data import export
from jaxcond.data.interactions import Interactions
from jaxcond.data.split import DatasetSplit
from jaxcond.judging import fits, judge, retention
from jaxcond.models import train as train_lib
from jaxcond.models.graph import Graph, build_graph

# Same-size sets the condensed set is judged against: a random sample, the loop's own
# start, and the proxy heuristics that need no loop (jaxcond.baselines).
BASELINES = ("random", "zero_update", *starts.HEURISTICS)
CHECKPOINT = "checkpoint.npz"
SNAPSHOTS = "snapshots"  # holdout: the outer loop's logits every holdout_every steps
START_SNAPSHOTS = "starts"  # start="best": each candidate start's logits and scores
SEED_RECORD = "record.json"
CONDENSED_RECORD = "condensed.json"  # a condensed seed's record before judging
SETS = "sets.npz"  # the sets a condensed seed is judged on


# The product's default: the best start on held-out pairs and no outer step. Measured on
# ML-1M, Dianping and Ciao together (docs/results.md, "The defaults and the table that
# chose them"): no outer-loop setting ended above its own start there. `outer_steps` > 0
# runs the REINFORCE loop from that start.
DEFAULT_CONDENSE = condenser.CondenseConfig(outer_steps=0)
# tail="best": the start is chosen with and without DConRec's tail rule (keep), since where
# the tail users' pairs fill most of a small budget every set under the rule is mostly
# theirs; unless the rule fixes fewer pairs than this share of the budget: sets that differ
# in so few pairs are not told apart by the fits (a 5% swap moves one evaluator's NDCG@10
# by about its seed-to-seed spread), so the candidates are the heuristics' own sets, whose
# fits the judging of the heuristics trains anyway (with_start).
TAIL_MIN_SHARE = 0.05


@dataclasses.dataclass(frozen=True)
class JobConfig:
  condense: condenser.CondenseConfig = DEFAULT_CONDENSE
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
  # The proxy's scores: the mean over its full-data fits seeded proxy_seed, proxy_seed + 1,
  # ... (proxy_fits of them); with seeds 0, 1, 2 those are the fits the report trains anyway.
  proxy_fits: int = 1
  # Long-tail compensation: keep (all pairs of tail users fixed), floor (every user keeps
  # >= ceil(tail_floor * |I_u|) pairs), none, or best (keep or none, chosen with the start
  # on held-out pairs). Tail users: <= tail_tau pairs, or the least active tail_quantile
  # of users when given.
  tail: str = "best"
  tail_tau: int = 10
  tail_quantile: float | None = None
  tail_floor: float = 0.2
  report_tail_fraction: float = 0.2  # the "tail" group of every report
  baselines: tuple = BASELINES
  # Measure the reward's SNR at the start and end (costs time); None: where an outer step
  # uses the reward.
  reward_signal: bool | None = None
  row_len: int = 16
  # > 0: the logits saved every holdout_every steps (and at 0 and the end) are each judged
  # by the proxy model trained on their set and ranking the held-out pairs; the best gives
  # the set (holdout.py). With it or start="best", the reward sees the validation pairs
  # less a held-out share.
  holdout_every: int = 0
  holdout_share: float = 0.5
  start: str = "best"  # see starts.STARTS
  # Fits per start candidate when choosing a seed's start (choice_seeds_for): their mean
  # score chooses, so one fit's seed noise does not, and none has the seed's own seed, so
  # the seed's judged figures carry none of the choice's luck.
  start_fits: int = 2
  # Seeds of the same experiment judged in other runs (compare.py runs one seed per run):
  # they choose a seed's start as the run's own other seeds do, so a run of seed k picks
  # what a run of all of them picks for k.
  peer_seeds: tuple = ()

  def __post_init__(self):
    if self.tail not in (*tail_lib.MODES, "best"):
      raise ValueError(f"tail must be one of {(*tail_lib.MODES, 'best')}, got {self.tail!r}")
    if self.tail == "best" and self.condense.accounting != "honest":
      raise ValueError("tail='best' compares sets of one size: it needs honest accounting "
                       "(under official accounting the tail rule's pairs come on top)")
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
    if self.start not in starts.STARTS:
      raise ValueError(f"start must be one of {starts.STARTS}, got {self.start!r}")
    if self.start in starts.NEEDS_PSEUDO and not self.augment:
      raise ValueError(f"start {self.start!r} needs pseudo candidates (augment)")
    for name in ("start_fits", "proxy_fits"):
      if getattr(self, name) < 1:
        raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
    shared = sorted(set(self.seeds + tuple(self.peer_seeds)) & set(self.choice_seeds))
    if shared and "best" in (self.start, self.tail):
      raise ValueError(f"seeds {shared} are the start choice's fit seeds "
                       f"({self.choice_seeds[0]} onwards); judge with other seeds")
    if self.holdout_every < 0 or not 0 < self.holdout_share < 1:
      raise ValueError(f"need holdout_every >= 0 and holdout_share in (0, 1); got "
                       f"{self.holdout_every}, {self.holdout_share}")

  @property
  def proxy_seeds(self) -> list[int]:
    """The seeds of the full-data fits whose mean score is the proxy's."""
    return [self.proxy_seed + k for k in range(self.proxy_fits)]

  @property
  def choice_seeds(self) -> list[int]:
    """The seeds that choose a start when the run's other seeds are too few."""
    return [starts.CHOICE_SEED + k for k in range(self.start_fits)]

  def choice_seeds_for(self, seed: int) -> list[int]:
    """The seeds of the fits that choose `seed`'s start: the run's and its peers' other
    seeds first (their fits judge the heuristics anyway), then choice_seeds; never `seed`."""
    others = [t for t in dict.fromkeys((*self.seeds, *self.peer_seeds)) if t != seed]
    return (others + self.choice_seeds)[:self.start_fits]

  @property
  def holds_out(self) -> bool:
    """Whether part of the validation pairs is held out of the reward (to choose on)."""
    return bool(self.holdout_every) or "best" in (self.start, self.tail)

  @property
  def measures_signal(self) -> bool:
    """Whether each seed's reward signal is measured (reward_signal; None: with steps)."""
    if self.reward_signal is None:
      return bool(self.condense.outer_steps)
    return self.reward_signal

  @property
  def judged_baselines(self) -> tuple:
    """The baselines judged: zero_update is the condensed set itself with no outer step."""
    if self.condense.outer_steps:
      return self.baselines
    return tuple(b for b in self.baselines if b != "zero_update")


def build_pool(data: DatasetSplit, proxy: dict, cfg: JobConfig,
               tail: str | None = None) -> tuple[pool_lib.Pool, Interactions | None]:
  """Original pairs, plus the proxy's top unseen items per user (pre-augmentation), with
  the tail users' pairs fixed (tail, default cfg.tail, "keep"; tail="best" builds the
  pool of "keep"); and the false negatives (or None)."""
  tail = tail or ("keep" if cfg.tail == "best" else cfg.tail)
  unseen = None
  if cfg.augment or cfg.exclude_false_negatives:
    unseen = proxy_lib.top_unseen_pairs(data.train, proxy, cfg.rho, cfg.pseudo_min)
  fixed = None
  if tail == "keep":
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


def loop_inputs(data: DatasetSplit, proxy: dict, cfg: JobConfig,
                tail: str | None = None) -> LoopInputs:
  """The candidate pool and what the outer loop reads of it, besides validation pairs."""
  pool, false_neg = build_pool(data, proxy, cfg, tail)
  avoid = data.train if false_neg is None else data.train.union(false_neg)
  prior = None
  if cfg.prior_scale > 0:
    prior = proxy_lib.prior_logits(pool, proxy_lib.scores_of(proxy, pool.users_C, pool.items_C),
                                   cfg.prior_scale)
  return LoopInputs(pool, false_neg, pool_lib.rows_of(pool, cfg.row_len),
                    condenser.budget_of(pool, data.train.nnz, cfg.condense),
                    build_graph(avoid, dense_limit=0), int(avoid.user_degrees().max(initial=0)),
                    prior)


def tail_variants(data: DatasetSplit, proxy: dict, cfg: JobConfig,
                  log: Callable[[str], None] = print) -> dict[str, LoopInputs]:
  """{tail rule: loop inputs}: cfg.tail's; for tail="best" "keep" and "none" over the same
  candidates, or the one of them that stands where the rule fixes no pair ("none"), leaves
  no free budget or fixes under TAIL_MIN_SHARE of the budget (also "none")."""
  if cfg.tail != "best":
    return {cfg.tail: loop_inputs(data, proxy, cfg)}
  free = loop_inputs(data, proxy, cfg, "none")
  tail_U = tail_lib.tail_users(data.train, tau=cfg.tail_tau, quantile=cfg.tail_quantile)
  pool = free.pool._replace(fixed_C=tail_U[free.pool.users_C] & ~free.pool.pseudo_C)
  n_fixed = int(pool.fixed_C.sum())
  if not n_fixed:
    return {"none": free}  # no tail user: the rule changes nothing
  try:
    keep = free._replace(pool=pool, sizes=condenser.budget_of(pool, data.train.nnz,
                                                              cfg.condense))
  except condenser.BudgetError as e:
    log(f"tail rule 'keep' is no candidate: {e}")
    return {"none": free}
  if n_fixed < TAIL_MIN_SHARE * keep.sizes["total"]:
    return {"none": free}
  return {"keep": keep, "none": free}


class Context(NamedTuple):
  """What every seed of a run shares: the data, settings, proxy, loop inputs and start."""
  data: DatasetSplit
  protocol: dict
  cfg: JobConfig
  model_cfg: models.ModelConfig
  train_cfg: train_lib.TrainConfig
  out_dir: pathlib.Path
  proxy: dict
  inputs: LoopInputs  # under a seed's chosen tail rule (with_start), else the first of tails
  floor_U: np.ndarray | None  # tail="floor": each user's least count of kept pairs
  fingerprint: str  # of everything that decides a seed's result
  log: Callable[[str], None]
  checkpoint_every: int
  mesh: object
  tails: dict  # {tail rule: LoopInputs}, the candidates of tail="best" (tail_variants)
  start: dict | None = None  # with_start: the seed's choice record
  start_logits: np.ndarray | None = None  # with_start: the seed's start logits [C]
  # The run's evaluator fits by their inputs (train_many.fit_key): a set fitted to choose
  # one seed's start is not fitted again to judge another seed's sets.
  fit_memo: dict | None = None
  # Start candidates' logits and sets, and heuristics' sets, by what and how they are drawn:
  # each seed's choice reads the other seeds' candidates, which do not change.
  start_memo: dict | None = None


def prepare(data: DatasetSplit, protocol: dict, cfg: JobConfig, *,
            model_cfg: models.ModelConfig, train_cfg: train_lib.TrainConfig, out_dir,
            cache_dir=None, log: Callable[[str], None] = print, checkpoint_every: int = 20,
            mesh=None) -> tuple[Context, dict]:
  """The proxy (its fits on all training pairs, cached) and the pool; and their seconds.
  When the proxy's model also judges, its full-data fits of the run's other seeds are
  trained beside the proxy's (together: the report needs them)."""
  t0 = time.perf_counter()
  seeds = cfg.proxy_seeds
  if cfg.proxy_model in cfg.eval_models:
    seeds += [seed for seed in cfg.seeds if seed not in seeds]
  fitted = fits.fit_full_seeds(
      cfg.proxy_model, data, protocol, model_cfg=model_cfg, train_cfg=train_cfg, seeds=seeds,
      tail_fraction=cfg.report_tail_fraction, cache_dir=cache_dir, log=log)[:cfg.proxy_fits]
  proxy = proxy_lib.tables_of_fits(cfg.proxy_model, [p for p, _ in fitted], data.train,
                                   model_cfg)
  tails = tail_variants(data, proxy, cfg, log)
  inputs = next(iter(tails.values()))
  pool, sizes = inputs.pool, inputs.sizes
  floor_U = None
  if cfg.tail == "floor":
    free_U = np.bincount(pool.users_C[~pool.fixed_C], minlength=pool.n_users)
    floor_U = tail_lib.floor_counts(data.train.user_degrees(), free_U, cfg.tail_floor)
  seconds = {"proxy_seconds": sum(metrics["train_seconds"] for _, metrics in fitted),
             "pool_seconds": time.perf_counter() - t0}
  n_false = 0 if inputs.false_neg is None else inputs.false_neg.nnz
  log(f"pool: {pool.n_original:,} original + {pool.size - pool.n_original:,} pseudo pairs, "
      f"{sizes['fixed']:,} fixed (tail users); {n_false:,} false negatives avoided; "
      f"budget {sizes['total']:,} pairs = {sizes['total'] / data.train.nnz:.3f} N "
      f"({cfg.condense.accounting} accounting)")
  fingerprint = run_fingerprint(protocol["data_checksum"], cfg, model_cfg, train_cfg, mesh)
  return Context(data, protocol, cfg, model_cfg, train_cfg, pathlib.Path(out_dir), proxy,
                 inputs, floor_U, fingerprint, log, checkpoint_every, mesh, tails,
                 fit_memo={}, start_memo={}), seconds


class SeedRun(NamedTuple):
  """One seed's loop: its settings, step data, reward and held-out pairs."""
  seed: int
  ccfg: condenser.CondenseConfig
  sdata: condenser.StepData
  reward_valid: Interactions  # the validation pairs the reward reads
  held_out: Interactions | None  # the ones the start and step are chosen on
  run_id: str  # names the loop's checkpoint and saved logits
  seed_dir: pathlib.Path


def seed_run(ctx: Context, seed: int) -> SeedRun:
  ccfg = dataclasses.replace(ctx.cfg.condense, seed=seed)
  reward_valid, held_out = ctx.data.valid, None
  if ctx.cfg.holds_out:
    reward_valid, held_out = holdout.split_valid(ctx.data.valid, ctx.cfg.holdout_share, seed)
  i = ctx.inputs
  sdata = condenser.step_data(i.pool, i.rows, ctx.proxy, reward_valid, i.graph, i.sizes, ccfg,
                              i.max_degree, mesh=ctx.mesh)
  return SeedRun(seed, ccfg, sdata, reward_valid, held_out, f"{ctx.fingerprint}-{seed}",
                 ctx.out_dir / f"seed{seed}")


def select(ctx: Context, s: SeedRun, logits_C) -> np.ndarray:
  """bool [C]: the set that logits select under the budget (and floors)."""
  return _select_in(ctx, ctx.inputs, logits_C, s.seed)


def _select_in(ctx: Context, inputs: LoopInputs, logits_C, seed: int) -> np.ndarray:
  """bool [C] over `inputs`' pool: the set logits select with `seed`'s tie-break."""
  ccfg = dataclasses.replace(ctx.cfg.condense, seed=seed)
  return condenser.select(logits_C, inputs.pool, inputs.sizes, ccfg, seed, ctx.floor_U)


def _held_out_scores(ctx: Context, subsets: list, seeds: list, reward_valid: Interactions,
                     held_out: Interactions) -> list[dict]:
  """The proxy model trained on each subset with its seed (same-size sets together), scored
  on held_out."""
  return holdout.held_out_scores(ctx.data, subsets, seeds, reward_valid,
                                 held_out, model_name=ctx.cfg.proxy_model,
                                 model_cfg=ctx.model_cfg, train_cfg=ctx.train_cfg,
                                 avoids=[ctx.inputs.false_neg] * len(subsets),
                                 memo=ctx.fit_memo)


def held_out_scorer(ctx: Context, s: SeedRun) -> Callable[[list, list], list]:
  """([name], [logits]) -> [score] of the seed's saved steps, on its held-out pairs."""
  def scores_of(names: list, logits: list) -> list[dict]:
    del names  # every step's logits are over ctx.inputs' pool
    return _held_out_scores(ctx, [ctx.inputs.pool.to_interactions(select(ctx, s, x))
                                  for x in logits], [s.seed] * len(logits), s.reward_valid,
                            s.held_out)
  return scores_of


def _memoised(ctx: Context, key: tuple, make: Callable[[], object]):
  """make(), kept in ctx.start_memo (prepare's dict) under `key`."""
  if key not in ctx.start_memo:
    ctx.start_memo[key] = make()
  return ctx.start_memo[key]


def start_logits_of(ctx: Context, tail: str, kind: str, seed: int) -> np.ndarray | None:
  """The logits of start `kind` (starts.STARTS) over the pool of tail rule `tail`;
  heuristics' sets of the budget's size, drawn with `seed` (so, the tail rule aside, the
  seed's baseline)."""
  def make():
    logits_C = _start_logits(ctx, ctx.tails[tail], kind, seed)
    if logits_C is not None:
      logits_C.flags.writeable = False  # shared by every reader of the memo
    return logits_C
  return _memoised(ctx, ("logits", tail, kind, seed), make)


def heuristic_set(ctx: Context, kind: str, budget: int, seed: int) -> Interactions:
  """Proxy heuristic `kind`'s set of `budget` training pairs drawn with `seed` (a start
  candidate's and the seed's baseline: drawn once)."""
  return _memoised(ctx, ("heuristic", kind, budget, seed), lambda: baselines.select(
      kind, ctx.data.train, budget, proxy=ctx.proxy, seed=seed).train)


def _start_logits(ctx: Context, inputs: LoopInputs, kind: str, seed: int) -> np.ndarray | None:
  pool, heuristic = inputs.pool, None
  if kind in starts.HEURISTICS:
    chosen = heuristic_set(ctx, kind, inputs.sizes["total"], seed)
    heuristic = starts.heuristic_mask(pool, chosen)
    if heuristic.sum() < chosen.nnz:
      ctx.log(f"start {kind}: {chosen.nnz - heuristic.sum():,} of its {chosen.nnz:,} pairs "
              "are not candidates (pseudo pairs beyond --rho); the prior fills their place")
  return starts.initial_logits(inputs.prior, pool, kind, heuristic)


def start_candidates(ctx: Context) -> dict[str, tuple[str, str]]:
  """{name: (tail rule, start kind)}: every start kind under every tail rule of ctx.tails
  (named "<kind>-<rule>" when there are two rules)."""
  kinds = starts.start_kinds(ctx.cfg.augment) if ctx.cfg.start == "best" else [ctx.cfg.start]
  return {(f"{kind}-{tail}" if len(ctx.tails) > 1 else kind): (tail, kind)
          for tail in ctx.tails for kind in kinds}


def choosing_pairs(ctx: Context) -> tuple[Interactions, Interactions, dict]:
  """(pairs a reward reads, pairs the start is chosen on, their record): with outer steps
  the proxy seed's split of the validation pairs; without, no reward reads validation, so
  every validation pair chooses (twice the pairs of a held-out half: less noise)."""
  valid, seed = ctx.data.valid, ctx.cfg.proxy_seed
  if ctx.cfg.condense.outer_steps:
    reward_valid, held_out = holdout.split_valid(valid, ctx.cfg.holdout_share, seed)
    return reward_valid, held_out, {"chosen_on": "held-out validation", "split_seed": seed}
  return valid.subset(np.zeros(valid.nnz, bool)), valid, {"chosen_on": "validation"}


def with_start(ctx: Context, seed: int, resume: bool = True) -> Context:
  """ctx with `seed`'s start: of the start candidates, the one whose sets rank the choosing
  validation pairs (choosing_pairs) best on the mean of the proxy model's fits seeded
  cfg.choice_seeds_for(seed), each on the candidate drawn with its fit's seed. Those are
  the run's other seeds: their fits of the heuristics are the baselines' judging fits, so
  the choice costs no fit of its own, and no fit that chose a seed's set judges it (a fit
  that ranks validation well tends to rank test well). Read back from
  <out_dir>/seed<k>/starts on a rerun."""
  cands, starts_dir = start_candidates(ctx), ctx.out_dir / f"seed{seed}" / START_SNAPSHOTS
  if not resume:
    shutil.rmtree(starts_dir, ignore_errors=True)
  choice = {"chosen_step": next(iter(cands))}
  if len(cands) > 1:
    reward_valid, held_out, chosen_on = choosing_pairs(ctx)
    fit_seeds = ctx.cfg.choice_seeds_for(seed)

    def scores_of(names: list, logits: list) -> list[dict]:
      del logits  # seed's own; each fit trains on its candidate drawn with the fit's seed
      subsets = [candidate_set(ctx, cands[name], t) for name in names for t in fit_seeds]
      got = _held_out_scores(ctx, subsets, fit_seeds * len(names), reward_valid, held_out)
      return [_mean_of_fits(got[n:n + len(fit_seeds)], fit_seeds)
              for n in range(0, len(got), len(fit_seeds))]

    def logits_of(name: str) -> np.ndarray | None:
      return start_logits_of(ctx, *cands[name], seed)

    choice = {**starts.choose_start(logits_of, ctx.inputs.pool.size, list(cands), starts_dir,
                                    scores_of, f"{ctx.fingerprint}-{seed}",
                                    lambda line: ctx.log(f"seed {seed}: {line}")),
              **chosen_on}
  tail, kind = cands[choice["chosen_step"]]
  inputs = ctx.tails[tail]
  if len(ctx.tails) > 1:
    ctx.log(f"seed {seed}, tail rule {tail!r}: {inputs.sizes['fixed']:,} fixed pairs, "
            f"{inputs.sizes['free']:,} free")
  return ctx._replace(inputs=inputs, start={**choice, "seed": seed, "tail": tail, "kind": kind},
                      start_logits=start_logits_of(ctx, tail, kind, seed))


def candidate_set(ctx: Context, candidate: tuple[str, str], seed: int) -> Interactions:
  """The set of start candidate (tail rule, kind) drawn and selected with `seed`."""
  def make():
    inputs = ctx.tails[candidate[0]]
    logits_C = start_logits_of(ctx, *candidate, seed)
    return inputs.pool.to_interactions(_select_in(ctx, inputs, logits_C, seed))
  return _memoised(ctx, ("set", *candidate, seed), make)


def _mean_of_fits(got: list[dict], seeds: list) -> dict:
  """One candidate's score: the mean over its fits, each fit's kept beside it."""
  return {"score": float(np.mean([g["score"] for g in got])),
          "test": float(np.mean([g["test"] for g in got])), "fit_seeds": list(seeds),
          "fit_scores": [g["score"] for g in got], "fit_tests": [g["test"] for g in got]}


def start_of(ctx: Context, s: SeedRun) -> tuple[condenser.State, np.ndarray]:
  """The loop's state at the run's start (with_start), and its logits on the host."""
  state = condenser.init_state(s.sdata, s.ccfg, ctx.start_logits, mesh=ctx.mesh)
  # A host copy (less padding): the outer loop donates `state`.
  return state, sharding.to_host(state.logits_C)[:ctx.inputs.pool.size].copy()


def outer_loop(ctx: Context, s: SeedRun, state, start_logits) -> condenser.CondenseResult:
  """The outer loop from `state`, checkpointed, saving its logits for the hold-out (step 0,
  the start, with the score it was chosen on, if any)."""
  def progress(row):
    ctx.log(f"seed {s.seed} outer {row['step']:5d}/{s.ccfg.outer_steps}  reward "
            f"{row['reward']:.5f}  (std over K {row['reward_std']:.5f})  E|S| "
            f"{row['expected_free']:,.0f}  {row['seconds']:.1f}s")

  ckpt, snaps, snapshot = s.seed_dir / CHECKPOINT, s.seed_dir / SNAPSHOTS, {}
  if ckpt.exists():
    ctx.log(f"seed {s.seed}: resuming the outer loop from {ckpt}")
  if ctx.cfg.holdout_every:
    if not ckpt.exists() or not (snaps / "step0.npz").exists():
      holdout.save_snapshot(snaps / "step0.npz", start_logits, 0, s.run_id,
                            _start_score(ctx, s.seed))
    snapshot = {"snapshot_every": ctx.cfg.holdout_every,
                "on_snapshot": lambda step, logits: holdout.save_snapshot(
                    snaps / f"step{step}.npz", logits, step, s.run_id)}
  i = ctx.inputs
  return condenser.condense(i.pool, s.sdata, s.ccfg, hparams=ctx.model_cfg,
                            max_degree=i.max_degree, state=state, sizes=i.sizes,
                            floor_U=ctx.floor_U, progress=progress,
                            log_every=max(1, s.ccfg.outer_steps // 20), checkpoint_path=ckpt,
                            checkpoint_every=ctx.checkpoint_every, run_id=s.run_id,
                            mesh=ctx.mesh, **snapshot)


def _start_score(ctx: Context, seed: int) -> dict | None:
  """The held-out score the start was chosen on, if chosen on this seed's split and fit."""
  choice = ctx.start
  if "scores" not in choice or choice.get("split_seed") != seed:
    return None
  at = choice["steps"].index(choice["chosen_step"])
  return {"score": choice["scores"][at], "test": choice["test_scores"][at],
          "metric": choice["metric"]}


def chosen_step(ctx: Context, s: SeedRun) -> tuple[np.ndarray, dict]:
  """The saved step whose set ranks the held-out pairs best: (keep_C, its record)."""
  t0 = time.perf_counter()
  steps = holdout.snapshot_steps(s.ccfg.outer_steps, ctx.cfg.holdout_every)
  chosen = holdout.choose(s.seed_dir / SNAPSHOTS, steps, held_out_scorer(ctx, s), s.run_id,
                          log=ctx.log)
  logits_C, _ = holdout.load_snapshot(s.seed_dir / SNAPSHOTS / f"step{chosen['chosen_step']}.npz")
  ctx.log(f"seed {s.seed}: the set of outer step {chosen['chosen_step']} (best on the "
          "held-out validation pairs)")
  chosen["seconds"] = time.perf_counter() - t0  # this call's (resumed: less)
  return select(ctx, s, logits_C), chosen


def baseline_sets(ctx: Context, s: SeedRun, condensed: Interactions,
                  start_logits: np.ndarray) -> dict:
  """{name: (subset, avoid)}: the same-size sets the condensed set is judged against. Every
  set is judged as the condensed set is, its negatives also avoiding the proxy's false
  negatives (when excluded), so that only the sets differ: a baseline that is the
  condensed set scores as it does."""
  cfg, train, pool, sets = ctx.cfg, ctx.data.train, ctx.inputs.pool, {}
  avoid = ctx.inputs.false_neg
  if "random" in cfg.baselines:
    rng = np.random.default_rng([s.seed, 11])
    sets["random"] = (train.subset(rng.permutation(train.nnz) < condensed.nnz), avoid)
  if "zero_update" in cfg.judged_baselines:
    sets["zero_update"] = (pool.to_interactions(select(ctx, s, start_logits)), avoid)
  for name in starts.HEURISTICS:
    if name in cfg.baselines:
      sets[name] = (heuristic_set(ctx, name, condensed.nnz, s.seed), avoid)
  return sets


def _looped_seed(ctx: Context, seed: int):
  """(SeedRun, start logits, CondenseResult, reward signal) of the seed's outer loop."""
  s = seed_run(ctx, seed)
  state, start_logits = start_of(ctx, s)
  key, signal, i = jax.random.key(seed), {}, ctx.inputs
  measure = ctx.cfg.measures_signal
  if measure:
    signal["start"] = condenser.reward_signal(start_logits, key, s.sdata, s.ccfg,
                                              ctx.model_cfg, i.max_degree)
  result = outer_loop(ctx, s, state, start_logits)
  if measure:  # with no outer step the end is the start: measured once
    signal["end"] = signal["start"] if not s.ccfg.outer_steps else condenser.reward_signal(
        result.logits_C, key, s.sdata, s.ccfg, ctx.model_cfg, i.max_degree)
  return s, start_logits, result, signal


def _unlooped_seed(ctx: Context, seed: int):
  """_looped_seed with no outer step and no reward signal asked for: the start's set, with
  no step data built."""
  ccfg = dataclasses.replace(ctx.cfg.condense, seed=seed)
  s = SeedRun(seed, ccfg, None, ctx.data.valid, None, f"{ctx.fingerprint}-{seed}",
              ctx.out_dir / f"seed{seed}")
  start_logits = np.asarray(ctx.start_logits, np.float32)
  result = condenser.CondenseResult(select(ctx, s, start_logits), start_logits,
                                    ctx.inputs.sizes, [],
                                    {"compile": 0.0, "loop": 0.0, "per_step_median": 0.0})
  return s, start_logits, result, {}


def condense_seed(ctx: Context, seed: int) -> tuple[dict, dict]:
  """Condenses with `seed` and exports: the sets to judge {name: (subset, avoid)} (the
  condensed set first) and the seed's record (JSON-able) but its evaluations."""
  t0 = time.perf_counter()
  if ctx.cfg.condense.outer_steps or ctx.cfg.holdout_every or ctx.cfg.measures_signal:
    s, start_logits, result, signal = _looped_seed(ctx, seed)
  else:
    s, start_logits, result, signal = _unlooped_seed(ctx, seed)
  keep, chosen = result.keep_C, None
  if ctx.cfg.holdout_every:
    keep, chosen = chosen_step(ctx, s)
  condense_seconds = time.perf_counter() - t0
  i = ctx.inputs
  condensed = i.pool.to_interactions(keep)
  files = export.export_condensed(s.seed_dir, "condensed", condensed, ctx.data.valid,
                                  ctx.data.test, pseudo_N=_pseudo_of(i.pool, keep),
                                  false_negatives=i.false_neg)
  sets = {"condensed": (condensed, i.false_neg),
          **baseline_sets(ctx, s, condensed, start_logits)}
  n_train = ctx.data.train.nnz
  return sets, {
      "fingerprint": ctx.fingerprint, "seed": seed, "files": files,
      "share": {n: _item_share(subset, ctx.data.train) for n, (subset, _) in sets.items()},
      "overlap": {n: _overlap(condensed, subset) for n, (subset, _) in sets.items()
                  if n != "condensed"},
      "signal": signal, "history": result.history, "holdout": chosen,
      "degrees": records.degree_profile(condensed),
      "per_seed": {"seed": seed, "size": int(keep.sum()),
                   "size_fraction": float(keep.sum() / n_train),
                   "pseudo_kept": int(i.pool.pseudo_C[keep].sum()),
                   "fixed_kept": int(i.pool.fixed_C[keep].sum()),
                   "condense_seconds": condense_seconds, "timing": result.seconds}}


def forget(seed_dir: pathlib.Path) -> None:
  """Deletes a seed's records, checkpoint and saved logits (a run that does not resume)."""
  for stale in (SEED_RECORD, CHECKPOINT, CONDENSED_RECORD, SETS):
    (seed_dir / stale).unlink(missing_ok=True)
  for stale in (SNAPSHOTS, START_SNAPSHOTS):
    shutil.rmtree(seed_dir / stale, ignore_errors=True)


def condense_seeds(ctx: Context, resume: bool = True) -> dict:
  """Chooses each seed's start (with_start), condenses and exports every seed not done
  before: {seed: (sets, record)} of the seeds still to judge (those condensed before are
  read back, those judged before skipped)."""
  pending = {}
  for seed in ctx.cfg.seeds:
    seed_dir = ctx.out_dir / f"seed{seed}"
    if not resume:
      forget(seed_dir)
    if (seed_dir / SEED_RECORD).exists():
      records.read_fingerprinted(seed_dir / SEED_RECORD, ctx.fingerprint, "seed")
      ctx.log(f"seed {seed}: done before, read back from {seed_dir / SEED_RECORD}")
    elif (seed_dir / CONDENSED_RECORD).exists() and (seed_dir / SETS).exists():
      part = records.read_fingerprinted(seed_dir / CONDENSED_RECORD, ctx.fingerprint, "seed")
      pending[seed] = (_load_sets(seed_dir / SETS, ctx.data.train, ctx.inputs.false_neg), part)
      ctx.log(f"seed {seed}: condensed before, read back from {seed_dir}")
    else:
      t0 = time.perf_counter()
      seed_ctx = with_start(ctx, seed, resume)
      start_seconds = time.perf_counter() - t0
      sets, part = condense_seed(seed_ctx, seed)
      part.update(start=seed_ctx.start, sizes=seed_ctx.inputs.sizes)
      part["per_seed"]["start_seconds"] = start_seconds
      _save_sets(seed_dir / SETS, sets)
      records.write_json_atomic(seed_dir / CONDENSED_RECORD, part)
      pending[seed] = (sets, part)
  return pending


def judge_seeds(ctx: Context, pending: dict) -> None:
  """Trains the evaluators on every pending seed's sets together; writes each seed's
  record with its evaluations."""
  if not pending:
    return
  # The evaluators' test ranking goes over the mesh in one process (across processes
  # every process evaluates on its own device: the same numbers).
  mesh = ctx.mesh if ctx.mesh is not None and jax.process_count() == 1 else None
  jobs = {(seed, name): judge.Job(subset, seed, avoid)
          for seed, (sets, _) in pending.items() for name, (subset, avoid) in sets.items()}
  evals = {m: judge.judge(m, ctx.data, jobs, model_cfg=ctx.model_cfg, train_cfg=ctx.train_cfg,
                          tail_fraction=ctx.cfg.report_tail_fraction, log=ctx.log, mesh=mesh,
                          memo=ctx.fit_memo)
           for m in ctx.cfg.eval_models}
  for seed, (sets, part) in pending.items():
    part["evals"] = {m: {name: evals[m][seed, name] for name in sets} for m in evals}
    for m, name in ((m, name) for m in evals for name in sets):
      _log_eval(ctx.log, seed, m, name, evals[m][seed, name], ctx.data.train.nnz)
    records.write_json_atomic(ctx.out_dir / f"seed{seed}" / SEED_RECORD, part)


def full_evaluations(ctx: Context, cache_dir=None) -> dict:
  """{model: [record per seed]} of every evaluator trained on all training pairs."""
  return {m: [metrics for _, metrics in fits.fit_full_seeds(
      m, ctx.data, ctx.protocol, model_cfg=ctx.model_cfg, train_cfg=ctx.train_cfg,
      seeds=ctx.cfg.seeds, tail_fraction=ctx.cfg.report_tail_fraction, cache_dir=cache_dir,
      log=ctx.log)] for m in ctx.cfg.eval_models}


def run(data: DatasetSplit, protocol: dict, cfg: JobConfig, *, model_cfg: models.ModelConfig,
        train_cfg: train_lib.TrainConfig, out_dir, cache_dir=None,
        log: Callable[[str], None] = print, resume: bool = True,
        checkpoint_every: int = 20, mesh=None) -> dict:
  """Condenses once per seed, exports, judges; returns the report.

  Resumable: each seed's outer loop checkpoints to <out_dir>/seed<k>/checkpoint.npz every
  `checkpoint_every` steps, a condensed seed's sets (seed<k>/sets.npz) are judged without
  condensing again, and a judged seed's record (seed<k>/record.json) is read back, when
  made by the same settings and data (else ValueError). resume=False deletes them first.
  With a `mesh` (sharding.make_mesh) the outer loop runs split along users over its
  devices, in one process or several.
  """
  ctx, seconds = prepare(data, protocol, cfg, model_cfg=model_cfg, train_cfg=train_cfg,
                         out_dir=out_dir, cache_dir=cache_dir, log=log,
                         checkpoint_every=checkpoint_every, mesh=mesh)
  pending = condense_seeds(ctx, resume)
  ctx.start_memo.clear()
  t0 = time.perf_counter()
  judge_seeds(ctx, pending)
  ctx.fit_memo.clear()  # its fits (params and all) are not read again
  seconds["judge_seconds"] = time.perf_counter() - t0
  seed_records = [records.read_fingerprinted(ctx.out_dir / f"seed{seed}" / SEED_RECORD,
                                             ctx.fingerprint, "seed") for seed in cfg.seeds]
  # (Records of seeds condensed before 2026-12-06 hold no start and no start seconds.)
  seconds["start_seconds"] = sum(r["per_seed"].get("start_seconds", 0.0) for r in seed_records)
  return report_of(ctx, seed_records, full_evaluations(ctx, cache_dir), seconds)


def report_of(ctx: Context, seed_records: list[dict], full: dict, seconds: dict) -> dict:
  """The report (JSON-able) of judged seeds' records and the full-data evaluations."""
  cfg, data, pool, n_train = ctx.cfg, ctx.data, ctx.inputs.pool, ctx.data.train.nnz
  names = ("condensed", *cfg.judged_baselines)
  per_seed = [r["per_seed"] for r in seed_records]
  evals = {m: {n: [r["evals"][m][n] for r in seed_records] for n in names} for m in full}
  for m in evals:
    evals[m]["full"] = full[m]
  models_report = {m: retention.model_report(ev, names, n_train) for m, ev in evals.items()}
  head = models_report[cfg.eval_models[0]]
  sizes_kept = np.array([r["size"] for r in per_seed])
  items = {**head["items"], "share_in_S": {
      n: float(np.mean([r["share"][n] for r in seed_records])) for n in names}}
  overlap = {n: float(np.mean([r["overlap"][n] for r in seed_records]))
             for n in names[1:] if all(n in r.get("overlap", {}) for r in seed_records)}
  return {
      "ratio": cfg.condense.ratio, "accounting": cfg.condense.accounting,
      "size_fraction": float(sizes_kept.mean() / n_train),
      "size_fraction_of_candidates": float(sizes_kept.mean() / pool.size),
      "condense_seconds": float(np.mean([r["condense_seconds"] for r in per_seed])),
      **seconds,
      **{k: head[k] for k in ("full", "condensed", "retention", "baselines", "groups")},
      "items": items, "overlap": overlap, "models": models_report, "seeds": list(cfg.seeds),
      "per_seed": per_seed,
      "reward_signal": [{"seed": r["seed"], **r["signal"]} for r in seed_records],
      "holdout": [{"seed": r["seed"], **r["holdout"]} for r in seed_records if r.get("holdout")],
      "start": [r["start"] for r in seed_records if "start" in r],  # each seed's choice
      "degrees": {"train": records.degree_profile(data.train),
                  **{f"condensed_seed{r['seed']}": r["degrees"] for r in seed_records}},
      # The first seed's tail rule (seeds that chose another have their fixed_kept apart).
      "sizes": {**seed_records[0].get("sizes", ctx.inputs.sizes),
                "pseudo_candidates": pool.size - pool.n_original,
                "false_negatives": 0 if ctx.inputs.false_neg is None
                else ctx.inputs.false_neg.nnz},
      "config": _config_record(ctx),
      "files": {str(r["seed"]): r["files"] for r in seed_records},
      "history": {str(r["seed"]): r["history"] for r in seed_records},
      "protocol": ctx.protocol,
      "versions": records.versions(),
      "fingerprint": ctx.fingerprint,
  }


def _config_record(ctx: Context) -> dict:
  return {"job": _jsonable(dataclasses.asdict(ctx.cfg)),
          "model_cfg": dataclasses.asdict(ctx.model_cfg),
          "train_cfg": dataclasses.asdict(ctx.train_cfg),
          "evaluator_schedule": "train.matched_to: steps-matched to the full-data run",
          "tail_group": f"the {ctx.cfg.report_tail_fraction:.0%} of users with the fewest "
                        "training pairs (ties: lower user id)"}


def run_fingerprint(data_checksum: str, cfg: JobConfig, model_cfg: models.ModelConfig,
                    train_cfg: train_lib.TrainConfig, mesh=None) -> str:
  """What a run's seed folders are resumed on and its report records: the data, the job
  (its seeds aside), the evaluator's settings and code, and the padding of a mesh."""
  return checkpoint.fingerprint(
      data_checksum, _jsonable({**fingerprinted(dataclasses.asdict(cfg)), "seeds": None}),
      dataclasses.asdict(model_cfg), dataclasses.asdict(train_cfg), fits.code_version(),
      "unpadded" if mesh is None else f"padded to {sharding.PAD}")


def fingerprinted(job: dict) -> dict:
  """`job` (dataclasses.asdict of a JobConfig) less the hold-out's fields when nothing is
  held out: runs without a hold-out keep the fingerprints they had before it existed. A
  run that chooses its start is marked with the rule that chooses (per seed, on the other
  seeds' fits): a folder of the rule before is not resumed. Peer seeds are kept where they
  choose (and only then; a job without them keeps its fingerprint), and so is proxy_fits
  where the proxy is more than one fit."""
  if not job.get("peer_seeds") or "best" not in (job.get("start"), job.get("tail")):
    job = {k: v for k, v in job.items() if k != "peer_seeds"}
  if job.get("proxy_fits", 1) == 1:
    job = {k: v for k, v in job.items() if k != "proxy_fits"}
  if "best" in (job.get("start"), job.get("tail")):
    return {**job, "start_choice": "per seed, on other seeds' fits"}
  if job.get("holdout_every"):
    return job
  return {k: v for k, v in job.items() if k not in ("holdout_every", "holdout_share")}


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
  npz.save_arrays(path, arrays, {"avoid": avoids})


def _load_sets(path: pathlib.Path, train: Interactions, false_neg) -> dict:
  """What _save_sets wrote; sets marked to avoid get the false negatives again."""
  arrays, meta = npz.load_arrays(path)
  return {name: (Interactions.from_pairs(arrays[f"{name}_users"], arrays[f"{name}_items"],
                                         n_users=train.n_users, n_items=train.n_items),
                 false_neg if avoid else None)
          for name, avoid in meta["avoid"].items()}


def _overlap(a: Interactions, b: Interactions) -> float:
  """The share of a's pairs that b holds too."""
  return float(np.isin(a.pair_keys(), b.pair_keys()).mean()) if a.nnz else 0.0


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
