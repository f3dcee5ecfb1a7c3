"""Synthetic long-tailed data: sizes, no repeated pair, long tails on both sides."""

import numpy as np
import pytest

from jaxcond.data import synthetic


def test_sizes_distinct_pairs_and_long_tails():
  x = synthetic.interactions(2_000, 1_000, 120_000, seed=3)
  assert 0.97 * 120_000 <= x.nnz <= 120_000
  keys = x.users().astype(np.int64) * x.n_items + x.indices
  assert np.unique(keys).size == x.nnz
  deg_U, deg_I = x.user_degrees(), x.item_degrees()
  assert deg_U.min() >= 20 and deg_U.max() > 5 * np.median(deg_U)
  assert deg_I.max() > 10 * np.median(deg_I)  # a few items hold many pairs
  same = synthetic.interactions(2_000, 1_000, 120_000, seed=3)
  np.testing.assert_array_equal(same.indices, x.indices)
  assert not np.array_equal(synthetic.interactions(2_000, 1_000, 120_000, seed=4).indices,
                            x.indices)


def test_degrees_sum_and_refusal():
  rng = np.random.default_rng(0)
  deg = synthetic.degrees(100, 5_000, rng, min_degree=20)
  assert deg.min() >= 20 and 5_000 - 100 <= deg.sum() <= 5_000
  with pytest.raises(ValueError, match="cannot give 100 users 20 pairs each"):
    synthetic.degrees(100, 1_999, rng, min_degree=20)
