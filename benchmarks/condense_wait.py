r"""A user's whole wait for condense.py: this tree against an earlier revision, in turn.

python benchmarks/condense_wait.py --before=f7d8e73 --repeats=2 \
    --json=benchmarks/results/condense_wait-ml-100k.json

Extracts the `--before` revision (git archive) beside this tree and runs
`experiments/condense.py --flagfile=experiments/flags/ml-100k.flags` (or --condense_args)
in each, alternately (before, after, before, after, ...), each run with a fresh output
and cache folder so that no fit is read from a cache. Reports the median wall time of each,
their ratio, the phases of the report (proxy, condensation, judging where the revision
records it) and each run's retention of NDCG@10, so that speed and quality are read
together.
"""

import json
import os
import pathlib
import shlex
import subprocess
import sys
import tempfile
import time

import numpy as np
from absl import app, flags

from jaxcond.core import records

ROOT = pathlib.Path(__file__).resolve().parents[1]
flags.DEFINE_string("before", None, "Git revision to compare against.", required=True)
flags.DEFINE_integer("repeats", 2, "Runs of each tree.")
flags.DEFINE_string("condense_args", "--flagfile=experiments/flags/ml-100k.flags",
                    "Arguments of condense.py (shell words).")
flags.DEFINE_string("json", None, "Write the measurements here (a .md table beside it).")
FLAGS = flags.FLAGS


def extract(revision: str, into: pathlib.Path) -> pathlib.Path:
  """The tree of `revision` under `into` (no .git: the repository is left untouched)."""
  into.mkdir(parents=True)
  archive = subprocess.run(["git", "-C", str(ROOT), "archive", revision], check=True,
                           capture_output=True).stdout
  subprocess.run(["tar", "-x", "-C", str(into)], input=archive, check=True)
  return into


def one_run(tree: pathlib.Path, work: pathlib.Path) -> dict:
  out, cache = work / "out", work / "cache"
  cmd = [sys.executable, "experiments/condense.py", *shlex.split(FLAGS.condense_args),
         f"--output_dir={out}", f"--cache_dir={cache}"]
  env = dict(os.environ, PYTHONPATH=str(tree))
  t0 = time.perf_counter()
  proc = subprocess.run(cmd, cwd=tree, env=env, capture_output=True, text=True)
  wall = time.perf_counter() - t0
  if proc.returncode:
    raise RuntimeError(f"condense.py failed in {tree}:\n{proc.stderr[-3000:]}")
  rep = json.loads((out / "report.json").read_text())
  return {"wall_seconds": wall, "proxy_seconds": rep["proxy_seconds"],
          "condense_seconds_per_seed": rep["condense_seconds"],
          "judge_seconds": rep.get("judge_seconds"),
          "retention_ndcg@10": rep["retention"]["ndcg@10"],
          "baselines_retention_ndcg@10": {
              k: v["retention"]["ndcg@10"] for k, v in rep["baselines"].items()}}


def summary(runs: dict) -> dict:
  med = {k: float(np.median([r["wall_seconds"] for r in v])) for k, v in runs.items()}
  return {"median_wall_seconds": med, "after_over_before": med["after"] / med["before"]}


def table(out: dict) -> str:
  lines = ["| tree | run | wall s | proxy s | condense s/seed | judging s | retention "
           "NDCG@10 |", "|---|---:|---:|---:|---:|---:|---:|"]
  for tree, runs in out["runs"].items():
    for i, r in enumerate(runs):
      judge = "-" if r["judge_seconds"] is None else f"{r['judge_seconds']:.1f}"
      lines.append(f"| {tree} | {i} | {r['wall_seconds']:.1f} | {r['proxy_seconds']:.1f} | "
                   f"{r['condense_seconds_per_seed']:.1f} | {judge} | "
                   f"{r['retention_ndcg@10']:.3f} |")
  s = out["summary"]
  lines.append(f"\nmedian wall: before {s['median_wall_seconds']['before']:.1f} s, after "
               f"{s['median_wall_seconds']['after']:.1f} s; after / before = "
               f"{s['after_over_before']:.3f}")
  return "\n".join(lines)


def main(argv):
  del argv
  head = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "HEAD"], capture_output=True,
                        text=True, check=True).stdout.strip()
  out = {"before": FLAGS.before, "after": f"working tree at {head}",
         "condense_args": FLAGS.condense_args, "versions": records.versions(),
         "cpu_count": os.cpu_count(), "runs": {"before": [], "after": []}}
  with tempfile.TemporaryDirectory() as tmp:
    trees = {"before": extract(FLAGS.before, pathlib.Path(tmp) / "before"), "after": ROOT}
    for i in range(FLAGS.repeats):
      for name, tree in trees.items():
        out["runs"][name].append(one_run(tree, pathlib.Path(tmp) / f"{name}{i}"))
        r = out["runs"][name][-1]
        print(f"{name} run {i}: {r['wall_seconds']:.1f}s, retention ndcg@10 "
              f"{r['retention_ndcg@10']:.3f}", flush=True)
  out["summary"] = summary(out["runs"])
  print(table(out))
  if FLAGS.json:
    records.write_json_atomic(FLAGS.json, out)
    records.write_text_atomic(pathlib.Path(FLAGS.json).with_suffix(".md"), table(out) + "\n")


if __name__ == "__main__":
  app.run(main)
