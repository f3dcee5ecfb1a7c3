import numpy as np
import pytest

from jaxcond.data.interactions import DataError, Interactions


def test_from_original_ids_keeps_maps_and_sorts(random_interactions):
  inter = random_interactions()
  raw_u, raw_i = inter.original_pairs()
  assert inter.nnz == 300
  for u in range(inter.n_users):
    row = inter.items_of(u)
    assert np.all(np.diff(row) >= 0)
  # Every pair maps back to the ids it was built from.
  rng = np.random.default_rng(0)
  users = rng.integers(0, 30, 300)
  items = rng.integers(0, 20, 300) * 10 + 7
  got = sorted(zip(raw_u.tolist(), raw_i.tolist()))
  want = sorted(zip([f"u{u}" for u in users], items.tolist()))
  assert got == want


def test_subset_and_compact(random_interactions):
  inter = random_interactions()
  keep = inter.users() < 3
  sub = inter.subset(keep)
  assert sub.nnz == keep.sum()
  assert sub.n_users == inter.n_users
  np.testing.assert_array_equal(sub.ratings, inter.ratings[keep])
  small = sub.compact()
  assert small.n_users == 3
  assert small.nnz == sub.nnz
  assert set(small.user_ids.tolist()) == set(inter.user_ids[:3].tolist())
  pairs = lambda x: sorted(zip(*map(list, x.original_pairs())))  # noqa: E731
  assert pairs(small) == pairs(sub)


def test_checksum_changes_with_content(random_interactions):
  a, b = random_interactions(seed=0), random_interactions(seed=0)
  assert a.checksum() == b.checksum()
  c = a.subset(np.arange(a.nnz) > 0)
  assert c.checksum() != a.checksum()


def test_bad_shapes_and_ids():
  with pytest.raises(DataError, match="same length"):
    Interactions.from_pairs([0, 1], [0])
  with pytest.raises(DataError, match="user ids"):
    Interactions.from_pairs([0, 5], [0, 1], n_users=3)
  with pytest.raises(DataError, match="mask"):
    Interactions.from_pairs([0, 1], [0, 1]).subset([True])


def test_to_csr_matches_pairs(random_interactions):
  inter = random_interactions()
  dense = inter.to_csr().toarray()
  ref = np.zeros_like(dense)
  np.add.at(ref, (inter.users(), inter.indices), 1)
  np.testing.assert_array_equal(dense, ref)


def test_union_keeps_each_pair_once():
  a = Interactions.from_pairs([0, 0, 2], [1, 3, 0], n_users=3, n_items=4)
  b = Interactions.from_pairs([0, 1, 2], [3, 2, 1], n_users=3, n_items=4)
  u = a.union(b)
  assert list(zip(u.users().tolist(), u.indices.tolist())) == [
      (0, 1), (0, 3), (1, 2), (2, 0), (2, 1)]
  with pytest.raises(DataError, match="cannot unite"):
    a.union(Interactions.from_pairs([0], [0], n_users=3, n_items=5))
  assert a.pair_keys().tolist() == [0 * 4 + 1, 0 * 4 + 3, 2 * 4 + 0]
