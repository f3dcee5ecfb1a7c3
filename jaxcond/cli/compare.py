r"""Every condensation method at several ratios: retention, size, time, and rank agreement.

jaxcond compare --flagfile=experiments/flags/ml-1m.flags --seeds=0 \
    --ratios=0.25 --methods=random,stratified,proxy_top --output_dir=runs/compare-ml-1m

Takes every flag of condense.py (they set the "dconrec" method; --ratios replaces
--ratio). Methods: dconrec (condensation.run, one seed per run, in
<output_dir>/dconrec/r<ratio>/) and the baselines of jaxcond/baselines/, each judged by
the --eval_models trained on its set exactly as condensation judges its own (a cached
full-data run per model and seed is the reference). Writes <output_dir>/compare.json (a
list of rows, one per method, ratio and seed), compare.md and compare.png; with
--tau_ratio also kendall.json: Kendall's tau between the rankings of --tau_configs by test
NDCG@10 when trained on all pairs and on each --tau_methods set. Resumable: each row (and
each tau evaluation) is written to <output_dir>/rows/ when done and read back on a rerun.
"""

import collections
import dataclasses
import json
import pathlib
import re
import sys
import time

import jax
import numpy as np
from absl import flags

from jaxcond import baselines, condensation
from jaxcond.cli import common, condense
from jaxcond.condense import condenser
from jaxcond.condense import proxy as proxy_lib
from jaxcond.core import atomic, checkpoint, records
from jaxcond.data import export
from jaxcond.data.interactions import DataError, Interactions
from jaxcond.judging import fits, judge, ranking, retention
from jaxcond.report import rank_report

METHODS = ("dconrec", *baselines.BASELINES)
HEADLINE = retention.HEADLINE
_B = baselines.BaselineConfig()

flags.DEFINE_list("methods", list(METHODS), f"Methods to run: {', '.join(METHODS)}.")
flags.DEFINE_list("ratios", ["0.05", "0.1", "0.25", "0.5"], "Sizes |S| / N to run.")
flags.DEFINE_float("tau_ratio", None, "Ratio (one of --ratios) at which to rank "
                   "--tau_configs on full and condensed data (Kendall's tau); unset: skip.")
flags.DEFINE_list("tau_configs", list(ranking.DEFAULT_CONFIGS), "Configurations to rank: "
                  "model[:field=value...] with ModelConfig / TrainConfig fields.")
flags.DEFINE_list("tau_methods", ["dconrec", "random"], "Methods (of --methods) whose sets "
                  "rank the configurations.")
flags.DEFINE_string("tau_full_from", None, "kendall.json of an earlier run on the same data "
                    "and --tau_configs: each seed's full-data scores are read from it, not "
                    "refit (the costly half of a rank-agreement run); a configuration it "
                    "records with other settings is refit.")
flags.DEFINE_list("peer_seeds", [], "Seeds of the same grid run by other workers "
                  "(compare_grid.py runs one per seed): DConRec chooses each seed's start on "
                  "fits with the other seeds of --seeds and these, as condense.py does with "
                  "all of them in one run.")
flags.DEFINE_string("dconrec_from", None, "A folder of condense.py reports (searched for "
                    "report.json): DConRec's rows at a ratio are read from a report of the "
                    "same data and settings whose seeds are --seeds and --peer_seeds (each "
                    "seed's figures), not rerun.")
flags.DEFINE_bool("export", True, "Export every baseline's set (CSV, TSV, npz, RecBole) to "
                  "<output_dir>/<method>/r<ratio>/seed<k>/; --noexport: a compact npz (dense ids).")
flags.DEFINE_bool("read_only", False, "Read the finished rows (and tau evaluations) back and "
                  "train nothing: merges grids run elsewhere; units not done are listed.")
flags.DEFINE_integer("svp_epochs", _B.svp_epochs, "SVP-CF: epochs of its BPR-MF proxy.")
flags.DEFINE_integer("svp_dim", _B.svp_dim, "SVP-CF: embedding size of its proxy.")
flags.DEFINE_float("svp_lr", _B.svp_lr, "SVP-CF: Adam learning rate of its proxy.")
flags.DEFINE_integer("svp_batch", _B.svp_batch, "SVP-CF: batch size of its proxy.")
flags.DEFINE_enum("svp_score", _B.svp_score, baselines.SVP_SCORES, "SVP-CF: transitions "
                  "(forgetting events) or incorrect (epochs the negative won).")
FLAGS = common.FLAGS


def log(text: str) -> None:
  print(text, flush=True)


