"""The recorder end to end against a fake venue on 127.0.0.1: what it writes is what the
live book was, what ``book_builder`` rebuilds from the deltas, and what the venue sent;
the health log; hourly commits while recording; joining a market that is already live."""

from __future__ import annotations

import asyncio
import itertools
import os
import signal
import threading
import time

import numpy as np
import orjson
import pyarrow as pa
import pytest
from captures import cryptofeed_http, cryptofeed_ws
from fake_venue import FakeVenue, Socket

from makerlab.core.events import BookUpdate, TradeEvent
from makerlab.data.archive import HOUR_NS, list_archive, read_table
from makerlab.data.book_builder import materialize
from makerlab.data.manifest import SEGMENTS_DIR
from makerlab.data.schema import FLAG_SNAPSHOT
from makerlab.data.segments import SegmentLog, segment_sessions
from makerlab.data.validate import validate_archive
from makerlab.errors import ConfigError, DataError
from makerlab.live import recorder as recorder_module
from makerlab.live.gateway import Gateway
from makerlab.live.recorder import Recorder, read_health, record
from makerlab.live.transport import ReconnectPolicy
from makerlab.trading.feed import Feed
from makerlab.trading.protocols import MarketKind

FAST = ReconnectPolicy(initial_delay=0.01, max_delay=0.05, watchdog=2.0, rest_timeout=2.0)
INFO = next(b for _, _, b in cryptofeed_http("binance_usdm_2021_exchange_info.txt.gz"))
WS = "/binance/public/stream"
DEPTH = "/binance/fapi/v1/depth"
SYMBOL = "SUSHIUSDT"
T0 = 1_723_161_000_000  # ms, 2024-08-08 23:50 UTC


class Listener:
    """Every event the source delivers, in order (what the Feed would see)."""

    def __init__(self) -> None:
        self.events: list = []
        self.changed = asyncio.Event()

    async def on_book(self, update) -> None:
        self._add(update)

    async def on_trade(self, trade) -> None:
        self._add(trade)

    async def on_status(self, status) -> None:
        self._add(status)

    def _add(self, event) -> None:
        self.events.append(event)
        self.changed.set()

    async def until(self, predicate, timeout: float = 15.0) -> None:
        async def wait() -> None:
            while not predicate(self.events):
                self.changed.clear()
                await self.changed.wait()
        await asyncio.wait_for(wait(), timeout)

    def books(self) -> list[BookUpdate]:
        return [e for e in self.events if isinstance(e, BookUpdate)]


def _gateway(venue: FakeVenue, tmp_path) -> Gateway:
    cfg = {"binance": {"env": "paper", "base_url": venue.url + "/binance"}}
    return Gateway(cfg, spec_cache=tmp_path / "specs", policy=FAST)


def _diff(first, last, prev, bids=(), asks=(), ts=T0):
    data = {"e": "depthUpdate", "E": ts, "T": ts, "s": SYMBOL, "U": first, "u": last,
            "pu": prev, "b": [list(map(str, r)) for r in bids],
            "a": [list(map(str, r)) for r in asks]}
    return orjson.dumps({"stream": "sushiusdt@depth@100ms", "data": data})


def _trade(tid, price, size, maker, ts=T0):
    return orjson.dumps({"stream": "sushiusdt@trade", "data": {
        "e": "trade", "E": ts, "T": ts, "s": SYMBOL, "t": tid, "p": str(price),
        "q": str(size), "X": "MARKET", "m": maker}})


def _snapshot(last, bids, asks, ts=T0):
    return orjson.dumps({"lastUpdateId": last, "E": ts, "T": ts,
                         "bids": [list(map(str, r)) for r in bids],
                         "asks": [list(map(str, r)) for r in asks]})


def _run(coro):
    return asyncio.run(asyncio.wait_for(coro, 45))


def _has_seq(seq):
    return lambda events: any(getattr(e, "seq", None) == seq for e in events)


def _live_rows(books: list[BookUpdate], depth: int) -> list[tuple]:
    """(exchange_ts, local_ts, seq, bids, asks) of each update, NaN-padded to ``depth``."""
    def pad(levels: np.ndarray) -> list[list[float]]:
        out = np.full((depth, 2), np.nan)
        out[:min(depth, len(levels))] = levels[:depth]
        return out.T.tolist()
    return [(u.exchange_ts, u.local_ts, u.seq, pad(u.bids), pad(u.asks)) for u in books]


