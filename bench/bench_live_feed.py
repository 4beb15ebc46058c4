"""Live market-data path: socket read to strategy handler, makerlab vs ccxt, on one core.

**Against the paper exchange** (``makerlab paper --speed 0`` over the bundled archive, a
separate process pinned to core 1): the real Binance USD-M BTCUSDT diff stream
(``depth@100ms``, 3,105 messages), followed by a client pinned to core 0:

- ``makerlab``: Gateway (``env: paper``) -> LiveMarketData -> Feed.add_l2_book_feed(depth=20)
  with a handler; every message reaches the handler;
- ``ccxt``: ``ccxt.pro.binanceusdm.watch_order_book`` with its URLs pointed at the paper
  server (exchanges.md 2.3); it coalesces, so its loop sees fewer updates than frames.

Per message: socket read (makerlab's ``local_ts``; for ccxt the time its websocket client
handed on the frame) to after the handler (ccxt: ``watch_order_book`` returned), p50/p99;
messages/s (frames over the wall time from the first to the last); CPU per message. Each
client runs ``--repeat`` times on a fresh paper process; the best run (least CPU) is shown.

**Against a synthetic server** (the same process layout): a server speaking Binance
USD-M's real paths
(``/fapi/v1/exchangeInfo``, ``/fapi/v1/depth``, a websocket pushing ``depthUpdate`` diffs
with a ``pu`` chain) under ``/binance``. Clients, pinned to core 0:

- ``makerlab``: Gateway (paper env) -> LiveMarketData -> Feed.add_l2_book_feed(depth=20)
  with a handler; latency measured from the frame's receive time (``local_ts``, taken
  right after the socket read) to after the handler, and from the server's send time.
- ``ccxt``: ``binanceusdm.watch_order_book`` on the same stream (URLs pointed at the
  server); it coalesces, so it sees fewer updates than were sent.
- raw websocket receive loops (aiohttp vs picows), the local-book structure and the JSON
  decoders, to justify the choices in ``makerlab.live``.

    python bench/bench_live_feed.py                    # everything, ~2 min
    python bench/bench_live_feed.py --url http://127.0.0.1:8765/binance   # an external
        server (e.g. ``makerlab paper``): makerlab client only, no server-side timings

Numbers in docs/live.md come from this script on the 2-core development machine.
"""

from __future__ import annotations

import argparse
import asyncio
import heapq
import multiprocessing as mp
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from itertools import islice
from pathlib import Path

import numpy as np
import orjson
from aiohttp import WSMsgType, web

HERE = Path(__file__).resolve().parent
INFO = HERE.parent / "tests" / "live" / "fixtures" / "binance_usdm_2021_exchange_info.txt.gz"
START_ID = 1_000_000
LEVELS = 500
ARCHIVE = HERE.parent / "data" / "archive"
HOURS = ("2024-08-08:23", "2024-08-09:00")


def _pin(core: int) -> None:
    if hasattr(os, "sched_setaffinity") and (os.cpu_count() or 1) > core:
        os.sched_setaffinity(0, {core})


# -- the server process -------------------------------------------------------------------


def _diffs(n: int) -> list[tuple[int, bytes]]:
    rng = np.random.default_rng(1)
    out, prev = [], START_ID
    for i in range(n):
        first, last = prev + 1, prev + 3
        bids = [[f"{100 - 0.1 * k:.1f}", f"{rng.uniform(0, 5):.3f}"]
                for k in rng.integers(1, 40, 5)]
        asks = [[f"{100 + 0.1 * k:.1f}", f"{rng.uniform(0, 5):.3f}"]
                for k in rng.integers(1, 40, 5)]
        data = {"e": "depthUpdate", "E": 1_700_000_000_000 + i, "T": 1_700_000_000_000 + i,
                "s": "BTCUSDT", "U": first, "u": last, "pu": prev, "b": bids, "a": asks}
        out.append((last, orjson.dumps({"stream": "btcusdt@depth@100ms", "data": data})))
        prev = last
    return out


