import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from jaxcond import models
from jaxcond.data.interactions import Interactions
from jaxcond.data.split import random_split
from jaxcond.models import train
from jaxcond.models import evaluate as evaluate_lib
from jaxcond.models.graph import build_graph
from test_evaluate import reference_metrics


def _planted(n_users=120, n_items=80, seed=0):
  """Users and items in 4 clusters; each user likes items of its cluster."""
  rng = np.random.default_rng(seed)
  cu, ci = rng.integers(0, 4, n_users), rng.integers(0, 4, n_items)
  users, items = [], []
  for u in range(n_users):
    pool = np.flatnonzero(ci == cu[u])
    chosen = rng.choice(pool, size=min(12, pool.size), replace=False)
    users += [u] * chosen.size
    items += chosen.tolist()
  return random_split(Interactions.from_pairs(users, items, n_users=n_users, n_items=n_items),
                      seed=seed)


def test_bpr_loss_matches_numpy():
  rng = np.random.default_rng(0)
  params = {"user": jnp.asarray(rng.normal(size=(5, 3)), jnp.float32),
            "item": jnp.asarray(rng.normal(size=(6, 3)), jnp.float32)}
  u, i, j = np.array([0, 4, 2]), np.array([1, 5, 0]), np.array([3, 3, 2])
  w = np.array([1.0, 1.0, 0.0], np.float32)  # the last pair is padding
  got = train.bpr_loss(models.get_model("bpr_mf"), models.ModelConfig(), 0.1, params, None,
                       u, i, j, w)
  pu, pi = np.asarray(params["user"], np.float64), np.asarray(params["item"], np.float64)
  diff = np.sum(pu[u] * (pi[i] - pi[j]), 1)
  l2 = (pu[u] ** 2).sum(1) + (pi[i] ** 2).sum(1) + (pi[j] ** 2).sum(1)
  want = (np.log1p(np.exp(-diff)) * w).sum() / 2 + 0.1 * 0.5 * (l2 * w).sum() / 2
  np.testing.assert_allclose(got, want, rtol=1e-5)


def test_epoch_visits_every_pair_once_and_lowers_loss():
  data = _planted()
  model, hp = models.get_model("bpr_mf"), models.ModelConfig(dim=8)
  cfg = train.TrainConfig(batch_size=64, lr=0.05)
  opt = optax.adam(cfg.lr)
  params = model.init(jax.random.key(0), data.train.n_users, data.train.n_items, hp)
  state = opt.init(params)
  epoch = train.make_epoch_fn(model, hp, cfg, opt, data.train.n_items,
                              int(data.train.user_degrees().max()), data.train.nnz)
  graph = build_graph(data.train)
  losses = []
  for e in range(5):
    order = train.shuffle(0, e, data.train.nnz)
    params, state, meas = epoch(params, state, jax.random.key(e), order, graph)
    losses.append(float(meas["loss"]))
  assert losses[-1] < 0.5 * losses[0]
  order = train.shuffle(3, 7, 1000)
  assert sorted(order.tolist()) == list(range(1000))
  np.testing.assert_array_equal(order, train.shuffle(3, 7, 1000))


@pytest.mark.parametrize("name", ["bpr_mf", "lightgcn", "ease"])
def test_fit_learns_planted_clusters(name):
  data = _planted()
  cfg = train.TrainConfig(batch_size=128, lr=0.02, max_epochs=60, min_epochs=10, patience=5)
  res = train.fit(models.get_model(name), data, hparams=models.ModelConfig(dim=8, ease_l2=5.0),
                  cfg=cfg, seed=0)
  # Random ranking of 80 items with ~2 valid items gets recall@10 ~ 0.13; cluster-aware
  # ranking (20 candidates per cluster, ~8 unseen) puts nearly all of them in the top 10.
  assert res.best_valid["recall@10"] > 0.6, res.best_valid
  if name != "ease":
    assert 1 <= res.best_epoch <= res.epochs


def test_should_stop_waits_out_an_early_plateau():
  cfg = train.TrainConfig(patience=10, min_epochs=40, eval_every=1)
  # Validation NDCG like BPR-MF's: a rise, a flat stretch (epochs 3-15), then the real rise.
  curve = np.concatenate([[0.05, 0.10], np.full(25, 0.104), np.linspace(0.11, 0.24, 60),
                          np.full(30, 0.239)])
  best, best_epoch, stopped = -1.0, 0, None
  for epoch, value in enumerate(curve, start=1):
    if value > best:
      best, best_epoch = value, epoch
    if train.should_stop(epoch, best_epoch, cfg):
      stopped = epoch
      break
  assert stopped == best_epoch + 10 and best == pytest.approx(0.24)
  # A stopping rule with no minimum would have stopped on the plateau.
  assert train.should_stop(13, 3, dataclasses.replace(cfg, min_epochs=0))


def test_fit_returns_the_best_evaluated_params_not_the_last():
  data = _planted()
  model, hp = models.get_model("bpr_mf"), models.ModelConfig(dim=8)
  # A learning rate large enough that validation peaks and then falls.
  cfg = train.TrainConfig(batch_size=64, lr=0.3, max_epochs=25, min_epochs=25, patience=25,
                          eval_every=1)
  res = train.fit(model, data, hparams=hp, cfg=cfg, seed=0)
  again = train.evaluate_model(model, res.params, res.graph, hp, history=data.train,
                               exclude=(data.train,), target=data.valid)
  assert again["ndcg@10"] == pytest.approx(res.best_valid["ndcg@10"], rel=1e-6)
  scores = [row["valid"]["ndcg@10"] for row in res.history]
  assert res.best_valid["ndcg@10"] == max(scores)
  assert res.best_epoch == res.history[int(np.argmax(scores))]["epoch"]


