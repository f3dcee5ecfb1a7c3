import atexit
import os
import pathlib
import shutil
import tempfile

os.environ.setdefault("JAX_PLATFORMS", "cpu")
# One persistent compilation cache for the session, inherited by the entry points the
# tests run in subprocesses: each distinct step compiles once, not once per process.
if "JAX_COMPILATION_CACHE_DIR" not in os.environ:
  os.environ["JAX_COMPILATION_CACHE_DIR"] = tempfile.mkdtemp(prefix="jaxcond-jit-")
  atexit.register(shutil.rmtree, os.environ["JAX_COMPILATION_CACHE_DIR"], True)
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0")

import numpy as np
import pytest

from jaxcond.data.interactions import Interactions
from jaxcond.models import train_many


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


def write_user_file(folder: pathlib.Path) -> pathlib.Path:
  """A user's own CSV file: two taste groups of 25 users, 12 pairs each, named columns."""
  rng = np.random.default_rng(0)
  lines = ["who,what"]
  for u in range(50):
    for i in rng.choice(40, 12, replace=False) + 20 * (u % 2):
      lines.append(f"c{u},p{i}")
  path = folder / "shop.csv"
  path.write_text("\n".join(lines) + "\n")
  return path


@pytest.fixture
def user_file(tmp_path):
  return write_user_file(tmp_path)


@pytest.fixture
def trained_fits(monkeypatch) -> list:
  """The number of models each vmapped training program trains, appended as it runs."""
  fit_group, trained = train_many._fit_group, []

  def counting(model, data, trains, *args):
    trained.append(len(trains))
    return fit_group(model, data, trains, *args)

  monkeypatch.setattr(train_many, "_fit_group", counting)
  return trained
