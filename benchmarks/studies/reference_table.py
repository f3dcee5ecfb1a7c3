r"""Collects metrics.json files of experiments/train.py runs into a markdown table.

python benchmarks/studies/reference_table.py runs/*/metrics.json
"""

import json
import sys

COLS = [f"{m}@{k}" for m in ("recall", "ndcg") for k in (5, 10, 20)]


def main(paths):
  print("| dataset | model | train pairs | " + " | ".join(COLS)
        + " | epochs (best) | train s | data checksum |")
  print("|---|---|---:|" + "---:|" * len(COLS) + "---:|---:|---|")
  for path in paths:
    with open(path) as f:
      m = json.load(f)
    p = m["protocol"]
    cells = " | ".join(f"{m['test'][c]:.4f}" for c in COLS)
    print(f"| {p['dataset']} | {m['config']['model']} | {m['n_train']:,} | {cells} | "
          f"{m['epochs']} ({m['best_epoch']}) | {m['train_seconds']:.0f} | "
          f"{p['data_checksum'][:12]} |")


if __name__ == "__main__":
  main(sys.argv[1:])
