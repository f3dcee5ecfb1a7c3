"""The whole job on a small synthetic dataset: report, exports, caching of full runs."""

import dataclasses

import numpy as np
import pytest

from jaxcond import condensation
from jaxcond.condense import condenser
from jaxcond.condense import proxy as proxy_lib
from jaxcond.condense import tail as tail_lib
from jaxcond.data import readers
from jaxcond.data.interactions import Interactions
from jaxcond.data.split import random_split
from jaxcond.models import ModelConfig
from jaxcond.models import train as train_lib

# The default report judges the set against these (zero_update: with outer steps).
JUDGED = {"random", "zero_update", "proxy_top", "proxy_half", "proxy_top_sqrt", "proxy_half_sqrt"}


@pytest.fixture(scope="module")
def data():
  rng = np.random.default_rng(0)
  taste = rng.integers(0, 4, 80)
  users, items = [], []
  for u in range(80):  # four groups of users, each liking its own quarter of the items
    liked = rng.choice(np.arange(taste[u] * 25, taste[u] * 25 + 25), 14, replace=False)
    users += [u] * 14
    items += list(liked)
  inter = Interactions.from_original_ids(np.array([f"user{u}" for u in users]),
                                         np.array(items) + 1000)
  return random_split(inter, seed=1)


def test_run_reports_and_exports(tmp_path, data):
  cfg = condensation.JobConfig(condense=condenser.CondenseConfig(outer_steps=5), seeds=(0,),
                               start="prior", rho=0.3)
  train_cfg = train_lib.TrainConfig(lr=1e-2, batch_size=256, max_epochs=6, min_epochs=2,
                                    patience=2)
  logs = []
  protocol = {"data_checksum": "synthetic"}
  rep = condensation.run(data, protocol, cfg, model_cfg=ModelConfig(dim=8), train_cfg=train_cfg,
                         out_dir=tmp_path / "out", cache_dir=tmp_path / "cache", log=logs.append)
  n = data.train.nnz
  assert rep["size_fraction"] == pytest.approx(round(0.25 * n) / n)
  assert rep["seeds"] == [0]
  for part in ("full", "condensed"):
    assert 0 <= rep[part]["test"]["ndcg@10"] <= 1
  ret = rep["retention"]
  assert ret["ndcg@10"] == pytest.approx(np.mean(
      [c["test"]["ndcg@10"] / f["test"]["ndcg@10"] for c, f in
       zip(rep["models"]["bpr_mf"]["condensed"]["per_seed"],
           rep["models"]["bpr_mf"]["full"]["per_seed"])]))
  assert ret["worst"]["ndcg@10"] <= ret["ndcg@10"]
  assert set(rep["baselines"]) == JUDGED
  for name in rep["baselines"]:
    assert rep["baselines"][name]["size_fraction"] == pytest.approx(rep["size_fraction"])
  assert rep["reward_signal"][0]["start"]["ln2"] == pytest.approx(np.log(2))
  for group in ("tail", "head"):
    g = rep["groups"][group]
    assert set(g) == {"full", "condensed", "retention", "baselines"}
    assert g["retention"]["ndcg@10"] == pytest.approx(
        g["condensed"]["test"]["ndcg@10"] / g["full"]["test"]["ndcg@10"])
    assert set(g["baselines"]) == JUDGED
  groups = rep["models"]["bpr_mf"]["full"]["per_seed"][0]["test"]["groups"]
  assert groups["tail"]["n_users"] + groups["head"]["n_users"] == rep["models"]["bpr_mf"][
      "full"]["per_seed"][0]["test"]["n_users"]
  assert 0 < rep["items"]["share_in_S"]["condensed"] <= 1
  assert set(rep["items"]["coverage@10"]) == {"full", "condensed", *JUDGED}
  assert rep["sizes"]["false_negatives"] == rep["sizes"]["pseudo_candidates"] > 0
  assert any("outer" in line for line in logs)
  # The exported set reads back in original ids, the same pairs as the RecBole train file.
  files = rep["files"]["0"]
  csv = readers.read_delimited(files["csv"], columns=("user", "item"))
  inter = readers.read_inter(files["recbole_train"])
  assert csv.nnz == inter.nnz == round(0.25 * n)
  assert set(csv.user_ids.astype(str)) <= set(data.train.user_ids.astype(str))
  valid = readers.read_inter(files["recbole_valid"])
  assert valid.nnz == data.valid.nnz
  # The full-data runs are cached: a second run trains no full model.
  logs.clear()
  cfg = condensation.JobConfig(condense=condenser.CondenseConfig(outer_steps=1), seeds=(0,),
                               start="prior", rho=0.3, baselines=())
  condensation.run(data, protocol, cfg, model_cfg=ModelConfig(dim=8), train_cfg=train_cfg,
                   out_dir=tmp_path / "out2", cache_dir=tmp_path / "cache", log=logs.append)
  assert not any("training" in line and "full-data" in line for line in logs)
  assert any("cached" in line for line in logs)


