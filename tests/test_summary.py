"""report.md and the PNG figures written beside a condensation's report.json."""

import copy

import matplotlib.image
import pytest

from jaxcond.report import summary

PNG = b"\x89PNG\r\n\x1a\n"
METRICS = ("ndcg@5", "ndcg@10", "recall@5", "recall@10")


def _ret(value, std=0.01, worst=None):
  ret = {m: value for m in METRICS}
  ret["std"] = {m: std for m in METRICS}
  ret["worst"] = {m: value - 0.02 if worst is None else worst for m in METRICS}
  return ret


def _part(cond, base):
  test = {m: 0.2 for m in METRICS}
  return {"full": {"test": test}, "condensed": {"test": test}, "retention": _ret(cond),
          "baselines": {"random": {"test": test, "retention": _ret(base), "size_fraction": 0.25}}}


def _history(seed):
  return [{"step": s, "reward": 0.69 - 0.01 * s - 0.001 * seed, "reward_std": 0.002,
           "expected_free": 75.0 + 0.1 * s, "mask_size": 120.0, "grad_norm": 1e-3,
           "seconds": 0.5 * s} for s in range(1, 11)]


def _degrees(scale):
  return {"users": {"degree": [1, 2, 5, 10, 40], "count": [5 * scale, 4, 3, 2, 1]},
          "items": {"degree": [1, 3, 9, 27], "count": [9, 3 * scale, 2, 1]}}


@pytest.fixture
def rep():
  rep = {
      "ratio": 0.25, "accounting": "honest", "size_fraction": 0.25,
      "condense_seconds": 12.5, "proxy_seconds": 3.25, "pool_seconds": 0.5,
      **_part(0.912, 0.731),
      "groups": {"tail": _part(0.8, 0.6), "head": _part(0.95, 0.75)},
      "items": {"coverage@10": {"full": 0.5, "condensed": 0.4, "random": 0.3},
                "popularity@10": {"full": 10.0, "condensed": 11.0, "random": 12.0},
                "share_in_S": {"condensed": 0.875, "random": 0.6}},
      "models": {"bpr_mf": {}}, "seeds": [0, 1],
      "per_seed": [{"seed": k, "size": 125, "size_fraction": 0.25, "pseudo_kept": 10,
                    "condense_seconds": 10.0 + 5 * k,
                    "timing": {"compile": 2.0, "loop": 5.0, "per_step_median": 0.5}}
                   for k in (0, 1)],
      "degrees": {"train": _degrees(4), "condensed_seed0": _degrees(1),
                  "condensed_seed1": _degrees(2)},
      "sizes": {"total": 125, "free": 75, "fixed": 50, "n_train": 500},
      "config": {"job": {"proxy_model": "bpr_mf"}, "tail_group": "the 20% least active users"},
      "history": {"0": _history(0), "1": _history(1)},
      "protocol": {"dataset": "toyshop", "min_rating": 3.0, "kcore": 5, "split": "rs",
                   "ratios": [0.8, 0.1, 0.1], "seed": 2020, "data_checksum": "abc123",
                   "counts": {"users": 50, "items": 60, "train": 500, "valid": 50,
                              "test": 50}},
      "versions": {"python": "3.11", "jaxcond": "0.1.0"},
  }
  return rep


def test_markdown_headline_tables_and_protocol(rep):
  md = summary.markdown(rep)
  assert md.startswith("# Condensed toyshop at ratio 0.25\n")
  assert "S keeps 125 pairs, 25.0% of the N = 500 training pairs (10 of them pseudo" in md
  assert "NDCG@10 retention 0.912 (worst 0.892)" in md
  assert "random 0.731 / 0.731 (NDCG@10 / Recall@10)" in md
  assert "| metric | full | condensed | random |" in md
  assert "| ndcg@10 | 0.2000 | 0.912 ± 0.010 | 0.731 ± 0.010 |" in md
  assert "hit@10" not in md  # rows only for the metrics the report has
  assert "| users | set | ndcg@10 retention | recall@10 retention |" in md
  assert "| tail | condensed | 0.800 ± 0.010 | 0.800 ± 0.010 |" in md
  assert "| head | random | 0.750 ± 0.010 | 0.750 ± 0.010 |" in md
  assert "Tail users: the 20% least active users" in md
  assert "87.5% of the items keep at least one pair in S (random 60.0%)" in md
  assert "seed 1: condensation 15.0 s" in md and "proxy model 3.2 s" in md
  assert "10 outer steps, inner validation loss 0.6800 (step 1) → 0.5900" in md
  assert "filters: min_rating 3.0, kcore 5" in md and "`abc123`" in md
  for name in summary.FIGURES:
    assert f"![{name}]({name})" in md
  assert ("|S| = 50 fixed pairs (the tail users' pairs, always kept) + 75 free pairs chosen "
          "by the outer loop.") in md
  assert ("E|S| in outer_loop.png counts the free pairs only: the outer loop holds it at the "
          "budget of 75 free pairs; the 50 fixed pairs come on top.") in md
  assert ("Baselines, each the same size as S:\n\n- random: a uniform random subset of the "
          "original training pairs of the same size\n") in md
  assert ("No baseline beats the condensed set on NDCG@10 or Recall@10 (overall or for tail "
          "users).") in md.split("\n\n")[1]  # in the headline paragraph
  assert "zero_update" not in md


