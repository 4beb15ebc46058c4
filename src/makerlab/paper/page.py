"""The paper exchange's monitoring page: the venue's side (``makerlab paper --page``).

:class:`DeskCollector` is a :class:`~makerlab.monitor.source.PageSource` the monitor's
:class:`~makerlab.monitor.server.Monitor` serves (the same server, access rules, views
and page as a strategy's page). Rules:

- **the venue's truth**: per traded account (protocol) and symbol, the position, entry
  and realised PnL of the desk's :class:`~makerlab.sim.venue.SimAccount`; the book's top
  ``depth`` levels and mid of the matching engine (the served book the orders match
  against); the orders resting in the engine (``open``: what the engine holds now, not
  what a client was told); notional and unrealised PnL at the engine's mid.
- **accounts**: wallet = starting balance + realised PnL (net of fees), equity = wallet +
  unrealised PnL, PnL = realised + unrealised.
- **fills and order flow**: an :class:`~makerlab.monitor.taps.OrderTap` on the desk's
  venue (after the desk itself) counts answers and rejects and keeps the latest fills;
  markouts from the engines' mids sampled with each snapshot. Times are the market's
  exchange time.
- **feed health as the paper sees it**: one row per public stream (topic) a client
  subscribed to: its subscribers now, payloads published, their rate, and the wall time
  since the last one (exchange-to-local latency does not apply: ``None``).
- **the kill switch is the operator's halt**: every engine of every traded account
  refuses new orders and amends (:data:`~makerlab.sim.matching.REJECT_HALTED`, Binance's
  ``-2010``; Bybit ``10027``; Hyperliquid's error text) until the paper exits, then a
  cancel-all per account goes through the desk like a client's (its cancels reach the
  user streams). The answer counts the orders resting before and after (waiting at most
  :data:`HALT_WAIT_S` for the cancel-alls: at ``speed 0`` with no client reading, the
  market, and with it the cancels' arrival, waits).
- **read-only but the halt**: a snapshot reads counters, the accounts and the engines.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterable
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from makerlab.core.positions import accounting_for
from makerlab.monitor.collect import fill_views, flow_view
from makerlab.monitor.config import PageConfig
from makerlab.monitor.markouts import Markouts
from makerlab.monitor.source import KillResult
from makerlab.monitor.taps import OrderTap
from makerlab.monitor.views import (
    AccountView,
    FeedView,
    MarketView,
    OrderView,
    RiskView,
    Snapshot,
)
from makerlab.paper.desk import RequestKind
from makerlab.sim.matching import REJECT_HALTED, MatchingEngine
from makerlab.units import NS_PER_MS

if TYPE_CHECKING:
    from makerlab.paper.server import PaperExchange

__all__ = ["HALT_WAIT_S", "DeskCollector"]

log = logging.getLogger(__name__)

HALT_WAIT_S = 5.0


class DeskCollector:
    """Snapshots of a running :class:`~makerlab.paper.server.PaperExchange`'s desk, and
    its halt (module rules)."""

    mode = "paper venue"

    def __init__(self, paper: PaperExchange, config: PageConfig) -> None:
        self.paper, self.config = paper, config
        self.orders = OrderTap(config.fills)
        self.markouts = Markouts(config.horizons_s, config.history,
                                 slack_ns=int(max(2 * config.interval_s, 1.0) * 1e9))
        self.halted = ""  # the halt's detail, once halted
        self._seq = 0
        self._last: tuple[float, dict[str, tuple[int, int]], dict[tuple[str, str], int]] = (
            0.0, {}, {})

    # -- PageSource ----------------------------------------------------------------------

    def attach(self) -> None:
        desk = self.paper.desk
        if desk is not None:
            desk.venue.attach(self.orders)

    def detach(self) -> None:
        """Nothing to detach (the venue has no detach; the tap only counts)."""

    def take(self) -> Snapshot:
        now = self._now()
        markets = tuple(self._markets())
        for m in markets:
            self.markouts.sample((m.exchange, m.ticker), now, m.mid)
        wall = time.monotonic()
        last_wall, last_flow, last_sent = self._last
        dt = wall - last_wall if last_wall else 0.0
        flow = tuple(flow_view(self.orders, p, dt, last_flow) for p in self.protocols)
        feeds = tuple(self._feeds(dt, last_sent))
        self._last = (wall, {f.exchange: (f.acks + f.rejects, f.cancels) for f in flow},
                      {(f.exchange, f.symbol): f.messages for f in feeds})
        self._seq += 1
        halted = bool(self.halted)
        risk = RiskView(halted, "halt" if halted else "", self.halted, int(halted), ())
        return Snapshot(self._seq, now / NS_PER_MS, markets, self._accounts(markets),
                        fill_views(self.orders, self.markouts), flow, risk, feeds,
                        self.config.horizons_s, self.mode)

    async def kill(self, note: str) -> KillResult:
        """The operator's halt (module rules)."""
        before = self.resting()
        self.halted = "venue operator's halt" + (f": {note}" if note else "")
        for _, _, engine in self._engines():
            engine.halted = REJECT_HALTED
        hub = self.paper.private
        if hub is not None:
            try:
                async with asyncio.timeout(HALT_WAIT_S):
                    for protocol in self.protocols:
                        await hub.request(protocol, RequestKind.CANCEL_ALL, None)
            except TimeoutError:
                log.warning("halt: the cancel-alls have not arrived yet (the market waits)")
        after = self.resting()
        log.warning("paper exchange halted from its page: %s", self.halted)
        return KillResult(bool(self.protocols), "halt", self.halted, before, after,
                          f"venue halted: {before} open orders before, {after} resting "
                          f"now; new orders of {', '.join(self.protocols) or 'no account'} "
                          "refused until the paper exits")

    # -- reading the desk ----------------------------------------------------------------

    @property
    def protocols(self) -> list[str]:
        """The traded accounts (protocols with credentials)."""
        desk = self.paper.desk
        return [] if desk is None else sorted({p for p, _ in desk.venue.engines})

    def resting(self) -> int:
        """Orders resting in every engine now."""
        return sum(len(engine.resting) for _, _, engine in self._engines())

    def _engines(self) -> Iterable[tuple[str, str, MatchingEngine]]:
        desk = self.paper.desk
        if desk is None:
            return ()
        return [(p, s, e) for (p, s), e in sorted(desk.venue.engines.items())]

    def _now(self) -> int:
        desk, clock = self.paper.desk, self.paper.clock
        market = clock.exchange_ns() if clock is not None else 0
        return max(market, desk.now if desk is not None else 0)

    def _markets(self) -> Iterable[MarketView]:
        desk = self.paper.desk
        for protocol, symbol, engine in self._engines():
            assert desk is not None
            position = desk.venue.account(protocol).position(symbol)
            bids, asks = _levels(engine, 1, self.config.depth), _levels(engine, -1,
                                                                       self.config.depth)
            best_bid = bids[0][0] if bids else None
            best_ask = asks[0][0] if asks else None
            mid = (best_bid + best_ask) / 2 if best_bid and best_ask else None
            notional = unrealized = None
            if mid is not None:
                accounting = accounting_for(engine.spec)
                notional = float(accounting.value(position.amount, mid))
                unrealized = float(accounting.unrealized_pnl(position, mid)) \
                    if position.amount else 0.0
            orders = tuple(_order(o) for o in engine.resting.values())
            yield MarketView(protocol, symbol, float(position.amount), float(position.entry),
                             notional, mid, best_bid, best_ask, float(position.realized_pnl),
                             unrealized, bids, asks, orders)

    def _accounts(self, markets: tuple[MarketView, ...]) -> tuple[AccountView, ...]:
        desk = self.paper.desk
        out = []
        for protocol in self.protocols:
            assert desk is not None
            mine = [m for m in markets if m.exchange == protocol]
            unrealized = sum(m.unrealized_pnl or 0.0 for m in mine)
            wallet = float(desk.venue.account(protocol).balance)
            pnl = sum(m.realized_pnl for m in mine) + unrealized
            out.append(AccountView(protocol, pnl, wallet, wallet + unrealized))
        return tuple(out)

    def _feeds(self, dt: float, last: dict[tuple[str, str], int]) -> Iterable[FeedView]:
        now = time.monotonic_ns()
        for protocol, venue in self.paper.venues.items():
            for name, topic in list(getattr(venue, "topics", {}).items()):
                if not topic.sessions and not topic.sent:
                    continue
                since = (now - topic.last_ns) / NS_PER_MS if topic.sent else None
                rate = (topic.sent - last.get((protocol, name), 0)) / dt if dt > 0 else 0.0
                state = "ok" if topic.sent else "waiting"
                yield FeedView(protocol, name, state, topic.sent, rate, None, since, 0, 0, 0,
                               0, len(topic.sessions))


def _levels(engine: MatchingEngine, side: int, depth: int) -> tuple[tuple[float, float], ...]:
    prices, sizes = engine.levels(side)
    return tuple((float(p), float(s)) for p, s in zip(prices[:depth].tolist(),
                                                      sizes[:depth].tolist(), strict=True)
                 if p == p and s > 0)


def _order(o: Any) -> OrderView:
    remaining = o.qty - o.filled
    return OrderView(str(o.exc), str(o.ticker), o.cloid, o.oid, o.side,
                     float(o.price) if o.price is not None else None,
                     float(remaining) * o.side, float(o.filled),
                     "PARTIAL" if o.filled > Decimal(0) else "NEW")
