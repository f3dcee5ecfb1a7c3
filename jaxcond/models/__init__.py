"""One signature for every recommender, and the registry of them.

A recommender is a set of pure functions over a params pytree:
  init(key, n_users, n_items, hparams) -> params          (trainable models)
  fit(train, hparams) -> params                           (closed-form models)
  represent(params, graph, hparams) -> reps               (e.g. LightGCN propagation)
  score(reps, users_B, history_BxI) -> scores_BxI         (full-ranking scores)
Trainable models' reps are (user_UxD, item_IxD), scored by inner product.
"""

from __future__ import annotations

import dataclasses
from typing import Callable, NamedTuple

from jaxcond.models import ease, lightgcn, mf


@dataclasses.dataclass(frozen=True)
class ModelConfig:
  """Hyper-parameters of the recommenders (unused ones are ignored)."""

  dim: int = 64
  n_layers: int = 2  # LightGCN
  ease_l2: float = 250.0  # EASE

  def __post_init__(self):
    if self.dim < 1 or self.n_layers < 0 or self.ease_l2 <= 0:
      raise ValueError(f"need dim >= 1, n_layers >= 0, ease_l2 > 0; got dim={self.dim}, "
                       f"n_layers={self.n_layers}, ease_l2={self.ease_l2}")


class Recommender(NamedTuple):
  name: str
  represent: Callable
  score: Callable
  init: Callable | None = None
  fit: Callable | None = None
  propagates: bool = False  # represent() reads the training graph's adjacency

  @property
  def trainable(self) -> bool:
    return self.init is not None


def _ease_fit(train, hparams: ModelConfig):
  return ease.fit(train, l2=hparams.ease_l2)


MODELS = {
    "bpr_mf": Recommender("bpr_mf", mf.represent, mf.score, init=mf.init),
    "lightgcn": Recommender("lightgcn", lightgcn.represent, lightgcn.score, init=lightgcn.init,
                            propagates=True),
    "ease": Recommender("ease", ease.represent, ease.score, fit=_ease_fit),
}


def get_model(name: str) -> Recommender:
  if name not in MODELS:
    raise ValueError(f"unknown model {name!r}; known: {', '.join(sorted(MODELS))}")
  return MODELS[name]