class Settings:
  """Everything the flags decide, checked before the data is read."""

  def __init__(self):
    unknown = [m for m in FLAGS.methods if m not in METHODS]
    if unknown:
      raise ValueError(f"unknown methods {unknown}; known: {', '.join(METHODS)}")
    if not FLAGS.methods:
      raise ValueError("--methods is empty")
    try:
      self.ratios = sorted({float(r) for r in FLAGS.ratios})
    except ValueError as e:
      raise ValueError(f"--ratios must be numbers, got {FLAGS.ratios}") from e
    for r in self.ratios:
      if not 0 < r < 1:
        raise ValueError(f"ratios must be in (0, 1), got {r:g}")
    self.methods = list(dict.fromkeys(FLAGS.methods))
    job = condense.job_config()
    # Sorted: the workers of one grid (each its own --seeds) share one fingerprint.
    self.job = dataclasses.replace(job, peer_seeds=tuple(sorted(
        {*job.seeds, *common.ints(FLAGS.peer_seeds, "--peer_seeds")})))
    self.model_cfg, self.train_cfg = common.model_config(), common.train_config()
    self.bcfg = baselines.BaselineConfig(
        svp_epochs=FLAGS.svp_epochs, svp_dim=FLAGS.svp_dim, svp_lr=FLAGS.svp_lr,
        svp_batch=FLAGS.svp_batch, svp_score=FLAGS.svp_score)
    self.tau_ratio = FLAGS.tau_ratio
    self.tau_configs, self.tau_methods = [], []
    if FLAGS.tau_full_from and self.tau_ratio is None:
      raise ValueError("--tau_full_from needs --tau_ratio (it feeds the rank agreement)")
    if self.tau_ratio is not None:
      if self.tau_ratio not in self.ratios:
        raise ValueError(f"--tau_ratio={self.tau_ratio:g} must be one of --ratios")
      self.tau_configs = [ranking.parse_config(t, self.model_cfg, self.train_cfg)
                          for t in FLAGS.tau_configs]
      if len({c.name for c in self.tau_configs}) < 2:
        raise ValueError("--tau_configs needs at least two different configurations")
      self.tau_methods = list(dict.fromkeys(FLAGS.tau_methods))
      missing = [m for m in self.tau_methods if m not in self.methods]
      if missing:
        raise ValueError(f"--tau_methods {missing} are not among --methods")

  def fingerprint(self, data_checksum: str, method: str, ratio: float, extra=None) -> str:
    job = json.loads(json.dumps(condensation.fingerprinted(dataclasses.asdict(self.job)),
                                default=str))
    job.pop("seeds")
    return checkpoint.fingerprint(
        data_checksum, method, ratio, job if method == "dconrec" else None,
        dataclasses.asdict(self.bcfg) if method.startswith("svp") else None,
        dataclasses.asdict(self.model_cfg), dataclasses.asdict(self.train_cfg),
        list(self.job.eval_models), extra)


class Context:
  """The data, its proxy and full-data references, loaded once and on demand."""

  def __init__(self, settings: Settings, data, protocol, out: pathlib.Path):
    self.s, self.data, self.protocol, self.out = settings, data, protocol, out
    self._proxy, self._full = None, {}
    self.reports = {}  # --dconrec_from: ratio -> (path, report) or None
    # --tau_full_from: {seed: {config: score}}, checked or not, and the configurations
    # recorded there with other settings (refit).
    self.full_scores, self.full_checked, self.full_refit = None, False, []
    if FLAGS.tau_full_from:  # Settings made sure --tau_ratio is set
      self.full_scores, self.full_checked, self.full_refit = read_full_scores(
          FLAGS.tau_full_from, settings.tau_configs, protocol["data_checksum"],
          settings.job.seeds)
      if self.full_refit:
        log(f"--tau_full_from: {FLAGS.tau_full_from} trained {', '.join(self.full_refit)} "
            "with other settings: refit on the full data")

  def proxy(self) -> tuple[dict, float]:
    if self._proxy is None:
      job = self.s.job
      fitted = fits.fit_full_seeds(
          job.proxy_model, self.data, self.protocol, model_cfg=self.s.model_cfg,
          train_cfg=self.s.train_cfg, seeds=job.proxy_seeds,
          tail_fraction=job.report_tail_fraction, cache_dir=common.cache_dir(), log=log)
      tables = proxy_lib.tables_of_fits(job.proxy_model, [p for p, _ in fitted],
                                        self.data.train, self.s.model_cfg)
      self._proxy = (tables, sum(metrics["train_seconds"] for _, metrics in fitted))
    return self._proxy

  def full(self, model: str, seed: int, model_cfg=None, train_cfg=None) -> dict:
    """Test metrics of `model` trained on all training pairs (cached on disk too)."""
    model_cfg, train_cfg = model_cfg or self.s.model_cfg, train_cfg or self.s.train_cfg
    key = (model, seed, model_cfg, train_cfg)
    if key not in self._full:
      self._full[key] = fits.fit_full(
          model, self.data, self.protocol, model_cfg=model_cfg, train_cfg=train_cfg,
          seed=seed, tail_fraction=self.s.job.report_tail_fraction,
          cache_dir=common.cache_dir(), log=log)[1]["test"]
    return self._full[key]

  def set_dir(self, method: str, ratio: float, seed: int) -> pathlib.Path:
    return self.out / method / f"r{ratio:g}" / f"seed{seed}"


