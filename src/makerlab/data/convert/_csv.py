"""CSV reading, row checks and table builders shared by the CSV converters
(tardis, hyperliquid, lobster).

:func:`read_csv_checked` reads a CSV with typed columns and reports malformed rows by file
line; :class:`Rows` carries numpy columns with each row's line so checks can name it;
the ``*_table`` builders turn checked rows into the archive's Arrow tables.
"""

from __future__ import annotations

import gzip
import logging
import zlib
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from makerlab.data import schema
from makerlab.data.convert import Converted, Repairs, reject
from makerlab.data.validate import (
    Plausibility,
    check_finite,
    check_sorted,
    check_times,
    check_uncrossed,
    check_values,
)
from makerlab.errors import ConfigError, DataError

if TYPE_CHECKING:
    import polars as pl

log = logging.getLogger(__name__)

READ_ERRORS = (OSError, EOFError, zlib.error, UnicodeDecodeError)


@dataclass
class Rows:
    """Parsed rows of one source file: numpy columns plus each row's 1-based file line.

    Book columns (``bid_price`` ...) are 2-D ``(rows, levels)`` arrays, best level first.
    """

    source: str
    lines: np.ndarray
    cols: dict[str, np.ndarray]

    def __len__(self) -> int:
        return len(self.lines)

    def take(self, index: np.ndarray) -> Rows:
        """The rows at ``index`` (integer positions or a boolean mask)."""
        return Rows(self.source, self.lines[index], {k: v[index] for k, v in self.cols.items()})

    def rename(self, **names: str) -> Rows:
        """A copy with columns renamed ``old=new``."""
        return Rows(self.source, self.lines, {names.get(k, k): v for k, v in self.cols.items()})

    def with_column(self, name: str, values: np.ndarray) -> Rows:
        """A copy with column ``name`` set to ``values``."""
        return Rows(self.source, self.lines, {**self.cols, name: values})


@dataclass
class Group:
    """Tables of one instrument collected over several files."""

    tables: dict[str, list[pa.Table]] = field(default_factory=dict)
    repairs: Repairs = field(default_factory=Repairs)
    stats: Counter = field(default_factory=Counter)
    origin: object = None

    def add(self, tables: dict[str, pa.Table], repairs: Repairs | None,
            stats: dict[str, int] | None = None, *, origin: object = None) -> None:
        """Add the tables (by kind) read from one file, its repairs and its counters.

        ``origin`` names the instrument in the source; an ``exchange=``/``symbol=``
        override that would merge two different origins raises :class:`ConfigError`.
        """
        if self.origin is not None and origin != self.origin:
            raise ConfigError(f"exchange=/symbol= would merge {self.origin} and {origin} "
                              "into one instrument; convert them separately")
        self.origin = origin if self.origin is None else self.origin
        for kind, table in tables.items():
            self.tables.setdefault(kind, []).append(table)
        merge_repairs(self.repairs, repairs)
        self.stats.update(stats or {})
        self.stats["files"] += 1

    def converted(self, exchange: str, symbol: str) -> Converted:
        """One :class:`Converted`; tables of one kind from several files merged by local_ts."""
        tables = {kind: merge_tables(kind, parts) for kind, parts in self.tables.items()}
        depth = None
        if schema.BOOK_SNAPSHOT in tables:
            depth = schema.snapshot_depth(tables[schema.BOOK_SNAPSHOT].schema)
        return Converted(exchange, symbol, tables, depth=depth, repairs=self.repairs,
                         stats=dict(self.stats))


def check_depth(depth: int) -> None:
    """Raise :class:`ConfigError` unless ``depth`` is a positive int."""
    if not isinstance(depth, int) or depth < 1:
        raise ConfigError(f"depth must be a positive integer, got {depth!r}")


def expand_inputs(inputs: str | Path | Sequence[str | Path], pattern: str) -> list[Path]:
    """Files of ``inputs``: paths as given, directories expanded to sorted ``pattern`` files."""
    items = [inputs] if isinstance(inputs, str | Path) else list(inputs)
    paths: list[Path] = []
    for item in map(Path, items):
        if item.is_dir():
            paths.extend(sorted(item.glob(pattern)))
        elif item.is_file():
            paths.append(item)
        else:
            raise ConfigError(f"input {item} does not exist")
    if not paths:
        raise ConfigError(f"no input files found in {items}")
    return paths


