"""The live path end to end against a fake venue on 127.0.0.1: Gateway, LiveMarketData,
Feed, book sync on real captured messages, gaps, resyncs, reconnects, pings."""

from __future__ import annotations

import asyncio
import json

import orjson
import pytest
from captures import cryptofeed_http, cryptofeed_ws
from fake_venue import FakeVenue, Socket

from makerlab.core.events import StatusKind
from makerlab.live.gateway import Gateway
from makerlab.live.stream import _RecentIds
from makerlab.live.transport import ReconnectPolicy
from makerlab.trading.feed import Feed
from makerlab.trading.protocols import MarketKind

FAST = ReconnectPolicy(initial_delay=0.01, max_delay=0.05, watchdog=2.0, rest_timeout=2.0)
INFO = next(b for _, _, b in cryptofeed_http("binance_usdm_2021_exchange_info.txt.gz"))
WS = "/binance/public/stream"
DEPTH = "/binance/fapi/v1/depth"


class Recorder:
    """A second listener: every event the source delivers, in order."""

    def __init__(self) -> None:
        self.events: list = []
        self.changed = asyncio.Event()

    async def on_book(self, update) -> None:
        self.events.append(update)
        self.changed.set()

    async def on_trade(self, trade) -> None:
        self.events.append(trade)
        self.changed.set()

    async def on_status(self, status) -> None:
        self.events.append(status)
        self.changed.set()

    async def until(self, predicate, timeout: float = 10.0) -> None:
        async def wait() -> None:
            while not predicate(self.events):
                self.changed.clear()
                await self.changed.wait()
        await asyncio.wait_for(wait(), timeout)

    def kinds(self) -> list[str]:
        return [getattr(e, "kind", None) or type(e).__name__ for e in self.events]


def _gateway(venue: FakeVenue, tmp_path, **extra) -> Gateway:
    cfg = {"binance": {"env": "paper", "base_url": venue.url + "/binance", **extra}}
    return Gateway(cfg, spec_cache=tmp_path, policy=FAST)


def _diff(first, last, prev, bids=(), asks=(), ts=1_000):
    data = {"e": "depthUpdate", "E": ts, "T": ts, "s": "SUSHIUSDT", "U": first, "u": last,
            "pu": prev, "b": [list(map(str, r)) for r in bids],
            "a": [list(map(str, r)) for r in asks]}
    return orjson.dumps({"stream": "sushiusdt@depth@100ms", "data": data})


def _snapshot(last, bids, asks):
    return orjson.dumps({"lastUpdateId": last, "E": 1_000, "T": 1_000,
                         "bids": [list(map(str, r)) for r in bids],
                         "asks": [list(map(str, r)) for r in asks]})


def _run(coro):
    return asyncio.run(asyncio.wait_for(coro, 30))


