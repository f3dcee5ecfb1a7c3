import json

import pytest

from jaxcond.core import records
from jaxcond.data.interactions import DataError


def test_write_json_atomic(tmp_path):
  path = tmp_path / "a" / "m.json"
  records.write_json_atomic(path, {"x": 1})
  assert json.loads(path.read_text()) == {"x": 1}
  with pytest.raises(TypeError):
    records.write_json_atomic(path, {"x": object()})
  assert json.loads(path.read_text()) == {"x": 1}  # the old file survives a failed write
  assert [p.name for p in path.parent.iterdir()] == ["m.json"]


def test_metrics_table_and_versions():
  row = {f"{m}@{k}": 0.5 for m in ("recall", "ndcg", "hit", "precision") for k in (5, 10, 20)}
  table = records.metrics_table({"test": row})
  assert table.splitlines()[2].startswith("| test | 0.5000")
  assert records.versions()["jax"]


def test_write_text_atomic(tmp_path):
  path = tmp_path / "t.md"
  records.write_text_atomic(path, "| a |\n")
  assert path.read_text() == "| a |\n"
  with pytest.raises(TypeError):
    records.write_text_atomic(path, None)
  assert path.read_text() == "| a |\n"


def test_read_fingerprinted_refuses_other_runs_and_names_bad_files(tmp_path):
  path = tmp_path / "record.json"
  records.write_json_atomic(path, {"fingerprint": "abc", "value": 3})
  assert records.read_fingerprinted(path, "abc") == {"fingerprint": "abc", "value": 3}
  with pytest.raises(ValueError, match="written by a run with other settings or data"):
    records.read_fingerprinted(path, "xyz")
  path.write_text('{"fingerprint": "abc", ')  # a torn file
  with pytest.raises(DataError, match=r"record.json is unreadable .*rerun that seed"):
    records.read_fingerprinted(path, "abc", "seed")
