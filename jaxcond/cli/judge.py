r"""Judges a finished set: evaluators trained from scratch on it, on the full training split
and on same-size baselines, all tested on the dataset's test pairs.

jaxcond judge --flagfile=experiments/flags/ml-100k.flags --set=runs/ml-100k/seed0/condensed.tsv

The set is a delimited file of (user, item) pairs in the dataset's original ids (a
condense run's seed<k>/condensed.csv or .tsv reads as it is). Writes <output_dir>/
report.json and report.md, and prints retention beside the baselines. A set judged here
draws its evaluators' negatives outside the set alone (condense.py's own judging also
avoids the proxy's false negatives), so its figures may differ slightly from condense.py's.
"""

import pathlib
import sys

from absl import flags

from jaxcond import baselines, models
from jaxcond.cli import common
from jaxcond.core import records
from jaxcond.core.errors import DataError
from jaxcond.judging import sets
from jaxcond.report import summary

flags.DEFINE_string("set", None, "The set to judge: a delimited file of user, item pairs in "
                    "the dataset's original ids.", required=True)
flags.DEFINE_list("set_columns", ["user", "item"], "The set file's user and item columns, "
                  "by header name or 0-based index.")
flags.DEFINE_list("baselines", list(sets.DEFAULT_BASELINES),
                  f"Same-size sets to judge beside it; any of {', '.join(baselines.BASELINES)}.")
flags.DEFINE_list("seeds", ["0", "1", "2"], "Evaluator seeds (and baselines' seeds).")
flags.DEFINE_list("eval_models", ["bpr_mf"], "Evaluators trained on every set.")
FLAGS = common.FLAGS


def main(argv):
  del argv  # common.parse_flags refuses positional arguments
  try:
    common.check_output_dir()
    seeds = common.ints(FLAGS.seeds, "--seeds")
    for name in FLAGS.eval_models:
      models.get_model(name)
    unknown = sorted(set(FLAGS.baselines) - set(baselines.BASELINES))
    if unknown:
      raise ValueError(f"unknown --baselines {unknown}; known: {', '.join(baselines.BASELINES)}")
    data, protocol = common.load_data()
    subset = sets.read_set(FLAGS.set, data.train, columns=tuple(FLAGS.set_columns))
    print(f"{FLAGS.set}: {subset.nnz:,} pairs = {subset.nnz / data.train.nnz:.3f} of the "
          "training split")
    rep = sets.judge_set(data, protocol, subset, model_cfg=common.model_config(),
                         train_cfg=common.train_config(), seeds=seeds,
                         eval_models=tuple(FLAGS.eval_models), names=tuple(FLAGS.baselines),
                         proxy_model=FLAGS.model, cache_dir=common.cache_dir(),
                         log=lambda s: print(s, flush=True))
  except (DataError, ValueError, FloatingPointError) as e:
    sys.exit(f"error: {e}")
  rep["set"] = str(pathlib.Path(FLAGS.set).resolve())
  table = summary.table(rep)
  print(table)
  common.write_result("report.json", rep)
  md = pathlib.Path(FLAGS.output_dir) / "report.md"
  records.write_text_atomic(md, f"# Judging {FLAGS.set}\n\n{table}\n\nEvaluators: "
                            f"{', '.join(FLAGS.eval_models)}, seeds {', '.join(FLAGS.seeds)}; "
                            f"data checksum {protocol['data_checksum'][:16]}.\n")
  print(f"wrote {md}")
