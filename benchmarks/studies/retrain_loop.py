r"""Does an outer loop on the retrain reward improve its start?

python benchmarks/studies/retrain_loop.py --flagfile=experiments/flags/ml-100k.flags \
    --ratio=0.25 --steps=0,10,20 --json=runs/retrain_loop-ml-100k/retrain_loop.json

The retrain reward (BPR-MF trained on the set, scored on validation pairs) is the one
reward that ranks sets as the evaluator does (rho 0.96 on ML-1M, benchmarks/RESULTS.md,
"Reward fidelity"), and the default reads it once, to choose its start. Here an outer loop
optimises it: one keep logit per original training pair, started at --start's set (its
pairs --lift above the rest, shifted to the budget round(r N)). Each step draws
--num_samples Bernoulli masks and trains BPR-MF on each (step-matched, all with one seed
per step, so that the samples differ by their pairs, not their seed), early-stopped on the
reward part of validation; a user's reward is its NDCG@10 on that part. The REINFORCE
estimate credits a pair with its user's reward (leave-one-out baseline; unbiased for the
user's own reward, blind to a pair's effect on other users through the item table), and
Adam (--outer_lr) ascends it; the logits are re-centred on the budget. The set at step s
is its top round(r N) logits.

Protocol as benchmarks/studies/match_loop.py: each user's validation pairs are split in two
(seed 0); the proxy and the loop's fits read the first part ("reward"), with the second
masked; the evaluator (seeds --eval_seeds) early-stops and is scored on the second part
("selection"), then on test, which nothing here reads to choose. Each judged set is also
scored as the loop scores its samples (one fit with the loop's seed on the reward part,
"reward_part"), so that a climb of the reward part can be told from the samples drawing
closer to the start. Writes --json and its .md; the fits are kept under <json's
folder>/fits/ and reward_fits/ and read back on a rerun, and each judged set's pairs under
sets/step<s>.npz (with --reward_pairs=train, the reward part's under sets/reward_part.npz).

With --reward_pairs=train the reward part is instead --reward_share of each user's training
pairs (seed 1), which the start and the loop may then not keep: about 3 times as many pairs
as validation's reward half on ML-1M, from the distribution test is drawn from, so that the
loop cannot fit them as it fits the few validation pairs. The evaluator is unchanged.
With --logits=features the loop learns 4 weights (FEATURES) instead of a logit per pair;
with --logits=offsets, one offset per user and one per item.
With --reward_pairs=rotating the held-out share is drawn afresh at every step (seed
ROTATING_SEED + step) from all training pairs, which the sets may then hold: a step's
samples are fitted without that step's share, and only the pairs they could hold are
credited. A fixed set of reward pairs can be fitted by a loop with a logit per pair; a
share that changes every step cannot.
With --item_credit a pair is also credited with its item's share of the sample's
reward (the NDCG its hits score, summed over users; leave-one-out baseline per item), so
that the loop sees what keeping a pair does for the other users who hold out its item.
"""

import concurrent.futures
import dataclasses
import pathlib
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax
from absl import app, flags

from jaxcond import baselines, models
from jaxcond.cli import common
from jaxcond.condense import budget as budget_lib
from jaxcond.condense import holdout, reinforce
from jaxcond.condense import proxy as proxy_lib
from jaxcond.core import npz, records
from jaxcond.models import topk
from jaxcond.models import train as train_lib
from jaxcond.models import train_many

import study  # benchmarks/studies/study.py, beside this script

flags.DEFINE_list("steps", ["0", "10", "20"], "Outer steps whose sets are judged.")
flags.DEFINE_list("eval_seeds", ["0", "1", "2"], "Evaluator seeds per set.")
flags.DEFINE_string("start_set", "proxy_top", "The heuristic whose set the loop starts from.")
flags.DEFINE_float("lift", 4.0, "How far the start's pairs start above the other logits.")
flags.DEFINE_enum("reward_pairs", "valid", ["valid", "train", "rotating"],
                  "What the loop's reward is scored on: valid, the reward half of each user's "
                  "validation pairs; train, --reward_share of each user's training pairs, "
                  "which the sets may then not hold; rotating, a fresh --reward_share of them "
                  "at every step, which that step's samples may not hold.")
