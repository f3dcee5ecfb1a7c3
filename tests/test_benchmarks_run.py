"""Benchmark scripts keep their output contracts: benchmarks/run.py's --json (a tiny sweep;
timings are not judged), outer_trajectory.py's rows, holdout_check.py's and ease_l2.py's
(its EASE scores against a plain-numpy EASE)."""

import json
import os
import pathlib
import subprocess
import sys

import numpy as np
import pytest

from jaxcond.core import npz

ROOT = pathlib.Path(__file__).resolve().parents[1]


def _run(args: list, timeout: int = 600) -> subprocess.CompletedProcess:
  """Runs a command from the repository root on the CPU, its output captured as text."""
  return subprocess.run(args, cwd=ROOT, env=dict(os.environ, JAX_PLATFORMS="cpu"),
                        capture_output=True, text=True, timeout=timeout)


def _study_args(script: str, user_file, tmp_path, *flags) -> list:
  """The command of `script` (its path in the repository, which names it to the script
  guard) on the tiny user file: r = 0.25, seed 0, BPR-MF of dim 8 for at most 2 epochs,
  its cache under tmp_path; `flags` last (a test may swap the last one)."""
  return [sys.executable, str(ROOT / script),
          f"--dataset={user_file}", "--columns=who,what", "--ratio=0.25", "--seeds=0",
          "--max_epochs=2", "--min_epochs=0", "--dim=8", f"--cache_dir={tmp_path / 'cache'}",
          *flags]


def test_run_writes_the_contract_keys(tmp_path):
  out = tmp_path / "bench.json"
  proc = _run([sys.executable, str(ROOT / "benchmarks" / "run.py"),
               "--sizes=20000,60000,100000", "--repeats=1", "--judge_nnz=20000",
               "--judge_max_epochs=2", f"--json={out}"])
  assert proc.returncode == 0, proc.stderr
  rep = json.loads(out.read_text())
  assert set(rep) >= {"outer_step_seconds", "scaling_exponent", "peak_fraction", "bound",
                      "devices"}
  assert rep["bound"] in ("compute", "memory") and rep["devices"] >= 1
  assert rep["outer_step_seconds"] > 0 and 0 < rep["peak_fraction"]
  sweep = rep["sweep"]
  assert [r["nnz"] for r in sweep] == sorted(r["nnz"] for r in sweep)
  mid = sweep[1]  # the steps timed apart, at the middle size
  for name in ("inner_one_sample", "outer_step", "budget_projection", "evaluator_epoch"):
    assert mid[name]["seconds"] > 0 and mid[name]["compile_seconds"] > 0, name
  assert mid["outer_step"]["flops"] > 0 and mid["outer_step"]["bytes"] > 0
  assert mid["full_ranking"]["users"] == mid["users"]
  assert "memory-bound" in proc.stdout or "compute-bound" in proc.stdout
  judging = rep["judging"]
  # 3 seeds x (condensed, random and the four proxy heuristics): with no outer step (the
  # default) zero_update is the condensed set and is not judged again.
  assert judging["judge_seconds"] > 0 and judging["evaluator_fits"] == 18
  # No outer step: no loop runs (0 s) and the start's choice takes its fits' time.
  assert judging["outer_loop_seconds"] == 0 and judging["start_seconds"] > 0
  assert judging["condense_seconds"] < judging["wall_seconds"]


def test_outer_trajectory_rows_and_resume(tmp_path, user_file):
  out = tmp_path / "traj"
  args = [sys.executable, str(ROOT / "benchmarks" / "studies" / "outer_trajectory.py"),
          f"--dataset={user_file}", "--columns=who,what", "--ratio=0.25", "--seeds=0",
          "--steps=3,0", "--max_epochs=2", "--min_epochs=0", "--dim=8", "--rho=0.2",
          "--tail_tau=0", f"--output_dir={out}", f"--cache_dir={tmp_path / 'cache'}"]
  proc = _run(args)
  assert proc.returncode == 0, proc.stderr
  rep = json.loads((out / "trajectory.json").read_text())
  first, last = rep["rows"]
  assert [first["outer_steps"], last["outer_steps"]] == [0, 3]  # sorted
  assert first["shared_with_first"] == 1.0 and 0 <= last["shared_with_first"] <= 1
  # 50 users x 10 training pairs (12, less one validation and one test pair each)
  assert first["size"] == last["size"] == round(0.25 * 500)
  assert first["inner_objective_logged"] is None and last["inner_objective_logged"] > 0
  for row in rep["rows"]:
    assert 0 < row["inner_objective"] < 5 and 0 <= row["evaluator_test_ndcg@10"] <= 1
    assert 0 < row["items_in_set"] <= 1 and row["mean_item_degree"] > 0
  assert rep["job"]["reward_signal"] is True and rep["protocol"]["data_checksum"]
  assert (out / "trajectory.png").read_bytes()[:4] == b"\x89PNG"
  assert "| 3 |" in (out / "trajectory.md").read_text()

  again = _run(args)
  assert again.returncode == 0, again.stderr
  assert again.stdout.count("done before") == 2
  assert json.loads((out / "trajectory.json").read_text())["rows"] == rep["rows"]

  bad = _run(args[:-3] + ["--steps=-1", f"--output_dir={out}"])
  assert bad.returncode != 0 and "Traceback" not in bad.stderr and "--steps" in bad.stderr


