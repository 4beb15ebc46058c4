"""Rules of makerlab.trading.oms and makerlab.trading.session that the fake exchange cannot
stage on cue (a request held in flight, a cancel-all failing on one exchange, an error
that says the outcome is unknown, a status reported twice, a round that fails): the OMS
over a venue stub that answers each call as told."""

from __future__ import annotations

import asyncio
import os
import signal
from decimal import Decimal

import pytest
from oms_harness import TickingClock

from makerlab.core.events import (
    FeedStatus,
    Fill,
    OrderEventKind,
    OrderUpdate,
    PositionState,
    StatusKind,
)
from makerlab.core.instruments import InstrumentSpec
from makerlab.core.orders import OrderStatus
from makerlab.errors import ConfigError, RateLimited, VenueError
from makerlab.live.ratelimit import RateLimitState
from makerlab.trading.oms import OMS
from makerlab.trading.risk import KillReason, RiskLimits

D = Decimal
EXC, SYMBOL = "binance", "BTCUSDT"
HOUR = 3600.0


class Venue:
    """An order venue (no live session) that records each call: ``held`` keeps a cloid's
    submit in flight until its event is set (``held_cancels``: its cancel);
    ``submit_error`` makes submits raise it;
    ``cancel_all_fails`` names the exchanges whose cancel-all raises a VenueError
    (``cancel_all_bug``: raises it, on every exchange); the next
    ``cancels_refused`` cancels are answered CANCEL_REJECT before they return (as a live
    venue delivers its answers)."""

    def __init__(self, exchanges: tuple[str, ...] = (EXC,)) -> None:
        self.clock = TickingClock()
        self._exchanges = list(exchanges)
        self.listeners: list[object] = []
        self.calls: list[tuple[str, str | None]] = []
        self.held: dict[str, asyncio.Event] = {}
        self.held_cancels: dict[str, asyncio.Event] = {}
        self.submit_error: Exception | None = None
        self.cancel_all_fails: set[str] = set()
        self.cancel_all_bug: Exception | None = None
        self.cancels_refused = 0
        self.open: list[OrderUpdate] = []
        self.requests: list = []
        self.timers: list = []  # the clock callbacks: the tests run them
        self.markets: dict[tuple[str, str], dict[str, Decimal]] = {}
        self.positions_now: list[PositionState] = []

    def exchanges(self) -> list[str]:
        return list(self._exchanges)

    def spec(self, exchange: str, symbol: str) -> InstrumentSpec:
        """Every symbol a BTC linear perpetual (lot 0.001), unless ``markets`` lists the
        exchange: then only its symbols, with their ``min_qty`` / ``contract_size``."""
        listed = {s: terms for (e, s), terms in self.markets.items() if e == exchange}
        if listed and symbol not in listed:
            raise ConfigError(f"no instrument spec for {exchange}/{symbol}")
        terms = listed.get(symbol, {})
        return InstrumentSpec(exchange, symbol, "BTC", "USDT", "linear_perpetual", D("0.1"),
                              D("0.001"), terms.get("min_qty", D("0.001")), D("5"),
                              terms.get("contract_size", D(1)))

    def attach(self, listener: object) -> None:
        self.listeners.append(listener)

    def add_timer(self, callback, interval_ms) -> None:
        self.timers.append(callback)

    async def submit(self, request) -> None:
        self.calls.append(("submit", request.cloid))
        self.requests.append(request)
        if request.cloid in self.held:
            await self.held[request.cloid].wait()
        if self.submit_error is not None:
            raise self.submit_error
        self.calls.append(("sent", request.cloid))

    async def cancel(self, request) -> None:
        self.calls.append(("cancel", request.cloid))
        if request.cloid in self.held_cancels:
            await self.held_cancels[request.cloid].wait()
        if self.cancels_refused:
            self.cancels_refused -= 1
            await self.report(request.cloid, "", kind=OrderEventKind.CANCEL_REJECT)

    async def amend(self, request) -> None:
        self.calls.append(("amend", request.cloid))

    async def cancel_all(self, exchange: str, symbol: str | None = None) -> None:
        self.calls.append(("cancel_all", exchange))
        if exchange in self.cancel_all_fails:
            raise VenueError("HTTP 503: service unavailable", venue=exchange)
        if self.cancel_all_bug is not None:
            raise self.cancel_all_bug

    async def open_orders(self, exchange: str) -> list[OrderUpdate]:
        return self.open

    async def positions(self, exchange: str) -> list[PositionState]:
        return self.positions_now

    async def balances(self, exchange: str) -> list:
        return []

    def row(self, cloid: str) -> OrderUpdate:
        """The open-orders snapshot's row of ``cloid`` (0.01 at 60000, resting)."""
        now = self.clock.now_ns()
        return OrderUpdate(EXC, SYMBOL, now, now, OrderEventKind.STATE, "NEW", cloid,
                           f"oid-{cloid}", D("0.01"), D("60000"), D("0"), now)

    async def report(self, cloid: str, status: str, filled: str = "0",
                     kind: OrderEventKind = OrderEventKind.ACK, exc: str = EXC,
                     amount: str = "0.01") -> None:
        """The venue's news of the order ``cloid`` (0.01 at 60000) to every listener."""
        now = self.clock.now_ns()
        update = OrderUpdate(exc, SYMBOL, now, now, kind, status, cloid, f"oid-{cloid}",
                             D(amount), D("60000"), D(filled), now)
        for listener in list(self.listeners):
            handler = getattr(listener, "on_order_update", None)
            if handler is not None:
                await handler(update)


    async def fill(self, cloid: str, size: str, side: int, exc: str = EXC) -> None:
        """A fill of ``cloid`` at 60000 to every listener."""
        now = self.clock.now_ns()
        fill = Fill(exc, SYMBOL, now, now, cloid, f"oid-{cloid}", f"t{now}", side,
                    D("60000"), D(size), D(0), "USDT", True)
        for listener in list(self.listeners):
            handler = getattr(listener, "on_fill", None)
            if handler is not None:
                await handler(fill)


