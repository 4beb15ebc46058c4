"""makerlab's replay against hftbacktest 2.4.4, one quoting rule, both engines in one process.

The rule (issue 12's quoter), written the way each engine's user writes it: on **every**
book update and trade, quote one post-only (GTX) bid ``K`` ticks below the best bid and
one ask ``K`` ticks above the best ask; an order off its target is cancelled once
acknowledged, a new one is sent where no order (pending or live, not being cancelled)
sits at the target. 10 ms order latencies (10.0005 ms: off the ms grid, see
docs/crosscheck.md), risk-averse queue, whole-order fills, no fees.

- makerlab: an ``async`` handler on the L2 book feed and on the trades feed
  (``Replayer.from_archive`` over an archive converted here from the raw capture at the
  requested depth; its clocks are hftbacktest's, checked as in
  ``tests/sim/test_crosscheck_hftbacktest.py``);
- hftbacktest: a numba loop on ``wait_next_feed`` over its own conversion of the capture.

Also timed: the tutorial's market maker (``examples/market_maker.py 0``, play) against its
numba equivalent (``bench_hftbacktest.py``), and a replay where a no-op handler is
subscribed to every book update and trade (events/s). Every figure is the best of
``--repeat`` warm runs (the first, cold run is not counted), in wall time and in CPU time
(the steadier of the two on a shared machine: both engines run on one thread). Fills are
compared one for one (side, price tick, exchange time to the ns). Captures: the bundled
``data/raw/binance`` USD-M files (skipped cleanly when a file or hftbacktest is absent).

    python bench/bench_quoter.py [--repeat N] [--depths 20 400] [--capture btc eth]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import io
import os
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
from numba import njit

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
RAW = REPO / "data" / "raw" / "binance"
CAPTURES = {"btc": (RAW / "usdm_btcusdt_20240808.gz", "BTCUSDT", 0.1, 0.002),
            "eth": (RAW / "usdm_ethusdt_20240808.gz", "ETHUSDT", 0.01, 0.04)}
EXC = "binance"
K = 1  # ticks away from the touch
LATENCY_NS = 10_000_500
try:
    from hftbacktest import BUY, CANCELED, FILLED, GTX, LIMIT
except ImportError:  # main() says so
    BUY, CANCELED, FILLED, GTX, LIMIT = 1, 2, 3, 1, 0


class Times(NamedTuple):
    """Wall and CPU seconds of one run (CPU time is the steadier figure on a shared
    machine: both engines run on one thread)."""

    wall: float
    cpu: float


@contextlib.contextmanager
def timed(out: list[Times]) -> Any:
    """Append the wall and CPU time of the ``with`` body to ``out``."""
    w0, c0 = time.perf_counter(), time.process_time()
    yield
    out.append(Times(time.perf_counter() - w0, time.process_time() - c0))


# ---- hftbacktest ----------------------------------------------------------------------


@njit
def _record_fills(hbt, out, n):
    it = hbt.orders(0).values()
    while it.has_next():
        o = it.get()
        if o.status == FILLED:
            out[n, 0] = o.exch_timestamp
            out[n, 1] = 1 if o.side == BUY else -1
            out[n, 2] = o.price_tick
            n += 1
    hbt.clear_inactive_orders(0)
    return n


@njit
def _requote(hbt, k, qty, oid):
    d = hbt.depth(0)
    bid, ask = d.best_bid_tick - k, d.best_ask_tick + k
    have_bid = have_ask = False
    it = hbt.orders(0).values()
    while it.has_next():
        o = it.get()
        if o.req == CANCELED:
            continue
        if o.price_tick == (bid if o.side == BUY else ask):
            have_bid = have_bid or o.side == BUY
            have_ask = have_ask or o.side != BUY
        elif o.cancellable:
            hbt.cancel(0, o.order_id, False)
    if not have_bid:
        oid += 1
        hbt.submit_buy_order(0, oid, bid * d.tick_size, qty, GTX, LIMIT, False)
    if not have_ask:
        oid += 1
        hbt.submit_sell_order(0, oid, ask * d.tick_size, qty, GTX, LIMIT, False)
    return oid


@njit
def _quote_every_event(hbt, start_ns, k, qty, out, counts):
    n, oid, rc = 0, 0, 2
    while rc == 2 or rc == 0:
        rc = hbt.wait_next_feed(False, 60_000_000_000)
        if rc != 2:
            continue
        counts[0] += 1
        n = _record_fills(hbt, out, n)
        if hbt.current_timestamp >= start_ns:
            oid = _requote(hbt, k, qty, oid)
    n = _record_fills(hbt, out, n)
    counts[1], counts[2] = oid, rc
    return n


def hbt_convert(raw: Path) -> np.ndarray:
    from hftbacktest.data.utils import binancefutures

    with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return binancefutures.convert(str(raw), output_filename=None, combined_stream=True)


def hbt_run(events: np.ndarray, start_ns: int, tick: float, qty: float
            ) -> tuple[Times, list[tuple[int, int, int]], int]:
    """One warm-able run: (times, fills (ts, side, tick), strategy calls)."""
    from hftbacktest import BacktestAsset, HashMapMarketDepthBacktest

    asset = (BacktestAsset().data([events]).linear_asset(1.0)
             .constant_order_latency(LATENCY_NS, LATENCY_NS).risk_adverse_queue_model()
             .no_partial_fill_exchange().trading_value_fee_model(0.0, 0.0)
             .tick_size(tick).lot_size(0.001))
    hbt = HashMapMarketDepthBacktest([asset])
    out, counts = np.zeros((400_000, 3), np.int64), np.zeros(3, np.int64)
    times: list[Times] = []
    with timed(times):
        n = _quote_every_event(hbt, start_ns, K, qty, out, counts)
    hbt.close()
    return times[0], [tuple(int(x) for x in row) for row in out[:n]], int(counts[0])


def hbt_start(events: np.ndarray) -> int:
    """The REST snapshot's local time: both engines quote from there on."""
    snap = events[(events["ev"] & 0xFF) == 4]
    return int(snap["local_ts"].max())


