"""Lockstep: the paper exchange plays one step at a time in the Replayer's virtual time and
waits for the client; a live client's requests are handled at the step's virtual time."""

from __future__ import annotations

import asyncio
from decimal import Decimal

import aiohttp
import numpy as np
import orjson
import pytest
from private_kit import FAST, HOUR, KEYS

from makerlab.data.arrays import load_snapshot_arrays, load_trade_arrays
from makerlab.errors import ConfigError
from makerlab.live.gateway import Gateway
from makerlab.paper import PaperExchange
from makerlab.paper.source import find_datasets, hour_range, load_hour
from makerlab.paper.trading import TradingConfig, parse_latency
from makerlab.sim.latency import LognormalLatency
from makerlab.sim.timeline import BookTape, TradeTape, merge_market
from makerlab.trading.feed import Feed
from makerlab.trading.protocols import OrderRequest
from makerlab.units import NS_PER_MS
from makerlab.utils import _time

FEED_MS = 7


def test_events_play_in_the_replayers_local_time_order(btc_archive):
    """Local time = exchange time + FEED_PUBLIC; at equal times trades before books, then
    markets in (exchange, symbol) order, then archive order: the Replayer's timeline."""
    markets = [("binance", "BTCUSDT"), ("binance_spot", "BTCUSDT")]
    feed = FEED_MS * NS_PER_MS
    datasets = [d for k, d in sorted(find_datasets(btc_archive, hour_range(HOUR, HOUR)).items())
                if k in markets]
    events = load_hour(btc_archive, datasets, hour_range(HOUR, HOUR)[0])
    played = [(t, key, type(event).__name__) for t, key, event in events.in_order(
        dict.fromkeys(markets, feed), {k: i for i, k in enumerate(markets)})]
    books = [BookTape.from_arrays(*m, load_snapshot_arrays(btc_archive, *m, 20, HOUR, HOUR))
             for m in markets]
    trades = [TradeTape.from_arrays(*m, load_trade_arrays(btc_archive, *m, HOUR, HOUR))
              for m in markets]
    for tape in [*books, *trades]:
        tape.local_ts = tape.exchange_ts + feed
    timeline = merge_market(books, trades, {0, 1}, {0, 1})
    replay = [(t, markets[s], "TradePrint" if k == 2 else "BookMessage")
              for t, k, s in zip(timeline.t.tolist(), timeline.kind.tolist(),
                                 timeline.stream.tolist(), strict=True)]
    assert played == replay


def test_lockstep_refuses_what_it_cannot_replay_exactly(btc_archive):
    with pytest.raises(ConfigError, match="faults"):
        PaperExchange(btc_archive, HOUR, HOUR, lockstep=True, faults="drop=0.1")
    with pytest.raises(ConfigError, match="constant latencies"):
        PaperExchange(btc_archive, HOUR, HOUR, lockstep=True, trading=TradingConfig(
            LognormalLatency({"feed_public": 5})))


async def _steps(paper: PaperExchange, count: int) -> list[list[dict]]:
    """A raw client of the Binance trade stream: ready, then ``count`` steps, each the
    frames between two syncs (clock marker, data, sync marker); checks the paper waits
    at each sync."""
    url = paper.urls["binance"]["ws"] + "/public/ws/btcusdt@trade"
    steps: list[list[dict]] = []
    async with aiohttp.ClientSession() as http, http.ws_connect(url) as ws:
        await ws.send_str('{"paper":"ready"}')
        frames: list[dict] = []
        while len(steps) < count:
            frame = orjson.loads((await ws.receive(timeout=20)).data)
            frames.append(frame)
            if frame.get("paper") == "sync":
                await asyncio.sleep(0.05)  # the paper waits for our answer meanwhile
                assert paper.lockstep_steps == frame["n"]
                steps.append(frames)
                frames = []
                await ws.send_str(orjson.dumps({"paper": "synced", "n": frame["n"],
                                                "requests": 0}).decode())
    return steps


def test_each_step_is_a_clock_marker_the_events_and_a_sync_the_paper_waits_for(btc_archive):
    async def body() -> list[list[dict]]:
        trading = TradingConfig(parse_latency(f"feed_public={FEED_MS}"))
        async with PaperExchange(btc_archive, HOUR, HOUR, lockstep=True,
                                 trading=trading) as paper:
            return await _steps(paper, 40)

    steps = asyncio.run(body())
    times = []
    for clock, *trades, sync in steps:
        assert clock["paper"] == "clock" and sync["paper"] == "sync" and trades
        assert {t["T"] * NS_PER_MS + FEED_MS * NS_PER_MS for t in trades} == {clock["t"]}
        times.append(clock["t"])
    assert times == sorted(set(times))  # one step per local time, in order
    assert [s[-1]["n"] for s in steps] == sorted({s[-1]["n"] for s in steps})


def test_a_live_clients_requests_are_handled_at_the_steps_virtual_time(short_archive,
                                                                      monkeypatch, tmp_path):
    """A book handler places an order: the venue receives it at the book's local time
    (the step's), and the client's clock and ``_time()`` read that time in the handler."""
    feed = FEED_MS * NS_PER_MS

    async def body() -> tuple[list[tuple[int, int]], list[dict], list[dict]]:
        trading = TradingConfig(parse_latency(f"feed_public={FEED_MS},req_private=3,"
                                              "ack_private=0,feed_private=0"))
        monkeypatch.setenv("T_KEY", KEYS["binance"].key)
        monkeypatch.setenv("T_SECRET", KEYS["binance"].secret)
        monkeypatch.chdir(tmp_path)
        async with PaperExchange(short_archive, HOUR, HOUR, lockstep=True, trading=trading,
                                 credentials={"binance": KEYS["binance"]}) as paper:
            base = paper.urls["binance"]["rest"]
            gateway = Gateway({"binance": {"env": "paper", "base_url": base, "key": "T_KEY",
                                           "secret": "T_SECRET", "lockstep": True}},
                              spec_cache=tmp_path, policy=FAST)
            seen: list[tuple[int, int]] = []
            async with gateway:
                venue = gateway.order_venue()
                await venue.start()
                feed_obj = Feed(gateway=gateway)

                async def handler(lob) -> None:
                    seen.append((gateway.clock.now_ns(), _time()))
                    if len(seen) % 50 == 1:
                        price = Decimal(str(round(lob.get_mid() - 5, 1)))
                        await venue.submit(OrderRequest("binance", "BTCUSDT",
                                                        f"t-{len(seen)}", Decimal("0.002"),
                                                        price))

                await feed_obj.add_l2_book_feed("binance", "BTCUSDT", handler=handler)
                await asyncio.wait_for(paper.replay_done.wait(), 120)
            assert paper.desk is not None
            return seen, paper.desk.venue.actions, list(paper.desk.fills)

    seen, actions, fills = asyncio.run(body())
    books = load_snapshot_arrays(short_archive, "binance", "BTCUSDT", 20, HOUR, HOUR)
    local = books.exchange_ts + feed
    assert [ns for ns, _ in seen] == local.tolist()  # every book, at its local time
    assert all(ms == ns // NS_PER_MS for ns, ms in seen)
    submits = [a for a in actions if a["event"] == "submit"]
    assert [a["ts"] for a in submits] == local[::50].tolist()
    acks = [a for a in actions if a["event"] == "ack"]
    assert [a["ts"] for a in acks] == (local[::50] + 3 * NS_PER_MS).tolist()
    assert np.all(np.diff([f["ts"] for f in fills]) >= 0)
