"""Converter and direct reader for quantpylib's parquet tick archives.

quantpylib's ``Feed.run_archive_scheduler`` writes one file per feed and UTC hour::

    {root}/{exchange}/{feed_cls}/{feed_type}/{yyyy}/{mm}/{ticker}{_depthN}_{ddhh}.parquet

e.g. ``binance/perp/l2book/2024/08/BTCUSDT_depth20_0823.parquet`` and
``binance/spot/trades/2024/08/BTCUSDT_0823.parquet``. What its documentation fixes, and
what this module accepts where it does not:

- ``feed_type`` ``l2book``: columns ``ts, bp, bs, ap, as``, one book state per row: bid
  prices and sizes, ask prices and sizes, best first. The docs do not say whether the level
  columns hold lists or are flattened, so both are read: **list columns** (any Arrow list
  type, as pandas writes arrays or lists), or **flattened** scalar columns with one level
  per row, the rows of one state consecutive and sharing its ``ts`` (best level first; a
  shorter side padded with nulls). The file name's ``_depthN`` is the stored depth.
- ``feed_type`` ``trades``: columns ``ts, price, size, dir``, ``dir`` +1 taker buy, -1 taker
  sell.
- ``ts``: epoch milliseconds (int, or float as pandas writes nullable ints).
- ``yyyy``: the docs write ``{yy}`` but every example has four digits; both are read.
- Other files (the ad-hoc ``flush_archives`` dumps without an hour, ``*.parquet.N``
  partial files a scheduler has not squashed yet) are skipped.

Output, one :class:`~makerlab.data.convert.Converted` per (exchange, ticker): the exchange
id is the venue for ``perp`` (``binance``) and ``<venue>_<feed_cls>`` otherwise
(``binance_spot``), as :func:`makerlab.trading.feed.archive_exchange` names them;
``book_snapshot`` at the stored depth (at most ``depth``) and ``trades`` (``trade_id`` =
``<yyyymmddhh>:<row>``, as quantpylib keeps none). quantpylib stores one clock, so
``exchange_ts`` = ``local_ts`` = ``ts`` in ns, and each table's schema metadata
``makerlab.clock`` says so (as the LOBSTER converter does).

Checks (each a :class:`~makerlab.errors.DataError` naming the file and its 1-based row,
or with ``repair=True`` a counted repair): missing columns or unreadable files; a price
list and its size list of different lengths; more levels than the file's depth
(repair: cut); the book checks of :func:`makerlab.data.convert._csv.checked_book` (level
order, NaN or negative sizes, crossed books, unsorted ``ts``); trades with a non-finite or
implausible (:class:`~makerlab.data.validate.Plausibility`) price or size, a ``dir``
other than ±1 (repair: side 0), implausible or unsorted ``ts``.

:func:`hour_files`, :func:`snapshot_arrays` and :func:`trade_arrays` read such an archive
in place for the tutorial's ``Feed.load_lob_archives``/``load_trade_archives``.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from tqdm import tqdm

from makerlab.data import schema
from makerlab.data.arrays import SnapshotArrays, TradeArrays
from makerlab.data.convert import Converted, Repairs, reject
from makerlab.data.convert._csv import (
    Group,
    Rows,
    check_depth,
    checked_book,
    checked_trades,
    snapshot_table,
    trades_table,
)
from makerlab.data.validate import Plausibility, to_ns
from makerlab.errors import ConfigError, DataError
from makerlab.units import NS_PER_MS, NS_PER_US

__all__ = ["exchange_id", "hour_files", "is_archive", "read", "snapshot_arrays",
           "trade_arrays"]

FEED_TYPES = ("l2book", "trades")
CLASSES = ("perp", "spot", "futures", "options")
FILE = re.compile(
    r"(?:^|/)(?P<rel>(?P<venue>[^/]+)/(?P<cls>[^/]+)/(?P<type>l2book|trades)/"
    r"(?P<year>\d{4}|\d{2})/(?P<month>\d{2})/(?P<ticker>[^/]+?)(?:_depth(?P<depth>\d+))?_"
    r"(?P<day>\d{2})(?P<hour>\d{2})\.parquet)$")
BOOK_COLUMNS = {"bp": "bid_price", "bs": "bid_size", "ap": "ask_price", "as": "ask_size"}
TRADE_COLUMNS = ("ts", "price", "size", "dir")
CLOCK = {b"makerlab.clock": b"exchange: quantpylib archives keep one time per record (ts, ms)"}


# --------------------------------------------------------------------------- layout


class _File:
    """One archive file: its path, place in the layout and hour."""

    def __init__(self, path: Path, match: re.Match) -> None:
        self.path = path
        self.source = match["rel"]  # the path from the exchange folder on, for messages
        self.venue, self.cls, self.type = match["venue"], match["cls"], match["type"]
        self.ticker = match["ticker"]
        self.depth = int(match["depth"]) if match["depth"] else None
        year = int(match["year"]) + (2000 if len(match["year"]) == 2 else 0)
        try:
            self.hour = datetime(year, int(match["month"]), int(match["day"]),
                                 int(match["hour"]), tzinfo=UTC)
        except ValueError:
            raise DataError("not a valid date and hour in the path", source=self.source) from None
        if self.type == "l2book" and self.depth is None:
            raise DataError("an l2book file name needs its _depthN", source=self.source)

    @property
    def exchange(self) -> str:
        return exchange_id(self.venue, self.cls)


def _parse(path: Path) -> _File | None:
    match = FILE.search(path.as_posix())
    return _File(path, match) if match else None


def exchange_id(venue: str, feed_cls: str) -> str:
    """makerlab's exchange id of a quantpylib ``{exchange}/{feed_cls}`` folder."""
    return venue if feed_cls == "perp" else f"{venue}_{feed_cls}"


