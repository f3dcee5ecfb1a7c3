r"""Judges a finished set against the full data and same-size baselines.

python experiments/judge.py --flagfile=experiments/flags/ml-100k.flags \
    --set=runs/ml-100k/seed0/condensed.tsv --output_dir=runs/ml-100k-judged

The same as the installed `jaxcond judge` (jaxcond/cli/judge.py).
"""

from jaxcond import cli

if __name__ == "__main__":
  cli.run("judge")
