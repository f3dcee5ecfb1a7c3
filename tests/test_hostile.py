"""Hostile input: malformed files, odd ids, degenerate data, bad flags, unwritable folders.

Every kind of bad input is tried through the loaders (jaxcond.data.pipeline.prepare, fast) or
an entry point (a subprocess, as a user runs it); the message each gives is written out
below, so this file is also the record of the messages. An error names what is wrong and
where: the file, and the line for a row-level problem. Inputs that are not errors have a
documented handling (jaxcond.data.readers, jaxcond.data.pipeline, jaxcond.data.datasets),
tested here.
"""

import gzip
import os
import pathlib
import subprocess
import sys

import numpy as np
import pytest

from jaxcond.data import export, pipeline, readers
from jaxcond.data.interactions import DataError

ROOT = pathlib.Path(__file__).resolve().parents[1]

# 20 users x 6 items: splits 4 / 1 / 1 per user under the random 8:1:1 split.
GOOD = "".join(f"u{u},i{(7 * u + k) % 13}\n" for u in range(20) for k in range(6))
RATED = "".join(f"u{u},i{(7 * u + k) % 13},{1 + k % 5}\n" for u in range(20) for k in range(6))
GZ = gzip.compress(GOOD.encode(), mtime=0)


def _write(path, content):
  """Writes str (UTF-8) or bytes; None writes nothing, "<dir>" makes a folder."""
  if content == "<dir>":
    path.mkdir()
  elif content is not None:
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
  return path


def _prepare(path, tmp_path, logs=None, **options):
  cfg = pipeline.DataConfig(dataset=str(path), **options)
  return pipeline.prepare(cfg, cache_dir=tmp_path / "cache",
                          log=(lambda s: None) if logs is None else logs.append)


def _pairs(inter):
  """Sorted [(user, item)] in original ids, as Python values."""
  users, items = inter.original_pairs()
  return sorted(zip(users.tolist(), items.tolist()))


