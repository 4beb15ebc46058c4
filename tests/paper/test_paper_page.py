"""The paper exchange's monitoring page (``makerlab paper --page``): the venue's side.

The tutorial's quoter trades on the paper exchange over the live stack; the page's
snapshots (over HTTP and the websocket) show the desk's account (resting orders,
position, fills); its kill switch halts the venue: every order cancelled, later orders
refused with ``-2010``; off 127.0.0.1 a wrong token is refused; the command serves it.
"""

from __future__ import annotations

import asyncio
import re
import signal
import threading
from decimal import Decimal
from typing import Any

import aiohttp
import orjson
import pytest
from private_kit import FAST, HOUR, KEYS, until
from test_paper_cli import _start
from test_quoter_e2e import tutorial_quoter

from makerlab.core.events import OrderEventKind, OrderUpdate
from makerlab.errors import ConfigError
from makerlab.live.gateway import Gateway
from makerlab.monitor import PageConfig
from makerlab.paper import PaperExchange
from makerlab.paper.binance_private import BinancePrivate
from makerlab.paper.binance_private import Refused as BinanceRefused
from makerlab.paper.bybit_private import BybitPrivate
from makerlab.paper.bybit_private import Refused as BybitRefused
from makerlab.paper.hyperliquid_private import HyperliquidPrivate
from makerlab.paper.trading import TradingConfig, parse_latency
from makerlab.sim.matching import REJECT_HALTED
from makerlab.trading.feed import Feed
from makerlab.trading.oms import OMS

TOKEN = "paper-page-token-0123456789"


def _desk_view(paper: PaperExchange) -> dict[str, Any]:
    """What the desk holds now: resting orders by oid, position, fills."""
    desk = paper.desk
    assert desk is not None
    engine = desk.engine("binance", "BTCUSDT")
    return {"orders": {o.oid: (o.side, float(o.price or 0), float((o.qty - o.filled) * o.side))
                       for o in engine.resting.values()},
            "position": float(desk.venue.account("binance").position("BTCUSDT").amount),
            "fills": len(desk.fills)}


def _page_view(snapshot: dict[str, Any]) -> dict[str, Any]:
    [market] = [m for m in snapshot["markets"] if m["ticker"] == "BTCUSDT"]
    return {"orders": {o["oid"]: (o["side"], o["price"], o["amount"]) for o in market["orders"]},
            "position": market["position"], "fills": len(snapshot["fills"])}


