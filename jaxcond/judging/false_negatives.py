"""Does the proxy find real false negatives? Hide some training positives, fit the proxy
on the rest, and count how many hidden pairs its top-k_u unseen items recover, beside a
popularity ranking and a uniformly random one (whose expectation is exact)."""

from __future__ import annotations

import dataclasses
import time
from typing import Callable

import jax.numpy as jnp
import numpy as np

from jaxcond import models
from jaxcond.condense import pool as pool_lib
from jaxcond.condense import proxy as proxy_lib
from jaxcond.data.interactions import DataError, Interactions
from jaxcond.data.split import DatasetSplit
from jaxcond.models import train as train_lib


def hide_positives(train: Interactions, fraction: float,
                   seed: int) -> tuple[Interactions, Interactions]:
  """(kept, hidden): per user round(fraction * |I_u|) random training pairs hidden, at most
  |I_u| - 1 (every user keeps one)."""
  if not 0 < fraction < 1:
    raise ValueError(f"hidden fraction must be in (0, 1), got {fraction}")
  deg_U = train.user_degrees()
  n_hide_U = np.minimum(np.floor(fraction * deg_U + 0.5).astype(np.int64),
                        np.maximum(deg_U - 1, 0))
  rng = np.random.default_rng([seed, 0x4869])
  # Rank pairs within their user by a random key; the n_hide lowest ranks are hidden.
  order = np.lexsort((rng.random(train.nnz), train.users()))
  rank = np.empty(train.nnz, np.int64)
  rank[order] = np.arange(train.nnz) - np.repeat(train.indptr[:-1], deg_U)
  hidden = rank < np.repeat(n_hide_U, deg_U)
  if not hidden.any():
    raise DataError(f"hiding {fraction:.0%} of each user's pairs hides nothing: every user "
                    f"has too few training pairs")
  return train.subset(~hidden), train.subset(hidden)


def recovery(flagged: Interactions, hidden: Interactions) -> dict:
  """Precision (hits / flagged pairs) and recall (hits / hidden pairs) of flagged pairs."""
  n = flagged.n_items
  keys_f = flagged.users().astype(np.int64) * n + flagged.indices
  keys_h = hidden.users().astype(np.int64) * n + hidden.indices
  hits = int(np.isin(keys_f, keys_h).sum())
  return {"hits": hits, "flagged": flagged.nnz, "hidden": hidden.nnz,
          "precision": hits / max(flagged.nnz, 1), "recall": hits / max(hidden.nnz, 1)}


def popular_unseen(kept: Interactions, k_U: np.ndarray) -> Interactions:
  """Per user the k_U[u] most popular items (by degree in `kept`) outside its row."""
  popularity_I = jnp.asarray(kept.item_degrees(), jnp.float32)
  # Ties in popularity go to the lower item id, as lax.top_k breaks them.
  users, items = pool_lib.top_unseen(
      lambda users_B: jnp.broadcast_to(popularity_I, (users_B.shape[0], kept.n_items)),
      kept, k_U)
  return Interactions.from_pairs(users, items, n_users=kept.n_users, n_items=kept.n_items)


def random_expected(kept: Interactions, hidden: Interactions, k_U: np.ndarray) -> dict:
  """The exact expected precision and recall of k_U[u] items drawn uniformly without
  replacement from each user's unseen items (hidden pairs among them)."""
  unseen_U = kept.n_items - kept.user_degrees()
  hits_U = k_U * hidden.user_degrees() / np.maximum(unseen_U, 1)
  hits = float(hits_U.sum())
  return {"hits": hits, "flagged": int(k_U.sum()), "hidden": hidden.nnz,
          "precision": hits / max(int(k_U.sum()), 1), "recall": hits / max(hidden.nnz, 1)}


def measure(data: DatasetSplit, *, rho: float, fraction: float = 0.1, minimum: int = 5,
            model: str = "bpr_mf", model_cfg: models.ModelConfig = models.ModelConfig(),
            train_cfg: train_lib.TrainConfig = train_lib.TrainConfig(), seed: int = 0,
            log: Callable[[str], None] | None = None) -> dict:
  """Hides `fraction` of each user's training pairs, fits the proxy on the rest (early
  stopping on the validation split), and reports how many hidden pairs the proxy's top
  k_u = max(minimum, floor(rho |I_u|)) unseen items recover, against popularity and
  random rankings of the same k_u items per user."""
  kept, hidden = hide_positives(data.train, fraction, seed)
  t0 = time.perf_counter()

  def progress(row):
    if log is not None and row["epoch"] % 10 == 0:
      log(f"  proxy epoch {row['epoch']}: valid ndcg@10 {row['valid']['ndcg@10']:.4f}")

  fit = train_lib.fit(models.get_model(model), data, hparams=model_cfg, cfg=train_cfg,
                      seed=seed, train=kept, progress=progress)
  tables = proxy_lib.tables(model, {k: np.asarray(v) for k, v in fit.params.items()}, kept,
                            model_cfg)
  k_U = pool_lib.pseudo_counts(kept, rho, minimum)
  out = {"proxy": recovery(proxy_lib.top_unseen_pairs(kept, tables, rho, minimum), hidden),
         "popularity": recovery(popular_unseen(kept, k_U), hidden),
         "random": random_expected(kept, hidden, k_U)}
  for name in ("proxy", "popularity"):
    out[name]["precision_over_random"] = out[name]["precision"] / max(out["random"]["precision"],
                                                                      1e-30)
  return {"rankings": out, "fraction_hidden": fraction, "hidden_pairs": hidden.nnz,
          "rho": rho, "minimum": minimum, "model": model, "seed": seed,
          "proxy_best_epoch": fit.best_epoch, "proxy_seconds": time.perf_counter() - t0,
          "model_cfg": dataclasses.asdict(model_cfg), "train_cfg": dataclasses.asdict(train_cfg)}
