"""What the page receives: one :class:`Snapshot` of frozen views, serialised as JSON.

Every number is a float (display only; the OMS keeps the Decimals), ``None`` where it is
not known (no book yet, a replayed venue's exchange times, a markout not yet due). Times
are epoch milliseconds of the OMS's clock. No view carries a credential: the page gets
what the mirrors and counters hold, nothing of the Gateway's config.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["AccountView", "FeedView", "FillView", "FlowView", "LimitView", "MarketView",
           "OrderView", "RiskView", "Snapshot"]

Levels = tuple[tuple[float, float], ...]


@dataclass(frozen=True, slots=True)
class OrderView:
    """One live order of the mirror: signed remaining ``amount`` (positive buys)."""

    exchange: str
    ticker: str
    cloid: str | None
    oid: str | None
    side: int
    price: float | None
    amount: float
    filled: float
    status: str


@dataclass(frozen=True, slots=True)
class MarketView:
    """One traded market: position, its value at the mid, PnL, book top and our orders."""

    exchange: str
    ticker: str
    position: float
    entry: float
    notional: float | None
    mid: float | None
    best_bid: float | None
    best_ask: float | None
    realized_pnl: float
    unrealized_pnl: float | None
    bids: Levels
    asks: Levels
    orders: tuple[OrderView, ...]


@dataclass(frozen=True, slots=True)
class FillView:
    """One of the latest fills; ``markouts_bps[i]``: side * (mid at ``horizons_s[i]``
    after the fill - fill price) / fill price in basis points, ``None`` until due."""

    exchange: str
    ticker: str
    time_ms: float
    trade_id: str
    side: int
    price: float
    size: float
    fee: float
    maker: bool
    markouts_bps: tuple[float | None, ...]


@dataclass(frozen=True, slots=True)
class FlowView:
    """One exchange's order answers: rates since the previous snapshot, totals."""

    exchange: str
    orders_per_s: float
    cancels_per_s: float
    acks: int
    rejects: int
    cancels: int
    amends: int
    expiries: int
    fills: int
    last_reject: str


@dataclass(frozen=True, slots=True)
class LimitView:
    """A risk limit's usage: ``used`` of ``limit`` (``usage`` = used / limit)."""

    name: str
    market: str
    used: float
    limit: float
    usage: float


@dataclass(frozen=True, slots=True)
class RiskView:
    """The kill switch's state and every configured limit's usage."""

    kill_tripped: bool
    kill_reason: str
    kill_detail: str
    trips: int
    limits: tuple[LimitView, ...]


@dataclass(frozen=True, slots=True)
class FeedView:
    """One market's data health (``latency_ms`` exchange to local of its last message;
    ``None`` for a venue replaying an archive, whose exchange times are the archive's)."""

    exchange: str
    symbol: str
    state: str  # "ok" | "gap" | "down" | "waiting"
    messages: int
    rate_per_s: float
    latency_ms: float | None
    since_last_ms: float | None
    gaps: int
    resyncs: int
    reconnects: int
    errors: int
    subscribers: int | None = None  # the paper venue's page: sessions on the stream


@dataclass(frozen=True, slots=True)
class AccountView:
    """One exchange's account: PnL of its markets; wallet and equity where the venue told
    a balance (live)."""

    exchange: str
    pnl: float
    wallet: float | None
    equity: float | None


@dataclass(frozen=True, slots=True)
class Snapshot:
    """Everything the page shows at one time."""

    seq: int
    time_ms: float
    markets: tuple[MarketView, ...]
    accounts: tuple[AccountView, ...]
    fills: tuple[FillView, ...]
    flow: tuple[FlowView, ...]
    risk: RiskView
    feeds: tuple[FeedView, ...]
    horizons_s: tuple[float, ...]
    mode: str = "live"  # "live" (a strategy's page) or "paper venue" (makerlab paper)
