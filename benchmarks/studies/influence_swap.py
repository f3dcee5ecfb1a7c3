r"""Does a pair's first-order influence on the reward tell good pairs from bad?

python benchmarks/studies/influence_swap.py --flagfile=experiments/flags/ml-1m.flags \
    --ratio=0.25 --json=runs/influence_swap-ml-1m/influence_swap.json

The retrain loop's REINFORCE credit per pair is noise (benchmarks/RESULTS.md, "Why the
retrain loop falls"). This study measures a deterministic credit instead: BPR-MF is fitted
on the start's set (--start_set over all training pairs, early-stopped on the reward half
of validation), and at checkpoints of that fit every training pair z is valued by
TracIn's first-order influence, the sum over checkpoints of grad L_R . grad l_z:

- L_R, the reward loss: softmax cross-entropy of each reward pair over the items its user
  does not hold (training and selection pairs masked), a smooth stand-in for NDCG;
- l_z, the pair's BPR loss, its mean over negatives drawn uniformly from all items.

A gradient step on z lowers L_R by lr x value(z), so a pair of high value is one that
training on helps the reward. Two fits (--value_seeds) give two value vectors; their
Pearson r per pair is the credit's reliability, beside REINFORCE's split-half r (0.022 on
ML-1M). Then, for each share m of --swap_shares, one set of the budget's size per swap of
--swaps (SWAPS): the start less its m lowest-valued pairs plus the m highest-valued pairs
outside it ("influence"), the reverse ("anti"), m of the start swapped at random
("random"), or one side by value and the other at random ("drop", "add"). The evaluator
(--eval_seeds) is early-stopped and scored on the selection half, then on test, which
nothing here reads to choose. Fits are kept under <json's folder>/fits/.
"""

import dataclasses
import functools
import pathlib
import time

import jax
import jax.numpy as jnp
import numpy as np
from absl import app, flags

from jaxcond import baselines, models
from jaxcond.cli import common
from jaxcond.condense import holdout
from jaxcond.core import records
from jaxcond.models import train as train_lib

import study  # benchmarks/studies/study.py, beside this script

flags.DEFINE_string("start_set", "proxy_top_sqrt", "The heuristic whose set is the start.")
flags.DEFINE_list("swap_shares", ["0.1"], "Shares of the start swapped out and in.")
flags.DEFINE_list("swaps", ["influence", "anti", "random"], "Which swaps (SWAPS) to judge.")
flags.DEFINE_list("value_seeds", ["10000", "10001"], "Seeds of the fits the values are "
                  "taken from (two or more: their agreement is reported).")
flags.DEFINE_integer("value_every", 40, "Epochs (of the set's own, step-matched fit) "
                     "between the checkpoints the values are summed over.")
flags.DEFINE_enum("reward_loss", "softmax", ["softmax", "top_bpr"], "L_R: softmax "
                  "cross-entropy of each reward pair over the unknown items, or BPR against "
                  "the user's 10 best-scored unknown non-reward items.")
flags.DEFINE_list("eval_seeds", ["0", "1", "2"], "Evaluator seeds per set.")
FLAGS = common.FLAGS

TOP_NEGATIVES = 10  # top_bpr's negatives: the items a target must pass to enter the top 10
PAIR_CHUNK = 2048  # pairs valued per jitted call: memory O(PAIR_CHUNK x n_items)
RANDOM_SWAP_SEED = 7


def _softmax_d_scores(scores_BxI, target_BxI):
  """d L / d scores of softmax cross-entropy of each target pair over the unknown items."""
  n_target_B = target_BxI.sum(1, keepdims=True)
  probs_BxI = jnp.where(n_target_B > 0, jax.nn.softmax(scores_BxI, axis=1), 0.0)
  return n_target_B * probs_BxI - target_BxI


def _top_bpr_d_scores(scores_BxI, target_BxI):
  """d L / d scores of BPR of each target pair against each of the user's TOP_NEGATIVES
  best-scored unknown items that are not targets, averaged over those items."""
  n_top = min(TOP_NEGATIVES, scores_BxI.shape[1])
  top_BxT, at_BxT = jax.lax.top_k(jnp.where(target_BxI > 0, -jnp.inf, scores_BxI), n_top)
  # sigmoid(s_ut - s_uv): how far top item t stands above target v, [B, T, I]
  above_BxTxI = jax.nn.sigmoid(top_BxT[:, :, None] - scores_BxI[:, None, :])
  above_BxTxI = jnp.where(target_BxI[:, None, :] > 0, above_BxTxI, 0.0) / n_top
  d_BxI = -above_BxTxI.sum(1)  # raising a target lowers L
  rows_BxT = jnp.broadcast_to(jnp.arange(scores_BxI.shape[0])[:, None], at_BxT.shape)
  return d_BxI.at[rows_BxT, at_BxT].add(above_BxTxI.sum(2))


