r"""Reward fidelity: does a reward rank same-size sets as a model trained on them does?

python benchmarks/reward_fidelity.py --dataset=ml-100k --min_rating=3 --ratio=0.25 \
    --json=runs/fidelity-ml-100k/fidelity.json

Takes every flag of experiments/condense.py (data, ratio, the proxy and the loop's
settings). Protocol: each user's validation pairs are split in two
(`holdout.split_valid`, --reward_share of them to the reward part), so that three
disjoint sets of pairs play three roles:
- the reward part: what every candidate reward, the proxy's early stopping and the
  outer loop read;
- the selection part: what the evaluator early-stops on and is scored on ("selection");
- test: what the evaluator is finally scored on, read by nothing else.
Sets (all of exactly round(r N) pairs): the outer loop's own sets at --loop_steps, the
proxy heuristics and random samples, random swaps of 5 to 30% of the loop's start and of
proxy_top, and mixes of the proxy's top originals and top unseen items. Each set is judged
by the evaluator (BPR-MF trained to convergence, step-matched schedule) with every seed
of --eval_seeds, and scored by every candidate reward (`jaxcond/condense/rewards.py`; averaged
over --reward_keys draws of the negatives). Reported per reward: Spearman's rho between
the reward (lower is better, so its negative) and the evaluator's mean NDCG@10 on the
selection part and on test, with 95% bootstrap intervals over sets; beside them the
evaluator's own seed-to-seed spread and the spread between sets. The report's "default" is
the retrain reward (with --retrain_reward), the one reward a default run reads: it takes no
outer step and chooses its start by a fit on each candidate; "loop_reward" names the outer
loop's per-step reward, reported beside it. "rewards_unread" repeats the measurement
over the sets whose making read no reward pair: the loop's sets past step 0 were chosen by
a reward read on the reward part, so any reward scored there flatters them. Writes --json (and
fidelity.md, fidelity.png beside it); resumable: every evaluator fit is kept under
<json's folder>/fits/ and read back.
"""

import dataclasses
import json
import pathlib
import sys
import time
from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np
from absl import app, flags
from scipy import stats

from jaxcond import baselines, condensation, models
from jaxcond.cli import common, condense
from jaxcond.condense import budget as budget_lib
from jaxcond.condense import condenser, holdout, rewards
from jaxcond.condense import proxy as proxy_lib
from jaxcond.core import records
from jaxcond.data.interactions import Interactions
from jaxcond.report import summary

sys.path.insert(0, str(pathlib.Path(__file__).parent / "studies"))
import study  # noqa: E402  benchmarks/studies/study.py: the studies' shared main

flags.DEFINE_list("eval_seeds", ["0", "1", "2"], "Evaluator seeds per set.")
flags.DEFINE_float("reward_share", 0.5, "Share of each user's validation pairs the rewards "
                   "read; the rest is the selection part.")
flags.DEFINE_list("loop_steps", ["0", "25", "50", "100", "200"], "Outer steps whose sets "
                  "are judged (the largest is the loop's length).")
flags.DEFINE_list("checkpoints", ["2", "10", "40"], "Epochs of the full-data run whose "
                  "tables the trajectory rewards start from.")
flags.DEFINE_integer("reward_keys", 2, "Draws of the rewards' negatives averaged per set.")
flags.DEFINE_list("swaps", ["0.05", "0.1", "0.2", "0.3"], "Shares of pairs swapped out.")
flags.DEFINE_integer("bootstrap", 2000, "Bootstrap resamples of the sets.")
flags.DEFINE_bool("retrain_reward", True, "Also measure the costliest reward: BPR-MF trained "
                  "to convergence on the set and scored on the reward part (one fit per set).")
flags.DEFINE_list("short_epochs", [], "Also measure cheap retrain rewards: BPR-MF trained "
                  "for exactly this many epochs (full-data epochs, step-matched to the set's "
                  "size; no early stopping) and scored on the reward part; one per count.")
flags.DEFINE_list("retrain_seeds", ["0"], "Seeds of the retrain reward's fits: with more than "
                  "one, the reward averaged over them is measured too (one reward per count).")