flags.DEFINE_enum("logits", "pair", ["pair", "features", "offsets"],
                  "pair: one free keep logit per pair; features: the start's lift plus a "
                  "linear function of FEATURES, whose weights the loop learns; offsets: the "
                  "start's lift plus a learnt offset per user and per item.")
flags.DEFINE_bool("item_credit", False, "Credit a pair with its item's share of the reward "
                  "(the NDCG its hits score for every user) as well as its user's.")
flags.DEFINE_float("reward_share", 0.2, "With --reward_pairs=train or rotating, the share of "
                   "each user's training pairs held out as the reward part.")
FLAGS = common.FLAGS

LOOP_SEED = 10_000  # the fits of step s take seed LOOP_SEED + s


@jax.jit
def _top_items(user_BxD, item_IxD, known_BxI):
  scores_BxI = jnp.where(known_BxI, -jnp.inf, user_BxD @ item_IxD.T)
  return topk.top_k(scores_BxI, 10)[1]


def ndcg_parts(params: dict, history, exclude: list, target, block: int = 256) -> tuple:
  """(user_U, item_I): every user's NDCG@10 on `target` (0 where a user has no target
  pair), and each item's share of their sum (the discounted hits it scores, over each
  hitting user's ideal DCG). Scores are user . item with the pairs of `history` and
  `exclude` ranked last; `block` users at a time, so memory stays O(block x n_items)."""
  known = sum((x.to_csr() for x in exclude), history.to_csr())
  target_csr, item_IxD = target.to_csr(), jnp.asarray(params["item"])
  discount_K = 1.0 / np.log2(np.arange(10) + 2.0)
  n_target_U = np.minimum(target.user_degrees(), 10)
  ideal_U = np.concatenate([[1.0], np.cumsum(discount_K)])[n_target_U]
  user_U, item_I = np.zeros(target.n_users), np.zeros(target.n_items)
  for lo in range(0, target.n_users, block):
    rows = slice(lo, min(lo + block, target.n_users))
    top_BxK = np.asarray(_top_items(jnp.asarray(params["user"][rows]), item_IxD,
                                    jnp.asarray(known[rows].toarray() > 0)))
    gain_BxK = (np.take_along_axis(target_csr[rows].toarray() > 0, top_BxK, axis=1)
                * discount_K / ideal_U[rows, None])
    user_U[rows] = gain_BxK.sum(1)
    np.add.at(item_I, top_BxK.ravel(), gain_BxK.ravel())
  return user_U, item_I


def user_ndcg(params: dict, history, exclude: list, target, block: int = 256) -> np.ndarray:
  """[n_users]: ndcg_parts' per-user NDCG@10."""
  return ndcg_parts(params, history, exclude, target, block)[0]


def sample_rewards(split, masks_KxC, seed, exclude: tuple) -> tuple:
  """([K, n_users], [K, n_items]): ndcg_parts on split.valid (the reward part) of BPR-MF
  fitted on each mask over split.train's pairs (step-matched to them), `exclude` masked."""
  model = models.get_model("bpr_mf")

  def one(mask_C):
    subset = split.train.subset(mask_C > 0)
    cfg = train_lib.matched_to(common.train_config(), split.train.nnz, subset.nnz)
    fit = train_lib.fit(model, split, hparams=common.model_config(), cfg=cfg, seed=seed,
                        train=subset, exclude_valid=exclude)
    return ndcg_parts(fit.params, split.train, list(exclude), split.valid)

  with concurrent.futures.ThreadPoolExecutor(train_many.default_workers()) as pool:
    parts = list(pool.map(one, np.asarray(masks_KxC)))
  return np.stack([u for u, _ in parts]), np.stack([i for _, i in parts])


FEATURES = ("proxy score", "proxy rank in user", "log item degree", "log user degree")


