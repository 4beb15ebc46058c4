"""The tick-data archive: hive-partitioned Parquet, one file per UTC hour.

Layout (``HH`` is the UTC hour of ``exchange_ts``, ``00``..``23``)::

    root/kind=book_delta/exchange=binance/symbol=BTCUSDT/date=2024-08-08/23.parquet
    root/kind=trades/exchange=binance/symbol=BTCUSDT/date=2024-08-09/00.parquet
    root/kind=bbo/exchange=binance/symbol=BTCUSDT/date=2024-08-09/00.parquet
    root/kind=book_snapshot/depth=20/exchange=binance/symbol=BTCUSDT/date=2024-08-09/00.parquet

``book_snapshot`` has a ``depth=<N>`` level right under the kind, so that
``root/kind=book_snapshot/depth=20`` is one dataset whose files all share one schema (the
fixed-size list columns differ between depths). Every other directory level is
``key=value`` so DuckDB, Polars, pandas and ``pyarrow.dataset`` read the archive with hive
partitioning and no makerlab code. Columns and their meaning are in
:mod:`makerlab.data.schema`; each file also carries the key-value metadata
``makerlab.schema_version``, ``makerlab.kind``, ``makerlab.exchange``, ``makerlab.symbol``
and ``makerlab.depth`` (empty unless ``book_snapshot``).

Range arguments (``start``/``end``) accept:

- ``'YYYY-MM-DD:HH'`` strings: whole hours, **both inclusive** (the tutorial's semantics);
  ``'YYYY-MM-DD'`` strings: whole days, both inclusive;
- ``datetime`` (naive means UTC), ``numpy.datetime64`` or ``int`` nanoseconds since the
  epoch: instants, ``start <= exchange_ts < end``;
- ``None``: unbounded.

The root is a local path, a URL (``file://``, ``s3://``, ``memory://``, anything
``pyarrow.fs`` or fsspec understands), or a path inside ``filesystem=`` (a
``pyarrow.fs.FileSystem`` or an fsspec filesystem).
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from makerlab.data.schema import BOOK_SNAPSHOT, KINDS, SCHEMA_VERSION, schema_for, snapshot_depth
from makerlab.errors import ConfigError, DataError

log = logging.getLogger(__name__)

__all__ = [
    "HOUR_NS",
    "TimeLike",
    "archive_paths",
    "list_archive",
    "read_table",
    "write_table",
]

HOUR_NS = 3_600_000_000_000
"""Nanoseconds in one hour."""

TimeLike = datetime | np.datetime64 | str | int | None
"""A range bound: see the module docstring."""

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]*$")
_HOUR_FILE = re.compile(r"^([0-2][0-9])\.parquet$")
_DATE_DIR = re.compile(r"^date=(\d{4}-\d{2}-\d{2})$")
_ROW_GROUP_BYTES = 64 << 20
_MAX_ROW_GROUP = 1 << 20
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_META_PREFIX = "makerlab."


# --------------------------------------------------------------------------- filesystem


@dataclass(frozen=True)
class _Root:
    """An archive root: the filesystem, the root's path on it and as the user wrote it."""

    fs: pafs.FileSystem
    base: str
    shown: str

    def path(self, rel: str) -> str:
        return f"{self.base}/{rel}" if rel else self.base

    def show(self, path: str) -> str:
        """``path`` (on ``fs``) as the user would address it, i.e. under their root."""
        if path.startswith(self.base):
            return self.shown + path[len(self.base):]
        return path


def _arrow_fs(filesystem: Any) -> pafs.FileSystem:
    if isinstance(filesystem, pafs.FileSystem):
        return filesystem
    return pafs.PyFileSystem(pafs.FSSpecHandler(filesystem))


def _resolve(root: str | os.PathLike, filesystem: Any = None) -> _Root:
    shown = os.fspath(root).rstrip("/") or "/"
    if filesystem is not None:
        fs = _arrow_fs(filesystem)
        if isinstance(fs, pafs.LocalFileSystem):
            return _Root(fs, os.path.abspath(shown), shown)
        strip = getattr(filesystem, "_strip_protocol", None)
        base = strip(shown) if strip is not None else shown
        return _Root(fs, str(base).rstrip("/") or "/", shown)
    if "://" not in shown:
        return _Root(pafs.LocalFileSystem(), os.path.abspath(shown), shown)
    try:
        fs, base = pafs.FileSystem.from_uri(shown)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        import fsspec

        ffs, base = fsspec.core.url_to_fs(shown)
        fs = _arrow_fs(ffs)
    return _Root(fs, base.rstrip("/") or "/", shown)


