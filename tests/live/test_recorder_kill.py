"""kill -9 of ``makerlab record`` against a local venue, then recovery.

A synthetic Binance USD-M market (seeded random book changes and trades, REST snapshots of
the same book) is served on 127.0.0.1 with a fast exchange clock (one exchange hour every
3 s) so that hourly commits happen in every session. ``makerlab record`` runs as a child
process, session after session on the same archive; each is SIGKILLed, either by itself
right before a chosen operation (the phases of an hourly or recovery commit, a segment
batch cut short, a flush not yet marked complete) or by the test after a seeded delay.
After every kill, whatever loads is right (or the loader refuses with DataError). A final
session recovers everything and stops cleanly. Then:

- ``makerlab validate`` is clean (all but its clock-offset rule: the exchange clock runs
  1200 times faster than the receive clock, ``replayed.py``) and no segment is left;
- every ``book_snapshot`` row is the server's book after that message, the deltas rebuild
  the snapshots row for row, every trade is one the server sent, nothing is doubled;
- of what the server sent to a killed session, only the last ~1 s before the kill is
  missing (by the server's send times; printed per kill).
"""

from __future__ import annotations

import asyncio
import os
import random
import signal
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import orjson
import pyarrow as pa
from captures import cryptofeed_http
from fake_venue import FakeVenue, Socket

from makerlab.data.archive import read_table
from makerlab.data.book_builder import materialize
from makerlab.data.integrity import ArchiveReport, check_archive
from makerlab.data.segments import segment_sessions
from makerlab.data.validate import Plausibility, validate_table
from makerlab.errors import DataError
from makerlab.live.recorder import read_health
from makerlab.units import NS_PER_MS, NS_PER_S

# The fake market's exchange clock runs 1200x real time, so its distance to the receive
# clock grows by the second; every rule of ``makerlab validate`` but the clock offset.
_ACCELERATED = Plausibility(max_clock_offset_ns=2**62)


def _validate_accelerated(root, spool: Path | None = None) -> ArchiveReport:
    return check_archive(root, check=lambda kind, table, source: validate_table(
        kind, table, source, limits=_ACCELERATED), spool=spool)

INFO = next(b for _, _, b in cryptofeed_http("binance_usdm_2021_exchange_info.txt.gz"))
SYMBOL, DEPTH = "SUSHIUSDT", 5
BASE_MS = 1_723_157_990_000  # 2024-08-08 22:59:50 UTC
SPEED = 1200  # exchange seconds per wall second: an hour every 3 s
STEP = 0.01  # seconds between messages
LOSS_LIMIT = 1.0 + 0.5  # the flush interval, plus slack for a busy machine

# Run the CLI; SIGKILL this process right before occurrence N (0-based) of operation OP
# on a path containing PART: a storage operation (write_bytes, move, delete), a segment
# batch write ("segment": part of the batch reaches the file) or the flush marker
# ("flushed"). "{session}" in PART stands for this process's own recording session (so
# a point can skip the recovery of earlier sessions' segments).
CHILD = r"""
import os, signal, sys
from makerlab.data import segments
from makerlab.data.storage import Root

op, part, occurrence = sys.argv[1], sys.argv[2], int(sys.argv[3])
seen, session = [0], ["{session}"]

real_init = segments.SegmentLog.__init__
def init(self, root, **options):
    real_init(self, root, **options)
    session[0] = self.session
segments.SegmentLog.__init__ = init

def due(name, path):
    if name != op or part.replace("{session}", session[0]) not in path:
        return False
    seen[0] += 1
    return seen[0] == occurrence + 1

def kill():
    os.kill(os.getpid(), signal.SIGKILL)

def storage(name):
    real = getattr(Root, name)
    def call(self, *args):
        if due(name, args[0]):
            kill()
        return real(self, *args)
    setattr(Root, name, call)

for name in ("write_bytes", "move", "delete"):
    storage(name)

real_write = segments._Writer.write
def write(self, table, flush):
    real_write(self, table, flush)
    if due("segment", self.path):
        os.truncate(self.path, os.path.getsize(self.path) - 20)
        kill()
segments._Writer.write = write

real_flushed = segments._put_flushed
def flushed(folder, flush):
    if due("flushed", folder):
        kill()
    real_flushed(folder, flush)
segments._put_flushed = flushed

from makerlab.cli import main
sys.exit(main(sys.argv[4:]))
"""

