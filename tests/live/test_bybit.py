"""Bybit v5 translation, on the real orderbook.500 capture and v5 messages."""

from __future__ import annotations

import orjson
from captures import FIXTURES, jsonl

from makerlab.core.events import BookDelta, TradeEvent
from makerlab.live.book import BookSync
from makerlab.live.venues.bybit import Bybit
from makerlab.trading.protocols import MarketKind


def test_ob500_capture_applies_all_49_deltas():
    venue, sync, applied, naive = Bybit(), None, [], ({}, {})
    for frame in jsonl("bybit_xrpusdt_ob500.data.zip"):
        (delta,) = venue.parse(frame, 0)
        sync = sync or BookSync(venue.rule, buffer_deltas=False)
        applied += sync.on_message(delta)
        raw = orjson.loads(frame)
        for side, rows in zip(naive, (raw["data"]["b"], raw["data"]["a"]), strict=True):
            if raw["type"] == "snapshot":
                side.clear()
            for p, s in rows:
                side.pop(float(p), None) if float(s) == 0 else side.update({float(p): float(s)})
    assert len(applied) == 50 and applied[0].is_snapshot
    assert sum(not d.is_snapshot for d in applied) == 49
    assert dict(sync.book.bids) == naive[0] and dict(sync.book.asks) == naive[1]
    bids, asks = sync.book.top(1)
    assert bids[0, 0] < asks[0, 0]
    assert applied[-1].exchange_ts == orjson.loads(jsonl("bybit_xrpusdt_ob500.data.zip")[-1])[
        "cts"] * 10**6


def test_v5_book_messages():
    frames = [f for f in jsonl("bybit_v5_messages.jsonl") if b'"orderbook.1.BTCUSDT"' in f]
    snap, delta = (Bybit().parse(f, 7)[0] for f in frames[:2])
    assert isinstance(snap, BookDelta) and snap.is_snapshot and not delta.is_snapshot
    assert (snap.symbol, snap.seq, delta.seq) == ("BTCUSDT", 7003305, 7003306)
    assert snap.bids.tolist() == [[28552.0, 0.047]] and delta.asks.shape == (0, 2)
    assert snap.exchange_ts == 1680673820717 * 10**6  # no cts: ts


def test_taker_side_golden():
    frames = [f for f in jsonl("bybit_v5_messages.jsonl") if b"publicTrade" in f]
    trades = [t for f in frames for t in Bybit().parse(f, 0)]
    raw = [t for f in frames for t in orjson.loads(f)["data"]]
    assert len(trades) == len(raw) > 1
    for trade, row in zip(trades, raw, strict=True):
        assert isinstance(trade, TradeEvent)
        assert trade.side == {"Buy": 1, "Sell": -1}[row["S"]]
        assert (trade.price, trade.size, trade.trade_id) == (float(row["p"]), float(row["v"]),
                                                             row["i"])
    sell = frames[0].replace(b'"S":"Buy"', b'"S":"Sell"')
    assert Bybit().parse(sell, 0)[0].side == -1


def test_topics_frames_and_control():
    venue = Bybit()
    assert venue.topics(MarketKind.L2BOOK, "BTCUSDT", 20) == ["orderbook.50.BTCUSDT"]
    assert venue.topics(MarketKind.L2BOOK, "BTCUSDT", 500) == ["orderbook.1000.BTCUSDT"]
    assert venue.stream_url("ws://h/bybit", []) == "ws://h/bybit/v5/public/linear"
    frames = venue.subscribe_frames([f"t{i}" for i in range(12)])
    assert [len(orjson.loads(f)["args"]) for f in frames] == [10, 2]
    assert venue.parse(b'{"success":true,"ret_msg":"","op":"subscribe","conn_id":"c"}', 0) == []
    assert venue.parse(b'{"success":true,"ret_msg":"pong","op":"ping"}', 0) == []


def test_specs_and_pagination():
    body = (FIXTURES / "bybit_instruments_linear.json").read_bytes()
    page = Bybit().parse_specs(body)
    btc = next(s for s in page.specs if s.symbol == "BTCUSDT")
    assert (str(btc.tick_size), str(btc.lot_size), str(btc.min_qty), str(btc.min_notional)) == \
        ("0.5", "0.001", "0.001", "5")
    assert page.next_request is None
    paged = orjson.loads(body)
    paged["result"]["nextPageCursor"] = "abc"
    nxt = Bybit().parse_specs(orjson.dumps(paged)).next_request
    assert nxt is not None and nxt.params["cursor"] == "abc"
