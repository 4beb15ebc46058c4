"""Replay throughput (events/s, wall time, peak memory; not a test).

(a) replay with no strategy: every market row of the bundled archive's hour (Binance USD-M
    and spot BTCUSDT, depth 20), **tiled in time** ``TILES`` times in memory (each copy
    shifted past the previous one) so fixed costs do not dominate. Nobody subscribes and
    nothing rests, so no row needs Python: engines are caught up lazily and the equity
    stamps (one per second of data) are written in bulk.
(b) the tutorial's market maker (``examples/market_maker.py 0``, unchanged): a Python async
    handler on every book update of the quoted market (Binance USD-M BTCUSDT), the
    reference market (Binance spot) buffered, zero latencies.

Events are market-data rows on the merged timeline (exchange-time rows of every tape plus
local-time rows of subscribed tapes). ``play`` is the replay alone (what hftbacktest's
``bench_hftbacktest`` times on its side); ``total`` adds archive loading and building the
Replayer. Peak memory is the process's peak RSS after the run (it only grows) and, for
(a), the tapes' bytes. The machine is shared: run it a few times and take the best.

    python bench/bench_replay.py [--tiles N] [--repeat N]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import io
import os
import resource
import runpy
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
ARCHIVE = Path(os.environ.get("MAKERLAB_ARCHIVE", REPO / "data" / "archive"))
HOUR = "2024-08-08:23"
MARKETS = {"binance": ["BTCUSDT"], "binance_spot": ["BTCUSDT"]}
TILES = 20


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _tiled(tape: Any, tiles: int, shift_ns: int) -> Any:
    """``tape`` repeated ``tiles`` times, copy ``k`` shifted by ``k * shift_ns``."""
    from dataclasses import fields, replace

    offsets = np.repeat(np.arange(tiles, dtype=np.int64) * shift_ns, len(tape))
    out = {}
    for f in fields(tape):
        value = getattr(tape, f.name)
        if isinstance(value, np.ndarray):
            reps = (tiles,) + (1,) * (value.ndim - 1)
            value = np.tile(value, reps)
            if f.name.endswith("_ts"):
                value += offsets
        out[f.name] = value
    return replace(tape, **out)


def load_tiled(tiles: int = TILES) -> tuple[list[Any], list[Any], int]:
    """The archive hour's tapes tiled ``tiles`` times: ``(books, trades, data span ns)``."""
    from makerlab.sim import Replayer

    base = Replayer.from_archive(MARKETS, HOUR, HOUR, path=ARCHIVE)
    tapes = [*base.books, *base.trades]
    lo = min(int(t.exchange_ts.min()) for t in tapes)
    hi = max(int(max(t.exchange_ts.max(), t.local_ts.max())) for t in tapes)
    shift = hi - lo + 1_000_000_000  # one second between copies
    books = [_tiled(t, tiles, shift) for t in base.books]
    trades = [_tiled(t, tiles, shift) for t in base.trades]
    return books, trades, tiles * shift


def bench_no_strategy(tiles: int = TILES, row_by_row: bool = False) -> dict[str, float]:
    """(a): ``{'events', 'play_s', 'total_s', 'data_s', 'tape_mb', 'stamps'}``.

    ``row_by_row`` steps every engine through every row (``Replayer.ROW_BY_ROW``, the
    reference path): what a row costs when an engine has to look at it.
    """
    from makerlab.sim import Replayer

    books, trades, span = load_tiled(tiles)
    t0 = time.perf_counter()
    rep = Replayer.from_tapes(books, trades)
    rep.ROW_BY_ROW = row_by_row
    t1 = time.perf_counter()
    asyncio.run(rep.play(progress=False))
    t2 = time.perf_counter()
    tape_bytes = sum(a.nbytes for t in [*books, *trades] for a in vars(t).values()
                     if isinstance(a, np.ndarray))
    out = {"events": rep.n_events, "play_s": t2 - t1, "total_s": t2 - t0,
           "data_s": span / 1e9, "tape_mb": tape_bytes / 2**20, "stamps": len(rep.stamps)}
    del rep, books, trades
    gc.collect()  # the Replayer holds reference cycles: free its tapes before the next run
    return out