def _ratios(part: dict, full: dict) -> dict:
  return {k: part[k] / full[k] if full[k] > 0 else float("nan") for k in HEADLINE}


def select_row(ctx: Context, method: str, ratio: float, seed: int) -> tuple[dict, Interactions]:
  """Selects the method's set and exports it: its row (not yet judged) and the set."""
  data, s = ctx.data, ctx.s
  n_train = data.train.nnz
  budget = baselines.budget_for(n_train, ratio)
  proxy, proxy_seconds = ctx.proxy() if method in baselines.USES_PROXY else (None, None)
  t0 = time.perf_counter()
  sel = baselines.select(method, data.train, budget, proxy=proxy, seed=seed, cfg=s.bcfg)
  seconds = time.perf_counter() - t0
  folder = ctx.set_dir(method, ratio, seed)
  if FLAGS.export:
    export.export_condensed(folder, "condensed", sel.train, data.valid, data.test,
                            pseudo_N=sel.pseudo_N)
  else:  # dense ids only: what the tau evaluation reads back
    with atomic.atomic_write(folder / "condensed.npz") as f:
      np.savez_compressed(f, user_index=sel.train.users(), item_index=sel.train.indices,
                          pseudo=sel.pseudo_N)
  row = {"method": method, "ratio": ratio, "seed": seed, "size": sel.train.nnz,
         "size_fraction": sel.train.nnz / n_train,
         "pseudo_fraction": float(sel.pseudo_N.sum() / n_train),
         "condense_seconds": seconds, "proxy_seconds": proxy_seconds,
         "retention_by_model": {}, "retention_tail_by_model": {}, "test_by_model": {},
         "best_epoch_by_model": {}, "info": sel.info}
  return row, sel.train


def judge_rows(ctx: Context, rows: dict, sets: dict) -> None:
  """Fills each row's figures (rows and sets keyed alike) from every evaluator, the
  same-size sets trained together (judge.judge)."""
  s = ctx.s
  for model in s.job.eval_models:
    jobs = {key: judge.Job(sets[key], rows[key]["seed"]) for key in rows}
    evals = judge.judge(model, ctx.data, jobs, model_cfg=s.model_cfg, train_cfg=s.train_cfg,
                        tail_fraction=s.job.report_tail_fraction, log=log)
    for key, row in rows.items():
      test, full = evals[key]["test"], ctx.full(model, row["seed"])
      row["retention_by_model"][model] = _ratios(test, full)
      row["retention_tail_by_model"][model] = _ratios(test["groups"]["tail"],
                                                      full["groups"]["tail"])
      row["test_by_model"][model] = {k: test[k] for k in HEADLINE}
      row["best_epoch_by_model"][model] = evals[key]["best_epoch"]


def dconrec_row(ctx: Context, ratio: float, seed: int) -> dict:
  """The full method via condensation.run, one seed, no same-size baselines."""
  s = ctx.s
  cfg = dataclasses.replace(s.job, seeds=(seed,), baselines=(),
                            condense=dataclasses.replace(s.job.condense, ratio=ratio))
  rep = condensation.run(ctx.data, ctx.protocol, cfg, model_cfg=s.model_cfg,
                         train_cfg=s.train_cfg, out_dir=ctx.out / "dconrec" / f"r{ratio:g}",
                         cache_dir=common.cache_dir(), log=log, resume=FLAGS.resume,
                         checkpoint_every=FLAGS.checkpoint_every)
  return _row_of_report(ctx, rep, ratio, seed,
                        {"report": str(ctx.out / "dconrec" / f"r{ratio:g}" / f"seed{seed}")})


# Job fields a report may differ in and still give DConRec's rows: what is judged beside
# the set or measured, which never changes the set (the seeds are checked apart).
_REPORT_FREE = ("baselines", "reward_signal")


