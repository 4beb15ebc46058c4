"""The venue seam: what :class:`~makerlab.trading.feed.Feed` needs from a market-data
source, whether the source replays an archive or streams from a live venue.

Two implementations plug in: the replay engine (:class:`~makerlab.sim.replayer.Replayer`)
and a live connection (:class:`~makerlab.live.market_data.LiveMarketData`, built by the
:class:`~makerlab.live.gateway.Gateway`). The Feed never knows which one it talks to.

Rules:

- **markets are checked at subscription**: ``check_market`` raises
  :class:`~makerlab.errors.ConfigError` for a market the source cannot serve, before any
  buffer is created.
- **a live source delivers typed events**: after ``subscribe`` it calls its listeners'
  ``on_book`` / ``on_trade`` / ``on_status`` with :mod:`makerlab.core.events` objects, in
  the order it received them; a book it hands out is always sequence-checked.
- **a replay source drives the subscriptions itself**: it reads the Feed's
  subscriptions when the replay starts and updates their buffers at each row's local time
  (the engine's bulk delivery path); ``subscribe`` after the start is an error.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Protocol, runtime_checkable

from makerlab.core.events import BookUpdate, FeedStatus, TradeEvent

__all__ = ["MarketDataListener", "MarketDataSource", "MarketKind"]


class MarketKind(StrEnum):
    """The kinds of market data a strategy subscribes to."""

    L2BOOK = "l2book"
    TRADES = "trades"


class MarketDataListener(Protocol):
    """Receives a source's events (the Feed, a recorder, a monitor)."""

    async def on_book(self, update: BookUpdate) -> None: ...

    async def on_trade(self, trade: TradeEvent) -> None: ...

    async def on_status(self, status: FeedStatus) -> None: ...


@runtime_checkable
class MarketDataSource(Protocol):
    """Books and trades for ``(exchange, symbol)`` markets."""

    def check_market(self, kind: MarketKind, exchange: str, symbol: str) -> None:
        """Raise ConfigError if this source cannot serve the market."""
        ...

    async def subscribe(self, kind: MarketKind, exchange: str, symbol: str,
                        depth: int) -> None:
        """Start delivering ``kind`` data of the market (``depth`` levels for books)."""
        ...

    def attach(self, listener: MarketDataListener) -> None:
        """Deliver events to ``listener`` too."""
        ...

    async def close(self) -> None:
        """Stop every stream the source opened."""
        ...
