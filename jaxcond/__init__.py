"""jaxcond: dataset condensation for recommendation (DConRec) in JAX.

  import jaxcond as jc
  ds = jc.load("ml-100k", min_rating=3)
  res = jc.condense(ds, ratio=0.25, out_dir="runs/ml-100k-condensed")
  print(res.table())

The API lives in jaxcond.api; the method in jaxcond.condense; the command in jaxcond.cli.
"""

from jaxcond.api import Dataset, Result, condense, configs, evaluate, export, judge, load

__all__ = ["Dataset", "Result", "condense", "configs", "evaluate", "export", "judge", "load"]