def test_feed_gets_lob_objects_from_a_real_session(tmp_path):
    """The 2021 SUSHIUSDT diffs and REST snapshot, served over the real paths."""
    frames = [f for _, f in cryptofeed_ws("binance_usdm_2021_ws.txt.gz")
              if f.startswith(b'{"stream":"sushiusdt@depth')]
    (snap,) = [b for url, _, b in cryptofeed_http("binance_usdm_2021_depth_snapshots.txt.gz")
               if "SUSHI" in url]
    last_u = orjson.loads(frames[-1])["data"]["u"]
    trade = orjson.dumps({"stream": "sushiusdt@trade", "data": {
        "e": "trade", "E": 5, "T": 4, "s": "SUSHIUSDT", "t": 9, "p": "7.61", "q": "3",
        "X": "MARKET", "m": True}})

    async def script(sock: Socket) -> None:
        await sock.send(trade)
        for frame in frames:
            await sock.send(frame)

    async def main():
        async with FakeVenue() as venue:
            venue.routes = {"/binance/fapi/v1/exchangeInfo": INFO, DEPTH: snap}
            venue.scripts = {WS: script}
            async with _gateway(venue, tmp_path) as gw:
                feed, rec, books, trades = Feed(gateway=gw), Recorder(), [], []
                gw.market_data().attach(rec)
                fid = await feed.add_l2_book_feed("binance", "SUSHIUSDT", depth=5,
                                                  handler=books.append)
                await feed.add_trades_feed("binance", "SUSHIUSDT", handler=trades.append)
                await rec.until(lambda ev: any(getattr(e, "seq", 0) == last_u for e in ev))
                lob = feed.get_feed(fid)
                return venue, rec, books, trades, lob, lob.get_bids().copy(), \
                    lob.get_asks().copy()

    venue, rec, books, trades, lob, bids, asks = _run(main())
    query = venue.sockets[0].request.query_string
    assert query == "streams=sushiusdt@depth@100ms/sushiusdt@trade" or \
        [json.loads(m)["params"] for m in venue.sockets[0].received] == [["sushiusdt@trade"]]
    assert venue.requests[0] == "/binance/fapi/v1/exchangeInfo"
    assert any(r.startswith(DEPTH + "?symbol=SUSHIUSDT&limit=1000") for r in venue.requests)
    naive = _naive_usdm(snap, frames)
    assert bids.tolist() == naive[0][:5] and asks.tolist() == naive[1][:5]
    assert books and all(b is lob for b in books)  # handlers get the LOB, as in replay
    assert trades and trades[0][1:] == (7.61, 3.0, -1)
    first_book = next(e for e in rec.events if type(e).__name__ == "BookUpdate")
    assert first_book.delta.is_snapshot
    assert StatusKind.GAP not in rec.kinds()


def _naive_usdm(snap: bytes, frames: list[bytes]) -> tuple[list, list]:
    book = orjson.loads(snap)
    sides = [{float(p): float(q) for p, q in book["bids"]},
             {float(p): float(q) for p, q in book["asks"]}]
    for frame in frames:
        d = orjson.loads(frame)["data"]
        if d["u"] < book["lastUpdateId"]:
            continue
        for side, rows in zip(sides, (d["b"], d["a"]), strict=True):
            for p, q in rows:
                side.pop(float(p), None) if float(q) == 0 else side.update({float(p): float(q)})
    return ([[p, q] for p, q in sorted(sides[0].items(), reverse=True)],
            [[p, q] for p, q in sorted(sides[1].items())])


def test_a_gap_stops_the_book_until_a_resync_snapshot(tmp_path):
    snaps = [_snapshot(100, [[10, 1]], [[11, 1]]), _snapshot(104, [[10, 4]], [[11, 4]])]

    def depth(_request) -> bytes:
        return snaps.pop(0)

    async def script(sock: Socket) -> None:
        while len(snaps) == 2:  # until the client fetched the first snapshot
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.05)
        await sock.send(_diff(101, 101, 100, bids=[[10, 2]]))
        await sock.send(_diff(102, 102, 101, bids=[[10, 3]]))
        await sock.send(_diff(104, 104, 103, bids=[[10, 9]]))  # 103 lost: a gap
        while snaps:  # until the client fetched the second snapshot
            await asyncio.sleep(0.01)
        await sock.send(_diff(105, 105, 104, asks=[[11, 5]]))

    async def main():
        async with FakeVenue() as venue:
            venue.routes = {"/binance/fapi/v1/exchangeInfo": INFO, DEPTH: depth}
            venue.scripts = {WS: script}
            async with _gateway(venue, tmp_path) as gw:
                rec = Recorder()
                gw.market_data().attach(rec)
                await gw.market_data().subscribe(_book(), "binance", "SUSHIUSDT", 5)
                await rec.until(lambda ev: any(getattr(e, "seq", 0) == 105 for e in ev))
                return rec

    rec = _run(main())
    books = [(e.seq, e.delta.is_snapshot, e.bids.tolist(), e.asks.tolist())
             for e in rec.events if type(e).__name__ == "BookUpdate"]
    assert books == [(100, True, [[10, 1]], [[11, 1]]), (101, False, [[10, 2]], [[11, 1]]),
                     (102, False, [[10, 3]], [[11, 1]]), (104, True, [[10, 4]], [[11, 4]]),
                     (105, False, [[10, 4]], [[11, 5]])]
    kinds = [k for k in rec.kinds() if k != "BookUpdate"]
    assert kinds == [StatusKind.CONNECTED, StatusKind.GAP, StatusKind.RESYNC]
    gap = rec.kinds().index(StatusKind.GAP)
    assert rec.kinds()[gap + 1] == StatusKind.RESYNC  # nothing delivered in between


