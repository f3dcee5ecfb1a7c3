"""Tests of jaxcond.data.export: what is written reads back (jaxcond.data.readers) unchanged."""

import dataclasses
import gzip
import pathlib
import tempfile

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from jaxcond.data import export, preprocess, readers
from jaxcond.data.interactions import TEST, TRAIN, VALID, DataError, Interactions


def _pairs(inter):
  """[(user, item, rating or None)] in original ids, as Python values, sorted."""
  users, items = inter.original_pairs()
  ratings = [None] * inter.nnz if inter.ratings is None else inter.ratings.tolist()
  return sorted(zip(users.tolist(), items.tolist(), ratings))


def _sample(string_ids=False, split=False):
  users = np.array([3, 1, 1, 7, 3, 3])
  items = np.array([10, 10, 12, 11, 12, 12])  # (3, 12) twice: duplicates survive
  if string_ids:
    users = np.array(["u3", "u1", "u1", "née", "u3", "u3"])
  fields = {"ratings": np.array([4.5, 1, 2, 0.1, 3, 3]),
            "timestamps": np.array([5, 6, 7, 8, 9, 10])}
  if split:
    fields["split_tags"] = np.array([TRAIN, VALID, TEST, TRAIN, TRAIN, TEST])
  return Interactions.from_original_ids(users, items, **fields)


@pytest.mark.parametrize("name,delimiter,string_ids", [
    ("out.csv", ",", False), ("out.tsv", "\t", True), ("out.tsv.gz", "\t", False),
    ("out.txt", " ", True), ("out.dat", "::", False)])
def test_write_delimited_round_trip(tmp_path, name, delimiter, string_ids):
  inter = _sample(string_ids)
  path = tmp_path / name
  export.write_delimited(inter, path, delimiter=delimiter)
  assert path.read_bytes().startswith(b"\x1f\x8b") == name.endswith(".gz")
  back = readers.read_delimited(path, columns=("user", "item", "rating", "timestamp"))
  assert _pairs(back) == _pairs(inter)
  assert back.checksum() == inter.checksum()
  assert list(tmp_path.iterdir()) == [path]  # no temp file left behind


def test_write_delimited_without_header_and_split_names(tmp_path):
  inter = _sample(split=True)
  path = tmp_path / "out.tsv"
  export.write_delimited(inter, path, header=False, split_tag_names=("tr", "va", "te"))
  lines = path.read_text().splitlines()
  assert len(lines) == inter.nnz and lines[0].split("\t")[-1] == "va"
  back = readers.read_delimited(path, columns=(0, 1, 2, 3))
  assert _pairs(back) == _pairs(inter)
  table = readers.read_table(path, {"user": 0, "item": 1, "split": 4})
  tags = table.tags("split", {"tr": TRAIN, "va": VALID, "te": TEST})
  assert sorted(tags.tolist()) == sorted(inter.split_tags.tolist())


def test_write_refuses_ids_with_delimiter(tmp_path):
  inter = Interactions.from_original_ids(np.array(["a,b"]), np.array([1]))
  with pytest.raises(DataError, match="user id"):
    export.write_delimited(inter, tmp_path / "x.csv", delimiter=",")
  assert not list(tmp_path.iterdir())


@pytest.mark.parametrize("name", ["out.inter", "out.inter.gz"])
def test_write_inter_round_trip(tmp_path, name):
  inter = _sample(string_ids=True, split=True)
  path = tmp_path / name
  export.write_inter(inter, path)
  text = gzip.decompress(path.read_bytes()) if name.endswith(".gz") else path.read_bytes()
  assert text.startswith(b"user_id:token\titem_id:token\trating:float\ttimestamp:float\n")
  back = readers.read_inter(path)
  assert _pairs(back) == _pairs(inter)
  np.testing.assert_array_equal(back.timestamps, inter.timestamps)


def _pseudo_column(path, **options):
  """[N] bool: the `pseudo` column of an exported text or RecBole file, in row order."""
  table = readers.read_table(path, {"user": "user", "item": "item", "pseudo": "pseudo"},
                             **options)
  return table.ints("pseudo").astype(bool)