class Connected(Venue):
    """The stub as a live venue: the OMS runs its session over it. ``queries`` records
    the order queries (the venue knows none of them; ``query_fails``: they fail),
    ``dead_man`` the armings of the dead-man switch (``arm_fails``: they fail)."""

    def __init__(self, exchanges: tuple[str, ...] = (EXC,)) -> None:
        super().__init__(exchanges)
        self.queries: list[str | None] = []
        self.dead_man: list[tuple[str, int]] = []
        self.query_fails = self.arm_fails = False
        self.failure_handlers: list[object] = []

    async def start(self) -> None:
        pass

    async def query_order(self, exchange: str, symbol: str, cloid: str | None = None,
                          oid: str | None = None) -> OrderUpdate | None:
        self.queries.append(cloid or oid)
        if self.query_fails:
            raise VenueError("HTTP 503: service unavailable", venue=exchange)
        return None

    async def arm_dead_man(self, exchange: str, timeout_ms: int,
                           symbol: str | None = None) -> None:
        self.dead_man.append((exchange, timeout_ms))
        if self.arm_fails:
            raise VenueError("HTTP 503: service unavailable", venue=exchange)

    async def funding(self, exchange: str, symbol: str):
        raise NotImplementedError

    def rate_limits(self, exchange: str) -> RateLimitState:
        return RateLimitState(exchange)

    def add_failure_handler(self, handler: object) -> None:
        self.failure_handlers.append(handler)


def live_oms(venue: Connected, **options) -> OMS:
    options = {"refresh_orders_snapshot": HOUR, "refresh_positions_snapshot": HOUR,
               "pending_timeout": HOUR * 1000} | options
    return OMS(venue=venue, **options)


async def settle() -> None:
    """Let every ready task run (the stub answers without I/O)."""
    for _ in range(20):
        await asyncio.sleep(0)


def status(oms: OMS, cloid: str, exc: str = EXC) -> OrderStatus:
    order = oms.orders_peek(exc).cloid_query(cloid)
    assert order is not None
    return order.ord_status


# -- makerlab.trading.oms ------------------------------------------------------------------


