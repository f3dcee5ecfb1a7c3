"""Every script under benchmarks/ runs on tiny data. The scripts no other test module runs
are run here, each checked against its output contract; and a guard fails when a script
(or an entry point) appears that no test runs."""

import json
import math
import os
import pathlib
import subprocess
import sys

import numpy as np
import pytest

from jaxcond.data import synthetic
from jaxcond.data.pipeline import DataConfig, prepare

ROOT = pathlib.Path(__file__).resolve().parents[1]
JAXCOND = pathlib.Path(sys.executable).parent / "jaxcond"


def _run(*cmd, env=None, timeout=600):
  env = dict(os.environ, JAX_PLATFORMS="cpu", **(env or {}))
  proc = subprocess.run([str(c) for c in cmd], cwd=ROOT, env=env, capture_output=True,
                        text=True, timeout=timeout)
  assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
  return proc


def _python(script, *args, **kw):
  return _run(sys.executable, ROOT / script, *args, **kw)


@pytest.fixture(scope="module")
def syn_csv(tmp_path_factory):
  """60 users with >= 20 pairs each over 80 items (no tail users), as a user's CSV."""
  inter = synthetic.interactions(60, 80, 2400, seed=0)
  users, items = inter.original_pairs()
  path = tmp_path_factory.mktemp("syn") / "syn.csv"
  path.write_text("user,item\n" + "".join(f"{u},{i}\n" for u, i in zip(users, items)))
  return path


def test_every_script_and_entry_point_is_run_by_a_test():
  tests = "".join(p.read_text() for p in (ROOT / "tests").glob("test_*.py"))
  scripts = [*(ROOT / "benchmarks").rglob("*.py"), *(ROOT / "benchmarks").rglob("*.sh"),
             *(ROOT / "experiments").glob("*.py")]
  def named(path):  # "benchmarks/x.py", ROOT / "benchmarks" / "x.py", or script="x.py"
    rel = path.relative_to(ROOT)  # (test_experiment_*.py's runner of experiments/ scripts)
    return (str(rel) in tests or " / ".join(f'"{part}"' for part in rel.parts) in tests
            or (rel.parts[0] == "experiments" and f'script="{rel.name}"' in tests))
  untested = [str(p.relative_to(ROOT)) for p in scripts if not named(p)]
  assert not untested, f"scripts no test runs: {untested}"


def test_condense_speed_times_the_steps_of_a_whole_condensation(tmp_path, syn_csv):
  out = tmp_path / "speed.json"
  _python("benchmarks/condense_speed.py", f"--dataset={syn_csv}", "--steps=2",
          "--official_steps=1", "--outer_steps=3", "--max_epochs=2",
          f"--cache_dir={tmp_path / 'cache'}", f"--json={out}")
  rec = json.loads(out.read_text())
  data, _ = prepare(DataConfig(dataset=str(syn_csv)), cache_dir=tmp_path / "cache")
  assert rec["budget"]["total"] == round(0.25 * data.train.nnz)
  assert rec["outer_steps"] == 3 and rec["complete"]["proxy_epochs"] == 2
  for row in rec["per_step"].values():
    assert 0 < row["min_step_seconds"] <= row["median_step_seconds"]


def test_scale_condenses_a_synthetic_dataset_and_records_memory(tmp_path):
  out = tmp_path / "scale.json"
  _python("benchmarks/scale.py", "--interactions=2400", "--users=60", "--items=80",
          "--proxy_epochs=1", "--outer_steps=2", "--dim=8", f"--output_dir={tmp_path / 'set'}",
          f"--json={out}")
  rec = json.loads(out.read_text())
  phases = {p["phase"]: p for p in rec["phases"]}
  assert list(phases) == ["data", "proxy", "pool", "step data", "outer loop", "export"]
  n_train = phases["data"]["train"]
  assert phases["export"]["size"] == round(0.25 * n_train)
  kept = (tmp_path / "set" / "condensed.tsv").read_text().splitlines()
  assert len(kept) - 1 == phases["export"]["size"]
  assert rec["peak_rss_gib"] >= max(p["peak_rss_gib"] for p in rec["phases"]) > 0


