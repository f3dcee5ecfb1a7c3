import numpy as np
import pytest

from jaxcond.condense import tail
from jaxcond.data.interactions import Interactions


def _inter(degrees):
  users = np.repeat(np.arange(len(degrees)), degrees)
  items = np.concatenate([np.arange(d) for d in degrees])
  return Interactions.from_pairs(users, items, n_users=len(degrees), n_items=max(degrees))


def test_least_active_takes_the_fewest_pairs_ties_by_id():
  inter = _inter([5, 2, 9, 2, 3, 7, 2, 4, 8, 6])
  np.testing.assert_array_equal(np.flatnonzero(tail.least_active(inter, 0.2)), [1, 3])
  np.testing.assert_array_equal(np.flatnonzero(tail.least_active(inter, 0.25)), [1, 3, 6])
  groups = tail.user_groups(inter, 0.2)
  assert (groups["tail"] ^ groups["head"]).all()
  with pytest.raises(ValueError, match="tail fraction"):
    tail.least_active(inter, 1.5)


def test_tail_users_by_tau_or_quantile():
  inter = _inter([5, 2, 9, 2, 3, 11])
  np.testing.assert_array_equal(np.flatnonzero(tail.tail_users(inter, tau=3)), [1, 3, 4])
  np.testing.assert_array_equal(np.flatnonzero(tail.tail_users(inter, tau=1)), [])
  np.testing.assert_array_equal(np.flatnonzero(tail.tail_users(inter, quantile=0.5)), [1, 3, 4])
  with pytest.raises(ValueError, match="tau"):
    tail.tail_users(inter, tau=-1)


def test_floor_counts():
  np.testing.assert_array_equal(tail.floor_counts(np.array([4, 10, 3, 8]), np.array([9, 20, 0, 8]),
                                                  0.25), [1, 3, 0, 2])


def test_select_with_floor_hand_case():
  # user 0 has the best scores; user 1 would get nothing without its floor of 2.
  users_C = np.array([0, 0, 0, 0, 1, 1, 1, 2, 2])
  scores_C = np.array([9.0, 8.0, 7.0, 6.0, 1.0, 3.0, 2.0, 5.0, 4.0])
  keep = tail.select_with_floor(scores_C, users_C, np.array([0, 2, 1]), 5, np.arange(9))
  np.testing.assert_array_equal(np.flatnonzero(keep), [0, 1, 5, 6, 7])
  plain = tail.select_with_floor(scores_C, users_C, np.zeros(3, int), 5, np.arange(9))
  np.testing.assert_array_equal(np.flatnonzero(plain), [0, 1, 2, 3, 7])
  with pytest.raises(ValueError, match="floors need 6 pairs"):
    tail.select_with_floor(scores_C, users_C, np.array([3, 2, 1]), 5, np.arange(9))
