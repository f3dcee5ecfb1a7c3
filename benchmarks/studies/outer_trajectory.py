r"""What the outer loop does to the set: its own objective against the evaluator's, by step.

python benchmarks/studies/outer_trajectory.py --flagfile=experiments/flags/ml-1m.flags --seeds=0 \
    --steps=0,25,50,100,200 --output_dir=runs/trajectory-ml-1m

Takes every flag of experiments/condense.py. For each number of outer steps n in --steps it
runs the condensation with --outer_steps=n (one seed; outer steps are deterministic in the
seed, so the run with n steps is the first n steps of the longer ones) and records:
- the inner objective the loop minimises, the one-step validation BPR loss (the
  "reward"; lower is better; with --reward=full plus the training pairs' loss), at the
  logits after n steps: its mean over 8 masks x 8 inner keys drawn from the seed alone
  (condenser.reward_signal, so every n is judged on the same validation negatives; the
  logged per-step reward redraws them each step);
- the evaluator (BPR-MF trained to convergence on the selected set): its best validation
  NDCG@10 and its test NDCG@10, and test retention against the full-data run;
- how far the set has moved: the share of its pairs that the step-0 set (the prior's
  top-k) also holds, its share of pseudo pairs, the share of items it holds a pair of,
  and the mean training degree (popularity) of its pairs' items.
Writes <output_dir>/trajectory.json, trajectory.md and trajectory.png. Resumable: each
run's folder (<output_dir>/steps<n>/) is condensation.run's, read back when finished.
"""

import dataclasses
import json
import pathlib
import sys

import numpy as np
from absl import app, flags

from jaxcond import condensation
from jaxcond.cli import common, condense
from jaxcond.core import records
from jaxcond.data.interactions import DataError
from jaxcond.report import summary

flags.DEFINE_list("steps", ["0", "25", "50", "100", "200"], "Outer step counts to run.")
FLAGS = common.FLAGS


def _pairs(npz_path: str) -> tuple[set, np.ndarray]:
  """The set's (user, item) pairs, and its items [|S|] (dense ids)."""
  with np.load(npz_path, allow_pickle=False) as z:
    items_S = z["item_index"]
    return set(zip(z["user_index"].tolist(), items_S.tolist())), items_S


def trajectory(data, protocol, job: condensation.JobConfig, steps: list[int],
               out: pathlib.Path) -> list[dict]:
  """One condensation per step count (job's first seed); a row of measurements each."""
  seed = job.seeds[0]
  model = job.eval_models[0]
  rows, start = [], None
  degree_I = data.train.item_degrees()
  for n in steps:
    cfg = dataclasses.replace(job, seeds=(seed,), baselines=(),
                              condense=dataclasses.replace(job.condense, outer_steps=n))
    rep = condensation.run(data, protocol, cfg, model_cfg=common.model_config(),
                           train_cfg=common.train_config(), out_dir=out / f"steps{n}",
                           cache_dir=common.cache_dir(), log=lambda s: print(s, flush=True),
                           resume=True, checkpoint_every=FLAGS.checkpoint_every,
                           mesh=common.mesh())
    record = json.loads((out / f"steps{n}" / f"seed{seed}" / condensation.SEED_RECORD)
                        .read_text())
    ev = record["evals"][model]["condensed"]
    full_test = rep["models"][model]["full"]["test"]["ndcg@10"]
    kept, items_S = _pairs(record["files"]["npz"])
    start = kept if start is None else start
    history = record["history"]
    per_seed = record["per_seed"]
    rows.append({
        "outer_steps": n,
        "inner_objective": record["signal"]["end"]["reward_mean"],
        "inner_objective_logged": history[-1]["reward"] if history else None,
        "evaluator_valid_ndcg@10": ev["valid"]["ndcg@10"],
        "evaluator_test_ndcg@10": ev["test"]["ndcg@10"],
        "test_retention_ndcg@10": ev["test"]["ndcg@10"] / full_test,
        "shared_with_first": len(kept & start) / len(kept),
        "pseudo_share": per_seed["pseudo_kept"] / per_seed["size"],
        "items_in_set": record["share"]["condensed"],
        "mean_item_degree": float(degree_I[items_S].mean()),
        "size": per_seed["size"]})
    print(_line(rows[-1]), flush=True)
  return rows


