"""Tests for jaxcond.models.evaluate against a plain-numpy reference and hand-computed values."""

import math
import os

os.environ.setdefault("JAX_PLATFORMS", "cpu")

import jax.numpy as jnp
import numpy as np
import pytest

from jaxcond.data.interactions import Interactions
from jaxcond.models import evaluate as evaluate_lib
from jaxcond.models.evaluate import evaluate

# --- scorers (module level: hashable and stable, so compiled steps are reused) ---

def mf_score(params, users_B, history_BxI):
  del history_BxI
  return params["user_UxD"][users_B] @ params["item_IxD"].T


def table_score(scores_UxI, users_B, history_BxI):
  del history_BxI
  return scores_UxI[users_B]


def history_score(weights_IxI, users_B, history_BxI):
  del users_B
  return history_BxI @ weights_IxI


# --- numpy reference --------------------------------------------------------

def reference_metrics(scores_UxI, exclude, target, ks):
  """Per-user loops: stable argsort of -score, set intersection, RecBole formulas."""
  sums = {f"{m}@{k}": 0.0 for m in evaluate_lib.METRICS for k in ks}
  n_users = 0
  for u in range(target.n_users):
    target_items = set(target.items_of(u).tolist())
    if not target_items:
      continue
    n_users += 1
    scores_I = np.asarray(scores_UxI[u], dtype=np.float64).copy()
    for ex in exclude:
      scores_I[ex.items_of(u)] = -np.inf
    ranking_I = np.argsort(-scores_I, kind="stable")
    for k in ks:
      is_hit = [int(i) in target_items for i in ranking_I[:k]]
      n_hit = sum(is_hit)
      dcg = sum(1.0 / math.log2(r + 2) for r, h in enumerate(is_hit) if h)
      idcg = sum(1.0 / math.log2(r + 2) for r in range(min(len(target_items), k)))
      sums[f"recall@{k}"] += n_hit / len(target_items)
      sums[f"precision@{k}"] += n_hit / k
      sums[f"hit@{k}"] += float(n_hit > 0)
      sums[f"ndcg@{k}"] += dcg / idcg
  result = {key: value / n_users for key, value in sums.items()}
  result["n_users"] = n_users
  return result


def assert_metrics_equal(actual, expected):
  assert actual.keys() == expected.keys()
  assert actual["n_users"] == expected["n_users"]
  for key in expected:
    np.testing.assert_allclose(actual[key], expected[key], rtol=1e-6, atol=1e-7, err_msg=key)


# --- data -------------------------------------------------------------------

def from_dense(mask_UxI):
  users_N, items_N = np.nonzero(mask_UxI)
  return Interactions.from_pairs(users_N, items_N, n_users=mask_UxI.shape[0],
                                 n_items=mask_UxI.shape[1])


def random_split(rng, n_users, n_items):
  """Disjoint train / valid / test; about a fifth of the users have no test item."""
  kind_UxI = rng.choice(4, size=(n_users, n_items), p=[0.82, 0.1, 0.04, 0.04])
  no_test_U = rng.random(n_users) < 0.2
  kind_UxI[no_test_U] = np.where(kind_UxI[no_test_U] == 3, 0, kind_UxI[no_test_U])
  train, valid, test = (from_dense(kind_UxI == c) for c in (1, 2, 3))
  assert np.sum(np.diff(test.indptr) == 0) >= 3
  return train, valid, test


def exact_embeddings(rng, n, dim):
  """Multiples of 1/16: dot products are exact in float32, so rankings match numpy."""
  return rng.integers(-32, 33, size=(n, dim)).astype(np.float32) / 16


# --- tests ------------------------------------------------------------------

@pytest.mark.parametrize("block_users", [7, 16, 1000])
def test_matches_numpy_reference(block_users):
  rng = np.random.default_rng(0)
  n_users, n_items, ks = 53, 157, (1, 5, 10, 20)
  train, valid, test = random_split(rng, n_users, n_items)
  params = {"user_UxD": exact_embeddings(rng, n_users, 8),
            "item_IxD": exact_embeddings(rng, n_items, 8)}
  scores_UxI = params["user_UxD"] @ params["item_IxD"].T
  for exclude, target in [([train], valid), ([train, valid], test)]:
    actual = evaluate(mf_score, params, history=train, exclude=exclude, target=target, ks=ks,
                      block_users=block_users)
    assert_metrics_equal(actual, reference_metrics(scores_UxI, exclude, target, ks))