def test_holdout_check_judges_every_saved_step(tmp_path, user_file):
  out = tmp_path / "held"
  flags = [f"--dataset={user_file}", "--columns=who,what", "--ratio=0.25", "--seeds=0",
           "--outer_steps=4", "--holdout_every=2", "--max_epochs=2", "--min_epochs=0",
           "--dim=8", "--rho=0.2", "--tail_tau=0", "--noreward_signal", "--baselines=",
           f"--output_dir={out}", f"--cache_dir={tmp_path / 'cache'}"]
  run = lambda script, *args: _run(  # noqa: E731
      [sys.executable, str(ROOT / script), *flags, *args])
  proc = run("experiments/condense.py")
  assert proc.returncode == 0, proc.stderr
  chosen = json.loads((out / "report.json").read_text())["holdout"][0]
  proc = run("benchmarks/studies/holdout_check.py")
  assert proc.returncode == 0, proc.stderr
  rep = json.loads((out / "holdout_check.json").read_text())
  rows = rep["rows"]
  assert [r["step"] for r in rows] == [0, 2, 4]
  assert [r["held_out_ndcg@10"] for r in rows] == chosen["scores"]
  assert [r["chosen"] for r in rows] == [s == chosen["chosen_step"] for s in (0, 2, 4)]
  assert all(r["test_retention_ndcg@10"] >= 0 for r in rows)
  # The chosen step's set is the exported one: its evaluation repeats the report's.
  test = json.loads((out / "report.json").read_text())["condensed"]["test"]["ndcg@10"]
  assert [r["test_ndcg@10"] for r in rows if r["chosen"]] == [pytest.approx(test, rel=1e-6)]
  again = run("benchmarks/studies/holdout_check.py")
  assert again.returncode == 0 and json.loads((out / "holdout_check.json").read_text())[
      "rows"] == rows
  off = run("benchmarks/studies/holdout_check.py", "--holdout_every=0")
  assert off.returncode != 0 and "--holdout_every must be set" in off.stderr


def _numpy_ease_ndcg10(data, subset, l2: float) -> float:
  """EASE fitted on `subset` in float64, scoring each user's whole training history;
  training and validation items masked; NDCG@10 over the users with a test item."""
  x = subset.to_csr(np.float64).toarray()
  p = np.linalg.inv(x.T @ x + l2 * np.eye(x.shape[1]))
  b = -p / np.diag(p)[None, :]
  np.fill_diagonal(b, 0.0)
  history = data.train.to_csr(np.float64).toarray()
  scores = history @ b
  scores[(history + data.valid.to_csr(np.float64).toarray()) > 0] = -np.inf
  test = data.test.to_csr(np.float64).toarray() > 0
  values = []
  for u in np.flatnonzero(test.any(axis=1)):
    top = np.argsort(-scores[u], kind="stable")[:10]
    dcg = np.sum(test[u, top] / np.log2(np.arange(2, 12)))
    idcg = np.sum(1.0 / np.log2(np.arange(2, 2 + min(10, test[u].sum()))))
    values.append(dcg / idcg)
  return float(np.mean(values))


def test_ease_l2_curves_match_numpy_and_the_recorded_check(tmp_path, user_file):
  from jaxcond import baselines
  from jaxcond.data import pipeline
  cfg = pipeline.DataConfig(dataset=str(user_file), columns=("who", "what"))
  data, _ = pipeline.prepare(cfg, cache_dir=tmp_path / "cache", log=lambda _: None)
  budget = baselines.budget_for(data.train.nnz, 0.25)
  sets = {m: baselines.select(m, data.train, budget, seed=0).train
          for m in ("random", "stratified")}
  want = {(m, l2): _numpy_ease_ndcg10(data, s, l2) for m, s in sets.items() for l2 in (5, 50)}
  full = {l2: _numpy_ease_ndcg10(data, data.train, l2) for l2 in (5, 50)}
  names = {5: "ease:ease_l2=5", 50: "ease:ease_l2=50"}
  def row(m, bump):  # the report's scores: numpy's, or off by `bump` (another set)
    return [{"seed": 0, "tau": 1.0, "full": {names[k]: full[k] for k in names},
             "condensed": {names[k]: want[(m, k)] + bump for k in names}}]
  kendall = tmp_path / "kendall.json"
  kendall.write_text(json.dumps({"ratio": 0.25, "metric": "ndcg@10",
                                 "configs": list(names.values()),
                                 "per_seed": {"random": row("random", 0.0),
                                              "stratified": row("stratified", 1e-3)}}))
  out = tmp_path / "ease"
  args = [sys.executable, str(ROOT / "benchmarks" / "studies" / "ease_l2.py"),
          f"--dataset={user_file}", "--columns=who,what", "--ratio=0.25", "--seeds=0,1",
          "--methods=random,stratified",
          "--l2=50,5,500", f"--kendall={kendall}", f"--output_dir={out}",
          f"--cache_dir={tmp_path / 'cache'}"]
  proc = _run(args)
  assert proc.returncode == 0, proc.stderr
  rep = json.loads((out / "ease_l2.json").read_text())
  assert list(rep["full"]) == ["5", "50", "500"]  # sorted
  # float32 sums against float64 ones: equal rankings, equal to ~1e-8 (one user's top 10
  # changing would move the mean of these 50 users by 1e-3 or more)
  assert [rep["full"][k] for k in ("5", "50")] == pytest.approx([full[5], full[50]], rel=1e-6)
  got = {(r["set"], r["seed"]): r for r in rep["sets"]}
  assert sorted(got) == [("random", 0), ("random", 1), ("stratified", 0), ("stratified", 1)]
  for (m, l2), v in want.items():
    assert got[(m, 0)]["test_ndcg@10"][str(l2)] == pytest.approx(v, rel=1e-6)
  assert got[("random", 0)]["size"] == budget
  mean = np.mean([got[("random", s)]["test_ndcg@10"]["50"] for s in (0, 1)])
  assert rep["by_set"]["random"]["test_ndcg@10"]["50"] == pytest.approx(mean)
  checks = {(r["set"], r["seed"]): r for r in rep["recorded"]}
  assert checks[("random", 0)]["same_set"] and checks[("random", 0)]["max_gap"] < 1e-7
  assert not checks[("stratified", 0)]["same_set"]
  assert checks[("stratified", 0)]["max_gap"] == pytest.approx(1e-3, abs=1e-7)
  assert not checks[("random", 1)]["in_report"]
  md = (out / "ease_l2.md").read_text()
  assert "random, seed 0: reproduces its scores" in md
  assert "stratified, seed 0: differs from its scores by up to 0.001" in md
  assert "random, seed 1: not in the report" in md
  assert (out / "ease_l2.png").read_bytes()[:4] == b"\x89PNG"

  again = _run(args)
  assert again.returncode == 0, again.stderr
  assert "EASE l2=" not in again.stdout  # every fit read back
  assert json.loads((out / "ease_l2.json").read_text())["sets"] == rep["sets"]
  for bad, message in (("--l2=-1", "--l2 must be positive"), ("--methods=nope", "nope"),
                       ("--ratio=0.5", "ratio")):
    proc = _run(args + [bad])
    assert proc.returncode != 0 and "Traceback" not in proc.stderr, bad
    assert message in proc.stderr, (bad, proc.stderr)


