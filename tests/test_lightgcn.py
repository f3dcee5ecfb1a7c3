import jax
import numpy as np
import pytest

from jaxcond.data.interactions import Interactions
from jaxcond.models import ModelConfig, lightgcn
from jaxcond.models.graph import build_graph


def _reference(inter, user, item, n_layers):
  """Propagation over the (U+I) x (U+I) bipartite matrix D^-1/2 A D^-1/2, in numpy."""
  r = inter.to_csr().toarray().astype(np.float64)
  n_u, n_i = r.shape
  a = np.block([[np.zeros((n_u, n_u)), r], [r.T, np.zeros((n_i, n_i))]])
  d = a.sum(1)
  d_inv = np.where(d > 0, 1 / np.sqrt(np.maximum(d, 1)), 0)
  norm = d_inv[:, None] * a * d_inv[None, :]
  e = np.concatenate([user, item]).astype(np.float64)
  total = e.copy()
  for _ in range(n_layers):
    e = norm @ e
    total += e
  total /= n_layers + 1
  return total[:n_u], total[n_u:]


@pytest.mark.parametrize("dense_limit", [0, 10**9])
@pytest.mark.parametrize("n_layers", [1, 3])
def test_propagation_matches_reference(dense_limit, n_layers):
  rng = np.random.default_rng(n_layers)
  users, items = rng.integers(0, 12, 60), rng.integers(0, 9, 60)
  inter = Interactions.from_pairs(*zip(*sorted(set(zip(users, items)))), n_users=13, n_items=10)
  graph = build_graph(inter, dense_limit=dense_limit)
  assert (graph.adj_UxI.size > 0) == (dense_limit > 0)
  hp = ModelConfig(dim=5, n_layers=n_layers)
  params = lightgcn.init(jax.random.key(0), 13, 10, hp)
  got_u, got_i = lightgcn.represent(params, graph, hp)
  want_u, want_i = _reference(inter, np.asarray(params["user"]), np.asarray(params["item"]),
                              n_layers)
  np.testing.assert_allclose(got_u, want_u, rtol=1e-5, atol=1e-6)
  np.testing.assert_allclose(got_i, want_i, rtol=1e-5, atol=1e-6)
