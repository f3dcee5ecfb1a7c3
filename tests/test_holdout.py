"""Hold-out selection of the outer loop's step: the split, the saved logits, the choice,
and the whole job choosing a saved step's set."""

import dataclasses
import json

import numpy as np
import pytest

from jaxcond import baselines, condensation
from jaxcond.condense import condenser, holdout, starts
from jaxcond.condense import pool as pool_lib
from jaxcond.core import npz
from jaxcond.data.interactions import Interactions
from jaxcond.data.split import random_split
from jaxcond.judging import fits
from jaxcond.models import ModelConfig
from jaxcond.models import train as train_lib
from jaxcond.report import summary


def _valid(n_users=40, seed=0):
  rng = np.random.default_rng(seed)
  users, items = [], []
  for u in range(n_users):
    k = int(rng.integers(1, 12))
    users += [u] * k
    items += list(rng.choice(60, k, replace=False))
  return Interactions.from_pairs(np.array(users), np.array(items), n_users=n_users,
                                 n_items=60)


def test_split_valid_partitions_each_user_at_the_share():
  valid = _valid()
  reward, held = holdout.split_valid(valid, 0.3, seed=5)
  pairs = lambda x: set(zip(x.users().tolist(), x.indices.tolist()))  # noqa: E731
  assert pairs(reward) | pairs(held) == pairs(valid) and not pairs(reward) & pairs(held)
  n_U, h_U = valid.user_degrees(), held.user_degrees()
  assert np.all((h_U == np.floor(0.3 * n_U)) | (h_U == np.ceil(0.3 * n_U)))
  again = holdout.split_valid(valid, 0.3, seed=5)[1]
  other = holdout.split_valid(valid, 0.3, seed=6)[1]
  assert pairs(again) == pairs(held) and pairs(other) != pairs(held)


def test_split_valid_share_is_met_on_average():
  valid = _valid(n_users=2000, seed=1)
  shares = [holdout.split_valid(valid, 0.5, seed=s)[1].nnz / valid.nnz for s in range(5)]
  assert abs(np.mean(shares) - 0.5) < 0.01


def test_split_valid_errors():
  valid = _valid()
  for share in (0.0, 1.0, -0.2, 1.5):
    with pytest.raises(ValueError, match="share"):
      holdout.split_valid(valid, share, seed=0)
  one = Interactions.from_pairs(np.array([0]), np.array([3]), n_users=1, n_items=5)
  with pytest.raises(ValueError, match="both parts must be non-empty"):
    holdout.split_valid(one, 0.5, seed=0)


def test_snapshot_steps():
  assert holdout.snapshot_steps(200, 50) == [0, 50, 100, 150, 200]
  assert holdout.snapshot_steps(120, 50) == [0, 50, 100, 120]
  assert holdout.snapshot_steps(0, 50) == [0]
  with pytest.raises(ValueError, match="holdout_every"):
    holdout.snapshot_steps(10, 0)


def test_choose_takes_the_first_best_and_reads_scores_back(tmp_path):
  scores = {0: 0.20, 5: 0.31, 10: 0.31, 15: 0.10}
  for step in scores:
    holdout.save_snapshot(tmp_path / f"step{step}.npz", np.full(3, step, np.float32), step,
                          "run-a")
  calls = []

  def score_of(names, logits):
    assert [int(x[0]) for x in logits] == names
    calls.append(names)
    return [{"score": scores[int(x[0])], "test": -float(x[0])} for x in logits]

  got = holdout.choose(tmp_path, [0, 5, 10, 15], score_of, "run-a", log=lambda s: None)
  assert got["chosen_step"] == 5 and got["scores"] == [0.20, 0.31, 0.31, 0.10]
  assert got["test_scores"] == [0.0, -5.0, -10.0, -15.0]  # kept, never chosen on
  assert calls == [[0, 5, 10, 15]]  # in one call: same-size sets train together
  again = holdout.choose(tmp_path, [0, 5, 10, 15], score_of, "run-a", log=lambda s: None)
  assert again == got and calls == [[0, 5, 10, 15]]  # read back, not rescored
  holdout.save_snapshot(tmp_path / "step20.npz", np.full(3, 20, np.float32), 20, "run-a")
  scores[20] = 0.5
  assert holdout.choose(tmp_path, [0, 5, 20], score_of, "run-a",
                        log=lambda s: None)["chosen_step"] == 20
  assert calls[-1] == [20]  # only the new one is scored
  with pytest.raises(ValueError, match="other settings"):
    holdout.choose(tmp_path, [0], score_of, "run-b", log=lambda s: None)
  with pytest.raises(ValueError, match="did not save that step; start the seed afresh"):
    holdout.choose(tmp_path, [25], score_of, "run-a", log=lambda s: None)