def test_the_kill_switch_cancels_everything_requests_in_flight_are_awaited():
    venue = Venue()
    oms = OMS(venue=venue)

    async def main():
        venue.held = {"a": asyncio.Event(), "b": asyncio.Event()}
        sends = [asyncio.create_task(oms.limit_order(EXC, SYMBOL, D("0.01"), D("60000"),
                                                     cloid=cloid)) for cloid in "ab"]
        await settle()
        kill = asyncio.create_task(oms.kill())
        await settle()
        while_both = list(venue.calls)
        venue.held["a"].set()
        await settle()
        while_one = list(venue.calls)
        venue.held["b"].set()
        await asyncio.gather(*sends, kill)
        return while_both, while_one, venue.calls

    while_both, while_one, calls = asyncio.run(main())
    assert while_both == [("submit", "a"), ("submit", "b")]
    assert while_one == [*while_both, ("sent", "a")]  # b still in flight: no cancel-all yet
    assert calls == [*while_one, ("sent", "b"), ("cancel_all", EXC)]


def test_the_kill_switch_cancels_everything_a_failed_cancel_all_stops_no_other_exchange():
    venue = Venue(exchanges=("a", "b"))
    venue.cancel_all_fails = {"a"}
    oms = OMS(venue=venue)

    async def main():
        await oms.limit_order("b", SYMBOL, D("0.01"), D("60000"), cloid="x")
        await venue.report("x", "NEW", exc="b")
        await oms.kill()  # the venue's error is logged, not raised
        return status(oms, "x", "b")

    assert asyncio.run(main()) is OrderStatus.CANCEL_PENDING
    assert venue.calls[-2:] == [("cancel_all", "a"), ("cancel_all", "b")]


def test_the_kill_switch_cancels_everything_acknowledged_live_orders_turn_cancel_pending():
    venue = Venue()
    oms = OMS(venue=venue)

    async def main():
        for cloid in ("pending", "new", "partial"):
            await oms.limit_order(EXC, SYMBOL, D("0.01"), D("60000"), cloid=cloid)
        await venue.report("new", "NEW")
        await venue.report("partial", "PARTIAL", filled="0.004", kind=OrderEventKind.FILL)
        await oms.kill()
        return [status(oms, cloid) for cloid in ("pending", "new", "partial")]

    assert asyncio.run(main()) == [OrderStatus.PENDING, OrderStatus.CANCEL_PENDING,
                                   OrderStatus.CANCEL_PENDING]


def test_the_kill_switch_cancels_everything_an_order_learnt_live_is_cancelled_once():
    """While tripped, a late acknowledgement is cancelled at once; the cancel's refusal
    (the order filled meanwhile), delivered before the cancel returns, is no news that it
    is live: the cancel is not sent again."""
    venue = Venue()
    oms = OMS(venue=venue)

    async def main():
        await oms.limit_order(EXC, SYMBOL, D("0.01"), D("60000"), cloid="late")
        await oms.kill()
        venue.cancels_refused = 3
        await venue.report("late", "NEW")
        return [call for call in venue.calls if call[0] == "cancel"]

    assert asyncio.run(main()) == [("cancel", "late")]


def test_cancels_are_pending_until_confirmed_cancel_open_orders_marks_acknowledged_ones():
    venue = Venue()
    oms = OMS(venue=venue)

    async def main():
        for cloid in ("pending", "new"):
            await oms.limit_order(EXC, SYMBOL, D("0.01"), D("60000"), cloid=cloid)
        await venue.report("new", "NEW")
        await oms.cancel_open_orders(EXC)
        return [status(oms, cloid) for cloid in ("pending", "new")], venue.calls[-1]

    assert asyncio.run(main()) == ([OrderStatus.PENDING, OrderStatus.CANCEL_PENDING],
                                   ("cancel_all", EXC))


def test_the_kill_switch_cancels_everything_snapshot_rows_learnt_while_tripped():
    """The kill's reconciliation finds at the venue, after the cancel-all, an order the
    mirror did not know (placed aside) and one of its own (the cancel-all did not take
    it): each is cancelled at once, on its own."""
    venue = Connected()
    oms = live_oms(venue)

    async def main():
        await oms.init()
        try:
            await oms.limit_order(EXC, SYMBOL, D("0.01"), D("60000"), cloid="ours")
            await venue.report("ours", "NEW")
            venue.open = [venue.row("ours"), venue.row("aside")]
            await oms.kill()
            return ([call for call in venue.calls if call[0] == "cancel"],
                    [status(oms, cloid) for cloid in ("ours", "aside")])
        finally:
            await oms.cleanup()

    cancels, statuses = asyncio.run(main())
    assert cancels == [("cancel", "ours"), ("cancel", "aside")]
    assert statuses == [OrderStatus.CANCEL_PENDING] * 2


