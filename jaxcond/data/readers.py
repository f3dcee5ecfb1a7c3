"""Readers of interaction files: delimited text, item lists, RecBole `.inter`.

Parsing is vectorised over the raw bytes with numpy, so a file of a million lines
reads in about a second. Every error is a `DataError` naming the file and, for a bad
line, its 1-based line number (the header counts as a line).

How odd input is handled (tests/test_hostile.py tries each case):
- gzip is recognised by its magic bytes, not the name: a plain `x.csv.gz` reads as text;
  corrupt or truncated gzip data is an error.
- A UTF-8 byte-order mark and CRLF line endings are accepted; blank lines are skipped.
- A NUL byte is an error (binary data, or UTF-16 text): the files must be UTF-8 text
  (ids that are not valid UTF-8 are read as latin-1).
- There is no CSV quoting: a field that opens a quote it does not close (a quoted
  field holding the delimiter) is an error; balanced quotes are part of the id.
- Ids are labels. A column whose every id is a plain decimal int64 (`-5`, `42`) reads as
  integers; otherwise every id of the column is kept verbatim as text (`007`, `+1`,
  `10**30`). Duplicated pairs are kept here (`preprocess.dedup` keeps the first).
- Ratings must be finite numbers and timestamps integers (NaN and inf are errors).
"""

from __future__ import annotations

import dataclasses
import gzip
import pathlib
import zlib
from collections.abc import Mapping

import numpy as np

from jaxcond.data.interactions import DataError, Interactions

# Column roles of `read_delimited`, in the order its `columns` argument names them.
ROLES = ("user", "item", "rating", "timestamp")
# Delimiters tried by sniffing, in order of preference; whitespace is the fallback.
SNIFF_DELIMITERS = ("\t", "::", ",", ";", "|")

_HEADER_WORDS = frozenset((
    "user", "item", "rating", "ratings", "score", "timestamp", "time", "split", "movie",
    "business", "product", "label", "u", "i", "uid", "iid"))
_WS_BYTE = np.zeros(256, dtype=bool)
_WS_BYTE[list(b" \t\n\r\x0b\x0c")] = True
_GZIP_MAGIC = b"\x1f\x8b"
_SNIFF_BYTES = 1 << 16
_SNIFF_LINES = 50
_SHOWN_CHARS = 80


@dataclasses.dataclass(frozen=True)
class Table:
  """Raw (bytes) columns of one file, row-aligned, with the line number of each row."""

  source: str  # file name used in messages
  fields: dict  # column name -> [N] np.bytes_ array
  lines_N: np.ndarray  # [N] int64, 1-based line numbers in `source`

  def __len__(self) -> int:
    return int(self.lines_N.shape[0])

  def subset(self, keep_N) -> Table:
    """The rows where `keep_N` is True."""
    return Table(self.source, {k: v[keep_N] for k, v in self.fields.items()},
                 self.lines_N[keep_N])

  def floats(self, name: str) -> np.ndarray:
    """[N] float64 values of column `name`; not-a-number, NaN or inf is an error."""
    col = self.fields[name]
    try:
      values = col.astype(np.float64)
    except ValueError:
      for row, raw in enumerate(col.tolist()):
        try:
          float(raw)
        except ValueError:
          self._fail(row, f"{name} {_show(raw)} is not a number")
      raise
    bad = np.flatnonzero(~np.isfinite(values))
    if bad.size:
      self._fail(bad[0], f"{name} {_show(col[bad[0]])} is not a finite number")
    return values

  def ints(self, name: str) -> np.ndarray:
    """[N] int64 values of column `name`; integral floats such as `978300760.0` pass."""
    try:
      return self.fields[name].astype(np.int64)
    except (ValueError, OverflowError):
      values = self.floats(name)
    bad = np.flatnonzero(values != np.rint(values))
    if bad.size:
      self._fail(bad[0], f"{name} {_show(self.fields[name][bad[0]])} is not an integer")
    return values.astype(np.int64)

  def tags(self, name: str, codes: Mapping[str, int]) -> np.ndarray:
    """[N] int8 codes of column `name`, whose values must be keys of `codes`."""
    values, inverse = np.unique(self.fields[name], return_inverse=True)
    code_of = np.zeros(values.shape[0], dtype=np.int8)
    for k, value in enumerate(values.tolist()):
      text = value.decode("utf-8", "replace")
      if text not in codes:
        row = int(np.flatnonzero(inverse.ravel() == k)[0])
        self._fail(row, f"{name} {text!r} is not one of {sorted(codes)}")
      code_of[k] = codes[text]
    return code_of[inverse.ravel()]

  def check_ids(self, *names: str) -> None:
    """Raises on an empty id in any of the columns `names`."""
    for name in names:
      empty = np.flatnonzero(self.fields[name] == b"")
      if empty.size:
        self._fail(empty[0], f"empty {name} id")

  def _fail(self, row, message: str):
    raise DataError(f"{self.source}, line {int(self.lines_N[row])}: {message}")