@pytest.fixture(scope="module")
def data():
  rng = np.random.default_rng(3)
  taste = rng.integers(0, 4, 60)
  users, items = [], []
  for u in range(60):
    users += [u] * 20
    items += list(rng.choice(np.arange(taste[u] * 25, taste[u] * 25 + 25), 20, replace=False))
  return random_split(Interactions.from_pairs(np.array(users), np.array(items)), seed=1)


def test_the_job_exports_the_chosen_steps_set_and_resumes(tmp_path, data, monkeypatch):
  cfg = condensation.JobConfig(condense=condenser.CondenseConfig(outer_steps=4), seeds=(0,),
                               rho=0.3, baselines=(), reward_signal=False, holdout_every=2,
                               start="prior")
  train_cfg = train_lib.TrainConfig(lr=1e-2, batch_size=256, max_epochs=4, min_epochs=1,
                                    patience=2)
  scored = []
  score = holdout.held_out_scores
  monkeypatch.setattr(holdout, "held_out_scores",
                      lambda data_, subsets, *a, **k: scored.extend([1] * len(subsets)) or
                      score(data_, subsets, *a, **k))
  run = lambda logs, resume=True: condensation.run(  # noqa: E731
      data, {"data_checksum": "synthetic"}, cfg, model_cfg=ModelConfig(dim=8),
      train_cfg=train_cfg, out_dir=tmp_path / "out", cache_dir=tmp_path / "cache",
      log=logs.append, resume=resume)
  rep = run([])
  (chosen,) = rep["holdout"]
  assert chosen["steps"] == [0, 2, 4] and len(scored) == 3
  assert chosen["scores"][chosen["steps"].index(chosen["chosen_step"])] == max(chosen["scores"])
  assert all(0 <= s <= 1 for s in chosen["scores"] + chosen["test_scores"])
  assert chosen["seconds"] > 0 and rep["start"] == [{"chosen_step": "prior", "kind": "prior",
                                                    "tail": "none", "seed": 0}]
  seed_dir = tmp_path / "out" / "seed0"
  # The exported set is the top-k of the chosen step's saved logits.
  pool, _ = condensation.build_pool(
      data, _proxy(tmp_path, data, cfg, train_cfg), cfg)
  sizes = condenser.budget_of(pool, data.train.nnz, cfg.condense)
  logits, meta = holdout.load_snapshot(seed_dir / "snapshots" /
                                       f"step{chosen['chosen_step']}.npz")
  assert meta["step"] == chosen["chosen_step"] and "score" in meta
  keep = condenser.select(logits, pool, sizes, cfg.condense, 0)
  expect = pool.to_interactions(keep)
  with np.load(seed_dir / "condensed.npz") as z:
    got = set(zip(z["user_index"].tolist(), z["item_index"].tolist()))
  assert got == set(zip(expect.users().tolist(), expect.indices.tolist()))
  record = json.loads((seed_dir / condensation.SEED_RECORD).read_text())
  assert chosen.pop("seed") == 0 and record["holdout"] == chosen
  last, _ = holdout.load_snapshot(seed_dir / "snapshots" / "step4.npz")  # the loop's end
  state, _ = npz.load_arrays(seed_dir / condensation.CHECKPOINT)
  np.testing.assert_array_equal(last, state["leaf000"])  # State's first leaf: the logits

  logs = []
  assert run(logs)["holdout"][0]["chosen_step"] == chosen["chosen_step"]
  assert any("done before" in line for line in logs) and len(scored) == 3
  # Stopped after scoring, before the record: the scores are read back, not refitted.
  (seed_dir / condensation.SEED_RECORD).unlink()
  again = run([])["holdout"][0]
  assert again["scores"] == chosen["scores"] and len(scored) == 3
  # Afresh: the saved logits go and every step is scored again.
  (seed_dir / "snapshots" / "step9.npz").write_bytes(b"stale")
  run([], resume=False)
  assert len(scored) == 6 and not (seed_dir / "snapshots" / "step9.npz").exists()


