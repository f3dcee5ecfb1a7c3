import dataclasses
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxcond.baselines import distill_cf as dcf
from jaxcond.data import split
from jaxcond.data.interactions import Interactions
from jaxcond.models import ease
from jaxcond.models import evaluate as evaluate_lib


def _rows(shape, seed=0, p=0.4):
  return (np.random.default_rng(seed).random(shape) < p).astype(np.float32)


def _two_tastes(n_users=48, n_items=24, per_user=8, seed=0) -> split.DatasetSplit:
  """Two groups of users, each drawing its items from its own half of the catalogue."""
  rng = np.random.default_rng(seed)
  users, items = [], []
  half = n_items // 2
  for u in range(n_users):
    chosen = rng.choice(half, per_user, replace=False) + half * (u % 2)
    users += [u] * per_user
    items += chosen.tolist()
  inter = Interactions.from_pairs(users, items, n_users=n_users, n_items=n_items)
  return split.random_split(inter, seed=seed)


# --- the kernel -------------------------------------------------------------------------


def test_ntk_matches_empirical_ntk_of_a_wide_network():
  """The closed form against J J^T of a finite Dense(n) -> ReLU -> Dense(1) network in the
  'ntk' parameterisation, width 20,000 (relative Monte Carlo error about 1-2%)."""
  d, width = 7, 20_000
  x = jnp.asarray(_rows((4, d), seed=1, p=0.5)).at[3].set(0.3)  # a soft row too
  w, b = dcf.W_STD, dcf.B_STD

  def net(p, x):
    h = w * (x @ p["w1"]) / math.sqrt(d) + b * p["b1"]
    return (w * jax.nn.relu(h) @ p["w2"] / math.sqrt(width) + b * p["b2"])[:, 0]

  k = jax.random.split(jax.random.key(1), 4)
  params = {"w1": jax.random.normal(k[0], (d, width)), "b1": jax.random.normal(k[1], (width,)),
            "w2": jax.random.normal(k[2], (width, 1)), "b2": jax.random.normal(k[3], (1,))}
  jac = jax.jit(jax.jacrev(net))(params, x)
  jac_4xP = jnp.concatenate([v.reshape(4, -1) for v in jax.tree_util.tree_leaves(jac)], 1)
  empirical = np.asarray(jac_4xP @ jac_4xP.T)
  closed = np.asarray(dcf.ntk(x, x))
  np.testing.assert_allclose(empirical, closed, rtol=0.05)
  # On the diagonal t = 0: NTK(x, x) = w2 k1(x, x) + b2.
  k1 = w ** 2 * np.sum(np.asarray(x) ** 2, axis=1) / d + b ** 2
  np.testing.assert_allclose(np.diag(closed), w ** 2 * k1 + b ** 2, rtol=1e-5)
  np.testing.assert_allclose(dcf.ntk_f64(x, x), closed, rtol=1e-5)


def test_krr_solve_matches_numpy_solve():
  xs = _rows((6, 9), seed=2) * 0.7 + 0.1
  lam = 0.1
  k = dcf.ntk_f64(xs, xs)
  ridge = lam * np.trace(k) / 6
  want = np.linalg.solve(k + ridge * np.eye(6), xs.astype(np.float64))
  np.testing.assert_allclose(dcf.krr_alpha(jnp.asarray(xs), lam), want, rtol=2e-3, atol=1e-4)
  np.testing.assert_allclose(dcf.fit_inf_ae(xs, lam)["alpha"], want, rtol=1e-5, atol=1e-6)
  x = _rows((3, 9), seed=3)
  np.testing.assert_allclose(dcf.krr_predict(jnp.asarray(x), jnp.asarray(xs), lam),
                             dcf.ntk_f64(x, xs) @ want, rtol=2e-3, atol=1e-4)


def test_fit_ease_dense_matches_ease_fit_on_binary_rows():
  x = _rows((30, 10), seed=4, p=0.3)
  users, items = np.nonzero(x)
  inter = Interactions.from_pairs(users, items, n_users=30, n_items=10)
  np.testing.assert_allclose(dcf.fit_ease_dense(x, 5.0), ease.fit(inter, l2=5.0)["b"],
                             rtol=1e-4, atol=1e-6)


# --- multi-Gumbel sampling --------------------------------------------------------------


def test_gumbel_noise_statistics():
  g = np.asarray(dcf.gumbel(jax.random.key(0), (400, 501)), np.float64).ravel()
  assert abs(g.mean() - np.euler_gamma) < 0.01
  assert abs(g.std() - math.pi / math.sqrt(6)) < 0.01
  grid = np.linspace(-2, 6, 41)
  ecdf = np.searchsorted(np.sort(g), grid) / g.size
  assert np.abs(ecdf - np.exp(-np.exp(-grid))).max() < 0.005  # KS-type distance
  other = np.asarray(dcf.gumbel(jax.random.key(1), (400, 501))).ravel()
  assert abs(np.corrcoef(g, other)[0, 1]) < 0.01


def test_multi_gumbel_is_gumbel_max_at_low_temperature():
  """At tau -> 0 each draw is one-hot at argmax(logits + g): frequencies -> softmax(logits)."""
  logits = jnp.log(jnp.array([[0.5, 0.3, 0.15, 0.05], [0.25, 0.25, 0.25, 0.25]]))
  n = 2000
  total = dcf.gumbel_softmax_sum(logits, jax.random.key(0), n, 0.01)
  np.testing.assert_allclose(total.sum(axis=1), n, rtol=1e-5)  # each draw sums to 1
  freq = np.asarray(total) / n
  p = np.asarray(jax.nn.softmax(logits))
  assert np.all(np.abs(freq - p) < 4 * np.sqrt(p * (1 - p) / n))
  users = dcf.sample_users(logits, jax.random.key(0), n_samples=n, tau=0.01)
  assert float(users.min()) >= 0 and float(users.max()) == 1.0  # hard tanh clips at 1