def test_a_request_that_does_not_leave_rejects_its_order_outcome_unknown_is_doubtful():
    """A 5xx or a timeout after the request left (the venue modules' "outcome unknown"):
    the order is REJECTED at once, and the venue's first news of it revives it."""
    venue = Connected()
    oms = live_oms(venue)
    venue.submit_error = VenueError("HTTP 502 (outcome unknown): b''", venue=EXC)

    async def main():
        await oms.init()
        try:
            with pytest.raises(VenueError, match="outcome unknown"):
                await oms.limit_order(EXC, SYMBOL, D("0.01"), D("60000"), cloid="lost")
            rejected = oms.orders_peek(EXC).cloid_query("lost") is None
            await venue.report("lost", "NEW")
            return rejected, status(oms, "lost")
        finally:
            await oms.cleanup()

    assert asyncio.run(main()) == (True, OrderStatus.NEW)


async def forced_orders_round(oms: OMS, venue: Connected, cloid: str
                              ) -> tuple[list[str | None], OrderStatus]:
    """A forced orders round (the kill switch's, a reconnection's): the order queries it
    made and ``cloid``'s status after it."""
    assert oms.reconciler is not None
    await oms.reconciler.orders(EXC, force=True)
    return list(venue.queries), status(oms, cloid)


def test_an_order_with_a_submit_in_flight_is_left_to_it_by_the_orders_round():
    """The OMS names its requests in flight to the reconciler: a forced orders round
    (the kill switch's, a reconnection's) neither queries nor closes an order whose
    submit has not returned, though the venue's snapshot lacks it."""
    venue = Connected()
    oms = live_oms(venue)

    async def main():
        await oms.init()
        try:
            venue.held = {"a": asyncio.Event()}
            send = asyncio.create_task(oms.limit_order(EXC, SYMBOL, D("0.01"), D("60000"),
                                                       cloid="a"))
            await settle()
            seen = await forced_orders_round(oms, venue, "a")
            venue.held["a"].set()
            await send
            return seen
        finally:
            await oms.cleanup()

    assert asyncio.run(main()) == ([], OrderStatus.PENDING)


def test_an_order_with_a_cancel_in_flight_is_left_to_it_by_the_orders_round():
    """A cancel is a request for its order too: a forced orders round neither queries nor
    closes an acknowledged order whose cancel has not returned."""
    venue = Connected()
    oms = live_oms(venue)

    async def main():
        await oms.init()
        try:
            await oms.limit_order(EXC, SYMBOL, D("0.01"), D("60000"), cloid="a")
            await venue.report("a", "NEW")
            venue.held_cancels = {"a": asyncio.Event()}
            cancel = asyncio.create_task(oms.cancel_order(EXC, SYMBOL, cloid="a"))
            await settle()
            seen = await forced_orders_round(oms, venue, "a")
            venue.held_cancels["a"].set()
            await cancel
            return seen
        finally:
            await oms.cleanup()

    assert asyncio.run(main()) == ([], OrderStatus.NEW)


def test_an_order_stays_in_flight_while_any_of_its_requests_is():
    """Two requests of one order in flight (its submit, then its cancel): the first to
    return does not end the other's protection."""
    venue = Connected()
    oms = live_oms(venue)

    async def main():
        await oms.init()
        try:
            venue.held = {"a": asyncio.Event()}
            venue.held_cancels = {"a": asyncio.Event()}
            send = asyncio.create_task(oms.limit_order(EXC, SYMBOL, D("0.01"), D("60000"),
                                                       cloid="a"))
            await settle()
            cancel = asyncio.create_task(oms.cancel_order(EXC, SYMBOL, cloid="a"))
            await settle()
            venue.held_cancels["a"].set()
            await cancel  # returned; the submit has not
            seen = await forced_orders_round(oms, venue, "a")
            venue.held["a"].set()
            await send
            return seen
        finally:
            await oms.cleanup()

    assert asyncio.run(main()) == ([], OrderStatus.PENDING)


