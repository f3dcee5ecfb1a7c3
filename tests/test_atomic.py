import pytest

from jaxcond.core import atomic


def test_replaces_only_on_success(tmp_path):
  path = tmp_path / "sub" / "out.txt"
  with atomic.atomic_write(path, "w") as f:
    f.write("first")
  assert path.read_text() == "first"
  with pytest.raises(RuntimeError):
    with atomic.atomic_write(path, "w") as f:
      f.write("half of a second vers")
      raise RuntimeError("killed mid-write")
  assert path.read_text() == "first"
  assert [p.name for p in path.parent.iterdir()] == ["out.txt"]
