"""One test per rule of makerlab.trading.oms's docstring (named after it): argument checks
at the call, unique client ids, cancels and amends, transport failures, venue events."""

from __future__ import annotations

import asyncio
from decimal import Decimal

import numpy as np
import pytest
from replay_scenarios import EXC, TICKER, flat_market, replayer, zero_latencies

from makerlab import ConfigError, OrderRejected
from makerlab.core.events import Fill, OrderEventKind, OrderUpdate
from makerlab.core.orders import OrderStatus
from makerlab.errors import ConnectionLost
from makerlab.sim.latency import LognormalLatency
from makerlab.trading.oms import OMS

D = Decimal
MS = 1_000_000
NAN, INF = float("nan"), float("inf")
BAD_NUMBERS = [INF, -INF, NAN, None, "abc", "", True, False, [1], object(), D("NaN"),
               D("sNaN"), D("Infinity"), "inf", "nan", np.inf, np.float64("nan"), 1e15,
               -1e15, "1e400", np.bool_(True)]


def fresh(n_books: int = 20, **kwargs):
    books, trades = flat_market(n_books)
    rep = replayer(books, trades, **kwargs)
    return rep, rep.get_oms()


def refused(call, argument: str, value) -> OrderRejected:
    """``call()`` (a coroutine factory) raises OrderRejected naming ``argument``=``value``."""
    with pytest.raises(OrderRejected) as info:
        asyncio.run(call())
    assert info.value.argument == argument
    assert f"{argument}={value!r}" in str(info.value)
    return info.value


def nothing_sent(rep, oms) -> None:
    assert not rep.actions and not rep.queue and not oms.orders_peek(EXC).as_list()
    asyncio.run(rep.play(progress=False))  # and the replay still runs


@pytest.mark.parametrize("value", BAD_NUMBERS, ids=repr)
def test_arguments_are_checked_at_the_call_amount(value):
    rep, oms = fresh()
    refused(lambda: oms.limit_order(EXC, TICKER, value, D("59999.0")), "amount", value)
    refused(lambda: oms.market_order(EXC, TICKER, value), "amount", value)
    refused(lambda: oms.limit_order(EXC, TICKER, value, D("59999.0"), round_to_specs=True),
            "amount", value)
    nothing_sent(rep, oms)


@pytest.mark.parametrize("value", [*BAD_NUMBERS, 0, -1, D("-0.1"), "0"], ids=repr)
def test_arguments_are_checked_at_the_call_price(value):
    rep, oms = fresh()
    refused(lambda: oms.limit_order(EXC, TICKER, D("0.01"), value), "price", value)
    nothing_sent(rep, oms)


@pytest.mark.parametrize("argument, value", [
    ("amount", 0), ("amount", D("-0")), ("amount", "0.0"),
    ("tif", "XYZ"), ("tif", None), ("tif", 1), ("tif", "GTD"),
    ("reduce_only", "false"), ("reduce_only", None), ("reduce_only", 1),
    ("round_to_specs", "yes"), ("round_to_specs", 1),
    ("cloid", ""), ("cloid", 5), ("cloid", b"abc"),
])
def test_arguments_are_checked_at_the_call_other(argument, value):
    rep, oms = fresh()
    args = {"amount": D("0.01"), "price": D("59999.0"), argument: value}
    refused(lambda: oms.limit_order(EXC, TICKER, **args), argument, value)
    nothing_sent(rep, oms)


def test_arguments_are_checked_at_the_call_after_rounding():
    rep, oms = fresh()
    lots = refused(lambda: oms.limit_order(EXC, TICKER, 0.0004, 59999.0, round_to_specs=True),
                   "amount", 0.0004)
    assert "rounds to zero on the lot grid (lot 0.001)" in str(lots)
    refused(lambda: oms.limit_order(EXC, TICKER, 0.01, 0.04, round_to_specs=True),
            "price", 0.04)
    with pytest.raises(OrderRejected, match="price"):
        oms.rounded_price(EXC, TICKER, INF)
    with pytest.raises(OrderRejected, match="amount"):
        oms.rounded_lots(EXC, TICKER, "abc")
    nothing_sent(rep, oms)


