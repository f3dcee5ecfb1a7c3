r"""Several compare.py rank-agreement reports (kendall.json) as one, each set's seeds together.

python experiments/merge_kendall.py --output_dir=benchmarks/results/tau-ml-1m \
    benchmarks/results/compare-ml-1m/kendall.json \
    "dconrec --noaugment=benchmarks/results/noaugment-ml-1m/kendall.json" \
    "dconrec --noaugment=runs/grid-noaug/ml-1m-s2/kendall.json"

Each argument is a kendall.json, or LABEL=PATH to call that run's "dconrec" set LABEL (a
run with other condensation flags built another set). Kendall's tau is recomputed from
the recorded scores, and "stable" pairs are those every full-data seed orders alike. The
reports must agree on data, ratio, metric and configurations, and on every score they
share. Writes <output_dir>/kendall.json and kendall.md.
"""

import pathlib
import sys

from absl import app, flags

from jaxcond.core import records
from jaxcond.report import rank_report

flags.DEFINE_string("output_dir", None, "Where kendall.json and kendall.md go.",
                    required=True)
FLAGS = flags.FLAGS


def parse_source(arg: str) -> tuple[str, str | None]:
  """"PATH" or "LABEL=PATH" (a path that exists is taken whole, "=" and all)."""
  if pathlib.Path(arg).is_file() or "=" not in arg:
    return arg, None
  label, _, path = arg.rpartition("=")
  if not label.strip():
    raise ValueError(f"{arg!r}: empty label before '='")
  return path, label.strip()


def markdown(tau: dict) -> str:
  lines = ["# Rank agreement, merged", "", "From (a label names that run's dconrec set):", ""]
  lines += [f"- `{s['path']}`" + (f" as **{s['label']}**" if s["label"] else "")
            + ("" if s["checked"] else " (records no data checksum or configuration "
               "settings: not checked against the others)") for s in tau["merged_from"]]
  lines += ["", f"Data checksum: `{tau['data_checksum'] or 'not recorded'}`.", ""]
  return "\n".join(lines + rank_report.markdown_lines(tau))


def main(argv):
  if len(argv) < 2:
    raise app.UsageError("name at least one kendall.json ([LABEL=]PATH)")
  try:
    sources = []
    for arg in argv[1:]:
      path, label = parse_source(arg)
      sources.append((path, label, rank_report.read(path)))
    tau = rank_report.merge(sources)
  except ValueError as e:
    sys.exit(f"error: {e}")
  out = pathlib.Path(FLAGS.output_dir)
  out.mkdir(parents=True, exist_ok=True)
  records.write_json_atomic(out / "kendall.json", tau)
  text = markdown(tau)
  records.write_text_atomic(out / "kendall.md", text)
  print(text)


if __name__ == "__main__":
  app.run(main)
