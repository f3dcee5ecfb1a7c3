r"""Does the hold-out pick the right outer step? Every saved step's set, judged on test too.

python experiments/condense.py --flagfile=experiments/flags/ml-1m.flags --seeds=0 \
    --noreward_signal --baselines= --holdout_every=50 --output_dir=runs/holdout/ml-1m
python benchmarks/studies/holdout_check.py --flagfile=experiments/flags/ml-1m.flags --seeds=0 \
    --noreward_signal --baselines= --holdout_every=50 --output_dir=runs/holdout/ml-1m

Run with the flags of a finished `condense.py --holdout_every` run (its --output_dir): for
each seed and saved step it rebuilds the step's set from the saved logits, trains the
first --eval_models on it exactly as the condensation judges its own set, and sets the
test NDCG@10 retention beside the hold-out score that chose the step. Writes
<output_dir>/holdout_check.json and .md; each step's evaluation is kept in
<output_dir>/holdout_check/ and read back on a rerun.
"""

import dataclasses
import json
import pathlib
import sys

import numpy as np
from absl import app

from jaxcond import condensation
from jaxcond.cli import common, condense
from jaxcond.condense import condenser, holdout
from jaxcond.condense import proxy as proxy_lib
from jaxcond.condense import tail as tail_lib
from jaxcond.core import records
from jaxcond.data.interactions import DataError
from jaxcond.judging import fits

FLAGS = common.FLAGS


def check(data, protocol, job: condensation.JobConfig, out: pathlib.Path) -> list[dict]:
  """A row per seed and saved step: hold-out score, test NDCG@10 and its retention."""
  model_cfg, train_cfg = common.model_config(), common.train_config()
  rep = condensation.run(data, protocol, job, model_cfg=model_cfg, train_cfg=train_cfg,
                         out_dir=out, cache_dir=common.cache_dir(), log=print, resume=True,
                         checkpoint_every=FLAGS.checkpoint_every, mesh=common.mesh())
  params, _ = fits.fit_full(job.proxy_model, data, protocol, model_cfg=model_cfg,
                                    train_cfg=train_cfg, seed=job.proxy_seed,
                                    cache_dir=common.cache_dir(), log=print)
  proxy = proxy_lib.tables(job.proxy_model, params, data.train, model_cfg)
  pool, false_neg = condensation.build_pool(data, proxy, job)
  sizes = condenser.budget_of(pool, data.train.nnz, job.condense)
  floor_U = None
  if job.tail == "floor":  # as condensation.run selects
    free_U = np.bincount(pool.users_C[~pool.fixed_C], minlength=pool.n_users)
    floor_U = tail_lib.floor_counts(data.train.user_degrees(), free_U, job.tail_floor)
  model = job.eval_models[0]
  rows = []
  for chosen, full in zip(rep["holdout"], rep["models"][model]["full"]["per_seed"]):
    seed = chosen["seed"]
    ccfg = dataclasses.replace(job.condense, seed=seed)
    seed_dir = out / f"seed{seed}"
    run_fp = json.loads((seed_dir / condensation.SEED_RECORD).read_text())["fingerprint"]
    for step, score in zip(chosen["steps"], chosen["scores"]):
      path = out / "holdout_check" / f"seed{seed}-step{step}.json"
      fingerprint = f"{run_fp}-{step}"
      if path.exists():
        row = records.read_fingerprinted(path, fingerprint)
      else:
        logits, _ = holdout.load_snapshot(seed_dir / condensation.SNAPSHOTS / f"step{step}.npz")
        subset = pool.to_interactions(condenser.select(logits, pool, sizes, ccfg, seed,
                                                       floor_U))
        _, metrics = fits.evaluate_on(model, data, subset, model_cfg=model_cfg,
                                              train_cfg=train_cfg, seed=seed, avoid=false_neg)
        row = {"seed": seed, "step": step, "chosen": step == chosen["chosen_step"],
               "held_out_ndcg@10": score, "test_ndcg@10": metrics["test"]["ndcg@10"],
               "test_retention_ndcg@10": metrics["test"]["ndcg@10"]
               / full["test"]["ndcg@10"], "fingerprint": fingerprint}
        records.write_json_atomic(path, row)
      rows.append(row)
      print(f"seed {seed} step {step}: held-out ndcg@10 {score:.4f}, test retention "
            f"{row['test_retention_ndcg@10']:.3f}{'  (chosen)' if row['chosen'] else ''}",
            flush=True)
  return rows


def markdown(rows: list[dict], title: str) -> str:
  lines = [f"# {title}", "", "| seed | outer step | held-out NDCG@10 (chooses) | test NDCG@10 | "
           "test retention | chosen |", "|---:|---:|---:|---:|---:|---|"]
  for r in rows:
    lines.append(f"| {r['seed']} | {r['step']} | {r['held_out_ndcg@10']:.4f} | "
                 f"{r['test_ndcg@10']:.4f} | {r['test_retention_ndcg@10']:.3f} | "
                 f"{'yes' if r['chosen'] else ''} |")
  return "\n".join(lines) + "\n"


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {argv[1:]}")
  try:
    job = condense.job_config()
    if not job.holdout_every:
      raise ValueError("--holdout_every must be set (the flags of the run to check)")
    out = common.check_output_dir()
    data, protocol = common.load_data()
    rows = check(data, protocol, job, out)
  except (DataError, ValueError, FloatingPointError) as e:
    sys.exit(f"error: {e}")
  title = (f"Hold-out selection against test, {FLAGS.dataset}, r = {job.condense.ratio:g}, "
           f"every {job.holdout_every} steps, share {job.holdout_share:g}")
  best = {s: max(r["test_retention_ndcg@10"] for r in rows if r["seed"] == s)
          for s in {r["seed"] for r in rows}}
  records.write_json_atomic(out / "holdout_check.json", {
      "rows": rows, "best_test_retention_per_seed": {str(k): v for k, v in best.items()},
      "mean_chosen_retention": float(np.mean([r["test_retention_ndcg@10"] for r in rows
                                              if r["chosen"]])),
      "protocol": protocol, "versions": records.versions()})
  md = markdown(rows, title)
  records.write_text_atomic(out / "holdout_check.md", md)
  print(md)


if __name__ == "__main__":
  app.run(main)
