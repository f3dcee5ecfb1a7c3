"""Tests of jaxcond.data.datasets: synthetic folders always, the real files when present."""

import gzip
import hashlib
import os
import pathlib
import zipfile

import numpy as np
import pytest

from jaxcond.data import datasets, readers
from jaxcond.data.interactions import TEST, TRAIN, VALID, DataError

# name: (users, items, unique pairs, rows, (train, valid, test) rows or None), from the
# summary table and per-dataset notes of the datasets' README.
EXPECTED = {
    "dianping": (13_371, 10_207, 519_140, 519_140, (415_368, 51_582, 52_190)),
    "ml-100k": (943, 1_682, 100_000, 100_000, None),
    "ml-1m": (6_040, 3_706, 1_000_209, 1_000_209, (791_718, 99_692, 108_799)),
    "ciao": (7_375, 105_114, 282_650, 284_086, None),
    "gowalla": (29_858, 40_981, 1_027_370, 1_027_370, (810_128, 0, 217_242)),
    "yelp_hin": (16_239, 14_284, 198_397, 198_397, None),
    "yelp_diffnet": (17_235, 37_378, 207_945, 207_945, (185_869, 3_497, 18_579)),
    "amazon-book_kgat": (70_679, 24_915, 846_434, 846_434, (652_514, 0, 193_920)),
    "douban_monti": (2_999, 3_000, 136_891, 136_891, (123_202, 0, 13_689)),
    "amazon-magazine": (3_092, 1_305, 12_217, 12_689, (5_984, 436, 6_269)),
    "filmtrust": (1_508, 2_071, 35_494, 35_497, None),
}
# name: (users, items, unique pairs) of the ratings >= 4.
EXPECTED_GE4 = {
    "ml-1m": (6_038, 3_533, 575_281), "ciao": (7_373, 91_091, 226_307),
    "yelp_hin": (14_230, 12_738, 134_176), "douban_monti": (2_994, 2_997, 78_866),
    "ml-100k": (942, 1_447, 55_375),
}


def _unique_pairs(inter):
  return np.unique(inter.users().astype(np.int64) * inter.n_items + inter.indices).size


@pytest.fixture(scope="module")
def real_data_dir():
  """Sets JAXCOND_DATA_DIR (default: the shared datasets folder) or skips."""
  path = pathlib.Path(os.environ.get(datasets.DATA_DIR_ENV)
                      or pathlib.Path(__file__).resolve().parents[2] / "shared" / "datasets")
  if not path.is_dir():
    pytest.skip(f"real datasets not found at {path}; set {datasets.DATA_DIR_ENV}")
  with pytest.MonkeyPatch.context() as mp:
    mp.setenv(datasets.DATA_DIR_ENV, str(path))
    yield path


@pytest.fixture(scope="module")
def load_real(real_data_dir):
  """load_raw from the real data folder, each dataset loaded once per module."""
  cache = {}

  def load(name):
    if not (real_data_dir / name).is_dir():
      pytest.skip(f"{real_data_dir / name} is absent")
    if name not in cache:
      cache[name] = datasets.load_raw(name)
    return cache[name]
  return load


@pytest.fixture(autouse=True)
def empty_cache(tmp_path, monkeypatch):
  monkeypatch.setenv(datasets.CACHE_DIR_ENV, str(tmp_path / "cache"))


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_real_counts(load_real, name):
  inter = load_real(name)
  users, items, unique, rows, split = EXPECTED[name]
  assert (inter.n_users, inter.n_items, inter.nnz) == (users, items, rows)
  assert _unique_pairs(inter) == unique
  spec = datasets.DATASETS[name]
  assert (inter.ratings is not None, inter.timestamps is not None) == (spec.ratings,
                                                                       spec.timestamps)
  if split is None:
    assert inter.split_tags is None
  else:
    assert tuple(np.bincount(inter.split_tags, minlength=3)) == split
  if name in EXPECTED_GE4:
    liked = inter.subset(inter.ratings >= 4).compact()
    assert (liked.n_users, liked.n_items, _unique_pairs(liked)) == EXPECTED_GE4[name]


