r"""Distill-CF: synthesise users for ∞-AE, then judge them with ∞-AE and EASE.

python experiments/distill_cf.py --flagfile=experiments/flags/ml-1m-distill-cf.flags

Writes <output_dir>/synthetic_users.npz as soon as the distillation ends, then
<output_dir>/distill_cf.json: test metrics (Distill-CF's HR / nDCG and RecBole's) of ∞-AE
and EASE fitted on the synthetic users, on the random real users it started from and on
the full training data, with the run's history, settings, protocol and versions.
--users_from=<npz> skips the distillation and judges those users.
"""

import dataclasses
import sys
import time

import numpy as np
from absl import app, flags

from jaxcond.baselines import distill_cf as dcf
from jaxcond.cli import common
from jaxcond.core import atomic, records
from jaxcond.data.interactions import DataError

_C = dcf.DistillConfig()
flags.DEFINE_integer("synthetic_users", _C.n_users, "Synthetic users to learn (the budget).")
flags.DEFINE_integer("gumbel_samples", _C.n_samples, "Gumbel-softmax draws per synthetic user.")
flags.DEFINE_float("gumbel_tau", _C.tau, "Gumbel-softmax temperature.")
flags.DEFINE_float("budget_reg", _C.budget_reg, "Weight of the row-sum penalty.")
flags.DEFINE_float("outer_lr", _C.lr, "Adam learning rate of the logits.")
flags.DEFINE_integer("outer_steps", _C.steps, "Outer steps at most.")
flags.DEFINE_integer("outer_batch", _C.batch_users, "Real users per step (0: all).")
flags.DEFINE_integer("outer_patience", _C.patience, "Steps without a better validation "
                     "before stopping.")
flags.DEFINE_list("validate_at", [str(s) for s in _C.validate_at], "Steps that validate.")
flags.DEFINE_integer("validate_every", _C.validate_every, "Also validate every this many steps.")
flags.DEFINE_bool("remat", _C.remat, "Draw the Gumbel noise again in the backward pass "
                  "instead of keeping all draws (less memory, slower).")
flags.DEFINE_string("users_from", None, "Judge the users of this .npz (key 'users') instead "
                    "of distilling.")
flags.DEFINE_list("judge", ["distilled", "random_users", "full"], "Supports to judge: the "
                  "distilled users, the random real users the run started from, the full "
                  "training data.")
FLAGS = common.FLAGS

PUBLISHED = {"source": "Sachdeva et al. 2022, github.com/noveens/distill_cf README, ML-1M",
             "ndcg@10": {"inf_ae_distill_cf_500": 32.52, "inf_ae_full": 32.82,
                         "ease_full": 29.88}}


def distill_config() -> dcf.DistillConfig:
  return dcf.DistillConfig(
      n_users=FLAGS.synthetic_users, n_samples=FLAGS.gumbel_samples, tau=FLAGS.gumbel_tau,
      budget_reg=FLAGS.budget_reg, lr=FLAGS.outer_lr, steps=FLAGS.outer_steps,
      batch_users=FLAGS.outer_batch, patience=FLAGS.outer_patience,
      validate_at=tuple(int(s) for s in FLAGS.validate_at),
      validate_every=FLAGS.validate_every, remat=FLAGS.remat, seed=FLAGS.seed)


def main(argv):
  del argv  # common.parse_flags refuses positional arguments
  log = lambda s: print(s, flush=True)  # noqa: E731
  try:
    out = common.check_output_dir()
    cfg = distill_config()
    data, protocol = common.load_data()
    result = {"config": dataclasses.asdict(cfg), "protocol": protocol,
              "versions": records.versions(), "published": PUBLISHED}
    if FLAGS.users_from:
      with np.load(FLAGS.users_from) as npz:
        users, start_rows = npz["users"], npz["start_rows"]
      result["users_from"] = FLAGS.users_from
    else:
      run = dcf.distill(data, cfg, log=log)
      users, start_rows = run.pop("users"), np.asarray(run["start_rows"])
      with atomic.atomic_write(out / "synthetic_users.npz") as f:
        np.savez_compressed(f, users=users, start_rows=start_rows)
      result["distill"] = run
      log(f"distilled in {run['seconds']:.0f}s ({run['steps_run']} steps, "
          f"{run['seconds_per_step']:.2f}s a step); best step {run['best_step']}")
    supports = {"distilled": lambda: users,
                "random_users": lambda: dcf.dense_rows(data.train, start_rows),
                "full": lambda: dcf.dense_rows(data.train)}
    result["judged"] = {}
    for name in FLAGS.judge:
      t0 = time.time()
      log(f"judging {name}")
      result["judged"][name] = dcf.evaluate_support(supports[name](), data, log=log)
      result["judged"][name]["seconds"] = time.time() - t0
  except (DataError, ValueError, FloatingPointError) as e:
    sys.exit(f"error: {e}")
  ours = result["judged"].get("distilled", {}).get("inf_ae", {}).get("test", {})
  if "ndcg@10" in ours:
    want = PUBLISHED["ndcg@10"]["inf_ae_distill_cf_500"]
    gap = (100 * ours["ndcg@10"] - want) / want
    result["bar"] = {"published": want, "ours": 100 * ours["ndcg@10"], "relative_gap": gap,
                     "met": abs(gap) <= 0.05}
    log(f"∞-AE on distilled users: nDCG@10 {100 * ours['ndcg@10']:.2f} vs published "
        f"{want} ({100 * gap:+.1f}%)")
  common.write_result("distill_cf.json", result)


if __name__ == "__main__":
  app.run(main, flags_parser=common.parse_flags)