SPOT_INFO = orjson.dumps({"symbols": [{
    "symbol": "BTCUSDT", "status": "TRADING", "baseAsset": "BTC", "quoteAsset": "USDT",
    "filters": [{"filterType": "PRICE_FILTER", "tickSize": "0.01"},
                {"filterType": "LOT_SIZE", "stepSize": "0.00001", "minQty": "0.00001"},
                {"filterType": "NOTIONAL", "minNotional": "5"}]}]})


def test_a_spot_snapshot_without_time_is_delivered_with_the_next_diff(tmp_path):
    """Binance spot's REST depth has no time: the first book is delivered with the first
    diff applied on it, as a snapshot at that diff's id and exchange time."""
    snapshot = orjson.dumps({"lastUpdateId": 100, "bids": [["10", "1"]], "asks": [["11", "1"]]})

    async def script(sock: Socket) -> None:
        while not any("depth" in r for r in sock.venue.requests):
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.05)
        for first, ts, bid in ((100, 4_000, "2"), (101, 5_000, "3"), (102, 6_000, "4")):
            await sock.send(orjson.dumps({"stream": "btcusdt@depth@100ms", "data": {
                "e": "depthUpdate", "E": ts, "s": "BTCUSDT", "U": first, "u": first,
                "b": [["10", bid]], "a": []}}))

    async def main():
        async with FakeVenue() as venue:
            venue.routes = {"/binance_spot/api/v3/exchangeInfo": SPOT_INFO,
                            "/binance_spot/api/v3/depth": snapshot}
            venue.scripts = {"/binance_spot/stream": script}
            cfg = {"binance_spot": {"env": "paper", "base_url": venue.url + "/binance_spot"}}
            async with Gateway(cfg, spec_cache=tmp_path, policy=FAST) as gw:
                rec = Recorder()
                gw.market_data().attach(rec)
                await gw.market_data().subscribe(_book(), "binance_spot", "BTCUSDT", 5)
                await rec.until(lambda ev: any(getattr(e, "seq", 0) == 102 for e in ev))
                return rec

    books = [(e.seq, e.exchange_ts, e.delta.is_snapshot, e.bids.tolist())
             for e in _run(main()).events if type(e).__name__ == "BookUpdate"]
    assert books == [(101, 5_000_000_000, True, [[10, 3]]), (102, 6_000_000_000, False, [[10, 4]])]


def _book():
    return MarketKind.L2BOOK


def test_reconnect_resubscribes_and_resyncs(tmp_path):
    async def script(sock: Socket) -> None:
        if len(sock.venue.sockets) == 1:
            await sock.send(_diff(101, 101, 100, bids=[[10, 2]]))
            await asyncio.sleep(0.05)
            await sock.drop()
        else:
            await sock.send(_diff(201, 201, 200, bids=[[10, 7]]))

    snaps = [_snapshot(100, [[10, 1]], [[11, 1]]), _snapshot(200, [[10, 6]], [[11, 6]])]

    async def main():
        async with FakeVenue() as venue:
            venue.routes = {"/binance/fapi/v1/exchangeInfo": INFO,
                            DEPTH: lambda _r: snaps.pop(0) if len(snaps) > 1 else snaps[0]}
            venue.scripts = {WS: script}
            async with _gateway(venue, tmp_path) as gw:
                rec = Recorder()
                gw.market_data().attach(rec)
                await gw.market_data().subscribe(_book(), "binance", "SUSHIUSDT", 5)
                await rec.until(lambda ev: any(getattr(e, "seq", 0) == 201 for e in ev))
                stream = gw.market_data().streams()["binance"]
                return venue, rec, stream.supervisor.connections, stream.supervisor.backoff

    venue, rec, connections, backoff = _run(main())
    assert connections == 2 and len(venue.sockets) == 2
    assert backoff.attempt == 0  # reset by the new socket's first frame
    assert all("sushiusdt@depth@100ms" in s.request.query_string for s in venue.sockets)
    statuses = [k for k in rec.kinds() if k != "BookUpdate"]
    assert statuses == [StatusKind.CONNECTED, StatusKind.DISCONNECTED, StatusKind.GAP,
                        StatusKind.CONNECTED, StatusKind.RESYNC]
    after = rec.events[rec.kinds().index(StatusKind.RESYNC) + 1]
    assert after.delta.is_snapshot and after.seq in (200, 201)