def test_gumbel_sum_gradient_kept_and_redrawn_agree():
  logits = jnp.asarray(np.random.default_rng(5).normal(size=(3, 7)), jnp.float32)
  g = jnp.asarray(np.random.default_rng(6).normal(size=(3, 7)), jnp.float32)
  grads = [jax.grad(lambda lg: jnp.sum(g * dcf.gumbel_softmax_sum(lg, jax.random.key(2), 5, 0.5,
                                                                    remat)))(logits)
           for remat in (False, True)]
  np.testing.assert_allclose(grads[0], grads[1], rtol=1e-5, atol=1e-7)


# --- the outer problem ------------------------------------------------------------------


def test_outer_gradient_matches_finite_differences():
  with jax.enable_x64(True):
    rng = np.random.default_rng(0)
    logits = jnp.asarray(rng.normal(size=(3, 6)))
    target = jnp.asarray(rng.random((5, 6)) < 0.4, jnp.float64)

    def loss(lg):
      return dcf.outer_loss(lg, target, jax.random.key(3), 0.1, n_samples=4, tau=0.7,
                            budget_reg=0.1, mean_degree=2.0)[0]

    grad = np.asarray(jax.jit(jax.grad(loss))(logits))
    eps = 1e-6
    e_Px3x6 = eps * jnp.eye(18).reshape(18, 3, 6)
    both = jax.jit(jax.vmap(loss))(jnp.concatenate([logits + e_Px3x6, logits - e_Px3x6]))
    fd = np.asarray((both[:18] - both[18:]) / (2 * eps)).reshape(3, 6)
    np.testing.assert_allclose(grad, fd, rtol=1e-5, atol=1e-8)
    assert np.abs(fd).max() > 1e-3


def test_outer_steps_lower_the_loss():
  data = _two_tastes()
  target = jnp.asarray(dcf.dense_rows(data.train))
  cfg = dcf.DistillConfig(n_users=4, n_samples=8, tau=1.0, lr=0.1)
  init, step = dcf.make_step(cfg, data.train.nnz / data.train.n_users)
  state = init(np.random.default_rng(0).normal(size=(4, 24)) * 0.1)
  losses = []
  for i in range(40):
    state, meas = step(state, target, jax.random.key(i), jnp.float32(1.0))
    losses.append(float(meas["loss"]))
  assert np.isfinite(losses).all()
  assert np.mean(losses[-5:]) < np.mean(losses[:5]) - 0.1


def test_distill_runs_and_is_deterministic():
  data = _two_tastes()
  cfg = dcf.DistillConfig(n_users=4, n_samples=8, tau=1.0, lr=0.1, steps=6, validate_at=(3,),
                          validate_every=6, patience=100, seed=7)
  runs = [dcf.distill(data, cfg) for _ in range(2)]
  np.testing.assert_array_equal(runs[0]["users"], runs[1]["users"])
  assert runs[0]["users"].shape == (4, 24)
  assert [row["step"] for row in runs[0]["history"]] == [0, 3, 6]
  other = dcf.distill(data, dataclasses.replace(cfg, seed=8, steps=3))
  assert not np.array_equal(other["start_rows"], runs[0]["start_rows"])


# --- evaluation ---------------------------------------------------------------------------


def test_dcf_metrics_definitions():
  """Hand-checked HR (hits / min(k, |test|)) and nDCG, and nDCG equal to RecBole's."""
  data = _two_tastes(n_users=12, n_items=16, per_user=8)
  scores_I = jnp.arange(16, dtype=jnp.float32)[::-1]  # every user ranks items 0, 1, 2, ...

  def score(params, users_B, history_BxI):
    del params, users_B
    return jnp.broadcast_to(scores_I, history_BxI.shape)

  parts = {"history": data.train, "exclude": [data.train], "target": data.test}
  got = dcf.dcf_metrics(score, {}, **parts, ks=(1, 3))
  hr, nd = [], []
  for u in range(12):
    seen = set(data.train.items_of(u))
    ranked = [i for i in range(16) if i not in seen][:3]
    test = set(data.test.items_of(u))
    if not test:
      continue
    hits = [i in test for i in ranked]
    hr.append(sum(hits) / min(3, len(test)))
    dcg = sum(h / math.log2(r + 2) for r, h in enumerate(hits))
    nd.append(dcg / sum(1 / math.log2(r + 2) for r in range(min(3, len(test)))))
  assert got["hr@3"] == pytest.approx(np.mean(hr))
  assert got["ndcg@3"] == pytest.approx(np.mean(nd))
  recbole = evaluate_lib.evaluate(score, {}, **parts, ks=(1, 3))
  assert got["ndcg@3"] == pytest.approx(recbole["ndcg@3"], rel=1e-6)
  assert got["hr@1"] == pytest.approx(recbole["hit@1"], rel=1e-6)  # k = 1: the same


def test_evaluate_support_picks_from_the_grids():
  data = _two_tastes()
  grids = {"inf_ae": (1e-3, 1.0), "ease": (1.0, 100.0)}
  out = dcf.evaluate_support(dcf.dense_rows(data.train), data, grids=grids)
  for name in ("inf_ae", "ease"):
    assert out[name]["test"]["ndcg@10"] == pytest.approx(
        out[name]["test_recbole"]["ndcg@10"], rel=1e-5)
    assert out[name]["hparam"] in grids[name]
    assert set(out[name]["grid"]) == {f"{v:g}" for v in grids[name]}
    assert out[name]["test"]["hr@10"] > 0.5  # two clean tastes: easy
