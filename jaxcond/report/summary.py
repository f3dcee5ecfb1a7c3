"""A report a person reads: report.md and PNG figures beside a condensation's report.json."""

from __future__ import annotations

import pathlib

import numpy as np

from jaxcond.core import atomic

METRICS = tuple(f"{m}@{k}" for m in ("ndcg", "recall", "hit", "precision") for k in (5, 10, 20))
HEADLINE = ("ndcg@10", "recall@10")
LABEL = {"ndcg@10": "NDCG@10", "recall@10": "Recall@10"}
FIGURES = {
    "outer_loop.png": "Outer loop per seed: inner validation loss (the reward, lower is better; "
                      "band ± std over sampled masks), expected number of free pairs kept "
                      "(the fixed pairs not counted; dashed: the budget of free pairs), "
                      "wall time.",
    "retention.png": "Retention (condensed / full-data test metric, mean ± std over seeds) per "
                     "metric, condensed set against the baselines.",
    "degrees.png": "How many users and items have each number of training pairs, full training "
                   "set against the condensed set (log-log). Only users and items with at "
                   "least one pair are counted: the protocol counts every item, also those "
                   "whose pairs all went to validation or test.",
    "tail_head.png": "Retention of NDCG@10 and Recall@10 for the least active (tail) and the "
                     "other (head) users.",
}
# One-line definitions of the baselines (condensation.py); other names get none.
BASELINES = {
    "random": "a uniform random subset of the original training pairs of the same size",
    "zero_update": "this pipeline with no outer update: its start's top pairs at the same "
                   "budget",
    "proxy_top": "each user's original pairs the proxy scores highest, no outer loop",
    "proxy_half": "half each user's top original pairs, half its top unseen items, by proxy "
                  "score, no outer loop",
    "proxy_top_sqrt": "proxy_top with users' shares of the budget proportional to the square "
                      "root of their pair counts, no outer loop",
    "proxy_half_sqrt": "proxy_half with users' shares proportional to the square root of their "
                       "pair counts, no outer loop",
}
DPI = 110


def _sets(rep: dict) -> dict:
  """{name: entry with "retention"} for the condensed set, then each baseline."""
  return {"condensed": rep, **(rep.get("baselines") or {})}


def _metrics(retention: dict) -> list:
  return [m for m in METRICS if m in retention]


def _looped(rep: dict) -> bool:
  """Whether the outer loop took steps (reports written before the setting: yes)."""
  steps = rep.get("config", {}).get("job", {}).get("condense", {}).get("outer_steps")
  return steps is None or steps > 0


def _missing(rep: dict) -> dict:
  """Figures that this report cannot draw, with the reason."""
  out = {}
  if not _looped(rep):
    out["outer_loop.png"] = "no outer step was taken (--outer_steps=0)"
  if "degrees" not in rep:
    out["degrees.png"] = "this report has no degree profile (written before `degrees` existed)"
  if not rep.get("groups"):
    out["tail_head.png"] = "this report has no per-user-group results"
  return out


def _pm(ret: dict, metric: str) -> str:
  std = ret.get("std", {}).get(metric)
  return f"{ret[metric]:.3f}" + ("" if std is None else f" ± {std:.3f}")


def _secs(x: float) -> str:
  return f"{x:.0f} s" if x >= 100 else f"{x:.1f} s" if x >= 1 else f"{x * 1e3:.3g} ms"


def _seed_of(key: str) -> str:
  return key.removeprefix("condensed_seed")


def _sizes_line(sizes: dict, looped: bool = True) -> str:
  """|S| as fixed plus free pairs, or "" for a report without them."""
  if "free" not in sizes or "fixed" not in sizes:
    return ""
  by = "the outer loop" if looped else "the chosen start (no outer step)"
  if not sizes["fixed"]:
    return f" All {sizes['free']:,} pairs are free pairs (no fixed pairs), chosen by {by}."
  return (f" |S| = {sizes['fixed']:,} fixed pairs (the tail users' pairs, always kept) + "
          f"{sizes['free']:,} free pairs chosen by {by}.")