def unreadable(path: Path, error: Exception) -> DataError:
    """The :class:`DataError` for a file whose bytes cannot be read or decompressed, at the
    first line that could not be recovered (after the last one for a failed gzip check)."""
    lines = 0
    try:
        with gzip.open(path, "rb") if path.name.endswith(".gz") else open(path, "rb") as f:
            while chunk := f.read1(1 << 16):
                lines += chunk.count(b"\n")
    except READ_ERRORS:
        pass
    return DataError(f"cannot read the file (corrupt or truncated?): {error}",
                     source=path.name, line=lines + 1)


def read_header(path: Path) -> list[str]:
    """Column names on the first line of a CSV file (CRLF and BOM tolerated)."""
    try:
        with gzip.open(path, "rb") if path.name.endswith(".gz") else open(path, "rb") as f:
            line = f.readline().decode("utf-8-sig")
    except READ_ERRORS as e:
        raise DataError(f"cannot read the header: {e}", source=path.name, line=1) from e
    return [name.strip() for name in line.rstrip("\r\n").split(",")]


def read_csv_checked(
    path: Path,
    names: list[str],
    types: dict[str, pa.DataType],
    *,
    header: bool,
    repairs: Repairs | None,
) -> tuple[pa.Table, np.ndarray]:
    """Read a CSV file into Arrow with ``types``, and the 1-based file line of each row.

    Rows with the wrong number of fields, values that do not parse as their column's type
    (or text that is not UTF-8), empty integer fields, or a last line without a line end
    (the file was cut short) are malformed: the first raises :class:`DataError` naming
    its line, or with ``repairs`` all are dropped and counted as ``malformed``. Empty or
    ``NaN`` float fields become NaN (checked later by the converters). A file without
    data rows is ``empty_file`` (the table has no rows when repairing); one that cannot be
    decompressed raises :func:`unreadable`.
    """
    invalid: dict[int, str] = {}

    def on_invalid(row) -> str:
        invalid[row.number] = f"expected {row.expected_columns} fields, got {row.actual_columns}"
        return "skip"

    options = {
        "read_options": pacsv.ReadOptions(column_names=names, skip_rows=int(header),
                                          use_threads=False),
        # no quoting in these formats: a stray quote must not swallow the lines after it
        "parse_options": pacsv.ParseOptions(invalid_row_handler=on_invalid, quote_char=False,
                                            ignore_empty_lines=False),
    }
    try:
        table, watched = _read(path, pacsv.ConvertOptions(column_types=types), options)
        bad = np.zeros(table.num_rows, dtype=bool)
    except pa.ArrowInvalid:
        invalid.clear()
        table, bad, watched = _read_as_strings(path, names, types, options)
    invalid.update(dict.fromkeys(watched.not_text, "not UTF-8 text"))
    count = table.num_rows + len(invalid)
    lines = _file_lines(count, sorted(invalid), int(header))
    if count == 0:
        reject(repairs, "empty_file", "no data rows", "file without data rows skipped",
               source=path.name, line=1 + int(header))
    bad |= _null_ints(table, types)
    problems = {**invalid, **{int(n): "a value is missing or not a number" for n in lines[bad]}}
    if watched.cut and count:
        problems[count + int(header)] = "the file ends inside this line (cut short?)"
        bad[-1:] |= lines[-1:] == count + int(header)
    if not problems:
        return table, lines
    _report_malformed(problems, path.name, repairs)
    keep = ~bad
    return table.filter(pa.array(keep)), lines[keep]


class _Watched:
    """A binary file as Arrow's CSV reader reads it: each line that is not UTF-8 text is
    passed on empty (so it is a malformed row at its own line) and remembered; and whether
    the file ends inside a line (without a line end: cut short)."""

    def __init__(self, raw):
        self.raw, self.closed = raw, False
        self.lines = 0  # complete lines passed on
        self.not_text: list[int] = []
        self.carry = b""  # the start of a line whose end has not been read yet
        self.cut = False

    def read(self, size: int = -1) -> bytes:
        while True:
            chunk = self.raw.read(size)
            data, self.carry = self.carry + chunk, b""
            if not chunk:  # the end of the file: what is left has no line end
                self.cut |= bool(data)
                return self._text(data)
            end = data.rfind(b"\n") + 1
            if end:
                self.carry = data[end:]
                return self._text(data[:end])
            self.carry = data

    def _text(self, data: bytes) -> bytes:
        try:
            data.decode()
        except UnicodeDecodeError:
            data = self._text_lines(data)
        self.lines += data.count(b"\n")
        return data

    def _text_lines(self, data: bytes) -> bytes:
        lines = data.split(b"\n")
        for i, line in enumerate(lines):
            try:
                line.decode()
            except UnicodeDecodeError:
                self.not_text.append(self.lines + i + 1)
                lines[i] = b""
        return b"\n".join(lines)

    def readable(self) -> bool:
        return True

    def close(self) -> None:
        self.closed = True


