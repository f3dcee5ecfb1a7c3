"""Same-size baselines on small hand-checked cases."""

import itertools

import numpy as np
import pytest

from jaxcond import baselines as B
from jaxcond.baselines import samplers, svp
from jaxcond.data.interactions import Interactions

CHEAP = ("random", "stratified", "random_users", "head_users", "kcenter", "proxy_top",
         "proxy_pseudo", "proxy_half")


@pytest.fixture(scope="module")
def train():
  """40 users with 1..19 pairs over 30 items, and 2 users without pairs."""
  rng = np.random.default_rng(0)
  users, items = [], []
  for u in range(40):
    d = 1 + (u * 7) % 19
    users += [u] * d
    items += list(rng.choice(30, d, replace=False))
  return Interactions.from_pairs(np.array(users), np.array(items), n_users=42, n_items=30)


@pytest.fixture(scope="module")
def proxy():
  rng = np.random.default_rng(1)
  return {"user": rng.normal(size=(42, 4)).astype(np.float32),
          "item": rng.normal(size=(30, 4)).astype(np.float32)}


def _pairs(inter):
  return set(zip(inter.users().tolist(), inter.indices.tolist()))


@pytest.mark.parametrize("ratio", [0.05, 0.25, 0.5])
def test_every_cheap_baseline_has_the_exact_size(train, proxy, ratio):
  budget = B.budget_for(train.nnz, ratio)
  assert budget == round(ratio * train.nnz)
  originals = _pairs(train)
  for name in CHEAP:
    sel = B.select(name, train, budget, proxy=proxy, seed=3)
    s = _pairs(sel.train)
    assert len(s) == sel.train.nnz == budget, name
    kept = {p for p, pseudo in zip(zip(sel.train.users().tolist(), sel.train.indices.tolist()),
                                   sel.pseudo_N) if not pseudo}
    assert kept <= originals, name  # originals are real training pairs ...
    assert not (s - kept) & originals, name  # ... and pseudo pairs are not
    if name not in ("proxy_pseudo", "proxy_half"):
      assert not sel.pseudo_N.any()
    again = B.select(name, train, budget, proxy=proxy, seed=3)
    assert _pairs(again.train) == s, f"{name} is not deterministic"


def test_random_is_condensations_random_draw(train):
  budget = B.budget_for(train.nnz, 0.25)
  keep = np.random.default_rng([5, 11]).permutation(train.nnz) < budget
  assert _pairs(B.select("random", train, budget, seed=5).train) == _pairs(train.subset(keep))


def test_apportion_hand_cases():
  rng = np.random.default_rng(0)
  k = samplers.apportion(np.array([3, 3, 3]), 4, np.array([3, 3, 3]), rng)
  assert sorted(k.tolist()) == [1, 1, 2]
  # caps bind: the capped user takes its cap, the rest goes to the others by weight
  k = samplers.apportion(np.array([10, 1, 1]), 6, np.array([2, 10, 10]), rng)
  assert k.tolist() == [2, 2, 2]
  # weight 0 never gets a pair, even with room
  k = samplers.apportion(np.array([0, 1, 1]), 3, np.array([5, 2, 2]), rng)
  assert k.tolist() == [0, 2, 1] or k.tolist() == [0, 1, 2]
  with pytest.raises(ValueError, match="cannot place"):
    samplers.apportion(np.array([1, 1]), 5, np.array([2, 2]), rng)


@pytest.mark.parametrize("ratio", [0.1, 0.25, 0.5])
def test_stratified_keeps_each_users_share_within_one(train, ratio):
  budget = B.budget_for(train.nnz, ratio)
  sel = B.select("stratified", train, budget, seed=1)
  kept_U = sel.train.user_degrees()
  q = budget / train.nnz
  assert np.all(np.abs(kept_U - q * train.user_degrees()) < 1)
  assert kept_U.sum() == budget


def _user_structure(train, sel):
  kept_U, deg_U = sel.train.user_degrees(), train.user_degrees()
  whole = np.flatnonzero((kept_U == deg_U) & (deg_U > 0))
  partial = np.flatnonzero((kept_U > 0) & (kept_U < deg_U))
  return whole, partial


def test_head_users_are_the_most_active(train):
  budget = B.budget_for(train.nnz, 0.25)
  sel = B.select("head_users", train, budget, seed=0)
  whole, partial = _user_structure(train, sel)
  deg = train.user_degrees()
  dropped = np.flatnonzero(sel.train.user_degrees() == 0)
  assert len(partial) <= 1
  taken = np.concatenate([whole, partial])
  assert deg[taken].min() >= deg[dropped].max()
  # by hand: degrees sorted descending, whole users until their sum passes the budget
  order = sorted(range(40), key=lambda u: (-deg[u], u))
  total, expect = 0, []
  for u in order:
    if total + deg[u] > budget:
      break
    total += deg[u]
    expect.append(u)
  assert sorted(whole.tolist()) == sorted(expect)
  assert partial.tolist() == ([] if total == budget else [order[len(expect)]])


