"""experiments/compare.py run as a user would, in a subprocess, on a tiny file."""

import json
import os
import pathlib
import shutil
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]


def _run(tmp_path, *args):
  # A persistent compilation cache lets the many same-shape trainings share compilations.
  env = dict(os.environ, JAX_PLATFORMS="cpu",
             JAX_COMPILATION_CACHE_DIR=str(tmp_path / "jax-cache"),
             JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS="0",
             JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES="0")
  return subprocess.run([sys.executable, str(ROOT / "experiments" / "compare.py"), *args],
                        cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)


def test_compare_contract_tau_and_resume(tmp_path, user_file):
  out = tmp_path / "out"
  args = [f"--dataset={user_file}", "--columns=who,what", "--ratios=0.25,0.5", "--seeds=0",
          "--methods=dconrec,random,stratified,proxy_top", "--outer_steps=2", "--max_epochs=2",
          "--min_epochs=0", "--dim=8", "--rho=0.2", "--tail_tau=0", "--noreward_signal",
          "--eval_models=bpr_mf,ease", "--tau_ratio=0.25",
          "--tau_configs=ease:ease_l2=1,ease:ease_l2=10,ease:ease_l2=500",
          "--peer_seeds=0,1",  # a worker of a 2-seed grid: the reads of seeds 0, 1 below
          f"--output_dir={out}", f"--cache_dir={tmp_path / 'cache'}"]
  proc = _run(tmp_path, *args)
  assert proc.returncode == 0, proc.stderr
  rows = json.loads((out / "compare.json").read_text())
  assert {(r["method"], r["ratio"], r["seed"]) for r in rows} == {
      (m, r, 0) for m in ("dconrec", "random", "stratified", "proxy_top") for r in (0.25, 0.5)}
  for r in rows:
    for key in ("method", "ratio", "seed", "size_fraction", "condense_seconds", "retention",
                "retention_by_model"):
      assert key in r, key
    assert {"ndcg@10", "recall@10"} <= set(r["retention"])
    assert set(r["retention_by_model"]) == {"bpr_mf", "ease"}
    assert r["retention"] == r["retention_by_model"]["bpr_mf"]
    assert r["size_fraction"] == pytest.approx(r["ratio"], abs=0.002)
    assert r["retention"]["ndcg@10"] > 0
  assert (out / "dconrec" / "r0.25" / "seed0" / "record.json").exists()
  assert (out / "random" / "r0.5" / "seed0" / "condensed.tsv").exists()
  md = (out / "compare.md").read_text()
  assert "| proxy_top | 0.5 |" in md and "Cross-architecture" in md and "Kendall" in md
  assert (out / "compare.png").read_bytes()[:4] == b"\x89PNG"
  tau = json.loads((out / "kendall.json").read_text())
  assert set(tau["summary"]) == {"dconrec", "random"} and len(tau["configs"]) == 3
  for r in tau["per_seed"]["random"]:
    assert -1 <= r["tau"] <= 1 and len(r["ranking_full"]) == 3
    # tau-b over 3 untied configurations: (3 - 2 * discordant) / 3
    assert r["tau"] == pytest.approx((3 - 2 * len(r["discordant"])) / 3)
  for m in ("dconrec", "random"):
    listed = [f"{d['better']} vs {d['worse']}" for d in tau["per_seed"][m][0]["discordant"]]
    line = next(x for x in md.splitlines() if x.startswith(f"- {m}, seed 0: "))
    assert line == f"- {m}, seed 0: none" if not listed else all(p in line for p in listed)
  assert tau["full_agreement"] is None  # one full-data seed: no noise floor to report

  again = _run(tmp_path, *args)  # every row and tau evaluation is read back, none rerun
  assert again.returncode == 0, again.stderr
  assert again.stdout.count("done before") == 8
  assert "running" not in again.stdout and "tau: ease:ease_l2=1 on" not in again.stdout
  assert json.loads((out / "compare.json").read_text()) == rows

  # Another machine's rows alone (no sets, no fits): --read_only merges them, training nothing.
  merged = tmp_path / "merged"
  shutil.copytree(out / "rows", merged / "rows")
  read = _run(tmp_path, *args[:-2], "--read_only", f"--output_dir={merged}",
              f"--cache_dir={tmp_path / 'other-cache'}")
  assert read.returncode == 0, read.stderr
  assert "running" not in read.stdout and "): training" not in read.stdout
  assert json.loads((merged / "compare.json").read_text()) == rows
  assert json.loads((merged / "kendall.json").read_text()) == tau
  # A second full-data seed that swaps the first two configurations, and random's seed-1
  # fits equal to its seed-0 ones: the full data's self-agreement is hand-computable.
  e1, e10 = "ease_ease_l2_1", "ease_ease_l2_10"
  tau_rows = merged / "rows" / "tau"
  for name in (e1, e10, "ease_ease_l2_500"):
    row = json.loads((tau_rows / f"full-s0-{name}.json").read_text())
    if name in (e1, e10):
      other = json.loads((tau_rows / f"full-s0-{e10 if name == e1 else e1}.json").read_text())
      row["test"] = other["test"]
    (tau_rows / f"full-s1-{name}.json").write_text(json.dumps(row))
    shutil.copy(tau_rows / f"random-r0.25-s0-{name}.json",
                tau_rows / f"random-r0.25-s1-{name}.json")
  partial = _run(tmp_path, *args[:-2], "--read_only", "--seeds=0,1", f"--output_dir={merged}",
                 f"--cache_dir={tmp_path / 'other-cache'}")  # seed 1's rows never ran: listed
  assert partial.returncode == 0, partial.stderr
  two = json.loads((merged / "kendall.json").read_text())
  full0 = tau["per_seed"]["random"][0]["full"]
  agree = two["full_agreement"]
  e1c, e10c = "ease:ease_l2=1", "ease:ease_l2=10"
  assert len(set(full0.values())) == 3  # untied: one of three pairs swaps between seeds
  assert agree["self_tau"] == [{"seeds": [0, 1], "tau": pytest.approx(1 / 3)}]
  assert len(agree["stable_pairs"]) == 2 and sorted([e1c, e10c]) not in [
      sorted(p) for p in agree["stable_pairs"]]
  assert [r["seed"] for r in two["per_seed"]["random"]] == [0, 1]
  swaps = [r["stable_swapped"] for r in two["per_seed"]["random"]]
  assert swaps[0] == swaps[1]
  cond = tau["per_seed"]["random"][0]["condensed"]
  assert swaps[0] == [[a, b] for a, b in agree["stable_pairs"] if cond[a] < cond[b]]
  assert two["summary"]["random"]["stable_swapped_mean"] == len(swaps[0])
  assert "running" not in partial.stdout and "): training" not in partial.stdout
  assert json.loads((merged / "compare.json").read_text()) == rows
  md = (merged / "compare.md").read_text()
  assert "2 of 3 pairs are ordered alike by every full-data seed (0, 1)" in md
  assert f"- random: {len(swaps[0]):g} on average; seed 0: " in md
  assert "Not measured yet (--read_only): dconrec at 0.25 (seeds 1)" in md
  assert "dconrec-r0.25-s1-ease_ease_l2_1" in md or "full-s1-ease_ease_l2_1" in md
  nothing = _run(tmp_path, *args[:-2], "--read_only", "--seeds=1", f"--output_dir={merged}",
                 f"--cache_dir={tmp_path / 'other-cache'}")
  assert nothing.returncode == 1 and "Traceback" not in nothing.stderr
  assert "no row is done" in nothing.stderr

  bad = _run(tmp_path, *args[:4], "--methods=dconrec,nope", f"--output_dir={out}")
  assert bad.returncode != 0 and "Traceback" not in bad.stderr
  assert "unknown methods ['nope']" in bad.stderr


