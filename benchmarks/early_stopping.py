r"""How cheaper early stopping changes the chosen epoch and the test figures.

python benchmarks/early_stopping.py --datasets=ml-1m,dianping --json=PATH

Fits full-data BPR-MF once per setting of the validation that early stopping reads
(users: a fixed random sample of this many users, 0 = all; every: epochs between
validations; patience: validations without a new best), same seed, and reports each
setting's chosen epoch, wall time and test NDCG@10 / Recall@10 (full ranking over every
user) beside today's setting (all users, every epoch, patience 10).
"""

import os
import pathlib
import sys
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
from absl import app, flags  # noqa: E402

from jaxcond import models, report, train  # noqa: E402
from jaxcond.pipeline import DataConfig, prepare  # noqa: E402

flags.DEFINE_list("datasets", ["ml-1m", "dianping"], "Datasets (names or files).")
flags.DEFINE_list("settings", ["0:1:10", "2000:1:10", "1000:1:10", "1000:2:5", "500:2:5"],
                  "users:every:patience settings; the first is the reference.")
flags.DEFINE_string("data_dir", None, "Datasets folder (else $JAXCOND_DATA_DIR).")
flags.DEFINE_list("columns", ["user", "item"], "For files: user,item[,rating[,timestamp]].")
flags.DEFINE_integer("seed", 0, "Training seed.")
flags.DEFINE_integer("max_epochs", None, "Override the epoch limit (smoke runs).")
flags.DEFINE_string("json", None, "Write the measurements here (a .md table beside it).")
FLAGS = flags.FLAGS
MIN_RATING = {"ml-1m": 3, "ml-100k": 3}


def parse(setting: str) -> dict:
  users, every, patience = (int(x) for x in setting.split(":"))
  return {"valid_users": users, "eval_every": every, "patience": patience}


def one_fit(data, setting: dict, seed: int) -> dict:
  base = train.TrainConfig()
  cfg = train.TrainConfig(**{**base.__dict__, **setting,
                             "max_epochs": FLAGS.max_epochs or base.max_epochs})
  model = models.get_model("bpr_mf")
  t0 = time.perf_counter()
  fit = train.fit(model, data, cfg=cfg, seed=seed)
  seconds = time.perf_counter() - t0
  test = train.evaluate_model(model, fit.params, fit.graph, models.ModelConfig(),
                              history=data.train, exclude=(data.train, data.valid),
                              target=data.test)
  return {**setting, "best_epoch": fit.best_epoch, "epochs": fit.epochs, "seconds": seconds,
          "test_ndcg@10": test["ndcg@10"], "test_recall@10": test["recall@10"]}


def table(results: dict) -> str:
  lines = ["| dataset | users | every | patience | best epoch | epochs | seconds | test "
           "NDCG@10 | vs reference | test Recall@10 |", "|---|---:|---:|---:|---:|---:|---:|"
           "---:|---:|---:|"]
  for name, rows in results.items():
    ref = rows[0]["test_ndcg@10"]
    for r in rows:
      lines.append(f"| {name} | {r['valid_users'] or 'all'} | {r['eval_every']} | "
                   f"{r['patience']} | {r['best_epoch']} | {r['epochs']} | "
                   f"{r['seconds']:.1f} | {r['test_ndcg@10']:.4f} | "
                   f"{(r['test_ndcg@10'] / ref - 1) * 100:+.2f}% | {r['test_recall@10']:.4f} |")
  return "\n".join(lines)


def main(argv):
  del argv
  out = {"settings": FLAGS.settings, "seed": FLAGS.seed, "versions": report.versions(),
         "cpu_count": os.cpu_count(), "results": {}, "data_checksums": {}}
  for name in FLAGS.datasets:
    data, protocol = prepare(DataConfig(dataset=name, data_dir=FLAGS.data_dir,
                                        columns=tuple(FLAGS.columns),
                                        min_rating=MIN_RATING.get(name)))
    out["data_checksums"][name] = protocol["data_checksum"]
    rows = out["results"][name] = []
    for setting in FLAGS.settings:
      rows.append(one_fit(data, parse(setting), FLAGS.seed))
      r = rows[-1]
      print(f"{name} {setting}: best epoch {r['best_epoch']} of {r['epochs']}, "
            f"{r['seconds']:.1f}s, test ndcg@10 {r['test_ndcg@10']:.4f}", flush=True)
      if FLAGS.json:
        report.write_json_atomic(FLAGS.json, out)
  print(table(out["results"]))
  if FLAGS.json:
    report.write_text_atomic(pathlib.Path(FLAGS.json).with_suffix(".md"),
                             table(out["results"]) + "\n")
  return 0 if all(np.isfinite(r["test_ndcg@10"]) for rows in out["results"].values()
                  for r in rows) else 1


if __name__ == "__main__":
  app.run(main)