def _snapshot() -> bytes:
    return orjson.dumps({"lastUpdateId": START_ID, "E": 1, "T": 1,
                         "bids": [[f"{100 - 0.1 * k:.1f}", "1.000"] for k in range(1, LEVELS)],
                         "asks": [[f"{100 + 0.1 * k:.1f}", "1.000"] for k in range(1, LEVELS)]})


class _FakeBinance:
    """The server's routes: REST info and snapshot, and the diff-pushing websocket."""

    def __init__(self, times_q: mp.Queue, n: int, rate: float) -> None:
        import gzip
        self.info = gzip.decompress(INFO.read_bytes()).split(b": ", 1)[1]
        self.diffs, self.snap = _diffs(n), _snapshot()
        self.times_q, self.n, self.rate = times_q, n, rate

    async def handle(self, request: web.Request) -> web.StreamResponse:
        if request.headers.get("Upgrade", "").lower() == "websocket":
            return await self.stream(request)
        if request.path.endswith("/exchangeInfo"):
            return web.Response(body=self.info, content_type="application/json")
        if request.path.endswith("/depth"):
            return web.Response(body=self.snap, content_type="application/json")
        return web.Response(status=404)

    async def stream(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(max_msg_size=0)
        await ws.prepare(request)
        acks = asyncio.create_task(self.answer(ws))
        await asyncio.sleep(1.0)  # let the client fetch its snapshot
        sent, burst = {}, 10
        for i in range(0, self.n, burst):
            for u, frame in self.diffs[i:i + burst]:
                sent[u] = time.time_ns()
                await ws.send_str(frame.decode())
            if self.rate:
                await asyncio.sleep(burst / self.rate)
        self.times_q.put(sent)
        await acks
        return ws

    async def answer(self, ws: web.WebSocketResponse) -> None:
        """SUBSCRIBE -> {"result": null, "id": n}, as Binance acknowledges."""
        async for msg in ws:
            if msg.type is WSMsgType.TEXT and "SUBSCRIBE" in msg.data:
                await ws.send_str(orjson.dumps({"result": None,
                                                "id": orjson.loads(msg.data)["id"]}).decode())


def serve(port_q: mp.Queue, times_q: mp.Queue, n: int, rate: float) -> None:
    """Run the fake Binance server until killed; one send-time dict per socket."""
    _pin(1)
    fake = _FakeBinance(times_q, n, rate)

    async def main() -> None:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", fake.handle)
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port_q.put(site._server.sockets[0].getsockname()[1])
        await asyncio.Event().wait()

    asyncio.run(main())


# -- clients ------------------------------------------------------------------------------


class Probe:
    """Listener attached after the Feed: sees each update once the Feed's handlers ran."""

    def __init__(self, last_u: int) -> None:
        self.rows: list[tuple[int, int, int]] = []  # (seq, local_ts, after-handler ns)
        self.last_u, self.done = last_u, asyncio.Event()

    async def on_book(self, update) -> None:
        self.rows.append((update.seq, update.local_ts, time.time_ns()))
        if update.seq >= self.last_u:
            self.done.set()

    async def on_trade(self, trade) -> None:
        pass

    async def on_status(self, status) -> None:
        pass


async def run_makerlab(base: str, last_u: int) -> dict:
    from makerlab.live.gateway import Gateway
    from makerlab.trading.feed import Feed
    calls = 0

    def handler(lob) -> None:
        nonlocal calls
        calls += 1

    gw = Gateway({"binance": {"env": "paper", "base_url": base}},
                 spec_cache=Path("/tmp/makerlab-bench-specs"))
    async with gw:
        feed, probe = Feed(gateway=gw), Probe(last_u)
        gw.market_data().attach(probe)
        cpu0 = time.process_time()
        await feed.add_l2_book_feed("binance", "BTCUSDT", depth=20, handler=handler)
        await asyncio.wait_for(probe.done.wait(), 120)
        cpu = time.process_time() - cpu0
    rows = [r for r in probe.rows if r[0] > START_ID]
    return {"rows": rows, "handler_calls": calls, "cpu_s": cpu}


async def run_ccxt(base: str, last_u: int, frames: Frames | None = None) -> dict:
    import ccxt.pro as ccxtpro
    ex = ccxtpro.binanceusdm({"enableRateLimit": False, "options": {"fetchCurrencies": False}})
    ex.urls["api"]["fapiPublic"] = base + "/fapi/v1"
    ex.urls["api"]["ws"]["future"] = base.replace("http", "ws") + "/ws"
    ex.urls["api"]["ws"]["linear"] = base.replace("http", "ws") + "/ws"
    rows, latency = [], []
    try:
        await ex.load_markets()
        cpu0 = time.process_time()
        while True:
            ob = await ex.watch_order_book("BTC/USDT:USDT")
            now = time.time_ns()
            rows.append((ob["nonce"], 0, now))
            if frames is not None:  # from the read of the newest frame
                latency.append((now - frames.times[-1]) / 1e3)
            if ob["nonce"] >= last_u:
                break
        cpu = time.process_time() - cpu0
    finally:
        await ex.close()
    return {"rows": [r for r in rows if r[0] > START_ID], "handler_calls": len(rows),
            "cpu_s": cpu, "latency": latency}


def _summary(name: str, result: dict, sent: dict | None, n: int) -> dict:
    rows = result["rows"]
    out = {"client": name, "updates": len(rows), "cpu_us_per_msg": result["cpu_s"] / n * 1e6}
    span = (rows[-1][2] - rows[0][2]) / 1e9 if len(rows) > 1 else float("nan")
    out["msgs_per_s"] = n / span if span else float("nan")
    local = [(t - lt) / 1e3 for _, lt, t in rows if lt]
    if local:
        out["read_to_handler_p50"], out["read_to_handler_p99"] = _pcts(local)
    if sent:
        wire = [(t - sent[u]) / 1e3 for u, _, t in rows if u in sent]
        out["send_to_handler_p50"], out["send_to_handler_p99"] = _pcts(wire)
    return out


def _pcts(values: list[float]) -> tuple[float, float]:
    arr = np.asarray(values)
    return float(np.percentile(arr, 50)), float(np.percentile(arr, 99))


def client_run(kind: str, base: str, last_u: int, out_q: mp.Queue) -> None:
    _pin(0)
    runner = run_makerlab if kind == "makerlab" else run_ccxt
    out_q.put(asyncio.run(runner(base, last_u)))


def end_to_end(kind: str, n: int, rate: float, url: str | None) -> dict:
    ctx = mp.get_context("spawn")
    port_q, times_q, out_q = ctx.Queue(), ctx.Queue(), ctx.Queue()
    server = None
    if url is None:
        server = ctx.Process(target=serve, args=(port_q, times_q, n, rate), daemon=True)
        server.start()
        url = f"http://127.0.0.1:{port_q.get(timeout=30)}/binance"
    last_u = START_ID + 3 * n
    client = ctx.Process(target=client_run, args=(kind, url, last_u, out_q))
    client.start()
    result = out_q.get(timeout=300)
    client.join()
    sent = times_q.get(timeout=30) if server is not None else None
    if server is not None:
        server.kill()
    return _summary(kind, result, sent, n)


# -- against the paper exchange ------------------------------------------------------------


def btcusdt_archive(root: Path) -> Path:
    """Binance USD-M BTCUSDT of the bundled archive alone (deltas and trades): the paper
    exchange plays every archived market, so the others would only slow it down."""
    from makerlab.data.archive import read_table, write_table
    for kind in ("book_delta", "trades"):
        table = read_table(ARCHIVE, kind, "binance", "BTCUSDT", *HOURS)
        write_table(root, kind, "binance", "BTCUSDT", table)
    return root


@contextmanager
def paper_exchange(archive: Path) -> Iterator[str]:
    """``makerlab paper --speed 0`` over ``archive`` on core 1; yields the Binance USD-M
    REST base."""
    cmd = [sys.executable, "-m", "makerlab.cli", "paper", "--archive", str(archive),
           "--start", HOURS[0], "--end", HOURS[1], "--speed", "0"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True,
                            preexec_fn=lambda: _pin(1))
    try:
        assert proc.stdout is not None
        line = next(line for line in proc.stdout if line.startswith("binance "))
        yield line.split()[2]  # binance  rest http://127.0.0.1:P/binance  ws ...
    finally:
        proc.send_signal(signal.SIGINT)
        proc.communicate(timeout=60)


def last_archived_id() -> int:
    from makerlab.data.archive import read_table
    table = read_table(ARCHIVE, "book_delta", "binance", "BTCUSDT", *HOURS, columns=["seq"])
    return int(table.column("seq").to_numpy().max())


class Frames:
    """ccxt's websocket frames as its client hands them on: receive times (ns)."""

    def __init__(self) -> None:
        from ccxt.async_support.base.ws.client import Client
        self.times: list[int] = []
        handle = Client.handle_message

        def stamped(client, message):
            self.times.append(time.time_ns())
            return handle(client, message)

        Client.handle_message = stamped


async def paper_makerlab(base: str, last_u: int) -> dict:
    result = await run_makerlab(base, last_u)
    rows = result["rows"]
    return {**result, "frames": len(rows),
            "read_to_handler": [(t - lt) / 1e3 for _, lt, t in rows]}


async def paper_ccxt(base: str, last_u: int) -> dict:
    frames = Frames()
    result = await run_ccxt(base, last_u, frames)
    return {**result, "frames": len(frames.times), "read_to_handler": result["latency"]}


def paper_client(kind: str, base: str, last_u: int, out_q: mp.Queue) -> None:
    _pin(0)
    runner = paper_makerlab if kind == "makerlab" else paper_ccxt
    out_q.put(asyncio.run(runner(base, last_u)))


def against_paper(kind: str, repeat: int) -> dict:
    """The best of ``repeat`` runs of ``kind`` (least CPU per frame), each on a fresh
    paper exchange."""
    ctx, last_u, runs = mp.get_context("spawn"), last_archived_id(), []
    with tempfile.TemporaryDirectory(prefix="makerlab-bench-") as tmp:
        archive = btcusdt_archive(Path(tmp))
        for _ in range(repeat):
            with paper_exchange(archive) as base:
                out_q = ctx.Queue()
                client = ctx.Process(target=paper_client, args=(kind, base, last_u, out_q))
                client.start()
                runs.append(out_q.get(timeout=300))
                client.join()
    best = min(runs, key=lambda r: r["cpu_s"] / r["frames"])
    p50, p99 = _pcts(best["read_to_handler"])
    span = (best["rows"][-1][2] - best["rows"][0][2]) / 1e9
    return {"client": kind, "frames": best["frames"], "handler calls": best["handler_calls"],
            "msgs_per_s": best["frames"] / span, "cpu_us_per_msg": best["cpu_s"] /
            best["frames"] * 1e6, "read_to_handler_p50": p50, "read_to_handler_p99": p99}


# -- micro benchmarks ---------------------------------------------------------------------


def bench_ws_clients(n: int) -> list[dict]:
    """Bare receive loops over the same server: frames/s, no parsing."""
    ctx = mp.get_context("spawn")
    out = []
    for name in ("aiohttp", "picows"):
        port_q, times_q = ctx.Queue(), ctx.Queue()
        server = ctx.Process(target=serve, args=(port_q, times_q, n, 0.0), daemon=True)
        server.start()
        url = f"ws://127.0.0.1:{port_q.get(timeout=30)}/binance/public/stream"
        elapsed = asyncio.run(_recv_aiohttp(url, n) if name == "aiohttp" else _recv_picows(url, n))
        server.kill()
        out.append({"client": name, "us_per_frame": elapsed / n * 1e6,
                    "frames_per_s": n / elapsed})
    return out


async def _recv_aiohttp(url: str, n: int) -> float:
    import aiohttp
    async with aiohttp.ClientSession() as session, session.ws_connect(url) as ws:
        await ws.receive()
        t0 = time.perf_counter()
        for _ in range(n - 1):
            await ws.receive()
        return time.perf_counter() - t0


async def _recv_picows(url: str, n: int) -> float:
    import picows
    done = asyncio.get_running_loop().create_future()
    marks: list[float] = []

    class Listener(picows.WSListener):
        count = 0

        def on_ws_frame(self, transport, frame) -> None:
            frame.get_payload_as_bytes()
            Listener.count += 1
            if Listener.count == 1:
                marks.append(time.perf_counter())
            if Listener.count == n and not done.done():
                done.set_result(time.perf_counter() - marks[0])

    transport, _ = await picows.ws_connect(Listener, url)
    try:
        return await done
    finally:
        transport.disconnect()


def archive_messages() -> tuple[tuple[np.ndarray, np.ndarray], list]:
    """The bundled USD-M BTCUSDT book: its snapshot and every diff after it, as the
    ``(bids, asks)`` arrays a venue module hands the local book (real messages: about
    70 levels each, on a book of about 2,000 levels)."""
    from makerlab.data.archive import read_table
    table = read_table(ARCHIVE, "book_delta", "binance", "BTCUSDT", *HOURS)
    seq, side, flags = (table.column(c).to_numpy() for c in ("seq", "side", "flags"))
    levels = np.column_stack([table.column("price").to_numpy(), table.column("size").to_numpy()])
    cuts = np.flatnonzero(np.diff(seq)) + 1
    messages = [(levels[i][side[i] == 1], levels[i][side[i] == -1])
                for i in np.split(np.arange(len(seq)), cuts)]
    first_diff = int(np.flatnonzero(flags[cuts] == 0)[0]) + 1  # after the snapshot rows
    return messages[0], messages[first_diff:]


def bench_books() -> list[dict]:
    """Apply each real diff and read the top 20: makerlab's LocalBook (dict + sorted price
    list) against a SortedDict per side (its previous form), dict + heapq and dict +
    sorted()."""
    from makerlab.live.book import LocalBook
    snap, diffs = archive_messages()
    out = []
    book = LocalBook()
    book.replace(*snap)
    t0 = time.perf_counter()
    for b, a in diffs:
        book.apply(b, a)
        book.top(20)
    out.append({"book": "dict + sorted list (makerlab.live.book)", "us_per_diff":
                (time.perf_counter() - t0) / len(diffs) * 1e6})
    rows = [(b.tolist(), a.tolist()) for b, a in diffs]
    for name, make, top in (("SortedDict per side", _sorted_dicts, _sorted_dict_top),
                            ("dict + heapq.nlargest/nsmallest", _dicts, _heap_top),
                            ("dict + sorted()", _dicts, _sorted_top)):
        bids, asks = make(snap)
        t0 = time.perf_counter()
        for b, a in rows:
            for side, upd in ((bids, b), (asks, a)):
                for p, q in upd:
                    if q:
                        side[p] = q
                    else:
                        side.pop(p, None)
            top(bids, asks)
        out.append({"book": name, "us_per_diff": (time.perf_counter() - t0) / len(rows) * 1e6})
    return out


def _dicts(snap: tuple[np.ndarray, np.ndarray]) -> tuple[dict, dict]:
    return dict(snap[0].tolist()), dict(snap[1].tolist())


def _sorted_dicts(snap: tuple[np.ndarray, np.ndarray]) -> tuple:
    from sortedcontainers import SortedDict
    return SortedDict(lambda p: -p, snap[0].tolist()), SortedDict(snap[1].tolist())


def _sorted_dict_top(bids, asks) -> tuple:
    b, a = list(islice(bids, 20)), list(islice(asks, 20))
    return np.array([[p, bids[p]] for p in b]), np.array([[p, asks[p]] for p in a])


def _heap_top(bids: dict, asks: dict) -> tuple:
    b = heapq.nlargest(20, bids)
    a = heapq.nsmallest(20, asks)
    return np.array([[p, bids[p]] for p in b]), np.array([[p, asks[p]] for p in a])


def _sorted_top(bids: dict, asks: dict) -> tuple:
    b = sorted(bids, reverse=True)[:20]
    a = sorted(asks)[:20]
    return np.array([[p, bids[p]] for p in b]), np.array([[p, asks[p]] for p in a])


def bench_json(n: int) -> list[dict]:
    """Decode one combined-stream diff to floats: msgspec typed Struct vs orjson + float()."""
    from makerlab.live.venues.binance import BinanceUsdm
    frames = [f for _, f in _diffs(n)]
    venue = BinanceUsdm()
    t0 = time.perf_counter()
    for f in frames:
        venue.parse(f, 0)
    parse = (time.perf_counter() - t0) / n * 1e6
    t0 = time.perf_counter()
    for f in frames:
        d = orjson.loads(f)["data"]
        np.array([(float(p), float(q)) for p, q in d["b"]])
        np.array([(float(p), float(q)) for p, q in d["a"]])
    plain = (time.perf_counter() - t0) / n * 1e6
    import msgspec

    from makerlab.live.venues import binance as mod
    t0 = time.perf_counter()
    for f in frames:
        mod._envelope.decode(f)
    typed = (time.perf_counter() - t0) / n * 1e6
    return [{"decoder": "msgspec typed Struct (decode only)", "us_per_msg": typed},
            {"decoder": "BinanceUsdm.parse (msgspec + BookDelta arrays)", "us_per_msg": parse},
            {"decoder": "orjson + float() + arrays", "us_per_msg": plain},
            {"decoder": f"(msgspec {msgspec.__version__}, orjson {orjson.__version__})",
             "us_per_msg": float("nan")}]


def _table(rows: list[dict]) -> str:
    keys = list(dict.fromkeys(k for r in rows for k in r))
    cells = [list(keys)] + [[_fmt(r.get(k, "")) for k in keys] for r in rows]
    widths = [max(len(c[i]) for c in cells) for i in range(len(keys))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True))
                     for row in cells)


