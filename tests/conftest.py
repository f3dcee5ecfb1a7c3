import os
import pathlib

os.environ.setdefault("JAX_PLATFORMS", "cpu")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

from jaxcond.interactions import Interactions  # noqa: E402


@pytest.fixture
def random_interactions():
  """A small random dataset with ratings, original string ids and some duplicates."""
  def make(n_users=30, n_items=20, n=300, seed=0):
    rng = np.random.default_rng(seed)
    users = rng.integers(0, n_users, n)
    items = rng.integers(0, n_items, n)
    return Interactions.from_original_ids(
        np.array([f"u{u}" for u in users]), items * 10 + 7,
        ratings=rng.integers(1, 6, n).astype(float), timestamps=np.arange(n))
  return make


@pytest.fixture(scope="session")
def shared_data_dir():
  env = os.environ.get("JAXCOND_DATA_DIR")
  default = pathlib.Path(__file__).resolve().parents[2] / "shared" / "datasets"
  path = pathlib.Path(env) if env else default
  if not path.is_dir():
    pytest.skip(f"real datasets not found at {path} (set JAXCOND_DATA_DIR)")
  return path
