"""Replay throughput on the bundled archive (events/s; not a test).

(a) replay with no strategy: every market row through the timeline and the matching
    engines, nothing delivered to Python handlers;
(b) the tutorial's market maker (``examples/market_maker.py 0``): a Python async handler on
    every quote-market book update, reference feeds buffered.

Events are market-data rows on the merged timeline (exchange-time and local-time rows
both count). Times exclude interpreter start-up; (b) includes archive loading.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import os
import runpy
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
ARCHIVE = Path(os.environ.get("MAKERLAB_ARCHIVE", REPO / "data" / "archive"))
HOUR = "2024-08-08:23"


def bench_no_strategy() -> tuple[int, float]:
    from makerlab.sim import Replayer

    rep = Replayer.from_archive({"binance": ["BTCUSDT"], "binance_spot": ["BTCUSDT"]},
                                HOUR, HOUR, path=ARCHIVE)
    t0 = time.perf_counter()
    asyncio.run(rep.play(progress=False))
    return rep.n_events, time.perf_counter() - t0


def bench_market_maker() -> tuple[int, float]:
    argv, sys.argv = sys.argv, [str(REPO / "examples" / "market_maker.py"), "0"]
    os.environ.setdefault("MAKERLAB_ARCHIVE", str(ARCHIVE))
    t0 = time.perf_counter()
    try:
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            scope = runpy.run_path(sys.argv[0], run_name="__main__")
    finally:
        sys.argv = argv
    return scope["replayer"].n_events, time.perf_counter() - t0


def main() -> int:
    if not (ARCHIVE / "kind=book_snapshot").is_dir():
        print(f"no archive at {ARCHIVE}; run `make demo` or convert data/raw first")
        return 1
    for name, bench in (("(a) replay, no strategy", bench_no_strategy),
                        ("(b) tutorial market maker", bench_market_maker)):
        n, seconds = bench()
        print(f"{name:28s} {n:>9,d} events  {seconds:6.2f} s  {n / seconds:>12,.0f} events/s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