def _trajectory_lines(rep: dict) -> list[str]:
  """The chosen start (per seed; one for every seed in older reports) and outer step per
  seed: each candidate's score on validation pairs no reward reads (what chooses) and the same
  model's test score (reported only)."""
  rows = []
  for h in rep.get("start") or []:
    for name, score, test in zip(h.get("steps", []), h.get("scores", []),
                                 h.get("test_scores", [])):
      rows.append((h.get("seed", "all"), f"start '{name}'", score, test,
                   name == h["chosen_step"]))
  for h in rep.get("holdout") or []:
    tests = h.get("test_scores") or [float("nan")] * len(h["steps"])
    for step, score, test in zip(h["steps"], h["scores"], tests):
      rows.append((h["seed"], f"outer step {step}", score, test, step == h["chosen_step"]))
  if not rows:
    return []
  return ["How the set was chosen: the proxy model trained on each candidate set (the "
          "starts, then the outer loop's saved steps, if any), scored on validation pairs no "
          "reward reads (this chooses: the half held out of the reward with outer steps, "
          "else all of them) and on test (shown, never used to choose).",
          "",
          "| seed | set | choosing NDCG@10 | test NDCG@10 | chosen |", "|---|---|---:|---:|---|",
          *[f"| {seed} | {name} | {score:.4f} | {test:.4f} | {'yes' if chosen else ''} |"
            for seed, name, score, test, chosen in rows], "", *_fits_lines(rep)]


def _fits_lines(rep: dict) -> list[str]:
  """Each start's choosing scores per fit, where its score is their mean."""
  lines = []
  for h in rep.get("start") or []:
    of_seed = f"seed {h['seed']}, " if "seed" in h else ""
    for name, fits in zip(h.get("steps", []), h.get("fits") or []):
      lines.append(f"- {of_seed}start '{name}': " + ", ".join(
          f"{score:.4f} (seed {seed})" for seed, score in zip(fits["fit_seeds"],
                                                             fits["fit_scores"])))
  if not lines:
    return []
  return ["Each start's choosing score is the mean over the proxy model's fits on its set, "
          "none with the seed's own seed (a seed's fits judge its sets); per fit:", "",
          *lines, ""]


def _beaten(rep: dict) -> str:
  """Plain sentences naming each baseline whose retention of NDCG@10 or Recall@10 is higher
  than the condensed set's (at the 3 decimals shown), overall or for tail users, with the
  number of seeds at which it is ahead where the report holds per-seed figures."""
  tail = (rep.get("groups") or {}).get("tail")
  sentences = []
  for name, b in (rep.get("baselines") or {}).items():
    parts = []
    over = [m for m in HEADLINE
            if round(b["retention"][m], 3) > round(rep["retention"][m], 3)]
    if over:
      parts.append("on " + " and ".join(
          f"{LABEL[m]} ({b['retention'][m]:.3f} vs {rep['retention'][m]:.3f}"
          f"{_ahead(rep, name, m)})" for m in over))
    tail_b = (tail.get("baselines") or {}).get(name) if tail else None
    if tail_b:
      ours, theirs = tail["retention"], tail_b["retention"]
      under = [m for m in HEADLINE if round(theirs[m], 3) > round(ours[m], 3)]
      if under:
        parts.append("for tail users (" + "; ".join(
            f"{LABEL[m]} {theirs[m]:.3f} vs {ours[m]:.3f}{_ahead(rep, name, m, 'tail')}"
            for m in under) + ")")
    if parts:
      sentences.append(f"**{name} beats the condensed set " + " and ".join(parts) + ".**")
  if sentences:
    return " " + " ".join(sentences)
  if rep.get("baselines"):
    where = "overall or for tail users" if tail else "overall"
    return f" No baseline beats the condensed set on NDCG@10 or Recall@10 ({where})."
  return ""