def dconrec_row_from(ctx: Context, ratio: float, seed: int) -> dict | None:
  """`seed`'s DConRec row at `ratio` from a condense.py report under --dconrec_from made
  by a run of these data, settings and evaluator code whose seeds are --seeds and
  --peer_seeds (so the same fits chose each seed's start); None if no report matches."""
  if ratio not in ctx.reports:  # one search per ratio, not per seed
    ctx.reports[ratio] = _matching_report(ctx, ratio)
  if ctx.reports[ratio] is None:
    return None
  path, rep = ctx.reports[ratio]
  return _row_of_report(ctx, rep, ratio, seed, {"report": str(path), "read_from_report": True})


def _row_of_report(ctx: Context, rep: dict, ratio: float, seed: int, info: dict) -> dict:
  """`seed`'s DConRec row from a condensation report (of that seed alone or of several)."""
  i = rep["seeds"].index(seed)
  per_seed = rep["per_seed"][i]
  row = {"method": "dconrec", "ratio": ratio, "seed": seed, "size": per_seed["size"],
         "size_fraction": per_seed["size_fraction"],
         "pseudo_fraction": per_seed["pseudo_kept"] / ctx.data.train.nnz,
         "condense_seconds": per_seed["condense_seconds"] + per_seed.get("start_seconds", 0.0),
         "proxy_seconds": rep["proxy_seconds"], "retention_by_model": {},
         "retention_tail_by_model": {}, "test_by_model": {}, "best_epoch_by_model": {},
         "info": info}
  for m in ctx.s.job.eval_models:
    part = rep["models"][m]["condensed"]["per_seed"][i]
    full = rep["models"][m]["full"]["per_seed"][i]
    row["retention_by_model"][m] = _one_seed_retention(part["test"], full["test"])
    row["retention_tail_by_model"][m] = _one_seed_retention(
        part["test"]["groups"]["tail"], full["test"]["groups"]["tail"])
    row["test_by_model"][m] = {k: part["test"][k] for k in HEADLINE}
    row["best_epoch_by_model"][m] = part["best_epoch"]
  return row


def _one_seed_retention(part: dict, full: dict) -> dict:
  got = retention.retention([part], [full])
  return {k: got[k] for k in HEADLINE}


def _matching_report(ctx: Context, ratio: float) -> tuple[pathlib.Path, dict] | None:
  """The first report.json under --dconrec_from (sorted paths) whose run fingerprint (its
  own, or its seed folders' records for reports written before it held one) is that of
  these settings at `ratio` run on exactly the seeds of --seeds and --peer_seeds."""
  s = ctx.s
  for path in sorted(pathlib.Path(FLAGS.dconrec_from).rglob("report.json")):
    try:
      rep = json.loads(path.read_text())
      job = rep["config"]["job"]
      seeds, models = sorted(rep["seeds"]), set(rep["models"])
    except (OSError, ValueError, KeyError, TypeError):
      continue  # not a condense.py report
    if seeds != sorted(s.job.peer_seeds) or not set(s.job.eval_models) <= models:
      continue
    cfg = dataclasses.replace(
        s.job, condense=dataclasses.replace(s.job.condense, ratio=ratio), peer_seeds=(),
        **{k: tuple(job[k]) if isinstance(job.get(k), list) else job.get(k)
           for k in _REPORT_FREE})
    want = condensation.run_fingerprint(ctx.protocol["data_checksum"], cfg, s.model_cfg,
                                        s.train_cfg)
    if _run_fingerprint_of(path.parent, rep) == want:
      return path, rep
  return None


def _run_fingerprint_of(folder: pathlib.Path, rep: dict) -> str | None:
  if "fingerprint" in rep:
    return rep["fingerprint"]
  try:  # every seed's record holds the run's fingerprint
    found = {json.loads((folder / f"seed{k}" / condensation.SEED_RECORD).read_text())
             ["fingerprint"] for k in rep["seeds"]}
  except (OSError, ValueError, KeyError):
    return None
  return found.pop() if len(found) == 1 else None


def _read(path: pathlib.Path, fingerprint: str) -> dict | None:
  """A finished unit's JSON, or None; one written by other settings is refused."""
  if not path.exists() or not FLAGS.resume:
    return None
  return records.read_fingerprinted(path, fingerprint)


