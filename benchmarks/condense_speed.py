r"""Times the compiled outer step of the condenser, and a whole condensation.

python benchmarks/condense_speed.py --data_dir=../shared/datasets --json=/tmp/condense.json

On Dianping (427,938 training pairs, 379,192 pseudo candidates at rho 0.9), K = 4, BPR-MF
d = 64: seconds per outer iteration (median over iterations, compile time apart) for the
default inner training (one user step from the proxy's item table) and for the official
code's inner training (one epoch of Adam mini-batches from a fresh model), and the wall
time of a complete condensation: proxy training, pool, and the default outer steps.
"""

import dataclasses
import pathlib
import sys
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

import jax  # noqa: E402
import numpy as np  # noqa: E402
from absl import app, flags  # noqa: E402

from jaxcond import condensation, condenser, inner, models, pool as pool_lib, report  # noqa: E402
from jaxcond import train as train_lib  # noqa: E402
from jaxcond.graph import build_graph  # noqa: E402
from jaxcond.pipeline import DataConfig, prepare  # noqa: E402

flags.DEFINE_string("data_dir", None, "Datasets folder (else $JAXCOND_DATA_DIR).")
flags.DEFINE_string("dataset", "dianping", "Dataset.")
flags.DEFINE_integer("steps", 30, "Timed outer iterations per inner mode.")
flags.DEFINE_integer("official_steps", 3, "Timed outer iterations of the official inner mode.")
flags.DEFINE_string("cache_dir", None, "Cache (the full-data proxy is reused from it).")
flags.DEFINE_bool("train_proxy", True, "Time the proxy's training (else reuse the cached "
                  "full-data fit and report the proxy's time as not measured).")
flags.DEFINE_string("json", None, "Write the measurements here.")
FLAGS = flags.FLAGS


def time_steps(cfg, pool, proxy, data, sizes, hp, max_degree, n_steps):
  graph = build_graph(data.train, dense_limit=0)
  t0 = time.perf_counter()
  sdata = condenser.step_data(pool, pool_lib.rows_of(pool), proxy, data.valid,
                              graph, sizes, cfg, max_degree)
  jax.block_until_ready(sdata)
  setup = time.perf_counter() - t0
  step = condenser.make_step(cfg, hp, max_degree)
  state = condenser.init_state(sdata, cfg)
  key = jax.random.key(0)
  t0 = time.perf_counter()
  compiled = step.lower(state, key, sdata).compile()
  compile_s = time.perf_counter() - t0
  times = []
  for _ in range(n_steps):
    t0 = time.perf_counter()
    state, meas = compiled(state, key, sdata)
    jax.block_until_ready((state, meas))
    times.append(time.perf_counter() - t0)
  return {"setup_seconds": setup, "compile_seconds": compile_s,
          "median_step_seconds": float(np.median(times)), "steps_timed": n_steps,
          "min_step_seconds": float(np.min(times))}


def main(argv):
  del argv
  cfg_data = DataConfig(dataset=FLAGS.dataset, data_dir=FLAGS.data_dir)
  data, protocol = prepare(cfg_data, cache_dir=FLAGS.cache_dir and pathlib.Path(FLAGS.cache_dir))
  hp, tcfg = models.ModelConfig(), train_lib.TrainConfig()
  job = condensation.JobConfig()
  t_all = time.perf_counter()
  t0 = time.perf_counter()
  if FLAGS.train_proxy:
    proxy_fit = train_lib.fit(models.get_model("bpr_mf"), data, hparams=hp, cfg=tcfg, seed=0)
    proxy = {k: np.asarray(v) for k, v in proxy_fit.params.items()}
    proxy_s, proxy_epochs = time.perf_counter() - t0, proxy_fit.epochs
  else:
    proxy, _ = condensation.fit_full("bpr_mf", data, protocol, model_cfg=hp, train_cfg=tcfg,
                                     seed=0, cache_dir=FLAGS.cache_dir)
    proxy_s = proxy_epochs = None
  t0 = time.perf_counter()
  pool = condensation.build_pool(data, proxy, job)
  pool_s = time.perf_counter() - t0
  cfg = job.condense
  sizes = condenser.budget_of(pool, data.train.nnz, cfg)
  max_degree = int(data.train.user_degrees().max())
  t0 = time.perf_counter()
  sdata = condenser.step_data(pool, pool_lib.rows_of(pool), proxy, data.valid,
                              build_graph(data.train, dense_limit=0), sizes, cfg, max_degree)
  result = condenser.condense(pool, sdata, cfg, hparams=hp, max_degree=max_degree, sizes=sizes)
  outer_s = time.perf_counter() - t0
  total_s = time.perf_counter() - t_all
  print(f"condensation: {total_s:.1f}s (proxy {proxy_s} s, epochs {proxy_epochs}; pool "
        f"{pool_s:.1f}s; {cfg.outer_steps} outer steps {outer_s:.1f}s)")
  rows = {"default": time_steps(cfg, pool, proxy, data, sizes, hp, max_degree, FLAGS.steps)}
  official_inner = inner.InnerConfig(steps=max(1, -(-sizes["total"] // 4096)), lr=5e-4,
                                     optimizer="adam", start="fresh", update="all")
  official = dataclasses.replace(cfg, inner=official_inner, credit="global")
  rows["official_inner"] = time_steps(official, pool, proxy, data, sizes, hp, max_degree,
                                      FLAGS.official_steps)
  for name, r in rows.items():
    print(f"{name}: {r['median_step_seconds']:.3f}s per outer step (median of "
          f"{r['steps_timed']}), compile {r['compile_seconds']:.1f}s")
  out = {"dataset": FLAGS.dataset, "candidates": pool.size, "budget": sizes,
         "num_samples": cfg.num_samples, "dim": hp.dim, "outer_steps": cfg.outer_steps,
         "complete": {"total_seconds": total_s, "proxy_seconds": proxy_s,
                      "proxy_epochs": proxy_epochs, "pool_seconds": pool_s,
                      "outer_seconds": outer_s, "outer_timing": result.seconds},
         "per_step": rows, "devices": [str(d) for d in jax.devices()],
         "protocol": protocol, "versions": report.versions()}
  if FLAGS.json:
    report.write_json_atomic(FLAGS.json, out)
    print(f"wrote {FLAGS.json}")


if __name__ == "__main__":
  app.run(main)
