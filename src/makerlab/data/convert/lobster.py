"""Converter for LOBSTER message and order book files (lobsterdata.com).

Input: pairs of headerless CSVs named ``<TICKER>_<DATE>_<start>_<end>_message_<N>.csv`` and
``..._orderbook_<N>.csv`` (optionally ``.subset`` before ``.csv``, optionally ``.gz``).

- message file: ``time`` (seconds after midnight, New York wall-clock time, up to ns
  digits), ``type`` (1 submission, 2 partial cancel, 3 deletion, 4 visible execution,
  5 hidden execution, 6 cross trade, 7 trading halt), ``order id``, ``size``, ``price``
  (dollars x 10000), ``direction`` (-1 sell limit order, +1 buy limit order).
- order book file: the book *after* each message, ``N`` levels of ``ask price, ask size,
  bid price, bid size`` (prices x 10000). Empty levels hold dummy prices
  (``±9999999999``) with size 0; they become NaN.

Output, one :class:`Converted` per ticker (exchange ``nasdaq``; one clock, so
``exchange_ts`` = ``local_ts`` = the message time in UTC ns, and each table's schema
metadata ``makerlab.clock`` says so):

- ``book_snapshot``: the order book file (at most ``depth`` levels), ``seq`` = message line.
- ``bbo``: level 1, one row per message that changed it.
- ``trades``: executions (types 4 and 5; cross trades and halts are counted in ``stats``).
  The aggressor is the opposite of the resting order: ``side = -direction``. ``trade_id``
  is the resting order's id (``0:<message line>`` for unidentified hidden orders, id 0).
- ``book_delta``: per-message level changes derived from consecutive order book rows, so
  LOBSTER's message stream stays a delta stream: the first row is a ``FLAG_SNAPSHOT``, then
  each message emits the visible levels it changed (``size`` 0 when a level left the
  ``N``-level window or was emptied). Replaying the deltas reproduces every order book row.

Times: ``time`` is added to midnight of the file's date in New York, using the UTC offset
in force at noon that day (exact for any time after 03:00, i.e. always for market hours,
even on daylight-saving change days).
"""

from __future__ import annotations

import gzip
import re
from collections import Counter
from collections.abc import Sequence
from datetime import UTC, date, datetime, time
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
import polars as pl
import pyarrow as pa
from tqdm import tqdm

from makerlab.data import schema
from makerlab.data.convert import Converted, Repairs, reject
from makerlab.data.convert._csv import (
    Group,
    Rows,
    bbo_table,
    check_depth,
    checked_book,
    column,
    expand_inputs,
    read_csv_checked,
    snapshot_table,
    sort_rows,
    stack,
    trades_table,
)
from makerlab.data.validate import check_finite
from makerlab.errors import ConfigError, DataError
from makerlab.units import NS_PER_S

__all__ = ["read", "utc_ns"]

EXCHANGE = "nasdaq"
NEW_YORK = ZoneInfo("America/New_York")
FILE_NAME = re.compile(
    r"(?P<ticker>.+?)_(?P<date>\d{4}-\d{2}-\d{2})_(?P<start>\d+)_(?P<end>\d+)_"
    r"(?P<kind>message|orderbook)_(?P<levels>\d+)(?P<subset>\.subset)?\.csv(?:\.gz)?"
)
MESSAGE_COLUMNS = ["time", "type", "order_id", "size", "price", "direction"]
BOOK_FIELDS = ("ask_price", "ask_size", "bid_price", "bid_size")
PRICE_SCALE = 10_000
DUMMY_PRICE = 9_999_999_999
EXECUTIONS = {4: "executions_visible", 5: "executions_hidden"}
OTHER_COUNTS = {6: "cross_trades", 7: "halts"}
CLOCK = {b"makerlab.clock": b"exchange: LOBSTER has one clock, the NASDAQ message time"}


def read(
    inputs: str | Path | Sequence[str | Path],
    *,
    exchange: str | None = None,
    symbol: str | None = None,
    depth: int = 20,
    repair: bool = False,
    progress: bool = True,
) -> list[Converted]:
    """Parse LOBSTER message/order book file pairs into one :class:`Converted` per ticker.

    Args:
        inputs: message and order book files (both of each pair) or directories.
        exchange: exchange id to use instead of ``nasdaq``.
        symbol: symbol to use instead of the ticker in the file names.
        depth: maximum levels per side of the ``book_snapshot`` table (the file's ``N``
            levels are kept when ``N <= depth``).
        repair: drop malformed, non-finite and crossed rows and sort unsorted ones (each
            counted in ``Converted.repairs``) instead of raising.
        progress: show a progress bar over the file pairs.

    Raises:
        ConfigError: a file name that is not LOBSTER's, or a file without its partner.
        DataError: message and order book files of different lengths; a malformed row,
            an unknown event type or direction, decreasing times, a NaN price or a
            crossed book, naming the file and line (unless ``repair``).
    """
    check_depth(depth)
    groups: dict[str, Group] = {}
    for key, (message, book) in tqdm(pair_files(expand_inputs(inputs, "*.csv*")).items(),
                                     unit="pair", disable=not progress):
        repairs = Repairs() if repair else None
        tables, stats = _read_pair(message, book, key, depth, repairs)
        groups.setdefault(symbol or key[0], Group()).add(tables, repairs, stats,
                                                         origin=key[0])
    return [group.converted(exchange or EXCHANGE, name) for name, group in groups.items()]