def pair_features(pool, proxy: dict) -> np.ndarray:
  """[C, len(FEATURES)] float32, each column z-scored over the pool's pairs; the rank is a
  pair's place among its user's pairs by proxy score over the user's degree (0 is best)."""
  users_C = pool.users()
  score_C = proxy_lib.scores_of(proxy, users_C, pool.indices)
  order = np.lexsort((-score_C, users_C))
  rank_C = np.empty(pool.nnz)
  rank_C[order] = np.arange(pool.nnz) - np.repeat(pool.indptr[:-1], pool.user_degrees())
  cols = [score_C, rank_C / pool.user_degrees()[users_C],
          np.log1p(pool.item_degrees()[pool.indices]), np.log1p(pool.user_degrees()[users_C])]
  x_CxF = np.stack(cols, 1).astype(np.float64)
  return ((x_CxF - x_CxF.mean(0)) / np.maximum(x_CxF.std(0), 1e-12)).astype(np.float32)


def start_logits(start_C) -> jax.Array:
  """[C] float32: --lift on the start's pairs, 0 elsewhere (before the budget's shift)."""
  return jnp.asarray(np.where(start_C, FLAGS.lift, 0.0), jnp.float32)


def parametrization(pool, start_C, features_CxF=None) -> tuple:
  """(params, logits_of(params) -> [C], summary(params) -> a JSON-able record or None) of
  --logits: one free logit per pair (params: the logits, from the start's lift); the lift
  plus features_CxF @ theta (theta from 0); or the lift plus a user's and an item's
  offset (from 0), one logit per user and per item instead of per pair."""
  base_C = start_logits(start_C)
  if FLAGS.logits == "features":
    x_CxF = jnp.asarray(features_CxF)
    return (jnp.zeros(x_CxF.shape[1]), lambda theta: base_C + x_CxF @ theta,
            lambda theta: np.asarray(theta).tolist())
  if FLAGS.logits == "offsets":
    users_C, items_C = jnp.asarray(pool.users()), jnp.asarray(pool.indices)
    return ({"user": jnp.zeros(pool.n_users), "item": jnp.zeros(pool.n_items)},
            lambda p: base_C + p["user"][users_C] + p["item"][items_C],
            lambda p: {f"{k}_offset_std": round(float(np.std(v)), 4) for k, v in p.items()})
  return base_C, lambda p: p, lambda p: None


def run_loop(pool, split_of, start_C, budget, steps, job, log, features_CxF=None) -> tuple:
  """({step: bool keep_C}, {step: mean sampled reward}, {step: parameters' summary}) of the
  loop's top-budget sets over the `pool`'s pairs. Step s's samples are fitted and rewarded as
  split_of(s) = (split, exclude, fitted_C) gives: on their pairs of split.train (the
  pool's pairs where fitted_C; None: all of them), scored on split.valid; a pair outside
  fitted_C gets no credit at that step (its mask reaches no fit). The logits are free
  per pair or as `parametrization` gives (features_CxF for --logits=features): the pair
  estimate reaches its parameters by the chain rule (jax.vjp)."""
  users_C, items_C = jnp.asarray(pool.users()), jnp.asarray(pool.indices)
  params, logits_of, summary = parametrization(pool, start_C, features_CxF)
  optimizer = optax.adam(job.condense.outer_lr)
  opt_state, key, t0 = optimizer.init(params), jax.random.key(job.seeds[0]), time.perf_counter()
  sets, sampled, thetas = {}, {}, {}
  for s in range(max(steps) + 1):
    raw_C = logits_of(params)
    logits_C = raw_C - budget_lib.budget_shift(raw_C, budget)
    if s in steps:
      sets[s] = budget_lib.top_k_mask(np.asarray(logits_C), budget)
      thetas[s] = summary(params)
    if s == max(steps):
      break
    probs_C = jax.nn.sigmoid(logits_C)
    masks_KxC = reinforce.sample_masks(jax.random.fold_in(key, s), probs_C,
                                       job.condense.num_samples)
    split, exclude, fitted_C = split_of(s)
    fitted_masks = masks_KxC if fitted_C is None else np.asarray(masks_KxC)[:, fitted_C]
    rewards_KxU, rewards_KxI = sample_rewards(split, fitted_masks, LOOP_SEED + s, exclude)
    grad_C = reinforce.estimate(rewards_KxU, masks_KxC, probs_C, users_C)
    if FLAGS.item_credit:  # the pair's item's share too: its effect on others
      grad_C = grad_C + reinforce.estimate(rewards_KxI, masks_KxC, probs_C, items_C)
    if fitted_C is not None:
      grad_C = jnp.where(fitted_C, grad_C, 0.0)
    grad = jax.vjp(logits_of, params)[1](grad_C)[0]
    updates, opt_state = optimizer.update(jax.tree.map(jnp.negative, grad), opt_state,
                                          params)  # ascent
    params = optax.apply_updates(params, updates)
    n_scored = int((split.valid.user_degrees() > 0).sum())  # the evaluator's mean's users
    sampled[s] = float(rewards_KxU.sum(1).mean() / max(n_scored, 1))
    top_C = budget_lib.top_k_mask(np.asarray(logits_of(params)), budget)
    now = summary(params)
    theta = "" if now is None else f", theta {now}"
    log(f"step {s + 1}: samples' mean reward {sampled[s]:.4f} (NDCG@10 on the reward part), "
        f"{np.mean(top_C[start_C]):.3f} of the start in the top set{theta}, "
        f"{time.perf_counter() - t0:.0f}s")
  return sets, sampled, thetas


