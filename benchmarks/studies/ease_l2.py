r"""Is EASE's L2 weight what a condensed set distorts? EASE at many weights on S and on all N.

python benchmarks/studies/ease_l2.py --flagfile=experiments/flags/ml-1m.flags --ratio=0.25 \
    --seeds=0,1,2 --methods=random,proxy_top --sets="dconrec=runs/def-ml-1m" \
    --kendall=benchmarks/results/tau-ml-1m/kendall.json --output_dir=runs/ease_l2/ml-1m

EASE minimises ||X - XB||^2 + l2 ||B||^2: the first term sums over the training pairs and
the second does not, so one might expect a set of |S| = rN pairs to want about r times
the full data's l2, and a rank-agreement run (which trains every configuration at the
same l2 on S as on all N) to be confounded by it. For every set -- a baseline rebuilt
from its seed (--methods), or the condensed.npz of a finished compare.py run
(--sets=LABEL=DIR, DIR/dconrec/r<ratio>/seed<k>/) -- and for the full data, this fits
EASE at every --l2 and records test NDCG@10: where each curve peaks, and how much of the
full data's score each l2 keeps on S.

With --kendall (a compare.py or merge_kendall.py report at the same ratio), each rebuilt
set is checked against the report: EASE at the report's l2 gives the report's scores on
it (to MATCH_TOL) when it is the set that was ranked and the fits ran on a machine
like this one (DConRec's sets can differ across machines); the report gives each gap.
Writes <output_dir>/ease_l2.json, ease_l2.md and ease_l2.png; every fit is kept in
--fits_dir (default <output_dir>/fits/) and read back on a rerun.
"""

import dataclasses
import pathlib
import sys

import numpy as np
from absl import app, flags

from jaxcond import baselines
from jaxcond.cli import common, condense
from jaxcond.condense import proxy as proxy_lib
from jaxcond.core import atomic, records
from jaxcond.data import export
from jaxcond.data.interactions import DataError, Interactions
from jaxcond.judging import fits, ranking
from jaxcond.report import rank_report

flags.DEFINE_list("methods", ["random"], "Baselines to rebuild, by seed.")
flags.DEFINE_list("sets", [], "LABEL=DIR: compare.py output folders holding the sets of "
                  "LABEL (its name in --kendall) under dconrec/r<ratio>/seed<k>/.")
flags.DEFINE_list("l2", ["12.5", "25", "50", "125", "250", "500", "1000", "2000"],
                  "EASE L2 weights to fit on every set and on the full data.")
flags.DEFINE_string("kendall", None, "A kendall.json whose sets the rebuilt ones must be.")
flags.DEFINE_string("fits_dir", None, "Where each fit is kept (default <output_dir>/fits): "
                    "runs on the same data can share it.")
FLAGS = common.FLAGS

# Below this, two NDCG@10 means differ only in float32 summation; one user's top 10
# changing moves a mean over the thousands of users of these datasets by more (> 1e-6).
MATCH_TOL = 1e-7


def parse_sets(args: list[str]) -> dict[str, pathlib.Path]:
  """{label: folder} from LABEL=DIR items (the last "=" separates; labels hold flags)."""
  sets = {}
  for arg in args:
    label, sep, folder = arg.rpartition("=")
    if not sep or not label.strip() or not folder:
      raise ValueError(f"--sets: expected LABEL=DIR, got {arg!r}")
    sets[label.strip()] = pathlib.Path(folder)
  return sets


class Fitter:
  """Test NDCG@10 of EASE at a given l2 on a given set, each fit kept on disk."""

  def __init__(self, data, protocol, fits_dir: pathlib.Path):
    self.data, self.protocol, self.dir = data, protocol, fits_dir
    self.model_cfg, self.train_cfg = common.model_config(), common.train_config()
    self._scores = {}  # {(name, l2): score}: the full data's fits are asked for per set

  def __call__(self, name: str, subset: Interactions, l2: float) -> float:
    if (name, l2) not in self._scores:
      self._scores[(name, l2)] = self._fit(name, subset, l2)
    return self._scores[(name, l2)]

  def _fit(self, name: str, subset: Interactions, l2: float) -> float:
    fp = f"{self.protocol['data_checksum']}-{subset.checksum()}-{l2!r}"
    path = self.dir / f"{name}-l2_{l2:.12g}.json"
    if path.exists():
      return records.read_fingerprinted(path, fp, "fit")["test_ndcg@10"]
    _, m = fits.evaluate_on(
        "ease", self.data, subset, model_cfg=dataclasses.replace(self.model_cfg, ease_l2=l2),
        train_cfg=self.train_cfg, seed=0)
    score = m["test"]["ndcg@10"]
    records.write_json_atomic(path, {"set": name, "l2": l2, "size": subset.nnz,
                                    "test_ndcg@10": score, "fingerprint": fp})
    print(f"  {name}: EASE l2={l2:g} test ndcg@10 {score:.4f}", flush=True)
    return score


