import jax
import numpy as np

from jaxcond.models import ModelConfig, mf


def test_init_is_xavier_normal():
  p = mf.init(jax.random.key(0), 5000, 3000, ModelConfig(dim=64))
  assert p["user"].shape == (5000, 64) and p["item"].shape == (3000, 64)
  np.testing.assert_allclose(np.std(p["user"]), np.sqrt(2 / (5000 + 64)), rtol=0.02)
  np.testing.assert_allclose(np.std(p["item"]), np.sqrt(2 / (3000 + 64)), rtol=0.02)
  # Normal, not uniform of the same variance: uniform never exceeds sqrt(6 / (n + d)),
  # and its excess kurtosis is -1.2 where the normal's is 0.
  u = np.asarray(p["user"]).ravel() / np.sqrt(2 / (5000 + 64))
  assert np.abs(u).max() > np.sqrt(3.0)
  assert abs(np.mean(u**4) - 3.0) < 0.1


def test_score_is_inner_product():
  rng = np.random.default_rng(0)
  u, i = rng.normal(size=(7, 4)).astype(np.float32), rng.normal(size=(9, 4)).astype(np.float32)
  users = np.array([3, 0, 6])
  got = mf.score((u, i), users, None)
  np.testing.assert_allclose(got, u[users] @ i.T, rtol=1e-5, atol=1e-6)
