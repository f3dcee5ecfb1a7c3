"""Flags shared by the entry points, the configs they build, and early checks of them."""

import pathlib
import re
import sys
import tempfile

import jax
from absl import flags

from jaxcond import models
from jaxcond.core import records, sharding
from jaxcond.data.pipeline import DataConfig, prepare
from jaxcond.models import train as train_lib

_D = DataConfig()
_T = train_lib.TrainConfig()
_M = models.ModelConfig()

flags.DEFINE_string("dataset", _D.dataset,
                    "Known dataset name, or path to a delimited or .inter file.")
flags.DEFINE_string("data_dir", None,
                    "Folder of datasets (else $JAXCOND_DATA_DIR, else packaged/cached).")
flags.DEFINE_list("columns", list(_D.columns), "For files: user,item[,rating[,timestamp]] columns, "
                  "by header name or 0-based index.")
flags.DEFINE_string("delimiter", None, "For files: field delimiter (default: sniffed).")
flags.DEFINE_bool("header", None, "For files: --header / --noheader (default: detected).")
flags.DEFINE_float("min_rating", None, "Keep pairs with rating >= this.")
flags.DEFINE_integer("kcore", 0, "Iterative k-core on users and items (0: none).")
flags.DEFINE_enum("split", "rs", ["rs", "given"],
                  "rs: per-user random 8:1:1; given: the dataset's own.")
flags.DEFINE_integer("split_seed", _D.seed, "Seed of the random split.")
flags.DEFINE_enum("model", "bpr_mf", sorted(models.MODELS),
                  "Recommender (condense.py: the condensation and proxy model).")
flags.DEFINE_integer("dim", _M.dim, "Embedding size.")
flags.DEFINE_integer("n_layers", _M.n_layers, "LightGCN layers.")
flags.DEFINE_float("ease_l2", _M.ease_l2, "EASE L2 weight.")
flags.DEFINE_float("lr", _T.lr, "Adam learning rate.")
flags.DEFINE_integer("batch_size", _T.batch_size, "Pairs per step.")
flags.DEFINE_float("reg", _T.reg, "L2 weight on the batch embeddings.")
flags.DEFINE_integer("max_epochs", _T.max_epochs, "Epoch limit.")
flags.DEFINE_integer("min_epochs", _T.min_epochs, "No early stop before this epoch.")
flags.DEFINE_integer("patience", _T.patience, "Evaluations without improvement before stopping.")
flags.DEFINE_integer("eval_every", _T.eval_every, "Epochs between validations.")
flags.DEFINE_integer("valid_users", _T.valid_users, "Early stopping validates on a fixed "
                     "random sample of this many users; 0: all.", lower_bound=0)
flags.DEFINE_integer("seed", 0, "Seed of model initialisation and training.")
flags.DEFINE_string("output_dir", "runs/train", "Where results go.")
flags.DEFINE_string("cache_dir", None, "Cache of splits and full-data runs "
                    "(default $JAXCOND_CACHE_DIR, else ~/.cache/jaxcond).")
flags.DEFINE_integer("devices", 0, "Devices the outer loop is split over (along users): 0 "
                     "for none (one device, unpadded), N for the first N, -1 for all of "
                     "every process.")
flags.DEFINE_string("coordinator_address", None, "Multi-process runs: host:port of process "
                    "0 (jax.distributed); every process runs the same command.")
flags.DEFINE_integer("num_processes", 1, "Multi-process runs: how many processes.")
flags.DEFINE_integer("process_id", 0, "Multi-process runs: this process's index.")
FLAGS = flags.FLAGS


def data_config() -> DataConfig:
  return DataConfig(dataset=FLAGS.dataset, data_dir=FLAGS.data_dir,
                    columns=tuple(FLAGS.columns), delimiter=FLAGS.delimiter,
                    header=FLAGS.header, min_rating=FLAGS.min_rating, kcore=FLAGS.kcore,
                    split=FLAGS.split, seed=FLAGS.split_seed)


def model_config() -> models.ModelConfig:
  return models.ModelConfig(dim=FLAGS.dim, n_layers=FLAGS.n_layers, ease_l2=FLAGS.ease_l2)


def train_config() -> train_lib.TrainConfig:
  return train_lib.TrainConfig(lr=FLAGS.lr, batch_size=FLAGS.batch_size, reg=FLAGS.reg,
                               max_epochs=FLAGS.max_epochs, min_epochs=FLAGS.min_epochs,
                               patience=FLAGS.patience, eval_every=FLAGS.eval_every,
                               valid_users=FLAGS.valid_users)