# --- reading --------------------------------------------------------------


def read_bytes(path) -> bytes:
  """The contents of `path`, gunzipped when it starts with the gzip magic bytes."""
  path = pathlib.Path(path)
  try:
    data = path.read_bytes()
  except FileNotFoundError:
    raise DataError(f"file not found: {path}") from None
  except OSError as e:
    raise DataError(f"cannot read {path}: {e}") from e
  return gunzip_if_needed(data, str(path))


def gunzip_if_needed(data: bytes, source: str) -> bytes:
  """`data` decompressed if it is gzip (by magic bytes), else unchanged."""
  if not data.startswith(_GZIP_MAGIC):
    return data
  try:
    return gzip.decompress(data)
  except (OSError, EOFError, zlib.error) as e:
    raise DataError(f"{source}: corrupt or truncated gzip data ({e})") from e


def read_table(path, columns, *, delimiter: str | None = None, header: bool | None = None,
               min_fields: int | None = None, data: bytes | None = None) -> Table:
  """Reads the chosen columns of a delimited text file (plain or gzip).

  Args:
    path: the file; with `data` given, only its name (for messages).
    columns: {name: column} or a sequence naming the ROLES in order; a column is a
      header name (str) or a 0-based index (int or digit string).
    delimiter: a delimiter string, " " for any run of whitespace, or None to sniff.
    header: whether the first non-blank line is a header; None detects it.
    min_fields: fields a line needs at least; default one past the last chosen column.
    data: the file's bytes, if already in memory (e.g. a zip member).
  """
  source = str(path)
  data = read_bytes(path) if data is None else gunzip_if_needed(data, source)
  check_text(data, source)
  if data.startswith(b"\xef\xbb\xbf"):
    data = data[3:]
  if b"\r" in data:
    data = data.replace(b"\r\n", b"\n")
  if not isinstance(columns, Mapping):
    if not 2 <= len(columns) <= len(ROLES):
      raise DataError(f"columns must name 2 to {len(ROLES)} columns, got {columns!r}")
    columns = dict(zip(ROLES, columns))
  head = _first_lines(data)
  if not head:
    raise DataError(f"no interactions in {source}")
  delim = _choose_delimiter(delimiter, [line for _, _, line in head])
  first = _split_line(head[0][2], delim)
  second = _split_line(head[1][2], delim) if len(head) > 1 else None
  where = (source, head[0][0], _describe(delim))
  indices = _resolve_columns(columns, first, second, header, where)
  if indices is None:  # detected: the first line is a header
    header = True
    indices = _resolve_columns(columns, first, second, header, where)
  if header:
    line_no, offset, line = head[0]
    data, first_line = data[offset + len(line) + 1:], line_no + 1
  else:
    first_line = 1
  need = max(indices.values()) + 1
  min_fields = need if min_fields is None else max(int(min_fields), need)
  cols, lines_N = _split_columns(data, delim, list(indices.values()), min_fields, source,
                                 first_line)
  if lines_N.size == 0:
    raise DataError(f"no interactions in {source}")
  table = Table(source, dict(zip(indices, cols)), lines_N)
  if b'"' in data:
    _check_quotes(table)
  return table


