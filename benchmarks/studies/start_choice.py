r"""How many fits should choose among the heuristics? The mean validation score of k of a
report's seeds, for every k, read off condense.py reports (no training).

python benchmarks/studies/start_choice.py --json=runs/start_choice.json \
    benchmarks/results/defaults/v4/*/report.json

Each report judges the proxy heuristics with every seed (BPR-MF early-stopped on all
validation pairs). For k = 1 .. the report's seeds, the rule "k fits" picks the heuristic
with the best mean validation NDCG@10 over k seeds, once for every k-subset of the seeds;
each pick is scored by its test retention (mean over all seeds), against the heuristic best
on test, which no rule reads. Per report and k: how many subsets pick the best on test,
and the mean shortfall. Writes --json and its .md beside it.

In-sample: a pick and its test figure come from the same fits, and a fit that ranks
validation well tends to rank test well, so the study flatters rules with more fits. The
rule "other seeds" is condense.py's (JobConfig.choice_seeds_for) and is out of sample: for
each seed, the pick on the mean of the other seeds' fits, scored by its retention at that
seed (a fit that chose nothing), averaged over the seeds.
"""

import itertools
import json
import pathlib
import sys

import numpy as np

from jaxcond.condense import starts
from jaxcond.core import records

METRIC = "ndcg@10"


def heuristic_figures(rep: dict, model: str = "bpr_mf") -> dict:
  """{heuristic: (validation [seeds], test retention [seeds])} of a report's judged sets."""
  ev = rep["models"][model]
  full = np.array([f["test"][METRIC] for f in ev["full"]["per_seed"]])
  out = {}
  for name in starts.HEURISTICS:
    if name not in ev["baselines"]:
      raise ValueError(f"the report judges no {name} set; judge every heuristic "
                       f"(--baselines) to compare choice rules")
    per_seed = ev["baselines"][name]["per_seed"]
    out[name] = (np.array([p["valid"][METRIC] for p in per_seed]),
                 np.array([p["test"][METRIC] for p in per_seed]) / full)
  return out


def compare_rules(figures: dict) -> dict:
  """{"best on test": {heuristic, retention}, "<k> fits": {hits, subsets, shortfall,
  picks}} for k = 1 .. the number of seeds ("1 fit" for k = 1)."""
  test = {name: float(t.mean()) for name, (_, t) in figures.items()}
  best = max(test, key=test.get)
  out = {"best on test": {"heuristic": best, "retention": test[best]}}
  n_seeds = len(next(iter(figures.values()))[0])
  for k in range(1, n_seeds + 1):
    picks = [max(figures, key=lambda name: figures[name][0][list(sub)].mean())
             for sub in itertools.combinations(range(n_seeds), k)]
    label = f"{k} fit" + "s" * (k > 1)
    out[label] = {"hits": sum(p == best for p in picks), "subsets": len(picks),
                  "shortfall": float(np.mean([test[best] - test[p] for p in picks])),
                  "picks": picks}
  out["other seeds"] = other_seeds_rule(figures, test[best])
  return out


def other_seeds_rule(figures: dict, best_retention: float) -> dict:
  """{picks, retention, shortfall}: seed s's pick on the mean validation of the other seeds,
  scored by its test retention at seed s (out of sample); retention is the mean over s."""
  n_seeds = len(next(iter(figures.values()))[0])
  picks = [max(figures, key=lambda name: figures[name][0][
      [t for t in range(n_seeds) if t != s]].mean()) for s in range(n_seeds)]
  retention = float(np.mean([figures[p][1][s] for s, p in enumerate(picks)]))
  return {"picks": picks, "retention": retention, "shortfall": best_retention - retention}


def markdown(rows: list[dict]) -> str:
  ks = [k for k in rows[0] if k.endswith((" fit", " fits"))]
  lines = ["| report | best on test | " + " | ".join(
      f"{k}: best picked (shortfall)" for k in ks) + " | other seeds: retention (shortfall) |",
      "|---|---|" + "---:|" * (len(ks) + 1)]
  for r in rows:
    best, other = r["best on test"], r["other seeds"]
    lines.append(f"| {r['report']} | `{best['heuristic']}` {best['retention']:.3f} | "
                 + " | ".join(f"{r[k]['hits']}/{r[k]['subsets']} ({r[k]['shortfall']:.4f})"
                              for k in ks)
                 + f" | {other['retention']:.3f} ({other['shortfall']:.4f}) |")
  lines.append("")
  for k in ks:
    hits = sum(r[k]["hits"] for r in rows) / sum(r[k]["subsets"] for r in rows)
    lines.append(f"- {k}: picks the best on test in {hits:.0%} of the choices; mean "
                 f"shortfall {np.mean([r[k]['shortfall'] for r in rows]):.4f} of full "
                 "NDCG@10.")
  lines.append(f"- other seeds (out of sample): mean shortfall "
               f"{np.mean([r['other seeds']['shortfall'] for r in rows]):.4f} of full NDCG@10.")
  return "\n".join(lines) + "\n"


def main(argv: list[str]) -> int:
  out = next((a.split("=", 1)[1] for a in argv if a.startswith("--json=")), None)
  paths = [pathlib.Path(a) for a in argv if not a.startswith("--")]
  stray = [a for a in argv if a.startswith("--") and not a.startswith("--json=")]
  if stray or not paths:
    print(f"usage: start_choice.py [--json=PATH] REPORT.json ... (got {stray or 'no report'})",
          file=sys.stderr)
    return 2
  rows = []
  for path in paths:
    try:
      rep = json.loads(path.read_text())
      rows.append({"report": f"{rep['protocol']['dataset']} r={rep['ratio']:g}",
                   "path": str(path), "seeds": rep["seeds"],
                   "data_checksum": rep["protocol"]["data_checksum"],
                   **compare_rules(heuristic_figures(rep))})
    except (OSError, KeyError, ValueError) as e:
      print(f"error: {path}: {e!r}", file=sys.stderr)
      return 1
  if len({len(r["seeds"]) for r in rows}) != 1:
    print("error: the reports have different numbers of seeds", file=sys.stderr)
    return 1
  md = markdown(rows)
  print(md)
  if out:
    records.write_report(pathlib.Path(out), {"rows": rows}, md)
  return 0


if __name__ == "__main__":
  sys.exit(main(sys.argv[1:]))
