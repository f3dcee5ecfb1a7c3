import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxcond.condense import budget


@pytest.mark.parametrize("n,target,scale", [(10, 2.5, 1.0), (1000, 250.0, 5.0),
                                              (200_000, 50_000.0, 3.0), (50, 0.5, 20.0),
                                              (50, 49.0, 0.1)])
def test_shift_meets_budget(n, target, scale):
  logits = jnp.asarray(np.random.default_rng(n).normal(size=n) * scale, jnp.float32)
  shifted = jax.jit(budget.project_to_budget)(logits, target)
  size = float(np.sum(1 / (1 + np.exp(-np.asarray(shifted, np.float64)))))
  assert abs(size - target) <= 1e-3 * target
  # A shift keeps the order of the logits.
  np.testing.assert_allclose(np.asarray(logits - shifted), float(logits[0] - shifted[0]),
                             rtol=0, atol=1e-3)


def test_shift_by_hand():
  # Two equal logits and a budget of 1: each keep probability must be 1/2, so tau = logit.
  tau = budget.budget_shift(jnp.asarray([3.0, 3.0]), 1.0)
  assert abs(float(tau) - 3.0) < 1e-4


def test_top_k_mask():
  keep = budget.top_k_mask(np.array([0.1, 0.9, 0.5, 0.9, 0.2]), 3)
  np.testing.assert_array_equal(keep, [False, True, True, True, False])
  # Of the tied 0.9s, only the one with the lower tie-break value fits in k = 1.
  keep = budget.top_k_mask(np.array([0.1, 0.9, 0.5, 0.9]), 1, tiebreak_C=np.array([0, 5, 1, 2]))
  np.testing.assert_array_equal(keep, [False, False, False, True])
  with pytest.raises(ValueError, match="cannot select 6 of 5"):
    budget.top_k_mask(np.zeros(5), 6)
