"""Reference clients for the paper exchange tests: each venue's documented book-sync rule,
written from the venue docs (exchanges.md 1.1-1.3), independent of makerlab's own code.

Each oracle keeps a plain dict book, follows its venue's rule, resyncs on every problem
the rule detects, and after each message it accepts compares its best 20 levels per side
with the archive's book at that message (``Expected``). A mismatch is a *wrong book
accepted* and is recorded, never raised, so the test can report all of them.

- Binance USD-M: buffer the diff stream, GET the REST snapshot, drop ``u < lastUpdateId``,
  the first applied event has ``U <= lastUpdateId <= u``, then every ``pu`` equals the
  previous ``u``; anything else: new REST snapshot (the socket is kept).
- Binance spot: drop ``u <= lastUpdateId``, first event ``U <= lastUpdateId + 1 <= u``,
  then ``U == previous u + 1``.
- Bybit: a ``snapshot`` replaces the book, a ``delta`` needs ``u == previous u + 1``;
  on a gap unsubscribe and subscribe again for a fresh snapshot.
- Hyperliquid: every ``l2Book`` replaces the book unless its ``time`` is older than the
  newest seen.
"""

from __future__ import annotations

import asyncio
import bisect
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import aiohttp
import numpy as np
import orjson

from makerlab.data.archive import read_table
from makerlab.data.arrays import column_numpy

BUNDLED = Path(__file__).resolve().parents[2] / "data" / "archive"
START, END = "2024-08-08:23", "2024-08-09:00"  # the bundled archive's two hours
T = TypeVar("T")
Top = tuple[tuple[tuple[float, float], ...], tuple[tuple[float, float], ...]]
DEPTH = 20


# --------------------------------------------------------------------------- expectations


@dataclass
class Expected:
    """The archive's depth-20 books: by message id and by exchange millisecond."""

    by_id: dict[int, Top]
    by_ms: dict[int, set[Top]]
    last_id: int

    @classmethod
    def from_archive(cls, root, exchange: str, symbol: str, start: str, end: str, *,
                     numbered: bool = False) -> Expected:
        """``numbered``: ids are 1, 2, 3, ... in archive order (a ``book_snapshot``-only
        archive, whose ids the exchange synthesises); else the archive's ``seq``."""
        table = read_table(root, "book_snapshot", exchange, symbol, start, end, depth=DEPTH)
        levels = [column_numpy(table.column(c)) for c in
                  ("bid_price", "bid_size", "ask_price", "ask_size")]
        seq = table.column("seq").to_numpy()
        ets = table.column("exchange_ts").to_numpy() // 1_000_000
        by_id: dict[int, Top] = {}
        by_ms: dict[int, set[Top]] = {}
        for i in range(table.num_rows):
            top = (_side(levels[0][i], levels[1][i]), _side(levels[2][i], levels[3][i]))
            key = i + 1 if numbered else int(seq[i])
            by_id[key] = top
            by_ms.setdefault(int(ets[i]), set()).add(top)
        return cls(by_id, by_ms, max(by_id))


def _side(prices: np.ndarray, sizes: np.ndarray) -> tuple[tuple[float, float], ...]:
    return tuple((p, z) for p, z in zip(prices.tolist(), sizes.tolist(), strict=True)
                 if p == p)


@dataclass
class Report:
    """What an oracle saw."""

    checked: int = 0
    resyncs: int = 0
    wrong: list[str] = field(default_factory=list)
    last_key: int = -1
    last_top: Top | None = None
    keys: list[int] = field(default_factory=list)

    def check(self, key: int, top: Top | None, expected: Top | set[Top] | None) -> None:
        """Record one accepted book (``expected`` a set: any of those states)."""
        self.checked += 1
        self.keys.append(key)
        if key >= self.last_key:
            self.last_key, self.last_top = key, top
        ok = top in expected if isinstance(expected, set) else top == expected
        if not ok and len(self.wrong) < 20:
            self.wrong.append(f"key {key}: got {_short(top)}, archive {_short(expected)}")


def _short(top: Any) -> str:
    if isinstance(top, tuple) and len(top) == 2:
        return f"bids {top[0][:2]}... asks {top[1][:2]}..."
    return str(top)[:120]