def _read(path: Path, convert: pacsv.ConvertOptions, options: dict) -> tuple[pa.Table, _Watched]:
    """The table and what the reading saw (lines that are not text, a cut last line).

    A gzip file is decompressed by Python's gzip, which also checks its CRC.
    """
    try:
        with gzip.open(path, "rb") if path.name.endswith(".gz") else open(path, "rb") as raw:
            watched = _Watched(raw)
            table = pacsv.read_csv(pa.PythonFile(watched, mode="r"), convert_options=convert,
                                   **options)
    except READ_ERRORS as e:
        raise unreadable(path, e) from e
    return table, watched


def _read_as_strings(path: Path, names: list[str], types: dict[str, pa.DataType],
                     options: dict) -> tuple[pa.Table, np.ndarray, _Watched]:
    """Read every column as text, then convert; also the mask of unparseable rows and
    what the reading saw."""
    convert = pacsv.ConvertOptions(column_types=dict.fromkeys(names, pa.string()))
    try:
        raw, watched = _read(path, convert, options)
    except pa.ArrowInvalid:  # Arrow's "Empty CSV file": not a byte to read
        empty = {name: pa.array([], types.get(name, pa.string())) for name in names}
        return pa.table(empty), np.zeros(0, dtype=bool), _Watched(None)
    import polars as pl  # 0.1 s to import: only when a CSV is converted

    frame = polars_frame(raw)
    bad = np.zeros(raw.num_rows, dtype=bool)
    columns = {}
    for name in names:
        target = types.get(name, pa.string())
        if target == pa.string():
            columns[name] = raw.column(name)
            continue
        text = frame[name].str.strip_chars()
        values = text.cast(pl.Int64 if target == pa.int64() else pl.Float64, strict=False)
        nullish = text.is_in(["", "NaN", "nan", "NA", "null", "NULL"])
        bad |= (values.is_null() & ~nullish).to_numpy()
        columns[name] = values.to_arrow()
    return pa.table(columns), bad, watched


def _file_lines(count: int, skipped: list[int], header: int) -> np.ndarray:
    """Line numbers of the parsed rows: all data lines except the ``skipped`` ones."""
    lines = np.arange(1 + header, count + 1 + header, dtype=np.int64)
    return np.setdiff1d(lines, np.asarray(skipped, dtype=np.int64), assume_unique=True)


def _null_ints(table: pa.Table, types: dict[str, pa.DataType]) -> np.ndarray:
    """Rows with an empty integer field."""
    bad = np.zeros(table.num_rows, dtype=bool)
    for name, kind in types.items():
        if kind == pa.int64() and table.column(name).null_count:
            bad |= table.column(name).is_null().to_numpy(zero_copy_only=False)
    return bad


def _report_malformed(problems: dict[int, str], source: str, repairs: Repairs | None) -> None:
    """Raise at the first malformed line, or count them all as repaired."""
    first = min(problems)
    reject(repairs, "malformed",
           f"malformed row: {problems[first]} ({len(problems)} malformed rows in total); "
           "pass repair=True to drop them",
           f"{len(problems)} malformed rows dropped (first: {problems[first]})",
           source=source, line=first)


def polars_frame(table: pa.Table) -> pl.DataFrame:
    """``table`` as a polars frame, zero copy where Arrow allows (``pl.from_arrow`` is typed
    to return a frame or a series; a table always gives a frame)."""
    import polars as pl

    frame = pl.from_arrow(table)
    assert isinstance(frame, pl.DataFrame)
    return frame


def column(table: pa.Table, name: str) -> np.ndarray:
    """Column ``name`` as numpy (float nulls become NaN, strings an object array)."""
    return table.column(name).to_numpy()


