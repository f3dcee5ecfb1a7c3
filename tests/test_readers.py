"""Tests of jaxcond.data.readers on small synthetic files."""

import gzip
import pathlib
import tempfile

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from jaxcond.data import preprocess, readers
from jaxcond.data.interactions import DataError


def _write(path, text, *, gz=False):
  data = text.encode()
  path.write_bytes(gzip.compress(data) if gz else data)
  return path


def _pairs(inter):
  """{(user, item): rating or None} in original ids, as Python values."""
  users, items = inter.original_pairs()
  ratings = [None] * inter.nnz if inter.ratings is None else inter.ratings.tolist()
  return sorted(zip(users.tolist(), items.tolist(), ratings))


def test_csv_with_header_by_name(tmp_path):
  path = _write(tmp_path / "r.csv",
                "userId,movieId,rating,ts\n1,10,4.5,100\n2,10,3,200\n1,11,5,300\n")
  inter = readers.read_delimited(path, columns=("userId", "movieId", "rating", "ts"))
  assert _pairs(inter) == [(1, 10, 4.5), (1, 11, 5.0), (2, 10, 3.0)]
  assert inter.user_ids.dtype == np.int64
  assert sorted(inter.timestamps.tolist()) == [100, 200, 300]


def test_csv_header_auto_detected_with_indices(tmp_path):
  path = _write(tmp_path / "r.csv", "user,item,rating\n1,10,4\n2,11,3\n")
  inter = readers.read_delimited(path, columns=(0, 1, "2"))
  assert _pairs(inter) == [(1, 10, 4.0), (2, 11, 3.0)]


def test_default_columns_fall_back_to_positions(tmp_path):
  path = _write(tmp_path / "r.tsv", "5\t7\n6\t7\n")
  assert _pairs(readers.read_delimited(path)) == [(5, 7, None), (6, 7, None)]


def test_tsv_without_header(tmp_path):
  path = _write(tmp_path / "r.tsv", "1\t10\t3\n1\t11\t2\n\n3\t10\t1\n")
  inter = readers.read_delimited(path, columns=(0, 1, 2))
  assert _pairs(inter) == [(1, 10, 3.0), (1, 11, 2.0), (3, 10, 1.0)]


def test_double_colon_and_crlf(tmp_path):
  path = _write(tmp_path / "ratings.dat", "1::1193::5::978300760\r\n1::661::3::978302109\r\n")
  inter = readers.read_delimited(path, columns=(0, 1, 2, 3))
  assert _pairs(inter) == [(1, 661, 3.0), (1, 1193, 5.0)]


def test_whitespace_and_variable_fields(tmp_path):
  path = _write(tmp_path / "r.txt", "1 2  0.5\n  3   4 1.5 extra\n")
  inter = readers.read_delimited(path, columns=(0, 1, 2))
  assert _pairs(inter) == [(1, 2, 0.5), (3, 4, 1.5)]


@pytest.mark.parametrize("name", ["r.tsv.gz", "r.tsv"])
def test_gzip_detected_by_magic_bytes(tmp_path, name):
  path = _write(tmp_path / name, "1\t2\n3\t4\n", gz=True)
  assert _pairs(readers.read_delimited(path, columns=(0, 1))) == [(1, 2, None), (3, 4, None)]


def test_string_ids_and_padding(tmp_path):
  path = _write(tmp_path / "r.csv", "user, item\nalice, book one\nbob,007\n")
  inter = readers.read_delimited(path, columns=("user", "item"))
  assert _pairs(inter) == [("alice", "book one", None), ("bob", "007", None)]
  assert inter.item_ids.dtype.kind == "U"


def test_sniffs_delimiters(tmp_path):
  for delim in ("\t", ",", ";", "|", "::", " "):
    path = _write(tmp_path / "r.txt", delim.join(["u1", "i1", "2"]) + "\n"
                  + delim.join(["u2", "i1", "4"]) + "\n")
    assert _pairs(readers.read_delimited(path, columns=(0, 1, 2))) == [
        ("u1", "i1", 2.0), ("u2", "i1", 4.0)], repr(delim)


