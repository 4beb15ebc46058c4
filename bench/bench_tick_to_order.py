"""Tick to order: the time inside makerlab from a websocket market message arriving to
the order bytes leaving, for the tutorial's quoter, against the paper exchange.

Setup: ``makerlab paper`` over the bundled archive (Binance USD-M and spot BTCUSDT,
``--speed`` S, zero latencies and fees, one private account) in a separate process; in
this process the live stack: Gateway (``env: paper``) → Feed with the tutorial's
subscriptions (spot trades and book as the reference, USD-M trades and book) → OMS over
the Gateway's order venue. The quoter is the tutorial's ``l2_handler``
(examples/market_maker.py): quotes around the reference VAMP, skewed by inventory,
cancelling stale quotes.

Measured per USD-M book message the quoter reacted to (it sent an order or a cancel):

- **tick → order**: the frame's receive time (the transport's ``local_ts``, taken right
  after the socket read) to the first order frame handed to the order socket (after
  ``send_str``): parse, book sync, Feed (LOB update), the quoter, OMS checks, signing;
- **tick → handler**: to the quoter's first line (transport, parse, book, Feed);
- **handler → order**: the quoter and the order path.

p50 / p99 / max in µs over the run. Each configuration is one row of the table; a
configuration is a name and an ``attach`` coroutine run on the live objects before
measuring (``CONFIGURATIONS``), which returns what to close after it: ``page off`` (the
strategy alone) and ``page on`` (the monitoring page served by ``oms.serve_page`` with its
default snapshot interval, 0.5 s, and one viewer reading its websocket in this process;
the snapshots' own cost, p50/p99 per snapshot, is printed too).

    python bench/bench_tick_to_order.py [--speed 5] [--seconds 20] [--rounds 1]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import aiohttp
import numpy as np

from makerlab.core.events import BookUpdate, FeedStatus, TradeEvent
from makerlab.errors import MakerlabError
from makerlab.live.gateway import Gateway
from makerlab.live.transport import Link
from makerlab.trading.feed import Feed
from makerlab.trading.oms import OMS

HERE = Path(__file__).resolve().parent
ARCHIVE = HERE.parent / "data" / "archive"
HOUR = "2024-08-08:23"
KEY, SECRET = "bench-key", "bench-secret-not-a-real-one"

Close = Callable[[], Awaitable[None]]
Attach = Callable[[Gateway, OMS, Feed], Awaitable[Close | None]]
SNAPSHOT_NS: dict[str, list[int]] = {}  # what each configuration's snapshots cost


async def _page_off(gateway: Gateway, oms: OMS, feed: Feed) -> Close | None:
    """Nothing besides the strategy."""
    return None


async def _page_on(gateway: Gateway, oms: OMS, feed: Feed) -> Close | None:
    """The monitoring page served, with one viewer on its websocket."""
    page = await oms.serve_page(feed, port=0)
    http = aiohttp.ClientSession()
    ws = await http.ws_connect(f"{page.url}ws")

    async def view() -> None:
        async for _ in ws:  # what a browser would be sent
            pass

    viewer = asyncio.create_task(view())

    async def close() -> None:
        SNAPSHOT_NS.setdefault("page on", []).extend(page.snapshot_ns)
        viewer.cancel()
        await ws.close()
        await http.close()
        await oms.cleanup()

    return close


CONFIGURATIONS: dict[str, Attach] = {"page off": _page_off, "page on": _page_on}


@dataclass
class Probe:
    """Receive times of the USD-M book frames, and what followed each."""

    tick_ns: int = 0
    sent_for: int = -1  # the tick whose first order was already timed
    to_order: list[int] = field(default_factory=list)
    to_handler: list[int] = field(default_factory=list)
    handler_ns: int = 0

    async def on_book(self, update: BookUpdate) -> None:
        if update.exchange == "binance":
            self.tick_ns = update.local_ts

    async def on_trade(self, trade: TradeEvent) -> None:
        """Trades are not ticks here."""

    async def on_status(self, status: FeedStatus) -> None:
        """Nothing to time."""

    def handler_started(self) -> None:
        self.handler_ns = time.time_ns()

    def order_sent(self) -> None:
        if self.sent_for != self.tick_ns and self.tick_ns:
            now = time.time_ns()
            self.sent_for = self.tick_ns
            self.to_order.append(now - self.tick_ns)
            self.to_handler.append(self.handler_ns - self.tick_ns)


@contextlib.contextmanager
def timed_sends(probe: Probe) -> Iterator[None]:
    """Time the order frames leaving (Binance's WS API methods) at every socket."""
    send = Link.send

    async def timed(self: Link, frame: bytes) -> None:
        await send(self, frame)
        if b'"order.' in frame[:64]:
            probe.order_sent()

    Link.send = timed  # type: ignore[method-assign]
    try:
        yield
    finally:
        Link.send = send  # type: ignore[method-assign]


def quoter(oms: OMS, feed: Feed, ref_trades: Any, ref_lob: Any, probe: Probe,
           exc: str = "binance", ticker: str = "BTCUSDT", order_value: float = 200
           ) -> Callable[[Any], Awaitable[None]]:
    """The tutorial's ``l2_handler`` (examples/market_maker.py), timed at its start."""
    live_orders, live_positions = oms.orders_peek(exc=exc), oms.positions_peek(exc=exc)

    async def l2_handler(lob: Any) -> None:
        probe.handler_started()
        q = float(live_positions.get_ticker_amount(ticker=ticker)) * lob.get_mid() / order_value
        tds = ref_trades.get_sample(n=15)
        notional = 20000 if len(tds) == 0 else np.sum(tds[:, 1] * tds[:, 2])
        ref_vamp = ref_lob.get_vamp(notional)
        if np.isnan(ref_vamp):
            return
        bid = min(ref_vamp - ((6 + np.tanh(q) * 4) * 1e-4) * ref_vamp, lob.get_bids()[1, 0])
        ask = max(ref_vamp + ((6 + np.tanh(-q) * 4) * 1e-4) * ref_vamp, lob.get_asks()[1, 0])
        bid_price = Decimal(str(oms.rounded_price(exc=exc, ticker=ticker, price=bid)))
        ask_price = Decimal(str(oms.rounded_price(exc=exc, ticker=ticker, price=ask)))
        bids, asks = live_orders.get_bid_orders(ticker=ticker), live_orders.get_ask_orders(
            ticker=ticker)
        orders = [(order_value / lob.get_mid() * side, price)
                  for side, price, mine in ((1, bid_price, bids), (-1, ask_price, asks))
                  if not any(o.price == price for o in mine)]
        stale = [o for o in bids if o.price != bid_price] + [o for o in asks
                                                              if o.price != ask_price]
        with contextlib.suppress(MakerlabError):  # as the tutorial's try/except: a quote
            await asyncio.gather(*(oms.limit_order(exc=exc, ticker=ticker, amount=amount,
                                                   price=price, round_to_specs=True)
                                   for amount, price in orders))
        with contextlib.suppress(MakerlabError):  # or a cancel of an order just filled
            await asyncio.gather(*(oms.cancel_order(exc=o.exc, ticker=o.ticker,
                                                    cloid=o.cloid) for o in stale))

    return l2_handler


async def measure(urls: dict[str, str], seconds: float, attach: Attach, probe: Probe) -> None:
    """One run of the quoter against the paper exchange at ``urls``, timed by ``probe``."""
    gateway = Gateway({"binance": {"env": "paper", "base_url": urls["binance"],
                                   "key": "BENCH_KEY", "secret": "BENCH_SECRET"},
                       "binance_spot": {"env": "paper", "base_url": urls["binance_spot"]}},
                      spec_cache=tempfile.mkdtemp())
    async with gateway:
        gateway.market_data().attach(probe)  # before the Feed: sees each tick first
        venue = gateway.order_venue()
        await venue.start()
        oms = OMS(venue=venue, exchanges=["binance"])
        feed = Feed(gateway=gateway)
        close = await attach(gateway, oms, feed)
        ref_trades = feed.get_feed(await feed.add_trades_feed("binance_spot", "BTCUSDT",
                                                              buffer=500))
        ref_lob = feed.get_feed(await feed.add_l2_book_feed("binance_spot", "BTCUSDT",
                                                            buffer=100))
        await feed.add_trades_feed("binance", "BTCUSDT", buffer=500)
        await feed.add_l2_book_feed("binance", "BTCUSDT", buffer=100, handler=quoter(
            oms, feed, ref_trades, ref_lob, probe))
        await asyncio.sleep(seconds)
        if close is not None:
            await close()


def _paper(speed: float, keys: Path) -> tuple[subprocess.Popen[str], dict[str, str]]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "makerlab.cli", "paper", "--archive", str(ARCHIVE),
         "--start", HOUR, "--end", HOUR, "--speed", str(speed), "--latency", "0",
         "--maker-fee", "0", "--taker-fee", "0", "--key-file", str(keys)],
        stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    urls: dict[str, str] = {}
    while len(urls) < 2:
        match = re.match(r"^(\S+)\s+rest (\S+)", proc.stdout.readline())
        if match and match.group(1) in ("binance", "binance_spot"):
            urls[match.group(1)] = match.group(2)
    return proc, urls