def test_real_rating_values(load_real):
  ml1m = load_real("ml-1m")
  assert np.bincount(ml1m.ratings.astype(int)).tolist() == [
      0, 56_174, 107_557, 261_197, 348_971, 226_310]
  ciao = load_real("ciao")
  assert ciao.ratings.min() == 0 and ciao.ratings.max() == 5
  assert int((ciao.ratings == 0).sum()) == 34
  film = load_real("filmtrust")
  assert (film.ratings.min(), film.ratings.max()) == (0.5, 4.0)


def test_real_checksums_match_manifest(real_data_dir):
  manifest = dict(reversed(line.split()) for line in
                  (real_data_dir / "MANIFEST.sha256").read_text().splitlines() if line)
  for name in ("ml-1m", "gowalla", "yelp_diffnet"):
    sums = datasets.file_checksums(name)
    assert sums == {rel: manifest[f"{name}/{rel}"] for rel in datasets.DATASETS[name].files}


def test_neighbors_ml100k_matches_u_data(load_real, tmp_path):
  if datasets.neighbors_ml100k_path() is None:
    pytest.skip("the `neighbors` wheel is not installed")
  from_u_data = load_real("ml-100k")
  from_wheel = datasets.load_raw("ml-100k", data_dir=tmp_path)  # no files there
  assert from_wheel.nnz == 100_000
  assert from_wheel.checksum() == from_u_data.checksum()
  assert list(datasets.file_checksums("ml-100k", tmp_path)) == ["movielens100k.csv"]


def test_neighbors_ml100k_fallback(tmp_path):
  csv = datasets.neighbors_ml100k_path()
  if csv is None:
    pytest.skip("the `neighbors` wheel is not installed")
  inter = datasets.load_raw("ml-100k", tmp_path)  # no files there: the wheel's copy
  assert (inter.n_users, inter.n_items, inter.nnz, _unique_pairs(inter)) == (
      943, 1_682, 100_000, 100_000)
  assert sorted(np.unique(inter.ratings).tolist()) == [1, 2, 3, 4, 5]
  assert datasets.file_checksums("ml-100k", tmp_path) == {
      "movielens100k.csv": hashlib.sha256(csv.read_bytes()).hexdigest()}


# --- synthetic folders -----------------------------------------------------


def _gz(path, text):
  path.parent.mkdir(parents=True, exist_ok=True)
  path.write_bytes(gzip.compress(text.encode()))


def test_item_lists_dataset(tmp_path):
  _gz(tmp_path / "gowalla" / "train.txt.gz", "0 1 2 3\n1 2\n")
  _gz(tmp_path / "gowalla" / "test.txt.gz", "0 4\n1\n")
  inter = datasets.load_raw("gowalla", tmp_path)
  assert inter.nnz == 5 and inter.split_tags.tolist() == [TRAIN, TRAIN, TRAIN, TEST, TRAIN]
  sums = datasets.file_checksums("gowalla", tmp_path)
  assert sums["test.txt.gz"] == hashlib.sha256(
      (tmp_path / "gowalla" / "test.txt.gz").read_bytes()).hexdigest()


def test_ml1m_split_index(tmp_path):
  folder = tmp_path / "ml-1m"
  _gz(folder / "ratings.dat.gz", "1::10::5::100\n2::10::3::101\n1::11::4::102\n")
  np.savez(folder / "distill_cf_split_index.npz", data=np.array([2, 0, 1]))
  inter = datasets.load_raw("ml-1m", tmp_path)
  assert inter.split_tags.tolist() == [TEST, VALID, TRAIN]  # sorted by (user, item)
  np.savez(folder / "distill_cf_split_index.npz", data=np.array([2, 0]))
  with pytest.raises(DataError, match="2 entries for 3 lines"):
    datasets.load_raw("ml-1m", tmp_path)


