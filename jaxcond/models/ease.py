"""EASE (Steck 2019): a closed-form item-item model, B = I - P diagMat(1 / diag(P))."""

from __future__ import annotations

import numpy as np
import scipy.linalg

from jaxcond.data.interactions import DataError, Interactions

# The Gram matrix and its inverse (turned into B in place) take I^2 float32 entries
# each; the limit counts three to leave room for LAPACK's workspace.
DEFAULT_MEMORY_LIMIT_BYTES = 6 * 2**30


def fit(train: Interactions, *, l2: float = 250.0,
        memory_limit_bytes: int = DEFAULT_MEMORY_LIMIT_BYTES) -> dict:
  """Solves EASE on the host; refuses item sets whose I x I matrices would not fit."""
  n = train.n_items
  need = 3 * n * n * 4
  if need > memory_limit_bytes:
    raise DataError(
        f"EASE needs about {need / 2**30:.1f} GiB for {n:,} items (three {n}x{n} float32 "
        f"matrices), above the limit of {memory_limit_bytes / 2**30:.1f} GiB; filter items "
        "(e.g. --kcore) or raise the limit")
  x = train.to_csr(np.float32)
  gram = (x.T @ x).toarray()
  gram[np.diag_indices(n)] += l2
  b = scipy.linalg.inv(gram, overwrite_a=True, check_finite=False)  # P, float32
  b /= -np.diag(b)[None, :]  # in place: at most two I x I arrays alive at once
  b[np.diag_indices(n)] = 0.0
  return {"b": b.astype(np.float32, copy=False)}


def represent(params, graph, hparams):
  del graph, hparams
  return params["b"]


def score(reps, users_B, history_BxI):
  del users_B
  return history_BxI @ reps