FLAGS = common.FLAGS
LOOP_REWARD = "user_step (the loop's reward)"
RETRAIN = "retrain (the evaluator on the reward part; the default's start choice)"


def _key_of(users, items, n_items: int) -> np.ndarray:
  return np.asarray(users, np.int64) * n_items + np.asarray(items, np.int64)


def build_sets(data, proxy, job, reward_part, log) -> tuple[dict, dict]:
  """{name: (users, items, info)} of same-size sets, and the loop's facts."""
  train, ratio = data.train, job.condense.ratio
  budget = baselines.budget_for(train.nnz, ratio)
  sets = {}
  for name in ("proxy_top", "proxy_half", "proxy_pseudo", "random", "stratified"):
    sel = baselines.select(name, train, budget, proxy=proxy, seed=0)
    sets[name] = (sel.train.users(), sel.train.indices, {"kind": "heuristic"})
  loop = _loop_sets(data, proxy, job, reward_part, budget, log)
  sets.update(loop["sets"])
  rng = np.random.default_rng(0)
  for share in (0.1, 0.25, 0.75):  # proxy_top / proxy_pseudo mixes (0.5 is proxy_half)
    mix = baselines.proxy_mix(train, budget, int(round(budget * share)), proxy, rng).train
    sets[f"mix_pseudo{share:g}"] = (mix.users(), mix.indices, {"kind": "mix"})
  for base in ("loop_step0", "proxy_top"):
    for share in (float(s) for s in FLAGS.swaps):
      users, items = _swap(sets[base][0], sets[base][1], train, share, rng)
      sets[f"{base}_swap{share:g}"] = (users, items, {"kind": "swap"})
  for name, (users, items, _) in sets.items():
    if np.unique(_key_of(users, items, train.n_items)).size != budget:
      raise AssertionError(f"set {name} has {users.size} pairs, not {budget} distinct")
  return sets, loop["facts"]


def _swap(users, items, train, share, rng):
  """The set with `share` of its pairs replaced by original pairs it lacks, at random."""
  have = np.isin(_key_of(train.users(), train.indices, train.n_items),
                 _key_of(users, items, train.n_items))
  n = int(round(share * users.size))
  out = rng.permutation(users.size)[n:]
  add = rng.choice(np.flatnonzero(~have), n, replace=False)
  return (np.concatenate([users[out], train.users()[add]]),
          np.concatenate([items[out], train.indices[add]]))


def _loop_sets(data, proxy, job, reward_part, budget, log) -> dict:
  """The outer loop run once (job's first seed, reward on the reward part); its set at
  every step of --loop_steps."""
  steps = sorted({int(s) for s in FLAGS.loop_steps})
  seed = job.seeds[0]
  ccfg = dataclasses.replace(job.condense, outer_steps=max(steps), seed=seed)
  pool, _, rows, sizes, graph, max_degree, prior = condensation.loop_inputs(data, proxy, job)
  if sizes["total"] != budget:
    raise ValueError(f"the loop's budget {sizes['total']} differs from round(rN) = {budget}")
  sdata = condenser.step_data(pool, rows, proxy, reward_part, graph, sizes, ccfg, max_degree)
  start = condenser.init_state(sdata, ccfg, prior)
  saved = {0: np.asarray(start.logits_C).copy()}
  t0 = time.perf_counter()
  condenser.condense(pool, sdata, ccfg, hparams=common.model_config(), max_degree=max_degree,
                     state=start, sizes=sizes, snapshot_every=1,
                     on_snapshot=lambda step, logits: saved.__setitem__(step, logits.copy())
                     if step in steps else None)
  log(f"outer loop: {max(steps)} steps in {time.perf_counter() - t0:.1f}s")
  sets = {}
  for step in steps:
    keep = condenser.select(saved[step], pool, sizes, ccfg, seed)
    sets[f"loop_step{step}"] = (pool.users_C[keep], pool.items_C[keep],
                                {"kind": "loop", "step": step,
                                 "read_reward_part": step > 0})
  # Draws from the start's keep probabilities at exactly the budget: the top of logit +
  # logistic noise (logit + L > t is a Bernoulli(sigmoid(logit - t)) draw).
  rng = np.random.default_rng([seed, 0x5A])
  for j in range(3):
    noisy_C = np.where(pool.fixed_C, np.inf, saved[0] + rng.logistic(size=pool.size))
    keep = budget_lib.top_k_mask(noisy_C, sizes["total"], rng.permutation(pool.size))
    sets[f"start_sample{j}"] = (pool.users_C[keep], pool.items_C[keep], {"kind": "sample"})
  return {"sets": sets, "facts": {"steps": steps, "seed": seed,
                                  "pool": pool.size, "fixed": sizes["fixed"]}}