def pair_files(paths: list[Path]) -> dict[tuple[str, str, int], tuple[Path, Path]]:
    """``(ticker, date, levels)`` → ``(message file, order book file)`` of each pair."""
    found: dict[tuple, dict[str, Path]] = {}
    for path in paths:
        match = FILE_NAME.fullmatch(path.name)
        if match is None:
            raise ConfigError(f"{path.name} is not a LOBSTER file name "
                              "(<TICKER>_<DATE>_<start>_<end>_message|orderbook_<N>.csv)")
        key = (match["ticker"], match["date"], int(match["levels"]), match["start"],
               match["end"], match["subset"])
        found.setdefault(key, {})[match["kind"]] = path
    pairs = {}
    for key, files in found.items():
        if len(files) != 2:
            (path,) = files.values()
            raise ConfigError(f"{path.name} has no matching "
                              f"{'orderbook' if 'message' in files else 'message'} file")
        pairs[key[:3]] = (files["message"], files["orderbook"])
    return pairs


def utc_ns(day: date | str, seconds: np.ndarray) -> np.ndarray:
    """Seconds after midnight New York time on ``day`` → int64 UTC ns since the epoch."""
    day = date.fromisoformat(day) if isinstance(day, str) else day
    offset = datetime.combine(day, time(12), tzinfo=NEW_YORK).utcoffset()
    midnight = datetime.combine(day, time(0), tzinfo=UTC) - offset
    start = int(midnight.timestamp()) * NS_PER_S
    return start + np.round(np.asarray(seconds, dtype=np.float64) * NS_PER_S).astype(np.int64)


def count_lines(path: Path) -> int:
    """Number of lines (a last line without newline counts) of a possibly gzipped file."""
    opener = gzip.open if path.name.endswith(".gz") else open
    count, last = 0, b"\n"
    try:
        with opener(path, "rb") as f:
            while chunk := f.read(1 << 22):
                count += chunk.count(b"\n")
                last = chunk[-1:]
    except (OSError, EOFError) as e:
        raise DataError(f"cannot read the file: {e}", source=path.name) from e
    return count + (last != b"\n")


def _read_pair(message: Path, book: Path, key: tuple[str, str, int], depth: int,
               repairs: Repairs | None) -> tuple[dict[str, pa.Table], dict[str, int]]:
    """All tables of one message/order book pair, and its event counters."""
    _, day, levels = key
    lengths = count_lines(message), count_lines(book)
    if lengths[0] != lengths[1]:
        raise DataError(f"{lengths[0]} messages but {book.name} has {lengths[1]} rows; the "
                        "files must have one order book row per message", source=message.name)
    rows = _read_rows(message, book, levels, repairs)
    rows = _checked_messages(rows, repairs)
    rows = rows.with_column("local_ts", utc_ns(day, rows.cols["time"]))
    rows = sort_rows(rows.with_column("exchange_ts", rows.cols["local_ts"]), repairs)
    rows = rows.with_column("seq", rows.lines.astype(np.int64))
    books = checked_book(rows, repairs)
    tables = {
        schema.BOOK_SNAPSHOT: snapshot_table(books, depth),
        schema.BBO: bbo_table(books.take(level1_changes(books))),
        schema.TRADES: trades_table(executions(rows)),
        schema.BOOK_DELTA: derive_deltas(books),
    }
    tables = {kind: table.replace_schema_metadata(CLOCK) for kind, table in tables.items()}
    return tables, _counts(rows)


def _read_rows(message: Path, book: Path, levels: int, repairs: Repairs | None) -> Rows:
    """Message and order book columns side by side, on the lines both files parsed."""
    types = {name: pa.float64() for name in MESSAGE_COLUMNS}
    types.update(type=pa.int64(), order_id=pa.int64(), direction=pa.int64())
    messages, message_lines = read_csv_checked(message, MESSAGE_COLUMNS, types, header=False,
                                               repairs=repairs)
    names = [f"{name}_{i}" for i in range(1, levels + 1) for name in BOOK_FIELDS]
    books, book_lines = read_csv_checked(book, names, dict.fromkeys(names, pa.float64()),
                                         header=False, repairs=repairs)
    lines = np.intersect1d(message_lines, book_lines)
    messages = messages.filter(pa.array(np.isin(message_lines, lines)))
    books = books.filter(pa.array(np.isin(book_lines, lines)))
    cols = {name: column(messages, name) for name in MESSAGE_COLUMNS}
    cols["price"] = cols["price"] / PRICE_SCALE
    for name in BOOK_FIELDS:
        cols[name] = stack(books, [f"{name}_{i}" for i in range(1, levels + 1)])
    _blank_dummies(cols)
    return Rows(message.name, lines, cols)


