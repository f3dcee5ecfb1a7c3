import numpy as np
import pytest

from jaxcond.core import npz
from jaxcond.data import cache
from jaxcond.data.interactions import DataError
from jaxcond.data.split import random_split


def test_round_trip_keeps_everything(tmp_path, random_interactions):
  data = random_split(random_interactions().compact(), seed=0)
  path = tmp_path / "x.npz"
  cache.save_split(path, data, {"protocol": {"a": 1}})
  back, meta = cache.load_split(path)
  assert meta["protocol"] == {"a": 1}
  for part in ("train", "valid", "test"):
    a, b = getattr(data, part), getattr(back, part)
    assert a.checksum() == b.checksum()
    np.testing.assert_array_equal(a.ratings, b.ratings)
    np.testing.assert_array_equal(a.user_ids, b.user_ids)
  assert not list(tmp_path.glob("*.tmp"))


def test_tampered_or_broken_cache_is_refused(tmp_path, random_interactions):
  data = random_split(random_interactions().compact(), seed=0)
  path = tmp_path / "x.npz"
  cache.save_split(path, data, {})
  with np.load(path) as z:
    arrays = dict(z)
  arrays["test_indices"] = arrays["test_indices"][::-1].copy()
  np.savez(path, **arrays)
  with pytest.raises(DataError, match="checksum"):
    cache.load_split(path)
  path.write_bytes(b"not an npz")
  with pytest.raises(DataError, match="unreadable"):
    cache.load_split(path)


def test_settings_key_depends_on_every_setting():
  assert cache.settings_key({"a": 1, "b": 2}) == cache.settings_key({"b": 2, "a": 1})
  assert cache.settings_key({"a": 1}) != cache.settings_key({"a": 2})


def test_arrays_round_trip_and_corruption(tmp_path):
  path = tmp_path / "fits" / "a.npz"
  arrays = {"user": np.arange(6.0).reshape(2, 3), "item": np.ones((4, 3), np.float32)}
  npz.save_arrays(path, arrays, {"metrics": {"ndcg@10": 0.5}})
  back, meta = npz.load_arrays(path)
  assert meta["metrics"] == {"ndcg@10": 0.5}
  for k in arrays:
    np.testing.assert_array_equal(back[k], arrays[k])
  npz.save_arrays(path, {"user": arrays["user"] + 1}, {"checksum": "x"})
  raw = bytearray(path.read_bytes())
  raw[len(raw) // 2] ^= 0xFF
  path.write_bytes(bytes(raw))
  with pytest.raises(DataError, match="a.npz"):
    npz.load_arrays(path)