def reward_inputs(data, sets, reward_part, key_seed: int):
  """The union of the sets' pairs (the candidates), each set's mask over it, and the
  rewards' Pairs for each draw of negatives: (masks_SxC, [Pairs] one per draw)."""
  train = data.train
  keys = np.unique(np.concatenate([_key_of(u, i, train.n_items) for u, i, _ in sets.values()]))
  users_C, items_C = (keys // train.n_items).astype(np.int32), (keys % train.n_items).astype(
      np.int32)
  masks_SxC = np.stack([np.isin(keys, _key_of(u, i, train.n_items)) for u, i, _ in
                        sets.values()]).astype(np.float32)
  original_C = np.isin(keys, _key_of(train.users(), train.indices, train.n_items))
  avoid = train.to_csr()
  pairs = []
  for k in range(FLAGS.reward_keys):
    rng = np.random.default_rng([key_seed, k])
    negs = rewards.draw_negatives(users_C, avoid, train.n_items, 4, rng)
    pairs.append(rewards.Pairs(
        users_C=jnp.asarray(users_C), items_C=jnp.asarray(items_C), negs_CxM=jnp.asarray(negs),
        original_C=jnp.asarray(original_C, jnp.float32),
        target_users_T=jnp.asarray(reward_part.users(), jnp.int32),
        target_items_T=jnp.asarray(reward_part.indices, jnp.int32),
        target_negs_N=jnp.asarray(rng.integers(0, train.n_items, 128), jnp.int32)))
  return masks_SxC, pairs


def candidate_rewards(proxy_tables, checkpoints, init_tables) -> dict:
  """name -> fn(masks_KxC, pairs) -> parts: the rewards measured."""
  end = proxy_tables
  one, match = rewards.one_step, rewards.grad_match
  return {
      "scratch_50": lambda m, p: rewards.scratch_training(m, init_tables, p, steps=50),
      LOOP_REWARD: lambda m, p: one(m, rewards.zero_side(end, "user"), p, sides=("user",)),
      "item_step": lambda m, p: one(m, rewards.zero_side(end, "item"), p, sides=("item",)),
      "two_sided": lambda m, p: {
          **one(m, rewards.zero_side(end, "user"), p, sides=("user",)),
          **one(m, rewards.zero_side(end, "item"), p, sides=("item",))},
      "trajectory_step": lambda m, p: rewards.trajectory(one, m, checkpoints, p),
      "trajectory_grad_match": lambda m, p: rewards.trajectory(match, m, checkpoints, p),
      "grad_match_end": lambda m, p: match(m, end, p),
  }


def score_rewards(masks_SxC, pairs_list, fns, log) -> dict:
  """name -> [S] reward of every set (total over rows, mean over the negatives' draws)."""
  out = {}
  masks = jnp.asarray(masks_SxC)
  for name, fn in fns.items():
    t0 = time.perf_counter()
    per_key = [np.asarray(rewards.total(jax.jit(fn)(masks, p)), np.float64) for p in pairs_list]
    out[name] = np.mean(per_key, axis=0)
    log(f"reward {name}: {time.perf_counter() - t0:.1f}s")
  return out


