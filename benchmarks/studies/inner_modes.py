r"""Does the inner training learn, and does its reward tell masks apart? Per inner mode.

python benchmarks/studies/inner_modes.py --data_dir=../shared/datasets --json=/tmp/inner_modes.json

For each dataset and inner mode, at the uniform start (keep probability = budget /
candidates): the inner model's validation BPR loss (ln 2 = 0.6931 is a model that learned
nothing), the reward's signal-to-noise ratio (spread across masks / spread across inner
keys, for the total and per user). Timings are in condense_speed.py (run it alone).
"""

import dataclasses
import math

import jax
from absl import app, flags

from jaxcond import condensation, models
from jaxcond.condense import condenser, inner
from jaxcond.condense import proxy as proxy_lib
from jaxcond.core import records
from jaxcond.data.pipeline import DataConfig, prepare
from jaxcond.judging import fits
from jaxcond.models import train as train_lib

flags.DEFINE_string("data_dir", None, "Datasets folder (else $JAXCOND_DATA_DIR).")
flags.DEFINE_list("datasets", ["dianping", "ml-1m"], "Datasets.")
flags.DEFINE_string("cache_dir", None, "Cache (full-data proxies are reused from it).")
flags.DEFINE_integer("n_keys", 4, "Inner keys per mask for the SNR.")
flags.DEFINE_string("json", None, "Write the measurements here.")
FLAGS = flags.FLAGS

MIN_RATING = {"ml-1m": 3, "ciao": 3}


def modes(budget: int) -> dict:
  default = inner.InnerConfig()
  official = inner.InnerConfig(steps=math.ceil(budget / 4096), lr=5e-4, optimizer="adam",
                               start="fresh", update="all")
  return {
      "one step, proxy items, fresh users (default)": (default, "user"),
      "one step, proxy users and items (warm)": (dataclasses.replace(default, start="warm"),
                                                 "user"),
      "one epoch of Adam from a fresh model (official)": (official, "global"),
      "one step, fresh model, both tables": (
          inner.InnerConfig(start="fresh", update="all", lr=1.0), "global"),
  }


def main(argv):
  del argv
  out = {"datasets": {}, "versions": records.versions()}
  hp, tcfg = models.ModelConfig(), train_lib.TrainConfig()
  for name in FLAGS.datasets:
    data, protocol = prepare(DataConfig(dataset=name, data_dir=FLAGS.data_dir,
                                        min_rating=MIN_RATING.get(name)))
    params, _ = fits.fit_full("bpr_mf", data, protocol, model_cfg=hp, train_cfg=tcfg,
                              seed=0, cache_dir=FLAGS.cache_dir)
    proxy = proxy_lib.tables("bpr_mf", params, data.train, hp)
    job = condensation.JobConfig()
    pool, _, rows, sizes, graph, max_degree, _ = condensation.loop_inputs(data, proxy, job)
    results = {}
    for label, (inner_cfg, credit) in modes(sizes["total"]).items():
      cfg = dataclasses.replace(job.condense, inner=inner_cfg, credit=credit)
      sdata = condenser.step_data(pool, rows, proxy, data.valid, graph, sizes, cfg, max_degree)
      logits = condenser.init_state(sdata, cfg).logits_C
      signal = condenser.reward_signal(logits, jax.random.key(0), sdata, cfg, hp, max_degree,
                                       n_masks=8, n_keys=FLAGS.n_keys)
      results[label] = {"valid_loss": signal["reward_mean"], "ln2": signal["ln2"],
                        "snr_total": signal["global"]["snr"],
                        "snr_per_user_median": signal["per_user_median"]["snr"],
                        "inner": dataclasses.asdict(inner_cfg), "credit": credit}
      print(f"{name} | {label} | valid loss {signal['reward_mean']:.4f} (ln 2 0.6931) | SNR "
            f"total {signal['global']['snr']:.2f}, per user "
            f"{signal['per_user_median']['snr']:.2f}",
            flush=True)
    out["datasets"][name] = {"results": results, "sizes": sizes,
                             "data_checksum": protocol["data_checksum"]}
  if FLAGS.json:
    records.write_json_atomic(FLAGS.json, out)
    print(f"wrote {FLAGS.json}")


if __name__ == "__main__":
  app.run(main)
