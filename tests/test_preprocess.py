import numpy as np
import pytest

from jaxcond.data import preprocess
from jaxcond.data.interactions import DataError, Interactions


def test_filter_rating(random_interactions):
  inter = random_interactions()
  out = preprocess.filter_rating(inter, 4)
  assert out.nnz == (inter.ratings >= 4).sum()
  assert out.ratings.min() >= 4


def test_filter_rating_errors(random_interactions):
  inter = random_interactions()
  with pytest.raises(DataError, match="above every rating"):
    preprocess.filter_rating(inter, 7, source="x.csv")
  with pytest.raises(DataError, match="finite"):
    preprocess.filter_rating(inter, float("nan"))
  no_ratings = Interactions.from_pairs([0], [0])
  with pytest.raises(DataError, match="no ratings"):
    preprocess.filter_rating(no_ratings, 3)


def test_dedup_keeps_first_occurrence():
  inter = Interactions.from_pairs([1, 0, 1, 1, 0], [2, 0, 2, 1, 0], ratings=[5, 1, 3, 4, 2])
  out = preprocess.dedup(inter)
  assert out.nnz == 3
  pairs = sorted(zip(out.users().tolist(), out.indices.tolist(), out.ratings.tolist()))
  assert pairs == [(0, 0, 1.0), (1, 1, 4.0), (1, 2, 5.0)]


def _kcore_reference(pairs, k):
  pairs = set(pairs)
  while True:
    ud, idg = {}, {}
    for u, i in pairs:
      ud[u] = ud.get(u, 0) + 1
      idg[i] = idg.get(i, 0) + 1
    keep = {(u, i) for u, i in pairs if ud[u] >= k and idg[i] >= k}
    if keep == pairs:
      return keep
    pairs = keep


@pytest.mark.parametrize("k", [2, 3, 5])
def test_kcore_matches_reference(k):
  rng = np.random.default_rng(k)
  u, i = rng.integers(0, 40, 400), rng.integers(0, 30, 400)
  inter = preprocess.dedup(Interactions.from_pairs(u, i))
  out = preprocess.kcore(inter, k)
  got = set(zip(out.users().tolist(), out.indices.tolist()))
  assert got == _kcore_reference(zip(inter.users().tolist(), inter.indices.tolist()), k)
  if out.nnz:
    assert out.compact().user_degrees().min() >= k and out.compact().item_degrees().min() >= k


def test_empty_after_filtering_is_an_error(random_interactions):
  with pytest.raises(DataError, match="no interactions left"):
    preprocess.preprocess(random_interactions(), kcore_k=1000, source="tiny")