def test_npz_and_condensed_bundle(tmp_path, random_interactions):
  inter = preprocess.dedup(random_interactions())
  pseudo = np.arange(inter.nnz) % 3 == 0
  export.write_npz(inter, tmp_path / "x.npz", pseudo=pseudo)
  with np.load(tmp_path / "x.npz") as z:
    np.testing.assert_array_equal(z["user"], inter.user_ids.astype(str)[inter.users()])
    np.testing.assert_array_equal(z["item_index"], inter.indices)
    np.testing.assert_array_equal(z["pseudo"], pseudo)
  with pytest.raises(ValueError, match="column 'bad'"):
    export.write_npz(inter, tmp_path / "y.npz", bad=np.zeros(2))
  valid = inter.subset(np.arange(inter.nnz) % 4 == 1)
  condensed = dataclasses.replace(inter, ratings=None, timestamps=None)  # as condensation's
  files = export.export_condensed(tmp_path / "out", "demo", condensed, valid, inter,
                                  pseudo_N=pseudo)
  for part, expected in (("train", inter), ("valid", valid), ("test", inter)):
    path = files[f"recbole_{part}"]
    assert pathlib.Path(path).read_text().startswith(
        "user_id:token\titem_id:token\tpseudo:float\n")
    back = readers.read_inter(path)  # the pseudo field is skipped
    assert back.nnz == expected.nnz and back.ratings is None
    flags = _pseudo_column(path, delimiter="\t", header=True)
    np.testing.assert_array_equal(flags, pseudo if part == "train" else False)
  assert files["recbole_train"].endswith("recbole/demo/demo.train.inter")

  def pairs(x):
    return sorted(zip(x.user_ids[x.users()].astype(str), x.item_ids[x.indices].astype(str)))

  for fmt, delimiter in (("csv", ","), ("tsv", "\t")):
    lines = pathlib.Path(files[fmt]).read_text().splitlines()
    assert lines[0] == delimiter.join(("user", "item", "pseudo"))
    assert {line.rsplit(delimiter, 1)[1] for line in lines[1:]} == {"0", "1"}
    back = readers.read_delimited(files[fmt], columns=("user", "item"))  # flag not read
    assert pairs(back) == pairs(inter) and back.ratings is None
    np.testing.assert_array_equal(_pseudo_column(files[fmt]), pseudo)  # CSR order
  with np.load(files["npz"]) as z:
    np.testing.assert_array_equal(z["pseudo"], pseudo)
  # Without flags, no pseudo column or field anywhere.
  files = export.export_condensed(tmp_path / "bare", "demo", condensed, valid, inter)
  assert pathlib.Path(files["csv"]).read_text().startswith("user,item\n")
  assert pathlib.Path(files["recbole_train"]).read_text().startswith(
      "user_id:token\titem_id:token\n")
  with np.load(files["npz"]) as z:
    assert "pseudo" not in z


def test_read_npz_gives_the_pairs_back_and_refuses_other_data(tmp_path, random_interactions):
  inter = preprocess.dedup(random_interactions())
  part = inter.subset(np.arange(inter.nnz) % 3 == 0)
  export.write_npz(part, tmp_path / "x.npz")
  back = export.read_npz(tmp_path / "x.npz", inter)
  assert (back.n_users, back.n_items) == (inter.n_users, inter.n_items)
  np.testing.assert_array_equal(back.users(), part.users())
  np.testing.assert_array_equal(back.indices, part.indices)
  assert back.user_ids is inter.user_ids
  # Dense ids alone (compare.py --noexport) are read in the given data's id space.
  np.savez(tmp_path / "dense.npz", user_index=part.users(), item_index=part.indices)
  np.testing.assert_array_equal(export.read_npz(tmp_path / "dense.npz", inter).indices,
                                part.indices)
  renamed = np.char.add("x", inter.user_ids.astype(str)[inter.users()])  # same shape
  other = Interactions.from_original_ids(renamed, inter.item_ids[inter.indices])
  with pytest.raises(DataError, match="other user or item ids"):
    export.read_npz(tmp_path / "x.npz", other)
  np.savez(tmp_path / "far.npz", user_index=np.array([inter.n_users]), item_index=np.array([0]))
  with pytest.raises(DataError, match="outside the"):
    export.read_npz(tmp_path / "far.npz", inter)
  with pytest.raises(DataError, match="no condensed set at"):
    export.read_npz(tmp_path / "missing.npz", inter)
  (tmp_path / "junk.npz").write_bytes(b"not an npz")
  with pytest.raises(DataError, match="is not a pairs npz"):
    export.read_npz(tmp_path / "junk.npz", inter)


@pytest.mark.parametrize("flags, message", [
    (np.zeros(3, bool), r"shape \(3,\), expected"), (np.full(5, 2), "booleans or 0 / 1")])
def test_bad_pseudo_flags(tmp_path, flags, message):
  inter = Interactions.from_original_ids(np.arange(5), np.arange(5))
  with pytest.raises(ValueError, match=message):
    export.write_delimited(inter, tmp_path / "x.csv", pseudo_N=flags)
  with pytest.raises(ValueError, match=message):
    export.export_condensed(tmp_path / "out", "x", inter, inter, inter, pseudo_N=flags)
  assert not list(tmp_path.iterdir())


# --- property: a random subset, exported, reads back as the same ids and pairs ---------