def test_a_resync_snapshot_older_than_the_book_shown_is_brought_up_to_time(tmp_path):
    """After a gap the REST snapshot can lag (a cache node behind): its book is older
    than one already delivered. It is held until a diff brings it up to that time."""
    def snap(last: int, ts: int, bid: int) -> bytes:
        return orjson.dumps({"lastUpdateId": last, "E": ts, "T": ts,
                             "bids": [["10", str(bid)]], "asks": [["11", "1"]]})

    snaps = [snap(100, 1_000, 1), snap(101, 1_100, 2)]  # the second lags: seq 101

    async def script(sock: Socket) -> None:
        while len(snaps) == 2:
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.05)
        await sock.send(_diff(101, 101, 100, bids=[[10, 2]], ts=1_100))
        await sock.send(_diff(102, 102, 101, bids=[[10, 3]], ts=1_200))
        await sock.send(_diff(104, 104, 103, bids=[[10, 5]], ts=1_400))  # 103 lost
        while snaps:
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.05)
        await sock.send(_diff(102, 102, 101, bids=[[10, 3]], ts=1_200))
        await sock.send(_diff(103, 103, 102, bids=[[10, 4]], ts=1_300))

    async def main():
        async with FakeVenue() as venue:
            venue.routes = {"/binance/fapi/v1/exchangeInfo": INFO,
                            DEPTH: lambda _r: snaps.pop(0)}
            venue.scripts = {WS: script}
            async with _gateway(venue, tmp_path) as gw:
                rec = Recorder()
                gw.market_data().attach(rec)
                await gw.market_data().subscribe(_book(), "binance", "SUSHIUSDT", 5)
                await rec.until(lambda ev: any(getattr(e, "seq", 0) == 103 for e in ev))
                return rec

    rec = _run(main())
    seen = [(e.seq, e.exchange_ts // 1_000_000, e.delta.is_snapshot, e.bids.tolist())
            if type(e).__name__ == "BookUpdate" else e.kind for e in rec.events]
    assert seen == [StatusKind.CONNECTED, (100, 1_000, True, [[10, 1]]),
                    (101, 1_100, False, [[10, 2]]), (102, 1_200, False, [[10, 3]]),
                    StatusKind.GAP, StatusKind.RESYNC, (102, 1_200, True, [[10, 3]]),
                    (103, 1_300, False, [[10, 4]])]


def test_a_snapshot_fetch_cancelled_before_it_started_is_started_again(tmp_path):
    """A gap spawns a snapshot fetch; the socket's close is already read before that task
    ever runs, so the connection's task group cancels it unstarted. The next connection
    must still fetch a snapshot (a flag set before the task ran stayed set forever)."""
    snaps = [_snapshot(100, [[10, 1]], [[11, 1]]), _snapshot(200, [[10, 6]], [[11, 6]])]

    async def script(sock: Socket) -> None:
        if len(sock.venue.sockets) == 1:
            while not sock.venue.requests[1:]:  # until the first snapshot was fetched
                await asyncio.sleep(0.01)
            await asyncio.sleep(0.05)
            await sock.send(_diff(101, 101, 100, bids=[[10, 2]]))
            await sock.send(_diff(103, 103, 102, bids=[[10, 3]]))  # a gap, then at once:
            await sock.drop()
        else:
            while len(snaps) > 1:
                await asyncio.sleep(0.01)
            await asyncio.sleep(0.05)
            await sock.send(_diff(201, 201, 200, bids=[[10, 7]]))

    async def main():
        async with FakeVenue() as venue:
            venue.routes = {"/binance/fapi/v1/exchangeInfo": INFO,
                            DEPTH: lambda _r: snaps.pop(0) if len(snaps) > 1 else snaps[0]}
            venue.scripts = {WS: script}
            async with _gateway(venue, tmp_path) as gw:
                rec = Recorder()
                gw.market_data().attach(rec)
                await gw.market_data().subscribe(_book(), "binance", "SUSHIUSDT", 5)
                await rec.until(lambda ev: any(getattr(e, "seq", 0) == 201 for e in ev), 5)
                return rec

    rec = _run(main())
    books = [e.seq for e in rec.events if type(e).__name__ == "BookUpdate"]
    assert books[:2] == [100, 101] and books[-1] == 201


BYBIT_INFO = orjson.dumps({"result": {"nextPageCursor": "", "list": [{
    "symbol": "BTCUSDT", "status": "Trading", "baseCoin": "BTC", "quoteCoin": "USDT",
    "contractType": "LinearPerpetual", "priceFilter": {"tickSize": "0.1"},
    "lotSizeFilter": {"qtyStep": "0.001", "minOrderQty": "0.001"}}]}})


def _bybit_book(kind: str, u: int, bid: int) -> bytes:
    return orjson.dumps({"topic": "orderbook.50.BTCUSDT", "type": kind, "ts": 1_000 + u,
                         "cts": 1_000 + u, "data": {"s": "BTCUSDT", "b": [["10", str(bid)]],
                                                   "a": [["11", "1"]], "u": u, "seq": u}})


def test_a_lost_socket_snapshot_is_asked_for_again(tmp_path):
    """Bybit resyncs by subscribing again, and the venue answers with a snapshot. When
    that snapshot never comes and only deltas do, the stream subscribes once more."""
    from makerlab.live.stream import SNAPSHOT_PATIENCE

    subscribes = 0

    async def script(sock: Socket) -> None:
        nonlocal subscribes
        while True:
            if json.loads(await sock.next_message())["op"] != "subscribe":
                continue
            subscribes += 1
            if subscribes == 1:  # a book, then a gap: u 2 -> 4
                for kind, u in (("snapshot", 1), ("delta", 2), ("delta", 4)):
                    await sock.send(_bybit_book(kind, u, u))
            elif subscribes == 2:  # the snapshot is lost: deltas only
                for u in range(100, 100 + SNAPSHOT_PATIENCE):
                    await sock.send(_bybit_book("delta", u, 1))
            else:
                await sock.send(_bybit_book("snapshot", 200, 7))

    async def main():
        async with FakeVenue() as venue:
            venue.routes = {"/bybit/v5/market/instruments-info": BYBIT_INFO}
            venue.scripts = {"/bybit/v5/public/linear": script}
            cfg = {"bybit": {"env": "paper", "base_url": venue.url + "/bybit"}}
            async with Gateway(cfg, spec_cache=tmp_path, policy=FAST) as gw:
                rec = Recorder()
                gw.market_data().attach(rec)
                await gw.market_data().subscribe(_book(), "bybit", "BTCUSDT", 20)
                await rec.until(lambda ev: any(getattr(e, "seq", 0) == 200 for e in ev))
                return rec

    rec = _run(main())
    books = [(e.seq, e.delta.is_snapshot) for e in rec.events if type(e).__name__ == "BookUpdate"]
    assert books == [(1, True), (2, False), (200, True)]
    assert subscribes == 3
    assert [k for k in rec.kinds() if k != "BookUpdate"] == [
        StatusKind.CONNECTED, StatusKind.GAP, StatusKind.RESYNC]


def _trade(trade_id: int) -> bytes:
    return orjson.dumps({"stream": "sushiusdt@trade", "data": {
        "e": "trade", "E": 5, "T": 4, "s": "SUSHIUSDT", "t": trade_id, "p": "7.61", "q": "3",
        "X": "MARKET", "m": True}})


def test_a_repeated_trade_is_delivered_once(tmp_path):
    async def script(sock: Socket) -> None:
        for trade_id in (9, 10, 9, 11, 10):
            await sock.send(_trade(trade_id))

    async def main():
        async with FakeVenue() as venue:
            venue.routes = {"/binance/fapi/v1/exchangeInfo": INFO}
            venue.scripts = {WS: script}
            async with _gateway(venue, tmp_path) as gw:
                rec = Recorder()
                gw.market_data().attach(rec)
                await gw.market_data().subscribe(MarketKind.TRADES, "binance", "SUSHIUSDT", 0)
                await rec.until(lambda ev: any(getattr(e, "trade_id", "") == "11" for e in ev))
                await asyncio.sleep(0.05)
                return rec

    rec = _run(main())
    assert [e.trade_id for e in rec.events if type(e).__name__ == "TradeEvent"] == [
        "9", "10", "11"]


def test_silence_trips_the_watchdog(tmp_path):
    async def script(sock: Socket) -> None:
        await asyncio.sleep(10)

    async def main():
        async with FakeVenue() as venue:
            venue.routes = {"/binance/fapi/v1/exchangeInfo": INFO,
                            DEPTH: _snapshot(1, [[1, 1]], [[2, 1]])}
            venue.scripts = {WS: script}
            policy = ReconnectPolicy(initial_delay=0.01, max_delay=0.02, watchdog=0.2)
            gw = Gateway({"binance": {"env": "paper", "base_url": venue.url + "/binance"}},
                         spec_cache=tmp_path, policy=policy)
            async with gw:
                rec = Recorder()
                gw.market_data().attach(rec)
                await gw.market_data().subscribe(_book(), "binance", "SUSHIUSDT", 5)
                await rec.until(lambda ev: StatusKind.DISCONNECTED in
                                [getattr(e, "kind", None) for e in ev])
                return rec

    rec = _run(main())
    lost = next(e for e in rec.events if getattr(e, "kind", None) == StatusKind.DISCONNECTED)
    assert "no frame" in lost.detail


def test_protocol_pings_are_answered(tmp_path):
    """The server closes a socket whose pings go unanswered (heartbeat); ours survives."""
    async def script(sock: Socket) -> None:
        await asyncio.sleep(10)

    async def main():
        async with FakeVenue(heartbeat=0.05) as venue:
            venue.routes = {"/binance/fapi/v1/exchangeInfo": INFO,
                            DEPTH: _snapshot(1, [[1, 1]], [[2, 1]])}
            venue.scripts = {WS: script}
            async with _gateway(venue, tmp_path) as gw:
                await gw.market_data().subscribe(_book(), "binance", "SUSHIUSDT", 5)
                await asyncio.sleep(0.5)  # ten heartbeat periods
                alive = not venue.sockets[0].ws.closed
                return alive, gw.market_data().streams()["binance"].supervisor.connections

    alive, connections = _run(main())
    assert alive and connections == 1


def test_unknown_symbol_names_close_matches(tmp_path):
    from makerlab.errors import ConfigError

    async def main():
        async with FakeVenue() as venue:
            venue.routes = {"/binance/fapi/v1/exchangeInfo": INFO}
            async with _gateway(venue, tmp_path) as gw:
                feed = Feed(gateway=gw)
                with pytest.raises(ConfigError, match="did you mean SUSHIUSDT"):
                    await feed.add_l2_book_feed("binance", "SUSHIUSD", depth=5)
                with pytest.raises(ConfigError, match=r"not configured.*configured: binance"):
                    await feed.add_l2_book_feed("bybit", "BTCUSDT")
                assert feed.get_feed_ids() == [] and not venue.sockets
    _run(main())


def test_a_frame_that_cannot_be_read_is_reported_and_does_not_drop_the_connection(tmp_path):
    async def script(sock: Socket) -> None:
        while not sock.venue.requests or DEPTH not in sock.venue.requests[-1]:
            await asyncio.sleep(0.01)  # until the client fetched the snapshot
        await asyncio.sleep(0.05)
        await sock.send(_diff(101, 101, 100, bids=[[10, 2]]))
        await sock.send(_diff(102, 102, 101, bids=[[-10, 2]]))  # no positive price
        await sock.send(_diff(102, 102, 101, bids=[[10, 3]]))

    async def main():
        async with FakeVenue() as venue:
            venue.routes = {"/binance/fapi/v1/exchangeInfo": INFO,
                            DEPTH: _snapshot(100, [[10, 1]], [[11, 1]])}
            venue.scripts = {WS: script}
            async with _gateway(venue, tmp_path) as gw:
                rec = Recorder()
                gw.market_data().attach(rec)
                await gw.market_data().subscribe(_book(), "binance", "SUSHIUSDT", 5)
                await rec.until(lambda ev: any(getattr(e, "seq", 0) == 102 for e in ev))
                return rec, gw.market_data().streams()["binance"].supervisor.connections

    rec, connections = _run(main())
    statuses = [e for e in rec.events if type(e).__name__ == "FeedStatus"]
    assert [s.kind for s in statuses] == [StatusKind.CONNECTED, StatusKind.ERROR]
    assert "unreadable frame" in statuses[1].detail and connections == 1
    assert rec.events[-1].bids.tolist() == [[10, 3]]


def test_each_book_update_carries_the_deepest_depth_subscribed(tmp_path):
    bids = [[10 - k, 1] for k in range(8)]

    async def script(sock: Socket) -> None:
        while not sock.venue.requests or DEPTH not in sock.venue.requests[-1]:
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.05)
        await sock.send(_diff(101, 101, 100, asks=[[11, 2]]))
        await asyncio.sleep(0.3)  # the client subscribes again, with a smaller depth
        await sock.send(_diff(102, 102, 101, asks=[[11, 3]]))

    async def main():
        async with FakeVenue() as venue:
            venue.routes = {"/binance/fapi/v1/exchangeInfo": INFO,
                            DEPTH: _snapshot(100, bids, [[11, 1]])}
            venue.scripts = {WS: script}
            async with _gateway(venue, tmp_path) as gw:
                rec = Recorder()
                gw.market_data().attach(rec)
                await gw.market_data().subscribe(_book(), "binance", "SUSHIUSDT", 10)
                await rec.until(lambda ev: any(getattr(e, "seq", 0) == 101 for e in ev))
                await gw.market_data().subscribe(_book(), "binance", "SUSHIUSDT", 5)
                await rec.until(lambda ev: any(getattr(e, "seq", 0) == 102 for e in ev))
                return rec

    rec = _run(main())
    assert [len(e.bids) for e in rec.events if type(e).__name__ == "BookUpdate"] == [8, 8, 8]


