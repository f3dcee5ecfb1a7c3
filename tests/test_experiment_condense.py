"""The entry point experiments/condense.py, run as a user would, in a subprocess."""

import json
import os
import pathlib
import re
import signal
import subprocess
import sys

import numpy as np
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
              "--rho=0.2", "--tail_quantile=0.1", "--holdout_every=2", f"--output_dir={out}",
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
  (held,) = rep["holdout"]
  assert held["steps"] == [0, 2, 4] and held["chosen_step"] in held["steps"]
  step = held["chosen_step"]
  assert (f"| 0 | outer step {step} | {held['scores'][held['steps'].index(step)]:.4f} | "
          f"{held['test_scores'][held['steps'].index(step)]:.4f} | yes |"
          ) in (out / "report.md").read_text()


@pytest.mark.parametrize("args, message", [
    (["--ratio=1.5"], "ratio must be in (0, 1)"),
    (["--ratio=0"], "ratio must be in (0, 1)"),
    (["--model=ease"], "must be bpr_mf or lightgcn"),
    (["--seeds=a,b"], "--seeds must be integers"),
    (["--eval_models=nope"], "unknown model"),
    (["--num_samples=1"], "num_samples >= 2"),
    (["--tail=keep", "--tail_tau=20"], "fewer tail users"),
    (["--tail_quantile=1.5"], "tail_quantile must be in [0, 1)"),
    (["--holdout_share=1"], "holdout_share in (0, 1)"),
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


def _busy_file(path, n_users=600, n_items=300, per_user=25):
  """A dataset big enough that the outer loop runs for seconds, not milliseconds."""
  rng = np.random.default_rng(1)
  lines = ["who,what"]
  for u in range(n_users):
    lines += [f"c{u},p{i}" for i in rng.choice(n_items, per_user, replace=False)]
  path.write_text("\n".join(lines) + "\n")
  return path


def test_sigkill_mid_loop_then_resume_gives_the_uninterrupted_result(tmp_path):
  data = _busy_file(tmp_path / "busy.csv")
  args = [f"--dataset={data}", "--columns=who,what", "--outer_steps=200", "--seeds=0",
          "--baselines=", "--max_epochs=2", "--min_epochs=0", "--dim=8", "--rho=0.2",
          "--noreward_signal", "--checkpoint_every=20", f"--cache_dir={tmp_path / 'cache'}"]
  whole = _run(*args, f"--output_dir={tmp_path / 'whole'}")
  assert whole.returncode == 0, whole.stderr

  out = tmp_path / "killed"
  proc = subprocess.Popen([sys.executable, str(ROOT / "experiments" / "condense.py"), *args,
                           f"--output_dir={out}"], cwd=ROOT, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True,
                          env=dict(os.environ, JAX_PLATFORMS="cpu"))
  killed_at = None
  for line in proc.stdout:  # progress lines: "seed 0 outer    45/300 ..."
    m = re.search(r"outer\s+(\d+)/200", line)
    if m and int(m.group(1)) >= 45:
      killed_at = int(m.group(1))
      proc.send_signal(signal.SIGKILL)
      break
  proc.wait(timeout=60)
  assert killed_at is not None and proc.returncode == -signal.SIGKILL
  assert (out / "seed0" / "checkpoint.npz").exists()
  assert not (out / "report.json").exists() and not (out / "seed0" / "record.json").exists()

  resumed = _run(*args, f"--output_dir={out}")
  assert resumed.returncode == 0, resumed.stderr
  assert "resuming the outer loop" in resumed.stdout
  first_logged = re.search(r"outer\s+(\d+)/200", resumed.stdout)
  assert 45 <= int(first_logged.group(1)) < 200  # steps before the checkpoint were not rerun
  for name in ("condensed.tsv", "condensed.csv"):
    assert (out / "seed0" / name).read_bytes() == (tmp_path / "whole" / "seed0" / name).read_bytes()
  a, b = (json.loads((d / "report.json").read_text()) for d in (out, tmp_path / "whole"))
  assert a["condensed"]["test"] == b["condensed"]["test"]
  assert [r["reward"] for r in a["history"]["0"]] == [r["reward"] for r in b["history"]["0"]]
