"""Paradex and WOO X translation, and the resync modes other than REST snapshots
(Bybit resubscribe, WOO socket snapshot, application pings) against a fake venue."""

from __future__ import annotations

import asyncio

import orjson
from captures import FIXTURES, jsonl
from fake_venue import FakeVenue, Socket

from makerlab.core.events import BookDelta, BookUpdate, StatusKind, TradeEvent
from makerlab.live.book import BookSync
from makerlab.live.gateway import Gateway
from makerlab.live.transport import ReconnectPolicy
from makerlab.live.venues.base import Reply
from makerlab.live.venues.bybit import Bybit
from makerlab.live.venues.paradex import Paradex
from makerlab.live.venues.woo import Woox
from makerlab.trading.protocols import MarketKind

FAST = ReconnectPolicy(initial_delay=0.01, max_delay=0.05, watchdog=2.0, rest_timeout=2.0)


def _paradex_book(seq, kind, inserts=(), updates=(), deletes=()):
    def rows(items):
        return [{"side": s, "price": str(p), "size": str(q)} for s, p, q in items]
    data = {"seq_no": seq, "market": "BTC-USD-PERP", "last_updated_at": 1718267837265,
            "update_type": kind, "inserts": rows(inserts), "updates": rows(updates),
            "deletes": rows(deletes)}
    return orjson.dumps({"jsonrpc": "2.0", "method": "subscription", "params": {
        "channel": "order_book.BTC-USD-PERP.snapshot@15@50ms", "data": data}})


def test_paradex_book_and_taker_side():
    venue = Paradex()
    (snap,) = venue.parse(_paradex_book(7, "s", inserts=[("BUY", 67629.7, 0.992),
                                                         ("SELL", 69378.6, 3.137)]), 1)
    (delta,) = venue.parse(_paradex_book(8, "d", updates=[("BUY", 67629.7, 2)],
                                         deletes=[("SELL", 69378.6, 0)]), 2)
    assert snap.is_snapshot and snap.bids.tolist() == [[67629.7, 0.992]]
    assert snap.exchange_ts == 1718267837265 * 10**6 and not delta.is_snapshot
    assert delta.asks.tolist() == [[69378.6, 0.0]]
    sync = BookSync(venue.rule, buffer_deltas=False)
    assert len(sync.on_message(snap) + sync.on_message(delta)) == 2
    trade = orjson.dumps({"jsonrpc": "2.0", "method": "subscription", "params": {
        "channel": "trades.BTC-USD-PERP", "data": {
            "id": "12345643", "market": "BTC-USD-PERP", "side": "SELL", "size": "0.01",
            "price": "30001.2", "created_at": 1681497002041, "trade_type": "FILL"}}})
    (t,) = venue.parse(trade, 0)
    assert (t.side, t.price, t.size, t.trade_id) == (-1, 30001.2, 0.01, "12345643")
    assert venue.parse(trade.replace(b'"SELL"', b'"BUY"'), 0)[0].side == 1
    ack = b'{"jsonrpc":"2.0","result":{"channel":"trades.BTC-USD-PERP"},"id":2}'
    assert venue.parse(ack, 0) == []
    frame = orjson.loads(venue.subscribe_frames(["trades.BTC-USD-PERP"])[0])
    assert frame["method"] == "subscribe" and frame["params"] == {"channel": "trades.BTC-USD-PERP"}


def test_paradex_specs():
    body = orjson.dumps({"results": [
        {"symbol": "BTC-USD-PERP", "base_currency": "BTC", "quote_currency": "USD",
         "asset_kind": "PERP", "price_tick_size": "0.1", "order_size_increment": "0.00001",
         "min_notional": "100"},
        {"symbol": "BTC-USD-100000-C", "asset_kind": "PERP_OPTION"}]})
    (spec,) = Paradex().parse_specs(body).specs
    assert (str(spec.tick_size), str(spec.lot_size), str(spec.min_notional)) == \
        ("0.1", "0.00001", "100")


def test_woox_capture_chain_and_taker_side():
    venue = Woox("app")
    frames = jsonl("woox_messages.jsonl")
    (snap,) = venue.parse(next(f for f in frames if b'"event":"request"' in f), 0)
    update = next(f for f in frames if b'"prevTs":1674432000020' in f)
    (delta,) = venue.parse(update, 0)
    assert snap.is_snapshot and snap.seq == 1674432000020
    assert (delta.prev_seq, delta.seq) == (1674432000020, 1674432000220)
    sync = BookSync(venue.rule, buffer_deltas=True)
    assert sync.on_message(snap) == [snap] and sync.on_message(delta) == [delta]
    assert sync.book.top(1)[1].tolist() == [[22712.7, 16.1625]]
    trades = [t for f in frames if b'@trade"' in f for t in venue.parse(f, 0)]
    raw = [orjson.loads(f)["data"]["side"] for f in frames if b'@trade"' in f]
    assert [t.side for t in trades] == [1 if s == "BUY" else -1 for s in raw] and trades
    assert venue.parse(b'{"event":"ping","ts":1}', 0) == [Reply(b'{"event":"pong"}')]


def test_woox_specs_from_v3_instruments():
    body = orjson.dumps({"success": True, "data": {"rows": [
        {"symbol": "PERP_BTC_USDT", "status": "TRADING", "quoteTick": "0.1",
         "baseTick": "0.0001", "baseMin": "0.0001", "minNotional": "10"}]}})
    (spec,) = Woox().parse_specs(body).specs
    assert (spec.base, spec.quote, spec.kind, str(spec.tick_size)) == \
        ("BTC", "USDT", "linear_perpetual", "0.1")


