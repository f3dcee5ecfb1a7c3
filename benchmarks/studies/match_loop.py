r"""Does an outer loop on a reward that ranks sets well improve its start?

python benchmarks/studies/match_loop.py --flagfile=experiments/flags/ml-1m.flags --ratio=0.25 \
    --steps=0,50,100,200 --json=runs/match_loop-ml-1m/match_loop.json

The reward is gradient matching at the proxy (`rewards.grad_match`: per user and per item,
how far the kept pairs' mean BPR gradient is from the mean over all the row's original
pairs). It reads no validation pair. The loop: one keep logit per original training pair,
started at `proxy_top`'s set (its pairs --lift above the rest, shifted to the budget). Each
step draws --num_samples Bernoulli masks, scores them, and takes an Adam step (--outer_lr)
on the REINFORCE estimate with per-row credit (a pair is credited with its user's and its
item's parts; unbiased, tests/test_rewards.py), then re-centres the logits on the budget
round(r N). The set at step s is its top round(r N) logits.

Protocol as benchmarks/reward_fidelity.py: each user's validation pairs are split in two
(`holdout.split_valid`, seed 0); the proxy early-stops on the first part; the evaluator
(BPR-MF, step-matched, seeds --eval_seeds) early-stops and is scored on the second part
("selection"), the first masked, then on test. Writes --json and its .md; every fit is kept
under <json's folder>/fits/ and read back on a rerun.
"""

import pathlib
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax
from absl import app, flags

from jaxcond import baselines
from jaxcond.cli import common
from jaxcond.condense import budget as budget_lib
from jaxcond.condense import holdout, reinforce, rewards
from jaxcond.core import records

import study  # benchmarks/studies/study.py, beside this script

flags.DEFINE_list("steps", ["0", "50", "100", "200"], "Outer steps whose sets are judged.")
flags.DEFINE_list("eval_seeds", ["0", "1", "2"], "Evaluator seeds per set.")
flags.DEFINE_float("lift", 3.0, "How far proxy_top's pairs start above the other logits.")
FLAGS = common.FLAGS


def match_of(train, proxy: dict, n_negatives: int, seed: int) -> rewards.MatchTarget:
  """The matching target of every original pair, its negatives drawn once from `seed`."""
  users_C, items_C = train.users().astype(np.int32), train.indices.astype(np.int32)
  negs_CxM = rewards.draw_negatives(users_C, train.to_csr(), train.n_items, n_negatives,
                                    np.random.default_rng(seed))
  empty = jnp.zeros(0, jnp.int32)
  pairs = rewards.Pairs(jnp.asarray(users_C), jnp.asarray(items_C), jnp.asarray(negs_CxM),
                        jnp.ones(users_C.size, jnp.float32), empty, empty, empty)
  tables = {k: jnp.asarray(proxy[k], jnp.float32) for k in rewards.SIDES}
  return jax.jit(rewards.match_target)(tables, pairs)


def make_step(target: rewards.MatchTarget, budget: int, num_samples: int, lr: float):
  """(logits_C, opt_state, key) -> (logits_C, opt_state, mean sampled reward), jitted."""
  optimizer = optax.adam(lr)

  @jax.jit
  def step(logits_C, opt_state, key):
    probs_C = jax.nn.sigmoid(logits_C)
    masks_KxC = reinforce.sample_masks(key, probs_C, num_samples)
    parts = rewards.match_parts(masks_KxC, target)
    grad_C = sum(reinforce.estimate(parts[side], masks_KxC, probs_C, target.rows[side])
                 for side in parts)
    updates, opt_state = optimizer.update(grad_C, opt_state, logits_C)
    logits_C = optax.apply_updates(logits_C, updates)
    logits_C = logits_C - budget_lib.budget_shift(logits_C, budget)
    return logits_C, opt_state, rewards.total(parts).mean()

  return step, optimizer


