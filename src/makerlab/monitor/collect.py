"""Snapshots of a running strategy, read from the OMS, the Feed and the page's taps.

:class:`Collector` builds one :class:`~makerlab.monitor.views.Snapshot` per call of
:meth:`Collector.take`; the :class:`~makerlab.monitor.server.Monitor` calls it at a
bounded rate (``PageConfig.interval_s``), between the trading loop's events, never from
inside one. It only reads. Rules:

- **markets**: every ticker of a tracked exchange that has a book subscription in the
  Feed, a position (open, or closed with realised PnL) or a live order in the mirror.
- **a market's values**: position and entry from the positions mirror; mid, best bid and
  ask and the top ``depth`` levels from the Feed's book (the deepest subscription);
  notional = the position valued at the mid; unrealised PnL at the mid (``None`` without
  a book); live orders from the orders mirror.
- **accounts**: per exchange, PnL = realised + unrealised over its markets; wallet and
  equity (wallet + unrealised) where the OMS holds the venue's balances (live).
- **rates** (orders, cancels, feed messages) are the counters' increase over the last
  :data:`RATE_WINDOW_S` seconds of snapshots (since the first snapshot, before that).
- **limits**: each configured :class:`~makerlab.trading.risk.RiskLimits` limit with its
  usage: worst-case position and notional per market, total notional, new orders per
  second (answered orders per second, the last interval's rate).
- **feed health** per market of the taps: state ``down`` while its connection is
  disconnected, ``gap`` between a gap and its resync, ``waiting`` before a message,
  ``ok`` otherwise.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from decimal import Decimal
from typing import Any

from makerlab.core.lob import LOB
from makerlab.core.positions import accounting_for
from makerlab.errors import VenueError
from makerlab.monitor.config import PageConfig
from makerlab.monitor.markouts import Markouts
from makerlab.monitor.source import KillResult
from makerlab.monitor.taps import FeedCounts, FeedTap, OrderTap
from makerlab.monitor.views import (
    AccountView,
    FeedView,
    FillView,
    FlowView,
    LimitView,
    MarketView,
    OrderView,
    RiskView,
    Snapshot,
)
from makerlab.units import NS_PER_MS

__all__ = ["Collector"]

RATE_WINDOW_S = 5.0
_Totals = tuple[int, dict[str, tuple[int, int]], dict[tuple[str, str], int]]


class Collector:
    """Builds snapshots (rules in the module docstring); a
    :class:`~makerlab.monitor.source.PageSource`.

    Args:
        oms: the strategy's :class:`~makerlab.trading.oms.OMS`.
        feed: its :class:`~makerlab.trading.feed.Feed` (books and feed health), or None.
        config: the page's configuration.
        orders: the order tap attached to the OMS's venue.
        feeds: the feed tap attached to the Feed's source.
    """

    def __init__(self, oms: Any, feed: Any, config: PageConfig, orders: OrderTap,
                 feeds: FeedTap) -> None:
        self.oms, self.feed, self.config = oms, feed, config
        self.orders, self.feeds = orders, feeds
        self.markouts = Markouts(config.horizons_s, config.history,
                                 slack_ns=int(max(2 * config.interval_s, 1.0) * 1e9))
        self._seq = 0
        self._totals: deque[_Totals] = deque()  # (time, order and feed counters) per take

    mode = "live"

    def attach(self) -> None:
        """Attach the taps: the order tap to the OMS's venue, the feed tap to the Feed's
        source (after the strategy)."""
        self.oms.venue.attach(self.orders)
        source = getattr(self.feed, "source", None)
        if source is not None:
            source.attach(self.feeds)

    def detach(self) -> None:
        """Detach the feed tap where the source can (the order tap only counts: venues
        have no detach)."""
        detach = getattr(getattr(self.feed, "source", None), "detach", None)
        if detach is not None:
            detach(self.feeds)

    async def kill(self, note: str) -> KillResult:
        """``oms.kill``: every exchange cancelled, order entry refused until
        ``oms.rearm()``."""
        before = self.alive()
        await self.oms.kill("monitoring page" + (f": {note}" if note else ""))
        switch = self.oms.kill_switch
        after = self.alive()
        return KillResult(switch.tripped, switch.reason.value if switch.reason else "",
                          switch.detail, before, after,
                          f"kill switch tripped: cancels sent for {before} open orders, "
                          f"{after} without a cancel pending; order entry refused until "
                          "oms.rearm()")

    def alive(self) -> int:
        """Live orders of the mirror without a cancel pending."""
        return sum(1 for exc in self.oms.exchanges
                   for o in self.oms.orders_peek(exc).get_orders(copy=False)
                   if o.ord_status.is_alive and o.ord_status.value != "CANCEL_PENDING")

    def take(self) -> Snapshot:
        """The snapshot of now."""
        now = self.oms.venue.clock.now_ns()
        books = self._books()
        markets = tuple(self._market(exc, ticker, books.get((exc, ticker)))
                        for exc, ticker in self._markets(books))
        for m in markets:
            self.markouts.sample((m.exchange, m.ticker), now, m.mid)
        last_ns, last_flow, last_msgs = self._window(now)
        dt = (now - last_ns) / 1e9 if last_ns else 0.0
        flow = tuple(flow_view(self.orders, exc, dt, last_flow) for exc in self.oms.exchanges)
        feeds = tuple(self._feeds(now, dt, last_msgs))
        self._totals.append((now, {f.exchange: (f.acks + f.rejects, f.cancels) for f in flow},
                             {k: c.messages for k, c in self.feeds.markets.items()}))
        self._seq += 1
        return Snapshot(self._seq, now / NS_PER_MS, markets, self._accounts(markets),
                        fill_views(self.orders, self.markouts), flow,
                        self._risk(markets, flow), feeds, self.config.horizons_s)

    def _window(self, now: int) -> _Totals:
        """The oldest counters within the rate window (nothing before the first take)."""
        while len(self._totals) > 1 and self._totals[1][0] <= now - RATE_WINDOW_S * 1e9:
            self._totals.popleft()
        return self._totals[0] if self._totals else (0, {}, {})

    # -- markets -----------------------------------------------------------------------

    def _books(self) -> dict[tuple[str, str], LOB]:
        """The deepest book subscription of each market of the Feed."""
        books: dict[tuple[str, str], LOB] = {}
        for sub in self.feed.subscriptions() if self.feed is not None else ():
            if sub.kind == "l2book":
                held = books.get((sub.exc, sub.ticker))
                if held is None or sub.obj.depth > held.depth:
                    books[(sub.exc, sub.ticker)] = sub.obj
        return books

    def _markets(self, books: dict[tuple[str, str], LOB]) -> list[tuple[str, str]]:
        found: dict[tuple[str, str], None] = {}
        for exc in self.oms.exchanges:
            for key in books:
                if key[0] == exc:
                    found[key] = None
            positions = self.oms.positions_peek(exc)
            for ticker in positions.as_dict():
                found[(exc, ticker)] = None
            for order in self.oms.orders_peek(exc).get_orders(copy=False):
                found[(exc, str(order.ticker))] = None
            for fill in self.orders.fills:
                if fill.exchange == exc:
                    found[(exc, fill.symbol)] = None
        return list(found)

    def _market(self, exc: str, ticker: str, lob: LOB | None) -> MarketView:
        position = self.oms.positions_peek(exc).get_ticker_position(ticker)
        amount = position.amount if position is not None else Decimal(0)
        bids, asks = _levels(lob, self.config.depth, True), _levels(lob, self.config.depth,
                                                                   False)
        best_bid = bids[0][0] if bids else None
        best_ask = asks[0][0] if asks else None
        mid = (best_bid + best_ask) / 2 if best_bid and best_ask else None
        notional = unrealized = None
        if mid is not None:
            accounting = accounting_for(self.oms.spec(exc, ticker))
            notional = float(accounting.value(amount, mid))
            unrealized = float(accounting.unrealized_pnl(position, mid)) \
                if position is not None and amount else 0.0
        orders = tuple(_order(o) for o in self.oms.orders_peek(exc).get_orders(
            ticker, copy=False) if o.is_alive())
        return MarketView(exc, ticker, float(amount),
                          float(position.entry) if position is not None else 0.0, notional,
                          mid, best_bid, best_ask,
                          float(position.realized_pnl) if position is not None else 0.0,
                          unrealized, bids, asks, orders)

    def _accounts(self, markets: tuple[MarketView, ...]) -> tuple[AccountView, ...]:
        out = []
        for exc in self.oms.exchanges:
            mine = [m for m in markets if m.exchange == exc]
            unrealized = sum(m.unrealized_pnl or 0.0 for m in mine)
            pnl = sum(m.realized_pnl for m in mine) + unrealized
            wallet = self._wallet(exc)
            equity = wallet + unrealized if wallet is not None else None
            out.append(AccountView(exc, pnl, wallet, equity))
        return tuple(out)

    def _wallet(self, exc: str) -> float | None:
        """The wallet in ``exc``'s margin asset, if the venue told one (other assets'
        amounts are in other units: never summed with it)."""
        balances = self.oms.balances.get(exc)
        if not balances:
            return None
        try:
            return float(self.oms.margin_balance(exc, balances).wallet)
        except VenueError:
            return None

    # -- fills and order flow ------------------------------------------------------------


    # -- risk ----------------------------------------------------------------------------

    def _risk(self, markets: tuple[MarketView, ...], flow: tuple[FlowView, ...]) -> RiskView:
        switch = self.oms.kill_switch
        return RiskView(switch.tripped, switch.reason.value if switch.reason else "",
                        switch.detail, len(switch.trips),
                        tuple(self._limits(markets, flow)))

    def _limits(self, markets: tuple[MarketView, ...],
                flow: tuple[FlowView, ...]) -> Iterable[LimitView]:
        limits, risk = self.oms.limits, self.oms.risk
        for m in markets:
            worst = max(risk.exposure(m.exchange, m.ticker, 1, None),
                        risk.exposure(m.exchange, m.ticker, -1, None))
            name = f"{m.exchange}/{m.ticker}"
            cap = limits.position_limit(m.exchange, m.ticker)
            if cap is not None:
                yield _usage("max_position", name, worst, cap)
            if limits.max_notional is not None and m.mid is not None:
                value = self.oms.spec(m.exchange, m.ticker).notional(m.mid, worst)
                yield _usage("max_notional", name, value, limits.max_notional)
        if limits.max_total_notional is not None:
            yield _usage("max_total_notional", "all", risk.total_notional(),
                         limits.max_total_notional)
        if limits.max_orders_per_s is not None:
            for f in flow:
                yield _usage("max_orders_per_s", f.exchange, f.orders_per_s,
                             limits.max_orders_per_s)

    # -- feed health ---------------------------------------------------------------------

    def _feeds(self, now: int, dt: float, last: dict[tuple[str, str], int]
               ) -> Iterable[FeedView]:
        connections = {exc: c for (exc, sym), c in self.feeds.markets.items() if not sym}
        for (exc, symbol), c in list(self.feeds.markets.items()):
            if not symbol:
                continue
            conn = connections.get(exc, _NEVER)
            latency = None if self._replays(exc) or not c.messages else \
                (c.last_local_ns - c.last_exchange_ns) / NS_PER_MS
            since = (now - c.last_local_ns) / NS_PER_MS if c.messages else None
            rate = (c.messages - last.get((exc, symbol), 0)) / dt if dt > 0 else 0.0
            yield FeedView(exc, symbol, _state(c, conn), c.messages, rate, latency, since,
                           c.gaps, c.resyncs, max(conn.connects - 1, 0), c.errors + conn.errors)

    def _replays(self, exc: str) -> bool:
        replays = getattr(getattr(self.feed, "source", None), "replays", None)
        return bool(replays(exc)) if replays is not None else False


_NEVER = FeedCounts()


def _state(market: FeedCounts, connection: FeedCounts) -> str:
    if connection.disconnects and not connection.connected:
        return "down"
    if market.gapped:
        return "gap"
    return "ok" if market.messages else "waiting"


def _levels(lob: LOB | None, depth: int, bids: bool) -> tuple[tuple[float, float], ...]:
    if lob is None:
        return ()
    rows = (lob.get_bids() if bids else lob.get_asks())[:depth]
    return tuple((float(p), float(s)) for p, s in rows.tolist() if p == p)


def _order(o: Any) -> OrderView:
    return OrderView(str(o.exc), str(o.ticker), o.cloid, o.oid, o.side,
                     float(o.price) if o.price is not None else None, float(o.remaining) *
                     o.side, float(o.filled_sz), o.ord_status.value)


def _usage(name: str, market: str, used: Decimal | float, limit: Decimal | float | int
           ) -> LimitView:
    used_f, limit_f = float(used), float(limit)
    return LimitView(name, market, used_f, limit_f, used_f / limit_f if limit_f else 0.0)


def fill_views(orders: OrderTap, markouts: Markouts) -> tuple[FillView, ...]:
    """The tap's latest fills, newest first, with their markouts (markouts of fills no
    longer kept are forgotten)."""
    fills = list(orders.fills)
    markouts.forget_except(fills)
    return tuple(FillView(f.exchange, f.symbol, f.local_ts / NS_PER_MS, f.trade_id, f.side,
                          float(f.price), float(f.size), float(f.fee), f.is_maker,
                          markouts.of(f)) for f in reversed(fills))


def flow_view(orders: OrderTap, exc: str, dt: float,
              last: dict[str, tuple[int, int]]) -> FlowView:
    """``exc``'s order flow: the tap's counts, and rates over ``dt`` seconds since the
    ``last`` (answered, cancels) counts."""
    c = orders.counts.get(exc)
    if c is None:
        return FlowView(exc, 0.0, 0.0, 0, 0, 0, 0, 0, 0, "")
    answered, cancels = last.get(exc, (0, 0))
    rate = (c.acks + c.rejects - answered) / dt if dt > 0 else 0.0
    cancel_rate = (c.cancels - cancels) / dt if dt > 0 else 0.0
    return FlowView(exc, rate, cancel_rate, c.acks, c.rejects, c.cancels, c.amends,
                    c.expiries, c.fills, c.last_reject)