class Recorder:
    def __init__(self) -> None:
        self.events: list = []

    async def on_book(self, update) -> None:
        self.events.append(update)

    async def on_trade(self, trade) -> None:
        self.events.append(trade)

    async def on_status(self, status) -> None:
        self.events.append(status)


async def _until(predicate, timeout=10.0):
    async def poll():
        while not predicate():
            await asyncio.sleep(0.01)
    await asyncio.wait_for(poll(), timeout)


def _bybit(u, kind, bids=(), asks=()):
    return orjson.dumps({"topic": "orderbook.50.BTCUSDT", "type": kind, "ts": 1, "cts": 1,
                         "data": {"s": "BTCUSDT", "b": [list(map(str, r)) for r in bids],
                                  "a": [list(map(str, r)) for r in asks], "u": u, "seq": 9}})


def test_bybit_gap_resubscribes_and_pings_are_sent(tmp_path, monkeypatch):
    monkeypatch.setattr(Bybit, "ping_interval", 0.02)
    info = (FIXTURES / "bybit_instruments_linear.json").read_bytes()

    async def script(sock: Socket) -> None:
        subs = 0
        while True:
            msg = orjson.loads(await sock.next_message())
            if msg["op"] == "ping":
                await sock.send(b'{"success":true,"ret_msg":"pong","op":"ping"}')
            elif msg["op"] == "subscribe":
                subs += 1
                await sock.send(_bybit(10 * subs, "snapshot", [[100, subs]], [[101, 1]]))
                await sock.send(_bybit(10 * subs + 1, "delta", [[100, 5]]))
                if subs == 1:
                    await sock.send(_bybit(13, "delta", [[100, 6]]))  # 12 is lost

    async def main():
        async with FakeVenue() as venue:
            venue.routes = {"/v5/market/instruments-info": info}
            venue.scripts = {"/v5/public/linear": script}
            cfg = {"bybit": {"env": "paper", "base_url": venue.url}}
            async with Gateway(cfg, spec_cache=tmp_path, policy=FAST) as gw:
                rec = Recorder()
                gw.market_data().attach(rec)
                await gw.market_data().subscribe(MarketKind.L2BOOK, "bybit", "BTCUSDT", 20)
                await _until(lambda: any(getattr(e, "seq", 0) == 21 for e in rec.events))
                await _until(lambda: sum('"ping"' in m for m in venue.sockets[0].received) > 2)
                return rec, venue.sockets[0].received

    rec, received = asyncio.run(main())
    ops = [orjson.loads(m)["op"] for m in received if '"ping"' not in m]
    assert ops == ["subscribe", "unsubscribe", "subscribe"]
    assert orjson.loads(received[0])["args"] == ["orderbook.50.BTCUSDT"]
    books = [(e.seq, e.delta.is_snapshot) for e in rec.events if isinstance(e, BookUpdate)]
    assert books == [(10, True), (11, False), (20, True), (21, False)]
    statuses = [e.kind for e in rec.events if not isinstance(e, (BookUpdate, TradeEvent))]
    assert statuses == [StatusKind.CONNECTED, StatusKind.GAP, StatusKind.RESYNC]


def test_woox_snapshot_is_requested_on_the_socket(tmp_path):
    instruments = orjson.dumps({"success": True, "data": {"rows": [
        {"symbol": "PERP_BTC_USDT", "status": "TRADING", "quoteTick": "0.1",
         "baseTick": "0.0001", "baseMin": "0.0001", "minNotional": "10"}]}})
    frames = jsonl("woox_messages.jsonl")
    snapshot = next(f for f in frames if b'"event":"request"' in f)
    update = next(f for f in frames if b'"prevTs":1674432000020' in f)

    async def script(sock: Socket) -> None:
        while True:
            msg = orjson.loads(await sock.next_message())
            if msg["event"] == "request":
                await sock.send(b'{"event":"ping"}')  # WOO X's own ping: pong expected
                await sock.send(update)  # arrives first: buffered until the snapshot
                await sock.send(snapshot)

    async def main():
        async with FakeVenue() as venue:
            venue.routes = {"/v3/public/instruments": instruments}
            venue.scripts = {"/ws/stream/my-app": script}
            cfg = {"woox": {"env": "paper", "base_url": venue.url, "app_id": "my-app"}}
            async with Gateway(cfg, spec_cache=tmp_path, policy=FAST) as gw:
                rec = Recorder()
                gw.market_data().attach(rec)
                await gw.market_data().subscribe(MarketKind.L2BOOK, "woox", "PERP_BTC_USDT", 5)
                await _until(lambda: any(isinstance(e, BookUpdate) for e in rec.events))
                await _until(lambda: len(venue.sockets[0].received) >= 3)
                return rec, venue.sockets[0].received

    rec, received = asyncio.run(main())
    assert [orjson.loads(m)["event"] for m in received] == ["subscribe", "request", "pong"]
    (book,) = [e for e in rec.events if isinstance(e, BookUpdate)]
    assert book.delta.is_snapshot and book.seq == 1674432000220  # the update replayed on it
    assert book.asks.tolist()[0] == [22712.7, 16.1625]
    assert isinstance(book.delta, BookDelta)