def test_ties_break_to_lower_item_index():
  rng = np.random.default_rng(1)
  n_users, n_items, ks = 40, 31, (1, 3, 7)
  train, _, test = random_split(rng, n_users, n_items)
  scores_UxI = rng.integers(0, 3, size=(n_users, n_items)).astype(np.float32)  # Many ties.
  actual = evaluate(table_score, scores_UxI, history=train, exclude=[train], target=test,
                    ks=ks, block_users=16)
  assert_metrics_equal(actual, reference_metrics(scores_UxI, [train], test, ks))


def test_hand_computed():
  # User 0 ranks 0 > 1 > ... > 5 and user 2 ranks 5 > 4 > ... > 0; user 1 has no target.
  scores_UxI = np.array([[0.9, 0.8, 0.7, 0.6, 0.5, 0.4],
                         [0.1, 0.2, 0.3, 0.4, 0.5, 0.6],
                         [0.1, 0.2, 0.3, 0.4, 0.5, 0.6]], dtype=np.float32)
  shape = {"n_users": 3, "n_items": 6}
  exclude_a = Interactions.from_pairs([0, 1, 2], [0, 4, 5], **shape)
  exclude_b = Interactions.from_pairs([2], [3], **shape)
  target = Interactions.from_pairs([0, 0, 2], [2, 5, 4], **shape)
  # User 0 ranks 1, 2, 3, 4, 5 | 0: hits at ranks 1 and 4 (0-based).
  # User 2 ranks 4, 2, 1, 0 | 3, 5: a hit at rank 0. K = 8 > 6 items keeps all 6.
  g1, g4 = 1 / math.log2(3), 1 / math.log2(6)
  expected = {
      "recall@1": (0 + 1) / 2, "recall@3": (1 / 2 + 1) / 2, "recall@8": (1 + 1) / 2,
      "ndcg@1": (0 + 1) / 2, "ndcg@3": (g1 / (1 + g1) + 1) / 2,
      "ndcg@8": ((g1 + g4) / (1 + g1) + 1) / 2,
      "hit@1": (0 + 1) / 2, "hit@3": (1 + 1) / 2, "hit@8": (1 + 1) / 2,
      "precision@1": (0 + 1) / 2, "precision@3": (1 / 3 + 1 / 3) / 2,
      "precision@8": (2 / 8 + 1 / 8) / 2,
      "n_users": 2,
  }
  for block_users in (1, 2, 4):
    actual = evaluate(table_score, scores_UxI, history=exclude_a,
                      exclude=[exclude_a, exclude_b], target=target, ks=(1, 3, 8),
                      block_users=block_users)
    assert_metrics_equal(actual, expected)


def test_excluded_items_never_ranked():
  n_users, n_items, n_excluded = 9, 50, 5
  # Large negative scores: masking must push below any finite score.
  scores_UxI = np.tile((np.arange(n_items, dtype=np.float32) - n_items) * 1e6, (n_users, 1))
  best_U = np.repeat(np.arange(n_users), n_excluded)
  best_items = np.tile(np.arange(n_items - n_excluded, n_items), n_users)
  excluded = Interactions.from_pairs(best_U, best_items, n_users=n_users, n_items=n_items)
  # Targets: the excluded (top-scored) items and the best item left, n_items - 6.
  target = Interactions.from_pairs(
      np.concatenate([best_U, np.arange(n_users)]),
      np.concatenate([best_items, np.full(n_users, n_items - n_excluded - 1)]),
      n_users=n_users, n_items=n_items)
  ks = (1, 5, 10, n_items - n_excluded)
  kwargs = {"history": excluded, "target": target, "ks": ks, "block_users": 4}
  masked = evaluate(table_score, scores_UxI, exclude=[excluded], **kwargs)
  for k in ks:
    assert masked[f"recall@{k}"] == pytest.approx(1 / 6, rel=1e-6)  # Only the item left.
    assert masked[f"hit@{k}"] == 1.0
  assert masked["ndcg@1"] == 1.0
  unmasked = evaluate(table_score, scores_UxI, exclude=[], **kwargs)
  assert unmasked["recall@5"] == pytest.approx(5 / 6, rel=1e-6)
  assert unmasked["precision@5"] == 1.0


def test_history_scorer_matches_dense_reference():
  rng = np.random.default_rng(2)
  n_users, n_items, ks = 45, 37, (2, 5, 10)
  train, valid, test = random_split(rng, n_users, n_items)
  weights_IxI = rng.integers(-4, 5, size=(n_items, n_items)).astype(np.float32)
  history_UxI = train.to_csr().toarray()
  scores_UxI = history_UxI @ weights_IxI  # Integers: exact in float32.
  actual = evaluate(history_score, jnp.asarray(weights_IxI), history=train,
                    exclude=[train, valid], target=test, ks=ks, block_users=8)
  assert_metrics_equal(actual, reference_metrics(scores_UxI, [train, valid], test, ks))