def test_random_users_keep_whole_users(train):
  budget = B.budget_for(train.nnz, 0.25)
  sel = B.select("random_users", train, budget, seed=2)
  whole, partial = _user_structure(train, sel)
  assert len(partial) <= 1 and len(whole) >= 1
  other = B.select("random_users", train, budget, seed=3)
  assert _pairs(other.train) != _pairs(sel.train)


def test_forgetting_counts_on_a_hand_made_trajectory():
  correct_ExN = np.array([[1, 0, 0, 1, 1],
                          [0, 0, 1, 1, 0],
                          [1, 0, 1, 0, 1],
                          [0, 0, 1, 1, 0],
                          [0, 0, 1, 0, 1]], bool)
  # pair 0: 1 0 1 0 0 -> forgotten twice; pair 1: never learned; pair 2: learned at epoch 2,
  # never forgotten; pair 3: 1 1 0 1 0 -> twice; pair 4: 1 0 1 0 1 -> twice.
  track = svp.forgetting_init(5)
  for row in correct_ExN:
    track = svp.forgetting_update(track, row)
  assert np.asarray(track.forgotten_N).tolist() == [2, 0, 0, 2, 2]
  assert np.asarray(track.learned_N).tolist() == [True, False, True, True, True]
  assert np.asarray(track.incorrect_N).tolist() == [3, 5, 1, 2, 2]
  stats = {k: np.asarray(v) for k, v in track._asdict().items()}
  stats["epochs"] = 5
  assert svp.forgetting_scores(stats, "transitions").tolist() == [2, 6, 0, 2, 2]
  assert svp.forgetting_scores(stats, "incorrect").tolist() == [0.6, 1.0, 0.2, 0.4, 0.4]


def _forgetting_reference(correct_ExN):
  """Independent count: correct -> incorrect between consecutive presentations."""
  prev = np.zeros(correct_ExN.shape[1], bool)
  count = np.zeros(correct_ExN.shape[1], int)
  for row in correct_ExN:
    count += prev & ~row
    prev = row
  return count


def test_the_jitted_epoch_records_every_pair_once_per_epoch(train):
  cfg = B.BaselineConfig(svp_epochs=4, svp_batch=64, svp_dim=4, svp_lr=0.05)
  stats = svp.svp_forgetting(train, seed=0, cfg=cfg, trajectory=True)
  traj = stats["correct_ExN"]
  assert traj.shape == (4, train.nnz)
  assert stats["forgotten_N"].tolist() == _forgetting_reference(traj).tolist()
  assert stats["incorrect_N"].tolist() == (~traj).sum(0).tolist()
  assert stats["learned_N"].tolist() == traj.any(0).tolist()
  assert traj[-1].mean() > traj[0].mean()  # the proxy learns: more positives beat negatives
  assert stats["losses"][-1] < stats["losses"][0]


def _fake_stats(train, forgotten_N):
  return {"forgotten_N": np.asarray(forgotten_N), "learned_N": np.ones(train.nnz, bool),
          "incorrect_N": np.zeros(train.nnz, int), "epochs": 10, "losses": [0.5],
          "seconds": 0.0}


def test_svp_cf_keeps_the_most_forgotten_pairs(train, monkeypatch):
  forgotten_N = np.random.default_rng(4).integers(0, 5, train.nnz)
  monkeypatch.setattr(svp, "svp_forgetting", lambda t, seed, cfg: _fake_stats(t, forgotten_N))
  budget = B.budget_for(train.nnz, 0.25)
  sel = B.select("svp_cf", train, budget, seed=0)
  keys = train.users().astype(np.int64) * train.n_items + train.indices
  kept = np.isin(keys, sel.train.users().astype(np.int64) * train.n_items + sel.train.indices)
  assert kept.sum() == budget
  assert forgotten_N[kept].min() >= forgotten_N[~kept].max()
  # user level: users by mean forgetting, highest first
  sel_u = B.select("svp_cf_users", train, budget, seed=0)
  whole, partial = _user_structure(train, sel_u)
  mean_U = np.bincount(train.users(), forgotten_N, 42) / np.maximum(train.user_degrees(), 1)
  dropped = np.flatnonzero((sel_u.train.user_degrees() == 0) & (train.user_degrees() > 0))
  assert len(partial) <= 1
  assert mean_U[np.concatenate([whole, partial])].min() >= mean_U[dropped].max()