# (file name, content, DataConfig options, message with {path}, line of the bad row or None)
ERRORS = [
    pytest.param("t.csv.gz", GZ[:60], {},
                 "{path}: corrupt or truncated gzip data (Compressed file ended before the "
                 "end-of-stream marker was reached)", None, id="truncated_gzip"),
    pytest.param("c.csv.gz", GZ[:10] + b"\0" * 20 + GZ[30:], {},
                 "{path}: corrupt or truncated gzip data (Error -3 while decompressing data",
                 None, id="corrupt_gzip"),
    pytest.param("e.csv", b"", {}, "no interactions in {path}", None, id="empty_file"),
    pytest.param("b.csv", "\n  \r\n\n", {}, "no interactions in {path}", None,
                 id="blank_lines_only"),
    pytest.param("h.csv", "user,item,rating\n", {"columns": ("user", "item", "rating")},
                 "no interactions in {path}", None, id="header_only"),
    pytest.param("semi.csv", GOOD.replace(",", ";"), {"delimiter": ","},
                 "{path}, line 1: expected at least 2 fields split on ',', got 1: 'u0;i0'", 1,
                 id="wrong_delimiter"),
    pytest.param("semi.csv", "who;what\n" + GOOD.replace(",", ";"),
                 {"columns": ("who", "what"), "delimiter": ","},
                 "{path}, line 1: no column 'who': the first line, split on ',', is "
                 "['who;what'], not a header naming it (wrong delimiter? no header? then "
                 "name columns by 0-based index)", 1, id="wrong_delimiter_named_columns"),
    pytest.param("short.csv", "u0,i1\nu0,i2\nu1,i1\nu1,i3\nu2\n" + GOOD, {},
                 "{path}, line 5: expected at least 2 fields split on ',', got 1: 'u2'", 5,
                 id="row_with_too_few_fields"),
    pytest.param("r.csv", "u1,i1,3\nu1,i2,4\nu2,i1,abc\n" + RATED, {"columns": (0, 1, 2)},
                 "{path}, line 3: rating 'abc' is not a number", 3, id="rating_not_a_number"),
    pytest.param("r.csv", "user,item,rating\nu1,i1,3\nu2,i1,nan\n" + RATED,
                 {"columns": (0, 1, 2)},
                 "{path}, line 3: rating 'nan' is not a finite number", 3, id="rating_nan"),
    pytest.param("r.csv", "u1,i1,3\nu2,i1,-inf\n" + RATED, {"columns": (0, 1, 2)},
                 "{path}, line 2: rating '-inf' is not a finite number", 2, id="rating_inf"),
    pytest.param("r.csv", "u1,i1,3\nu2,i1,\n" + RATED, {"columns": (0, 1, 2)},
                 "{path}, line 2: rating '' is not a number", 2, id="rating_empty"),
    pytest.param("r.csv", GOOD + ",i1\n", {},
                 "{path}, line 121: empty user id", 121, id="user_id_empty"),
    pytest.param("r.csv", "u1,i1,3,100\nu1,i2,4,12.5\n", {"columns": (0, 1, 2, 3)},
                 "{path}, line 2: timestamp '12.5' is not an integer", 2,
                 id="timestamp_not_an_integer"),
    pytest.param("q.csv", 'user,item\nu1,i1\nu1,"Book, The"\n' + GOOD, {},
                 "{path}, line 3: item '\"Book' opens a quote it does not close; quoted fields "
                 "are not supported: remove the quotes or use a delimiter that no field "
                 "contains", 3, id="quoted_field_with_delimiter"),
    pytest.param("g.csv", b"u1,i1\nu2,i2\n\x89PNG\x1a\x00\x00\x00\rIHDR", {},
                 "{path}, line 3: NUL byte at offset 17: not a UTF-8 text file (binary "
                 "data, or UTF-16 text?)", 3, id="binary_garbage"),
    pytest.param("w.csv", ("user,item\n" + GOOD).encode("utf-16"), {},
                 "{path}, line 1: NUL byte at offset 3: not a UTF-8 text file (binary data, "
                 "or UTF-16 text?)", 1, id="utf16_text"),
    pytest.param("n.csv", "who,what\n" + GOOD, {"columns": ("who", "nope")},
                 "{path}, line 1: no column 'nope' in header ['who', 'what'] (split on ',')",
                 1, id="unknown_column_name"),
    pytest.param("n.csv", GOOD, {"columns": (0, 5)},
                 "{path}, line 1: expected at least 6 fields split on ',', got 2: 'u0,i0'", 1,
                 id="column_index_out_of_range"),
    pytest.param("n.csv", GOOD, {"columns": (0, -1)},
                 "{path}: column index must be >= 0, got -1", None, id="negative_column_index"),
    pytest.param("nope.csv", None, {},
                 "dataset file {path} does not exist (and '{path}' is not one of the known "
                 "datasets: ", None, id="missing_file"),
    pytest.param("dir.csv", "<dir>", {},
                 "dataset file {path} is a directory, not a file", None, id="directory_as_file"),
    pytest.param("r.csv", RATED, {"columns": (0, 1, 2), "min_rating": 10.0},
                 "min_rating=10.0 is above every rating of {path} (ratings lie in [1.0, 5.0])",
                 None, id="min_rating_above_every_rating"),
    pytest.param("r.csv", RATED, {"min_rating": 3.0},
                 "{path}: no rating column selected (--columns=user,item names the user and "
                 "item columns only; add the rating column as the third, e.g. "
                 "--columns=user,item,rating), so --min_rating=3.0 cannot apply", None,
                 id="min_rating_without_rating_column"),
    pytest.param("r.csv", "viewer,film,score\n" + RATED,
                 {"columns": ("viewer", "film"), "min_rating": 3.0},
                 "{path}: no rating column selected (--columns=viewer,film names the user and "
                 "item columns only; add the rating column as the third, e.g. "
                 "--columns=viewer,film,rating), so --min_rating=3.0 cannot apply", None,
                 id="min_rating_with_named_columns_without_rating"),
    pytest.param("r.inter", "user_id:token\titem_id:token\n" + GOOD.replace(",", "\t"),
                 {"min_rating": 3.0},
                 "{path} has no ratings, so --min_rating=3.0 cannot apply", None,
                 id="min_rating_on_inter_without_ratings"),
    pytest.param("films.csv", "score,film,viewer\n" + RATED, {},
                 "{path}, line 1: no column 'user' in header ['score', 'film', 'viewer'] (split "
                 "on ','); name your columns with --columns=USER,ITEM[,RATING]", 1,
                 id="default_columns_not_in_header"),
    pytest.param("r.csv", GOOD, {"kcore": 1000},
                 "no interactions left in {path} after filtering (min_rating=None, kcore=1000)",
                 None, id="kcore_removes_everything"),
    pytest.param("one.csv", "".join(f"u{u},i{u % 4}\n" for u in range(30)), {},
                 "the split of {path} leaves no valid and no test pairs", None,
                 id="every_user_has_one_pair"),
    pytest.param("two.csv", "".join(f"u{u},i{(u + k) % 5}\n" for u in range(30) for k in (0, 1)),
                 {}, "the split of {path} leaves no valid pairs", None,
                 id="every_user_has_two_pairs"),
    pytest.param("i.csv", "".join(f"u{u},i1\n" for u in range(30)) * 2, {},
                 "{path} has 1 item after filtering; ranking needs at least 2 items", None,
                 id="fewer_than_two_items"),
    pytest.param("x.inter", "user\titem\n1\t2\n", {},
                 "{path}, line 1: not a RecBole header of name:type fields: 'user\\titem'", 1,
                 id="inter_without_typed_header"),
]


