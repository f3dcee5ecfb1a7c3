"""The `jaxcond` command: `jaxcond <command> [--flags | --flagfile=FILE]`.

Each command is a module of this package with absl flags and a `main(argv)`; only the
chosen one is imported, so commands do not share (or clash over) flag definitions.
"""

from __future__ import annotations

import importlib
import sys

COMMANDS = {
    "condense": "condense a dataset's training split, export the set and judge it",
    "judge": "judge a finished set (a file of pairs) against the full data and baselines",
    "compare": "every condensation method at several ratios: retention, time, rank agreement",
    "train": "train a recommender on the full training split and test it",
}


def usage() -> str:
  width = max(map(len, COMMANDS))
  lines = ["usage: jaxcond <command> [--flag=value ...] [--flagfile=FILE]", "", "commands:"]
  lines += [f"  {name:<{width}}  {what}" for name, what in COMMANDS.items()]
  lines += ["", "jaxcond <command> --helpshort lists a command's flags."]
  return "\n".join(lines)


def run(command: str, argv: list[str] | None = None) -> None:
  """Runs `command` with absl's flag parsing over argv (default: sys.argv[1:])."""
  from absl import app

  from jaxcond.cli import common
  module = importlib.import_module(f"jaxcond.cli.{command}")
  args = sys.argv[1:] if argv is None else argv
  app.run(module.main, argv=[f"jaxcond {command}", *args], flags_parser=common.parse_flags)


def main() -> None:
  args = sys.argv[1:]
  if not args or args[0] in ("-h", "--help", "help"):
    print(usage())
    return
  if args[0] not in COMMANDS:
    sys.exit(f"jaxcond: unknown command {args[0]!r}\n\n{usage()}")
  run(args[0], args[1:])
