import itertools

import numpy as np
import pytest

from jaxcond.data.interactions import DataError, Interactions
from jaxcond.data.split import random_split
from jaxcond.judging import false_negatives as fn
from jaxcond.models import ModelConfig
from jaxcond.models.train import TrainConfig


def _pairs(rows, n_items):
  users = np.concatenate([[u] * len(r) for u, r in enumerate(rows)]).astype(int)
  items = np.concatenate([list(r) for r in rows]).astype(int)
  return Interactions.from_pairs(users, items, n_users=len(rows), n_items=n_items)


def test_hide_positives_counts_and_partition():
  rng = np.random.default_rng(0)
  rows = [rng.choice(50, d, replace=False) for d in (1, 2, 5, 14, 26)]
  train = _pairs(rows, 50)
  kept, hidden = fn.hide_positives(train, 0.1, seed=3)
  np.testing.assert_array_equal(hidden.user_degrees(), [0, 0, 1, 1, 3])
  assert kept.nnz + hidden.nnz == train.nnz
  assert kept.union(hidden).nnz == train.nnz
  again, _ = fn.hide_positives(train, 0.1, seed=3)
  np.testing.assert_array_equal(again.indices, kept.indices)
  with pytest.raises(DataError, match="hides nothing"):
    fn.hide_positives(_pairs([[0], [1]], 3), 0.1, seed=0)


def test_recovery_and_popularity_hand_case():
  kept = _pairs([[0, 1], [0], [2]], 5)  # item degrees: 2, 1, 1, 0, 0
  hidden = _pairs([[3], [1, 4], []], 5)
  flagged = fn.popular_unseen(kept, np.array([1, 2, 1]))
  assert list(zip(flagged.users().tolist(), flagged.indices.tolist())) == [
      (0, 2), (1, 1), (1, 2), (2, 0)]
  rec = fn.recovery(flagged, hidden)
  assert (rec["hits"], rec["flagged"], rec["hidden"]) == (1, 4, 3)
  assert rec["precision"] == pytest.approx(0.25) and rec["recall"] == pytest.approx(1 / 3)


def test_random_expectation_equals_enumeration():
  kept = _pairs([[0, 1], [4]], 6)
  hidden = _pairs([[2, 5], [0]], 6)
  k_U = np.array([2, 3])
  hits = 0.0
  for u in range(2):
    unseen = [i for i in range(6) if i not in kept.items_of(u)]
    subsets = list(itertools.combinations(unseen, k_U[u]))
    hits += np.mean([len(set(s) & set(hidden.items_of(u).tolist())) for s in subsets])
  got = fn.random_expected(kept, hidden, k_U)
  assert got["hits"] == pytest.approx(hits)
  assert got["precision"] == pytest.approx(hits / 5) and got["recall"] == pytest.approx(hits / 3)


def test_proxy_recovers_planted_taste_better_than_random():
  rng = np.random.default_rng(1)
  taste = rng.integers(0, 4, 120)
  rows = [rng.choice(np.arange(taste[u] * 20, taste[u] * 20 + 20), 10, replace=False)
          for u in range(120)]
  data = random_split(_pairs(rows, 80), seed=0)
  rep = fn.measure(data, rho=0.5, model_cfg=ModelConfig(dim=8),
                   train_cfg=TrainConfig(lr=0.02, batch_size=256, max_epochs=40, min_epochs=20))
  r = rep["rankings"]
  assert r["proxy"]["flagged"] == r["random"]["flagged"] == r["popularity"]["flagged"]
  assert r["proxy"]["precision_over_random"] > 2