@pytest.mark.parametrize("amount, price", [
    (D("0.01"), D("59999.0")), (1, 59999), (0.01, 59999.0), ("0.01", "59999.0"),
    (np.float64(0.01), np.float64(59999.0)), (np.int64(1), np.int64(59999)),
])
def test_arguments_are_checked_at_the_call_numbers_accepted(amount, price):
    _, oms = fresh()
    cloid = asyncio.run(oms.limit_order(EXC, TICKER, amount, price, tif="gtc"))
    order = oms.cloid_query(EXC, cloid)
    assert order.amount == D(str(amount)) and order.price == D(str(price))
    assert order.tif == "GTC"


def test_unknown_keyword_arguments_raise_type_error():
    rep, oms = fresh()
    with pytest.raises(TypeError, match="price_macth"):
        asyncio.run(oms.limit_order(EXC, TICKER, 1, 1, price_macth="QUEUE"))
    with pytest.raises(TypeError, match="slippage"):
        asyncio.run(oms.market_order(EXC, TICKER, 1, slippage=0.1))
    with pytest.raises(TypeError, match="prefix"):
        oms.rand_cloid(EXC, prefix="x")
    with pytest.raises(TypeError, match="refresh_orders_snapshots"):
        OMS(venue=rep.venue, refresh_orders_snapshots=10)
    with pytest.raises(TypeError, match="positional"):
        OMS(None, [EXC], rep.venue)  # only gateway and exchanges are positional
    tutorial = OMS(gateway=None, exchanges=[EXC], refresh_orders_snapshot=10,
                   refresh_positions_snapshot=10, venue=rep.venue)
    assert tutorial.options["refresh_orders_snapshot"] == 10
    nothing_sent(rep, oms)


def test_client_order_ids_are_unique():
    rep, oms = fresh(latencies=zero_latencies(req_private=10, ack_private=10))

    async def go(_):
        await oms.limit_order(EXC, TICKER, D("0.01"), D("59999.0"), cloid="dup")
        with pytest.raises(OrderRejected) as info:  # still PENDING
            await oms.limit_order(EXC, TICKER, D("0.02"), D("59998.0"), cloid="dup")
        assert info.value.code == -4015 and info.value.argument == "cloid"

    async def again(_):  # acknowledged by now: still refused, then cancelled
        with pytest.raises(OrderRejected, match="cloid='dup'"):
            await oms.limit_order(EXC, TICKER, D("0.02"), D("59998.0"), cloid="dup")
        await oms.cancel_order(EXC, TICKER, cloid="dup")

    async def reuse(_):  # closed orders' ids stay refused (the mirror remembers them)
        with pytest.raises(OrderRejected, match="already used"):
            await oms.limit_order(EXC, TICKER, D("0.02"), D("59998.0"), cloid="dup")

    for when, (name, step) in enumerate({"go": go, "again": again, "reuse": reuse}.items()):
        rep.add_callback(name, step)
        rep.add_to_queue(name, 1_000 + 300 * when, None)
    asyncio.run(rep.play(progress=False))
    assert [(a["event"], a.get("amount")) for a in rep.actions] == [
        ("submit", D("0.01")), ("ack", None), ("cancel", None), ("cancelled", None)]
    assert not oms.orders_peek(EXC).get_orders()
    assert not rep.venue.engine(EXC, TICKER).resting


def test_client_order_ids_are_unique_rand_cloid_skips_taken_ids():
    _, oms = fresh()
    taken = f"{1:032x}"
    asyncio.run(oms.limit_order(EXC, TICKER, D("0.01"), D("59999.0"), cloid=taken))
    assert asyncio.run(oms.limit_order(EXC, TICKER, D("0.01"), D("59998.0"))) == f"{2:032x}"


