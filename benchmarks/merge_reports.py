r"""Merges condense.py reports of runs that split the seeds between them, and prints the
retention table (mean and worst over all seeds, overall and for tail users) with |S|/N;
--json=PATH also writes it as JSON.

python benchmarks/merge_reports.py runs/dianping-seed0/report.json runs/dianping-seed12/report.json
"""

import json
import sys

import numpy as np

KEYS = ("ndcg@10", "recall@10")


def main(args):
  out = next((a.split("=", 1)[1] for a in args if a.startswith("--json=")), None)
  paths = [a for a in args if not a.startswith("--json=")]
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
                                             for k in KEYS)
        + " | tail users: " + " | ".join(f"{k} retention" for k in KEYS) + " |")
  print("|---|---:|" + "---:|---:|" * len(KEYS) + "---:|" * len(KEYS))
  n_train = reports[0]["sizes"]["n_train"]
  merged = {"seeds": seeds, "data_checksum": reports[0]["protocol"]["data_checksum"],
            "accounting": reports[0]["accounting"], "ratio": reports[0]["ratio"],
            "model": model, "rows": {}}
  for name, rows in parts.items():
    cells, row = [], {"size_fraction": np.mean([m["n_train"] for m in rows]) / n_train}
    for k in KEYS:
      ratios = np.array([m["test"][k] / f[k] for m, f in zip(rows, full)])
      row[k] = {"mean": ratios.mean(), "worst": ratios.min(), "per_seed": ratios.tolist()}
      cells.append(f"{np.mean([m['test'][k] for m in rows]):.4f} | "
                   f"{ratios.mean():.3f} ({ratios.min():.3f})")
    for k in KEYS:
      ratios = np.array([m["test"]["groups"]["tail"][k] / f["groups"]["tail"][k]
                         for m, f in zip(rows, full)])
      row[f"tail_{k}"] = {"mean": ratios.mean(), "worst": ratios.min()}
      cells.append(f"{ratios.mean():.3f}")
    merged["rows"][name] = row
    print(f"| {name} | {row['size_fraction']:.3f} | " + " | ".join(cells) + " |")
  print("| full data | 1.000 | " + " | ".join(
      f"{np.mean([f[k] for f in full]):.4f} | 1.000" for k in KEYS) + " | 1.000" * len(KEYS)
      + " |")
  if out:
    with open(out, "w") as f:
      json.dump(merged, f, indent=2, default=float)
    print(f"wrote {out}")


if __name__ == "__main__":
  main(sys.argv[1:])
