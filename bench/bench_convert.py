"""Conversion throughput of the Binance raw-capture converter, vs hftbacktest's.

Figures: level updates/s (depth diff levels, REST snapshot excluded) and depth messages/s,
end to end (gzip read, JSON parse, sync, delta table, depth-20 snapshots, trades, bbo),
best of ``REPEAT`` warm runs (numba's cache is loaded by a first run). The machine's load
average is printed: on shared cores, compare runs made under similar load.
"""

from __future__ import annotations

import contextlib
import io
import os
import time
from pathlib import Path

from makerlab.data.convert import binance

FILE = Path(__file__).resolve().parents[1] / "data" / "raw" / "binance" / "usdm_btcusdt_20240808.gz"
REPEAT = 5


def best_of(run) -> float:
    """Fastest wall time of ``REPEAT`` calls of ``run``, in seconds."""
    times = []
    for _ in range(REPEAT):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    (converted,) = binance.read([FILE], progress=False)  # warm-up
    levels = converted.stats["level_updates"]
    messages = converted.stats["depth_messages_applied"]
    ours = best_of(lambda: binance.read([FILE], progress=False))
    print(f"file: {FILE.name}: {levels:,} level updates in {messages:,} depth messages")
    print("load average (1, 5, 15 min): " + ", ".join(f"{x:.2f}" for x in os.getloadavg()))
    print(f"makerlab    {ours:6.3f} s  {levels / ours / 1e6:5.2f} M level updates/s  "
          f"{messages / ours:9,.0f} messages/s")
    try:
        from hftbacktest.data.utils import binancefutures
    except ImportError:
        print("hftbacktest not importable: no comparison")
        return
    with contextlib.redirect_stdout(io.StringIO()):  # it prints its latency corrections
        theirs = best_of(lambda: binancefutures.convert(str(FILE), output_filename=None))
    print(f"hftbacktest {theirs:6.3f} s  {levels / theirs / 1e6:5.2f} M level updates/s  "
          f"{messages / theirs:9,.0f} messages/s")
    print(f"ratio makerlab/hftbacktest: {theirs / ours:.2f}x")


if __name__ == "__main__":
    main()
