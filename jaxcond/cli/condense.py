r"""Condenses a dataset's training split and judges the condensed set.

jaxcond condense --flagfile=experiments/flags/dianping.flags

Writes <output_dir>/report.json, report.md with its PNG figures (outer loop, retention,
degree distributions, tail vs head users), the condensed set of every seed under
<output_dir>/seed<k>/ (CSV, TSV, npz, RecBole benchmark files), and prints a table.
Resumable: rerun the same command after an interruption (checkpoints in seed<k>/).
"""

import sys

from absl import flags

from jaxcond import condensation
from jaxcond.cli import common
from jaxcond.condense import condenser, inner, starts
from jaxcond.core import sharding
from jaxcond.data.interactions import DataError
from jaxcond.report import summary

_C = condensation.DEFAULT_CONDENSE
_I = inner.InnerConfig()
_J = condensation.JobConfig()

flags.DEFINE_float("ratio", _C.ratio, "Size of the condensed set, as a fraction (see "
                   "--accounting).")
flags.DEFINE_enum("accounting", _C.accounting, condenser.ACCOUNTINGS,
                  "honest: |S| = ratio * N, everything counted; official: DConRec's "
                  "ratio * (original + pseudo candidates), fixed pairs on top.")
flags.DEFINE_list("eval_models", list(_J.eval_models), "Evaluator models (comma-separated).")
flags.DEFINE_list("seeds", [str(s) for s in _J.seeds], "Seeds: one condensation and one "
                  "evaluation per seed.")
flags.DEFINE_list("baselines", list(_J.baselines), "Same-size baselines to evaluate: random, "
                  "zero_update (this pipeline with no outer update), proxy_top, proxy_half "
                  "(the proxy heuristics); empty for none.")
flags.DEFINE_integer("outer_steps", _C.outer_steps, "Outer (REINFORCE) iterations from the "
                     "start; 0 (the default): the start's set, which no outer setting beat "
                     "on ML-1M, Dianping and Ciao (docs/results.md).")
flags.DEFINE_integer("num_samples", _C.num_samples, "Masks sampled per outer iteration (K).")
flags.DEFINE_enum("outer_optimizer", _C.outer_optimizer, condenser.OUTER_OPTIMIZERS,
                  "Optimiser of the keep logits.")
flags.DEFINE_float("outer_lr", _C.outer_lr, "Learning rate of the keep logits.")
flags.DEFINE_integer("lr_decay_every", _C.lr_decay_every, "Outer steps between decays.")
flags.DEFINE_float("lr_decay", _C.lr_decay, "Factor of each decay.")
flags.DEFINE_enum("baseline", _C.baseline, ["loo", "none"],
                  "REINFORCE baseline: leave-one-out mean, or none (plain estimator).")
flags.DEFINE_enum("credit", _C.credit, condenser.CREDITS,
                  "user: each logit credited with its user's reward; global: the total.")
flags.DEFINE_enum("selection", _C.selection, condenser.SELECTIONS,
                  "Final set: top keep probabilities, or one sampled mask.")
flags.DEFINE_integer("inner_steps", _I.steps, "Inner steps (1: the one-step update).")
flags.DEFINE_float("inner_lr", _I.lr, "Inner learning rate.")
flags.DEFINE_enum("inner_optimizer", _I.optimizer, inner.OPTIMIZERS, "Inner optimiser.")
flags.DEFINE_enum("inner_start", _I.start, inner.STARTS, "Start of the inner training.")
flags.DEFINE_enum("inner_update", _I.update, inner.UPDATES, "Tables the inner training moves.")
flags.DEFINE_enum("reward", _I.reward, inner.REWARDS, "Reward of a sampled subset.")
flags.DEFINE_float("rho", _J.rho, "The proxy's top unseen items per user: max(5, "
                   "floor(rho * |I_u|)), as pseudo candidates and as false negatives.")