def _add_baseline(rep, name, overall, tail, head=0.5):
  """A second baseline with `overall` / `tail` / `head` retention of every metric."""
  test = rep["full"]["test"]
  for part, value in ((rep, overall), (rep["groups"]["tail"], tail),
                      (rep["groups"]["head"], head)):
    part["baselines"][name] = {"test": test, "retention": _ret(value), "size_fraction": 0.25}
  for table in rep["items"].values():
    table[name] = 0.5


def test_markdown_says_plainly_when_a_baseline_wins(rep):
  _add_baseline(rep, "zero_update", overall=0.95, tail=0.85)
  rep["baselines"]["zero_update"]["retention"]["ndcg@10"] = 0.9121  # 0.912 shown: a tie
  _add_baseline(rep, "oracle", overall=0.5, tail=0.81)
  headline = summary.markdown(rep).split("\n\n")[1]
  assert ("**zero_update beats the condensed set on Recall@10 (0.950 vs 0.912) and for tail "
          "users (NDCG@10 0.850 vs 0.800; Recall@10 0.850 vs 0.800).**") in headline
  assert ("**oracle beats the condensed set for tail users (NDCG@10 0.810 vs 0.800; "
          "Recall@10 0.810 vs 0.800).**") in headline
  assert "random beats" not in headline and "No baseline beats" not in headline
  md = summary.markdown(rep)
  assert ("- zero_update: this pipeline with no outer update: its start's top pairs at the "
          "same budget\n") in md
  assert "- oracle" not in md  # no definition for a name this module does not know
  del rep["groups"]
  headline = summary.markdown(rep).split("\n\n")[1]
  assert "**zero_update beats the condensed set on Recall@10 (0.950 vs 0.912).**" in headline
  assert "oracle beats" not in headline


def test_markdown_counts_the_seeds_at_which_a_winning_baseline_is_ahead(rep):
  _add_baseline(rep, "zero_update", overall=0.95, tail=0.85)

  def seeds(ndcg, recall, tail_ndcg):
    return [{"test": {"ndcg@10": n, "recall@10": r, "groups": {"tail": {"ndcg@10": t,
                                                                         "recall@10": 0.1}}}}
            for n, r, t in zip(ndcg, recall, tail_ndcg)]

  rep["condensed"]["per_seed"] = seeds([0.20, 0.22, 0.21], [0.3, 0.3, 0.3], [0.1, 0.2, 0.3])
  rep["baselines"]["zero_update"]["per_seed"] = seeds([0.21, 0.21, 0.21], [0.31, 0.32, 0.30],
                                                      [0.2, 0.3, 0.4])
  headline = summary.markdown(rep).split("\n\n")[1]
  # By hand: NDCG@10 higher at seed 0 only (0.21 > 0.20; 0.21 < 0.22; 0.21 = 0.21), Recall@10
  # at seeds 0 and 1, tail NDCG@10 at all three, tail Recall@10 at none (equal).
  assert ("**zero_update beats the condensed set on NDCG@10 (0.950 vs 0.912, ahead at 1 of 3 "
          "seeds) and Recall@10 (0.950 vs 0.912, ahead at 2 of 3 seeds) and for tail users "
          "(NDCG@10 0.850 vs 0.800, ahead at 3 of 3 seeds; Recall@10 0.850 vs 0.800, ahead at "
          "0 of 3 seeds).**") in headline
  del rep["baselines"]["zero_update"]["per_seed"][2]  # seeds that do not pair up: no count
  assert "ahead at" not in summary.markdown(rep).split("\n\n")[1]