def _ahead(rep: dict, name: str, metric: str, group: str | None = None) -> str:
  """The text ", ahead at k of n seeds", k the seeds at which baseline `name`'s fit scored
  `metric` above the condensed set's (the same seed's full-data fit divides both); empty
  without per-seed figures or with one seed."""
  ours = (rep.get("condensed") or {}).get("per_seed")
  theirs = (rep.get("baselines") or {}).get(name, {}).get("per_seed")
  if not ours or not theirs or len(ours) != len(theirs) or len(ours) < 2:
    return ""

  def value(seed_rec):
    test = seed_rec["test"]
    return (test["groups"][group] if group else test)[metric]

  k = sum(value(t) > value(o) for o, t in zip(ours, theirs))
  return f", ahead at {k} of {len(ours)} seeds"


SAME_SET = 0.99  # a baseline sharing this share of S's pairs is (nearly) the same set


def _same_sets(rep: dict) -> str:
  """A sentence naming the baselines that are (nearly) the condensed set itself, whose
  difference in retention is then the evaluators' seed-to-seed noise, not the sets'."""
  same = {n: v for n, v in (rep.get("overlap") or {}).items()
          if v >= SAME_SET and n in (rep.get("baselines") or {})}
  itself = [n for n, v in same.items() if v == 1.0]  # same sizes: every pair shared
  near = {n: v for n, v in same.items() if v < 1.0}
  out = ""
  if itself:
    out += (" " + ", ".join(itself) + " is" * (len(itself) == 1) + " are" * (len(itself) > 1)
            + " the condensed set itself at every seed (the same pairs, judged by the same "
            "fits): the condensed set is that heuristic's, no better.")
  if near:
    out += (" " + ", ".join(f"{n} shares {v:.2%}" for n, v in near.items())
            + " of the condensed set's pairs (mean over seeds): nearly the same set, so "
            "that difference in retention is the evaluators' noise, not the sets'.")
  return out


def markdown(rep: dict) -> str:
  """The report as markdown: headline, tables, timing, protocol and figure links."""
  lines = [f"# Condensed {rep['protocol']['dataset']} at ratio {rep['ratio']:g}", ""]
  lines += _headline_lines(rep)
  lines += _trajectory_lines(rep)
  defined = [name for name in rep.get("baselines") or {} if name in BASELINES]
  if defined:
    lines += ["Baselines, each the same size as S:", ""]
    lines += [f"- {name}: {BASELINES[name]}" for name in defined] + [""]
  for section in (_retention_lines, _group_lines, _item_lines, _timing_lines,
                  _protocol_lines, _figure_lines):
    lines += section(rep)
  return "\n".join(lines)


def _headline_lines(rep: dict) -> list[str]:
  sizes, seeds, ret = rep["sizes"], rep["seeds"], rep["retention"]
  baselines = rep.get("baselines") or {}
  size = np.mean([s["size"] for s in rep["per_seed"]])
  pseudo = np.mean([s.get("pseudo_kept", 0) for s in rep["per_seed"]])
  head = (f"S keeps {size:,.0f} pairs, {rep['size_fraction']:.1%} of the N = "
          f"{sizes['n_train']:,} training pairs")
  head += f" ({pseudo:,.0f} of them pseudo pairs)." if pseudo else "."
  head += _sizes_line(sizes, _looped(rep))
  if len(seeds) > 1:
    head += " " + ", ".join(f"{LABEL[m]} retention {ret[m]:.3f} (worst {ret['worst'][m]:.3f})"
                           for m in HEADLINE) + f", mean and worst over {len(seeds)} seeds."
  else:
    head += " " + ", ".join(f"{LABEL[m]} retention {ret[m]:.3f}" for m in HEADLINE) + " (1 seed)."
  if baselines:
    head += " Baselines at the same size: " + "; ".join(
        f"{name} " + " / ".join(f"{b['retention'][m]:.3f}" for m in HEADLINE)
        for name, b in baselines.items()) + " (NDCG@10 / Recall@10)."
    head += _beaten(rep) + _same_sets(rep)
  else:
    head += " No baselines were run."
  return [head, ""]


