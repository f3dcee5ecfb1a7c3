r"""Merges condense.py reports of runs that split the seeds between them, and prints the
retention table (mean and worst over all seeds) with |S|/N.

python benchmarks/merge_reports.py runs/dianping-seed0/report.json runs/dianping-seed12/report.json
"""

import json
import sys

import numpy as np

KEYS = ("ndcg@10", "recall@10")


def main(paths):
  reports = [json.loads(open(p).read()) for p in paths]
  checksums = {r["protocol"]["data_checksum"] for r in reports}
  if len(checksums) != 1:
    sys.exit(f"error: the reports come from different data ({sorted(checksums)})")
  seeds = [s for r in reports for s in r["seeds"]]
  print(f"seeds {seeds}, data checksum {checksums.pop()[:12]}, "
        f"accounting {reports[0]['accounting']}, ratio {reports[0]['ratio']}")
  model = reports[0]["config"]["job"]["eval_models"][0]
  full = [m["test"] for r in reports for m in r["models"][model]["full"]["per_seed"]]
  parts = {"condensed": [m for r in reports for m in r["models"][model]["condensed"]["per_seed"]]}
  for name in reports[0]["baselines"]:
    parts[name] = [m for r in reports for m in r["models"][model]["baselines"][name]["per_seed"]]
  print(f"| {model} | |S|/N | " + " | ".join(f"{k} mean | {k} retention mean (worst)"
                                             for k in KEYS) + " |")
  print("|---|---:|" + "---:|---:|" * len(KEYS))
  n_train = reports[0]["sizes"]["n_train"]
  for name, rows in parts.items():
    cells = []
    for k in KEYS:
      ratios = np.array([m["test"][k] / f[k] for m, f in zip(rows, full)])
      cells.append(f"{np.mean([m['test'][k] for m in rows]):.4f} | "
                   f"{ratios.mean():.3f} ({ratios.min():.3f})")
    size = np.mean([m["n_train"] for m in rows]) / n_train
    print(f"| {name} | {size:.3f} | " + " | ".join(cells) + " |")
  print("| full data | 1.000 | " + " | ".join(
      f"{np.mean([f[k] for f in full]):.4f} | 1.000" for k in KEYS) + " |")


if __name__ == "__main__":
  main(sys.argv[1:])
