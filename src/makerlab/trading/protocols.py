"""The venue seam: what :class:`~makerlab.trading.feed.Feed` needs from a market-data
source and what the OMS needs from an order venue, whether they replay an archive or
talk to a live venue.

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

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum
from typing import Protocol, runtime_checkable

from makerlab.core.clock import Clock
from makerlab.core.events import (
    BalanceState,
    BookUpdate,
    FeedStatus,
    Fill,
    FundingState,
    OrderUpdate,
    PositionState,
    TradeEvent,
)
from makerlab.core.instruments import InstrumentSpec

__all__ = [
    "AmendRequest",
    "CancelRequest",
    "ConnectedVenue",
    "FailureHandler",
    "FailureReporting",
    "MarketDataListener",
    "MarketDataSource",
    "MarketKind",
    "OrderListener",
    "OrderRequest",
    "OrderVenue",
    "RateBudget",
    "VenueTimers",
]


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


# --------------------------------------------------------------------------- orders


@dataclass(frozen=True, slots=True)
class OrderRequest:
    """A new order as the OMS sends it: already rounded and checked.

    ``amount`` is signed (positive buys); ``price`` is ``None`` for a market order;
    ``tif`` one of :data:`makerlab.core.orders.TIFS`; ``cloid`` is ours and unique.
    """

    exchange: str
    symbol: str
    cloid: str
    amount: Decimal
    price: Decimal | None
    ord_type: str = "limit"
    tif: str = "GTC"
    reduce_only: bool = False


@dataclass(frozen=True, slots=True)
class CancelRequest:
    """Cancel one order, by our ``cloid`` or the venue's ``oid`` (at least one)."""

    exchange: str
    symbol: str
    cloid: str | None = None
    oid: str | None = None


@dataclass(frozen=True, slots=True)
class AmendRequest:
    """Change a resting order's price and/or signed amount (``None`` keeps it)."""

    exchange: str
    symbol: str
    cloid: str | None = None
    oid: str | None = None
    price: Decimal | None = None
    amount: Decimal | None = None


class OrderListener(Protocol):
    """Receives a venue's order events (the OMS, a recorder, a risk module)."""

    async def on_order_update(self, update: OrderUpdate) -> None: ...

    async def on_fill(self, fill: Fill) -> None: ...


@runtime_checkable
class OrderVenue(Protocol):
    """Order entry and account state on one or more exchanges.

    Rules:

    - **every outcome is an event**: an accepted, rejected, cancelled, amended or expired
      order, and a refused cancel or amend, reach every attached listener as an
      :class:`~makerlab.core.events.OrderUpdate`; each execution as a
      :class:`~makerlab.core.events.Fill` (before the update that reports its status).
    - **requests do not raise for venue refusals**: ``submit``/``cancel``/``amend`` return
      once the request is sent; a refusal comes back as an event. Transport failures
      (connection lost, timeout) raise :class:`~makerlab.errors.VenueError` and the
      venue also reports the order's resolution when it learns it.
    - **snapshots for reconciliation**: ``open_orders``/``positions``/``balances`` return
      the venue's current truth (``OrderUpdate`` of kind ``STATE`` for each open order).
    - **a refused cancel or amend is a note, not a state**: a CANCEL_REJECT or AMEND_REJECT
      says a request was refused (``code``, ``reason``, the request's ids); listeners keep
      the order's state as they know it, whatever its ``status`` field says (the replayed
      venue leaves it empty, with zero amounts, for an order it does not hold).
    - **a market's spec is fixed once given**: ``spec`` answers the same spec for a market
      for the venue's life once it has answered one (the OMS keeps it; an unknown market,
      or a live venue not started yet, raises instead).
    """

    @property
    def clock(self) -> Clock:
        """Local time (read-only: an implementation may hold a more specific clock)."""
        ...

    def exchanges(self) -> list[str]: ...

    def spec(self, exchange: str, symbol: str) -> InstrumentSpec: ...

    def attach(self, listener: OrderListener) -> None: ...

    async def submit(self, request: OrderRequest) -> None: ...

    async def cancel(self, request: CancelRequest) -> None: ...

    async def amend(self, request: AmendRequest) -> None: ...

    async def cancel_all(self, exchange: str, symbol: str | None = None) -> None: ...

    async def open_orders(self, exchange: str) -> list[OrderUpdate]: ...

    async def positions(self, exchange: str) -> list[PositionState]: ...

    async def balances(self, exchange: str) -> list[BalanceState]: ...


@runtime_checkable
class VenueTimers(Protocol):
    """Clock callbacks on a venue's time (the OMS's ``add_clock_callback``).

    - **timers run on the venue's clock**: ``add_timer(callback, interval_ms)`` calls
      ``callback()`` (awaiting it if it returns an awaitable) every ``interval_ms`` of the
      venue's clock time. A replayed venue's time moves only with its event loop, so the
      venue, owner of the clock, schedules them. A venue without timers is still an
      :class:`OrderVenue`; the OMS refuses clock callbacks on it.
    """

    def add_timer(self, callback: Callable[[], object], interval_ms: Decimal) -> None: ...


FailureHandler = Callable[[BaseException], Awaitable[None]]


@runtime_checkable
class FailureReporting(Protocol):
    """A source or venue that reports its listeners' failures (the live ones: a strategy
    handler that raises reaches the OMS's kill switch this way)."""

    def add_failure_handler(self, handler: FailureHandler) -> None: ...


class RateBudget(Protocol):
    """What a venue says about our request budget (:class:`~makerlab.live.ratelimit.
    RateLimitState`): seconds to wait before the next request, and the fraction left of
    the tightest current budget."""

    def retry_after(self, now_ns: int) -> float: ...

    def headroom(self, now_ns: int) -> float: ...


@runtime_checkable
class ConnectedVenue(OrderVenue, Protocol):
    """An :class:`OrderVenue` over live connections (:class:`~makerlab.live.order_venue.
    LiveOrderVenue`): what the OMS needs to mirror and protect a live account.

    - **started by the OMS**: ``start()`` (specs, logins, user streams; idempotent).
    - **queried for reconciliation**: ``query_order`` gives the venue's state of one
      order, ``None`` if the venue does not know it.
    - **a dead-man switch**: ``arm_dead_man(exchange, timeout_ms)`` (0 disarms).
    - **rate limits and funding**: ``rate_limits(exchange)`` and ``funding``.
    - **stream health**: listeners with ``on_status`` get the user stream's
      ``FeedStatus`` (CONNECTED / DISCONNECTED); failing listeners are reported.
    """

    async def start(self) -> None: ...

    async def query_order(self, exchange: str, symbol: str, cloid: str | None = None,
                          oid: str | None = None) -> OrderUpdate | None: ...

    async def arm_dead_man(self, exchange: str, timeout_ms: int,
                           symbol: str | None = None) -> None: ...

    async def funding(self, exchange: str, symbol: str) -> FundingState: ...

    def rate_limits(self, exchange: str) -> RateBudget: ...

    def add_failure_handler(self, handler: FailureHandler) -> None: ...