def test_yelp_diffnet_zip(tmp_path):
  (tmp_path / "yelp_diffnet").mkdir()
  with zipfile.ZipFile(tmp_path / "yelp_diffnet" / "diff_net_yelp.zip", "w") as archive:
    for part, text in (("train", "1\t2\t1\r\n1\t3\t1\r\n"), ("val", "2\t2\t1\r\n"),
                       ("test", "2\t5\t1\r\n")):
      archive.writestr(f"diffnet_yelp/yelp.{part}.rating", text)
  inter = datasets.load_raw("yelp_diffnet", tmp_path)
  assert inter.split_tags.tolist() == [TRAIN, TRAIN, VALID, TEST]


def test_magazine_drops_unsplit_rows(tmp_path):
  _gz(tmp_path / "amazon-magazine" / "ratings.tsv.gz",
      "user\titem\trating\tdistill_cf_split\n0\t1\t5\t-1\n1\t1\t4\t0\n1\t2\t3\t2\n")
  inter = datasets.load_raw("amazon-magazine", tmp_path)
  assert inter.nnz == 2 and inter.user_ids.tolist() == [1]


def test_dianping_bad_split_names_line(tmp_path):
  _gz(tmp_path / "dianping" / "dianping_interactions.tsv.gz",
      "user\titem\tsplit\n1\t2\ttrain\n1\t3\tholdout\n")
  with pytest.raises(DataError, match=r"dianping_interactions\.tsv\.gz, line 3: split"):
    datasets.load_raw("dianping", tmp_path)


def test_cache_dir_is_searched(tmp_path):
  _gz(tmp_path / "cache" / "filmtrust" / "ratings.txt.gz", "1 1 2\n1 2 3.5\n")
  inter = datasets.load_raw("filmtrust", tmp_path / "elsewhere")
  assert inter.ratings.tolist() == [2.0, 3.5]


def test_missing_dataset_message(tmp_path, monkeypatch):
  monkeypatch.delenv(datasets.DATA_DIR_ENV, raising=False)
  with pytest.raises(DataError) as info:
    datasets.load_raw("gowalla")
  message = str(info.value)
  assert "'gowalla'" in message and "JAXCOND_DATA_DIR" in message and "--data_dir" in message
  assert str(tmp_path / "cache" / "gowalla" / "train.txt.gz") in message
  with pytest.raises(DataError, match=str(tmp_path / "d" / "ciao" / "ratings.tsv.gz")):
    datasets.load_raw("ciao", tmp_path / "d")


def test_unknown_dataset():
  with pytest.raises(DataError, match="known datasets: .*ml-1m"):
    datasets.load_raw("ml-20m")


def test_resolve_dirs(tmp_path, monkeypatch):
  monkeypatch.setenv(datasets.DATA_DIR_ENV, str(tmp_path / "env"))
  assert datasets.resolve_data_dir() == tmp_path / "env"
  assert datasets.resolve_data_dir(tmp_path) == tmp_path
  monkeypatch.delenv(datasets.DATA_DIR_ENV)
  assert datasets.resolve_data_dir() is None
  monkeypatch.delenv(datasets.CACHE_DIR_ENV)
  assert datasets.resolve_cache_dir() == pathlib.Path("~/.cache/jaxcond").expanduser()


def test_every_dataset_folder_is_registered(real_data_dir):
  folders = {p.name for p in real_data_dir.iterdir() if p.is_dir()}
  assert folders == set(datasets.DATASETS)


def test_fetch(tmp_path):
  source = tmp_path / "src" / "data.tsv.gz"
  _gz(source, "1\t2\n")
  sha = hashlib.sha256(source.read_bytes()).hexdigest()
  cache = tmp_path / "fetched"
  path = datasets.fetch(source.as_uri(), sha, cache)
  assert path == cache / "data.tsv.gz" and path.read_bytes() == source.read_bytes()
  assert readers.read_delimited(path, columns=(0, 1)).nnz == 1
  source.write_bytes(b"tampered")
  assert datasets.fetch(source.as_uri(), sha, cache) == path  # cached copy is kept
  with pytest.raises(DataError, match="checksum mismatch"):
    datasets.fetch(source.as_uri(), sha, cache, filename="other.gz")
  assert sorted(p.name for p in cache.iterdir()) == ["data.tsv.gz"]
  with pytest.raises(DataError, match="cannot download"):
    datasets.fetch((tmp_path / "absent.gz").as_uri(), sha, cache)
