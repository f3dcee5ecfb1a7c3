"""Same-size baselines for condensation: pure functions from the training pairs to a set S.

Every baseline has one signature, `fn(train, budget, *, proxy, seed, cfg) -> Selection`:
`train` the original training pairs (N of them), `budget` the size of S (round(r N), see
`budget_for`), `proxy` the proxy model's {"user": [U, D], "item": [I, D]} score tables
(`proxy.tables`; only the proxy methods read them), `seed` the only source of randomness.
S holds exactly `budget` pairs: a subset of the original pairs, or, for the proxy's
pseudo methods, original pairs plus the proxy's top unseen items. `BASELINES` maps names
to functions, `SOURCES` names to their definitions and where they come from.
"""

from __future__ import annotations

import dataclasses
import functools
import time
from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxcond import budget as budget_lib
from jaxcond import models, negatives, pool as pool_lib, proxy as proxy_lib
from jaxcond import train as train_lib
from jaxcond.graph import Graph, build_graph
from jaxcond.interactions import Interactions

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


class Forgetting(NamedTuple):
  """Per-pair statistics over the presentations so far (device arrays, [N])."""

  forgotten_N: jnp.ndarray  # int32: correct at one presentation, incorrect at the next
  last_N: jnp.ndarray  # bool: correct at the last presentation
  learned_N: jnp.ndarray  # bool: correct at some presentation
  incorrect_N: jnp.ndarray  # int32: presentations at which it was incorrect


def forgetting_init(n_pairs: int) -> Forgetting:
  return Forgetting(*(jnp.zeros(n_pairs, t) for t in (jnp.int32, bool, bool, jnp.int32)))


def forgetting_update(track: Forgetting, correct_N) -> Forgetting:
  """One presentation of every pair: correct_N says whether its positive beat the sampled
  negative (before that step's update)."""
  correct_N = jnp.asarray(correct_N, bool)
  return Forgetting(track.forgotten_N + (track.last_N & ~correct_N),
                    correct_N, track.learned_N | correct_N,
                    track.incorrect_N + (~correct_N))


def forgetting_scores(stats: dict, mode: str = "transitions") -> np.ndarray:
  """float64 [N], higher = harder. transitions: forgetting events, pairs never learned
  above all (Toneva et al. count them as forgotten infinitely often); incorrect: the
  share of presentations at which the pair was incorrect (sampling_cf's count)."""
  if mode == "transitions":
    never = ~np.asarray(stats["learned_N"], bool)
    return np.where(never, stats["epochs"] + 1.0, np.asarray(stats["forgotten_N"], np.float64))
  if mode == "incorrect":
    return np.asarray(stats["incorrect_N"], np.float64) / max(stats["epochs"], 1)
  raise ValueError(f"svp score must be one of {SVP_SCORES}, got {mode!r}")


