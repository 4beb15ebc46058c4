"""The replay's event timeline: market-data tapes merged into one ordered array, plus a
heap for everything scheduled while replaying (orders, acks, fills, timers, custom events).

Times are int64 **nanoseconds** since the epoch. Every market-data row appears twice:

- at **exchange time**, for the matching engine (``TRADE_EXCH``, ``BOOK_EXCH``);
- at **local time**, for delivery to the strategy (``TRADE_LOCAL``, ``BOOK_LOCAL``): the
  recorded ``local_ts``, or exchange time plus a sampled ``FEED_PUBLIC`` latency.

Ordering rules (deterministic, no wall clock involved):

- **time first**: events run in non-decreasing time.
- **market data before scheduled events at equal time**: an order sent with zero latency
  in reaction to an event at ``t`` reaches the engine after every market event at ``t``.
- **trades before books at equal time**: a book state stamped ``t`` already reflects the
  trades stamped ``t``; exchange-time rows run before local-time rows.
- **then stream, then row**: ties among market rows keep their input order; scheduled
  events at equal time run in the order they were scheduled (a sequence number).

Market rows live in numpy arrays and are never turned into Python objects unless a
strategy subscribed to them or the matching engine has resting orders to check.
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from makerlab.errors import DataError

__all__ = [
    "BOOK_EXCH",
    "BOOK_LOCAL",
    "TRADE_EXCH",
    "TRADE_LOCAL",
    "BookTape",
    "EventQueue",
    "IdleSkipper",
    "MarketTimeline",
    "TradeTape",
    "merge_market",
]

NS_PER_MS = 1_000_000
TRADE_EXCH, BOOK_EXCH, TRADE_LOCAL, BOOK_LOCAL = 0, 1, 2, 3


@dataclass(eq=False)
class BookTape:
    """Depth-N book states of one instrument: clocks (n,) int64 ns, levels (n, depth)
    float64, best first, NaN-padded."""

    exc: str
    ticker: str
    exchange_ts: np.ndarray
    local_ts: np.ndarray
    bid_price: np.ndarray
    bid_size: np.ndarray
    ask_price: np.ndarray
    ask_size: np.ndarray

    def __len__(self) -> int:
        return int(self.exchange_ts.size)

    @property
    def depth(self) -> int:
        return int(self.bid_price.shape[1])

    def levels(self, row: int) -> tuple[np.ndarray, np.ndarray]:
        """``(bids, asks)`` of ``row`` as ``(depth, 2)`` arrays (NaN rows are padding)."""
        bids = np.column_stack((self.bid_price[row], self.bid_size[row]))
        asks = np.column_stack((self.ask_price[row], self.ask_size[row]))
        return bids, asks

    @classmethod
    def from_records(cls, exc: str, ticker: str, records: Sequence[dict]) -> BookTape:
        """From the tutorial's ``[{'ts': ms, 'b': [[p, s], ...], 'a': [...]}, ...]``."""
        n = len(records)
        depth = max([1, *(max(len(r["b"]), len(r["a"])) for r in records)])
        arrays = [np.full((n, depth), np.nan) for _ in range(4)]
        for i, rec in enumerate(records):
            _fill_side(arrays[0], arrays[1], i, rec["b"])
            _fill_side(arrays[2], arrays[3], i, rec["a"])
        ts = np.array([r["ts"] for r in records], dtype=np.int64) * NS_PER_MS
        return cls(exc, ticker, ts, ts.copy(), *arrays)

    @classmethod
    def from_arrays(cls, exc: str, ticker: str, books: Any) -> BookTape:
        """From :class:`~makerlab.data.arrays.SnapshotArrays` (no copy of the levels)."""
        return cls(exc, ticker, books.exchange_ts, books.local_ts, books.bid_price,
                   books.bid_size, books.ask_price, books.ask_size)

    def sorted_by_exchange_time(self) -> BookTape:
        """A copy in exchange-time order (stable)."""
        order = np.argsort(self.exchange_ts, kind="stable")
        return BookTape(self.exc, self.ticker, *(a[order] for a in (
            self.exchange_ts, self.local_ts, self.bid_price, self.bid_size, self.ask_price,
            self.ask_size)))


def _fill_side(prices: np.ndarray, sizes: np.ndarray, i: int, levels: Any) -> None:
    arr = np.asarray(levels, dtype=float).reshape(-1, 2) if len(levels) else None
    if arr is not None:
        prices[i, : len(arr)] = arr[:, 0]
        sizes[i, : len(arr)] = arr[:, 1]


