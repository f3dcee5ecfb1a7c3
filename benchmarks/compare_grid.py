r"""The comparison grid of README's "Comparison" section: compare.py on every dataset, ratio,
seed and method, split into workers that run side by side (one per dataset and seed, plus
the cross-architecture runs), then merged into one compare.json / md / png per group.

python benchmarks/compare_grid.py run --out=runs/grid --parallel=16      # on a GPU machine
python benchmarks/compare_grid.py run --out=runs/grid --parallel=1 --only=ciao  # or here
python benchmarks/compare_grid.py merge --out=runs/grid --results=benchmarks/results
python benchmarks/compare_grid.py summary --results=benchmarks/results  # DConRec vs best
python benchmarks/compare_grid.py restore --out=runs/grid  # a fresh clone: rows done, back

`run` starts each worker as `python experiments/compare.py <args>` with its own output
folder (<out>/<worker>/) and log (<out>/logs/<worker>.log), at most --parallel at a time,
in the order of WORKERS (the bars' datasets first). compare.py writes each finished row
when done and reads it back on a rerun, so a stopped grid resumes where it stood, on this
machine or another. `merge` copies every worker's rows of a group into <out>/<group>/ and
reruns compare.py there with --read_only over the union of ratios and seeds (every row
read back, nothing trained; units not done are listed in compare.md), and the merged
compare.json, compare.md, compare.png (and kendall.json) go to <results>/compare-<group>/.
`restore` writes the rows of every group's committed compare.json and infeasible.json back
to its workers' row folders (a row file already there is kept), so that a run on a fresh
clone resumes the grid instead of redoing it. The tau fits cannot come back this way
(kendall.json keeps one score per fit; compare.py --tau_full_from reuses its full-data
scores), so a merge without them writes compare.md with no rank-agreement section: merge
such a grid to another --results and carry its rows over by hand.
"""

import argparse
import dataclasses
import json
import os
import pathlib
import shutil
import signal
import subprocess
import sys
import time

from jaxcond.core import records

ROOT = pathlib.Path(__file__).resolve().parents[1]

RATIOS = "0.05,0.1,0.25,0.5"
SEEDS = (0, 1, 2)
# With a LightGCN proxy only the methods that use a proxy change.
PROXY_METHODS = "dconrec,proxy_top,proxy_half,proxy_pseudo,kcenter"
ALL_MODELS = "bpr_mf,lightgcn,ease"


@dataclasses.dataclass(frozen=True)
class Worker:
  name: str
  group: str  # the merged comparison it belongs to
  args: tuple


def _grid(dataset: str, tau: bool) -> list[Worker]:
  # Peer seeds: each worker's DConRec chooses a seed's start on the other seeds' fits, as
  # condense.py does with all seeds in one run.
  flags = (f"--flagfile=experiments/flags/{dataset}.flags", f"--ratios={RATIOS}",
           f"--peer_seeds={','.join(map(str, SEEDS))}")
  return [Worker(f"{dataset}-s{s}", dataset,
                 (*flags, f"--seeds={s}", *(("--tau_ratio=0.25",) if tau else ())))
          for s in SEEDS]


def _cross(dataset: str) -> list[Worker]:
  flags = (f"--flagfile=experiments/flags/{dataset}.flags", "--ratios=0.25", "--seeds=0",
           f"--eval_models={ALL_MODELS}")
  return [Worker(f"xarch-{dataset}-bpr_mf", f"xarch-{dataset}-bpr_mf", flags),
          Worker(f"xarch-{dataset}-lightgcn", f"xarch-{dataset}-lightgcn",
                 (*flags, "--model=lightgcn", f"--methods={PROXY_METHODS}"))]


WORKERS = (_grid("ml-1m", tau=True) + _grid("dianping", tau=True) + _cross("ml-1m")
           + _cross("dianping") + _grid("ciao", tau=False) + _grid("gowalla", tau=False))


