"""Archive loads from a local disk and from S3 (moto's server on 127.0.0.1), side by side.

Usage::

    python bench/bench_s3.py [ARCHIVE] [--synthetic] [--repeat N]

ARCHIVE (default ``data/archive``; ``--synthetic``: bench_load's generated 3-hour archive)
is mirrored object for object into a bucket of a local moto server (``moto[server]``, the
test extra), started here in its own process with the tests' helper (``tests/s3_server.py``:
credentials in the environment, signatures checked). Each dataset is then loaded with the
engine's array loaders from the disk and from ``s3://``, every load in a fresh child
process: events (level updates for deltas, rows otherwise), best wall time of ``--repeat``
loads, events/s, the requests the server answered per load, and memory as bench_load
measures it: the peak of numpy's allocations during one load (tracemalloc: the result
arrays and their temporaries) and the peak of Arrow's memory pool over the child's loads
(the Parquet bytes and decoded tables; the same for every load of one dataset).

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
import time
import tracemalloc
from pathlib import Path

import pyarrow as pa
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
    """Load one dataset ``repeat`` times in this fresh process (timed), then once more
    under tracemalloc; print the figures as JSON."""
    row = argparse.Namespace(kind=kind, exchange=exchange, symbol=symbol, depth=depth)
    _, load = loader(root, row)
    best, events = float("inf"), 0
    for _ in range(repeat):
        gc.collect()
        started = time.perf_counter()
        result = load()
        best = min(best, time.perf_counter() - started)
        events, result = event_count(result), None
    gc.collect()
    tracemalloc.start()
    result = load()
    numpy_peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    print(json.dumps({"events": events, "seconds": best, "numpy_mb": numpy_peak / 1e6,
                      "arrow_mb": pa.default_memory_pool().max_memory() / 1e6}))


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
    return {**figures, "requests": len(seen) / (repeat + 1)}


def compare(local: Path, url: str, repeat: int, server: S3Server) -> None:
    datasets = list_archive(local).groupby(["kind", "exchange", "symbol", "depth"],
                                           as_index=False).agg(bytes=("bytes", "sum"))
    print(f"{'dataset':<38} {'MB':>6} {'events':>10} | {'disk s':>7} {'M ev/s':>7} "
          f"{'np/arrow MB':>12} | {'s3 s':>7} {'M ev/s':>7} {'np/arrow MB':>12} {'req':>5} | "
          f"{'s3/disk':>7}")
    for row in datasets.itertuples():
        disk = measure(str(local), row, repeat, None)
        remote = measure(url, row, repeat, server)
        assert remote["events"] == disk["events"], (row, disk, remote)
        label = f"{loader(str(local), row)[0]} {row.exchange}/{row.symbol}"
        print(f"{label:<38} {row.bytes / 1e6:>6.2f} {disk['events']:>10,} | "
              f"{disk['seconds']:>7.3f} {disk['events'] / disk['seconds'] / 1e6:>7.2f} "
              f"{_memory(disk):>12} | {remote['seconds']:>7.3f} "
              f"{remote['events'] / remote['seconds'] / 1e6:>7.2f} {_memory(remote):>12} "
              f"{remote['requests']:>5.0f} | {remote['seconds'] / disk['seconds']:>6.1f}x")


def _memory(figures: dict[str, float]) -> str:
    return f"{figures['numpy_mb']:.1f}/{figures['arrow_mb']:.1f}"


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
