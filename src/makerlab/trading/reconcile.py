"""Reconciliation: the OMS's mirrors against the venue's truth (live venues).

The streams keep the mirrors current; REST snapshots check them every
``refresh_orders_snapshot`` / ``refresh_positions_snapshot`` seconds, and single-order
queries resolve what the streams left pending. Rules:

- **orders** (quantpylib's ``update_exc_orders``): take the open-orders snapshot and match
  it to the mirror's live orders by oid or cloid. An order only in the snapshot is
  upserted (the mirror is behind, or the order is not ours yet: placed before a restart);
  one in both is upserted (the mirror's rules drop it if it is older than what the mirror
  has); one only in the mirror is left alone while a request of ours for it is in flight
  (a submit, amend or cancel that has not returned: its answer decides) or while its last
  news (the last change the mirror accepted) is younger than ``pending_timeout`` ms — it
  may be in flight, or the snapshot older than the stream — and otherwise queried on its
  own and the venue's
  answer upserted. An order the venue does not know is closed: REJECTED if it was never
  acknowledged, else CANCELLED, with ``reject_reason="not found at the venue"``.
- **pending states time out**: every ``pending_timeout`` ms, a PENDING or CANCEL_PENDING
  order with no news for ``pending_timeout`` ms (and no request of ours in flight for it) is
  queried and resolved as above; one the venue still holds open after a cancel gets its
  cancel sent again.
- **a send lost in transit is doubtful, not dead**: when a submit fails in transit
  (connection lost, timeout, a 5xx: the venue may have taken it), the OMS marks the order
  REJECTED at once — nothing waits for an answer that may never come — and remembers it
  as doubtful. The first venue news of it, a stream event or a snapshot row, revives it
  as the venue reports it (the venue is the truth); after ``pending_timeout`` ms without
  news it is queried once, and revived if the venue has it. Only such orders are
  revived: an order the venue itself closed stays closed, whatever a stale snapshot says.
- **positions are the venue's**: a position snapshot replaces the mirror's position of
  each symbol where they differ (a warning logs the correction), flat for a symbol the
  snapshot lacks — except a symbol with a fill booked after the snapshot was asked for
  (the next refresh decides). A correction from a snapshot with venue time ``T``
  includes every fill up to ``T``: a fill of that symbol delivered later with an
  exchange time at or before ``T`` is not booked again (:meth:`Reconciler.included`).
- **balances are the venue's**: at the start and with each positions round, the balance
  snapshot replaces the exchange's rows; the stream moves them in between (a streamed
  balance that does not state its available balance keeps the snapshot's: Binance's
  ``ACCOUNT_UPDATE`` states none, so its available is at most one round old).
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping
from decimal import Decimal
from typing import Any

from makerlab.core.clock import Clock
from makerlab.core.events import BalanceState, Fill, OrderUpdate, PositionState
from makerlab.core.orders import Order, Orders, OrderStatus
from makerlab.core.positions import Positions
from makerlab.errors import VenueError
from makerlab.trading.protocols import ConnectedVenue, OrderVenue
from makerlab.units import NS_PER_MS

__all__ = ["NOT_FOUND", "Reconciler", "is_live", "venue_orders_dict"]

log = logging.getLogger(__name__)

NOT_FOUND = "not found at the venue"
ZERO = Decimal(0)
_PENDING = (OrderStatus.PENDING, OrderStatus.CANCEL_PENDING)

Cancel = Callable[[str, Order], Awaitable[None]]


class Reconciler:
    """The mirrors of every exchange against the venue (rules in the module docstring).

    Args:
        venue: the live venue (snapshots and queries).
        orders, positions, balances: the OMS's mirrors by exchange.
        clock: local time.
        pending_timeout_ms: how long an order may go without news.
        cancel: sends a cancel for a mirror order (the OMS's).
        learnt: awaited with each order a snapshot row or a query's answer leaves in the
            mirror (the OMS's: while the kill switch is tripped, a live one is cancelled).
    """

    def __init__(self, venue: ConnectedVenue, orders: Mapping[str, Orders],
                 positions: Mapping[str, Positions],
                 balances: dict[str, list[BalanceState]], clock: Clock,
                 pending_timeout_ms: float, cancel: Cancel,
                 learnt: Cancel | None = None) -> None:
        self._venue, self._orders, self._positions = venue, orders, positions
        self._balances = balances
        self._clock, self._cancel, self._learnt = clock, cancel, learnt
        self.timeout_ns = int(pending_timeout_ms * NS_PER_MS)
        self._news: dict[tuple[str, str], int] = {}
        self._fills: dict[tuple[str, str], int] = {}
        self._included: dict[tuple[str, str], int] = {}
        self._doubtful: dict[tuple[str, str], tuple[str, int]] = {}
        self.inflight: Counter[tuple[str, str]] = Counter()  # requests per (exc, cloid)
        for exc in orders:
            self._track(exc)

    def _track(self, exc: str) -> None:
        def news(order: dict[str, Any]) -> None:
            alive = OrderStatus(order["ord_status"]).is_alive
            for ident in (order["cloid"], order["oid"]):
                if ident is None:
                    continue
                if alive:
                    self._news[(exc, ident)] = self._clock.now_ns()
                else:
                    self._news.pop((exc, ident), None)

        def filled(delta: dict[str, Any]) -> None:
            self._fills[(exc, delta["ticker"])] = self._clock.now_ns()

        self._orders[exc].add_delta_handler(news)
        self._positions[exc].add_delta_handler(filled)

    # -- doubtful sends ------------------------------------------------------------------

    def doubt(self, exc: str, symbol: str, cloid: str) -> None:
        """A submit of ``cloid`` failed in transit: the venue may have it."""
        self._doubtful[(exc, cloid)] = (symbol, self._clock.now_ns())

    def revive(self, update: OrderUpdate) -> None:
        """If ``update`` is the first venue news of a doubtful order, let the mirror take
        it afresh."""
        if update.cloid is not None and self._doubtful.pop(
                (update.exchange, update.cloid), None) is not None:
            log.warning("%s: order %s, rejected locally after a failed send, is known to "
                        "the venue: revived as the venue reports it", update.exchange,
                        update.cloid)
            self._orders[update.exchange].forget(update.cloid, update.oid)

    async def apply(self, update: OrderUpdate) -> Order | None:
        """Apply a venue update to the mirror (reviving a doubtful order first)."""
        self.revive(update)
        return await self._taken(update.exchange, update)

    async def _taken(self, exc: str, update: OrderUpdate) -> Order | None:
        """``update`` applied to the mirror; the order it leaves handed to ``learnt``."""
        order = await self._orders[exc].apply_update(update)
        if order is not None and self._learnt is not None:
            await self._learnt(exc, order)
        return order

    # -- orders --------------------------------------------------------------------------

    async def orders(self, exc: str, *, force: bool = False) -> None:
        """One orders reconciliation of ``exc`` (``force``: query every order only in the
        mirror, whatever its age)."""
        snapshot = await self._venue.open_orders(exc)
        seen: set[str] = set()
        for update in snapshot:
            seen.update(i for i in (update.cloid, update.oid) if i is not None)
            await self.apply(update)
        now = self._clock.now_ns()
        for order in list(self._orders[exc].get_orders(copy=False)):
            if order.cloid in seen or order.oid in seen or self._busy(exc, order):
                continue
            if force or now - self._last_news(exc, order) >= self.timeout_ns:
                await self._settle(exc, order, resend=False)

    async def pending(self, exc: str) -> None:
        """Resolve ``exc``'s timed-out pending orders and doubtful sends."""
        now = self._clock.now_ns()
        for order in list(self._orders[exc].get_orders(copy=False)):
            if (order.ord_status in _PENDING and not self._busy(exc, order)
                    and now - self._last_news(exc, order) >= self.timeout_ns):
                await self._settle(exc, order, resend=True)
        for (doubt_exc, cloid), (symbol, since) in list(self._doubtful.items()):
            if doubt_exc == exc and now - since >= self.timeout_ns:
                await self._recheck(exc, symbol, cloid)

    def _busy(self, exc: str, order: Order) -> bool:
        return order.cloid is not None and self.inflight[(exc, order.cloid)] > 0

    def _last_news(self, exc: str, order: Order) -> int:
        times = [self._news.get((exc, i), 0) for i in (order.cloid, order.oid) if i is not None]
        return max(times, default=0)

    async def _settle(self, exc: str, order: Order, *, resend: bool) -> None:
        """Ask the venue about a mirror-only or timed-out order and take its answer."""
        answered, state = await self._query(exc, str(order.ticker), order.cloid, order.oid)
        if not answered:
            return
        if state is None:
            closed = OrderStatus.REJECTED if order.ord_status is OrderStatus.PENDING \
                else OrderStatus.CANCELLED
            log.warning("%s: order %s %s: closed as %s", exc, order.cloid or order.oid,
                        NOT_FOUND, closed.value)
            await self._orders[exc].upsert_order(cloid=order.cloid, oid=order.oid,
                                                 ord_status=closed, reject_reason=NOT_FOUND)
            return
        cancelling = order.ord_status is OrderStatus.CANCEL_PENDING
        await self.apply(state)
        still = self._orders[exc].cloid_query(order.cloid) if order.cloid else \
            self._orders[exc].oid_query(str(order.oid))
        if resend and cancelling and still is not None and still.is_alive():
            log.warning("%s: order %s still open at the venue after its cancel: cancelling "
                        "again", exc, order.cloid or order.oid)
            for ident in (order.cloid, order.oid):
                if ident is not None:
                    self._news[(exc, ident)] = self._clock.now_ns()
            await self._cancel(exc, still)

    async def _recheck(self, exc: str, symbol: str, cloid: str) -> None:
        answered, state = await self._query(exc, symbol, cloid, None)
        if not answered:
            return
        self._doubtful.pop((exc, cloid), None)
        if state is not None:
            self._orders[exc].forget(cloid, state.oid)
            await self._taken(exc, state)

    async def _query(self, exc: str, symbol: str, cloid: str | None,
                     oid: str | None) -> tuple[bool, OrderUpdate | None]:
        """``(answered, the venue's state or None)``; a failed query answers nothing."""
        try:
            return True, await self._venue.query_order(exc, symbol, cloid, oid)
        except VenueError as error:
            log.warning("%s: order query of %s failed (%s); asking again later", exc,
                        cloid or oid, error)
            return False, None

    # -- positions -----------------------------------------------------------------------

    async def positions(self, exc: str) -> list[str]:
        """One positions reconciliation of ``exc``; the symbols corrected."""
        asked = self._clock.now_ns()
        truth = {state.symbol: state for state in await self._venue.positions(exc)}
        mirror = self._positions[exc]
        corrected = []
        for symbol in sorted(set(truth) | set(mirror.as_dict())):
            if self._fills.get((exc, symbol), 0) > asked:
                continue  # a fill the snapshot may not include: the next refresh decides
            if await self._correct(exc, symbol, truth.get(symbol)):
                corrected.append(symbol)
        return corrected

    async def _correct(self, exc: str, symbol: str, state: PositionState | None) -> bool:
        mirror = self._positions[exc]
        amount = state.amount if state is not None else ZERO
        entry = state.entry_price if state is not None and amount else ZERO
        old = mirror.get_ticker_position(symbol)
        if old is not None and (old.amount, old.entry) == (amount, entry):
            return False
        if (old.amount if old is not None else ZERO) != amount:
            log.warning("%s/%s position corrected from the venue's snapshot: mirror %s, "
                        "venue %s", exc, symbol, old.amount if old else ZERO, amount)
        if state is not None and state.exchange_ts:
            self._included[(exc, symbol)] = state.exchange_ts
        await mirror.update_position(symbol, amount=amount, entry=entry)
        return True

    # -- balances ------------------------------------------------------------------------

    async def balances(self, exc: str) -> None:
        """Take ``exc``'s balance snapshot into the mirror (module rules)."""
        self._balances[exc] = await self._venue.balances(exc)

    def included(self, fill: Fill) -> bool:
        """True if a position correction already counted ``fill`` (module rules)."""
        return fill.exchange_ts <= self._included.get((fill.exchange, fill.symbol), -1)


def venue_orders_dict(updates: list[OrderUpdate]) -> dict[str, dict[str, Any]]:
    """An open-orders snapshot in the tutorial's ``orders_get`` shape: ``{oid: {amount,
    cloid, filled_sz, oid, ord_status, price, ticker, timestamp}}`` (ms)."""
    return {str(u.oid): {"amount": u.amount, "cloid": u.cloid, "filled_sz": u.filled,
                         "oid": u.oid, "ord_status": u.status, "price": u.price,
                         "ticker": u.symbol, "timestamp": u.exchange_ts // NS_PER_MS}
            for u in updates}


def is_live(venue: OrderVenue) -> bool:
    """True for a venue over live connections (:class:`ConnectedVenue`)."""
    return isinstance(venue, ConnectedVenue)