def _selected(only: str | None) -> list[Worker]:
  if not only:
    return list(WORKERS)
  keys = only.split(",")
  picked = [w for w in WORKERS if any(w.name == k or w.group == k for k in keys)]
  if not picked:
    sys.exit(f"error: --only={only} names no worker or group; groups: "
             f"{', '.join(dict.fromkeys(w.group for w in WORKERS))}")
  return picked


def run(out: pathlib.Path, parallel: int, only: str | None, extra: list[str]) -> int:
  """Runs the workers, at most `parallel` at a time; returns how many failed."""
  todo, running, failed = _selected(only), {}, []
  (out / "logs").mkdir(parents=True, exist_ok=True)
  t0 = time.time()
  signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # `timeout`: stop the workers too
  try:
    _loop(out, parallel, extra, todo, running, failed, t0)
  finally:
    for w, (proc, log, _) in running.items():
      proc.terminate()
      proc.wait()
      log.close()
      print(f"stopped {w.name} (its finished rows are kept)", flush=True)
  if failed:
    print(f"failed: {', '.join(failed)}; see {out / 'logs'}", flush=True)
  return len(failed)


def _loop(out, parallel, extra, todo, running, failed, t0) -> None:
  while todo or running:
    while todo and len(running) < parallel:
      w = todo.pop(0)
      log = open(out / "logs" / f"{w.name}.log", "a")
      cmd = [sys.executable, "experiments/compare.py", *w.args, "--noexport",
             f"--output_dir={out / w.name}", *extra]
      log.write(f"+ {' '.join(cmd)}\n")
      log.flush()
      running[w] = (subprocess.Popen(cmd, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT),
                    log, time.time())
      print(f"[{time.time() - t0:6.0f}s] started {w.name}", flush=True)
    time.sleep(2)
    for w, (proc, log, start) in list(running.items()):
      if proc.poll() is None:
        continue
      log.close()
      del running[w]
      status = "done" if proc.returncode == 0 else f"FAILED (exit {proc.returncode})"
      if proc.returncode:
        failed.append(w.name)
      print(f"[{time.time() - t0:6.0f}s] {w.name}: {status} in {time.time() - start:.0f}s",
            flush=True)


def merge(out: pathlib.Path, results: pathlib.Path, only: str | None, extra: list[str]) -> int:
  """One compare.py per group over its workers' rows; copies its outputs to results."""
  groups = {}
  for w in _selected(only):
    groups.setdefault(w.group, []).append(w)
  failed = 0
  for group, workers in groups.items():
    dest = out / group
    for w in workers:
      rows = out / w.name / "rows"
      if rows.is_dir() and w.name != group:
        shutil.copytree(rows, dest / "rows", dirs_exist_ok=True)
    if not (dest / "rows").is_dir():
      print(f"{group}: no rows yet, skipped", flush=True)
      continue
    args = _merged_args(workers)
    cmd = [sys.executable, "experiments/compare.py", *args, "--noexport", "--read_only",
           f"--output_dir={dest}", *extra]
    print(f"{group}: + {' '.join(cmd)}", flush=True)
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    if proc.returncode:
      print(f"{group}: not merged (exit {proc.returncode}): {proc.stderr.strip()[-2000:]}",
            flush=True)
      failed += 1
      continue
    target = results / f"compare-{group}"
    target.mkdir(parents=True, exist_ok=True)
    for name in ("compare.json", "infeasible.json", "compare.md", "compare.png",
                 "kendall.json"):
      if (dest / name).exists():
        shutil.copy2(dest / name, target / name)
    print(f"{group}: wrote {target}", flush=True)
  return failed


