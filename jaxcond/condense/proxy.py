"""What the proxy model (a recommender trained on all training pairs) gives the condenser.

- `top_unseen_pairs`: per user the k_u best-scored unseen items, k_u = max(5, floor(rho
  |I_u|)): DConRec's pre-augmentation candidates, and the false negatives that negative
  sampling avoids.
- `prior_logits`: starting keep logits from the proxy's scores, ranked within each user
  (originals and pseudo pairs apart), so that the start keeps every user's best pairs.
- `tables_of_fits`: the proxy's score tables, of one fit or the mean of several.
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np

from jaxcond import models
from jaxcond.condense import pool as pool_lib
from jaxcond.data.interactions import Interactions
from jaxcond.models import ModelConfig
from jaxcond.models.graph import DENSE_ADJ_LIMIT, build_graph


def scores_of(proxy: dict, users_C: np.ndarray, items_C: np.ndarray,
              block: int = 1 << 20) -> np.ndarray:
  """The proxy's score u . i of every candidate pair: float32 [C]."""
  user_UxD, item_IxD = np.asarray(proxy["user"]), np.asarray(proxy["item"])
  out = np.empty(users_C.shape[0], np.float32)
  for s in range(0, users_C.shape[0], block):
    u, i = users_C[s:s + block], items_C[s:s + block]
    out[s:s + block] = np.einsum("nd,nd->n", user_UxD[u], item_IxD[i])
  return out


def top_unseen_pairs(train: Interactions, proxy: dict, rho: float,
                     minimum: int = 5) -> Interactions:
  """Per user its k_u = max(minimum, floor(rho |I_u|)) best-scored items outside its
  training items, as pairs over train's ids."""
  k_U = pool_lib.pseudo_counts(train, rho, minimum)
  user_UxD, item_IxD = jnp.asarray(proxy["user"]), jnp.asarray(proxy["item"])
  users, items = pool_lib.top_unseen(lambda users_B: user_UxD[users_B] @ item_IxD.T, train, k_U)
  return Interactions.from_pairs(users, items, n_users=train.n_users, n_items=train.n_items,
                                 user_ids=train.user_ids, item_ids=train.item_ids)


def prior_logits(pool: pool_lib.Pool, scores_C: np.ndarray, scale: float) -> np.ndarray:
  """-scale * (within-user percentile of the proxy score), originals and pseudo pairs
  ranked apart: float32 [C]. A shift to the budget then keeps the same top share of
  every user's originals and of its pseudo pairs."""
  if not scale >= 0:
    raise ValueError(f"prior scale must be >= 0, got {scale}")
  group_C = pool.users_C.astype(np.int64) * 2 + pool.pseudo_C
  order = np.lexsort((-scores_C, group_C))
  grouped = group_C[order]
  first = np.searchsorted(grouped, grouped, side="left")
  last = np.searchsorted(grouped, grouped, side="right")
  pct = np.empty(pool.size, np.float64)
  pct[order] = (np.arange(pool.size) - first + 0.5) / (last - first)
  return (-scale * pct).astype(np.float32)


def tables(model_name: str, params: dict, train: Interactions, hparams: ModelConfig) -> dict:
  """The proxy's {"user": [U, D], "item": [I, D]} score tables (after propagation for
  LightGCN), for a trainable model fitted on `train`."""
  model = models.get_model(model_name)
  if not model.trainable:
    raise ValueError(f"the proxy must be an embedding model (bpr_mf, lightgcn), got "
                     f"{model_name!r}")
  graph = build_graph(train, dense_limit=DENSE_ADJ_LIMIT if model.propagates else 0,
                      bitmap_limit_bits=0)
  params = {k: jnp.asarray(v) for k, v in params.items()}
  user_UxD, item_IxD = model.represent(params, graph, hparams)
  return {"user": np.asarray(user_UxD), "item": np.asarray(item_IxD)}


def mean_tables(fitted: list[dict]) -> dict:
  """Score tables of several fits as one proxy: every score u . i is the mean of the fits'
  scores (the users' rows side by side over len(fitted), the items' side by side), so a
  ranking by it averages out one fit's seed noise. One fit's tables are returned as they are."""
  if not fitted:
    raise ValueError("need at least one fit's tables")
  if len(fitted) == 1:
    return fitted[0]
  return {"user": np.concatenate([np.asarray(t["user"]) for t in fitted], axis=1) / len(fitted),
          "item": np.concatenate([np.asarray(t["item"]) for t in fitted], axis=1)}


def tables_of_fits(model_name: str, params: list[dict], train: Interactions,
                   hparams: ModelConfig) -> dict:
  """The proxy of one or more fits of `model_name` on `train`: mean_tables of their tables."""
  return mean_tables([tables(model_name, p, train, hparams) for p in params])