def run_rows(ctx: Context) -> tuple[list[dict], list[dict], list[dict]]:
  """The rows of every unit; the units the method cannot run at (DConRec at a ratio whose
  budget its fixed tail pairs already exceed), each with the reason; and, under
  --read_only, the units not done. The baselines' sets of one ratio are judged together,
  then their rows written."""
  s = ctx.s
  units = [(m, r, seed) for r in s.ratios for m in s.methods for seed in s.job.seeds]
  done, missing, todo = {}, [], collections.defaultdict(list)
  for n, (method, ratio, seed) in enumerate(units, 1):
    path = ctx.out / "rows" / f"{method}-r{ratio:g}-s{seed}.json"
    tag = f"[{n}/{len(units)}] {method} r={ratio:g} seed {seed}"
    row = _read(path, s.fingerprint(ctx.protocol["data_checksum"], method, ratio))
    from_report = (dconrec_row_from(ctx, ratio, seed)
                   if row is None and method == "dconrec" and FLAGS.dconrec_from else None)
    if row is None and from_report is None and method == "dconrec" and FLAGS.dconrec_from:
      log(f"{tag}: no report under --dconrec_from has these data, settings and seeds")
    if row is not None:
      log(f"{tag}: done before, read back from {path}")
      done[n] = row
    elif from_report is not None:
      log(f"{tag}: read from {from_report['info']['report']}")
      done[n] = _finish(ctx, from_report, path)
    elif FLAGS.read_only:
      log(f"{tag}: not done, left out (--read_only)")
      missing.append({"method": method, "ratio": ratio, "seed": seed})
    else:
      todo[ratio].append((n, method, seed, path, tag))
  for ratio, part in todo.items():
    rows, sets = {}, {}
    for n, method, seed, path, tag in part:
      log(f"{tag}: running")
      try:
        if method == "dconrec":
          done[n] = _finish(ctx, dconrec_row(ctx, ratio, seed), path)
        else:
          rows[n], sets[n] = select_row(ctx, method, ratio, seed)
      except condenser.BudgetError as e:  # recorded and reported, not retried each rerun
        done[n] = _finish(ctx, {"method": method, "ratio": ratio, "seed": seed,
                                "infeasible": str(e)}, path)
    if rows:
      judge_rows(ctx, rows, sets)
      paths = {n: path for n, _, _, path, _ in part}
      done.update({n: _finish(ctx, row, paths[n]) for n, row in rows.items()})
  rows, infeasible = [], []
  for n in sorted(done):
    row, tag = done[n], f"[{n}/{len(units)}] {done[n]['method']} r={done[n]['ratio']:g}"
    if "infeasible" in row:
      log(f"{tag} seed {row['seed']}: cannot run: {row['infeasible']}")
      infeasible.append(row)
      continue
    ret = row["retention"]
    log(f"{tag} seed {row['seed']}: |S|/N {row['size_fraction']:.3f}, retention ndcg@10 "
        f"{ret['ndcg@10']:.3f} recall@10 {ret['recall@10']:.3f}, "
        f"{row['condense_seconds']:.1f}s to condense")
    rows.append(row)
  return rows, infeasible, missing


def _finish(ctx: Context, row: dict, path: pathlib.Path) -> dict:
  """Stamps a unit's row (headline retention, machine, fingerprint) and writes it."""
  s = ctx.s
  if "infeasible" not in row:
    row["retention"] = row["retention_by_model"][s.job.eval_models[0]]
  row["machine"] = f"{jax.default_backend()}: {jax.devices()[0].device_kind}"
  row["fingerprint"] = s.fingerprint(ctx.protocol["data_checksum"], row["method"],
                                     row["ratio"])
  records.write_json_atomic(path, row)
  return row


class _NotDone(Exception):
  """A tau evaluation --read_only found not done."""


def _require(path: pathlib.Path) -> None:
  if FLAGS.read_only:
    raise _NotDone(path.stem)


def _load_set(folder: pathlib.Path, train: Interactions) -> Interactions:
  if not (folder / "condensed.npz").exists():
    raise ValueError(f"no condensed set at {folder} to rank configurations on (the method "
                     "could not run at --tau_ratio, or its folder was removed)")
  return export.read_npz(folder / "condensed.npz", train)


def _slug(text: str) -> str:
  return re.sub(r"[^A-Za-z0-9.+-]+", "_", text)


