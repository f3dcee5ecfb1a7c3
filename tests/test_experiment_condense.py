"""The entry point experiments/condense.py, run as a user would, in a subprocess."""

import json
import os
import pathlib
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]


def _run(*args, script="condense.py"):
  env = dict(os.environ, JAX_PLATFORMS="cpu")
  return subprocess.run([sys.executable, str(ROOT / "experiments" / script), *args],
                        cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)


def test_condenses_a_user_file(tmp_path, user_file):
  out = tmp_path / "out"
  proc = _run(f"--dataset={user_file}", "--columns=who,what", "--outer_steps=4", "--seeds=0",
              "--baselines=random", "--max_epochs=2", "--min_epochs=0", "--dim=8",
              "--rho=0.2", "--tail_quantile=0.1", f"--output_dir={out}",
              f"--cache_dir={tmp_path / 'cache'}")
  assert proc.returncode == 0, proc.stderr
  rep = json.loads((out / "report.json").read_text())
  for key in ("ratio", "size_fraction", "condense_seconds", "full", "condensed", "retention",
              "seeds", "config", "baselines", "protocol", "versions", "reward_signal"):
    assert key in rep
  assert rep["ratio"] == 0.25 and rep["seeds"] == [0]
  assert rep["protocol"]["data_checksum"]
  assert "| condensed |" in proc.stdout and "outer" in proc.stdout
  assert "tail users: retention ndcg@10" in proc.stdout and "coverage@10" in proc.stdout
  assert (out / "seed0" / "condensed.tsv").exists()
  assert (out / "seed0" / "recbole" / "condensed" / "condensed.test.inter").exists()


@pytest.mark.parametrize("args, message", [
    (["--ratio=1.5"], "ratio must be in (0, 1)"),
    (["--ratio=0"], "ratio must be in (0, 1)"),
    (["--model=lightgcn"], "must be bpr_mf"),
    (["--seeds=a,b"], "--seeds must be integers"),
    (["--eval_models=nope"], "unknown model"),
    (["--num_samples=1"], "num_samples >= 2"),
    (["--tail_tau=20"], "fewer tail users"),
    (["--tail_quantile=1.5"], "tail_quantile must be in [0, 1)"),
])
def test_bad_settings_give_a_clear_error(tmp_path, user_file, args, message):
  proc = _run(f"--dataset={user_file}", "--columns=who,what", f"--output_dir={tmp_path}",
              f"--cache_dir={tmp_path / 'cache'}", *args)
  assert proc.returncode != 0
  assert message in proc.stderr
  assert "Traceback" not in proc.stderr
  assert not (tmp_path / "report.json").exists()


def test_ablation_table_and_resume(tmp_path, user_file):
  out = tmp_path / "ablate"
  args = [f"--dataset={user_file}", "--columns=who,what", "--outer_steps=2", "--seeds=0",
          "--baselines=random", "--max_epochs=2", "--min_epochs=0", "--dim=8", "--rho=0.2",
          "--tail_tau=0", "--noreward_signal", "--variants=full,no_tail,no_proxy",
          f"--output_dir={out}", f"--cache_dir={tmp_path / 'cache'}"]
  proc = _run(*args, script="ablate.py")
  assert proc.returncode == 0, proc.stderr
  rows = json.loads((out / "ablate.json").read_text())["rows"]
  # With tau = 0 nobody is a tail user: no_tail is the full method, not run twice.
  assert [r["variant"] for r in rows] == ["full", "baseline: random", "no_tail (= full)",
                                          "no_proxy"]
  assert not (out / "no_tail").exists()
  for r in rows:
    assert r["size_fraction"] == pytest.approx(rows[0]["size_fraction"], abs=0.01)
    assert r["ndcg@10"] > 0 and r["tail_ndcg@10"] >= 0
  assert "| no_proxy |" in (out / "ablate.md").read_text()
  no_proxy = json.loads((out / "no_proxy" / "report.json").read_text())
  assert no_proxy["sizes"]["pseudo_candidates"] == no_proxy["sizes"]["false_negatives"] == 0
  assert no_proxy["config"]["job"]["condense"]["inner"]["start"] == "fresh"
  again = _run(*args, script="ablate.py")  # finished variants are read back, not rerun
  assert again.returncode == 0 and again.stdout.count("done before") == 2
  bad = _run(*args[:-3], "--variants=full,nope", f"--output_dir={out}", script="ablate.py")
  assert bad.returncode != 0 and "unknown variants ['nope']" in bad.stderr


def test_false_negative_measurement(tmp_path, user_file):
  proc = _run(f"--dataset={user_file}", "--columns=who,what", "--max_epochs=5",
              "--min_epochs=0", "--dim=8", "--lr=0.02", f"--output_dir={tmp_path}",
              f"--cache_dir={tmp_path / 'cache'}", script="false_negatives.py")
  assert proc.returncode == 0, proc.stderr
  rep = json.loads((tmp_path / "false_negatives.json").read_text())
  assert set(rep["rankings"]) == {"proxy", "popularity", "random"}
  assert rep["hidden_pairs"] > 0 and "| proxy |" in proc.stdout
