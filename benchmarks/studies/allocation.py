r"""How should a budget be shared among users? The proxy heuristics at several allocation powers.

python benchmarks/studies/allocation.py --flagfile=experiments/flags/ml-1m.flags \
    --ratio=0.25 --json=runs/allocation-ml-1m/allocation.json

Each set keeps, per user, its originals the proxy scores highest and (--shares of the
budget) its top unseen items, the users' counts proportional to |I_u|^power for each of
--powers (`baselines.proxy_mix`; power 1 is proxy_top / proxy_half, 0.5 their _sqrt forms).
Protocol as benchmarks/reward_fidelity.py: each user's validation pairs are split in two
(`holdout.split_valid`, seed 0); the proxy early-stops on the first part; the evaluator
(BPR-MF, step-matched, seeds --eval_seeds) early-stops on it too and is scored on the second
part ("selection": what a choice may read), then on test. Writes --json and its .md;
every fit is kept under <json's folder>/fits/ and read back on a rerun.
"""

import pathlib

import numpy as np
from absl import app, flags

from jaxcond import baselines
from jaxcond.cli import common
from jaxcond.condense import holdout
from jaxcond.core import records

import study  # benchmarks/studies/study.py, beside this script

flags.DEFINE_list("powers", ["1", "0.75", "0.5"], "Allocation powers: counts ~ |I_u|^power.")
flags.DEFINE_list("shares", ["0", "0.5"], "Shares of the budget given to pseudo pairs.")
flags.DEFINE_list("eval_seeds", ["0"], "Evaluator seeds per set.")
FLAGS = common.FLAGS


def set_name(share: float, power: float) -> str:
  return f"pseudo{share:g}_power{power:g}"


def build_sets(train, budget: int, proxy: dict, shares: list, powers: list) -> dict:
  """{name: Interactions}: one proxy_mix set per (share, power), each of `budget` pairs."""
  sets = {}
  for share in shares:
    for power in powers:
      sel = baselines.proxy_mix(train, budget, int(round(budget * share)), proxy,
                                np.random.default_rng(20), power)
      if sel.train.nnz != budget:
        raise AssertionError(f"set {set_name(share, power)} has {sel.train.nnz} pairs")
      sets[set_name(share, power)] = sel.train
  return sets


def light_share(subset, train, fraction: float = 0.2) -> float:
  """Share of the set's pairs held by the least active `fraction` of users."""
  deg = train.user_degrees()
  light = deg <= np.quantile(deg[deg > 0], fraction)
  return float(light[subset.users()].mean())


def run(log=print) -> dict:
  shares = [float(s) for s in FLAGS.shares]
  powers = [float(p) for p in FLAGS.powers]
  if not all(0 <= s < 1 for s in shares) or not all(0 <= p <= 2 for p in powers):
    raise ValueError(f"--shares must be in [0, 1) and --powers in [0, 2]; got {FLAGS.shares}, "
                     f"{FLAGS.powers}")
  job, data, protocol, reward_part, selection_part, proxy, budget = study.setup()
  sets = build_sets(data.train, budget, proxy, shares, powers)
  seeds = [int(s) for s in FLAGS.eval_seeds]
  evals = holdout.saved_scores(data, sets, seeds, reward_part, selection_part,
                               pathlib.Path(FLAGS.json).parent / "fits",
                               model_cfg=common.model_config(),
                               train_cfg=common.train_config(), log=log)
  rows = [{"set": set_name(sh, p), "pseudo_share": sh, "power": p,
           "light_users_share": light_share(sets[set_name(sh, p)], data.train),
           "selection": evals[set_name(sh, p)]["selection"],
           "test": evals[set_name(sh, p)]["test"]} for sh in shares for p in powers]
  return {"dataset": FLAGS.dataset, "ratio": job.condense.ratio, "budget": budget,
          "rows": rows, "eval_seeds": seeds,
          "protocol": holdout.study_protocol(protocol, reward_part, selection_part, data.test),
          "versions": records.versions()}


def markdown(result: dict) -> str:
  lines = [f"# Sharing the budget among users: {result['dataset']}, r = {result['ratio']}, "
           f"evaluator seeds {result['eval_seeds']}", "",
           "| pseudo share | power | pairs of the lightest 20% of users | selection NDCG@10 | "
           "test NDCG@10 | selection vs power 1 |", "|---:|---:|---:|---:|---:|---:|"]
  base = {r["pseudo_share"]: np.mean(r["selection"]) for r in result["rows"] if r["power"] == 1}
  for r in result["rows"]:
    sel, ref = np.mean(r["selection"]), base.get(r["pseudo_share"])
    rel = f"{sel / ref - 1:+.1%}" if ref else "–"
    lines.append(f"| {r['pseudo_share']:g} | {r['power']:g} | {r['light_users_share']:.1%} | "
                 f"{sel:.4f} | {np.mean(r['test']):.4f} | {rel} |")
  return "\n".join(lines) + "\n"


if __name__ == "__main__":
  app.run(study.main_of(run, markdown))