def evaluate_sets(data, sets, score_part, masked_part, fits_dir: pathlib.Path, seeds,
                  log, train_cfg=None) -> dict:
  """name -> {"selection": [seeds], "test": [seeds]}: BPR-MF trained on each set, early
  stopping on `score_part` and scored there ("selection"; `masked_part` masked like
  training items), then on test (holdout.saved_scores: fits kept in `fits_dir`)."""
  subsets = {name: Interactions.from_pairs(users, items, n_users=data.train.n_users,
                                           n_items=data.train.n_items)
             for name, (users, items, _) in sets.items()}
  out = holdout.saved_scores(data, subsets, seeds, masked_part, score_part, fits_dir,
                             model_cfg=common.model_config(),
                             train_cfg=train_cfg or common.train_config(), log=log)
  for name, e in out.items():
    log(f"{name}: {fits_dir.name} part {np.mean(e['selection']):.4f}, test "
        f"{np.mean(e['test']):.4f} (± {np.std(e['test']):.4f} over seeds)")
  return out


def spearman_with_interval(x_S, y_S, n_boot: int, seed: int = 0) -> tuple[float, list]:
  """Spearman's rho of x and y over sets, and its 95% percentile bootstrap interval."""
  rho = float(stats.spearmanr(x_S, y_S)[0])
  rng = np.random.default_rng(seed)
  draws = []
  for _ in range(n_boot):
    idx = rng.integers(0, x_S.size, x_S.size)
    if np.unique(x_S[idx]).size > 1 and np.unique(y_S[idx]).size > 1:
      draws.append(stats.spearmanr(x_S[idx], y_S[idx])[0])
  lo, hi = np.percentile(draws, [2.5, 97.5]) if draws else (np.nan, np.nan)
  return rho, [float(lo), float(hi)]


def fidelity(reward_of: dict, evals: dict, names: list, n_boot: int,
             among: list | None = None) -> dict:
  """Per reward (values [S] in the order of `names`): Spearman's rho with the evaluator
  over the sets `among` (default: all), with bootstrap intervals."""
  among = names if among is None else among
  at = [names.index(n) for n in among]
  sel_S = np.array([np.mean(evals[n]["selection"]) for n in among])
  test_S = np.array([np.mean(evals[n]["test"]) for n in among])
  out = {}
  for name, all_S in reward_of.items():
    r_S = np.asarray(all_S)[at]
    rho_sel, int_sel = spearman_with_interval(-r_S, sel_S, n_boot)
    rho_test, int_test = spearman_with_interval(-r_S, test_S, n_boot)
    out[name] = {"spearman_selection": rho_sel, "spearman_test": rho_test,
                 "interval": int_sel, "interval_test": int_test,
                 "values": dict(zip(among, r_S.tolist()))}
  return out


def noise(evals: dict, names: list) -> dict:
  """The evaluator's seed-to-seed spread beside the spread between sets."""
  test_SxK = np.array([evals[n]["test"] for n in names])
  sel_SxK = np.array([evals[n]["selection"] for n in names])
  return {"test_seed_std": float(test_SxK.std(axis=1, ddof=1).mean()),
          "test_between_sets_std": float(test_SxK.mean(axis=1).std(ddof=1)),
          "selection_seed_std": float(sel_SxK.std(axis=1, ddof=1).mean()),
          "selection_between_sets_std": float(sel_SxK.mean(axis=1).std(ddof=1)),
          "spearman_selection_vs_test": float(stats.spearmanr(sel_SxK.mean(1),
                                                              test_SxK.mean(1))[0])}


def _rho_table(rewards_of: dict, default: str) -> list[str]:
  lines = ["| reward | Spearman, selection [95% CI] | Spearman, test [95% CI] |", "|---|---:|---:|"]
  for name, r in sorted(rewards_of.items(), key=lambda kv: -kv[1]["spearman_selection"]):
    mark = " (default)" if name == default else ""
    lines.append(f"| {name}{mark} | {r['spearman_selection']:.3f} [{r['interval'][0]:.2f}, "
                 f"{r['interval'][1]:.2f}] | {r['spearman_test']:.3f} "
                 f"[{r['interval_test'][0]:.2f}, {r['interval_test'][1]:.2f}] |")
  return lines