def bench_market_maker() -> tuple[float, int]:
    """(b)'s play wall time (s) and events: the figures to put next to hftbacktest's
    ``bench_hftbacktest()`` (which also excludes data preparation)."""
    figures = run_market_maker()
    return figures["play_s"], int(figures["events"])


def run_market_maker() -> dict[str, float]:
    """(b): ``{'events', 'play_s', 'play_cpu_s', 'save_s', 'total_s', 'book_updates',
    'fills'}``.

    ``save_s`` is the part of ``play_s`` spent saving the run record (the tutorial passes
    ``run_dir``, so ``play`` ends by writing it; hftbacktest's side writes nothing).
    """
    from makerlab.sim import Replayer

    played: dict[str, float] = {"save": 0.0}
    original, original_save = Replayer.play, Replayer.save

    async def timed_play(self: Replayer, progress: bool = True) -> None:
        t0, c0 = time.perf_counter(), time.process_time()
        await original(self, progress=False)
        played["s"], played["cpu"] = time.perf_counter() - t0, time.process_time() - c0

    def timed_save(self: Replayer, *args: Any, **kwargs: Any) -> Any:
        t0 = time.perf_counter()
        try:
            return original_save(self, *args, **kwargs)
        finally:
            played["save"] += time.perf_counter() - t0

    argv, sys.argv = sys.argv, [str(REPO / "examples" / "market_maker.py"), "0"]
    os.environ.setdefault("MAKERLAB_ARCHIVE", str(ARCHIVE))
    Replayer.play, Replayer.save = timed_play, timed_save  # type: ignore[method-assign]
    t0 = time.perf_counter()
    try:
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            scope = runpy.run_path(sys.argv[0], run_name="__main__")
    finally:
        sys.argv = argv
        Replayer.play, Replayer.save = original, original_save  # type: ignore[method-assign]
    rep = scope["replayer"]
    return {"events": rep.n_events, "play_s": played["s"], "play_cpu_s": played["cpu"],
            "save_s": played["save"],
            "total_s": time.perf_counter() - t0, "fills": len(rep.fills),
            "book_updates": len(rep.book_tape("binance", "BTCUSDT"))}


def _best(runs: list[dict[str, float]]) -> dict[str, float]:
    return min(runs, key=lambda r: r["play_s"])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tiles", type=int, default=TILES)
    parser.add_argument("--repeat", type=int, default=3, help="best of N runs")
    args = parser.parse_args()
    if not (ARCHIVE / "kind=book_snapshot").is_dir():
        print(f"no archive at {ARCHIVE}; run `make demo` or convert data/raw first")
        return 1
    load = os.getloadavg()[0]
    print(f"best of {args.repeat}; load average {load:.2f} on {os.cpu_count()} cores")
    mm = _best([run_market_maker() for _ in range(args.repeat)])
    print(f"(b) tutorial market maker     {mm['events']:>12,.0f} events  play "
          f"{mm['play_s']:6.3f} s  {mm['events'] / mm['play_s']:>12,.0f} events/s  "
          f"(of which saving the run record {mm['save_s']:.3f} s; total with loading "
          f"{mm['total_s']:.2f} s; {mm['book_updates']:,} handler "
          f"book updates, {mm['fills']:.0f} fills)  peak RSS {_peak_rss_mb():,.0f} MB")
    a = _best([bench_no_strategy(args.tiles) for _ in range(args.repeat)])
    print(f"(a) replay, no strategy       {a['events']:>12,.0f} events  play "
          f"{a['play_s']:6.3f} s  {a['events'] / a['play_s']:>12,.0f} events/s  "
          f"(with Replayer build {a['events'] / a['total_s']:,.0f}/s)  peak RSS "
          f"{_peak_rss_mb():,.0f} MB, tapes {a['tape_mb']:,.0f} MB")
    rbr = bench_no_strategy(args.tiles, row_by_row=True)
    print(f"    same, ROW_BY_ROW reference  {rbr['events']:>12,.0f} events  play "
          f"{rbr['play_s']:6.3f} s  {rbr['events'] / rbr['play_s']:>12,.0f} events/s  "
          "(every exchange row stepped through its engine in Python; one run)")
    print(f"    (a) data: {HOUR} hour of {', '.join(MARKETS)} BTCUSDT depth 20, tiled "
          f"{args.tiles}x in time in memory ({a['data_s'] / 3600:.1f} h of data, "
          f"{a['stamps']:,.0f} equity stamps)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