def test_merge_reports_of_split_seeds_equals_the_run_of_all_seeds(tmp_path, syn_csv):
  _run(JAXCOND, "condense", f"--dataset={syn_csv}", "--seeds=0,1", "--outer_steps=2",
       "--max_epochs=2", "--min_epochs=0", "--dim=8", "--baselines=random",
       "--noreward_signal", f"--output_dir={tmp_path / 'all'}",
       f"--cache_dir={tmp_path / 'cache'}")
  whole = json.loads((tmp_path / "all" / "report.json").read_text())
  model = whole["config"]["job"]["eval_models"][0]
  parts = []
  for i, seed in enumerate(whole["seeds"]):  # the report of each seed's own run
    rep = json.loads(json.dumps(whole))
    rep["seeds"] = [seed]
    m = rep["models"][model]
    for entry in (m["full"], m["condensed"], *m["baselines"].values()):
      entry["per_seed"] = entry["per_seed"][i:i + 1]
    path = tmp_path / f"seed{seed}.json"
    path.write_text(json.dumps(rep))
    parts.append(path)
  out = tmp_path / "merged.json"
  proc = _python("benchmarks/merge_reports.py", *parts, f"--json={out}")
  merged = json.loads(out.read_text())
  assert merged["seeds"] == whole["seeds"] and "| condensed |" in proc.stdout
  for name, ret in (("condensed", whole["retention"]),
                    ("random", whole["baselines"]["random"]["retention"])):
    for k in ("ndcg@10", "recall@10"):
      assert merged["rows"][name][k]["mean"] == pytest.approx(ret[k])
      assert merged["rows"][name][k]["worst"] == pytest.approx(ret["worst"][k])


def test_train_speed_names_its_datasets_and_counts_interactions(tmp_path, syn_csv):
  out = tmp_path / "train_speed.json"
  _python("benchmarks/train_speed.py", f"--epoch_dataset={syn_csv}",
          f"--full_dataset={syn_csv}", "--repeats=2", "--top_k_items=200,2600",
          f"--json={out}")
  rec = json.loads(out.read_text())
  assert [(r["n_items"], r["chunked"]) for r in rec["top_k"]] == [(200, False), (2600, True)]
  for r in rec["top_k"]:
    assert r["ratio"] == pytest.approx(r["topk_median_seconds"] / r["lax_top_k_median_seconds"])
  epoch, full = rec["syn"], rec["syn_full_training"]
  assert epoch["interactions_per_second"] == pytest.approx(
      epoch["train_pairs"] / epoch["epoch_median_seconds"])
  assert epoch["epoch_median_seconds"] == pytest.approx(np.median(epoch["epoch_seconds_all"]),
                                                        abs=1e-4)
  assert 0 < full["test_ndcg@10"] <= 1 and full["best_epoch"] <= full["epochs"]


def test_gpu_grid_packs_what_the_grid_wrote(tmp_path):
  env = {"OUT": str(tmp_path / "out"), "GRID_OUT": str(tmp_path / "grid"), "GRID_MODE": "list",
         "PATH": f"{pathlib.Path(sys.executable).parent}:{os.environ['PATH']}"}
  proc = _run("bash", ROOT / "benchmarks" / "gpu_grid.sh", "60", "--only=dianping", env=env)
  assert "dianping-s0 [dianping]" in proc.stdout and "rows finished: 0" in proc.stdout
  assert (tmp_path / "out" / "grid.tar.gz").stat().st_size > 0


def test_inner_modes_study_measures_every_mode(tmp_path, syn_csv):
  out = tmp_path / "inner_modes.json"
  _python("benchmarks/studies/inner_modes.py", f"--datasets={syn_csv}", "--n_keys=2",
          f"--cache_dir={tmp_path / 'cache'}", f"--json={out}")
  (rec,) = json.loads(out.read_text())["datasets"].values()
  assert len(rec["results"]) == 4
  for r in rec["results"].values():
    assert r["ln2"] == pytest.approx(math.log(2)) and math.isfinite(r["valid_loss"])


def test_reference_table_prints_a_row_per_training_run(tmp_path, syn_csv):
  _run(JAXCOND, "train", f"--dataset={syn_csv}", "--max_epochs=2", "--min_epochs=0",
       "--dim=8", f"--output_dir={tmp_path / 'run'}", f"--cache_dir={tmp_path / 'cache'}")
  metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
  proc = _python("benchmarks/studies/reference_table.py", tmp_path / "run" / "metrics.json")
  row = proc.stdout.splitlines()[-1]
  assert f"| {metrics['test']['ndcg@10']:.4f} |" in row and "| bpr_mf |" in row


def test_distill_cf_entry_point_distills_and_judges(tmp_path, syn_csv):
  out = tmp_path / "dcf"
  _python("experiments/distill_cf.py", f"--dataset={syn_csv}", "--synthetic_users=10",
          "--gumbel_samples=4", "--outer_steps=3", "--validate_at=1", "--validate_every=2",
          f"--output_dir={out}", f"--cache_dir={tmp_path / 'cache'}")
  rec = json.loads((out / "distill_cf.json").read_text())
  assert set(rec["judged"]) == {"distilled", "random_users", "full"}
  assert rec["distill"]["steps_run"] <= 3
  with np.load(out / "synthetic_users.npz") as z:
    assert z["users"].shape[0] == 10