def test_cancelling_an_unknown_order_is_refused_at_the_call():
    rep, oms = fresh()
    cloid = asyncio.run(oms.limit_order(EXC, TICKER, D("0.01"), D("59999.0")))
    for kwargs in ({"cloid": "nope"}, {"oid": "nope"}, {"cloid": cloid, "oid": "nope"}):
        with pytest.raises(OrderRejected, match="-2011 Unknown order sent") as info:
            asyncio.run(oms.cancel_order(EXC, TICKER, **kwargs))
        assert info.value.code == -2011
    with pytest.raises(OrderRejected, match="cloid="):  # another ticker's order is unknown
        asyncio.run(oms.cancel_order(EXC, "ETHUSDT", cloid=cloid))
    asyncio.run(oms.cancel_order(EXC, "ETHUSDT"))  # cancel-all with nothing to cancel is fine
    assert [a["event"] for a in rep.actions] == ["submit"]


class Listener:
    """Another listener of the venue beside the OMS (a recorder): keeps every event."""

    def __init__(self, rep):
        self.rep, self.updates, self.fills = rep, [], []
        rep.venue.attach(self)

    async def on_order_update(self, update: OrderUpdate) -> None:
        assert update.local_ts == self.rep.clock.ns  # delivered at its local time
        self.updates.append(update)

    async def on_fill(self, fill: Fill) -> None:
        self.fills.append(fill)


def test_a_cancel_the_venue_cannot_apply_comes_back():
    """Cancelled twice: the second cancel fails at the venue and its reject reaches the OMS
    (and the order's handlers, while the mirror still holds the order)."""
    lat = zero_latencies(req_private=10, ack_private=30)
    rep, oms = fresh(latencies=lat)
    seen, listener = [], Listener(rep)
    oms.orders_peek(EXC).add_delta_handler(seen.append)

    async def go(_):
        cloid = await oms.limit_order(EXC, TICKER, D("0.01"), D("59999.0"))
        rep.add_to_queue("cancel", 1_100, cloid)
        rep.add_to_queue("cancel", 1_101, cloid)

    rep.add_callback("go", go)
    rep.add_callback("cancel", lambda cloid: oms.cancel_order(EXC, TICKER, cloid=cloid))
    rep.add_to_queue("go", 1_000, None)
    asyncio.run(rep.play(progress=False))
    [reject] = [u for u in listener.updates if u.kind is OrderEventKind.CANCEL_REJECT]
    assert (reject.exchange_ts, reject.local_ts) == (1_111 * MS, 1_141 * MS)
    assert (reject.code, reject.reason, reject.status) == ("-2011", "Unknown order sent.", "")
    events = [(a["event"], a.get("reason")) for a in rep.actions]
    assert events[-1] == ("cancel_reject", "-2011 Unknown order sent.")
    assert [d["ord_status"] for d in seen] == ["PENDING", "NEW", "CANCEL_PENDING",
                                                "CANCELLED"]


def test_a_cancel_the_venue_cannot_apply_comes_back_to_a_live_order():
    """The order filled at the venue before the cancel arrived; the cancel's reject (fast
    ACK channel) reaches the mirror before the fill (slow FEED channel)."""
    lat = zero_latencies(ack_private=1, feed_private=200)
    books, _ = flat_market(20)
    rep = replayer(books, np.array([[1_050, 59999.0, 1.0, -1]]), latencies=lat)
    oms, seen = rep.get_oms(), []
    oms.orders_peek(EXC).add_delta_handler(seen.append)

    async def go(_):
        cloid = await oms.limit_order(EXC, TICKER, D("0.01"), D("60000.0"))
        rep.add_to_queue("cancel", 1_100, cloid)

    rep.add_callback("go", go)
    rep.add_callback("cancel", lambda cloid: oms.cancel_order(EXC, TICKER, cloid=cloid))
    rep.add_to_queue("go", 1_000, None)
    asyncio.run(rep.play(progress=False))
    assert [(d["ord_status"], d["reject_reason"]) for d in seen] == [
        ("PENDING", None), ("NEW", None), ("CANCEL_PENDING", None),
        ("CANCEL_PENDING", "cancel rejected: -2011 Unknown order sent."),
        ("FILLED", "cancel rejected: -2011 Unknown order sent.")]


