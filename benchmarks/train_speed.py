r"""Times the compiled training epoch and the full-ranking evaluator, and a full training run.

python benchmarks/train_speed.py --data_dir=../shared/datasets --json=/tmp/train_speed.json

Reports medians of repeated runs, compile time apart:
- one BPR-MF training epoch over ML-1M (ratings >= 3, 674,674 training pairs, batch 4096,
  d=64) in interactions per second;
- full-ranking evaluation (valid: train masked) of all ML-1M users;
- the top 20 of a block of 256 score rows, `lax.top_k` against `topk.top_k` (same process,
  alternating), at ML-100k's, ML-1M's and Dianping's item counts;
- optionally (--full_dianping) full-data BPR-MF on Dianping trained to convergence with
  validation every epoch, wall time from the first epoch to the returned best parameters.
"""

import os
import pathlib
import time

import jax
import numpy as np
import optax
from absl import app, flags

from jaxcond import models
from jaxcond.core import records
from jaxcond.data.pipeline import DataConfig, prepare
from jaxcond.models import topk, train
from jaxcond.models.graph import build_graph

flags.DEFINE_string("data_dir", None, "Datasets folder (else $JAXCOND_DATA_DIR).")
flags.DEFINE_integer("repeats", 7, "Timed repetitions per measurement.")
flags.DEFINE_string("epoch_dataset", "ml-1m", "Dataset whose epoch and evaluation are timed "
                    "(ratings >= 3 for ml-1m); its figures go under its name.")
flags.DEFINE_string("full_dataset", "dianping", "Dataset trained to convergence; its figures "
                    "go under <name>_full_training.")
flags.DEFINE_bool("full_dianping", True, "Also time full training to convergence on "
                  "--full_dataset.")
flags.DEFINE_list("top_k_items", ["1682", "3628", "10207"], "Row lengths (items) at which "
                  "lax.top_k and topk.top_k are timed on a block of 256 score rows "
                  "(ML-100k's, ML-1M's and Dianping's item counts).")
flags.DEFINE_string("json", None, "Write the measurements here.")
FLAGS = flags.FLAGS


MIN_RATING = {"ml-1m": 3}


def _name(dataset: str) -> str:
  """A known dataset's name, or a file's stem."""
  return pathlib.Path(dataset).stem if "/" in dataset or "." in dataset else dataset


def _median_seconds(fn, repeats):
  times = []
  for i in range(repeats):
    t0 = time.perf_counter()
    jax.block_until_ready(fn(i))
    times.append(time.perf_counter() - t0)
  return float(np.median(times)), [round(t, 4) for t in times]


def bench_epoch_and_eval(data, repeats):
  model, hp, cfg = models.get_model("bpr_mf"), models.ModelConfig(), train.TrainConfig()
  tr = data.train
  graph = build_graph(tr)
  opt = optax.adam(cfg.lr)
  params = model.init(jax.random.key(0), tr.n_users, tr.n_items, hp)
  state = {"p": params, "s": opt.init(params)}
  epoch = train.make_epoch_fn(model, hp, cfg, opt, tr.n_items, int(tr.user_degrees().max()), tr.nnz)

  def run_epoch(i):
    state["p"], state["s"], meas = epoch(state["p"], state["s"], jax.random.key(i),
                                         train.shuffle(0, i, tr.nnz), graph)
    return state["p"]

  t0 = time.perf_counter()
  jax.block_until_ready(run_epoch(1000))
  epoch_first = time.perf_counter() - t0
  epoch_med, epoch_all = _median_seconds(run_epoch, repeats)

  def run_eval(_):
    return train.evaluate_model(model, state["p"], graph, hp, history=tr, exclude=(tr,),
                                target=data.valid)["ndcg@10"]

  t0 = time.perf_counter()
  run_eval(0)
  eval_first = time.perf_counter() - t0
  eval_med, eval_all = _median_seconds(run_eval, repeats)
  return {
      "train_pairs": tr.nnz, "batch_size": cfg.batch_size, "dim": hp.dim,
      "epoch_first_call_seconds": epoch_first, "epoch_median_seconds": epoch_med,
      "epoch_seconds_all": epoch_all, "interactions_per_second": tr.nnz / epoch_med,
      "eval_users": int((np.diff(data.valid.indptr) > 0).sum()),
      "eval_first_call_seconds": eval_first, "eval_median_seconds": eval_med,
      "eval_seconds_all": eval_all,
  }