def _report(path, valid, test, full_valid=(0.2, 0.2), full_test=(0.1, 0.1)):
  """A report.json with a condensed set, one baseline ("b": half of the condensed set's
  figures) and the full data, per seed (two seeds), as condense runs write them."""
  per = lambda v, t: [{"valid": {"ndcg@10": a}, "test": {"ndcg@10": b}}  # noqa: E731
                      for a, b in zip(v, t)]
  path.parent.mkdir(parents=True, exist_ok=True)
  path.write_text(json.dumps({
      "full": {"per_seed": per(full_valid, full_test)},
      "condensed": {"per_seed": per(valid, test)},
      "baselines": {"b": {"per_seed": per([v / 2 for v in valid], [t / 2 for t in test])}}}))


def test_choose_defaults_tables_retention_and_chooses_among_complete_candidates(tmp_path):
  _report(tmp_path / "x1.json", valid=[0.2, 0.1], test=[0.1, 0.05])  # retention 0.75, 0.75
  _report(tmp_path / "x2.json", valid=[0.18, 0.18], test=[0.09, 0.08])  # 0.9, 0.85
  _report(tmp_path / "y1.json", valid=[0.16, 0.16], test=[0.08, 0.08])  # 0.8, 0.8
  _report(tmp_path / "y2.json", valid=[0.3, 0.3], test=[0.1, 0.1])  # 1.5*, 1.0
  out = tmp_path / "defaults.json"
  proc = _python("benchmarks/choose_defaults.py",
                 f"--candidate=A=d1:{tmp_path / 'x1.json'}#condensed",
                 f"--candidate=A=d2:{tmp_path / 'x2.json'}#condensed",
                 f"--candidate=B=d1:{tmp_path / 'y1.json'}#condensed",
                 f"--candidate=B=d2:{tmp_path / 'y2.json'}#condensed",
                 f"--candidate=C=d1:{tmp_path / 'y1.json'}#b",  # not on d2: never chosen
                 f"--reference=R=d1:{tmp_path / 'y2.json'}#condensed",
                 f"--reference=R=d2:{tmp_path / 'y2.json'}#condensed",
                 "--min_seeds=2", f"--json={out}")
  t = json.loads(out.read_text())
  assert t["settings"]["A"]["d2"]["valid"] == pytest.approx(0.9)
  assert t["settings"]["A"]["d2"]["test"] == pytest.approx(0.85)
  assert t["settings"]["C"]["d1"]["valid"] == pytest.approx(0.4)  # the baseline: half
  assert t["means"]["B"]["valid"] == pytest.approx(1.15)  # (0.8 + 1.5) / 2
  assert t["chosen"] == "B" and "C" not in t["means"]  # R (1.5 on both) is never chosen
  assert "1.500*" in proc.stdout and "| B (chosen) |" in proc.stdout
  test = _python("benchmarks/choose_defaults.py", "--choose_on=test", "--min_seeds=2",
                 *[f"--candidate={s}=d{k}:{tmp_path / f'{f}{k}.json'}#condensed"
                   for s, f in (("A", "x"), ("B", "y")) for k in (1, 2)])
  assert "Chosen on test, among the candidates with 2 seeds or more on every dataset: B." \
      in test.stdout  # test means: A 0.8, B 0.9
  bad = subprocess.run([sys.executable, ROOT / "benchmarks/choose_defaults.py",
                        f"--candidate=A=d1:{tmp_path / 'x1.json'}#nope"], cwd=ROOT,
                       capture_output=True, text=True)
  assert bad.returncode != 0 and "no set 'nope'" in bad.stderr


def test_headline_tables_are_the_committed_results(tmp_path):
  """README's and docs/results.md's headline tables are what the committed reports give;
  a figure typed by hand, or a report of another ratio, is caught."""
  _python("benchmarks/headline.py", "--check=README.md")
  _python("benchmarks/headline.py", "--wide", "--check=docs/results.md")
  # One cell by hand: Dianping's default at r = 0.1, the mean over seeds of the set's test
  # NDCG@10 over the same seed's full-data fit.
  report = json.loads((ROOT / "benchmarks/results/defaults/v6/dianping-r0.1/report.json")
                      .read_text())
  ratios = [s["test"]["ndcg@10"] / f["test"]["ndcg@10"]
            for s, f in zip(report["condensed"]["per_seed"], report["full"]["per_seed"])]
  readme = (ROOT / "README.md").read_text()
  assert f"| Dianping | {np.mean(ratios):.3f} |" in readme
  edited = tmp_path / "README.md"
  edited.write_text(readme.replace(f"| Dianping | {np.mean(ratios):.3f} |", "| Dianping | 0.999 |"))
  bad = subprocess.run([sys.executable, ROOT / "benchmarks/headline.py", f"--check={edited}"],
                       cwd=ROOT, capture_output=True, text=True)
  assert bad.returncode == 1 and "does not hold the r = 0.1 table" in bad.stderr
  assert "r = 0.25 table" not in bad.stderr
  wrong = tmp_path / "results" / "defaults" / "v6" / "ml-100k"
  wrong.mkdir(parents=True)
  report["protocol"]["dataset"] = "ml-100k"  # a report of r = 0.1 where r = 0.25 belongs
  (wrong / "report.json").write_text(json.dumps(report))
  bad = subprocess.run([sys.executable, ROOT / "benchmarks/headline.py",
                        f"--results={tmp_path / 'results'}"], cwd=ROOT, capture_output=True,
                       text=True)
  assert bad.returncode != 0 and "a report of ml-100k at r = 0.1, expected ml-100k at r = 0.25" \
      in bad.stderr


