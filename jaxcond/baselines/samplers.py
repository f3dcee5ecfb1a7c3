"""The sampling baselines: random pairs or users, head users, k-center core-sets and the
proxy heuristics; each a pure function from the training pairs to a set of a given size."""


from __future__ import annotations

import dataclasses
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jaxcond.condense import pool as pool_lib
from jaxcond.condense import proxy as proxy_lib
from jaxcond.data.interactions import Interactions

SVP_SCORES = ("transitions", "incorrect")


@dataclasses.dataclass(frozen=True)
class BaselineConfig:
  """Settings of the baselines that train something (SVP-CF's proxy). Defaults: the SVP-CF
  authors' proxy (noveens/sampling_cf, svp_handler.py: latent size 10, Adam lr 0.006,
  batch 1024, 50 epochs, one sampled negative per pair), with fewer epochs."""

  svp_epochs: int = 20
  svp_dim: int = 10
  svp_lr: float = 6e-3
  svp_batch: int = 1024
  svp_reg: float = 1e-6
  # transitions: forgetting events (Toneva et al. 2019), correct -> incorrect between two
  # presentations, never-learned pairs ranked above all; incorrect: the number of epochs
  # in which the sampled negative outscored the positive (what sampling_cf's code counts).
  svp_score: str = "transitions"

  def __post_init__(self):
    if self.svp_score not in SVP_SCORES:
      raise ValueError(f"svp_score must be one of {SVP_SCORES}, got {self.svp_score!r}")
    if min(self.svp_epochs, self.svp_dim, self.svp_batch) < 1 or not self.svp_lr > 0:
      raise ValueError(f"need svp_epochs, svp_dim, svp_batch >= 1 and svp_lr > 0; got "
                       f"{self.svp_epochs}, {self.svp_dim}, {self.svp_batch}, {self.svp_lr}")
    if self.svp_reg < 0:
      raise ValueError(f"svp_reg must be >= 0, got {self.svp_reg}")


class Selection(NamedTuple):
  """A baseline's condensed training set."""

  train: Interactions  # S, over the original ids
  pseudo_N: np.ndarray  # bool [|S|], in S's (user, item) order: a proxy pair, not an original
  info: dict  # JSON-able facts about the selection (e.g. forgetting statistics)


def budget_for(n_train: int, ratio: float) -> int:
  """|S| = round(ratio * N), as condenser.budget_of's honest accounting."""
  if not 0 < ratio < 1:
    raise ValueError(f"ratio must be in (0, 1), got {ratio}")
  budget = int(round(ratio * n_train))
  if not 0 < budget < n_train:
    raise ValueError(f"ratio {ratio} of {n_train} training pairs gives {budget} pairs; need "
                     f"between 1 and {n_train - 1}")
  return budget


# --- allocation helpers -----------------------------------------------------------------


def apportion(weights_U: np.ndarray, total: int, caps_U: np.ndarray,
              rng: np.random.Generator) -> np.ndarray:
  """Integer counts k_U <= caps_U summing to `total`, proportional to weights_U: int64 [U].

  Largest remainder: k_u = floor(c w_u) plus one for the users with the largest fractional
  parts (ties in random order), with c = total / sum(w) unless caps bind, then c is found
  by bisection so that sum(min(cap_u, c w_u)) = total. So |k_u - c w_u| < 1.
  """
  w = np.asarray(weights_U, np.float64)
  caps = np.asarray(caps_U, np.int64)
  room = int(np.where(w > 0, caps, 0).sum())
  if not 0 <= total <= room:
    raise ValueError(f"cannot place {total} pairs: the users with weight can take {room}")
  c = total / w.sum() if w.sum() > 0 else 0.0
  if np.any(c * w > caps):
    lo, hi = 0.0, c
    while np.minimum(caps, hi * w).sum() < total:
      hi *= 2
    for _ in range(200):
      mid = 0.5 * (lo + hi)
      lo, hi = (mid, hi) if np.minimum(caps, mid * w).sum() < total else (lo, mid)
    c = hi
  ideal = np.minimum(caps, c * w)
  k = np.minimum(np.floor(ideal + 1e-9).astype(np.int64), caps)
  rest = total - int(k.sum())
  if rest > 0:  # the largest fractional parts first, ties in random order
    frac = ideal - k
    order = np.lexsort((rng.permutation(w.size), -frac))
    open_ = order[(k[order] < caps[order]) & (w[order] > 0)]
    k[open_[:rest]] += 1
  elif rest < 0:  # rounding of a bisected c: take back from the smallest fractional parts
    frac = np.where(k > 0, ideal - k, np.inf)
    order = np.lexsort((rng.permutation(w.size), frac))
    k[order[:-rest]] -= 1
  return k


