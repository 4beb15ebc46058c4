"""A monitoring page served during a replay: it answers while the replay runs (the loop
lets it in every 5 ms) and the replay's fills are those of a replay without it."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from pathlib import Path

import aiohttp
import orjson

from makerlab.sim import Replayer

ARCHIVE = Path(__file__).resolve().parents[2] / "data" / "archive"
HOUR = "2024-08-08:23"


def replay(page: bool) -> tuple[list[dict], list[dict]]:
    rep = Replayer.from_archive({"binance": ["BTCUSDT"]}, HOUR, HOUR, path=ARCHIVE,
                                latencies={"req_private": 5, "ack_private": 5})
    oms, feed = rep.get_oms(), rep.get_feed()
    engine = rep.venue.engine("binance", "BTCUSDT")
    seen: list[dict] = []

    async def quote() -> None:
        await oms.cancel_order("binance", "BTCUSDT")
        bid, ask = engine.best(1), engine.best(-1)
        if bid == bid and ask == ask:
            for amount, price in ((Decimal("0.002"), bid), (Decimal("-0.002"), ask)):
                await oms.limit_order("binance", "BTCUSDT", amount, Decimal(repr(price)),
                                      tif="GTX")

    async def watch(url: str) -> None:
        async with aiohttp.ClientSession() as http, http.ws_connect(f"{url}ws") as ws:
            async for message in ws:
                seen.append(orjson.loads(message.data))

    async def go() -> None:
        await feed.add_l2_book_feed("binance", "BTCUSDT")
        await oms.add_clock_callback(quote, interval_ms=1000)
        viewer = None
        if page:
            monitor = await oms.serve_page(feed, port=0, interval_s=0.05)
            viewer = asyncio.create_task(watch(monitor.url))
        await rep.play(progress=False)
        if viewer is not None:
            viewer.cancel()
        await oms.cleanup()

    asyncio.run(go())
    return rep.fills, seen


def test_a_page_served_during_a_replay_answers_and_changes_no_fill():
    plain, _ = replay(page=False)
    with_page, seen = replay(page=True)
    assert len(plain) > 5 and with_page == plain
    snapshots = [m["snapshot"] for m in seen if m["type"] == "snapshot"]
    end_ms = max(f["ts"] for f in plain) / 1e6
    assert any(s["time_ms"] < end_ms for s in snapshots), "a snapshot during the replay"