def test_validation_while_training_ranks_only_the_stop_metrics_top_k():
  data = _planted()
  model, hp = models.get_model("bpr_mf"), models.ModelConfig(dim=8)
  cfg = train.TrainConfig(batch_size=64, lr=0.05, min_epochs=6, max_epochs=6, eval_every=2)
  fit = train.fit(model, data, hparams=hp, cfg=cfg, seed=3, keep_epochs=(2, 4, 6))
  assert [row["epoch"] for row in fit.history] == [2, 4, 6]
  for row in fit.history:
    assert set(row["valid"]) == {f"{m}@10" for m in evaluate_lib.METRICS} | {"n_users"}
    full = train.evaluate_model(model, fit.snapshots[row["epoch"]], fit.graph, hp,
                                history=data.train, exclude=(data.train,), target=data.valid)
    assert row["valid"]["ndcg@10"] == pytest.approx(full["ndcg@10"], rel=1e-6)
  # The best epoch's parameters get every metric at every K, as plain numpy ranks them.
  scores_UxI = np.asarray(fit.params["user"]) @ np.asarray(fit.params["item"]).T
  expected = reference_metrics(scores_UxI, (data.train,), data.valid, (5, 10, 20))
  assert set(fit.best_valid) == set(expected)
  for name, value in expected.items():
    assert fit.best_valid[name] == pytest.approx(value, rel=1e-5), name
  assert train.stop_cutoff("recall@20") == 20
  for bad in ("ndcg", "ndcg@", "auc@10", "ndcg@0"):
    with pytest.raises(ValueError, match="stop_metric"):
      train.TrainConfig(stop_metric=bad)


def test_bad_settings_are_refused():
  with pytest.raises(ValueError, match="batch_size"):
    train.TrainConfig(batch_size=0)
  with pytest.raises(ValueError, match="dim"):
    models.ModelConfig(dim=0)


def test_matched_schedule_keeps_step_counts():
  cfg = train.TrainConfig(min_epochs=40, max_epochs=300, eval_every=1, patience=10)
  quarter = train.matched_to(cfg, 1000, 250)
  assert (quarter.min_epochs, quarter.max_epochs, quarter.eval_every) == (160, 1200, 4)
  assert quarter.patience == 10  # counted in evaluations, so 40 epochs of the subset
  assert train.matched_to(cfg, 1000, 1000) == cfg
  assert train.matched_to(cfg, 1000, 2000) == cfg
  with pytest.raises(ValueError, match="empty"):
    train.matched_to(cfg, 1000, 0)


def test_epoch_draws_negatives_outside_avoid():
  """Items every user must avoid are never drawn as negatives: as they are no positive
  either, their embeddings stay where they started; without `avoid` they move."""
  rng = np.random.default_rng(3)
  n_users, n_items = 30, 60
  users = np.repeat(np.arange(n_users), 3)
  pairs = Interactions.from_pairs(users, rng.permuted(np.tile(np.arange(30), 3)),
                                  n_users=n_users, n_items=n_items)  # items 30.. never seen
  model, hp = models.get_model("bpr_mf"), models.ModelConfig(dim=4)
  cfg = train.TrainConfig(batch_size=32, lr=0.05, reg=0.0)
  opt = optax.adam(cfg.lr)
  params0 = model.init(jax.random.key(1), n_users, n_items, hp)
  u, i = np.meshgrid(np.arange(n_users), np.arange(30, 45), indexing="ij")
  avoid = pairs.union(Interactions.from_pairs(u.ravel(), i.ravel(), n_users=n_users,
                                              n_items=n_items))
  epoch = train.make_epoch_fn(model, hp, cfg, opt, n_items, int(avoid.user_degrees().max()),
                              pairs.nnz)
  moved = {}
  for name, avoid_graph in (("avoid", build_graph(avoid)), ("plain", None)):
    params, _, _ = epoch(jax.tree.map(jnp.copy, params0), opt.init(params0), jax.random.key(2),
                         train.shuffle(0, 1, pairs.nnz), build_graph(pairs), avoid_graph)
    moved[name] = np.any(np.asarray(params["item"]) != np.asarray(params0["item"]), axis=1)
  assert not moved["avoid"][30:45].any() and moved["avoid"][45:].any()
  assert moved["plain"][30:45].any()


def test_keep_epochs_are_the_trajectory_of_the_same_run():
  data = _planted()
  cfg = train.TrainConfig(batch_size=64, min_epochs=3, max_epochs=3, lr=1e-2)
  fit = train.fit(models.get_model("bpr_mf"), data, cfg=cfg, seed=1, keep_epochs=(1, 2, 3, 9))
  assert sorted(fit.snapshots) == [1, 2, 3]  # epoch 9 is never reached
  for k in ("user", "item"):
    np.testing.assert_array_equal(fit.snapshots[fit.best_epoch][k], fit.params[k])
    assert not np.allclose(fit.snapshots[1][k], fit.snapshots[3][k])
  shorter = train.fit(models.get_model("bpr_mf"), data, cfg=dataclasses.replace(
      cfg, min_epochs=1, max_epochs=1), seed=1, keep_epochs=(1,))
  np.testing.assert_array_equal(shorter.snapshots[1]["user"], fit.snapshots[1]["user"])