def test_the_page_shows_the_desk_and_its_halt_refuses_new_orders(short_archive, monkeypatch,
                                                                  tmp_path):
    async def body() -> None:
        monkeypatch.setenv("T_KEY", KEYS["binance"].key)
        monkeypatch.setenv("T_SECRET", KEYS["binance"].secret)
        monkeypatch.chdir(tmp_path)
        page = PageConfig(port=0, token=TOKEN, interval_s=0.1)
        async with PaperExchange(short_archive, HOUR, HOUR, speed=10,
                                 credentials={"binance": KEYS["binance"]}, page=page,
                                 trading=TradingConfig(parse_latency("0"), 0, 0)) as paper:
            assert paper.page is not None and paper.page.port > 0
            urls = paper.urls
            gateway = Gateway({"binance": {"env": "paper", "base_url": urls["binance"]["rest"],
                                           "key": "T_KEY", "secret": "T_SECRET"},
                               "binance_spot": {"env": "paper",
                                                "base_url": urls["binance_spot"]["rest"]}},
                              spec_cache=tmp_path, policy=FAST)
            async with gateway, aiohttp.ClientSession() as http:
                venue = gateway.order_venue()
                await venue.start()
                oms = OMS(venue=venue, exchanges=["binance"])
                feed = Feed(gateway=gateway)
                trades = feed.get_feed(await feed.add_trades_feed("binance_spot", "BTCUSDT",
                                                                  buffer=500))
                lob = feed.get_feed(await feed.add_l2_book_feed("binance_spot", "BTCUSDT"))
                await feed.add_l2_book_feed("binance", "BTCUSDT", handler=tutorial_quoter(
                    oms, "binance", trades, lob))
                await asyncio.wait_for(paper.replay_done.wait(), 120)
                base = paper.page.url

                async def snapshot() -> dict[str, Any]:
                    async with http.get(base + "api/snapshot") as reply:
                        assert reply.status == 200
                        return await reply.json()

                # the market ended: the desk settles; the page shows it (HTTP)
                latest: dict[str, Any] = {}

                async def same() -> bool:
                    latest.update(await snapshot())
                    return _page_view(latest) == _desk_view(paper)

                for _ in range(100):
                    if await same():
                        break
                    await asyncio.sleep(0.1)
                desk = _desk_view(paper)
                assert _page_view(latest) == desk, (latest, desk)
                assert desk["orders"], "the quoter quotes"
                assert latest["mode"] == "paper venue"
                [account] = latest["accounts"]
                assert account["exchange"] == "binance" and account["wallet"] is not None
                assert latest["flow"][0]["acks"] >= len(desk["orders"])
                fills = paper.desk.fills if paper.desk else []
                assert sum(f["side"] * f["size"] for f in latest["fills"]) == pytest.approx(
                    float(sum((f["dir"] * f["size"] for f in fills), Decimal(0))))
                feeds = {f["symbol"]: f for f in latest["feeds"]}
                assert feeds["btcusdt@depth@100ms"]["subscribers"] >= 1, feeds
                assert feeds["btcusdt@depth@100ms"]["messages"] > 0
                # the websocket: hello, then snapshots with the same account
                async with http.ws_connect(base.replace("http", "ws") + "ws") as ws:
                    hello = orjson.loads((await ws.receive()).data)
                    pushed = orjson.loads((await ws.receive()).data)
                assert hello["type"] == "hello" and pushed["type"] == "snapshot"
                assert _page_view(pushed["snapshot"]) == _desk_view(paper)

                # the halt: every order cancelled, new ones refused with -2010
                open_before = len(desk["orders"])
                host = f"127.0.0.1:{paper.page.port}"
                async with http.post(base + "api/kill", json={"confirm": True},
                                     headers={"X-Makerlab-Token": TOKEN,
                                              "Origin": f"http://{host}"}) as reply:
                    result = await reply.json()
                    assert reply.status == 200, result
                assert result["ok"] and result["reason"] == "halt"
                assert result["open_before"] == open_before and result["open_after"] == 0
                assert "refused until the paper exits" in result["message"]
                assert not _desk_view(paper)["orders"]
                await until(lambda: not [o for o in oms.orders_peek("binance").get_orders()
                                         if o.is_alive()], "the client sees the cancels")
                refused_before = latest["flow"][0]["rejects"]
                price = oms.rounded_price("binance", "BTCUSDT", lob.get_mid() * 0.99)
                cloid = await oms.limit_order("binance", "BTCUSDT", 0.002, price)

                def alive() -> bool:  # a refused order leaves the mirror's live orders
                    return any(o.cloid == cloid and o.is_alive()
                               for o in oms.orders_peek("binance").get_orders())

                await until(lambda: not alive(), "the venue refuses the order")
                assert not _desk_view(paper)["orders"], "the halted venue rests nothing"
                assert paper.desk is not None
                assert [a for a in paper.desk.venue.actions if a["event"] == "reject"
                        and a["cloid"] == cloid and a["reason"] == REJECT_HALTED]
                for _ in range(50):
                    after = await snapshot()
                    if after["flow"][0]["rejects"] > refused_before:
                        break
                    await asyncio.sleep(0.1)
                assert after["risk"]["kill_tripped"] and after["risk"]["kill_reason"] == "halt"
                assert after["flow"][0]["rejects"] > refused_before
                assert after["flow"][0]["last_reject"].startswith("-2010")

    asyncio.run(body())


