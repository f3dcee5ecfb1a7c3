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
import time

import jax
import numpy as np
from absl import app, flags

from jaxcond import condensation, models
from jaxcond.condense import condenser, inner
from jaxcond.condense import proxy as proxy_lib
from jaxcond.core import records
from jaxcond.data.pipeline import DataConfig, prepare
from jaxcond.judging import fits
from jaxcond.models import train as train_lib

flags.DEFINE_string("data_dir", None, "Datasets folder (else $JAXCOND_DATA_DIR).")
flags.DEFINE_string("dataset", "dianping", "Dataset (a known name or a file of user, item).")
flags.DEFINE_integer("steps", 30, "Timed outer iterations per inner mode.")
flags.DEFINE_integer("official_steps", 3, "Timed outer iterations of the official inner mode.")
flags.DEFINE_integer("outer_steps", condenser.CondenseConfig.outer_steps,
                     "Outer steps of the whole condensation.")
flags.DEFINE_integer("max_epochs", train_lib.TrainConfig.max_epochs, "The proxy's epoch limit.")
flags.DEFINE_string("cache_dir", None, "Cache (the full-data proxy is reused from it).")
flags.DEFINE_bool("train_proxy", True, "Time the proxy's training (else reuse the cached "
                  "full-data fit and report the proxy's time as not measured).")
flags.DEFINE_string("json", None, "Write the measurements here.")
FLAGS = flags.FLAGS


def time_steps(cfg, inputs: condensation.LoopInputs, proxy, data, hp, n_steps):
  """Setup, compile and median step time of the outer step `cfg` describes."""
  t0 = time.perf_counter()
  sdata = condenser.step_data(inputs.pool, inputs.rows, proxy, data.valid, inputs.graph,
                              inputs.sizes, cfg, inputs.max_degree)
  jax.block_until_ready(sdata)
  setup = time.perf_counter() - t0
  step = condenser.make_step(cfg, hp, inputs.max_degree)
  state = condenser.init_state(sdata, cfg, inputs.prior)
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


def proxy_of(data, protocol, hp, tcfg) -> tuple[dict, float | None, int | None]:
  """The proxy's score tables, with its training seconds and epochs (None: cached)."""
  if not FLAGS.train_proxy:
    params, _ = fits.fit_full("bpr_mf", data, protocol, model_cfg=hp, train_cfg=tcfg, seed=0,
                              cache_dir=FLAGS.cache_dir)
    return proxy_lib.tables("bpr_mf", params, data.train, hp), None, None
  t0 = time.perf_counter()
  fit = train_lib.fit(models.get_model("bpr_mf"), data, hparams=hp, cfg=tcfg, seed=0)
  params = {k: np.asarray(v) for k, v in fit.params.items()}
  return (proxy_lib.tables("bpr_mf", params, data.train, hp), time.perf_counter() - t0,
          fit.epochs)


def main(argv):
  del argv
  cfg_data = DataConfig(dataset=FLAGS.dataset, data_dir=FLAGS.data_dir)
  data, protocol = prepare(cfg_data, cache_dir=FLAGS.cache_dir and pathlib.Path(FLAGS.cache_dir))
  hp = models.ModelConfig()
  tcfg = train_lib.TrainConfig(max_epochs=FLAGS.max_epochs)
  job = condensation.JobConfig(condense=condenser.CondenseConfig(outer_steps=FLAGS.outer_steps))
  cfg = job.condense
  t_all = time.perf_counter()
  proxy, proxy_s, proxy_epochs = proxy_of(data, protocol, hp, tcfg)
  t0 = time.perf_counter()
  inputs = condensation.loop_inputs(data, proxy, job)
  pool_s = time.perf_counter() - t0
  t0 = time.perf_counter()
  sdata = condenser.step_data(inputs.pool, inputs.rows, proxy, data.valid, inputs.graph,
                              inputs.sizes, cfg, inputs.max_degree)
  result = condenser.condense(inputs.pool, sdata, cfg, hparams=hp,
                              max_degree=inputs.max_degree, sizes=inputs.sizes,
                              state=condenser.init_state(sdata, cfg, inputs.prior))
  outer_s = time.perf_counter() - t0
  total_s = time.perf_counter() - t_all
  print(f"condensation: {total_s:.1f}s (proxy {proxy_s} s, epochs {proxy_epochs}; pool "
        f"{pool_s:.1f}s; {cfg.outer_steps} outer steps {outer_s:.1f}s)")
  rows = {"default": time_steps(cfg, inputs, proxy, data, hp, FLAGS.steps)}
  official_inner = inner.InnerConfig(steps=max(1, -(-inputs.sizes["total"] // 4096)),
                                     lr=5e-4, optimizer="adam", start="fresh", update="all")
  official = dataclasses.replace(cfg, inner=official_inner, credit="global")
  rows["official_inner"] = time_steps(official, inputs, proxy, data, hp, FLAGS.official_steps)
  for name, r in rows.items():
    print(f"{name}: {r['median_step_seconds']:.3f}s per outer step (median of "
          f"{r['steps_timed']}), compile {r['compile_seconds']:.1f}s")
  out = {"dataset": FLAGS.dataset, "candidates": inputs.pool.size, "budget": inputs.sizes,
         "num_samples": cfg.num_samples, "dim": hp.dim, "outer_steps": cfg.outer_steps,
         "complete": {"total_seconds": total_s, "proxy_seconds": proxy_s,
                      "proxy_epochs": proxy_epochs, "pool_seconds": pool_s,
                      "outer_seconds": outer_s, "outer_timing": result.seconds},
         "per_step": rows, "devices": [str(d) for d in jax.devices()],
         "protocol": protocol, "versions": records.versions()}
  if FLAGS.json:
    records.write_json_atomic(FLAGS.json, out)
    print(f"wrote {FLAGS.json}")


if __name__ == "__main__":
  app.run(main)
