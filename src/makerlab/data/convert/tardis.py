"""Converter for tardis.dev downloadable CSV files (``.csv`` or ``.csv.gz``).

The data type of each file is detected from its header:

========================  ==================================================  ================
tardis data type          header                                              makerlab kind
========================  ==================================================  ================
``trades``                ``exchange,symbol,timestamp,local_timestamp,id,``   ``trades``
                          ``side,price,amount``
``quotes``                ``...,ask_amount,ask_price,bid_price,bid_amount``   ``bbo``
``book_snapshot_N``       ``...,asks[i].price,asks[i].amount,bids[i].price,`` ``book_snapshot``
                          ``bids[i].amount`` for i in 0..N-1
``incremental_book_L2``   ``...,is_snapshot,side,price,amount``               ``book_delta`` and
                                                                              ``book_snapshot``
========================  ==================================================  ================

Timestamps are Unix microseconds in the files and become int64 nanoseconds
(``timestamp`` → ``exchange_ts``, ``local_timestamp`` → ``local_ts``). Tardis exchange ids
are mapped to makerlab's (:data:`EXCHANGES`); ids not in the map are kept as they are.
Rows are grouped by (exchange, symbol) into one :class:`Converted` per instrument.

"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
import pyarrow as pa
from tqdm import tqdm

from makerlab.data import schema
from makerlab.data.convert import Converted, Repairs
from makerlab.data.convert._csv import (
    Group,
    Rows,
    bbo_table,
    check_depth,
    checked_book,
    checked_trades,
    column,
    expand_inputs,
    merge_repairs,
    polars_frame,
    read_csv_checked,
    read_header,
    snapshot_table,
    stack,
    trade_sides,
    trades_table,
)
from makerlab.data.validate import Plausibility, to_ns
from makerlab.errors import DataError
from makerlab.units import NS_PER_US

__all__ = ["EXCHANGES", "read", "tardis_exchange"]

log = logging.getLogger(__name__)

#: tardis.dev exchange id → makerlab exchange id (others are kept unchanged).
EXCHANGES = {
    "binance-futures": "binance",  # USD-M perpetuals and futures
    "binance": "binance_spot",
    "binance-delivery": "binance_coinm",  # COIN-M (inverse) perpetuals and futures
    "bybit": "bybit",
    "deribit": "deribit",
}

BASE = ["exchange", "symbol", "timestamp", "local_timestamp"]
TRADES_HEADER = [*BASE, "id", "side", "price", "amount"]
QUOTES_HEADER = [*BASE, "ask_amount", "ask_price", "bid_price", "bid_amount"]
L2_HEADER = [*BASE, "is_snapshot", "side", "price", "amount"]
SNAPSHOT_FIELDS = ("asks[{i}].price", "asks[{i}].amount", "bids[{i}].price", "bids[{i}].amount")
L2 = "incremental_book_L2"


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
    """Parse tardis.dev CSV files into one :class:`Converted` per (exchange, symbol).

    Args:
        inputs: CSV files (``.csv``/``.csv.gz``) or directories holding them.
        exchange: makerlab exchange id to use instead of the mapped tardis id.
        symbol: symbol to use instead of the file's ``symbol`` column.
        depth: maximum levels per side of ``book_snapshot`` tables; a ``book_snapshot_N``
            file with ``N > depth`` is truncated to ``depth`` levels, a smaller ``N`` is
            kept as ``N``.
        repair: drop malformed, implausible and crossed rows and sort slightly unsorted
            ones (each counted in ``Converted.repairs``) instead of raising.
        progress: show a progress bar over the files.
        plausibility: the bounds every row must respect (timestamps, prices, sizes; the
            defaults of :class:`~makerlab.data.validate.Plausibility` when None).

    Raises:
        ConfigError: a bad ``depth``, a missing input, or overrides that would merge two
            instruments into one.
        DataError: a malformed row, an implausible timestamp, price or size, unsorted
            timestamps, a crossed book, an unreadable file or an unrecognised header, naming
            the file and line (unless ``repair``; see docs/convert.md).
    """
    check_depth(depth)
    limits = plausibility or Plausibility()
    groups: dict[tuple[str, str], Group] = {}
    for path in tqdm(expand_inputs(inputs, "*.csv*"), unit="file", disable=not progress):
        for key, origin, tables, repairs in _read_file(path, exchange, symbol, depth, repair,
                                                       limits):
            groups.setdefault(key, Group()).add(tables, repairs, origin=origin)
    return [group.converted(*key) for key, group in groups.items()]


def tardis_exchange(name: str) -> str:
    """makerlab's id for tardis exchange ``name`` (unmapped ids are kept)."""
    return EXCHANGES.get(name, name)


def detect(header: list[str], source: str) -> tuple[str, int]:
    """The tardis data type of a file with ``header`` and its snapshot depth (else 0)."""
    for name, expected in (("trades", TRADES_HEADER), ("quotes", QUOTES_HEADER), (L2, L2_HEADER)):
        if header == expected:
            return name, 0
    levels = (len(header) - len(BASE)) // 4
    if levels > 0 and header == BASE + snapshot_columns(levels):
        return "book_snapshot", levels
    raise DataError(
        f"unrecognised tardis CSV header {','.join(header[:8])}...; expected trades, quotes, "
        "book_snapshot_N or incremental_book_L2",
        source=source,
        line=1,
    )


def snapshot_columns(levels: int) -> list[str]:
    """Column names of a tardis ``book_snapshot_<levels>`` file after the base columns."""
    return [f.format(i=i) for i in range(levels) for f in SNAPSHOT_FIELDS]


