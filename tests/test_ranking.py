"""Kendall's tau of configuration rankings, against hand-counted pairs."""

import itertools
import math

import pytest

from jaxcond.judging import ranking


def _tau_b_by_hand(x, y):
  """Independent reference: count concordant / discordant pairs and ties by hand."""
  conc = disc = ties_x = ties_y = 0
  for i, j in itertools.combinations(range(len(x)), 2):
    dx, dy = x[i] - x[j], y[i] - y[j]
    if dx == 0 and dy == 0:
      continue
    if dx == 0:
      ties_x += 1
    elif dy == 0:
      ties_y += 1
    elif dx * dy > 0:
      conc += 1
    else:
      disc += 1
  return (conc - disc) / math.sqrt((conc + disc + ties_x) * (conc + disc + ties_y))


def test_tau_of_one_swap_is_hand_counted():
  full = {"a": 0.4, "b": 0.3, "c": 0.2, "d": 0.1}
  other = {"a": 0.40, "b": 0.20, "c": 0.30, "d": 0.10}  # b and c swapped
  out = ranking.kendall_tau(full, other)
  # 6 pairs: 5 concordant, 1 discordant (b, c): tau = (5 - 1) / 6.
  assert out["tau"] == pytest.approx(4 / 6)
  assert out["ranking_full"] == ["a", "b", "c", "d"]
  assert out["ranking_other"] == ["a", "c", "b", "d"]
  assert out["n_configs"] == 4 and 0 < out["p_value"] <= 1


def test_tau_with_ties_matches_the_pair_count():
  x = [0.9, 0.5, 0.5, 0.1, 0.3, 0.7]
  y = [0.8, 0.6, 0.2, 0.2, 0.4, 0.9]
  names = list("abcdef")
  out = ranking.kendall_tau(dict(zip(names, x)), dict(zip(names, y)))
  assert out["tau"] == pytest.approx(_tau_b_by_hand(x, y))
  # By hand: 15 pairs; (b, c) tied in x, (c, d) tied in y; of the other 13,
  # 2 discordant ((a, f) and (c, e)) and 11 concordant -> (11 - 2) / sqrt(14 * 14) = 9 / 14.
  assert out["tau"] == pytest.approx(9 / 14)


def test_identical_and_reversed_rankings():
  full = {str(k): float(k) for k in range(8)}
  assert ranking.kendall_tau(full, full)["tau"] == pytest.approx(1.0)
  assert ranking.kendall_tau(full, {k: -v for k, v in full.items()})["tau"] == pytest.approx(-1)


def test_mismatched_configurations_are_refused():
  with pytest.raises(ValueError, match="configurations differ"):
    ranking.kendall_tau({"a": 1.0, "b": 2.0}, {"a": 1.0, "c": 2.0})


def test_parse_config():
  c = ranking.parse_config("bpr_mf:dim=16:lr=1e-3")
  assert (c.model, c.model_cfg.dim, c.train_cfg.lr) == ("bpr_mf", 16, 1e-3)
  assert ranking.parse_config("ease:ease_l2=50").model_cfg.ease_l2 == 50.0
  assert len({ranking.parse_config(t) for t in ranking.DEFAULT_CONFIGS}) == 8
  for bad, message in (("nope", "unknown model"), ("bpr_mf:dim", "expected field=value"),
                       ("bpr_mf:width=3", "unknown field"), ("bpr_mf:dim=1.5", "not a int")):
    with pytest.raises(ValueError, match=message):
      ranking.parse_config(bad)


def test_discordant_pairs_are_hand_listed():
  full = {"a": 0.50, "b": 0.40, "c": 0.39, "d": 0.10}
  other = {"a": 0.30, "b": 0.20, "c": 0.25, "d": 0.35}  # (b, c) and every pair with d swap
  pairs = ranking.kendall_tau(full, other)["discordant"]
  got = [(d["better"], d["worse"], round(d["full_gap"], 6), round(d["other_gap"], 6))
         for d in pairs]
  # smallest full-data gap first: (b, c) 0.01, then (c, d) 0.29, (b, d) 0.30, (a, d) 0.40
  assert got == [("b", "c", 0.01, -0.05), ("c", "d", 0.29, -0.1), ("b", "d", 0.3, -0.15),
                 ("a", "d", 0.4, -0.05)]
  # tau-b without ties = (concordant - discordant) / pairs: (2 - 4) / 6
  assert ranking.kendall_tau(full, other)["tau"] == pytest.approx(-2 / 6)


def test_tied_pairs_are_not_discordant():
  full = {"a": 0.5, "b": 0.5, "c": 0.1}
  other = {"a": 0.1, "b": 0.2, "c": 0.1}  # (a, b) tied in full, (a, c) tied on S
  assert ranking.discordant_pairs(full, other) == []


def test_full_data_agreement_is_hand_counted():
  full_by_seed = {
      0: {"a": 0.50, "b": 0.40, "c": 0.39, "d": 0.10},
      1: {"a": 0.51, "b": 0.38, "c": 0.39, "d": 0.10},  # (b, c) flips between seeds
      2: {"a": 0.49, "b": 0.41, "c": 0.40, "d": 0.40},  # (c, d) tied on seed 2
  }
  agree = ranking.full_data_agreement(full_by_seed)
  # 6 pairs; (b, c) flips and (c, d) ties, so 4 are ordered alike by every seed
  assert agree["n_pairs"] == 6 and agree["seeds"] == [0, 1, 2]
  assert agree["stable_pairs"] == [["a", "b"], ["a", "c"], ["a", "d"], ["b", "d"]]
  taus = {tuple(e["seeds"]): e["tau"] for e in agree["self_tau"]}
  assert taus[(0, 1)] == pytest.approx(4 / 6)  # one swap of six untied pairs: (5 - 1) / 6
  assert taus[(0, 2)] == pytest.approx(_tau_b_by_hand([0.50, 0.40, 0.39, 0.10],
                                                      [0.49, 0.41, 0.40, 0.40]))
  other = {"a": 0.2, "b": 0.3, "c": 0.9, "d": 0.1}  # a below b and c; d still last
  assert ranking.stable_swaps(agree["stable_pairs"], other) == [["a", "b"], ["a", "c"]]


def test_full_data_agreement_needs_two_seeds():
  with pytest.raises(ValueError, match="at least two seeds"):
    ranking.full_data_agreement({0: {"a": 0.1, "b": 0.2}})