def test_a_ratio_the_tail_pairs_overfill_is_reported_not_run(tmp_path, user_file):
  # Every user has <= 10 training pairs, so the tail rule (keep, tail_tau 10) fixes them all.
  out = tmp_path / "out"
  args = [f"--dataset={user_file}", "--columns=who,what", "--ratios=0.25", "--seeds=0",
          "--methods=dconrec,random", "--tail=keep", "--max_epochs=2", "--min_epochs=0", "--dim=8",
          f"--output_dir={out}", f"--cache_dir={tmp_path / 'cache'}"]
  proc = _run(tmp_path, *args)
  assert proc.returncode == 0, proc.stderr
  assert [r["method"] for r in json.loads((out / "compare.json").read_text())] == ["random"]
  (bad,) = json.loads((out / "infeasible.json").read_text())
  assert bad["method"] == "dconrec" and "leaves a budget of" in bad["infeasible"]
  assert "Not run" in (out / "compare.md").read_text()
  again = _run(tmp_path, *args)
  assert again.returncode == 0 and "running" not in again.stdout
  assert "dconrec r=0.25 seed 0: cannot run" in again.stdout


def test_tau_full_scores_read_from_an_earlier_report(tmp_path, user_file):
  configs = ["ease:ease_l2=1", "ease:ease_l2=10", "ease:ease_l2=500"]
  given = {configs[0]: 0.30, configs[1]: 0.20, configs[2]: 0.10}  # not fit: read from file
  earlier = tmp_path / "earlier.json"
  earlier.write_text(json.dumps({"configs": configs, "metric": "ndcg@10", "per_seed": {
      "dconrec": [{"seed": 0, "full": given}], "random": [{"seed": 0, "full": given}]}}))
  out = tmp_path / "out"
  args = [f"--dataset={user_file}", "--columns=who,what", "--ratios=0.25", "--seeds=0",
          "--methods=random", "--tau_methods=random", "--max_epochs=2", "--min_epochs=0",
          "--dim=8", "--eval_models=ease", "--tau_ratio=0.25",
          f"--tau_configs={','.join(configs)}", f"--cache_dir={tmp_path / 'cache'}"]
  proc = _run(tmp_path, *args, f"--tau_full_from={earlier}", f"--output_dir={out}")
  assert proc.returncode == 0, proc.stderr
  assert not list((out / "rows" / "tau").glob("full-*"))  # no full-data fit ran
  tau = json.loads((out / "kendall.json").read_text())
  (r,) = tau["per_seed"]["random"]
  assert r["full"] == given
  assert tau["full_from"] == {"path": str(earlier), "checked": False}
  cond = r["condensed"]
  assert len(set(cond.values())) == 3
  agree = sum(1 if (given[a] - given[b]) * (cond[a] - cond[b]) > 0 else -1
              for i, a in enumerate(configs) for b in configs[i + 1:])
  assert r["tau"] == pytest.approx(agree / 3)
  assert (f"read from `{earlier}`, not refit; that file records neither the data checksum"
          in (out / "compare.md").read_text())

  def refused(path, *extra):
    proc = _run(tmp_path, *args, *extra, f"--tau_full_from={path}",
                f"--output_dir={tmp_path / 'refused'}")
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert not (tmp_path / "refused" / "rows").exists()  # refused before any training
    return proc.stderr

  assert "no full-data scores for seeds [1] (it has [0])" in refused(earlier, "--seeds=1")
  assert "this run ranks" in refused(earlier, "--tau_configs=ease:ease_l2=1,ease:ease_l2=10")
  assert "no file" in refused(tmp_path / "absent.json")
  untau = _run(tmp_path, *[a for a in args if not a.startswith("--tau_ratio")],
               f"--tau_full_from={earlier}", f"--output_dir={tmp_path / 'untau'}")
  assert untau.returncode == 1 and "--tau_full_from needs --tau_ratio" in untau.stderr
  other = json.loads((out / "kendall.json").read_text())
  other["data_checksum"] = "0" * 64  # this run's own report, as if made on other data
  moved = tmp_path / "other.json"
  moved.write_text(json.dumps(other))
  assert "measured on other data" in refused(moved)
  checked = _run(tmp_path, *args, f"--tau_full_from={out / 'kendall.json'}",
                 f"--output_dir={tmp_path / 'checked'}")  # this run's report: checksum known
  assert checked.returncode == 0, checked.stderr
  again = json.loads((tmp_path / "checked" / "kendall.json").read_text())
  assert again["full_from"]["checked"] and again["per_seed"] == tau["per_seed"]
  assert "trained its configurations with other settings" in refused(
      out / "kendall.json", "--dim=16")  # same names, another base embedding size
  # One configuration recorded with other settings is refit, the others read back; a
  # setting added since a file was written, at its default, is no difference.
  mixed = json.loads((out / "kendall.json").read_text())
  specs = mixed["config_specs"]
  assert ", valid_users=0)" in specs[0]
  mixed["config_specs"] = [specs[0].replace(", valid_users=0)", ")"), specs[1],
                           specs[2].replace("ease_l2=500.0", "ease_l2=400.0")]
  moved.write_text(json.dumps(mixed))
  part = _run(tmp_path, *args, f"--tau_full_from={moved}", f"--output_dir={tmp_path / 'part'}")
  assert part.returncode == 0, part.stderr
  assert f"trained {configs[2]} with other settings: refit" in part.stdout
  fitted = sorted(f.name for f in (tmp_path / "part" / "rows" / "tau").glob("full-*"))
  assert fitted == ["full-s0-ease_ease_l2_500.json"]
  got = json.loads((tmp_path / "part" / "kendall.json").read_text())
  assert got["full_from"] == {"path": str(moved), "checked": True, "refit": [configs[2]]}
  (row,) = got["per_seed"]["random"]
  assert {c: row["full"][c] for c in configs[:2]} == {c: given[c] for c in configs[:2]}
  refit = json.loads((tmp_path / "part" / "rows" / "tau" / fitted[0]).read_text())
  assert row["full"][configs[2]] == refit["test"]["ndcg@10"] != given[configs[2]]
  assert "which it records with other settings and were refit" in (
      tmp_path / "part" / "compare.md").read_text()


