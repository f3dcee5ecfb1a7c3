r"""Every condensation method at several ratios: retention, size, time, and rank agreement.

python experiments/compare.py --flagfile=experiments/flags/ml-1m.flags --seeds=0 \
    --ratios=0.25 --methods=random,stratified,proxy_top --output_dir=runs/compare-ml-1m

The same as the installed `jaxcond compare`; its flags and outputs: jaxcond/cli/compare.py.
"""

from jaxcond import cli

if __name__ == "__main__":
  cli.run("compare")
