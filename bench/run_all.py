"""Run every benchmark in bench/ and print their figures (``make bench``)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

BENCHES = ["bench_convert.py", "bench_load.py", "bench_s3.py", "bench_replay.py",
           "bench_resting.py", "bench_hftbacktest.py", "bench_quoter.py", "bench_floor.py",
           "bench_orderpath.py", "bench_sweep.py", "bench_live_feed.py", "bench_tick_to_order.py"]


def main() -> int:
    here = Path(__file__).resolve().parent
    failed = 0
    for name in BENCHES:
        print(f"\n=== {name} ===", flush=True)
        failed += subprocess.call([sys.executable, str(here / name)]) != 0
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
