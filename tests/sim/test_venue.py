"""One test per rule of makerlab.sim.venue's docstring (named after it): SimVenue as an
OrderVenue, seen by a listener beside the OMS."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from decimal import Decimal

import numpy as np
import pytest
from replay_scenarios import EXC, TICKER, flat_market, replayer, zero_latencies

from makerlab.core.events import Fill, OrderEventKind, OrderUpdate
from makerlab.errors import ConfigError
from makerlab.trading.protocols import (
    AmendRequest,
    CancelRequest,
    OrderListener,
    OrderRequest,
    OrderVenue,
)

D = Decimal
MS = 1_000_000
ACK, FILL = OrderEventKind.ACK, OrderEventKind.FILL


class Recorder:
    """A listener beside the OMS: every event with the replay time it arrived at."""

    def __init__(self, rep) -> None:
        self.rep, self.events = rep, []
        rep.venue.attach(self)

    async def on_order_update(self, update: OrderUpdate) -> None:
        self.events.append((self.rep.clock.ns, update))

    async def on_fill(self, fill: Fill) -> None:
        self.events.append((self.rep.clock.ns, fill))

    def updates(self, kind: OrderEventKind | None = None) -> list[OrderUpdate]:
        return [e for _, e in self.events if isinstance(e, OrderUpdate)
                and kind in (None, e.kind)]

    def fills(self) -> list[Fill]:
        return [e for _, e in self.events if isinstance(e, Fill)]


def run(rep, steps: dict[int, Callable]) -> None:
    """Run each ``steps[ms]()`` (sync or async) at replay time ``ms``, then play."""
    for ms, step in steps.items():
        rep.add_callback(ms, lambda _, step=step: step())
        rep.add_to_queue(ms, ms, None)
    asyncio.run(rep.play(progress=False))


def order(cloid: str, amount: str, price: str | None, tif: str = "GTC") -> OrderRequest:
    kind = "limit" if price is not None else "market"
    return OrderRequest(EXC, TICKER, cloid, D(amount), None if price is None else D(price),
                        kind, tif)


def test_sim_venue_is_an_order_venue_and_the_oms_a_listener():
    rep = replayer(*flat_market(2))
    assert isinstance(rep.venue, OrderVenue)
    listener: OrderListener = rep.get_oms()  # the protocol's two methods, typed
    assert listener.on_order_update and listener.on_fill


def test_every_outcome_is_a_typed_event_on_both_clocks():
    lat = zero_latencies(req_private=10, ack_private=20, feed_private=5)
    books, _ = flat_market(20)
    rep = replayer(books, np.array([[1_500, 59999.0, 1.0, -1]]), latencies=lat)
    first, second, oms = Recorder(rep), Recorder(rep), rep.get_oms()
    run(rep, {1_000: lambda: oms.limit_order(EXC, TICKER, D("0.01"), D("60000.0"))})
    assert first.events == second.events  # every listener, the same events
    (t_ack, ack), (t_fill, fill), (t_done, done) = first.events
    assert (ack.kind, ack.status, ack.exchange_ts, ack.local_ts, t_ack) == (
        ACK, "NEW", 1_010 * MS, 1_030 * MS, 1_030 * MS)
    assert (fill.exchange_ts, fill.local_ts, t_fill) == (1_500 * MS, 1_505 * MS, 1_505 * MS)
    assert (fill.side, fill.price, fill.size, fill.is_maker, fill.fee_asset) == (
        1, D("60000.0"), D("0.01"), True, "USDT")
    assert fill.fee == D("0.060000") and fill.cloid == ack.cloid and fill.oid == ack.oid
    assert (done.kind, done.status, done.filled, done.local_ts, t_done) == (
        FILL, "FILLED", D("0.01"), 1_505 * MS, 1_505 * MS)  # after its Fill
    assert oms.get_position(EXC, TICKER) == D("0.01")


def test_acks_and_rejections_travel_ack_private():
    rep = replayer(*flat_market(10), latencies=zero_latencies(req_private=10, ack_private=20))
    venue, recorder = rep.venue, Recorder(rep)
    run(rep, {1_000: lambda: venue.submit(order("tick", "0.01", "60000.05")),
              1_001: lambda: venue.submit(order("post", "0.01", "60000.1", tif="GTX"))})
    tick, post = recorder.updates()
    assert (tick.kind, tick.status, tick.code, tick.reason) == (
        OrderEventKind.REJECT, "REJECTED", "-4014", "Price not increased by tick size.")
    assert (tick.exchange_ts, tick.local_ts) == (1_010 * MS, 1_030 * MS)
    assert (post.code, post.local_ts) == ("-5022", 1_031 * MS)


def test_fills_and_expiries_travel_feed_private():
    lat = zero_latencies(req_private=10, ack_private=20, feed_private=5)
    rep = replayer(*flat_market(10), latencies=lat)
    venue, recorder = rep.venue, Recorder(rep)
    # buys 1.0 at 60000.1 and 1.0 at 60000.2; the 0.5 left of the IOC expires
    run(rep, {1_000: lambda: venue.submit(order("ioc", "2.5", "60000.2", tif="IOC"))})
    kinds = [(u.kind, u.status, u.filled, u.local_ts) for u in recorder.updates()]
    assert kinds == [(FILL, "PARTIAL", D("1.0"), 1_015 * MS),  # before the ack (1030)
                     (FILL, "PARTIAL", D("2.0"), 1_015 * MS),
                     (OrderEventKind.EXPIRE, "CANCELLED", D("2.0"), 1_015 * MS),
                     (ACK, "NEW", D(0), 1_030 * MS)]
    assert not rep.get_oms().orders_peek(EXC).get_orders()  # the late ack changes nothing
    assert [(f.price, f.size, f.is_maker) for f in recorder.fills()] == [
        (D("60000.1"), D("1.0"), False), (D("60000.2"), D("1.0"), False)]


def test_a_cancel_or_amend_for_an_order_the_engine_does_not_hold_is_refused():
    rep = replayer(*flat_market(10))
    venue, recorder = rep.venue, Recorder(rep)
    run(rep, {1_000: lambda: venue.submit(order("gone", "0.01", "60000.1")),  # fills at once
              1_100: lambda: venue.cancel(CancelRequest(EXC, TICKER, cloid="gone")),
              1_200: lambda: venue.amend(AmendRequest(EXC, TICKER, oid="1", price=D(1)))})
    cancel, amend = (recorder.updates(OrderEventKind.CANCEL_REJECT)
                     + recorder.updates(OrderEventKind.AMEND_REJECT))
    assert (cancel.cloid, cancel.oid, cancel.status, cancel.amount, cancel.code) == (
        "gone", None, "", D(0), "-2011")
    assert (amend.cloid, amend.oid, amend.reason) == (None, "1", "Unknown order sent.")
    assert [a["event"] for a in rep.actions][-4:] == ["cancel", "cancel_reject", "amend",
                                                      "amend_reject"]


def test_cancel_all_cancels_what_rests_when_it_arrives():
    rep = replayer(*flat_market(10), latencies=zero_latencies(req_private=10))
    venue, recorder = rep.venue, Recorder(rep)

    async def cancel_all_then_send():
        await venue.cancel_all(EXC)
        await venue.submit(order("late", "0.01", "59999.0"))  # reaches the engine after

    run(rep, {1_000: lambda: venue.submit(order("a", "0.01", "59999.0")),
              1_001: lambda: venue.submit(order("b", "-0.01", "60001.0")),
              1_100: cancel_all_then_send})
    acks = recorder.updates(OrderEventKind.CANCEL_ACK)
    assert [(u.cloid, u.status, u.exchange_ts) for u in acks] == [
        ("a", "CANCELLED", 1_110 * MS), ("b", "CANCELLED", 1_110 * MS)]
    assert set(rep.venue.engine(EXC, TICKER).resting) == {"late"}
    with pytest.raises(ConfigError, match="no replayed market on nope"):
        asyncio.run(venue.cancel_all("nope"))


def test_ids_are_the_venue_counters():
    def ids() -> tuple[list, list]:
        rep = replayer(*flat_market(10))
        recorder = Recorder(rep)
        run(rep, {1_000: lambda: rep.venue.submit(order("x", "2.5", None)),
                  1_100: lambda: rep.venue.submit(order("y", "-0.5", None))})
        return ([(u.cloid, u.oid, u.update_id) for u in recorder.updates()],
                [(f.cloid, f.trade_id) for f in recorder.fills()])

    updates, fills = ids()
    assert fills == [("x", "1"), ("x", "2"), ("x", "3"), ("y", "4")]
    assert [u[2] for u in updates] == sorted(u[2] for u in updates)
    assert len({u[2] for u in updates}) == len(updates)
    assert (updates, fills) == ids()  # deterministic


def test_snapshots_are_the_venue_truth_now():
    lat = zero_latencies(req_private=5, ack_private=50, feed_private=50)
    books, _ = flat_market(20)
    trades = np.array([[1_300, 59999.9, 0.5, -1]])  # fills 0.5 of the bid
    rep = replayer(books, trades, latencies=lat)
    venue, oms, seen = rep.venue, rep.get_oms(), {}
    changes = []
    oms.orders_peek(EXC).add_delta_handler(lambda d: changes.append(
        (rep.time(), d["ord_status"], d["filled_sz"])))

    async def snapshot():
        seen["orders"] = await venue.open_orders(EXC)
        seen["positions"] = await venue.positions(EXC)
        seen["balances"] = await venue.balances(EXC)
        seen["lagging"] = [o.filled_sz for o in oms.orders_peek(EXC).get_orders()]
        for state in seen["orders"]:  # reconcile the mirror with the venue's truth
            await oms.on_order_update(state)

    run(rep, {1_000: lambda: oms.limit_order(EXC, TICKER, D("2"), D("60000.0")),
              1_001: lambda: oms.limit_order(EXC, TICKER, D("-1"), D("60001.0")),
              1_320: snapshot})  # the fill (1300) reaches the OMS only at 1350
    bid, ask = seen["orders"]
    assert (bid.kind, bid.status, bid.filled, bid.amount, bid.price) == (
        OrderEventKind.STATE, "PARTIAL", D("0.5"), D(2), D("60000.0"))
    # exchange time: the order's latest event (its ack at 1006); local: the snapshot's
    assert (ask.status, ask.filled, ask.exchange_ts, ask.local_ts) == (
        "NEW", D(0), 1_006 * MS, 1_320 * MS)
    [pos] = seen["positions"]
    assert (pos.symbol, pos.amount, pos.entry_price) == (TICKER, D("0.5"), D("60000.0"))
    assert pos.unrealized_pnl == D("0.025")  # marked at the mid 60000.05
    [balance] = seen["balances"]
    fee = D("0.5") * D("60000.0") * D("0.0001")
    assert (balance.asset, balance.wallet) == ("USDT", D(10_000) - fee)
    assert balance.equity == balance.available == balance.wallet + D("0.025")
    # the snapshot carries the order's latest update_id: the in-flight fill update that
    # arrives after it is no news, and the mirror ends as the venue
    assert seen["lagging"] == [D(0), D(0)]
    assert changes == [(1_000, "PENDING", D(0)), (1_001, "PENDING", D(0)),
                       (1_055, "NEW", D(0)), (1_056, "NEW", D(0)),
                       (1_320, "PARTIAL", D("0.5"))]  # the ask's state was no news
    assert oms.get_position(EXC, TICKER) == D("0.5")