def test_off_localhost_the_page_needs_its_token(short_archive):
    with pytest.raises(ConfigError, match="token is required"):
        PageConfig(host="127.0.0.2", port=0)

    async def body() -> None:
        page = PageConfig(host="127.0.0.2", port=0, token=TOKEN)
        async with PaperExchange(short_archive, HOUR, HOUR, speed=0, page=page,
                                 credentials={"binance": KEYS["binance"]}) as paper, \
                aiohttp.ClientSession() as http:
            assert paper.page is not None
            base = paper.page.url
            assert base.startswith("http://127.0.0.2:")
            async with http.get(base + "api/snapshot") as reply:
                assert reply.status == 401
            async with http.get(base + "api/snapshot",
                                headers={"X-Makerlab-Token": "wrong-token-0123456789"}) as reply:
                assert reply.status in (401, 403)
            kill = {"X-Makerlab-Token": "wrong-token-0123456789",
                    "Origin": base.rstrip("/")}
            async with http.post(base + "api/kill", json={"confirm": True},
                                 headers=kill) as reply:
                assert reply.status in (401, 403)
            assert paper.desk is not None
            assert paper.desk.engine("binance", "BTCUSDT").halted is None, "not halted"
            async with http.get(base + "api/snapshot",
                                headers={"X-Makerlab-Token": TOKEN}) as reply:
                assert reply.status == 200
                assert (await reply.json())["mode"] == "paper venue"

    asyncio.run(body())


PAGE = re.compile(r"^page  (http://127\.0\.0\.1:(\d+)/)\?token=([A-Za-z0-9_-]+)$")


def test_the_paper_command_serves_the_page(monkeypatch):
    monkeypatch.setenv("MAKERLAB_PAPER_BINANCE_KEY", "cli-key")
    monkeypatch.setenv("MAKERLAB_PAPER_BINANCE_SECRET", "cli-secret-never-printed")
    process = _start("--page", "0")
    try:
        assert process.stdout is not None
        watchdog = threading.Timer(60, process.kill)
        watchdog.start()
        try:
            while not (match := PAGE.match(line := process.stdout.readline().strip())):
                assert line, "the command printed no page"
        finally:
            watchdog.cancel()

        async def look() -> dict[str, Any]:
            async with aiohttp.ClientSession() as http, \
                    http.get(match.group(1) + "api/snapshot") as reply:
                assert reply.status == 200
                return await reply.json()

        snapshot = asyncio.run(look())
        assert snapshot["mode"] == "paper venue"
        assert [a["exchange"] for a in snapshot["accounts"]] == ["binance"]
    finally:
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=30)
    assert process.returncode == 0, err
    assert "cli-secret" not in out + err


def test_the_paper_command_wants_a_token_off_localhost():
    process = _start("--page", "0", "--page-host", "0.0.0.0")
    _, err = process.communicate(timeout=60)
    assert process.returncode == 2
    assert "token is required" in err


def test_each_protocol_tells_the_halt_as_its_venue_error():
    code, _, reason = REJECT_HALTED.partition(" ")
    update = OrderUpdate("bybit", "BTCUSDT", 0, 0, OrderEventKind.REJECT, "REJECTED", "c1",
                         None, Decimal(1), Decimal(100), Decimal(0), 1, code, reason)
    with pytest.raises(BybitRefused) as bybit:
        object.__new__(BybitPrivate)._answer(update)
    assert bybit.value.code == 10027 and "halted" in bybit.value.msg
    with pytest.raises(BinanceRefused) as binance:
        object.__new__(BinancePrivate)._answer(update)
    assert binance.value.code == -2010 and "halted" in binance.value.msg
    hyperliquid = object.__new__(HyperliquidPrivate)
    hyperliquid.assets = {"BTCUSDT": 0}
    assert "trading halted by the venue operator" in hyperliquid._error(update)