@functools.cache
def make_forgetting_epoch(hparams: models.ModelConfig, cfg: train_lib.TrainConfig,
                          n_items: int, max_degree: int, n_pairs: int) -> Callable:
  """A jitted BPR-MF epoch that also records, per pair, whether its positive outscored
  its sampled negative when presented: (params, opt_state, track, key, order_N, graph) ->
  (params, opt_state, track, correct_N, loss). Cached: one compilation per shape."""
  model = models.get_model("bpr_mf")
  optimizer = optax.adam(cfg.lr)
  n_steps = max(1, -(-n_pairs // cfg.batch_size))
  padded = n_steps * cfg.batch_size
  search = negatives.search_steps(max_degree)
  loss_fn = functools.partial(train_lib.bpr_loss, model, hparams, cfg.reg)

  def epoch(params, opt_state, track: Forgetting, key, order_N, graph: Graph):
    pad = jnp.full(padded - n_pairs, n_pairs, order_N.dtype)  # out of range: dropped
    batches = (jnp.concatenate([order_N, pad]).reshape(n_steps, cfg.batch_size),
               jax.random.split(key, n_steps))

    def step(carry, batch):
      params, opt_state, correct_N = carry
      idx_B, k = batch
      safe_B = jnp.minimum(idx_B, n_pairs - 1)
      users_B, pos_B = graph.users_E[safe_B], graph.items_E[safe_B]
      neg_B = negatives.sample(k, users_B, graph.indptr_U1, graph.items_E, n_items, search,
                               bits_UxW=graph.pos_bits_UxW)
      degree_B = graph.indptr_U1[users_B + 1] - graph.indptr_U1[users_B]
      weight_B = ((idx_B < n_pairs) & (degree_B < n_items)).astype(jnp.float32)
      user_UxD, item_IxD = params["user"], params["item"]
      diff_B = jnp.sum(user_UxD[users_B] * (item_IxD[pos_B] - item_IxD[neg_B]), axis=-1)
      correct_N = correct_N.at[idx_B].set(diff_B > 0, mode="drop")
      loss, grads = jax.value_and_grad(loss_fn)(params, graph, users_B, pos_B, neg_B, weight_B)
      updates, opt_state = optimizer.update(grads, opt_state, params)
      return (optax.apply_updates(params, updates), opt_state, correct_N), loss

    init = (params, opt_state, jnp.zeros(n_pairs, bool))
    (params, opt_state, correct_N), losses = jax.lax.scan(step, init, batches)
    return params, opt_state, forgetting_update(track, correct_N), correct_N, losses.mean()

  return jax.jit(epoch, donate_argnums=(0, 1, 2))


def svp_forgetting(train: Interactions, *, seed: int = 0, cfg: BaselineConfig = BaselineConfig(),
                   trajectory: bool = False) -> dict:
  """Trains SVP-CF's proxy (BPR-MF, cfg.svp_* settings) on all of `train` and returns per
  pair (in train's order) its forgetting statistics: numpy forgotten_N, learned_N,
  incorrect_N, and epochs, losses, seconds (and correct_ExN, each epoch's record, if
  `trajectory`)."""
  t0 = time.perf_counter()
  hparams = models.ModelConfig(dim=cfg.svp_dim)
  tcfg = train_lib.TrainConfig(lr=cfg.svp_lr, batch_size=cfg.svp_batch, reg=cfg.svp_reg)
  graph = build_graph(train, dense_limit=0)
  max_degree = int(train.user_degrees().max(initial=0))
  epoch_fn = make_forgetting_epoch(hparams, tcfg, train.n_items, max_degree, train.nnz)
  key = jax.random.key(seed)
  params = models.get_model("bpr_mf").init(jax.random.fold_in(key, 0), train.n_users,
                                           train.n_items, hparams)
  opt_state = optax.adam(tcfg.lr).init(params)
  track = forgetting_init(train.nnz)
  losses, records = [], []
  for epoch in range(1, cfg.svp_epochs + 1):
    params, opt_state, track, correct_N, loss = epoch_fn(
        params, opt_state, track, jax.random.fold_in(key, epoch),
        train_lib.shuffle(seed, epoch, train.nnz), graph)
    losses.append(float(loss))
    if trajectory:
      records.append(np.asarray(correct_N))
  out = {"forgotten_N": np.asarray(track.forgotten_N), "learned_N": np.asarray(track.learned_N),
         "incorrect_N": np.asarray(track.incorrect_N), "epochs": cfg.svp_epochs,
         "losses": losses, "seconds": time.perf_counter() - t0}
  if trajectory:
    out["correct_ExN"] = np.stack(records)
  return out


def _svp_info(stats: dict, scores_N: np.ndarray, keep_N: np.ndarray, cfg) -> dict:
  return {"svp_score": cfg.svp_score, "svp_epochs": stats["epochs"],
          "svp_seconds": stats["seconds"], "svp_final_loss": stats["losses"][-1],
          "never_learned_share": float(1 - np.mean(stats["learned_N"])),
          "mean_forgotten": float(np.mean(stats["forgotten_N"])),
          "mean_score_kept": float(scores_N[keep_N].mean()),
          "mean_score_all": float(scores_N.mean())}


def svp_cf(train: Interactions, budget: int, *, proxy=None, seed: int = 0,
           cfg: BaselineConfig = BaselineConfig()) -> Selection:
  """SVP-CF, interaction level: the `budget` pairs the proxy forgot most (ties random)."""
  del proxy
  stats = svp_forgetting(train, seed=seed, cfg=cfg)
  scores_N = forgetting_scores(stats, cfg.svp_score)
  keep = budget_lib.top_k_mask(scores_N, budget, _rng(seed, 15).permutation(train.nnz))
  return _subset(train, keep, _svp_info(stats, scores_N, keep, cfg))


def svp_cf_users(train: Interactions, budget: int, *, proxy=None, seed: int = 0,
                 cfg: BaselineConfig = BaselineConfig()) -> Selection:
  """SVP-CF, user level: whole users by their pairs' mean forgetting score, highest first,
  until the budget; the last user keeps its most forgotten pairs."""
  del proxy
  stats = svp_forgetting(train, seed=seed, cfg=cfg)
  scores_N = forgetting_scores(stats, cfg.svp_score)
  deg = train.user_degrees()
  mean_U = np.bincount(train.users(), scores_N, minlength=train.n_users) / np.maximum(deg, 1)
  rng = _rng(seed, 16)
  order = np.lexsort((rng.permutation(train.n_users), -mean_U))
  order = order[deg[order] > 0]
  keep = whole_users(train, order, budget, scores_N, rng.permutation(train.nnz))
  return _subset(train, keep, _svp_info(stats, scores_N, keep, cfg))


# --- k-center coreset over the proxy's user embeddings -------------------------------------


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
              cfg: BaselineConfig = BaselineConfig()) -> Selection:
  """Per user its original pairs the proxy scores highest, about budget/N of them
  (largest-remainder rounding: the total is exact)."""
  del cfg
  proxy = _need_proxy(proxy, "proxy_top")
  deg = train.user_degrees()
  k_U = apportion(deg, budget, deg, _rng(seed, 18))
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
               cfg: BaselineConfig = BaselineConfig()) -> Selection:
  """Half of the budget (rounded up) as each user's best-scored original pairs, half as
  its best-scored unseen items, each part apportioned to users by |I_u|."""
  del cfg
  return proxy_mix(train, budget, budget // 2, _need_proxy(proxy, "proxy_half"),
                   _rng(seed, 20))