def read_full_scores(path: str, configs: list, data_checksum: str,
                     seeds) -> tuple[dict[int, dict[str, float]], bool, list[str]]:
  """Each seed's full-data test NDCG@10 per configuration, from an earlier kendall.json;
  whether that file recorded the data checksum and the configurations' every setting
  (older ones did not), so that both could be checked; and the configurations it records
  with other settings than `configs` (to refit; a ValueError if that is all of them)."""
  try:
    earlier = rank_report.read(path)
    by_seed = rank_report.full_scores(earlier, path)
  except ValueError as e:
    raise ValueError(f"--tau_full_from: {e}") from None
  recorded = earlier.get("data_checksum")
  if recorded is not None and recorded != data_checksum:
    raise ValueError(f"--tau_full_from: {path} was measured on other data (checksum "
                     f"{recorded[:12]}..., this run's {data_checksum[:12]}...)")
  names = [c.name for c in configs]
  if earlier.get("configs") != names or earlier.get("metric") != "ndcg@10":
    raise ValueError(f"--tau_full_from: {path} ranks {earlier.get('configs')} by "
                     f"{earlier.get('metric')}; this run ranks {names} by ndcg@10")
  recorded_specs = earlier.get("config_specs")
  refit = [] if recorded_specs is None else [
      c.name for c, spec in zip(configs, recorded_specs) if not _same_settings(c, spec)]
  if len(refit) == len(configs):
    raise ValueError(f"--tau_full_from: {path} trained its configurations with other "
                     "settings (model or training flags differ from this run's)")
  absent = [seed for seed in seeds if seed not in by_seed]
  if absent:
    raise ValueError(f"--tau_full_from: {path} has no full-data scores for seeds {absent} "
                     f"(it has {sorted(by_seed)})")
  return by_seed, recorded is not None and recorded_specs is not None, refit


def _same_settings(config: ranking.Configuration, recorded: str) -> bool:
  """Whether `recorded` (str of a Configuration) names config's settings: the same text,
  but for the settings added since it was written, left out of it at their defaults."""
  spec = str(config)
  for cfg in (config.model_cfg, config.train_cfg):
    for f in dataclasses.fields(cfg):
      value = getattr(cfg, f.name)
      if f"{f.name}=" not in recorded and value == f.default:
        spec = spec.replace(f", {f.name}={value!r}", "")
  return spec == recorded


def run_tau(ctx: Context) -> dict | None:
  """Test NDCG@10 of every configuration on full data and on each tau method's set (per
  seed), and Kendall's tau between the two rankings; under --read_only, of the seeds and
  methods whose evaluations are all done (None if none is)."""
  s, data = ctx.s, ctx.data
  false_neg = {}

  def avoid(method):  # dconrec's evaluators avoid the proxy's false negatives, as in run()
    if method != "dconrec" or not s.job.exclude_false_negatives:
      return None
    if not false_neg:
      false_neg["fn"] = condensation.build_pool(data, ctx.proxy()[0], s.job)[1]
    return false_neg["fn"]

  def full_test(c, seed):  # recorded beside the rows, so a merge of rows needs no refit
    path = ctx.out / "rows" / "tau" / f"full-s{seed}-{_slug(c.name)}.json"
    fp = s.fingerprint(ctx.protocol["data_checksum"], "full", 1.0, [c.name, str(c)])
    done = _read(path, fp)
    if done is None:
      _require(path)
      test = ctx.full(c.model, seed, c.model_cfg, c.train_cfg)
      done = {"config": c.name, "test": {k: test[k] for k in HEADLINE}, "fingerprint": fp}
      records.write_json_atomic(path, done)
    return done["test"]

  per_method = {m: [] for m in s.tau_methods}
  metric, missing, full_by_seed = "ndcg@10", [], {}
  for seed in s.job.seeds:
    try:
      full = {c.name: (ctx.full_scores[seed][c.name]
                       if ctx.full_scores and c.name not in ctx.full_refit
                       else full_test(c, seed)[metric]) for c in s.tau_configs}
    except _NotDone as e:
      missing.append(str(e))
      continue
    full_by_seed[seed] = full
    for method in s.tau_methods:
      try:
        scores = _tau_scores(ctx, method, seed, avoid, metric)
      except _NotDone as e:
        missing.append(str(e))
        continue
      tau = ranking.kendall_tau(full, scores)
      per_method[method].append({"seed": seed, **tau, "full": full, "condensed": scores})
      log(f"tau: {method} (seed {seed}): Kendall tau {tau['tau']:.3f} over "
          f"{tau['n_configs']} configurations")
  if missing:
    log(f"tau: not done, left out (--read_only): {', '.join(missing)}")
  per_method = {m: rs for m, rs in per_method.items() if rs}
  if not per_method:
    return None
  summary, agreement = rank_report.summarize(per_method, full_by_seed)
  return {"ratio": s.tau_ratio, "metric": metric, "configs": [c.name for c in s.tau_configs],
          "config_specs": [str(c) for c in s.tau_configs],
          "seeds": list(s.job.seeds), "summary": summary, "per_seed": per_method,
          "missing": missing, "full_agreement": agreement,
          "data_checksum": ctx.protocol["data_checksum"],
          "full_from": {"path": FLAGS.tau_full_from, "checked": ctx.full_checked,
                        **({"refit": ctx.full_refit} if ctx.full_refit else {})}
                       if ctx.full_scores else None,
          "tau": rank_report.TAU_TEXT + f"by test {metric} trained on all N pairs and on S"}