def _folder(exchange: str) -> tuple[str, str]:
    """``(venue, feed_cls)`` folders of a makerlab exchange id (the reverse of
    :func:`exchange_id`)."""
    for cls in CLASSES[1:]:
        if exchange.endswith(f"_{cls}"):
            return exchange.removesuffix(f"_{cls}"), cls
    return exchange, "perp"


def is_archive(root: str | os.PathLike, exchange: str) -> bool:
    """Whether ``root`` is a local quantpylib-layout archive holding ``exchange`` (and not
    a makerlab archive, whose top folders are ``kind=...``)."""
    if "://" in os.fspath(root) or not Path(root).is_dir():
        return False
    if any(Path(root).glob("kind=*")):
        return False
    base = Path(root).joinpath(*_folder(exchange))
    return any((base / feed_type).is_dir() for feed_type in FEED_TYPES)


def hour_files(root: str | os.PathLike, exchange: str, feed_type: str, ticker: str,
               start: str, end: str, depth: int | None = None) -> list[Path]:
    """The hour files of one feed from ``start`` to ``end`` (``'%Y-%m-%d:%H'``, both hours
    included), in hour order. For ``l2book``, the files of the smallest stored depth
    ``>= depth``.

    Raises:
        DataError: l2book files exist but none as deep as ``depth``.
    """
    lo, hi = (datetime.strptime(t, "%Y-%m-%d:%H").replace(tzinfo=UTC) for t in (start, end))
    folder = Path(root).joinpath(*_folder(exchange), feed_type)
    files = [f for f in map(_parse, sorted(folder.glob("*/*/*.parquet")))
             if f is not None and f.ticker == ticker and lo <= f.hour <= hi]
    if feed_type == "l2book" and files:
        files = _of_depth(files, depth or 1, folder)
    return [f.path for f in sorted(files, key=lambda f: f.hour)]


def _of_depth(files: list[_File], depth: int, folder: Path) -> list[_File]:
    stored = sorted({f.depth for f in files if f.depth is not None and f.depth >= depth})
    if not stored:
        have = sorted({f.depth for f in files if f.depth is not None})
        raise DataError(f"no l2book files of depth >= {depth} (depths {have})",
                        source=str(folder))
    return [f for f in files if f.depth == stored[0]]


# --------------------------------------------------------------------------- reading


