"""Rebuild an L2 order book from ``book_delta`` rows and materialise depth-N snapshots.

:func:`materialize` replays a ``book_delta`` table (see :mod:`makerlab.data.schema`) and
returns a ``book_snapshot`` table with one row after each venue message, i.e. after each
run of consecutive delta rows sharing ``exchange_ts``, ``local_ts`` and ``seq``.

Design (fast: the replay runs in numba, everything around it is vectorised numpy):

- Every distinct price in the table gets an integer index in sorted order
  (``np.unique``). The book is two dense float64 arrays over that index, so a level
  update is one store, and a wide price range (a stray bid 5 % below the touch) costs
  nothing more than one more slot. No tick size has to be known or inferred: prices
  parsed from the same decimal string are bit-identical floats.
- Best bid / best ask indices are tracked incrementally; when the best level is deleted
  the tracker walks outwards to the next non-empty slot.
- The top ``depth`` levels are read by walking from the best level outwards.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
from numba import njit

from makerlab.data.convert import Repairs
from makerlab.data.schema import FLAG_SNAPSHOT, book_snapshot_schema
from makerlab.data.validate import check_uncrossed
from makerlab.errors import CrossedBook, DataError

__all__ = ["materialize"]


def materialize(
    deltas: pa.Table,
    depth: int,
    *,
    source: str = "<deltas>",
    repairs: Repairs | None = None,
) -> pa.Table:
    """Replay ``deltas`` and return the top ``depth`` levels after every message.

    Args:
        deltas: a ``book_delta`` table, rows in replay order.
        depth: levels per side in the output (``book_snapshot_schema(depth)``).
        source: name used in error messages.
        repairs: if given, crossed book states are dropped and counted instead of raising.

    Returns:
        One row per message from the message holding the first ``FLAG_SNAPSHOT`` row on
        (earlier rows cannot be placed on a known book and are skipped). Missing levels
        are NaN. ``exchange_ts``/``local_ts`` (int64 ns) and ``seq`` are the message's.

    Raises:
        CrossedBook: best bid >= best ask after a message; ``line`` is the 1-based row in
            ``deltas`` of that message's first row.
        DataError: a side other than +1/-1, a non-positive or non-finite price, or a
            negative or non-finite size (``line`` = 1-based row).
    """
    if depth < 1:
        raise ValueError(f"depth must be >= 1, got {depth}")
    cols = {name: deltas.column(name).to_numpy() for name in deltas.column_names}
    _check_rows(cols, source)
    flags = cols["flags"].astype(np.uint8, copy=False)
    snap = (flags & FLAG_SNAPSHOT) != 0
    if not snap.any():
        return book_snapshot_schema(depth).empty_table()
    starts = _message_starts(cols["exchange_ts"], cols["local_ts"], cols["seq"])
    begin = int(starts[np.searchsorted(starts, int(np.argmax(snap)), side="right") - 1])
    starts = starts[starts >= begin] - begin
    cols = {name: values[begin:] for name, values in cols.items()}
    snap = snap[begin:]

    prices, level = np.unique(cols["price"], return_inverse=True)
    ends = np.append(starts[1:], len(level)).astype(np.int64)
    bid_i, bid_s, ask_i, ask_s = _replay(
        level.astype(np.int64).ravel(),
        cols["side"].astype(np.int8, copy=False),
        cols["size"].astype(np.float64, copy=False),
        _first_snapshot_rows(snap, starts),
        ends,
        len(prices),
        depth,
    )
    table = _snapshot_table(cols, starts, prices, (bid_i, bid_s, ask_i, ask_s), depth)
    padded = np.append(prices, np.nan)  # index -1 -> NaN
    best = (padded[bid_i[:, 0]], padded[ask_i[:, 0]])
    return _check_crossed(table, best, starts + begin + 1, source, repairs)


def _check_rows(cols: dict[str, np.ndarray], source: str) -> None:
    """Raise DataError at the first row with an invalid side, price or size."""
    side, price, size = cols["side"], cols["price"], cols["size"]
    with np.errstate(invalid="ignore"):
        bad = (np.abs(side) != 1) | ~(price > 0) | ~np.isfinite(price)
        bad |= ~(size >= 0) | ~np.isfinite(size)
    if bad.any():
        i = int(np.argmax(bad))
        raise DataError(
            f"invalid delta side={int(side[i])} price={price[i]} size={size[i]}",
            source=source,
            line=i + 1,
        )


def _message_starts(exchange_ts: np.ndarray, local_ts: np.ndarray, seq: np.ndarray) -> np.ndarray:
    """Row indices where a new message starts (a change in exchange_ts, local_ts or seq)."""
    change = np.ones(len(seq), dtype=bool)
    change[1:] = (
        (exchange_ts[1:] != exchange_ts[:-1])
        | (local_ts[1:] != local_ts[:-1])
        | (seq[1:] != seq[:-1])
    )
    return np.flatnonzero(change)


def _first_snapshot_rows(snap: np.ndarray, starts: np.ndarray) -> np.ndarray:
    """Boolean mask of the first FLAG_SNAPSHOT row of each message (where the book clears)."""
    starts_here = np.zeros(len(snap), dtype=np.int64)
    starts_here[starts[1:]] = 1
    message = np.cumsum(starts_here)
    rows = np.flatnonzero(snap)
    _, first = np.unique(message[rows], return_index=True)
    clear = np.zeros(len(snap), dtype=np.bool_)
    clear[rows[first]] = True
    return clear


@njit(cache=True)
def _replay(level, side, size, clear, ends, n_levels, depth):  # pragma: no cover - numba
    """Apply rows message by message; return top-``depth`` level indices and sizes.

    Index arrays hold -1 for a missing level; size arrays hold NaN there.
    """
    n_msg = len(ends)
    bid_i = np.full((n_msg, depth), -1, np.int64)
    ask_i = np.full((n_msg, depth), -1, np.int64)
    bid_s = np.full((n_msg, depth), np.nan)
    ask_s = np.full((n_msg, depth), np.nan)
    bid = np.zeros(n_levels)
    ask = np.zeros(n_levels)
    best_bid, best_ask = -1, n_levels
    lo, hi = n_levels, -1  # range of slots touched since the last clear
    row = 0
    for m in range(n_msg):
        while row < ends[m]:
            i = level[row]
            if clear[row]:
                bid[lo : hi + 1] = 0.0
                ask[lo : hi + 1] = 0.0
                best_bid, best_ask = -1, n_levels
                lo, hi = n_levels, -1
            lo, hi = min(lo, i), max(hi, i)
            if side[row] > 0:
                best_bid = _set_level(bid, i, size[row], best_bid, -1)
            else:
                best_ask = _set_level(ask, i, size[row], best_ask, 1)
            row += 1
        _top(bid, best_bid, -1, bid_i[m], bid_s[m])
        _top(ask, best_ask, 1, ask_i[m], ask_s[m])
    return bid_i, bid_s, ask_i, ask_s


@njit(cache=True, inline="always")
def _set_level(book, i, q, best, away):  # pragma: no cover - numba
    """Store size ``q`` at slot ``i``; return the new best slot.

    ``away`` is the direction from the touch into the book (-1 for bids, +1 for asks);
    an empty side has ``best`` one step beyond its last slot.
    """
    book[i] = q
    if q > 0.0:
        if (i - best) * away < 0:
            return i
        return best
    if i == best:
        n = len(book)
        while 0 <= best < n and book[best] == 0.0:
            best += away
    return best


@njit(cache=True, inline="always")
def _top(book, best, away, out_i, out_s):  # pragma: no cover - numba
    """Write the first ``len(out_i)`` non-empty slots from ``best`` outwards."""
    n, k, j = len(book), 0, best
    while k < len(out_i) and 0 <= j < n:
        if book[j] > 0.0:
            out_i[k] = j
            out_s[k] = book[j]
            k += 1
        j += away


def _levels(values: np.ndarray, depth: int) -> pa.FixedSizeListArray:
    return pa.FixedSizeListArray.from_arrays(pa.array(values.ravel()), depth)


def _snapshot_table(
    cols: dict[str, np.ndarray],
    starts: np.ndarray,
    prices: np.ndarray,
    top: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray],
    depth: int,
) -> pa.Table:
    """Assemble the book_snapshot table from the replay's level indices and sizes."""
    bid_i, bid_s, ask_i, ask_s = top
    padded = np.append(prices, np.nan)  # index -1 -> NaN
    return pa.Table.from_arrays(
        [
            pa.array(cols["exchange_ts"][starts].astype(np.int64)),
            pa.array(cols["local_ts"][starts].astype(np.int64)),
            pa.array(cols["seq"][starts].astype(np.int64)),
            _levels(padded[bid_i], depth),
            _levels(bid_s, depth),
            _levels(padded[ask_i], depth),
            _levels(ask_s, depth),
        ],
        schema=book_snapshot_schema(depth),
    )


def _check_crossed(
    table: pa.Table,
    best: tuple[np.ndarray, np.ndarray],
    rows: np.ndarray,
    source: str,
    repairs: Repairs | None,
) -> pa.Table:
    """Raise CrossedBook at the first crossed message, or drop crossed rows under repair.

    ``best`` holds the best bid and best ask price per row (NaN for an empty side) and
    ``rows`` the 1-based delta row where each message starts.
    """
    best_bid, best_ask = best
    with np.errstate(invalid="ignore"):
        crossed = best_bid >= best_ask
    if not crossed.any():
        return table
    if repairs is None:
        m = int(np.argmax(crossed))
        raise CrossedBook(
            f"crossed book after message seq={table.column('seq')[m].as_py()} "
            f"exchange_ts={table.column('exchange_ts')[m].as_py()}: best bid "
            f"{best_bid[m]} >= best ask {best_ask[m]}; pass repair=True to drop crossed rows",
            source=source,
            line=int(rows[m]),
        )
    keep = check_uncrossed(best_bid, best_ask, source=source, lines=rows, repairs=repairs)
    return table.filter(pa.array(keep))
