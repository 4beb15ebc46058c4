"""Rules of makerlab.trading.reconcile that the fake exchange cannot stage on cue (a fill
booked while a snapshot is in flight, a request of ours in flight, a failed query): the
Reconciler over the OMS's mirrors and a venue stub that answers each call as told."""

from __future__ import annotations

import asyncio
from decimal import Decimal

import pytest
from oms_harness import TickingClock

from makerlab.core.events import OrderUpdate, PositionState
from makerlab.core.orders import Orders, OrderStatus
from makerlab.core.positions import Positions
from makerlab.errors import VenueError
from makerlab.trading.reconcile import Reconciler

D = Decimal
EXC, SYMBOL = "binance", "BTCUSDT"


class Venue:
    """Answers the Reconciler's calls; ``during_positions`` runs while the positions
    snapshot is in flight; ``query_fails`` makes order queries fail."""

    def __init__(self) -> None:
        self.open: list[OrderUpdate] = []
        self.snapshot: list[PositionState] = []
        self.queries: list[str | None] = []
        self.query_fails = False
        self.during_positions = None

    async def open_orders(self, exc: str) -> list[OrderUpdate]:
        return self.open

    async def query_order(self, exc, symbol, cloid, oid) -> OrderUpdate | None:
        self.queries.append(cloid or oid)
        if self.query_fails:
            raise VenueError("HTTP 503: service unavailable")
        return None  # unknown at the venue

    async def positions(self, exc: str) -> list[PositionState]:
        if self.during_positions is not None:
            await self.during_positions()
        return self.snapshot

    async def balances(self, exc: str) -> list:
        return []


def reconciler(venue: Venue) -> tuple[Reconciler, Orders, Positions]:
    orders, positions = Orders(), Positions()

    async def cancel(exc, order) -> None:
        raise AssertionError("nothing is cancelled here")

    rec = Reconciler(venue, {EXC: orders}, {EXC: positions}, {}, TickingClock(),
                     pending_timeout_ms=1, cancel=cancel)
    return rec, orders, positions


async def resting(orders: Orders, cloid: str, status: OrderStatus) -> None:
    await orders.upsert_order(exc=EXC, cloid=cloid, ticker=SYMBOL, amount=D("0.01"),
                              price=D("60000"), ord_status=status, timestamp=1)


def test_positions_a_fill_booked_after_the_snapshot_was_asked_for_waits_for_the_next():
    venue = Venue()
    rec, _, positions = reconciler(venue)

    async def fill_meanwhile() -> None:  # the stream books a fill; the snapshot predates it
        await positions.update_position(SYMBOL, fill_amount=D("0.01"), fill_entry=D("60000"))

    async def main():
        venue.during_positions = fill_meanwhile
        first = await rec.positions(EXC)
        kept = positions.get_ticker_amount(SYMBOL)
        venue.during_positions, venue.snapshot = None, [
            PositionState(EXC, SYMBOL, 0, 0, D("0.01"), D("60000"), D("0"))]
        return first, kept, await rec.positions(EXC)

    first, kept, second = asyncio.run(main())
    assert (first, kept) == ([], D("0.01"))  # not corrected to the older snapshot's flat
    assert second == []  # the next snapshot includes the fill: nothing to correct


def test_positions_a_flat_position_has_no_entry_whatever_the_venue_says():
    venue = Venue()
    rec, _, positions = reconciler(venue)
    # some venues keep the last average price on a flat position
    venue.snapshot = [PositionState(EXC, SYMBOL, 0, 0, D("0"), D("60000"), D("0"))]

    async def main():
        await positions.update_position(SYMBOL, amount=D("0.01"), entry=D("59000"))
        return await rec.positions(EXC)

    assert asyncio.run(main()) == [SYMBOL]
    position = positions.get_ticker_position(SYMBOL)
    assert (position.amount, position.entry) == (D("0"), D("0"))


@pytest.mark.parametrize("status", [OrderStatus.NEW, OrderStatus.CANCEL_PENDING])
def test_an_order_with_a_request_of_ours_in_flight_is_left_to_it(status):
    venue = Venue()
    rec, orders, _ = reconciler(venue)

    async def main():
        await resting(orders, "busy", status)
        rec.inflight[(EXC, "busy")] += 1
        await rec.orders(EXC, force=True)  # only in the mirror, and old news
        await rec.pending(EXC)
        return orders.cloid_query("busy")

    order = asyncio.run(main())
    assert venue.queries == [] and order is not None and order.ord_status is status


@pytest.mark.parametrize("status", [OrderStatus.NEW, OrderStatus.CANCEL_PENDING])
def test_a_failed_query_answers_nothing_the_order_stays_as_it_was(status):
    venue = Venue()
    rec, orders, _ = reconciler(venue)
    venue.query_fails = True

    async def main():
        await resting(orders, "asked", status)
        await rec.orders(EXC, force=True)
        await rec.pending(EXC)
        return orders.cloid_query("asked")

    order = asyncio.run(main())
    assert venue.queries == ["asked"] * (1 if status is OrderStatus.NEW else 2)
    assert order is not None and order.ord_status is status  # not closed as unknown