def test_reward_fidelity_contract_spearman_and_resume(tmp_path, user_file):
  out = tmp_path / "fid" / "fidelity.json"
  args = [sys.executable, str(ROOT / "benchmarks" / "reward_fidelity.py"),
          f"--dataset={user_file}", "--columns=who,what", "--ratio=0.25", "--seeds=0",
          "--loop_steps=2,0", "--eval_seeds=0,1", "--checkpoints=1,2", "--reward_keys=1",
          "--swaps=0.1,0.3", "--bootstrap=50", "--max_epochs=2", "--min_epochs=0",
          "--dim=8", "--rho=0.2", "--tail_tau=0", "--retrain_seeds=0,1", "--short_epochs=1",
          f"--cache_dir={tmp_path / 'cache'}", f"--json={out}"]
  proc = _run(args)
  assert proc.returncode == 0, proc.stderr
  rep = json.loads(out.read_text())
  by_set = {}  # the retrain fits as written, one file per set and seed
  for f in (out.parent / "reward_fits").glob("*.json"):
    row = json.loads(f.read_text())
    by_set.setdefault(row["set"], {})[row["seed"]] = row["selection"]
  mean2 = rep["rewards"]["retrain_2 (mean of 2 seeds on the reward part)"]["values"]
  for name, scores in by_set.items():
    assert sorted(scores) == [0, 1]
    assert mean2[name] == pytest.approx(-(scores[0] + scores[1]) / 2)
  names = list(rep["evaluations"])
  # 5 heuristics, 2 loop steps, 3 start samples, 3 mixes, 2 x 2 swaps
  assert rep["sets"] == len(names) == 17 and rep["loop_reward"] in rep["rewards"]
  assert rep["default"].startswith("retrain (")  # the default's only reward: its start choice
  retrain = rep["rewards"][rep["default"]]["values"]
  for f in (out.parent / "reward_fits").glob("*.json"):  # the seed-0 fit alone
    row = json.loads(f.read_text())
    if row["seed"] == 0:
      assert retrain[row["set"]] == pytest.approx(-row["selection"])
  assert all(-1 <= v <= 0 for v in retrain.values())  # minus an NDCG: lower is better
  short = rep["rewards"]["retrain_1ep (seed-0 fit, 1 full-data epochs)"]["values"]
  for f in (out.parent / "reward_fits_1ep").glob("*.json"):  # as each fit wrote it
    row = json.loads(f.read_text())
    assert row["seed"] == 0 and short[row["set"]] == pytest.approx(-row["selection"])
  assert len(list((out.parent / "reward_fits_1ep").glob("*.json"))) == 17
  assert {"loop_step0", "loop_step2", "proxy_top", "random"} <= set(names)
  # Without the one set whose making read the reward part (the loop's step 2), same values.
  unread = rep["rewards_unread"][rep["default"]]["values"]
  assert rep["unread_sets"] == 16 and set(unread) == set(names) - {"loop_step2"}
  assert all(unread[n] == retrain[n] for n in unread)
  for name, info in rep["set_info"].items():  # originals are never validation pairs
    held = info["reward_pairs_held"] + info["selection_pairs_held"]
    assert held >= 0 and (held == 0 or info["pseudo_share"] > 0), name
  assert rep["set_info"]["proxy_top"]["reward_pairs_held"] == 0
  test_S = np.array([np.mean(rep["evaluations"][n]["test"]) for n in names])
  for name, r in rep["rewards"].items():
    assert set(r) >= {"spearman_selection", "spearman_test", "interval"}, name
    lo, hi = r["interval"]
    assert -1 <= lo <= hi <= 1, name
    # Spearman by hand: Pearson of the ranks (no ties among these sets' mean scores).
    x = -np.array([r["values"][n] for n in names])
    rank = lambda v: np.argsort(np.argsort(v)).astype(float)  # noqa: E731
    if len(set(x)) == len(x) and len(set(test_S)) == len(test_S):
      want = np.corrcoef(rank(x), rank(test_S))[0, 1]
      assert abs(r["spearman_test"] - want) < 1e-9, name
  assert all(len(e["test"]) == 2 for e in rep["evaluations"].values())
  assert rep["noise"]["test_seed_std"] >= 0
  prot = rep["protocol"]
  assert prot["reward_pairs"] + prot["selection_pairs"] == 50 and prot["data_checksum"]
  assert out.with_suffix(".png").read_bytes()[:4] == b"\x89PNG"
  assert "(default)" in out.with_suffix(".md").read_text()
  fits = sorted((out.parent / "fits").glob("*.json"))
  assert len(fits) == 34 and len(list((out.parent / "reward_fits").glob("*.json"))) == 34
  stamps = [f.stat().st_mtime_ns for f in fits]
  again = _run(args)
  assert again.returncode == 0, again.stderr
  assert [f.stat().st_mtime_ns for f in fits] == stamps  # every fit read back, none retrained
  assert json.loads(out.read_text())["evaluations"] == rep["evaluations"]
  bad = _run(args[:-1] + ["--reward_share=1.5", f"--json={out}"])
  assert bad.returncode != 0 and "Traceback" not in bad.stderr and "--reward_share" in bad.stderr