def _fmt(v: object) -> str:
    return f"{v:,.1f}" if isinstance(v, float) else str(v)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", help="REST base of an external server (ws derived)")
    parser.add_argument("--n", type=int, default=20_000, help="diffs per run")
    parser.add_argument("--rate", type=float, default=2_000, help="paced msgs/s (latency)")
    parser.add_argument("--skip-ccxt", action="store_true")
    parser.add_argument("--repeat", type=int, default=3, help="runs per client (paper)")
    parser.add_argument("--paper-only", action="store_true")
    args = parser.parse_args()
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} cores; client pinned to core 0, "
          f"server to core 1; load average {os.getloadavg()[0]:.1f}\n")
    if not args.url:
        clients = ["makerlab"] + ([] if args.skip_ccxt else ["ccxt"])
        rows = [against_paper(c, args.repeat) for c in clients]
        print("== the paper exchange (makerlab paper --speed 0): Binance USD-M BTCUSDT "
              f"depth@100ms, best of {args.repeat}; latency in us")
        print(_table(rows), "\n")
        if args.paper_only:
            return
    clients = ["makerlab"] + ([] if args.skip_ccxt or args.url else ["ccxt"])
    for label, rate in (("flood (throughput)", 0.0), (f"paced {args.rate:.0f}/s (latency)",
                                                       args.rate)):
        rows = [end_to_end(c, args.n, rate, args.url) for c in clients]
        print(f"== Binance depth diffs, {args.n} messages, {label}; latency in us")
        print(_table(rows), "\n")
    if args.url:
        return
    print("== raw websocket receive (no parsing)")
    print(_table(bench_ws_clients(args.n)), "\n")
    print("== local book: apply one real diff + top 20 levels (bundled USD-M BTCUSDT)")
    print(_table(bench_books()), "\n")
    print("== JSON decode of one diff to float levels")
    print(_table(bench_json(args.n)))


if __name__ == "__main__":
    main()