def _retention_lines(rep: dict) -> list[str]:
  sets = _sets(rep)
  lines = ["## Retention per metric", "",
           "Condensed-data test metric over full-data test metric, mean ± std over seeds "
           "(1.0 = no loss). `full` is the full-data test value.", "",
           "| metric | full | " + " | ".join(sets) + " |",
           "|---|---:|" + "---:|" * len(sets)]
  for m in _metrics(rep["retention"]):
    cells = [_pm(s["retention"], m) if m in s["retention"] else "–" for s in sets.values()]
    lines.append(f"| {m} | {rep['full']['test'][m]:.4f} | " + " | ".join(cells) + " |")
  return lines + [""]


def _group_lines(rep: dict) -> list[str]:
  lines = ["## Tail versus head users", ""]
  groups = rep.get("groups")
  if not groups:
    return lines + ["Not available: this report has no per-user-group results.", ""]
  tail_def = rep.get("config", {}).get("tail_group", "the least active users")
  lines += [f"Tail users: {tail_def}; head users: the others. Full-data test values: "
            + "; ".join(f"{g} " + ", ".join(f"{m} {e['full']['test'][m]:.4f}" for m in HEADLINE)
                        for g, e in groups.items()) + ".", "",
            "| users | set | " + " | ".join(f"{m} retention" for m in HEADLINE) + " |",
            "|---|---|" + "---:|" * len(HEADLINE)]
  for g, e in groups.items():
    for name, s in _sets(e).items():
      lines.append(f"| {g} | {name} | " + " | ".join(_pm(s["retention"], m) for m in HEADLINE)
                   + " |")
  return lines + [""]


def _item_lines(rep: dict) -> list[str]:
  items = rep.get("items")
  if not items:
    return ["## Items", "", "Not available: this report has no item-side results.", ""]

  def others(row, fmt):
    rest = ", ".join(f"{n} {fmt(v)}" for n, v in row.items() if n != "condensed")
    return f" ({rest})" if rest else ""
  share, cov, pop = (items[k] for k in ("share_in_S", "coverage@10", "popularity@10"))
  return ["## Items", "",
          f"{share['condensed']:.1%} of the items keep at least one pair in S"
          f"{others(share, '{:.1%}'.format)}. Evaluator coverage@10 {cov['condensed']:.3f}"
          f"{others(cov, '{:.3f}'.format)}; mean popularity of recommended items "
          f"{pop['condensed']:.4g}{others(pop, '{:.4g}'.format)}.", ""]


def _seed_timing(rep: dict, s: dict) -> str:
  """One seed's line: its condensation time, and the loop's if it took steps."""
  line = f"- seed {s['seed']}: condensation {_secs(s['condense_seconds'])}"
  if not _looped(rep):
    return line + " (no outer step)"
  t, hist = s["timing"], rep["history"][str(s["seed"])]
  line += (f" (outer loop {_secs(t['loop'])}, compile {_secs(t['compile'])}, median step "
           f"{_secs(t['per_step_median'])})")
  if hist:
    line += (f"; {hist[-1]['step']} outer steps, inner validation loss "
             f"{hist[0]['reward']:.4f} (step {hist[0]['step']}) → {hist[-1]['reward']:.4f}")
  return line


