"""BPR-MF: a user and an item embedding table, scored by inner product."""

from __future__ import annotations

import jax
import jax.numpy as jnp

from jaxcond.models.graph import Graph


def xavier_normal(key, n: int, dim: int) -> jnp.ndarray:
  """torch.nn.init.xavier_normal_ on an [n, dim] table: std = sqrt(2 / (n + dim))."""
  return jax.random.normal(key, (n, dim), jnp.float32) * jnp.sqrt(2.0 / (n + dim))


def init(key, n_users: int, n_items: int, hparams) -> dict:
  ku, ki = jax.random.split(key)
  return {"user": xavier_normal(ku, n_users, hparams.dim),
          "item": xavier_normal(ki, n_items, hparams.dim)}


def represent(params, graph: Graph, hparams):
  del graph, hparams
  return params["user"], params["item"]


def score(reps, users_B, history_BxI):
  """Scores of every item for users_B: [B, I]."""
  del history_BxI
  user_UxD, item_IxD = reps
  return user_UxD[users_B] @ item_IxD.T