# -- makerlab.trading.session --------------------------------------------------------------


def stream(kind: StatusKind, exc: str = EXC) -> FeedStatus:
    return FeedStatus(exc, "", kind, 0, "test")


def test_the_private_streams_health_a_disconnect_reported_twice_trips_once():
    venue = Connected()
    oms = live_oms(venue)

    async def main():
        await oms.init()
        try:
            for _ in range(2):
                await oms.on_status(stream(StatusKind.DISCONNECTED))
                await settle()
            return [reason for _, reason, _ in oms.kill_switch.trips]
        finally:
            await oms.cleanup()

    assert asyncio.run(main()) == [KillReason.DISCONNECT]


def test_the_private_streams_health_the_trip_is_lifted_once_every_stream_is_up():
    venue = Connected(exchanges=("a", "b"))
    oms = live_oms(venue)

    async def main():
        await oms.init()
        try:
            for exc in "ab":
                await oms.on_status(stream(StatusKind.DISCONNECTED, exc))
            await settle()
            await oms.on_status(stream(StatusKind.CONNECTED, "a"))
            await settle()
            one_up = oms.kill_switch.reason
            await oms.on_status(stream(StatusKind.CONNECTED, "b"))
            await settle()
            return one_up, oms.kill_switch.reason
        finally:
            await oms.cleanup()

    assert asyncio.run(main()) == (KillReason.DISCONNECT, None)


def test_the_private_streams_health_only_a_disconnect_trip_is_lifted():
    venue = Connected()
    oms = live_oms(venue)

    async def main():
        await oms.init()
        try:
            await oms.on_status(stream(StatusKind.DISCONNECTED))
            await settle()
            await oms.kill("by hand, while the stream is down")
            await oms.on_status(stream(StatusKind.CONNECTED))
            await settle()
            return oms.kill_switch.reason
        finally:
            await oms.cleanup()

    assert asyncio.run(main()) is KillReason.MANUAL


@pytest.mark.parametrize("error, tripped", [
    (VenueError("HTTP 503: service unavailable", venue=EXC), None),
    (RuntimeError("a bug in the round"), KillReason.EXCEPTION)])
def test_owned_tasks_only_a_round_failing_for_the_venues_sake_is_tried_again(error, tripped):
    venue = Connected()
    oms = live_oms(venue, refresh_positions_snapshot=0.005)
    asked = []

    async def positions(exchange):
        asked.append(exchange)
        if len(asked) > 1:  # the start-up snapshot succeeds
            raise error
        return []

    venue.positions = positions

    async def main():
        await oms.init()
        try:
            for _ in range(200):
                await asyncio.sleep(0.005)
                if len(asked) >= 4 or oms.kill_switch.tripped:
                    break
            await settle()
            return oms.kill_switch.reason, len(asked)
        finally:
            await oms.cleanup()

    reason, rounds = asyncio.run(main())
    assert reason is tripped
    assert rounds >= 4 if tripped is None else rounds == 2


def test_exit_cancels_everything_after_the_kill_switch_tripped_too():
    """A tripped switch (a limit latches) does not keep ``cleanup()`` from its cancel-all:
    what the venue took meanwhile (a doubtful send, an order placed aside) goes too."""
    venue = Connected()
    oms = live_oms(venue)

    async def main():
        await oms.init()
        await oms.kill()
        await oms.cleanup()
        return [call for call in venue.calls if call[0] == "cancel_all"]

    assert asyncio.run(main()) == [("cancel_all", EXC)] * 2


def test_the_private_streams_health_another_exchanges_stream_is_not_this_oms_concern():
    venue = Connected(exchanges=("a", "b"))
    oms = live_oms(venue, exchanges=["a"])

    async def main():
        await oms.init()
        try:
            await oms.on_status(stream(StatusKind.DISCONNECTED, "b"))
            await settle()
            return list(oms.kill_switch.trips)
        finally:
            await oms.cleanup()

    assert asyncio.run(main()) == []


def test_the_private_streams_health_statuses_after_exit_are_ignored():
    venue = Connected()
    oms = live_oms(venue)

    async def main():
        await oms.init()
        await oms.cleanup()  # the connections close: their streams report it
        await oms.on_status(stream(StatusKind.DISCONNECTED))
        await settle()
        return [reason for _, reason, _ in oms.kill_switch.trips]

    assert asyncio.run(main()) == [KillReason.EXIT]


