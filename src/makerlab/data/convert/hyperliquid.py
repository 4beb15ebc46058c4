"""Converter for the CSV snapshots of a Hyperliquid websocket collector.

Files are recognised by name (optionally gzip-compressed, CRLF line endings accepted):

- ``orderbooks_<COIN>.csv``: one ``l2Book`` message per row, ``timestamp`` (local receive
  time, Unix seconds as a float), ``sequence``, ``exchange_timestamp`` (Unix ms), then
  ``bid_price_i, bid_size_i, ask_price_i, ask_size_i`` for each level → ``book_snapshot``
  (at most ``depth`` levels; the collector writes 20).
- ``trades_<COIN>.csv``: ``timestamp, price, size, side, trade_id, exchange_timestamp`` →
  ``trades`` (``side`` is the aggressor side, ``buy``/``sell``).
- ``prices_<COIN>.csv``: the ``bbo`` channel, one ``bid`` row and one ``ask`` row per
  message → ``bbo`` (the two rows are paired on their local and exchange timestamps).

``exchange_ts`` is ``exchange_timestamp`` (ms) in ns. ``local_ts`` is the float seconds
rounded to the nearest microsecond, then in ns: the collector writes at most microsecond
resolution, and a float64 near 1.7e9 s resolves 0.24 µs, so rounding recovers the written
value exactly instead of leaking float noise into the nanoseconds. The collector's
``sequence`` is the message time again, not an update id, so ``seq`` is ``-1``.

Duplicate trades: Hyperliquid sometimes delivers a trade twice (seen in the 2025-09-04
recording: same ``trade_id``, exchange time, price and size). Keeping both would double the
traded volume, so exact duplicates on those four fields are always dropped (the first
delivery is kept), logged, and counted in ``Converted.stats['duplicate_trades']``.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from pathlib import Path

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
    checked_trades,
    column,
    expand_inputs,
    read_csv_checked,
    read_header,
    snapshot_table,
    stack,
    trade_sides,
    trades_table,
)
from makerlab.data.validate import Plausibility, to_ns
from makerlab.errors import DataError
from makerlab.units import NS_PER_MS, NS_PER_US

__all__ = ["read"]

log = logging.getLogger(__name__)

EXCHANGE = "hyperliquid"
FILE_NAME = re.compile(r"(?P<kind>orderbooks|trades|prices)_(?P<coin>.+?)\.csv(?:\.gz)?")
TRADES_HEADER = ["timestamp", "price", "size", "side", "trade_id", "exchange_timestamp"]
PRICES_HEADER = ["timestamp", "price", "size", "side", "exchange_timestamp"]
BOOK_HEADER = ["timestamp", "sequence", "exchange_timestamp"]
LEVEL_FIELDS = ("bid_price", "bid_size", "ask_price", "ask_size")


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
    """Parse Hyperliquid collector CSVs into one :class:`Converted` per coin.

    Args:
        inputs: ``orderbooks_/trades_/prices_<COIN>.csv(.gz)`` files or directories.
        exchange: exchange id to use instead of ``hyperliquid``.
        symbol: symbol to use instead of the coin in the file names (the inputs must then
            all be of one coin).
        depth: maximum levels per side of the ``book_snapshot`` table.
        repair: drop malformed, implausible, crossed and unpaired rows and sort slightly
            unsorted ones (each counted in ``Converted.repairs``) instead of raising.
        progress: show a progress bar over the files.
        plausibility: the bounds every row must respect (timestamps, prices, sizes; the
            defaults of :class:`~makerlab.data.validate.Plausibility` when None).

    Raises:
        DataError: a file name or header that is not the collector's, a malformed row, an
            implausible timestamp, price or size, unsorted local timestamps, a crossed book,
            an unpaired bbo row or an unreadable file, naming the file and line (unless
            ``repair``; see docs/convert.md).
    """
    check_depth(depth)
    limits = plausibility or Plausibility()
    groups: dict[str, Group] = {}
    for path in tqdm(expand_inputs(inputs, "*.csv*"), unit="file", disable=not progress):
        kind, coin = parse_name(path)
        repairs = Repairs() if repair else None
        tables, stats = _READERS[kind](path, depth, repairs, limits)
        groups.setdefault(symbol or coin, Group()).add(tables, repairs, stats, origin=coin)
    return [group.converted(exchange or EXCHANGE, name) for name, group in groups.items()]


def parse_name(path: Path) -> tuple[str, str]:
    """``(kind, coin)`` of a collector file name such as ``trades_BTC.csv.gz``."""
    match = FILE_NAME.fullmatch(path.name)
    if match is None:
        raise DataError("not a Hyperliquid collector file name; expected "
                        "orderbooks_<COIN>.csv, trades_<COIN>.csv or prices_<COIN>.csv "
                        "(optionally .gz)", source=path.name)
    return match["kind"], match["coin"]


def local_ns(seconds: np.ndarray) -> np.ndarray:
    """Unix float seconds → int64 ns, rounded to the microsecond (see module docstring)."""
    return to_ns(np.round(seconds * 1e6), NS_PER_US)


def _check_header(path: Path, expected: list[str]) -> list[str]:
    header = read_header(path)
    if header != expected:
        raise DataError(f"unrecognised header {','.join(header[:8])}; expected "
                        f"{','.join(expected[:8])}{'...' if len(expected) > 8 else ''}",
                        source=path.name, line=1)
    return header


def _book_header(path: Path) -> tuple[list[str], int]:
    """The orderbooks header and its number of levels."""
    levels = max((len(read_header(path)) - len(BOOK_HEADER)) // 4, 1)
    names = [f"{name}_{i}" for i in range(levels) for name in LEVEL_FIELDS]
    return _check_header(path, BOOK_HEADER + names), levels


def _times(table: pa.Table) -> dict[str, np.ndarray]:
    return {"exchange_ts": to_ns(column(table, "exchange_timestamp"), NS_PER_MS),
            "local_ts": local_ns(column(table, "timestamp"))}


def _read_book(path: Path, depth: int, repairs: Repairs | None, limits: Plausibility):
    """``book_snapshot`` table of an ``orderbooks_<COIN>`` file."""
    header, levels = _book_header(path)
    types = dict.fromkeys(header, pa.float64())
    types.update(sequence=pa.int64(), exchange_timestamp=pa.int64())
    table, lines = read_csv_checked(path, header, types, header=True, repairs=repairs)
    cols = _times(table)
    for name in LEVEL_FIELDS:
        cols[name] = stack(table, [f"{name}_{i}" for i in range(levels)])
    rows = checked_book(Rows(path.name, lines, cols), repairs, limits)
    return {schema.BOOK_SNAPSHOT: snapshot_table(rows, depth)}, {}


def _read_trades(path: Path, depth: int, repairs: Repairs | None, limits: Plausibility):
    """``trades`` table of a ``trades_<COIN>`` file, exact duplicates dropped."""
    header = _check_header(path, TRADES_HEADER)
    types = {"timestamp": pa.float64(), "price": pa.float64(), "size": pa.float64(),
             "side": pa.string(), "trade_id": pa.string(), "exchange_timestamp": pa.int64()}
    table, lines = read_csv_checked(path, header, types, header=True, repairs=repairs)
    cols = _times(table)
    cols.update({name: column(table, name) for name in ("price", "size", "side", "trade_id")})
    rows = drop_duplicate_trades(Rows(path.name, lines, cols))
    duplicates = len(lines) - len(rows)
    rows = rows.with_column("side", trade_sides(rows, repairs))
    table = trades_table(checked_trades(rows, repairs, limits))
    return {schema.TRADES: table}, {"duplicate_trades": duplicates}


def drop_duplicate_trades(rows: Rows) -> Rows:
    """``rows`` without exact repeats of (trade_id, exchange_ts, price, size); logged."""
    if not len(rows):
        return rows
    keys = pl.DataFrame({name: rows.cols[name] for name in
                         ("trade_id", "exchange_ts", "price", "size")})
    first = keys.select(pl.struct(pl.all()).is_first_distinct()).to_series().to_numpy()
    if first.all():
        return rows
    lines = rows.lines[~first]
    log.warning("%s: dropped %d duplicate trades (same trade_id, exchange time, price and "
                "size; first at line %d)", rows.source, lines.size, lines[0])
    return rows.take(first)


def _read_prices(path: Path, depth: int, repairs: Repairs | None, limits: Plausibility):
    """``bbo`` table of a ``prices_<COIN>`` file (bid and ask rows paired)."""
    header = _check_header(path, PRICES_HEADER)
    types = {"timestamp": pa.float64(), "price": pa.float64(), "size": pa.float64(),
             "side": pa.string(), "exchange_timestamp": pa.int64()}
    table, lines = read_csv_checked(path, header, types, header=True, repairs=repairs)
    cols = _times(table)
    cols.update({name: column(table, name) for name in ("price", "size", "side")})
    rows = pair_bbo(_known_sides(Rows(path.name, lines, cols), repairs), repairs)
    return {schema.BBO: bbo_table(checked_book(rows, repairs, limits))}, {}


def _known_sides(rows: Rows, repairs: Repairs | None) -> Rows:
    """Rows whose side is ``bid`` or ``ask`` (others raise, or are dropped)."""
    side = np.char.lower(np.char.strip(rows.cols["side"].astype(str)))
    ok = np.isin(side, ["bid", "ask"])
    rows = rows.with_column("is_bid", side == "bid")
    if ok.all():
        return rows
    _problem(rows, ~ok, "bad_side", f"side {rows.cols['side'][~ok][0]!r} is not bid/ask",
             repairs)
    return rows.take(ok)


def pair_bbo(rows: Rows, repairs: Repairs | None) -> Rows:
    """One book row per message from its bid row and ask row (same local and exchange ts).

    A side given twice for one message keeps its first row; a message with only one side
    is dropped. Both raise :class:`DataError` unless repairing.
    """
    frame = pl.DataFrame({"i": np.arange(len(rows)), "ts": rows.cols["local_ts"],
                          "ex": rows.cols["exchange_ts"], "bid": rows.cols["is_bid"]})
    first = frame.select(pl.struct("ts", "ex", "bid").is_first_distinct()).to_series()
    if not first.all():
        _problem(rows, ~first.to_numpy(), "duplicate_bbo_side",
                 "a second row for the same side of one bbo message", repairs)
        frame = frame.filter(first)
    bids = frame.filter(pl.col("bid")).select("ts", "ex", pl.col("i").alias("b"))
    asks = frame.filter(~pl.col("bid")).select("ts", "ex", pl.col("i").alias("a"))
    pairs = bids.join(asks, on=["ts", "ex"], how="full", coalesce=True)
    pairs = pairs.sort(pl.min_horizontal("b", "a"))
    lone = (pairs["b"].is_null() | pairs["a"].is_null()).to_numpy()
    if lone.any():
        index = pairs.select(pl.coalesce("b", "a")).to_series().to_numpy()
        _problem(rows.take(index), lone, "unpaired_bbo",
                 "a bbo row without the other side's row of the same message", repairs)
        pairs = pairs.filter(~pl.Series(lone))
    return _paired_rows(rows, pairs["b"].to_numpy(), pairs["a"].to_numpy())


def _paired_rows(rows: Rows, bid: np.ndarray, ask: np.ndarray) -> Rows:
    cols = {"exchange_ts": rows.cols["exchange_ts"][bid], "local_ts": rows.cols["local_ts"][bid]}
    for side, index in (("bid", bid), ("ask", ask)):
        cols[f"{side}_price"] = rows.cols["price"][index][:, None].astype(np.float64)
        cols[f"{side}_size"] = rows.cols["size"][index][:, None].astype(np.float64)
    return Rows(rows.source, rows.lines[bid], cols)


def _problem(rows: Rows, bad: np.ndarray, kind: str, detail: str,
             repairs: Repairs | None) -> None:
    """Raise :class:`DataError` at the first ``bad`` row, or record the repair."""
    line = int(rows.lines[np.flatnonzero(bad)[0]])
    reject(repairs, kind, f"{detail}; pass repair=True to drop such rows",
           f"{int(bad.sum())} rows dropped: {detail}", source=rows.source, line=line)


_READERS = {"orderbooks": _read_book, "trades": _read_trades, "prices": _read_prices}
