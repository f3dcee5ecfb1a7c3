r"""Condenses a dataset's training split and judges the condensed set.

python experiments/condense.py --flagfile=experiments/flags/dianping.flags

The same as the installed `jaxcond condense`; its flags and outputs: jaxcond/cli/condense.py.
"""

from jaxcond import cli

if __name__ == "__main__":
  cli.run("condense")