flags.DEFINE_bool("augment", _J.augment, "Add the proxy's top unseen items as pseudo "
                  "candidates (pre-augmentation).")
flags.DEFINE_bool("exclude_false_negatives", _J.exclude_false_negatives,
                  "Never draw the proxy's top unseen items as negatives (inner and final "
                  "training).")
flags.DEFINE_float("prior_scale", _J.prior_scale, "Start keep logits: -scale * the within-user "
                   "percentile of the proxy's score; 0: equal keep probabilities.")
flags.DEFINE_enum("tail", _J.tail, ["keep", "floor", "none", "best"], "Long-tail "
                  "compensation: keep every pair of tail users; floor: every user keeps >= "
                  "ceil(tail_floor * |I_u|) pairs; none; best (the default): keep or none, "
                  "chosen with the start.")
flags.DEFINE_integer("tail_tau", _J.tail_tau, "Tail users: at most this many training pairs.")
flags.DEFINE_float("tail_quantile", None, "Tail users: the least active quantile of users "
                   "instead of --tail_tau (e.g. 0.2).")
flags.DEFINE_float("tail_floor", _J.tail_floor, "--tail=floor: the share of |I_u| every "
                   "user keeps at least.")
flags.DEFINE_bool("reward_signal", _J.reward_signal, "Measure the reward's signal-to-noise "
                  "ratio at the start and the end; unset: only when outer steps use the "
                  "reward.")
flags.DEFINE_integer("holdout_every", _J.holdout_every, "> 0: save the logits every this "
                     "many outer steps and keep the saved step whose set the proxy model, "
                     "trained on it, ranks the held-out validation pairs best with; 0: the "
                     "loop's last step.", lower_bound=0)
flags.DEFINE_float("holdout_share", _J.holdout_share, "Share of each user's validation "
                   "pairs held out of the reward, to choose the start, tail rule and step "
                   "on, with outer steps (without, every validation pair chooses the "
                   "start).")
flags.DEFINE_enum("start", _J.start, starts.STARTS, "The loop's start: the prior over "
                  "every candidate, over the originals, or over the pseudo pairs, or the set "
                  "of a proxy heuristic on top of the prior; best (the default): whichever "
                  "heuristic's set the proxy model, trained on it (--start_fits times), "
                  "ranks the validation pairs no reward reads best with, on average (all of "
                  "them without outer steps).")
flags.DEFINE_integer("start_fits", _J.start_fits, "Fits of the proxy model per start "
                     "candidate that choose a seed's start: seeded by the run's other seeds "
                     "(their fits judge the heuristics anyway), then 1000, 1001, ...; never "
                     "the seed's own. Their mean score chooses.", lower_bound=1)
flags.DEFINE_integer("proxy_fits", _J.proxy_fits, "Full-data fits of the proxy model, "
                     "seeded 0, 1, ...: the proxy scores a pair by their mean (with 3 and "
                     "--seeds=0,1,2 they are the fits the report trains anyway).", lower_bound=1)
flags.DEFINE_bool("resume", True, "Resume from the checkpoints and finished seeds in "
                  "--output_dir (made by the same settings and data); --noresume starts afresh.")
flags.DEFINE_integer("checkpoint_every", 20, "Outer steps between checkpoints (0: only at "
                     "the end of each seed's loop).", lower_bound=0)
FLAGS = common.FLAGS


