r"""Times every compiled step of a condensation, against the machine's measured peaks, and
how an outer iteration's time and memory grow with the data.

python benchmarks/run.py --quick --json=/tmp/bench.json      # a few minutes
python benchmarks/run.py --json=benchmarks/results/run.json  # sweep to 20M interactions

On synthetic long-tailed data (jaxcond/data/synthetic.py; ML-20M's shape at 20M: 138k users,
27k items), each size in a fresh subprocess (so that its peak memory is its own):
- the machine's peaks: a float32 matmul (GFLOP/s) and a large copy (GB/s);
- compiled apart, medians of repeated runs: the inner training of one sample, the whole
  outer step (K = 4 samples, REINFORCE, Adam, budget), the budget projection, a BPR-MF
  evaluator epoch over a 25% set, and full-ranking evaluation of every user;
- XLA's cost_analysis() of the outer step: FLOPs and bytes, so achieved GFLOP/s and GB/s
  as fractions of the peaks; the step is memory-bound when its FLOPs per byte are below
  the machine's (peak FLOP/s / peak B/s);
- the fitted exponent of outer-step time against interactions (log-log least squares).
The pool is the original pairs only (no proxy pseudo pairs) and the proxy tables are
random: an outer step's cost depends on the shapes, not on what the tables learned.
--json writes {"outer_step_seconds", "scaling_exponent", "peak_fraction", "bound",
"devices", ...}.
"""

import json
import os
import pathlib
import resource
import subprocess
import sys
import tempfile
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax
from absl import app, flags

from jaxcond import condensation, models
from jaxcond.condense import budget, condenser, reinforce
from jaxcond.condense import pool as pool_lib
from jaxcond.core import records
from jaxcond.data import synthetic
from jaxcond.data.split import random_split
from jaxcond.models import evaluate, mf, train
from jaxcond.models.graph import build_graph

flags.DEFINE_bool("quick", False, "Reduced sweep (0.1M to 1M interactions), fewer repeats.")
flags.DEFINE_list("sizes", None, "Interactions per sweep point (default: 0.1M..20M, or the "
                  "quick set).")
flags.DEFINE_integer("repeats", None, "Timed repetitions (default 7, quick 3).")
flags.DEFINE_integer("one_size", None, "Internal: measure this one size and print JSON.")
flags.DEFINE_bool("components", True, "With --one_size: also time the steps apart.")
flags.DEFINE_integer("judge_nnz", 100_000, "Also run a whole condensation (3 seeds, default "
                     "baselines) on synthetic data of this many pairs and time its judging "
                     "phase (every evaluator) apart from the outer loop; 0: skip.")
flags.DEFINE_integer("judge_max_epochs", None, "Evaluators' epoch limit in that run (default: "
                     "the protocol's; smoke runs set a few).")
flags.DEFINE_string("json", None, "Write the results here.")
FLAGS = flags.FLAGS

FULL_SIZES = (100_000, 300_000, 1_000_000, 3_000_000, 10_000_000, 20_000_000)
QUICK_SIZES = (100_000, 300_000, 1_000_000)
HP = models.ModelConfig(dim=64)


def shape_of(nnz: int) -> tuple[int, int]:
  """(users, items) of a dataset with nnz pairs, on ML-20M's proportions (20M: 138k x 27k;
  mean user degree fixed, items growing as the square root)."""
  return max(50, round(138_000 * nnz / 20_000_000)), max(200, round(27_000 * (nnz / 2e7) ** .5))


def median_time(fn, repeats: int) -> float:
  times = []
  for _ in range(repeats):
    t0 = time.perf_counter()
    jax.block_until_ready(fn())
    times.append(time.perf_counter() - t0)
  return float(np.median(times))


def compiled_cost(compiled) -> dict:
  cost = compiled.cost_analysis()
  cost = cost[0] if isinstance(cost, (list, tuple)) else cost
  return {"flops": float(cost.get("flops", 0.0)), "bytes": float(cost.get("bytes accessed", 0.0))}


