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
- **validated once, trusted per row**: each block of rows is checked with numpy (levels
  best first, strictly ordered, NaN padding only at the end, positive finite prices and
  sizes; trades with positive finite price and size and ``dir`` +/-1). Clean rows reach
  ``LOB._load_snapshot``/``Trades._append_row`` as ready numpy rows; any other row takes
  the public, validating ``update``/``append`` exactly as before (same result or error).
- **bounded memory**: rows are prepared in blocks of :attr:`BLOCK` rows, so delivery
  needs memory in proportion to the block, not to the tape.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from makerlab.errors import ConfigError
from makerlab.sim.timeline import BookTape, TradeTape
from makerlab.trading.feed import Feed, Subscription, run_handlers
from makerlab.trading.protocols import MarketDataListener, MarketKind
from makerlab.units import NS_PER_MS

__all__ = ["BLOCK", "BookDelivery", "MockFeed", "ReplayMarketData", "TradeDelivery",
           "deliveries"]

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
        self.mid = ((tape.bid_price[span, 0] + tape.ask_price[span, 0]) / 2).tolist()
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
        self._lo, self._hi, self._block = 0, 0, None

    def _block_of(self, row: int) -> _BookBlock:
        if not self._lo <= row < self._hi or self._block is None:
            self._lo = row - row % BLOCK
            self._hi = min(self._lo + BLOCK, len(self.tape))
            self._block = _BookBlock(self.tape, self._lo, self._hi, self._depths)
        return self._block

    def push(self, row: int) -> None:
        """Update every subscription's LOB with ``row`` (only when :attr:`quiet`)."""
        block = self._block_of(row)
        k = row - self._lo
        ts = block.ms[k]
        for sub in self.subs:
            self._update(sub, block, k, row, ts)

    async def deliver(self, row: int) -> None:
        """Update each subscription's LOB with ``row``, then run its handlers."""
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
        lob._load_snapshot(sub.last_ts, bids[:nb if cap is None else min(nb, cap)],
                           asks[:na if cap is None else min(na, cap)], bids[:depth],
                           asks[:depth], block.mid[k])


class _TradeBlock:
    """Rows ``[lo, hi)`` of a trade tape as ``(ts_ms, price, size, dir)`` float rows."""

    def __init__(self, tape: TradeTape, lo: int, hi: int) -> None:
        rows = np.empty((hi - lo, 4))
        rows[:, 0] = tape.exchange_ts[lo:hi] // NS_PER_MS
        rows[:, 1], rows[:, 2] = tape.price[lo:hi], tape.size[lo:hi]
        rows[:, 3] = tape.side[lo:hi]
        price, size = rows[:, 1], rows[:, 2]
        clean = (price > 0) & (price < np.inf) & (size > 0) & (size < np.inf)
        clean &= np.abs(rows[:, 3]) == 1
        rows.flags.writeable = False
        self.rows, self.clean = rows, clean.tolist()
        self.ms = (tape.exchange_ts[lo:hi] // NS_PER_MS).tolist()


class TradeDelivery:
    """Delivers a trade tape's rows to its ``trades`` and ``bars`` subscriptions."""

    def __init__(self, tape: TradeTape, subs: list[Subscription]) -> None:
        self.tape, self.subs = tape, subs
        self._lo, self._hi, self._block = 0, 0, None
        self.quiet = all(sub.kind == "trades" and not sub.handlers for sub in subs)

    def _block_of(self, row: int) -> _TradeBlock:
        if not self._lo <= row < self._hi or self._block is None:
            self._lo = row - row % BLOCK
            self._hi = min(self._lo + BLOCK, len(self.tape))
            self._block = _TradeBlock(self.tape, self._lo, self._hi)
        return self._block

    def _tuple(self, row: int, ts: int) -> tuple[int, float, float, int]:
        tape = self.tape
        return ts, float(tape.price[row]), float(tape.size[row]), int(tape.side[row])

    def push(self, row: int) -> None:
        """Append ``row`` to every subscription's Trades (only when :attr:`quiet`)."""
        block = self._block_of(row)
        k = row - self._lo
        ts = block.ms[k]
        for sub in self.subs:
            self._append(sub, block, k, row, ts)

    async def deliver(self, row: int) -> None:
        """Append ``row`` to each subscription's buffer, then run its handlers."""
        block = self._block_of(row)
        k = row - self._lo
        ts = block.ms[k]
        for sub in self.subs:
            if sub.kind == "trades":
                trade = self._append(sub, block, k, row, ts)
                if sub.handlers:
                    await run_handlers(sub.handlers, trade or self._tuple(row, sub.last_ts))
                continue
            sub.last_ts = max(ts, sub.last_ts)
            msg = sub.obj.update(self._tuple(row, sub.last_ts))
            if msg is not None:
                await run_handlers(sub.handlers, msg)

    def _append(self, sub: Subscription, block: _TradeBlock, k: int, row: int,
                ts: int) -> tuple[int, float, float, int] | None:
        """Append to a ``trades`` subscription; the tuple if it was built."""
        if block.clean[k] and ts >= sub.last_ts:
            sub.last_ts = ts
            sub.obj._append_row(block.rows[k])
            return None
        sub.last_ts = max(ts, sub.last_ts)
        trade = self._tuple(row, sub.last_ts)
        sub.obj.append(trade)
        return trade


def deliveries(feed: Feed, books: list[BookTape], trades: list[TradeTape]
               ) -> tuple[dict[int, BookDelivery], dict[int, TradeDelivery]]:
    """``({book tape index: delivery}, {trade tape index: delivery})`` for the tapes
    ``feed`` has subscriptions on (others are never delivered)."""
    subs = feed.subscriptions()

    def matching(tape: Any, kinds: tuple[str, ...]) -> list[Subscription]:
        return [s for s in subs if s.kind in kinds and (s.exc, s.ticker) == (tape.exc,
                                                                              tape.ticker)]

    book_out = {i: BookDelivery(t, found) for i, t in enumerate(books)
                if (found := matching(t, ("l2book",)))}
    trade_out = {i: TradeDelivery(t, found) for i, t in enumerate(trades)
                 if (found := matching(t, ("trades", "bars")))}
    return book_out, trade_out
