"""Choosing how far to run the outer loop, on validation pairs its reward never sees.

The outer loop fits the validation pairs its reward ranks, so those pairs stop telling
how a set generalises (benchmarks/RESULTS.md, "Why DConRec loses"). With a hold-out, the
reward sees part of each user's validation pairs, the loop's logits are saved every few
steps, and the final set is the saved one on which the proxy model, trained to
convergence, ranks the held-out pairs best. (The proxy behind the pool and the prior was
early-stopped on the whole validation split: the held-out pairs are unseen by the reward
and the choice, not by that one stopping epoch. A user whose validation pairs are all held
out gives its logits no reward: at share 0.5, half the users with a single one.)
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import pathlib
import time
from typing import Callable

import numpy as np

from jaxcond import models
from jaxcond.core import npz, records
from jaxcond.data.interactions import Interactions
from jaxcond.data.split import DatasetSplit
from jaxcond.models import train as train_lib
from jaxcond.models import train_many

METRIC = "ndcg@10"
_TESTED = ("test", METRIC)  # the memo's entry of test figures, by fit (held_out_scores)


def split_valid(valid: Interactions, share: float, seed: int) -> tuple[Interactions,
                                                                       Interactions]:
  """(reward part, held-out part) of the validation pairs: per user with n pairs,
  floor(share * n + u) held out at random (u uniform in [0, 1): share of them on average)."""
  if not 0 < share < 1:
    raise ValueError(f"holdout share must be in (0, 1), got {share}")
  rng = np.random.default_rng([seed, 0x686F6C64])
  n_U = valid.user_degrees()
  held_U = np.floor(share * n_U + rng.random(valid.n_users)).astype(np.int64)
  # Rank pairs within their user by a random key; the first held_U[u] are held out.
  order = np.lexsort((rng.random(valid.nnz), valid.users()))
  rank_N = np.empty(valid.nnz, np.int64)
  rank_N[order] = np.arange(valid.nnz) - np.repeat(valid.indptr[:-1], n_U)
  held_N = rank_N < held_U[valid.users()]
  if not held_N.any() or held_N.all():
    raise ValueError(f"holdout share {share} leaves {int(held_N.sum())} of {valid.nnz} "
                     "validation pairs held out; both parts must be non-empty")
  return valid.subset(~held_N), valid.subset(held_N)


def snapshot_steps(outer_steps: int, every: int) -> list[int]:
  """The steps whose logits are saved: 0, every, 2 every, ..., and the last."""
  if every < 1:
    raise ValueError(f"holdout_every must be >= 1, got {every}")
  return sorted({*range(0, outer_steps + 1, every), outer_steps})


def save_snapshot(path: pathlib.Path, logits_C: np.ndarray, step: int,
                  fingerprint: str, scored: dict | None = None) -> None:
  """The logits after `step` outer steps of the run `fingerprint` names (atomic); with
  `scored` ({"score", "test", "metric"} of the same set), `choose` reads it, not refits."""
  npz.save_arrays(path, {"logits": np.asarray(logits_C, np.float32)},
                  {"step": step, "fingerprint": fingerprint, **(scored or {})})


def load_snapshot(path: pathlib.Path, fingerprint: str | None = None) -> tuple[np.ndarray,
                                                                               dict]:
  """(logits [C], meta); a ValueError if missing or, given `fingerprint`, of another run."""
  if not path.exists():
    raise ValueError(f"no saved logits at {path}: the outer loop did not save that step; "
                     "start the seed afresh (--noresume / resume=False)")
  arrays, meta = npz.load_arrays(path)
  if fingerprint is not None and meta.get("fingerprint") != fingerprint:
    raise ValueError(f"saved logits {path} belong to a run with other settings or data; "
                     "start afresh (--noresume) or use another output folder")
  return arrays["logits"], meta


def proxy_on(data: DatasetSplit, reward_part: Interactions, held_out: Interactions, *,
             model_name: str, seed: int, model_cfg: models.ModelConfig,
             train_cfg: train_lib.TrainConfig, keep_epochs=()) -> train_lib.FitResult:
  """The proxy model early-stopped on `reward_part`, `held_out` masked: the proxy of a study
  whose sets must not read the held-out (selection) pairs."""
  return train_lib.fit(models.get_model(model_name), dataclasses.replace(data, valid=reward_part),
                       hparams=model_cfg, cfg=train_cfg, seed=seed, exclude_valid=(held_out,),
                       keep_epochs=keep_epochs)


def study_protocol(protocol: dict, reward_part: Interactions, held_out: Interactions,
                   test: Interactions) -> dict:
  """A study's protocol record: the split's, with the sizes of its three parts."""
  return {**protocol, "reward_pairs": reward_part.nnz, "selection_pairs": held_out.nnz,
          "test_pairs": test.nnz}


def held_out_score(data: DatasetSplit, subset: Interactions, reward_part: Interactions,
                   held_out: Interactions, *, model_name: str, model_cfg: models.ModelConfig,
                   train_cfg: train_lib.TrainConfig, seed: int,
                   avoid: Interactions | None = None) -> dict:
  """{"score": METRIC on the held-out pairs, "test": METRIC on test} of `model_name`
  trained on `subset` (step-matched, early stopping on the held-out pairs; the reward
  part's items are masked like training ones). "test" is reported, never chosen on."""
  return held_out_scores(data, [subset], [seed], reward_part, held_out, model_name=model_name,
                         model_cfg=model_cfg, train_cfg=train_cfg, avoids=[avoid])[0]


def held_out_scores(data: DatasetSplit, subsets: list, seeds: list,
                    reward_part: Interactions, held_out: Interactions, *, model_name: str,
                    model_cfg: models.ModelConfig, train_cfg: train_lib.TrainConfig,
                    avoids: list | None = None, memo: dict | None = None) -> list[dict]:
  """held_out_score of each (subsets[m], seeds[m], avoids[m]); same-size sets are trained
  together (train_many.fit_many, reading and filling `memo`, which also keeps each fit's
  test figure: a fit read back is not evaluated again)."""
  model = models.get_model(model_name)
  split = dataclasses.replace(data, valid=held_out)
  avoids = [None] * len(subsets) if avoids is None else avoids
  fits = [None] * len(subsets)
  tested = {} if memo is None else memo.setdefault(_TESTED, {})
  for nnz in sorted({s.nnz for s in subsets}):
    idx = [m for m, s in enumerate(subsets) if s.nnz == nnz]
    cfg = train_lib.matched_to(train_cfg, data.train.nnz, nnz)
    if model.trainable:
      got = train_many.fit_many(model, split, [subsets[m] for m in idx],
                                [seeds[m] for m in idx], hparams=model_cfg, cfg=cfg,
                                avoids=[avoids[m] for m in idx], exclude_valid=(reward_part,),
                                memo=memo)
    else:  # closed form: nothing to train together
      got = [train_lib.fit(model, split, hparams=model_cfg, cfg=cfg, seed=seeds[m],
                           train=subsets[m], exclude_valid=(reward_part,)) for m in idx]
    for m, fit in zip(idx, got):
      fits[m] = fit
  out = []
  for fit in fits:
    # By identity, the fit kept beside its figure so that its id is not reused.
    if id(fit) not in tested:
      tested[id(fit)] = fit, float(train_lib.evaluate_model(
          model, fit.params, fit.graph, model_cfg, history=data.train,
          exclude=(data.train, data.valid), target=data.test)[METRIC])
    out.append({"score": float(fit.best_valid[METRIC]), "test": tested[id(fit)][1]})
  return out


def saved_scores(data: DatasetSplit, subsets: dict, seeds: list, reward_part: Interactions,
                 held_out: Interactions, fits_dir: pathlib.Path, *, model_cfg: models.ModelConfig,
                 train_cfg: train_lib.TrainConfig, log: Callable[[str], None] = print,
                 chunk: int = 12) -> dict:
  """held_out_scores of BPR-MF on each {name: subset} with every seed, `chunk` fits trained
  together, each written to `fits_dir` as done and read back on a rerun:
  {name: {"selection": [per seed], "test": [per seed]}} ("selection": on held_out)."""
  fits_dir.mkdir(parents=True, exist_ok=True)
  paths = {}
  for name, subset in subsets.items():
    for seed in seeds:
      tag = hashlib.sha256(f"{subset.checksum()}-{seed}-{train_cfg}-{model_cfg}"
                           .encode()).hexdigest()[:20]
      paths[name, seed] = fits_dir / f"{tag}.json"
  todo = [key for key, path in paths.items() if not path.exists()]
  t0 = time.perf_counter()
  for start in range(0, len(todo), chunk):
    part = todo[start:start + chunk]
    got = held_out_scores(data, [subsets[name] for name, _ in part], [seed for _, seed in part],
                          reward_part, held_out, model_name="bpr_mf", model_cfg=model_cfg,
                          train_cfg=train_cfg)
    for (name, seed), g in zip(part, got):
      records.write_json_atomic(paths[name, seed], {"set": name, "seed": seed,
                                                   "selection": g["score"], "test": g["test"]})
    log(f"[{start + len(part)}/{len(todo)} fits to do, {time.perf_counter() - t0:.0f}s]")
  out = {}
  for name in subsets:
    rows = [json.loads(paths[name, seed].read_text()) for seed in seeds]
    out[name] = {"selection": [r["selection"] for r in rows], "test": [r["test"] for r in rows]}
  return out


def choose(snapshot_dir: pathlib.Path, names: list,
           scores_of: Callable[[list, list], list], fingerprint: str,
           log: Callable[[str], None] = print, what: str = "outer steps") -> dict:
  """Scores every saved logits file `step<name>.npz` not scored before, all in one call
  (scores_of: ([name], [logits]) -> [{"score", "test"}, optionally with "fit_seeds",
  "fit_scores", "fit_tests" when each is a mean over fits], so same-size sets train
  together; the figures are written beside the logits, so a rerun reads them back) and
  returns {"steps", "scores", "test_scores", "chosen_step", "metric"} (and "fits", the
  per-fit figures, when every step has them): the best score, the first on ties."""
  saved = [load_snapshot(snapshot_dir / f"step{name}.npz", fingerprint) for name in names]
  todo = [m for m, (_, meta) in enumerate(saved)
          if "score" not in meta or meta.get("metric") != METRIC or "test" not in meta]
  if todo:
    got_all = scores_of([names[m] for m in todo], [saved[m][0] for m in todo])
    for m, got in zip(todo, got_all, strict=True):
      logits, meta = saved[m]
      meta.update(got, metric=METRIC)
      npz.save_arrays(snapshot_dir / f"step{names[m]}.npz", {"logits": logits}, meta)
  scores = [float(meta["score"]) for _, meta in saved]
  tests = [float(meta["test"]) for _, meta in saved]
  for name, score, test in zip(names, scores, tests):
    log(f"hold-out: logits of {what} {name}, {METRIC} on the choosing validation pairs "
        f"{score:.4f} (test, not used to choose: {test:.4f})")
  best = int(np.argmax(scores))  # the first maximum
  chosen = {"steps": list(names), "scores": scores, "test_scores": tests,
            "chosen_step": names[best], "metric": METRIC}
  if all("fit_scores" in meta for _, meta in saved):  # scores that are means over fits
    chosen["fits"] = [{k: meta[k] for k in ("fit_seeds", "fit_scores", "fit_tests")}
                      for _, meta in saved]
  return chosen
