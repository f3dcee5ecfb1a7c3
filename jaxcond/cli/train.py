r"""Trains a recommender on a dataset's full training split and reports test metrics.

jaxcond train --flagfile=experiments/flags/ml-1m.flags --output_dir=/tmp/ml1m
"""

import sys

from jaxcond.cli import common
from jaxcond.core import records
from jaxcond.data.interactions import DataError
from jaxcond.judging.experiment import train_and_evaluate

FLAGS = common.FLAGS


def main(argv):
  del argv  # common.parse_flags refuses positional arguments
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
  print(records.metrics_table({"valid": result["valid"], "test": result["test"],
                              **{f"test, {g} users": v["test"]
                                 for g, v in result["groups"].items()}}))
  print(f"item coverage@10 {result['items']['coverage@10']:.3f}, mean popularity of "
        f"recommended items {result['items']['popularity@10']:.1f}")
  print(f"best epoch {result['best_epoch']} of {result['epochs']}, "
        f"{result['train_seconds']:.1f}s training")
  common.write_result("metrics.json", result)