def test_cancels_are_pending_until_confirmed_a_pending_order_is_never_left_pending():
    """Orders cancelled while PENDING under random latencies (the cancel sometimes overtakes
    the order): once every message is delivered no order is left PENDING or CANCEL_PENDING,
    the mirror holds exactly the venue's resting orders, and every cancel the venue could
    not apply is on its order."""
    lat = LognormalLatency({"req_private": 5, "ack_private": 5, "feed_private": 5},
                           sigma=1.5, seed=1)
    rep, oms = fresh(60, latencies=lat)

    async def act(i):
        cloid = await oms.limit_order(EXC, TICKER, D("0.01"), D("59999.0"))
        await oms.cancel_order(EXC, TICKER, cloid=cloid)

    rep.add_callback("act", act)
    rep.add_events("act", [1_000 + 50 * i for i in range(100)], list(range(100)))
    asyncio.run(rep.play(progress=False))
    assert not rep.queue
    live = oms.orders_peek(EXC).get_orders()
    assert {o.cloid for o in live} == set(rep.venue.engine(EXC, TICKER).resting)
    assert {o.ord_status for o in live} == {OrderStatus.NEW}
    rejected = {a["cloid"] for a in rep.actions if a["event"] == "cancel_reject"}
    assert rejected == {o.cloid for o in live if o.reject_reason}
    assert 0 < len(live) < 100  # both outcomes happened


@pytest.mark.parametrize("interval", [NAN, INF, "abc", None, 0, -5, True], ids=repr)
def test_arguments_are_checked_at_the_call_clock_callbacks(interval):
    rep, oms = fresh()
    with pytest.raises(ConfigError, match=r"interval_ms=.* (must|is not)"):
        asyncio.run(oms.add_clock_callback(lambda: None, interval_ms=interval))
    with pytest.raises(ConfigError, match=r"callback=.* must be callable"):
        asyncio.run(oms.add_clock_callback("not a function", interval_ms=100))
    nothing_sent(rep, oms)


def at(rep, steps: dict) -> None:
    """Run each ``steps[ms]()`` (sync or async) at replay time ``ms``, then play."""
    for ms, step in steps.items():
        rep.add_callback(ms, lambda _, step=step: step())
        rep.add_to_queue(ms, ms, None)
    asyncio.run(rep.play(progress=False))


def test_a_request_that_does_not_leave_rejects_its_order(monkeypatch):
    rep, oms = fresh()
    seen = []
    oms.orders_peek(EXC).add_delta_handler(seen.append)

    async def connection_lost(request):
        raise ConnectionLost("socket closed", venue=request.exchange)

    monkeypatch.setattr(rep.venue, "submit", connection_lost)
    with pytest.raises(ConnectionLost, match="socket closed"):
        asyncio.run(oms.limit_order(EXC, TICKER, D("0.01"), D("59999.0"), cloid="lost"))
    assert [(d["ord_status"], d["reject_reason"]) for d in seen] == [
        ("PENDING", None), ("REJECTED", "submit failed: ConnectionLost: binance: socket closed")]
    assert not oms.orders_peek(EXC).get_orders()  # not left PENDING
    assert oms.orders_peek(EXC).cloid_known("lost")  # its id stays used


def test_cancels_are_pending_until_confirmed_a_failed_send_marks_nothing(monkeypatch):
    rep, oms = fresh()
    errors = []

    async def cancel():
        async def connection_lost(request):
            raise ConnectionLost("socket closed")

        monkeypatch.setattr(rep.venue, "cancel", connection_lost)
        try:
            await oms.cancel_order(EXC, TICKER)
        except ConnectionLost as error:
            errors.append(error)

    at(rep, {1_000: lambda: oms.limit_order(EXC, TICKER, D("0.01"), D("59999.0")),
             1_100: cancel})
    [order] = oms.orders_peek(EXC).get_orders()
    assert errors and order.ord_status is OrderStatus.NEW