# --------------------------------------------------------------------------- naming


def _check_kind(kind: str) -> None:
    if kind not in KINDS:
        raise ConfigError(f"unknown kind {kind!r}; expected one of {', '.join(KINDS)}")


def _check_name(what: str, value: str) -> None:
    if not isinstance(value, str) or not _NAME.match(value):
        raise ConfigError(
            f"{what} {value!r} cannot be an archive directory name: use letters, digits "
            "and . _ @ - only (map e.g. 'PURR/USDC' to 'PURR-USDC' first)"
        )


def dataset_dir(kind: str, exchange: str, symbol: str, depth: int | None = None) -> str:
    """Path of one instrument's dataset relative to the archive root."""
    _check_kind(kind)
    _check_name("exchange", exchange)
    _check_name("symbol", symbol)
    if kind == BOOK_SNAPSHOT:
        if not isinstance(depth, int) or depth < 1:
            raise ConfigError(f"book_snapshot needs a positive integer depth, got {depth!r}")
        return f"kind={kind}/depth={depth}/exchange={exchange}/symbol={symbol}"
    return f"kind={kind}/exchange={exchange}/symbol={symbol}"


def hour_file(hour: int) -> str:
    """Path of the file of epoch hour ``hour`` (``exchange_ts // HOUR_NS``) in a dataset."""
    day = _EPOCH + timedelta(hours=int(hour))
    return f"date={day:%Y-%m-%d}/{day:%H}.parquet"


def _parse_hour(rel: str) -> int | None:
    """Epoch hour of a dataset-relative ``date=YYYY-MM-DD/HH.parquet``; None if not one."""
    parts = rel.split("/")
    if len(parts) != 2:
        return None
    day, name = _DATE_DIR.match(parts[0]), _HOUR_FILE.match(parts[1])
    if day is None or name is None or int(name.group(1)) > 23:
        return None
    days = (date.fromisoformat(day.group(1)) - date(1970, 1, 1)).days
    return days * 24 + int(name.group(1))


# --------------------------------------------------------------------------- time bounds


def _to_ns(value: TimeLike, *, end: bool) -> int | None:
    """A range bound in ns; ``end`` bounds are exclusive (see the module docstring)."""
    if value is None:
        return None
    if isinstance(value, str):
        return _parse_str(value, end=end)
    if isinstance(value, datetime):
        aware = value if value.tzinfo is not None else value.replace(tzinfo=UTC)
        micros = (aware - _EPOCH) // timedelta(microseconds=1)
        return micros * 1000 + int(getattr(value, "nanosecond", 0))
    if isinstance(value, np.datetime64):
        return int(value.astype("datetime64[ns]").astype(np.int64))
    if isinstance(value, int | np.integer) and not isinstance(value, bool):
        return int(value)
    raise ConfigError(f"cannot use {value!r} as a time bound: give a datetime, "
                      "'YYYY-MM-DD:HH' string or int nanoseconds")


def _parse_str(text: str, *, end: bool) -> int:
    for fmt, step in (("%Y-%m-%d:%H", timedelta(hours=1)), ("%Y-%m-%d", timedelta(days=1))):
        try:
            moment = datetime.strptime(text, fmt).replace(tzinfo=UTC)
        except ValueError:
            continue
        if end:
            moment += step
        return (moment - _EPOCH) // timedelta(microseconds=1) * 1000
    raise ConfigError(f"cannot parse time {text!r}: expected 'YYYY-MM-DD:HH' or 'YYYY-MM-DD'")


def _bounds(start: TimeLike, end: TimeLike) -> tuple[int | None, int | None]:
    lo, hi = _to_ns(start, end=False), _to_ns(end, end=True)
    if lo is not None and hi is not None and hi <= lo:
        raise ConfigError(f"empty time range: start {start!r} is not before end {end!r}")
    return lo, hi


# --------------------------------------------------------------------------- schema checks