def stack(table: pa.Table, names: list[str]) -> np.ndarray:
    """Float columns ``names`` as one ``(rows, len(names))`` array."""
    if not names:
        return np.empty((table.num_rows, 0))
    return np.column_stack([column(table, name) for name in names]).astype(np.float64)


def merge_repairs(into: Repairs | None, other: Repairs | None) -> None:
    """Add the counts and examples of ``other`` to ``into``."""
    if into is None or other is None or into is other:
        return
    into.counts.update(other.counts)
    for kind, example in other.examples.items():
        into.examples.setdefault(kind, example)


def trade_sides(rows: Rows, repairs: Repairs | None) -> np.ndarray:
    """Aggressor side as int8: buy/B → +1, sell/A → -1, unknown/empty → 0.

    Any other value raises :class:`DataError` (or, repairing, is counted and set to 0).
    """
    text = np.char.lower(rows.cols["side"].astype(str))
    side = np.select([text == "buy", text == "b", text == "sell", text == "a"],
                     [1, 1, -1, -1], 0).astype(np.int8)
    odd = (side == 0) & ~np.isin(text, ["unknown", "", "none"])
    if odd.any():
        i = int(np.flatnonzero(odd)[0])
        detail = f"unknown trade side {rows.cols['side'][i]!r}"
        reject(repairs, "unknown_side",
               f"{detail}; pass repair=True to mark such sides unknown (0)",
               f"{int(odd.sum())} rows set to side 0 (first: {detail})",
               source=rows.source, line=int(rows.lines[i]))
    return side


def checked_trades(rows: Rows, repairs: Repairs | None, limits: Plausibility) -> Rows:
    """Trades with finite, plausible price and size (both > 0) and plausible timestamps,
    sorted by local_ts (or raise)."""
    values = {k: rows.cols[k] for k in ("price", "size")}
    rows = rows.take(check_finite(values, source=rows.source, lines=rows.lines,
                                  repairs=repairs))
    rows = rows.take(check_values({"price": rows.cols["price"]}, {"size": rows.cols["size"]},
                                  source=rows.source, lines=rows.lines, repairs=repairs,
                                  limits=limits))
    return checked_times(rows, repairs, limits)


def checked_times(rows: Rows, repairs: Repairs | None, limits: Plausibility) -> Rows:
    """Rows with plausible timestamps (:func:`~makerlab.data.validate.check_times`) in
    non-decreasing local_ts order (raise :class:`UnsortedData` otherwise)."""
    rows = rows.take(check_times(rows.cols["exchange_ts"], rows.cols["local_ts"],
                                 source=rows.source, lines=rows.lines, repairs=repairs,
                                 limits=limits))
    order = check_sorted(rows.cols["local_ts"], source=rows.source, lines=rows.lines,
                         repairs=repairs, max_backstep=limits.max_backstep_ns)
    return rows if (np.diff(order) == 1).all() else rows.take(order)


def checked_book(rows: Rows, repairs: Repairs | None, limits: Plausibility) -> Rows:
    """Book rows whose levels are consistent, plausible and uncrossed, with plausible
    timestamps, sorted by local_ts.

    Per side, a level is either a finite price with a finite size or both NaN (missing);
    missing levels only follow present ones; bid prices strictly descend and ask prices
    strictly ascend; prices and sizes are > 0 and within ``limits``. Violations raise
    :class:`DataError` (``CrossedBook`` for best bid ≥ best ask) or, repairing, drop the
    row.
    """
    rows = rows.take(check_book(rows, repairs))
    sides = {kind: {name: rows.cols[name] for name in (f"bid_{kind}", f"ask_{kind}")}
             for kind in ("price", "size")}
    rows = rows.take(check_values(sides["price"], sides["size"], source=rows.source,
                                  lines=rows.lines, repairs=repairs, limits=limits))
    keep = check_uncrossed(rows.cols["bid_price"][:, 0], rows.cols["ask_price"][:, 0],
                           source=rows.source, lines=rows.lines, repairs=repairs)
    return checked_times(rows.take(keep), repairs, limits)


