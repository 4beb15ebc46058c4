"""The page's server over HTTP (aiohttp's client, no browser): routes, access rules,
input checks and the kill switch, over a replayed OMS holding an open order."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path

import aiohttp
import orjson
import pytest

from makerlab.errors import ConfigError
from makerlab.monitor import Monitor
from makerlab.sim import Replayer

ARCHIVE = Path(__file__).resolve().parents[2] / "data" / "archive"
HOUR = "2024-08-08:23"
TOKEN = "server-test-token-0123456789"


@contextlib.asynccontextmanager
async def served(**options) -> AsyncIterator[tuple[Monitor, aiohttp.ClientSession]]:
    rep = Replayer.from_archive({"binance": ["BTCUSDT"]}, HOUR, HOUR, path=ARCHIVE)
    oms, feed = rep.get_oms(), rep.get_feed()
    await feed.add_l2_book_feed("binance", "BTCUSDT")
    await oms.limit_order("binance", "BTCUSDT", Decimal("0.002"), Decimal("50000"))
    async with Monitor(oms, feed, **{"port": 0, "interval_s": 0.05, **options}) as monitor, \
            aiohttp.ClientSession() as http:
        yield monitor, http


def run(coro) -> None:
    asyncio.run(coro)


def test_local_page_files_snapshot_and_websocket():
    async def body() -> None:
        async with served() as (monitor, http):
            async with http.get(monitor.url) as page:
                assert page.status == 200 and "Kill switch" in await page.text()
                assert page.headers["X-Frame-Options"] == "DENY"
                assert "default-src 'self'" in page.headers["Content-Security-Policy"]
            for name in ("page.js", "page.css", "uPlot.iife.min.js", "uPlot.min.css"):
                async with http.get(f"{monitor.url}static/{name}") as file:
                    assert file.status == 200, name
            for bad in ("static/index.html", "static/..%2fserver.py", "static/LICENSE.uPlot.txt"):
                async with http.get(monitor.url + bad) as file:
                    assert file.status == 404, bad
            async with http.get(f"{monitor.url}api/snapshot") as snap:
                data = orjson.loads(await snap.read())
            [market] = data["markets"]
            assert market["ticker"] == "BTCUSDT" and len(market["orders"]) == 1
            assert market["orders"][0]["price"] == 50000.0
            async with http.ws_connect(f"{monitor.url}ws") as ws:
                hello = orjson.loads((await ws.receive()).data)
                assert hello["type"] == "hello" and hello["authorized"] is False
                assert hello["history"] and hello["snapshot"]["seq"] >= 1
                pushed = orjson.loads((await ws.receive(timeout=10)).data)
                assert pushed["type"] == "snapshot"
                assert pushed["snapshot"]["seq"] > hello["snapshot"]["seq"]
                assert "binance/BTCUSDT" in pushed["point"]["m"]
                await ws.send_str("kill")  # the socket takes no input
                closing = await ws.receive(timeout=10)
                assert closing.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED)
                assert ws.close_code == 1008

    run(body())


def test_query_parameters_other_than_the_token_are_refused():
    async def body() -> None:
        async with served() as (monitor, http):
            async with http.get(f"{monitor.url}?debug=1") as page:
                assert page.status == 400
            async with http.get(f"{monitor.url}?token=wrong-token-0123456789") as page:
                assert page.status == 401

    run(body())


def test_the_kill_switch_needs_the_token_a_confirmation_and_the_pages_origin():
    async def body() -> None:
        async with served(token=TOKEN) as (monitor, http):
            kill, oms = f"{monitor.url}api/kill", monitor.oms
            header = {"X-Makerlab-Token": TOKEN}
            refusals = [({}, {"confirm": True}, 401),
                        ({"X-Makerlab-Token": "wrong-token-0123456789"}, {"confirm": True}, 401),
                        (header, {"confirm": False}, 400), (header, {"confirm": True, "x": 1}, 400),
                        (header, ["confirm"], 400),
                        ({**header, "Origin": "http://evil.example"}, {"confirm": True}, 403)]
            for headers, payload, status in refusals:
                async with http.post(kill, headers=headers, json=payload) as answer:
                    assert answer.status == status, (headers, payload)
            async with http.post(kill, headers=header, data=b"{not json") as answer:
                assert answer.status == 400
            async with http.get(f"{monitor.url}?token={TOKEN}") as page:  # sets the cookie
                assert page.status == 200 and "makerlab_token" in page.cookies
            async with http.post(kill, json={"confirm": True}) as answer:  # cookie alone
                assert answer.status == 401
            assert not oms.kill_switch.tripped
            async with http.post(kill, headers={**header, "Origin": monitor.url.rstrip("/")},
                                 json={"confirm": True, "note": "test"}) as answer:
                result = await answer.json()
            assert answer.status == 200 and result["ok"] and result["reason"] == "manual"
            assert result["detail"] == "monitoring page: test"
            assert oms.kill_switch.tripped and oms.kill_switch.detail == "monitoring page: test"
            # the order was never acknowledged (the replay does not run): PENDING until the
            # venue answers, so the mirror still counts it
            assert result["open_before"] == 1 and result["open_after"] == 1
            assert monitor.latest is not None and monitor.latest.risk.kill_tripped

    run(body())


def test_a_stale_cookie_does_not_lock_the_local_page():
    async def body() -> None:
        async with served() as (monitor, http):
            http.cookie_jar.update_cookies({"makerlab_token": "an-earlier-pages-token-0123"})
            async with http.get(monitor.url) as page:
                assert page.status == 200

    run(body())


def test_off_localhost_a_token_is_required_to_look():
    with pytest.raises(ConfigError, match="token"):
        Monitor(object(), None, host="127.0.0.2")

    async def body() -> None:
        async with served(host="127.0.0.2", token=TOKEN) as (monitor, http):
            for path in ("", "static/page.js", "api/snapshot"):
                async with http.get(monitor.url + path) as answer:
                    assert answer.status == 401, path
                async with http.get(monitor.url + path,
                                    headers={"X-Makerlab-Token": TOKEN}) as answer:
                    assert answer.status == 200, path
            with pytest.raises(aiohttp.WSServerHandshakeError):
                await http.ws_connect(f"{monitor.url}ws")
            async with http.ws_connect(f"{monitor.url}ws?token={TOKEN}") as ws:
                hello = orjson.loads((await ws.receive()).data)
                assert hello["authorized"] is True

    run(body())


def test_start_once_stop_twice():
    async def body() -> None:
        async with served() as (monitor, _):
            with pytest.raises(ConfigError, match="once"):
                await monitor.start()
        await monitor.stop()
        assert "stopped" in repr(monitor)

    run(body())
