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
strategy subscribed to them or the matching engine has resting orders to check: the
timeline the replay loop (:mod:`makerlab.sim.loop`) iterates holds only the subscribed
local-time rows (:func:`merge_market`), and each engine's exchange-time rows are stepped
through only while it holds resting orders (:class:`EngineRows`); the loop interleaves
the two and the event queue by these rules (``tests/sim/test_engine_timeline.py``
observes them there). The paper exchange's desk steps every exchange-time row
(:func:`merge_exchange`).
"""

from __future__ import annotations

import bisect
import heapq
import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from makerlab.errors import DataError
from makerlab.sim.book_rows import BookRows, book_rows
from makerlab.units import NS_PER_MS

__all__ = [
    "BOOK_EXCH",
    "BOOK_LOCAL",
    "NEVER",
    "TRADE_EXCH",
    "TRADE_LOCAL",
    "BookTape",
    "EngineRows",
    "EventQueue",
    "MarketTimeline",
    "TradeTape",
    "merge_exchange",
    "merge_market",
    "ms_to_ns",
    "tape_source",
]

TRADE_EXCH, BOOK_EXCH, TRADE_LOCAL, BOOK_LOCAL = 0, 1, 2, 3

_MAX_MS = 9.2e12  # larger epoch ms overflow int64 ns
NEVER = 1 << 62  # later than any replayed time


def tape_source(exc: str, ticker: str, kind: str) -> str:
    """How errors name a tape: ``binance/BTCUSDT book data`` (``kind``: book, trade)."""
    return f"{exc}/{ticker} {kind} data"


def ms_to_ns(values: Any, source: str) -> np.ndarray:
    """Record timestamps in ms as int64 ns; each must be a finite whole number of ms within
    int64 ns, or :class:`DataError` names ``source`` and the first bad 1-based record."""
    ms = _floats(values, source, "timestamp")
    ok = np.isfinite(ms) & (np.abs(ms) < _MAX_MS)
    ok[ok] = ms[ok] == np.floor(ms[ok])
    if not ok.all():
        i = int(np.flatnonzero(~ok)[0])
        raise DataError(f"timestamp {_shown(values[i])!r} is not a whole number of epoch "
                        f"milliseconds below {_MAX_MS:.2g}", source=source, line=i + 1)
    return ms.astype(np.int64) * NS_PER_MS


def _floats(values: Any, source: str, what: str, width: int | None = None) -> np.ndarray:
    """``values`` (one number per record, or ``width`` numbers) as float64; a record that
    is not that raises DataError naming it."""
    try:
        arr = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError):
        arr = None
    shape_ok = width is None or arr is None or arr.size == 0 or (
        arr.ndim == 2 and arr.shape[1] == width)
    if arr is not None and shape_ok:
        return arr
    shape = () if width is None else (width,)
    for i, value in enumerate(values):
        try:
            row = np.asarray(value, dtype=np.float64)
        except (TypeError, ValueError):
            row = None
        if row is None or row.shape != shape:
            form = "a number" if width is None else f"{width} numbers"
            raise DataError(f"{what} {_shown(value)!r} is not {form}", source=source,
                            line=i + 1)
    raise DataError(f"{what}s are not numbers", source=source)


def _shown(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value


@dataclass(eq=False)
class BookTape:
    """Depth-N book states of one instrument: clocks (n,) int64 ns, levels (n, depth)
    float64, best first, NaN-padded.

    The level arrays of a tape built by :meth:`from_records`, :meth:`from_arrays` or
    :meth:`stacked` are views of two ``(n, depth, 2)`` arrays (:meth:`sides`), so a row
    reaches a strategy's book without a copy.
    """

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

    def _levels_now(self) -> tuple[np.ndarray, ...]:
        return self.bid_price, self.bid_size, self.ask_price, self.ask_size

    def _cached(self, name: str) -> Any:
        """What was computed under ``name`` for the current level arrays, or ``None``."""
        entry = self.__dict__.get(name)
        now = self._levels_now()
        if entry is None or any(a is not b for a, b in zip(entry[0], now, strict=True)):
            return None
        return entry[1]

    def _cache(self, name: str, value: Any) -> Any:
        self.__dict__[name] = (self._levels_now(), value)
        return value

    def sides(self) -> tuple[np.ndarray, np.ndarray]:
        """``(bids, asks)``: ``(n, depth, 2)`` arrays of ``[price, size]`` rows, the size
        NaN wherever the price is (padding). Views of the tape's storage when the level
        arrays are its views; otherwise stacked once (and again if they are replaced)."""
        found = self._cached("_sides")
        if found is None:
            found = self._cache("_sides", (_stack(self.bid_price, self.bid_size),
                                           _stack(self.ask_price, self.ask_size)))
        return found

    def rows(self) -> BookRows:
        """Per-row facts of the levels (:func:`makerlab.sim.book_rows.book_rows`), once."""
        found = self._cached("_rows")
        if found is None:
            found = self._cache("_rows", book_rows(*self._levels_now()))
        return found

    @classmethod
    def stacked(cls, exc: str, ticker: str, exchange_ts: np.ndarray, local_ts: np.ndarray,
                bids: np.ndarray, asks: np.ndarray) -> BookTape:
        """A tape over ``(n, depth, 2)`` ``[price, size]`` arrays (sizes NaN where prices
        are), its level arrays their views."""
        tape = cls(exc, ticker, exchange_ts, local_ts, bids[:, :, 0], bids[:, :, 1],
                   asks[:, :, 0], asks[:, :, 1])
        tape._cache("_sides", (bids, asks))
        return tape

    @classmethod
    def from_records(cls, exc: str, ticker: str, records: Sequence[dict]) -> BookTape:
        """From the tutorial's ``[{'ts': ms, 'b': [[p, s], ...], 'a': [...]}, ...]``."""
        n = len(records)
        depth = max([1, *(max(len(r["b"]), len(r["a"])) for r in records)])
        bids, asks = np.full((n, depth, 2), np.nan), np.full((n, depth, 2), np.nan)
        counts = np.array([(_fill_side(bids, i, rec["b"]), _fill_side(asks, i, rec["a"]))
                           for i, rec in enumerate(records)], dtype=np.int64).reshape(n, 2)
        source = tape_source(exc, ticker, "book")
        for name, listed_levels, side in (("bid", counts[:, 0], bids),
                                          ("ask", counts[:, 1], asks)):
            listed = np.arange(depth) < listed_levels[:, None]
            unpriced = listed & np.isnan(side[..., 0])
            if unpriced.any():  # a NaN price in the data would otherwise read as no level
                row, level = np.argwhere(unpriced)[0]
                raise DataError(f"{name} level {level + 1} has no price (NaN)",
                                source=source, line=int(row) + 1)
            side[..., 1][np.isnan(side[..., 0])] = np.nan
        ts = ms_to_ns([r["ts"] for r in records], source)
        return cls.stacked(exc, ticker, ts, ts.copy(), bids, asks)

    @classmethod
    def from_arrays(cls, exc: str, ticker: str, books: Any) -> BookTape:
        """From :class:`~makerlab.data.arrays.SnapshotArrays` (the levels stacked once)."""
        return cls.stacked(exc, ticker, books.exchange_ts, books.local_ts,
                           _stack(books.bid_price, books.bid_size),
                           _stack(books.ask_price, books.ask_size))

    def sorted_by_exchange_time(self) -> BookTape:
        """A copy in exchange-time order (stable)."""
        order = np.argsort(self.exchange_ts, kind="stable")
        bids, asks = self.sides()
        return BookTape.stacked(self.exc, self.ticker, self.exchange_ts[order],
                                self.local_ts[order], bids[order], asks[order])


