import numpy as np
import pytest

from jaxcond.data import pipeline
from jaxcond.data.interactions import DataError


def _write_csv(path, rows, header="uid,iid,stars"):
  path.write_text(header + "\n" + "\n".join(",".join(map(str, r)) for r in rows) + "\n")


def _rows(n_users=40, n_items=30, per_user=12, seed=0):
  rng = np.random.default_rng(seed)
  return [(f"user{u}", 100 + i, int(rng.integers(1, 6)))
          for u in range(n_users) for i in rng.choice(n_items, per_user, replace=False)]


def test_prepare_file_filters_splits_and_caches(tmp_path):
  path = tmp_path / "mine.csv"
  rows = _rows()
  _write_csv(path, rows)
  cfg = pipeline.DataConfig(dataset=str(path), columns=("uid", "iid", "stars"), min_rating=3)
  logs = []
  data, protocol = pipeline.prepare(cfg, cache_dir=tmp_path / "c", log=logs.append)
  kept = sum(r[2] >= 3 for r in rows)
  assert data.train.nnz + data.valid.nnz + data.test.nnz == kept
  assert protocol["counts"]["train"] == data.train.nnz
  assert protocol["sources"][str(path)] and len(protocol["data_checksum"]) == 64
  again, protocol2 = pipeline.prepare(cfg, cache_dir=tmp_path / "c", log=logs.append)
  assert any("loaded cached split" in line for line in logs)
  assert protocol2 == protocol
  assert again.test.checksum() == data.test.checksum()
  # Changing the file changes its checksum, hence the cache key: no stale split.
  _write_csv(path, rows[:-20])
  fresh, _ = pipeline.prepare(cfg, cache_dir=tmp_path / "c")
  assert fresh.train.nnz + fresh.valid.nnz + fresh.test.nnz < kept


def test_prepare_errors(tmp_path):
  with pytest.raises(DataError, match="does not exist"):
    pipeline.prepare(pipeline.DataConfig(dataset=str(tmp_path / "nope.csv")), use_cache=False)
  path = tmp_path / "d.csv"
  _write_csv(path, _rows())
  with pytest.raises(DataError, match="no interactions left"):
    pipeline.prepare(pipeline.DataConfig(dataset=str(path), columns=("uid", "iid"), kcore=50),
                     use_cache=False)
  with pytest.raises(DataError, match="above every rating"):
    pipeline.prepare(pipeline.DataConfig(dataset=str(path), columns=("uid", "iid", "stars"),
                                         min_rating=9), use_cache=False)
  with pytest.raises(DataError, match="split must be"):
    pipeline.prepare(pipeline.DataConfig(dataset=str(path), split="time"), use_cache=False)


def test_unwritable_cache_is_not_fatal(tmp_path):
  path = tmp_path / "d.csv"
  _write_csv(path, _rows())
  blocked = tmp_path / "file-not-dir"
  blocked.write_text("x")
  logs = []
  data, _ = pipeline.prepare(pipeline.DataConfig(dataset=str(path), columns=("uid", "iid")),
                             cache_dir=blocked, log=logs.append)
  assert data.train.nnz > 0
  assert any("could not cache" in line for line in logs)


def test_dianping_split_counts_match_recbole(shared_data_dir, tmp_path):
  data, _ = pipeline.prepare(pipeline.DataConfig(dataset="dianping", data_dir=str(shared_data_dir)),
                             cache_dir=tmp_path)
  # RecBole 1.x on the same file (official_run.md): 427,938 / 45,601 / 45,601.
  assert data.summary() == {"users": 13371, "items": 10207, "train": 427938, "valid": 45601,
                            "test": 45601}


def test_ml1m_split_counts_match_recbole(shared_data_dir, tmp_path):
  data, _ = pipeline.prepare(pipeline.DataConfig(dataset="ml-1m", data_dir=str(shared_data_dir),
                                                 min_rating=3), cache_dir=tmp_path)
  assert data.summary() == {"users": 6039, "items": 3628, "train": 674674, "valid": 80902,
                            "test": 80902}


def test_cache_key_follows_every_setting_and_rebuilds_a_corrupt_file(tmp_path):
  path = tmp_path / "d.csv"
  _write_csv(path, _rows())
  base = pipeline.DataConfig(dataset=str(path), columns=("uid", "iid", "stars"))
  variants = [base, pipeline.DataConfig(**{**base.__dict__, "min_rating": 2}),
              pipeline.DataConfig(**{**base.__dict__, "kcore": 2}),
              pipeline.DataConfig(**{**base.__dict__, "seed": 7}),
              pipeline.DataConfig(**{**base.__dict__, "ratios": (0.7, 0.15, 0.15)})]
  for cfg in variants:
    pipeline.prepare(cfg, cache_dir=tmp_path / "c")
  assert len(list((tmp_path / "c" / "splits").glob("*.npz"))) == len(variants)
  logs = []
  pipeline.prepare(base, cache_dir=tmp_path / "c", log=logs.append)
  cached = logs[-1].removeprefix("loaded cached split ")
  open(cached, "wb").write(b"garbage")
  data, _ = pipeline.prepare(base, cache_dir=tmp_path / "c", log=logs.append)
  assert data.train.nnz > 0 and any("rebuilding" in line for line in logs)
