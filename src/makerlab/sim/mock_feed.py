"""The replayed market as a :class:`~makerlab.trading.feed.Feed` source, and its delivery
paths.

:class:`MockFeed` is the one :class:`~makerlab.trading.feed.Feed` (subscriptions, feed
ids, buffers, handlers) over :class:`ReplayMarketData`, the
:class:`~makerlab.trading.protocols.MarketDataSource` of a
:class:`~makerlab.sim.replayer.Replayer`.
:class:`BookDelivery` and :class:`TradeDelivery` deliver one tape's rows to its
subscriptions at local time. Rules:

- **delivery at local time**: the LOB and Trades buffers are updated, then handlers run,
  at the data's local time (recorded, or exchange time + FEED_PUBLIC), stamped with the
  row's exchange time in ms, never earlier than the subscription's last delivery.
- **validated once, trusted per row**: book rows are checked once per tape by the
  compiled pass of :mod:`makerlab.sim.book_rows` (levels best first, strictly ordered, NaN
  padding only at the end, positive finite prices and sizes), trade rows per block with
  numpy (positive finite price and size, ``dir`` +/-1). Clean book rows reach
  ``LOB._load_snapshot`` as ready numpy rows, clean prints the buffer's ring at once
  (below); any other row takes the public, validating ``update``/``append`` exactly as
  before (same result or error).
- **bounded memory**: rows are prepared in blocks of :attr:`BLOCK` rows, so delivery
  needs memory in proportion to the block, not to the tape.
- **unhandled trades are written when read**: a trade tape whose every subscription is a
  ``trades`` feed without handlers is not delivered row by row; each buffer is brought up
  to the replay's position when it is read, and filled when the replay ends
  (:class:`LazyTrades`): the same rows in the same order, as the loop's cursor
  (:class:`ReplayCursor`) says delivery would have written them; a bad row raises the
  validating ``append``'s error at that read.
- **handled trades reach their buffer when it is read**: a clean print of a ``trades``
  subscription delivered row by row goes to the handlers at once and into the buffer when
  it is next read or appended to, when the tape changes and when the replay ends
  (:class:`_PendingPrints`, the newest the buffer can hold); a print that is not clean is
  appended through the validating ``append`` at delivery, after those pending.
"""

from __future__ import annotations

import bisect
from collections.abc import Awaitable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from makerlab.core.callbacks import begin_handlers, run_handlers
from makerlab.core.clock import ReplayClock
from makerlab.errors import ConfigError
from makerlab.sim.timeline import TRADE_LOCAL, BookTape, TradeTape
from makerlab.trading.feed import Feed, Subscription
from makerlab.trading.protocols import MarketDataListener, MarketKind
from makerlab.units import NS_PER_MS

__all__ = ["BLOCK", "BookDelivery", "Deliveries", "LazyTrades", "MockFeed", "ReplayCursor",
           "ReplayMarketData", "TradeDelivery", "deliveries"]

BLOCK = 4096  # rows prepared at once


class ReplayMarketData:
    """A Replayer as market-data source: it serves the markets it replays, and its loop
    delivers to the Feed's subscriptions directly (:func:`deliveries`)."""

    def __init__(self, replayer: Any) -> None:
        self.replayer = replayer

    def check_market(self, kind: MarketKind, exchange: str, symbol: str) -> None:
        self.replayer.check_market(kind.value, exchange, symbol)

    async def subscribe(self, kind: MarketKind, exchange: str, symbol: str,
                        depth: int) -> None:
        if self.replayer.started:
            raise ConfigError(f"{exchange}/{symbol}: subscribe before replayer.play() starts")

    def attach(self, listener: MarketDataListener) -> None:
        """Nothing to attach: the replay loop reads the Feed's subscriptions."""

    async def close(self) -> None:
        """Nothing to close."""


class MockFeed(Feed):
    """The tutorial's Feed over the replayed market (``market`` is the Replayer)."""

    def __init__(self, market: Any) -> None:
        super().__init__(source=ReplayMarketData(market))


