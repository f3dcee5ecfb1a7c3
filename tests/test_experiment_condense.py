"""The entry point experiments/condense.py, run as a user would, in a subprocess."""

import json
import os
import pathlib
import subprocess
import sys

import numpy as np
import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]


def _run(*args):
  env = dict(os.environ, JAX_PLATFORMS="cpu")
  return subprocess.run([sys.executable, str(ROOT / "experiments" / "condense.py"), *args],
                        cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)


@pytest.fixture
def user_file(tmp_path):
  rng = np.random.default_rng(0)
  lines = ["who,what"]
  for u in range(50):
    for i in rng.choice(40, 12, replace=False) + 20 * (u % 2):
      lines.append(f"c{u},p{i}")
  path = tmp_path / "shop.csv"
  path.write_text("\n".join(lines) + "\n")
  return path


def test_condenses_a_user_file(tmp_path, user_file):
  out = tmp_path / "out"
  proc = _run(f"--dataset={user_file}", "--columns=who,what", "--outer_steps=4", "--seeds=0",
              "--baselines=random", "--max_epochs=2", "--min_epochs=0", "--dim=8",
              "--rho=0.2", f"--output_dir={out}", f"--cache_dir={tmp_path / 'cache'}")
  assert proc.returncode == 0, proc.stderr
  rep = json.loads((out / "report.json").read_text())
  for key in ("ratio", "size_fraction", "condense_seconds", "full", "condensed", "retention",
              "seeds", "config", "baselines", "protocol", "versions", "reward_signal"):
    assert key in rep
  assert rep["ratio"] == 0.25 and rep["seeds"] == [0]
  assert rep["protocol"]["data_checksum"]
  assert "| condensed |" in proc.stdout and "outer" in proc.stdout
  assert (out / "seed0" / "condensed.tsv").exists()
  assert (out / "seed0" / "recbole" / "condensed" / "condensed.test.inter").exists()


@pytest.mark.parametrize("args, message", [
    (["--ratio=1.5"], "ratio must be in (0, 1)"),
    (["--ratio=0"], "ratio must be in (0, 1)"),
    (["--model=lightgcn"], "must be bpr_mf"),
    (["--seeds=a,b"], "--seeds must be integers"),
    (["--eval_models=nope"], "unknown model"),
    (["--num_samples=1"], "num_samples >= 2"),
])
def test_bad_settings_give_a_clear_error(tmp_path, user_file, args, message):
  proc = _run(f"--dataset={user_file}", "--columns=who,what", f"--output_dir={tmp_path}",
              f"--cache_dir={tmp_path / 'cache'}", *args)
  assert proc.returncode != 0
  assert message in proc.stderr
  assert "Traceback" not in proc.stderr
  assert not (tmp_path / "report.json").exists()
