"""The interactions type: a users x items CSR on the host, with maps back to original ids."""

from __future__ import annotations

import dataclasses
import hashlib

import numpy as np
import scipy.sparse as sp

from jaxcond.core.errors import DataError  # noqa: F401 - raised here, imported from here

# Optional per-pair columns carried through every subset, filter and split.
PAIR_FIELDS = ("ratings", "timestamps", "split_tags")

# Values of `split_tags` for datasets that ship their own split.
TRAIN, VALID, TEST = 0, 1, 2


@dataclasses.dataclass(frozen=True, eq=False)
class Interactions:
  """Implicit-feedback pairs over dense ids 0..n_users-1 and 0..n_items-1.

  Rows of the CSR are users; `indices` holds item ids, sorted within each row.
  `user_ids[u]` and `item_ids[i]` are the original ids of dense ids u and i.
  Duplicated (user, item) pairs are allowed until `dedup` (preprocess) drops them.
  """

  n_users: int
  n_items: int
  indptr: np.ndarray  # [n_users + 1] int64
  indices: np.ndarray  # [nnz] int32 item ids
  user_ids: np.ndarray  # [n_users] original user ids
  item_ids: np.ndarray  # [n_items] original item ids
  ratings: np.ndarray | None = None  # [nnz] float32
  timestamps: np.ndarray | None = None  # [nnz] int64
  split_tags: np.ndarray | None = None  # [nnz] int8: TRAIN, VALID or TEST

  def __post_init__(self):
    if self.indptr.shape != (self.n_users + 1,):
      raise DataError(f"indptr has shape {self.indptr.shape}, expected ({self.n_users + 1},)")
    if self.indptr[-1] != self.indices.shape[0]:
      raise DataError("indptr[-1] does not match the number of pairs")
    if self.user_ids.shape != (self.n_users,) or self.item_ids.shape != (self.n_items,):
      raise DataError("id maps do not match n_users / n_items")
    for name in PAIR_FIELDS:
      col = getattr(self, name)
      if col is not None and col.shape != self.indices.shape:
        raise DataError(f"{name} has shape {col.shape}, expected {self.indices.shape}")

  # --- construction -------------------------------------------------------

  @classmethod
  def from_pairs(cls, users_N, items_N, *, n_users=None, n_items=None,
                 user_ids=None, item_ids=None, **pair_fields) -> Interactions:
    """Builds from dense id arrays; pairs are sorted by (user, item), stably."""
    users_N = np.asarray(users_N, dtype=np.int64)
    items_N = np.asarray(items_N, dtype=np.int64)
    if users_N.shape != items_N.shape or users_N.ndim != 1:
      raise DataError("users and items must be 1-D arrays of the same length")
    n_users = int(users_N.max(initial=-1) + 1) if n_users is None else int(n_users)
    n_items = int(items_N.max(initial=-1) + 1) if n_items is None else int(n_items)
    if users_N.size and (users_N.min() < 0 or users_N.max() >= n_users):
      raise DataError(f"user ids must lie in [0, {n_users})")
    if items_N.size and (items_N.min() < 0 or items_N.max() >= n_items):
      raise DataError(f"item ids must lie in [0, {n_items})")
    order = np.lexsort((items_N, users_N))
    indptr = np.zeros(n_users + 1, dtype=np.int64)
    np.cumsum(np.bincount(users_N, minlength=n_users), out=indptr[1:])
    fields = {k: (None if v is None else np.asarray(v)[order]) for k, v in pair_fields.items()}
    _cast_fields(fields)
    return cls(
        n_users=n_users, n_items=n_items, indptr=indptr,
        indices=items_N[order].astype(np.int32),
        user_ids=np.arange(n_users) if user_ids is None else np.asarray(user_ids),
        item_ids=np.arange(n_items) if item_ids is None else np.asarray(item_ids),
        **fields)

  @classmethod
  def from_original_ids(cls, raw_users, raw_items, **pair_fields) -> Interactions:
    """Builds from original ids of any type; dense ids follow sorted original ids."""
    user_ids, users_N = np.unique(np.asarray(raw_users), return_inverse=True)
    item_ids, items_N = np.unique(np.asarray(raw_items), return_inverse=True)
    return cls.from_pairs(users_N.ravel(), items_N.ravel(), user_ids=user_ids,
                          item_ids=item_ids, **pair_fields)

  # --- views --------------------------------------------------------------

  @property
  def nnz(self) -> int:
    return int(self.indices.shape[0])

  def __len__(self) -> int:
    return self.nnz

  def users(self) -> np.ndarray:
    """[nnz] int32 user id of every pair (the CSR row expanded)."""
    return np.repeat(np.arange(self.n_users, dtype=np.int32), np.diff(self.indptr))

  def user_degrees(self) -> np.ndarray:
    return np.diff(self.indptr)

  def item_degrees(self) -> np.ndarray:
    return np.bincount(self.indices, minlength=self.n_items)

  def items_of(self, user: int) -> np.ndarray:
    return self.indices[self.indptr[user]:self.indptr[user + 1]]

  def to_csr(self, dtype=np.float32) -> sp.csr_matrix:
    data = np.ones(self.nnz, dtype=dtype)
    return sp.csr_matrix((data, self.indices, self.indptr), shape=(self.n_users, self.n_items))

  def pair_fields(self) -> dict:
    return {k: getattr(self, k) for k in PAIR_FIELDS if getattr(self, k) is not None}

  def original_pairs(self) -> tuple[np.ndarray, np.ndarray]:
    """(original user id, original item id) of every pair."""
    return self.user_ids[self.users()], self.item_ids[self.indices]

  # --- derived sets -------------------------------------------------------

  def subset(self, keep_N) -> Interactions:
    """The pairs where `keep_N` ([nnz] bool) is True, in the same id space."""
    keep_N = np.asarray(keep_N, dtype=bool)
    if keep_N.shape != (self.nnz,):
      raise DataError(f"mask has shape {keep_N.shape}, expected ({self.nnz},)")
    counts = np.bincount(self.users()[keep_N], minlength=self.n_users)
    indptr = np.zeros(self.n_users + 1, dtype=np.int64)
    np.cumsum(counts, out=indptr[1:])
    fields = {k: v[keep_N] for k, v in self.pair_fields().items()}
    return dataclasses.replace(self, indptr=indptr, indices=self.indices[keep_N],
                               **{k: fields.get(k) for k in PAIR_FIELDS})

  def pair_keys(self) -> np.ndarray:
    """[nnz] int64: user * n_items + item of each pair (CSR order), one number per pair."""
    return self.users().astype(np.int64) * self.n_items + self.indices

  def union(self, other: Interactions) -> Interactions:
    """The pairs of either (each once), in the same id space, without per-pair fields."""
    if (other.n_users, other.n_items) != (self.n_users, self.n_items):
      raise DataError(f"cannot unite pairs over ({other.n_users}, {other.n_items}) users x "
                      f"items with pairs over ({self.n_users}, {self.n_items})")
    keys = np.union1d(self.pair_keys(), other.pair_keys())
    return Interactions.from_pairs(keys // self.n_items, keys % self.n_items,
                                   n_users=self.n_users, n_items=self.n_items,
                                   user_ids=self.user_ids, item_ids=self.item_ids)

  def compact(self) -> Interactions:
    """Drops users and items without pairs and renumbers the rest densely."""
    user_keep = self.user_degrees() > 0
    item_keep = self.item_degrees() > 0
    user_new = np.cumsum(user_keep) - 1
    item_new = np.cumsum(item_keep) - 1
    return Interactions.from_pairs(
        user_new[self.users()], item_new[self.indices],
        n_users=int(user_keep.sum()), n_items=int(item_keep.sum()),
        user_ids=self.user_ids[user_keep], item_ids=self.item_ids[item_keep],
        **self.pair_fields())

  def checksum(self) -> str:
    """sha256 over ids and pairs: equal data gives an equal checksum."""
    h = hashlib.sha256()
    for arr in (self.indptr, self.indices, self.user_ids.astype(str), self.item_ids.astype(str)):
      h.update(np.ascontiguousarray(arr).tobytes())
    for name, col in sorted(self.pair_fields().items()):
      h.update(name.encode())
      h.update(np.ascontiguousarray(col).tobytes())
    return h.hexdigest()

  def summary(self) -> dict:
    density = self.nnz / max(1, self.n_users * self.n_items)
    return {"users": self.n_users, "items": self.n_items, "interactions": self.nnz,
            "density": density}


def _cast_fields(fields: dict) -> None:
  casts = {"ratings": np.float32, "timestamps": np.int64, "split_tags": np.int8}
  for k in list(fields):
    if k not in casts:
      raise TypeError(f"unknown pair field {k!r}; expected one of {PAIR_FIELDS}")
    if fields[k] is not None:
      fields[k] = fields[k].astype(casts[k])