def read_item_lists(path, *, data: bytes | None = None) -> Table:
  """Reads `user item item ...` lines (LightGCN / KGAT format) into user, item columns.

  A line holding only a user contributes no rows. Ids must be integers (the format's
  remapped ids); anything else is an error naming the file and line.
  """
  source = str(path)
  data = read_bytes(path) if data is None else gunzip_if_needed(data, source)
  check_text(data, source)
  arr = np.frombuffer(data, dtype=np.uint8)
  _, ends_L = _line_bounds(arr)
  counts_L = _whitespace_token_counts(arr, ends_L)
  tokens = np.array(data.split(), dtype=np.bytes_)
  rows_L = np.maximum(counts_L - 1, 0)
  first_L = np.cumsum(counts_L) - counts_L  # token index of each line's user
  is_item = np.ones(tokens.shape[0], dtype=bool)
  is_item[first_L[counts_L > 0]] = False
  lines_N = np.repeat(np.arange(1, ends_L.shape[0] + 1, dtype=np.int64), rows_L)
  if lines_N.size == 0:
    raise DataError(f"no interactions in {source}")
  users_N = np.repeat(tokens[first_L[rows_L > 0]], rows_L[rows_L > 0])
  table = Table(source, {"user": users_N, "item": tokens[is_item]}, lines_N)
  table.ints("user")
  table.ints("item")
  return table


def build_interactions(tables, *, split_tags_N=None) -> Interactions:
  """Interactions in original ids from tables with user, item and optional rating and
  timestamp columns; rows keep their order across `tables` (for `split_tags_N`)."""
  tables = [tables] if isinstance(tables, Table) else list(tables)
  for t in tables:
    t.check_ids("user", "item")
  users_N = parse_ids(np.concatenate([t.fields["user"] for t in tables]))
  items_N = parse_ids(np.concatenate([t.fields["item"] for t in tables]))
  fields = {}
  if all("rating" in t.fields for t in tables):
    fields["ratings"] = np.concatenate([t.floats("rating") for t in tables])
  if all("timestamp" in t.fields for t in tables):
    fields["timestamps"] = np.concatenate([t.ints("timestamp") for t in tables])
  if split_tags_N is not None:
    split_tags_N = np.asarray(split_tags_N)
    if split_tags_N.shape != users_N.shape:
      raise DataError(f"{len(split_tags_N)} split tags for {len(users_N)} rows in "
                      f"{', '.join(t.source for t in tables)}")
    fields["split_tags"] = split_tags_N
  return Interactions.from_original_ids(users_N, items_N, **fields)


def parse_ids(raw_N: np.ndarray) -> np.ndarray:
  """[N] int64 ids if every raw id is a plain decimal integer, else [N] str ids."""
  try:
    ids_N = raw_N.astype(np.int64)
  except (ValueError, OverflowError):
    ids_N = None
  if ids_N is not None and np.array_equal(_decimal_length(ids_N), np.strings.str_len(raw_N)):
    return ids_N  # as long as the plain decimal form, so the same text (no "+", "007")
  try:
    return np.strings.decode(raw_N, "utf-8")
  except UnicodeDecodeError:
    return np.strings.decode(raw_N, "latin-1")


def _decimal_length(ids_N: np.ndarray) -> np.ndarray:
  """[N] length of the plain decimal form of every int64."""
  powers = 10 ** np.arange(1, 20, dtype=np.uint64)
  magnitude_N = np.abs(ids_N).view(np.uint64)  # abs(-2**63) wraps to -2**63: 2**63 as uint64
  digits_N = np.searchsorted(powers, magnitude_N, side="right") + 1
  return digits_N + (ids_N < 0)


