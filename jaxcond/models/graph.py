"""The training graph a recommender consumes, as device arrays."""

from __future__ import annotations

from typing import NamedTuple

import jax.numpy as jnp
import numpy as np

from jaxcond.data.interactions import Interactions

# A dense normalised adjacency is used for LightGCN propagation while U x I stays below
# this many entries: on CPU a dense matmul beats gather + segment_sum there.
DENSE_ADJ_LIMIT = 32_000_000
# Positives are also kept as a packed U x I bitmap (one gather per membership test) up
# to this many bits (1 GiB); beyond it negative sampling bisects the CSR rows.
BITMAP_LIMIT_BITS = 8 * 2**30


class Graph(NamedTuple):
  """Training pairs and their symmetric normalisation 1 / sqrt(d_u d_i).

  `adj_UxI` is the dense normalised adjacency when small enough, else an empty array.
  """

  users_E: jnp.ndarray  # [E] int32
  items_E: jnp.ndarray  # [E] int32
  weight_E: jnp.ndarray  # [E] float32
  indptr_U1: jnp.ndarray  # [U + 1] int32, CSR rows of the pairs (sorted by user)
  adj_UxI: jnp.ndarray  # [U, I] float32 or [0, 0]
  pos_bits_UxW: jnp.ndarray  # [U, ceil(I / 32)] uint32 bitmap of the pairs, or [0, 0]
  by_item_E: jnp.ndarray  # [E] int32 edge order sorted by item (sorted segment sums)


def positives_bitmap(inter: Interactions) -> np.ndarray:
  """Packed bitmap: bit (i % 32) of word [u, i // 32] is set when (u, i) is a pair."""
  bits = np.zeros((inter.n_users, -(-inter.n_items // 32)), dtype=np.uint32)
  items = inter.indices.astype(np.int64)
  masks = np.uint32(1) << (items & 31).astype(np.uint32)
  np.bitwise_or.at(bits, (inter.users(), items >> 5), masks)
  return bits


def build_graph(train: Interactions, *, dense_limit: int = DENSE_ADJ_LIMIT,
                bitmap_limit_bits: int = BITMAP_LIMIT_BITS) -> Graph:
  users_E = train.users()
  items_E = train.indices
  du = np.maximum(train.user_degrees(), 1).astype(np.float64)
  di = np.maximum(train.item_degrees(), 1).astype(np.float64)
  weight_E = (1.0 / np.sqrt(du[users_E] * di[items_E])).astype(np.float32)
  if train.n_users * train.n_items <= dense_limit:
    adj = np.zeros((train.n_users, train.n_items), dtype=np.float32)
    np.add.at(adj, (users_E, items_E), weight_E)
  else:
    adj = np.zeros((0, 0), dtype=np.float32)
  if train.n_users * train.n_items <= bitmap_limit_bits:
    bits = positives_bitmap(train)
  else:
    bits = np.zeros((0, 0), dtype=np.uint32)
  if train.nnz >= 2**31:
    raise ValueError("more than 2^31 training pairs are not supported")
  return Graph(users_E=jnp.asarray(users_E, jnp.int32), items_E=jnp.asarray(items_E, jnp.int32),
               weight_E=jnp.asarray(weight_E), indptr_U1=jnp.asarray(train.indptr, jnp.int32),
               adj_UxI=jnp.asarray(adj), pos_bits_UxW=jnp.asarray(bits),
               by_item_E=jnp.asarray(np.argsort(items_E, kind="stable"), jnp.int32))