def _kcenter_brute_force(points, first, n):
  """At each step, the point whose nearest picked point is farthest (lowest index on ties),
  by explicit loops."""
  picks = [first]
  while len(picks) < n:
    best, best_d = None, -1.0
    for j in range(len(points)):
      if j in picks:
        continue
      d = min(float(np.sqrt(((points[j] - points[p]) ** 2).sum())) for p in picks)
      if d > best_d:
        best, best_d = j, d
    picks.append(best)
  return picks


def test_kcenter_greedy_equals_brute_force():
  rng = np.random.default_rng(7)
  points = rng.integers(-5, 6, size=(9, 2)).astype(np.float32)
  for first in (0, 4, 8):
    got = samplers.kcenter_order(points, first)
    assert got.tolist() == _kcenter_brute_force(points, first, 9)
  # weighted stop: stops as soon as the picked weights reach the budget
  got = samplers.kcenter_order(points, 0, np.full(9, 3), budget=7)
  assert got.tolist() == _kcenter_brute_force(points, 0, 3)
  # the greedy 2-approximation: its radius is at most twice the optimal k-center radius
  k = 3
  radius = lambda c: max(min(np.linalg.norm(p - points[j]) for j in c) for p in points)  # noqa
  best = min(radius(c) for c in itertools.combinations(range(9), k))
  assert radius(samplers.kcenter_order(points, 0)[:k]) <= 2 * best + 1e-6


def test_proxy_top_picks_the_highest_scored_pairs():
  # user 0 has items 0..5, user 1 items 2..7; 1-D proxy: score = user sign * item value
  users = np.repeat([0, 1], 6)
  items = np.concatenate([np.arange(6), np.arange(2, 8)])
  t = Interactions.from_pairs(users, items, n_users=2, n_items=10)
  proxy = {"user": np.array([[1.0], [-1.0]], np.float32),
           "item": np.arange(10, dtype=np.float32)[:, None]}
  sel = B.select("proxy_top", t, 6, proxy=proxy)
  assert _pairs(sel.train) == {(0, 5), (0, 4), (0, 3), (1, 2), (1, 3), (1, 4)}
  sel = B.select("proxy_pseudo", t, 4, proxy=proxy)
  assert _pairs(sel.train) == {(0, 9), (0, 8), (1, 0), (1, 1)} and sel.pseudo_N.all()
  sel = B.select("proxy_half", t, 4, proxy=proxy)
  assert _pairs(sel.train) == {(0, 5), (0, 9), (1, 2), (1, 0)}
  assert sel.pseudo_N.sum() == 2


def test_bad_calls(train):
  with pytest.raises(ValueError, match="unknown baseline 'nope'"):
    B.select("nope", train, 10)
  with pytest.raises(ValueError, match="needs the proxy"):
    B.select("proxy_top", train, 10)
  with pytest.raises(ValueError, match="budget must be between"):
    B.select("random", train, train.nnz)
  with pytest.raises(ValueError, match="ratio must be in"):
    B.budget_for(100, 1.0)
  with pytest.raises(ValueError, match="svp_score"):
    B.BaselineConfig(svp_score="loss")


def test_sqrt_allocation_gives_light_users_a_larger_share():
  # user 0 has 16 pairs (items 0..15), user 1 has 4 (items 0..3); score = item value
  users = np.repeat([0, 1], [16, 4])
  items = np.concatenate([np.arange(16), np.arange(4)])
  t = Interactions.from_pairs(users, items, n_users=3, n_items=20)
  proxy = {"user": np.ones((3, 1), np.float32), "item": np.arange(20, dtype=np.float32)[:, None]}
  # budget 6: by |I_u| 16:4 -> 4.8 and 1.2 -> 5 and 1; by sqrt 4:2 -> 4 and 2
  top = B.select("proxy_top", t, 6, proxy=proxy)
  assert _pairs(top.train) == {(0, 15), (0, 14), (0, 13), (0, 12), (0, 11), (1, 3)}
  spread = B.select("proxy_top_sqrt", t, 6, proxy=proxy)
  assert _pairs(spread.train) == {(0, 15), (0, 14), (0, 13), (0, 12), (1, 3), (1, 2)}
  half = B.select("proxy_half_sqrt", t, 6, proxy=proxy)  # 3 originals (2:1), 3 unseen (2:1)
  assert _pairs(half.train) == {(0, 15), (0, 14), (1, 3), (0, 19), (0, 18), (1, 19)}
  assert half.pseudo_N.sum() == 3
  np.testing.assert_allclose(samplers.user_weights(np.array([16, 4, 0]), 0.5), [4.0, 2.0, 0.0])
  with pytest.raises(ValueError, match="allocation power"):
    samplers.user_weights(np.array([1]), -0.5)
