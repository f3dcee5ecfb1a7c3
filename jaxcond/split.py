"""Train / validation / test splits: RecBole's per-user random split, or the dataset's own."""

from __future__ import annotations

import dataclasses

import numpy as np

from jaxcond.interactions import TEST, TRAIN, VALID, DataError, Interactions


@dataclasses.dataclass(frozen=True, eq=False)
class DatasetSplit:
  """Three disjoint interaction sets over one id space."""

  train: Interactions
  valid: Interactions
  test: Interactions

  def summary(self) -> dict:
    return {"users": self.train.n_users, "items": self.train.n_items,
            "train": self.train.nnz, "valid": self.valid.nnz, "test": self.test.nnz}


def recbole_counts(n: int, ratios=(0.8, 0.1, 0.1)) -> list[int]:
  """Per-user part sizes exactly as RecBole 1.x `split_by_ratio` computes them.

  Every part but the first gets int(ratio * n); the first takes the rest. Then, from
  the last part backwards, a part whose share lies strictly between 0 and 1 pair takes
  one pair from the first, as long as the first keeps more than one. A user with one
  pair is all train; with two, one train and one test.
  """
  total = sum(ratios)
  ratios = [r / total for r in ratios]
  counts = [int(r * n) for r in ratios]
  counts[0] = n - sum(counts[1:])
  for i in range(1, len(ratios)):
    if counts[0] <= 1:
      break
    if 0 < ratios[-i] * n < 1:
      counts[-i] += 1
      counts[0] -= 1
  return counts


def random_split(inter: Interactions, *, seed: int, ratios=(0.8, 0.1, 0.1)) -> DatasetSplit:
  """Per-user random split ("RS"): each user's pairs shuffled, then cut by recbole_counts."""
  if len(ratios) != 3 or min(ratios) < 0 or ratios[0] <= 0:
    raise DataError(f"split ratios must be three non-negative numbers, train > 0; got {ratios}")
  rng = np.random.default_rng(seed)
  degrees = inter.user_degrees()
  part_N = np.empty(inter.nnz, dtype=np.int8)
  counts_cache: dict[int, np.ndarray] = {}
  # Random order within each user: sort pairs by (user, random key).
  order = np.lexsort((rng.random(inter.nnz), inter.users()))
  rank_N = np.empty(inter.nnz, dtype=np.int64)
  rank_N[order] = np.arange(inter.nnz) - np.repeat(inter.indptr[:-1], degrees)
  for n in np.unique(degrees):
    counts_cache[int(n)] = np.cumsum(recbole_counts(int(n), ratios))
  cut_train = np.array([counts_cache[int(n)][0] for n in degrees])
  cut_valid = np.array([counts_cache[int(n)][1] for n in degrees])
  users_N = inter.users()
  part_N[:] = TEST
  part_N[rank_N < cut_valid[users_N]] = VALID
  part_N[rank_N < cut_train[users_N]] = TRAIN
  return _split_by_tags(inter, part_N)


def given_split(inter: Interactions, *, seed: int, valid_ratio: float = 0.1) -> DatasetSplit:
  """The dataset's own split (`split_tags`).

  Splits without a validation part (e.g. Gowalla's train/test) get one carved out of
  train per user, as random_split does with ratios (1 - valid_ratio, valid_ratio, 0).
  """
  if inter.split_tags is None:
    raise DataError("this dataset ships no split of its own; use the random split")
  tags_N = inter.split_tags.copy()
  if not (tags_N == VALID).any():
    train_idx = np.flatnonzero(tags_N == TRAIN)
    train = inter.subset(tags_N == TRAIN)
    carved = random_split(train, seed=seed, ratios=(1 - valid_ratio, valid_ratio, 0.0))
    is_valid = _tags_like(train, carved) == VALID
    tags_N[train_idx[is_valid]] = VALID
  return _split_by_tags(inter, tags_N)


def _tags_like(inter: Interactions, split: DatasetSplit) -> np.ndarray:
  """Recovers per-pair tags of `inter` from a split of it (pairs are unique per user)."""
  key = inter.users().astype(np.int64) * inter.n_items + inter.indices
  tags = np.full(inter.nnz, TRAIN, dtype=np.int8)
  valid_key = split.valid.users().astype(np.int64) * inter.n_items + split.valid.indices
  tags[np.isin(key, valid_key)] = VALID
  return tags


def _split_by_tags(inter: Interactions, tags_N: np.ndarray) -> DatasetSplit:
  base = dataclasses.replace(inter, split_tags=None)
  return DatasetSplit(train=base.subset(tags_N == TRAIN), valid=base.subset(tags_N == VALID),
                      test=base.subset(tags_N == TEST))
