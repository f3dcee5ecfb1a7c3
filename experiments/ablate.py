r"""The method with each part switched off in turn, at the same budget; one table.

python experiments/ablate.py --flagfile=experiments/flags/dianping.flags \
    --output_dir=runs/ablate-dianping

Takes every flag of condense.py (the "full" row is what they describe). Writes
<output_dir>/<variant>/report.json per variant (a finished variant is skipped when the
command is run again), <output_dir>/ablate.json and ablate.md, and prints the table.
"""

import dataclasses
import json
import pathlib
import sys

from absl import app, flags

from jaxcond import condensation
from jaxcond.cli import common, condense
from jaxcond.condense import tail as tail_lib
from jaxcond.core import records
from jaxcond.data.interactions import DataError


def variants(cfg: condensation.JobConfig) -> dict:
  """Variant name -> JobConfig: the full method, the method without each part, DConRec's
  tail rule always on, and the two tail compensations on the 20% least active users (at
  the same budget)."""
  fresh = dataclasses.replace(cfg.condense,
                              inner=dataclasses.replace(cfg.condense.inner, start="fresh"))
  return {
      "full": cfg,
      "no_tail": dataclasses.replace(cfg, tail="none"),
      "tail_keep": dataclasses.replace(cfg, tail="keep"),  # DConRec's rule, not chosen
      "tail_keep_q20": dataclasses.replace(cfg, tail="keep", tail_quantile=0.2),
      "tail_floor": dataclasses.replace(cfg, tail="floor"),
      "no_augment": dataclasses.replace(cfg, augment=False),
      "no_fn_exclusion": dataclasses.replace(cfg, exclude_false_negatives=False),
      "no_prior": dataclasses.replace(cfg, prior_scale=0.0),
      # No proxy at all: no pseudo pairs, no false negatives, no prior, and the inner
      # training starts from a fresh model instead of the proxy's item table.
      # The start is then the uniform prior: the proxy heuristics are no candidates.
      "no_proxy": dataclasses.replace(cfg, augment=False, exclude_false_negatives=False,
                                      prior_scale=0.0, condense=fresh, start="prior"),
  }


def effective(cfg: condensation.JobConfig, train) -> condensation.JobConfig:
  """cfg with a tail rule that selects nobody written as no tail compensation."""
  if cfg.tail in ("keep", "best") and not tail_lib.tail_users(train, tau=cfg.tail_tau,
                                                    quantile=cfg.tail_quantile).any():
    return dataclasses.replace(cfg, tail="none", tail_tau=0, tail_quantile=None)
  if cfg.tail == "none":
    return dataclasses.replace(cfg, tail_tau=0, tail_quantile=None)
  return cfg


flags.DEFINE_list("variants", list(variants(condensation.JobConfig())),
                  "Variants to run (default all).")
FLAGS = common.FLAGS


def rows_of(name: str, rep: dict) -> list[dict]:
  """The variant's row; for "full" also its same-size baselines' rows."""
  tail = rep["groups"]["tail"]
  parts = [(name, rep["size_fraction"], rep["retention"], tail["retention"], "condensed")]
  if name == "full":
    parts += [(f"baseline: {b}", e["size_fraction"], e["retention"],
               tail["baselines"][b]["retention"], b) for b, e in rep["baselines"].items()]
  return [{"variant": v, "size_fraction": size, "ndcg@10": ret["ndcg@10"],
           "ndcg@10_std": ret["std"]["ndcg@10"], "recall@10": ret["recall@10"],
           "tail_ndcg@10": tail_ret["ndcg@10"], "tail_recall@10": tail_ret["recall@10"],
           "seeds": rep["seeds"], "item_share": rep["items"]["share_in_S"][key]}
          for v, size, ret, tail_ret, key in parts]


def table(rows: list[dict]) -> str:
  lines = ["| variant | \\|S\\|/N | NDCG@10 | Recall@10 | tail NDCG@10 | tail Recall@10 | "
           "items in S |", "|---|---:|---:|---:|---:|---:|---:|"]
  for r in rows:
    lines.append(f"| {r['variant']} | {r['size_fraction']:.3f} | {r['ndcg@10']:.3f} "
                 f"(± {r['ndcg@10_std']:.3f}) | {r['recall@10']:.3f} | {r['tail_ndcg@10']:.3f} "
                 f"| {r['tail_recall@10']:.3f} | {r['item_share']:.3f} |")
  return "\n".join(lines)


def main(argv):
  del argv  # common.parse_flags refuses positional arguments
  out = pathlib.Path(FLAGS.output_dir)
  try:
    common.check_output_dir()
    cfg = condense.job_config()
    known = variants(cfg)
    unknown = set(FLAGS.variants) - set(known)
    if unknown:
      raise ValueError(f"unknown variants {sorted(unknown)}; known: {', '.join(known)}")
    data, protocol = common.load_data()
    rows, done = [], {}
    for name in FLAGS.variants:
      path = out / name / "report.json"
      same = next((n for n in done if effective(known[n], data.train)
                   == effective(known[name], data.train)), None)
      if same is not None:
        print(f"{name}: the same settings as {same} (e.g. no tail users), not rerun")
        rep = done[same]
      elif path.exists():
        print(f"{name}: done before, reading {path}")
        rep = json.loads(path.read_text())
      else:
        vcfg = known[name] if name == "full" else dataclasses.replace(known[name], baselines=())
        print(f"=== {name}")
        rep = condensation.run(data, protocol, vcfg, model_cfg=common.model_config(),
                               train_cfg=common.train_config(), out_dir=out / name,
                               cache_dir=common.cache_dir(), log=lambda s: print(s, flush=True))
        records.write_json_atomic(path, rep)
      done[name] = rep
      rows += rows_of(name, rep)
      if same is not None:
        rows[-1]["variant"] = f"{name} (= {same})"
  except (DataError, ValueError, FloatingPointError) as e:
    sys.exit(f"error: {e}")
  text = table(rows)
  print(text)
  records.write_json_atomic(out / "ablate.json", {"rows": rows, "protocol": protocol,
                                                 "flags": FLAGS.flags_into_string()})
  records.write_text_atomic(out / "ablate.md", text + "\n")
  print(f"wrote {out / 'ablate.json'} and ablate.md")



if __name__ == "__main__":
  app.run(main, flags_parser=common.parse_flags)
