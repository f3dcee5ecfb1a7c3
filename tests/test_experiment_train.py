"""The entry point experiments/train.py, run as a user would, in a subprocess."""

import json
import os
import pathlib
import subprocess
import sys

import numpy as np
import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]


def _run(*args, cwd=ROOT, env_extra=None):
  env = dict(os.environ, JAX_PLATFORMS="cpu", **(env_extra or {}))
  return subprocess.run([sys.executable, str(ROOT / "experiments" / "train.py"), *args],
                        cwd=cwd, env=env, capture_output=True, text=True, timeout=300)


@pytest.fixture
def user_file(tmp_path):
  """A ';'-separated file with its own column layout, as a new user would bring."""
  rng = np.random.default_rng(0)
  lines = ["ts;item_code;who;score"]
  for u in range(60):
    for i in rng.choice(50, 15, replace=False):
      lines.append(f"{1000 + u};sku{i};client-{u};{rng.integers(1, 6)}")
  path = tmp_path / "shop.csv"
  path.write_text("\n".join(lines) + "\n")
  return path


def test_trains_on_a_user_file_and_writes_metrics(tmp_path, user_file):
  out = tmp_path / "out"
  proc = _run(f"--dataset={user_file}", "--columns=who,item_code,score", "--delimiter=;",
              "--min_rating=2", "--max_epochs=3", "--min_epochs=0", "--dim=8",
              f"--output_dir={out}", f"--cache_dir={tmp_path / 'cache'}")
  assert proc.returncode == 0, proc.stderr
  metrics = json.loads((out / "metrics.json").read_text())
  for part in ("test", "valid"):
    for key in ("recall@10", "ndcg@10", "hit@10", "precision@10", "ndcg@5", "recall@20"):
      assert 0.0 <= metrics[part][key] <= 1.0
  assert metrics["n_train"] == metrics["protocol"]["counts"]["train"]
  assert metrics["epochs"] == 3 and metrics["train_seconds"] > 0
  assert metrics["config"]["model"] == "bpr_mf"
  assert metrics["protocol"]["min_rating"] == 2
  assert "| test |" in proc.stdout


def test_ease_through_the_entry_point(tmp_path, user_file):
  proc = _run(f"--dataset={user_file}", "--columns=who,item_code", "--model=ease",
              f"--output_dir={tmp_path}", f"--cache_dir={tmp_path / 'cache'}")
  assert proc.returncode == 0, proc.stderr
  metrics = json.loads((tmp_path / "metrics.json").read_text())
  assert metrics["test"]["ndcg@10"] > 0 and set(metrics["groups"]) == {"tail", "head"}


@pytest.mark.parametrize("args, message", [
    (["--dataset=/nonexistent/file.csv"], "does not exist"),
    (["--dataset=no-such-dataset"], "no-such-dataset"),
    (["--min_rating=99"], "above every rating"),
    (["--kcore=100000"], "no interactions left"),
    (["--not_a_flag=1"], "not_a_flag"),
    (["--batch_size=0"], "batch_size must be >= 1"),
    (["--eval_every=0"], "eval_every must be >= 1"),
    (["--dim=0"], "dim >= 1"),
])
def test_bad_input_gives_a_clear_error(tmp_path, user_file, args, message):
  base = [f"--dataset={user_file}", "--columns=who,item_code,score", "--delimiter=;",
          f"--output_dir={tmp_path}", f"--cache_dir={tmp_path / 'cache'}"]
  proc = _run(*base, *args)
  assert proc.returncode != 0
  assert message in proc.stderr
  assert "Traceback" not in proc.stderr
  assert not (tmp_path / "metrics.json").exists()


def test_malformed_row_names_file_and_line(tmp_path):
  path = tmp_path / "bad.tsv"
  path.write_text("1\t2\t5\n1\t3\t4\n2\n2\t3\t1\n")
  proc = _run(f"--dataset={path}", "--columns=0,1,2", "--noheader", f"--output_dir={tmp_path}",
              f"--cache_dir={tmp_path / 'cache'}")
  assert proc.returncode != 0
  assert "bad.tsv" in proc.stderr and "line 3" in proc.stderr
  assert "Traceback" not in proc.stderr