def _timing_lines(rep: dict) -> list[str]:
  looped, sizes = _looped(rep), rep["sizes"]
  lines = ["## Outer loop and timing" if looped else "## Timing", "",
           *[_seed_timing(rep, s) for s in rep["per_seed"]], "",
           f"Mean {_secs(rep['condense_seconds'])} per seed; proxy model "
           f"{_secs(rep['proxy_seconds'])} and candidate pool {_secs(rep['pool_seconds'])} "
           "(both cached across runs)" + (f"; choosing the seeds' starts "
                                          f"{_secs(rep['start_seconds'])}."
                                          if "start_seconds" in rep else ".")]
  if looped and "free" in sizes:
    lines.append(f"E|S| in outer_loop.png counts the free pairs only: the outer loop holds it "
                 f"at the budget of {sizes['free']:,} free pairs; the "
                 f"{sizes.get('fixed', 0):,} fixed pairs come on top.")
  return lines + [""]


def _protocol_lines(rep: dict) -> list[str]:
  proto, job = rep["protocol"], rep.get("config", {}).get("job", {})
  filters = ", ".join(f"{k} {proto[k]}" for k in ("min_rating", "kcore") if proto.get(k))
  counts = proto["counts"]
  return [
      "## Protocol", "",
      f"- dataset: {proto['dataset']} ({counts['users']:,} users, {counts['items']:,} items, "
      f"{counts['train']:,} / {counts['valid']:,} / {counts['test']:,} train / valid / test "
      "pairs)",
      f"- filters: {filters or 'none'}",
      f"- split: {proto['split']} {proto['ratios']}, seed {proto['seed']}",
      f"- condensation seeds: {', '.join(map(str, rep['seeds']))}; ratio {rep['ratio']:g}; "
      f"accounting {rep['accounting']}",
      f"- evaluators: {', '.join(rep['models'])}; proxy model "
      f"{job.get('proxy_model', 'not recorded')}; baselines: "
      f"{', '.join(rep.get('baselines') or {}) or 'none'}",
      "- versions: " + ", ".join(f"{k} {v}" for k, v in rep["versions"].items()),
      f"- data checksum: `{proto['data_checksum']}`", ""]


def _figure_lines(rep: dict) -> list[str]:
  lines, missing = ["## Figures", ""], _missing(rep)
  for name, caption in FIGURES.items():
    if name in missing:
      lines += [f"*{name} not drawn: {missing[name]}.*", ""]
    else:
      lines += [f"![{name}]({name})", "", f"*{caption}*", ""]
  return lines


def _figure(**kw):
  """A matplotlib Figure outside pyplot: no global backend or figure registry is touched."""
  from matplotlib.figure import Figure
  return Figure(layout="constrained", **kw)


def _save(fig, path: pathlib.Path) -> pathlib.Path:
  """Writes `fig` to `path` as a PNG, atomically."""
  with atomic.atomic_write(path, "wb") as f:
    fig.savefig(f, format="png", dpi=DPI)
  return path


def _outer_loop(rep, path):
  fig = _figure(figsize=(13, 3.8))
  axes = fig.subplots(1, 3)
  for seed, hist in rep["history"].items():
    step = np.array([h["step"] for h in hist])
    reward = np.array([h["reward"] for h in hist])
    std = np.array([h["reward_std"] for h in hist])
    line, = axes[0].plot(step, reward, marker=".", label=f"seed {seed}")
    axes[0].fill_between(step, reward - std, reward + std, color=line.get_color(), alpha=0.2)
    axes[1].plot(step, [h["expected_free"] for h in hist], marker=".", label=f"seed {seed}")
    axes[2].plot(step, [h["seconds"] for h in hist], marker=".", label=f"seed {seed}")
  sizes = rep.get("sizes", {})
  fixed = f"{sizes['fixed']:,}" if "fixed" in sizes else "not recorded"
  for ax, title, ylabel in zip(
      axes, ("reward (lower is better)", f"expected free pairs kept (fixed: {fixed})",
             "wall time"),
      ("inner validation loss", "E|S| (free pairs kept)", "seconds since loop start")):
    ax.set(title=title, xlabel="outer step", ylabel=ylabel)
    ax.ticklabel_format(axis="y", useOffset=False)
    ax.grid(alpha=0.3)
  expected = [h["expected_free"] for hist in rep["history"].values() for h in hist]
  budget = sizes.get("free")
  if budget is not None:
    axes[1].axhline(budget, color="black", linestyle="--", linewidth=1, zorder=1.5,
                    label="budget (free pairs)")
    axes[1].legend(fontsize=8)
  axes[1].set_ylim(*_size_range(expected, budget))
  axes[0].legend(fontsize=8)
  fig.suptitle(f"{rep['protocol']['dataset']}: outer loop")
  return _save(fig, path)


