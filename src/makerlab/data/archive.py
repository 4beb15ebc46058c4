"""The tick-data archive: hive-partitioned Parquet, one file per UTC hour.

Layout (``HH`` is the UTC hour of ``exchange_ts``, ``00``..``23``)::

    root/kind=book_delta/exchange=binance/symbol=BTCUSDT/date=2024-08-08/23.parquet
    root/kind=trades/exchange=binance/symbol=BTCUSDT/date=2024-08-09/00.parquet
    root/kind=bbo/exchange=binance/symbol=BTCUSDT/date=2024-08-09/00.parquet
    root/kind=book_snapshot/depth=20/exchange=binance/symbol=BTCUSDT/date=2024-08-09/00.parquet
    root/_makerlab/...            the manifest (:mod:`makerlab.data.manifest`)

``book_snapshot`` has a ``depth=<N>`` level right under the kind, so that
``root/kind=book_snapshot/depth=20`` is one dataset whose files all share one schema (the
fixed-size list columns differ between depths). Every other directory level is
``key=value`` so DuckDB, Polars, pandas and ``pyarrow.dataset`` read the archive with hive
partitioning and no makerlab code. Columns and their meaning are in
:mod:`makerlab.data.schema`; each file also carries the key-value metadata
``makerlab.schema_version``, ``makerlab.kind``, ``makerlab.exchange``, ``makerlab.symbol``
and ``makerlab.depth`` (empty unless ``book_snapshot``).

Writes are all-or-nothing (:class:`ArchiveWriter`): every file is staged under a hidden
name and the whole set is committed through the manifest. Readers check what they open
against the manifest when the dataset has one, and skip (with a logged warning) paths that
do not follow the layout; ``makerlab validate`` reports those.

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

import io
import logging
import os
import re
import uuid
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from types import TracebackType
from typing import Any, TypeVar

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as pads
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from makerlab.data import manifest
from makerlab.data.layout import (
    EPOCH,
    HourPath,
    check_kind,
    classify,
    dataset_dir,
    day_of,
    hour_file,
    hour_files,
    hour_label,
)
from makerlab.data.manifest import META_DIR, Manifest
from makerlab.data.schema import BOOK_SNAPSHOT, SCHEMA_VERSION, schema_for, snapshot_depth
from makerlab.data.storage import Root, os_reason, resolve
from makerlab.errors import ConfigError, DataError

log = logging.getLogger(__name__)

__all__ = [
    "HOUR_NS",
    "ArchiveWriter",
    "TimeLike",
    "archive_paths",
    "check_hour",
    "check_writable",
    "list_archive",
    "read_hour_bytes",
    "read_table",
    "table_dataset",
    "write_table",
]

HOUR_NS = 3_600_000_000_000
"""Nanoseconds in one hour."""

TimeLike = datetime | np.datetime64 | str | int | None
"""A range bound: see the module docstring."""

_ROW_GROUP_BYTES = 64 << 20
_MAX_ROW_GROUP = 1 << 20
_META_PREFIX = "makerlab."
_PARQUET = pads.ParquetFileFormat()
_REMOTE_READERS = 16  # hour files read at once from an object store
_T = TypeVar("_T")
_R = TypeVar("_R")


# --------------------------------------------------------------------------- time bounds


def _to_ns(value: TimeLike, *, end: bool) -> int | None:
    """A range bound in ns; ``end`` bounds are exclusive (see the module docstring)."""
    if value is None:
        return None
    if isinstance(value, str):
        return _parse_str(value, end=end)
    if isinstance(value, datetime):
        aware = value if value.tzinfo is not None else value.replace(tzinfo=UTC)
        micros = (aware - EPOCH) // timedelta(microseconds=1)
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
        return (moment - EPOCH) // timedelta(microseconds=1) * 1000
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


def table_dataset(kind: str, exchange: str, symbol: str, table: pa.Table) -> str:
    """The dataset directory ``table`` of ``kind`` would be written to (checks the names,
    and for ``book_snapshot`` the depth, without writing anything)."""
    check_kind(kind)
    return dataset_dir(kind, exchange, symbol, _table_depth(kind, table))


# --------------------------------------------------------------------------- writing


class ArchiveWriter:
    """All-or-nothing writes into an archive: stage tables, then commit them together.

    ::

        with ArchiveWriter("data/archive", converter="recorder") as writer:
            writer.write("book_delta", "binance", "BTCUSDT", deltas)
            writer.write("trades", "binance", "BTCUSDT", trades)
        # committed when the block ends; an exception inside it aborts, changing nothing

    :meth:`write` splits a table by UTC hour and merges each hour with the file already
    there (or already staged by this writer); each resulting file is written under a hidden
    staged name. :meth:`commit` makes them all visible at once through the manifest
    (:mod:`makerlab.data.manifest` documents the steps and what a kill leaves behind).
    Before touching a dataset the writer completes any interrupted commit touching it,
    deletes leftover staged files there, and adopts the dataset's existing files into the
    manifest if it has none (an archive written before the manifest existed).

    An exception in :meth:`write` aborts the writer. Not safe for two writers on the same
    dataset at once; writers of different datasets do not interfere.
    """

    def __init__(self, root: str | os.PathLike, *, converter: str = "write_table",
                 filesystem: Any = None) -> None:
        self._arc = resolve(root, filesystem)
        self._manifest = Manifest(self._arc, converter=converter)
        self._adopted = Manifest(self._arc, converter="adopted")
        self._prepared: set[str] = set()
        self._created: list[str] = []
        self._open = True

    def __enter__(self) -> ArchiveWriter:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 traceback: TracebackType | None) -> None:
        if not self._open:
            return
        if error is None:
            self.commit()
        else:
            self.abort()

    def write(self, kind: str, exchange: str, symbol: str, table: pa.Table) -> list[str]:
        """Stage ``table`` of record ``kind`` for ``exchange``/``symbol``.

        The table must match :func:`makerlab.data.schema.schema_for` (``book_snapshot``
        takes its depth from the list size). Rows are split by UTC hour of ``exchange_ts``;
        an hour file that already exists is merged: rows concatenated, stably sorted by
        ``local_ts``, exact duplicate rows dropped (rows repeated *within* ``table`` are
        stored once too, with a logged warning). An hour whose merge adds nothing is left
        as it is.

        Returns:
            The hour files that hold the table's rows once committed, under ``root`` as
            given.
        """
        self._check_open()
        try:
            return self._write(kind, exchange, symbol, table)
        except BaseException:
            self.abort()
            raise

    def commit(self) -> None:
        """Make every staged file visible at once and record it in the manifest."""
        self._check_open()
        self._open = False
        try:
            self._adopted.commit()
            self._manifest.commit()
        except BaseException:
            if not self._manifest.journaled:
                self._discard()
            raise

    def abort(self) -> None:
        """Delete everything staged; the archive is left exactly as it was."""
        self._check_open()
        self._open = False
        self._discard()

    def _check_open(self) -> None:
        if not self._open:
            raise ConfigError("this ArchiveWriter has already committed or aborted; "
                              "open a new one")

    def _discard(self) -> None:
        self._manifest.abort()
        for folder in sorted(self._created, key=len, reverse=True):
            self._arc.remove_empty_dir(folder)

    def _write(self, kind: str, exchange: str, symbol: str, table: pa.Table) -> list[str]:
        dataset = table_dataset(kind, exchange, symbol, table)
        depth = _table_depth(kind, table)
        given = table.schema.metadata
        table = _conform(table, schema_for(kind, depth), f"{kind} table for {exchange}/{symbol}")
        self._prepare(dataset)
        metadata = _metadata(given, kind, exchange, symbol, depth)
        return [self._stage(f"{dataset}/{hour_file(hour)}", hour, part, metadata)
                for hour, part in _split_hours(table)]

    def _prepare(self, dataset: str) -> None:
        """Complete, clean up and adopt what an earlier writer left in ``dataset``."""
        if dataset in self._prepared:
            return
        self._prepared.add(dataset)
        pending, _ = manifest.read_pending(self._arc)
        for journal in pending:
            if journal.touches(dataset):
                log.warning("completing the interrupted write %s", journal.commit.describe())
                manifest.complete(self._arc, journal)
        live = {j.commit.id for j in pending} | {self._manifest.id, self._adopted.id}
        for path in manifest.clean_leftovers(self._arc, dataset, live):
            log.warning("%s: deleted, left by an interrupted write", path)
        if not manifest.shard_keys(self._arc, dataset):
            self._adopt(dataset)

    def _adopt(self, dataset: str) -> None:
        for where, info in hour_files(self._arc, self._arc.path(dataset)).values():
            shown = self._arc.show(info.path)
            try:
                data = self._arc.read_bytes(info.path)
                table = _parse_bytes(data, shown, ["exchange_ts"])
            except DataError as error:
                log.warning("%s; not adopted into the manifest", error)
                continue
            ets = table.column("exchange_ts").to_numpy()
            self._adopted.record(manifest.describe(where.rel, data, ets))

    def _stage(self, rel: str, hour: int, part: pa.Table, metadata: dict[bytes, bytes]) -> str:
        final = self._arc.path(rel)
        _warn_inner_duplicates(part, self._arc.show(final))
        table = part
        previous = self._previous(rel)
        if previous is not None:
            old = _read_file(self._arc, previous, part.schema, None, hour)
            old_metadata = _plain_metadata(old.schema.metadata)
            metadata = {**old_metadata, **metadata}
            table = pa.concat_tables([old.replace_schema_metadata(None), part])
            table = _dedupe(_sort_local(table))
            if table.num_rows == old.num_rows and metadata == old_metadata:
                return self._arc.show(final)
        else:
            table = _dedupe(_sort_local(table))
        data = _parquet_bytes(table, metadata)
        ets = table.column("exchange_ts").to_numpy()
        self._manifest.record(manifest.describe(rel, data, ets))
        staged = self._manifest.staged_path(rel)
        self._created.extend(_missing_dirs(self._arc, staged.rsplit("/", 1)[0]))
        self._arc.write_bytes(staged, data)
        return self._arc.show(final)

    def _previous(self, rel: str) -> str | None:
        """The file ``rel`` merges with: staged by this writer, or committed, or none."""
        if rel in self._manifest.files:
            return self._manifest.staged_path(rel)
        final = self._arc.path(rel)
        return final if self._arc.is_file(final) else None


def write_table(
    root: str | os.PathLike,
    kind: str,
    exchange: str,
    symbol: str,
    table: pa.Table,
    *,
    converter: str = "write_table",
    filesystem: Any = None,
) -> list[str]:
    """Write ``table`` of record ``kind`` into the archive, one file per UTC hour.

    One :class:`ArchiveWriter` commit: see :meth:`ArchiveWriter.write` for the merge
    rules. Either every hour file is written and recorded in the manifest (as written by
    ``converter``), or, on any error, nothing changes.

    Returns:
        The hour files holding the table's rows, under ``root`` as given.
    """
    with ArchiveWriter(root, converter=converter, filesystem=filesystem) as writer:
        return writer.write(kind, exchange, symbol, table)


def check_writable(root: str | os.PathLike, *, filesystem: Any = None) -> None:
    """Raise :class:`ConfigError` unless files can be created at the archive ``root``.

    Creates (and removes again) a probe file, and any directory it needs.
    """
    arc = resolve(root, filesystem)
    probe = arc.path(f"{META_DIR}/.probe.tmp-{uuid.uuid4().hex}")
    created = _missing_dirs(arc, probe.rsplit("/", 1)[0])
    try:
        arc.write_bytes(probe, b"")
        arc.delete(probe)
    except DataError as error:
        reason = os_reason(error.__cause__ or error)
        raise ConfigError(f"cannot write to the archive at {arc.shown}: {reason}; choose "
                          "another location or make it writable") from error
    finally:
        for folder in created:
            arc.remove_empty_dir(folder)


def _missing_dirs(arc: Root, folder: str) -> list[str]:
    """``folder`` and its ancestors that do not exist yet, deepest first."""
    missing = []
    while folder not in ("", "/") and arc.fs.get_file_info(folder).type == \
            pafs.FileType.NotFound:
        missing.append(folder)
        if "/" not in folder:
            break  # a bucket: nothing above it
        folder = folder.rsplit("/", 1)[0]
    return missing


def _plain_metadata(existing: dict | None) -> dict[bytes, bytes]:
    return {k: v for k, v in (existing or {}).items() if k != b"ARROW:schema"}


def _metadata(existing: dict | None, kind: str, exchange: str, symbol: str,
              depth: int | None) -> dict[bytes, bytes]:
    meta = _plain_metadata(existing)
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


def _parquet_bytes(table: pa.Table, metadata: dict[bytes, bytes]) -> bytes:
    table = table.replace_schema_metadata(metadata)
    sink = io.BytesIO()
    pq.write_table(table, sink, compression="zstd", row_group_size=_row_group_size(table))
    return sink.getvalue()


# --------------------------------------------------------------------------- reading


def _unreadable(shown: str, exc: BaseException) -> DataError:
    return DataError(f"unreadable Parquet file ({exc}); delete it and convert the capture "
                     "again", source=shown)


def _parse_bytes(data: bytes, shown: str, columns: Sequence[str] | None) -> pa.Table:
    """The table in Parquet ``data``; DataError naming ``shown`` if it cannot be read."""
    try:
        parquet = pq.ParquetFile(pa.BufferReader(data))
        _check_version(parquet.schema_arrow.metadata, shown)
        return parquet.read(columns=columns, use_threads=True)
    except (pa.ArrowException, OSError) as exc:
        raise _unreadable(shown, exc) from exc


def _read_file(arc: Root, path: str, expected: pa.Schema, columns: Sequence[str] | None,
               hour: int, size: int | None = None) -> pa.Table:
    """The hour file ``path``, checked against ``expected`` and its ``hour``; DataError
    naming it if unreadable, mismatched or holding rows of another hour. ``size``: its
    size from a listing, if known."""
    shown = arc.show(path)
    try:
        table = _read_parquet(arc, path, size, columns, shown)
    except (pa.ArrowException, OSError) as exc:
        raise _unreadable(shown, exc) from exc
    return _checked(table, expected, columns, shown, hour)


def _read_parquet(arc: Root, path: str, size: int | None, columns: Sequence[str] | None,
                  shown: str) -> pa.Table:
    """The Parquet file ``path`` (its schema version checked). On an object store, with
    ``size`` known, no metadata request is made: one read of the footer, then one
    coalesced read of the columns."""
    if arc.object_store and size is not None:
        fragment = _PARQUET.make_fragment(path, filesystem=arc.fs, file_size=size)
        _check_version(fragment.physical_schema.metadata, shown)
        return fragment.to_table(columns=columns, batch_size=_MAX_ROW_GROUP)
    with arc.fs.open_input_file(path) as handle:
        parquet = pq.ParquetFile(handle)
        _check_version(parquet.schema_arrow.metadata, shown)
        return parquet.read(columns=columns, use_threads=True)


def read_hour_bytes(data: bytes, where: HourPath, shown: str) -> pa.Table:
    """The table of the hour file ``where`` from its bytes: DataError naming ``shown`` if
    unreadable, too new or not matching the schema (its hour: :func:`check_hour`)."""
    table = _parse_bytes(data, shown, None)
    metadata = table.schema.metadata
    expected = schema_for(where.kind, where.depth)
    return _conform(table, expected, shown).replace_schema_metadata(metadata)


def _checked(table: pa.Table, expected: pa.Schema, columns: Sequence[str] | None,
             shown: str, hour: int) -> pa.Table:
    wanted = expected if columns is None else pa.schema([expected.field(c) for c in columns])
    metadata = table.schema.metadata
    table = _conform(table, wanted, shown)
    check_hour(table, hour, shown)
    return table.replace_schema_metadata(metadata)


def check_hour(table: pa.Table, hour: int, shown: str) -> None:
    """DataError unless every row's ``exchange_ts`` falls in the file's ``hour``."""
    if "exchange_ts" not in table.column_names or table.num_rows == 0:
        return
    hours = pc.divide(table.column("exchange_ts"), HOUR_NS)
    bounds = pc.min_max(hours)
    low, high = bounds["min"].as_py(), bounds["max"].as_py()
    if low == hour == high:
        return
    outside = pc.sum(pc.not_equal(hours, hour)).as_py()
    raise DataError(f"{outside} of {table.num_rows} rows have exchange_ts in "
                    f"{hour_label(low if low != hour else high)}, not in this file's hour "
                    f"{hour_label(hour)}: the file was copied or moved here from another "
                    "hour (see `makerlab validate`)", source=shown)


def _check_version(metadata: dict | None, source: str) -> None:
    version = (metadata or {}).get(b"makerlab.schema_version")
    if version is None:
        return
    if not version.isdigit() or int(version) > int(SCHEMA_VERSION):
        raise DataError(f"written with archive schema version {version.decode()!r}, newer "
                        f"than this makerlab's {SCHEMA_VERSION!r}; upgrade makerlab",
                        source=source)


def _within(hour: int | None, first: int | None, last: int | None) -> bool:
    return hour is not None and (first is None or hour >= first) and \
        (last is None or hour <= last)


def _entry_hour(rel: str) -> int | None:
    where = classify(rel)
    return where.hour if isinstance(where, HourPath) else None


def _hour_paths(arc: Root, dataset: str, lo: int | None,
                hi: int | None) -> list[tuple[int, pafs.FileInfo]]:
    """(hour, listing) of the hour files of ``dataset`` overlapping [lo, hi) ns, in hour
    order, checked against the manifest when the dataset has one."""
    first = None if lo is None else lo // HOUR_NS
    last = None if hi is None else (hi - 1) // HOUR_NS
    found = {rel: (where.hour, info)
             for rel, (where, info) in hour_files(arc, arc.path(dataset)).items()
             if _within(where.hour, first, last)}
    _check_pending(arc, dataset, first, last)
    committed = manifest.dataset_files(arc, dataset, day_of(first), day_of(last))
    if committed is not None:
        listed = {rel: entry for rel, entry in committed.items()
                  if _within(_entry_hour(rel), first, last)}
        _check_committed(arc, found, listed)
    return sorted(found.values(), key=lambda v: v[0])


def _check_pending(arc: Root, dataset: str, first: int | None, last: int | None) -> None:
    pending, _ = manifest.read_pending(arc)
    for journal in pending:
        hit = [e.path for e in journal.files if e.path.startswith(dataset + "/")
               and _within(_entry_hour(e.path), first, last)]
        if hit:
            raise DataError(f"the unfinished write {journal.commit.describe()} touches this "
                            "file: if no writer is running it was interrupted; `makerlab "
                            "validate --fix` or the next write to this dataset completes it",
                            source=arc.show(arc.path(hit[0])))


def _check_committed(arc: Root, found: dict[str, tuple[int, pafs.FileInfo]],
                     listed: dict[str, manifest.FileEntry]) -> None:
    """DataError at the first hour file that is missing, extra or resized."""
    missing = sorted(listed.keys() - found.keys())
    if missing:
        entry = listed[missing[0]]
        raise DataError(f"missing: the manifest lists it ({entry.rows} rows, commit "
                        f"{entry.commit}) but the file is gone; restore it or convert the "
                        "capture again (see `makerlab validate`)",
                        source=arc.show(arc.path(missing[0])))
    extra = sorted(found.keys() - listed.keys())
    if extra:
        raise DataError("not in the archive manifest: written by another tool or by a "
                        "write that never committed (see `makerlab validate`)",
                        source=arc.show(arc.path(extra[0])))
    for rel, (_, info) in sorted(found.items()):
        if info.size != listed[rel].bytes:
            raise DataError(f"{info.size} bytes, but the manifest recorded "
                            f"{listed[rel].bytes}: the file changed after it was committed "
                            "(see `makerlab validate`)", source=arc.show(info.path))


def _snapshot_depth(arc: Root, exchange: str, symbol: str, depth: int | None) -> int:
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
    return _depths(resolve(root, filesystem), exchange, symbol)


def _depths(arc: Root, exchange: str, symbol: str) -> list[int]:
    folder = arc.path(f"kind={BOOK_SNAPSHOT}")
    selector = pafs.FileSelector(folder, allow_not_found=True)
    depths = []
    for info in arc.fs.get_file_info(selector):
        name = info.path.rsplit("/", 1)[-1]
        if info.type != pafs.FileType.Directory or not re.match(r"^depth=[1-9]\d*$", name):
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

    Paths are under ``root`` as given (the tutorial's ``only_paths=True``). Checked against
    the manifest and skipping stray paths as :func:`read_table` does.
    """
    arc = resolve(root, filesystem)
    if kind == BOOK_SNAPSHOT:
        depth = _snapshot_depth(arc, exchange, symbol, depth)
    lo, hi = _bounds(start, end)
    dataset = dataset_dir(kind, exchange, symbol, depth)
    return [arc.show(info.path) for _, info in _hour_paths(arc, dataset, lo, hi)]


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
    Paths that do not follow the layout (a ``date=2024-13-45`` directory, a
    ``25.parquet``) are skipped with a logged warning.

    Raises:
        DataError: a file is corrupt or truncated, does not match the schema, holds rows of
            another hour, or was written by a newer makerlab; or, when the dataset has a
            manifest, an hour file in range is missing, not in it or changed since it was
            committed, or an unfinished write touches the range (the message names the
            file; ``makerlab validate`` reports every problem).
    """
    check_kind(kind)
    arc = resolve(root, filesystem)
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


def _read_range(arc: Root, kind: str, exchange: str, symbol: str, depth: int | None,
                start: TimeLike, end: TimeLike, columns: Sequence[str] | None) -> pa.Table:
    """Rows in range, files concatenated in hour order (not yet sorted by local_ts).

    ``exchange_ts`` and ``local_ts`` are always included, after the requested columns.
    """
    expected = schema_for(kind, depth)
    lo, hi = _bounds(start, end)
    wanted = _with_clocks(expected, columns)
    dataset = dataset_dir(kind, exchange, symbol, depth)

    def read(found: tuple[int, pafs.FileInfo]) -> pa.Table:
        hour, info = found
        part = _read_file(arc, info.path, expected, wanted, hour, info.size)
        return part.replace_schema_metadata(None)

    parts = _map_files(arc, read, _hour_paths(arc, dataset, lo, hi))
    schema = pa.schema([expected.field(c) for c in wanted])
    table = pa.concat_tables(parts) if parts else schema.empty_table()
    return _clip(table, lo, hi)


def _map_files(arc: Root, read: Callable[[_T], _R], files: Sequence[_T]) -> list[_R]:
    """``read`` of each of ``files``, in order; on an object store several at once, so that
    a range of many hour files costs a few round trips of latency, not one per file (the
    first failure in file order is raised)."""
    if not arc.object_store or len(files) < 2:
        return [read(found) for found in files]
    with ThreadPoolExecutor(min(_REMOTE_READERS, len(files))) as pool:
        return list(pool.map(read, files))


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


def list_archive(root: str | os.PathLike, *, filesystem: Any = None):
    """One row per (kind, exchange, symbol, depth, date) in the archive.

    Paths that do not follow the layout are skipped with a logged warning; an unreadable
    hour file raises :class:`DataError` naming it (``makerlab validate`` reports them all).

    Returns:
        ``pandas.DataFrame`` with columns kind, exchange, symbol, depth (0 unless
        ``book_snapshot``), date (``YYYY-MM-DD``), hours (sorted list of UTC hours),
        rows and bytes (on disk), sorted by the first five.
    """
    import pandas as pd

    arc = resolve(root, filesystem)
    found = hour_files(arc, arc.base)
    committed = _committed_entries(arc, {where.rel.rsplit("/", 1)[0] for where, _ in
                                         found.values()})
    groups: dict[tuple, list] = {}
    for where, info in found.values():
        key = (where.kind, where.exchange, where.symbol, where.depth or 0, where.date)
        entry = groups.setdefault(key, [[], 0, 0])
        entry[0].append(where.hour % 24)
        recorded = committed.get(where.rel)
        if recorded is not None and recorded.bytes == info.size:  # the manifest's count
            entry[1] += recorded.rows
        else:
            entry[1] += _count_rows(arc, info.path)
        entry[2] += info.size
    columns = ["kind", "exchange", "symbol", "depth", "date", "hours", "rows", "bytes"]
    records = [(*k, sorted(v[0]), v[1], v[2]) for k, v in sorted(groups.items())]
    return pd.DataFrame.from_records(records, columns=columns)


def _committed_entries(arc: Root, keys: set[str]) -> dict[str, manifest.FileEntry]:
    """The manifest's entries of the shards ``keys`` (dataset and ``date=`` directory) that
    exist and parse: what :func:`list_archive` needs to know without opening each file."""

    def entries(key: str) -> dict[str, manifest.FileEntry]:
        try:
            shard = manifest.read_shard(arc, key)
        except DataError:
            return {}  # a damaged shard: count that day's files one by one
        return dict(shard.files) if shard is not None else {}

    known = set(manifest.shard_keys_under(arc))
    found: dict[str, manifest.FileEntry] = {}
    for part in _map_files(arc, entries, sorted(keys & known)):
        found.update(part)
    return found


def _count_rows(arc: Root, path: str) -> int:
    try:
        with arc.fs.open_input_file(path) as handle:
            return pq.ParquetFile(handle).metadata.num_rows
    except (pa.ArrowException, OSError) as exc:
        raise DataError(f"unreadable Parquet file ({exc})", source=arc.show(path)) from exc
