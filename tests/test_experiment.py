import numpy as np

from jaxcond import experiment, models, train
from jaxcond.interactions import Interactions
from jaxcond.split import random_split


def test_train_and_evaluate_reports_protocol_and_masks_valid():
  rng = np.random.default_rng(0)
  users = np.repeat(np.arange(50), 10)
  items = np.concatenate([rng.choice(40, 10, replace=False) for _ in range(50)])
  data = random_split(Interactions.from_pairs(users, items), seed=0)
  out = experiment.train_and_evaluate(
      data, model="bpr_mf", model_cfg=models.ModelConfig(dim=4),
      train_cfg=train.TrainConfig(max_epochs=2, min_epochs=0), protocol={"dataset": "toy"})
  assert out["protocol"] == {"dataset": "toy"}
  assert out["n_train"] == data.train.nnz and out["epochs"] == 2
  assert out["test"]["n_users"] == int((data.test.user_degrees() > 0).sum())
  assert len(out["history"]) == 2