def parse_flags(argv: list[str]) -> list[str]:
  """absl's flag parsing (`app.run(main, flags_parser=common.parse_flags)`); a bad flag read
  from a flagfile is reported with that file and line, and a positional argument is
  refused. Exits 1 on an error, no traceback."""
  try:
    rest = FLAGS(argv)
  except flags.Error as e:
    sys.stderr.write(f"FATAL Flags parsing error: {e}{_flag_origin(str(e), argv)}\n"
                     "Pass --helpshort or --helpfull to see help on flags.\n")
    sys.exit(1)
  if len(rest) > 1:  # every command takes flags only
    sys.exit(f"error: unexpected arguments {rest[1:]}; every setting is a --flag")
  return rest


def ints(values, flag: str) -> tuple[int, ...]:
  """A list flag's values as integers; a ValueError naming the flag otherwise."""
  try:
    return tuple(int(v) for v in values)
  except ValueError as e:
    raise ValueError(f"{flag} must be integers, got {values}") from e


def _flag_origin(message: str, argv: list[str]) -> str:
  """' (in FILE, line N)' for the flag an absl error message names, if a flagfile set it."""
  m = re.search(r"Unknown command line flag '([^']+)'|flag --([^=\s]+)=", message)
  if not m:
    return ""
  pattern = re.compile(rf"--?(no)?{re.escape(m.group(1) or m.group(2))}(=|\s*$)")
  for path in _flagfiles(argv[1:], depth=0):
    try:
      lines = pathlib.Path(path).read_text().splitlines()
    except (OSError, UnicodeDecodeError):
      continue
    for n, line in enumerate(lines, 1):
      if pattern.match(line.strip()):
        return f" (in {path}, line {n})"
  return ""


def _flagfiles(args: list[str], depth: int) -> list[str]:
  """The --flagfile= paths among `args`, and those the flagfiles name, depth first."""
  out = []
  for arg in args:
    if arg.startswith("--flagfile=") and depth < 10:
      path = arg.split("=", 1)[1]
      out.append(path)
      try:
        out += _flagfiles(pathlib.Path(path).read_text().split(), depth + 1)
      except (OSError, UnicodeDecodeError):
        pass
  return out


def check_output_dir() -> pathlib.Path:
  """Creates --output_dir and checks a file can be written there, before any long work;
  a ValueError naming the folder otherwise. Returns the folder."""
  out = pathlib.Path(FLAGS.output_dir)
  blocker = next((p for p in (out, *out.parents) if p.exists() and not p.is_dir()), None)
  if blocker is not None:
    raise ValueError(f"cannot write to --output_dir={out}: {blocker} is a file, not a folder")
  try:
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryFile(dir=out):
      pass
  except OSError as e:
    raise ValueError(f"cannot write to --output_dir={out}: {e.strerror or e}") from e
  return out


def init_distributed() -> None:
  """jax.distributed.initialize from the flags, before any computation (CPU collectives
  over gloo, so that several processes on one or many hosts work without accelerators)."""
  if FLAGS.num_processes == 1:
    return
  if not FLAGS.coordinator_address:
    raise ValueError("--num_processes > 1 needs --coordinator_address=host:port")
  if not 0 <= FLAGS.process_id < FLAGS.num_processes:
    raise ValueError(f"--process_id must be in [0, {FLAGS.num_processes}), got "
                     f"{FLAGS.process_id}")
  jax.config.update("jax_cpu_collectives_implementation", "gloo")
  jax.distributed.initialize(coordinator_address=FLAGS.coordinator_address,
                             num_processes=FLAGS.num_processes, process_id=FLAGS.process_id)


def mesh():
  """The mesh --devices asks for, or None."""
  if FLAGS.devices == 0:
    return None
  return sharding.make_mesh(None if FLAGS.devices < 0 else FLAGS.devices)


def cache_dir() -> pathlib.Path | None:
  return FLAGS.cache_dir and pathlib.Path(FLAGS.cache_dir)


def load_data():
  """The split the flags describe, and its protocol (printed with its checksum)."""
  data, protocol = prepare(data_config(), cache_dir=cache_dir(), log=print)
  print(f"{FLAGS.dataset}: {data.summary()}  checksum {protocol['data_checksum'][:16]}")
  return data, protocol


def write_result(name: str, result: dict) -> None:
  out = pathlib.Path(FLAGS.output_dir) / name
  records.write_json_atomic(out, result)
  print(f"wrote {out}")


def print_epoch(row):
  print(f"epoch {row['epoch']:4d}  loss {row['loss']:.4f}  valid ndcg@10 "
        f"{row['valid']['ndcg@10']:.4f}  best epoch {row['best_epoch']}  {row['seconds']:.1f}s",
        flush=True)