def _stack(prices: np.ndarray, sizes: np.ndarray) -> np.ndarray:
    """``(n, depth, 2)`` ``[price, size]`` rows, the size NaN where the price is."""
    out = np.empty((*prices.shape, 2))
    out[..., 0] = prices
    out[..., 1] = sizes
    missing = np.isnan(prices)
    if missing.any():
        out[..., 1][missing] = np.nan
    return out


def _fill_side(side: np.ndarray, i: int, levels: Any) -> int:
    """Row ``i`` of ``side`` set to ``levels``; how many levels they list."""
    if not len(levels):
        return 0
    arr = np.asarray(levels, dtype=float).reshape(-1, 2)
    side[i, : len(arr)] = arr
    return len(arr)


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
        source = tape_source(exc, ticker, "trade")
        arr = _floats(rows, source, "trade record", width=4).reshape(-1, 4)
        bad = np.flatnonzero(~np.isin(arr[:, 3], (-1.0, 1.0)))
        if bad.size:
            raise DataError(f"trade dir {arr[bad[0], 3]} must be +1 or -1", source=source,
                            line=int(bad[0]) + 1)
        ts = ms_to_ns(arr[:, 0], source)
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
    """The local-time rows of the tapes whose index is in ``deliver_books`` /
    ``deliver_trades`` (subscribed feeds), merged by the ordering rules of the module
    docstring (exchange-time rows are stepped per engine: :class:`EngineRows`)."""
    streams: tuple[tuple[int, Sequence[BookTape | TradeTape], set[int]], ...] = (
        (TRADE_LOCAL, trades, deliver_trades), (BOOK_LOCAL, books, deliver_books))
    return _merged([_part(tape.local_ts, kind, i) for kind, tapes, wanted in streams
                    for i, tape in enumerate(tapes) if i in wanted])


def merge_exchange(books: Sequence[BookTape], trades: Sequence[TradeTape]) -> MarketTimeline:
    """The exchange-time rows of every tape, merged by the ordering rules of the module
    docstring (the paper exchange's desk steps every engine through them)."""
    streams: tuple[tuple[int, Sequence[BookTape | TradeTape]], ...] = (
        (TRADE_EXCH, trades), (BOOK_EXCH, books))
    return _merged([_part(tape.exchange_ts, kind, i) for kind, tapes in streams
                    for i, tape in enumerate(tapes)])


