"""report.md and the PNG figures written beside a condensation's report.json."""

import copy

import matplotlib.image
import pytest

from jaxcond import summary

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