def _size_range(expected, budget) -> tuple:
  """y-range of the expected-size panel: the budget ± at least 1% of it (the budget is met
  to float noise, which must not fill the axis), widened to every value drawn."""
  center = float(np.mean(expected)) if budget is None else float(budget)
  half = max(0.01 * abs(center), 1.0)
  lo = min(center - half, min(expected, default=center))
  hi = max(center + half, max(expected, default=center))
  pad = 0.05 * (hi - lo)
  return lo - pad, hi + pad


def _bars(ax, keys, labels, sets):
  """Grouped bars of retention (± std) on `ax` from 0: one group per key, one bar per set;
  the values are written at the foot of each bar, clear of the error bars."""
  width = 0.8 / len(sets)
  x = np.arange(len(keys))
  for i, (name, ret) in enumerate(sets.items()):
    mean = np.array([ret[m] for m in keys])
    std = np.array([ret.get("std", {}).get(m, 0.0) for m in keys])
    pos = x + (i - (len(sets) - 1) / 2) * width
    ax.bar(pos, mean, width, yerr=std, capsize=3, label=name)
    for p, value in zip(pos, mean):
      ax.annotate(f"{value:.3f}", (p, 0), xytext=(0, 3), textcoords="offset points",
                  ha="center", va="bottom", rotation=90, fontsize=7, color="white")
  ax.axhline(1.0, color="black", linestyle="--", linewidth=1, label="full data")
  ax.set_xticks(x, labels)
  ax.set_ylim(bottom=0)  # a truncated axis would exaggerate the differences
  ax.set_ylabel("retention (condensed / full)")
  ax.grid(axis="y", alpha=0.3)


def _retention(rep, path):
  metrics = _metrics(rep["retention"])
  sets = {n: {m: s["retention"][m] for m in metrics} | {"std": s["retention"].get("std", {})}
          for n, s in _sets(rep).items()}
  fig = _figure(figsize=(max(9.0, 0.4 * len(metrics) * (len(sets) + 1) + 2), 4.2))
  ax = fig.subplots()
  _bars(ax, metrics, metrics, sets)
  fig.legend(*ax.get_legend_handles_labels(), loc="outside right upper", fontsize=8)
  n = len(rep["seeds"])
  fig.suptitle(f"{rep['protocol']['dataset']} at ratio {rep['ratio']:g}: test retention per "
               f"metric ({n} seed{'s' * (n != 1)})")
  return _save(fig, path)


def _degrees(rep, path):
  from matplotlib.ticker import FuncFormatter, LogFormatter
  key = next(k for k in rep["degrees"] if k.startswith("condensed_"))
  counts = rep["protocol"].get("counts", {})
  fig = _figure(figsize=(11, 4.8))
  axes = fig.subplots(1, 2)
  for ax, side in zip(axes, ("users", "items")):
    for name, label, marker in (("train", "full training set", "o"),
                                (key, f"condensed, seed {_seed_of(key)}", "s")):
      prof = rep["degrees"][name][side]
      pairs = int(np.dot(prof["degree"], prof["count"]))
      n, total = sum(prof["count"]), counts.get(side)
      of = f" (of {total:,})" if total is not None and n < total else ""
      ax.plot(prof["degree"], prof["count"], marker=marker, markersize=3.5, linestyle="none",
              alpha=0.6, label=f"{label}: {n:,} {side} with a pair{of}, {pairs:,} pairs")
    ax.set(xscale="log", yscale="log", title=side, xlabel=f"pairs per {side[:-1]} (degree)",
           ylabel=f"number of {side}")
    for axis in (ax.xaxis, ax.yaxis):
      axis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:,.0f}" if v >= 1 else f"{v:g}"))
      axis.set_minor_formatter(LogFormatter(labelOnlyBase=False, minor_thresholds=(1, 0.5)))
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.16))  # clear of points
  fig.suptitle(f"{rep['protocol']['dataset']}: degree distribution before and after")
  return _save(fig, path)