def test_amends_change_the_mirror_when_the_venue_acknowledges_them():
    rep, oms = fresh(latencies=zero_latencies(req_private=10, ack_private=30))
    seen, cloid = [], f"{1:032x}"
    oms.orders_peek(EXC).add_delta_handler(lambda d: seen.append(
        (rep.time(), d["ord_status"], d["price"], d["amount"], d["reject_reason"])))
    at(rep, {1_000: lambda: oms.limit_order(EXC, TICKER, D("0.01"), D("59999.0"),
                                            tif="GTX"),
             1_100: lambda: oms.amend_order(EXC, TICKER, cloid=cloid, price="59998.0",
                                            amount=D("0.02")),
             1_200: lambda: oms.amend_order(EXC, TICKER, cloid=cloid, price=D("60000.1"))})
    assert seen == [
        (1_000, "PENDING", D("59999.0"), D("0.01"), None),
        (1_040, "NEW", D("59999.0"), D("0.01"), None),
        (1_140, "NEW", D("59998.0"), D("0.02"), None),  # when the AMEND_ACK arrives
        (1_240, "NEW", D("59998.0"), D("0.02"),  # post-only would cross: refused
         "amend rejected: -5022 Post Only order would be executed immediately as a taker.")]
    [resting] = rep.venue.engine(EXC, TICKER).resting.values()
    assert (resting.price, resting.qty) == (D("59998.0"), D("0.02"))


def test_amends_change_the_mirror_when_the_venue_acknowledges_them_rounded_to_specs():
    """An amend's price is rounded to the tick like an order's (``round_to_specs``)."""
    rep, oms = fresh()
    at(rep, {1_000: lambda: oms.limit_order(EXC, TICKER, D("0.01"), D("59990.0"), cloid="a"),
             1_100: lambda: oms.amend_order(EXC, TICKER, cloid="a", price=59980.04,
                                            round_to_specs=True)})
    assert oms.cloid_query(EXC, "a").price == D("59980.0")
    [resting] = rep.venue.engine(EXC, TICKER).resting.values()
    assert resting.price == D("59980.0")


def test_amends_change_the_mirror_when_the_venue_acknowledges_them_after_a_partial_fill():
    books, _ = flat_market(20)
    rep = replayer(books, np.array([[1_100, 59999.0, 0.01, -1]]))  # fills 0.01 of 0.03
    oms = rep.get_oms()
    at(rep, {1_000: lambda: oms.limit_order(EXC, TICKER, D("0.03"), D("60000.0"),
                                            cloid="a"),
             1_200: lambda: oms.amend_order(EXC, TICKER, cloid="a", price=D("59999.5"))})
    order = oms.cloid_query(EXC, "a")
    assert (order.ord_status, order.price, order.filled_sz) == (
        OrderStatus.PARTIAL, D("59999.5"), D("0.01"))


def test_cancelling_or_amending_an_unknown_order_is_refused_at_the_call():
    rep, oms = fresh()
    cloid = asyncio.run(oms.limit_order(EXC, TICKER, D("0.01"), D("59999.0")))
    with pytest.raises(OrderRejected, match="-2011") as info:
        asyncio.run(oms.amend_order(EXC, TICKER, cloid="nope", price=D(1)))
    assert info.value.code == -2011
    with pytest.raises(OrderRejected, match="must keep the order's side"):
        asyncio.run(oms.amend_order(EXC, TICKER, cloid=cloid, amount=D("-0.01")))
    with pytest.raises(OrderRejected, match="nothing to amend"):
        asyncio.run(oms.amend_order(EXC, TICKER, cloid=cloid))
    refused(lambda: oms.amend_order(EXC, TICKER, cloid=cloid, price=INF), "price", INF)
    assert [a["event"] for a in rep.actions] == ["submit"]