def _judged_report(valid: dict, test: dict) -> dict:
  """A condense.py report's fields start_choice.py reads: full-data fits with test NDCG@10
  1.0 (so that retention is the test figure) and each heuristic's fits per seed."""
  per_seed = lambda v, t: [{"valid": {"ndcg@10": a}, "test": {"ndcg@10": b}}  # noqa: E731
                           for a, b in zip(v, t)]
  return {"seeds": [0, 1, 2], "ratio": 0.25,
          "protocol": {"dataset": "hand", "data_checksum": "c0ffee"},
          "models": {"bpr_mf": {
              "full": {"per_seed": [{"test": {"ndcg@10": 1.0}}] * 3},
              "baselines": {n: {"per_seed": per_seed(valid[n], test[n])} for n in valid}}}}


def test_start_choice_scores_each_number_of_fits(tmp_path):
  valid = {"proxy_top": [0.32, 0.10, 0.10], "proxy_half": [0.20, 0.20, 0.20],
           "proxy_top_sqrt": [0.10, 0.15, 0.15], "proxy_half_sqrt": [0.05, 0.05, 0.05]}
  test = {"proxy_top": [0.85, 0.7, 0.85], "proxy_half": [0.9] * 3, "proxy_top_sqrt": [0.95] * 3,
          "proxy_half_sqrt": [0.7] * 3}
  path = tmp_path / "run" / "report.json"
  path.parent.mkdir()
  path.write_text(json.dumps(_judged_report(valid, test)))
  _python("benchmarks/studies/start_choice.py", f"--json={tmp_path / 'choice.json'}", path)
  (row,) = json.loads((tmp_path / "choice.json").read_text())["rows"]
  assert row["best on test"] == {"heuristic": "proxy_top_sqrt", "retention": pytest.approx(0.95)}
  # One fit: seed 0 picks proxy_top (0.32), seeds 1 and 2 proxy_half (0.20). Two: {0, 1}
  # and {0, 2} proxy_top (0.21 against 0.20), {1, 2} proxy_half. Three: proxy_half (0.2000
  # against 0.1733). The best on test, proxy_top_sqrt, is never picked.
  assert row["1 fit"]["picks"] == ["proxy_top", "proxy_half", "proxy_half"]
  assert row["2 fits"]["picks"] == ["proxy_top", "proxy_top", "proxy_half"]
  assert row["3 fits"]["picks"] == ["proxy_half"]
  assert row["1 fit"]["shortfall"] == pytest.approx((0.15 + 0.05 + 0.05) / 3)
  assert row["3 fits"]["hits"] == 0 and row["3 fits"]["shortfall"] == pytest.approx(0.05)
  # Other seeds: seed 0 on seeds 1 and 2 picks proxy_half (0.20), scored 0.9 at seed 0;
  # seeds 1 and 2 pick proxy_top (0.21), scored 0.7 at seed 1 and 0.85 at seed 2.
  other = row["other seeds"]
  assert other["picks"] == ["proxy_half", "proxy_top", "proxy_top"]
  assert other["retention"] == pytest.approx((0.9 + 0.7 + 0.85) / 3)
  md = (tmp_path / "choice.md").read_text()
  assert ("| hand r=0.25 | `proxy_top_sqrt` 0.950 | 0/3 (0.0833) | 0/3 (0.1167) | "
          "0/1 (0.0500) | 0.817 (0.1333) |") in md
  del valid["proxy_half_sqrt"], test["proxy_half_sqrt"]
  path.write_text(json.dumps(_judged_report(valid, test)))
  proc = subprocess.run([sys.executable, ROOT / "benchmarks/studies/start_choice.py", path],
                        capture_output=True, text=True)
  assert proc.returncode == 1 and "no proxy_half_sqrt set" in proc.stderr
