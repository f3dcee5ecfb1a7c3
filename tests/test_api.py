"""jaxcond.api, the notebook facade: load, condense, evaluate, export on a tiny user file."""

import dataclasses
import inspect
import json
import os
import pathlib
import subprocess
import sys

import pytest
from conftest import write_user_file

import jaxcond.api as jc
from jaxcond import condensation, models
from jaxcond.condense import condenser
from jaxcond.data import readers
from jaxcond.data.interactions import Interactions
from jaxcond.models import train as train_lib

ROOT = pathlib.Path(__file__).resolve().parents[1]
# Started from proxy_half's set (originals and pseudo pairs), so that the set round-trips
# pseudo flags whichever start "best" would choose.
TINY = dict(outer_steps=3, max_epochs=2, min_epochs=0, dim=8, rho=0.2, tail_quantile=0.1,
            baselines=("random",), reward_signal=False, start="proxy_half")


@pytest.fixture(scope="module")
def ds(tmp_path_factory):
  folder = tmp_path_factory.mktemp("api")
  return jc.load(write_user_file(folder), columns=["who", "what"], cache_dir=folder / "cache")


@pytest.fixture(scope="module")
def res(ds, tmp_path_factory):
  logs = []
  out = tmp_path_factory.mktemp("api_out") / "run"
  result = jc.condense(ds, 0.25, seeds=(0,), out_dir=out, log=logs.append, **TINY)
  assert any("outer" in line for line in logs)
  return result


def test_load(ds):
  assert ds.split.summary()["users"] == 50
  assert ds.train.nnz == ds.split.train.nnz > 0
  assert "50 users" in repr(ds) and ds.protocol["data_checksum"][:16] in repr(ds)
  assert ds.protocol["columns"] == ["who", "what"]


def test_condense_reports_and_writes(res, ds):
  rep = res.report
  assert set(res.retention) >= {"ndcg@10", "recall@10", "worst", "std"}
  assert res.size_fraction == pytest.approx(0.25, abs=0.01)
  assert rep["seeds"] == [0] and rep["config"]["job"]["condense"]["outer_steps"] == 3
  assert json.loads((res.out_dir / "report.json").read_text()) == json.loads(json.dumps(rep))
  assert (res.out_dir / "report.md").exists() and (res.out_dir / "retention.png").exists()
  table = res.table()
  assert "| condensed | 0.250 |" in table and "| random |" in table
  assert "retention ndcg@10" in repr(res)


def test_condensed_round_trips_to_the_exported_files(res, ds, tmp_path):
  cond = res.condensed()
  assert (cond.n_users, cond.n_items) == (ds.train.n_users, ds.train.n_items)
  assert cond.nnz == res.report["per_seed"][0]["size"]
  back = readers.read_delimited(res.report["files"]["0"]["csv"], columns=("user", "item"))
  assert set(zip(*cond.original_pairs())) == set(zip(*back.original_pairs()))
  assert res.pseudo().shape == (cond.nnz,) and res.pseudo().any()
  paths = jc.export(cond, ds, tmp_path / "again", pseudo_N=res.pseudo())
  assert pathlib.Path(paths["csv"]).read_bytes() == pathlib.Path(
      res.report["files"]["0"]["csv"]).read_bytes()
  assert pathlib.Path(paths["recbole_test"]).exists()
  with pytest.raises(ValueError, match="no condensed set for seed 5"):
    res.condensed(seed=5)


def test_false_negatives_reproduce_the_reports_evaluator(res, ds):
  cond, fn = res.condensed(), res.false_negatives()
  pairs = lambda x: set(zip(x.users().tolist(), x.indices.tolist()))  # noqa: E731
  assert fn.nnz > 0 and not pairs(fn) & pairs(cond) and not pairs(fn) & pairs(ds.train)
  reported = res.report["models"]["bpr_mf"]["condensed"]["per_seed"][0]["test"]
  settings = dict(max_epochs=2, min_epochs=0, dim=8)
  with_fn = jc.evaluate(ds, cond, seed=0, avoid=fn, **settings)
  assert with_fn["ndcg@10"] == pytest.approx(reported["ndcg@10"], rel=1e-5)
  with pytest.raises(ValueError, match="avoid has 2 users"):
    jc.evaluate(ds, cond, avoid=Interactions.from_pairs([0, 1], [0, 1]), **settings)