def proxy_mix(train: Interactions, budget: int, n_pseudo: int, proxy: dict,
              rng: np.random.Generator) -> Selection:
  """budget - n_pseudo of each user's best-scored original pairs and n_pseudo of its
  best-scored unseen items, each part apportioned to users by |I_u|."""
  deg = train.user_degrees()
  k_orig = apportion(deg, budget - n_pseudo, deg, rng)
  k_pseudo = apportion(deg, n_pseudo, train.n_items - deg, rng)
  keep = top_per_user(train.users(), _scores(proxy, train), k_orig)
  users, items = _top_unseen(proxy, train, k_pseudo)
  return _with_pseudo(train, keep, users, items)


BASELINES: dict[str, Callable[..., Selection]] = {
    "random": random_pairs,
    "stratified": stratified,
    "random_users": random_users,
    "head_users": head_users,
    "svp_cf": svp_cf,
    "svp_cf_users": svp_cf_users,
    "kcenter": kcenter,
    "proxy_top": proxy_top,
    "proxy_pseudo": proxy_pseudo,
    "proxy_half": proxy_half,
}
USES_PROXY = frozenset({"kcenter", "proxy_top", "proxy_pseudo", "proxy_half"})
SOURCES = {
    "random": "uniform sample of round(rN) training pairs; the floor of DConRec's and "
              "SVP-CF's comparisons",
    "stratified": "per-user uniform sample of ~r|I_u| pairs (largest-remainder rounding)",
    "random_users": "whole random users until the budget (SVP-CF paper's 'random users')",
    "head_users": "whole users, most active first (SVP-CF paper's head-user sampling)",
    "svp_cf": "SVP-CF, interaction level (Sachdeva, Wu, McAuley, WSDM 2022; code "
              "noveens/sampling_cf): keep the pairs a BPR-MF proxy forgot most",
    "svp_cf_users": "SVP-CF, user level: users by mean forgetting of their pairs, highest "
                    "first (sampling_cf's forgetting_events_user)",
    "kcenter": "k-center greedy core-set (Sener & Savarese, ICLR 2018) over the proxy's user "
               "embeddings, whole users",
    "proxy_top": "per user the ~r|I_u| original pairs the proxy scores highest",
    "proxy_pseudo": "per user the proxy's ~r|I_u| top unseen items alone (DConRec's "
                    "pre-augmentation candidates)",
    "proxy_half": "half each user's top originals, half its top unseen items, by proxy score",
}


def select(name: str, train: Interactions, budget: int, *, proxy=None, seed: int = 0,
           cfg: BaselineConfig = BaselineConfig()) -> Selection:
  """Runs baseline `name`; checks that S has exactly `budget` distinct pairs."""
  if name not in BASELINES:
    raise ValueError(f"unknown baseline {name!r}; known: {', '.join(BASELINES)}")
  if not 0 < budget < train.nnz:
    raise ValueError(f"budget must be between 1 and {train.nnz - 1}, got {budget}")
  sel = BASELINES[name](train, budget, proxy=proxy, seed=seed, cfg=cfg)
  if sel.train.nnz != budget or sel.pseudo_N.shape != (budget,):
    raise AssertionError(f"baseline {name} returned {sel.train.nnz} pairs, not {budget}")
  return sel