def _table_depth(kind: str, table: pa.Table) -> int | None:
    if kind != BOOK_SNAPSHOT:
        return None
    if "bid_price" not in table.schema.names:
        raise DataError("column 'bid_price' is missing", source="book_snapshot table")
    kind_type = table.schema.field("bid_price").type
    if not pa.types.is_fixed_size_list(kind_type):
        raise DataError(f"column 'bid_price' must be a fixed-size list of float64, "
                        f"got {kind_type}", source="book_snapshot table")
    return snapshot_depth(table.schema)


def _conform(table: pa.Table, expected: pa.Schema, source: str) -> pa.Table:
    """``table`` with the columns of ``expected`` in its order; DataError on any mismatch."""
    names = set(table.schema.names)
    missing = [n for n in expected.names if n not in names]
    extra = [n for n in table.schema.names if n not in expected.names]
    if missing:
        raise DataError(f"column {missing[0]!r} is missing (expected columns "
                        f"{', '.join(expected.names)})", source=source)
    if extra:
        raise DataError(f"unexpected column {extra[0]!r} (expected columns "
                        f"{', '.join(expected.names)})", source=source)
    for field in expected:
        got = table.schema.field(field.name).type
        if got != field.type:
            raise DataError(f"column {field.name!r} has type {got}, expected {field.type}",
                            source=source)
        if table.column(field.name).null_count:
            raise DataError(f"column {field.name!r} has null values", source=source)
    return table.select(expected.names).cast(expected)


# --------------------------------------------------------------------------- writing


def write_table(
    root: str | os.PathLike,
    kind: str,
    exchange: str,
    symbol: str,
    table: pa.Table,
    *,
    filesystem: Any = None,
) -> list[str]:
    """Write ``table`` of record ``kind`` into the archive, one file per UTC hour.

    The table must match :func:`makerlab.data.schema.schema_for` (``book_snapshot`` takes
    its depth from the list size). An hour file that already exists is merged: rows are
    concatenated, stably sorted by ``local_ts`` and exact duplicate rows dropped, so writing
    the same data twice changes nothing. Rows repeated *within* ``table`` are stored once
    too, with a logged warning (give genuinely identical records distinct ids first). Every
    file is written to a temporary name and then renamed. Not safe for two writers on the
    same hour at once.

    Returns:
        The written files, under ``root`` as given.
    """
    _check_kind(kind)
    depth = _table_depth(kind, table)
    arc = _resolve(root, filesystem)
    folder = arc.path(dataset_dir(kind, exchange, symbol, depth))
    given = table.schema.metadata
    table = _conform(table, schema_for(kind, depth), f"{kind} table for {exchange}/{symbol}")
    written = []
    for hour, part in _split_hours(table):
        path = f"{folder}/{hour_file(hour)}"
        _warn_inner_duplicates(part, arc.show(path))
        metadata = _metadata(given, kind, exchange, symbol, depth)
        if arc.fs.get_file_info(path).type == pafs.FileType.File:
            old = _read_file(arc, path, part.schema, None)
            metadata = {**_metadata(old.schema.metadata, kind, exchange, symbol, depth),
                        **metadata}
            part = pa.concat_tables([old.replace_schema_metadata(None), part])
        _write_atomic(arc.fs, path, _dedupe(_sort_local(part)), metadata)
        written.append(arc.show(path))
    return written


def _metadata(existing: dict | None, kind: str, exchange: str, symbol: str,
              depth: int | None) -> dict[bytes, bytes]:
    meta = {k: v for k, v in (existing or {}).items() if k != b"ARROW:schema"}
    meta.update({
        b"makerlab.schema_version": SCHEMA_VERSION.encode(),
        b"makerlab.kind": kind.encode(),
        b"makerlab.exchange": exchange.encode(),
        b"makerlab.symbol": symbol.encode(),
        b"makerlab.depth": str(depth or "").encode(),
    })
    return meta


def _split_hours(table: pa.Table) -> Iterable[tuple[int, pa.Table]]:
    """(epoch hour, rows of that hour in their original order) for each hour present."""
    hours = table.column("exchange_ts").to_numpy() // HOUR_NS
    if hours.size and np.any(hours[1:] < hours[:-1]):
        order = np.argsort(hours, kind="stable")
        table, hours = table.take(order), hours[order]
    cuts = np.flatnonzero(np.diff(hours)) + 1
    starts = np.concatenate([[0], cuts]).astype(np.int64)
    stops = np.concatenate([cuts, [hours.size]]).astype(np.int64)
    for lo, hi in zip(starts, stops, strict=True):
        if hi > lo:
            yield int(hours[lo]), table.slice(lo, hi - lo)


