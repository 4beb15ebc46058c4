"""Streaming replay: peak memory and speed of a 1 h and a 24 h archive replay (not a test).

The bundled archive holds about six minutes of one hour (2024-08-08 23:54-24:00). This
bench builds, in a temporary directory, a **long archive of time-shifted copies of those
real rows**: every hour of ``--hours`` (from 2024-08-10 00:00) holds ``--tiles`` copies of
the captured six minutes one after the other (copy ``j`` of hour ``k`` shifted by ``k`` hours
and ``j`` x 6 minutes), for Binance USD-M and spot BTCUSDT (books depth 20 and trades), written
with :func:`makerlab.data.archive.write_table` like any converted capture. The data are
real; the calendar is not (every hour repeats the same prints).

Each replay runs in its own process (peak RSS is per process: ``ru_maxrss``) with the
tutorial's market maker (examples/market_maker.py's quoting: a Python handler on every
book update of Binance USD-M BTCUSDT, the spot book and trades as reference):

- ``stream``: ``Replayer.from_archive`` (the default: segment by segment) over 1 h and over the
  whole range, quoting on every book update, then every ``--clock-s`` seconds (the run's
  order journal, ``actions``, grows with the range: quoting on every book update it gets
  about 82,000 events an hour; a streamed replay spills its closed chunks to disk,
  :mod:`makerlab.sim.journal`);
- ``whole``: ``from_archive(stream=False)``, the range loaded whole, over 1 h and
  ``--whole-hours`` (memory grows with the range);
- with ``--journal-in-memory``, also the whole range streamed quoting on every book update
  with the journal kept in memory (columnar, not spilled): what spilling saves.

Reported per run: the replay's peak RSS (MB, when ``play()`` has returned), the peak once
the run record is built (``daily_statistics()``: the record holds the range's mids and
trades, and the order journal as a table, so it grows with the range), wall time (build +
replay), events (market rows on the merged timeline, as the Replayer counts them) per
second, fills, order events (``actions``). The target: the 24 h
streamed peak within 1.3x the 1 h peak. The machine is shared: numbers move by a few %.

    python bench/bench_stream.py [--hours 24] [--tiles 10] [--whole-hours 6] [--clock-s 10]
                                 [--journal-in-memory]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
SOURCE = Path(os.environ.get("MAKERLAB_ARCHIVE", REPO / "data" / "archive"))
HOUR = "2024-08-08:23"
MARKETS = {"binance": ["BTCUSDT"], "binance_spot": ["BTCUSDT"]}
FIRST_HOUR = "2024-08-10T00:00:00"
HOUR_NS = 3_600_000_000_000
TILE_NS = 360_000_000_000  # six minutes: one copy of the capture


def build_archive(root: Path, hours: int, tiles: int) -> None:
    """The long archive (see the module docstring)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    from makerlab.data import archive

    first = int(np.datetime64(FIRST_HOUR, "ns").astype(np.int64))
    for exc, tickers in MARKETS.items():
        for ticker in tickers:
            for kind, depth in (("book_snapshot", 20), ("trades", None)):
                table = archive.read_table(SOURCE, kind, exc, ticker, HOUR, HOUR, depth=depth)
                base = pc.min(table.column("exchange_ts")).as_py() // TILE_NS * TILE_NS
                for k in range(hours):
                    parts = [_shifted(table, first + k * HOUR_NS + j * TILE_NS - base)
                             for j in range(tiles)]
                    archive.write_table(root, kind, exc, ticker, pa.concat_tables(parts))


def _shifted(table: Any, shift: int) -> Any:
    import pyarrow.compute as pc

    for name in ("exchange_ts", "local_ts"):
        i = table.schema.get_field_index(name)
        table = table.set_column(i, name, pc.add(table.column(name), shift))
    return table


def _range(hours: int) -> tuple[str, str]:
    first = np.datetime64(FIRST_HOUR, "h")
    fmt = "%Y-%m-%d:%H"
    return (first.item().strftime(fmt), (first + hours - 1).item().strftime(fmt))


async def _market_maker(rep: Any, clock_s: float | None, spread_bps: float = 6,
                        skew_bps: float = 4, order_value: float = 200) -> None:
    """examples/market_maker.py's quoting on Binance USD-M BTCUSDT: on every book update,
    or every ``clock_s`` seconds (a quieter order journal)."""
    oms, feed = rep.get_oms(), rep.get_feed()
    exc, ticker = "binance", "BTCUSDT"
    orders, positions = oms.orders_peek(exc=exc), oms.positions_peek(exc=exc)
    ref_trades = feed.get_feed(await feed.add_trades_feed("binance_spot", ticker, buffer=500))
    ref_lob = feed.get_feed(await feed.add_l2_book_feed("binance_spot", ticker, depth=20,
                                                        buffer=100))

    async def on_book(lob: Any) -> None:
        q = float(positions.get_ticker_amount(ticker=ticker)) * lob.get_mid() / order_value
        tds = ref_trades.get_sample(n=15)
        vamp = ref_lob.get_vamp(20000 if len(tds) == 0 else float(np.sum(tds[:, 1] * tds[:, 2])))
        if np.isnan(vamp):
            return
        want = {1: min(vamp - (spread_bps + np.tanh(q) * skew_bps) * 1e-4 * vamp,
                       lob.get_bids()[1, 0]),
                -1: max(vamp + (spread_bps + np.tanh(-q) * skew_bps) * 1e-4 * vamp,
                        lob.get_asks()[1, 0])}
        for side, mine in ((1, orders.get_bid_orders(ticker=ticker)),
                           (-1, orders.get_ask_orders(ticker=ticker))):
            px = Decimal(str(oms.rounded_price(exc=exc, ticker=ticker, price=want[side])))
            if not any(o.price == px for o in mine):
                await oms.limit_order(exc=exc, ticker=ticker, price=px, round_to_specs=True,
                                      amount=side * order_value / lob.get_mid())
            for o in mine:
                if o.price != px:
                    await oms.cancel_order(exc=o.exc, ticker=o.ticker, cloid=o.cloid)

    if clock_s is None:
        await feed.add_l2_book_feed(exc, ticker, depth=20, buffer=100, handler=on_book)
        return
    lob = feed.get_feed(await feed.add_l2_book_feed(exc, ticker, depth=20, buffer=100))

    async def on_clock() -> None:
        if len(lob.get_bids()) > 1 and len(lob.get_asks()) > 1:
            await on_book(lob)

    await oms.add_clock_callback(on_clock, interval_ms=clock_s * 1000)