def test_markdown_names_a_baseline_that_is_nearly_the_condensed_set(rep):
  _add_baseline(rep, "proxy_top", overall=0.95, tail=0.85)
  rep["overlap"] = {"random": 0.25, "proxy_top": 0.99984}
  headline = summary.markdown(rep).split("\n\n")[1]
  assert ("proxy_top shares 99.98% of the condensed set's pairs (mean over seeds): nearly "
          "the same set, so that difference in retention is the evaluators' noise, not the "
          "sets'.") in headline
  assert "random shares" not in headline
  rep["overlap"] = {"random": 0.25, "proxy_top": 0.98}
  assert "shares" not in summary.markdown(rep).split("\n\n")[1]
  rep["overlap"] = {"random": 0.25, "proxy_top": 1.0}  # the start's own set at every seed
  headline = summary.markdown(rep).split("\n\n")[1]
  assert ("proxy_top is the condensed set itself at every seed (the same pairs, judged by "
          "the same fits): the condensed set is that heuristic's, no better.") in headline
  assert "shares" not in headline


def test_markdown_without_fixed_pairs(rep):
  rep["sizes"] = {**rep["sizes"], "fixed": 0, "free": 125}
  md = summary.markdown(rep)
  assert "All 125 pairs are free pairs (no fixed pairs), chosen by the outer loop." in md
  assert "the 0 fixed pairs come on top" in md


def _drawn(rep, tmp_path, monkeypatch) -> dict:
  """{file name: the matplotlib Figure written}."""
  figs = {}

  def keep(fig, path):
    figs[path.name] = fig
    return path

  monkeypatch.setattr(summary, "_save", keep)
  summary.figures(rep, tmp_path)
  return figs


def test_figure_axes(rep, tmp_path, monkeypatch):
  for h in rep["history"]["0"]:
    h["expected_free"] = 75.0 + 1e-5 * h["step"]  # float noise about the budget
  figs = _drawn(rep, tmp_path, monkeypatch)
  size_ax = figs["outer_loop.png"].axes[1]
  assert size_ax.get_title() == "expected free pairs kept (fixed: 50)"
  lo, hi = size_ax.get_ylim()
  assert lo <= 75 * 0.99 and hi >= 75 * 1.01 and hi - lo < 5  # ±1%, not the noise
  budget = [line for line in size_ax.get_lines() if line.get_label() == "budget (free pairs)"]
  assert len(budget) == 1 and budget[0].get_linestyle() == "--"
  assert list(budget[0].get_ydata()) == [75, 75]
  for name in ("retention.png", "tail_head.png"):
    for ax in figs[name].axes:
      assert ax.get_ylim()[0] == 0, name  # never a truncated axis
      assert any(list(line.get_ydata()) == [1.0, 1.0] for line in ax.get_lines()), name
  labels = [t.get_text() for ax in figs["degrees.png"].axes for t in ax.get_legend().texts]
  assert labels == ["full training set: 30 users with a pair (of 50), 103 pairs",
                    "condensed, seed 0: 15 users with a pair (of 50), 88 pairs",
                    "full training set: 24 items with a pair (of 60), 90 pairs",
                    "condensed, seed 0: 15 items with a pair (of 60), 63 pairs"]


def test_expected_size_range_widens_to_the_values():
  assert summary._size_range([1000.0, 1000.001], 1000) == pytest.approx((989.0, 1011.0))
  lo, hi = summary._size_range([900.0, 1000.0], 1000)
  assert lo < 900 and hi > 1010
  assert summary._size_range([3.0], None) == pytest.approx((1.9, 4.1))  # ±1 at least


def test_write_figures_and_markdown(rep, tmp_path):
  paths = summary.write(rep, tmp_path)
  assert set(paths) == {"report.md", *summary.FIGURES}
  for name in summary.FIGURES:
    assert paths[name].read_bytes()[:8] == PNG
    height, width, _ = matplotlib.image.imread(paths[name]).shape
    assert height > 300 and width > 600, name
  assert paths["report.md"].read_text() == summary.markdown(rep)
  assert sorted(p.name for p in tmp_path.iterdir()) == sorted(paths)  # no temporary files


def test_without_baselines_degrees_or_groups(rep, tmp_path):
  old = copy.deepcopy(rep)
  for part in (old, *old["groups"].values()):
    part["baselines"] = {}
  del old["degrees"], old["groups"], old["items"]
  md = summary.markdown(old)
  assert "No baselines were run." in md
  assert "| metric | full | condensed |\n" in md
  assert "*degrees.png not drawn: this report has no degree profile" in md
  assert "*tail_head.png not drawn: this report has no per-user-group results" in md
  assert "![degrees.png]" not in md and "![tail_head.png]" not in md
  assert "Not available: this report has no item-side results." in md
  paths = summary.write(old, tmp_path)
  assert set(paths) == {"report.md", "outer_loop.png", "retention.png"}
  assert not (tmp_path / "degrees.png").exists()


def test_single_seed_headline(rep):
  rep["seeds"], rep["per_seed"] = [0], rep["per_seed"][:1]
  assert "NDCG@10 retention 0.912, Recall@10 retention 0.912 (1 seed)." in summary.markdown(rep)