def top_per_user(users_N: np.ndarray, scores_N: np.ndarray, k_U: np.ndarray,
                 tiebreak_N: np.ndarray | None = None) -> np.ndarray:
  """bool [N]: every user's k_U[u] highest-scored pairs (ties to the lower tiebreak)."""
  n = users_N.shape[0]
  tiebreak_N = np.arange(n) if tiebreak_N is None else tiebreak_N
  order = np.lexsort((tiebreak_N, -np.asarray(scores_N, np.float64), users_N))
  users_sorted = users_N[order]
  first = np.searchsorted(users_sorted, users_sorted, side="left")
  rank = np.empty(n, np.int64)
  rank[order] = np.arange(n) - first
  return rank < k_U[users_N]


def whole_users(train: Interactions, order_U: np.ndarray, budget: int,
                within_N: np.ndarray, tiebreak_N: np.ndarray | None = None) -> np.ndarray:
  """bool [N]: all pairs of the users in `order_U`, in that order, until `budget` pairs;
  the last user is cut to its highest-`within_N` pairs (ties to the lower tiebreak_N) so
  that exactly `budget` are kept."""
  deg = train.user_degrees()
  order_U = np.asarray(order_U)
  cum = np.cumsum(deg[order_U])
  n_whole = int(np.searchsorted(cum, budget, side="right"))  # users that fit entirely
  k_U = np.zeros(train.n_users, np.int64)
  k_U[order_U[:n_whole]] = deg[order_U[:n_whole]]
  rest = budget - (int(cum[n_whole - 1]) if n_whole else 0)
  if rest > 0:
    k_U[order_U[n_whole]] = rest
  return top_per_user(train.users(), within_N, k_U, tiebreak_N)


def _subset(train: Interactions, keep_N: np.ndarray, info: dict | None = None) -> Selection:
  sub = train.subset(keep_N)
  return Selection(sub, np.zeros(sub.nnz, bool), info or {})


def _with_pseudo(train: Interactions, keep_N: np.ndarray, users_P, items_P,
                 info: dict | None = None) -> Selection:
  """Kept original pairs plus pseudo pairs, sorted by (user, item), with pseudo flags."""
  users = np.concatenate([train.users()[keep_N], users_P]).astype(np.int64)
  items = np.concatenate([train.indices[keep_N], items_P]).astype(np.int64)
  pseudo = np.concatenate([np.zeros(int(keep_N.sum()), bool), np.ones(len(users_P), bool)])
  order = np.lexsort((items, users))
  s = Interactions.from_pairs(users, items, n_users=train.n_users, n_items=train.n_items,
                              user_ids=train.user_ids, item_ids=train.item_ids)
  return Selection(s, pseudo[order], info or {})


def _rng(seed: int, salt: int) -> np.random.Generator:
  return np.random.default_rng([seed, salt])


def _need_proxy(proxy, name):
  if proxy is None:
    raise ValueError(f"baseline {name!r} needs the proxy's score tables (proxy=...)")
  return proxy


# --- sampling baselines -------------------------------------------------------------------


def random_pairs(train: Interactions, budget: int, *, proxy=None, seed: int = 0,
                 cfg: BaselineConfig = BaselineConfig()) -> Selection:
  """A uniform subset of `budget` pairs (the same draw as condensation's "random")."""
  del proxy, cfg
  return _subset(train, _rng(seed, 11).permutation(train.nnz) < budget)