def test_evaluate(res, ds):
  m = jc.evaluate(ds, res.condensed(), model="bpr_mf", max_epochs=2, min_epochs=0, dim=8)
  assert 0 <= m["ndcg@10"] <= 1 and set(m["groups"]) == {"tail", "head"}
  assert 0 <= jc.evaluate(ds, ds.train, model="ease")["ndcg@10"] <= 1
  with pytest.raises(ValueError, match="not its id space"):
    jc.evaluate(ds, Interactions.from_pairs([0, 1], [0, 1]), dim=8)


@pytest.mark.parametrize("call, message", [
    (lambda ds: jc.condense(ds, out_dir="x", outer_stepz=3), "'outer_stepz'.*'outer_steps'"),
    (lambda ds: jc.condense(ds, out_dir="x", model="lightgcn"), "unknown condense option"),
    (lambda ds: jc.evaluate(ds, ds.train, dimm=8), "unknown evaluate option 'dimm'"),
    (lambda ds: jc.load("ml-100k", min_ratings=3), "'min_ratings'.*valid: .*min_rating"),
])
def test_unknown_options_are_named(ds, call, message):
  with pytest.raises(TypeError, match=message):
    call(ds)


def test_bad_values_fail_before_any_work(ds, tmp_path):
  with pytest.raises(ValueError, match=r"ratio must be in \(0, 1\)"):
    jc.condense(ds, 1.5, out_dir=tmp_path / "out")
  with pytest.raises(ValueError, match="unknown model"):
    jc.condense(ds, out_dir=tmp_path / "out", eval_models=["nope"])
  assert not (tmp_path / "out").exists()


def test_defaults_are_the_clis(ds):
  job, model_cfg, train_cfg = jc.configs()
  assert job == condensation.JobConfig() and model_cfg == models.ModelConfig()
  assert train_cfg == train_lib.TrainConfig()
  params = inspect.signature(jc.condense).parameters
  assert params["ratio"].default == condenser.CondenseConfig().ratio
  assert params["seeds"].default == condensation.JobConfig().seeds
  # The configs experiments/condense.py builds from its default flags, in a fresh process.
  code = (
      "import dataclasses, json, sys\n"
      "from jaxcond.cli import common, condense\n"
      "condense.FLAGS(sys.argv)\n"
      "print(json.dumps({'job': dataclasses.asdict(condense.job_config()),\n"
      "  'model': dataclasses.asdict(common.model_config()),\n"
      "  'train': dataclasses.asdict(common.train_config()),\n"
      "  'data': dataclasses.asdict(common.data_config())}))\n")
  proc = subprocess.run([sys.executable, "-c", code, f"--dataset={ds.name}",
                         "--columns=who,what"], cwd=ROOT, capture_output=True, text=True,
                        env=dict(os.environ, JAX_PLATFORMS="cpu"), timeout=300)
  assert proc.returncode == 0, proc.stderr
  cli = json.loads(proc.stdout.splitlines()[-1])
  api = {"job": dataclasses.asdict(job), "model": dataclasses.asdict(model_cfg),
         "train": dataclasses.asdict(train_cfg)}
  assert json.loads(json.dumps(api)) == {k: cli[k] for k in api}
  for key, value in cli["data"].items():  # the split settings jc.load recorded
    assert key == "data_dir" or ds.protocol[key] == value, key


def test_a_second_call_resumes_from_out_dir(res, ds):
  logs = []
  again = jc.condense(ds, 0.25, seeds=(0,), out_dir=res.out_dir, log=logs.append, **TINY)
  assert any("done before" in line for line in logs)
  assert again.retention == res.retention
  with pytest.raises(ValueError, match="other settings"):
    jc.condense(ds, 0.25, seeds=(0,), out_dir=res.out_dir, log=None, **{**TINY, "outer_steps": 4})
