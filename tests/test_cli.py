"""The installed `jaxcond` command: its help, a condensation, and judging the set it made."""

import json
import os
import pathlib
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
JAXCOND = pathlib.Path(sys.executable).parent / "jaxcond"


def _jaxcond(*args):
  if not JAXCOND.exists():
    pytest.fail(f"the `jaxcond` command is not installed beside {sys.executable}: "
                "pip install -e .")
  env = dict(os.environ, JAX_PLATFORMS="cpu")
  return subprocess.run([str(JAXCOND), *args], cwd=ROOT, env=env, capture_output=True,
                        text=True, timeout=600)


def test_help_lists_every_command():
  proc = _jaxcond("--help")
  assert proc.returncode == 0, proc.stderr
  for command in ("condense", "judge", "compare", "train"):
    assert f"  {command}" in proc.stdout
  bad = _jaxcond("condence")
  assert bad.returncode != 0 and "unknown command 'condence'" in bad.stderr
  stray = _jaxcond("train", "ml-100k")  # a setting is a flag, never a positional word
  assert stray.returncode == 1 and "unexpected arguments ['ml-100k']" in stray.stderr


def test_condense_then_judge_the_set(tmp_path, user_file):
  data = [f"--dataset={user_file}", "--columns=who,what", "--max_epochs=2", "--min_epochs=0",
          "--dim=8", "--seeds=0", f"--cache_dir={tmp_path / 'cache'}"]
  made = _jaxcond("condense", *data, "--outer_steps=2", "--baselines=random",
                  "--rho=0.2", "--tail_quantile=0.1",
                  "--noreward_signal", f"--output_dir={tmp_path / 'made'}")
  assert made.returncode == 0, made.stderr
  cond = json.loads((tmp_path / "made" / "report.json").read_text())

  judged = _jaxcond("judge", *data, f"--set={tmp_path / 'made' / 'seed0' / 'condensed.tsv'}",
                    "--baselines=random,proxy_top", f"--output_dir={tmp_path / 'judged'}")
  assert judged.returncode == 0, judged.stderr
  rep = json.loads((tmp_path / "judged" / "report.json").read_text())
  assert "| condensed |" in judged.stdout and "| proxy_top |" in judged.stdout
  assert (tmp_path / "judged" / "report.md").exists()
  # The full-data fits are the condensation's own (same data, settings, seed: cached).
  assert rep["full"]["test"] == pytest.approx(cond["full"]["test"])
  tsv = (tmp_path / "made" / "seed0" / "condensed.tsv").read_text().splitlines()
  assert rep["size"] == len(tsv) - 1 == cond["per_seed"][0]["size"]
  (mine,) = rep["models"]["bpr_mf"]["condensed"]["per_seed"]
  (full,) = rep["models"]["bpr_mf"]["full"]["per_seed"]
  assert rep["retention"]["ndcg@10"] == pytest.approx(mine["test"]["ndcg@10"]
                                                       / full["test"]["ndcg@10"])
  assert set(rep["baselines"]) == {"random", "proxy_top"}
  for b in rep["baselines"].values():
    assert b["size_fraction"] == pytest.approx(rep["size_fraction"])


def test_judge_names_an_unknown_id(tmp_path, user_file):
  """Through experiments/judge.py, the script form of `jaxcond judge`."""
  bad_set = tmp_path / "set.csv"
  bad_set.write_text("user,item\nc1,p3\nnobody,p4\n")
  proc = subprocess.run(
      [sys.executable, str(ROOT / "experiments/judge.py"), f"--dataset={user_file}",
       "--columns=who,what", f"--set={bad_set}", f"--output_dir={tmp_path / 'out'}",
       f"--cache_dir={tmp_path / 'cache'}"],
      cwd=ROOT, env=dict(os.environ, JAX_PLATFORMS="cpu"), capture_output=True, text=True,
      timeout=600)
  assert proc.returncode == 1
  assert "user ids are not in the dataset (the first: 'nobody')" in proc.stderr


def test_experiments_scripts_need_no_path_edits():
  for script in (ROOT / "experiments").glob("*.py"):
    assert "sys.path" not in script.read_text(), script