def job_config() -> condensation.JobConfig:
  if FLAGS.model not in ("bpr_mf", "lightgcn"):
    raise ValueError(f"the condensation (proxy) model must be bpr_mf or lightgcn, got "
                     f"--model={FLAGS.model}; evaluate other models with --eval_models")
  inner_cfg = inner.InnerConfig(steps=FLAGS.inner_steps, lr=FLAGS.inner_lr,
                                optimizer=FLAGS.inner_optimizer, start=FLAGS.inner_start,
                                update=FLAGS.inner_update, reward=FLAGS.reward)
  ccfg = condenser.CondenseConfig(
      ratio=FLAGS.ratio, accounting=FLAGS.accounting, num_samples=FLAGS.num_samples,
      outer_steps=FLAGS.outer_steps, outer_optimizer=FLAGS.outer_optimizer,
      outer_lr=FLAGS.outer_lr, lr_decay_every=FLAGS.lr_decay_every, lr_decay=FLAGS.lr_decay,
      baseline=FLAGS.baseline, credit=FLAGS.credit, selection=FLAGS.selection, inner=inner_cfg)
  seeds = common.ints(FLAGS.seeds, "--seeds")
  return condensation.JobConfig(
      condense=ccfg, seeds=seeds, eval_models=tuple(FLAGS.eval_models), rho=FLAGS.rho,
      augment=FLAGS.augment, exclude_false_negatives=FLAGS.exclude_false_negatives,
      prior_scale=FLAGS.prior_scale, tail=FLAGS.tail, tail_tau=FLAGS.tail_tau,
      tail_quantile=FLAGS.tail_quantile, tail_floor=FLAGS.tail_floor,
      reward_signal=FLAGS.reward_signal, baselines=tuple(FLAGS.baselines),
      holdout_every=FLAGS.holdout_every, holdout_share=FLAGS.holdout_share,
      start=FLAGS.start, start_fits=FLAGS.start_fits,
      proxy_model=FLAGS.model, proxy_fits=FLAGS.proxy_fits)


def main(argv):
  del argv  # common.parse_flags refuses positional arguments
  try:
    common.check_output_dir()
    common.init_distributed()
    cfg = job_config()
    data, protocol = common.load_data()
    rep = condensation.run(data, protocol, cfg, model_cfg=common.model_config(),
                           train_cfg=common.train_config(), out_dir=FLAGS.output_dir,
                           cache_dir=common.cache_dir(), log=lambda s: print(s, flush=True),
                           resume=FLAGS.resume, checkpoint_every=FLAGS.checkpoint_every,
                           mesh=common.mesh())
  except (DataError, ValueError, FloatingPointError) as e:
    sys.exit(f"error: {e}")
  print(summary.table(rep))
  for group, g in rep["groups"].items():
    base = ", ".join(f"{b} {e['retention']['ndcg@10']:.3f}" for b, e in g["baselines"].items())
    print(f"{group} users: retention ndcg@10 {g['retention']['ndcg@10']:.3f}, recall@10 "
          f"{g['retention']['recall@10']:.3f}" + (f" (baselines: {base})" if base else ""))
  items = rep["items"]
  print(f"items: {items['share_in_S']['condensed']:.1%} keep a pair in S; evaluator coverage@10 "
        f"{items['coverage@10']['condensed']:.3f} (full data {items['coverage@10']['full']:.3f}),"
        f" mean popularity of recommended items {items['popularity@10']['condensed']:.0f} "
        f"(full data {items['popularity@10']['full']:.0f})")
  for s in rep["reward_signal"]:
    if "start" not in s:
      continue
    snr_start, snr_end = (s[k]["per_user_median"]["snr"] for k in ("start", "end"))
    print(f"seed {s['seed']}: inner validation loss {s['start']['reward_mean']:.4f} "
          f"(ln 2 = 0.6931); reward SNR per user (median) {snr_start:.2f} at start, "
          f"{snr_end:.2f} at end")
  print(f"condensation {rep['condense_seconds']:.1f}s per seed (+ proxy "
        f"{rep['proxy_seconds']:.1f}s, cached across runs)")
  if not sharding.is_main_process():
    print(f"process {FLAGS.process_id}: the report is written by process 0")
    return
  common.write_result("report.json", rep)
  paths = summary.write(rep, FLAGS.output_dir)
  print(f"wrote {paths['report.md']} and {len(paths) - 1} figures")

