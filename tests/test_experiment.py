import numpy as np
import pytest

from jaxcond import models
from jaxcond.data.interactions import Interactions
from jaxcond.data.split import given_split, random_split
from jaxcond.judging import experiment
from jaxcond.models import train


def test_train_and_evaluate_reports_protocol_and_masks_valid():
  rng = np.random.default_rng(0)
  users = np.repeat(np.arange(50), 10)
  items = np.concatenate([rng.choice(40, 10, replace=False) for _ in range(50)])
  data = random_split(Interactions.from_pairs(users, items), seed=0)
  out = experiment.train_and_evaluate(
      data, model="bpr_mf", model_cfg=models.ModelConfig(dim=4),
      train_cfg=train.TrainConfig(max_epochs=2, min_epochs=0, eval_every=1),
      protocol={"dataset": "toy"})
  assert out["protocol"] == {"dataset": "toy"}
  assert out["n_train"] == data.train.nnz and out["epochs"] == 2
  assert out["test"]["n_users"] == int((data.test.user_degrees() > 0).sum())
  assert len(out["history"]) == 2
  tail, head = out["groups"]["tail"]["test"], out["groups"]["head"]["test"]
  assert tail["n_users"] + head["n_users"] == out["test"]["n_users"]
  assert (tail["ndcg@10"] * tail["n_users"] + head["ndcg@10"] * head["n_users"]
          == pytest.approx(out["test"]["ndcg@10"] * out["test"]["n_users"], rel=1e-5))
  assert 0 < out["items"]["coverage@10"] <= 1 and out["items"]["popularity@10"] > 0


def test_test_metrics_mask_train_and_valid_items():
  """Valid items carry the highest scores: masked at test time, they must not be ranked."""
  users = np.repeat(np.arange(4), 6)
  items = np.tile(np.arange(6), 4)
  tags = np.tile([0, 0, 0, 1, 1, 2], 4)  # per user: 3 train, 2 valid (items 3, 4), 1 test (5)
  data = given_split(Interactions.from_pairs(users, items, split_tags=tags), seed=0)
  reps = (np.ones((4, 1), np.float32), np.array([[9], [8], [7], [6], [5], [1]], np.float32))
  model = models.get_model("bpr_mf")
  test = train.evaluate_model(model, {"user": reps[0], "item": reps[1]}, None,
                              models.ModelConfig(dim=1), history=data.train,
                              exclude=(data.train, data.valid), target=data.test)
  # With train (0-2) and valid (3, 4) masked, the test item 5 is ranked first.
  assert test["ndcg@5"] == 1.0 and test["recall@5"] == 1.0
  valid = train.evaluate_model(model, {"user": reps[0], "item": reps[1]}, None,
                               models.ModelConfig(dim=1), history=data.train,
                               exclude=(data.train,), target=data.valid)
  assert valid["recall@5"] == 1.0 and valid["precision@5"] == pytest.approx(2 / 5, rel=1e-6)


def test_train_and_evaluate_masks_train_and_valid_at_test_time(monkeypatch):
  rng = np.random.default_rng(0)
  users = np.repeat(np.arange(30), 10)
  items = np.concatenate([rng.choice(40, 10, replace=False) for _ in range(30)])
  data = random_split(Interactions.from_pairs(users, items), seed=0)
  calls = []
  real = train.evaluate_model

  def spy(*args, **kwargs):
    calls.append(kwargs)
    return real(*args, **kwargs)
  monkeypatch.setattr(train, "evaluate_model", spy)
  experiment.train_and_evaluate(data, model="ease", model_cfg=models.ModelConfig(ease_l2=1.0))
  valid_call, test_call = calls
  assert valid_call["target"] is data.valid and valid_call["exclude"] == (data.train,)
  assert test_call["target"] is data.test
  assert test_call["exclude"] == (data.train, data.valid)
