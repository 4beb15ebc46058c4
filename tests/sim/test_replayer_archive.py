"""End to end on the bundled archive (data/archive): skipped cleanly when it is absent."""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pytest
from replay_scenarios import fill_records

from makerlab.sim import Replayer

REPO = Path(__file__).resolve().parents[2]
ARCHIVE = REPO / "data" / "archive"
HOUR = "2024-08-08:23"
MARKETS = {"binance": ["BTCUSDT"], "binance_spot": ["BTCUSDT"]}

pytestmark = pytest.mark.skipif(
    not (ARCHIVE / "kind=book_snapshot").is_dir(), reason="bundled archive data/archive absent")


def test_market_maker_example_runs_trades_and_leaves_its_report(tmp_path):
    env = {**os.environ, "MAKERLAB_ARCHIVE": str(ARCHIVE), "MPLBACKEND": "Agg"}
    out = subprocess.run([sys.executable, str(REPO / "examples" / "market_maker.py"), "0"],
                         capture_output=True, text=True, cwd=tmp_path, env=env, timeout=300,
                         check=True).stdout
    trades = re.search(r"'binance': \{'#trades': (\d+)", out)
    assert trades is not None and int(trades.group(1)) > 0, out
    [pdf] = (tmp_path / "logs" / "reports").glob("*.pdf")
    assert pdf.read_bytes().startswith(b"%PDF")
    [run] = (tmp_path / "logs" / "runs").iterdir()
    assert (run / "config.json").is_file()


def quoting_run(books: str = "snapshot") -> Replayer:
    """A minimal quoter on the archive: join the best bid and ask every second."""
    rep = Replayer.from_archive(MARKETS, HOUR, HOUR, path=ARCHIVE, maker_fees=-0.00005,
                                books=books, latencies={"req_private": 5, "ack_private": 5,
                                                        "feed_private": 2})
    oms = rep.get_oms()
    engine = rep.venue.engine("binance", "BTCUSDT")

    async def quote() -> None:
        await oms.cancel_order("binance", "BTCUSDT")
        bid, ask = engine.best(1), engine.best(-1)
        if bid == bid and ask == ask:
            for amount, price in ((Decimal("0.002"), bid), (Decimal("-0.002"), ask)):
                await oms.limit_order("binance", "BTCUSDT", amount, Decimal(repr(price)),
                                      tif="GTX")

    async def go() -> None:
        await rep.get_feed().add_l2_book_feed("binance_spot", "BTCUSDT")
        await oms.add_clock_callback(quote, interval_ms=1000)
        await rep.play(progress=False)

    asyncio.run(go())
    return rep


def test_from_archive_is_deterministic_and_books_rebates():
    first, second = quoting_run(), quoting_run()
    assert fill_records(first) == fill_records(second)
    assert len(first.fills) > 0 and all(f["is_maker"] for f in first.fills)
    assert all(f["fee"] < 0 for f in first.fills)  # a negative maker fee is a rebate
    stats = first.statistics()["binance"]
    assert stats["#trades"] == len(first.fills) and stats["fees"] < 0


def test_replaying_deltas_gives_the_same_fills_as_the_snapshots_built_from_them():
    assert fill_records(quoting_run("delta")) == fill_records(quoting_run("snapshot"))


def test_recorded_local_clock_behind_the_venue_is_shifted_so_nothing_arrives_early():
    rep = quoting_run()
    shifts = rep.config["local_clock_shift_ms"]
    assert 1_000 < shifts["binance"] < 1_400  # the collector ran ~1.27 s behind
    for tape in [*rep.books, *rep.trades]:
        assert (tape.local_ts >= tape.exchange_ts).all()


@pytest.mark.parametrize("stream", [None, False])
def test_an_absent_archive_and_a_range_without_the_markets_are_named(tmp_path, stream):
    from makerlab.errors import ConfigError

    with pytest.raises(ConfigError, match=r"no archive at .*absent"):
        Replayer.from_archive(MARKETS, HOUR, HOUR, path=tmp_path / "absent", stream=stream)
    with pytest.raises(ConfigError, match=r"no book or trade data for binance/BTCUSDT from "
                                          r"2023-01-01:00 to 2023-01-01:01 in the archive at"):
        Replayer.from_archive({"binance": ["BTCUSDT"]}, "2023-01-01:00", "2023-01-01:01",
                              path=ARCHIVE, stream=stream)
    with pytest.raises(ConfigError, match=r"no book or trade data for binance/NOPE from"):
        Replayer.from_archive({"binance": ["BTCUSDT", "NOPE"]}, HOUR, HOUR, path=ARCHIVE,
                              stream=stream)  # a market without rows is not dropped quietly