def read(
    inputs: str | Path | Sequence[str | Path],
    *,
    exchange: str | None = None,
    symbol: str | None = None,
    depth: int = 20,
    repair: bool = False,
    progress: bool = True,
    plausibility: Plausibility | None = None,
) -> list[Converted]:
    """Read quantpylib archive files into one :class:`Converted` per exchange and ticker.

    Args:
        inputs: archive roots (searched for ``*/*/{l2book,trades}/*/*/*.parquet``) or files.
        exchange: exchange id to use instead of the folders' (see the module docstring).
        symbol: symbol to use instead of the ticker in the file names.
        depth: maximum levels per side of ``book_snapshot`` (the stored depth when smaller).
        repair: drop or repair bad rows (each counted in ``Converted.repairs``) instead of
            raising.
        progress: show a progress bar over the files.
        plausibility: bounds for timestamps, prices and sizes (the defaults of
            :class:`~makerlab.data.validate.Plausibility` when None).

    Raises:
        ConfigError: no quantpylib archive file among ``inputs``.
        DataError: a bad file or row (see the module docstring), naming file and row.
    """
    check_depth(depth)
    limits = plausibility or Plausibility()
    groups: dict[tuple[str, str], Group] = {}
    for f in tqdm(_inputs(inputs), unit="file", disable=not progress):
        repairs = Repairs() if repair else None
        tables = _read_file(f, depth, repairs, limits)
        key = (exchange or f.exchange, symbol or f.ticker)
        groups.setdefault(key, Group()).add(tables, repairs, origin=(f.exchange, f.ticker))
    return [group.converted(exc, name) for (exc, name), group in groups.items()]


def _inputs(inputs: str | Path | Sequence[str | Path]) -> list[_File]:
    items = [inputs] if isinstance(inputs, str | Path) else list(inputs)
    files: list[_File] = []
    for item in map(Path, items):
        if not item.exists():
            raise ConfigError(f"input {item} does not exist")
        paths = sorted(item.glob("*/*/*/*/*/*.parquet")) if item.is_dir() else [item]
        files += [f for f in map(_parse, paths) if f is not None]
    if not files:
        raise ConfigError(f"no quantpylib archive files ({{exchange}}/{{feed_cls}}/"
                          f"{{l2book|trades}}/{{yyyy}}/{{mm}}/*.parquet) in {items}")
    return files


def _read_file(f: _File, depth: int, repairs: Repairs | None,
               limits: Plausibility) -> dict[str, pa.Table]:
    if f.type == "l2book":
        rows = _book_rows(f, repairs, limits)
        table = snapshot_table(rows, min(depth, f.depth or depth))
        return {schema.BOOK_SNAPSHOT: table.replace_schema_metadata(CLOCK)}
    table = trades_table(_trade_rows(f, repairs, limits))
    return {schema.TRADES: table.replace_schema_metadata(CLOCK)}


def _load(f: _File, columns: Sequence[str]) -> pa.Table:
    try:
        table = pq.read_table(f.path)
    except (OSError, pa.ArrowInvalid) as error:
        raise DataError(f"not a readable parquet file: {error}", source=f.source) from None
    missing = [c for c in columns if c not in table.column_names]
    if missing:
        raise DataError(f"column {missing[0]!r} is missing (a quantpylib {f.type} file has "
                        f"columns {', '.join(columns)})", source=f.source)
    return table


def _ts_ns(table: pa.Table, f: _File) -> np.ndarray:
    column = table.column("ts")
    if not (pa.types.is_integer(column.type) or pa.types.is_floating(column.type)):
        raise DataError(f"ts must be epoch milliseconds (int or float), got {column.type}",
                        source=f.source)
    ms = column.to_numpy(zero_copy_only=False).astype(np.float64)
    bad = ~np.isfinite(ms)
    if bad.any():
        raise DataError("ts is missing or not finite", source=f.source,
                        line=int(np.flatnonzero(bad)[0]) + 1)
    if pa.types.is_integer(column.type):
        return to_ns(column.to_numpy(zero_copy_only=False).astype(np.int64), NS_PER_MS)
    # float ms: through whole microseconds, as ms * 1e6 in float64 would not be exact
    return to_ns(np.round(ms * 1000), NS_PER_US)