class _BookBlock:
    """Rows ``[lo, hi)`` of a book tape prepared for trusted delivery: views of the tape's
    stacked levels (:meth:`BookTape.sides <makerlab.sim.timeline.BookTape.sides>`), padded
    to each subscribed depth beyond the tape's only."""

    def __init__(self, tape: BookTape, lo: int, hi: int, depths: set[int]) -> None:
        rows = tape.rows()
        span = slice(lo, hi)
        self.clean = (rows.bids.clean[span] & rows.asks.clean[span]).tolist()
        self.ms = (tape.exchange_ts[span] // NS_PER_MS).tolist()
        self.nb, self.na = rows.bids.count[span].tolist(), rows.asks.count[span].tolist()
        bid, ask = tape.bid_price[span, 0], tape.ask_price[span, 0]  # NaN: an empty side
        self.top = list(zip(bid.tolist(), ask.tolist(), ((bid + ask) / 2).tolist(),
                            strict=True))
        bids, asks = tape.sides()
        self.bids = {d: _padded(bids[span], d) for d in depths}
        self.asks = {d: _padded(asks[span], d) for d in depths}


def _padded(levels: np.ndarray, depth: int) -> np.ndarray:
    """Read-only ``(n, max(D, depth), 2)`` levels: a view, or NaN-padded beyond the
    tape's depth ``D``."""
    n, d, _ = levels.shape
    if depth > d:
        out = np.full((n, depth, 2), np.nan)
        out[:, :d] = levels
        levels = out
    else:
        levels = levels.view()
    levels.flags.writeable = False
    return levels


class BookDelivery:
    """Delivers a book tape's rows to its ``l2book`` subscriptions."""

    def __init__(self, tape: BookTape, subs: list[Subscription]) -> None:
        self.tape, self.subs = tape, subs
        self._depths = {sub.obj.depth for sub in subs}
        self.quiet = not any(sub.handlers for sub in subs)  # no handler: push() will do
        self._lo, self._hi = 0, 0  # the rows of ``_block``
        self._block = _BookBlock(tape, 0, 0, self._depths)

    def rebase(self, tape: BookTape) -> None:
        """Deliver ``tape``'s rows from now on (a streaming replay's next window)."""
        self.tape, self._lo, self._hi = tape, 0, 0
        self._block = _BookBlock(tape, 0, 0, self._depths)

    def _block_of(self, row: int) -> _BookBlock:
        if not self._lo <= row < self._hi:
            self._lo = row - row % BLOCK
            self._hi = min(self._lo + BLOCK, len(self.tape))
            self._block = _BookBlock(self.tape, self._lo, self._hi, self._depths)
        return self._block

    def push(self, row: int) -> None:
        """Update every subscription's LOB with ``row`` (only when :attr:`quiet`)."""
        block = self._block if self._lo <= row < self._hi else self._block_of(row)
        k = row - self._lo
        ts = block.ms[k]
        for sub in self.subs:
            self._update(sub, block, k, row, ts)

    def deliver(self, row: int) -> Awaitable[None] | None:
        """Update each subscription's LOB with ``row``, then run its handlers: what is
        returned is to be awaited at once (``None``: nothing is). One subscription, the
        common case, is updated now and its handlers begun; several go in order in
        :meth:`_deliver_each`."""
        if len(self.subs) > 1:
            return self._deliver_each(row)
        block = self._block if self._lo <= row < self._hi else self._block_of(row)
        k = row - self._lo
        sub = self.subs[0]
        self._update(sub, block, k, row, block.ms[k])
        return begin_handlers(sub.handlers, sub.obj)

    async def _deliver_each(self, row: int) -> None:
        block = self._block_of(row)
        k = row - self._lo
        ts = block.ms[k]
        for sub in self.subs:
            self._update(sub, block, k, row, ts)
            if sub.handlers:
                await run_handlers(sub.handlers, sub.obj)

    def _update(self, sub: Subscription, block: _BookBlock, k: int, row: int,
                ts: int) -> None:
        lob = sub.obj
        if ts > sub.last_ts:
            sub.last_ts = ts
        if not block.clean[k]:
            bids, asks = self.tape.levels(row)
            lob.update(sub.last_ts, bids, asks, is_snapshot=True, is_sorted=True)
            return
        nb, na = block.nb[k], block.na[k]
        depth, cap = lob.depth, lob.safe_depth
        bids, asks = block.bids[depth][k], block.asks[depth][k]
        if cap is not None:
            nb, na = min(nb, cap), min(na, cap)
        if len(bids) > depth:  # the tape is deeper than the book: buffer the top only
            padded_bids, padded_asks = bids[:depth], asks[:depth]
        else:
            padded_bids, padded_asks = bids, asks
        lob._load_snapshot(sub.last_ts, bids if nb == len(bids) else bids[:nb],
                           asks if na == len(asks) else asks[:na], padded_bids, padded_asks,
                           block.top[k])


def _trade_rows(tape: TradeTape, at: slice | np.ndarray) -> np.ndarray:
    """The prints ``at`` of ``tape`` as ``(ts_ms, price, size, dir)`` float rows, as a
    :class:`~makerlab.core.trades.Trades` buffer holds them."""
    ts = np.asarray(tape.exchange_ts, np.int64)[at] // NS_PER_MS
    rows = np.empty((len(ts), 4))
    rows[:, 0] = ts
    rows[:, 1], rows[:, 2], rows[:, 3] = tape.price[at], tape.size[at], tape.side[at]
    return rows


def _clean(rows: np.ndarray) -> np.ndarray:
    """Which trade rows need no check: positive finite price and size, ``dir`` +/-1."""
    price, size = rows[:, 1], rows[:, 2]
    return (price > 0) & (price < np.inf) & (size > 0) & (size < np.inf) & (
        np.abs(rows[:, 3]) == 1)


class _TradeBlock:
    """Rows ``[lo, hi)`` of a trade tape: each clean print as the ``(ts_ms, price, size,
    dir)`` tuple its handlers receive (``None`` where the print is not clean), and each
    print's exchange ms."""

    def __init__(self, tape: TradeTape, lo: int, hi: int) -> None:
        rows = _trade_rows(tape, slice(lo, hi))
        self.ms: list[int] = rows[:, 0].astype(np.int64).tolist()
        trades = zip(self.ms, rows[:, 1].tolist(), rows[:, 2].tolist(),
                     rows[:, 3].astype(np.int64).tolist(), strict=True)
        self.trades: list[tuple[int, float, float, int] | None] = [
            trade if clean else None for trade, clean in zip(trades, _clean(rows).tolist(),
                                                             strict=True)]


class _PendingPrints:
    """Clean prints delivered to a ``trades`` subscription and not yet in its buffer: they
    are written when the buffer is next read or appended to (its ``_pull``), when the tape
    changes and when the replay ends, in delivery order; only the newest the buffer can
    hold are kept (:meth:`trim`, at each block of prints, so the list stays under
    :attr:`bound`)."""

    __slots__ = ("bound", "rows", "tape", "trades")

    def __init__(self, tape: TradeTape, trades: Any) -> None:
        self.rows: list[int] = []  # tape rows, in delivery order
        self.tape, self.trades = tape, trades
        self.bound = 2 * trades._ring.maxlen + 1024 + BLOCK
        trades._pull = self.write

    def trim(self) -> None:
        """Drop the prints the buffer could not hold, when they are many (``rows`` grows
        by at most :data:`BLOCK` between two calls)."""
        rows = self.rows
        if len(rows) >= self.bound - BLOCK:
            del rows[:-self.trades._ring.maxlen]

    def write(self) -> None:
        """Write the pending prints, as appending each at its delivery would have."""
        rows = self.rows
        if not rows:
            return
        at = np.array(rows[-self.trades._ring.maxlen:])
        rows.clear()
        self.trades._ring._extend(_trade_rows(self.tape, at))

    def rebase(self, tape: TradeTape) -> None:
        self.write()
        self.tape = tape

    def close(self) -> None:
        self.write()
        self.trades._pull = None


class TradeDelivery:
    """Delivers a trade tape's rows to its ``trades`` and ``bars`` subscriptions (clean
    prints reach a ``trades`` buffer when it is read: :class:`_PendingPrints`)."""

    def __init__(self, tape: TradeTape, subs: list[Subscription]) -> None:
        self.tape, self.subs = tape, subs
        self._pending = [_PendingPrints(tape, s.obj) if s.kind == "trades" else None
                         for s in subs]
        # the common case, one ``trades`` subscription: delivered by :meth:`deliver` itself
        self._one = self._pending[0] if len(subs) == 1 else None
        self._lo, self._hi = 0, 0  # the rows of ``_block``
        self._block = _TradeBlock(tape, 0, 0)

    def rebase(self, tape: TradeTape) -> None:
        """Deliver ``tape``'s rows from now on (a streaming replay's next window)."""
        for pending in self._pending:
            if pending is not None:
                pending.rebase(tape)
        self.tape, self._lo, self._hi = tape, 0, 0
        self._block = _TradeBlock(tape, 0, 0)

    def close(self) -> None:
        """Write every pending print (the replay has ended) and stop filling the buffers."""
        for pending in self._pending:
            if pending is not None:
                pending.close()

    def _block_of(self, row: int) -> _TradeBlock:
        if not self._lo <= row < self._hi:
            self._lo = row - row % BLOCK
            self._hi = min(self._lo + BLOCK, len(self.tape))
            self._block = _TradeBlock(self.tape, self._lo, self._hi)
            for pending in self._pending:
                if pending is not None:
                    pending.trim()
        return self._block

    def deliver(self, row: int) -> Awaitable[None] | None:
        """Append ``row`` to each subscription's buffer, then run its handlers: what is
        returned is to be awaited at once (``None``: nothing is). A single ``trades``
        subscription, the common case, is appended to now and its handlers begun."""
        pending = self._one
        if pending is None:  # several subscriptions, or a bars subscription
            return self._deliver_each(row)
        block = self._block if self._lo <= row < self._hi else self._block_of(row)
        sub = self.subs[0]
        return begin_handlers(sub.handlers,
                              self._append(sub, pending, block, row - self._lo, row))

    async def _deliver_each(self, row: int) -> None:
        block = self._block_of(row)
        k = row - self._lo
        for sub, pending in zip(self.subs, self._pending, strict=True):
            if pending is not None:
                trade = self._append(sub, pending, block, k, row)
                if sub.handlers:
                    await run_handlers(sub.handlers, trade)
                continue
            sub.last_ts = max(block.ms[k], sub.last_ts)
            msg = sub.obj.update(self._tuple(row, sub.last_ts))
            if msg is not None:
                await run_handlers(sub.handlers, msg)

    def _tuple(self, row: int, ts: int) -> tuple[int, float, float, int]:
        tape = self.tape
        return ts, float(tape.price[row]), float(tape.size[row]), int(tape.side[row])

    def _append(self, sub: Subscription, pending: _PendingPrints, block: _TradeBlock,
                k: int, row: int) -> tuple[int, float, float, int]:
        """Append to a ``trades`` subscription (a clean print in time order: pending;
        another is checked by ``append``, which first writes the pending ones); the trade
        its handlers receive."""
        trade = block.trades[k]
        if trade is not None and trade[0] >= sub.last_ts:
            sub.last_ts = trade[0]
            pending.rows.append(row)
            return trade
        sub.last_ts = max(block.ms[k], sub.last_ts)
        trade = self._tuple(row, sub.last_ts)
        sub.obj.append(trade)
        return trade


class ReplayCursor:
    """Where the replay loop is, for buffers filled when read: the clock's time and, at
    that time, the ``(kind, stream)`` of the local row being delivered, or
    :attr:`SCHEDULED` (after every market row of that time) while a scheduled event runs
    and once the replay has ended."""

    SCHEDULED = 4  # after TRADE_LOCAL (2) and BOOK_LOCAL (3)

    __slots__ = ("clock", "kind", "stream")

    def __init__(self, clock: ReplayClock) -> None:
        self.clock, self.kind, self.stream = clock, self.SCHEDULED, 0


class LazyTrades:
    """A ``trades`` subscription nobody handles: its rows are not delivered one by one but
    written into its :class:`~makerlab.core.trades.Trades` when the buffer is read (the
    rows the loop has passed, as delivery would have written them: same values and
    order, the same error for a bad row, raised by the read)."""

    def __init__(self, tape: TradeTape, stream: int, sub: Subscription,
                 cursor: ReplayCursor, span: tuple[int, int] | None = None) -> None:
        self.stream, self.sub, self.cursor = stream, sub, cursor
        self._load(tape, span)
        sub.obj._pull = self.pull

    def _load(self, tape: TradeTape, span: tuple[int, int] | None) -> None:
        """The rows of ``tape`` received in ``span`` (``[lo, hi)`` ns; all if None)."""
        local = np.asarray(tape.local_ts, np.int64)
        order = np.argsort(local, kind="stable")  # delivery order in one tape
        if span is not None:
            order = order[(local[order] >= span[0]) & (local[order] < span[1])]
        self.times: list[int] = local[order].tolist()  # bisected in Python on each read
        self.rows = _trade_rows(tape, order)
        # once per window, not per read: each row's exchange ms raised to the latest
        # before it (the buffer's clock never goes back), and the count of bad rows up to it
        np.maximum.accumulate(self.rows[:, 0], out=self.rows[:, 0])
        self.bad_upto = np.concatenate(([0], np.cumsum(~_clean(self.rows)))).tolist()
        self.pos = 0

    def rebase(self, tape: TradeTape, span: tuple[int, int]) -> None:
        """Write every row left (all received before the next window's ``span``), then
        fill from ``tape``'s rows received in ``span``."""
        if self.pos < len(self.times):
            trades, self.sub.obj._pull = self.sub.obj, None
            try:
                self._write(trades, self.pos, len(self.times))
            finally:
                trades._pull = self.pull
        self._load(tape, span)

    def pull(self) -> None:
        """Write the rows delivery would have written by now."""
        c, pos, times = self.cursor, self.pos, self.times
        now = c.clock.ns
        if pos == len(times) or now < times[pos]:  # no row received since the last read
            return
        passed = (TRADE_LOCAL, self.stream) < (c.kind, c.stream)
        end = (bisect.bisect_right if passed else bisect.bisect_left)(times, now, pos)
        if end > pos:
            trades, self.sub.obj._pull = self.sub.obj, None
            try:
                self._write(trades, self.pos, end)
            finally:
                trades._pull = self.pull
            self.pos = end

    def close(self) -> None:
        """Write every row (the replay has ended) and stop filling the buffer."""
        self.pull()
        self.sub.obj._pull = None

    def _write(self, trades: Any, lo: int, hi: int) -> None:
        clean = self.bad_upto[hi] == self.bad_upto[lo]
        if clean:  # only what the buffer keeps
            lo = max(lo, hi - trades._ring.maxlen)
        rows = self.rows[lo:hi]
        # the running maximum from ``last_ts`` on: ``last_ts`` is at least every row
        # written before ``lo``, so the tape's running maximum raised to it is the same,
        # and only rows behind it (a window's first rows) need raising
        if self.sub.last_ts > rows[0, 0]:
            rows = rows.copy()
            np.maximum(rows[:, 0], self.sub.last_ts, out=rows[:, 0])
        self.sub.last_ts = int(rows[-1, 0])
        if clean:
            trades._ring._extend(rows)
            return
        for ts, p, q, d in rows.tolist():  # a bad row raises where append raises
            trades.append((int(ts), p, q, int(d)))


@dataclass(eq=False)
class Deliveries:
    """The replay's deliveries, by tape index: books and trades delivered row by row,
    and the trades subscriptions filled when read."""

    books: dict[int, BookDelivery]
    trades: dict[int, TradeDelivery]
    lazy: list[LazyTrades]

    def rebase(self, books: Sequence[BookTape], trades: Sequence[TradeTape],
               span: tuple[int, int]) -> None:
        """Deliver the next window's tapes (``span``: its local times)."""
        for i, book in self.books.items():
            book.rebase(books[i])
        for i, trade in self.trades.items():
            trade.rebase(trades[i])
        for lazy in self.lazy:
            lazy.rebase(trades[lazy.stream], span)


def deliveries(feed: Feed, books: list[BookTape], trades: list[TradeTape],
               cursor: ReplayCursor, span: tuple[int, int] | None = None) -> Deliveries:
    """The deliveries of the tapes ``feed`` has subscriptions on (others are never
    delivered); ``trades`` subscriptions without handlers on a tape nobody else reads
    are filled when read (with the rows received in ``span`` only, if given: a streaming
    window)."""
    subs = feed.subscriptions()

    def matching(tape: Any, kinds: tuple[str, ...]) -> list[Subscription]:
        return [s for s in subs if s.kind in kinds and (s.exc, s.ticker) == (tape.exc,
                                                                              tape.ticker)]

    book_out = {i: BookDelivery(t, found) for i, t in enumerate(books)
                if (found := matching(t, ("l2book",)))}
    trade_out, lazy = {}, []
    for i, tape in enumerate(trades):
        found = matching(tape, ("trades", "bars"))
        if found and all(s.kind == "trades" and not s.handlers for s in found):
            lazy += [LazyTrades(tape, i, sub, cursor, span) for sub in found]
        elif found:
            trade_out[i] = TradeDelivery(tape, found)
    return Deliveries(book_out, trade_out, lazy)