class Book:
    """A price -> size book per side (``"b"``, ``"a"``), prices kept sorted (bisect)."""

    def __init__(self) -> None:
        self.sizes: dict[str, dict[float, float]] = {"b": {}, "a": {}}
        self.prices: dict[str, list[float]] = {"b": [], "a": []}

    def set(self, side: str, levels: list[list[str]]) -> None:
        sizes, prices = self.sizes[side], self.prices[side]
        for price, size in levels:
            p, z = float(price), float(size)
            if z == 0:
                if sizes.pop(p, None) is not None:
                    del prices[bisect.bisect_left(prices, p)]
            else:
                if p not in sizes:
                    bisect.insort(prices, p)
                sizes[p] = z

    def top(self, depth: int = DEPTH) -> Top:
        bids, asks = self.sizes["b"], self.sizes["a"]
        return (tuple((p, bids[p]) for p in self.prices["b"][:-depth - 1:-1]),
                tuple((p, asks[p]) for p in self.prices["a"][:depth]))


# --------------------------------------------------------------------------- the message loop


async def receive_until(ws: aiohttp.ClientWebSocketResponse, done: Callable[[], bool],
                        idle: float = 0.3):
    """Yield parsed text messages until ``done()`` holds and the socket stays quiet for
    ``idle`` seconds, or the server closes it (then yield None once)."""
    while True:
        try:
            message = await ws.receive(timeout=idle)
        except TimeoutError:
            if done():
                return
            continue
        if message.type != aiohttp.WSMsgType.TEXT:
            yield None
            return
        yield orjson.loads(message.data)


# --------------------------------------------------------------------------- Binance


class BinanceOracle:
    """USD-M (``futures``) or spot local book per the documented procedure."""

    def __init__(self, http: aiohttp.ClientSession, rest: str, symbol: str,
                 expected: Expected, report: Report, *, futures: bool = True) -> None:
        self.http, self.rest, self.symbol = http, rest, symbol
        self.expected, self.report, self.futures = expected, report, futures
        self.book: Book | None = None
        self.snapshot_id = 0
        self.last_u: int | None = None

    async def on_event(self, event: dict[str, Any]) -> None:
        while not await self._consume(event):
            await self._resync()

    async def _consume(self, event: dict[str, Any]) -> bool:
        """Apply or drop ``event``; False when a new snapshot is needed first."""
        if self.book is None:
            return False
        first, last = event["U"], event["u"]
        if self.last_u is None:  # bridging the snapshot
            upto = self.snapshot_id if self.futures else self.snapshot_id + 1
            if last < upto:
                return True
            if not first <= upto <= last:
                return False
        elif not self._continues(event):
            return False
        self.book.set("b", event["b"])
        self.book.set("a", event["a"])
        self.last_u = last
        self.report.check(last, self.book.top(), self.expected.by_id.get(last))
        return True

    def _continues(self, event: dict[str, Any]) -> bool:
        if self.futures:
            return event["pu"] == self.last_u
        return event["U"] == self.last_u + 1

    async def _resync(self) -> None:
        self.report.resyncs += 1
        path = "/fapi/v1/depth" if self.futures else "/api/v3/depth"
        async with self.http.get(self.rest + path,
                                 params={"symbol": self.symbol, "limit": "1000"}) as reply:
            snapshot = await reply.json()
        self.book, self.last_u = Book(), None
        self.snapshot_id = snapshot["lastUpdateId"]
        self.book.set("b", snapshot["bids"])
        self.book.set("a", snapshot["asks"])
        self.report.check(self.snapshot_id, self.book.top(),
                          self.expected.by_id.get(self.snapshot_id))


async def run_binance(url: dict[str, str], symbol: str, stream: str, expected: Expected,
                      done: Callable[[], bool], *, futures: bool = True) -> Report:
    """Follow ``<symbol>@<stream>`` until ``done``; reconnect when the server closes."""
    report = Report()
    path = "/public/ws" if futures else "/ws"
    name = f"{symbol.lower()}@{stream}"
    async with aiohttp.ClientSession() as http:
        oracle = BinanceOracle(http, url["rest"], symbol, expected, report, futures=futures)
        while not (done() and report.last_key >= expected.last_id):
            async with http.ws_connect(url["ws"] + path) as ws:
                await ws.send_str(orjson.dumps({"method": "SUBSCRIBE", "params": [name],
                                                "id": 1}).decode())
                oracle.book = None
                async for event in receive_until(ws, done):
                    if event is None:
                        break
                    if event.get("e") == "depthUpdate":
                        await oracle.on_event(event)
            if done():
                break
    return report


