"""Fault injection: parsing, determinism, and the contract that matters: under thousands
of injected faults a correct client detects every problem and never accepts a wrong book."""

from __future__ import annotations

import asyncio

import aiohttp
import orjson
import pytest
from paper_oracles import (
    END,
    START,
    Expected,
    run,
    run_binance,
    run_bybit,
    run_hyperliquid,
    until,
)

from makerlab.errors import ConfigError
from makerlab.paper import FaultSpec, PaperExchange
from makerlab.paper.faults import FaultInjector, FaultLog

HEAVY = "drop=0.04,duplicate=0.04,reorder=0.04,gap=0.04,disconnect=0.002,stale_snapshot=0.3,seed=7"


def test_fault_spec_parses_the_cli_form():
    spec = FaultSpec.parse("drop=0.01,duplicate=0.01,reorder=0.01,gap=0.005,"
                           "stale_snapshot=0.2,disconnect=0.001,seed=7")
    assert (spec.drop, spec.gap, spec.stale_snapshot, spec.disconnect, spec.seed) == (
        0.01, 0.005, 0.2, 0.001, 7)
    assert FaultSpec.parse(str(spec)) == spec
    assert FaultSpec.parse(None) == FaultSpec() == FaultSpec.parse("")


@pytest.mark.parametrize("text", ["drop", "lose=0.1", "drop=x", "drop=1.5",
                                  "drop=0.6,duplicate=0.6"])
def test_bad_fault_specs_are_config_errors(text):
    with pytest.raises(ConfigError):
        FaultSpec.parse(text)


def _decisions(spec: FaultSpec, scope: int) -> list[object]:
    injector = FaultInjector(spec, FaultLog(), "test", spec.rng("binance", scope))
    return [injector.route(i, True, "t", lambda item: -item) for i in range(2000)]


def test_faults_are_seeded_and_deterministic():
    spec = FaultSpec.parse(HEAVY)
    assert _decisions(spec, 1) == _decisions(spec, 1)
    assert _decisions(spec, 1) != _decisions(spec, 2)
    assert _decisions(spec, 1) != _decisions(FaultSpec.parse(HEAVY.replace("7", "8")), 1)


def _route(kind: str, items: list[tuple[int, bool]], log: FaultLog) -> list[object]:
    injector = FaultInjector(FaultSpec(**{kind: 1.0}), log, "test", FaultSpec().rng(kind))
    return [injector.route(item, data, "t", lambda x: -x) for item, data in items]


@pytest.mark.parametrize(("kind", "sent"), [
    ("drop", [[], [2], []]),
    ("duplicate", [[1, 1], [2], [3, 3]]),
    ("reorder", [[], [2], [3, 1]]),  # held back, sent after the next data message
    ("gap", [[-1], [2], [-3]]),
    ("disconnect", [None, [2], None]),
])
def test_each_fault_does_what_it_says(kind, sent):
    log = FaultLog()
    # data message 1, a control reply 2 (never faulted), data message 3
    assert _route(kind, [(1, True), (2, False), (3, True)], log) == sent
    assert log.counts[kind] == (1 if kind == "reorder" else 2)


@pytest.mark.faults
def test_no_wrong_book_is_ever_accepted_under_thousands_of_faults(btc_archive):
    usdm = Expected.from_archive(btc_archive, "binance", "BTCUSDT", START, END)
    spot = Expected.from_archive(btc_archive, "binance_spot", "BTCUSDT", START, END)

    async def body():
        async with PaperExchange(btc_archive, START, END, speed=0, faults=HEAVY,
                                 serve={"bybit": "binance", "hyperliquid": "binance"}) as paper:
            urls, done = paper.urls, until(paper.replay_done)
            reports = await asyncio.gather(
                run_binance(urls["binance"], "BTCUSDT", "depth@0ms", usdm, done),
                run_binance(urls["binance_spot"], "BTCUSDT", "depth@100ms", spot, done,
                            futures=False),
                run_bybit(urls["bybit"], "orderbook.50.BTCUSDT", usdm, done),
                run_hyperliquid(urls["hyperliquid"], "BTCUSDT", usdm, done))
            return reports, paper.fault_counts

    reports, counts = run(body)
    assert sum(counts.values()) >= 2000
    assert set(counts) == {"drop", "duplicate", "reorder", "gap", "disconnect",
                           "stale_snapshot"}
    for name, report in zip(("binance", "binance_spot", "bybit", "hyperliquid"), reports,
                            strict=True):
        assert report.wrong == [], name
        assert report.checked > 100, name
    assert all(r.resyncs > 10 for r in reports[:3])  # the id-chained feeds noticed
    assert reports[3].resyncs > 0  # Hyperliquid: reconnected after disconnects