def _archived_rows(table: pa.Table) -> list[tuple]:
    cols = table.to_pydict()
    return list(zip(cols["exchange_ts"], cols["local_ts"], cols["seq"],
                    [list(x) for x in zip(cols["bid_price"], cols["bid_size"], strict=True)],
                    [list(x) for x in zip(cols["ask_price"], cols["ask_size"], strict=True)],
                    strict=True))


def _same(a: list, b: list) -> bool:
    """Equal, NaN equal to NaN."""
    return orjson.dumps(a, option=orjson.OPT_SERIALIZE_NUMPY) == \
        orjson.dumps(b, option=orjson.OPT_SERIALIZE_NUMPY)


def _check_books(out, exchange: str, symbol: str, depth: int, live: list[BookUpdate]):
    """The archive's deltas rebuild its snapshots exactly, and both are the live book."""
    deltas = read_table(out, "book_delta", exchange, symbol)
    snaps = read_table(out, "book_snapshot", exchange, symbol, depth=depth)
    assert _same(_archived_rows(materialize(deltas, depth)), _archived_rows(snaps))
    assert _same(_archived_rows(snaps), _live_rows(live, depth))
    bbo = read_table(out, "bbo", exchange, symbol).to_pydict()
    top = _live_rows(live, 1)
    assert _same([[b, a] for b, a in zip(bbo["bid_price"], bbo["ask_price"], strict=True)],
                 [[row[3][0][0], row[4][0][0]] for row in top])
    return deltas


def test_a_real_session_is_archived_as_the_live_book_and_rebuilds_exactly(tmp_path):
    """The 2021 SUSHIUSDT diffs and REST snapshot, recorded at depth 5."""
    frames = [f for _, f in cryptofeed_ws("binance_usdm_2021_ws.txt.gz")
              if f.startswith(b'{"stream":"sushiusdt@depth')]
    (snap,) = [b for url, _, b in cryptofeed_http("binance_usdm_2021_depth_snapshots.txt.gz")
               if "SUSHI" in url]
    last_u = orjson.loads(frames[-1])["data"]["u"]
    trades = [_trade(9, 7.61, 3, True, ts=1626912000000), _trade(10, 7.62, 1, False,
                                                                  ts=1626912000001)]

    async def script(sock: Socket) -> None:
        for frame in [*trades, *frames[:100]]:  # buffered until the REST snapshot
            await sock.send(frame)
        while not any(r.startswith(DEPTH) for r in sock.venue.requests):
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.1)
        for frame in frames[100:]:
            await sock.send(frame)

    async def main():
        async with FakeVenue() as venue:
            venue.routes = {"/binance/fapi/v1/exchangeInfo": INFO, DEPTH: snap}
            venue.scripts = {WS: script}
            async with _gateway(venue, tmp_path) as gw:
                live = Listener()
                gw.market_data().attach(live)
                async with Recorder(gw, [("binance", SYMBOL)], 5, tmp_path / "arc") as rec:
                    await live.until(_has_seq(last_u))
                return live, rec

    live, rec = _run(main())
    out = tmp_path / "arc"
    assert validate_archive(out).ok
    deltas = _check_books(out, "binance", SYMBOL, 5, live.books())
    flags = deltas.column("flags").to_numpy()
    assert flags[0] == FLAG_SNAPSHOT and deltas.column("seq")[0].as_py() == \
        live.books()[0].seq
    assert len(live.books()) > 100 and deltas.column("seq")[-1].as_py() == last_u
    got = read_table(out, "trades", "binance", SYMBOL).to_pydict()
    assert got["trade_id"] == ["9", "10"] and got["side"] == [-1, 1]
    assert got["exchange_ts"] == [1626912000000 * 10**6, 1626912000001 * 10**6]
    assert rec.rows_received == rec.rows_committed > 0
    assert not (out / SEGMENTS_DIR).exists() or not any((out / SEGMENTS_DIR).iterdir())
    health = read_health(out, "binance")
    assert [h["kind"] for h in health] == ["recorder_started", "connected", "recorder_stopped"]
    connected = health[1]
    assert connected["connection"] == 1 and connected["reconnect"] is False
    assert connected["local_ts"] > 0 and connected["last_exchange_ts"] is None
    assert health[2]["last_exchange_ts"] == live.books()[-1].exchange_ts


