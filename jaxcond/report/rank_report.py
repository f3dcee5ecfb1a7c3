"""Rank-agreement reports (compare.py's kendall.json): summarised per method, read back,
merged across runs, and written as markdown.

A report ranks configurations by a test metric trained on all N pairs and on each
method's set S, per seed: {"ratio", "metric", "configs", "per_seed": {method: [{"seed",
"full": {config: score}, "condensed": {config: score}, "tau", ...}]}, "summary", ...}.
"""

from __future__ import annotations

import json
import pathlib

import numpy as np

from jaxcond.judging import ranking

TAU_TEXT = "Kendall's tau-b (scipy.stats.kendalltau) between the configurations' rankings "


def read(path) -> dict:
  """A kendall.json, or a ValueError naming the file and what is wrong with it."""
  try:
    rep = json.loads(pathlib.Path(path).read_text())
  except FileNotFoundError:
    raise ValueError(f"no file {path}") from None
  except (json.JSONDecodeError, UnicodeDecodeError) as e:
    raise ValueError(f"{path} is not a kendall.json ({e})") from None
  if not isinstance(rep, dict) or not isinstance(rep.get("per_seed"), dict):
    raise ValueError(f"{path} is not a kendall.json (no per_seed)")
  for key in ("configs", "metric"):
    if key not in rep:
      raise ValueError(f"{path} is not a kendall.json (no {key})")
  return rep


def full_scores(rep: dict, path) -> dict[int, dict[str, float]]:
  """Each seed's full-data scores in a report (every method's rows carry them)."""
  by_seed = {}
  for rows in rep["per_seed"].values():
    for r in rows:
      if by_seed.setdefault(r["seed"], r["full"]) != r["full"]:
        raise ValueError(f"{path} holds two different full-data scores for seed {r['seed']}")
  return by_seed


def summarize(per_method: dict[str, list[dict]],
              full_by_seed: dict[int, dict[str, float]]) -> tuple[dict, dict | None]:
  """Per method, tau's mean and std over its seeds and the largest p-value; with two or
  more full-data seeds also the full data's agreement with itself, and each row gets the
  pairs every full-data seed orders alike that its set orders the other way
  ("stable_swapped"). Returns (summary, agreement or None)."""
  summary = {m: {"tau_mean": float(np.mean([r["tau"] for r in rs])),
                 "tau_std": float(np.std([r["tau"] for r in rs])),
                 "p_value_max": float(np.max([r["p_value"] for r in rs])),
                 "seeds": [r["seed"] for r in rs]}
             for m, rs in per_method.items()}
  if len(full_by_seed) < 2:
    return summary, None
  agreement = ranking.full_data_agreement(full_by_seed)
  for m, rs in per_method.items():
    for r in rs:
      r["stable_swapped"] = ranking.stable_swaps(agreement["stable_pairs"], r["condensed"])
    summary[m]["stable_swapped_mean"] = float(np.mean([len(r["stable_swapped"]) for r in rs]))
  return summary, agreement


def merge(sources: list[tuple[str, str | None, dict]]) -> dict:
  """One report from several (path, label, report) of the same data, ratio, metric and
  configurations: each method's seeds gathered, tau recomputed from the recorded scores.
  A label renames its report's "dconrec" (runs with other condensation flags are other
  sets). The same seed's full-data scores must be equal in every report (else the sets
  were ranked against different fits), and so must a method's scores on a seed that two
  reports both hold."""
  if not sources:
    raise ValueError("nothing to merge")
  first_path, _, first = sources[0]
  checksums = {}
  specs = None
  full_by_seed, full_from = {}, {}
  per_method, held_in = {}, {}
  for path, label, rep in sources:
    if "ratio" not in rep:
      raise ValueError(f"{path} records no ratio")
    for key in ("ratio", "metric"):
      if rep[key] != first[key]:
        raise ValueError(f"{path} has {key} {rep[key]}, {first_path} {first[key]}")
    if sorted(rep["configs"]) != sorted(first["configs"]):
      raise ValueError(f"{path} ranks other configurations than {first_path}: "
                       f"{rep['configs']} vs {first['configs']}")
    if rep.get("data_checksum") is not None:
      checksums.setdefault(rep["data_checksum"], path)
      if len(checksums) > 1:
        raise ValueError(f"{path} and {checksums[next(iter(checksums))]} were measured on "
                         "other data (their data checksums differ)")
    if rep.get("config_specs") is not None:
      if specs is not None and sorted(rep["config_specs"]) != sorted(specs[1]):
        raise ValueError(f"{path} trained its configurations with other settings than "
                         f"{specs[0]}")
      specs = specs or (path, rep["config_specs"])
    for seed, full in full_scores(rep, path).items():
      if full_by_seed.setdefault(seed, full) != full:
        gap = max(abs(full[c] - full_by_seed[seed][c]) for c in full)
        raise ValueError(f"the full-data scores of seed {seed} differ between "
                         f"{full_from[seed]} and {path} (by up to {gap:.3g}): their sets "
                         "were ranked against different fits")
      full_from.setdefault(seed, path)
    if label and "dconrec" not in rep["per_seed"]:
      raise ValueError(f"{path} holds no dconrec set to call {label!r} (it has "
                       f"{sorted(rep['per_seed'])})")
    for method, rows in rep["per_seed"].items():
      name = label if label and method == "dconrec" else method
      for r in rows:
        key = (name, r["seed"])
        if key in held_in:
          if per_method[name][held_in[key][1]]["condensed"] != r["condensed"]:
            raise ValueError(f"{name} on seed {r['seed']} scores differently in "
                             f"{held_in[key][0]} and {path}: label one of them "
                             "(LABEL=PATH) if they are different sets")
          continue
        per_method.setdefault(name, [])
        held_in[key] = (path, len(per_method[name]))
        per_method[name].append({"seed": r["seed"], **ranking.kendall_tau(
            r["full"], r["condensed"]), "full": r["full"], "condensed": r["condensed"]})
  for rows in per_method.values():
    rows.sort(key=lambda r: r["seed"])
  summary, agreement = summarize(per_method, full_by_seed)
  return {"ratio": first["ratio"], "metric": first["metric"], "configs": first["configs"],
          "config_specs": specs[1] if specs else None, "seeds": sorted(full_by_seed),
          "summary": summary, "per_seed": per_method, "missing": [],
          "full_agreement": agreement,
          "data_checksum": next(iter(checksums)) if checksums else None, "full_from": None,
          "merged_from": [{"path": str(p), "label": lab,
                           "checked": None not in (r.get("data_checksum"), r.get("config_specs"))}
                          for p, lab, r in sources],
          "tau": TAU_TEXT + f"by test {first['metric']} trained on all N pairs and on S"}