def peaks(repeats: int) -> dict:
  """Measured float32 matmul FLOP/s and copy bandwidth (read + write bytes per second)."""
  n = 2048
  a = jax.random.normal(jax.random.key(0), (n, n), jnp.float32)
  matmul = jax.jit(lambda x: x @ x)
  matmul(a).block_until_ready()
  t_mm = median_time(lambda: matmul(a), repeats)
  big = jnp.ones((64 * 1024 * 1024,), jnp.float32)  # 256 MiB
  copy = jax.jit(lambda x: x * 1.0001)
  copy(big).block_until_ready()
  t_cp = median_time(lambda: copy(big), repeats)
  return {"matmul_gflops": 2 * n ** 3 / t_mm / 1e9, "copy_gbs": 2 * big.nbytes / t_cp / 1e9}


def one_size(nnz: int, repeats: int, components: bool) -> dict:
  """Every measurement of one dataset size (run in its own process)."""
  n_users, n_items = shape_of(nnz)
  t0 = time.perf_counter()
  data = random_split(synthetic.interactions(n_users, n_items, nnz, seed=0), seed=0)
  gen_s = time.perf_counter() - t0
  rng = np.random.default_rng(0)
  proxy = {"user": rng.normal(0, 0.1, (n_users, HP.dim)).astype(np.float32),
           "item": rng.normal(0, 0.1, (n_items, HP.dim)).astype(np.float32)}
  cfg = condenser.CondenseConfig()
  pool = pool_lib.build_pool(data.train)
  sizes = condenser.budget_of(pool, data.train.nnz, cfg)
  graph = build_graph(data.train, dense_limit=0)
  max_degree = int(data.train.user_degrees().max())
  t0 = time.perf_counter()
  sdata = condenser.step_data(pool, pool_lib.rows_of(pool), proxy, data.valid, graph, sizes,
                              cfg, max_degree)
  jax.block_until_ready(sdata)
  setup_s = time.perf_counter() - t0
  state = condenser.init_state(sdata, cfg)
  key = jax.random.key(0)
  step = condenser.make_step(cfg, HP, max_degree)
  t0 = time.perf_counter()
  compiled = step.lower(state, key, sdata).compile()
  compile_s = time.perf_counter() - t0
  holder = {"state": state}

  def outer():
    holder["state"], meas = compiled(holder["state"], key, sdata)
    return meas

  outer()
  out = {"nnz": int(data.train.nnz), "users": n_users, "items": n_items,
         "candidates": pool.size, "generate_seconds": gen_s, "setup_seconds": setup_s,
         "outer_step": {"seconds": median_time(outer, repeats), "compile_seconds": compile_s,
                        **compiled_cost(compiled)}}
  if components:
    out.update(_components(data, sdata, cfg, max_degree, holder["state"], repeats))
  out["peak_rss_gib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2 ** 20
  return out


def _timed(fn, args, repeats):
  t0 = time.perf_counter()
  compiled = jax.jit(fn).lower(*args).compile()
  compile_s = time.perf_counter() - t0
  compiled(*args)
  return {"seconds": median_time(lambda: compiled(*args), repeats),
          "compile_seconds": compile_s, **compiled_cost(compiled)}


def _components(data, sdata, cfg, max_degree, state, repeats) -> dict:
  rewards_fn = condenser.make_rewards_fn(cfg, HP, max_degree)
  probs_C = condenser.keep_probs(state.logits_C, sdata.free_C)
  masks_1xC = reinforce.sample_masks(jax.random.key(1), probs_C, 1)
  out = {"inner_one_sample": _timed(rewards_fn, (masks_1xC, jax.random.key(2), sdata), repeats),
         "budget_projection": _timed(budget.budget_shift,
                                     (state.logits_C, sdata.budget, sdata.free_C), repeats)}
  # An evaluator epoch: BPR-MF over a 25% random subset of the training pairs.
  rng = np.random.default_rng(0)
  subset = data.train.subset(rng.random(data.train.nnz) < 0.25)
  model, tcfg = models.get_model("bpr_mf"), train.TrainConfig()
  sub_graph = build_graph(subset, dense_limit=0)
  opt = optax.adam(tcfg.lr)
  params = model.init(jax.random.key(0), subset.n_users, subset.n_items, HP)
  epoch = train.make_epoch_fn(model, HP, tcfg, opt, subset.n_items,
                              int(subset.user_degrees().max()), subset.nnz)
  args = (params, opt.init(params), jax.random.key(3), train.shuffle(0, 0, subset.nnz),
          sub_graph)
  t0 = time.perf_counter()
  compiled = epoch.lower(*args).compile()
  compile_s = time.perf_counter() - t0
  carry = list(args[:2])  # the epoch donates the parameters and optimiser state

  def run_epoch():
    carry[0], carry[1], meas = compiled(*carry, *args[2:])
    return meas

  run_epoch()
  out["evaluator_epoch"] = {"seconds": median_time(run_epoch, repeats),
                            "compile_seconds": compile_s, "pairs": int(subset.nnz),
                            **compiled_cost(compiled)}

  def full_ranking():
    return evaluate.evaluate(mf.score, (carry[0]["user"], carry[0]["item"]), history=data.train,
                             exclude=(data.train,), target=data.valid)["ndcg@10"]

  t0 = time.perf_counter()
  full_ranking()  # compiles the block step
  first_s = time.perf_counter() - t0
  out["full_ranking"] = {"seconds": median_time(full_ranking, max(1, repeats // 2)),
                         "first_call_seconds": first_s, "users": int(data.train.n_users)}
  return out


def fit_exponent(nnz, seconds) -> float:
  return float(np.polyfit(np.log(nnz), np.log(seconds), 1)[0])


def sweep(sizes, repeats) -> list[dict]:
  rows = []
  for i, nnz in enumerate(sizes):
    # Steps are timed apart at the middle size only; the sweep times the outer step.
    args = [sys.executable, __file__, f"--one_size={nnz}", f"--repeats={repeats}",
            f"--components={i == len(sizes) // 2}"]
    t0 = time.perf_counter()
    proc = subprocess.run(args, capture_output=True, text=True, env=dict(os.environ))
    if proc.returncode != 0:
      raise RuntimeError(f"size {nnz} failed:\n{proc.stderr[-3000:]}")
    row = json.loads(proc.stdout.strip().splitlines()[-1])
    row["wall_seconds"] = time.perf_counter() - t0
    rows.append(row)
    o = row["outer_step"]
    print(f"{row['nnz']:>11,} pairs ({row['users']:,} users x {row['items']:,} items): outer "
          f"step {o['seconds'] * 1e3:8.1f} ms (compile {o['compile_seconds']:.1f} s), peak RSS "
          f"{row['peak_rss_gib']:.2f} GiB", flush=True)
  return rows


def summarize(rows: list[dict], peak: dict) -> dict:
  nnz = np.array([r["nnz"] for r in rows], float)
  secs = np.array([r["outer_step"]["seconds"] for r in rows])
  top = rows[-1]["outer_step"]
  gflops = top["flops"] / top["seconds"] / 1e9
  gbs = top["bytes"] / top["seconds"] / 1e9
  intensity = top["flops"] / max(top["bytes"], 1.0)
  balance = peak["matmul_gflops"] / peak["copy_gbs"]
  bound = "memory" if intensity < balance else "compute"
  fraction = gbs / peak["copy_gbs"] if bound == "memory" else gflops / peak["matmul_gflops"]
  return {"outer_step_seconds": float(top["seconds"]),
          "scaling_exponent": fit_exponent(nnz, secs),
          "peak_fraction": float(fraction), "bound": bound,
          "devices": jax.device_count(),
          "achieved": {"gflops": gflops, "gbs": gbs, "flops_per_byte": intensity,
                       "machine_flops_per_byte": balance},
          "peaks": peak, "sweep": rows, "versions": records.versions(),
          "backend": jax.default_backend(), "cpu_count": os.cpu_count()}


def judging(nnz: int, max_epochs: int | None) -> dict:
  """condensation.run with its defaults on synthetic data, fresh caches: where the wait goes
  (the proxy, the start's choice, the outer loop of each seed, and the judging phase: every
  evaluator; evaluator_fits counts the sets judged, one of which, the chosen start's set
  with the proxy seed, was fitted by the choice)."""
  n_users, n_items = shape_of(nnz)
  data = random_split(synthetic.interactions(n_users, n_items, nnz, seed=0), seed=0)
  train_cfg = train.TrainConfig()
  if max_epochs:
    train_cfg = train.TrainConfig(max_epochs=max_epochs, min_epochs=0)
  with tempfile.TemporaryDirectory() as tmp:
    t0 = time.perf_counter()
    rep = condensation.run(data, {"data_checksum": data.train.checksum()},
                           condensation.JobConfig(), model_cfg=HP, train_cfg=train_cfg,
                           out_dir=pathlib.Path(tmp) / "out", cache_dir=pathlib.Path(tmp) / "c",
                           log=lambda s: None)
    wall = time.perf_counter() - t0
  loops = [s["timing"]["loop"] + s["timing"]["compile"] for s in rep["per_seed"]]
  return {"nnz": int(data.train.nnz), "seeds": len(rep["seeds"]), "wall_seconds": wall,
          "proxy_seconds": rep["proxy_seconds"], "start_seconds": rep["start_seconds"],
          "outer_loop_seconds": float(sum(loops)),
          "condense_seconds": float(rep["condense_seconds"] * len(rep["seeds"])),
          "judge_seconds": rep["judge_seconds"],
          "evaluator_fits": len(rep["seeds"]) * (1 + len(rep["baselines"]))}


def main(argv):
  del argv
  quick = FLAGS.quick
  repeats = FLAGS.repeats or (3 if quick else 7)
  if FLAGS.one_size is not None:
    print(json.dumps(one_size(FLAGS.one_size, repeats, FLAGS.components)))
    return
  sizes = ([int(float(s)) for s in FLAGS.sizes] if FLAGS.sizes
           else QUICK_SIZES if quick else FULL_SIZES)
  peak = peaks(repeats)
  print(f"machine: {peak['matmul_gflops']:.1f} GFLOP/s float32 matmul, "
        f"{peak['copy_gbs']:.1f} GB/s copy; {jax.device_count()} {jax.default_backend()} "
        f"device(s)", flush=True)
  result = summarize(sweep(sizes, repeats), peak)
  mid = result["sweep"][len(sizes) // 2]
  print(f"at {mid['nnz']:,} pairs: inner training of one sample "
        f"{mid['inner_one_sample']['seconds'] * 1e3:.1f} ms, outer step "
        f"{mid['outer_step']['seconds'] * 1e3:.1f} ms, budget projection "
        f"{mid['budget_projection']['seconds'] * 1e3:.2f} ms, evaluator epoch "
        f"({mid['evaluator_epoch']['pairs']:,} pairs) "
        f"{mid['evaluator_epoch']['seconds'] * 1e3:.0f} ms, full ranking of "
        f"{mid['full_ranking']['users']:,} users {mid['full_ranking']['seconds']:.2f} s")
  a = result["achieved"]
  print(f"outer step at {result['sweep'][-1]['nnz']:,} pairs: {a['gflops']:.2f} GFLOP/s, "
        f"{a['gbs']:.2f} GB/s, {a['flops_per_byte']:.2f} FLOP/byte (machine "
        f"{a['machine_flops_per_byte']:.1f}): {result['bound']}-bound at "
        f"{result['peak_fraction']:.1%} of peak; time ~ interactions^"
        f"{result['scaling_exponent']:.2f}")
  if FLAGS.judge_nnz:
    j = result["judging"] = judging(FLAGS.judge_nnz, FLAGS.judge_max_epochs)
    print(f"a whole condensation of {j['nnz']:,} pairs ({j['seeds']} seeds): "
          f"{j['wall_seconds']:.1f} s; proxy {j['proxy_seconds']:.1f} s, choosing the start "
          f"{j['start_seconds']:.1f} s, outer loops "
          f"{j['outer_loop_seconds']:.1f} s, condensing {j['condense_seconds']:.1f} s, judging "
          f"({j['evaluator_fits']} evaluator fits) {j['judge_seconds']:.1f} s")
  if FLAGS.json:
    records.write_json_atomic(FLAGS.json, result)
    print(f"wrote {FLAGS.json}")


if __name__ == "__main__":
  app.run(main)
