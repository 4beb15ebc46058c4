"""Sweep speed-up: the same sweep of the tutorial market maker, serially, on the process pool
and on Ray.

The sweep: ``examples/market_maker.py 0`` on the bundled archive hour, ``spread_bps`` x
``skew_bps`` (8 configurations by default), each configuration a full run of the script (its
replay and its own PDF report) plus the sweep's statistics and saved record. Each backend
runs in a fresh Python process; the wall time is that of the ``sweep()`` call (pool start-up
and Ray start-up included, the summary report excluded: ``report=False``, the same fixed
cost on every backend). Peak memory is the peak resident set of the whole process tree
(driver, pool workers, Ray's processes), sampled every 0.1 s. The machine's load average is
printed before each run: on a shared machine, measure when it is low.

    python bench/bench_sweep.py              # serial, local (2 workers), ray (2 workers)
    python bench/bench_sweep.py --workers 2 --backends serial local
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from makerlab.sweep.worker import TIMING_COLUMNS

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "examples" / "market_maker.py"
SPACE = {"spread_bps": [4, 6, 8, 10], "skew_bps": [2, 4]}


def peak_rss(stop: threading.Event, out: list[int]) -> None:
    """Sample the RSS of this process and all its descendants until ``stop``."""
    import psutil

    me = psutil.Process()
    peak = 0
    while not stop.wait(0.1):
        total = 0
        for proc in [me, *me.children(recursive=True)]:
            with contextlib.suppress(psutil.Error):  # a process that just ended
                total += proc.memory_info().rss
        peak = max(peak, total)
    out.append(peak)


def run_one(backend: str, workers: int, configs: int) -> dict[str, Any]:
    """One sweep in this process: wall time, peak tree RSS and the statistics."""
    os.environ["MPLBACKEND"] = "Agg"
    from makerlab.sweep import sweep

    space = dict(SPACE)
    if configs > 8:
        space["order_value"] = [200, 300, 400][: -(-configs // 8)]
    stop, peak = threading.Event(), []
    sampler = threading.Thread(target=peak_rss, args=(stop, peak))
    sampler.start()
    started, epoch = time.perf_counter(), time.time()
    with tempfile.TemporaryDirectory() as out:
        result = sweep(SCRIPT, space, args=["0"], out=out, backend=backend, workers=workers,
                       progress=False, report=False)
    wall = time.perf_counter() - started
    stop.set()
    sampler.join()
    table = result.table
    stats = table.drop(columns=[*TIMING_COLUMNS, "traceback"]).to_json(orient="records")
    helpers = helper_cpu()
    busiest = table.groupby("worker").cpu_s.sum().max()
    return {"backend": backend, "wall_s": wall, "peak_rss_mb": peak[0] / 2**20,
            "configs": len(table), "failed": int((table.status != "ok").sum()),
            "mean_config_s": float(table.wall_s.mean()),
            "mean_config_cpu_s": float(table.cpu_s.mean()),
            "helper_cpu_s": helpers, "cpu_path_s": float(helpers + busiest),
            "timeline": timeline(table, epoch, wall), "stats": stats}


def helper_cpu() -> float:
    """CPU seconds of this process's remaining children: the pool's fork server (its
    imports, before the first worker could fork) and multiprocessing's resource tracker."""
    import psutil

    total = 0.0
    for child in psutil.Process().children():
        with contextlib.suppress(psutil.Error):
            times = child.cpu_times()
            total += times.user + times.system
    return total


