r"""Is there a signal in the retrain loop's per-pair credit? Two independent estimates agree
as much as their common signal allows.

python benchmarks/studies/credit_signal.py --flagfile=experiments/flags/ml-1m.flags \
    --ratio=0.25 --start_set=proxy_top_sqrt --lift=3 --reward_pairs=rotating \
    --samples_per_half=8 --json=runs/credit_signal-ml-1m/credit_signal.json

At the retrain loop's first step (benchmarks/studies/retrain_loop.py, the same flags:
start, lift, reward pairs), 2 x --samples_per_half masks are drawn from the start's keep
probabilities and each is fitted and rewarded as the loop does. Each half gives its own
REINFORCE estimate per pair (credit per user, leave-one-out baseline). The two halves are
independent draws of the same expectation, so the Pearson correlation r of their
estimates over the pairs estimates the share of one half's variance that is signal;
r near 0 means an update is noise. The estimates summed per user and per item are
correlated too: a signal too weak per pair may show in coarser sums. Adam, which the loop
uses, scales each coordinate's step by its own magnitude, so a noise coordinate moves as
far as a signal one.
"""

import jax
import jax.numpy as jnp
import numpy as np
from absl import app, flags

from jaxcond.cli import common
from jaxcond.condense import budget as budget_lib
from jaxcond.condense import holdout, reinforce
from jaxcond.core import records

import retrain_loop  # benchmarks/studies/retrain_loop.py, beside this script: its flags too
import study  # benchmarks/studies/study.py

flags.DEFINE_integer("samples_per_half", 8, "Masks (fits) in each of the two halves.")
FLAGS = common.FLAGS


def agreement(halves: list, users_C: np.ndarray, items_C: np.ndarray, start_C: np.ndarray,
              n_users: int, n_items: int) -> dict:
  """{grain: {"r": Pearson r, "same_sign": share of nonzero pairs of sums whose signs
  agree}} of the two halves' per-pair estimates, per pair and summed per user and item."""
  def sums(g, rows, n):
    return np.bincount(rows, weights=g, minlength=n)

  grains = {"pair": lambda g: g, "start pair": lambda g: g[start_C],
            "other pair": lambda g: g[~start_C],
            "user (sum)": lambda g: sums(g, users_C, n_users),
            "item (sum)": lambda g: sums(g, items_C, n_items)}
  out = {}
  for name, view in grains.items():
    a, b = (np.asarray(view(g), np.float64) for g in halves)
    both = (a != 0) & (b != 0)
    out[name] = {"r": study.correlation(a, b), "count": int(a.size),
                 "same_sign": float(np.mean(np.sign(a[both]) == np.sign(b[both])))
                 if both.any() else None}
  return out


def run(log=print) -> dict:
  job, data, protocol, reward_part, selection_part, proxy, budget = study.setup()
  pool, split_of, start_C = retrain_loop.loop_start(data, reward_part, selection_part, proxy,
                                                    budget)
  split, exclude, fitted_C = split_of(0)  # the loop's first step
  raw_C = retrain_loop.start_logits(start_C)
  probs_C = jax.nn.sigmoid(raw_C - budget_lib.budget_shift(raw_C, budget))
  k = FLAGS.samples_per_half
  masks_KxC = np.asarray(reinforce.sample_masks(jax.random.key(job.seeds[0]), probs_C, 2 * k))
  fitted = masks_KxC if fitted_C is None else masks_KxC[:, fitted_C]
  log(f"{2 * k} fits of the loop's first step ({pool.nnz:,} pairs, budget {budget:,})")
  rewards_KxU, _ = retrain_loop.sample_rewards(split, fitted, retrain_loop.LOOP_SEED, exclude)
  users_C = pool.users()
  halves = []
  for part in (slice(0, k), slice(k, 2 * k)):
    g_C = np.asarray(reinforce.estimate(rewards_KxU[part], masks_KxC[part], probs_C,
                                        jnp.asarray(users_C)))
    halves.append(g_C if fitted_C is None else np.where(fitted_C, g_C, 0.0))
  n_scored = max(int((split.valid.user_degrees() > 0).sum()), 1)
  return {"dataset": FLAGS.dataset, "ratio": job.condense.ratio, "budget": budget,
          "start_set": FLAGS.start_set, "lift": FLAGS.lift, "samples_per_half": k,
          "reward_pairs": FLAGS.reward_pairs, "pairs": int(pool.nnz),
          "agreement": agreement(halves, users_C, pool.indices, start_C, pool.n_users,
                                 pool.n_items),
          "sample_rewards": (rewards_KxU.sum(1) / n_scored).tolist(),
          "user_reward_std_over_samples": float(rewards_KxU.std(0).mean()),
          "loop_seed": retrain_loop.LOOP_SEED,
          "protocol": holdout.study_protocol(protocol, split.valid, selection_part, data.test),
          "versions": records.versions()}


def markdown(result: dict) -> str:
  lines = [f"# Signal in the per-pair credit: {result['dataset']}, r = {result['ratio']:g}, "
           f"from {result['start_set']}, reward pairs {result['reward_pairs']}, two halves "
           f"of {result['samples_per_half']} fits", "",
           "| grain | count | Pearson r between halves | same sign |", "|---|---:|---:|---:|"]
  for name, a in result["agreement"].items():
    same = "–" if a["same_sign"] is None else f"{a['same_sign']:.3f}"
    lines.append(f"| {name} | {a['count']:,} | {a['r']:.4f} | {same} |")
  lines += ["", f"Samples' mean reward: {', '.join(f'{r:.4f}' for r in result['sample_rewards'])}"]
  return "\n".join(lines) + "\n"


def check_flags():
  if FLAGS.samples_per_half < 2:
    raise ValueError(f"--samples_per_half must be >= 2 (a leave-one-out baseline), got "
                     f"{FLAGS.samples_per_half}")
  retrain_loop.check_flags()


if __name__ == "__main__":
  app.run(study.main_of(run, markdown, check_flags))