def test_early_stopping_compares_settings_to_the_reference(tmp_path, user_file):
  out = tmp_path / "es.json"
  proc = _run([
      sys.executable, str(ROOT / "benchmarks" / "early_stopping.py"), f"--datasets={user_file}",
      "--columns=who,what", "--settings=0:1:10,20:2:5", "--max_epochs=3", f"--json={out}"])
  assert proc.returncode == 0, proc.stderr
  rows = json.loads(out.read_text())["results"][str(user_file)]
  assert [(r["valid_users"], r["eval_every"], r["patience"]) for r in rows] == [(0, 1, 10),
                                                                              (20, 2, 5)]
  assert all(0 <= r["test_ndcg@10"] <= 1 and 1 <= r["epochs"] <= 3 for r in rows)
  assert "+0.00%" in out.with_suffix(".md").read_text()  # the reference against itself


def test_condense_wait_times_two_trees_in_turn(tmp_path, user_file):
  out = tmp_path / "wait.json"
  args = (f"--dataset={user_file} --columns=who,what --ratio=0.25 --seeds=0 --outer_steps=2 "
          "--max_epochs=2 --min_epochs=0 --dim=8 --rho=0.2 --tail_tau=0 --noreward_signal "
          "--baselines=random")
  proc = _run([
      sys.executable, str(ROOT / "benchmarks" / "condense_wait.py"), "--before=HEAD",
      "--repeats=1", f"--condense_args={args}", f"--json={out}"], timeout=900)
  assert proc.returncode == 0, proc.stderr
  rep = json.loads(out.read_text())
  assert [len(rep["runs"][k]) for k in ("before", "after")] == [1, 1]
  after = rep["runs"]["after"][0]
  assert after["judge_seconds"] > 0 and 0 <= after["retention_ndcg@10"] <= 2
  assert set(after["baselines_retention_ndcg@10"]) == {"random"}
  assert rep["summary"]["after_over_before"] > 0


def test_many_evaluators_times_every_arrangement(tmp_path, user_file):
  out = tmp_path / "many.json"
  proc = _run([
      sys.executable, str(ROOT / "benchmarks" / "many_evaluators.py"), f"--dataset={user_file}",
      "--columns=who,what", "--models=3", "--epochs=2", "--repeats=1", f"--json={out}"])
  assert proc.returncode == 0, proc.stderr
  rep = json.loads(out.read_text())
  assert set(rep["ms_per_model_epoch"]) == {"one_at_a_time", "vmapped", "2_threads"}
  assert rep["speedup"]["one_at_a_time"] == 1.0
  assert all(v > 0 for v in rep["ms_per_model_epoch"].values())


def test_train_speed_runs_on_ml1m(tmp_path, shared_data_dir):
  out = tmp_path / "speed.json"
  proc = _run([
      sys.executable, str(ROOT / "benchmarks" / "train_speed.py"),
      f"--data_dir={shared_data_dir}", "--repeats=1", "--nofull_dianping", f"--json={out}"])
  assert proc.returncode == 0, proc.stderr
  rep = json.loads(out.read_text())["ml-1m"]
  assert rep["train_pairs"] == 674_674 and rep["interactions_per_second"] > 0
  assert rep["eval_users"] > 6000


def test_early_stopping_on_the_sets_a_condensation_judged(tmp_path, user_file):
  run_dir = tmp_path / "run"
  condense = _run([
      sys.executable, str(ROOT / "experiments" / "condense.py"), f"--dataset={user_file}",
      "--columns=who,what", "--ratio=0.25", "--seeds=0", "--outer_steps=2", "--max_epochs=2",
      "--min_epochs=0", "--dim=8", "--rho=0.2", "--tail_tau=0", "--noreward_signal",
      "--baselines=random", f"--output_dir={run_dir}", f"--cache_dir={tmp_path / 'c'}"])
  assert condense.returncode == 0, condense.stderr
  out = tmp_path / "sets.json"
  proc = _run([
      sys.executable, str(ROOT / "benchmarks" / "early_stopping.py"), f"--datasets={user_file}",
      "--columns=who,what", f"--sets_from={run_dir}", "--settings=0:1:10,0:2:5",
      "--max_epochs=2", f"--json={out}"])
  assert proc.returncode == 0, proc.stderr
  rep = json.loads(out.read_text())
  assert set(rep["results"]) == {"condensed seed 0", "random seed 0"}
  ref, other = rep["summary"]
  assert ref["epoch_changed"] == 0 and ref["mean_abs_change"] == 0 and ref["sets"] == 2
  assert 0 <= other["epoch_changed"] <= 2


