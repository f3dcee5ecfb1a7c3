import numpy as np

from jaxcond.data.interactions import Interactions
from jaxcond.models.graph import build_graph, positives_bitmap


def test_weights_are_symmetric_normalisation():
  inter = Interactions.from_pairs([0, 0, 1, 2, 2, 2], [0, 1, 1, 0, 1, 2], n_users=4, n_items=3)
  g = build_graph(inter)
  du, di = np.array([2, 1, 3, 0]), np.array([2, 3, 1])
  users, items = np.asarray(g.users_E), np.asarray(g.items_E)
  np.testing.assert_allclose(g.weight_E, 1 / np.sqrt(du[users] * di[items]), rtol=1e-6)
  dense = np.zeros((4, 3))
  dense[users, items] = 1 / np.sqrt(du[users] * di[items])
  np.testing.assert_allclose(g.adj_UxI, dense, rtol=1e-6)
  assert np.all(np.diff(np.asarray(g.items_E)[np.asarray(g.by_item_E)]) >= 0)
  small = build_graph(inter, dense_limit=0, bitmap_limit_bits=0)
  assert small.adj_UxI.size == 0 and small.pos_bits_UxW.size == 0


def test_bitmap_bits():
  inter = Interactions.from_pairs([0, 0, 1], [0, 33, 31], n_users=2, n_items=40)
  bits = positives_bitmap(inter)
  assert bits.shape == (2, 2)
  assert bits[0, 0] == 1 and bits[0, 1] == 2 and bits[1, 0] == 2**31 and bits[1, 1] == 0