def test_the_private_streams_health_reconnected_every_mirror_only_order_is_queried():
    """The reconnection's orders round queries an order the snapshot lacks whatever its
    age (its last news is recent: the stream was down, not the order quiet)."""
    venue = Connected()
    oms = live_oms(venue)

    async def main():
        await oms.init()
        try:
            await oms.limit_order(EXC, SYMBOL, D("0.01"), D("60000"), cloid="a")
            await venue.report("a", "NEW")
            venue.query_fails = True  # the kill's reconciliation learns nothing
            await oms.on_status(stream(StatusKind.DISCONNECTED))
            await settle()
            venue.query_fails = False
            await oms.on_status(stream(StatusKind.CONNECTED))
            await settle()
            return venue.queries, oms.orders_peek(EXC).cloid_query("a")
        finally:
            await oms.cleanup()

    queries, order = asyncio.run(main())
    assert queries == ["a", "a"] and order is None  # unknown at the venue: closed


def test_the_private_streams_health_reconnected_positions_are_the_venues():
    venue = Connected()
    oms = live_oms(venue)

    async def main():
        await oms.init()
        try:
            await oms.on_status(stream(StatusKind.DISCONNECTED))
            await settle()
            venue.positions_now = [PositionState(EXC, SYMBOL, 0, 0, D("0.02"), D("60000"),
                                                 D("0"))]  # filled while the stream was down
            await oms.on_status(stream(StatusKind.CONNECTED))
            await settle()
            return oms.get_position(EXC, SYMBOL), oms.kill_switch.tripped
        finally:
            await oms.cleanup()

    assert asyncio.run(main()) == (D("0.02"), False)


def test_owned_tasks_a_position_the_venue_reports_beyond_a_limit_trips_the_kill_switch():
    venue = Connected()
    limits = RiskLimits(max_position={f"{EXC}/{SYMBOL}": D("0.01")})
    oms = live_oms(venue, risk=limits, refresh_positions_snapshot=0.005)

    async def main():
        await oms.init()
        try:
            venue.positions_now = [PositionState(EXC, SYMBOL, 0, 0, D("-0.02"), D("60000"),
                                                 D("0"))]  # traded around the OMS
            for _ in range(200):
                await asyncio.sleep(0.005)
                if oms.kill_switch.tripped:
                    break
            return oms.get_position(EXC, SYMBOL), oms.kill_switch.reason
        finally:
            await oms.cleanup()

    assert asyncio.run(main()) == (D("-0.02"), KillReason.LIMIT)


@pytest.mark.parametrize("arm_fails", [False, True])
def test_owned_tasks_the_dead_man_keeper_rearms_every_third_of_it(arm_fails):
    """30 ms: armed every 10 ms (a failed arming is logged and tried again next period)."""
    venue = Connected()
    venue.arm_fails = arm_fails
    oms = live_oms(venue, risk=RiskLimits(dead_man_ms=30))

    async def main():
        await oms.init()
        try:
            await asyncio.sleep(0.2)
            return len(venue.dead_man), oms.kill_switch.tripped
        finally:
            await oms.cleanup()

    armings, tripped = asyncio.run(main())
    assert armings >= 12 and not tripped  # every 30 ms: about 7



def test_a_listener_that_raises_trips_the_kill_switch_until_the_oms_exits():
    """The venue hands a failing listener's error to its failure handlers: the session's
    trips the kill switch (exception); once the OMS exits, nothing more is tripped."""
    venue = Connected()
    oms = live_oms(venue)

    async def main():
        await oms.init()
        [handler] = venue.failure_handlers
        await handler(RuntimeError("a recorder's bug"))
        await settle()
        await oms.cleanup()
        await handler(RuntimeError("a recorder's bug, at exit"))
        await settle()
        return [reason for _, reason, _ in oms.kill_switch.trips]

    assert asyncio.run(main()) == [KillReason.EXCEPTION, KillReason.EXIT]