def test_retrain_loop_rows_budget_and_resume(tmp_path, user_file):
  out = tmp_path / "rl" / "retrain_loop.json"
  args = _study_args("benchmarks/studies/retrain_loop.py", user_file, tmp_path, "--steps=2,0",
                     "--eval_seeds=0,1", "--num_samples=2", "--outer_lr=3", f"--json={out}")
  proc = _run(args)
  assert proc.returncode == 0, proc.stderr
  rep = json.loads(out.read_text())
  first, last = rep["rows"]
  assert [first["step"], last["step"]] == [0, 2]
  assert first["pairs"] == last["pairs"] == rep["budget"] == round(0.25 * 500)
  assert first["start_kept"] == 1.0 and last["start_kept"] < 1.0  # lr 3 swaps pairs
  assert 0 < first["sampled_reward"] < 1 and last["sampled_reward"] is None
  fits = sorted((out.parent / "fits").glob("*.json"))
  reward_fits = sorted((out.parent / "reward_fits").glob("*.json"))
  assert len(fits) == 4 and len(reward_fits) == 2  # 2 evaluator seeds x 2 sets; 1 x 2
  by_step = {r["step"]: r for r in rep["rows"]}
  for f in fits:
    row = json.loads(f.read_text())
    assert by_step[int(row["set"].removeprefix("step"))]["test"][row["seed"]] == row["test"]
  for f in reward_fits:
    row = json.loads(f.read_text())
    assert row["seed"] == rep["loop_seed"]
    assert by_step[int(row["set"].removeprefix("step"))]["reward_part"] == row["selection"]
  arrays, _ = npz.load_arrays(out.parent / "sets" / "step2.npz")
  assert arrays["users"].size == rep["budget"]
  assert "| 2 |" in out.with_suffix(".md").read_text()
  stamps = [f.stat().st_mtime_ns for f in fits + reward_fits]
  again = _run(args)
  assert again.returncode == 0, again.stderr
  assert [f.stat().st_mtime_ns for f in fits + reward_fits] == stamps
  bad = _run(args[:-1] + ["--start_set=proxy_half", f"--json={out}"])
  assert bad.returncode != 0 and "sets of original pairs" in bad.stderr


def test_retrain_loop_user_reward_is_the_evaluators_ndcg():
  """The loop's per-user NDCG@10, averaged over the users with target pairs, equals the
  library evaluator's NDCG@10 on the same model and pairs, block by block or at once (run
  apart: the study's flags)."""
  code = """
import sys
sys.path.insert(0, "benchmarks/studies")
import numpy as np, jax
import retrain_loop
from jaxcond.data import synthetic
from jaxcond.data.split import random_split
from jaxcond.models import evaluate, mf
data = random_split(synthetic.interactions(40, 60, 900, seed=3), seed=1, ratios=(0.6, 0.2, 0.2))
params = {"user": np.random.default_rng(0).normal(size=(40, 8)).astype(np.float32),
          "item": np.random.default_rng(1).normal(size=(60, 8)).astype(np.float32)}
per_user = retrain_loop.user_ndcg(params, data.train, [data.test], data.valid, block=16)
whole = retrain_loop.user_ndcg(params, data.train, [data.test], data.valid, block=256)
assert np.array_equal(per_user, whole)  # three blocks of users, then one
_, per_item = retrain_loop.ndcg_parts(params, data.train, [data.test], data.valid, block=16)
assert np.isclose(per_item.sum(), per_user.sum()) and (per_item >= 0).all()
# an item's share by hand: the items each user's top 10 hits, at their discount
scores = params["user"] @ params["item"].T
known = (data.train.to_csr() + data.test.to_csr()).toarray() > 0
hand = np.zeros(60)
for u in np.flatnonzero(data.valid.user_degrees() > 0):
  top = np.argsort(-np.where(known[u], -np.inf, scores[u]), kind="stable")[:10]
  held = set(data.valid.indices[data.valid.indptr[u]:data.valid.indptr[u + 1]].tolist())
  ideal = sum(1 / np.log2(j + 2) for j in range(min(len(held), 10)))
  for j, i in enumerate(top):
    hand[i] += (i in held) / np.log2(j + 2) / ideal
assert np.allclose(per_item, hand)
have = data.valid.user_degrees() > 0
reps = (jax.numpy.asarray(params["user"]), jax.numpy.asarray(params["item"]))
ref = evaluate.evaluate(mf.score, reps, history=data.train, exclude=(data.train, data.test),
                        target=data.valid, ks=(10,))
assert (per_user[~have] == 0).all()
print(abs(per_user[have].mean() - ref["ndcg@10"]))
"""
  proc = _run([sys.executable, "-c", code], timeout=300)
  assert proc.returncode == 0, proc.stderr
  assert float(proc.stdout.strip().splitlines()[-1]) < 1e-6


def test_match_loop_rows_budget_and_resume(tmp_path, user_file):
  out = tmp_path / "ml" / "match_loop.json"
  args = _study_args("benchmarks/studies/match_loop.py", user_file, tmp_path, "--steps=3,0",
                     "--eval_seeds=0,1", f"--json={out}")
  proc = _run(args)
  assert proc.returncode == 0, proc.stderr
  rep = json.loads(out.read_text())
  first, last = rep["rows"]
  assert [first["step"], last["step"]] == [0, 3]
  assert first["pairs"] == last["pairs"] == rep["budget"] == round(0.25 * 500)
  assert first["start_kept"] == 1.0 and 0 <= last["start_kept"] <= 1  # step 0: proxy_top
  assert first["reward"] > 0 and np.isfinite(last["reward"])
  fits = sorted((out.parent / "fits").glob("*.json"))
  # 2 evaluator seeds per distinct set (the same set twice shares its fits)
  assert len(fits) == (2 if last["start_kept"] == 1.0 else 4)
  by_step = {r["step"]: r for r in rep["rows"]}
  for f in fits:  # the report's figures are the fits' own
    row = json.loads(f.read_text())
    step = int(row["set"].removeprefix("step"))
    assert by_step[step]["test"][row["seed"]] == row["test"]
  assert "| 3 |" in out.with_suffix(".md").read_text()
  stamps = [f.stat().st_mtime_ns for f in fits]
  again = _run(args)
  assert again.returncode == 0, again.stderr
  assert [f.stat().st_mtime_ns for f in fits] == stamps  # read back, none retrained
  bad = _run(args[:-1] + ["--lift=0", f"--json={out}"])
  assert bad.returncode != 0 and "Traceback" not in bad.stderr and "--lift" in bad.stderr


