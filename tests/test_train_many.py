import dataclasses

import jax
import numpy as np
import pytest

from jaxcond import models
from jaxcond.data.interactions import Interactions
from jaxcond.data.split import random_split
from jaxcond.judging import fits
from jaxcond.models import train, train_many

MODEL, HP = models.get_model("bpr_mf"), models.ModelConfig(dim=8)
CFG = train.TrainConfig(batch_size=64, lr=0.02, max_epochs=30, min_epochs=4, patience=2,
                        eval_every=2)


def _data(seed=0, n_users=90, n_items=60):
  """Users and items in 3 clusters; each user likes items of its cluster."""
  rng = np.random.default_rng(seed)
  cu, ci = rng.integers(0, 3, n_users), rng.integers(0, 3, n_items)
  users, items = [], []
  for u in range(n_users):
    chosen = rng.choice(np.flatnonzero(ci == cu[u]), size=10, replace=False)
    users += [u] * 10
    items += chosen.tolist()
  return random_split(Interactions.from_pairs(users, items, n_users=n_users, n_items=n_items),
                      seed=seed)


def _sets(data, n_sets, size):
  rng = np.random.default_rng(1)
  return [data.train.subset(rng.permutation(data.train.nnz) < size) for _ in range(n_sets)]


def _assert_same(one, many):
  assert (many.best_epoch, many.epochs) == (one.best_epoch, one.epochs)
  assert [r["epoch"] for r in many.history] == [r["epoch"] for r in one.history]
  for a, b in zip(one.history, many.history):
    np.testing.assert_allclose(b["loss"], a["loss"], rtol=1e-4)
    np.testing.assert_allclose(b["valid"]["ndcg@10"], a["valid"]["ndcg@10"], atol=1e-5)
  for name in ("user", "item"):
    np.testing.assert_allclose(many.params[name], one.params[name], atol=1e-4)
  assert set(many.best_valid) == set(one.best_valid) and "recall@20" in one.best_valid
  for name, value in one.best_valid.items():  # every metric of the best epoch, at the end
    np.testing.assert_allclose(many.best_valid[name], value, atol=1e-5)