def stratified(train: Interactions, budget: int, *, proxy=None, seed: int = 0,
               cfg: BaselineConfig = BaselineConfig()) -> Selection:
  """Each user keeps a uniform sample of about budget/N of its pairs (within one pair;
  largest-remainder rounding makes the total exact)."""
  del proxy, cfg
  rng = _rng(seed, 12)
  deg = train.user_degrees()
  k_U = apportion(deg, budget, deg, rng)
  return _subset(train, top_per_user(train.users(), rng.random(train.nnz), k_U))


def random_users(train: Interactions, budget: int, *, proxy=None, seed: int = 0,
                 cfg: BaselineConfig = BaselineConfig()) -> Selection:
  """Whole users in random order until the budget (the last one cut at random)."""
  del proxy, cfg
  rng = _rng(seed, 13)
  order = rng.permutation(train.n_users)
  order = order[train.user_degrees()[order] > 0]
  return _subset(train, whole_users(train, order, budget, rng.random(train.nnz)))


def head_users(train: Interactions, budget: int, *, proxy=None, seed: int = 0,
               cfg: BaselineConfig = BaselineConfig()) -> Selection:
  """Whole users, the most active first (ties: lower user id), until the budget; the last
  one cut at random."""
  del proxy, cfg
  deg = train.user_degrees()
  order = np.lexsort((np.arange(train.n_users), -deg))
  order = order[deg[order] > 0]
  return _subset(train, whole_users(train, order, budget, _rng(seed, 14).random(train.nnz)))


# --- SVP-CF: selection via proxy by forgetting events --------------------------------------


@jax.jit
def _kcenter_scan(points_PxD, weight_P, first, budget):
  """Farthest-first traversal from `first`, until the picked weights reach `budget`:
  (picks_P, n_picked); picks beyond n_picked are -1."""
  n = points_PxD.shape[0]

  def dist(p):
    return jnp.sum((points_PxD - points_PxD[p]) ** 2, axis=-1)

  def cond(state):
    i, covered, _, _ = state
    return (covered < budget) & (i < n)

  def body(state):
    i, covered, min_d, picks = state
    p = jnp.where(i == 0, first, jnp.argmax(min_d))
    min_d = jnp.minimum(min_d, dist(p)).at[p].set(-jnp.inf)
    return i + 1, covered + weight_P[p], min_d, picks.at[i].set(p)

  init = (0, jnp.zeros((), weight_P.dtype), jnp.full(n, jnp.inf, points_PxD.dtype),
          jnp.full(n, -1, jnp.int32))
  i, _, _, picks = jax.lax.while_loop(cond, body, init)
  return picks, i


def kcenter_order(points_PxD: np.ndarray, first: int, weight_P: np.ndarray | None = None,
                  budget: float | None = None) -> np.ndarray:
  """k-center greedy (Gonzalez 1985; Sener & Savarese 2018's core-set): start at `first`,
  then repeatedly the point farthest (Euclidean) from those picked (ties: lower index),
  until the picked points' weights reach `budget` (default: all points). int [picks]."""
  points = jnp.asarray(points_PxD, jnp.float32)
  n = points.shape[0]
  weight = jnp.ones(n, jnp.int32) if weight_P is None else jnp.asarray(weight_P, jnp.int32)
  budget = n if budget is None else budget
  picks, n_picked = _kcenter_scan(points, weight, jnp.int32(first), jnp.int32(budget))
  return np.asarray(picks)[:int(n_picked)]


def kcenter(train: Interactions, budget: int, *, proxy=None, seed: int = 0,
            cfg: BaselineConfig = BaselineConfig()) -> Selection:
  """k-center greedy over the proxy's user embeddings (users with pairs), starting at a
  random user; each picked user brings all its pairs until the budget (the last cut at
  random)."""
  del cfg
  proxy = _need_proxy(proxy, "kcenter")
  deg = train.user_degrees()
  users = np.flatnonzero(deg > 0)
  rng = _rng(seed, 17)
  picks = kcenter_order(np.asarray(proxy["user"])[users], int(rng.integers(users.size)),
                        deg[users], budget)
  keep = whole_users(train, users[picks], budget, rng.random(train.nnz))
  return _subset(train, keep, {"users_picked": int(picks.size)})