def test_dconrec_rows_read_from_a_condense_report_equal_a_run(tmp_path, user_file):
  """--dconrec_from: a condense.py run of seeds 0 and 1 gives compare.py's DConRec row of
  seed 1 (a worker with --peer_seeds=0,1) as that worker's own condensation does; a report
  made with other settings is not read."""
  common = [f"--dataset={user_file}", "--columns=who,what", "--max_epochs=2",
            "--min_epochs=0", "--dim=8", "--rho=0.2", "--tail_tau=0", "--noreward_signal",
            f"--cache_dir={tmp_path / 'cache'}"]
  reports = tmp_path / "reports"
  env = dict(os.environ, JAX_PLATFORMS="cpu")
  made = subprocess.run([sys.executable, str(ROOT / "experiments" / "condense.py"), *common,
                         "--ratio=0.25", "--seeds=0,1", "--baselines=random",
                         f"--output_dir={reports / 'r0.25'}"],
                        cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
  assert made.returncode == 0, made.stderr
  worker = [*common, "--methods=dconrec", "--ratios=0.25", "--seeds=1", "--peer_seeds=0,1"]
  read = _run(tmp_path, *worker, f"--dconrec_from={reports}", "--read_only",
              f"--output_dir={tmp_path / 'read'}")
  assert read.returncode == 0, read.stderr
  assert f"read from {reports / 'r0.25' / 'report.json'}" in read.stdout
  ran = _run(tmp_path, *worker, f"--output_dir={tmp_path / 'ran'}")
  assert ran.returncode == 0, ran.stderr
  (got,), (want,) = (json.loads((tmp_path / d / "compare.json").read_text())
                     for d in ("read", "ran"))
  for key in ("size", "size_fraction", "pseudo_fraction", "retention", "retention_by_model",
              "retention_tail_by_model", "test_by_model", "best_epoch_by_model",
              "fingerprint"):
    assert got[key] == want[key], key
  assert got["info"]["read_from_report"] and "read_from_report" not in want["info"]
  report = json.loads((reports / "r0.25" / "report.json").read_text())
  per_seed = report["models"]["bpr_mf"]
  assert got["retention"]["ndcg@10"] == pytest.approx(
      per_seed["condensed"]["per_seed"][1]["test"]["ndcg@10"]
      / per_seed["full"]["per_seed"][1]["test"]["ndcg@10"])
  # A report written before reports held their run's fingerprint: its seeds' records give it.
  from jaxcond.cli import compare  # noqa: PLC0415 (defines flags: imported here only)
  folder = reports / "r0.25"
  assert compare._run_fingerprint_of(folder, report) == report["fingerprint"] == (
      json.loads((folder / "seed1" / "record.json").read_text())["fingerprint"])
  older = {k: v for k, v in report.items() if k != "fingerprint"}
  assert compare._run_fingerprint_of(folder, older) == report["fingerprint"]
  (folder / "seed1" / "record.json").unlink()
  assert compare._run_fingerprint_of(folder, older) is None
  other = _run(tmp_path, *worker, "--rho=0.3", f"--dconrec_from={reports}", "--read_only",
               f"--output_dir={tmp_path / 'other'}")
  assert other.returncode == 1 and "no row is done" in other.stderr
  assert "no report under --dconrec_from has these data, settings and seeds" in other.stdout
