r"""How well the proxy finds false negatives: hide 10% of each user's training pairs, fit
the proxy on the rest, and count the hidden pairs among its top-k_u unseen items, beside
popularity and random rankings.

python experiments/false_negatives.py --flagfile=experiments/flags/dianping.flags \
    --output_dir=runs/fn-dianping

Writes <output_dir>/false_negatives.json and prints a table.
"""

import sys

from absl import app, flags

from jaxcond.cli import common
from jaxcond.core import records
from jaxcond.data.interactions import DataError
from jaxcond.judging import false_negatives

flags.DEFINE_float("rho", 0.9, "k_u = max(5, floor(rho * |I_u|)) flagged items per user.")
flags.DEFINE_float("hide_fraction", 0.1, "Share of each user's training pairs hidden.")
FLAGS = common.FLAGS


def table(rep: dict) -> str:
  lines = ["| ranking | flagged | hits | precision | recall | precision / random |",
           "|---|---:|---:|---:|---:|---:|"]
  for name, r in rep["rankings"].items():
    lines.append(f"| {name} | {r['flagged']:,} | {r['hits']:,.1f} | {r['precision']:.4f} | "
                 f"{r['recall']:.4f} | {r.get('precision_over_random', 1.0):.1f} |")
  return "\n".join(lines)


def main(argv):
  del argv  # common.parse_flags refuses positional arguments
  try:
    common.check_output_dir()
    data, protocol = common.load_data()
    rep = false_negatives.measure(data, rho=FLAGS.rho, fraction=FLAGS.hide_fraction,
                                  model=FLAGS.model, model_cfg=common.model_config(),
                                  train_cfg=common.train_config(), seed=FLAGS.seed,
                                  log=lambda s: print(s, flush=True))
  except (DataError, ValueError, FloatingPointError) as e:
    sys.exit(f"error: {e}")
  print(f"{rep['hidden_pairs']:,} hidden pairs; k_u = max({rep['minimum']}, "
        f"floor({rep['rho']} |I_u|))")
  print(table(rep))
  common.write_result("false_negatives.json", dict(rep, protocol=protocol,
                                                   versions=records.versions()))


if __name__ == "__main__":
  app.run(main, flags_parser=common.parse_flags)
