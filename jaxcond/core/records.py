"""Reports: atomic JSON files, metric tables, and the versions that made them."""

from __future__ import annotations

import importlib.metadata
import json
import pathlib
import platform

import numpy as np

from jaxcond.core import atomic
from jaxcond.core.errors import DataError


def write_json_atomic(path, obj) -> None:
  """Writes JSON to a temp file beside `path`, then renames: never a truncated file."""
  with atomic.atomic_write(path, "w") as f:
    json.dump(obj, f, indent=2)
    f.write("\n")


def read_fingerprinted(path, fingerprint: str, unit: str = "unit") -> dict:
  """A finished unit's JSON record (written with a "fingerprint" key). DataError when
  unreadable, ValueError when another run's (other settings or data) wrote it."""
  try:
    record = json.loads(pathlib.Path(path).read_text())
  except (OSError, ValueError) as e:
    raise DataError(f"{path} is unreadable ({e}); delete it to rerun that {unit}") from e
  if record.get("fingerprint") != fingerprint:
    raise ValueError(f"{path} was written by a run with other settings or data; resume "
                     f"with the same ones, or start afresh (--noresume / resume=False, or "
                     f"another output folder)")
  return record


def write_text_atomic(path, text: str) -> None:
  with atomic.atomic_write(path, "w") as f:
    f.write(text)


def write_report(path, result: dict, markdown: str) -> pathlib.Path:
  """A study's JSON record at `path` and its markdown beside it, each written atomically;
  returns the markdown's path."""
  path = pathlib.Path(path)
  write_json_atomic(path, result)
  write_text_atomic(path.with_suffix(".md"), markdown)
  return path.with_suffix(".md")


def versions() -> dict:
  out = {"python": platform.python_version(), "machine": platform.machine()}
  for pkg in ("jaxcond", "jax", "jaxlib", "optax", "numpy", "scipy"):
    try:
      out[pkg] = importlib.metadata.version(pkg)
    except importlib.metadata.PackageNotFoundError:
      out[pkg] = None
  return out


def metrics_table(rows: dict[str, dict], ks=(5, 10, 20),
                  metrics=("recall", "ndcg", "hit", "precision")) -> str:
  """A markdown table: one row per split (e.g. valid, test), one column per metric@K."""
  cols = [f"{m}@{k}" for m in metrics for k in ks]
  lines = ["| split | " + " | ".join(cols) + " |", "|---|" + "---:|" * len(cols)]
  for name, vals in rows.items():
    lines.append(f"| {name} | " + " | ".join(f"{vals[c]:.4f}" for c in cols) + " |")
  return "\n".join(lines)


def degree_profile(interactions) -> dict:
  """How many users (items) have each number of pairs: {"users"|"items": {"degree": [...],
  "count": [...]}}, degrees ascending, those with no pair left out."""
  out = {}
  for side, degrees in (("users", interactions.user_degrees()),
                        ("items", interactions.item_degrees())):
    values, counts = np.unique(degrees[degrees > 0], return_counts=True)
    out[side] = {"degree": values.tolist(), "count": counts.tolist()}
  return out