def _read_file(path: Path, exchange: str | None, symbol: str | None, depth: int, repair: bool,
               limits: Plausibility):
    """Yield ``(key, origin, {kind: table}, repairs)`` per instrument of a file.

    ``key`` is makerlab's (exchange, symbol), ``origin`` the file's tardis pair.
    """
    header = read_header(path)
    kind, levels = detect(header, path.name)
    if kind == L2:
        yield from _read_l2(path, exchange, symbol, depth, repair, limits)
        return
    file_repairs = Repairs() if repair else None
    table, lines = read_csv_checked(path, header, _types(kind, header), header=True,
                                    repairs=file_repairs)
    for (venue, name), index in _instruments(table):
        repairs = Repairs() if repair else None
        merge_repairs(repairs, file_repairs)
        rows = _rows(table, lines, index, path.name, kind, levels)
        out_kind, built = _BUILDERS[kind](rows, depth, repairs, limits)
        key = (exchange or tardis_exchange(venue), symbol or name)
        yield key, (venue, name), {out_kind: built}, repairs


def _read_l2(path: Path, exchange: str | None, symbol: str | None, depth: int, repair: bool,
             limits: Plausibility):
    """Delegate an ``incremental_book_L2`` file to :mod:`makerlab.data.convert.tardis_l2`.

    That reader takes one symbol of the file at a time (``symbol`` selects rows there), so
    it is called once per (exchange, symbol) found in the file.
    """
    from makerlab.data.convert.tardis_l2 import read_incremental_book_l2

    for venue, name in _file_instruments(path, repair):
        key = (exchange or tardis_exchange(venue), symbol or name)
        repairs = Repairs() if repair else None
        tables = read_incremental_book_l2(path, exchange=key[0], symbol=name, depth=depth,
                                          repairs=repairs, limits=limits)
        yield key, (venue, name), tables, repairs


def _file_instruments(path: Path, repair: bool) -> list[tuple[str, str]]:
    """Distinct (exchange, symbol) pairs of a tardis CSV, in first-seen order (the rows'
    problems are reported, or counted, when the L2 reader reads them again)."""
    table, _ = read_csv_checked(path, L2_HEADER, dict.fromkeys(L2_HEADER, pa.string()),
                                header=True, repairs=Repairs() if repair else None)
    frame = polars_frame(table.select(["exchange", "symbol"])).unique(maintain_order=True)
    return [(venue, name) for venue, name in frame.iter_rows() if venue and name]


def _types(kind: str, header: list[str]) -> dict[str, pa.DataType]:
    """Arrow column types for a tardis file of ``kind``."""
    types = {name: pa.float64() for name in header}
    types.update(exchange=pa.string(), symbol=pa.string(), timestamp=pa.int64(),
                 local_timestamp=pa.int64())
    if kind == "trades":
        types.update(id=pa.string(), side=pa.string())
    return types


def _instruments(table: pa.Table) -> Iterable[tuple[tuple[str, str], np.ndarray]]:
    """Row indices of each (tardis exchange, symbol) in ``table``, in first-seen order."""
    keys = polars_frame(table.select(["exchange", "symbol"])).with_row_index("row")
    for (venue, name), part in keys.group_by(["exchange", "symbol"], maintain_order=True):
        yield (venue, name), part["row"].to_numpy().astype(np.int64)


def _rows(table: pa.Table, lines: np.ndarray, index: np.ndarray, source: str, kind: str,
          levels: int) -> Rows:
    """Numpy columns of the rows ``index`` of a parsed tardis table."""
    part = table.take(pa.array(index))
    cols = {
        "exchange_ts": to_ns(column(part, "timestamp"), NS_PER_US),
        "local_ts": to_ns(column(part, "local_timestamp"), NS_PER_US),
    }
    if kind == "book_snapshot":
        for side, out in (("asks", "ask"), ("bids", "bid")):
            cols[f"{out}_price"] = stack(part, [f"{side}[{i}].price" for i in range(levels)])
            cols[f"{out}_size"] = stack(part, [f"{side}[{i}].amount" for i in range(levels)])
    else:
        skip = {"exchange", "symbol", "timestamp", "local_timestamp"}
        cols.update({name: column(part, name) for name in part.column_names if name not in skip})
    return Rows(source, lines[index], cols)


def _build_trades(rows: Rows, depth: int, repairs: Repairs | None,
                  limits: Plausibility) -> tuple[str, pa.Table]:
    """``trades`` table from tardis trades rows (``side`` buy/sell/unknown)."""
    rows = rows.rename(amount="size", id="trade_id")
    rows = rows.with_column("side", trade_sides(rows, repairs))
    return schema.TRADES, trades_table(checked_trades(rows, repairs, limits))


def _build_quotes(rows: Rows, depth: int, repairs: Repairs | None,
                  limits: Plausibility) -> tuple[str, pa.Table]:
    """``bbo`` table from tardis quotes rows (empty sides are NaN)."""
    rows = rows.rename(ask_amount="ask_size", bid_amount="bid_size")
    for name in ("bid_price", "bid_size", "ask_price", "ask_size"):
        rows.cols[name] = rows.cols[name][:, None]
    rows = checked_book(rows, repairs, limits)
    return schema.BBO, bbo_table(rows)


def _build_snapshots(rows: Rows, depth: int, repairs: Repairs | None,
                     limits: Plausibility) -> tuple[str, pa.Table]:
    """``book_snapshot`` table (at most ``depth`` levels) from book_snapshot_N rows."""
    rows = checked_book(rows, repairs, limits)
    return schema.BOOK_SNAPSHOT, snapshot_table(rows, depth)


_BUILDERS = {"trades": _build_trades, "quotes": _build_quotes, "book_snapshot": _build_snapshots}