def test_venue_events_go_through_the_mirrors_rules():
    _, oms = fresh()
    fill = Fill(EXC, TICKER, 1, 1, "c", "1", trade_id="9", side=1, price=D("60000"),
                size=D("0.01"), fee=D(0), fee_asset="USDT", is_maker=True)
    for event in (fill, fill):  # delivered twice (a resent message): booked once
        asyncio.run(oms.on_fill(event))
    assert oms.get_position(EXC, TICKER) == D("0.01")
    elsewhere = Fill("bybit", TICKER, 1, 1, "c", "1", "10", 1, D("60000"), D("1"), D(0),
                     "USDT", True)
    asyncio.run(oms.on_fill(elsewhere))  # an exchange this OMS does not track
    assert oms.get_position(EXC, TICKER) == D("0.01")

    def update(kind, status, update_id, filled):
        return OrderUpdate(EXC, TICKER, update_id * MS, update_id * MS, kind, status, "c",
                           "1", D("0.02"), D("60000"), D(filled), update_id)

    for event in (update(OrderEventKind.FILL, "PARTIAL", 3, "0.01"),
                  update(OrderEventKind.ACK, "NEW", 2, "0")):  # out of order: stale
        asyncio.run(oms.on_order_update(event))
    order = oms.cloid_query(EXC, "c")
    assert (order.ord_status, order.filled_sz, order.update_id) == (
        OrderStatus.PARTIAL, D("0.01"), 3)


def test_handlers_fire_on_every_change():
    books, _ = flat_market(20)
    rep = replayer(books, np.array([[1_500, 59999.0, 0.004, -1]]),
                   latencies=zero_latencies(ack_private=5, feed_private=5))
    oms, pages, deltas, positions, position_deltas = rep.get_oms(), [], [], [], []
    assert oms.orders_mirror(EXC, on_update=lambda page: pages.append(
        [(o["cloid"], o["ord_status"]) for o in page]), on_delta=deltas.append) is (
        oms.orders_peek(EXC))

    async def on_positions(page):  # async handlers are awaited
        positions.append({t: p["amount"] for t, p in page.items()})

    oms.positions_mirror(EXC, on_update=on_positions, on_delta=position_deltas.append)
    at(rep, {1_000: lambda: oms.limit_order(EXC, TICKER, D("0.01"), D("60000.0"),
                                            cloid="a"),
             1_001: lambda: oms.limit_order(EXC, TICKER, D("0.01"), D("59990.0"),
                                            cloid="b"),
             1_600: lambda: oms.cancel_order(EXC, TICKER, cloid="b")})
    assert [(d["cloid"], d["ord_status"]) for d in deltas] == [
        ("a", "PENDING"), ("b", "PENDING"), ("a", "NEW"), ("b", "NEW"), ("a", "PARTIAL"),
        ("b", "CANCEL_PENDING"), ("b", "CANCELLED")]
    assert pages[-3:] == [[("a", "PARTIAL"), ("b", "NEW")],
                          [("a", "PARTIAL"), ("b", "CANCEL_PENDING")],
                          [("a", "PARTIAL")]]  # a dead order leaves the page
    assert positions == [{TICKER: D("0.004")}]
    assert [(d["ticker"], d["delta"]) for d in position_deltas] == [(TICKER, D("0.004"))]


class WithoutTimers:
    """The replayed venue behind a facade without ``add_timer``: an OrderVenue that runs
    no clock callbacks."""

    def __init__(self, venue) -> None:
        self._venue = venue

    def __getattr__(self, name: str):
        if name == "add_timer":
            raise AttributeError(name)
        return getattr(self._venue, name)


def test_arguments_are_checked_at_the_call_clock_callbacks_need_venue_timers():
    rep, _ = fresh()
    oms = OMS(venue=WithoutTimers(rep.venue))
    with pytest.raises(ConfigError, match="runs no clock callbacks"):
        asyncio.run(oms.add_clock_callback(lambda: None, interval_ms=100))
    assert len(rep.queue) == 0