def test_job_config_errors():
  with pytest.raises(ValueError, match="unknown baselines"):
    condensation.JobConfig(baselines=("oracle",))
  with pytest.raises(ValueError, match="unknown model"):
    condensation.JobConfig(eval_models=("nope",))
  with pytest.raises(ValueError, match="at least one seed"):
    condensation.JobConfig(seeds=())
  with pytest.raises(ValueError, match="tail must be one of"):
    condensation.JobConfig(tail="all")
  with pytest.raises(ValueError, match="proxy must be an embedding model"):
    condensation.JobConfig(proxy_model="ease")
  with pytest.raises(ValueError, match="tail_quantile"):
    condensation.JobConfig(tail_quantile=1.0)


@pytest.mark.parametrize("tail", ["keep", "floor"])
def test_tail_compensation(tmp_path, data, tail):
  cfg = condensation.JobConfig(condense=condenser.CondenseConfig(outer_steps=2), seeds=(0,),
                               start="prior", rho=0.3, baselines=(), reward_signal=False, tail=tail,
                               tail_quantile=0.1, tail_floor=0.1, augment=False)
  train_cfg = train_lib.TrainConfig(lr=1e-2, batch_size=256, max_epochs=2, min_epochs=1,
                                    patience=1)
  rep = condensation.run(data, {"data_checksum": "synthetic"}, cfg,
                         model_cfg=ModelConfig(dim=8), train_cfg=train_cfg,
                         out_dir=tmp_path / "out", cache_dir=tmp_path / "cache",
                         log=lambda s: None)
  kept = readers.read_delimited(rep["files"]["0"]["csv"], columns=("user", "item"))
  deg_kept = dict(zip(kept.user_ids.astype(str), kept.user_degrees()))
  deg_train = dict(zip(data.train.user_ids.astype(str), data.train.user_degrees()))
  n = data.train.nnz
  assert kept.nnz == round(0.25 * n)
  tail_users = tail_lib.tail_users(data.train, quantile=0.1)
  if tail == "keep":
    assert rep["sizes"]["fixed"] == data.train.user_degrees()[tail_users].sum()
    for u in data.train.user_ids[tail_users].astype(str):
      assert deg_kept[u] == deg_train[u]
  else:
    assert rep["sizes"]["fixed"] == 0
    assert all(deg_kept.get(u, 0) >= np.ceil(0.1 * d - 1e-9) for u, d in deg_train.items())


def test_same_seed_twice_gives_bit_identical_sets_and_finished_seeds_are_not_rerun(tmp_path,
                                                                                    data):
  cfg = condensation.JobConfig(condense=condenser.CondenseConfig(outer_steps=6), seeds=(0, 1),
                               start="prior", rho=0.3, baselines=(), reward_signal=False)
  seed0 = dataclasses.replace(cfg, seeds=(0,))
  train_cfg = train_lib.TrainConfig(lr=1e-2, batch_size=256, max_epochs=3, min_epochs=0)
  kw = dict(model_cfg=ModelConfig(dim=8), train_cfg=train_cfg, cache_dir=tmp_path / "cache")
  protocol = {"data_checksum": "synthetic"}
  a = condensation.run(data, protocol, cfg, out_dir=tmp_path / "a", log=lambda s: None, **kw)
  b = condensation.run(data, protocol, seed0, out_dir=tmp_path / "b", log=lambda s: None, **kw)

  def tests(rep):  # the evaluators' test metrics per seed (timings differ, these may not)
    return [m["test"] for m in rep["condensed"]["per_seed"]]

  for kind in ("csv", "npz", "recbole_train"):
    path_a, path_b = a["files"]["0"][kind], b["files"]["0"][kind]
    assert path_a != path_b
    with open(path_a, "rb") as fa, open(path_b, "rb") as fb:
      assert fa.read() == fb.read(), kind
  assert tests(a)[:1] == tests(b)
  with open(a["files"]["0"]["csv"], "rb") as f0, open(a["files"]["1"]["csv"], "rb") as f1:
    assert f0.read() != f1.read()  # another seed, another set
  logs = []
  again = condensation.run(data, protocol, cfg, out_dir=tmp_path / "a", log=logs.append, **kw)
  assert sum("done before" in line for line in logs) == 2
  assert not any("outer" in line for line in logs)
  assert again["per_seed"] == a["per_seed"] and tests(again) == tests(a)
  # Stopped after condensing, before judging: the saved sets are judged, nothing condensed.
  (tmp_path / "a" / "seed1" / condensation.SEED_RECORD).unlink()
  logs.clear()
  judged = condensation.run(data, protocol, cfg, out_dir=tmp_path / "a", log=logs.append, **kw)
  assert sum("condensed before" in line for line in logs) == 1
  assert not any("outer" in line for line in logs)
  assert tests(judged) == tests(a)
  logs.clear()
  fresh = condensation.run(data, protocol, seed0, out_dir=tmp_path / "a", log=logs.append,
                           resume=False, **kw)
  assert any("outer" in line for line in logs) and tests(fresh) == tests(a)[:1]
  with pytest.raises(ValueError, match="other settings or data"):
    condensation.run(data, protocol, dataclasses.replace(cfg, rho=0.4), out_dir=tmp_path / "a",
                     log=lambda s: None, **kw)