def markdown(result: dict) -> str:
  n = result["noise"]
  lines = [f"# Reward fidelity: {result['dataset']}, r = {result['ratio']:g}, "
           f"{result['sets']} sets x {len(result['eval_seeds'])} evaluator seeds", "",
           *_rho_table(result["rewards"], result["default"]), "",
           f"Over the {result['unread_sets']} sets whose making read no reward pair (the "
           "loop's sets past step 0 left out: the loop's reward read the reward part, on which "
           "the retrain reward and every target-loss reward are scored):", "",
           *_rho_table(result["rewards_unread"], result["default"])]
  lines += ["", f"Evaluator test NDCG@10: seed-to-seed std {n['test_seed_std']:.4f} (mean over "
            f"sets), between sets {n['test_between_sets_std']:.4f}; selection part: "
            f"{n['selection_seed_std']:.4f} and {n['selection_between_sets_std']:.4f}. "
            f"Spearman of the selection score against test over sets: "
            f"{n['spearman_selection_vs_test']:.3f}.", "",
            "| set | kind | selection NDCG@10 (mean of seeds) | test NDCG@10 | test std | "
            "reward / selection pairs it holds |", "|---|---|---:|---:|---:|---:|"]
  for name, e in result["evaluations"].items():
    info = result["set_info"][name]
    lines.append(f"| {name} | {info['kind']} | {np.mean(e['selection']):.4f}"
                 f" | {np.mean(e['test']):.4f} | {np.std(e['test'], ddof=1):.4f} | "
                 f"{info['reward_pairs_held']:,} / {info['selection_pairs_held']:,} |")
  return "\n".join(lines) + "\n"


def figure(result: dict, path: pathlib.Path) -> None:
  names = list(result["evaluations"])
  test_S = [np.mean(result["evaluations"][n]["test"]) for n in names]
  shown = sorted(result["rewards"], key=lambda k: -result["rewards"][k]["spearman_selection"])
  shown = list(dict.fromkeys([result["default"], *shown[:2]]))
  fig = summary._figure(figsize=(3.2 * len(shown), 3.2))
  for j, name in enumerate(shown):
    ax = fig.add_subplot(1, len(shown), j + 1)
    r = result["rewards"][name]
    ax.scatter([r["values"][n] for n in names], test_S, s=12)
    ax.set_xlabel(f"{name} (lower is better)", fontsize=8)
    ax.set_ylabel("evaluator test NDCG@10" if j == 0 else "")
    ax.set_title(f"rho sel {r['spearman_selection']:.2f}, test {r['spearman_test']:.2f}",
                 fontsize=8)
  summary._save(fig, path)


def retrain_rewards(data, sets, reward_part, selection_part, out, log) -> dict:
  """The evaluator itself as a reward: BPR-MF fits on each set scored on the reward part,
  with the first --retrain_seeds seed alone and, when more are given, averaged over them."""
  seeds = [int(s) for s in FLAGS.retrain_seeds]
  fits = evaluate_sets(data, sets, reward_part, selection_part, out / "reward_fits", seeds, log)
  rewards = {RETRAIN: -np.array(
      [fits[n]["selection"][0] for n in sets])}
  if len(seeds) > 1:
    rewards[f"retrain_{len(seeds)} (mean of {len(seeds)} seeds on the reward part)"] = \
        -np.array([np.mean(fits[n]["selection"]) for n in sets])
  for epochs in (int(e) for e in FLAGS.short_epochs):
    short = dataclasses.replace(common.train_config(), max_epochs=epochs, min_epochs=epochs,
                                eval_every=epochs, patience=1)
    got = evaluate_sets(data, sets, reward_part, selection_part,
                        out / f"reward_fits_{epochs}ep", seeds[:1], log, train_cfg=short)
    rewards[f"retrain_{epochs}ep (seed-{seeds[0]} fit, {epochs} full-data epochs)"] = \
        -np.array([got[n]["selection"][0] for n in sets])
  return rewards


def _set_facts(train, reward_part, selection_part) -> Callable:
  """(users, items) -> what a set holds: its share of pseudo pairs, its items' mean
  training degree, the share of items it covers, and how many validation pairs (of each
  part) it holds. The data's keys and degrees are computed once, for every set."""
  train_keys, degree_I = train.pair_keys(), train.item_degrees()
  part_keys = {"reward": reward_part.pair_keys(), "selection": selection_part.pair_keys()}

  def facts(users, items) -> dict:
    key_S = _key_of(users, items, train.n_items)
    return {"pseudo_share": float(1 - np.isin(key_S, train_keys).mean()),
            "mean_item_degree": float(degree_I[items].mean()),
            "items_in_set": float(np.unique(items).size / train.n_items),
            **{f"{name}_pairs_held": int(np.isin(key_S, keys).sum())
               for name, keys in part_keys.items()}}

  return facts