def check_local_clock(events: np.ndarray, trades: Any) -> None:
    """hftbacktest's local clock is ours (``from_archive`` shifts the recorded one as its
    converter does; see docs/crosscheck.md)."""
    from hftbacktest import EXCH_EVENT

    theirs = events[((events["ev"] & 0xFF) == 2) & ((events["ev"] & EXCH_EVENT) != 0)]
    if not np.array_equal(theirs["local_ts"], trades.local_ts):
        raise RuntimeError("hftbacktest's local clock is not makerlab's")


# ---- makerlab -------------------------------------------------------------------------


def convert_archive(raw: Path, depth: int, root: Path) -> Path:
    """``raw`` converted by makerlab at ``depth`` into ``root/depth<depth>`` (once)."""
    from makerlab.data.convert import convert

    out = root / f"{raw.stem}_depth{depth}"
    if not out.exists():
        convert("binance", [raw], out, depth=depth, progress=False)
    return out


def makerlab_replayer(archive: Path, ticker: str, depth: int, events: np.ndarray) -> Any:
    """A Replayer of ``archive``, on hftbacktest's clocks (see docs/crosscheck.md), loaded
    whole as hftbacktest's (a streamed replay's ``trade_tape`` is its current hour only)."""
    from makerlab.sim import Latencies, Replayer
    from makerlab.sim.matching import NoPartialFills
    from makerlab.sim.queue import RiskAverseQueue

    lat = {c: 0 for c in Latencies if c is not Latencies.NULL}
    for c in (Latencies.REQ_PRIVATE, Latencies.ACK_PRIVATE, Latencies.FEED_PRIVATE):
        lat[c] = LATENCY_NS / 1e6
    rep = Replayer.from_archive({EXC: [ticker]}, "2024-08-08:23", "2024-08-09:00",
                                path=archive, depth=depth, maker_fees=0.0, taker_fees=0.0,
                                latencies=lat, queue_model=RiskAverseQueue(),
                                fill_model=NoPartialFills(), stream=False)
    check_local_clock(events, rep.trade_tape(EXC, ticker))
    return rep


