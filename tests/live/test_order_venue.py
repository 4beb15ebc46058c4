"""Rules of makerlab.live.order_venue that the fake exchanges cannot stage on cue (a
listener that raises, a safety call whose websocket request is lost, symbols the venue
scopes cancel-all and the dead-man switch to): the LiveOrderVenue over private-client
stubs that record each call and answer as told."""

from __future__ import annotations

import asyncio
import itertools
from decimal import Decimal

import pytest

from makerlab.core.clock import WallClock
from makerlab.core.events import BalanceState, OrderEventKind, OrderUpdate
from makerlab.errors import ConfigError, ConnectionLost, VenueError
from makerlab.live.order_venue import LiveOrderVenue
from makerlab.live.ratelimit import RateLimitState
from makerlab.live.venues.private_base import Op, OpKind, Snapshot
from makerlab.trading.protocols import OrderRequest

D = Decimal
EXC = "binance"


class Translation:
    """What the venue reads of a private venue module."""

    def __init__(self, has_cancel_all: bool, symbol_scoped: frozenset[OpKind]) -> None:
        self.has_cancel_all, self.symbol_scoped = has_cancel_all, symbol_scoped
        self.max_batch = 5


class Client:
    """A private client that records each op (``(kind, symbol, over REST)``) and answers
    none; ``lost`` op kinds lose their websocket request, ``failing`` ones fail; ``open``
    is the open-orders snapshot."""

    def __init__(self, *, has_cancel_all: bool = True,
                 symbol_scoped: frozenset[OpKind] = frozenset()) -> None:
        self.venue = Translation(has_cancel_all, symbol_scoped)
        self.limits = RateLimitState(EXC)
        self.ops: list[tuple[OpKind, str | None, bool]] = []
        self.lost: set[OpKind] = set()
        self.failing: set[OpKind] = set()
        self.open: list[OrderUpdate] = []

    async def call(self, op: Op, *, rest: bool = False) -> list:
        self.ops.append((op.kind, op.symbol, rest))
        if op.kind in self.lost and not rest:
            raise ConnectionLost("the order socket closed", venue=EXC)
        if op.kind in self.failing:
            raise VenueError("HTTP 503: service unavailable", venue=EXC)
        return []

    async def close(self) -> None:
        pass

    async def snapshot(self, kind: Snapshot) -> list:
        return self.open if kind is Snapshot.ORDERS else []


def venue(client: Client) -> LiveOrderVenue:
    return LiveOrderVenue({EXC: client}, load_specs=None, clock=WallClock())  # type: ignore[arg-type]


def resting(symbol: str, cloid: str) -> OrderUpdate:
    return OrderUpdate(EXC, symbol, 1, 1, OrderEventKind.STATE, "NEW", cloid, f"oid-{cloid}",
                       D("0.01"), D("60000"), D("0"), 1)


def test_a_failing_listener_does_not_stop_the_stream():
    """Its error goes to every failure handler (one that raises too is logged); the next
    listeners and events are still delivered."""
    live = venue(Client())
    seen, reported = [], []

    class Failing:
        async def on_order_update(self, update: OrderUpdate) -> None:
            raise RuntimeError("a listener's bug")

    class Recording:
        async def on_order_update(self, update: OrderUpdate) -> None:
            seen.append(update.cloid)

    async def failing_handler(error: BaseException) -> None:
        raise ValueError("a failure handler's bug")

    async def handler(error: BaseException) -> None:
        reported.append(str(error))

    live.attach(Failing())
    live.attach(Recording())
    live.add_failure_handler(failing_handler)
    live.add_failure_handler(handler)

    async def main():
        for cloid in ("a", "b"):
            await live.deliver(resting("BTCUSDT", cloid))

    asyncio.run(main())
    assert seen == ["a", "b"] and reported == ["a listener's bug"] * 2


def test_safety_calls_reach_the_venue_over_rest_when_the_websocket_request_is_lost():
    client = Client()
    client.lost = {OpKind.CANCEL_ALL, OpKind.DEAD_MAN}
    live = venue(client)

    async def main():
        await live.cancel_all(EXC)
        await live.arm_dead_man(EXC, 5_000)

    asyncio.run(main())
    assert client.ops == [(OpKind.CANCEL_ALL, None, False), (OpKind.CANCEL_ALL, None, True),
                          (OpKind.DEAD_MAN, None, False), (OpKind.DEAD_MAN, None, True)]