# --------------------------------------------------------------------------- books


def _book_rows(f: _File, repairs: Repairs | None, limits: Plausibility) -> Rows:
    """Checked book rows of an l2book file, levels padded to the file's depth."""
    table = _load(f, ["ts", *BOOK_COLUMNS])
    ts = _ts_ns(table, f)
    kinds = [table.column(name).type for name in BOOK_COLUMNS]
    if _is_list(kinds[0]):
        lines, cols = np.arange(1, len(ts) + 1), _list_levels(table, f)
    elif all(pa.types.is_integer(k) or pa.types.is_floating(k) for k in kinds):
        lines, ts, cols = _flat_levels(table, ts)
    else:
        raise DataError(f"level columns {', '.join(BOOK_COLUMNS)} must be lists of numbers "
                        f"or numbers, got {', '.join(map(str, kinds))}", source=f.source)
    rows = Rows(f.source, lines, {"exchange_ts": ts, "local_ts": ts, **cols})
    rows = _within_depth(rows, f.depth or 1, repairs)
    return checked_book(rows, repairs, limits)


def _is_list(kind: pa.DataType) -> bool:
    return pa.types.is_list(kind) or pa.types.is_large_list(kind) or \
        pa.types.is_fixed_size_list(kind)


def _list_levels(table: pa.Table, f: _File) -> dict[str, np.ndarray]:
    """Each list column as a NaN-padded ``(rows, levels)`` array; a price list and its size
    list must have the same length on every row."""
    out, lengths = {}, {}
    for name, target in BOOK_COLUMNS.items():
        column = table.column(name)
        if not _is_list(column.type):
            raise DataError(f"column {name!r} is {column.type}; the level columns must all be "
                            "lists or all scalars", source=f.source)
        out[target], lengths[name] = _padded(column.combine_chunks())
    for prices, sizes in (("bp", "bs"), ("ap", "as")):
        differ = np.flatnonzero(lengths[prices] != lengths[sizes])
        if differ.size:
            i = int(differ[0])
            raise DataError(f"{prices} has {lengths[prices][i]} levels but {sizes} has "
                            f"{lengths[sizes][i]}", source=f.source, line=i + 1)
    width = max(a.shape[1] for a in out.values())
    return {k: np.pad(a, ((0, 0), (0, width - a.shape[1])), constant_values=np.nan)
            for k, a in out.items()}