def test_allocation_study_sets_and_resume(tmp_path):
  rng = np.random.default_rng(0)  # 40 users with 5 to 44 pairs each, two taste groups
  lines = ["who,what"] + [f"c{u},p{i}" for u in range(40)
                          for i in rng.choice(50, 5 + u, replace=False) + 25 * (u % 2)]
  (tmp_path / "uneven.csv").write_text("\n".join(lines) + "\n")
  out = tmp_path / "al" / "allocation.json"
  args = [sys.executable, str(ROOT / "benchmarks" / "studies" / "allocation.py"),
          f"--dataset={tmp_path / 'uneven.csv'}", "--columns=who,what", "--ratio=0.25",
          "--powers=1,0",
          "--shares=0", "--max_epochs=2", "--min_epochs=0", "--dim=8",
          f"--cache_dir={tmp_path / 'cache'}", f"--json={out}"]
  proc = _run(args)
  assert proc.returncode == 0, proc.stderr
  rep = json.loads(out.read_text())
  proportional, even = rep["rows"]
  assert (proportional["power"], even["power"]) == (1, 0) and rep["budget"] > 0
  # power 0 gives every user the same count: the light users hold more of the set
  assert even["light_users_share"] > proportional["light_users_share"]
  fits = sorted((out.parent / "fits").glob("*.json"))
  assert len(fits) == 2
  for f in fits:  # the report's figures are the fits' own
    row = json.loads(f.read_text())
    assert {r["set"]: r for r in rep["rows"]}[row["set"]]["test"] == [row["test"]]
  assert "| 0 | 0 |" in out.with_suffix(".md").read_text()
  stamps = [f.stat().st_mtime_ns for f in fits]
  again = _run(args)
  assert again.returncode == 0, again.stderr
  assert [f.stat().st_mtime_ns for f in fits] == stamps  # read back, none retrained
  bad = _run(args[:-1] + ["--powers=-1", f"--json={out}"])
  assert bad.returncode != 0 and "Traceback" not in bad.stderr and "--powers" in bad.stderr


def test_retrain_loop_on_held_out_training_pairs_with_feature_logits(tmp_path, user_file):
  """--reward_pairs=train: no set keeps a reward pair; --logits=features: theta starts at 0
  (the start's set) and moves, here with --item_credit."""
  out = tmp_path / "rl" / "retrain_loop.json"
  args = _study_args("benchmarks/studies/retrain_loop.py", user_file, tmp_path, "--steps=0,2",
                     "--eval_seeds=0", "--num_samples=2", "--outer_lr=2", "--reward_pairs=train",
                     "--reward_share=0.3", "--logits=features", "--item_credit", f"--json={out}")
  proc = _run(args)
  assert proc.returncode == 0, proc.stderr
  rep = json.loads(out.read_text())
  held, _ = npz.load_arrays(out.parent / "sets" / "reward_part.npz")
  held_keys = set(zip(held["users"].tolist(), held["items"].tolist()))
  assert len(held_keys) == held["users"].size == rep["protocol"]["reward_pairs"]
  n_train = rep["budget"] / 0.25  # 500 training pairs; per user 0.3 of them on average
  assert 0.25 * n_train < held["users"].size < 0.35 * n_train
  first, last = rep["rows"]
  assert first["theta"] == [0.0] * len(rep["features"]) and first["start_kept"] == 1.0
  assert any(t != 0 for t in last["theta"])
  for row in rep["rows"]:
    got, _ = npz.load_arrays(out.parent / "sets" / f"step{row['step']}.npz")
    assert got["users"].size == rep["budget"] == row["pairs"]
    assert not held_keys & set(zip(got["users"].tolist(), got["items"].tolist()))
    assert 0 <= row["reward_part"] <= 1
  assert rep["item_credit"]
  assert "0.3 of the training pairs, pairs credited with their user's and their item's" in \
      out.with_suffix(".md").read_text()


