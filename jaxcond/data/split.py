"""Train / validation / test splits: RecBole's per-user random split, or the dataset's own."""

from __future__ import annotations

import dataclasses

import numpy as np

from jaxcond.data.interactions import TEST, TRAIN, VALID, DataError, Interactions


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
  return _split_by_tags(inter, random_parts(inter, seed=seed, ratios=ratios))


def random_parts(inter: Interactions, *, seed: int, ratios=(0.8, 0.1, 0.1)) -> np.ndarray:
  """[nnz] int8 TRAIN / VALID / TEST of every pair, as random_split assigns them."""
  if len(ratios) != 3 or min(ratios) < 0 or ratios[0] <= 0:
    raise DataError(f"split ratios must be three non-negative numbers, train > 0; got {ratios}")
  rng = np.random.default_rng(seed)
  degrees = inter.user_degrees()
  users_N = inter.users()
  # Random order within each user: sort pairs by (user, random key).
  order = np.lexsort((rng.random(inter.nnz), users_N))
  rank_N = np.empty(inter.nnz, dtype=np.int64)
  rank_N[order] = np.arange(inter.nnz) - np.repeat(inter.indptr[:-1], degrees)
  sizes, inverse = np.unique(degrees, return_inverse=True)
  cuts = np.array([np.cumsum(recbole_counts(int(n), ratios))[:2] for n in sizes],
                  dtype=np.int64).reshape(-1, 2)[inverse.ravel()]
  part_N = np.full(inter.nnz, TEST, dtype=np.int8)
  part_N[rank_N < cuts[users_N, 1]] = VALID
  part_N[rank_N < cuts[users_N, 0]] = TRAIN
  return part_N


def given_split(inter: Interactions, *, seed: int, valid_ratio: float = 0.1) -> DatasetSplit:
  """The dataset's own split (`split_tags`).

  Splits without a validation part (e.g. Gowalla's train/test) get one carved out of
  train per user, as random_split does with ratios (1 - valid_ratio, valid_ratio, 0).
  """
  if inter.split_tags is None:
    raise DataError("this dataset ships no split of its own; use the random split")
  if not 0 < valid_ratio < 1:
    raise DataError(f"valid_ratio must lie in (0, 1), got {valid_ratio}")
  tags_N = inter.split_tags.copy()
  if not (tags_N == VALID).any():
    train_idx = np.flatnonzero(tags_N == TRAIN)
    carved_N = random_parts(inter.subset(tags_N == TRAIN), seed=seed,
                            ratios=(1 - valid_ratio, valid_ratio, 0.0))
    tags_N[train_idx[carved_N == VALID]] = VALID
  return _split_by_tags(inter, tags_N)


def _split_by_tags(inter: Interactions, tags_N: np.ndarray) -> DatasetSplit:
  base = dataclasses.replace(inter, split_tags=None)
  return DatasetSplit(train=base.subset(tags_N == TRAIN), valid=base.subset(tags_N == VALID),
                      test=base.subset(tags_N == TEST))