def _sort_local(table: pa.Table) -> pa.Table:
    order = _sort_order(table.column("local_ts").to_numpy())
    return table if order is None else table.take(order)


def _sort_order(local_ts: np.ndarray) -> np.ndarray | None:
    """Stable order sorting ``local_ts``, or None when it is already sorted."""
    if local_ts.size < 2 or not np.any(local_ts[1:] < local_ts[:-1]):
        return None
    return np.argsort(local_ts, kind="stable")


def _warn_inner_duplicates(table: pa.Table, where: str) -> None:
    """Log when the data being written repeats rows exactly: only one of each is kept, so a
    source with genuinely identical records should give them distinct ids first."""
    import polars as pl

    frame = pl.from_arrow(table, rechunk=False)
    if isinstance(frame, pl.DataFrame):
        extra = frame.height - frame.n_unique()
        if extra:
            log.warning("%s: %d rows repeat earlier rows exactly and are stored once", where,
                        extra)


def _dedupe(table: pa.Table) -> pa.Table:
    """``table`` without exact duplicate rows, keeping first occurrences in order."""
    import polars as pl

    frame = pl.from_arrow(table, rechunk=False)
    if not isinstance(frame, pl.DataFrame) or not frame.is_duplicated().any():
        return table
    return frame.unique(maintain_order=True, keep="first").to_arrow().cast(table.schema)