def _padded(column: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """A list array as a NaN-padded float ``(rows, max length)`` array and the lengths."""
    lengths = pc.list_value_length(column).fill_null(0).to_numpy(zero_copy_only=False)
    lengths = lengths.astype(np.int64)
    values = pc.list_flatten(column).cast(pa.float64()).to_numpy(zero_copy_only=False)
    out = np.full((len(lengths), int(lengths.max(initial=0))), np.nan)
    starts = np.repeat(np.cumsum(lengths) - lengths, lengths)
    out[np.repeat(np.arange(len(lengths)), lengths), np.arange(values.size) - starts] = values
    return out, lengths


def _flat_levels(table: pa.Table, ts: np.ndarray
                 ) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
    """Flattened files: consecutive rows sharing ``ts`` are one state, a level per row.
    Returns each state's first row (1-based), its ts and the ``(states, levels)`` arrays."""
    first = np.flatnonzero(np.r_[True, ts[1:] != ts[:-1]])
    state = np.cumsum(np.r_[True, ts[1:] != ts[:-1]]) - 1
    level = np.arange(len(ts)) - first[state]
    cols = {}
    for name, target in BOOK_COLUMNS.items():
        values = table.column(name).cast(pa.float64()).to_numpy(zero_copy_only=False)
        grid = np.full((len(first), int(level.max(initial=-1)) + 1), np.nan)
        grid[state, level] = values
        cols[target] = grid
    return first + 1, ts[first], cols


def _within_depth(rows: Rows, depth: int, repairs: Repairs | None) -> Rows:
    """Rows with at most ``depth`` levels per side (the file name's), padded to it."""
    width = rows.cols["bid_price"].shape[1]
    if width > depth:
        present = np.isfinite(rows.cols["bid_price"][:, depth:]).any(axis=1) | \
            np.isfinite(rows.cols["ask_price"][:, depth:]).any(axis=1)
        if present.any():
            line = int(rows.lines[np.flatnonzero(present)[0]])
            reject(repairs, "too_deep", f"more than the file's {depth} levels in a book state; "
                   "pass repair=True to cut them", f"{int(present.sum())} states cut to "
                   f"{depth} levels", source=rows.source, line=line)
    cols = dict(rows.cols)
    for name in BOOK_COLUMNS.values():
        levels = cols[name][:, :depth]
        cols[name] = np.pad(levels, ((0, 0), (0, depth - levels.shape[1])),
                            constant_values=np.nan)
    return Rows(rows.source, rows.lines, cols)


# --------------------------------------------------------------------------- trades


def _trade_rows(f: _File, repairs: Repairs | None, limits: Plausibility) -> Rows:
    table = _load(f, TRADE_COLUMNS)
    ts = _ts_ns(table, f)
    cols = {name: table.column(name).cast(pa.float64()).to_numpy(zero_copy_only=False)
            for name in ("price", "size", "dir")}
    rows = Rows(f.source, np.arange(1, len(ts) + 1), {"exchange_ts": ts, "local_ts": ts, **cols})
    rows = checked_trades(rows, repairs, limits)
    stamp = f"{f.hour:%Y%m%d%H}:"
    ids = np.char.add(stamp, rows.lines.astype(str))
    return rows.with_column("side", _sides(rows, repairs)).with_column("trade_id", ids)


def _sides(rows: Rows, repairs: Repairs | None) -> np.ndarray:
    """``dir`` as the aggressor side: +1/-1; anything else raises (repair: side 0)."""
    direction = rows.cols["dir"]
    ok = np.isin(direction, [1.0, -1.0])
    if not ok.all():
        i = int(np.flatnonzero(~ok)[0])
        reject(repairs, "bad_dir", f"dir {direction[i]} is not +1 or -1; pass repair=True to "
               "mark such trades side 0 (unknown)", f"{int((~ok).sum())} trades set to side 0",
               source=rows.source, line=int(rows.lines[i]))
    return np.where(ok, direction, 0).astype(np.int8)


# --------------------------------------------------------------------------- in place


def snapshot_arrays(files: Sequence[Path], depth: int) -> SnapshotArrays:
    """The book states of ``files`` (one feed's hour files, in order) as engine arrays,
    checked as :func:`read` checks them (no repair)."""
    parsed = [_checked_file(p, "l2book") for p in files]
    rows = [_book_rows(f, None, Plausibility()) for f in parsed]
    width = parsed[0].depth if parsed and parsed[0].depth else depth
    cols = {name: _stack([r.cols[name] for r in rows], (0, width))
            for name in BOOK_COLUMNS.values()}
    ts = _stack([r.cols["exchange_ts"] for r in rows], (0,), np.int64)
    return SnapshotArrays(exchange_ts=ts, local_ts=ts.copy(), **cols)


def trade_arrays(files: Sequence[Path]) -> TradeArrays:
    """The trades of ``files`` as engine arrays, checked as :func:`read` checks them."""
    rows = [_trade_rows(_checked_file(p, "trades"), None, Plausibility()) for p in files]
    ts = _stack([r.cols["exchange_ts"] for r in rows], (0,), np.int64)
    cols = {name: _stack([r.cols[name] for r in rows], (0,)) for name in ("price", "size")}
    side = _stack([r.cols["side"] for r in rows], (0,), np.int8)
    return TradeArrays(exchange_ts=ts, local_ts=ts.copy(), side=side, **cols)


def _checked_file(path: Path, feed_type: str) -> _File:
    f = _parse(Path(path))
    if f is None or f.type != feed_type:
        raise DataError(f"not a quantpylib {feed_type} hour file", source=str(path))
    return f


def _stack(parts: list[np.ndarray], empty: tuple[int, ...],
           dtype: type = np.float64) -> np.ndarray:
    return np.concatenate(parts).astype(dtype) if parts else np.empty(empty, dtype)