def test_users_without_target_are_not_averaged():
  n_users, n_items = 10, 12
  target_users = np.array([1, 4, 5, 9])
  # The top-scored item (item 0) is every target user's only target: all metrics @1 are 1.
  scores_UxI = np.tile(-np.arange(n_items, dtype=np.float32), (n_users, 1))
  target = Interactions.from_pairs(target_users, np.zeros(4), n_users=n_users, n_items=n_items)
  history = Interactions.from_pairs(np.arange(n_users), np.full(n_users, 7), n_users=n_users,
                                    n_items=n_items)
  result = evaluate(table_score, scores_UxI, history=history, exclude=[history], target=target,
                    ks=(1,), block_users=3)
  assert result == {"recall@1": 1.0, "ndcg@1": 1.0, "hit@1": 1.0, "precision@1": 1.0,
                    "n_users": 4}
  empty = Interactions.from_pairs([], [], n_users=n_users, n_items=n_items)
  result = evaluate(table_score, scores_UxI, history=history, exclude=[], target=empty, ks=(1,))
  assert result["n_users"] == 0


def test_repeated_calls_reuse_the_compiled_step():
  rng = np.random.default_rng(3)
  train, valid, test = random_split(rng, 30, 20)
  params = {"user_UxD": exact_embeddings(rng, 30, 4), "item_IxD": exact_embeddings(rng, 20, 4)}
  kwargs = {"history": train, "exclude": [train, valid], "target": test, "block_users": 8}
  first = evaluate(mf_score, params, **kwargs)
  n_compiled = evaluate_lib._block_metrics._cache_size()
  params = {k: v + 1 for k, v in params.items()}  # New values, same shapes: no recompile.
  evaluate(mf_score, params, **kwargs)
  assert evaluate_lib._block_metrics._cache_size() == n_compiled
  assert first["n_users"] == np.sum(np.diff(test.indptr) > 0)


def test_mismatched_shapes_raise():
  a = Interactions.from_pairs([0], [0], n_users=2, n_items=3)
  b = Interactions.from_pairs([0], [0], n_users=2, n_items=4)
  with pytest.raises(ValueError, match="exclude"):
    evaluate(table_score, np.zeros((2, 3), np.float32), history=a, exclude=[b], target=a)
  with pytest.raises(ValueError, match="ks"):
    evaluate(table_score, np.zeros((2, 3), np.float32), history=a, exclude=[], target=a, ks=(0,))


@pytest.mark.parametrize("block_users", [7, 1000])
def test_groups_and_items_match_numpy_reference(block_users):
  rng = np.random.default_rng(5)
  n_users, n_items, ks = 41, 97, (5, 10)
  train, valid, test = random_split(rng, n_users, n_items)
  params = {"user_UxD": exact_embeddings(rng, n_users, 8),
            "item_IxD": exact_embeddings(rng, n_items, 8)}
  scores_UxI = params["user_UxD"] @ params["item_IxD"].T
  tail_U = rng.random(n_users) < 0.3
  popularity_I = train.item_degrees().astype(np.float64)
  actual = evaluate(mf_score, params, history=train, exclude=[train, valid], target=test,
                    ks=ks, block_users=block_users, groups={"tail": tail_U, "head": ~tail_U},
                    popularity_I=popularity_I)
  for name, member in (("tail", tail_U), ("head", ~tail_U)):
    only = test.subset(member[test.users()])
    assert_metrics_equal(actual["groups"][name],
                         reference_metrics(scores_UxI, [train, valid], only, ks))
  recommended = []
  for u in np.flatnonzero(np.diff(test.indptr) > 0):
    s = scores_UxI[u].astype(np.float64)
    s[train.items_of(u)] = -np.inf
    s[valid.items_of(u)] = -np.inf
    recommended.extend(np.argsort(-s, kind="stable")[:10].tolist())
  assert actual["items"]["coverage@10"] == pytest.approx(len(set(recommended)) / n_items)
  assert actual["items"]["popularity@10"] == pytest.approx(popularity_I[recommended].mean())
  rest = {k: v for k, v in actual.items() if k not in ("groups", "items")}
  assert_metrics_equal(rest, reference_metrics(scores_UxI, [train, valid], test, ks))


def test_group_of_wrong_shape_raises():
  rng = np.random.default_rng(6)
  train, valid, test = random_split(rng, 10, 20)
  params = {"user_UxD": exact_embeddings(rng, 10, 4), "item_IxD": exact_embeddings(rng, 20, 4)}
  with pytest.raises(ValueError, match="group 'tail' has shape"):
    evaluate(mf_score, params, history=train, exclude=[train], target=test,
             groups={"tail": np.ones(9, bool)})