@pytest.mark.parametrize("name, content, options, message, line", ERRORS)
def test_bad_file_gives_a_clear_error(tmp_path, name, content, options, message, line):
  path = _write(tmp_path / name, content)
  with pytest.raises(DataError) as info:
    _prepare(path, tmp_path, **options)
  text = str(info.value)
  assert message.format(path=path) in text
  assert str(path) in text
  if line is not None:
    assert f"{path}, line {line}:" in text


def test_unknown_dataset_and_missing_dataset_files(tmp_path, monkeypatch):
  monkeypatch.setenv("JAXCOND_CACHE_DIR", str(tmp_path / "cache"))
  with pytest.raises(DataError, match="unknown dataset 'no-such-set'; known datasets: "):
    pipeline.prepare(pipeline.DataConfig(dataset="no-such-set"), use_cache=False)
  with pytest.raises(DataError) as info:
    pipeline.prepare(pipeline.DataConfig(dataset="ciao", data_dir=str(tmp_path)),
                     use_cache=False)
  assert (f"dataset 'ciao' not found. Looked for: {tmp_path}/ciao/ratings.tsv.gz, "
          f"{tmp_path}/cache/ciao/ratings.tsv.gz. To provide it, put its files in "
          f"<data_dir>/ciao/") in str(info.value)


# --- documented handling (not errors) -----------------------------------------


def test_gz_name_on_plain_text_reads_as_text(tmp_path):
  """gzip is recognised by its magic bytes, not by the file name."""
  plain = _write(tmp_path / "plain.csv.gz", GOOD)
  zipped = _write(tmp_path / "zipped.csv.gz", GZ)
  assert _pairs(readers.read_delimited(plain)) == _pairs(readers.read_delimited(zipped))


def test_bom_and_crlf_read_like_plain_text(tmp_path):
  plain = _write(tmp_path / "plain.csv", "user,item\n" + GOOD)
  windows = _write(tmp_path / "windows.csv",
                   b"\xef\xbb\xbf" + ("user,item\n" + GOOD).replace("\n", "\r\n").encode())
  a, _ = _prepare(plain, tmp_path)
  b, _ = _prepare(windows, tmp_path)
  assert _pairs(b.train) == _pairs(a.train) and b.train.user_ids[0] == "u0"


def test_duplicate_pairs_keep_the_first_and_are_counted(tmp_path):
  text = "u1,i1,5\n" + RATED + "u1,i1,1\n" + RATED  # (u1, i1) twice, the other 120 too
  path = _write(tmp_path / "dup.csv", text)
  assert readers.read_delimited(path, columns=(0, 1, 2)).nnz == 1 + 2 * 120 + 1  # all kept
  logs = []
  data, _ = _prepare(path, tmp_path, logs, columns=(0, 1, 2))
  assert (f"{path}: dropped 121 repeated (user, item) pairs, keeping the first of each in "
          f"file order") in logs
  parts = (data.train, data.valid, data.test)
  assert sum(p.nnz for p in parts) == 121
  u1 = int(np.flatnonzero(data.train.user_ids == "u1")[0])
  i1 = int(np.flatnonzero(data.train.item_ids == "i1")[0])
  ratings = [p.ratings[(p.users() == u1) & (p.indices == i1)] for p in parts]
  assert np.concatenate(ratings).tolist() == [5.0]  # the first in file order


