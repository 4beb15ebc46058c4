"""The monitoring page's end-to-end set-up: the tutorial's quoter on the live stack
(Gateway → Feed → OMS) against the paper exchange, its page served, and Chromium."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from makerlab.errors import MakerlabError
from makerlab.live.gateway import Gateway
from makerlab.live.transport import ReconnectPolicy
from makerlab.monitor import Monitor
from makerlab.paper import PaperExchange
from makerlab.paper.private import Credentials
from makerlab.paper.trading import TradingConfig, parse_latency
from makerlab.trading.feed import Feed
from makerlab.trading.oms import OMS

HOUR = "2024-08-08:23"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]
KEY = Credentials("page-test-key-1", "page-test-SECRET-never-shown")
FAST = ReconnectPolicy(initial_delay=0.05, max_delay=0.2, watchdog=20.0, rest_timeout=10.0)


async def until(predicate: Callable[[], object], what: str, seconds: float = 30) -> None:
    """Wait (bounded) until ``predicate()`` holds."""
    for _ in range(int(seconds / 0.01)):
        if predicate():
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"never happened: {what}")


def quoter(oms: OMS, ref_trades: Any, ref_lob: Any, exc: str = "binance",
           ticker: str = "BTCUSDT", order_value: float = 200) -> Any:
    """examples/market_maker.py's l2_handler: quote around the reference VAMP."""
    orders, positions = oms.orders_peek(exc), oms.positions_peek(exc)

    async def l2_handler(lob: Any) -> None:
        q = float(positions.get_ticker_amount(ticker)) * lob.get_mid() / order_value
        tds = ref_trades.get_sample(n=15)
        vamp = ref_lob.get_vamp(20000 if len(tds) == 0 else np.sum(tds[:, 1] * tds[:, 2]))
        if np.isnan(vamp) or oms.kill_switch.tripped:
            return
        bid = min(vamp - (6 + np.tanh(q) * 4) * 1e-4 * vamp, lob.get_bids()[1, 0])
        ask = max(vamp + (6 + np.tanh(-q) * 4) * 1e-4 * vamp, lob.get_asks()[1, 0])
        prices = {1: oms.rounded_price(exc, ticker, bid), -1: oms.rounded_price(exc, ticker, ask)}
        mine = {1: orders.get_bid_orders(ticker), -1: orders.get_ask_orders(ticker)}
        try:
            for side, price in prices.items():
                if not any(o.price == price for o in mine[side]):
                    await oms.limit_order(exc, ticker, side * order_value / lob.get_mid(),
                                          price, round_to_specs=True)
                for order in mine[side]:
                    if order.price != price:
                        await oms.cancel_order(exc, ticker, cloid=order.cloid)
        except MakerlabError as error:
            logging.getLogger(__name__).info("quoter: %s", error)

    return l2_handler


@dataclass
class FillLog:
    """An order listener noting each fill's trade id (attached before the page's)."""

    trade_ids: list[str] = field(default_factory=list)

    async def on_order_update(self, update: Any) -> None:
        """Not needed."""

    async def on_fill(self, fill: Any) -> None:
        self.trade_ids.append(fill.trade_id)


@dataclass
class Desk:
    paper: PaperExchange
    oms: OMS
    feed: Feed
    monitor: Monitor
    fills: FillLog

    def resting(self) -> set[str]:
        """The venue's resting orders (oids)."""
        assert self.paper.desk is not None
        return {str(o.oid) for o in self.paper.desk.engine("binance", "BTCUSDT").resting
                .values()}

    def alive(self) -> set[str]:
        """The mirror's live orders (cloids)."""
        return {str(o.cloid) for o in self.oms.orders_peek("binance").get_orders()
                if o.is_alive()}


@contextlib.asynccontextmanager
async def quoting(archive: Path, monkeypatch: Any, tmp_path: Path, speed: float = 4,
                  **page: Any) -> AsyncIterator[Desk]:
    """The quoter trading Binance USD-M BTCUSDT on the paper exchange, its page served
    (``page``: PageConfig's keywords)."""
    monkeypatch.setenv("PAGE_KEY", KEY.key)
    monkeypatch.setenv("PAGE_SECRET", KEY.secret)
    async with PaperExchange(archive, HOUR, HOUR, speed=speed, credentials={"binance": KEY},
                             trading=TradingConfig(parse_latency("0"), 0, 0)) as paper:
        urls = paper.urls
        gateway = Gateway({"binance": {"env": "paper", "base_url": urls["binance"]["rest"],
                                       "key": "PAGE_KEY", "secret": "PAGE_SECRET"},
                           "binance_spot": {"env": "paper",
                                            "base_url": urls["binance_spot"]["rest"]}},
                          spec_cache=tmp_path, policy=FAST)
        async with gateway:
            venue = gateway.order_venue()
            await venue.start()
            oms = OMS(venue=venue, exchanges=["binance"])
            fills = FillLog()
            venue.attach(fills)
            feed = Feed(gateway=gateway)
            trades = feed.get_feed(await feed.add_trades_feed("binance_spot", "BTCUSDT",
                                                              buffer=500))
            lob = feed.get_feed(await feed.add_l2_book_feed("binance_spot", "BTCUSDT"))
            await feed.add_trades_feed("binance", "BTCUSDT", buffer=500)
            await feed.add_l2_book_feed("binance", "BTCUSDT", handler=quoter(oms, trades, lob))
            monitor = await oms.serve_page(feed, **{"port": 0, "interval_s": 0.2, **page})
            try:
                yield Desk(paper, oms, feed, monitor, fills)
            finally:
                await oms.cleanup()


@contextlib.asynccontextmanager
async def browser(executable: str) -> AsyncIterator[Any]:
    """A fresh headless Chromium context (Debian's binary, no downloads)."""
    from playwright.async_api import async_playwright

    async with async_playwright() as pw:
        chrome = await pw.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS,
                                          headless=True)
        try:
            context = await chrome.new_context(viewport={"width": 1400, "height": 1000})
            yield context
        finally:
            await chrome.close()
