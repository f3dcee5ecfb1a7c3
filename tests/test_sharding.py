"""The outer loop and the evaluator split over devices and processes agree with one device."""

import json
import os
import pathlib
import socket
import subprocess
import sys

import jax
import numpy as np
import pytest

from jaxcond.core import sharding

ROOT = pathlib.Path(__file__).resolve().parents[1]


def test_padding_and_placement_on_one_device():
  mesh = sharding.make_mesh(1)
  assert sharding.padded(1, mesh) == sharding.PAD
  assert sharding.padded(sharding.PAD + 1, mesh) == 2 * sharding.PAD
  np.testing.assert_array_equal(sharding.pad_to(np.array([3, 4]), 4, fill=9), [3, 4, 9, 9])
  with pytest.raises(ValueError, match="cannot pad length 3 down to 2"):
    sharding.pad_to(np.arange(3), 2)
  x = np.arange(12.0).reshape(6, 2)
  placed = sharding.put(x, sharding.split(mesh))
  assert placed.sharding == sharding.split(mesh)
  np.testing.assert_array_equal(sharding.to_host(placed), x)
  with pytest.raises(ValueError, match=f"{jax.device_count() + 1} devices"):
    sharding.make_mesh(jax.device_count() + 1)


@pytest.fixture(scope="module")
def mesh_run():
  env = dict(os.environ, JAX_PLATFORMS="cpu")
  proc = subprocess.run([sys.executable, str(ROOT / "tests" / "mesh_check.py")], cwd=ROOT,
                        env=env, capture_output=True, text=True, timeout=900)
  assert proc.returncode == 0, proc.stderr
  return json.loads(proc.stdout)


def test_outer_loop_agrees_on_1_and_4_devices(mesh_run):
  one, four = mesh_run["condense"]["1"], mesh_run["condense"]["4"]
  for name in one:
    assert (one[name]["shards"], four[name]["shards"]) == (1, 4), name
    assert one[name]["keep"] == four[name]["keep"], name  # the same condensed set
    assert one[name]["signal"] == pytest.approx(four[name]["signal"], rel=1e-5), name
  # Without Adam the logits agree to float tolerance after every step.
  np.testing.assert_allclose(one["one_step_rms_sgd"]["logits"],
                             four["one_step_rms_sgd"]["logits"], rtol=0, atol=1e-5)
  np.testing.assert_allclose(one["one_step_rms_sgd"]["rewards"],
                             four["one_step_rms_sgd"]["rewards"], rtol=1e-6)
  # Adam divides by sqrt(v) + 1e-8: a logit whose estimate is float noise (a user whose
  # samples all score alike) takes a step of up to lr in a direction set by that noise,
  # so its logit differs between reduction orders; the rewards only drift later.
  for name in ("one_step", "trained"):
    np.testing.assert_allclose(one[name]["rewards"][:5], four[name]["rewards"][:5], rtol=1e-6)
    np.testing.assert_allclose(one[name]["rewards"], four[name]["rewards"], rtol=1e-3)
    np.testing.assert_allclose(one[name]["logits"], four[name]["logits"], rtol=0, atol=0.05)


@pytest.mark.parametrize("model", ["evaluate", "lightgcn"])
def test_evaluator_agrees_on_1_and_4_devices(mesh_run, model):
  ev = mesh_run[model]  # BPR-MF's user blocks; LightGCN's propagation and user blocks
  assert set(ev["none"]) >= {"ndcg@10", "recall@10"} and ev["none"]["ndcg@10"] > 0
  for n in ("1", "4"):
    for k, v in ev["none"].items():
      assert ev[n][k] == pytest.approx(v, rel=1e-6, abs=1e-9), (n, k)


def _free_port() -> int:
  with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    return s.getsockname()[1]


def test_two_processes_agree_with_one(tmp_path, user_file):
  args = [sys.executable, str(ROOT / "experiments" / "condense.py"), f"--dataset={user_file}",
          "--columns=who,what", "--outer_steps=6", "--seeds=0", "--baselines=",
          "--max_epochs=2", "--min_epochs=0", "--dim=8", "--rho=0.2", "--tail_quantile=0.1",
          "--noreward_signal", "--outer_optimizer=rms_sgd", f"--cache_dir={tmp_path / 'c'}"]
  env = dict(os.environ, JAX_PLATFORMS="cpu")
  single = subprocess.run([*args, "--devices=1", f"--output_dir={tmp_path / 'single'}"],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
  assert single.returncode == 0, single.stderr
  multi = [f"--coordinator_address=127.0.0.1:{_free_port()}", "--num_processes=2",
           "--devices=-1"]
  procs = [subprocess.Popen([*args, *multi, f"--process_id={i}",
                             f"--output_dir={tmp_path / f'p{i}'}"], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
           for i in (0, 1)]
  outs = [p.communicate(timeout=600)[0] for p in procs]
  assert [p.returncode for p in procs] == [0, 0], outs
  assert "the report is written by process 0" in outs[1]
  assert not (tmp_path / "p1" / "report.json").exists()
  a, b = (json.loads((tmp_path / d / "report.json").read_text()) for d in ("single", "p0"))
  np.testing.assert_allclose([r["reward"] for r in a["history"]["0"]],
                             [r["reward"] for r in b["history"]["0"]], rtol=1e-6)
  for d in ("p0", "p1"):  # every process holds the same condensed set
    assert ((tmp_path / d / "seed0" / "condensed.tsv").read_bytes()
            == (tmp_path / "single" / "seed0" / "condensed.tsv").read_bytes())
  assert a["condensed"]["test"] == b["condensed"]["test"]