@functools.partial(jax.jit, static_argnames="loss")
def _reward_grads_block(user_BxD, item_IxD, known_BxI, target_BxI, loss):
  """(d L_R / d user rows [B, D], this block's part of d L_R / d item [I, D])."""
  scores_BxI = jnp.where(known_BxI, -jnp.inf, user_BxD @ item_IxD.T)
  d_fn = _softmax_d_scores if loss == "softmax" else _top_bpr_d_scores
  d_scores_BxI = d_fn(scores_BxI, target_BxI)
  return d_scores_BxI @ item_IxD, d_scores_BxI.T @ user_BxD


def reward_grads(params: dict, known, target, block: int = 256,
                 loss: str = "softmax") -> tuple:
  """(G_U [U, D], G_I [I, D]): the gradient of L_R over the target pairs (u, v), with
  s = user . item and the items u knows masked (`known`, `target`: Interactions; a target
  item must not be known). softmax: L_R = sum of logsumexp_j s_uj - s_uv; top_bpr:
  L_R = sum of the mean over u's TOP_NEGATIVES best-scored non-target items t of
  -log sigmoid(s_uv - s_ut), the items that hold a target out of the top 10."""
  known_csr, target_csr = known.to_csr(), target.to_csr()
  user_UxD, item_IxD = np.asarray(params["user"]), jnp.asarray(params["item"])
  grad_user, grad_item = np.zeros(user_UxD.shape, np.float32), jnp.zeros(item_IxD.shape)
  for lo in range(0, target.n_users, block):
    rows = slice(lo, min(lo + block, target.n_users))
    g_user, g_item = _reward_grads_block(
        jnp.asarray(user_UxD[rows]), item_IxD, jnp.asarray(known_csr[rows].toarray() > 0),
        jnp.asarray(target_csr[rows].toarray() > 0, jnp.float32), loss)
    grad_user[rows], grad_item = np.asarray(g_user), grad_item + g_item
  return grad_user, np.asarray(grad_item)


@jax.jit
def _values_chunk(user_UxD, item_IxD, grad_user, grad_item, users_P, items_P):
  user_PxD, g_user_PxD = user_UxD[users_P], grad_user[users_P]
  scores_PxI = user_PxD @ item_IxD.T
  # a_PxI[p, j]: grad L_R . (d s_uj / d params) for u = users_P[p]
  a_PxI = g_user_PxD @ item_IxD.T + user_PxD @ grad_item.T
  s_P = jnp.take_along_axis(scores_PxI, items_P[:, None], 1)
  a_P = jnp.take_along_axis(a_PxI, items_P[:, None], 1)
  # d(-log sigmoid(s_ui - s_uj)) = -sigmoid(s_uj - s_ui) (d s_ui - d s_uj)
  return -jnp.mean(jax.nn.sigmoid(scores_PxI - s_P) * (a_P - a_PxI), axis=1)


def pair_values(params: dict, grad_user, grad_item, users_N, items_N) -> np.ndarray:
  """[N]: grad L_R . grad l_z for each pair z = (users_N, items_N), l_z the BPR loss of z
  averaged over negatives j uniform over all items (j = i adds nothing)."""
  args = [jnp.asarray(x) for x in (params["user"], params["item"], grad_user, grad_item)]
  out = np.zeros(len(users_N), np.float32)
  for lo in range(0, len(users_N), PAIR_CHUNK):
    at = slice(lo, lo + PAIR_CHUNK)
    u, i = np.asarray(users_N[at], np.int32), np.asarray(items_N[at], np.int32)
    pad = PAIR_CHUNK - u.size  # one compiled shape
    got = _values_chunk(*args, np.pad(u, (0, pad)), np.pad(i, (0, pad)))
    out[at] = np.asarray(got)[:u.size]
  return out


def influence(data, subset, reward_part, selection_part, seed: int, log) -> tuple:
  """(values over data.train's pairs, checkpoints used) of one fit on subset."""
  split = dataclasses.replace(data, valid=reward_part)
  cfg = train_lib.matched_to(common.train_config(), data.train.nnz, subset.nnz)
  every = FLAGS.value_every
  fit = train_lib.fit(models.get_model("bpr_mf"), split, hparams=common.model_config(),
                      cfg=cfg, seed=seed, train=subset, exclude_valid=(selection_part,),
                      keep_epochs=range(every, cfg.max_epochs + 1, every))
  epochs = [e for e in sorted(fit.snapshots) if e <= fit.best_epoch]
  known = data.train.union(selection_part)
  users_N, values_N, t0 = data.train.users(), np.zeros(data.train.nnz), time.perf_counter()
  for e in epochs:
    g_user, g_item = reward_grads(fit.snapshots[e], known, reward_part,
                                  loss=FLAGS.reward_loss)
    values_N += pair_values(fit.snapshots[e], g_user, g_item, users_N, data.train.indices)
  log(f"values of seed {seed}: {len(epochs)} checkpoints up to the best epoch "
      f"{fit.best_epoch}, {time.perf_counter() - t0:.0f}s")
  return values_N, epochs


# The swaps: which of the start's pairs go and which others come in, by value order.
SWAPS = {"influence": ("lowest", "highest"), "anti": ("highest", "lowest"),
         "random": ("random", "random"), "drop": ("lowest", "random"),
         "add": ("random", "highest")}