def run_loop(target, start_C: np.ndarray, budget: int, steps: list, job, log) -> dict:
  """{step: bool keep_C} of the loop's top-budget sets at each of `steps`, and the matching
  reward of each ({step: float})."""
  step_fn, optimizer = make_step(target, budget, job.condense.num_samples,
                                 job.condense.outer_lr)
  score = jax.jit(lambda m: rewards.total(rewards.match_parts(m[None], target))[0])
  logits_C = jnp.asarray(np.where(start_C, FLAGS.lift, 0.0), jnp.float32)
  logits_C = logits_C - budget_lib.budget_shift(logits_C, budget)
  opt_state, key, t0 = optimizer.init(logits_C), jax.random.key(job.seeds[0]), time.perf_counter()
  sets, reward = {}, {}
  for s in range(max(steps) + 1):
    if s in steps:
      sets[s] = budget_lib.top_k_mask(np.asarray(logits_C), budget)
      reward[s] = float(score(jnp.asarray(sets[s], jnp.float32)))
      log(f"step {s}: matching reward of the set {reward[s]:.4f}, "
          f"{np.mean(sets[s][start_C]):.3f} of the start kept, {time.perf_counter() - t0:.0f}s")
    if s < max(steps):
      logits_C, opt_state, _ = step_fn(logits_C, opt_state, jax.random.fold_in(key, s))
  return sets, reward


def run(log=print) -> dict:
  job, data, protocol, reward_part, selection_part, proxy, budget = study.setup()
  train, steps = data.train, sorted({int(s) for s in FLAGS.steps})
  start = baselines.select("proxy_top", train, budget, proxy=proxy, seed=0).train
  start_C = np.isin(train.pair_keys(), start.pair_keys())
  target = match_of(train, proxy, job.condense.inner.train_negatives, job.seeds[0])
  sets, reward = run_loop(target, start_C, budget, steps, job, log)
  subsets = {f"step{s}": train.subset(keep) for s, keep in sets.items()}
  seeds = [int(s) for s in FLAGS.eval_seeds]
  evals = holdout.saved_scores(data, subsets, seeds, reward_part, selection_part,
                               pathlib.Path(FLAGS.json).parent / "fits",
                               model_cfg=common.model_config(),
                               train_cfg=common.train_config(), log=log)
  rows = [{"step": s, "reward": reward[s], "pairs": int(sets[s].sum()),
           "start_kept": float(np.mean(sets[s][start_C])),
           "selection": evals[f"step{s}"]["selection"], "test": evals[f"step{s}"]["test"]}
          for s in steps]
  return {"dataset": FLAGS.dataset, "ratio": job.condense.ratio, "budget": budget,
          "rows": rows, "eval_seeds": seeds, "lift": FLAGS.lift,
          "outer_lr": job.condense.outer_lr, "num_samples": job.condense.num_samples,
          "protocol": holdout.study_protocol(protocol, reward_part, selection_part, data.test),
          "versions": records.versions()}


def markdown(result: dict) -> str:
  lines = [f"# Gradient-matching loop from proxy_top: {result['dataset']}, r = "
           f"{result['ratio']:g}, {len(result['eval_seeds'])} evaluator seeds", "",
           "| outer step | matching reward (lower is better) | start's pairs kept | "
           "selection NDCG@10 | test NDCG@10 (± std over seeds) |", "|---:|---:|---:|---:|---:|"]
  for r in result["rows"]:
    lines.append(f"| {r['step']} | {r['reward']:.4f} | {r['start_kept']:.3f} | "
                 f"{np.mean(r['selection']):.4f} | {np.mean(r['test']):.4f} ± "
                 f"{np.std(r['test']):.4f} |")
  return "\n".join(lines) + "\n"


def check_flags():
  if any(int(s) < 0 for s in FLAGS.steps) or not FLAGS.lift > 0:
    raise ValueError(f"--steps must be >= 0 and --lift > 0; got {FLAGS.steps}, {FLAGS.lift}")


if __name__ == "__main__":
  app.run(study.main_of(run, markdown, check_flags))