class Quoter:
    """The rule as a makerlab user writes it: one async handler for books and trades."""

    def __init__(self, rep: Any, ticker: str, tick: float, qty: float, start_ns: int,
                 lob_id: str) -> None:
        self.rep, self.oms, self.ticker = rep, rep.get_oms(), ticker
        self.start_ms = start_ns / 1e6
        self.tick, self.qty = Decimal(str(tick)), Decimal(str(qty))
        self.lob = rep.get_feed().get_feed(lob_id)
        self.cancel_sent: set[str] = set()
        self.calls = 0

    async def on_event(self, _: Any) -> None:
        self.calls += 1
        if self.rep.time() < self.start_ms:
            return
        bid, ask = self.lob.get_bid(), self.lob.get_ask()
        if bid != bid or ask != ask:
            return
        orders = self.oms.orders_peek(EXC)
        await self.side(orders.get_bid_orders(self.ticker), 1, bid - K * float(self.tick))
        await self.side(orders.get_ask_orders(self.ticker), -1, ask + K * float(self.tick))

    async def side(self, orders: list, side: int, target: float) -> None:
        price = self.oms.rounded_price(EXC, self.ticker, target)
        have = False
        for o in orders:
            if o.cloid in self.cancel_sent:
                continue
            if o.price == price:
                have = True
            elif o.ord_status.value in ("NEW", "PARTIAL"):
                self.cancel_sent.add(o.cloid)
                await self.oms.cancel_order(EXC, self.ticker, cloid=o.cloid)
        if not have:
            await self.oms.limit_order(EXC, self.ticker, side * self.qty, price, tif="GTX")


def makerlab_run(make: Callable[[], Any], ticker: str, tick: float, qty: float,
                 start_ns: int, depth: int) -> tuple[Times, list[tuple[int, int, int]], int]:
    """One replay of the quoter: (play times, fills (ts, side, tick), handler calls)."""
    rep = make()
    times: list[Times] = []

    async def main() -> Quoter:
        feed = rep.get_feed()
        lob_id = await feed.add_l2_book_feed(EXC, ticker, depth=depth, buffer=10)
        quoter = Quoter(rep, ticker, tick, qty, start_ns, lob_id)
        await feed.add_handler_to_feed(lob_id, quoter.on_event)
        await feed.add_trades_feed(EXC, ticker, handler=quoter.on_event, buffer=10)
        with timed(times):
            await rep.play(progress=False)
        return quoter

    quoter = asyncio.run(main())
    fills = [(int(f["ts"]), int(f["dir"]), round(float(f["price"]) / tick)) for f in rep.fills]
    return times[0], fills, quoter.calls


def noop_run(make: Callable[[], Any], ticker: str, depth: int) -> tuple[Times, int, int]:
    """A no-op handler on every book update and trade: (play times, events, calls)."""
    rep = make()
    calls = [0]
    times: list[Times] = []

    async def noop(_: Any) -> None:
        calls[0] += 1

    async def main() -> None:
        feed = rep.get_feed()
        await feed.add_l2_book_feed(EXC, ticker, depth=depth, buffer=10, handler=noop)
        await feed.add_trades_feed(EXC, ticker, handler=noop, buffer=10)
        with timed(times):
            await rep.play(progress=False)

    asyncio.run(main())
    return times[0], rep.n_events, calls[0]


# ---- comparison and report ------------------------------------------------------------


def agreement(ours: list[tuple[int, int, int]], theirs: list[tuple[int, int, int]]) -> int:
    """Fills equal in exchange time (ns), side and price tick, paired one for one."""
    from collections import Counter

    return sum((Counter(ours) & Counter(theirs)).values())


def best(runs: int, run: Callable[[], tuple]) -> tuple:
    """The fastest of ``runs`` warm calls by wall time, with the least CPU time of them
    (after one cold call that is not counted)."""
    run()
    results = [run() for _ in range(runs)]
    fastest = min(results, key=lambda r: r[0].wall)
    return (Times(fastest[0].wall, min(r[0].cpu for r in results)), *fastest[1:])