KILL_POINTS = [
    ("write_bytes", "/_makerlab/pending/", 0),  # an hourly commit staged, no journal yet
    ("move", ".parquet.tmp-", 2),  # recovering the last session: journal, two files moved
    ("delete", "{session}", 0),  # an hourly commit done, its segments not yet deleted
    ("segment", "kind=book_snapshot", 2),  # a flush cut short: deltas whole, snapshots not
    ("flushed", "", 4),  # a flush written to every file, not yet marked complete
]
RANDOM_KILLS = 1


@dataclass
class Market:
    """A seeded random book and tape, served to every connected socket."""

    rng: np.random.Generator = field(default_factory=lambda: np.random.default_rng(7))
    bids: dict[float, float] = field(default_factory=dict)
    asks: dict[float, float] = field(default_factory=dict)
    u: int = 1000
    trade_id: int = 0
    sockets: dict[Socket, int] = field(default_factory=dict)  # -> the session it serves
    session: int = 0
    books: dict[int, tuple[int, list, list]] = field(default_factory=dict)  # u -> top
    sent: list[tuple[int, int, int]] = field(default_factory=list)  # (socket, u, wall ns)
    trades: dict[str, tuple[int, float, float, int]] = field(default_factory=dict)
    sent_trades: list[tuple[int, str, int]] = field(default_factory=list)
    connected: asyncio.Event = field(default_factory=asyncio.Event)
    started: float = field(default_factory=time.time)

    def __post_init__(self) -> None:
        for k in range(30):
            self.bids[round(100.0 - 0.1 * k, 1)] = 1.0 + k
            self.asks[round(100.1 + 0.1 * k, 1)] = 1.0 + k

    def now_ms(self) -> int:
        return BASE_MS + int((time.time() - self.started) * SPEED * 1000)

    def step(self) -> list[bytes]:
        """One depth message (and now and then a trade), applied to the book."""
        first, self.u = self.u + 1, self.u + int(self.rng.integers(1, 4))
        changes = {"b": [], "a": []}
        for _ in range(int(self.rng.integers(1, 4))):
            side = "b" if self.rng.random() < 0.5 else "a"
            k = int(self.rng.integers(0, 30))
            price = round(100.0 - 0.1 * k, 1) if side == "b" else round(100.1 + 0.1 * k, 1)
            size = 0.0 if self.rng.random() < 0.2 else float(self.rng.integers(1, 50))
            book = self.bids if side == "b" else self.asks
            book.pop(price, None) if size == 0 else book.__setitem__(price, size)
            changes[side].append([str(price), str(size)])
        ts = self.now_ms()
        self.books[self.u] = (ts, *self.top(DEPTH))
        data = {"e": "depthUpdate", "E": ts, "T": ts, "s": SYMBOL, "U": first, "u": self.u,
                "pu": first - 1, **changes}
        frames = [orjson.dumps({"stream": "sushiusdt@depth@100ms", "data": data})]
        if self.rng.random() < 0.3:
            frames.append(self.trade(ts))
        return frames

    def trade(self, ts: int) -> bytes:
        self.trade_id += 1
        price, size, maker = max(self.bids), float(self.rng.integers(1, 9)), True
        self.trades[str(self.trade_id)] = (ts, price, size, -1)
        return orjson.dumps({"stream": "sushiusdt@trade", "data": {
            "e": "trade", "E": ts, "T": ts, "s": SYMBOL, "t": self.trade_id,
            "p": str(price), "q": str(size), "X": "MARKET", "m": maker}})

    def top(self, n: int) -> tuple[list, list]:
        return ([[p, self.bids[p]] for p in sorted(self.bids, reverse=True)[:n]],
                [[p, self.asks[p]] for p in sorted(self.asks)[:n]])

    def snapshot(self, _request) -> bytes:
        bids, asks = self.top(1000)
        ts = self.books[self.u][0]  # the book after message u, stamped as u
        return orjson.dumps({"lastUpdateId": self.u, "E": ts, "T": ts,
                             "bids": [[str(p), str(q)] for p, q in bids],
                             "asks": [[str(p), str(q)] for p, q in asks]})

    async def run(self) -> None:
        while True:
            frames = self.step()
            for sock, session in list(self.sockets.items()):
                await self.send(sock, session, frames)
            await asyncio.sleep(STEP)

    async def send(self, sock: Socket, session: int, frames: list[bytes]) -> None:
        try:
            for frame in frames:
                await sock.send(frame)
        except (ConnectionError, RuntimeError):
            self.sockets.pop(sock, None)
            return
        now = time.time_ns()
        self.sent.append((session, self.u, now))
        if len(frames) > 1:
            self.sent_trades.append((session, str(self.trade_id), now))

    async def serve(self, sock: Socket) -> None:
        self.sockets[sock] = self.session
        self.connected.set()
        try:
            await asyncio.Event().wait()  # until the socket closes (the script is cancelled)
        finally:
            self.sockets.pop(sock, None)


