"""Tardis.dev ``incremental_book_L2`` CSV -> ``book_delta`` and ``book_snapshot`` tables.

Columns: ``exchange,symbol,timestamp,local_timestamp,is_snapshot,side,price,amount``
(timestamps in Unix µs; ``amount`` is the new level size, 0 deletes the level).

- ``exchange_ts`` = ``timestamp``, ``local_ts`` = ``local_timestamp`` (both -> ns).
- ``side``: ``bid`` -> +1, ``ask`` -> -1. ``is_snapshot`` rows get ``FLAG_SNAPSHOT``.
- Tardis carries no update ids: ``seq``/``first_seq``/``prev_seq`` are -1, and a message is
  a run of rows with the same two timestamps. A run of snapshot rows replaces the book
  (Tardis emits one when a connection (re)starts); the book is cleared at its first row.
- Rows must be sorted by ``local_timestamp``; with repairs small steps back are sorted.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from makerlab.data.convert import Repairs, reject
from makerlab.data.convert._book import replay_checked
from makerlab.data.convert._csv import Rows, checked_times, read_csv_checked, read_header
from makerlab.data.schema import BOOK_DELTA, BOOK_DELTA_SCHEMA, BOOK_SNAPSHOT, FLAG_SNAPSHOT, NO_SEQ
from makerlab.data.validate import Plausibility, check_finite, check_values, to_ns
from makerlab.errors import DataError
from makerlab.units import NS_PER_US

__all__ = ["read_incremental_book_l2"]

_COLUMNS = {
    "exchange": pa.string(),
    "symbol": pa.string(),
    "timestamp": pa.int64(),
    "local_timestamp": pa.int64(),
    "is_snapshot": pa.string(),
    "side": pa.string(),
    "price": pa.float64(),
    "amount": pa.float64(),
}


def read_incremental_book_l2(
    path: Path,
    *,
    exchange: str,
    symbol: str | None,
    depth: int,
    repairs: Repairs | None,
    limits: Plausibility | None = None,
) -> dict[str, pa.Table]:
    """Read one ``incremental_book_L2`` CSV (``.csv`` or ``.csv.gz``).

    Args:
        path: the file.
        exchange: exchange id for error messages (the caller names the archive).
        symbol: keep only rows of this symbol; the file must hold one symbol when None.
        depth: levels per side of the materialised ``book_snapshot`` table.
        repairs: if given, repair (drop bad rows, sort slightly unsorted ones, drop the
            book from a crossed state up to the next snapshot) and record each repair
            instead of raising.
        limits: the plausibility bounds (the defaults when None).

    Returns:
        ``{"book_delta": ..., "book_snapshot": ...}``.

    Raises:
        DataError naming the file and line (a malformed row, an unknown side, an
        implausible price, size or timestamp, unsorted timestamps, a crossed book, more
        than one symbol).
    """
    path = Path(path)
    if read_header(path) != list(_COLUMNS):
        raise DataError(f"not an incremental_book_L2 header; expected {','.join(_COLUMNS)}",
                        source=str(path), line=1)
    table, lines = read_csv_checked(path, list(_COLUMNS), _COLUMNS, header=True,
                                    repairs=repairs)
    table, lines = _select_symbol(table, lines, symbol, str(path))
    rows = _checked_rows(_rows(table, lines, str(path)), repairs, limits or Plausibility())
    _check_contiguous(rows)
    deltas = _delta_table(rows)
    deltas, snapshots = replay_checked(deltas, depth, origins=rows.lines,
                                       locate=lambda line: (rows.source, line),
                                       repairs=repairs)
    return {BOOK_DELTA: deltas, BOOK_SNAPSHOT: snapshots}


def _select_symbol(
    table: pa.Table, lines: np.ndarray, symbol: str | None, source: str
) -> tuple[pa.Table, np.ndarray]:
    """Rows of one symbol and their line numbers in the file."""
    symbols = pc.unique(table.column("symbol")).to_pylist()
    if symbol is None:
        if len(symbols) > 1:
            raise DataError(f"file holds several symbols {symbols}; pass symbol=",
                            source=source, line=int(lines[0]))
        return table, lines
    mask = pc.equal(table.column("symbol"), symbol)
    return table.filter(mask), lines[mask.to_numpy(zero_copy_only=False)]


def _rows(table: pa.Table, lines: np.ndarray, source: str) -> Rows:
    """The file's columns as delta fields (``side`` 0 and ``flags`` 255 when unknown)."""
    side = table.column("side").to_numpy(zero_copy_only=False)
    snapshot = table.column("is_snapshot").to_numpy(zero_copy_only=False)
    return Rows(source, lines, {
        "exchange_ts": to_ns(table.column("timestamp").to_numpy(), NS_PER_US),
        "local_ts": to_ns(table.column("local_timestamp").to_numpy(), NS_PER_US),
        "side": np.select([side == "bid", side == "ask"], [1, -1], 0).astype(np.int8),
        "flags": np.select([snapshot == "true", snapshot == "false"], [FLAG_SNAPSHOT, 0],
                           255).astype(np.uint8),
        "price": table.column("price").to_numpy(),
        "size": table.column("amount").to_numpy(),
    })