def _agreement_lines(tau: dict) -> list[str]:
  agree = tau.get("full_agreement")
  if not agree:
    return []
  lines = ["The full data against itself (the same configurations trained with another "
           "seed): Kendall tau " + ", ".join(
               f"{e['tau']:.3f} (seeds {e['seeds'][0]}, {e['seeds'][1]})"
               for e in agree["self_tau"]) + f"; {len(agree['stable_pairs'])} of "
           f"{agree['n_pairs']} pairs are ordered alike by every full-data seed "
           f"({', '.join(map(str, agree['seeds']))}). Of those, each set orders against them:",
           ""]
  for m, e in tau["summary"].items():
    lines.append(f"- {m}: {e['stable_swapped_mean']:g} on average; " + "; ".join(
        f"seed {r['seed']}: " + (", ".join(f"{a} vs {b}" for a, b in r["stable_swapped"])
                                 or "none") for r in tau["per_seed"][m]))
  return [*lines, ""]


def markdown_lines(tau: dict) -> list[str]:
  """The report as a markdown section: per method tau on each seed, mean ± std, the
  pairs each set swaps, and what the full data agrees on with itself."""
  lines = [f"## Rank agreement at ratio {tau['ratio']:g}", "",
           f"{tau['tau']}; {len(tau['configs'])} configurations: "
           + ", ".join(f"`{c}`" for c in tau["configs"]) + ".", "",
           "| method | Kendall tau | per seed | max p-value | ranking on S (first seed) |",
           "|---|---:|---|---:|---|"]
  for m, e in tau["summary"].items():
    rows = tau["per_seed"][m]
    lines.append(f"| {m} | {e['tau_mean']:.3f} ± {e['tau_std']:.3f} | "
                 + ", ".join(f"{r['tau']:.3f} (seed {r['seed']})" for r in rows)
                 + f" | {e['p_value_max']:.3g} | {' > '.join(rows[0]['ranking_other'])} |")
  first = next(iter(tau["per_seed"].values()))[0]
  src = tau.get("full_from")
  source = (f" (its full-data scores read from `{src['path']}`, not refit"
            + ("" if src["checked"] else "; that file records neither the data checksum "
               "nor the configurations' settings, so neither could be checked")
            + (f"; but for {', '.join(src['refit'])}, which it records with other settings "
               "and were refit" if src.get("refit") else "")
            + ")") if src else ""
  lines += ["", f"Ranking on full data (seed {first['seed']}){source}: "
            + " > ".join(first["ranking_full"]), "",
            "Pairs ordered against the full data of the same seed (full-data gap, "
            "gap on S, in test " + tau["metric"] + "):", ""]
  for m in tau["summary"]:
    for r in tau["per_seed"][m]:
      lines.append(f"- {m}, seed {r['seed']}: " + ("; ".join(
          f"{d['better']} vs {d['worse']} ({d['full_gap']:+.4f}, {d['other_gap']:+.4f})"
          for d in r["discordant"]) or "none"))
  lines.append("")
  lines += _agreement_lines(tau)
  if tau["missing"]:
    lines += [f"Not measured yet (--read_only): {', '.join(tau['missing'])}.", ""]
  return lines