def timeline(table: Any, epoch: float, wall: float) -> dict[str, Any]:
    """Where the sweep's wall time went, from the rows' start, wall and CPU times: when
    the first configuration started (the pool's start-up), each worker's idle time between
    its configurations and after its last one, and the extra CPU of each worker's first
    configuration over its later ones (imports and first-use warm-up)."""
    workers = {}
    for name, rows in table.sort_values("started").groupby("worker", sort=False):
        starts = rows.started.to_numpy() - epoch
        ends = starts + rows.wall_s.to_numpy()
        cpu = rows.cpu_s.to_numpy()
        workers[name] = {
            "configs": len(rows), "first_start_s": round(float(starts[0]), 2),
            "gaps_s": round(float((starts[1:] - ends[:-1]).sum()), 2),
            "idle_after_s": round(float(wall - ends[-1]), 2),
            "first_cpu_s": round(float(cpu[0]), 2),
            "later_cpu_s": round(float(cpu[1:].mean()), 2) if len(cpu) > 1 else None,
            "runs": [f"{s:.1f}-{e:.1f}" for s, e in zip(starts, ends, strict=True)]}
    return workers


def measure(backend: str, workers: int, configs: int) -> dict[str, Any]:
    """``run_one`` in a fresh interpreter."""
    here = str(Path(__file__).parent)
    code = (f"import json, sys; sys.path.insert(0, {here!r}); from bench_sweep import run_one; "
            f"print(json.dumps(run_one({backend!r}, {workers}, {configs})))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True, cwd=REPO)
    return json.loads(done.stdout.strip().splitlines()[-1])


def _measured(backend: str, workers: int, configs: int) -> dict[str, Any]:
    load = os.getloadavg()
    row = measure(backend, workers, configs)
    row["load"] = (*load, *os.getloadavg())
    _print(row)
    return row


def _print(row: dict[str, Any]) -> None:
    load = row["load"]
    print(f"{row['backend']:7} {row['configs']} configs ({row['failed']} failed): "
          f"{row['wall_s']:6.1f} s wall, mean {row['mean_config_s']:.2f} s wall / "
          f"{row['mean_config_cpu_s']:.2f} s CPU per configuration, peak RSS "
          f"{row['peak_rss_mb']:6.0f} MB; load average (1/5/15 min) "
          f"before {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}, after {load[3]:.2f} "
          f"{load[4]:.2f} {load[5]:.2f}", flush=True)
    print(f"    CPU critical path {row['cpu_path_s']:.2f} s (start-up helpers "
          f"{row['helper_cpu_s']:.2f} s + the busiest worker's configurations): the wall "
          f"time on idle cores, contention aside", flush=True)
    for name, worker in row["timeline"].items():
        print(f"    worker {name}: {worker['configs']} configs, first starts at "
              f"{worker['first_start_s']:.2f} s, idle between {worker['gaps_s']:.2f} s and "
              f"after its last {worker['idle_after_s']:.2f} s; CPU first "
              f"{worker['first_cpu_s']:.2f} s, later {worker['later_cpu_s']} s; "
              f"runs {' '.join(worker['runs'])}", flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--configs", type=int, default=8, help="8 (default) or up to 24")
    parser.add_argument("--backends", nargs="+", default=["serial", "local", "ray"])
    parser.add_argument("--repeat", type=int, default=1,
                        help="rounds over the backends; the best wall time of each is kept "
                             "(a shared machine's other load only ever slows a run down)")
    args = parser.parse_args()
    best: dict[str, dict[str, Any]] = {}
    for _ in range(args.repeat):
        for backend in args.backends:
            row = _measured(backend, args.workers, args.configs)
            if backend not in best or row["wall_s"] < best[backend]["wall_s"]:
                best[backend] = row
    rows = list(best.values())
    if args.repeat > 1:
        print(f"best of {args.repeat}:")
        for row in rows:
            _print(row)
    serial = next((r for r in rows if r["backend"] == "serial"), None)
    if serial is not None:
        for row in rows:
            same = "same statistics" if row["stats"] == serial["stats"] else "DIFFERENT statistics"
            print(f"{row['backend']:7} speed-up over serial x{serial['wall_s'] / row['wall_s']:.2f}"
                  f" wall, x{serial['cpu_path_s'] / row['cpu_path_s']:.2f} by CPU critical "
                  f"path ({same} as serial)")
    return 0 if all(r["failed"] == 0 for r in rows) else 1


if __name__ == "__main__":
    raise SystemExit(main())