def _merged(parts: list[tuple[np.ndarray, ...]]) -> MarketTimeline:
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


class EngineRows:
    """One matching engine's exchange-time rows, for stepping or for lazy catching up.

    While its engine holds no resting order, no row of an instrument needs Python: the
    engine only has to know its current book row when something reads it, and that is
    :meth:`row_at` (a ``searchsorted``). While it holds orders, the replayer steps through
    :meth:`steps` (its book and trade rows merged in timeline order) one row at a time.

    Args:
        book, trades: the engine's tapes (either may be ``None``).
        book_stream, trade_stream: their tape indices (the timeline's ``stream``).
        more: later rows follow in another window (a streaming replay,
            :mod:`makerlab.sim.streaming`): :meth:`steps` ends with a row at
            :data:`NEVER` that is never stepped, so a stepping lane stays in step until
            the next window replaces its rows.
    """

    def __init__(self, book: BookTape | None, trades: TradeTape | None, book_stream: int,
                 trade_stream: int, more: bool = False) -> None:
        self.book, self.trades = book, trades
        self.book_stream, self.trade_stream = book_stream, trade_stream
        self.more = more
        self._t = self._rows = None
        if book is not None and len(book):
            ets = np.asarray(book.exchange_ts, np.int64)
            order = None if bool(np.all(ets[1:] >= ets[:-1])) else np.argsort(ets,
                                                                               kind="stable")
            self._t = ets if order is None else ets[order]
            self._rows = order
        self._steps: tuple[list[int], ...] | None = None
        self._step_arrays: tuple[np.ndarray, ...] = ()
        self._valid = (0, -1, -1)  # [from, until) ns where the cached row holds, the row

    def row_at(self, t_ns: int) -> int:
        """The engine's book row after every exchange-time row at or before ``t_ns``."""
        lo, hi, row = self._valid
        if lo <= t_ns < hi:
            return row
        if self._t is None:
            return -1
        times = self._t
        k = int(np.searchsorted(times, t_ns, "right")) - 1
        row = k if k < 0 or self._rows is None else int(self._rows[k])
        lo = int(times[k]) if k >= 0 else -(1 << 62)
        hi = int(times[k + 1]) if k + 1 < len(times) else 1 << 62
        self._valid = (lo, hi, row)
        return row

    def steps(self) -> tuple[list[int], list[int], list[int], list[int]]:
        """``(t, kind, stream, row)`` lists of every row in timeline order (built once)."""
        if self._steps is None:
            parts = []
            if self.trades is not None:
                parts.append(_part(self.trades.exchange_ts, TRADE_EXCH, self.trade_stream))
            if self.book is not None:
                parts.append(_part(self.book.exchange_ts, BOOK_EXCH, self.book_stream))
            t, kind, stream, row = (np.concatenate([p[k] for p in parts]) if parts
                                    else np.empty(0, np.int64) for k in range(4))
            order = np.lexsort((row, stream, kind, t))
            self._step_arrays = tuple(a[order] for a in (t, kind, stream, row))
            self._steps = tuple(a.tolist() for a in self._step_arrays)
            if self.more:
                for column, value in zip(self._steps, (NEVER, BOOK_EXCH, -1, -1), strict=True):
                    column.append(value)
        return self._steps  # type: ignore[return-value]

    def step_arrays(self) -> tuple[np.ndarray, ...]:
        """:meth:`steps` as arrays, without the closing :data:`NEVER` row."""
        self.steps()
        return self._step_arrays

    def first_after(self, t_ns: int) -> int:
        """Index in :meth:`steps` of the first row later than ``t_ns``."""
        return bisect.bisect_right(self.steps()[0], t_ns)


class EventQueue:
    """Scheduled events: a heap of ``(t_ns, seq, callback, payload)``; ties run FIFO."""

    def __init__(self) -> None:
        self._heap: list[tuple[int, int, Callable[[Any], Any], Any]] = []
        self._seq = itertools.count()

    def push(self, t_ns: int, callback: Callable[[Any], Any], payload: Any = None) -> None:
        """Run ``callback(payload)`` at ``t_ns`` (it may return an awaitable)."""
        heapq.heappush(self._heap, (int(t_ns), next(self._seq), callback, payload))

    def peek_time(self, default: int | None = None) -> int | None:
        """Time of the next event, ``default`` if empty."""
        return self._heap[0][0] if self._heap else default

    def peek(self) -> tuple[int, Any] | None:
        """``(time, payload)`` of the next event, ``None`` if empty."""
        if not self._heap:
            return None
        t, _, _, payload = self._heap[0]
        return t, payload

    def pop(self) -> tuple[int, Callable[[Any], Any], Any]:
        t, _, callback, payload = heapq.heappop(self._heap)
        return t, callback, payload

    def __len__(self) -> int:
        return len(self._heap)