def child(root: str, hours: int, stream: bool, clock_s: float | None,
          journal_in_memory: bool = False) -> dict[str, Any]:
    """One replay in this process: its numbers."""
    from makerlab.sim import Replayer
    from makerlab.sim.journal import OrderJournal

    start, end = _range(hours)
    t0 = time.perf_counter()
    rep = Replayer.from_archive(MARKETS, start, end, path=root, stream=stream,
                                maker_fees=0.0, taker_fees=0.0)
    if journal_in_memory:  # a streamed replay's journal spills: this keeps it in memory
        rep.venue.actions = OrderJournal()

    async def go() -> None:
        await _market_maker(rep, clock_s)
        await rep.play(progress=False)

    asyncio.run(go())
    wall = time.perf_counter() - t0
    replay_peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    days = rep.daily_statistics()  # builds the run record: the range's mids and trades
    mode = "stream" if stream else "whole"
    return {"mode": mode + (" (journal in memory)" if journal_in_memory else ""),
            "hours": hours,
            "quotes": "book" if clock_s is None else f"{clock_s:g} s",
            "actions": len(rep.actions), "peak_rss_mb": replay_peak,
            "record_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "wall_s": wall, "events": rep.n_events, "events_per_s": rep.n_events / wall,
            "fills": len(rep.fills), "days": len(days)}


def run(root: Path, hours: int, stream: bool, clock_s: float | None = None,
        journal_in_memory: bool = False) -> dict[str, Any]:
    out = subprocess.run([sys.executable, __file__, "--child", str(root), str(hours),
                          "1" if stream else "0", str(clock_s or 0),
                          "1" if journal_in_memory else "0"],
                         capture_output=True, text=True, check=True,
                         env={**os.environ, "PYTHONPATH": str(REPO / "src")})
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hours", type=int, default=24)
    parser.add_argument("--tiles", type=int, default=10)
    parser.add_argument("--whole-hours", type=int, default=6)
    parser.add_argument("--clock-s", type=float, default=10.0)
    parser.add_argument("--journal-in-memory", action="store_true",
                        help="also stream the long range quoting on every book update with "
                             "the order journal kept in memory (not spilled)")
    parser.add_argument("--child", nargs=5)
    args = parser.parse_args()
    if args.child:
        root, hours, stream, clock_s, in_memory = args.child
        print(json.dumps(child(root, int(hours), stream == "1", float(clock_s) or None,
                               in_memory == "1")))
        return
    with tempfile.TemporaryDirectory(prefix="makerlab_stream_") as tmp:
        t0 = time.perf_counter()
        build_archive(Path(tmp), args.hours, args.tiles)
        print(f"archive: {args.hours} h x {args.tiles} copies of the captured 6 min "
              f"({time.perf_counter() - t0:.0f} s to build)")
        rows = [run(Path(tmp), h, stream, clock) for clock in (None, args.clock_s)
                for h, stream in ((1, True), (args.hours, True))]
        rows += [run(Path(tmp), h, False) for h in (1, args.whole_hours)]
        if args.journal_in_memory:
            rows.append(run(Path(tmp), args.hours, True, journal_in_memory=True))
    print(f"{'mode':6} {'quotes':>6} {'hours':>5} {'replay RSS MB':>13} {'+record MB':>10} "
          f"{'wall s':>7} {'events':>9} {'events/s':>9} {'fills':>6} {'actions':>8}")
    for r in rows:
        print(f"{r['mode']:6} {r['quotes']:>6} {r['hours']:5d} {r['peak_rss_mb']:13.0f} "
              f"{r['record_rss_mb']:10.0f} {r['wall_s']:7.1f} {r['events']:9d} "
              f"{r['events_per_s']:9.0f} {r['fills']:6d} {r['actions']:8d}")
    for one, day in ((rows[0], rows[1]), (rows[2], rows[3])):
        print(f"streamed peak RSS, quotes on {one['quotes']}: {args.hours} h / 1 h = "
              f"{day['peak_rss_mb'] / one['peak_rss_mb']:.2f}x (target <= 1.3x)")


if __name__ == "__main__":
    main()
