"""Helpers of the private-side tests: a paper exchange with one traded account, and the
real makerlab client (Gateway → LiveOrderVenue) pointed at it."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

import aiohttp

from makerlab.live.gateway import Gateway
from makerlab.live.order_venue import LiveOrderVenue
from makerlab.live.transport import ReconnectPolicy
from makerlab.paper import PaperExchange
from makerlab.paper.private import Credentials
from makerlab.paper.trading import TradingConfig, parse_latency

HOUR = "2024-08-08:23"
KEYS = {"binance": Credentials("bn-paper-key-1", "bn-paper-SECRET-never-logged"),
        "bybit": Credentials("by-paper-key-1", "by-paper-SECRET-never-logged"),
        "hyperliquid": Credentials("0x" + "ab" * 20, "0x" + "5e" * 32)}
WRONG = {"binance": "bn-wrong-secret", "bybit": "by-wrong-secret",
         "hyperliquid": "0x" + "66" * 32}
FAST = ReconnectPolicy(initial_delay=0.05, max_delay=0.2, watchdog=20.0, rest_timeout=10.0)
PROTOCOLS = ("binance", "bybit", "hyperliquid")


def cloid(protocol: str, n: int) -> str:
    """A client order id every venue takes as it is."""
    return f"0x{n:032x}" if protocol == "hyperliquid" else f"t-{n}"


@dataclass
class Recorder:
    """An OrderListener keeping what it hears."""

    updates: list = field(default_factory=list)
    fills: list = field(default_factory=list)
    positions: list = field(default_factory=list)

    async def on_order_update(self, update) -> None:
        self.updates.append(update)

    async def on_fill(self, fill) -> None:
        self.fills.append(fill)

    async def on_position(self, position) -> None:
        self.positions.append(position)

    def of(self, order: str, kind: str | None = None) -> list:
        return [u for u in self.updates if u.cloid == order and
                (kind is None or u.kind.value == kind)]


@dataclass
class Trading:
    paper: PaperExchange
    venue: LiveOrderVenue
    recorder: Recorder
    protocol: str

    @property
    def engine(self):
        assert self.paper.desk is not None
        return self.paper.desk.engine(self.protocol, "BTCUSDT")

    def price(self, offset: float) -> Decimal:
        """A price ``offset`` from the engine's mid, on the 0.1 tick."""
        return Decimal(str(round(self.engine.mid() + offset, 1)))


async def until(predicate: Callable[[], object], what: str, tries: int = 1000) -> None:
    """Wait (bounded) until ``predicate()`` holds."""
    for _ in range(tries):
        if predicate():
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"never happened: {what}")


@contextlib.asynccontextmanager
async def trading(archive: Path, protocol: str, monkeypatch, tmp_path: Path, *,
                  secret: str | None = None, latency: str = "0", **paper: object
                  ) -> AsyncIterator[Trading]:
    """A paper exchange trading ``protocol`` (on the archive's binance data) at speed 0,
    and the real client logged in (with ``secret`` instead of the right one, if given)."""
    creds = KEYS[protocol]
    serve = {} if protocol == "binance" else {protocol: "binance"}
    monkeypatch.setenv("T_KEY", creds.key)
    monkeypatch.setenv("T_SECRET", secret or creds.secret)
    monkeypatch.chdir(tmp_path)
    options: dict = {"speed": 0, "serve": serve, "credentials": {protocol: creds},
                     "trading": TradingConfig(parse_latency(latency)), **paper}
    async with PaperExchange(archive, HOUR, HOUR, **options) as exchange:
        gateway = Gateway({protocol: {"env": "paper", "key": "T_KEY", "secret": "T_SECRET",
                                      "base_url": exchange.urls[protocol]["rest"]}},
                          spec_cache=tmp_path, policy=FAST)
        await gateway.init_clients()
        try:
            venue = gateway.order_venue()
            recorder = Recorder()
            venue.attach(recorder)
            await venue.start()
            if secret is None:
                hub = exchange.private
                assert hub is not None
                await until(lambda: hub.listeners(protocol), "the user stream")
                await until(lambda: venue.client(protocol).order_socket_ready,
                            "the order socket")
            yield Trading(exchange, venue, recorder, protocol)
        finally:
            await gateway.cleanup_clients()


async def run_market(paper: PaperExchange, protocol: str, topic: str) -> None:
    """Read ``protocol``'s public stream of BTCUSDT to the end (the market plays at speed 0
    while someone reads)."""
    url = paper.urls[protocol]["ws"]
    async with aiohttp.ClientSession() as http:
        if protocol == "binance":
            async with http.ws_connect(f"{url}/public/ws/{topic}") as ws:
                await _read_until_done(paper, ws)
            return
        path = "/v5/public/linear" if protocol == "bybit" else "/ws"
        async with http.ws_connect(url + path) as ws:
            await ws.send_str(topic)
            await _read_until_done(paper, ws)


async def _read_until_done(paper: PaperExchange, ws: aiohttp.ClientWebSocketResponse) -> None:
    while not paper.replay_done.is_set():
        with contextlib.suppress(TimeoutError):
            await ws.receive(timeout=0.5)