# --------------------------------------------------------------------------- Bybit


class BybitOracle:
    """``orderbook.N.SYMBOL`` local book: snapshots replace, deltas need ``u + 1``."""

    def __init__(self, topic: str, expected: Expected, report: Report) -> None:
        self.topic, self.expected, self.report = topic, expected, report
        self.book: Book | None = None
        self.last_u = 0
        self.subscribing = True  # until the subscribe ack: deltas are from before

    def on_message(self, message: dict[str, Any]) -> bool:
        """Apply one message; False when the topic must be subscribed again (a gap, or a
        delta where the snapshot should be: it was lost)."""
        if message.get("op") == "subscribe":
            self.subscribing = False
        if message.get("topic") != self.topic:
            return True
        data = message["data"]
        if message["type"] == "snapshot":
            self.book = Book()
        elif self.book is None:
            return self.subscribing
        elif data["u"] != self.last_u + 1:
            return False
        self.book.set("b", data["b"])
        self.book.set("a", data["a"])
        self.last_u = data["u"]
        self.report.check(data["seq"], self.book.top(), self.expected.by_id.get(data["seq"]))
        return True

    async def resubscribe(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.book, self.subscribing = None, True
        await _bybit_op(ws, "unsubscribe", self.topic)
        await _bybit_op(ws, "subscribe", self.topic)


async def run_bybit(url: dict[str, str], topic: str, expected: Expected,
                    done: Callable[[], bool]) -> Report:
    report = Report()
    oracle = BybitOracle(topic, expected, report)
    async with aiohttp.ClientSession() as http:
        while not (done() and report.last_key >= expected.last_id):
            async with http.ws_connect(url["ws"] + "/v5/public/linear") as ws:
                oracle.book, oracle.subscribing = None, True
                await _bybit_op(ws, "subscribe", topic)
                async for message in receive_until(ws, done):
                    if message is None:
                        break
                    if not oracle.on_message(message):
                        report.resyncs += 1
                        await oracle.resubscribe(ws)
            if done():
                break
    return report


async def _bybit_op(ws: aiohttp.ClientWebSocketResponse, op: str, topic: str) -> None:
    await ws.send_str(orjson.dumps({"op": op, "args": [topic], "req_id": op}).decode())


# --------------------------------------------------------------------------- Hyperliquid


async def run_hyperliquid(url: dict[str, str], coin: str, expected: Expected,
                          done: Callable[[], bool]) -> Report:
    """``l2Book`` snapshots: keep the newest ``time``, drop older ones."""
    report = Report()
    newest = -1
    async with aiohttp.ClientSession() as http:
        async with http.post(url["rest"] + "/info", json={"type": "l2Book", "coin": coin}) as r:
            book = await r.json()
        newest = _accept_l2(book, newest, expected, report)
        while not (done() and report.last_key >= max(expected.by_ms)):
            async with http.ws_connect(url["ws"] + "/ws") as ws:
                await ws.send_str(orjson.dumps({"method": "subscribe", "subscription": {
                    "type": "l2Book", "coin": coin}}).decode())
                async for message in receive_until(ws, done):
                    if message is None:
                        report.resyncs += 1
                        break
                    if message.get("channel") == "l2Book":
                        newest = _accept_l2(message["data"], newest, expected, report)
            if done():
                break
    return report


def _accept_l2(data: dict[str, Any], newest: int, expected: Expected, report: Report) -> int:
    if data["time"] < newest:
        return newest
    bids, asks = ([(float(x["px"]), float(x["sz"])) for x in side] for side in data["levels"])
    top = (tuple(bids), tuple(asks))
    report.check(data["time"], top, expected.by_ms.get(data["time"], set()))
    return data["time"]


def until(event: asyncio.Event) -> Callable[[], bool]:
    return event.is_set


def run(coroutine: Callable[[], Awaitable[T]]) -> T:
    """Run an async test body (the suite has no asyncio plugin)."""
    return asyncio.run(coroutine())
