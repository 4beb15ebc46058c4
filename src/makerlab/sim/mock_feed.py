"""Feed subscriptions in replay: the tutorial's ``add_l2_book_feed``/``add_trades_feed``.

Rules:

- **handlers get the live objects**: a book handler receives the subscription's
  :class:`~makerlab.core.lob.LOB`, a trade handler the tuple ``(ts_ms, price, size, dir)``,
  a bars handler each finished bar.
- **delivery at local time**: the LOB and Trades buffers are updated, then handlers run,
  at the data's local time (recorded, or exchange time + FEED_PUBLIC).
- **one buffer per feed id**: subscribing twice to the same feed returns the same id and
  buffer (the larger ``buffer`` wins) and adds the handler.
- **feed ids follow the tutorial**: ``{exc}/{cls}/l2book/{ticker}_depth{depth}``,
  ``{exc}/{cls}/trades/{ticker}``, ``{exc}/{cls}/{BarClass}/{ticker}``.
- **subscribe before play**: the replay timeline is built when ``play()`` starts.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from makerlab.core.bars import Bars, TimeBars
from makerlab.core.lob import LOB
from makerlab.core.trades import Trades
from makerlab.errors import ConfigError
from makerlab.feed import Feed, FeedCls

__all__ = ["MockFeed", "Subscription"]

Handler = Callable[[Any], Awaitable[Any] | Any]


@dataclass
class Subscription:
    """One feed: its buffer object and handlers."""

    feed_id: str
    exc: str
    ticker: str
    kind: str  # "l2book" | "trades" | "bars"
    obj: Any
    handlers: list[Handler] = field(default_factory=list)
    last_ts: int = -1  # ms; deliveries never go back in time (local vs exchange order)


class MockFeed(Feed):
    """The tutorial's Feed over the replayed market (see module docstring)."""

    def __init__(self, market: Any) -> None:
        self._market = market
        self._subs: dict[str, Subscription] = {}

    def _add(self, feed_id: str, exc: str, ticker: str, kind: str,
             make: Callable[[], Any], handler: Handler | None) -> Subscription:
        if self._market.started:
            raise ConfigError(f"{feed_id}: subscribe before replayer.play() starts")
        sub = self._subs.get(feed_id)
        if sub is None:
            sub = self._subs[feed_id] = Subscription(feed_id, exc, ticker, kind, make())
        if handler is not None:
            sub.handlers.append(handler)
        return sub

    async def add_l2_book_feed(self, exc: str, ticker: str, handler: Handler | None = None,
                               depth: int = 20, buffer: int = 100,
                               feed_cls: FeedCls | str = FeedCls.PERPETUAL,
                               apply_shadow_depth: bool = False, **kwargs: Any) -> str:
        """Subscribe to ``exc``/``ticker``'s book; returns the feed id."""
        self._market.book_tape(exc, ticker)  # fails clearly for unknown markets
        feed_id = f"{exc}/{FeedCls(feed_cls).value}/l2book/{ticker}_depth{depth}"
        sub = self._add(feed_id, exc, ticker, "l2book",
                        lambda: LOB(depth=depth, buffer_size=buffer, validate=False), handler)
        if buffer > sub.obj.buffer_size and sub.obj.buffer_len() == 0:
            sub.obj = LOB(depth=depth, buffer_size=buffer, validate=False)
        return feed_id

    async def add_trades_feed(self, exc: str, ticker: str, handler: Handler | None = None,
                              buffer: int = 100, feed_cls: FeedCls | str = FeedCls.PERPETUAL,
                              **kwargs: Any) -> str:
        """Subscribe to ``exc``/``ticker``'s trades; returns the feed id."""
        self._market.trade_tape(exc, ticker)
        feed_id = f"{exc}/{FeedCls(feed_cls).value}/trades/{ticker}"
        sub = self._add(feed_id, exc, ticker, "trades", lambda: Trades(buffer), handler)
        if buffer > sub.obj._buffer.maxlen and sub.obj.buffer_len() == 0:
            sub.obj = Trades(buffer)
        return feed_id

    async def add_sampling_bars_feed(self, exc: str, ticker: str,
                                     handler: Handler | None = None, buffer: int = 100,
                                     feed_cls: FeedCls | str = FeedCls.PERPETUAL,
                                     bar_cls: type[Bars] = TimeBars, **kwargs: Any) -> str:
        """Bars built from ``exc``/``ticker``'s trades (``kwargs`` go to ``bar_cls``)."""
        self._market.trade_tape(exc, ticker)
        feed_id = f"{exc}/{FeedCls(feed_cls).value}/{bar_cls.__name__}/{ticker}"
        self._add(feed_id, exc, ticker, "bars",
                  lambda: bar_cls(buffer_size=buffer, **kwargs), handler)
        return feed_id

    async def add_handler_to_feed(self, feed_id: str, handler: Handler) -> None:
        self._sub(feed_id).handlers.append(handler)

    def _sub(self, feed_id: str) -> Subscription:
        try:
            return self._subs[feed_id]
        except KeyError:
            raise ConfigError(f"unknown feed id {feed_id!r}; known: {list(self._subs)}") from None

    def get_feed(self, feed_id: str) -> Any:
        """The LOB, Trades or Bars object of ``feed_id``."""
        return self._sub(feed_id).obj

    def get_feed_ids(self) -> list[str]:
        return list(self._subs)

    def subscriptions(self) -> list[Subscription]:
        return list(self._subs.values())

    async def cleanup(self) -> None:
        """Nothing to close in replay."""