def _checked_rows(rows: Rows, repairs: Repairs | None, limits: Plausibility) -> Rows:
    """Rows with a known side and snapshot flag, plausible values and timestamps, sorted."""
    known = (rows.cols["side"] != 0) & (rows.cols["flags"] != 255)
    if not known.all():
        i = int(np.flatnonzero(~known)[0])
        reject(repairs, "malformed", "side is not bid/ask or is_snapshot not true/false; "
               "pass repair=True to drop such rows", f"{int((~known).sum())} rows dropped",
               source=rows.source, line=int(rows.lines[i]))
        rows = rows.take(known)
    where: dict[str, Any] = {"source": rows.source, "repairs": repairs}
    rows = rows.take(check_finite({k: rows.cols[k] for k in ("price", "size")},
                                  lines=rows.lines, **where))
    delete_ok = rows.cols["flags"] == 0  # a zero size deletes a level, but not in a snapshot
    rows = rows.take(check_values({"price": rows.cols["price"]}, {"size": rows.cols["size"]},
                                  lines=rows.lines, limits=limits, zero_size=delete_ok,
                                  **where))
    return checked_times(rows, repairs, limits)


def _check_contiguous(rows: Rows) -> None:
    """Raise :class:`DataError` where a message (a run of rows with equal timestamps)
    resumes after another one: a timestamp inside it was changed, and the one message
    would replay as several (a snapshot as several snapshots, each clearing the book).
    Which rows are wrong is unknown, so it is refused even when repairing."""
    exchange, local = rows.cols["exchange_ts"], rows.cols["local_ts"]
    starts = np.flatnonzero(np.r_[True, (exchange[1:] != exchange[:-1])
                                  | (local[1:] != local[:-1])])
    order = np.lexsort((starts, exchange[starts], local[starts]))
    again = (np.diff(local[starts][order]) == 0) & (np.diff(exchange[starts][order]) == 0)
    if again.any():
        row = int(starts[order[1:][again]].min())
        raise DataError(f"rows of one message (timestamp {exchange[row] // NS_PER_US}, "
                        f"local_timestamp {local[row] // NS_PER_US}) are split by other rows; "
                        "was a timestamp inside the message changed?", source=rows.source,
                        line=int(rows.lines[row]))


def _delta_table(rows: Rows) -> pa.Table:
    no_seq = pa.array(np.full(len(rows), NO_SEQ, dtype=np.int64))
    return pa.Table.from_arrays(
        [
            pa.array(rows.cols["exchange_ts"]), pa.array(rows.cols["local_ts"]),
            no_seq, no_seq, no_seq,
            pa.array(rows.cols["side"]), pa.array(rows.cols["price"]),
            pa.array(rows.cols["size"]), pa.array(rows.cols["flags"]),
        ],
        schema=BOOK_DELTA_SCHEMA,
    )
