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
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import polars as pl
import pyarrow as pa
from tqdm import tqdm

from makerlab.data import schema
from makerlab.data.convert import Converted, Repairs, reject
from makerlab.data.convert._csv import (
    READ_ERRORS,
    Group,
    Rows,
    bbo_table,
    check_depth,
    checked_book,
    column,
    expand_inputs,
    read_csv_checked,
    snapshot_table,
    stack,
    trades_table,
    unreadable,
)
from makerlab.data.validate import (
    Plausibility,
    check_finite,
    check_sequence_times,
    check_times,
    check_values,
    reject_rows,
    to_ns,
)
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
    plausibility: Plausibility | None = None,
) -> list[Converted]:
    """Parse LOBSTER message/order book file pairs into one :class:`Converted` per ticker.

    Args:
        inputs: message and order book files (both of each pair) or directories.
        exchange: exchange id to use instead of ``nasdaq``.
        symbol: symbol to use instead of the ticker in the file names.
        depth: maximum levels per side of the ``book_snapshot`` table (the file's ``N``
            levels are kept when ``N <= depth``).
        repair: drop malformed, implausible, crossed and misaligned rows and clamp
            slightly decreasing times (each counted in ``Converted.repairs``) instead of
            raising.
        progress: show a progress bar over the file pairs.
        plausibility: the bounds every row must respect (timestamps, prices, sizes; the
            defaults of :class:`~makerlab.data.validate.Plausibility` when None).

    Raises:
        ConfigError: a file name that is not LOBSTER's, or a file without its partner.
        DataError: message and order book files of different lengths; a malformed row,
            an unknown event type or direction, a time outside the file's range or
            decreasing, an implausible price or size, a crossed book, an order book row
            that does not follow from its message, naming the file and line (unless
            ``repair``; see docs/convert.md).
    """
    check_depth(depth)
    limits = plausibility or Plausibility()
    groups: dict[str, Group] = {}
    for key, (message, book) in tqdm(pair_files(expand_inputs(inputs, "*.csv*")).items(),
                                     unit="pair", disable=not progress):
        repairs = Repairs() if repair else None
        tables, stats = _read_pair(message, book, key, depth, repairs, limits)
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
    assert offset is not None  # an aware datetime has an offset
    midnight = datetime.combine(day, time(0), tzinfo=UTC) - offset
    start = int(midnight.timestamp()) * NS_PER_S
    return start + to_ns(np.round(np.asarray(seconds, dtype=np.float64) * NS_PER_S), 1)


def count_lines(path: Path) -> int:
    """Number of lines (a last line without newline counts) of a possibly gzipped file."""
    opener = gzip.open if path.name.endswith(".gz") else open
    count, last = 0, b"\n"
    try:
        with opener(path, "rb") as f:
            while chunk := f.read(1 << 22):
                count += chunk.count(b"\n")
                last = chunk[-1:]
    except READ_ERRORS as e:
        raise unreadable(path, e) from e
    return count + (last != b"\n")


def _read_pair(message: Path, book: Path, key: tuple[str, str, int], depth: int,
               repairs: Repairs | None,
               limits: Plausibility) -> tuple[dict[str, pa.Table], dict[str, int]]:
    """All tables of one message/order book pair, and its event counters."""
    _, day, levels = key
    lengths = count_lines(message), count_lines(book)
    if lengths[0] != lengths[1]:
        raise DataError(f"{lengths[0]} messages but {book.name} has {lengths[1]} rows; the "
                        "files must have one order book row per message",
                        source=message.name, line=min(lengths) + 1)
    rows = _read_rows(message, book, levels, repairs)
    rows = _checked_messages(rows, repairs, limits, _time_range(message))
    rows = _checked_times(rows.with_column("local_ts", utc_ns(day, rows.cols["time"])),
                          repairs, limits)
    rows = rows.with_column("seq", rows.lines.astype(np.int64))
    books = checked_book(rows, repairs, limits)
    books, rows = aligned(books, rows, repairs, book.name)
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
    """LOBSTER's empty levels (ask 9999999999 / bid -9999999999, size 0) → NaN price and
    size; prices to dollars. Any other price stays, to be judged as a price."""
    for side, dummy in (("ask", DUMMY_PRICE), ("bid", -DUMMY_PRICE)):
        prices, sizes = cols[f"{side}_price"], cols[f"{side}_size"]
        empty = (prices == dummy) & (sizes == 0)
        prices[empty] = np.nan
        sizes[empty] = np.nan
        cols[f"{side}_price"] = prices / PRICE_SCALE


def _time_range(message: Path) -> tuple[float, float]:
    """The file's time range (seconds after midnight) from its name."""
    match = FILE_NAME.fullmatch(message.name)
    if match is None:
        raise DataError(f"not a LOBSTER message file name: {message.name}", source=str(message))
    return float(match["start"]), float(match["end"])


def _checked_messages(rows: Rows, repairs: Repairs | None, limits: Plausibility,
                      span: tuple[float, float]) -> Rows:
    """Rows whose message has a finite time inside the file's ``span``, a known type and
    direction, and (but for halts, type 7) a plausible price and size."""
    where: dict[str, Any] = {"source": rows.source, "repairs": repairs}
    keep = check_finite({name: rows.cols[name] for name in ("time", "price", "size")},
                        lines=rows.lines, **where)
    rows = _known_events(rows.take(keep), repairs)
    start, end = span
    time = rows.cols["time"]
    rows = rows.take(reject_rows(
        (time < start) | (time > end), "implausible_time",
        lambda i: f"time {time[i]} s after midnight is outside the file's range "
                  f"{start:g}..{end:g}", "messages outside the file's time range",
        lines=rows.lines, **where))
    halt = rows.cols["type"] == 7  # its price is a halt indicator (-1, 0, 1), its size 0
    values = {name: np.where(halt, np.nan, rows.cols[name]) for name in ("price", "size")}
    return rows.take(check_values({"price": values["price"]}, {"size": values["size"]},
                                  lines=rows.lines, limits=limits, **where))


