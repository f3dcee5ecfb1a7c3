import numpy as np
import pytest

from jaxcond.condense import pool as pool_lib
from jaxcond.condense import proxy
from jaxcond.data.interactions import Interactions
from jaxcond.models import ModelConfig


def test_scores_of_is_the_inner_product():
  rng = np.random.default_rng(0)
  tables = {"user": rng.normal(size=(4, 3)), "item": rng.normal(size=(6, 3))}
  u, i = np.array([0, 3, 3, 1]), np.array([5, 0, 2, 2])
  np.testing.assert_allclose(proxy.scores_of(tables, u, i, block=3),
                             np.sum(tables["user"][u] * tables["item"][i], 1), rtol=1e-6)


def test_top_unseen_pairs_are_the_best_unseen_items():
  train = Interactions.from_pairs([0, 0, 1], [0, 3, 1], n_users=2, n_items=8)
  tables = {"user": np.array([[1.0], [-1.0]]), "item": np.arange(8.0)[:, None]}
  got = proxy.top_unseen_pairs(train, tables, rho=0.0, minimum=2)
  assert list(zip(got.users().tolist(), got.indices.tolist())) == [(0, 6), (0, 7), (1, 0),
                                                                   (1, 2)]


def test_prior_ranks_within_user_and_part():
  train = Interactions.from_pairs([0, 0, 0, 0, 1, 1], [0, 1, 2, 3, 0, 1], n_users=2, n_items=6)
  pool = pool_lib.build_pool(train, pseudo_users=[0, 0, 1], pseudo_items=[4, 5, 4])
  # pool order: user 0 originals 0..3, pseudo 4, 5; user 1 originals 0, 1, pseudo 4.
  scores = np.array([0.1, 0.9, 0.5, 0.3, 2.0, 1.0, 7.0, 8.0, -1.0], np.float32)
  got = proxy.prior_logits(pool, scores, scale=8.0)
  want = -8.0 * np.array([3.5, 0.5, 1.5, 2.5, 0.5, 1.5, 1.5, 0.5, 0.5]) / np.array(
      [4, 4, 4, 4, 2, 2, 2, 2, 1])
  np.testing.assert_allclose(got, want, rtol=1e-6)
  with pytest.raises(ValueError, match="prior scale"):
    proxy.prior_logits(pool, scores, scale=-1.0)


def test_tables_of_mf_are_its_params_and_ease_is_refused():
  rng = np.random.default_rng(1)
  train = Interactions.from_pairs([0, 1, 2], [0, 1, 1], n_users=3, n_items=2)
  params = {"user": rng.normal(size=(3, 4)).astype(np.float32),
            "item": rng.normal(size=(2, 4)).astype(np.float32)}
  t = proxy.tables("bpr_mf", params, train, ModelConfig(dim=4))
  np.testing.assert_array_equal(t["user"], params["user"])
  lgcn = proxy.tables("lightgcn", params, train, ModelConfig(dim=4, n_layers=1))
  assert lgcn["item"].shape == (2, 4) and not np.allclose(lgcn["item"], params["item"])
  with pytest.raises(ValueError, match="embedding model"):
    proxy.tables("ease", params, train, ModelConfig())


def test_the_proxy_of_several_fits_scores_by_their_mean():
  rng = np.random.default_rng(2)
  train = Interactions.from_pairs([0, 1, 2], [0, 1, 3], n_users=3, n_items=5)
  params = [{"user": rng.normal(size=(3, 4)).astype(np.float32),
             "item": rng.normal(size=(5, 4)).astype(np.float32)} for _ in range(3)]
  mean = proxy.tables_of_fits("bpr_mf", params, train, ModelConfig(dim=4))
  assert mean["user"].shape == (3, 12) and mean["item"].shape == (5, 12)
  want_UxI = np.mean([p["user"] @ p["item"].T for p in params], axis=0)  # plain numpy
  np.testing.assert_allclose(mean["user"] @ mean["item"].T, want_UxI, rtol=1e-5, atol=1e-6)
  u, i = np.repeat(np.arange(3), 5), np.tile(np.arange(5), 3)
  np.testing.assert_allclose(proxy.scores_of(mean, u, i), want_UxI.ravel(), rtol=1e-5,
                             atol=1e-6)
  one = proxy.tables_of_fits("bpr_mf", params[:1], train, ModelConfig(dim=4))
  np.testing.assert_array_equal(one["user"], params[0]["user"])
  with pytest.raises(ValueError, match="at least one"):
    proxy.mean_tables([])
