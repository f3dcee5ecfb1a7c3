"""Checkpoints of the outer loop: its state pytree, PRNG key and measurements, on disk.

A checkpoint is one npz written atomically (temp file + rename, with a checksum), so a
run killed at any moment leaves either the previous checkpoint or the new one. It is
tied to a fingerprint of everything that determines the run (settings, candidate pool,
start logits): a checkpoint of another run is refused, never silently resumed.
"""

from __future__ import annotations

import hashlib
import json
import pathlib
from typing import Any, NamedTuple

import jax
import numpy as np

from jaxcond.core import npz, sharding


class Restored(NamedTuple):
  state: Any  # the pytree, with the structure of `like`
  key_data: np.ndarray
  history: list
  step_seconds: list
  elapsed: float  # wall seconds of the outer loop before the checkpoint


def fingerprint(*parts) -> str:
  """sha256 over JSON-able settings and numpy arrays, in order."""
  h = hashlib.sha256()
  for part in parts:
    if isinstance(part, (np.ndarray, jax.Array)):
      arr = np.ascontiguousarray(np.asarray(part))
      h.update(f"{arr.dtype}{arr.shape}".encode())
      h.update(arr.tobytes())
    else:
      h.update(json.dumps(part, sort_keys=True, default=str).encode())
  return h.hexdigest()


def save(path, state, key, *, history: list, step_seconds: list, elapsed: float,
         fingerprint: str) -> None:
  """Writes the state's leaves, the key's data and the measurements so far."""
  leaves = jax.tree.leaves(state)
  arrays = {f"leaf{i:03d}": sharding.to_host(x) for i, x in enumerate(leaves)}
  arrays["key_data"] = np.asarray(jax.random.key_data(key))
  meta = {"fingerprint": fingerprint, "n_leaves": len(leaves), "history": history,
          "step_seconds": step_seconds, "elapsed": elapsed}
  npz.save_arrays(pathlib.Path(path), arrays, meta)


def restore(path, like, fingerprint: str) -> Restored | None:
  """The checkpoint at `path` as a pytree shaped like `like`; None if there is none.

  Raises ValueError when it belongs to another run (other fingerprint) or its arrays do
  not fit `like`, and DataError (from cache) when the file is corrupt.
  """
  path = pathlib.Path(path)
  if not path.exists():
    return None
  arrays, meta = npz.load_arrays(path)
  if meta.get("fingerprint") != fingerprint:
    raise ValueError(f"checkpoint {path} was written by a run with other settings or data; "
                     f"resume it with the same ones, or start afresh (--noresume / resume=False, "
                     f"or another output folder)")
  like_leaves, treedef = jax.tree.flatten(like)
  if meta["n_leaves"] != len(like_leaves):
    raise ValueError(f"checkpoint {path} holds {meta['n_leaves']} arrays, the state has "
                     f"{len(like_leaves)}")
  leaves = []
  for i, ref in enumerate(like_leaves):
    arr = arrays[f"leaf{i:03d}"]
    if arr.shape != ref.shape or arr.dtype != ref.dtype:
      raise ValueError(f"checkpoint {path}: array {i} is {arr.dtype}{arr.shape}, the state "
                       f"expects {ref.dtype}{ref.shape}")
    leaves.append(jax.numpy.asarray(arr))
  return Restored(jax.tree.unflatten(treedef, leaves), arrays["key_data"], meta["history"],
                  meta["step_seconds"], float(meta["elapsed"]))
