"""jaxcond.models.topk against a plain-numpy ranking (score descending, index ascending)."""

import os

os.environ.setdefault("JAX_PLATFORMS", "cpu")

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxcond.models import topk


def numpy_top_k(scores_BxI: np.ndarray, k: int) -> np.ndarray:
  """Each row's k best items by a stable sort of -score: equal scores in index order."""
  return np.stack([np.lexsort((np.arange(row.size), -row))[:k] for row in scores_BxI])


def _rows(kind: str, n_rows: int, n_items: int, rng) -> np.ndarray:
  if kind == "normal":
    return rng.standard_normal((n_rows, n_items)).astype(np.float32)
  if kind == "ties":  # three values: ties at every cut, between and within chunks
    return rng.integers(0, 3, (n_rows, n_items)).astype(np.float32)
  if kind == "masked":  # most items -inf, some rows with fewer than k finite scores
    s = rng.standard_normal((n_rows, n_items)).astype(np.float32)
    s[rng.random((n_rows, n_items)) < 0.995] = -np.inf
    s[0] = -np.inf
    return s
  raise ValueError(kind)


@pytest.mark.parametrize("kind", ["normal", "ties", "masked"])
@pytest.mark.parametrize("n_items,k,chunk,chunked", [
    (1000, 5, 16, True), (997, 4, 8, True), (333, 5, 7, True), (3628, 20, 16, True),
    (1682, 20, 16, False), (64, 20, 16, False)])
def test_top_k_equals_a_stable_sort(kind, n_items, k, chunk, chunked):
  assert topk.chunked(n_items, k, chunk) == chunked
  scores = _rows(kind, 37, n_items, np.random.default_rng(n_items + k))
  values, items = jax.jit(topk.top_k, static_argnums=(1, 2))(jnp.asarray(scores), k, chunk)
  want = numpy_top_k(scores, k)
  np.testing.assert_array_equal(np.asarray(items), want)
  np.testing.assert_array_equal(np.asarray(values), np.take_along_axis(scores, want, axis=1))
  assert np.asarray(items).dtype == np.int32


def test_top_k_ties_across_the_chunk_cut():
  """The k-th largest chunk maximum is shared by more chunks than are kept: the earliest
  chunks win, as the earliest items do in a stable sort."""
  scores = np.zeros((1, 64), np.float32)
  scores[0, [5, 17, 33, 49, 63]] = 1.0  # five of the 16 chunks of 4 have maximum 1
  assert topk.chunked(64, 2, 4)
  _, items = topk.top_k(jnp.asarray(scores), 2, 4)
  np.testing.assert_array_equal(np.asarray(items), [[5, 17]])
