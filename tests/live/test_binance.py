"""Binance USD-M and spot translation, on real captured sessions."""

from __future__ import annotations

import orjson
import pytest
from captures import cryptofeed_http, cryptofeed_ws, jsonl, stamped

from makerlab.core.events import BookDelta, TradeEvent
from makerlab.live.book import BookSync
from makerlab.live.venues.binance import BinanceSpot, BinanceUsdm
from makerlab.trading.protocols import MarketKind


def _replay_usdm():
    """The 2021 session through one BookSync per symbol, REST snapshots injected at their
    receive time, as the live stream would interleave them."""
    venue = BinanceUsdm()
    snaps = [(ts, url.split("symbol=")[1].split("&")[0], body)
             for url, ts, body in cryptofeed_http("binance_usdm_2021_depth_snapshots.txt.gz")]
    syncs = {sym: BookSync(venue.rule, buffer_deltas=True) for _, sym, _ in snaps}
    applied = {sym: [] for sym in syncs}
    tickers = {sym: [] for sym in syncs}
    for ts, frame in cryptofeed_ws("binance_usdm_2021_ws.txt.gz"):
        while snaps and snaps[0][0] <= ts:
            _, sym, body = snaps.pop(0)
            applied[sym] += syncs[sym].on_message(venue.parse_snapshot(body, sym, ts))
        data = orjson.loads(frame)["data"]
        if data["e"] == "bookTicker":
            tickers[data["s"]].append(data)
        for event in venue.parse(frame, ts):
            if isinstance(event, BookDelta):
                applied[event.symbol] += syncs[event.symbol].on_message(event)
    return syncs, applied, tickers


def test_usdm_session_syncs_every_symbol_without_a_gap():
    syncs, applied, tickers = _replay_usdm()
    diffs = sum(len(a) - 1 for a in applied.values())
    assert diffs > 500  # most of the 764 diffs follow a snapshot; none raised a gap
    for sym, sync in syncs.items():
        assert sync.live and applied[sym][0].is_snapshot
        last = applied[sym][-1].seq
        # bookTicker fires on every top-of-book change and shares the update-id counter
        ticker = [t for t in tickers[sym] if t["u"] <= last][-1]
        bids, asks = sync.book.top(1)
        assert bids[0].tolist() == [float(ticker["b"]), float(ticker["B"])]
        assert asks[0].tolist() == [float(ticker["a"]), float(ticker["A"])]


def test_usdm_depth_translation():
    frame = (b'{"stream":"btcusdt@depth@100ms","data":{"e":"depthUpdate","E":1626992741037,'
             b'"T":1626992741024,"s":"BTCUSDT","U":157,"u":160,"pu":149,'
             b'"b":[["7.5040","813"],["7.6090","0"]],"a":[["7.6150","1563"]]}}')
    (delta,) = BinanceUsdm().parse(frame, 5)
    assert (delta.exchange, delta.symbol, delta.seq, delta.first_seq, delta.prev_seq) == \
        ("binance", "BTCUSDT", 160, 157, 149)
    assert delta.exchange_ts == 1626992741024 * 10**6 and delta.local_ts == 5
    assert delta.bids.tolist() == [[7.504, 813.0], [7.609, 0.0]] and not delta.is_snapshot


def test_usdm_aggressor_is_the_inverse_of_buyer_is_maker():
    venue = BinanceUsdm()
    seen = 0
    for ts, frame in stamped("binance_usdm_20220811_trades.txt", 1000):
        (trade,) = venue.parse(frame, ts)
        data = orjson.loads(frame)["data"]
        assert isinstance(trade, TradeEvent)
        assert trade.side == (-1 if data["m"] else 1)
        assert (trade.price, trade.size, trade.trade_id) == \
            (float(data["p"]), float(data["q"]), str(data["t"]))
        assert trade.exchange_ts == data["T"] * 10**6
        seen += 1
    assert seen == 40


def test_golden_trade_sides():
    venue = BinanceUsdm()
    buy = (b'{"stream":"x","data":{"e":"trade","E":2,"T":1,"s":"BTCUSDT","t":7,"p":"1",'
           b'"q":"2","X":"MARKET","m":false}}')
    sell = buy.replace(b'"m":false', b'"m":true')
    assert venue.parse(buy, 0)[0].side == 1 and venue.parse(sell, 0)[0].side == -1
    assert venue.parse(buy.replace(b"MARKET", b"ADL"), 0) == []


def test_control_frames_are_not_events():
    assert BinanceUsdm().parse(b'{"result":null,"id":1}', 0) == []


@pytest.mark.parametrize("price", ["inf", "nan", "-1", "0"])
def test_a_level_that_is_no_positive_finite_price_is_unreadable(price):
    """The stream reports such a frame as unreadable; the book never sees it (the Feed
    loads books without checking levels again)."""
    frame = orjson.dumps({"stream": "btcusdt@depth@100ms", "data": {
        "e": "depthUpdate", "E": 1, "T": 1, "s": "BTCUSDT", "U": 1, "u": 1, "pu": 0,
        "b": [["61800.1", "1"], [price, "1"]], "a": []}})
    with pytest.raises(ValueError, match="not a positive finite price"):
        BinanceUsdm().parse(frame, 0)


def test_spot_session_is_contiguous():
    venue = BinanceSpot()
    last: dict[str, BookDelta] = {}
    links = 0
    for ts, frame in cryptofeed_ws("binance_spot_2021_ws.txt.gz"):
        if b"depthUpdate" not in frame:
            continue
        (delta,) = venue.parse(frame, ts)
        prev = last.get(delta.symbol)
        if prev is not None:
            assert venue.rule.check(prev, delta).value == "apply"
            links += 1
        last[delta.symbol] = delta
    assert links > 50


def test_topics_and_urls_follow_the_routed_paths():
    usdm, spot = BinanceUsdm(), BinanceSpot()
    topics = usdm.topics(MarketKind.L2BOOK, "BTCUSDT", 20) + \
        usdm.topics(MarketKind.TRADES, "BTCUSDT", 0)
    assert usdm.stream_url("ws://h/binance", topics) == \
        "ws://h/binance/public/stream?streams=btcusdt@depth@100ms/btcusdt@trade"
    assert spot.stream_url("wss://s", ["a"]) == "wss://s/stream?streams=a"
    assert orjson.loads(usdm.subscribe_frames(["x"])[0])["method"] == "SUBSCRIBE"
    req = usdm.snapshot_request("BTCUSDT")
    assert (req.path, dict(req.params)) == ("/fapi/v1/depth",
                                            {"symbol": "BTCUSDT", "limit": "1000"})


def test_usdm_specs_from_exchange_info():
    (body,) = [b for _, _, b in cryptofeed_http("binance_usdm_2021_exchange_info.txt.gz")]
    specs = {s.symbol: s for s in BinanceUsdm().parse_specs(body).specs}
    assert len(specs) == 121  # TRADING only
    sushi = specs["SUSHIUSDT"]
    assert (str(sushi.tick_size), str(sushi.lot_size), str(sushi.min_qty),
            str(sushi.min_notional), sushi.kind) == ("0.001", "1", "1", "5", "linear_perpetual")
    assert specs["BTCUSDT"].tick_size == specs["BTCUSDT"].round_price("0.01")


@pytest.mark.parametrize("name", ["binance_usdm_20220811_trades.txt"])
def test_fixture_has_both_sides(name):
    sides = {orjson.loads(f)["data"]["m"] for f in jsonl(name) for f in [f.split(b" ", 1)[1]]}
    assert sides == {True, False}
