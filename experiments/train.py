r"""Trains a recommender on a dataset's full training split and reports test metrics.

python experiments/train.py --flagfile=experiments/flags/ml-1m.flags --output_dir=/tmp/ml1m

The same as the installed `jaxcond train`; its flags and outputs: jaxcond/cli/train.py.
"""

from jaxcond import cli

if __name__ == "__main__":
  cli.run("train")