ROTATING_SEED = 1_000  # with --reward_pairs=rotating, step s holds out with seed 1000 + s


def loop_split(data, reward_part, selection_part, held_out_seed: int = 1) -> tuple:
  """(split, exclude) of the loop's fits: split.train the pairs it may keep, split.valid
  the pairs its reward is scored on, `exclude` masked besides split.train's. With
  training pairs as the reward, they are --reward_share of each user's, drawn with
  `held_out_seed`."""
  if FLAGS.reward_pairs == "valid":
    return dataclasses.replace(data, valid=reward_part), (selection_part,)
  pool, reward_train = holdout.split_valid(data.train, FLAGS.reward_share, held_out_seed)
  return dataclasses.replace(data, train=pool, valid=reward_train), (data.valid,)


def fixed_split_of(split, exclude):
  """split_of for run_loop whose every step fits all of split.train."""
  return lambda s: (split, exclude, None)


def rotating_split_of(data, reward_part, selection_part):
  """split_of for run_loop over all of data.train: step s fits the pairs outside a
  fresh held-out share (seed ROTATING_SEED + s) and is rewarded on that share."""
  keys_C = data.train.pair_keys()

  def split_of(s):
    split, exclude = loop_split(data, reward_part, selection_part, ROTATING_SEED + s)
    return split, exclude, ~np.isin(keys_C, split.valid.pair_keys())
  return split_of


def loop_start(data, reward_part, selection_part, proxy, budget: int) -> tuple:
  """(pool, split_of, start_C): the pairs the loop's logits are over, run_loop's split_of,
  and which pool pairs --start_set's set of `budget` pairs holds."""
  if FLAGS.reward_pairs == "rotating":  # the sets may hold any training pair
    pool, split_of = data.train, rotating_split_of(data, reward_part, selection_part)
  else:  # one split for every step
    split, exclude = loop_split(data, reward_part, selection_part)
    pool, split_of = split.train, fixed_split_of(split, exclude)
  start = baselines.select(FLAGS.start_set, pool, budget, proxy=proxy, seed=0).train
  start_C = np.isin(pool.pair_keys(), start.pair_keys())
  if start_C.sum() != start.nnz:
    raise ValueError(f"--start_set={FLAGS.start_set} holds pairs outside the training "
                     "pairs (pseudo pairs): the loop keeps original pairs only")
  return pool, split_of, start_C