def _tau_scores(ctx: Context, method: str, seed: int, avoid, metric: str) -> dict:
  """Test `metric` of every tau configuration trained on the method's set."""
  s, data = ctx.s, ctx.data
  subset = []  # read on the first configuration not yet evaluated on it
  scores = {}
  for c in s.tau_configs:
    path = (ctx.out / "rows" / "tau"
            / f"{method}-r{s.tau_ratio:g}-s{seed}-{_slug(c.name)}.json")
    fp = s.fingerprint(ctx.protocol["data_checksum"], method, s.tau_ratio,
                       [c.name, str(c)])
    done = _read(path, fp)
    if done is None:
      _require(path)
      if not subset:
        subset.append(_load_set(ctx.set_dir(method, s.tau_ratio, seed), data.train))
      log(f"tau: {c.name} on {method} (seed {seed})")
      _, m = fits.evaluate_on(
          c.model, data, subset[0], model_cfg=c.model_cfg, train_cfg=c.train_cfg,
          seed=seed, avoid=avoid(method), tail_fraction=s.job.report_tail_fraction,
          log=log)
      done = {"config": c.name, "test": {k: m["test"][k] for k in HEADLINE},
              "fingerprint": fp}
      records.write_json_atomic(path, done)
    scores[c.name] = done["test"][metric]
  return scores


def aggregate(rows: list[dict], models: tuple) -> list[dict]:
  """One entry per (method, ratio): mean and std over seeds."""
  groups = {}
  for r in rows:
    groups.setdefault((r["method"], r["ratio"]), []).append(r)
  out = []
  for (method, ratio), rs in groups.items():
    def stat(get):
      v = np.array([get(r) for r in rs], np.float64)
      return float(v.mean()), float(v.std())
    entry = {"method": method, "ratio": ratio, "seeds": [r["seed"] for r in rs],
             "size_fraction": stat(lambda r: r["size_fraction"])[0],
             "condense_seconds": stat(lambda r: r["condense_seconds"])[0]}
    for m in models:
      for k in ("ndcg@10", "recall@10"):
        entry[(m, k)] = stat(lambda r, m=m, k=k: r["retention_by_model"][m][k])
        entry[(m, "tail", k)] = stat(lambda r, m=m, k=k: r["retention_tail_by_model"][m][k])
    out.append(entry)
  return out


def _pm(mean_std) -> str:
  return f"{mean_std[0]:.3f} ± {mean_std[1]:.3f}"


def markdown(rows: list[dict], models: tuple, protocol: dict, tau: dict | None,
             proxy_model: str = "bpr_mf", infeasible: tuple = (), missing: tuple = ()) -> str:
  agg = aggregate(rows, models)
  head = models[0]
  lines = [f"# Condensation methods compared on {protocol['dataset']}", "",
           f"Retention: test metric of {head} trained on S over the same model trained on "
           f"all N = {protocol['counts']['train']:,} training pairs (same split, settings "
           "and seed), mean ± std over the seeds listed. Tail: the 20% least active users. "
           "Seconds: building S (the shared proxy fit excluded; DConRec's include the fits "
           "that choose its start, shared among the seeds of one run).", "",
           "| method | ratio | seeds | \\|S\\|/N | NDCG@10 | Recall@10 | tail NDCG@10 | seconds |",
           "|---|---:|---|---:|---:|---:|---:|---:|"]
  for e in agg:
    lines.append(f"| {e['method']} | {e['ratio']:g} | {','.join(map(str, e['seeds']))} | "
                 f"{e['size_fraction']:.3f} | "
                 f"{_pm(e[(head, 'ndcg@10')])} | {_pm(e[(head, 'recall@10')])} | "
                 f"{_pm(e[(head, 'tail', 'ndcg@10')])} | {e['condense_seconds']:.1f} |")
  lines.append("")
  if missing:
    todo = {}
    for u in missing:
      todo.setdefault((u["method"], u["ratio"]), []).append(str(u["seed"]))
    lines += ["Not measured yet (--read_only): "
              + "; ".join(f"{m} at {r:g} (seeds {','.join(ss)})" for (m, r), ss in todo.items())
              + ".", ""]
  if infeasible:
    lines += ["Not run (no set of that size exists under the method's settings):", ""]
    lines += [f"- {r['method']} at ratio {r['ratio']:g}, seed {r['seed']}: {r['infeasible']}"
              for r in infeasible]
    lines.append("")
  if len(models) > 1:
    lines += ["## Cross-architecture: NDCG@10 retention per evaluator", "",
              f"S is built once (with a {proxy_model} proxy where a model is involved; "
              "SVP-CF always uses its own BPR-MF) and each evaluator is trained on it.", "",
              "| method | ratio | " + " | ".join(models) + " |",
              "|---|---:|" + "---:|" * len(models)]
    for e in agg:
      lines.append(f"| {e['method']} | {e['ratio']:g} | "
                   + " | ".join(_pm(e[(m, 'ndcg@10')]) for m in models) + " |")
    lines.append("")
  if tau:
    lines += rank_report.markdown_lines(tau)
  lines += ["## Methods", "", "- dconrec: this library's condensation (condensation.run with "
            "the condense.py flags)"]
  read = {}
  for r in rows:
    if r.get("info", {}).get("read_from_report"):
      read.setdefault(r["info"]["report"], []).append(f"{r['ratio']:g} seed {r['seed']}")
  lines += [f"  - read from a condense.py report of the same settings, not rerun: "
            f"{', '.join(units)} from `{path}`" for path, units in read.items()]
  lines += [f"- {n}: {d}" for n, d in baselines.SOURCES.items()
            if any(r["method"] == n for r in rows)]
  lines += ["", "## Protocol", "",
            f"- dataset {protocol['dataset']}, split {protocol['split']} "
            f"{protocol['ratios']} seed {protocol['seed']}, data checksum "
            f"`{protocol['data_checksum']}`",
            f"- evaluators: {', '.join(models)}; full-data runs cached per model and seed",
            "- rows per machine (each row's retention is over a full-data run on the same "
            "machine): " + ", ".join(f"{m} {n}" for m, n in sorted(collections.Counter(
                r.get("machine", "not recorded") for r in rows).items())), "",
            "![retention against ratio](compare.png)", ""]
  return "\n".join(lines)


