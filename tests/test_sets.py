"""jaxcond.judging.sets: a set in original ids mapped onto a dataset's dense ids."""

import numpy as np
import pytest

from jaxcond.core.errors import DataError
from jaxcond.data.interactions import Interactions
from jaxcond.judging import sets


def _train():
  # users "a" < "b" < "c" and items 10 < 20 < 30 get dense ids 0, 1, 2
  return Interactions.from_original_ids(np.array(["a", "a", "b", "c", "c"]),
                                        np.array([10, 20, 20, 10, 30]))


def test_pairs_land_on_the_datasets_dense_ids(tmp_path):
  path = tmp_path / "set.csv"
  path.write_text("user,item\nc,30\na,20\nb,10\n")  # (b, 10) is not a training pair: allowed
  got = sets.read_set(path, _train())
  assert got.nnz == 3 and (got.n_users, got.n_items) == (3, 3)
  assert sorted(zip(got.users().tolist(), got.indices.tolist())) == [(0, 1), (1, 0), (2, 2)]
  np.testing.assert_array_equal(got.user_ids, _train().user_ids)


def test_an_unknown_item_and_a_whole_training_split_are_refused(tmp_path):
  path = tmp_path / "set.csv"
  path.write_text("user,item\na,10\nb,99\n")
  with pytest.raises(DataError, match="1 item ids are not in the dataset \\(the first: '99'\\)"):
    sets.read_set(path, _train())
  path.write_text("user,item\na,10\na,20\nb,20\nc,10\nc,30\n")
  with pytest.raises(DataError, match="between 1 and 4"):
    sets.read_set(path, _train())