def test_retrain_loop_rotating_reward_pairs(tmp_path, user_file):
  """--reward_pairs=rotating: each step holds out a fresh share of the training pairs,
  which that step fits without and is rewarded on; the sets may hold any training pair.
  --logits=offsets: a logit per user and per item, each credited with its pairs' sum."""
  out = tmp_path / "rl" / "retrain_loop.json"
  args = _study_args("benchmarks/studies/retrain_loop.py", user_file, tmp_path, "--steps=0,2",
                     "--eval_seeds=0", "--num_samples=2", "--outer_lr=3", "--reward_pairs=rotating",
                     "--reward_share=0.3", "--logits=offsets", f"--json={out}")
  proc = _run(args)
  assert proc.returncode == 0, proc.stderr
  rep = json.loads(out.read_text())
  assert rep["reward_pairs"] == "rotating" and rep["reward_share"] == 0.3
  assert rep["rotating_seed"] == 1000 and not (out.parent / "sets" / "reward_part.npz").exists()
  first, last = rep["rows"]
  assert first["start_kept"] == 1.0 and last["start_kept"] < 1.0  # lr 3 swaps pairs
  assert first["pairs"] == last["pairs"] == rep["budget"]
  assert first["theta"] == {"user_offset_std": 0.0, "item_offset_std": 0.0}
  assert last["theta"]["user_offset_std"] > 0 and last["theta"]["item_offset_std"] > 0
  assert "(a fresh share each step" in out.with_suffix(".md").read_text()
  code = """
import sys
sys.path.insert(0, "benchmarks/studies")
import jax
import numpy as np
import retrain_loop
from jaxcond.cli import common
from jaxcond.data import synthetic
from jaxcond.data.split import random_split
from jaxcond.condense import holdout
common.FLAGS(["x", "--reward_pairs=rotating", "--reward_share=0.3"])
data = random_split(synthetic.interactions(40, 60, 900, seed=3), seed=1, ratios=(0.6, 0.2, 0.2))
reward_part, selection_part = holdout.split_valid(data.valid, 0.5, 0)
split_of = retrain_loop.rotating_split_of(data, reward_part, selection_part)
held = []
for s in (0, 1):
  split, exclude, fitted_C = split_of(s)
  keys = data.train.pair_keys()
  assert np.array_equal(split.train.pair_keys(), keys[fitted_C])  # in the pool's order
  assert np.array_equal(np.sort(split.valid.pair_keys()), np.sort(keys[~fitted_C]))
  assert exclude[0] is data.valid
  held.append(~fitted_C)
assert 0.2 < held[0].mean() < 0.4 and (held[0] != held[1]).any()  # a fresh share each step
common.FLAGS.logits = "offsets"
pool = data.train
params, logits_of, _ = retrain_loop.parametrization(pool, np.zeros(pool.nnz, bool))
grad = jax.vjp(logits_of, params)[1](jax.numpy.ones(pool.nnz))[0]
assert np.array_equal(np.asarray(grad["user"]), pool.user_degrees())  # a pair's credit
assert np.array_equal(np.asarray(grad["item"]), pool.item_degrees())  # reaches its rows
"""
  proc = _run([sys.executable, "-c", code], timeout=300)
  assert proc.returncode == 0, proc.stderr


def test_credit_signal_halves_and_their_agreement(tmp_path, user_file):
  """benchmarks/studies/credit_signal.py on tiny data; its agreement figures by hand."""
  out = tmp_path / "cs" / "credit_signal.json"
  args = _study_args("benchmarks/studies/credit_signal.py", user_file, tmp_path,
                     "--samples_per_half=2", "--lift=3", "--reward_pairs=rotating", f"--json={out}")
  proc = _run(args)
  assert proc.returncode == 0, proc.stderr
  rep = json.loads(out.read_text())
  assert len(rep["sample_rewards"]) == 4 and rep["pairs"] == 500
  grains = rep["agreement"]
  assert grains["pair"]["count"] == 500
  assert grains["start pair"]["count"] + grains["other pair"]["count"] == 500
  for a in grains.values():
    assert -1 <= a["r"] <= 1
  assert "| user (sum) |" in out.with_suffix(".md").read_text()
  bad = _run(args[:-1] + ["--samples_per_half=1", f"--json={out}"])
  assert bad.returncode != 0 and "--samples_per_half must be >= 2" in bad.stderr
  code = """
import sys
sys.path.insert(0, "benchmarks/studies")
import numpy as np
import credit_signal
a = np.array([1.0, 0.0, -2.0, 3.0]); b = np.array([2.0, 1.0, 0.0, 5.0])
r = np.corrcoef(a, b)[0, 1]
got = credit_signal.agreement([a, b], np.array([0, 0, 0, 1]), np.array([0, 1, 1, 2]),
                              np.array([True, False, True, False]), 2, 3)
assert np.isclose(got["pair"]["r"], r)
assert got["pair"]["same_sign"] == 1.0  # pairs 0 and 3 are nonzero in both, same signs
assert np.isclose(got["user (sum)"]["r"], 1.0)  # sums (-1, 3) and (3, 5): two points
assert np.isclose(got["item (sum)"]["r"], np.corrcoef([1, -2, 3], [2, 1, 5])[0, 1])
assert got["start pair"]["count"] == 2 and got["other pair"]["same_sign"] == 1.0
import study
assert study.correlation(np.ones(3), a[:3]) == 0.0
assert np.isclose(study.correlation(a, b), r)
"""
  proc = _run([sys.executable, "-c", code], timeout=300)
  assert proc.returncode == 0, proc.stderr