def test_negative_and_huge_ids_are_labels_and_export_round_trips(tmp_path):
  """Plain decimal int64 ids read as integers; a column with any other id (here 10**30
  and 2**70) reads as text, verbatim; either way export reads back the same ids."""
  users = [-7, -1, 0, 5, 2**63 - 1, -(2**63)]
  items = [10**30, 2**70, -3, 7]
  text = "".join(f"{u},{i}\n" for u in users for i in items)
  path = _write(tmp_path / "ids.csv", text)
  inter = readers.read_delimited(path)
  assert inter.user_ids.dtype == np.int64 and sorted(inter.user_ids.tolist()) == sorted(users)
  assert inter.item_ids.dtype.kind == "U"
  assert sorted(inter.item_ids.tolist()) == sorted(map(str, items))
  for name, write, read in (("o.csv", export.write_delimited, readers.read_delimited),
                            ("o.inter", export.write_inter, readers.read_inter)):
    write(inter, tmp_path / name)
    back = read(tmp_path / name)
    assert _pairs(back) == _pairs(inter) and back.checksum() == inter.checksum()


def test_users_with_one_pair_go_to_train_only(tmp_path):
  text = GOOD + "solo1,i3\nsolo2,i4\n"
  data, _ = _prepare(_write(tmp_path / "solo.csv", text), tmp_path)
  for solo in ("solo1", "solo2"):
    u = int(np.flatnonzero(data.train.user_ids == solo)[0])
    assert data.train.user_degrees()[u] == 1
    assert data.valid.user_degrees()[u] == data.test.user_degrees()[u] == 0


def test_every_pair_of_one_user_still_splits(tmp_path):
  text = "".join(f"alone,i{k}\n" for k in range(20))
  data, _ = _prepare(_write(tmp_path / "alone.csv", text), tmp_path)
  assert data.summary() == {"users": 1, "items": 20, "train": 16, "valid": 2, "test": 2}


def test_ids_that_are_not_utf8_read_as_latin1(tmp_path):
  path = _write(tmp_path / "l.csv", b"caf\xe9,1\nb,2\n")
  assert sorted(readers.read_delimited(path).user_ids.tolist()) == ["b", "caf\xe9"]


def test_balanced_quotes_are_part_of_the_id(tmp_path):
  path = _write(tmp_path / "q.csv", 'u1,"Book"\nu2,i2\n')
  assert sorted(readers.read_delimited(path).item_ids.tolist()) == ['"Book"', "i2"]


def _listing(folder):
  """(path, size, mtime) of everything under `folder`, and of `folder` itself."""
  paths = [folder, *sorted(folder.rglob("*"))]
  return [(str(p), p.stat().st_size, p.stat().st_mtime_ns) for p in paths]


def _read_only_ml100k(tmp_path):
  """A data directory holding a small stand-in `ml-100k/u.data.gz`, made read-only."""
  rng = np.random.default_rng(0)
  rows = [f"{u}\t{i}\t{rng.integers(1, 6)}\t{1000 + k}"
          for k, (u, i) in enumerate((u, i) for u in range(1, 31)
                                     for i in rng.choice(40, 10, replace=False) + 1)]
  folder = tmp_path / "data" / "ml-100k"
  folder.mkdir(parents=True)
  (folder / "u.data.gz").write_bytes(gzip.compress(("\n".join(rows) + "\n").encode()))
  for p in (folder / "u.data.gz", folder, folder.parent):
    p.chmod(0o555)
  return folder.parent


def test_read_only_data_dir_is_never_written(tmp_path):
  """Tests run as root, who may write anyway: the check is that nothing changes."""
  data_dir = _read_only_ml100k(tmp_path)
  before = _listing(data_dir)
  try:
    cfg = pipeline.DataConfig(dataset="ml-100k", data_dir=str(data_dir))
    data, _ = pipeline.prepare(cfg, cache_dir=tmp_path / "cache")
    pipeline.prepare(cfg, cache_dir=tmp_path / "cache")  # the cached split, read back
    assert data.train.nnz > 0 and _listing(data_dir) == before
  finally:
    for p in (data_dir, data_dir / "ml-100k"):
      p.chmod(0o755)