def swapped(start_N: np.ndarray, values_N: np.ndarray, n_swap: int, kind: str,
            seed: int = RANDOM_SWAP_SEED) -> np.ndarray:
  """start_N with n_swap of its pairs out and n_swap others in, each side chosen as SWAPS
  names: by lowest or highest value (ties in index order) or at random."""
  rng = np.random.default_rng(seed)

  def first(candidates, order):
    if order == "random":
      return rng.choice(candidates, n_swap, replace=False)
    sign = 1.0 if order == "lowest" else -1.0
    return candidates[np.argsort(sign * values_N[candidates], kind="stable")[:n_swap]]

  out_order, in_order = SWAPS[kind]
  keep_N = start_N.copy()
  keep_N[first(np.flatnonzero(start_N), out_order)] = False
  keep_N[first(np.flatnonzero(~start_N), in_order)] = True
  return keep_N


def run(log=print) -> dict:
  job, data, protocol, reward_part, selection_part, proxy, budget = study.setup()
  start = baselines.select(FLAGS.start_set, data.train, budget, proxy=proxy, seed=0).train
  start_N = np.isin(data.train.pair_keys(), start.pair_keys())
  if start_N.sum() != budget:
    raise ValueError(f"--start_set={FLAGS.start_set} holds pairs outside the training pairs")
  per_seed = [influence(data, start, reward_part, selection_part, int(s), log)
              for s in FLAGS.value_seeds]
  values_SxN = np.stack([v for v, _ in per_seed])
  values_N = values_SxN.mean(0)
  keeps = {"start": start_N}
  for share in (float(x) for x in FLAGS.swap_shares):
    for kind in FLAGS.swaps:
      keeps[f"{kind} {share:g}"] = swapped(start_N, values_N, round(share * budget), kind)
  out = pathlib.Path(FLAGS.json).parent
  seeds = [int(s) for s in FLAGS.eval_seeds]
  scores = holdout.saved_scores(data, {k: data.train.subset(v) for k, v in keeps.items()},
                                seeds, reward_part, selection_part, out / "fits",
                                model_cfg=common.model_config(),
                                train_cfg=common.train_config(), log=log)
  return {"dataset": FLAGS.dataset, "ratio": job.condense.ratio, "budget": budget,
          "start_set": FLAGS.start_set, "reward_loss": FLAGS.reward_loss, "eval_seeds": seeds,
          "value_seeds": [int(s) for s in FLAGS.value_seeds],
          "checkpoints": {str(s): e for s, (_, e) in zip(FLAGS.value_seeds, per_seed)},
          "reliability": agreement(values_SxN, start_N),
          "sets": {name: {"start_kept": float(keep[start_N].mean()),
                          "value_mean": float(values_N[keep].mean()), **scores[name]}
                   for name, keep in keeps.items()},
          "protocol": holdout.study_protocol(protocol, reward_part, selection_part, data.test),
          "versions": records.versions()}


def agreement(values_SxN: np.ndarray, start_N: np.ndarray) -> dict:
  """Pearson r between the first two seeds' values: all pairs, the start's, the others."""
  def r(mask):
    return study.correlation(values_SxN[0, mask], values_SxN[1, mask])
  if values_SxN.shape[0] < 2:
    return {}
  return {"pair": r(np.ones_like(start_N)), "start pairs": r(start_N),
          "other pairs": r(~start_N)}


def markdown(result: dict) -> str:
  rel = result["reliability"]
  lines = [f"# Influence swaps from {result['start_set']}: {result['dataset']}, r = "
           f"{result['ratio']:g}, {len(result['eval_seeds'])} evaluator seeds", "",
           "Seed-to-seed Pearson r of the values: " + ", ".join(
               f"{k} {v:.3f}" for k, v in rel.items()), "",
           "| set | start's pairs kept | mean value | selection NDCG@10 | "
           "test NDCG@10 (± std over seeds) |", "|---|---:|---:|---:|---:|"]
  for name, s in result["sets"].items():
    lines.append(f"| {name} | {s['start_kept']:.3f} | {s['value_mean']:.3g} | "
                 f"{np.mean(s['selection']):.4f} | {np.mean(s['test']):.4f} ± "
                 f"{np.std(s['test']):.4f} |")
  return "\n".join(lines) + "\n"


def check_flags():
  shares = [float(x) for x in FLAGS.swap_shares]
  if not shares or not all(0 < x < 1 for x in shares):
    raise ValueError(f"--swap_shares must lie in (0, 1), got {FLAGS.swap_shares}")
  if not FLAGS.swaps or set(FLAGS.swaps) - set(SWAPS):
    raise ValueError(f"--swaps must name some of {', '.join(SWAPS)}, got {FLAGS.swaps}")
  if FLAGS.value_every < 1 or not FLAGS.value_seeds:
    raise ValueError("--value_every must be >= 1 and --value_seeds not empty")
  if FLAGS.start_set not in ("proxy_top", "proxy_top_sqrt"):
    raise ValueError(f"--start_set must be proxy_top or proxy_top_sqrt (sets of original "
                     f"pairs), got {FLAGS.start_set!r}")


if __name__ == "__main__":
  app.run(study.main_of(run, markdown, check_flags))
