"""A live OMS against :class:`~fake_binance.FakeBinance` (shared by the OMS live tests)."""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import AsyncIterator, Callable
from typing import Any, TypeVar

from fake_binance import KEY, SECRET, FakeBinance
from fake_private import FakePrivate, until

from makerlab.live.gateway import Gateway
from makerlab.live.transport import ReconnectPolicy
from makerlab.trading.oms import OMS

EXC, SYMBOL = "binance", "BTCUSDT"
FAST = ReconnectPolicy(initial_delay=0.01, max_delay=0.05, watchdog=5.0, rest_timeout=2.0)
HOUR = 3600.0  # reconciliation periods the tests do not wait for: they call the rounds
T = TypeVar("T")


class ShiftedClock:
    """The wall clock moved by ``offset_ns`` (a local clock running ahead; time passing
    for the pending timeouts without waiting)."""

    def __init__(self, offset_ns: int = 0) -> None:
        self.offset_ns = offset_ns

    def now_ns(self) -> int:
        return time.time_ns() + self.offset_ns

    def ms(self) -> int:
        return self.now_ns() // 1_000_000

    def advance(self, ms: float) -> None:
        self.offset_ns += int(ms * 1_000_000)


class TickingClock:
    """Local time that moves 1 ms at every reading (so each event has its own instant)."""

    def __init__(self) -> None:
        self.ns = 1_000_000_000

    def now_ns(self) -> int:
        self.ns += 1_000_000
        return self.ns

    def ms(self) -> int:
        return self.now_ns() // 1_000_000

    def advance(self, ms: int) -> None:
        self.ns += ms * 1_000_000


def gateway(url: str, monkeypatch: Any, tmp_path: Any, clock: Any = None,
            spot: bool = False) -> Gateway:
    monkeypatch.setenv("MK_OMS_KEY", KEY)
    monkeypatch.setenv("MK_OMS_SECRET", SECRET)
    monkeypatch.chdir(tmp_path)
    config: dict[str, dict[str, object]] = {"binance": {
        "env": "paper", "base_url": url + "/binance", "key": "MK_OMS_KEY",
        "secret": "MK_OMS_SECRET"}}
    if spot:
        config["binance_spot"] = {"env": "paper", "base_url": url + "/binance_spot"}
    return Gateway(config, spec_cache=tmp_path, policy=FAST, clock=clock)


@contextlib.asynccontextmanager
async def live_oms(monkeypatch: Any, tmp_path: Any, *, clock: Any = None,
                   spot: bool = False, **options: Any
                   ) -> AsyncIterator[tuple[OMS, FakeBinance, FakePrivate]]:
    """A started OMS on a fresh fake exchange (streams up); the Gateway cleaned up after."""
    options = {"refresh_orders_snapshot": HOUR, "refresh_positions_snapshot": HOUR,
               "pending_timeout": HOUR * 1000} | options
    async with FakePrivate() as fake:
        exchange = FakeBinance(fake)
        gw = gateway(fake.url, monkeypatch, tmp_path, clock, spot)
        await gw.init_clients()
        try:
            oms = OMS(gateway=gw, exchanges=[EXC], **options)
            await oms.init()
            await streams_up(oms, fake)
            yield oms, exchange, fake
        finally:
            await gw.cleanup_clients()


async def streams_up(oms: OMS, fake: FakePrivate) -> None:
    client = oms.venue.client(EXC)  # type: ignore[attr-defined]
    await until(lambda: client.order_socket_ready, "order socket")
    await until(lambda: any(not c.ws.closed for c in fake.conns.get("/binance/private/ws",
                                                                    [])), "user stream")


def live(oms: OMS) -> list[tuple[str | None, str]]:
    """The mirror's live orders as (cloid, status)."""
    return [(o.cloid, o.ord_status.value) for o in oms.orders_peek(EXC).get_orders()]


class ThreadedExchange:
    """A :class:`FakeBinance` served from its own thread and event loop, so it outlives
    the client's ``asyncio.run`` (what the exit guard acts in)."""

    def __init__(self) -> None:
        self._ready = threading.Event()
        self._stop: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self.url = ""
        self.exchange: FakeBinance | None = None
        self._thread = threading.Thread(target=lambda: asyncio.run(self._serve()), daemon=True)

    def __enter__(self) -> ThreadedExchange:
        self._thread.start()
        assert self._ready.wait(10), "the fake exchange did not start"
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._loop is not None and self._stop is not None
        self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(10)

    async def _serve(self) -> None:
        self._loop, self._stop = asyncio.get_running_loop(), asyncio.Event()
        async with FakePrivate() as fake:
            self.exchange, self.url = FakeBinance(fake), fake.url
            self._ready.set()
            await self._stop.wait()

    def call(self, fn: Callable[[FakeBinance], T]) -> T:
        """``fn(exchange)`` run in the exchange's thread."""
        assert self._loop is not None and self.exchange is not None
        exchange = self.exchange

        async def run() -> T:
            return fn(exchange)

        return asyncio.run_coroutine_threadsafe(run(), self._loop).result(10)
