"""What the studies that write one --json report share: setup, proxy, Pearson r, main."""

import pathlib
import sys
from typing import Callable, NamedTuple

import numpy as np
from absl import app, flags

from jaxcond import baselines, condensation
from jaxcond.cli import common, condense
from jaxcond.condense import holdout
from jaxcond.condense import proxy as proxy_lib
from jaxcond.core import records
from jaxcond.data.interactions import DataError, Interactions
from jaxcond.data.split import DatasetSplit

flags.DEFINE_string("json", None, "Where the study's JSON report goes (its .md beside).")
FLAGS = common.FLAGS


class Setup(NamedTuple):
  job: condensation.JobConfig
  data: DatasetSplit
  protocol: dict
  reward_part: Interactions  # the halves of validation, seed 0
  selection_part: Interactions
  proxy: dict
  budget: int  # round(r N) of the training pairs


def setup() -> Setup:
  """What the flags give a study of one condensation: the job, the data, validation split
  in halves (the reward part the proxy and any reward read, the selection part the
  evaluator is scored on), the proxy's tables, and the budget."""
  job = condense.job_config()
  data, protocol = common.load_data()
  reward_part, selection_part = holdout.split_valid(data.valid, 0.5, 0)
  proxy = proxy_tables(data, reward_part, selection_part, job)
  return Setup(job, data, protocol, reward_part, selection_part, proxy,
               baselines.budget_for(data.train.nnz, job.condense.ratio))


def correlation(a: np.ndarray, b: np.ndarray) -> float:
  """Pearson's r of two vectors (0 where either is constant)."""
  a, b = a - a.mean(), b - b.mean()
  scale = np.sqrt((a * a).sum() * (b * b).sum())
  return float((a * b).sum() / scale) if scale > 0 else 0.0


def proxy_tables(data, reward_part, selection_part, job) -> dict:
  """The proxy (job's model and seed) early-stopped on the reward part, the selection part
  masked: its {"user", "item"} tables over data.train."""
  fit = holdout.proxy_on(data, reward_part, selection_part, model_name=job.proxy_model,
                         seed=job.proxy_seed, model_cfg=common.model_config(),
                         train_cfg=common.train_config())
  return proxy_lib.tables(job.proxy_model, fit.params, data.train, common.model_config())


def main_of(run: Callable[..., dict], markdown: Callable[[dict], str],
            check: Callable[[], None] = lambda: None, errors: tuple = (),
            after_write: Callable[[dict, pathlib.Path], None] = lambda result, path: None
            ) -> Callable:
  """The absl main of a study: `check()` the flags (ValueError names the bad one), then
  `run(log)` with --json's folder as the output folder, and write --json and its .md.

  `errors` are further exceptions reported as a one-line error; `after_write(result,
  path)` writes what else the study draws beside --json."""

  def main(argv):
    if len(argv) > 1:
      raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    if not FLAGS.json:
      sys.exit("error: --json=PATH is required")
    try:
      check()
      FLAGS.output_dir = str(pathlib.Path(FLAGS.json).parent)
      common.check_output_dir()
      result = run(log=lambda s: print(s, flush=True))
    except (DataError, ValueError, *errors) as e:
      sys.exit(f"error: {e}")
    records.write_report(FLAGS.json, result, markdown(result))
    after_write(result, pathlib.Path(FLAGS.json))
    print(markdown(result))

  return main
