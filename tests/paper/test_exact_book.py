"""The exact-book contract: a client following each venue's documented sync rule rebuilds,
after every message it accepts, exactly the archive's book at that message.

One paper exchange per archive serves every protocol at once (speed 0: the clock waits
for the slowest client) and an oracle client per protocol follows it concurrently."""

from __future__ import annotations

import asyncio

import pytest
from paper_oracles import (
    END,
    START,
    Expected,
    Report,
    run,
    run_binance,
    run_bybit,
    run_hyperliquid,
    until,
)

from makerlab.paper import PaperExchange


@pytest.fixture(scope="module")
def usdm(btc_archive) -> Expected:
    return Expected.from_archive(btc_archive, "binance", "BTCUSDT", START, END)


@pytest.fixture(scope="module")
def spot(btc_archive) -> Expected:
    return Expected.from_archive(btc_archive, "binance_spot", "BTCUSDT", START, END)


@pytest.fixture(scope="module")
def delta_reports(btc_archive, usdm, spot) -> dict[str, Report]:
    """Every protocol over the book_delta archive (spot over Binance spot, the rest over
    USD-M), plus an unthrottled Binance diff stream."""

    async def body():
        async with PaperExchange(btc_archive, START, END, speed=0,
                                 serve={"bybit": "binance", "hyperliquid": "binance"}) as paper:
            urls, done = paper.urls, until(paper.replay_done)
            clients = {
                "binance": run_binance(urls["binance"], "BTCUSDT", "depth@100ms", usdm, done),
                "binance@0ms": run_binance(urls["binance"], "BTCUSDT", "depth@0ms", usdm, done),
                "binance_spot": run_binance(urls["binance_spot"], "BTCUSDT", "depth@100ms",
                                            spot, done, futures=False),
                "bybit": run_bybit(urls["bybit"], "orderbook.50.BTCUSDT", usdm, done),
                "hyperliquid": run_hyperliquid(urls["hyperliquid"], "BTCUSDT", usdm, done),
            }
            reports = await asyncio.gather(*clients.values())
            return dict(zip(clients, reports, strict=True))

    return run(body)


@pytest.mark.parametrize("protocol", ["binance", "binance@0ms", "binance_spot", "bybit",
                                      "hyperliquid"])
def test_every_accepted_book_equals_the_archived_book(delta_reports, usdm, spot, protocol):
    report = delta_reports[protocol]
    expected = spot if protocol == "binance_spot" else usdm
    assert report.wrong == []
    assert report.checked > 1000
    assert report.last_top == expected.by_id[expected.last_id]  # it followed to the end
    assert report.resyncs == (1 if protocol.startswith("binance") else 0)  # no false gap


def test_unthrottled_diff_stream_carries_every_archived_message(delta_reports, usdm):
    report = delta_reports["binance@0ms"]
    assert report.resyncs == 1
    snapshot_id = report.keys[0]  # the REST snapshot, then every diff from there on
    assert report.keys == [snapshot_id, *sorted(k for k in usdm.by_id if k >= snapshot_id)]


def test_books_derived_from_snapshots_are_exact(snapshot_archive):
    """A book_snapshot-only archive: level changes and ids are derived by the exchange."""
    expected = Expected.from_archive(snapshot_archive, "hyperliquid", "BTC", START, END,
                                     numbered=True)

    async def body():
        async with PaperExchange(snapshot_archive, START, END, speed=0,
                                 serve={"binance": "hyperliquid", "bybit": "hyperliquid"}
                                 ) as paper:
            urls, done = paper.urls, until(paper.replay_done)
            return await asyncio.gather(
                run_binance(urls["binance"], "BTC", "depth@100ms", expected, done),
                run_bybit(urls["bybit"], "orderbook.50.BTC", expected, done),
                run_hyperliquid(urls["hyperliquid"], "BTC", expected, done))

    for protocol, report in zip(("binance", "bybit", "hyperliquid"), run(body), strict=True):
        assert report.wrong == [], protocol
        assert report.checked > 1000, protocol
        assert report.last_top == expected.by_id[expected.last_id], protocol
        assert report.resyncs == (protocol == "binance"), protocol