def test_a_subscription_made_while_connected_is_sent_at_once_and_again_after_a_reconnect(
        tmp_path):
    async def script(sock: Socket) -> None:
        if len(sock.venue.sockets) == 1:
            await sock.next_message(timeout=10)  # the trades subscription
            await sock.drop()
        else:
            await asyncio.sleep(10)

    async def main():
        async with FakeVenue() as venue:
            venue.routes = {"/binance/fapi/v1/exchangeInfo": INFO,
                            DEPTH: _snapshot(100, [[10, 1]], [[11, 1]])}
            venue.scripts = {WS: script}
            async with _gateway(venue, tmp_path) as gw:
                rec = Recorder()
                gw.market_data().attach(rec)
                await gw.market_data().subscribe(_book(), "binance", "SUSHIUSDT", 5)
                await rec.until(lambda ev: StatusKind.CONNECTED in rec.kinds())
                await gw.market_data().subscribe(MarketKind.TRADES, "binance", "SUSHIUSDT", 0)
                await rec.until(lambda ev: rec.kinds().count(StatusKind.CONNECTED) == 2)
                return venue

    venue = _run(main())
    first, second = venue.sockets
    assert [json.loads(f)["params"] for f in first.received] == [["sushiusdt@trade"]]
    assert "sushiusdt@trade" in second.request.query_string


def test_a_trade_is_delivered_once_an_empty_id_never_repeats_and_memory_is_bounded():
    recent = _RecentIds(2)
    assert not recent.repeats("") and not recent.repeats("")  # no id: nothing to compare
    assert [recent.repeats(i) for i in ("a", "b", "a", "c", "a")] == [
        False, False, True, False, False]  # "a" forgotten once "c" made three