def test_a_stale_snapshot_is_an_older_book_with_its_own_id(btc_archive):
    usdm = Expected.from_archive(btc_archive, "binance", "BTCUSDT", START, END)

    async def body():
        async with PaperExchange(btc_archive, START, END, speed=0, faults="stale_snapshot=1",
                                 serve={"hyperliquid": "binance"}) as paper, \
                aiohttp.ClientSession() as http:
            ws = await http.ws_connect(paper.urls["binance"]["ws"] +
                                       "/public/ws/btcusdt@depth@0ms")
            for _ in range(50):  # let the market move on
                await ws.receive(timeout=10)
            async with http.get(paper.urls["binance"]["rest"] + "/fapi/v1/depth",
                                params={"symbol": "BTCUSDT", "limit": "20"}) as reply:
                depth = await reply.json()
            async with http.post(paper.urls["hyperliquid"]["rest"] + "/info",
                                 json={"type": "l2Book", "coin": "BTCUSDT"}) as reply:
                book = await reply.json()
            now = paper.markets[("binance", "BTCUSDT")].last
            await ws.close()
            return depth, book, now, paper.fault_counts

    depth, book, now, counts = run(body)
    assert counts == {"stale_snapshot": 2}
    assert depth["lastUpdateId"] < now.seq
    top = tuple(tuple((float(p), float(z)) for p, z in depth[s]) for s in ("bids", "asks"))
    assert top == usdm.by_id[depth["lastUpdateId"]]
    assert book["time"] < now.exchange_ts // 1_000_000
    levels = tuple(tuple((float(x["px"]), float(x["sz"])) for x in s) for s in book["levels"])
    assert levels in usdm.by_ms[book["time"]]


def test_gap_faults_jump_the_ids_as_each_venue_numbers_them():
    from makerlab.paper.binance import BinanceSession
    from makerlab.paper.bybit import BybitSession
    from makerlab.paper.hyperliquid import HyperliquidSession
    from makerlab.paper.session import Outgoing

    diff = {"e": "depthUpdate", "U": 5, "u": 9, "pu": 4}
    binance = BinanceSession.__new__(BinanceSession)
    assert binance.gap(Outgoing("btcusdt@depth", diff)).payload == {**diff, "pu": 5}
    spot = {"e": "depthUpdate", "U": 5, "u": 9}
    assert binance.gap(Outgoing("btcusdt@depth", spot)).payload == {**spot, "U": 6}
    assert binance.gap(Outgoing("btcusdt@trade", {"e": "trade"})) is None

    bybit = BybitSession.__new__(BybitSession)
    bybit._offsets = {}
    topic = "orderbook.50.BTCUSDT"
    first = Outgoing(topic, {"topic": topic, "data": {"u": 7}})
    assert orjson.loads(bybit.encode(bybit.gap(first)))["data"]["u"] == 8
    later = Outgoing(topic, {"topic": topic, "data": {"u": 8}})
    assert orjson.loads(bybit.encode(later))["data"]["u"] == 9  # the jump stays
    assert bybit.gap(Outgoing("publicTrade.BTCUSDT", {})) is None

    assert HyperliquidSession.gap(HyperliquidSession.__new__(HyperliquidSession),
                                  Outgoing("l2Book:BTC", {})) is None
