"""Checkpoints: exact round trip of a state pytree, and refusal of another run's file."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from jaxcond.core import checkpoint
from jaxcond.data.interactions import DataError


def _state(seed=0):
  logits = jax.random.normal(jax.random.key(seed), (37,))
  opt = optax.adam(0.1)
  opt_state = opt.init(logits)
  updates, opt_state = opt.update(jnp.sin(logits), opt_state, logits)  # non-zero moments
  return {"logits": logits + updates, "opt": opt_state, "step": jnp.asarray(5, jnp.int32)}


def test_round_trip_is_bit_exact(tmp_path):
  state, key = _state(), jax.random.key(9)
  path = tmp_path / "ck.npz"
  history = [{"step": 5, "reward": 0.25}]
  checkpoint.save(path, state, key, history=history, step_seconds=[0.5, 0.25], elapsed=3.0,
                  fingerprint="abc")
  got = checkpoint.restore(path, _state(seed=1), "abc")
  for a, b in zip(jax.tree.leaves(got.state), jax.tree.leaves(state)):
    assert a.dtype == b.dtype
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
  assert jax.tree.structure(got.state) == jax.tree.structure(state)
  np.testing.assert_array_equal(got.key_data, jax.random.key_data(key))
  assert got.history == history and got.step_seconds == [0.5, 0.25] and got.elapsed == 3.0


def test_missing_is_none_and_others_are_refused(tmp_path):
  path = tmp_path / "ck.npz"
  assert checkpoint.restore(path, _state(), "abc") is None
  checkpoint.save(path, _state(), jax.random.key(0), history=[], step_seconds=[], elapsed=0.0,
                  fingerprint="abc")
  with pytest.raises(ValueError, match="written by a run with other settings"):
    checkpoint.restore(path, _state(), "xyz")
  smaller = {**_state(), "logits": jnp.zeros(36)}
  with pytest.raises(ValueError, match=r"expects float32\(36,\)"):
    checkpoint.restore(path, smaller, "abc")
  with pytest.raises(ValueError, match="holds 5 arrays, the state has 4"):
    checkpoint.restore(path, {k: v for k, v in _state().items() if k != "step"}, "abc")
  path.write_bytes(path.read_bytes()[:100])  # truncated, as by a crash mid-copy
  with pytest.raises(DataError, match="unreadable"):
    checkpoint.restore(path, _state(), "abc")


def test_fingerprint_sees_settings_and_array_contents():
  a = np.arange(5)
  base = checkpoint.fingerprint({"lr": 0.1}, a)
  assert base == checkpoint.fingerprint({"lr": 0.1}, np.arange(5))
  assert base != checkpoint.fingerprint({"lr": 0.2}, a)
  assert base != checkpoint.fingerprint({"lr": 0.1}, a + (a == 4))
  assert base != checkpoint.fingerprint({"lr": 0.1}, a.astype(np.int32))
