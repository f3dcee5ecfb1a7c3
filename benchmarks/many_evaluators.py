r"""Training many same-size evaluators: one at a time, vmapped in one program, or one at a
time in several threads; the evidence for train_many's defaults on this machine.

python benchmarks/many_evaluators.py --dataset=ml-100k --min_rating=3 --models=15 \
    --json=benchmarks/results/many_evaluators.json

Draws --models random sets of --ratio of the training pairs and times BPR-MF epochs
(compiled apart, medians of --repeats passes of --epochs epochs) in each arrangement:
milliseconds per model-epoch, and each arrangement's speed-up over one at a time.
"""

import concurrent.futures
import os
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax
from absl import app, flags

from jaxcond import models
from jaxcond.core import records
from jaxcond.data.pipeline import DataConfig, prepare
from jaxcond.models import train, train_many
from jaxcond.models.graph import build_graph

flags.DEFINE_string("dataset", "ml-100k", "Dataset (name or file).")
flags.DEFINE_list("columns", ["user", "item"], "For files: user,item[,rating[,timestamp]].")
flags.DEFINE_float("min_rating", None, "Keep pairs with rating >= this.")
flags.DEFINE_string("data_dir", None, "Datasets folder (else $JAXCOND_DATA_DIR).")
flags.DEFINE_float("ratio", 0.25, "Size of each set, as a fraction of the training pairs.")
flags.DEFINE_integer("models", 15, "Evaluators (a condense.py run judges 15 by default).")
flags.DEFINE_integer("threads", 2, "Threads of the threaded arrangement.")
flags.DEFINE_integer("epochs", 20, "Epochs per timed pass.")
flags.DEFINE_integer("repeats", 3, "Timed passes per arrangement.")
flags.DEFINE_string("json", None, "Write the measurements here.")
FLAGS = flags.FLAGS
MODEL, HP, CFG = models.get_model("bpr_mf"), models.ModelConfig(), train.TrainConfig()


def arrangements(data, n_models: int, size: int):
  """{name: pass(epochs)} over n_models sets of `size` pairs, each pass blocking."""
  rng = np.random.default_rng(0)
  sets = [data.train.subset(rng.permutation(data.train.nnz) < size) for _ in range(n_models)]
  graphs = [build_graph(s, dense_limit=0) for s in sets]
  max_degree = max(int(s.user_degrees().max()) for s in sets)
  opt = optax.adam(CFG.lr)
  init = [MODEL.init(jax.random.key(m), data.train.n_users, data.train.n_items, HP)
          for m in range(n_models)]
  one = train.compiled_epoch(MODEL, HP, CFG.batch_size, CFG.reg, CFG.lr, data.train.n_items,
                             max_degree, size)
  many = train.compiled_epoch(MODEL, HP, CFG.batch_size, CFG.reg, CFG.lr, data.train.n_items,
                              max_degree, size, n_models)
  singles = [[p, opt.init(p)] for p in init]
  params_M = train_many.stack(init)
  stacked = [params_M, jax.vmap(opt.init)(params_M)]
  graph_M = train_many.stack(graphs)

  def train_one(m, epochs):
    for e in range(epochs):
      singles[m][0], singles[m][1], _ = one(*singles[m], jax.random.key(e),
                                            train.shuffle(m, e, size), graphs[m], graphs[m])
    jax.block_until_ready(singles[m][0])

  def one_at_a_time(epochs):
    for m in range(n_models):
      train_one(m, epochs)

  def vmapped(epochs):
    for e in range(epochs):
      keys = jnp.stack([jax.random.key(e)] * n_models)
      orders = np.stack([train.shuffle(m, e, size) for m in range(n_models)])
      stacked[0], stacked[1], _ = many(*stacked, keys, orders, graph_M, graph_M)
    jax.block_until_ready(stacked[0])

  def threaded(epochs):
    with concurrent.futures.ThreadPoolExecutor(FLAGS.threads) as pool:
      list(pool.map(lambda m: train_one(m, epochs), range(n_models)))

  return {"one_at_a_time": one_at_a_time, "vmapped": vmapped,
          f"{FLAGS.threads}_threads": threaded}


def main(argv):
  del argv
  data, protocol = prepare(DataConfig(dataset=FLAGS.dataset, data_dir=FLAGS.data_dir,
                                      columns=tuple(FLAGS.columns),
                                      min_rating=FLAGS.min_rating))
  size = max(1, round(FLAGS.ratio * data.train.nnz))
  out = {"dataset": FLAGS.dataset, "data_checksum": protocol["data_checksum"],
         "models": FLAGS.models, "pairs_per_set": size, "devices": str(jax.devices()),
         "cpu_count": os.cpu_count(), "versions": records.versions(), "ms_per_model_epoch": {}}
  for name, run in arrangements(data, FLAGS.models, size).items():
    run(1)  # compile
    times = []
    for _ in range(FLAGS.repeats):
      t0 = time.perf_counter()
      run(FLAGS.epochs)
      times.append(time.perf_counter() - t0)
    out["ms_per_model_epoch"][name] = 1e3 * float(np.median(times)) / (FLAGS.epochs *
                                                                       FLAGS.models)
  base = out["ms_per_model_epoch"]["one_at_a_time"]
  out["speedup"] = {k: base / v for k, v in out["ms_per_model_epoch"].items()}
  for name, ms in out["ms_per_model_epoch"].items():
    print(f"{name}: {ms:.2f} ms per model-epoch ({out['speedup'][name]:.2f}x one at a time)")
  if FLAGS.json:
    records.write_json_atomic(FLAGS.json, out)


if __name__ == "__main__":
  app.run(main)
