r"""The table that chooses the defaults: each candidate setting's retention of NDCG@10 on
validation and on test, per dataset and over the datasets together, read off condense
runs' report.json files; --choose_on names the split that chooses.

python benchmarks/choose_defaults.py \
    --candidate='start alone=ml-1m:runs/ml1m-best50/report.json#zero_update' \
    --candidate='start, then steps=ml-1m:runs/ml1m-best50/report.json#condensed' \
    ... --json=defaults.json

A candidate is `setting=dataset:report.json#set`, the set being "condensed" or a baseline
of that report; a --reference (same form: a baseline, say) is shown, never chosen.
Retention on a split = the evaluator's NDCG@10 there on the set / on all
training pairs, same seed (the report's first evaluator), mean over the report's seeds.
The choice: the setting with the highest mean retention over the datasets on
--choose_on (validation by default), among those measured on every dataset given with
--min_seeds seeds at least. A set
made by an outer loop whose reward read validation pairs fits them (its validation
retention can pass 1 while its test retention falls): validation cannot judge it, and the
table marks such cells.
"""

import json
import pathlib
import sys

import numpy as np
from absl import app, flags

from jaxcond.core import records

METRIC = "ndcg@10"
flags.DEFINE_multi_string("candidate", [], "setting=dataset:path/report.json#set (repeat).")
flags.DEFINE_multi_string("reference", [], "Shown beside the candidates, never chosen (same "
                          "form).")
flags.DEFINE_enum("choose_on", "valid", ["valid", "test"], "The split whose retention "
                  "chooses.")
flags.DEFINE_integer("min_seeds", 3, "Seeds a candidate needs on every dataset to be chosen.")
flags.DEFINE_string("json", None, "Write the table and the choice here as JSON.")
FLAGS = flags.FLAGS


def parse(spec: str) -> tuple[str, str, pathlib.Path, str]:
  """(setting, dataset, report path, set name) of `setting=dataset:path#set`."""
  setting, sep, rest = spec.partition("=")
  dataset, sep2, where = rest.partition(":")
  path, sep3, name = where.rpartition("#")
  if not (sep and sep2 and sep3 and setting and dataset and path and name):
    raise ValueError(f"--candidate {spec!r}: expected setting=dataset:path/report.json#set")
  return setting, dataset, pathlib.Path(path), name


def retention(report: dict, name: str, path: pathlib.Path) -> dict:
  """{"valid", "test": mean retention of METRIC, "seeds": count} of set `name`."""
  entry = report["condensed"] if name == "condensed" else (report.get("baselines") or {}).get(name)
  if entry is None:
    raise ValueError(f"{path}: no set {name!r}; it has condensed and "
                     f"{', '.join(report.get('baselines') or {}) or 'no baselines'}")
  full, ours = report["full"]["per_seed"], entry["per_seed"]
  out = {}
  for split in ("valid", "test"):
    if any(split not in r for r in full + ours):
      raise ValueError(f"{path}: set {name!r} or the full data lacks per-seed {split} "
                       "metrics (a report written before they were recorded)")
    out[split] = float(np.mean([s[split][METRIC] / f[split][METRIC]
                                for s, f in zip(ours, full, strict=True)]))
  return {**out, "seeds": len(ours)}


def table(candidates: list[str], references: tuple = (), choose_on: str = "valid",
          min_seeds: int = 1) -> dict:
  """{"datasets", "settings": {setting: {dataset: retention}}, "means", "references",
  "chosen"}."""
  settings, datasets, shown = {}, [], set()
  for k, spec in enumerate((*candidates, *references)):
    setting, dataset, path, name = parse(spec)
    if k >= len(candidates):
      shown.add(setting)
    if not path.exists():
      raise ValueError(f"--candidate {spec!r}: no file {path}")
    got = retention(json.loads(path.read_text()), name, path)
    settings.setdefault(setting, {})[dataset] = {**got, "source": f"{path}#{name}"}
    datasets += [dataset] if dataset not in datasets else []
  means = {s: {split: float(np.mean([by[d][split] for d in datasets]))
               for split in ("valid", "test")}
           for s, by in settings.items() if all(d in by for d in datasets)}
  eligible = [s for s in means if s not in shown
              and min(by["seeds"] for by in settings[s].values()) >= min_seeds]
  if not eligible:
    raise ValueError(f"no candidate is measured on every dataset ({', '.join(datasets)}) "
                     f"with {min_seeds} seeds or more")
  chosen = max(eligible, key=lambda s: means[s][choose_on])  # the first on ties
  return {"metric": METRIC, "datasets": datasets, "settings": settings, "means": means,
          "references": sorted(shown), "chosen": chosen, "chosen_on": choose_on,
          "min_seeds": min_seeds}


def markdown(t: dict) -> str:
  head = " | ".join(t["datasets"])
  lines = [f"Retention of {t['metric']}: validation (test), mean over each report's seeds",
           "", f"| setting | {head} | mean over all |",
           "|---|" + "---:|" * (len(t["datasets"]) + 1)]
  for setting, by in t["settings"].items():
    cells = [f"{by[d]['valid']:.3f}{'*' * (round(by[d]['valid'], 3) > 1)} ({by[d]['test']:.3f})"
             f"{_seeds(by[d])}" if d in by else "-" for d in t["datasets"]]
    mean = t["means"].get(setting)
    total = f"{mean['valid']:.3f} ({mean['test']:.3f})" if mean else "-"
    mark = (" (chosen)" if setting == t["chosen"] else
            " (reference)" if setting in t["references"] else "")
    lines.append(f"| {setting}{mark} | " + " | ".join(cells) + f" | {total} |")
  lines += ["", "* above 1: its evaluator ranks validation better than the full data's does (a "
            "loop whose reward read validation pairs fits them).",
            f"Chosen on {t['chosen_on']}, among the candidates with {t['min_seeds']} seeds or "
            f"more on every dataset: {t['chosen']}."]
  return "\n".join(lines)


def _seeds(entry: dict) -> str:
  return "" if entry["seeds"] == 3 else f" [{entry['seeds']} seed{'s' * (entry['seeds'] > 1)}]"


def main(argv):
  if len(argv) > 1:
    sys.exit(f"error: unexpected arguments {argv[1:]}")
  try:
    t = table(FLAGS.candidate, FLAGS.reference, FLAGS.choose_on, FLAGS.min_seeds)
  except ValueError as e:
    sys.exit(f"error: {e}")
  print(markdown(t))
  if FLAGS.json:
    records.write_json_atomic(pathlib.Path(FLAGS.json), t)


if __name__ == "__main__":
  app.run(main)