def run(log=print) -> dict:
  job, data, protocol, reward_part, selection_part, proxy, budget = study.setup()
  steps = sorted({int(s) for s in FLAGS.steps})
  split, exclude = loop_split(data, reward_part, selection_part)  # the reward_fits' split
  pool, split_of, start_C = loop_start(data, reward_part, selection_part, proxy, budget)
  features_CxF = pair_features(pool, proxy) if FLAGS.logits == "features" else None
  sets, sampled, thetas = run_loop(pool, split_of, start_C, budget, steps, job, log,
                                   features_CxF)
  out = pathlib.Path(FLAGS.json).parent
  subsets = {f"step{s}": pool.subset(keep) for s, keep in sets.items()}
  kept = {**subsets, **({"reward_part": split.valid} if FLAGS.reward_pairs == "train" else {})}
  for name, subset in kept.items():
    npz.save_arrays(out / "sets" / f"{name}.npz", {"users": subset.users(),
                                                    "items": subset.indices}, {"set": name})
  seeds = [int(s) for s in FLAGS.eval_seeds]
  evals = {"fits": holdout.saved_scores(  # the evaluator, judged on the selection part
      data, subsets, seeds, reward_part, selection_part, out / "fits",
      model_cfg=common.model_config(), train_cfg=common.train_config(), log=log),
           "reward_fits": holdout.saved_scores(  # as the loop scores its samples
      dataclasses.replace(data, train=split.train),
      {n: x.subset(~np.isin(x.pair_keys(), split.valid.pair_keys())) for n, x in subsets.items()},
      [LOOP_SEED], exclude[0], split.valid,
      out / "reward_fits", model_cfg=common.model_config(), train_cfg=common.train_config(),
      log=log)}
  rows = [{"step": s, "pairs": int(sets[s].sum()),
           "start_kept": float(np.mean(sets[s][start_C])),
           "sampled_reward": sampled.get(s), "theta": thetas[s],
           "reward_part": evals["reward_fits"][f"step{s}"]["selection"][0],
           "selection": evals["fits"][f"step{s}"]["selection"],
           "test": evals["fits"][f"step{s}"]["test"]}
          for s in steps]
  return {"dataset": FLAGS.dataset, "ratio": job.condense.ratio, "budget": budget,
          "start_set": FLAGS.start_set, "rows": rows, "eval_seeds": seeds, "lift": FLAGS.lift,
          "outer_lr": job.condense.outer_lr, "num_samples": job.condense.num_samples,
          "loop_seed": LOOP_SEED, "reward_pairs": FLAGS.reward_pairs, "logits": FLAGS.logits,
          "item_credit": FLAGS.item_credit,
          "features": list(FEATURES) if FLAGS.logits == "features" else None,
          "reward_share": FLAGS.reward_share if FLAGS.reward_pairs != "valid" else None,
          "rotating_seed": ROTATING_SEED if FLAGS.reward_pairs == "rotating" else None,
          "protocol": holdout.study_protocol(protocol, split.valid, selection_part, data.test),
          "versions": records.versions()}


def markdown(result: dict) -> str:
  lines = [f"# Retrain-reward loop from {result['start_set']}: {result['dataset']}, r = "
           f"{result['ratio']:g}, K = {result['num_samples']}, "
           f"{len(result['eval_seeds'])} evaluator seeds, reward on "
           + ("the reward half of validation" if result["reward_pairs"] == "valid" else
              f"{result['reward_share']:g} of the training pairs"
              + (" (a fresh share each step; the set's reward: on seed 1's share, the set "
                 "less those pairs)" if result["reward_pairs"] == "rotating" else ""))
           + (", pairs credited with their user's and their item's reward"
              if result.get("item_credit") else ""), "",
           "| outer step | start's pairs kept | samples' reward at this step | "
           "the set's reward (reward part) | selection NDCG@10 | "
           "test NDCG@10 (± std over seeds) |", "|---:|---:|---:|---:|---:|---:|"]
  for r in result["rows"]:
    sampled = "–" if r["sampled_reward"] is None else f"{r['sampled_reward']:.4f}"
    lines.append(f"| {r['step']} | {r['start_kept']:.3f} | {sampled} | "
                 f"{r['reward_part']:.4f} | {np.mean(r['selection']):.4f} | "
                 f"{np.mean(r['test']):.4f} ± "
                 f"{np.std(r['test']):.4f} |")
  return "\n".join(lines) + "\n"


def check_flags():
  if any(int(s) < 0 for s in FLAGS.steps) or not FLAGS.lift > 0:
    raise ValueError(f"--steps must be >= 0 and --lift > 0; got {FLAGS.steps}, {FLAGS.lift}")
  if FLAGS.start_set not in ("proxy_top", "proxy_top_sqrt"):
    raise ValueError(f"--start_set must be proxy_top or proxy_top_sqrt (sets of original "
                     f"pairs), got {FLAGS.start_set!r}")


if __name__ == "__main__":
  app.run(study.main_of(run, markdown, check_flags))
