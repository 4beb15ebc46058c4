"""What the page counts itself: two listeners beside the OMS and the Feed.

The OMS and the Feed keep the state (orders, positions, books); what they do not keep
(how many orders were answered, the latest fills, the market data's health) is counted
here, by listeners attached to the order venue and the market-data source. Each event
costs a few counter updates and no allocation but a fill's; nothing here reads a clock
or awaits. Rules:

- :class:`OrderTap`: per exchange, acknowledged orders, rejects (with the latest
  reason), cancels, amends, expiries and fills; the latest ``keep`` fills (a
  :class:`~makerlab.core.events.Fill` each).
- :class:`FeedTap`: per ``(exchange, symbol)``, messages (books and trades), the last
  message's local and exchange times, gaps, resyncs and errors; per exchange (the
  connection's events) reconnects (every CONNECTED after the first) and disconnects.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

from makerlab.core.events import (
    BookUpdate,
    FeedStatus,
    Fill,
    OrderEventKind,
    OrderUpdate,
    StatusKind,
    TradeEvent,
)

__all__ = ["FeedCounts", "FeedTap", "OrderCounts", "OrderTap"]


@dataclass(slots=True)
class OrderCounts:
    """One exchange's order events so far."""

    acks: int = 0
    rejects: int = 0
    cancels: int = 0
    amends: int = 0
    expiries: int = 0
    fills: int = 0
    last_reject: str = ""


_COUNTED = {OrderEventKind.ACK: "acks", OrderEventKind.CANCEL_ACK: "cancels",
            OrderEventKind.AMEND_ACK: "amends", OrderEventKind.EXPIRE: "expiries"}


class OrderTap:
    """An order listener counting answers and keeping the latest fills."""

    def __init__(self, keep: int) -> None:
        self.counts: dict[str, OrderCounts] = {}
        self.fills: deque[Fill] = deque(maxlen=keep)

    def _of(self, exchange: str) -> OrderCounts:
        counts = self.counts.get(exchange)
        if counts is None:
            counts = self.counts[exchange] = OrderCounts()
        return counts

    async def on_order_update(self, update: OrderUpdate) -> None:
        if update.kind is OrderEventKind.REJECT:
            counts = self._of(update.exchange)
            counts.rejects += 1
            counts.last_reject = f"{update.code} {update.reason}".strip()
            return
        name = _COUNTED.get(update.kind)
        if name is not None:
            counts = self._of(update.exchange)
            setattr(counts, name, getattr(counts, name) + 1)

    async def on_fill(self, fill: Fill) -> None:
        self._of(fill.exchange).fills += 1
        self.fills.append(fill)


@dataclass(slots=True)
class FeedCounts:
    """One market's (or, with ``symbol`` empty, one connection's) data so far."""

    messages: int = 0
    last_local_ns: int = 0
    last_exchange_ns: int = 0
    gaps: int = 0
    resyncs: int = 0
    errors: int = 0
    connects: int = 0
    disconnects: int = 0
    gapped: bool = False
    connected: bool = False


class FeedTap:
    """A market-data listener counting messages and health events."""

    def __init__(self) -> None:
        self.markets: dict[tuple[str, str], FeedCounts] = {}

    def _of(self, exchange: str, symbol: str) -> FeedCounts:
        key = (exchange, symbol)
        counts = self.markets.get(key)
        if counts is None:
            counts = self.markets[key] = FeedCounts()
        return counts

    async def on_book(self, update: BookUpdate) -> None:
        counts = self._of(update.exchange, update.symbol)
        counts.messages += 1
        counts.last_local_ns, counts.last_exchange_ns = update.local_ts, update.exchange_ts

    async def on_trade(self, trade: TradeEvent) -> None:
        counts = self._of(trade.exchange, trade.symbol)
        counts.messages += 1
        counts.last_local_ns, counts.last_exchange_ns = trade.local_ts, trade.exchange_ts

    async def on_status(self, status: FeedStatus) -> None:
        counts = self._of(status.exchange, status.symbol)
        kind = status.kind
        if kind is StatusKind.GAP:
            counts.gaps += 1
            counts.gapped = True
        elif kind is StatusKind.RESYNC:
            counts.resyncs += 1
            counts.gapped = False
        elif kind is StatusKind.ERROR:
            counts.errors += 1
        elif kind is StatusKind.CONNECTED:
            counts.connects += 1
            counts.connected = True
        elif kind is StatusKind.DISCONNECTED:
            counts.disconnects += 1
            counts.connected = False
