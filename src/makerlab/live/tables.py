"""Live events as archive tables (:mod:`makerlab.data.schema`): what the recorder writes.

- ``book_delta``: one row per level of each applied venue message (:class:`BookDelta`),
  bids (side +1) then asks (-1) as the venue listed them; a snapshot's rows carry
  ``FLAG_SNAPSHOT``. A snapshot without levels (an empty book) has no rows: the format
  cannot say "clear" without a level.
- ``book_snapshot``: the top ``depth`` levels of the book after each message, NaN-padded
  (the :class:`BookUpdate`'s levels: the live local book, which
  :mod:`makerlab.data.book_builder` rebuilds exactly from the ``book_delta`` rows).
- ``bbo``: the best bid and offer after each book message (taken from the same book; no
  venue's own best-bid stream is subscribed), NaN for an empty side.
- ``trades``: one row per print.

Clocks and ids are the events' own: ``exchange_ts``, ``local_ts`` (ns), ``seq``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pyarrow as pa

from makerlab.core.events import BookDelta, BookUpdate, TradeEvent
from makerlab.data.schema import (
    BBO_SCHEMA,
    BOOK_DELTA_SCHEMA,
    FLAG_SNAPSHOT,
    TRADES_SCHEMA,
    book_snapshot_schema,
)

__all__ = ["bbo_table", "delta_table", "snapshot_table", "trade_table"]


def delta_table(deltas: Sequence[BookDelta]) -> pa.Table:
    """``book_delta`` rows of ``deltas``, in order."""
    counts = np.array([len(d.bids) + len(d.asks) for d in deltas], np.int64)
    if not counts.sum():
        return BOOK_DELTA_SCHEMA.empty_table()
    levels = np.concatenate([np.concatenate([d.bids, d.asks]) for d in deltas])
    side = np.concatenate([np.repeat(np.array([1, -1], np.int8), [len(d.bids), len(d.asks)])
                           for d in deltas])

    def per_message(values: list[int], dtype: type) -> np.ndarray:
        return np.repeat(np.array(values, dtype), counts)

    columns = [
        per_message([d.exchange_ts for d in deltas], np.int64),
        per_message([d.local_ts for d in deltas], np.int64),
        per_message([d.seq for d in deltas], np.int64),
        per_message([d.first_seq for d in deltas], np.int64),
        per_message([d.prev_seq for d in deltas], np.int64),
        side,
        levels[:, 0],
        levels[:, 1],
        per_message([FLAG_SNAPSHOT if d.is_snapshot else 0 for d in deltas], np.uint8),
    ]
    return pa.Table.from_arrays([pa.array(c) for c in columns], schema=BOOK_DELTA_SCHEMA)


def _top(updates: Sequence[BookUpdate], depth: int) -> tuple[np.ndarray, ...]:
    """(bid_price, bid_size, ask_price, ask_size), each ``(n, depth)``, NaN-padded."""
    out = np.full((4, len(updates), depth), np.nan)
    for i, update in enumerate(updates):
        bids, asks = update.bids[:depth], update.asks[:depth]
        out[0, i, :len(bids)], out[1, i, :len(bids)] = bids[:, 0], bids[:, 1]
        out[2, i, :len(asks)], out[3, i, :len(asks)] = asks[:, 0], asks[:, 1]
    return tuple(out)


def _clocks(updates: Sequence[BookUpdate]) -> list[pa.Array]:
    return [pa.array([u.exchange_ts for u in updates], pa.int64()),
            pa.array([u.local_ts for u in updates], pa.int64()),
            pa.array([u.seq for u in updates], pa.int64())]


def snapshot_table(updates: Sequence[BookUpdate], depth: int) -> pa.Table:
    """``book_snapshot`` rows (top ``depth`` levels) of the book after each update."""
    lists = [pa.FixedSizeListArray.from_arrays(pa.array(side.ravel()), depth)
             for side in _top(updates, depth)]
    return pa.Table.from_arrays([*_clocks(updates), *lists],
                                schema=book_snapshot_schema(depth))


def bbo_table(updates: Sequence[BookUpdate]) -> pa.Table:
    """``bbo`` rows: the best bid and offer after each update."""
    best = [pa.array(side[:, 0]) for side in _top(updates, 1)]
    return pa.Table.from_arrays([*_clocks(updates), *best], schema=BBO_SCHEMA)


def trade_table(trades: Sequence[TradeEvent]) -> pa.Table:
    """``trades`` rows of ``trades``, in order."""
    return pa.Table.from_arrays([
        pa.array([t.exchange_ts for t in trades], pa.int64()),
        pa.array([t.local_ts for t in trades], pa.int64()),
        pa.array([t.price for t in trades], pa.float64()),
        pa.array([t.size for t in trades], pa.float64()),
        pa.array([t.side for t in trades], pa.int8()),
        pa.array([t.trade_id for t in trades], pa.string()),
    ], schema=TRADES_SCHEMA)