@dataclass(eq=False)
class TradeTape:
    """Trade prints of one instrument: clocks int64 ns, price, size, taker ``side``."""

    exc: str
    ticker: str
    exchange_ts: np.ndarray
    local_ts: np.ndarray
    price: np.ndarray
    size: np.ndarray
    side: np.ndarray

    def __len__(self) -> int:
        return int(self.exchange_ts.size)

    @classmethod
    def from_rows(cls, exc: str, ticker: str, rows: Any) -> TradeTape:
        """From the tutorial's ``[(ts_ms, price, size, dir), ...]`` or an N x 4 array."""
        arr = np.asarray(rows, dtype=np.float64).reshape(-1, 4)
        if len(arr) and not np.isin(arr[:, 3], (-1.0, 1.0)).all():
            raise DataError(f"{exc}/{ticker}: trade dir must be +1 or -1")
        ts = arr[:, 0].astype(np.int64) * NS_PER_MS
        return cls(exc, ticker, ts, ts.copy(), arr[:, 1].copy(), arr[:, 2].copy(),
                   arr[:, 3].astype(np.int8))

    @classmethod
    def from_arrays(cls, exc: str, ticker: str, trades: Any) -> TradeTape:
        """From :class:`~makerlab.data.arrays.TradeArrays`."""
        return cls(exc, ticker, trades.exchange_ts, trades.local_ts, trades.price,
                   trades.size, trades.side)

    def sorted_by_exchange_time(self) -> TradeTape:
        """A copy in exchange-time order (stable)."""
        order = np.argsort(self.exchange_ts, kind="stable")
        return TradeTape(self.exc, self.ticker, *(a[order] for a in (
            self.exchange_ts, self.local_ts, self.price, self.size, self.side)))


@dataclass(frozen=True, eq=False)
class MarketTimeline:
    """Every market event, sorted: ``t`` (ns), ``kind``, ``stream`` (tape index), ``row``."""

    t: np.ndarray
    kind: np.ndarray
    stream: np.ndarray
    row: np.ndarray

    def __len__(self) -> int:
        return int(self.t.size)


def merge_market(books: Sequence[BookTape], trades: Sequence[TradeTape],
                 deliver_books: set[int], deliver_trades: set[int]) -> MarketTimeline:
    """The merged market timeline (ordering rules in the module docstring).

    Exchange-time rows are always included (the engine may need them); local-time rows only
    for tapes whose index is in ``deliver_books``/``deliver_trades`` (subscribed feeds).
    """
    parts = []
    for kind, tapes, clock, wanted in (
            (TRADE_EXCH, trades, "exchange_ts", None), (BOOK_EXCH, books, "exchange_ts", None),
            (TRADE_LOCAL, trades, "local_ts", deliver_trades),
            (BOOK_LOCAL, books, "local_ts", deliver_books)):
        for i, tape in enumerate(tapes):
            if wanted is None or i in wanted:
                parts.append(_part(getattr(tape, clock), kind, i))
    if not parts:
        empty = np.empty(0, np.int64)
        return MarketTimeline(empty, empty.astype(np.int8), empty.astype(np.int32), empty)
    t, kind, stream, row = (np.concatenate([p[k] for p in parts]) for k in range(4))
    order = np.lexsort((row, stream, kind, t))
    return MarketTimeline(t[order], kind[order], stream[order], row[order])


def _part(ts: np.ndarray, kind: int, stream: int) -> tuple[np.ndarray, ...]:
    n = ts.size
    return (np.asarray(ts, np.int64), np.full(n, kind, np.int8), np.full(n, stream, np.int32),
            np.arange(n, dtype=np.int64))


class IdleSkipper:
    """Finds runs of exchange-time rows that need no Python work, and their net effect.

    While no engine has resting orders, an exchange-time trade changes nothing and a
    book row only moves its engine's current row; so a run of such rows up to the next
    local-time row or scheduled event collapses to "each book stream ends at its last row
    in the run" (computed with numpy, no per-row Python).
    """

    MIN_RUN = 64  # shorter runs are cheaper row by row

    def __init__(self, timeline: MarketTimeline) -> None:
        self.timeline = timeline
        self._local = np.flatnonzero(timeline.kind >= TRADE_LOCAL)

    def run_end(self, i: int, next_scheduled_ns: int | None) -> int:
        """End (exclusive) of the idle run starting at ``i``: before the next local row and
        before any row later than ``next_scheduled_ns``."""
        k = int(np.searchsorted(self._local, i))
        end = int(self._local[k]) if k < len(self._local) else len(self.timeline)
        if next_scheduled_ns is not None:
            end = min(end, int(np.searchsorted(self.timeline.t, next_scheduled_ns, "right")))
        return end

    def last_book_rows(self, i: int, j: int) -> dict[int, int]:
        """``{book stream: last row}`` among the BOOK_EXCH rows in ``[i, j)``."""
        tl = self.timeline
        books = np.flatnonzero(tl.kind[i:j] == BOOK_EXCH) + i
        if not len(books):
            return {}
        streams = tl.stream[books]
        out = {}
        for s in np.unique(streams).tolist():
            out[s] = int(tl.row[books[streams == s][-1]])
        return out


class EventQueue:
    """Scheduled events: a heap of ``(t_ns, seq, callback, payload)``; ties run FIFO."""

    def __init__(self) -> None:
        self._heap: list[tuple[int, int, Callable[[Any], Any], Any]] = []
        self._seq = itertools.count()

    def push(self, t_ns: int, callback: Callable[[Any], Any], payload: Any = None) -> None:
        """Run ``callback(payload)`` at ``t_ns`` (it may return an awaitable)."""
        heapq.heappush(self._heap, (int(t_ns), next(self._seq), callback, payload))

    def peek_time(self) -> int | None:
        """Time of the next event, ``None`` if empty."""
        return self._heap[0][0] if self._heap else None

    def pop(self) -> tuple[int, Callable[[Any], Any], Any]:
        t, _, callback, payload = heapq.heappop(self._heap)
        return t, callback, payload

    def __len__(self) -> int:
        return len(self._heap)