def _row_group_size(table: pa.Table) -> int:
    row_bytes = max(1, table.nbytes // max(1, table.num_rows))
    return int(min(_MAX_ROW_GROUP, max(4096, _ROW_GROUP_BYTES // row_bytes)))


def _write_atomic(fs: pafs.FileSystem, path: str, table: pa.Table,
                  metadata: dict[bytes, bytes]) -> None:
    folder, name = path.rsplit("/", 1)
    fs.create_dir(folder, recursive=True)
    tmp = f"{folder}/.{name}.tmp-{uuid.uuid4().hex}"
    table = table.replace_schema_metadata(metadata)
    try:
        with fs.open_output_stream(tmp) as sink:
            pq.write_table(table, sink, compression="zstd",
                           row_group_size=_row_group_size(table))
        fs.move(tmp, path)
    except BaseException:
        _remove_quietly(fs, tmp)
        raise


def _remove_quietly(fs: pafs.FileSystem, path: str) -> None:
    with contextlib.suppress(OSError):
        fs.delete_file(path)


# --------------------------------------------------------------------------- reading


def _read_file(arc: _Root, path: str, expected: pa.Schema,
               columns: Sequence[str] | None) -> pa.Table:
    """One archive file, checked against ``expected``; DataError naming it if unreadable."""
    shown = arc.show(path)
    try:
        with arc.fs.open_input_file(path) as handle:
            parquet = pq.ParquetFile(handle)
            _check_version(parquet.schema_arrow.metadata, shown)
            table = parquet.read(columns=columns, use_threads=True)
    except (pa.ArrowException, OSError) as exc:
        if isinstance(exc, FileNotFoundError):
            raise
        raise DataError(f"unreadable Parquet file ({exc}); delete it and convert the "
                        "capture again", source=shown) from exc
    wanted = expected if columns is None else pa.schema([expected.field(c) for c in columns])
    metadata = table.schema.metadata
    return _conform(table, wanted, shown).replace_schema_metadata(metadata)


def _check_version(metadata: dict | None, source: str) -> None:
    version = (metadata or {}).get(b"makerlab.schema_version")
    if version is None:
        return
    if not version.isdigit() or int(version) > int(SCHEMA_VERSION):
        raise DataError(f"written with archive schema version {version.decode()!r}, newer "
                        f"than this makerlab's {SCHEMA_VERSION!r}; upgrade makerlab",
                        source=source)


def _hour_paths(arc: _Root, folder: str, lo: int | None, hi: int | None) -> list[str]:
    """Existing hour files under dataset ``folder`` overlapping [lo, hi) ns, in hour order."""
    selector = pafs.FileSelector(folder, recursive=True, allow_not_found=True)
    first = None if lo is None else lo // HOUR_NS
    last = None if hi is None else (hi - 1) // HOUR_NS
    found = []
    for info in arc.fs.get_file_info(selector):
        if info.type != pafs.FileType.File:
            continue
        hour = _parse_hour(info.path[len(folder) + 1:])
        if hour is None or (first is not None and hour < first):
            continue
        if last is None or hour <= last:
            found.append((hour, info.path))
    return [path for _, path in sorted(found)]


def _snapshot_depth(arc: _Root, exchange: str, symbol: str, depth: int | None) -> int:
    if depth is not None:
        return depth
    depths = _depths(arc, exchange, symbol)
    if len(depths) != 1:
        raise ConfigError(f"give depth= for book_snapshot of {exchange}/{symbol}; "
                          f"the archive has depths {depths or 'none'}")
    return depths[0]


def available_depths(root: str | os.PathLike, exchange: str, symbol: str, *,
                     filesystem: Any = None) -> list[int]:
    """Depths with a ``book_snapshot`` dataset for ``exchange``/``symbol``, ascending."""
    return _depths(_resolve(root, filesystem), exchange, symbol)


def _depths(arc: _Root, exchange: str, symbol: str) -> list[int]:
    folder = arc.path(f"kind={BOOK_SNAPSHOT}")
    selector = pafs.FileSelector(folder, allow_not_found=True)
    depths = []
    for info in arc.fs.get_file_info(selector):
        name = info.path.rsplit("/", 1)[-1]
        if info.type != pafs.FileType.Directory or not re.match(r"^depth=\d+$", name):
            continue
        depth = int(name.split("=")[1])
        own = arc.path(dataset_dir(BOOK_SNAPSHOT, exchange, symbol, depth))
        if arc.fs.get_file_info(own).type == pafs.FileType.Directory:
            depths.append(depth)
    return sorted(depths)


def archive_paths(
    root: str | os.PathLike,
    kind: str,
    exchange: str,
    symbol: str,
    start: TimeLike = None,
    end: TimeLike = None,
    *,
    depth: int | None = None,
    filesystem: Any = None,
) -> list[str]:
    """The existing hour files of one dataset that overlap [start, end], in time order.

    Paths are under ``root`` as given (the tutorial's ``only_paths=True``).
    """
    arc = _resolve(root, filesystem)
    if kind == BOOK_SNAPSHOT:
        depth = _snapshot_depth(arc, exchange, symbol, depth)
    folder = arc.path(dataset_dir(kind, exchange, symbol, depth))
    lo, hi = _bounds(start, end)
    return [arc.show(p) for p in _hour_paths(arc, folder, lo, hi)]


def read_table(
    root: str | os.PathLike,
    kind: str,
    exchange: str,
    symbol: str,
    start: TimeLike = None,
    end: TimeLike = None,
    *,
    depth: int | None = None,
    columns: Sequence[str] | None = None,
    filesystem: Any = None,
) -> pa.Table:
    """Rows of one dataset with ``start <= exchange_ts < end``, sorted by ``local_ts``.

    Only the hour files in range are opened. ``depth`` selects the ``book_snapshot``
    dataset (optional when there is only one). ``columns`` limits the columns read.

    Raises:
        DataError: a file is corrupt or truncated, does not match the schema, or was
            written by a newer makerlab (the message names the file).
    """
    _check_kind(kind)
    arc = _resolve(root, filesystem)
    if kind == BOOK_SNAPSHOT:
        depth = _snapshot_depth(arc, exchange, symbol, depth)
    table = _read_range(arc, kind, exchange, symbol, depth, start, end, columns)
    order = _sort_order(table.column("local_ts").to_numpy()) if table.num_rows else None
    if order is not None:
        table = table.take(order)
    if columns is not None:
        table = table.select(list(columns))
    return table.replace_schema_metadata(
        _metadata(None, kind, exchange, symbol, depth))


def _read_range(arc: _Root, kind: str, exchange: str, symbol: str, depth: int | None,
                start: TimeLike, end: TimeLike, columns: Sequence[str] | None) -> pa.Table:
    """Rows in range, files concatenated in hour order (not yet sorted by local_ts).

    ``exchange_ts`` and ``local_ts`` are always included, after the requested columns.
    """
    expected = schema_for(kind, depth)
    lo, hi = _bounds(start, end)
    wanted = _with_clocks(expected, columns)
    folder = arc.path(dataset_dir(kind, exchange, symbol, depth))
    parts = [_read_file(arc, p, expected, wanted).replace_schema_metadata(None)
             for p in _hour_paths(arc, folder, lo, hi)]
    schema = pa.schema([expected.field(c) for c in wanted])
    table = pa.concat_tables(parts) if parts else schema.empty_table()
    return _clip(table, lo, hi)


def _with_clocks(expected: pa.Schema, columns: Sequence[str] | None) -> list[str]:
    if columns is None:
        return list(expected.names)
    unknown = [c for c in columns if c not in expected.names]
    if unknown:
        raise ConfigError(f"unknown column {unknown[0]!r}; expected some of "
                          f"{', '.join(expected.names)}")
    clocks = [c for c in ("exchange_ts", "local_ts") if c not in columns]
    return [*columns, *clocks]


def _clip(table: pa.Table, lo: int | None, hi: int | None) -> pa.Table:
    """Rows with lo <= exchange_ts < hi; a no-op for hour-aligned bounds."""
    lo = None if lo is None or lo % HOUR_NS == 0 else lo
    hi = None if hi is None or hi % HOUR_NS == 0 else hi
    if (lo is None and hi is None) or table.num_rows == 0:
        return table
    ts = table.column("exchange_ts")
    keep = pc.greater_equal(ts, lo) if lo is not None else None
    if hi is not None:
        below = pc.less(ts, hi)
        keep = below if keep is None else pc.and_(keep, below)
    return table.filter(keep)


# --------------------------------------------------------------------------- listing


def list_archive(root: str | os.PathLike, *, filesystem: Any = None,
                 problems: list[str] | None = None):
    """One row per (kind, exchange, symbol, depth, date) in the archive.

    An unreadable file raises :class:`DataError`, unless ``problems`` is given: then its
    error message is appended there and the file is listed with 0 rows.

    Returns:
        ``pandas.DataFrame`` with columns kind, exchange, symbol, depth (0 unless
        ``book_snapshot``), date (``YYYY-MM-DD``), hours (sorted list of UTC hours),
        rows and bytes (on disk), sorted by the first five.
    """
    import pandas as pd

    arc = _resolve(root, filesystem)
    selector = pafs.FileSelector(arc.base, recursive=True, allow_not_found=True)
    groups: dict[tuple, list] = {}
    for info in arc.fs.get_file_info(selector):
        key = _listing_key(info, arc.base)
        if key is None:
            continue
        try:
            rows = _count_rows(arc, info.path)
        except DataError as error:
            if problems is None:
                raise
            problems.append(str(error))
            rows = 0
        entry = groups.setdefault(key[:5], [[], 0, 0])
        entry[0].append(key[5])
        entry[1] += rows
        entry[2] += info.size
    columns = ["kind", "exchange", "symbol", "depth", "date", "hours", "rows", "bytes"]
    records = [(*k, sorted(v[0]), v[1], v[2]) for k, v in sorted(groups.items())]
    return pd.DataFrame.from_records(records, columns=columns)


def _listing_key(info: pafs.FileInfo, base: str) -> tuple | None:
    if info.type != pafs.FileType.File:
        return None
    parts = info.path[len(base) + 1:].split("/")
    name = _HOUR_FILE.match(parts[-1])
    pairs = dict(p.split("=", 1) for p in parts[:-1] if "=" in p)
    if name is None or len(pairs) != len(parts) - 1 or pairs.get("kind") not in KINDS:
        return None
    if not {"exchange", "symbol", "date"} <= pairs.keys():
        return None
    depth = int(pairs.get("depth", 0) or 0)
    return (pairs["kind"], pairs["exchange"], pairs["symbol"], depth, pairs["date"],
            int(name.group(1)))


def _count_rows(arc: _Root, path: str) -> int:
    try:
        with arc.fs.open_input_file(path) as handle:
            return pq.ParquetFile(handle).metadata.num_rows
    except (pa.ArrowException, OSError) as exc:
        raise DataError(f"unreadable Parquet file ({exc})", source=arc.show(path)) from exc