def _blank_dummies(cols: dict[str, np.ndarray]) -> None:
    """Dummy prices of empty levels → NaN price and size; prices to dollars."""
    for side in ("ask", "bid"):
        prices, sizes = cols[f"{side}_price"], cols[f"{side}_size"]
        with np.errstate(invalid="ignore"):
            empty = np.abs(prices) >= DUMMY_PRICE
        prices[empty] = np.nan
        sizes[empty] = np.nan
        cols[f"{side}_price"] = prices / PRICE_SCALE


def _checked_messages(rows: Rows, repairs: Repairs | None) -> Rows:
    """Rows whose message has a finite time, price and size, a known type and direction."""
    keep = check_finite({name: rows.cols[name] for name in ("time", "price", "size")},
                        source=rows.source, lines=rows.lines, repairs=repairs)
    rows = rows.take(keep)
    known = np.isin(rows.cols["type"], [1, 2, 3, 4, 5, 6, 7])
    known &= np.isin(rows.cols["direction"], [-1, 1])
    if known.all():
        return rows
    i = int(np.flatnonzero(~known)[0])
    detail = (f"event type {rows.cols['type'][i]} / direction {rows.cols['direction'][i]} "
              "not in 1..7 / ±1")
    line = int(rows.lines[i])
    reject(repairs, "bad_message", f"{detail}; pass repair=True to drop such messages",
           f"{int((~known).sum())} messages dropped (first: {detail})",
           source=rows.source, line=line)
    return rows.take(known)


def _counts(rows: Rows) -> dict[str, int]:
    types = Counter(rows.cols["type"].tolist())
    counts = {"messages": len(rows)}
    counts.update({name: types[code] for code, name in {**EXECUTIONS, **OTHER_COUNTS}.items()})
    return counts


def executions(rows: Rows) -> Rows:
    """Trade rows of the executions (types 4, 5): aggressor ``side = -direction``.

    ``trade_id`` is the resting order's id, or ``0:<message line>`` for order id 0 (hidden
    orders LOBSTER does not identify), so distinct hidden prints never look identical.
    """
    fills = rows.take(np.isin(rows.cols["type"], list(EXECUTIONS)))
    fills = fills.with_column("side", (-fills.cols["direction"]).astype(np.int8))
    ids = fills.cols["order_id"].astype(np.int64)
    unnamed = np.char.add("0:", fills.lines.astype(str))
    return fills.with_column("trade_id", np.where(ids == 0, unnamed, ids.astype(str)))


def level1_changes(rows: Rows) -> np.ndarray:
    """Mask of rows whose best bid or ask (price or size) differs from the previous row's."""
    changed = np.zeros(len(rows), dtype=bool)
    changed[:1] = True
    for name in ("bid_price", "bid_size", "ask_price", "ask_size"):
        values = rows.cols[name][:, 0]
        same = (values[1:] == values[:-1]) | (np.isnan(values[1:]) & np.isnan(values[:-1]))
        changed[1:] |= ~same
    return changed


def derive_deltas(rows: Rows) -> pa.Table:
    """``book_delta`` rows turning each order book row into the next (see module docs)."""
    parts = [_side_deltas(rows, side, code) for side, code in (("bid", 1), ("ask", -1))]
    frame = pl.concat(parts).sort(["row", "side", "price"], descending=[False, True, False])
    index = frame["row"].to_numpy()
    ts = rows.cols["local_ts"][index]
    count = len(index)
    return pa.table(
        [
            pa.array(ts, pa.int64()),
            pa.array(ts, pa.int64()),
            pa.array(rows.cols["seq"][index], pa.int64()),
            pa.array(np.full(count, schema.NO_SEQ, dtype=np.int64)),
            pa.array(np.full(count, schema.NO_SEQ, dtype=np.int64)),
            pa.array(frame["side"].to_numpy(), pa.int8()),
            pa.array(frame["price"].to_numpy(), pa.float64()),
            pa.array(frame["size"].to_numpy(), pa.float64()),
            pa.array(np.where(index == 0, schema.FLAG_SNAPSHOT, 0).astype(np.uint8)),
        ],
        schema=schema.BOOK_DELTA_SCHEMA,
    )


def _side_deltas(rows: Rows, side: str, code: int) -> pl.DataFrame:
    """Changed levels of one side between consecutive rows (row 0: all its levels)."""
    prices, sizes = rows.cols[f"{side}_price"], rows.cols[f"{side}_size"]
    row = np.repeat(np.arange(len(rows)), prices.shape[1])
    present = np.isfinite(prices.ravel())
    now = pl.DataFrame({"row": row[present], "price": prices.ravel()[present],
                        "size": sizes.ravel()[present]})
    before = now.select(pl.col("row") + 1, "price", pl.col("size").alias("before"))
    frame = now.join(before.filter(pl.col("row") < len(rows)), on=["row", "price"],
                     how="full", coalesce=True)
    changed = pl.col("before").is_null() | (pl.col("size") != pl.col("before"))
    return frame.with_columns(pl.col("size").fill_null(0.0)).filter(changed).select(
        pl.col("row"), pl.lit(code, pl.Int8).alias("side"), "price", "size")