def _run(data, cfg, train_cfg, tmp_path) -> dict:
  """condensation.run of `cfg` on the synthetic data into tmp_path/out, quietly."""
  return condensation.run(data, {"data_checksum": "synthetic"}, cfg, model_cfg=ModelConfig(dim=8),
                          train_cfg=train_cfg, out_dir=tmp_path / "out",
                          cache_dir=tmp_path / "cache", log=lambda s: None)


def _proxy(tmp_path, data, cfg, train_cfg):
  from jaxcond.condense import proxy as proxy_lib
  params, _ = fits.fit_full("bpr_mf", data, {"data_checksum": "synthetic"},
                                    model_cfg=ModelConfig(dim=8), train_cfg=train_cfg,
                                    seed=cfg.proxy_seed, cache_dir=tmp_path / "cache",
                                    log=lambda s: None)
  return proxy_lib.tables("bpr_mf", params, data.train, ModelConfig(dim=8))


def _fake_start_scores(monkeypatch, fake: dict, chosen_on: list | None = None,
                       fits: int = condensation.JobConfig.start_fits) -> list:
  """Gives the candidate starts, scored in turn (`fits` fits each) by each seed's choice,
  the made-up held-out scores `fake`; returns the list of each scored set's count of pseudo
  pairs (and appends the count of pairs each call chooses on to `chosen_on`)."""
  score = holdout.held_out_scores
  scored = []

  def fake_scores(data_, subsets, seeds, reward_part, held_out, **k):
    train = set(zip(data_.train.users().tolist(), data_.train.indices.tolist()))
    if chosen_on is not None:
      chosen_on.append((reward_part.nnz, held_out.nnz))
    outs = score(data_, subsets, seeds, reward_part, held_out, **k)
    choice = len(subsets) == len(fake) * fits  # else a later step's score
    for n, (subset, out) in enumerate(zip(subsets, outs)):
      scored.append(len(set(zip(subset.users().tolist(), subset.indices.tolist())) - train))
      if choice:
        out["score"] = list(fake.values())[n // fits]
    return outs

  monkeypatch.setattr(holdout, "held_out_scores", fake_scores)
  return scored


@pytest.mark.parametrize("heuristic", ["proxy_top", "proxy_top_sqrt"])
def test_a_heuristic_start_is_the_heuristic_set(tmp_path, data, monkeypatch, heuristic):
  cfg = condensation.JobConfig(condense=condenser.CondenseConfig(outer_steps=2), seeds=(0,),
                               rho=0.3, baselines=("zero_update", heuristic),
                               reward_signal=False, holdout_every=2, start="best",
                               tail="none")
  train_cfg = train_lib.TrainConfig(lr=1e-2, batch_size=256, max_epochs=2, min_epochs=1)
  fake = {kind: 0.1 + 0.01 * i for i, kind in enumerate(starts.start_kinds(True))}
  fake[heuristic] = 0.9
  _fake_start_scores(monkeypatch, fake)
  rep = _run(data, cfg, train_cfg, tmp_path)
  assert rep["start"][0]["steps"] == list(fake)
  assert rep["start"][0]["chosen_step"] == heuristic
  sets, _ = npz.load_arrays(tmp_path / "out" / "seed0" / condensation.SETS)
  pairs = {n: set(zip(sets[f"{n}_users"].tolist(), sets[f"{n}_items"].tolist()))
           for n in ("zero_update", heuristic)}
  assert pairs["zero_update"] == pairs[heuristic] and len(pairs[heuristic]) == round(
      0.25 * data.train.nnz)


def test_initial_logits_lift_a_heuristic_above_every_other_candidate():
  pool = pool_lib.build_pool(Interactions.from_pairs([0, 0, 1, 1, 2], [0, 1, 1, 2, 0]),
                             pseudo_users=np.array([2]), pseudo_items=np.array([2]))
  prior = np.array([-1.0, -9.0, -3.0, -2.0, -5.0, 0.0], np.float32)
  chosen = starts.heuristic_mask(pool, Interactions.from_pairs([0, 2], [1, 0],
                                                                     n_users=3, n_items=3))
  np.testing.assert_array_equal(chosen, [False, True, False, False, True, False])
  both = starts.heuristic_mask(pool, Interactions.from_pairs([1, 2], [2, 2], n_users=3,
                                                                   n_items=3))
  np.testing.assert_array_equal(both, [False, False, False, True, False, True])  # + pseudo
  logits = starts.initial_logits(prior, pool, "proxy_top", chosen)
  np.testing.assert_allclose(logits, prior + 10.0 * chosen)  # the prior's span 9, plus 1
  assert logits[chosen].min() > logits[~chosen].max()  # the heuristic's set comes first
  with pytest.raises(ValueError, match="needs its set"):
    starts.initial_logits(prior, pool, "proxy_half")


def test_start_best_is_chosen_on_held_out_pairs_and_read_back(tmp_path, data, monkeypatch):
  cfg = condensation.JobConfig(condense=condenser.CondenseConfig(outer_steps=2), seeds=(0,),
                               rho=0.3, baselines=("zero_update",), reward_signal=False,
                               holdout_every=2, start="best")
  train_cfg = train_lib.TrainConfig(lr=1e-2, batch_size=256, max_epochs=4, min_epochs=1,
                                    patience=2)
  fake = {"proxy_top": 0.3, "proxy_half": 0.2, "proxy_top_sqrt": 0.25, "proxy_half_sqrt": 0.05}
  scored = _fake_start_scores(monkeypatch, fake)
  run = lambda: condensation.run(  # noqa: E731
      data, {"data_checksum": "synthetic"}, cfg, model_cfg=ModelConfig(dim=8),
      train_cfg=train_cfg, out_dir=tmp_path / "out", cache_dir=tmp_path / "cache",
      log=lambda s: None)
  rep = run()
  (start,) = rep["start"]
  assert start["steps"] == list(fake) and start["chosen_step"] == "proxy_top"
  assert start["scores"] == pytest.approx(list(fake.values()))  # the means of 2 fits each
  assert [f["fit_seeds"] for f in start["fits"]] == [[1000, 1001]] * len(fake)
  n_pseudo = [scored[2 * k:2 * k + 2] for k in range(len(fake))]
  assert n_pseudo[0] == n_pseudo[2] == [0, 0]  # proxy_top and proxy_top_sqrt: originals
  assert min(n_pseudo[1] + n_pseudo[3]) > 0  # proxy_half and proxy_half_sqrt: a mix
  # The loop started from proxy_top: the zero-update set holds no pseudo pair.
  assert rep["per_seed"][0]["size"] == round(0.25 * data.train.nnz)
  sets, _ = npz.load_arrays(tmp_path / "out" / "seed0" / condensation.SETS)
  train = set(zip(data.train.users().tolist(), data.train.indices.tolist()))
  assert set(zip(sets["zero_update_users"].tolist(),
                 sets["zero_update_items"].tolist())) <= train
  n_scored = len(scored)
  (tmp_path / "out" / "seed0" / condensation.SEED_RECORD).unlink()
  assert run()["start"] == rep["start"] and len(scored) == n_scored  # read back
  assert condensation.JobConfig(start="best").holds_out  # with or without step snapshots
  assert not condensation.JobConfig(start="prior", tail="keep").holds_out
  assert condensation.JobConfig(start="prior").holds_out  # tail="best" is chosen on them
  with pytest.raises(ValueError, match="start must be one of"):
    condensation.JobConfig(start="worst")


@pytest.mark.parametrize("outer_steps", [0, 2])
def test_step0_reuses_the_chosen_starts_score(tmp_path, data, monkeypatch, outer_steps):
  """Step 0 is the chosen start: its held-out score is read back, not fitted again."""
  cfg = condensation.JobConfig(condense=condenser.CondenseConfig(outer_steps=outer_steps),
                               seeds=(0,), rho=0.3, baselines=("zero_update",),
                               reward_signal=False, holdout_every=1, start="best", tail="none")
  train_cfg = train_lib.TrainConfig(lr=1e-2, batch_size=256, max_epochs=2, min_epochs=1)
  fake = {"proxy_top": 0.5, "proxy_half": 0.3, "proxy_top_sqrt": 0.1, "proxy_half_sqrt": 0.15}
  chosen_on = []
  scored = _fake_start_scores(monkeypatch, fake, chosen_on)
  rep = _run(data, cfg, train_cfg, tmp_path)
  (start,), (held,) = rep["start"], rep["holdout"]
  assert start["chosen_step"] == "proxy_top"
  assert held["steps"] == list(range(outer_steps + 1))
  n_fits = len(fake) * cfg.start_fits
  if outer_steps:  # the start was chosen on seed 0's held-out pairs: step 0 is not refitted
    assert len(scored) == n_fits + outer_steps  # start_fits per start, one per later step
    assert start["chosen_on"] == "held-out validation" and start["split_seed"] == 0
    assert held["scores"][0] == pytest.approx(0.5)
    assert held["test_scores"][0] == start["test_scores"][0]
  else:  # no reward reads validation: the start was chosen on all of it, step 0 on a half
    assert len(scored) == n_fits + 1 and start["chosen_on"] == "validation"
    assert chosen_on[0] == (0, data.valid.nnz) and 0 < chosen_on[1][1] < data.valid.nnz
  sets, _ = npz.load_arrays(tmp_path / "out" / "seed0" / condensation.SETS)
  # With no outer step the condensed set is the zero-update set: judged once, not twice.
  assert ("zero_update_users" in sets) == (outer_steps > 0)
  assert ("zero_update" in rep["baselines"]) == (outer_steps > 0)


def test_the_default_is_the_best_start_with_no_outer_step(tmp_path, data, monkeypatch,
                                                         trained_fits):
  """JobConfig's defaults: the start chosen on the validation pairs is the set; no outer
  step, no step snapshots, no reward measured, zero_update (the same set) not judged, and
  the sets judged by fits other than the choice's."""
  defaults = condensation.JobConfig()
  assert defaults.start == "best" and defaults.condense.outer_steps == 0
  assert defaults.holds_out and not defaults.holdout_every
  cfg = dataclasses.replace(defaults, seeds=(0,), rho=0.3)
  train_cfg = train_lib.TrainConfig(lr=1e-2, batch_size=256, max_epochs=2, min_epochs=1)
  assert starts.start_kinds(True) == list(starts.HEURISTICS) and defaults.start_fits == 2
  fake = {"proxy_top": 0.4, "proxy_half": 0.6, "proxy_top_sqrt": 0.1, "proxy_half_sqrt": 0.15}
  scored = _fake_start_scores(monkeypatch, fake)
  trained = trained_fits
  rep = _run(data, cfg, train_cfg, tmp_path)
  (start,) = rep["start"]
  assert len(scored) == 2 * len(fake) and start["chosen_step"] == "proxy_half"
  assert rep["holdout"] == [] and rep["reward_signal"] == [{"seed": 0}]
  assert set(rep["baselines"]) == set(cfg.baselines) - {"zero_update"}
  ev = rep["models"]["bpr_mf"]
  fit_tests = {kind: f["fit_tests"] for kind, f in zip(start["steps"], start["fits"])}
  for kind in starts.HEURISTICS:
    assert start["test_scores"][start["steps"].index(kind)] == pytest.approx(
        np.mean(fit_tests[kind]))
  sets_, _ = npz.load_arrays(tmp_path / "out" / "seed0" / condensation.SETS)
  pairs = {n: set(zip(sets_[f"{n}_users"].tolist(), sets_[f"{n}_items"].tolist()))
           for n in ("condensed", *rep["baselines"])}
  # The proxy, each distinct start set (2 fits, seeds 1000 and 1001; here the starts are
  # the heuristics' own sets, and the _sqrt forms equal the others on these even users),
  # then each distinct set judged with seed 0: the condensed set is proxy_half's.
  assert pairs["condensed"] == pairs["proxy_half"]
  distinct = {frozenset(p) for p in pairs.values()}
  starts_ = {frozenset(pairs[k]) for k in starts.HEURISTICS}
  assert len(starts_) == 2 and sum(trained) == 1 + 2 * len(starts_) + len(distinct)
  assert ev["condensed"]["per_seed"][0] == ev["baselines"]["proxy_half"]["per_seed"][0]
  assert rep["overlap"] == {n: pytest.approx(len(pairs["condensed"] & pairs[n])
                                             / len(pairs["condensed"]))
                            for n in rep["baselines"]}
  seed_dir = tmp_path / "out" / "seed0"
  assert not (seed_dir / condensation.SNAPSHOTS).exists()
  # The exported set is the top of the chosen start's saved logits under the budget.
  pool, _ = condensation.build_pool(data, _proxy(tmp_path, data, cfg, train_cfg), cfg)
  sizes = condenser.budget_of(pool, data.train.nnz, cfg.condense)
  logits, _ = holdout.load_snapshot(seed_dir / condensation.START_SNAPSHOTS /
                                    "stepproxy_half.npz")
  expect = pool.to_interactions(condenser.select(logits, pool, sizes, cfg.condense, 0))
  with np.load(seed_dir / "condensed.npz") as z:
    got = set(zip(z["user_index"].tolist(), z["item_index"].tolist()))
    assert z["pseudo"].any()
  assert got == set(zip(expect.users().tolist(), expect.indices.tolist()))


def test_tail_best_chooses_the_rule_with_the_start_for_each_seed(tmp_path, data,
                                                                   monkeypatch):
  """tail="best" (the default): each start kind with and without the tail rule is a
  candidate; each seed chooses on fits with the other seed (then 1000) and condenses from
  its choice, its baseline's own set."""
  cfg = condensation.JobConfig(seeds=(0, 1), rho=0.3, tail_quantile=0.2,
                               baselines=("proxy_half",), reward_signal=False)
  assert cfg.tail == "best" and cfg.start == "best"
  train_cfg = train_lib.TrainConfig(lr=1e-2, batch_size=256, max_epochs=2, min_epochs=1)
  kinds = starts.start_kinds(True)
  fake = {f"{k}-{t}": 0.1 for t in ("keep", "none") for k in kinds}
  fake["proxy_half-none"] = 0.5
  scored = _fake_start_scores(monkeypatch, fake)
  rep = _run(data, cfg, train_cfg, tmp_path)
  assert len(scored) == 2 * 2 * len(fake)  # per seed, 2 fits per candidate
  for seed, start in zip((0, 1), rep["start"], strict=True):
    assert start["seed"] == seed and start["steps"] == list(fake)
    assert [f["fit_seeds"] for f in start["fits"]] == [[1 - seed, 1000]] * len(fake)
    assert (start["chosen_step"], start["tail"], start["kind"]) == ("proxy_half-none", "none",
                                                                    "proxy_half")
    assert start["chosen_on"] == "validation"
  assert rep["sizes"]["fixed"] == 0
  sets = [npz.load_arrays(tmp_path / "out" / f"seed{s}" / condensation.SETS)[0] for s in (0, 1)]
  pairs = [{n: set(zip(z[f"{n}_users"].tolist(), z[f"{n}_items"].tolist()))
            for n in ("condensed", "proxy_half")} for z in sets]
  assert pairs[0]["condensed"] == pairs[0]["proxy_half"]
  assert pairs[1]["condensed"] == pairs[1]["proxy_half"]
  # Under the rule the 20% least active users' pairs are fixed: the keep candidates had them.
  proxy = _proxy(tmp_path, data, cfg, train_cfg)
  tails = condensation.tail_variants(data, proxy, cfg)
  keep = tails["keep"].pool
  assert keep.fixed_C.sum() == 12 * 16 and not keep.pseudo_C[keep.fixed_C].any()
  assert not tails["none"].pool.fixed_C.any()
  np.testing.assert_array_equal(keep.items_C, tails["none"].pool.items_C)  # same candidates
  # A rule that fixes under TAIL_MIN_SHARE of the budget (192 of 240 pairs here) is
  # dropped, the heuristics' own sets standing, and one that fixes nobody is no rule.
  monkeypatch.setattr(condensation, "TAIL_MIN_SHARE", 0.9)
  assert list(condensation.tail_variants(data, proxy, cfg)) == ["none"]
  nobody = dataclasses.replace(cfg, tail_quantile=None, tail_tau=0)
  assert list(condensation.tail_variants(data, proxy, nobody)) == ["none"]


def test_tail_best_needs_honest_accounting():
  with pytest.raises(ValueError, match="honest accounting"):
    condensation.JobConfig(condense=condenser.CondenseConfig(accounting="official"))
  condensation.JobConfig(condense=condenser.CondenseConfig(accounting="official"), tail="keep")


def test_each_seeds_start_is_chosen_on_the_other_seeds_fits(tmp_path, data, monkeypatch,
                                                            trained_fits):
  """Each seed's start is chosen on the mean of two fits seeded by the other seeds, so no
  fit that chose a seed's set judges it; a start ahead on one fit but behind on the mean
  loses; the choice trains no fit that the judging of the heuristics does not need."""
  cfg = condensation.JobConfig(seeds=(0, 1, 2), rho=0.3, tail="none",
                               baselines=("random", *starts.HEURISTICS))
  train_cfg = train_lib.TrainConfig(lr=1e-2, batch_size=256, max_epochs=2, min_epochs=1)
  by_fit = {"proxy_top": {0: 0.5, 1: 0.05, 2: 0.2}, "proxy_half": {0: 0.3, 1: 0.3, 2: 0.3},
            "proxy_top_sqrt": {0: 0.2, 1: 0.2, 2: 0.2},
            "proxy_half_sqrt": {0: 0.1, 1: 0.3, 2: 0.45}}
  score, seen, inside, tested, drawn = holdout.held_out_scores, [], [False], [], []

  def fake_scores(data_, subsets, seeds, reward_part, held_out, **k):
    inside[0] = True
    outs = score(data_, subsets, seeds, reward_part, held_out, **k)
    inside[0] = False
    seen.append(list(seeds))
    for n, out in enumerate(outs):  # a choice call: four candidates, two fits each
      out["score"] = list(by_fit.values())[n // 2][seeds[n]]
    return outs

  evaluate, select = train_lib.evaluate_model, baselines.select
  monkeypatch.setattr(holdout, "held_out_scores", fake_scores)

  def counted_evaluate(*a, **k):
    tested.extend([1] if inside[0] else [])  # the choices' test figures only
    return evaluate(*a, **k)

  monkeypatch.setattr(train_lib, "evaluate_model", counted_evaluate)
  monkeypatch.setattr(baselines, "select",
                      lambda name, *a, seed, **k: drawn.append((name, seed)) or select(
                          name, *a, seed=seed, **k))
  trained = trained_fits
  rep = _run(data, cfg, train_cfg, tmp_path)
  assert seen == [[1, 2] * 4, [0, 2] * 4, [0, 1] * 4]
  # Each fit's test figure is evaluated once (6 distinct fits: 2 sets x 3 seeds), and each
  # heuristic drawn once per seed, for the choices and the judging, not once per reader.
  assert len(tested) == 2 * 3
  assert sorted(drawn) == sorted((k, t) for k in starts.HEURISTICS for t in (0, 1, 2))
  # Seed 0 on fits 1 and 2, seed 1 on 0 and 2, seed 2 on 0 and 1 (proxy_top leads on fit 0
  # but not on the mean of fits 0 and 1).
  assert [s["chosen_step"] for s in rep["start"]] == ["proxy_half_sqrt", "proxy_top",
                                                      "proxy_half"]
  assert rep["start"][2]["scores"] == pytest.approx([0.275, 0.3, 0.2, 0.2])
  assert [f["fit_scores"] for f in rep["start"][2]["fits"]] == [
      [t[0], t[1]] for t in by_fit.values()]
  # The proxy and the full data's fits of seeds 1 and 2; the candidates' fits (2 distinct
  # sets: on these even users the _sqrt forms equal the others, and every seed draws the
  # same) with seeds 0, 1 and 2, which judge the heuristics and the condensed sets too;
  # random's three.
  assert sum(trained) == 1 + 2 + 2 * 3 + 3
  ev = rep["models"]["bpr_mf"]
  for seed, start in enumerate(rep["start"]):
    assert start["seed"] == seed and seed not in start["fits"][0]["fit_seeds"]
    judged = ev["condensed"]["per_seed"][seed]
    assert judged == ev["baselines"][start["chosen_step"]]["per_seed"][seed]
    other = rep["start"][(seed + 1) % 3]  # a seed whose choice read this seed's fit
    fits = other["fits"][other["steps"].index(start["chosen_step"])]
    assert fits["fit_tests"][fits["fit_seeds"].index(seed)] == pytest.approx(
        judged["test"]["ndcg@10"])
  lines = summary._fits_lines(rep)  # report.md's record of each fit
  assert "- seed 1, start 'proxy_top': 0.5000 (seed 0), 0.2000 (seed 2)" in lines
  with pytest.raises(ValueError, match="start_fits must be >= 1"):
    condensation.JobConfig(start_fits=0)
  with pytest.raises(ValueError, match=r"seeds \[1001\] are the start choice's fit seeds"):
    condensation.JobConfig(seeds=(0, 1001))
  condensation.JobConfig(seeds=(1001,), start="proxy_top", tail="none")  # no choice made


def test_a_run_of_one_seed_with_its_peers_chooses_as_the_run_of_all(tmp_path, data):
  """compare.py runs one seed per run: with peer_seeds, seed 2 alone chooses its start on
  the fits seeded 0 and 1 and gets the set and figures it gets in a run of all three."""
  train_cfg = train_lib.TrainConfig(lr=1e-2, batch_size=256, max_epochs=2, min_epochs=1)
  every = condensation.JobConfig(seeds=(0, 1, 2), rho=0.3, tail="none", baselines=())
  alone = dataclasses.replace(every, seeds=(2,), peer_seeds=(0, 1, 2))
  assert alone.choice_seeds_for(2) == every.choice_seeds_for(2) == [0, 1]
  assert dataclasses.replace(alone, peer_seeds=()).choice_seeds_for(2) == [1000, 1001]
  reps = [_run(data, cfg, train_cfg, tmp_path / name)
          for name, cfg in (("every", every), ("alone", alone))]
  starts_ = [reps[0]["start"][2], reps[1]["start"][0]]
  for key in ("seed", "chosen_step", "steps", "scores"):
    assert starts_[0][key] == starts_[1][key], key
  assert [f["fit_seeds"] for f in starts_[1]["fits"]] == [[0, 1]] * len(starts_[1]["steps"])
  assert ([f["fit_scores"] for f in starts_[0]["fits"]]
          == [f["fit_scores"] for f in starts_[1]["fits"]])
  judged = [rep["models"]["bpr_mf"]["condensed"]["per_seed"] for rep in reps]
  assert judged[1][0]["test"] == judged[0][2]["test"]
  # Peer seeds enter the fingerprint only where they choose: other jobs keep theirs.
  assert "peer_seeds" not in condensation.fingerprinted(dataclasses.asdict(every))
  assert condensation.fingerprinted(dataclasses.asdict(alone))["peer_seeds"] == (0, 1, 2)
  no_choice = dataclasses.replace(alone, start="proxy_top")
  assert "peer_seeds" not in condensation.fingerprinted(dataclasses.asdict(no_choice))
  with pytest.raises(ValueError, match=r"seeds \[1000\] are the start choice's fit seeds"):
    condensation.JobConfig(seeds=(0,), peer_seeds=(0, 1000))
