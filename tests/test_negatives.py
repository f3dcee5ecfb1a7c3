import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxcond.data.interactions import Interactions
from jaxcond.models import negatives
from jaxcond.models.graph import positives_bitmap


def _inter(seed=0, n_users=40, n_items=50):
  rng = np.random.default_rng(seed)
  deg = rng.integers(0, n_items - 1, n_users)
  deg[0] = n_items - 1  # a user who saw all but one item
  users = np.repeat(np.arange(n_users), deg)
  items = np.concatenate([rng.permutation(n_items)[:d] for d in deg])
  return Interactions.from_pairs(users, items, n_users=n_users, n_items=n_items)


def test_bitmap_matches_sets():
  inter = _inter(1)
  bits = positives_bitmap(inter)
  users = np.repeat(np.arange(inter.n_users), inter.n_items)
  items = np.tile(np.arange(inter.n_items), inter.n_users)
  got = negatives.bitmap_has(jnp.asarray(users), jnp.asarray(items, jnp.int32), jnp.asarray(bits))
  np.testing.assert_array_equal(np.asarray(got), inter.to_csr().toarray().ravel() > 0)


@pytest.mark.parametrize("use_bitmap", [True, False])
def test_samples_are_uniform_negatives(use_bitmap):
  inter = _inter(2)
  dense = inter.to_csr().toarray() > 0
  users = np.repeat(np.arange(inter.n_users), 200)
  bits = jnp.asarray(positives_bitmap(inter)) if use_bitmap else None
  neg = np.asarray(negatives.sample(
      jax.random.key(0), jnp.asarray(users, jnp.int32), jnp.asarray(inter.indptr, jnp.int32),
      jnp.asarray(inter.indices), inter.n_items,
      negatives.search_steps(int(inter.user_degrees().max())), bits_UxW=bits))
  assert not dense[users, neg].any()
  # User 0 has exactly one negative item.
  assert set(neg[users == 0].tolist()) == set(np.flatnonzero(~dense[0]).tolist())
  # Uniform over the user's negatives: chi-square over a light user.
  light = int(np.argmin(inter.user_degrees()))
  many = np.asarray(negatives.sample(
      jax.random.key(1), jnp.full(20000, light, jnp.int32), jnp.asarray(inter.indptr, jnp.int32),
      jnp.asarray(inter.indices), inter.n_items, 8, bits_UxW=bits))
  allowed = np.flatnonzero(~dense[light])
  counts = np.bincount(many, minlength=inter.n_items)[allowed]
  expected = 20000 / allowed.size
  chi2 = ((counts - expected) ** 2 / expected).sum()
  assert counts.sum() == 20000
  assert chi2 < allowed.size + 5 * np.sqrt(2 * allowed.size)  # ~5 sigma above its mean