def test_gaps_and_reconnects_resync_the_recorded_book_and_reach_the_health_log(tmp_path):
    snaps = [_snapshot(100, [[10, 1], [9, 1]], [[11, 1]]),
             _snapshot(104, [[10, 4]], [[11, 4], [12, 1]], ts=T0 + 4),
             _snapshot(200, [[10, 6]], [[11, 6]], ts=T0 + 9)]

    def depth(_request) -> bytes:
        return snaps.pop(0) if len(snaps) > 1 else snaps[0]

    async def script(sock: Socket) -> None:
        if len(sock.venue.sockets) == 1:
            while len(snaps) == 3:
                await asyncio.sleep(0.01)
            await asyncio.sleep(0.05)
            await sock.send(_diff(101, 101, 100, bids=[[10, 2]], ts=T0 + 1))
            await sock.send(_diff(102, 102, 101, bids=[[9, 0]], ts=T0 + 2))
            await sock.send(_diff(104, 104, 103, bids=[[10, 9]], ts=T0 + 3))  # 103 lost
            while len(snaps) == 2:
                await asyncio.sleep(0.01)
            await asyncio.sleep(0.05)
            await sock.send(_diff(105, 105, 104, asks=[[11, 5]], ts=T0 + 5))
            await asyncio.sleep(0.1)
            await sock.drop()
        else:
            await asyncio.sleep(0.1)
            await sock.send(_diff(201, 201, 200, bids=[[10, 7]], ts=T0 + 10))

    async def main():
        async with FakeVenue() as venue:
            venue.routes = {"/binance/fapi/v1/exchangeInfo": INFO, DEPTH: depth}
            venue.scripts = {WS: script}
            async with _gateway(venue, tmp_path) as gw:
                live = Listener()
                gw.market_data().attach(live)
                async with Recorder(gw, [("binance", SYMBOL)], 3, tmp_path / "arc"):
                    await live.until(_has_seq(201))
                return live

    live = _run(main())
    out = tmp_path / "arc"
    assert validate_archive(out).ok
    deltas = _check_books(out, "binance", SYMBOL, 3, live.books())
    snapshot_seqs = sorted(set(np.asarray(deltas.column("seq"))[
        (np.asarray(deltas.column("flags")) & FLAG_SNAPSHOT) != 0].tolist()))
    assert snapshot_seqs[:2] == [100, 104] and snapshot_seqs[2] in (200, 201)
    health = [h for h in read_health(out, "binance") if not h["kind"].startswith("recorder")]
    assert [h["kind"] for h in health] == ["connected", "gap", "resync", "disconnected",
                                          "gap", "connected", "resync"]
    gap = health[1]
    assert gap["symbol"] == SYMBOL and "seq=104" in gap["detail"]
    assert gap["last_exchange_ts"] == (T0 + 2) * 10**6  # the last message recorded
    assert health[3]["connection"] == 1 and health[5]["reconnect"] is True
    assert health[5]["connection"] == 2
    assert all(a["local_ts"] <= b["local_ts"] for a, b in itertools.pairwise(health))


