r"""The headline tables (README's "Results", docs/results.md's wider form), written from
the committed reports and comparison rows, so that no figure there is typed by hand.

python benchmarks/headline.py                            # prints README's two tables
python benchmarks/headline.py --check=README.md          # exit 1 if they differ there
python benchmarks/headline.py --wide --check=docs/results.md

Sources, under --results (benchmarks/results):
- default, the four proxy heuristics and random: the default's condense.py run,
  defaults/v6/<dataset>[-r<ratio>]/report.json (every set judged by the same fits);
- DConRec's loop (the defaults before 2026-12-05): the comparison grid's DConRec rows,
  compare-<dataset>/compare.json; ML-100k, not in the grid: start-best/m100k-default[-r0.1];
- --wide adds the starts the seeds chose.
A figure is the mean over seeds of NDCG@10 retention; the highest of a row's sets is bold.
"""

import json
import pathlib
import sys

from absl import app, flags

flags.DEFINE_string("results", "benchmarks/results", "The committed results folder.")
flags.DEFINE_bool("wide", False, "Add the seeds' chosen starts (docs/results.md's form).")
flags.DEFINE_string("check", None, "A markdown file that must hold the tables verbatim.")
FLAGS = flags.FLAGS

METRIC = "ndcg@10"
RATIOS = (0.25, 0.1)
DATASETS = (("ML-100k (ratings ≥ 3)", "ml-100k"), ("ML-1M (ratings ≥ 3)", "ml-1m"),
            ("Dianping", "dianping"), ("Ciao (ratings ≥ 3)", "ciao"))
HEURISTICS = ("proxy_top_sqrt", "proxy_half_sqrt", "proxy_top", "proxy_half")
SETS = ("default", *HEURISTICS, "loop", "random")  # the columns that are bold at a maximum
TITLES = {"default": "default", "loop": "DConRec's loop", "random": "random",
          **{h: f"`{h}`" for h in HEURISTICS}}


def folder(dataset: str, ratio: float) -> str:
  return dataset if ratio == 0.25 else f"{dataset}-r{ratio:g}"


def read_report(path: pathlib.Path, dataset: str, ratio: float) -> dict:
  """A condense.py report.json, checked to be of `dataset` at `ratio`."""
  if not path.exists():
    raise FileNotFoundError(f"{path}: no report (needed for {dataset} at r = {ratio:g})")
  report = json.loads(path.read_text())
  got = (report["protocol"]["dataset"], report["ratio"])
  if got != (dataset, ratio):
    raise ValueError(f"{path}: a report of {got[0]} at r = {got[1]:g}, expected {dataset} at "
                     f"r = {ratio:g}")
  return report


def grid_loop(results: pathlib.Path, dataset: str, ratio: float) -> float:
  """The mean over seeds of the grid's DConRec rows at `ratio`."""
  path = results / f"compare-{dataset}" / "compare.json"
  values = [r["retention"][METRIC] for r in json.loads(path.read_text())
            if r["method"] == "dconrec" and r["ratio"] == ratio]
  if not values:
    raise ValueError(f"{path}: no dconrec row at r = {ratio:g}")
  return sum(values) / len(values)


def row(results: pathlib.Path, dataset: str, ratio: float, wide: bool) -> dict:
  """{set: retention} of one dataset and ratio (and "start", the chosen kinds, when wide)."""
  report = read_report(results / "defaults" / "v6" / folder(dataset, ratio) / "report.json",
                       dataset, ratio)
  out = {"default": report["retention"][METRIC]}
  for name in (*HEURISTICS, "random"):
    out[name] = report["baselines"][name]["retention"][METRIC]
  if dataset == "ml-100k":
    loop_path = results / "start-best" / folder("m100k-default", ratio) / "report.json"
    out["loop"] = read_report(loop_path, dataset, ratio)["retention"][METRIC]
  else:
    out["loop"] = grid_loop(results, dataset, ratio)
  if wide:
    out["start"] = " / ".join(dict.fromkeys(f"`{s['kind']}`" for s in report["start"]))
  return out


def table(results: pathlib.Path, ratio: float, wide: bool) -> str:
  """The markdown table of one ratio."""
  head = [f"r = {ratio:g}", *(TITLES[s] for s in SETS)] + (["start"] if wide else [])
  align = ["---"] + ["---:"] * len(SETS) + (["---"] if wide else [])
  lines = ["| " + " | ".join(head) + " |", "|" + "|".join(align) + "|"]
  for title, dataset in DATASETS:
    cells = row(results, dataset, ratio, wide)
    best = f"{max(cells[s] for s in SETS):.3f}"  # a tie at three digits is bold twice
    shown = [f"**{cells[s]:.3f}**" if f"{cells[s]:.3f}" == best else f"{cells[s]:.3f}"
             for s in SETS]
    if wide:
      shown.append(cells["start"])
    lines.append("| " + " | ".join([title, *shown]) + " |")
  return "\n".join(lines)


def missing(tables: dict, text: str) -> list:
  """The ratios whose table (of {ratio: table}) `text` does not hold verbatim."""
  return [ratio for ratio, t in tables.items() if t not in text]


def main(argv):
  del argv
  results = pathlib.Path(FLAGS.results)
  tables = {ratio: table(results, ratio, FLAGS.wide) for ratio in RATIOS}
  print("\n\n".join(tables.values()))
  if FLAGS.check:
    absent = missing(tables, pathlib.Path(FLAGS.check).read_text())
    for ratio in absent:
      print(f"{FLAGS.check} does not hold the r = {ratio:g} table as the results give it "
            "(printed above)", file=sys.stderr)
    return 1 if absent else 0
  return 0


if __name__ == "__main__":
  app.run(main)
