"""Rank-agreement reports: summary, reading back, merging runs, markdown; against pairs
counted by hand."""

import itertools
import json

import pytest

from jaxcond.report import rank_report

CONFIGS = ("a", "b", "c", "d")


def _tau_by_hand(full, other):
  """No ties here: (concordant - discordant) / pairs."""
  signs = [(full[x] - full[y]) * (other[x] - other[y]) for x, y in itertools.combinations(full, 2)]
  return (sum(s > 0 for s in signs) - sum(s < 0 for s in signs)) / len(signs)


FULL = {0: {"a": 0.40, "b": 0.30, "c": 0.20, "d": 0.10},
        1: {"a": 0.41, "b": 0.19, "c": 0.21, "d": 0.11}}  # seed 1 swaps b and c
SETS = {  # (method, seed): scores on S
    ("dconrec", 0): {"a": 0.1, "b": 0.2, "c": 0.3, "d": 0.4},  # reversed
    ("random", 0): {"a": 0.4, "b": 0.3, "c": 0.1, "d": 0.2},  # c, d swapped
    ("random", 1): {"a": 0.4, "b": 0.3, "c": 0.2, "d": 0.1},
}


def _report(rows, checksum="x" * 64, **extra):
  per_seed = {}
  for method, seed in rows:
    per_seed.setdefault(method, []).append(
        {"seed": seed, "full": FULL[seed], "condensed": SETS[(method, seed)], "tau": None})
  return {"ratio": 0.25, "metric": "ndcg@10", "configs": list(CONFIGS),
          "config_specs": list(CONFIGS), "data_checksum": checksum, "per_seed": per_seed,
          **extra}


def test_merge_gathers_seeds_and_recomputes_tau():
  first = _report([("dconrec", 0), ("random", 0)])
  second = _report([("dconrec", 0), ("random", 0), ("random", 1)])
  tau = rank_report.merge([("one.json", None, first), ("two.json", "other", second)])
  assert tau["seeds"] == [0, 1]
  assert {m: [r["seed"] for r in rs] for m, rs in tau["per_seed"].items()} == {
      "dconrec": [0], "random": [0, 1], "other": [0]}  # random's seed 0 held once
  for m, rs in tau["per_seed"].items():
    for r in rs:
      key = ("dconrec" if m == "other" else m, r["seed"])
      assert r["tau"] == pytest.approx(_tau_by_hand(FULL[r["seed"]], SETS[key]))
  assert tau["per_seed"]["dconrec"][0]["tau"] == pytest.approx(-1.0)
  random = tau["summary"]["random"]
  assert random["tau_mean"] == pytest.approx((4 / 6 + 4 / 6) / 2)  # one swap on each seed
  # Seeds 0 and 1 agree on 5 of the 6 pairs (not b, c): the stable pairs.
  agree = tau["full_agreement"]
  assert agree["n_pairs"] == 6 and len(agree["stable_pairs"]) == 5
  assert ["b", "c"] not in agree["stable_pairs"] and ["c", "b"] not in agree["stable_pairs"]
  assert agree["self_tau"][0]["tau"] == pytest.approx(4 / 6)
  assert [r["stable_swapped"] for r in tau["per_seed"]["random"]] == [[["c", "d"]], []]
  assert len(tau["per_seed"]["dconrec"][0]["stable_swapped"]) == 5
  assert tau["data_checksum"] == "x" * 64
  assert [s["checked"] for s in tau["merged_from"]] == [True, True]


def test_merge_refuses_what_cannot_be_compared():
  base = _report([("random", 0)])

  def refused(other, label=None):
    with pytest.raises(ValueError) as e:
      rank_report.merge([("one.json", None, base), ("two.json", label, other)])
    return str(e.value)

  other_full = _report([("random", 0)])
  other_full["per_seed"]["random"][0]["full"] = {**FULL[0], "a": 0.5}
  assert "full-data scores of seed 0 differ between one.json and two.json" in refused(
      other_full)
  other_set = _report([("random", 0)])
  other_set["per_seed"]["random"][0]["condensed"] = {**SETS[("random", 0)], "a": 0.0}
  assert "label one of them" in refused(other_set)
  assert "other data" in refused(_report([("random", 0)], checksum="y" * 64))
  assert "ratio" in refused({**_report([("random", 0)]), "ratio": 0.5})
  assert "other configurations" in refused({**_report([("random", 0)]), "configs": ["a"]})
  assert "other settings" in refused(
      {**_report([("random", 0)]), "config_specs": ["a:dim=8", "b", "c", "d"]})
  old = _report([("random", 0)])
  del old["data_checksum"]  # older reports recorded none: merged, marked unchecked
  tau = rank_report.merge([("one.json", None, base), ("old.json", None, old)])
  assert [s["checked"] for s in tau["merged_from"]] == [True, False]
  assert "holds no dconrec set to call 'mine'" in refused(_report([("random", 0)]), "mine")
  with pytest.raises(ValueError, match="nothing to merge"):
    rank_report.merge([])


def test_summarize_without_a_second_full_seed_has_no_agreement():
  rows = {"random": [{"seed": 0, "tau": 0.5, "p_value": 0.1, "condensed": {}}]}
  summary, agreement = rank_report.summarize(rows, {0: FULL[0]})
  assert agreement is None and "stable_swapped_mean" not in summary["random"]
  assert summary["random"] == {"tau_mean": 0.5, "tau_std": 0.0, "p_value_max": 0.1,
                               "seeds": [0]}


def test_read_names_the_file_and_the_fault(tmp_path):
  with pytest.raises(ValueError, match="no file .*absent.json"):
    rank_report.read(tmp_path / "absent.json")
  bad = tmp_path / "bad.json"
  bad.write_text("{not json")
  with pytest.raises(ValueError, match="bad.json is not a kendall.json"):
    rank_report.read(bad)
  bad.write_text(json.dumps({"configs": [], "metric": "ndcg@10"}))
  with pytest.raises(ValueError, match=r"no per_seed"):
    rank_report.read(bad)
  twice = _report([("random", 0), ("dconrec", 0)])
  twice["per_seed"]["dconrec"][0]["full"] = FULL[1]
  with pytest.raises(ValueError, match="two different full-data scores for seed 0"):
    rank_report.full_scores(twice, "twice.json")


def test_markdown_lists_each_seed():
  tau = rank_report.merge([("one.json", None, _report([("random", 0), ("random", 1)]))])
  text = "\n".join(rank_report.markdown_lines(tau))
  assert "| random | 0.667 ± 0.000 | 0.667 (seed 0), 0.667 (seed 1) |" in text
  assert "- random, seed 0: c vs d (+0.1000, -0.1000)" in text
  assert "- random: 0.5 on average; seed 0: c vs d; seed 1: none" in text