def figure(rows: list[dict], models: tuple, path: pathlib.Path, dataset: str) -> None:
  """Retention of NDCG@10 against ratio, one line per method, one panel per evaluator."""
  from matplotlib.figure import Figure
  agg = aggregate(rows, models)
  fig = Figure(figsize=(5.5 * len(models) + 2, 4.2), layout="constrained")
  axes = np.atleast_1d(fig.subplots(1, len(models), sharey=True))
  methods = list(dict.fromkeys(e["method"] for e in agg))
  for ax, model in zip(axes, models):
    for method in methods:
      es = sorted((e for e in agg if e["method"] == method), key=lambda e: e["ratio"])
      mean = [e[(model, "ndcg@10")][0] for e in es]
      std = [e[(model, "ndcg@10")][1] for e in es]
      ax.errorbar([e["ratio"] for e in es], mean, yerr=std, marker="o", capsize=3,
                  label=method, linestyle="-" if method == "dconrec" else "--")
    ax.axhline(1.0, color="black", linewidth=1, linestyle=":")
    ax.set(xscale="log", xlabel="|S| / N (ratio)", ylabel="NDCG@10 retention",
           title=f"evaluator {model}")
    ratios = sorted({e["ratio"] for e in agg})
    ax.set_xticks(ratios, [f"{r:g}" for r in ratios])
    ax.minorticks_off()
    ax.grid(alpha=0.3)
  fig.legend(*axes[0].get_legend_handles_labels(), loc="outside right center", fontsize=8)
  fig.suptitle(f"{pathlib.Path(dataset).name}: test NDCG@10 retention against |S| / N")
  with atomic.atomic_write(path, "wb") as f:
    fig.savefig(f, format="png", dpi=110)


def main(argv):
  del argv  # common.parse_flags refuses positional arguments
  try:
    out = common.check_output_dir()
    settings = Settings()
    data, protocol = common.load_data()
    ctx = Context(settings, data, protocol, out)
    rows, infeasible, missing = run_rows(ctx)
    if not rows:
      raise ValueError(f"no method could run: {infeasible[0]['infeasible']}" if infeasible
                       else f"no row is done in {out} (--read_only)")
    tau = run_tau(ctx) if settings.tau_ratio is not None else None
  except (DataError, ValueError, FloatingPointError) as e:
    sys.exit(f"error: {e}")
  models = tuple(settings.job.eval_models)
  records.write_json_atomic(out / "compare.json", rows)
  records.write_json_atomic(out / "infeasible.json", infeasible)
  if tau is not None:
    records.write_json_atomic(out / "kendall.json", tau)
  text = markdown(rows, models, protocol, tau, settings.job.proxy_model, infeasible, missing)
  records.write_text_atomic(out / "compare.md", text)
  figure(rows, models, out / "compare.png", protocol["dataset"])
  print(text)
  log(f"wrote {out / 'compare.json'}, compare.md, compare.png"
      + (", kendall.json" if tau is not None else ""))

