"""experiments/quickstart.ipynb, executed end to end on ML-100k in a Jupyter kernel."""

import importlib.util
import json
import os
import pathlib
import re
import sys

import jupyter_client.kernelspec
import nbformat
import pytest
from nbclient import NotebookClient

from jaxcond.condense import starts

ROOT = pathlib.Path(__file__).resolve().parents[1]
NOTEBOOK = ROOT / "experiments" / "quickstart.ipynb"


def test_notebook_is_committed_without_outputs():
  nb = nbformat.read(NOTEBOOK, as_version=4)
  nbformat.validate(nb)
  code = [c for c in nb.cells if c.cell_type == "code"]
  assert code and all(not c.outputs and c.execution_count is None for c in code)
  assert "import jaxcond.api as jc" in code[0].source


def _text(cell) -> str:
  return "".join(o.get("text", "") + o.get("data", {}).get("text/markdown", "")
                 for o in cell.get("outputs", []))


def test_quickstart_notebook_runs(tmp_path):
  if importlib.util.find_spec("neighbors") is None:
    pytest.skip("ML-100k is read from the `neighbors` wheel, which is not installed "
                "(pip install -e '.[test]' or '.[ml100k]')")
  specs = jupyter_client.kernelspec.find_kernel_specs()
  assert "python3" in specs, f"no python3 kernelspec (ipykernel installs one); found {specs}"
  nb = nbformat.read(NOTEBOOK, as_version=4)
  n_cells = len(nb.cells)
  nb.cells.append(nbformat.v4.new_code_cell("import sys; print(sys.executable)"))
  out = tmp_path / "out"
  env = dict(os.environ, JAX_PLATFORMS="cpu", JAXCOND_QUICKSTART_OUT=str(out),
             JAXCOND_CACHE_DIR=str(tmp_path / "cache"))
  client = NotebookClient(nb, timeout=300, kernel_name="python3",
                          resources={"metadata": {"path": str(ROOT / "experiments")}})
  try:
    client.execute(env=env)  # raises CellExecutionError, with the traceback, if a cell fails
  finally:
    nbformat.write(nb, tmp_path / "executed.ipynb")  # to read what the cells printed

  # The kernel ran this interpreter (so the jaxcond and the packages under test).
  assert os.path.samefile(_text(nb.cells[-1]).strip(), sys.executable)
  text = "\n".join(_text(c) for c in nb.cells[:n_cells])
  m = re.search(r"\|S\|/N ([\d.]+): retention ndcg@10 ([\d.]+), recall@10 ([\d.]+) \(random "
                r"subset of the same size: ndcg@10 ([\d.]+)", text)
  assert m, text
  size, ndcg, recall, random_ndcg = map(float, m.groups())
  assert size == pytest.approx(0.25, abs=0.005)
  assert 0.5 < ndcg < 1.2 and 0.5 < recall < 1.2 and 0.2 < random_ndcg < 1.2
  assert "| condensed | 0.250 |" in text and "ml-100k: 943 users" in text
  assert re.search(r"EASE ndcg@10: condensed 0\.\d+, full data 0\.\d+, retention \d\.\d+", text)

  rep = json.loads((out / "condense" / "report.json").read_text())
  job = rep["config"]["job"]  # the notebook keeps the defaults: best start, no outer step
  assert rep["seeds"] == [0] and job["condense"]["outer_steps"] == 0 and job["start"] == "best"
  assert rep["start"][0]["kind"] in starts.STARTS[:-1] and job["tail"] == "best"
  assert rep["retention"]["ndcg@10"] == pytest.approx(ndcg, abs=5e-4)
  assert (out / "condense" / "report.md").exists()
  assert (out / "export" / "recbole" / "condensed" / "condensed.test.inter").exists()
  assert any("image/png" in o.get("data", {}) for c in nb.cells for o in c.get("outputs", []))