@pytest.mark.parametrize("group", [None, 2])
def test_fit_many_equals_fitting_one_by_one(group):
  data = _data()
  sets = _sets(data, 4, data.train.nnz // 2)
  seeds = [3, 4, 5, 6]
  # One set also avoids extra pairs as negatives (as the condensed set avoids false
  # negatives); different stop epochs exercise dropping stopped models.
  avoid = _sets(data, 1, 100)[0]
  avoids = [None, avoid, None, None]
  cfgs = [CFG, CFG, CFG, CFG]
  many = train_many.fit_many(MODEL, data, sets, seeds, hparams=HP, cfg=CFG, avoids=avoids,
                             group=group)
  for s, seed, a, c, fit in zip(sets, seeds, avoids, cfgs, many):
    one = train.fit(MODEL, data, hparams=HP, cfg=c, seed=seed, train=s, avoid=a)
    _assert_same(one, fit)
  assert len({f.epochs for f in many}) > 1, "want models that stop at different epochs"


def test_fit_many_with_threads_and_a_validation_sample():
  data = _data(seed=2)
  sets = _sets(data, 3, data.train.nnz // 3)
  cfg = train.TrainConfig(**{**CFG.__dict__, "valid_users": 40})
  many = train_many.fit_many(MODEL, data, sets, [0, 1, 2], hparams=HP, cfg=cfg, group=1,
                             workers=2)
  for s, seed, fit in zip(sets, [0, 1, 2], many):
    _assert_same(train.fit(MODEL, data, hparams=HP, cfg=cfg, seed=seed, train=s), fit)
  assert many[0].history[0]["valid"]["n_users"] == 40


def test_validation_sample_is_fixed_and_of_users_with_pairs():
  data = _data()
  a = train.validation_target(data.valid, 25)
  b = train.validation_target(data.valid, 25)
  assert a.checksum() == b.checksum()
  have = np.diff(a.indptr) > 0
  assert have.sum() == 25
  np.testing.assert_array_equal(a.indptr[1:][have] - a.indptr[:-1][have],
                                np.diff(data.valid.indptr)[have])
  assert train.validation_target(data.valid, 0) is data.valid
  assert train.validation_target(data.valid, 10**6) is data.valid


def test_fit_many_rejects_bad_input():
  data = _data()
  a, b = _sets(data, 1, 100)[0], _sets(data, 1, 120)[0]
  with pytest.raises(ValueError, match="same-size"):
    train_many.fit_many(MODEL, data, [a, b], [0, 1], hparams=HP, cfg=CFG)
  with pytest.raises(ValueError, match="one of each"):
    train_many.fit_many(MODEL, data, [a, a], [0], hparams=HP, cfg=CFG)
  with pytest.raises(ValueError, match="closed form"):
    train_many.fit_many(models.get_model("ease"), data, [a], [0])
  with pytest.raises(ValueError, match="at least one"):
    train_many.fit_many(MODEL, data, [], [])


def test_default_group_is_one_on_cpu():
  assert train_many.default_group() == (1 if jax.default_backend() == "cpu" else None)


def test_a_memo_reads_back_fits_of_the_same_inputs_and_trains_the_rest(trained_fits):
  data = _data()
  sets = _sets(data, 3, data.train.nnz // 2)
  trained, memo = trained_fits, {}
  first = train_many.fit_many(MODEL, data, sets[:2], [3, 4], hparams=HP, cfg=CFG, memo=memo)
  again = train_many.fit_many(MODEL, data, [sets[1], sets[2], sets[0]], [4, 3, 3], hparams=HP,
                              cfg=CFG, memo=memo, group=None)
  assert trained == [1, 1, 1] and len(memo) == 3  # sets[2] with seed 3 only, the 2nd time
  assert again[0] is first[1] and again[2] is first[0]
  _assert_same(train.fit(MODEL, data, hparams=HP, cfg=CFG, seed=3, train=sets[2]), again[1])
  twice = train_many.fit_many(MODEL, data, [sets[2], sets[2], sets[2]], [5, 5, 6], hparams=HP,
                              cfg=CFG, memo=memo, group=None)
  assert trained[3:] == [2] and twice[0] is twice[1] and twice[2] is not twice[0]


def test_fit_key_names_every_input_a_fit_depends_on():
  data = _data()
  a, b = _sets(data, 2, 100)
  other = _sets(data, 1, 50)[0]  # inside a: _sets draws one order
  base = dict(model=MODEL, data=data, train=a, seed=0, avoid=None, hparams=HP, cfg=CFG,
              exclude_valid=())

  def key(**change):
    return train_many.fit_key(**{**base, **change})

  changed = [key(train=b), key(seed=1), key(avoid=data.valid),
             key(hparams=models.ModelConfig(dim=4)), key(cfg=dataclasses.replace(CFG, lr=0.5)),
             key(exclude_valid=(other,)), key(data=dataclasses.replace(data, valid=data.test)),
             key(model=models.get_model("lightgcn"))]
  assert key() not in changed and len(set(changed)) == len(changed)
  empty = other.subset(np.zeros(other.nnz, bool))
  # Nothing masked, or negatives that avoid only the set's own pairs: the same fit.
  assert key(exclude_valid=(empty,)) == key() == key(avoid=a.subset(np.arange(a.nnz) < 30))


def test_full_data_fits_of_several_seeds_train_the_uncached_ones_together(tmp_path,
                                                                          trained_fits):
  data, proto = _data(), {"data_checksum": "synthetic"}
  kw = dict(model_cfg=HP, train_cfg=CFG, cache_dir=tmp_path, log=lambda s: None)
  alone = fits.fit_full("bpr_mf", data, proto, seed=4, **kw)
  trained_fits.clear()  # count from here
  trained = trained_fits
  both = fits.fit_full_seeds("bpr_mf", data, proto, seeds=[3, 4], **kw)
  assert trained == [1]  # seed 4 is read from the cache
  assert both[1][1] == alone[1]
  ref = train.fit(MODEL, data, hparams=HP, cfg=CFG, seed=3)
  np.testing.assert_allclose(both[0][0]["user"], ref.params["user"], atol=1e-5)
  assert both[0][1]["best_epoch"] == ref.best_epoch
  again = fits.fit_full_seeds("bpr_mf", data, proto, seeds=[4, 3], **kw)
  assert trained == [1] and again[1][1] == both[0][1]