def summary(results: pathlib.Path, only: str | None) -> None:
  """Per group and ratio: DConRec's NDCG@10 retention against the best baseline's (means
  over the seeds each has), from <results>/compare-<group>/compare.json."""
  print("| group | ratio | dconrec (seeds) | best baseline (seeds) | next | dconrec best? |")
  print("|---|---:|---:|---:|---:|---|")
  for group in dict.fromkeys(w.group for w in _selected(only)):
    path = results / f"compare-{group}" / "compare.json"
    if not path.exists():
      continue
    cells = {}
    for r in json.loads(path.read_text()):
      cells.setdefault((r["ratio"], r["method"]), []).append(r["retention"]["ndcg@10"])
    for ratio in sorted({r for r, _ in cells}):
      mean = {m: (sum(v) / len(v), len(v)) for (r, m), v in cells.items() if r == ratio}
      ours = mean.pop("dconrec", None)
      ranked = sorted(mean.items(), key=lambda kv: -kv[1][0])
      if ours is None or not ranked:
        continue
      (best, (b, nb)), nxt = ranked[0], ranked[1] if len(ranked) > 1 else None
      print(f"| {group} | {ratio:g} | {ours[0]:.3f} ({ours[1]}) | {best} {b:.3f} ({nb}) | "
            + (f"{nxt[0]} {nxt[1][0]:.3f} ({nxt[1][1]})" if nxt else "–")
            + f" | {'yes' if ours[0] > b else 'no'} (of {len(mean)} baselines) |")


def restore(out: pathlib.Path, results: pathlib.Path, only: str | None) -> int:
  """Row files of the committed results, back in their workers' folders; returns how
  many were written."""
  written = 0
  selected = _selected(only)
  for group in dict.fromkeys(w.group for w in selected):
    folder = results / f"compare-{group}"
    rows = [r for name in ("compare.json", "infeasible.json") if (folder / name).exists()
            for r in json.loads((folder / name).read_text())]
    workers = [w for w in selected if w.group == group]
    kept = new = 0
    for row in rows:
      owner = next((w for w in workers if str(row["seed"]) in _seeds(w)), None)
      if owner is None:  # a seed no selected worker runs
        continue
      path = out / owner.name / "rows" / f"{row['method']}-r{row['ratio']:g}-s{row['seed']}.json"
      if path.exists():
        kept += 1
        continue
      path.parent.mkdir(parents=True, exist_ok=True)
      records.write_json_atomic(path, row)
      new += 1
    print(f"{group}: {new} rows restored, {kept} already there", flush=True)
    written += new
  return written


def _seeds(w: Worker) -> list[str]:
  return next((a.split("=", 1)[1].split(",") for a in w.args if a.startswith("--seeds=")), [])


def _merged_args(workers: list[Worker]) -> list[str]:
  """The workers' shared flags with their seeds joined."""
  seeds = []
  args = []
  for w in workers:
    seeds += [s for s in _seeds(w) if s not in seeds]
    for a in w.args:
      if not a.startswith("--seeds=") and a not in args:
        args.append(a)
  return [*args, f"--seeds={','.join(seeds)}"]


def main(argv: list[str]) -> int:
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  parser.add_argument("mode", choices=("run", "merge", "summary", "list", "restore"))
  parser.add_argument("--out", type=pathlib.Path, default=ROOT / "runs" / "grid")
  parser.add_argument("--results", type=pathlib.Path, default=ROOT / "benchmarks" / "results")
  parser.add_argument("--parallel", type=int, default=os.cpu_count() or 1)
  parser.add_argument("--only", help="comma-separated workers or groups (default: all)")
  args, extra = parser.parse_known_args(argv)  # the rest goes to every compare.py
  if args.mode == "summary":
    summary(args.results.resolve(), args.only)
    return 0
  if args.mode == "restore":
    restore(args.out.resolve(), args.results.resolve(), args.only)
    return 0
  if args.mode == "list":
    for w in _selected(args.only):
      print(f"{w.name} [{w.group}]: {' '.join(w.args)}")
    return 0
  if args.parallel < 1:
    parser.error("--parallel must be >= 1")
  if args.mode == "run":
    return 1 if run(args.out.resolve(), args.parallel, args.only, extra) else 0
  return 1 if merge(args.out.resolve(), args.results.resolve(), args.only, extra) else 0


if __name__ == "__main__":
  sys.exit(main(sys.argv[1:]))