def _tail_head(rep, path):
  groups = rep["groups"]
  names = list(_sets(next(iter(groups.values()))))
  per_metric = {}
  for m in HEADLINE:
    sets = per_metric[m] = {n: {"std": {}} for n in names}
    for g, e in groups.items():
      for n, s in _sets(e).items():
        sets[n][g] = s["retention"][m]
        sets[n]["std"][g] = s["retention"].get("std", {}).get(m, 0.0)
  fig = _figure(figsize=(11, 4.2))
  axes = fig.subplots(1, len(HEADLINE), sharey=True)
  for ax, (m, sets) in zip(axes, per_metric.items()):
    _bars(ax, list(groups), [f"{g} users" for g in groups], sets)
    ax.set_title(LABEL[m])
  axes[0].set_ylim(bottom=0)
  fig.legend(*axes[0].get_legend_handles_labels(), loc="outside right upper", fontsize=8)
  for ax in axes[1:]:
    ax.set_ylabel("")
  fig.suptitle(f"{rep['protocol']['dataset']}: retention for tail versus head users")
  return _save(fig, path)


_DRAW = {"outer_loop.png": _outer_loop, "retention.png": _retention,
         "degrees.png": _degrees, "tail_head.png": _tail_head}


def figures(rep: dict, out_dir) -> list:
  """Writes every figure this report can draw into `out_dir`; returns their paths."""
  out_dir = pathlib.Path(out_dir)
  missing = _missing(rep)
  return [_DRAW[name](rep, out_dir / name) for name in FIGURES if name not in missing]


def write(rep: dict, out_dir) -> dict:
  """Writes the figures, then report.md, into `out_dir`; returns {file name: path}.

  A stale report.md is removed first, so a failure leaves none rather than an old one."""
  out_dir = pathlib.Path(out_dir)
  md_path = out_dir / "report.md"
  md_path.unlink(missing_ok=True)
  text = markdown(rep)
  paths = {p.name: p for p in figures(rep, out_dir)}
  with atomic.atomic_write(md_path, "w") as f:
    f.write(text)
  return {"report.md": md_path, **paths}


def table(rep: dict) -> str:
  """The printed table: full data, condensed set and baselines (test metrics, |S|/N,
  retention with its worst seed)."""
  keys = ("ndcg@10", "recall@10", "ndcg@20", "recall@20")
  lines = [f"| {rep['accounting']} accounting, ratio {rep['ratio']} | |S|/N | "
           + " | ".join(keys) + " | retention ndcg@10 | retention recall@10 |",
           "|---|---:|" + "---:|" * (len(keys) + 2)]
  rows = [("full data", 1.0, rep["full"]["test"], None),
          ("condensed", rep["size_fraction"], rep["condensed"]["test"], rep["retention"])]
  rows += [(name, b["size_fraction"], b["test"], b["retention"])
           for name, b in rep["baselines"].items()]
  for name, size, test, ret in rows:
    r = ("| 1.000 | 1.000 |" if ret is None
         else f"| {ret['ndcg@10']:.3f} (worst {ret['worst']['ndcg@10']:.3f}) "
              f"| {ret['recall@10']:.3f} (worst {ret['worst']['recall@10']:.3f}) |")
    lines.append(f"| {name} | {size:.3f} | " + " | ".join(f"{test[k]:.4f}" for k in keys)
                 + " " + r)
  return "\n".join(lines)