def build_sets(data, protocol, job, methods, sets) -> dict:
  """{(label, seed): S} for the rebuilt baselines and the sets in the given folders."""
  budget = baselines.budget_for(data.train.nnz, job.condense.ratio)
  model_cfg, proxy = common.model_config(), None
  if baselines.USES_PROXY & set(methods):
    params, _ = fits.fit_full(job.proxy_model, data, protocol, model_cfg=model_cfg,
                                      train_cfg=common.train_config(), seed=job.proxy_seed,
                                      cache_dir=common.cache_dir(), log=print)
    proxy = proxy_lib.tables(job.proxy_model, params, data.train, model_cfg)
  out = {}
  for seed in job.seeds:
    for m in methods:
      out[(m, seed)] = baselines.select(m, data.train, budget, proxy=proxy, seed=seed,
                                        cfg=baselines.BaselineConfig()).train
    for label, folder in sets.items():
      out[(label, seed)] = export.read_npz(
          folder / "dconrec" / f"r{job.condense.ratio:g}" / f"seed{seed}" / "condensed.npz",
          data.train)
  return out


def ease_configs(rep: dict) -> dict[str, float]:
  """{config name: l2} of the report's EASE configurations."""
  out = {}
  for name in rep["configs"]:
    c = ranking.parse_config(name)
    if c.model == "ease":
      out[name] = c.model_cfg.ease_l2
  if not out:
    raise ValueError("the --kendall report ranks no EASE configuration")
  return out


def check_recorded(rep: dict, subsets: dict, fit: Fitter, full: Interactions) -> list:
  """Per rebuilt set and seed: is it the set the report ranked? EASE at the report's l2
  must reproduce the report's scores on S (and on all N) to MATCH_TOL."""
  l2_of = ease_configs(rep)
  out = []
  for (label, seed), subset in subsets.items():
    row = next((r for r in rep["per_seed"].get(label, []) if r["seed"] == seed), None)
    entry = {"set": label, "seed": seed, "in_report": row is not None}
    if row is not None:
      gap = max(max(abs(fit("full", full, l2) - row["full"][name]),
                    abs(fit(f"{label}-s{seed}", subset, l2) - row["condensed"][name]))
                for name, l2 in l2_of.items())
      entry.update(max_gap=float(gap), same_set=bool(gap <= MATCH_TOL), tau=row["tau"])
    out.append(entry)
  return out


def curves(subsets: dict, fit: Fitter, full: Interactions, l2s: list[float]) -> dict:
  """Test NDCG@10 at every l2: the full data's, and each set's per seed."""
  rows = [{"set": label, "seed": seed, "size": s.nnz, "size_fraction": s.nnz / full.nnz,
           "test_ndcg@10": {f"{l2:g}": fit(f"{label}-s{seed}", s, l2) for l2 in l2s}}
          for (label, seed), s in subsets.items()]
  return {"full": {f"{l2:g}": fit("full", full, l2) for l2 in l2s}, "sets": rows}


def by_label(rows: list[dict]) -> dict[str, dict]:
  """Per set label: mean size fraction and mean test NDCG@10 per l2 over its seeds."""
  out = {}
  for r in rows:
    out.setdefault(r["set"], []).append(r)
  return {label: {"seeds": [r["seed"] for r in rs],
                  "size_fraction": float(np.mean([r["size_fraction"] for r in rs])),
                  "test_ndcg@10": {k: float(np.mean([r["test_ndcg@10"][k] for r in rs]))
                                   for k in rs[0]["test_ndcg@10"]}}
          for label, rs in out.items()}


def _best(scores: dict[str, float]) -> str:
  return max(scores, key=scores.get)