def _line(row: dict) -> str:
  return (f"steps {row['outer_steps']:4d}  inner objective {row['inner_objective']:.4f}  "
          f"evaluator valid ndcg@10 "
          f"{row['evaluator_valid_ndcg@10']:.4f}  test ndcg@10 "
          f"{row['evaluator_test_ndcg@10']:.4f} (retention {row['test_retention_ndcg@10']:.3f})"
          f"  shared with the first set {row['shared_with_first']:.3f}  pseudo "
          f"{row['pseudo_share']:.3f}  items in S {row['items_in_set']:.3f}  mean item "
          f"degree {row['mean_item_degree']:.0f}")


def markdown(rows: list[dict], head: str) -> str:
  lines = [head, "", "| outer steps | inner objective (the reward, minimised) | "
           "evaluator valid NDCG@10 | evaluator test NDCG@10 | test retention | "
           "pairs shared with the first set | pseudo share | items in the set | "
           "mean training degree of its items |",
           "|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
  for r in rows:
    lines.append(f"| {r['outer_steps']} | {r['inner_objective']:.4f} | "
                 f"{r['evaluator_valid_ndcg@10']:.4f} | "
                 f"{r['evaluator_test_ndcg@10']:.4f} | {r['test_retention_ndcg@10']:.3f} | "
                 f"{r['shared_with_first']:.3f} | {r['pseudo_share']:.3f} | "
                 f"{r['items_in_set']:.3f} | {r['mean_item_degree']:.0f} |")
  return "\n".join(lines) + "\n"


def figure(rows: list[dict], path: pathlib.Path, title: str) -> None:
  fig = summary._figure(figsize=(6.4, 3.8))
  ax = fig.add_subplot()
  steps = [r["outer_steps"] for r in rows]
  valid0 = rows[0]["evaluator_valid_ndcg@10"]
  lines = ax.plot(steps, [r["test_retention_ndcg@10"] for r in rows], "o-",
                  label="evaluator: test NDCG@10 retention")
  lines += ax.plot(steps, [r["evaluator_valid_ndcg@10"] / valid0 for r in rows], "o-",
                   mfc="none", label=f"evaluator: valid NDCG@10 / step {steps[0]}'s")
  lines += ax.plot(steps, [r["shared_with_first"] for r in rows], "s--",
                   label=f"pairs shared with the step-{steps[0]} set")
  ax.set_xlabel("outer steps")
  ax.set_ylabel("fraction")
  twin = ax.twinx()
  lines += twin.plot(steps, [r["inner_objective"] for r in rows], "^:", color="tab:red",
                     label="inner objective, the reward (right)")
  twin.set_ylabel("inner objective (minimised)", color="tab:red")
  ax.legend(lines, [ln.get_label() for ln in lines], loc="lower left", fontsize=7)
  ax.set_title(title, fontsize=9)
  summary._save(fig, path)


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {argv[1:]}")
  try:
    steps = sorted({int(s) for s in FLAGS.steps if s.strip().isdigit()})
    if not steps or len(steps) != len(set(FLAGS.steps)):
      raise ValueError(f"--steps must be non-negative integers, got {FLAGS.steps}")
    out = common.check_output_dir()
    job = dataclasses.replace(condense.job_config(), reward_signal=True)
    data, protocol = common.load_data()
    rows = trajectory(data, protocol, job, steps, out)
  except (DataError, ValueError, FloatingPointError) as e:
    sys.exit(f"error: {e}")
  title = (f"{FLAGS.dataset}, r = {job.condense.ratio:g}, seed {job.seeds[0]}, "
           f"{job.condense.outer_optimizer} {job.condense.outer_lr:g}, reward "
           f"{job.condense.inner.reward}")
  records.write_json_atomic(out / "trajectory.json", {
      "rows": rows, "dataset": FLAGS.dataset, "ratio": job.condense.ratio,
      "seed": job.seeds[0], "job": json.loads(json.dumps(dataclasses.asdict(job), default=str)),
      "protocol": protocol, "versions": records.versions()})
  records.write_text_atomic(out / "trajectory.md", markdown(rows, f"# Outer loop, {title}"))
  figure(rows, out / "trajectory.png", title)
  print(markdown(rows, title))
  print(f"wrote {out}/trajectory.json, trajectory.md, trajectory.png")


if __name__ == "__main__":
  app.run(main)