def test_malformed_row_names_file_line_and_content(tmp_path):
  path = _write(tmp_path / "bad.tsv", "user\titem\trating\n1\t2\t3\n\n4\t5\n")
  with pytest.raises(DataError, match=r"bad\.tsv, line 4: .*at least 3 fields.*'4\\t5'"):
    readers.read_delimited(path, columns=(0, 1, 2))


def test_malformed_row_whitespace(tmp_path):
  path = _write(tmp_path / "bad.txt", "1 2 3\n" * 5 + "9\n")
  with pytest.raises(DataError, match=r"bad\.txt, line 6"):
    readers.read_delimited(path, columns=(0, 1, 2), delimiter=" ")


@pytest.mark.parametrize("bad", ["nan", "inf", "four", ""])
def test_bad_rating(tmp_path, bad):
  path = _write(tmp_path / "r.csv", f"u,i,r\n1,2,3\n1,3,{bad}\n")
  with pytest.raises(DataError, match=r"r\.csv, line 3: rating"):
    readers.read_delimited(path, columns=(0, 1, 2))


def test_empty_id(tmp_path):
  path = _write(tmp_path / "r.csv", "1,2\n,3\n")
  with pytest.raises(DataError, match=r"r\.csv, line 2: empty user id"):
    readers.read_delimited(path, columns=(0, 1), delimiter=",")


def test_header_only_and_empty_files(tmp_path):
  for name, text in (("h.csv", "user,item,rating\n"), ("e.csv", ""), ("b.csv", "\n \n")):
    path = _write(tmp_path / name, text)
    with pytest.raises(DataError, match=f"no interactions in .*{name}"):
      readers.read_delimited(path, columns=(0, 1))


