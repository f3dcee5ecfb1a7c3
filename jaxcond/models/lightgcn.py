"""LightGCN: embeddings propagated over the symmetric-normalised training graph."""

from __future__ import annotations

import jax
import jax.numpy as jnp

from jaxcond.models import mf
from jaxcond.models.graph import Graph


def _xavier_uniform(key, n: int, dim: int) -> jnp.ndarray:
  bound = jnp.sqrt(6.0 / (n + dim))
  return jax.random.uniform(key, (n, dim), jnp.float32, -bound, bound)


def init(key, n_users: int, n_items: int, hparams) -> dict:
  ku, ki = jax.random.split(key)
  return {"user": _xavier_uniform(ku, n_users, hparams.dim),
          "item": _xavier_uniform(ki, n_items, hparams.dim)}


def propagate_once(graph: Graph, user_UxD, item_IxD):
  """One layer: users gather normalised item embeddings and items gather users'."""
  if graph.adj_UxI.size:
    return graph.adj_UxI @ item_IxD, graph.adj_UxI.T @ user_UxD
  w_E1 = graph.weight_E[:, None]
  new_user = jax.ops.segment_sum(w_E1 * item_IxD[graph.items_E], graph.users_E,
                                 num_segments=user_UxD.shape[0], indices_are_sorted=True)
  order = graph.by_item_E
  new_item = jax.ops.segment_sum(w_E1[order] * user_UxD[graph.users_E[order]],
                                 graph.items_E[order], num_segments=item_IxD.shape[0],
                                 indices_are_sorted=True)
  return new_user, new_item


def represent(params, graph: Graph, hparams):
  """Mean of the layer-0..L embeddings, as LightGCN's final representation."""
  user, item = params["user"], params["item"]
  user_sum, item_sum = user, item
  for _ in range(hparams.n_layers):
    user, item = propagate_once(graph, user, item)
    user_sum, item_sum = user_sum + user, item_sum + item
  scale = 1.0 / (hparams.n_layers + 1)
  return user_sum * scale, item_sum * scale


score = mf.score
