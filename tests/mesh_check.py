"""Run by tests/test_sharding.py in a subprocess with 4 fake CPU devices: the outer loop and
the evaluator on meshes of 1 and 4 devices (and the evaluator without a mesh); prints
their numbers as JSON."""

import json
import os
import sys

os.environ["XLA_FLAGS"] = "--xla_force_host_platform_device_count=4"
os.environ["JAX_PLATFORMS"] = "cpu"

import jax
import numpy as np

from jaxcond import models
from jaxcond.condense import condenser, inner
from jaxcond.condense import pool as pool_lib
from jaxcond.core import sharding
from jaxcond.data.interactions import Interactions
from jaxcond.data.split import random_split
from jaxcond.models import ModelConfig, mf, train
from jaxcond.models import evaluate as evaluate_lib
from jaxcond.models.graph import build_graph

HP = ModelConfig(dim=8)


def problem(n_users=37, n_items=50):
  rng = np.random.default_rng(0)
  deg = rng.integers(3, 20, n_users)  # uneven users: padding and split blocks both matter
  users = np.repeat(np.arange(n_users), deg)
  items = np.concatenate([rng.choice(n_items, d, replace=False) for d in deg])
  data = random_split(Interactions.from_pairs(users, items), seed=0)
  proxy = {"user": rng.normal(size=(n_users, 8)).astype(np.float32),
           "item": rng.normal(size=(n_items, 8)).astype(np.float32)}
  return data, proxy


def condensed(data, proxy, cfg, mesh):
  pool = pool_lib.build_pool(data.train, fixed_users=[0, 5])
  sizes = condenser.budget_of(pool, data.train.nnz, cfg)
  max_degree = int(data.train.user_degrees().max())
  sdata = condenser.step_data(pool, pool_lib.rows_of(pool, 4), proxy, data.valid,
                              build_graph(data.train, dense_limit=0), sizes, cfg, max_degree,
                              mesh=mesh)
  prior = np.random.default_rng(1).normal(size=pool.size).astype(np.float32)
  state = condenser.init_state(sdata, cfg, prior, mesh=mesh)
  res = condenser.condense(pool, sdata, cfg, hparams=HP, max_degree=max_degree, state=state,
                           sizes=sizes, log_every=1, mesh=mesh)
  signal = condenser.reward_signal(res.logits_C, jax.random.key(3), sdata, cfg, HP, max_degree,
                                   n_masks=3, n_keys=2)
  return {"logits": res.logits_C.tolist(), "keep": res.keep_C.astype(int).tolist(),
          "rewards": [r["reward"] for r in res.history],
          "signal": signal["reward_mean"],
          "shards": len(sdata.inner.users_C.sharding.device_set)}


def evaluated(data, mesh):
  params = mf.init(jax.random.key(0), data.train.n_users, data.train.n_items, HP)
  reps = mf.represent(params, None, HP)
  out = evaluate_lib.evaluate(mf.score, reps, history=data.train, exclude=(data.train,),
                              target=data.test, block_users=8, mesh=mesh)
  return {k: v for k, v in out.items() if k != "n_users"}


def evaluated_lightgcn(data, mesh):
  """LightGCN's propagation over a dense adjacency, split along users on a mesh."""
  hp = ModelConfig(dim=8, n_layers=2)
  model = models.get_model("lightgcn")
  params = model.init(jax.random.key(1), data.train.n_users, data.train.n_items, hp)
  graph = build_graph(data.train)  # small: the dense normalised adjacency
  assert graph.adj_UxI.size
  out = train.evaluate_model(model, params, graph, hp, history=data.train,
                             exclude=(data.train,), target=data.test, block_users=8,
                             mesh=mesh)
  return {k: v for k, v in out.items() if k != "n_users"}


def main():
  assert jax.device_count() == 4, jax.devices()
  data, proxy = problem()
  configs = {
      "one_step": condenser.CondenseConfig(ratio=0.3, outer_steps=6),
      "one_step_rms_sgd": condenser.CondenseConfig(ratio=0.3, outer_steps=6,
                                                   outer_optimizer="rms_sgd"),
      "trained": condenser.CondenseConfig(
          ratio=0.3, outer_steps=4, credit="global",
          inner=inner.InnerConfig(steps=3, start="fresh", update="all", optimizer="adam",
                                  lr=0.01)),
  }
  out = {"condense": {}, "evaluate": {"none": evaluated(data, None)},
         "lightgcn": {"none": evaluated_lightgcn(data, None)}}
  for n in (1, 4):
    mesh = sharding.make_mesh(n)
    out["condense"][n] = {name: condensed(data, proxy, cfg, mesh)
                          for name, cfg in configs.items()}
    out["evaluate"][n] = evaluated(data, mesh)
    out["lightgcn"][n] = evaluated_lightgcn(data, mesh)
  json.dump(out, sys.stdout)


if __name__ == "__main__":
  main()