def test_influence_swap_values_and_swaps(tmp_path, user_file):
  """benchmarks/studies/influence_swap.py on tiny data; its values against autodiff of the
  two losses written out, and its swaps by hand."""
  out = tmp_path / "is" / "influence_swap.json"
  args = _study_args("benchmarks/studies/influence_swap.py", user_file, tmp_path,
                     "--eval_seeds=0", "--value_every=1", "--swaps=influence,random,drop",
                     f"--json={out}")
  proc = _run(args)
  assert proc.returncode == 0, proc.stderr
  rep = json.loads(out.read_text())
  assert list(rep["sets"]) == ["start", "influence 0.1", "random 0.1", "drop 0.1"]
  assert rep["sets"]["start"]["start_kept"] == 1.0
  assert rep["sets"]["influence 0.1"]["start_kept"] == pytest.approx(1 - round(12.5) / 125)
  assert -1 <= rep["reliability"]["pair"] <= 1
  assert len(list((out.parent / "fits").glob("*.json"))) == 4  # 4 sets x 1 seed
  bad = _run(args[:-1] + ["--swaps=best", f"--json={out}"])
  assert bad.returncode != 0 and "--swaps must name" in bad.stderr
  code = """
import sys
sys.path.insert(0, "benchmarks/studies")
import jax, jax.numpy as jnp, numpy as np
import influence_swap as st
from jaxcond.data.interactions import Interactions
rng = np.random.default_rng(0)
U, I, D = 5, 7, 3
params = {"user": rng.normal(size=(U, D)).astype(np.float32),
          "item": rng.normal(size=(I, D)).astype(np.float32)}
known = Interactions.from_pairs([0, 0, 1, 2, 3, 4], [1, 2, 0, 6, 3, 5], n_users=U, n_items=I)
target = Interactions.from_pairs([0, 1, 1, 3], [4, 2, 5, 0], n_users=U, n_items=I)
known_UxI = known.to_csr().toarray() > 0
def reward_loss(p):  # the sum over target pairs of logsumexp over unknown items - s_uv
  s = jnp.where(known_UxI, -jnp.inf, p["user"] @ p["item"].T)
  lse = jax.scipy.special.logsumexp(s, axis=1)
  return sum(lse[u] - s[u, v] for u, v in zip(target.users(), target.indices))
ref = jax.grad(reward_loss)(params)
g_user, g_item = st.reward_grads(params, known, target, block=2)
assert np.allclose(g_user, ref["user"], atol=1e-5) and np.allclose(g_item, ref["item"], atol=1e-5)
st.TOP_NEGATIVES = 2  # top_bpr against each user's 2 best unknown non-target items
target_UxI = target.to_csr().toarray() > 0
s0 = params["user"] @ params["item"].T  # the top items are chosen at the given params
def top_bpr_loss(p):
  s = p["user"] @ p["item"].T
  total = 0.0
  for u, v in zip(target.users(), target.indices):
    free = np.where(known_UxI[u] | target_UxI[u], -np.inf, s0[u])
    for t in np.argsort(-free, kind="stable")[:2]:
      total = total - jax.nn.log_sigmoid(s[u, v] - s[u, t]) / 2
  return total
ref_top = jax.grad(top_bpr_loss)(params)
g_user, g_item = st.reward_grads(params, known, target, block=3, loss="top_bpr")
assert np.allclose(g_user, ref_top["user"], atol=1e-5)
assert np.allclose(g_item, ref_top["item"], atol=1e-5)
g_user, g_item = st.reward_grads(params, known, target, block=2)
users, items = np.array([0, 2, 4, 4]), np.array([3, 6, 0, 5])
def pair_loss(p, u, i):  # BPR over every negative j, j = i included (it adds log 2)
  s = p["user"][u] @ p["item"].T
  return -jnp.mean(jax.nn.log_sigmoid(s[i] - s))
got = st.pair_values(params, g_user, g_item, users, items)
for n, (u, i) in enumerate(zip(users, items)):
  g = jax.grad(pair_loss)(params, u, i)
  want = float(np.sum(g["user"] * ref["user"]) + np.sum(g["item"] * ref["item"]))
  assert np.isclose(got[n], want, rtol=1e-4, atol=1e-6), (got[n], want)
start = np.array([True, True, True, False, False, False])
values = np.array([3.0, -1.0, 2.0, 5.0, -4.0, 0.5])
assert st.swapped(start, values, 1, "influence").tolist() == [1, 0, 1, 1, 0, 0]
assert st.swapped(start, values, 2, "anti").tolist() == [0, 1, 0, 0, 1, 1]
for kind in st.SWAPS:
  keep = st.swapped(start, values, 2, kind)
  assert keep.sum() == 3 and keep[start].sum() == 1, kind
assert st.swapped(start, values, 1, "drop")[1] == 0 and st.swapped(start, values, 1, "add")[3]
"""
  proc = _run([sys.executable, "-c", code], timeout=300)
  assert proc.returncode == 0, proc.stderr


def test_pair_features_rank_and_scaling_match_a_loop_over_users():
  """The rank column against a plain per-user sort; every column z-scored."""
  code = """
import sys
sys.path.insert(0, "benchmarks/studies")
import numpy as np
import retrain_loop
from jaxcond.data import synthetic
pool = synthetic.interactions(30, 50, 700, seed=2)
rng = np.random.default_rng(0)
proxy = {"user": rng.normal(size=(30, 4)).astype(np.float32),
         "item": rng.normal(size=(50, 4)).astype(np.float32)}
x = retrain_loop.pair_features(pool, proxy)
ref = np.empty(pool.nnz)
for u in range(30):
  lo, hi = pool.indptr[u], pool.indptr[u + 1]
  s = proxy["user"][u] @ proxy["item"][pool.indices[lo:hi]].T
  ref[lo:hi] = np.argsort(np.argsort(-s, kind="stable"), kind="stable") / (hi - lo)
ref = (ref - ref.mean()) / ref.std()
print(np.abs(x[:, 1] - ref).max(), np.abs(x.mean(0)).max(), np.abs(x.std(0) - 1).max())
"""
  proc = _run([sys.executable, "-c", code], timeout=300)
  assert proc.returncode == 0, proc.stderr
  rank_err, mean_err, std_err = map(float, proc.stdout.strip().splitlines()[-1].split())
  assert rank_err < 1e-5 and mean_err < 1e-5 and std_err < 1e-4


def test_study_main_refuses_a_missing_json_and_a_bad_flag(tmp_path, user_file):
  """benchmarks/studies/study.py's main_of, through retrain_loop.py, one study that uses it."""
  script = str(ROOT / "benchmarks" / "studies" / "retrain_loop.py")
  base = [sys.executable, script, f"--dataset={user_file}", "--columns=who,what"]
  no_json = _run(base, timeout=300)
  assert no_json.returncode != 0 and "--json=PATH is required" in no_json.stderr
  bad = _run(base + ["--lift=0", f"--json={tmp_path / 'r.json'}"], timeout=300)
  assert bad.returncode != 0 and "--lift > 0" in bad.stderr
  assert not (tmp_path / "r.json").exists()