def markdown(res: dict, title: str) -> str:
  l2s = list(res["full"])
  full = res["full"]
  lines = [f"# {title}", "",
           "Test NDCG@10 of EASE trained at each l2 (mean over the seeds listed; best in "
           "bold), and under it the share of the full data's score at the same l2.", "",
           "| trained on | seeds | \\|S\\|/N | " + " | ".join(f"l2 = {k}" for k in l2s)
           + " | best l2 |", "|---|---|---:|" + "---:|" * len(l2s) + "---:|"]

  def cells(scores):
    best = _best(scores)
    return [f"**{scores[k]:.4f}**" if k == best else f"{scores[k]:.4f}" for k in l2s], best

  text, best = cells(full)
  lines.append("| all N pairs | – | 1.000 | " + " | ".join(text) + f" | {best} |")
  for label, e in res["by_set"].items():
    text, best = cells(e["test_ndcg@10"])
    seeds = ",".join(map(str, e["seeds"]))
    lines.append(f"| {label} | {seeds} | {e['size_fraction']:.3f} | " + " | ".join(text)
                 + f" | {best} |")
    lines.append(f"| {label}, share of full | {seeds} | | " + " | ".join(
        f"{e['test_ndcg@10'][k] / full[k]:.3f}" for k in l2s) + " | |")
  lines.append("")
  if res["recorded"]:
    lines += [f"Against `{res['kendall']}`: EASE at its l2 on the rebuilt set and on all N, "
              "scored here, beside its recorded scores (equal to "
              f"{MATCH_TOL:g}: the set it ranked, fitted by the same arithmetic; a small gap: "
              "another machine's arithmetic or a few other pairs):", ""]
    for r in res["recorded"]:
      if not r["in_report"]:
        lines.append(f"- {r['set']}, seed {r['seed']}: not in the report")
        continue
      verdict = ("reproduces its scores" if r["same_set"] else
                 f"differs from its scores by up to {r['max_gap']:.3g}")
      lines.append(f"- {r['set']}, seed {r['seed']}: {verdict}; recorded tau {r['tau']:.3f}")
    lines.append("")
  return "\n".join(lines)


def plot(res: dict, path: pathlib.Path) -> None:
  import matplotlib
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt
  fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
  l2s = np.array([float(k) for k in res["full"]])
  lines = [("all N pairs", res["full"])] + [
      (label, e["test_ndcg@10"]) for label, e in res["by_set"].items()]
  full = np.array(list(res["full"].values()))
  for name, scores in lines:
    y = np.array(list(scores.values()))
    axes[0].plot(l2s, y, marker="o", label=name)
    axes[1].plot(l2s, y / full, marker="o", label=name)
  axes[0].set(xscale="log", xlabel="EASE l2", ylabel="test NDCG@10",
              title="EASE on all N pairs and on each set")
  axes[1].set(xscale="log", xlabel="EASE l2", ylabel="NDCG@10 on S / on all N",
              title="share of the full data's score at the same l2")
  axes[0].legend(fontsize=8)
  fig.tight_layout()
  with atomic.atomic_write(path) as f:
    fig.savefig(f, format="png", dpi=110)
  plt.close(fig)


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {argv[1:]}")
  try:
    job = condense.job_config()
    unknown = [m for m in FLAGS.methods if m not in baselines.BASELINES]
    if unknown:
      raise ValueError(f"--methods: unknown baselines {unknown}")
    try:
      l2s = sorted({float(v) for v in FLAGS.l2})
    except ValueError as e:
      raise ValueError(f"--l2 must be numbers, got {FLAGS.l2}") from e
    if not l2s or l2s[0] <= 0:
      raise ValueError(f"--l2 must be positive numbers, got {FLAGS.l2}")
    sets = parse_sets(FLAGS.sets)
    if not sets and not FLAGS.methods:
      raise ValueError("nothing to fit: give --methods or --sets")
    rep = rank_report.read(FLAGS.kendall) if FLAGS.kendall else None
    if rep is not None and rep.get("ratio") != job.condense.ratio:
      raise ValueError(f"--kendall ranks sets at ratio {rep.get('ratio')}, --ratio is "
                       f"{job.condense.ratio:g}")
    out = common.check_output_dir()
    data, protocol = common.load_data()
    if rep is not None and rep.get("data_checksum") not in (None, protocol["data_checksum"]):
      raise ValueError(f"--kendall {FLAGS.kendall} was measured on other data")
    subsets = build_sets(data, protocol, job, list(FLAGS.methods), sets)
    fit = Fitter(data, protocol, pathlib.Path(FLAGS.fits_dir) if FLAGS.fits_dir
                 else out / "fits")
    res = curves(subsets, fit, data.train, l2s)
    res["by_set"] = by_label(res["sets"])
    res["recorded"] = [] if rep is None else check_recorded(rep, subsets, fit, data.train)
  except (DataError, ValueError) as e:
    sys.exit(f"error: {e}")
  res.update({"ratio": job.condense.ratio, "seeds": list(job.seeds), "n_train": data.train.nnz,
              "methods": list(FLAGS.methods), "sets_from": {k: str(v) for k, v in sets.items()},
              "kendall": FLAGS.kendall, "protocol": protocol, "versions": records.versions()})
  records.write_json_atomic(out / "ease_l2.json", res)
  md = markdown(res, f"EASE's L2 weight on {FLAGS.dataset}, r = {job.condense.ratio:g}")
  records.write_text_atomic(out / "ease_l2.md", md)
  plot(res, out / "ease_l2.png")
  print(md)


if __name__ == "__main__":
  app.run(main)