def test_safety_calls_cancel_all_of_a_symbol_without_a_cancel_all_call_cancels_its_orders():
    client = Client(has_cancel_all=False)
    client.open = [resting("BTCUSDT", "a"), resting("ETHUSDT", "b"), resting("BTCUSDT", "c")]
    live = venue(client)
    asyncio.run(live.cancel_all(EXC, "BTCUSDT"))
    assert client.ops == [(OpKind.CANCEL, "BTCUSDT", False)] * 2


def test_safety_calls_a_symbol_scoped_cancel_all_covers_every_symbol_of_the_snapshot():
    """Orders placed before this session (never seen by it) are in the open-orders
    snapshot: each of their symbols gets its cancel-all."""
    client = Client(symbol_scoped=frozenset({OpKind.CANCEL_ALL}))
    client.open = [resting("ETHUSDT", "old"), resting("BTCUSDT", "older")]
    live = venue(client)
    asyncio.run(live.cancel_all(EXC))
    assert client.ops == [(OpKind.CANCEL_ALL, "BTCUSDT", False),
                          (OpKind.CANCEL_ALL, "ETHUSDT", False)]


def test_dead_man_switch_a_symbols_first_order_arms_it_before_it_leaves():
    client = Client(symbol_scoped=frozenset({OpKind.DEAD_MAN}))
    live = venue(client)

    async def main():
        await live.arm_dead_man(EXC, 5_000)  # no symbol traded yet: nothing to arm
        for cloid in ("a", "b"):
            await live.submit(OrderRequest(EXC, "BTCUSDT", cloid, D("0.01"), D("60000")))

    asyncio.run(main())
    assert client.ops == [(OpKind.DEAD_MAN, "BTCUSDT", False), (OpKind.PLACE, "BTCUSDT", False),
                          (OpKind.PLACE, "BTCUSDT", False)]


def test_dead_man_switch_covers_every_symbol_seen_on_the_stream():
    client = Client(symbol_scoped=frozenset({OpKind.DEAD_MAN}))
    live = venue(client)

    async def main():
        await live.deliver(resting("ETHUSDT", "placed-by-hand"))
        await live.arm_dead_man(EXC, 5_000)

    asyncio.run(main())
    assert client.ops == [(OpKind.DEAD_MAN, "ETHUSDT", False)]


def test_the_user_stream_keeps_the_last_stated_available_balance():
    live = venue(Client())

    def balance(wallet: str, available: str | None) -> BalanceState:
        return BalanceState(EXC, "USDT", 1, 1, D(wallet), D(wallet),
                            None if available is None else D(available))

    async def main():
        await live.deliver(balance("1000", "900"))
        await live.deliver(balance("1010", None))  # Binance's ACCOUNT_UPDATE states none

    asyncio.run(main())
    kept = live.latest_balances[(EXC, "USDT")]
    assert (kept.wallet, kept.available) == (D("1010"), D("900"))


def test_dead_man_switch_a_failed_arming_is_tried_again_next_period():
    client = Client()
    client.failing = {OpKind.DEAD_MAN}
    live = venue(client)

    async def main():
        live.keep_dead_man(EXC, 5_000, every_s=0.01)
        await asyncio.sleep(0.1)
        await live.close()

    asyncio.run(main())
    assert len(client.ops) >= 3 and {op[0] for op in client.ops} == {OpKind.DEAD_MAN}


def test_clock_callbacks_a_late_callback_skips_the_ticks_it_missed():
    live = venue(Client())
    ticks: list[float] = []

    async def callback() -> None:
        ticks.append(asyncio.get_running_loop().time())
        if len(ticks) == 2:
            await asyncio.sleep(0.06)  # six ticks late

    async def main():
        live.add_timer(callback, 10)
        await asyncio.sleep(0.15)
        await live.close()

    asyncio.run(main())
    gaps = [b - a for a, b in itertools.pairwise(ticks[1:])]
    assert len(ticks) >= 4 and sum(gap < 0.002 for gap in gaps) <= 1  # no burst of the six

    with pytest.raises(ConfigError, match="interval_ms must be positive"):
        live.add_timer(callback, 0)
