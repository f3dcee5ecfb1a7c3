import numpy as np
import pytest

from jaxcond.data import split
from jaxcond.data.interactions import TEST, TRAIN, DataError, Interactions


@pytest.mark.parametrize("n, want", [
    (1, [1, 0, 0]), (2, [1, 0, 1]), (3, [1, 1, 1]), (9, [7, 1, 1]), (10, [8, 1, 1]),
    (11, [9, 1, 1]), (20, [16, 2, 2]), (25, [21, 2, 2]), (100, [80, 10, 10]),
])
def test_recbole_counts(n, want):
  # Worked by hand from the rule: n = 3 starts as [3, 0, 0]; test's share 0.3 lies in
  # (0, 1) so it takes one ([2, 0, 1]), then valid does ([1, 1, 1]).
  assert split.recbole_counts(n) == want


def test_random_split_partitions_each_user():
  rng = np.random.default_rng(0)
  inter = Interactions.from_pairs(np.repeat(np.arange(50), np.arange(1, 51)),
                                  np.concatenate([rng.permutation(60)[:k] for k in range(1, 51)]))
  s = split.random_split(inter, seed=1)
  for u in range(50):
    parts = [set(p.items_of(u).tolist()) for p in (s.train, s.valid, s.test)]
    assert set().union(*parts) == set(inter.items_of(u).tolist())
    assert sum(map(len, parts)) == inter.user_degrees()[u]
    assert [len(p) for p in parts] == split.recbole_counts(int(inter.user_degrees()[u]))
  s2 = split.random_split(inter, seed=1)
  np.testing.assert_array_equal(s.test.indices, s2.test.indices)
  s3 = split.random_split(inter, seed=2)
  assert not np.array_equal(s.test.indices, s3.test.indices)


def test_given_split_carves_validation_when_missing():
  users = np.repeat(np.arange(10), 20)
  items = np.tile(np.arange(20), 10)
  tags = np.where(items < 15, TRAIN, TEST)
  s = split.given_split(Interactions.from_pairs(users, items, split_tags=tags), seed=0)
  assert s.test.nnz == 50
  assert s.valid.nnz == 10 * split.recbole_counts(15, (0.9, 0.1, 0.0))[1]
  assert s.train.nnz + s.valid.nnz == 150
  assert s.train.split_tags is None


def test_given_split_requires_tags():
  with pytest.raises(DataError, match="no split"):
    split.given_split(Interactions.from_pairs([0], [0]), seed=0)


def test_bad_ratios():
  with pytest.raises(DataError, match="ratios"):
    split.random_split(Interactions.from_pairs([0], [0]), seed=0, ratios=(0.5, 0.5))
