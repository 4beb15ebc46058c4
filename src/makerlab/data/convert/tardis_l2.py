"""Tardis.dev ``incremental_book_L2`` CSV -> ``book_delta`` and ``book_snapshot`` tables.

Columns: ``exchange,symbol,timestamp,local_timestamp,is_snapshot,side,price,amount``
(timestamps in Unix µs; ``amount`` is the new level size, 0 deletes the level).

- ``exchange_ts`` = ``timestamp``, ``local_ts`` = ``local_timestamp`` (both -> ns).
- ``side``: ``bid`` -> +1, ``ask`` -> -1. ``is_snapshot`` rows get ``FLAG_SNAPSHOT``.
- Tardis carries no update ids: ``seq``/``first_seq``/``prev_seq`` are -1, and a message is
  a run of rows with the same two timestamps. A run of snapshot rows replaces the book
  (Tardis emits one when a connection (re)starts); the book is cleared at its first row.
- Rows must be sorted by ``local_timestamp``; with repairs they are stably sorted.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from makerlab.data.book_builder import materialize
from makerlab.data.convert import Repairs
from makerlab.data.schema import (
    BOOK_DELTA,
    BOOK_DELTA_SCHEMA,
    BOOK_SNAPSHOT,
    FLAG_SNAPSHOT,
    NO_SEQ,
)
from makerlab.data.validate import check_finite, check_sorted
from makerlab.errors import CrossedBook, DataError

__all__ = ["read_incremental_book_l2"]

_COLUMNS = {
    "exchange": pa.string(),
    "symbol": pa.string(),
    "timestamp": pa.int64(),
    "local_timestamp": pa.int64(),
    "is_snapshot": pa.bool_(),
    "side": pa.string(),
    "price": pa.float64(),
    "amount": pa.float64(),
}
_FIRST_LINE = 2  # data row 0 is on line 2 (after the header)


def read_incremental_book_l2(
    path: Path,
    *,
    exchange: str,
    symbol: str | None,
    depth: int,
    repairs: Repairs | None,
) -> dict[str, pa.Table]:
    """Read one ``incremental_book_L2`` CSV (``.csv`` or ``.csv.gz``).

    Args:
        path: the file.
        exchange: exchange id for error messages (the caller names the archive).
        symbol: keep only rows of this symbol; the file must hold one symbol when None.
        depth: levels per side of the materialised ``book_snapshot`` table.
        repairs: if given, repair (sort unsorted rows, drop bad rows and crossed books)
            and record each repair instead of raising.

    Returns:
        ``{"book_delta": ..., "book_snapshot": ...}``.

    Raises:
        DataError naming the file and line (unsorted timestamps, bad values, a crossed
        book, more than one symbol).
    """
    source = str(path)
    table = _read_csv(Path(path), source)
    table, lines = _select_symbol(table, symbol, source)
    deltas, lines = _deltas(table, lines, source, repairs)
    try:
        snapshots = materialize(deltas, depth, source=f"{source} ({exchange})", repairs=repairs)
    except CrossedBook as e:
        row = int(e.line) - 1
        detail = str(e).split(": ", 1)[1]
        raise CrossedBook(detail, source=source, line=int(lines[row])) from e
    return {BOOK_DELTA: deltas, BOOK_SNAPSHOT: snapshots}


def _read_csv(path: Path, source: str) -> pa.Table:
    """Parse the CSV with explicit column types (gzip by extension)."""
    try:
        return pacsv.read_csv(
            path,
            convert_options=pacsv.ConvertOptions(
                column_types=_COLUMNS, include_columns=list(_COLUMNS)
            ),
        )
    except (pa.ArrowInvalid, pa.ArrowKeyError, OSError, EOFError) as e:
        raise DataError(f"cannot parse incremental_book_L2 CSV: {e}", source=source) from e


def _select_symbol(
    table: pa.Table, symbol: str | None, source: str
) -> tuple[pa.Table, np.ndarray]:
    """Rows of one symbol and their line numbers in the file."""
    lines = np.arange(table.num_rows, dtype=np.int64) + _FIRST_LINE
    symbols = pc.unique(table.column("symbol")).to_pylist()
    if symbol is None:
        if len(symbols) > 1:
            raise DataError(f"file holds several symbols {symbols}; pass symbol=",
                            source=source)
        return table, lines
    mask = pc.equal(table.column("symbol"), symbol)
    return table.filter(mask), lines[mask.to_numpy(zero_copy_only=False)]


def _deltas(
    table: pa.Table, lines: np.ndarray, source: str, repairs: Repairs | None
) -> tuple[pa.Table, np.ndarray]:
    """Validated, sorted book_delta rows and the file line of each."""
    side_text = table.column("side").to_numpy(zero_copy_only=False)
    side = np.where(side_text == "bid", 1, np.where(side_text == "ask", -1, 0)).astype(np.int8)
    price = table.column("price").to_numpy()
    size = table.column("amount").to_numpy()
    with np.errstate(invalid="ignore"):
        ok = (side != 0) & (price > 0) & (size >= 0)
    values = {"price": np.where(ok, price, np.nan), "size": size}
    keep = check_finite(values, source=source, lines=lines, repairs=repairs)
    cols = {
        "exchange_ts": table.column("timestamp").to_numpy() * 1_000,
        "local_ts": table.column("local_timestamp").to_numpy() * 1_000,
        "side": side, "price": price, "size": size,
        "flags": np.where(table.column("is_snapshot").to_numpy(zero_copy_only=False),
                          FLAG_SNAPSHOT, 0).astype(np.uint8),
    }
    cols = {name: values[keep] for name, values in cols.items()}
    lines = lines[keep]
    order = check_sorted(cols["local_ts"], source=source, lines=lines, repairs=repairs)
    cols = {name: values[order] for name, values in cols.items()}
    no_seq = pa.array(np.full(len(lines), NO_SEQ, dtype=np.int64))
    deltas = pa.Table.from_arrays(
        [
            pa.array(cols["exchange_ts"]), pa.array(cols["local_ts"]),
            no_seq, no_seq, no_seq,
            pa.array(cols["side"]), pa.array(cols["price"]), pa.array(cols["size"]),
            pa.array(cols["flags"]),
        ],
        schema=BOOK_DELTA_SCHEMA,
    )
    return deltas, lines[order]
