"""The outer step: determinism, no retracing, the budget, and progress on real data."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxcond.condense import condenser, inner
from jaxcond.condense import pool as pool_lib
from jaxcond.data.interactions import Interactions
from jaxcond.data.pipeline import DataConfig, prepare
from jaxcond.data.split import random_split
from jaxcond.models import ModelConfig, get_model
from jaxcond.models import train as train_lib
from jaxcond.models.graph import build_graph

HP = ModelConfig(dim=8)


def _problem(cfg, n_users=40, n_items=60, seed=0):
  rng = np.random.default_rng(seed)
  users = np.repeat(np.arange(n_users), 12)
  items = np.concatenate([rng.choice(n_items, 12, replace=False) for _ in range(n_users)])
  data = random_split(Interactions.from_pairs(users, items), seed=seed)
  proxy = {"user": rng.normal(size=(n_users, 8)).astype(np.float32),
           "item": rng.normal(size=(n_items, 8)).astype(np.float32)}
  pool = pool_lib.build_pool(data.train, fixed_users=[0, 1])
  sizes = condenser.budget_of(pool, data.train.nnz, cfg)
  max_degree = int(data.train.user_degrees().max())
  sdata = condenser.step_data(pool, pool_lib.rows_of(pool, 4), proxy, data.valid,
                              build_graph(data.train, dense_limit=0), sizes, cfg, max_degree)
  return pool, sizes, sdata, max_degree


@pytest.mark.parametrize("inner_cfg", [inner.InnerConfig(),
                                       inner.InnerConfig(steps=3, start="fresh", update="all",
                                                         optimizer="adam", lr=0.01)])
def test_step_is_deterministic_keeps_budget_and_does_not_retrace(inner_cfg):
  credit = "user" if inner_cfg.update == "users" else "global"
  cfg = condenser.CondenseConfig(ratio=0.3, outer_steps=3, inner=inner_cfg, credit=credit)
  pool, sizes, sdata, max_degree = _problem(cfg)
  step = condenser.make_step(cfg, HP, max_degree)
  key = jax.random.key(3)
  runs = []
  for _ in range(2):
    state = condenser.init_state(sdata, cfg)
    for _ in range(3):
      state, meas = step(state, key, sdata)
    runs.append(np.asarray(state.logits_C))
  np.testing.assert_array_equal(runs[0], runs[1])
  assert step._cache_size() == 1
  free = ~pool.fixed_C
  p = 1 / (1 + np.exp(-runs[0].astype(np.float64)))
  assert abs(p[free].sum() - sizes["free"]) <= 1e-3 * sizes["free"]
  assert sizes["fixed"] == pool.fixed_C.sum() > 0
  assert sizes["total"] == round(0.3 * sdata.inner.users_C.shape[0])
  assert set(meas) >= {"reward", "reward_std", "mask_size", "expected_free", "grad_norm"}
  assert np.any(runs[0][free] != runs[0][free][0])  # the logits moved


def test_select_top_and_sample():
  cfg = condenser.CondenseConfig(ratio=0.3)
  pool, sizes, sdata, _ = _problem(cfg)
  logits = np.random.default_rng(0).normal(size=pool.size)
  keep = condenser.select(logits, pool, sizes, cfg, seed=0)
  assert keep.sum() == sizes["total"] and keep[pool.fixed_C].all()
  free = ~pool.fixed_C & ~keep
  assert logits[keep & ~pool.fixed_C].min() >= logits[free].max()
  sampled = condenser.select(logits, pool, sizes, dataclasses.replace(cfg, selection="sample"),
                             seed=0)
  assert sampled[pool.fixed_C].all()
  assert abs(sampled.sum() - sizes["fixed"] - (1 / (1 + np.exp(-logits)))[~pool.fixed_C].sum()) \
      < 4 * np.sqrt(pool.size)


def test_budget_errors_name_the_numbers():
  cfg = condenser.CondenseConfig(ratio=0.01)
  with pytest.raises(condenser.BudgetError, match="leaves a budget of"):
    _problem(cfg)
  with pytest.raises(ValueError, match="ratio must be in"):
    condenser.CondenseConfig(ratio=1.5)
  with pytest.raises(ValueError, match="credit='user'"):
    condenser.CondenseConfig(inner=inner.InnerConfig(update="all"))


def test_official_accounting_counts_fixed_pairs_on_top():
  cfg = condenser.CondenseConfig(ratio=0.3, accounting="official")
  pool, sizes, _, _ = _problem(cfg)
  n_fixed = int(pool.fixed_C.sum())
  assert n_fixed > 0
  assert sizes["free"] == round(0.3 * (pool.size - n_fixed))
  assert sizes["total"] == sizes["free"] + n_fixed


def test_outer_objective_decreases_on_ml100k(shared_data_dir):
  data, _ = prepare(DataConfig(dataset="ml-100k", min_rating=3, data_dir=str(shared_data_dir)),
                    use_cache=False)
  fit = train_lib.fit(get_model("bpr_mf"), data, hparams=HP,
                      cfg=train_lib.TrainConfig(lr=5e-3, max_epochs=30, min_epochs=30), seed=0)
  proxy = {k: np.asarray(v) for k, v in fit.params.items()}
  cfg = condenser.CondenseConfig(outer_steps=150)
  pool = pool_lib.build_pool(data.train)
  sizes = condenser.budget_of(pool, data.train.nnz, cfg)
  max_degree = int(data.train.user_degrees().max())
  sdata = condenser.step_data(pool, pool_lib.rows_of(pool), proxy, data.valid,
                              build_graph(data.train, dense_limit=0), sizes, cfg, max_degree)
  state0 = condenser.init_state(sdata, cfg)
  result = condenser.condense(pool, sdata, cfg, hparams=HP, max_degree=max_degree, sizes=sizes)
  rewards_fn = jax.jit(condenser.make_rewards_fn(cfg, HP, max_degree))

  def objective(logits_C, key):  # the mean total reward of 16 masks, for one inner key
    probs = condenser.keep_probs(logits_C, sdata.free_C)
    masks = (jax.random.uniform(jax.random.fold_in(key, 1), (16, probs.shape[0])) < probs)
    return float(rewards_fn(masks.astype(jnp.float32), key, sdata).sum(1).mean())

  # Each key judges both states with the same negatives (common random numbers).
  diffs = np.array([objective(jnp.asarray(result.logits_C), jax.random.key(j))
                    - objective(state0.logits_C, jax.random.key(j)) for j in range(8)])
  assert diffs.mean() < -3 * diffs.std(ddof=1) / np.sqrt(len(diffs)), diffs
  assert result.keep_C.sum() == sizes["total"]


def test_prior_start_meets_budget_keeps_order_and_floor_selection():
  cfg = condenser.CondenseConfig(ratio=0.3)
  pool, sizes, sdata, _ = _problem(cfg)
  rng = np.random.default_rng(4)
  prior = rng.normal(size=pool.size).astype(np.float32)
  logits = np.asarray(condenser.init_state(sdata, cfg, prior).logits_C, np.float64)
  free = ~pool.fixed_C
  assert abs((1 / (1 + np.exp(-logits[free]))).sum() - sizes["free"]) <= 1e-3 * sizes["free"]
  np.testing.assert_array_equal(np.argsort(logits[free], kind="stable"),
                                np.argsort(prior[free], kind="stable"))
  floor_U = np.full(pool.n_users, 2)
  floor_U[:2] = 0  # users 0, 1 are fixed (all pairs kept)
  keep = condenser.select(logits, pool, sizes, cfg, 0, floor_U)
  assert keep.sum() == sizes["total"] and keep[pool.fixed_C].all()
  assert np.bincount(pool.users_C[keep & free], minlength=pool.n_users)[2:].min() >= 2


class _Stop(Exception):
  pass


def test_interrupted_loop_resumes_to_the_uninterrupted_result(tmp_path):
  cfg = condenser.CondenseConfig(ratio=0.3, outer_steps=12)
  pool, sizes, sdata, max_degree = _problem(cfg)
  prior = np.random.default_rng(1).normal(size=pool.size).astype(np.float32)

  def run(path=None, stop_at=None, run_id="r"):
    def progress(row):
      if row["step"] == stop_at:
        raise _Stop
    return condenser.condense(pool, sdata, cfg, hparams=HP, max_degree=max_degree,
                              state=condenser.init_state(sdata, cfg, prior), sizes=sizes,
                              progress=progress, log_every=1, checkpoint_path=path,
                              checkpoint_every=5, run_id=run_id)

  plain = run()
  path = tmp_path / "ck.npz"
  with pytest.raises(_Stop):
    run(path, stop_at=8)  # dies after step 8: the checkpoint holds step 5
  resumed = run(path)
  np.testing.assert_array_equal(resumed.logits_C, plain.logits_C)
  np.testing.assert_array_equal(resumed.keep_C, plain.keep_C)
  assert [r["step"] for r in resumed.history] == list(range(1, 13))
  for a, b in zip(resumed.history, plain.history):
    assert {k: v for k, v in a.items() if k != "seconds"} == \
        {k: v for k, v in b.items() if k != "seconds"}
  again = run(path)  # a finished checkpoint: no step is rerun
  np.testing.assert_array_equal(again.logits_C, plain.logits_C)
  with pytest.raises(ValueError, match="other settings"):
    run(path, run_id="another dataset")


def test_same_seed_gives_a_bit_identical_set_and_another_seed_does_not():
  cfg = condenser.CondenseConfig(ratio=0.3, outer_steps=6)
  pool, sizes, sdata, max_degree = _problem(cfg)

  def run(seed):
    c = dataclasses.replace(cfg, seed=seed)
    return condenser.condense(pool, sdata, c, hparams=HP, max_degree=max_degree, sizes=sizes)

  a, b, other = run(0), run(0), run(1)
  np.testing.assert_array_equal(a.logits_C, b.logits_C)  # bitwise, not within a tolerance
  np.testing.assert_array_equal(a.keep_C, b.keep_C)
  assert not np.array_equal(a.logits_C, other.logits_C)