def test_failure_leaves_no_report_md(rep, tmp_path, monkeypatch):
  (tmp_path / "report.md").write_text("stale, from an earlier run")

  def broken(rep, path):
    raise RuntimeError("plot failed")

  monkeypatch.setitem(summary._DRAW, "tail_head.png", broken)
  with pytest.raises(RuntimeError, match="plot failed"):
    summary.write(rep, tmp_path)
  assert not (tmp_path / "report.md").exists()
  assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def test_missing_required_key_raises(rep, tmp_path):
  del rep["retention"]
  with pytest.raises(KeyError):
    summary.write(rep, tmp_path)
  assert not (tmp_path / "report.md").exists()


def test_printed_table_rows(rep):
  for part in ("full", "condensed"):
    rep[part]["test"] = {**rep[part]["test"], "ndcg@20": 0.3, "recall@20": 0.4}
  rep["baselines"]["random"]["test"] = rep["full"]["test"]
  lines = summary.table(rep).splitlines()
  assert lines[0].startswith("| honest accounting, ratio 0.25 | |S|/N | ndcg@10 |")
  assert lines[2] == ("| full data | 1.000 | 0.2000 | 0.2000 | 0.3000 | 0.4000 "
                      "| 1.000 | 1.000 |")
  assert lines[3].startswith("| condensed | 0.250 | 0.2000 |")
  assert lines[3].endswith("| 0.912 (worst 0.892) | 0.912 (worst 0.892) |")
  assert lines[4].startswith("| random | 0.250 |") and len(lines) == 5


def test_markdown_shows_the_trajectory_and_the_choices(rep):
  held = dict(rep, holdout=[{"seed": 0, "steps": [0, 50, 100], "scores": [0.18, 0.19, 0.17],
                             "test_scores": [0.21, 0.2, 0.22], "chosen_step": 50,
                             "metric": "ndcg@10"}],
              start=[{"seed": 0, "steps": ["prior", "originals"], "scores": [0.15, 0.18],
                      "test_scores": [0.19, 0.21], "chosen_step": "originals"}])
  md = summary.markdown(held)
  assert "| seed | set | choosing NDCG@10 | test NDCG@10 | chosen |" in md
  assert "| 0 | start 'prior' | 0.1500 | 0.1900 |  |" in md
  assert "| 0 | start 'originals' | 0.1800 | 0.2100 | yes |" in md
  assert "| 0 | outer step 0 | 0.1800 | 0.2100 |  |" in md
  assert "| 0 | outer step 50 | 0.1900 | 0.2000 | yes |" in md
  assert "| 0 | outer step 100 | 0.1700 | 0.2200 |  |" in md
  # A record from before test scores were kept, and a start given, not chosen.
  old = dict(rep, holdout=[{"seed": 0, "steps": [0, 50], "scores": [0.18, 0.19],
                            "chosen_step": 50, "metric": "ndcg@10"}],
             start=[{"seed": 0, "chosen_step": "prior"}])
  assert "| 0 | outer step 50 | 0.1900 | nan | yes |" in summary.markdown(old)
  assert "How the set was chosen" not in summary.markdown(rep)
  assert "How the set was chosen" in md
  # Today's reports: one start for every seed, chosen among kinds under both tail rules.
  once = dict(rep, start=[{"steps": ["prior-keep", "prior-none"], "scores": [0.1, 0.2],
                           "test_scores": [0.3, 0.4], "chosen_step": "prior-none",
                           "tail": "none", "kind": "prior", "split_seed": 0}],
              start_seconds=12.0)
  md = summary.markdown(once)
  assert "| all | start 'prior-none' | 0.2000 | 0.4000 | yes |" in md
  assert "choosing the seeds' starts 12.0 s." in md


def test_a_run_without_outer_steps_says_so_and_draws_no_loop(rep, tmp_path):
  rep["config"]["job"]["condense"] = {"outer_steps": 0}
  rep["history"] = {"0": [], "1": []}
  md = summary.markdown(rep)
  assert ("|S| = 50 fixed pairs (the tail users' pairs, always kept) + 75 free pairs chosen "
          "by the chosen start (no outer step).") in md
  assert "## Timing\n\n- seed 0: condensation 10.0 s (no outer step)\n" in md
  assert "## Outer loop and timing" not in md and "E|S|" not in md
  assert "*outer_loop.png not drawn: no outer step was taken (--outer_steps=0)" in md
  assert "outer_loop.png" not in summary.write(rep, tmp_path)
  rep["config"]["job"]["condense"] = {"outer_steps": 200}
  assert "## Outer loop and timing" in summary.markdown(rep)