class Gateway:
    """What the OMS closes at SIGTERM: ``cleanup_clients`` closes the venue, which tells
    its listeners first (the OMS's ``on_close``)."""

    def __init__(self) -> None:
        self.oms: OMS | None = None
        self.closed = 0
        self.close_error: Exception | None = None

    async def cleanup_clients(self) -> None:
        self.closed += 1
        assert self.oms is not None
        await self.oms.on_close()
        if self.close_error is not None:
            raise self.close_error


def sigterm_is_default() -> None:
    if signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL:
        pytest.skip("SIGTERM is handled here already: the OMS leaves it alone")


@pytest.mark.parametrize("cancel_all_bug, close_error", [
    (None, None), (RuntimeError("a bug in cancel-all"), None),
    (None, VenueError("a socket would not close", venue=EXC))])
def test_exit_cancels_everything_sigterm_then_closes_the_gateway_and_exits_143(
        cancel_all_bug, close_error):
    """SIGTERM (twice: a supervisor insisting) trips the kill switch once (exit), closes
    the Gateway, then ends the event loop with SystemExit(143); a kill or a close that
    fails does not keep the connections open or the process running."""
    sigterm_is_default()
    venue, gateway = Connected(), Gateway()
    venue.cancel_all_bug, gateway.close_error = cancel_all_bug, close_error
    oms = OMS(gateway, venue=venue, refresh_orders_snapshot=HOUR,
              refresh_positions_snapshot=HOUR, pending_timeout=HOUR * 1000)
    gateway.oms = oms

    async def main():
        await oms.init()
        if signal.getsignal(signal.SIGTERM) is signal.SIG_DFL:
            raise AssertionError("SIGTERM not taken by the OMS")  # and not sent: it kills
        os.kill(os.getpid(), signal.SIGTERM)
        os.kill(os.getpid(), signal.SIGTERM)
        await asyncio.sleep(2)  # SystemExit comes before

    with pytest.raises(SystemExit) as ended:
        asyncio.run(main())
    assert ended.value.code == 143 and gateway.closed == 1
    assert [call for call in venue.calls if call[0] == "cancel_all"] == [("cancel_all", EXC)]
    assert [reason for _, reason, _ in oms.kill_switch.trips] == [KillReason.EXIT]


def test_exit_cancels_everything_sigterm_is_given_back_at_cleanup():
    sigterm_is_default()
    venue = Connected()
    oms = live_oms(venue)

    async def main():
        await oms.init()
        await oms.cleanup()
        return signal.getsignal(signal.SIGTERM)

    assert asyncio.run(main()) is signal.SIG_DFL


def test_exit_cancels_everything_sigterm_is_left_to_a_handler_already_set():
    sigterm_is_default()
    venue = Connected()
    oms = live_oms(venue)

    def theirs(signum, frame):
        raise AssertionError("not sent")

    async def main():
        await oms.init()
        try:
            return signal.getsignal(signal.SIGTERM)
        finally:
            await oms.cleanup()

    signal.signal(signal.SIGTERM, theirs)
    try:
        assert asyncio.run(main()) is theirs
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)



# -- makerlab.trading.hedge ----------------------------------------------------------------

HEDGE = ("b", SYMBOL)
MAKER = {"exc": EXC, "ticker": SYMBOL, "amount": D("0.01"), "price": D("60000"),
         "cloid": "maker"}


def hedged(**markets) -> tuple[Venue, OMS]:
    venue = Venue(exchanges=(EXC, "b"))
    venue.markets = {HEDGE: markets} if markets else {}
    return venue, OMS(venue=venue)


def test_what_a_hedge_does_not_fill_returns_to_the_balance():
    venue, oms = hedged()

    async def main():
        await oms.hedge_order(MAKER, {"exc": "b", "ticker": SYMBOL})
        await venue.fill("maker", "0.004", +1)  # bought 0.004: sell 0.004 on b
        hedge = venue.requests[-1]
        await venue.fill(hedge.cloid, "0.001", -1, exc="b")
        await venue.report(hedge.cloid, "CANCELLED", "0.001", OrderEventKind.EXPIRE, "b",
                           amount="-0.004")
        return hedge.amount, oms.hedger.balance[HEDGE]

    assert asyncio.run(main()) == (D("-0.004"), D("-0.003"))