def test_unwritable_cache_dir_warns_and_continues(tmp_path):
  blocked = _write(tmp_path / "afile", "x")
  path = _write(tmp_path / "d.csv", GOOD)
  logs = []
  data, _ = pipeline.prepare(pipeline.DataConfig(dataset=str(path)),
                             cache_dir=blocked / "cache", log=logs.append)
  assert data.train.nnz > 0
  assert any(line.startswith(f"could not cache the split at {blocked}/cache/splits/")
             and line.endswith("; continuing without cache") for line in logs)


# --- entry points -------------------------------------------------------------


def _run(script, *args):
  env = dict(os.environ, JAX_PLATFORMS="cpu")
  return subprocess.run([sys.executable, str(ROOT / "experiments" / script), *args],
                        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)


def _truncated_gzip(tmp):
  return [f"--dataset={_write(tmp / 't.csv.gz', GZ[:60])}"]


def _flagfile_with_unknown_flag(tmp):
  return [f"--flagfile={_write(tmp / 'x.flags', '--dim=8' + chr(10) + '--not_a_flag=3')}"]


def _output_dir_under_a_file(tmp):
  return [f"--output_dir={_write(tmp / 'afile', 'x')}/out"]


def _args(*args):
  return lambda tmp: list(args)


UNWRITABLE = ("error: cannot write to --output_dir={tmp}/afile/out: {tmp}/afile is a file, "
              "not a folder")
# (script, tmp_path -> extra args, message with {tmp})
ENTRY_ERRORS = [
    pytest.param("train.py", _truncated_gzip,
                 "error: {tmp}/t.csv.gz: corrupt or truncated gzip data",
                 id="train_truncated_gzip"),
    pytest.param("train.py", _flagfile_with_unknown_flag,
                 "FATAL Flags parsing error: Unknown command line flag 'not_a_flag' (in "
                 "{tmp}/x.flags, line 2)", id="train_flagfile_unknown_flag"),
    pytest.param("train.py", _output_dir_under_a_file, UNWRITABLE,
                 id="train_output_dir_under_a_file"),
    pytest.param("condense.py", _args("--ratio=0"),
                 "error: ratio must be in (0, 1), got 0.0", id="condense_ratio_0"),
    pytest.param("condense.py", _args("--ratio=1"),
                 "error: ratio must be in (0, 1), got 1.0", id="condense_ratio_1"),
    pytest.param("condense.py", _args("--ratio=1.5"),
                 "error: ratio must be in (0, 1), got 1.5", id="condense_ratio_1.5"),
    pytest.param("condense.py", _output_dir_under_a_file, UNWRITABLE,
                 id="condense_output_dir_under_a_file"),
    pytest.param("condense.py", _flagfile_with_unknown_flag,
                 "FATAL Flags parsing error: Unknown command line flag 'not_a_flag' (in "
                 "{tmp}/x.flags, line 2)", id="condense_flagfile_unknown_flag"),
]


@pytest.mark.parametrize("script, extra, message", ENTRY_ERRORS)
def test_entry_point_gives_a_clear_error(tmp_path, user_file, script, extra, message):
  """Exit status 1 and one clear line on stderr; no traceback, no data loaded."""
  proc = _run(script, f"--dataset={user_file}", "--columns=who,what",
              f"--output_dir={tmp_path / 'out'}", f"--cache_dir={tmp_path / 'cache'}",
              "--max_epochs=1", "--min_epochs=0", "--dim=8", *extra(tmp_path))
  assert proc.returncode == 1
  assert message.format(tmp=tmp_path) in proc.stderr
  assert "Traceback" not in proc.stderr
  assert "checksum" not in proc.stdout  # failed before the data was loaded, or while loading


def test_entry_point_reads_a_read_only_data_dir_and_skips_an_unwritable_cache(tmp_path):
  data_dir = _read_only_ml100k(tmp_path)
  before = _listing(data_dir)
  blocked = _write(tmp_path / "afile", "x")
  try:
    proc = _run("train.py", "--dataset=ml-100k", f"--data_dir={data_dir}",
                f"--cache_dir={blocked}/cache", f"--output_dir={tmp_path / 'out'}",
                "--max_epochs=1", "--min_epochs=0", "--dim=8")
    assert proc.returncode == 0, proc.stderr
    assert f"could not cache the split at {blocked}/cache/splits/" in proc.stdout
    assert (tmp_path / "out" / "metrics.json").exists()
    assert _listing(data_dir) == before
  finally:
    for p in (data_dir, data_dir / "ml-100k"):
      p.chmod(0o755)
