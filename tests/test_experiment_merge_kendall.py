"""experiments/merge_kendall.py run as a user would, on two reports written by hand."""

import json
import pathlib
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
FULL = {"a": 0.3, "b": 0.2, "c": 0.1}


def _report(path, method, seed, condensed, full=FULL):
  path.write_text(json.dumps({
      "ratio": 0.25, "metric": "ndcg@10", "configs": list(FULL), "per_seed": {
          method: [{"seed": seed, "full": full, "condensed": condensed}]}}))
  return path


def _run(*args):
  return subprocess.run([sys.executable, str(ROOT / "experiments" / "merge_kendall.py"),
                         *map(str, args)], cwd=ROOT, capture_output=True, text=True,
                        timeout=120)


def test_labelled_runs_merge_into_one_report(tmp_path):
  s0 = _report(tmp_path / "s0.json", "dconrec", 0, {"a": 0.3, "b": 0.1, "c": 0.2})
  s1 = _report(tmp_path / "s1.json", "dconrec", 1, {"a": 0.1, "b": 0.2, "c": 0.3},
               full={"a": 0.31, "b": 0.21, "c": 0.11})
  out = tmp_path / "merged"
  proc = _run(f"--output_dir={out}", f"no pseudo pairs={s0}", f"no pseudo pairs={s1}")
  assert proc.returncode == 0, proc.stderr
  tau = json.loads((out / "kendall.json").read_text())
  rows = tau["per_seed"]["no pseudo pairs"]
  assert [r["seed"] for r in rows] == [0, 1]
  assert [r["tau"] for r in rows] == pytest.approx([1 / 3, -1.0])  # 1 of 3 pairs swapped; all
  assert tau["summary"]["no pseudo pairs"]["tau_mean"] == pytest.approx(-1 / 3)
  assert tau["full_agreement"]["self_tau"][0]["tau"] == pytest.approx(1.0)
  md = (out / "kendall.md").read_text()
  assert "as **no pseudo pairs**" in md and "not checked against the others" in md

  clash = _report(tmp_path / "clash.json", "dconrec", 0, {"a": 0.3, "b": 0.1, "c": 0.2},
                  full={"a": 0.3, "b": 0.2, "c": 0.15})
  bad = _run(f"--output_dir={tmp_path / 'refused'}", s0, clash)
  assert bad.returncode == 1 and "Traceback" not in bad.stderr
  assert "full-data scores of seed 0 differ" in bad.stderr
  assert not (tmp_path / "refused").exists()
  missing = _run(f"--output_dir={tmp_path / 'refused'}", tmp_path / "absent.json")
  assert missing.returncode == 1 and "no file" in missing.stderr