def read_delimited(path, *, columns=("user", "item"), delimiter: str | None = None,
                   header: bool | None = None, min_fields: int | None = None) -> Interactions:
  """Reads a delimited text file (plain or gzip) of user, item[, rating[, timestamp]].

  Args:
    path: the file.
    columns: the user, item and optional rating and timestamp columns, each a header
      name (str) or a 0-based index (int or digit string). Role names such as "user"
      fall back to their position when the file has no header.
    delimiter: e.g. "\\t", ",", "::"; " " for any whitespace; None sniffs it.
    header: whether the first line is a header; None detects it.
    min_fields: fields a line needs at least (default: enough for `columns`).
  """
  table = read_table(path, columns, delimiter=delimiter, header=header,
                     min_fields=min_fields)
  return build_interactions(table)


def read_inter(path) -> Interactions:
  """Reads a RecBole atomic `.inter` file: tab-separated with `name:type` headers."""
  source = str(path)
  data = read_bytes(path)
  check_text(data, source)
  head = _first_lines(data.replace(b"\r\n", b"\n"), 1)
  if not head:
    raise DataError(f"no interactions in {source}")
  names = [f.decode("utf-8", "replace").strip() for f in head[0][2].split(b"\t")]
  if not all(":" in name for name in names):
    raise DataError(f"{source}, line {head[0][0]}: not a RecBole header of name:type "
                    f"fields: {_show(head[0][2])}")
  fields = [tuple(name.split(":", 1)) for name in names]
  by_name = {name: j for j, (name, _) in enumerate(fields)}
  tokens = [j for j, (_, kind) in enumerate(fields) if kind == "token"]
  columns = {}
  for role, key, fallback in (("user", "user_id", 0), ("item", "item_id", 1)):
    if key in by_name:
      columns[role] = by_name[key]
    elif len(tokens) > fallback:
      columns[role] = tokens[fallback]
    else:
      raise DataError(f"{source}: no {key} field and too few token fields in {names}")
  for role in ("rating", "timestamp"):
    if role in by_name:
      columns[role] = by_name[role]
  table = read_table(path, columns, delimiter="\t", header=True, data=data)
  return build_interactions(table)


# --- parsing helpers -------------------------------------------------------


def check_text(data: bytes, source: str) -> None:
  """Raises on a NUL byte, which no UTF-8 text file holds (binary data, UTF-16 text)."""
  pos = data.find(b"\x00")
  if pos >= 0:
    line = data.count(b"\n", 0, pos) + 1
    raise DataError(f"{source}, line {line}: NUL byte at offset {pos}: not a UTF-8 text file "
                    f"(binary data, or UTF-16 text?)")


def _check_quotes(table: Table) -> None:
  """Raises on a field that opens a quote it does not close: CSV quoting is not supported."""
  for name, col in table.fields.items():
    opens = np.strings.startswith(col, b'"')
    closes = np.strings.endswith(col, b'"') & (np.strings.str_len(col) >= 2)
    bad = np.flatnonzero(opens & ~closes)
    if bad.size:
      table._fail(bad[0], f"{name} {_show(col[bad[0]])} opens a quote it does not close; "
                  f"quoted fields are not supported: remove the quotes or use a delimiter "
                  f"that no field contains")


def _describe(delim) -> str:
  """How a delimiter (bytes, or None for whitespace) reads in a message."""
  return "whitespace" if delim is None else repr(delim.decode("utf-8", "replace"))


def _show(raw) -> str:
  text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)
  return repr(text if len(text) <= _SHOWN_CHARS else text[:_SHOWN_CHARS] + "...")


def _first_lines(data: bytes, limit: int = _SNIFF_LINES) -> list:
  """(line number, byte offset, line) of the first non-blank lines."""
  out, offset, line_no = [], 0, 0
  sample_end = min(len(data), max(_SNIFF_BYTES, data.find(b"\n") + 1))
  while offset < len(data) and len(out) < limit:
    end = data.find(b"\n", offset)
    end = len(data) if end < 0 else end
    if end > sample_end and out:
      break
    line_no += 1
    if data[offset:end].strip():
      out.append((line_no, offset, data[offset:end]))
    offset = end + 1
  return out