def bench_capture(name: str, depths: list[int], repeat: int, root: Path) -> list[str]:
    raw, ticker, tick, qty = CAPTURES[name]
    if not raw.exists():
        return [f"{name}: {raw} absent, skipped"]
    events = hbt_convert(raw)
    start_ns = hbt_start(events)
    hbt, theirs, hbt_calls = best(repeat, lambda: hbt_run(events, start_ns, tick, qty))
    lines = [f"{name} {ticker}: hftbacktest {hbt.wall:.3f} s wall, {hbt.cpu:.3f} s CPU "
             f"({hbt_calls:,} strategy calls, {len(theirs)} fills)"]
    for depth in depths:
        archive = convert_archive(raw, depth, root)

        def make(archive: Path = archive, depth: int = depth) -> Any:
            return makerlab_replayer(archive, ticker, depth, events)

        ours_t, ours, calls = best(repeat, lambda make=make, depth=depth: makerlab_run(
            make, ticker, tick, qty, start_ns, depth))
        same = agreement(ours, theirs)
        lines.append(f"  depth {depth:>3}: makerlab {ours_t.wall:.3f} s wall = "
                     f"{ours_t.wall / hbt.wall:.2f}x hftbacktest, {ours_t.cpu:.3f} s CPU = "
                     f"{ours_t.cpu / hbt.cpu:.2f}x; {calls:,} handler calls "
                     f"({ours_t.cpu / calls * 1e6:.1f} us CPU each); fills {len(ours)} vs "
                     f"{len(theirs)}, {same} identical")
        noop, n_events, ncalls = best(repeat, lambda make=make, depth=depth: noop_run(
            make, ticker, depth))
        lines.append(f"             no-op handler: {noop.wall:.3f} s wall, {noop.cpu:.3f} s "
                     f"CPU, {n_events:,} events ({n_events / noop.cpu:,.0f} events/s CPU), "
                     f"{ncalls:,} handler calls ({ncalls / noop.cpu:,.0f}/s)")
    return lines


def bench_tutorial(repeat: int) -> list[str]:
    sys.path.insert(0, str(HERE))
    from bench_hftbacktest import convert, run_once
    from bench_replay import run_market_maker

    data, _ = convert()
    run_once(data)  # compiles
    numba = [run_once(data) for _ in range(repeat)]
    c = Times(min(r[0] for r in numba), min(r[2] for r in numba))
    runs = [run_market_maker() for _ in range(repeat + 1)][1:]
    b = min(runs, key=lambda r: r["play_s"])
    cpu = min(r["play_cpu_s"] for r in runs)
    return [f"tutorial market maker: play {b['play_s']:.3f} s wall (saving the run record "
            f"{b['save_s']:.3f} s of it), {cpu:.3f} s CPU vs numba {c.wall:.3f} s wall, "
            f"{c.cpu:.3f} s CPU = {b['play_s'] / c.wall:.2f}x wall "
            f"({(b['play_s'] - b['save_s']) / c.wall:.2f}x without the save), "
            f"{cpu / c.cpu:.2f}x CPU"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, default=3, help="best of N warm runs")
    parser.add_argument("--depths", type=int, nargs="+", default=[20, 400])
    parser.add_argument("--capture", nargs="+", default=list(CAPTURES), choices=CAPTURES)
    parser.add_argument("--no-tutorial", action="store_true")
    args = parser.parse_args()
    try:
        import hftbacktest  # noqa: F401
    except ImportError:
        print("hftbacktest not importable: `pip install -e '.[test]'`; skipped")
        return 0
    load = os.getloadavg()[0]
    print(f"best of {args.repeat} warm runs; load average {load:.2f} on {os.cpu_count()} cores")
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.capture:
            print("\n".join(bench_capture(name, args.depths, args.repeat, Path(tmp))),
                  flush=True)
    if not args.no_tutorial:
        print("\n".join(bench_tutorial(args.repeat)))
    print(f"load average after: {os.getloadavg()[0]:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