# --- the proxy's own heuristics (no outer optimisation) -----------------------------------


def _scores(proxy, train: Interactions) -> np.ndarray:
  return proxy_lib.scores_of(proxy, train.users(), train.indices)


def _top_unseen(proxy, train: Interactions, k_U: np.ndarray):
  user_UxD, item_IxD = jnp.asarray(proxy["user"]), jnp.asarray(proxy["item"])
  return pool_lib.top_unseen(lambda users_B: user_UxD[users_B] @ item_IxD.T, train, k_U)


def proxy_top(train: Interactions, budget: int, *, proxy=None, seed: int = 0,
              cfg: BaselineConfig = BaselineConfig(), power: float = 1.0) -> Selection:
  """Per user its original pairs the proxy scores highest, about budget/N of them, or with
  power < 1 a share of the budget proportional to |I_u|^power (`user_weights`; largest-
  remainder rounding: the total is exact)."""
  del cfg
  proxy = _need_proxy(proxy, "proxy_top")
  deg = train.user_degrees()
  k_U = apportion(user_weights(deg, power), budget, deg, _rng(seed, 18))
  return _subset(train, top_per_user(train.users(), _scores(proxy, train), k_U))


def proxy_pseudo(train: Interactions, budget: int, *, proxy=None, seed: int = 0,
                 cfg: BaselineConfig = BaselineConfig()) -> Selection:
  """Per user the proxy's best-scored unseen items alone (pseudo pairs), about
  budget/N * |I_u| of them (the total exact)."""
  del cfg
  proxy = _need_proxy(proxy, "proxy_pseudo")
  deg = train.user_degrees()
  k_U = apportion(deg, budget, train.n_items - deg, _rng(seed, 19))
  users, items = _top_unseen(proxy, train, k_U)
  return _with_pseudo(train, np.zeros(train.nnz, bool), users, items)


def proxy_half(train: Interactions, budget: int, *, proxy=None, seed: int = 0,
               cfg: BaselineConfig = BaselineConfig(), power: float = 1.0) -> Selection:
  """Half of the budget (rounded up) as each user's best-scored original pairs, half as
  its best-scored unseen items, each part apportioned to users by |I_u|^power."""
  del cfg
  return proxy_mix(train, budget, budget // 2, _need_proxy(proxy, "proxy_half"),
                   _rng(seed, 20), power)


def proxy_mix(train: Interactions, budget: int, n_pseudo: int, proxy: dict,
              rng: np.random.Generator, power: float = 1.0) -> Selection:
  """budget - n_pseudo of each user's best-scored original pairs and n_pseudo of its
  best-scored unseen items, each part apportioned to users by |I_u|^power."""
  deg = train.user_degrees()
  weights = user_weights(deg, power)
  k_orig = apportion(weights, budget - n_pseudo, deg, rng)
  k_pseudo = apportion(weights, n_pseudo, train.n_items - deg, rng)
  keep = top_per_user(train.users(), _scores(proxy, train), k_orig)
  users, items = _top_unseen(proxy, train, k_pseudo)
  return _with_pseudo(train, keep, users, items)


def user_weights(degrees_U: np.ndarray, power: float) -> np.ndarray:
  """Each user's weight in sharing out a budget: |I_u|^power (0 for users without pairs).

  power = 1 gives every user the same fraction of its pairs; below 1 light users keep a
  larger fraction and heavy users a smaller one. Test NDCG@10 averages over users, and a
  heavy user's ranking gains little from its hundredth pair (docs/results.md, "Sharing the
  budget among users").
  """
  if not 0 <= power <= 2:
    raise ValueError(f"allocation power must be in [0, 2], got {power}")
  deg = np.asarray(degrees_U, np.float64)
  return np.where(deg > 0, deg ** power, 0.0)