def bench_top_k(n_items: int, repeats: int, k: int = 20, n_rows: int = 256) -> dict:
  """Medians of lax.top_k and topk.top_k on one block of random scores (a few masked),
  both jitted, run alternately; their answers must agree."""
  rng = np.random.default_rng(n_items)
  scores = rng.standard_normal((n_rows, n_items)).astype(np.float32)
  scores[rng.random(scores.shape) < 0.03] = -np.inf
  scores = jax.device_put(scores)
  plain = jax.jit(lambda s: jax.lax.top_k(s, k))
  chunked = jax.jit(lambda s: topk.top_k(s, k))
  if not np.array_equal(np.asarray(plain(scores)[1]), np.asarray(chunked(scores)[1])):
    raise AssertionError(f"topk.top_k and lax.top_k disagree at {n_items} items")
  times = {"lax": [], "topk": []}
  for _ in range(repeats):
    for name, fn in (("lax", plain), ("topk", chunked)):
      t0 = time.perf_counter()
      jax.block_until_ready(fn(scores))
      times[name].append(time.perf_counter() - t0)
  lax_s, topk_s = float(np.median(times["lax"])), float(np.median(times["topk"]))
  return {"n_items": n_items, "rows": n_rows, "k": k, "chunked": topk.chunked(n_items, k),
          "lax_top_k_median_seconds": lax_s, "topk_median_seconds": topk_s,
          "ratio": topk_s / lax_s}


def bench_full_training(data):
  """Wall time to the returned best parameters, then their test figures (full ranking,
  train and valid masked; not timed)."""
  model, cfg = models.get_model("bpr_mf"), train.TrainConfig()
  t0 = time.perf_counter()
  fit = train.fit(model, data, cfg=cfg, seed=0)
  wall = time.perf_counter() - t0
  test = train.evaluate_model(model, fit.params, fit.graph, models.ModelConfig(),
                              history=data.train, exclude=(data.train, data.valid),
                              target=data.test)
  return {"wall_seconds": wall, "train_seconds": fit.train_seconds,
          "epochs": fit.epochs, "best_epoch": fit.best_epoch, "eval_every": cfg.eval_every,
          "valid_users": cfg.valid_users, "valid_ndcg@10": fit.best_valid["ndcg@10"],
          "test_ndcg@10": test["ndcg@10"], "test_recall@10": test["recall@10"],
          "seconds_per_epoch": fit.train_seconds / fit.epochs}


def main(argv):
  del argv
  out = {"versions": records.versions(), "devices": [str(d) for d in jax.devices()],
         "cpu_count": os.cpu_count()}
  name = _name(FLAGS.epoch_dataset)
  data, protocol = prepare(DataConfig(dataset=FLAGS.epoch_dataset, data_dir=FLAGS.data_dir,
                                      min_rating=MIN_RATING.get(FLAGS.epoch_dataset)))
  r = out[name] = bench_epoch_and_eval(data, FLAGS.repeats)
  r["data_checksum"] = protocol["data_checksum"]
  print(f"{name} BPR-MF epoch: {r['epoch_median_seconds']:.3f}s median "
        f"({r['interactions_per_second'] / 1e6:.2f}M interactions/s; first call "
        f"{r['epoch_first_call_seconds']:.2f}s with compile)")
  print(f"{name} full-ranking evaluation of {r['eval_users']} users: "
        f"{r['eval_median_seconds']:.3f}s median (first call {r['eval_first_call_seconds']:.2f}s)")
  out["top_k"] = [bench_top_k(int(n), max(FLAGS.repeats, 21)) for n in FLAGS.top_k_items]
  for r in out["top_k"]:
    print(f"top 20 of 256 rows of {r['n_items']} scores: lax.top_k "
          f"{r['lax_top_k_median_seconds'] * 1e3:.2f} ms, topk.top_k "
          f"{r['topk_median_seconds'] * 1e3:.2f} ms ({r['ratio']:.2f}x)")
  if FLAGS.full_dianping:
    name = _name(FLAGS.full_dataset)
    data, protocol = prepare(DataConfig(dataset=FLAGS.full_dataset, data_dir=FLAGS.data_dir,
                                        min_rating=MIN_RATING.get(FLAGS.full_dataset)))
    d = out[f"{name}_full_training"] = bench_full_training(data)
    d["data_checksum"] = protocol["data_checksum"]
    print(f"{name} BPR-MF to convergence: {d['wall_seconds']:.1f}s, {d['epochs']} epochs "
          f"(best {d['best_epoch']}), {d['seconds_per_epoch']:.2f}s/epoch with validation; "
          f"test ndcg@10 {d['test_ndcg@10']:.4f}")
  if FLAGS.json:
    records.write_json_atomic(FLAGS.json, out)


if __name__ == "__main__":
  app.run(main)
