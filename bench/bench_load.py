"""Archive load throughput and resident memory of the engine's array loaders.

Usage::

    python bench/bench_load.py [ARCHIVE] [--synthetic] [--repeat N]

ARCHIVE defaults to ``data/archive`` in the repository. When it holds no ``book_delta``
data (or with ``--synthetic``) a realistic synthetic Binance-like archive is generated in
a temporary directory first, and the output says so. Targets: >= 20 M events/s
(level updates/s for deltas, rows/s for trades, bbo and snapshots) and <= 32 resident
bytes per level update.
"""

from __future__ import annotations

import argparse
import gc
import tempfile
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pyarrow as pa

from makerlab.data import arrays
from makerlab.data.archive import list_archive, write_table
from makerlab.data.schema import BOOK_DELTA_SCHEMA, TRADES_SCHEMA, book_snapshot_schema

REPO = Path(__file__).resolve().parents[1]
TARGET_RATE = 20e6
TARGET_BYTES = 32.0
HOUR = 3_600_000_000_000
START = 1_723_161_600_000_000_000 - 2 * HOUR  # 2024-08-08 22:00 UTC


def _rss() -> int | None:
    try:
        import psutil
    except ImportError:
        return None
    return psutil.Process().memory_info().rss


def _measure(load: Callable[[], object], repeat: int) -> tuple[object, float, int]:
    """Best wall time of ``repeat`` loads and the numpy peak bytes of one load.

    tracemalloc sees numpy's allocations, not Arrow's (its own pool): the transient Arrow
    table read from Parquet comes on top and is reported for the whole run at the end.
    """
    best = float("inf")
    result = None
    for _ in range(repeat):
        result = None
        gc.collect()
        t0 = time.perf_counter()
        result = load()
        best = min(best, time.perf_counter() - t0)
    result = None
    gc.collect()
    tracemalloc.start()
    result = load()
    _, numpy_peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return result, best, numpy_peak


def loader(root: Path | str, row) -> tuple[str, Callable[[], object]]:
    """A label and the array loader of the dataset ``row`` (of :func:`list_archive`)."""
    exchange, symbol = row.exchange, row.symbol
    if row.kind == "book_delta":
        return "deltas", lambda: arrays.load_delta_arrays(root, exchange, symbol)
    if row.kind == "trades":
        return "trades", lambda: arrays.load_trade_arrays(root, exchange, symbol)
    if row.kind == "bbo":
        return "bbo", lambda: arrays.load_bbo_arrays(root, exchange, symbol)
    depth = int(row.depth)
    return f"snap{depth}", lambda: arrays.load_snapshot_arrays(root, exchange, symbol, depth)


def event_count(result) -> int:
    """Events in a loaded dataset: level updates for deltas, rows otherwise."""
    return result.n_updates if isinstance(result, arrays.DeltaArrays) else len(result)


def run(root: Path, repeat: int) -> dict[str, float]:
    """Print one line per dataset; return the delta totals."""
    info = list_archive(root)
    datasets = info.groupby(["kind", "exchange", "symbol", "depth"], as_index=False).agg(
        rows=("rows", "sum"), bytes=("bytes", "sum"))
    print(f"{'dataset':<44} {'events':>11} {'load s':>8} {'M ev/s':>8} {'B/event':>8} "
          f"{'np peak MB':>10} {'disk MB':>8}")
    totals = {"updates": 0, "seconds": 0.0, "nbytes": 0, "messages": 0}
    for row in datasets.itertuples():
        label, load = loader(root, row)
        result, seconds, peak = _measure(load, repeat)
        events = event_count(result)
        name = f"{label} {row.exchange}/{row.symbol}"
        print(f"{name:<44} {events:>11,} {seconds:>8.3f} {events / seconds / 1e6:>8.1f} "
              f"{result.nbytes / max(1, events):>8.1f} {peak / 1e6:>10.1f} "
              f"{row.bytes / 1e6:>8.2f}")
        if label == "deltas":
            totals["updates"] += events
            totals["seconds"] += seconds
            totals["nbytes"] += result.nbytes
            totals["messages"] += len(result)
    return totals


