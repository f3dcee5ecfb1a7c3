"""REINFORCE estimates against the exact gradient, computed by enumerating all masks."""

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxcond.condense import reinforce

C = 10
MASKS_MxC = np.array(list(itertools.product([0.0, 1.0], repeat=C)))  # all 1024 masks


def exact_gradient(logits_C, reward_of_mask_M):
  """d/d logits of sum_m P(m) R(m), by enumeration: P(m) (m - p) summed with weights R."""
  p = 1 / (1 + np.exp(-logits_C))
  prob_M = np.prod(np.where(MASKS_MxC == 1, p, 1 - p), axis=1)
  return ((prob_M * reward_of_mask_M)[:, None] * (MASKS_MxC - p)).sum(0)


def mean_and_stderr(logits_C, reward_fn, baseline, group_C=None, n_steps=20000, k=4):
  probs = jax.nn.sigmoid(jnp.asarray(logits_C, jnp.float32))

  @jax.jit
  def one(key):
    masks = reinforce.sample_masks(key, probs, k)
    return reinforce.estimate(reward_fn(masks), masks, probs, group_C, baseline=baseline)

  keys = jax.random.split(jax.random.key(0), n_steps)
  est = np.asarray(jax.lax.map(one, keys, batch_size=1000), np.float64)
  return est.mean(0), est.std(0) / np.sqrt(n_steps)


@pytest.mark.parametrize("baseline", ["loo", "none"])
def test_unbiased_for_any_reward(baseline):
  rng = np.random.default_rng(1)
  logits = rng.normal(size=C)
  # An arbitrary reward: structure plus a random value per mask, far from zero mean.
  table = MASKS_MxC @ rng.normal(size=C) + 0.5 * rng.normal(size=2**C) + 3.0
  weights = 2 ** np.arange(C - 1, -1, -1)  # mask -> row of MASKS_MxC

  def reward(masks_KxC):
    return jnp.asarray(table, jnp.float32)[(masks_KxC @ weights).astype(jnp.int32)]

  mean, se = mean_and_stderr(logits, reward, baseline)
  exact = exact_gradient(logits, table)
  assert np.all(np.abs(mean - exact) < 4.5 * se), (mean, exact, se)
  assert np.max(np.abs(exact)) > 10 * np.max(se)  # the test can tell a wrong estimate


def test_baseline_reduces_variance():
  rng = np.random.default_rng(2)
  logits = rng.normal(size=C)
  table = rng.normal(size=2**C) + 3.0
  weights = 2 ** np.arange(C - 1, -1, -1)

  def reward(masks_KxC):
    return jnp.asarray(table, jnp.float32)[(masks_KxC @ weights).astype(jnp.int32)]

  _, se_loo = mean_and_stderr(logits, reward, "loo", n_steps=4000)
  _, se_none = mean_and_stderr(logits, reward, "none", n_steps=4000)
  assert np.all(se_loo < se_none)


def test_group_credit_unbiased_when_reward_separates():
  # Two parts: part 0 depends on candidates 0-5, part 1 on candidates 6-9 only.
  rng = np.random.default_rng(3)
  logits = rng.normal(size=C)
  group = np.array([0] * 6 + [1] * 4)
  w0 = rng.normal(size=6)
  w1 = rng.normal(size=4)

  def parts(masks):
    masks = jnp.asarray(masks, jnp.float32)
    return jnp.stack([jnp.sin(masks[:, :6] @ w0) + 2.0, (masks[:, 6:] @ w1) ** 2], axis=1)

  table = np.asarray(parts(MASKS_MxC)).sum(1)
  exact = exact_gradient(logits, table)
  for baseline in ("loo", "none"):
    mean, se = mean_and_stderr(logits, parts, baseline, group_C=jnp.asarray(group))
    assert np.all(np.abs(mean - exact) < 4.5 * se), (baseline, mean, exact, se)
  # Credit per part removes the other part's noise from each estimate.
  _, se_whole = mean_and_stderr(logits, lambda m: parts(m).sum(1), "loo")
  _, se_parts = mean_and_stderr(logits, parts, "loo", group_C=jnp.asarray(group))
  assert np.all(se_parts < se_whole)