def _known_events(rows: Rows, repairs: Repairs | None) -> Rows:
    """Rows whose event type is in 1..7 and direction ±1."""
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


def _checked_times(rows: Rows, repairs: Repairs | None, limits: Plausibility) -> Rows:
    """Rows with plausible times in file order: LOBSTER has one clock and its message
    order is the truth, so a slightly decreasing time is clamped, never sorted."""
    where: dict[str, Any] = {"source": rows.source, "repairs": repairs}
    local = rows.cols["local_ts"]
    rows = rows.take(check_times(local, local, lines=rows.lines, limits=limits, **where))
    local = check_sequence_times(rows.cols["local_ts"], lines=rows.lines,
                                 max_backstep=limits.max_backstep_ns, **where)
    return rows.with_column("local_ts", local).with_column("exchange_ts", local)


def aligned(books: Rows, rows: Rows, repairs: Repairs | None,
            source: str) -> tuple[Rows, Rows]:
    """Book rows and message rows without order book rows that do not follow from their
    message (:func:`transition_faults`).

    The first raises :class:`DataError` naming the order book file (``source``) and line.
    With ``repairs`` both book rows around each failing transition (either may be the
    corrupt one) and that message's trade are dropped (``misaligned``); but more than two
    failing transitions in a row are a misaligned file (order book rows shifted against
    the messages, or not theirs), which raises even when repairing.
    """
    fault = transition_faults(books)
    if not fault.any():
        return books, rows
    i = int(np.flatnonzero(fault)[0])
    cols = books.cols
    detail = (f"the order book row does not follow from the previous one by its message "
              f"(type {cols['type'][i]}, price {cols['price'][i]}, size {cols['size'][i]}, "
              f"direction {cols['direction'][i]})")
    edges = np.diff(np.r_[0, fault.astype(np.int8), 0])
    run = int((np.flatnonzero(edges == -1) - np.flatnonzero(edges == 1)).max())
    if run > 2:
        raise DataError(f"{detail}, and so do the next {run - 1}: the order book rows are "
                        "shifted against the messages or not theirs", source=source,
                        line=int(books.lines[i]))
    reject(repairs, "misaligned", f"{detail}; pass repair=True to drop such rows",
           f"{int(fault.sum())} order book rows not following from their message dropped "
           "with the row before and the message's trade", source=source,
           line=int(books.lines[i]))
    drop = fault | np.r_[fault[1:], False]
    return books.take(~drop), rows.take(~np.isin(rows.lines, books.lines[fault]))


def transition_faults(rows: Rows) -> np.ndarray:
    """Per book row: does it differ from the previous row in a way its message cannot
    explain? (False for the first row and after a dropped line.)

    A message changes one price level of its side: a submission (1) adds its size, a
    cancellation (2), deletion (3) or visible execution (4) takes it away; hidden
    executions (5), cross trades (6) and halts (7) change nothing visible. Only the
    ``N``-level window is recorded, so a price counts where it is visible in both rows
    (the side has fewer than ``N`` levels, or the price is at or inside its worst one);
    there, the message's level must change by exactly its size, and every other level of
    both sides must keep its size.
    """
    fault = np.zeros(len(rows), dtype=bool)
    if len(rows) < 2:
        return fault
    cols = {name: values[1:] for name, values in rows.cols.items()}
    effect = np.select([cols["type"] == 1, np.isin(cols["type"], [2, 3, 4])],
                       [cols["size"], -cols["size"]], 0.0)
    for side, code in (("bid", 1), ("ask", -1)):
        prices, sizes = rows.cols[f"{side}_price"], rows.cols[f"{side}_size"]
        own = cols["direction"] == code
        fault[1:] |= _side_faults((prices[:-1], sizes[:-1]), (prices[1:], sizes[1:]),
                                  np.where(own, cols["price"], np.nan), effect * own, code)
    fault[1:] &= rows.lines[1:] == rows.lines[:-1] + 1
    return fault


def _side_faults(before: tuple, after: tuple, price: np.ndarray, effect: np.ndarray,
                 code: int) -> np.ndarray:
    """Transitions of one side's ``(prices, sizes)`` rows that the message (at ``price``,
    NaN when on the other side, changing its level by ``effect``) does not explain."""
    shown = _visible(before[0], price, code), _visible(after[0], price, code)
    change = _size_at(after, price) - _size_at(before, price)
    fault = (shown[0] != shown[1]) | (shown[0] & (change != effect))
    for this, other in ((after, before), (before, after)):
        for j in range(this[0].shape[1]):
            level = this[0][:, j]
            kept = _visible(other[0], level, code) & np.isfinite(level) & (level != price)
            fault |= kept & (_size_at(other, level) != this[1][:, j])
    return fault


def _visible(prices: np.ndarray, price: np.ndarray, code: int) -> np.ndarray:
    """Is ``price`` inside the recorded window of each book row (one side, best first)?"""
    full = np.isfinite(prices).all(axis=1)
    with np.errstate(invalid="ignore"):
        inside = price >= prices[:, -1] if code == 1 else price <= prices[:, -1]
    return ~full | inside


def _size_at(levels: tuple, price: np.ndarray) -> np.ndarray:
    """Size at ``price`` in each row of one side's ``(prices, sizes)`` (0 if absent)."""
    prices, sizes = levels
    return np.where(prices == price[:, None], sizes, 0.0).sum(axis=1)


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
