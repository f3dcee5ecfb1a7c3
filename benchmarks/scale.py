r"""Condenses an ML-20M-sized synthetic dataset end to end, recording time and peak memory.

python benchmarks/scale.py --json=benchmarks/results/scale-ml20m.json

138k users x 27k items, 20M long-tailed interactions (jaxcond/data/synthetic.py), split 8:1:1
per user; the proxy BPR-MF (--proxy_epochs epochs, no validation), its top unseen items as
pseudo pairs, the prior, the outer loop (--outer_steps), the final selection and the
export, with the defaults of condense.py otherwise. Evaluation is not part of it: a
full-data evaluator on 16M pairs is a separate, long job. Each phase's wall time and the
process's peak resident memory after it are recorded; no users x items array is formed
(scores and rankings go in user blocks).
"""

import resource
import time

import jax
from absl import app, flags

from jaxcond import condensation, models
from jaxcond.condense import condenser
from jaxcond.condense import proxy as proxy_lib
from jaxcond.core import records
from jaxcond.data import export, synthetic
from jaxcond.data.split import random_split
from jaxcond.models import train

flags.DEFINE_integer("interactions", 20_000_000, "Pairs (ML-20M: 20M).")
flags.DEFINE_integer("users", 138_000, "Users.")
flags.DEFINE_integer("items", 27_000, "Items.")
flags.DEFINE_integer("proxy_epochs", 3, "Proxy BPR-MF epochs.")
flags.DEFINE_integer("outer_steps", 20, "Outer steps.")
flags.DEFINE_integer("dim", 64, "Embedding size.")
flags.DEFINE_string("output_dir", "/tmp/jaxcond-scale", "Where the condensed set goes.")
flags.DEFINE_string("json", None, "Write the record here.")
FLAGS = flags.FLAGS


def peak_gib() -> float:
  return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2 ** 20


def main(argv):
  del argv
  phases = []

  def done(name, t0, **extra):
    phases.append({"phase": name, "seconds": time.perf_counter() - t0,
                   "peak_rss_gib": peak_gib(), **extra})
    print(f"{name:>14}: {phases[-1]['seconds']:8.1f} s, peak RSS "
          f"{phases[-1]['peak_rss_gib']:.2f} GiB {extra or ''}", flush=True)

  t0 = time.perf_counter()
  data = random_split(synthetic.interactions(FLAGS.users, FLAGS.items, FLAGS.interactions),
                      seed=0)
  done("data", t0, train=data.train.nnz, valid=data.valid.nnz, test=data.test.nnz)

  t0 = time.perf_counter()
  hp = models.ModelConfig(dim=FLAGS.dim)
  cfg = train.TrainConfig(max_epochs=FLAGS.proxy_epochs, min_epochs=FLAGS.proxy_epochs,
                          eval_every=FLAGS.proxy_epochs)
  fit = train.fit(models.get_model("bpr_mf"), data, hparams=hp, cfg=cfg, seed=0)
  proxy = proxy_lib.tables("bpr_mf", fit.params, data.train, hp)
  done("proxy", t0, valid_ndcg10=fit.best_valid["ndcg@10"])

  t0 = time.perf_counter()
  job = condensation.JobConfig(condense=condenser.CondenseConfig(outer_steps=FLAGS.outer_steps))
  pool, _, rows, sizes, graph, max_degree, prior = condensation.loop_inputs(data, proxy, job)
  done("pool", t0, candidates=pool.size, pseudo=pool.size - pool.n_original)

  t0 = time.perf_counter()
  sdata = condenser.step_data(pool, rows, proxy, data.valid, graph, sizes, job.condense,
                              max_degree)
  state = condenser.init_state(sdata, job.condense, prior)
  jax.block_until_ready(state)
  done("step data", t0)

  t0 = time.perf_counter()
  result = condenser.condense(pool, sdata, job.condense, hparams=hp, max_degree=max_degree,
                              state=state, sizes=sizes, log_every=max(1, FLAGS.outer_steps // 5),
                              progress=lambda r: print(f"  outer {r['step']}: reward "
                                                       f"{r['reward']:.5f}", flush=True))
  done("outer loop", t0, **result.seconds)

  t0 = time.perf_counter()
  keep = result.keep_C
  files = export.export_condensed(FLAGS.output_dir, "condensed", pool.to_interactions(keep),
                                  data.valid, data.test,
                                  pseudo_N=condensation._pseudo_of(pool, keep))
  done("export", t0, size=int(keep.sum()), size_fraction=float(keep.sum() / data.train.nnz))
  record = {"phases": phases, "peak_rss_gib": peak_gib(), "files": files,
            "settings": {k: getattr(FLAGS, k) for k in ("interactions", "users", "items",
                                                         "proxy_epochs", "outer_steps", "dim")},
            "per_step_seconds": result.seconds["per_step_median"],
            "devices": jax.device_count(), "versions": records.versions()}
  if FLAGS.json:
    records.write_json_atomic(FLAGS.json, record)
    print(f"wrote {FLAGS.json}")
  print(f"peak RSS {record['peak_rss_gib']:.2f} GiB; outer step "
        f"{result.seconds['per_step_median']:.2f} s (median)")


if __name__ == "__main__":
  app.run(main)