def check_book(rows: Rows, repairs: Repairs | None) -> np.ndarray:
    """Mask of rows whose levels are well-formed on both sides (see :func:`checked_book`)."""
    bad = np.zeros(len(rows), dtype=bool)
    reasons = []
    for side, descending in (("bid", True), ("ask", False)):
        fault, reason = _level_faults(rows.cols[f"{side}_price"], rows.cols[f"{side}_size"],
                                      descending)
        reasons.append((fault, f"{side}s: {reason}"))
        bad |= fault
    if not bad.any():
        return ~bad
    i = int(np.flatnonzero(bad)[0])
    detail = next(reason for fault, reason in reasons if fault[i])
    line = int(rows.lines[i])
    reject(repairs, "bad_levels",
           f"bad book levels ({detail}); pass repair=True to drop such rows",
           f"{int(bad.sum())} rows with bad book levels dropped (first: {detail})",
           source=rows.source, line=line)
    return ~bad


def _level_faults(prices: np.ndarray, sizes: np.ndarray,
                  descending: bool) -> tuple[np.ndarray, str]:
    """Per-row fault mask of one side's ``(rows, levels)`` arrays and a description."""
    present = np.isfinite(prices)
    with np.errstate(invalid="ignore"):
        half = (present != np.isfinite(sizes)) | (sizes < 0)
        step = np.diff(prices, axis=1)
        wrong = (step >= 0) if descending else (step <= 0)
    gaps = present[:, 1:] & ~present[:, :-1]
    order = wrong & present[:, 1:] & present[:, :-1]
    faults = [(half.any(axis=1), "NaN, infinite or negative price/size"),
              (gaps.any(axis=1), "a level after a missing level"),
              (order.any(axis=1), "levels out of price order")]
    fault = np.zeros(len(prices), dtype=bool)
    for mask, _ in faults:
        fault |= mask
    first = next((text for mask, text in faults if mask.any()), "")
    return fault, first


def trades_table(rows: Rows) -> pa.Table:
    """A ``trades`` table from rows with price, size, side and trade_id columns."""
    ids = pa.array(rows.cols["trade_id"].astype(str), pa.string())
    return pa.table(
        [
            pa.array(rows.cols["exchange_ts"], pa.int64()),
            pa.array(rows.cols["local_ts"], pa.int64()),
            pa.array(rows.cols["price"], pa.float64()),
            pa.array(rows.cols["size"], pa.float64()),
            pa.array(rows.cols["side"], pa.int8()),
            ids,
        ],
        schema=schema.TRADES_SCHEMA,
    )


def _seq(rows: Rows) -> pa.Array:
    seq = rows.cols.get("seq")
    if seq is None:
        seq = np.full(len(rows), schema.NO_SEQ, dtype=np.int64)
    return pa.array(seq, pa.int64())


def bbo_table(rows: Rows) -> pa.Table:
    """A ``bbo`` table from book rows (level 0 of each side)."""
    return pa.table(
        [
            pa.array(rows.cols["exchange_ts"], pa.int64()),
            pa.array(rows.cols["local_ts"], pa.int64()),
            _seq(rows),
            *(pa.array(rows.cols[name][:, 0], pa.float64())
              for name in ("bid_price", "bid_size", "ask_price", "ask_size")),
        ],
        schema=schema.BBO_SCHEMA,
    )


def snapshot_table(rows: Rows, depth: int) -> pa.Table:
    """A ``book_snapshot`` table of at most ``depth`` levels per side from book rows."""
    levels = min(depth, rows.cols["bid_price"].shape[1])
    lists = []
    for name in ("bid_price", "bid_size", "ask_price", "ask_size"):
        values = np.ascontiguousarray(rows.cols[name][:, :levels], dtype=np.float64)
        lists.append(pa.FixedSizeListArray.from_arrays(pa.array(values.ravel()), levels))
    return pa.table(
        [
            pa.array(rows.cols["exchange_ts"], pa.int64()),
            pa.array(rows.cols["local_ts"], pa.int64()),
            _seq(rows),
            *lists,
        ],
        schema=schema.book_snapshot_schema(levels),
    )


def merge_tables(kind: str, parts: list[pa.Table]) -> pa.Table:
    """Tables of one ``kind`` from several files, stably ordered by ``local_ts``."""
    if len(parts) == 1:
        return parts[0]
    if kind == schema.BOOK_SNAPSHOT:
        depths = {schema.snapshot_depth(t.schema) for t in parts}
        if len(depths) > 1:
            raise DataError(f"book snapshots of different depths {sorted(depths)} for one "
                            "instrument; pass a smaller depth= to truncate them all")
    table = pa.concat_tables(parts)
    return table.take(pc.sort_indices(table, [("local_ts", "ascending")]))