def test_a_lightgcn_proxy_condenses_to_the_budget(tmp_path, data):
  cfg = condensation.JobConfig(condense=condenser.CondenseConfig(outer_steps=2), seeds=(0,),
                               start="prior", rho=0.3, baselines=(), proxy_model="lightgcn",
                               reward_signal=False)
  train_cfg = train_lib.TrainConfig(lr=1e-2, batch_size=256, max_epochs=3, min_epochs=1,
                                    patience=1)
  logs = []
  rep = condensation.run(data, {"data_checksum": "synthetic"}, cfg,
                         model_cfg=ModelConfig(dim=8, n_layers=2), train_cfg=train_cfg,
                         out_dir=tmp_path / "out", cache_dir=tmp_path / "cache",
                         log=logs.append)
  assert any(line.startswith("full-data lightgcn (seed 0): training") for line in logs)
  assert rep["size_fraction"] == pytest.approx(round(0.25 * data.train.nnz) / data.train.nnz)
  assert 0 < rep["condensed"]["test"]["ndcg@10"] <= 1


def test_a_proxy_of_three_fits_scores_by_their_mean_and_reuses_the_judging_fits(tmp_path,
                                                                                  data):
  train_cfg = train_lib.TrainConfig(lr=1e-2, batch_size=256, max_epochs=3, min_epochs=1,
                                    patience=1)
  kw = dict(model_cfg=ModelConfig(dim=8), train_cfg=train_cfg, cache_dir=tmp_path / "cache")
  cfg = condensation.JobConfig(seeds=(0, 1, 2), start="prior", tail="none", proxy_fits=3)
  assert cfg.proxy_seeds == [0, 1, 2]
  logs = []
  ctx, _ = condensation.prepare(data, {"data_checksum": "synthetic"}, cfg,
                                out_dir=tmp_path / "out", log=logs.append, **kw)
  assert sum("training" in line for line in logs) == 3  # the judging seeds' fits, no more
  singles = [condensation.prepare(data, {"data_checksum": "synthetic"}, dataclasses.replace(
      cfg, proxy_seed=s, proxy_fits=1, seeds=(s,)), out_dir=tmp_path / f"o{s}",
      log=logs.append, **kw)[0].proxy for s in (0, 1, 2)]  # read back from the cache
  assert not any("training" in line for line in logs[3:])
  u, i = data.train.users(), data.train.indices
  want = np.mean([np.sum(t["user"][u] * t["item"][i], 1) for t in singles], axis=0)
  np.testing.assert_allclose(proxy_lib.scores_of(ctx.proxy, u, i), want, rtol=1e-5, atol=1e-6)
  # The pool's pseudo pairs are each user's best unseen items by the mean score.
  pool = ctx.inputs.pool
  scores_UxI = np.mean([t["user"] @ t["item"].T for t in singles], axis=0)
  for user in (0, 7):
    seen = set(data.train.indices[data.train.indptr[user]:data.train.indptr[user + 1]])
    got = set(pool.items_C[(pool.users_C == user) & pool.pseudo_C].tolist())
    ranked = [j for j in np.argsort(-scores_UxI[user], kind="stable") if j not in seen]
    assert got == set(ranked[:len(got)]) and got
  with pytest.raises(ValueError, match="proxy_fits must be >= 1, got 0"):
    condensation.JobConfig(proxy_fits=0)


def test_fingerprinted_settings_name_the_hold_out_only_when_it_is_on():
  off = condensation.fingerprinted(dataclasses.asdict(condensation.JobConfig(start="prior",
                                                                        tail="keep")))
  assert "holdout_every" not in off and "holdout_share" not in off
  assert set(off) == {f.name for f in dataclasses.fields(condensation.JobConfig)} - {
      "holdout_every", "holdout_share", "peer_seeds",  # peers: only where they choose
      "proxy_fits"}  # and the proxy's fits where they are several
  assert condensation.fingerprinted(dataclasses.asdict(condensation.JobConfig(
      start="prior", tail="keep", proxy_fits=3)))["proxy_fits"] == 3
  on = condensation.fingerprinted(dataclasses.asdict(condensation.JobConfig(holdout_every=5)))
  assert on["holdout_every"] == 5 and on["holdout_share"] == 0.5
  best = condensation.fingerprinted(dataclasses.asdict(condensation.JobConfig()))  # the default
  assert best["holdout_every"] == 0 and best["holdout_share"] == 0.5