LETTER_IDS = st.text(st.characters(categories=("L",)), min_size=1, max_size=6)
INT_IDS = st.integers(-(2**63), 2**63 - 1)


@st.composite
def _subsets(draw):
  """A random Interactions (ids all int64 or all text per side) and a non-empty subset."""
  users = draw(st.lists(draw(st.sampled_from((LETTER_IDS, INT_IDS))), min_size=1, max_size=6,
                        unique=True))
  items = draw(st.lists(draw(st.sampled_from((LETTER_IDS, INT_IDS))), min_size=1, max_size=6,
                        unique=True))
  n = draw(st.integers(1, 25))
  pick = st.lists(st.integers(0, 10**6), min_size=n, max_size=n)
  inter = Interactions.from_original_ids(
      np.array(users)[np.array(draw(pick)) % len(users)],
      np.array(items)[np.array(draw(pick)) % len(items)],
      ratings=np.array(draw(st.lists(st.floats(-1e6, 1e6, width=32), min_size=n, max_size=n))),
      timestamps=np.array(draw(st.lists(INT_IDS, min_size=n, max_size=n))))
  keep = np.array(draw(st.lists(st.booleans(), min_size=n, max_size=n)))
  keep[draw(st.integers(0, n - 1))] = True
  return inter.subset(keep).compact()


def _same(a, b) -> bool:
  """Equal ids (value and type), pairs in CSR order, ratings and timestamps. Not
  `checksum()`, which also sees the width of the id strings' dtype."""
  return (np.array_equal(a.indptr, b.indptr) and np.array_equal(a.indices, b.indices)
          and a.user_ids.tolist() == b.user_ids.tolist()
          and a.item_ids.tolist() == b.item_ids.tolist()
          and a.ratings.tolist() == b.ratings.tolist()
          and a.timestamps.tolist() == b.timestamps.tolist())


@settings(max_examples=50, deadline=None)
@given(inter=_subsets(), delimiter=st.sampled_from(("\t", ",", ";", " ", "::")),
       header=st.booleans(), gz=st.booleans(), flags=st.data())
def test_property_export_round_trip(inter, delimiter, header, gz, flags):
  """Ids, pairs, ratings and timestamps read back unchanged, and so do the pseudo flags
  (column 4, after the rating and timestamp) when given."""
  pseudo = flags.draw(st.none() | st.lists(st.booleans(), min_size=inter.nnz,
                                           max_size=inter.nnz).map(np.array))
  with tempfile.TemporaryDirectory() as tmp:
    path = pathlib.Path(tmp) / ("out.txt.gz" if gz else "out.txt")
    export.write_delimited(inter, path, delimiter=delimiter, header=header, pseudo_N=pseudo)
    back = readers.read_delimited(path, columns=(0, 1, 2, 3), delimiter=delimiter,
                                  header=header)
    assert _pairs(back) == _pairs(inter) and _same(back, inter)
    if pseudo is not None:
      table = readers.read_table(path, {"user": 0, "item": 1, "pseudo": 4},
                                 delimiter=delimiter, header=header)
      assert table.ints("pseudo").astype(bool).tolist() == pseudo.tolist()
    inter_path = pathlib.Path(tmp) / "out.inter"
    export.write_inter(inter, inter_path, pseudo_N=pseudo)
    assert _same(readers.read_inter(inter_path), inter)
    if pseudo is not None:
      flags_back = readers.read_table(inter_path, {"pseudo": "pseudo"}, delimiter="\t",
                                      header=True).floats("pseudo")
      assert flags_back.astype(bool).tolist() == pseudo.tolist()


def test_false_negatives_outside_the_set_are_written_in_original_ids(tmp_path):
  ids = dict(user_ids=np.array(["u0", "u1"]), item_ids=np.array(["a", "b", "c"]))
  condensed = Interactions.from_pairs([0, 1], [0, 2], n_users=2, n_items=3, **ids)
  # (u0, a) lies in the set: only (u0, b) and (u1, a) are written.
  fn = Interactions.from_pairs([0, 0, 1], [0, 1, 0], n_users=2, n_items=3, **ids)
  files = export.export_condensed(tmp_path, "x", condensed, condensed, condensed,
                                  false_negatives=fn)
  assert pathlib.Path(files["false_negatives"]).read_text() == "user,item\nu0,b\nu1,a\n"
  other = Interactions.from_pairs([0], [0], n_users=3, n_items=3)
  with pytest.raises(ValueError, match=r"over \(3, 3\) users x items"):
    export.export_condensed(tmp_path, "x", condensed, condensed, condensed,
                            false_negatives=other)
  assert "false_negatives" not in export.export_condensed(tmp_path / "no", "x", condensed,
                                                          condensed, condensed)
