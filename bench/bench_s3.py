"""Archive loads from a local disk and from S3 (moto's server on 127.0.0.1), side by side.

Usage::

    python bench/bench_s3.py [ARCHIVE] [--synthetic] [--repeat N]

ARCHIVE (default ``data/archive``; ``--synthetic``: bench_load's generated 3-hour archive)
is mirrored object for object into a bucket of a local moto server (``moto[server]``, the
test extra), started here in its own process with the tests' helper (``tests/s3_server.py``:
credentials in the environment, signatures checked). Each dataset is then loaded with the
engine's array loaders from the disk and from ``s3://``, every load in a fresh child
process: events (level updates for deltas, rows otherwise), best wall time of ``--repeat``
loads, events/s, the requests the server answered for one load, and how far the child's
RSS rose during a load (sampled every 2 ms; the result arrays plus transient buffers).

What the S3 column measures: makerlab's object-store read path (one listing, manifest
shards, hour files read with their listed size, up to 16 at once) against moto, a Python
server on loopback. moto's own CPU is shared with the client on this machine, and there is
no network latency: it says what the read path costs, not what a bucket in a region gives.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

import psutil
import pyarrow.fs as pafs

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))  # the tests' moto server helper

from bench_load import event_count, loader, synthetic_archive  # noqa: E402

from makerlab.data.archive import list_archive  # noqa: E402
from makerlab.data.storage import resolve  # noqa: E402
from s3_server import S3Server  # noqa: E402


def upload(local: Path, url: str) -> int:
    """Mirror the archive at ``local`` into ``url``, file for file; the bytes copied."""
    source, target = resolve(str(local)), resolve(url)
    copied = 0
    for info in source.listing(source.base):
        if info.type == pafs.FileType.File:
            data = source.read_bytes(info.path)
            target.write_bytes(target.path(source.rel(info.path)), data)
            copied += len(data)
    return copied


def child(root: str, kind: str, exchange: str, symbol: str, depth: int, repeat: int) -> None:
    """Load one dataset ``repeat`` times in this fresh process; print the figures as JSON."""
    row = argparse.Namespace(kind=kind, exchange=exchange, symbol=symbol, depth=depth)
    _, load = loader(root, row)
    best, events, peak = float("inf"), 0, 0
    for _ in range(repeat):
        started = time.perf_counter()
        result, grew = _peak_growth(load)
        best = min(best, time.perf_counter() - started)
        events, peak = event_count(result), max(peak, grew)
        result = None
    print(json.dumps({"events": events, "seconds": best, "peak_mb": peak / 1e6}))


def _peak_growth(load: Callable[[], object]) -> tuple[object, int]:
    """``load()`` and how far this process's RSS rose above its level before, sampled
    every 2 ms by a thread."""
    process = psutil.Process()
    gc.collect()
    base = process.memory_info().rss
    peak, done = [base], threading.Event()

    def sample() -> None:
        while not done.wait(0.002):
            peak[0] = max(peak[0], process.memory_info().rss)

    sampler = threading.Thread(target=sample)
    sampler.start()
    try:
        result = load()
    finally:
        done.set()
        sampler.join()
    return result, max(peak[0], process.memory_info().rss) - base


def measure(root: str, row, repeat: int, server: S3Server | None) -> dict[str, float]:
    """The child's figures for ``row`` loaded from ``root``, and the server's requests for
    one load (when ``server`` is given)."""
    argv = [sys.executable, __file__, "--child", root, row.kind, row.exchange, row.symbol,
            str(int(row.depth)), str(repeat)]
    env = {**os.environ, **(server.env if server else {})}
    if server is None:
        figures = json.loads(subprocess.run(argv, env=env, check=True, capture_output=True,
                                            text=True).stdout)
        return {**figures, "requests": 0}
    with server.requests() as seen:
        figures = json.loads(subprocess.run(argv, env=env, check=True, capture_output=True,
                                            text=True).stdout)
    return {**figures, "requests": len(seen) / repeat}


def compare(local: Path, url: str, repeat: int, server: S3Server) -> None:
    datasets = list_archive(local).groupby(["kind", "exchange", "symbol", "depth"],
                                           as_index=False).agg(bytes=("bytes", "sum"))
    print(f"{'dataset':<38} {'MB':>6} {'events':>10} | {'disk s':>7} {'M ev/s':>7} "
          f"{'peak MB':>7} | {'s3 s':>7} {'M ev/s':>7} {'peak MB':>7} {'req':>5} | "
          f"{'s3/disk':>7}")
    for row in datasets.itertuples():
        disk = measure(str(local), row, repeat, None)
        remote = measure(url, row, repeat, server)
        assert remote["events"] == disk["events"], (row, disk, remote)
        label = f"{loader(str(local), row)[0]} {row.exchange}/{row.symbol}"
        print(f"{label:<38} {row.bytes / 1e6:>6.2f} {disk['events']:>10,} | "
              f"{disk['seconds']:>7.3f} {disk['events'] / disk['seconds'] / 1e6:>7.2f} "
              f"{disk['peak_mb']:>7.1f} | {remote['seconds']:>7.3f} "
              f"{remote['events'] / remote['seconds'] / 1e6:>7.2f} {remote['peak_mb']:>7.1f} "
              f"{remote['requests']:>5.0f} | {remote['seconds'] / disk['seconds']:>6.1f}x")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("archive", nargs="?", default=str(REPO / "data" / "archive"))
    parser.add_argument("--synthetic", action="store_true",
                        help="bench_load's generated 3-hour archive instead")
    parser.add_argument("--repeat", type=int, default=3, help="loads per dataset (best kept)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="makerlab-bench-s3-") as tmp:
        local = Path(args.archive)
        if args.synthetic:
            local = Path(tmp) / "archive"
            synthetic_archive(local)
        server = S3Server.start(Path(tmp) / "moto.log")
        try:
            os.environ.update(server.env)
            url = f"{server.bucket()}/archive"
            started = time.perf_counter()
            copied = upload(local, url)
            print(f"archive {'SYNTHETIC (bench_load)' if args.synthetic else local}: "
                  f"{copied / 1e6:.1f} MB uploaded to moto at {server.endpoint} in "
                  f"{time.perf_counter() - started:.1f} s; best of {args.repeat} loads, "
                  "each dataset in a fresh process")
            compare(local, url, args.repeat, server)
        finally:
            server.stop()
    return 0


if __name__ == "__main__":
    if sys.argv[1:2] == ["--child"]:
        root, kind, exchange, symbol, depth, repeat = sys.argv[2:8]
        child(root, kind, exchange, symbol, int(depth), int(repeat))
    else:
        raise SystemExit(main())
