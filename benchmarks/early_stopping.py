r"""How cheaper early stopping changes the chosen epoch and the test figures.

python benchmarks/early_stopping.py --datasets=ml-1m,dianping --json=PATH

Fits full-data BPR-MF once per setting of the validation that early stopping reads
(users: a fixed random sample of this many users, 0 = all; every: epochs between
validations; patience: validations without a new best), same seed, and reports each
setting's chosen epoch, wall time and test NDCG@10 / Recall@10 (full ranking over every
user) beside today's setting (all users, every epoch, patience 10).

With --sets_from=<a condense.py output folder> (one dataset), the sets that run judged
(seed<k>/sets.npz) are fitted instead, each with its own seed and steps-matched schedule
(train.matched_to), so the judging phase's fits are measured too: how many change their
chosen epoch, and the mean and largest change of test NDCG@10 against the reference.
"""

import os
import pathlib
import time

import numpy as np
from absl import app, flags

from jaxcond import models
from jaxcond.core import npz, records
from jaxcond.data.interactions import Interactions
from jaxcond.data.pipeline import DataConfig, prepare
from jaxcond.models import train

flags.DEFINE_list("datasets", ["ml-1m", "dianping"], "Datasets (names or files).")
flags.DEFINE_list("settings", ["0:1:10", "2000:1:10", "1000:1:10", "1000:2:5", "500:2:5"],
                  "users:every:patience settings; the first is the reference.")
flags.DEFINE_string("data_dir", None, "Datasets folder (else $JAXCOND_DATA_DIR).")
flags.DEFINE_list("columns", ["user", "item"], "For files: user,item[,rating[,timestamp]].")
flags.DEFINE_integer("seed", 0, "Training seed.")
flags.DEFINE_integer("max_epochs", None, "Override the epoch limit (smoke runs).")
flags.DEFINE_string("sets_from", None, "A condense.py output folder whose judged sets to "
                    "fit instead of the full data (one dataset).")
flags.DEFINE_string("json", None, "Write the measurements here (a .md table beside it).")
FLAGS = flags.FLAGS
MIN_RATING = {"ml-1m": 3, "ml-100k": 3}


def parse(setting: str) -> dict:
  users, every, patience = (int(x) for x in setting.split(":"))
  return {"valid_users": users, "eval_every": every, "patience": patience}


def one_fit(data, setting: dict, seed: int, subset=None) -> dict:
  base = train.TrainConfig()
  cfg = train.TrainConfig(**{**base.__dict__, **setting,
                             "max_epochs": FLAGS.max_epochs or base.max_epochs})
  if subset is not None:
    cfg = train.matched_to(cfg, data.train.nnz, subset.nnz)
  model = models.get_model("bpr_mf")
  t0 = time.perf_counter()
  fit = train.fit(model, data, cfg=cfg, seed=seed, train=subset)
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


def judged_sets(folder: pathlib.Path, train_pairs) -> dict:
  """{"<name> seed <k>": (set, seed)} of every seed<k>/sets.npz under `folder`."""
  out = {}
  for path in sorted(folder.glob("seed*/sets.npz")):
    seed = int(path.parent.name[4:])
    arrays, meta = npz.load_arrays(path)
    for name in meta["avoid"]:
      out[f"{name} seed {seed}"] = (Interactions.from_pairs(
          arrays[f"{name}_users"], arrays[f"{name}_items"], n_users=train_pairs.n_users,
          n_items=train_pairs.n_items), seed)
  if not out:
    raise FileNotFoundError(f"no seed<k>/sets.npz under {folder}")
  return out


def sets_summary(rows_by_set: dict) -> list[dict]:
  """Per setting: sets whose chosen epoch moved, mean / largest |change| of test NDCG@10."""
  out = []
  for i, setting in enumerate(FLAGS.settings):
    ref = [rows[0] for rows in rows_by_set.values()]
    got = [rows[i] for rows in rows_by_set.values()]
    change = [abs(g["test_ndcg@10"] / r["test_ndcg@10"] - 1) for g, r in zip(got, ref)]
    out.append({"setting": setting, "sets": len(got),
                "epoch_changed": sum(g["best_epoch"] != r["best_epoch"]
                                     for g, r in zip(got, ref)),
                "mean_abs_change": float(np.mean(change)), "max_abs_change": max(change),
                "mean_test_ndcg@10": float(np.mean([g["test_ndcg@10"] for g in got])),
                "seconds": float(sum(g["seconds"] for g in got))})
  return out


def run_sets(data, folder: pathlib.Path, out: dict) -> None:
  rows_by_set = out["results"] = {}
  for label, (subset, seed) in judged_sets(folder, data.train).items():
    rows_by_set[label] = [one_fit(data, parse(s), seed, subset) for s in FLAGS.settings]
    print(f"{label}: " + ", ".join(f"{s} epoch {r['best_epoch']} test "
                                   f"{r['test_ndcg@10']:.4f}" for s, r in
                                   zip(FLAGS.settings, rows_by_set[label])), flush=True)
  out["summary"] = sets_summary(rows_by_set)
  for r in out["summary"]:
    print(f"{r['setting']}: chosen epoch changed on {r['epoch_changed']}/{r['sets']} sets; "
          f"test NDCG@10 changed {r['mean_abs_change']:.2%} on average, at most "
          f"{r['max_abs_change']:.2%}; mean {r['mean_test_ndcg@10']:.4f}; {r['seconds']:.0f}s")


def load(name: str, out: dict):
  """The dataset's split; its checksum goes into out["data_checksums"]."""
  data, protocol = prepare(DataConfig(dataset=name, data_dir=FLAGS.data_dir,
                                      columns=tuple(FLAGS.columns),
                                      min_rating=MIN_RATING.get(name)))
  out["data_checksums"][name] = protocol["data_checksum"]
  return data


def main(argv):
  del argv
  out = {"settings": FLAGS.settings, "seed": FLAGS.seed, "versions": records.versions(),
         "cpu_count": os.cpu_count(), "results": {}, "data_checksums": {}}
  if FLAGS.sets_from:
    name = FLAGS.datasets[0]
    data = load(name, out)
    run_sets(data, pathlib.Path(FLAGS.sets_from), out)
    if FLAGS.json:
      records.write_json_atomic(FLAGS.json, out)
    return 0
  for name in FLAGS.datasets:
    data = load(name, out)
    rows = out["results"][name] = []
    for setting in FLAGS.settings:
      rows.append(one_fit(data, parse(setting), FLAGS.seed))
      r = rows[-1]
      print(f"{name} {setting}: best epoch {r['best_epoch']} of {r['epochs']}, "
            f"{r['seconds']:.1f}s, test ndcg@10 {r['test_ndcg@10']:.4f}", flush=True)
      if FLAGS.json:
        records.write_json_atomic(FLAGS.json, out)
  print(table(out["results"]))
  if FLAGS.json:
    records.write_text_atomic(pathlib.Path(FLAGS.json).with_suffix(".md"),
                             table(out["results"]) + "\n")
  return 0 if all(np.isfinite(r["test_ndcg@10"]) for rows in out["results"].values()
                  for r in rows) else 1


if __name__ == "__main__":
  app.run(main)