def test_group_credit_when_parts_do_not_separate_is_each_parts_own_gradient():
  # The retrain loop's case (benchmarks/studies/retrain_loop.py): a user's reward depends on
  # every pair, through the item table. Credit per part then estimates, for candidate c,
  # d E[part g(c)] / d logit_c exactly, and misses sum over g != g(c) of d E[part g] /
  # d logit_c: that is its bias against the whole reward's gradient.
  rng = np.random.default_rng(4)
  logits = rng.normal(size=C)
  group = np.array([0] * 5 + [1] * 5)
  w_own, w_cross = rng.normal(size=(2, C))

  def parts(masks):
    masks = jnp.asarray(masks, jnp.float32)
    own = masks * jnp.asarray(w_own, jnp.float32)
    cross = masks * jnp.asarray(w_cross, jnp.float32)
    return jnp.stack([jnp.tanh(own[:, :5].sum(1)) + 0.8 * cross[:, 5:].sum(1),
                      own[:, 5:].sum(1) ** 2 / 4 + 0.8 * jnp.sin(cross[:, :5].sum(1))], axis=1)

  table_Mx2 = np.asarray(parts(MASKS_MxC))
  own_exact = np.where(group == 0, exact_gradient(logits, table_Mx2[:, 0]),
                       exact_gradient(logits, table_Mx2[:, 1]))
  whole_exact = exact_gradient(logits, table_Mx2.sum(1))
  mean, se = mean_and_stderr(logits, parts, "loo", group_C=jnp.asarray(group))
  assert np.all(np.abs(mean - own_exact) < 4.5 * se), (mean, own_exact, se)
  assert np.max(np.abs(own_exact - whole_exact)) > 20 * np.max(se)  # the bias is real


def test_credit_through_feature_logits_is_the_gradient_of_theta():
  # The retrain loop's --logits=features: logits = base + X theta. The pair estimate pulled
  # back by jax.vjp must be unbiased for d E[R] / d theta, here taken by central differences
  # of the enumerated expectation (no chain rule in the reference).
  rng = np.random.default_rng(5)
  base_C, x_CxF, theta_F = rng.normal(size=C), rng.normal(size=(C, 3)), rng.normal(size=3)
  table = MASKS_MxC @ rng.normal(size=C) + 0.5 * rng.normal(size=2**C) + 3.0
  weights = 2 ** np.arange(C - 1, -1, -1)

  def expected(theta):
    p = 1 / (1 + np.exp(-(base_C + x_CxF @ theta)))
    return (np.prod(np.where(MASKS_MxC == 1, p, 1 - p), axis=1) * table).sum()

  exact_F = np.array([(expected(theta_F + e) - expected(theta_F - e)) / 2e-5
                      for e in 1e-5 * np.eye(3)])
  base, x = jnp.asarray(base_C, jnp.float32), jnp.asarray(x_CxF, jnp.float32)

  def logits_of(theta):
    return base + x @ theta

  theta = jnp.asarray(theta_F, jnp.float32)
  probs = jax.nn.sigmoid(logits_of(theta))

  @jax.jit
  def one(key):
    masks = reinforce.sample_masks(key, probs, 4)
    reward = jnp.asarray(table, jnp.float32)[(masks @ weights).astype(jnp.int32)]
    return jax.vjp(logits_of, theta)[1](reinforce.estimate(reward, masks, probs))[0]

  est = np.asarray(jax.lax.map(one, jax.random.split(jax.random.key(0), 20000),
                               batch_size=1000), np.float64)
  mean, se = est.mean(0), est.std(0) / np.sqrt(est.shape[0])
  assert np.all(np.abs(mean - exact_F) < 4.5 * se), (mean, exact_F, se)
  assert np.max(np.abs(exact_F)) > 10 * np.max(se)

def test_loo_needs_two_samples():
  with pytest.raises(ValueError, match="at least 2"):
    reinforce.estimate(jnp.ones(1), jnp.ones((1, 3)), jnp.full(3, 0.5))