def test_each_maker_fill_is_hedged_in_the_hedge_markets_contracts_above_its_min_qty():
    venue, oms = hedged(contract_size=D("0.5"), min_qty=D("0.005"))

    async def main():
        await oms.hedge_order(MAKER, {"exc": "b", "ticker": SYMBOL})
        await venue.fill("maker", "0.002", -1)  # 0.004 contracts: below the minimum
        sent = len(venue.requests)
        await venue.fill("maker", "0.002", -1)
        return sent, venue.requests[-1].amount, oms.hedger.balance[HEDGE]

    assert asyncio.run(main()) == (1, D("0.008"), D("0"))


@pytest.mark.parametrize("refusal", ["kill switch", "rate limited"])
def test_a_hedge_refused_before_it_is_sent_keeps_its_size_in_the_balance(refusal):
    venue, oms = hedged()

    async def main():
        await oms.hedge_order(MAKER, {"exc": "b", "ticker": SYMBOL})
        if refusal == "kill switch":
            oms.kill_switch.engage(KillReason.MANUAL, "test")
        else:
            venue.submit_error = RateLimited("HTTP 429: slow down", venue="b")
        await venue.fill("maker", "0.004", +1)
        return oms.hedger.balance[HEDGE]

    assert asyncio.run(main()) == D("-0.004")


def test_the_legs_both_markets_are_checked_before_the_maker_order_is_sent():
    venue, oms = hedged(min_qty=D("0.001"))  # b lists BTCUSDT only

    async def main():
        with pytest.raises(ConfigError, match="ETHUSDT"):
            await oms.hedge_order(MAKER, {"exc": "b", "ticker": "ETHUSDT"})
        with pytest.raises(ConfigError, match="amount"):
            await oms.hedge_order(MAKER, {"exc": "b", "ticker": SYMBOL, "amount": 1})
        with pytest.raises(ConfigError, match="trigger_after_ms"):
            await oms.hedge_order(MAKER, {"exc": "b", "ticker": SYMBOL}, trigger_after_ms=-1)

    asyncio.run(main())
    assert venue.requests == []


def test_each_group_is_brought_to_zero_on_default_on_when_hedge_on_has_no_market():
    venue, oms = hedged(min_qty=D("0.001"))
    venue.markets[("b", "ETHUSDT")] = {}  # b lists no BTCUSDT...
    del venue.markets[HEDGE]

    async def main():
        await oms.limit_order(EXC, SYMBOL, D("0.02"), D("60000"), cloid="long")
        await venue.fill("long", "0.02", +1)
        return await oms.hedge_portfolio_delta("b", EXC)

    [cloid] = asyncio.run(main())
    hedge = venue.requests[-1]
    assert (hedge.cloid, hedge.exchange, hedge.symbol, hedge.amount) == (
        cloid, EXC, SYMBOL, D("-0.02"))


def test_only_linear_contracts_are_netted():
    venue, oms = hedged()

    def inverse(exchange: str, symbol: str) -> InstrumentSpec:
        return InstrumentSpec(exchange, symbol, "BTC", "USD", "inverse_perpetual", D("0.1"),
                              D("1"), D("1"), D("0"), D("100"))

    venue.spec = inverse  # type: ignore[method-assign]

    async def main():
        await oms.limit_order(EXC, SYMBOL, D("3"), D("60000"), cloid="long")
        await venue.fill("long", "3", +1)
        with pytest.raises(ConfigError, match="inverse"):
            await oms.hedge_portfolio_delta("b", EXC)

    asyncio.run(main())


def test_trigger_after_ms_the_first_fill_not_yet_hedged_starts_the_countdown():
    """50 ms: fills at 0 and 40 ms go out together at 50 ms (a later fill does not
    restart the countdown)."""
    venue, oms = hedged()

    async def tick(ms: int) -> None:
        venue.clock.advance(ms)
        for timer in venue.timers:
            await timer()

    async def main():
        await oms.hedge_order(MAKER, {"exc": "b", "ticker": SYMBOL}, trigger_after_ms=50)
        await venue.fill("maker", "0.002", +1)
        await tick(40)
        await venue.fill("maker", "0.003", +1)
        before = len(venue.requests)  # the maker order only
        await tick(15)
        return before, [r.amount for r in venue.requests[1:]]

    assert asyncio.run(main()) == (1, [D("-0.005")])
