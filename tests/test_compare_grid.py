"""benchmarks/compare_grid.py: its workers, the merged flags and the DConRec-vs-best summary."""

import json
import pathlib
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

import compare_grid  # noqa: E402


def test_workers_cover_every_dataset_seed_and_the_cross_architecture_runs():
  names = [w.name for w in compare_grid.WORKERS]
  assert len(names) == len(set(names))
  for ds in ("ml-1m", "dianping", "ciao", "gowalla"):
    assert {f"{ds}-s{s}" for s in (0, 1, 2)} <= set(names)
  assert {w.group for w in compare_grid.WORKERS if w.name.startswith("xarch")} == {
      f"xarch-{ds}-{m}" for ds in ("ml-1m", "dianping") for m in ("bpr_mf", "lightgcn")}
  assert all("--tau_ratio=0.25" in w.args for w in compare_grid.WORKERS
             if w.group in ("ml-1m", "dianping"))


def test_merged_args_join_the_seeds_and_keep_the_shared_flags():
  workers = [w for w in compare_grid.WORKERS if w.group == "ml-1m"]
  args = compare_grid._merged_args(workers)
  assert args.count("--flagfile=experiments/flags/ml-1m.flags") == 1
  assert args[-1] == "--seeds=0,1,2"
  assert not any(a.startswith("--seeds=") for a in args[:-1])
  # Every worker's DConRec chooses on the other seeds' fits, and so does the merge's.
  assert all("--peer_seeds=0,1,2" in w.args for w in workers)
  assert args.count("--peer_seeds=0,1,2") == 1


def test_summary_names_the_best_baseline_per_ratio(tmp_path, capsys):
  rows = [{"method": m, "ratio": r, "seed": s, "retention": {"ndcg@10": v}}
          for m, r, s, v in [("dconrec", 0.1, 0, 0.8), ("dconrec", 0.1, 1, 0.6),
                             ("random", 0.1, 0, 0.5), ("proxy_top", 0.1, 0, 0.75),
                             ("dconrec", 0.5, 0, 0.9), ("proxy_top", 0.5, 0, 0.95)]]
  folder = tmp_path / "compare-ml-1m"
  folder.mkdir()
  (folder / "compare.json").write_text(json.dumps(rows))
  compare_grid.summary(tmp_path, "ml-1m")
  out = capsys.readouterr().out.splitlines()
  # 0.1: dconrec (0.8 + 0.6) / 2 = 0.7 < proxy_top 0.75; 0.5: 0.9 < 0.95
  assert "| ml-1m | 0.1 | 0.700 (2) | proxy_top 0.750 (1) | random 0.500 (1) | no" in out[2]
  assert "| ml-1m | 0.5 | 0.900 (1) | proxy_top 0.950 (1) | – | no" in out[3]


def test_an_unknown_worker_is_an_error():
  proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "compare_grid.py"), "list",
                         "--only=nope"], capture_output=True, text=True, timeout=60)
  assert proc.returncode != 0 and "names no worker or group" in proc.stderr


def test_restore_puts_each_committed_row_in_its_workers_folder(tmp_path, capsys):
  results, out = tmp_path / "results", tmp_path / "grid"
  rows = [{"method": "random", "ratio": 0.25, "seed": 0, "fingerprint": "a"},
          {"method": "dconrec", "ratio": 0.1, "seed": 2, "fingerprint": "b"},
          {"method": "random", "ratio": 0.5, "seed": 2, "fingerprint": "c"}]
  infeasible = [{"method": "dconrec", "ratio": 0.05, "seed": 1, "infeasible": "x"}]
  (results / "compare-ciao").mkdir(parents=True)
  (results / "compare-ciao" / "compare.json").write_text(json.dumps(rows))
  (results / "compare-ciao" / "infeasible.json").write_text(json.dumps(infeasible))
  newer = out / "ciao-s2" / "rows" / "random-r0.5-s2.json"  # already there: kept as is
  newer.parent.mkdir(parents=True)
  newer.write_text('{"mine": 1}')
  assert compare_grid.restore(out, results, "ciao") == 3
  assert json.loads((out / "ciao-s0" / "rows" / "random-r0.25-s0.json").read_text()) == rows[0]
  assert json.loads((out / "ciao-s2" / "rows" / "dconrec-r0.1-s2.json").read_text()) == rows[1]
  assert json.loads((out / "ciao-s1" / "rows" / "dconrec-r0.05-s1.json").read_text()) == (
      infeasible[0])
  assert json.loads(newer.read_text()) == {"mine": 1}
  assert "ciao: 3 rows restored, 1 already there" in capsys.readouterr().out
  assert compare_grid.restore(out, results, "ciao-s0") == 0  # one worker: its seed only