def _choose_delimiter(delimiter, sample) -> bytes | None:
  """The delimiter as bytes, or None for whitespace."""
  if delimiter is not None:
    return None if delimiter == " " else delimiter.encode()
  for consistent in (True, False):
    for cand in SNIFF_DELIMITERS:
      counts = [line.count(cand.encode()) for line in sample]
      if min(counts) >= 1 and (not consistent or len(set(counts)) == 1):
        return cand.encode()
  # No candidate on every line: some line is short or odd. Whitespace if it gives the same
  # two or more fields on every line, else the candidate on most lines (so that the error
  # names the odd line, not line 1).
  whitespace_fields = {len(line.split()) for line in sample}
  if len(whitespace_fields) == 1 and min(whitespace_fields) >= 2:
    return None
  on_lines = [sum(cand.encode() in line for line in sample) for cand in SNIFF_DELIMITERS]
  best = int(np.argmax(on_lines))
  return SNIFF_DELIMITERS[best].encode() if 2 * on_lines[best] >= len(sample) else None


def _split_line(line: bytes, delim) -> list[str]:
  fields = line.split(delim) if delim else line.split()
  return [f.strip().decode("utf-8", "replace") for f in fields]


def _is_number(text: str) -> bool:
  try:
    float(text)
    return True
  except ValueError:
    return False


def _normalize(name: str) -> str:
  name = name.split(":", 1)[0].lower()
  for ch in "_- ":
    name = name.replace(ch, "")
  return name[:-2] if name.endswith("id") and len(name) > 2 else name


def _looks_like_header(first, second, indices, numeric=()) -> bool:
  """Whether line 1 is a header: a header word in a chosen column, or text on line 1
  where line 2 has a number in a numeric (rating / timestamp) column. Ids may be text
  on any line (Amazon ASINs next to ISBNs), so text-over-number in an id column says
  nothing."""
  indices = [j for j in indices if j < len(first)]
  if not indices or all(_is_number(first[j]) for j in indices):
    return False
  if any(_normalize(first[j]) in _HEADER_WORDS for j in indices):
    return True
  return second is not None and any(
      j < len(first) and j < len(second) and not _is_number(first[j]) and _is_number(second[j])
      for j in numeric)


def _find_name(spec: str, names: list[str]):
  for match in (lambda n: n == spec, lambda n: n.lower() == spec.lower(),
                lambda n: _normalize(n) == _normalize(spec)):
    hits = [j for j, n in enumerate(names) if match(n)]
    if len(hits) == 1:
      return hits[0]
  return None


def _resolve_columns(columns, first, second, header, where):
  """{name: index}, or None when `header` is None and the first line is a header.

  `where` is (source, line number of the first line, the delimiter as shown)."""
  source, line_no, delim = where
  named = {k: v for k, v in columns.items() if isinstance(v, str) and not v.isdigit()}
  if header is None:
    if named:
      found = {v: _find_name(v, first) is not None for v in named.values()}
      # All names found, or one that is no role name (roles fall back to positions).
      is_header = (all(found.values()) or any(f for v, f in found.items() if v not in ROLES)
                   or _looks_like_header(first, second, range(len(first))))
    else:
      numeric = [int(v) for k, v in columns.items() if k in ("rating", "timestamp")]
      is_header = _looks_like_header(first, second, [int(v) for v in columns.values()],
                                     numeric)
    if is_header:
      return None
  out = {}
  for key, spec in columns.items():
    if isinstance(spec, (int, np.integer)) or (isinstance(spec, str) and spec.isdigit()):
      out[key] = int(spec)
      if out[key] < 0:
        raise DataError(f"{source}: column index must be >= 0, got {spec!r}")
    elif header:
      out[key] = _find_name(spec, first)
      if out[key] is None:
        hint = "; name your columns with --columns=USER,ITEM[,RATING]" if spec in ROLES else ""
        raise DataError(f"{source}, line {line_no}: no column {spec!r} in header {first} "
                        f"(split on {delim}){hint}")
    elif spec in ROLES:
      out[key] = ROLES.index(spec)
    elif header is False:
      raise DataError(f"{source}: column {spec!r} is named but the file has no header "
                      f"(header=False); name columns by 0-based index")
    else:
      raise DataError(f"{source}, line {line_no}: no column {spec!r}: the first line, split "
                      f"on {delim}, is {first}, not a header naming it (wrong delimiter? "
                      f"no header? then name columns by 0-based index)")
  return out