async def _session(market: Market, url: str, out, spec_cache, kill: tuple | None,
                   delay: float | None, duration: float | None = None,
                   spool: Path | None = None) -> int:
    """One ``makerlab record`` child; returns the wall time (ns) it ended."""
    argv = ["record", "--exchange", "binance", "--symbols", SYMBOL, "--depth", str(DEPTH),
            "--out", str(out), "--base-url", url + "/binance", "--env", "paper"]
    if spool is not None:
        argv += ["--spool", str(spool)]
    if duration is not None:
        argv += ["--duration", str(duration)]
    point = kill or ("none", "", 0)
    market.connected.clear()
    market.session += 1
    child = await asyncio.create_subprocess_exec(
        sys.executable, "-c", CHILD, point[0], point[1], str(point[2]), *argv,
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "PYTHONWARNINGS": "ignore", "MAKERLAB_SPEC_CACHE": str(spec_cache)})
    if delay is not None:
        await asyncio.wait_for(market.connected.wait(), 30)
        await asyncio.sleep(delay)
        child.send_signal(signal.SIGKILL)
        ended = time.time_ns()
        await child.wait()
    else:
        _, err = await asyncio.wait_for(child.communicate(), 40)
        ended = time.time_ns()
        expected = 0 if kill is None else -signal.SIGKILL
        assert child.returncode == expected, (kill, err.decode()[-3000:])
    return ended


def _load(out, kind: str, **kwargs) -> pa.Table | None:
    try:
        return read_table(out, kind, "binance", SYMBOL, **kwargs)
    except DataError:
        return None  # an unfinished commit touches it: refused, never wrong


def _levels(prices: list[float], sizes: list[float]) -> list[list[float]]:
    return [[p, q] for p, q in zip(prices, sizes, strict=True) if p == p]  # NaN: no level