def _stats(values_ns: list[int]) -> str:
    if not values_ns:
        return "     (no orders)"
    us = np.asarray(values_ns) / 1000
    return (f"{np.percentile(us, 50):>8.0f} {np.percentile(us, 99):>8.0f} "
            f"{us.max():>8.0f} {len(us):>6}")


def table(results: dict[str, Probe]) -> str:
    """The figures of every configuration (µs)."""
    lines = [f"{'configuration':<14} {'path':<16} {'p50 µs':>8} {'p99 µs':>8} "
             f"{'max µs':>8} {'ticks':>6}"]
    for name, probe in results.items():
        handler = [o - h for o, h in zip(probe.to_order, probe.to_handler, strict=True)]
        for path, values in (("tick -> order", probe.to_order),
                             ("tick -> handler", probe.to_handler),
                             ("handler -> order", handler)):
            lines.append(f"{name:<14} {path:<16} {_stats(values)}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--speed", type=float, default=5.0, help="the paper's market speed")
    parser.add_argument("--seconds", type=float, default=20.0, help="wall seconds per run")
    parser.add_argument("--rounds", type=int, default=1,
                        help="runs of each configuration, taken in turn (pooled)")
    args = parser.parse_args(argv)
    os.environ.update(BENCH_KEY=KEY, BENCH_SECRET=SECRET)
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        keys = Path(tmp) / "keys.json"
        keys.write_text(json.dumps({"binance": {"key": KEY, "secret": SECRET}}))
        for _ in range(args.rounds):
            for name, attach in CONFIGURATIONS.items():
                proc, urls = _paper(args.speed, keys)
                try:
                    probe = results.setdefault(name, Probe())
                    probe.tick_ns, probe.sent_for = 0, -1
                    with timed_sends(probe):
                        asyncio.run(measure(urls, args.seconds, attach, probe))
                finally:
                    proc.terminate()
                    proc.wait()
    print(f"tick to order, paper exchange at speed {args.speed:g}, {args.rounds} x "
          f"{args.seconds:g} s per configuration")
    print(table(results))
    for name, costs in SNAPSHOT_NS.items():
        us = np.asarray(costs) / 1000
        print(f"{name}: {len(us)} snapshots, each p50 {np.percentile(us, 50):.0f} µs, "
              f"p99 {np.percentile(us, 99):.0f} µs, max {us.max():.0f} µs (taken and "
              "encoded on the trading loop, between events)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