def synthetic_archive(root: Path, hours: int = 3, msgs_per_hour: int = 70_000) -> None:
    """Binance USD-M-like BTCUSDT: ~20 msg/s of depth diffs (1-60 levels), trades, depth-20."""
    rng = np.random.default_rng(42)
    n_msg = hours * msgs_per_hour
    levels = np.minimum(rng.geometric(1 / 14, n_msg), 60)
    gaps = rng.exponential(HOUR / msgs_per_hour, n_msg).astype(np.int64) + 1
    ets_msg = START + np.cumsum(gaps)
    lts_msg = ets_msg + rng.integers(1_500_000, 6_000_000, n_msg)
    lts_msg = np.maximum.accumulate(lts_msg)
    seq_end = 5_120_000_000 + np.cumsum(rng.integers(1, 60, n_msg))
    n = int(levels.sum())
    side = np.where(rng.random(n) < 0.5, 1, -1).astype(np.int8)
    mid = np.repeat(61_700 + np.cumsum(rng.normal(0, 0.4, n_msg)), levels)
    price = np.round(mid - side * (0.05 + rng.geometric(0.05, n) * 0.1), 1)
    size = np.round(rng.exponential(1.2, n), 3) * (rng.random(n) > 0.25)
    seq = np.repeat(seq_end, levels)
    deltas = pa.table([np.repeat(ets_msg, levels), np.repeat(lts_msg, levels), seq, seq - 7,
                       seq - 9, side, price, size, np.zeros(n, np.uint8)],
                      schema=BOOK_DELTA_SCHEMA)
    write_table(root, "book_delta", "binance", "BTCUSDT", deltas)
    n_trade = hours * 250_000
    ets = np.sort(rng.integers(START, START + hours * HOUR, n_trade))
    trades = pa.table([ets, ets + 3_000_000, np.round(61_700 + rng.normal(0, 20, n_trade), 1),
                       np.round(rng.exponential(0.05, n_trade), 3),
                       np.where(rng.random(n_trade) < 0.5, 1, -1).astype(np.int8),
                       pa.array(np.arange(n_trade).astype(str))], schema=TRADES_SCHEMA)
    write_table(root, "trades", "binance", "BTCUSDT", trades)
    write_table(root, "book_snapshot", "binance", "BTCUSDT", _snapshots(rng, hours * 36_000))


def _snapshots(rng: np.random.Generator, n: int, depth: int = 20) -> pa.Table:
    ets = START + np.arange(n, dtype=np.int64) * 100_000_000
    mid = 61_700 + np.cumsum(rng.normal(0, 0.4, n))
    ticks = np.arange(depth) * 0.1

    def col(values: np.ndarray) -> pa.Array:
        return pa.FixedSizeListArray.from_arrays(pa.array(np.round(values, 3).ravel()), depth)

    sizes = rng.exponential(1.5, (n, depth))
    return pa.table([ets, ets + 2_000_000, np.arange(n, dtype=np.int64),
                     col(mid[:, None] - 0.05 - ticks), col(sizes),
                     col(mid[:, None] + 0.05 + ticks), col(sizes[:, ::-1])],
                    schema=book_snapshot_schema(depth))


def _has_deltas(root: Path) -> bool:
    return (root / "kind=book_delta").is_dir()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("archive", nargs="?", default=str(REPO / "data" / "archive"))
    parser.add_argument("--synthetic", action="store_true", help="always use synthetic data")
    parser.add_argument("--repeat", type=int, default=3, help="loads per dataset (best kept)")
    args = parser.parse_args()
    root = Path(args.archive)
    with tempfile.TemporaryDirectory(prefix="makerlab-bench-") as tmp:
        if args.synthetic or not _has_deltas(root):
            why = "--synthetic" if args.synthetic else f"no book_delta data in {root}"
            root = Path(tmp)
            t0 = time.perf_counter()
            synthetic_archive(root)
            print(f"SYNTHETIC archive ({why}); generated in {time.perf_counter() - t0:.1f} s")
        else:
            print(f"archive: {root}")
        totals = run(root, args.repeat)
        pool = pa.default_memory_pool()
        print(f"Arrow pool peak over the run: {pool.max_memory() / 1e6:.0f} MB "
              f"({pool.backend_name})")
        rss = _rss()
        print(f"process RSS: {rss / 1e6:.0f} MB (psutil)" if rss is not None
              else "psutil not installed: no RSS figure")
    return _summary(totals)


def _summary(totals: dict[str, float]) -> int:
    if not totals["updates"]:
        print("no book_delta datasets: nothing to compare with the targets")
        return 0
    rate = totals["updates"] / totals["seconds"]
    per_update = totals["nbytes"] / totals["updates"]
    per_message = totals["updates"] / totals["messages"]
    print(f"deltas: {rate / 1e6:.1f} M level updates/s (target >= {TARGET_RATE / 1e6:.0f} M), "
          f"{per_update:.1f} resident bytes/update (target <= {TARGET_BYTES:.0f}), "
          f"{per_message:.1f} updates/message")
    ok = rate >= TARGET_RATE and per_update <= TARGET_BYTES
    print("targets met" if ok else "TARGETS NOT MET")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
