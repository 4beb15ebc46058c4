"""Replay cost of resting orders far from the touch (wall time, events/s; not a test).

The bundled archive hour (Binance USD-M and spot BTCUSDT, depth 20, about six minutes of
data) replayed with ``N`` GTC orders resting on Binance USD-M BTCUSDT from the first
book on: half bids from 5 % below the best bid down, half asks from 5 % above the best
ask up, one tick apart, so none is ever displayed, traded at or crossed. No strategy
runs and latencies are zero. ``play`` is the whole replay; ``entry`` the part of it spent
sending, matching and acknowledging the ``N`` orders (proportional to ``N``, once);
``rows`` what is left, the cost of the market rows with ``N`` orders resting. Events are
the timeline's market rows. An engine with resting orders steps through every one of its
rows, so ``rows`` is the per-row cost of orders that cannot fill.

    python bench/bench_resting.py [--orders 20 2000 20000] [--repeat N]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import time
from decimal import Decimal
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
ARCHIVE = Path(os.environ.get("MAKERLAB_ARCHIVE", REPO / "data" / "archive"))
HOUR = "2024-08-08:23"
MARKETS = {"binance": ["BTCUSDT"], "binance_spot": ["BTCUSDT"]}
EXC, TICKER = "binance", "BTCUSDT"
ZERO_MS = dict.fromkeys(("req_public", "req_private", "ack_public", "ack_private",
                        "feed_public", "feed_private"), 0)
QTY = Decimal("0.003")
TICK = Decimal("0.1")


def run(n_orders: int) -> dict[str, float]:
    """One replay with ``n_orders`` far orders: ``{'events', 'play_s', 'place_s', 'fills'}``."""
    from makerlab.sim import Replayer

    rep = Replayer.from_archive(MARKETS, HOUR, HOUR, path=ARCHIVE, latencies=ZERO_MS)
    oms, placed = rep.get_oms(), {}

    async def place(_: object) -> None:
        placed["t0"] = time.perf_counter()
        engine = rep.venue.engine(EXC, TICKER)
        bid = Decimal(repr(engine.best(1))) * Decimal("0.95")
        ask = Decimal(repr(engine.best(-1))) * Decimal("1.05")
        for k in range(n_orders):
            step = TICK * (k // 2)
            if k % 2:
                await oms.limit_order(EXC, TICKER, -QTY, (ask + step).quantize(TICK))
            else:
                await oms.limit_order(EXC, TICKER, QTY, (bid - step).quantize(TICK))

    def acknowledged(_: object) -> None:  # after every zero-latency arrival and ack
        placed["s"] = time.perf_counter() - placed["t0"]

    rep.add_callback("place", place)
    rep.add_callback("acknowledged", acknowledged)
    first_book_ms = int(rep.book_tape(EXC, TICKER).exchange_ts[0]) // 1_000_000
    rep.add_to_queue("place", first_book_ms, None)
    rep.add_to_queue("acknowledged", first_book_ms + 1, None)
    t0 = time.perf_counter()
    asyncio.run(rep.play(progress=False))
    play = time.perf_counter() - t0
    resting = len(rep.venue.engine(EXC, TICKER).resting)
    if resting != n_orders:
        raise RuntimeError(f"{resting} of {n_orders} orders rested; the bench is broken")
    return {"events": rep.n_events, "play_s": play, "entry_s": placed["s"],
            "fills": len(rep.fills)}


def best_of(n_orders: int, repeat: int) -> dict[str, float]:
    runs = []
    for _ in range(repeat):
        runs.append(run(n_orders))
        gc.collect()  # the Replayer holds reference cycles: free it before the next run
    return min(runs, key=lambda r: r["play_s"])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--orders", type=int, nargs="+", default=[20, 2_000, 20_000])
    parser.add_argument("--repeat", type=int, default=3, help="best of N runs")
    args = parser.parse_args()
    if not (ARCHIVE / "kind=book_snapshot").is_dir():
        print(f"no archive at {ARCHIVE}; run `make demo` or convert data/raw first")
        return 1
    print(f"best of {args.repeat}; load average {os.getloadavg()[0]:.2f} on "
          f"{os.cpu_count()} cores")
    for n in args.orders:
        best = best_of(n, args.repeat)
        rows = best["play_s"] - best["entry_s"]
        print(f"{n:>7,} resting orders  {best['events']:>8,.0f} events  play "
              f"{best['play_s']:7.3f} s  {best['events'] / best['play_s']:>10,.0f} events/s  "
              f"| entry {best['entry_s']:6.3f} s  rows {rows:7.3f} s "
              f"{best['events'] / rows:>10,.0f} events/s  ({best['fills']:.0f} fills)",
              flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
