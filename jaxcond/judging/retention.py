"""Retention: a set's test figures over the full data's, per seed, summarised over seeds;
for one evaluator, overall, per user group and on the item side."""

from __future__ import annotations

import numpy as np

HEADLINE = ("ndcg@10", "recall@10", "ndcg@20", "recall@20", "ndcg@5", "recall@5")


def summarize(rows: list[dict]) -> dict:
  """Mean, std and worst (min) over seeds of every test metric."""
  keys = [k for k in rows[0] if k != "n_users"]
  values = {k: np.array([r[k] for r in rows]) for k in keys}
  return {"mean": {k: float(v.mean()) for k, v in values.items()},
          "std": {k: float(v.std()) for k, v in values.items()},
          "worst": {k: float(v.min()) for k, v in values.items()}}


def retention(part: list[dict], full: list[dict]) -> dict:
  """Per-seed ratios metric(S) / metric(full), summarised over seeds."""
  ratios = [{k: s[k] / f[k] if f[k] > 0 else float("nan") for k in HEADLINE}
            for s, f in zip(part, full)]
  out = summarize(ratios)
  return {**out["mean"], "std": out["std"], "worst": out["worst"]}


def model_report(ev: dict, names: tuple, n_train: int) -> dict:
  """One evaluator's figures: overall, per user group, and on the item side. `ev` maps
  "full" and each name (the first is the set judged, the rest its baselines) to per-seed
  evaluation records (judging.judge.test_metrics)."""
  full_tests = [m["test"] for m in ev["full"]]

  def part(select):
    full = [select(t) for t in full_tests]
    out = {"full": {"test": summarize(full)["mean"]}, "baselines": {}}
    for i, name in enumerate(names):
      tests = [select(m["test"]) for m in ev[name]]
      entry = {"test": summarize(tests)["mean"], "retention": retention(tests, full)}
      if i == 0:
        out.update(condensed={"test": entry["test"]}, retention=entry["retention"])
      else:
        out["baselines"][name] = entry
    return out

  entry = part(lambda t: {k: v for k, v in t.items() if k not in ("groups", "items")})
  entry["full"]["per_seed"] = ev["full"]
  entry["condensed"]["per_seed"] = ev[names[0]]
  for name in names[1:]:
    entry["baselines"][name].update(
        size_fraction=float(np.mean([m["n_train"] for m in ev[name]])) / n_train,
        per_seed=ev[name])
  entry["groups"] = {g: part(lambda t, g=g: t["groups"][g]) for g in full_tests[0]["groups"]}
  entry["items"] = {
      k: {n: float(np.mean([m["test"]["items"][k] for m in ev[n]])) for n in ("full", *names)}
      for k in full_tests[0]["items"]}
  return entry