def _check_loads(out, market: Market) -> None:
    """Whatever loads is right: books are the server's, trades were sent, no doubles."""
    snaps = _load(out, "book_snapshot", depth=DEPTH)
    deltas = _load(out, "book_delta")
    trades = _load(out, "trades")
    if snaps is not None and snaps.num_rows:
        cols = snaps.to_pydict()
        assert len(set(cols["seq"])) == len(cols["seq"])
        for ts, seq, bp, bs, ap, as_ in zip(cols["exchange_ts"], cols["seq"],
                                            cols["bid_price"], cols["bid_size"],
                                            cols["ask_price"], cols["ask_size"], strict=True):
            exchange_ts, bids, asks = market.books[seq]
            assert ts == exchange_ts * NS_PER_MS
            assert _levels(bp, bs) == bids and _levels(ap, as_) == asks
    if snaps is not None and deltas is not None and deltas.num_rows:
        rebuilt = orjson.dumps(materialize(deltas, DEPTH).to_pydict())
        assert rebuilt == orjson.dumps(snaps.to_pydict())
    if trades is not None:
        cols = trades.to_pydict()
        assert len(set(cols["trade_id"])) == len(cols["trade_id"])
        for ts, price, size, side, tid in zip(cols["exchange_ts"], cols["price"], cols["size"],
                                              cols["side"], cols["trade_id"], strict=True):
            assert (ts // NS_PER_MS, price, size, side) == market.trades[tid]


def _lost(market: Market, session: int, ended: int, recorded_seqs: set, recorded_trades: set
          ) -> tuple[int, float]:
    """(messages and trades the killed session was sent but the archive lacks, seconds
    between the earliest of them and the kill); only messages after the session's first
    recorded book count (earlier ones were before its snapshot)."""
    sent = [(u, t) for s, u, t in market.sent if s == session]
    mine = [(u, t) for u, t in sent if u in recorded_seqs]
    first, since = min(mine) if mine else (0, 0)  # nothing recorded: everything counts
    lost = [t for u, t in sent if u > first and u not in recorded_seqs]
    lost += [t for s, tid, t in market.sent_trades
             if s == session and t > since and tid not in recorded_trades]
    return len(lost), (ended - min(lost)) / NS_PER_S if lost else 0.0


def _record_with_kills(out, spec_cache: Path, points: list, spool: Path | None = None
                       ) -> tuple[Market, list[int]]:
    """One recording session per kill point (killed there), then a clean 2 s session."""

    async def main() -> tuple[Market, list[int]]:
        market = Market()
        async with FakeVenue() as venue:
            venue.routes = {"/binance/fapi/v1/exchangeInfo": INFO,
                            "/binance/fapi/v1/depth": market.snapshot}
            venue.scripts = {"/binance/public/stream": market.serve}
            producer = asyncio.create_task(market.run())
            ended = []
            try:
                for kill, delay in points:
                    ended.append(await _session(market, venue.url, out, spec_cache, kill,
                                                delay, spool=spool))
                    _check_loads(out, market)
                await _session(market, venue.url, out, spec_cache, None, None, duration=2.0,
                               spool=spool)
            finally:
                producer.cancel()
                await asyncio.gather(producer, return_exceptions=True)
            return market, ended

    return asyncio.run(main())


def _check_recording(out, market: Market, points: list, ended: list[int],
                     spool: Path | None = None) -> list[str]:
    """The archive is sound and complete but for the last second of each killed session;
    returns one line per kill saying what it lost."""
    report = _validate_accelerated(out, spool)
    assert report.ok and not report.notes, report
    assert segment_sessions(out, spool=spool) == []
    _check_loads(out, market)
    seqs = set(read_table(out, "book_delta", "binance", SYMBOL).column("seq").to_pylist())
    tids = set(read_table(out, "trades", "binance", SYMBOL).column("trade_id").to_pylist())
    lines = []
    for session, ((kill, delay), end) in enumerate(zip(points, ended, strict=True), 1):
        count, window = _lost(market, session, end, seqs, tids)
        label = kill if kill else f"random kill {delay:.2f}s after connecting"
        lines.append(f"{label}: lost {count} messages, the last {window:.2f}s "
                     f"({window * SPEED / 3600:.2f} exchange hours)")
        assert window <= LOSS_LIMIT, lines[-1]
    return lines


def test_kill_9_loses_at_most_the_last_second_and_never_loads_wrong(tmp_path):
    out, spec_cache = tmp_path / "archive", tmp_path / "specs"
    rng = random.Random(20261204)
    points = [(kill, None) for kill in KILL_POINTS]
    points += [(None, rng.uniform(1.0, 3.0)) for _ in range(RANDOM_KILLS)]
    market, ended = _record_with_kills(out, spec_cache, points)
    print("\n" + "\n".join(_check_recording(out, market, points, ended)))


def test_recording_into_s3_recovers_killed_sessions_from_the_local_spool(s3, tmp_path):
    """``--out s3://...``: segments in ``--spool``, hour files in the bucket. A session
    killed while recording is recovered from the spool by the next, which is killed in
    the middle of that recovery's copies into the bucket; the last completes it."""
    out, spool = f"{s3.bucket()}/live", tmp_path / "spool"
    points = [(("flushed", "", 4), None), (("move", ".parquet.tmp-", 2), None)]
    market, ended = _record_with_kills(out, tmp_path / "specs", points, spool)
    print("\n" + "\n".join(_check_recording(out, market, points, ended, spool)))
    assert not (spool / "segments").exists() or not list((spool / "segments").iterdir())
    assert any(read_health(out, "binance", spool=spool))
