r"""Trains a recommender on a dataset's full training split and reports test metrics.

python experiments/train.py --flagfile=experiments/flags/ml-1m.flags --output_dir=/tmp/ml1m
"""

import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

from absl import app  # noqa: E402

from experiments import common  # noqa: E402
from jaxcond import report  # noqa: E402
from jaxcond.experiment import train_and_evaluate  # noqa: E402
from jaxcond.interactions import DataError  # noqa: E402

FLAGS = common.FLAGS


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {argv[1:]}")
  try:
    common.check_output_dir()
    model_cfg = common.model_config()
    train_cfg = common.train_config()
    data, protocol = common.load_data()
    result = train_and_evaluate(data, model=FLAGS.model, model_cfg=model_cfg,
                                train_cfg=train_cfg, seed=FLAGS.seed, protocol=protocol,
                                progress=common.print_epoch)
  except (DataError, ValueError, FloatingPointError) as e:
    sys.exit(f"error: {e}")
  print(report.metrics_table({"valid": result["valid"], "test": result["test"],
                              **{f"test, {g} users": v["test"]
                                 for g, v in result["groups"].items()}}))
  print(f"item coverage@10 {result['items']['coverage@10']:.3f}, mean popularity of "
        f"recommended items {result['items']['popularity@10']:.1f}")
  print(f"best epoch {result['best_epoch']} of {result['epochs']}, "
        f"{result['train_seconds']:.1f}s training")
  common.write_result("metrics.json", result)


if __name__ == "__main__":
  app.run(main, flags_parser=common.parse_flags)
