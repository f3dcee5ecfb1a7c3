import numpy as np
import pytest

from jaxcond.data.interactions import DataError, Interactions
from jaxcond.models import ease


def test_closed_form_solves_its_objective():
  """B minimises ||X - XB||^2 + l2 ||B||^2 subject to diag(B) = 0: check the KKT system."""
  rng = np.random.default_rng(0)
  x = (rng.random((40, 12)) < 0.3).astype(np.float64)
  users, items = np.nonzero(x)
  inter = Interactions.from_pairs(users, items, n_users=40, n_items=12)
  l2 = 3.0
  b = ease.fit(inter, l2=l2)["b"].astype(np.float64)
  assert np.all(np.diag(b) == 0)
  # Stationarity off the diagonal: (X^T X + l2 I) B - X^T X vanishes except on the diagonal.
  g = x.T @ x
  resid = (g + l2 * np.eye(12)) @ b - g
  off = resid - np.diag(np.diag(resid))
  np.testing.assert_allclose(off, 0, atol=1e-4)
  # And the same B from an independent per-column least squares with column j removed.
  for j in range(12):
    others = [k for k in range(12) if k != j]
    a = g[np.ix_(others, others)] + l2 * np.eye(11)
    col = np.linalg.solve(a, g[others, j])
    np.testing.assert_allclose(b[others, j], col, rtol=1e-4, atol=1e-5)


def test_memory_bound_is_a_clear_error():
  inter = Interactions.from_pairs([0, 1], [0, 99_999], n_users=2, n_items=100_000)
  with pytest.raises(DataError, match="EASE needs about"):
    ease.fit(inter)