def test_truncated_gzip(tmp_path):
  data = gzip.compress(("1\t2\t3\n" * 1000).encode())
  path = tmp_path / "t.tsv.gz"
  path.write_bytes(data[:len(data) // 2])
  with pytest.raises(DataError, match=r"t\.tsv\.gz.*gzip"):
    readers.read_delimited(path, columns=(0, 1))
  path.write_bytes(data[:10] + b"\x00" * 20 + data[30:])
  with pytest.raises(DataError, match=r"t\.tsv\.gz"):
    readers.read_delimited(path, columns=(0, 1))


def test_missing_file(tmp_path):
  with pytest.raises(DataError, match="nope.csv"):
    readers.read_delimited(tmp_path / "nope.csv")


def test_unknown_column_name(tmp_path):
  path = _write(tmp_path / "r.csv", "a,b\n1,2\n")
  with pytest.raises(DataError, match="no column 'user_x'"):
    readers.read_delimited(path, columns=("user_x", "b"), header=True)


def test_read_inter(tmp_path):
  path = _write(tmp_path / "d.inter", "user_id:token\titem_id:token\trating:float\t"
                "timestamp:float\n1m_1\tToy Story\t5\t978300760.0\n1m_2\tHeat\t3.5\t978300761\n")
  inter = readers.read_inter(path)
  assert _pairs(inter) == [("1m_1", "Toy Story", 5.0), ("1m_2", "Heat", 3.5)]
  assert sorted(inter.timestamps.tolist()) == [978300760, 978300761]


def test_read_inter_falls_back_to_token_fields(tmp_path):
  path = _write(tmp_path / "d.inter", "uid:token\tiid:token\n1\t2\n")
  assert _pairs(readers.read_inter(path)) == [(1, 2, None)]
  bad = _write(tmp_path / "bad.inter", "user\titem\n1\t2\n")
  with pytest.raises(DataError, match="RecBole header"):
    readers.read_inter(bad)


def test_read_item_lists(tmp_path):
  path = _write(tmp_path / "train.txt", "0 5 6 7\n1\n2 5\n", gz=True)
  table = readers.read_item_lists(path)
  assert table.lines_N.tolist() == [1, 1, 1, 3]
  inter = readers.build_interactions(table)
  assert _pairs(inter) == [(0, 5, None), (0, 6, None), (0, 7, None), (2, 5, None)]


def test_large_file_keeps_every_row(tmp_path):
  rng = np.random.default_rng(0)
  n = 200_000
  users, items = rng.integers(0, 5000, n), rng.integers(0, 3000, n)
  text = "\n".join(f"{u}::{i}::{r}::{t}" for u, i, r, t in zip(
      users.tolist(), items.tolist(), rng.integers(1, 6, n).tolist(), range(n)))
  path = _write(tmp_path / "big.dat", text + "\n")
  inter = readers.read_delimited(path, columns=(0, 1, 2, 3))
  assert inter.nnz == n
  np.testing.assert_array_equal(np.sort(inter.timestamps), np.arange(n))


def test_item_lists_require_integer_ids(tmp_path):
  path = _write(tmp_path / "train.txt", "0 5 6\n1 x7 2\n", gz=False)
  with pytest.raises(DataError, match=r"train\.txt.*line 2|line 2.*train\.txt"):
    readers.build_interactions(readers.read_item_lists(path))


def test_text_ids_on_the_first_line_are_data_not_a_header(tmp_path):
  # Amazon-style ids: an ASIN on line 1, an ISBN (all digits) on line 2.
  path = _write(tmp_path / "r.csv", "A1,B00001X,5\nA2,0123456789,4\nA3,B00002Y,3\n")
  inter = readers.read_delimited(path, columns=(0, 1, 2))
  assert inter.nnz == 3
  path = _write(tmp_path / "h.csv", "who,what,stars\nA1,B00001X,5\nA2,0123456789,4\n")
  assert readers.read_delimited(path, columns=(0, 1, 2)).nnz == 2


# --- property: what is written as a delimited file reads back as the same pairs ----------

LETTER_IDS = st.text(st.characters(categories=("L",)), min_size=1, max_size=6)
INT_IDS = st.integers(-(2**63), 2**63 - 1)


@st.composite
def _tables(draw):
  """(rows of (user, item, rating), delimiter): ids all int64 or all text per column."""
  users = draw(st.lists(draw(st.sampled_from((LETTER_IDS, INT_IDS))), min_size=1, max_size=6))
  items = draw(st.lists(draw(st.sampled_from((LETTER_IDS, INT_IDS))), min_size=1, max_size=6))
  ratings = st.floats(-1e6, 1e6, allow_nan=False, width=32)
  rows = draw(st.lists(st.tuples(st.sampled_from(users), st.sampled_from(items), ratings),
                       min_size=1, max_size=25))
  return rows, draw(st.sampled_from(("\t", ",", ";", "|", "::", " ")))


@settings(max_examples=60, deadline=None)
@given(table=_tables(), header=st.booleans(), sniff=st.booleans(), gz=st.booleans())
def test_property_read_delimited_gives_the_written_pairs(table, header, sniff, gz):
  """Duplicates are kept by the reader; preprocess.dedup keeps the first in file order."""
  rows, delim = table
  lines = ([delim.join(("user", "item", "rating"))] if header else []) + [
      delim.join((str(u), str(i), repr(r))) for u, i, r in rows]
  with tempfile.TemporaryDirectory() as tmp:
    path = _write(pathlib.Path(tmp) / "t.txt", "\n".join(lines) + "\n", gz=gz)
    inter = readers.read_delimited(path, columns=("user", "item", "rating") if header else
                                   (0, 1, 2), delimiter=None if sniff else delim, header=header)
  expected = [(u, i, float(np.float32(r))) for u, i, r in rows]
  assert _pairs(inter) == sorted(expected)
  first = {}
  for u, i, r in expected:
    first.setdefault((u, i), r)
  assert _pairs(preprocess.dedup(inter)) == sorted((u, i, r) for (u, i), r in first.items())