def _tables(params) -> dict:
  return {k: jnp.asarray(params[k], jnp.float32) for k in ("user", "item")}


def run(log=print) -> dict:
  job = condense.job_config()
  data, protocol = common.load_data()
  seeds = [int(s) for s in FLAGS.eval_seeds]
  out = pathlib.Path(FLAGS.json).parent
  reward_part, selection_part = holdout.split_valid(data.valid, 1 - FLAGS.reward_share, 0)
  # The proxy early-stops on the reward part; its trajectory gives the checkpoints.
  epochs = tuple(sorted(int(e) for e in FLAGS.checkpoints))
  t0 = time.perf_counter()
  fit = holdout.proxy_on(data, reward_part, selection_part, model_name=job.proxy_model,
                         seed=job.proxy_seed, model_cfg=common.model_config(),
                         train_cfg=common.train_config(), keep_epochs=epochs)
  log(f"proxy: best epoch {fit.best_epoch}, {time.perf_counter() - t0:.1f}s")
  proxy = proxy_lib.tables(job.proxy_model, fit.params, data.train, common.model_config())
  checkpoints = [_tables(fit.snapshots[e]) for e in epochs if e in fit.snapshots]
  sets, loop = build_sets(data, proxy, job, reward_part, log)
  names = list(sets)
  masks_SxC, pairs = reward_inputs(data, sets, reward_part, 0)
  init = models.get_model("bpr_mf").init(jax.random.key(job.proxy_seed), data.train.n_users,
                                         data.train.n_items, common.model_config())
  reward_of = score_rewards(masks_SxC, pairs, candidate_rewards(_tables(proxy), checkpoints,
                                                                _tables(init)), log)
  evals = evaluate_sets(data, sets, selection_part, reward_part, out / "fits", seeds, log)
  if FLAGS.retrain_reward:  # the upper bound: the evaluator itself, on the reward part
    reward_of.update(retrain_rewards(data, sets, reward_part, selection_part, out, log))
  facts = _set_facts(data.train, reward_part, selection_part)
  set_info = {n: {**info, **facts(u, i)} for n, (u, i, info) in sets.items()}
  unread = [n for n in names if not sets[n][2].get("read_reward_part")]
  # The default run takes no outer step: its one reward is the start choice's retrain.
  default = RETRAIN if FLAGS.retrain_reward else LOOP_REWARD
  return {"default": default, "loop_reward": LOOP_REWARD,
          "rewards": fidelity(reward_of, evals, names, FLAGS.bootstrap),
          "rewards_unread": fidelity(reward_of, evals, names, FLAGS.bootstrap, among=unread),
          "unread_sets": len(unread),
          "sets": len(names), "eval_seeds": seeds, "noise": noise(evals, names),
          "evaluations": evals, "set_info": set_info, "loop": loop,
          "checkpoint_epochs": [e for e in epochs if e in fit.snapshots],
          "dataset": FLAGS.dataset, "ratio": job.condense.ratio,
          "protocol": {**holdout.study_protocol(protocol, reward_part, selection_part, data.test),
                       "split_of_validation": "holdout.split_valid(valid, 1 - reward_share, 0)"},
          "job": json.loads(json.dumps(dataclasses.asdict(job), default=str)),
          "versions": records.versions()}


def check_flags() -> None:
  if not 0 < FLAGS.reward_share < 1:
    raise ValueError(f"--reward_share must be in (0, 1), got {FLAGS.reward_share}")


def write_figure(result: dict, path: pathlib.Path) -> None:
  figure(result, path.with_suffix(".png"))
  print(f"wrote {path}, {path.with_suffix('.md')}, {path.with_suffix('.png')}")


if __name__ == "__main__":
  app.run(study.main_of(run, markdown, check_flags, errors=(FloatingPointError,),
                        after_write=write_figure))