def _line_bounds(arr):
  """[L] start and end offsets of every line (the end excludes the newline)."""
  ends_L = np.flatnonzero(arr == ord("\n"))
  if arr.size and arr[-1] != ord("\n"):
    ends_L = np.append(ends_L, arr.size)
  starts_L = np.concatenate([[0], ends_L[:-1] + 1]).astype(np.int64)
  return starts_L, ends_L


def _whitespace_token_counts(arr, ends_L) -> np.ndarray:
  """[L] number of whitespace-separated tokens on every line."""
  space = _WS_BYTE[arr]
  starts = ~space
  starts[1:] &= space[:-1]
  token_line = np.searchsorted(ends_L, np.flatnonzero(starts))
  return np.bincount(token_line, minlength=ends_L.shape[0])


def _split_columns(data, delim, indices, min_fields, source, first_line):
  """Columns `indices` ([N] bytes arrays) of the non-blank lines, and their numbers."""
  shown_delim = _describe(delim)
  if delim is not None and len(delim) > 1:
    free = next((bytes([b]) for b in (0x1F, 0x1E, 0x1D, 0x00, 0x01) if bytes([b]) not in data),
                None)
    if free is None:
      raise DataError(f"{source}: cannot split on {delim!r}")
    data, delim = data.replace(delim, free), free
  arr = np.frombuffer(data, dtype=np.uint8)
  starts_L, ends_L = _line_bounds(arr)
  if delim is None:
    fields_L = _whitespace_token_counts(arr, ends_L)
    keep_L = fields_L > 0
    tokens = data.split()
    offset_L = np.cumsum(fields_L) - fields_L
  else:
    delim_pos = np.flatnonzero(arr == delim[0])
    fields_L = np.searchsorted(delim_pos, ends_L) - np.searchsorted(delim_pos, starts_L) + 1
    keep_L = ends_L > starts_L
    for line in np.flatnonzero(keep_L & (fields_L == 1)):
      keep_L[line] = bool(data[starts_L[line]:ends_L[line]].strip())
    tokens = data.replace(delim, b"\n").split(b"\n")
    offset_L = np.cumsum(fields_L) - fields_L
  short = np.flatnonzero(keep_L & (fields_L < min_fields))
  if short.size:
    line = short[0]
    raise DataError(
        f"{source}, line {line + first_line}: expected at least {min_fields} fields split on "
        f"{shown_delim}, got {fields_L[line]}: {_show(data[starts_L[line]:ends_L[line]])}")
  kept_fields = fields_L[keep_L]
  uniform = (kept_fields.size > 0 and (delim is None or keep_L.all())
             and np.all(kept_fields == kept_fields[0]))
  padded = delim is not None and any(
      ws != delim and ws in data for ws in (b" ", b"\t", b"\r", b"\x0b", b"\x0c"))
  cols = []
  for j in indices:
    if uniform:
      n_fields = int(kept_fields[0])
      col = tokens[j:n_fields * len(kept_fields):n_fields]
    else:
      col = [tokens[k] for k in (offset_L[keep_L] + j).tolist()]
    col = np.array(col, dtype=np.bytes_)
    cols.append(np.strings.strip(col) if padded else col)
  return cols, np.flatnonzero(keep_L).astype(np.int64) + first_line
