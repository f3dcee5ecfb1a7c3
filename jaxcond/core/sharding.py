"""The outer step on a device mesh: padded, user-sharded blocks over one or many devices.

Candidates (keep logits, optimiser moments, masks), rows of candidates and the user
table are split along one mesh axis, "users" (candidates and rows are sorted by user, so
each device holds a contiguous block of users); item tables, validation pairs and the
negative-sampling graph are replicated. `jax.jit` partitions the unchanged step over the
mesh (GSPMD), so one code path serves 1 device, N devices and N processes.

Every user-indexed length is padded to a multiple of PAD (and of the device count), and
the padding is masked: padded candidates have keep probability 0 and belong to no row,
padded rows hold only empty slots, padded users have no validation pair. Any device
count dividing PAD therefore sees the same shapes, hence the same random draws, and
gives the same numbers up to the order of float reductions.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
from jax.experimental import multihost_utils
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

AXIS = "users"
PAD = 1024


def make_mesh(n_devices: int | None = None) -> Mesh:
  """A 1-D mesh over the first n_devices devices (all, across processes, by default),
  with an Auto axis so that jit partitions un-annotated ops itself."""
  n = jax.device_count() if n_devices is None else int(n_devices)
  if not 1 <= n <= jax.device_count():
    raise ValueError(f"asked for {n} devices, {jax.device_count()} are visible")
  return jax.make_mesh((n,), (AXIS,), axis_types=(jax.sharding.AxisType.Auto,),
                       devices=jax.devices()[:n])


def padded(n: int, mesh: Mesh) -> int:
  """n rounded up to a multiple of PAD and of the mesh size."""
  multiple = math.lcm(PAD, mesh.size)
  return max(multiple, -(-n // multiple) * multiple)


def split(mesh: Mesh) -> NamedSharding:
  return NamedSharding(mesh, P(AXIS))


def replicated(mesh: Mesh) -> NamedSharding:
  return NamedSharding(mesh, P())


def pad_to(x, n: int, fill=0) -> np.ndarray:
  """x (host array) padded along axis 0 to length n with `fill`."""
  x = np.asarray(x)
  if x.shape[0] > n:
    raise ValueError(f"cannot pad length {x.shape[0]} down to {n}")
  pad = np.full((n - x.shape[0], *x.shape[1:]), fill, dtype=x.dtype)
  return np.concatenate([x, pad])


def put(x, sharding: NamedSharding) -> jax.Array:
  """A global array from a host array every process holds whole (works across
  processes, where device_put of host data to other hosts' devices does not)."""
  x = np.asarray(x)
  return jax.make_array_from_callback(x.shape, sharding, lambda index: x[index])


def to_host(x) -> np.ndarray:
  """The whole of a (possibly multi-process) global array, on every process."""
  if isinstance(x, jax.Array) and not x.is_fully_addressable:
    return np.asarray(multihost_utils.process_allgather(x, tiled=True))
  return np.asarray(x)


def put_tree(tree, shardings) -> object:
  """Places every leaf of `tree` with the sharding at the same place in `shardings`."""
  return jax.tree.map(lambda x, s: put(to_host(x), s), tree, shardings)


def is_main_process() -> bool:
  return jax.process_index() == 0


def first_axis_split(tree, n_split: set[int], mesh: Mesh):
  """Shardings for a pytree: leaves whose leading length is in n_split are split along
  users, the others (and scalars) replicated."""
  def pick(x):
    shape = jnp.shape(x)
    return split(mesh) if shape and shape[0] in n_split else replicated(mesh)
  return jax.tree.map(pick, tree)