def test_hours_are_committed_while_recording_and_the_rest_on_stop(tmp_path):
    """Exchange time crosses 00:00: hour 23 is committed once it is ``grace`` behind."""
    midnight = (T0 * 10**6 // HOUR_NS + 1) * HOUR_NS // 10**6
    committed = asyncio.Event()

    async def script(sock: Socket) -> None:
        await asyncio.sleep(0.1)
        await sock.send(_diff(101, 101, 100, bids=[[10, 2]], ts=midnight - 1))
        await sock.send(_diff(102, 102, 101, bids=[[10, 3]], ts=midnight + 1))
        await sock.send(_trade(1, 10.5, 1, False, ts=midnight + 2))
        await committed.wait()
        await sock.send(_diff(103, 103, 102, bids=[[10, 4]], ts=midnight + 2_000))

    async def main():
        async with FakeVenue() as venue:
            venue.routes = {"/binance/fapi/v1/exchangeInfo": INFO,
                            DEPTH: _snapshot(100, [[10, 1]], [[11, 1]], ts=midnight - 5)}
            venue.scripts = {WS: script}
            async with _gateway(venue, tmp_path) as gw:
                live = Listener()
                gw.market_data().attach(live)
                out = tmp_path / "arc"
                async with Recorder(gw, [("binance", SYMBOL)], 2, out, flush_interval=0.05,
                                    grace=1.0) as rec:
                    await live.until(_has_seq(102))
                    await asyncio.sleep(0.2)
                    before = list_archive(out)
                    committed.set()
                    await live.until(_has_seq(103))
                    await asyncio.sleep(0.3)
                    during = list_archive(out)
                return before, during, rec

    before, during, rec = _run(main())
    assert before.empty  # hour 23 is not yet grace behind the newest exchange time
    assert sorted(set(during["hours"].explode())) == [23]  # committed, hour 00 still open
    assert set(during["kind"]) == {"book_delta", "book_snapshot", "bbo"}
    after = list_archive(tmp_path / "arc")
    assert sorted(set(after["hours"].explode())) == [0, 23]
    assert set(after["kind"]) == {"book_delta", "book_snapshot", "bbo", "trades"}
    assert rec.rows_received == rec.rows_committed
    assert validate_archive(tmp_path / "arc").ok


def test_joining_a_live_market_starts_from_the_whole_local_book(tmp_path):
    """The Feed synced the book first; the recorder's first message is the whole book."""
    deep = [[10 - i, 1 + i] for i in range(8)]
    go = asyncio.Event()

    async def script(sock: Socket) -> None:
        await go.wait()
        await sock.send(_diff(101, 101, 100, bids=[[10, 2]], ts=T0 + 1))
        await sock.send(_diff(102, 102, 101, bids=[[10, 0], [3, 5]], ts=T0 + 2))
        await sock.send(_diff(103, 103, 102, bids=[[9, 0]], ts=T0 + 3))

    async def main():
        async with FakeVenue() as venue:
            venue.routes = {"/binance/fapi/v1/exchangeInfo": INFO,
                            DEPTH: _snapshot(100, deep, [[11, 1]])}
            venue.scripts = {WS: script}
            async with _gateway(venue, tmp_path) as gw:
                live = Listener()
                gw.market_data().attach(live)
                await gw.market_data().subscribe(MarketKind.L2BOOK, "binance", SYMBOL, 2)
                await live.until(_has_seq(100))
                recorder = Recorder(gw, out=tmp_path / "arc")
                recorder.track("binance", SYMBOL, depth=2)
                async with recorder:
                    go.set()
                    await live.until(_has_seq(103))
                return live

    live = _run(main())
    out = tmp_path / "arc"
    deltas = _check_books(out, "binance", SYMBOL, 2, live.books()[1:])
    first = deltas.filter(pa.compute.equal(deltas.column("seq"), 101)).to_pydict()
    assert set(first["flags"]) == {FLAG_SNAPSHOT}  # the whole book after 101, 9 levels
    assert len(first["price"]) == 9 and sorted(first["price"])[0] == 3.0


def test_recorder_refuses_bad_arguments_and_reuse(tmp_path):
    gw = Gateway({"binance": {}}, spec_cache=tmp_path)
    with pytest.raises(ConfigError, match="symbol 'PURR/USDC' cannot be an archive"):
        Recorder(gw, [("binance", "PURR/USDC")], 20, tmp_path)
    with pytest.raises(ConfigError, match="depth must be a positive integer"):
        Recorder(gw, [("binance", "BTCUSDT")], 0, tmp_path)
    with pytest.raises(ConfigError, match="flush_interval"):
        Recorder(gw, [], 20, tmp_path, flush_interval=0)
    with pytest.raises(ConfigError, match="not recording"):
        asyncio.run(Recorder(gw, out=tmp_path).run())


def test_feed_archive_scheduler_records_its_subscriptions_and_flushes_on_demand(tmp_path):
    out = tmp_path / "archives"
    go = asyncio.Event()

    async def script(sock: Socket) -> None:
        await go.wait()
        await sock.send(_diff(101, 101, 100, bids=[[10, 2]], ts=T0 + 1))
        await sock.send(_trade(7, 10.5, 2, False, ts=T0 + 2))
        await sock.send(_diff(102, 102, 101, asks=[[11, 0], [12, 3]], ts=T0 + 3))

    async def main():
        async with FakeVenue() as venue:
            venue.routes = {"/binance/fapi/v1/exchangeInfo": INFO,
                            DEPTH: _snapshot(100, [[10, 1]], [[11, 1]])}
            venue.scripts = {WS: script}
            async with _gateway(venue, tmp_path) as gw:
                feed, live = Feed(gateway=gw), Listener()
                gw.market_data().attach(live)
                await feed.add_l2_book_feed("binance", SYMBOL, depth=3)
                scheduler = asyncio.create_task(feed.run_archive_scheduler(path=out))
                await feed.add_trades_feed("binance", SYMBOL)  # tracked while running
                await live.until(_has_seq(100))
                while not segment_sessions(out):  # the scheduler's recorder is listening
                    await asyncio.sleep(0.01)
                with pytest.raises(ConfigError, match="already running"):
                    await feed.run_archive_scheduler(path=out)
                go.set()
                await live.until(lambda ev: _has_seq(102)(ev) and any(
                    getattr(e, "trade_id", None) == "7" for e in ev))
                await asyncio.sleep(0.1)
                await feed.flush_archives(path=str(out))
                flushed = list_archive(out)
                await feed.cleanup()
                await scheduler
                return live, flushed

    live, flushed = _run(main())
    assert set(flushed["kind"]) == {"book_delta", "book_snapshot", "bbo", "trades"}
    assert validate_archive(out).ok
    first = read_table(out, "book_delta", "binance", SYMBOL).column("seq")[0].as_py()
    assert first in (100, 101)  # the snapshot, or the whole book when it joined after it
    _check_books(out, "binance", SYMBOL, 3, [b for b in live.books() if b.seq >= first])
    assert read_table(out, "trades", "binance", SYMBOL).column("trade_id").to_pylist() == ["7"]
    books = Feed.load_lob_archives("binance", SYMBOL, 3, path=out, start="2024-08-08:23",
                                   end="2024-08-08:23")
    assert [b["a"].tolist() for b in books][-1] == [[12.0, 3.0]]


def test_feed_archive_methods_check_their_arguments(tmp_path):
    async def main():
        async with FakeVenue() as venue:
            venue.routes = {"/binance/fapi/v1/exchangeInfo": INFO}
            async with _gateway(venue, tmp_path) as gw:
                feed = Feed(gateway=gw)
                for kwargs, error in [({"squash": False}, "squash=False is not supported"),
                                      ({"splits": 0}, "splits must be a positive integer"),
                                      ({"max_workers": "4"}, "max_workers must be"),
                                      ({"rm_subfiles": None}, "rm_subfiles must be")]:
                    with pytest.raises(ConfigError, match=error):
                        await feed.run_archive_scheduler(path=tmp_path, **kwargs)
                with pytest.raises(TypeError, match=r"unsupported keyword argument.*archiver"):
                    await feed.run_archive_scheduler(path=tmp_path, archiver=True)
                with pytest.raises(ConfigError, match="no archive scheduler is running"):
                    await feed.flush_archives(path=tmp_path)
                with pytest.raises(ConfigError, match="hour files only"):
                    await feed.flush_archives(path=tmp_path, prefix="x")
    _run(main())
    with pytest.raises(TypeError, match="unsupported keyword argument"):
        Feed.squash_archives(path=tmp_path, squash=True)
    assert Feed.squash_archives(path=tmp_path, rm_subfiles=True, max_workers=2) == []


def test_makerlab_record_stops_cleanly_on_sigterm(tmp_path, monkeypatch):
    """``record()`` (what ``makerlab record`` runs) commits everything on SIGTERM. The
    venue stamps the time now, so the full ``makerlab validate`` applies."""
    monkeypatch.setenv("MAKERLAB_SPEC_CACHE", str(tmp_path / "specs"))
    now = time.time_ns() // 10**6

    async def script(sock: Socket) -> None:
        for i in range(50):
            await sock.send(_diff(101 + i, 101 + i, 100 + i, bids=[[10, i + 1]], ts=now + i))
            await asyncio.sleep(0.01)

    async def main():
        async with FakeVenue() as venue:
            venue.routes = {"/binance/fapi/v1/exchangeInfo": INFO,
                            DEPTH: _snapshot(100, [[10, 1]], [[11, 1]], ts=now)}
            venue.scripts = {WS: script}
            task = asyncio.create_task(record("binance", [SYMBOL], 3, tmp_path / "arc",
                                              base_url=venue.url + "/binance", env="paper"))
            while not any("sushiusdt" in s.request.query_string for s in venue.sockets):
                await asyncio.sleep(0.01)
            await asyncio.sleep(0.3)
            os.kill(os.getpid(), signal.SIGTERM)
            return await task

    recorder = _run(main())
    out = tmp_path / "arc"
    assert recorder.rows_received == recorder.rows_committed > 0
    assert validate_archive(out).ok and segment_sessions(out) == []
    assert read_health(out, "binance")[-1]["kind"] == "recorder_stopped"
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL  # handlers removed


def test_a_failed_commit_stops_recording_and_keeps_the_rows_for_recovery(tmp_path,
                                                                          monkeypatch):
    async def script(sock: Socket) -> None:
        await sock.send(_diff(101, 101, 100, bids=[[10, 2]], ts=T0 + 1))

    def full_disk(*_args, **_kwargs):
        raise DataError("cannot write (No space left on device)", source="archive")

    async def main():
        async with FakeVenue() as venue:
            venue.routes = {"/binance/fapi/v1/exchangeInfo": INFO,
                            DEPTH: _snapshot(100, [[10, 1]], [[11, 1]])}
            venue.scripts = {WS: script}
            async with _gateway(venue, tmp_path) as gw:
                live = Listener()
                gw.market_data().attach(live)
                recorder = Recorder(gw, [("binance", SYMBOL)], 3, tmp_path / "arc",
                                    flush_interval=0.05)
                with pytest.raises(DataError, match="No space left"):
                    async with recorder:
                        await live.until(_has_seq(101))
                        monkeypatch.setattr(recorder_module, "commit_segments", full_disk)
                        await recorder.commit()
                with pytest.raises(ConfigError, match="stopped, not recording"):
                    await recorder.commit()
                return live

    live = _run(main())
    out = tmp_path / "arc"
    (session,) = segment_sessions(out)
    assert not session.alive and not validate_archive(out).ok
    assert list_archive(out).empty
    monkeypatch.undo()
    assert Feed.squash_archives(path=out)
    _check_books(out, "binance", SYMBOL, 3, live.books())
    assert validate_archive(out).ok


class QuietSource:
    """A market-data source that delivers nothing by itself: the test feeds the recorder."""

    def attach(self, listener) -> None:
        pass

    def detach(self, listener) -> None:
        pass

    def replays(self, exchange: str) -> bool:
        return False

    def full_book(self, exchange: str, symbol: str) -> None:
        return None


@pytest.mark.parametrize("request_kind", ["stop", "commit"])
def test_rows_received_while_a_flush_is_writing_are_committed(tmp_path, monkeypatch,
                                                              request_kind):
    """A stop or commit() that comes in while a periodic flush is writing in its thread
    still commits the rows received during that write (flushed once more first)."""
    writing, release = threading.Event(), threading.Event()
    append = SegmentLog.append

    def held_append(segments: SegmentLog, tables) -> int:
        writing.set()
        release.wait(30)  # set by the test once rows arrived and the request is in
        return append(segments, tables)

    monkeypatch.setattr(SegmentLog, "append", held_append)

    def trades(ids: range) -> list[TradeEvent]:
        return [TradeEvent("binance", SYMBOL, (T0 + i) * 10**6, (T0 + i) * 10**6, 10.0 + i,
                           1.0, 1, str(i)) for i in ids]

    async def main() -> tuple[list[str], Recorder]:
        rec = Recorder(QuietSource(), out=tmp_path / "arc", spool=tmp_path / "spool",
                       flush_interval=0.01)
        rec.track("binance", SYMBOL, trades=True)
        await rec.start()
        for trade in trades(range(0, 5)):
            await rec.on_trade(trade)
        await asyncio.to_thread(writing.wait, 30)  # the flush of those 5 is writing
        for trade in trades(range(5, 8)):
            await rec.on_trade(trade)
        if request_kind == "stop":
            rec.request_stop()
            release.set()
            await rec.stop()
        else:
            committing = asyncio.create_task(rec.commit())
            await asyncio.sleep(0)  # commit() has put in its request
            release.set()
            await committing
        ids = read_table(tmp_path / "arc", "trades", "binance", SYMBOL).column("trade_id")
        await rec.stop()
        return ids.to_pylist(), rec

    committed, rec = _run(main())
    assert committed == [str(i) for i in range(8)]
    assert rec.rows_received == rec.rows_committed == 8
