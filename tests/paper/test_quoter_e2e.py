"""The tutorial's quoter on the live stack (Gateway → Feed → OMS over the Gateway's order
venue) against the paper exchange, over each private protocol (Bybit and Hyperliquid served
from the Binance archive; the Hyperliquid coin is the archive's symbol, ``BTCUSDT``): it
quotes (on Bybit often refused: 10 orders per second), and the OMS's mirrors end as the
venue's account (open orders, position), which the paper's account line reports."""

from __future__ import annotations

import asyncio
import logging
import re
from decimal import Decimal
from typing import Any

import numpy as np
import pytest
from private_kit import FAST, HOUR, KEYS, until

from makerlab.errors import MakerlabError
from makerlab.live.gateway import Gateway
from makerlab.paper import PaperExchange
from makerlab.paper.trading import TradingConfig, parse_latency
from makerlab.trading.feed import Feed
from makerlab.trading.oms import OMS


def tutorial_quoter(oms: OMS, exc: str, ref_trades: Any, ref_lob: Any, ticker: str = "BTCUSDT",
                    order_value: float = 200) -> Any:
    """examples/market_maker.py's l2_handler: quote around the reference VAMP."""
    orders, positions = oms.orders_peek(exc), oms.positions_peek(exc)

    async def l2_handler(lob: Any) -> None:
        q = float(positions.get_ticker_amount(ticker)) * lob.get_mid() / order_value
        tds = ref_trades.get_sample(n=15)
        vamp = ref_lob.get_vamp(20000 if len(tds) == 0 else np.sum(tds[:, 1] * tds[:, 2]))
        if np.isnan(vamp):
            return
        bid = min(vamp - (6 + np.tanh(q) * 4) * 1e-4 * vamp, lob.get_bids()[1, 0])
        ask = max(vamp + (6 + np.tanh(-q) * 4) * 1e-4 * vamp, lob.get_asks()[1, 0])
        prices = {1: oms.rounded_price(exc, ticker, bid), -1: oms.rounded_price(exc, ticker, ask)}
        mine = {1: orders.get_bid_orders(ticker), -1: orders.get_ask_orders(ticker)}
        try:  # as the tutorial: a refused call (Bybit's 10 per second...) is logged
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


ACCOUNT = re.compile(r"^(\w+)  orders (\d+) \((\d+) refused\), cancelled (\d+), fills (\d+), "
                     r"open (\d+), position (.+)$")


@pytest.mark.parametrize("protocol", ["binance", "bybit", "hyperliquid"])
def test_the_tutorial_quoter_trades_on_each_protocol(protocol, short_archive, monkeypatch,
                                                     tmp_path):
    async def body() -> tuple[Decimal, set[str | None], list[dict[str, Any]],
                              list[dict[str, Any]], list[str]]:
        monkeypatch.setenv("T_KEY", KEYS[protocol].key)
        monkeypatch.setenv("T_SECRET", KEYS[protocol].secret)
        monkeypatch.chdir(tmp_path)
        serve = {} if protocol == "binance" else {protocol: "binance"}
        async with PaperExchange(short_archive, HOUR, HOUR, speed=10, serve=serve,
                                 credentials={protocol: KEYS[protocol]},
                                 trading=TradingConfig(parse_latency("0"), 0, 0)) as paper:
            urls = paper.urls
            gateway = Gateway({protocol: {"env": "paper", "base_url": urls[protocol]["rest"],
                                          "key": "T_KEY", "secret": "T_SECRET"},
                               "binance_spot": {"env": "paper",
                                                "base_url": urls["binance_spot"]["rest"]}},
                              spec_cache=tmp_path, policy=FAST)
            async with gateway:
                venue = gateway.order_venue()
                await venue.start()
                oms = OMS(venue=venue, exchanges=[protocol])
                feed = Feed(gateway=gateway)
                trades = feed.get_feed(await feed.add_trades_feed("binance_spot", "BTCUSDT",
                                                                  buffer=500))
                lob = feed.get_feed(await feed.add_l2_book_feed("binance_spot", "BTCUSDT"))
                await feed.add_l2_book_feed(protocol, "BTCUSDT", handler=tutorial_quoter(
                    oms, protocol, trades, lob))
                await asyncio.wait_for(paper.replay_done.wait(), 120)
                desk = paper.desk
                assert desk is not None

                def venue() -> tuple[Decimal, set[str | None]]:  # read at each check: the
                    # quoter's last requests may still be on their way when the range ends
                    return (desk.venue.account(protocol).position("BTCUSDT").amount,
                            {o.oid for o in desk.engine(protocol, "BTCUSDT").resting.values()})

                def mirror() -> tuple[Decimal, set[str | None]]:
                    return (oms.get_position(protocol, "BTCUSDT"),
                            {o.oid for o in oms.orders_peek(protocol).get_orders()
                             if o.is_alive()})

                try:
                    await until(lambda: mirror() == venue(), "the mirror = the venue's account")
                except AssertionError as failure:  # say which orders differ
                    odd = mirror()[1] ^ venue()[1]
                    news = [a for a in desk.venue.actions if a.get("oid") in odd]
                    raise AssertionError(f"{failure}: mirror {oms.orders_peek(protocol).as_list()}"
                                         f", venue {venue()}, the venue's news of the orders "
                                         f"that differ {news}") from None
                position, resting = venue()
                acks = [a for a in desk.venue.actions if a["event"] == "ack"]
                return position, resting, desk.fills, acks, paper.account_lines()

    position, resting, fills, acks, lines = asyncio.run(body())
    assert acks and resting, "the quoter quoted"
    assert position == sum((f["dir"] * f["size"] for f in fills), Decimal(0))
    [account] = [m.groups() for m in map(ACCOUNT.match, lines) if m]
    held = "flat" if not position else f"BTCUSDT {format(position.normalize(), 'f')}"
    assert account[0] == protocol and int(account[1]) >= len(acks) and account[-3:] == (
        str(len(fills)), str(len(resting)), held)
