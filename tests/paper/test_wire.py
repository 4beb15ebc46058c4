"""What the paper exchange puts on the wire, against real venue messages.

Binance is checked *exactly*: the bundled archive was converted from a real capture
(``tests/samples/binance``), so the REST snapshot and the stream messages the paper
exchange serves must be the captured ones (except ``E``, which the archive does not keep:
the paper exchange sends the transaction time ``T`` there). Bybit and Hyperliquid, for
which the archive holds no captured message, are checked for shape (fields, types,
number strings) against real messages in ``fixtures/`` and for their values against the
archive.
"""

from __future__ import annotations

import gzip
import itertools
import json
import re
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest
from paper_oracles import BUNDLED, END, START, run

from makerlab.data.archive import read_table
from makerlab.paper import PaperExchange

FIXTURES = Path(__file__).parent / "fixtures"
SAMPLES = Path(__file__).resolve().parents[1] / "samples" / "binance"
_DECIMAL = re.compile(r"^-?\d+(\.\d+)?$")


def shape(value: Any) -> Any:
    """The structure of a JSON value: keys, element shape, and value kinds."""
    if isinstance(value, dict):
        return {k: shape(v) for k, v in value.items()}
    if isinstance(value, list):
        return [shape(value[0])] if value else []
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, str):
        return "decimal" if _DECIMAL.match(value) else "str"
    return type(value).__name__


def fixture(name: str) -> Any:
    text = (FIXTURES / name).read_text()
    if name.endswith(".jsonl"):
        return [json.loads(line) for line in text.splitlines()]
    return json.loads(text)


def captured(name: str) -> list[dict[str, Any]]:
    """The messages of a bundled raw capture (``<local ns> <json>`` lines)."""
    with gzip.open(SAMPLES / name, "rt") as lines:
        return [json.loads(line.split(" ", 1)[1]) for line in lines]


# --------------------------------------------------------------------------- one session


async def _get(http: aiohttp.ClientSession, url: str, **params: str) -> Any:
    async with http.get(url, params=params) as reply:
        return await reply.json()


async def _post(http: aiohttp.ClientSession, url: str, body: dict[str, Any]) -> Any:
    async with http.post(url, json=body) as reply:
        return await reply.json() if reply.status == 200 else reply.status


async def _messages(http: aiohttp.ClientSession, url: str, send: list[dict[str, Any]],
                    count: int, until: Any = None) -> list[Any]:
    """Connect, send ``send``, and return the first ``count`` messages received (or those
    up to the message ``until``)."""
    received: list[Any] = []
    async with http.ws_connect(url) as ws:
        for message in send:
            await ws.send_str(orjson.dumps(message).decode())
        while len(received) < count and (until is None or until not in received):
            received.append(orjson.loads((await ws.receive(timeout=10)).data))
    return received


async def _binance(http: aiohttp.ClientSession, paper: PaperExchange) -> dict[str, Any]:
    rest, ws = paper.urls["binance"]["rest"], paper.urls["binance"]["ws"]
    spot_rest, spot_ws = paper.urls["binance_spot"]["rest"], paper.urls["binance_spot"]["ws"]
    out = {  # REST snapshots first: at speed 0 the market waits for a subscriber
        "depth": await _get(http, rest + "/fapi/v1/depth", symbol="BTCUSDT", limit="1000"),
        "spot_depth": await _get(http, spot_rest + "/api/v3/depth", symbol="BTCUSDT",
                                 limit="1000"),
        "info": await _get(http, rest + "/fapi/v1/exchangeInfo"),
        "spot_info": await _get(http, spot_rest + "/api/v3/exchangeInfo"),
        "time": await _get(http, rest + "/fapi/v1/time"),
        "ping": await _get(http, rest + "/fapi/v1/ping"),
        "bad_symbol": await _get(http, rest + "/fapi/v1/depth", symbol="NOPE"),
    }
    out["stream"] = await _messages(
        http, ws + "/public/stream?streams=btcusdt@depth@0ms/btcusdt@trade", [], 400)
    out["spot_stream"] = await _messages(
        http, spot_ws + "/stream?streams=btcusdt@depth@100ms/btcusdt@trade", [], 400)
    out["routed"] = await _messages(http, ws + "/public/ws", [
        {"method": "SUBSCRIBE", "params": ["btcusdt@aggTrade", "btcusdt@bookTicker"], "id": 1},
        {"method": "LIST_SUBSCRIPTIONS", "id": 2}], 50)
    out["market"] = await _messages(http, ws + "/market/ws/btcusdt@aggTrade", [], 3)
    out["slow"] = await _messages(http, ws + "/public/ws/btcusdt@depth@500ms", [], 20)
    async with http.ws_connect(ws + "/public/ws", autoping=False) as raw:
        await raw.ping(b"hello")
        out["pong"] = await raw.receive(timeout=10)
    return out


async def _bybit(http: aiohttp.ClientSession, paper: PaperExchange) -> dict[str, Any]:
    rest, ws = paper.urls["bybit"]["rest"], paper.urls["bybit"]["ws"] + "/v5/public/linear"
    info = rest + "/v5/market/instruments-info"
    return {
        "info": await _get(http, info, category="linear"),
        "page1": await _get(http, info, category="linear", limit="1"),
        "page2": await _get(http, info, category="linear", limit="1", cursor="1"),
        "book": await _get(http, rest + "/v5/market/orderbook", category="linear",
                           symbol="BTCUSDT", limit="50"),
        "ws": await _messages(http, ws, [
            {"op": "subscribe", "args": ["orderbook.50.BTCUSDT", "publicTrade.BTCUSDT"],
             "req_id": "s1"},
            {"op": "subscribe", "args": ["orderbook.7.BTCUSDT"], "req_id": "s2"},
            {"op": "ping", "req_id": "p1"}], 300),
    }


async def _hyperliquid(http: aiohttp.ClientSession, paper: PaperExchange) -> dict[str, Any]:
    rest, ws = paper.urls["hyperliquid"]["rest"] + "/info", paper.urls["hyperliquid"]["ws"]
    subscribe = {"method": "subscribe", "subscription": {"type": "l2Book", "coin": "BTCUSDT"}}
    trades = {"type": "trades", "coin": "ETHUSDT"}
    return {
        "meta": await _post(http, rest, {"type": "meta"}),
        "book": await _post(http, rest, {"type": "l2Book", "coin": "BTCUSDT"}),
        "mids": await _post(http, rest, {"type": "allMids"}),
        "unknown_coin": await _post(http, rest, {"type": "l2Book", "coin": "NOPE"}),
        "bad_type": await _post(http, rest, {"type": "nope"}),
        "ws": await _messages(http, ws + "/ws", [
            subscribe, subscribe,
            {"method": "subscribe", "subscription": {"type": "trades", "coin": "BTCUSDT"}},
            {"method": "subscribe", "subscription": {"type": "trades", "coin": "NOPE"}},
            {"method": "ping"}], 300),
        "unsubscribe": [m for m in await _messages(http, ws + "/ws", [
            {"method": "subscribe", "subscription": trades},
            {"method": "unsubscribe", "subscription": trades},
            {"method": "unsubscribe", "subscription": trades},
            {"method": "ping"}], 50, until={"channel": "pong"}) if m["channel"] != "trades"],
    }


@pytest.fixture(scope="module")
def wire() -> dict[str, Any]:
    """One paper exchange over the bundled archive, every protocol asked once."""

    async def body():
        serve = {"bybit": "binance", "hyperliquid": "binance"}
        async with (PaperExchange(BUNDLED, START, END, speed=0, serve=serve) as paper,
                    aiohttp.ClientSession() as http):
            return {"binance": await _binance(http, paper),
                    "bybit": await _bybit(http, paper),
                    "hyperliquid": await _hyperliquid(http, paper)}

    return run(body)


def _data(frames: list[dict[str, Any]], event: str) -> list[dict[str, Any]]:
    return [f["data"] for f in frames if f.get("data", {}).get("e") == event]


# --------------------------------------------------------------------------- Binance


@pytest.mark.parametrize(("market", "sample"), [("depth", "usdm_btcusdt_20240808_head.gz"),
                                                ("spot_depth", "spot_btcusdt_20240808_head.gz")])
def test_binance_rest_snapshot_is_the_captured_one(wire, market, sample):
    [real] = [m for m in captured(sample) if "lastUpdateId" in m]
    served = wire["binance"][market]
    assert {k: served[k] for k in real if k != "E"} == {k: v for k, v in real.items() if k != "E"}
    assert shape(served) == shape(real)


@pytest.mark.parametrize(("stream", "sample"), [("stream", "usdm_btcusdt_20240808_head.gz"),
                                                ("spot_stream", "spot_btcusdt_20240808_head.gz")])
def test_binance_stream_messages_are_the_captured_ones(wire, stream, sample):
    real = [m["data"] for m in captured(sample) if "stream" in m]
    served = wire["binance"][stream]
    assert {f["stream"] for f in served} == {"btcusdt@trade", "btcusdt@depth@" + (
        "0ms" if stream == "stream" else "100ms")}
    for event, key in (("depthUpdate", "u"), ("trade", "t")):
        originals = {m[key]: m for m in real if m.get("e") == event}
        sent = _data(served, event)
        assert len(sent) > 20
        compared = [m for m in sent if m[key] in originals]
        assert len(compared) > 20
        for message in compared:
            original = dict(originals[message[key]])
            original["E"] = original.get("T", message["E"])  # the archive keeps one clock
            assert message == original


def test_binance_metadata_has_the_venue_format(wire):
    served, real = wire["binance"]["info"], fixture("binance_usdm_exchange_info.json")
    assert served.keys() == real.keys()
    [btc] = [s for s in served["symbols"] if s["symbol"] == "BTCUSDT"]
    assert shape(btc) | {"filters": None} == shape(real["symbols"][0]) | {"filters": None}
    assert [f["filterType"] for f in btc["filters"]] == [
        f["filterType"] for f in real["symbols"][0]["filters"]]
    filters = {f["filterType"]: f for f in btc["filters"]}
    assert (filters["PRICE_FILTER"]["tickSize"], filters["LOT_SIZE"]["stepSize"]) == (
        "0.10", "0.001")  # makerlab's bundled spec
    assert (btc["pricePrecision"], btc["quantityPrecision"]) == (2, 3)
    assert {s["symbol"] for s in wire["binance"]["spot_info"]["symbols"]} == {
        "BTCUSDT", "ETHUSDT"}
    assert wire["binance"]["ping"] == {}
    assert wire["binance"]["time"]["serverTime"] >= served["serverTime"]
    assert wire["binance"]["bad_symbol"] == {"code": -1121, "msg": "Invalid symbol."}


def test_binance_streams_are_routed_by_path(wire):
    routed = wire["binance"]["routed"]
    assert routed[0] == {"result": None, "id": 1}
    assert routed[1] == {"result": ["btcusdt@aggTrade", "btcusdt@bookTicker"], "id": 2}
    events = {m.get("e") for m in routed[2:]}
    assert events == {"bookTicker"}  # aggTrade lives on /market: nothing on /public
    [real_agg, real_ticker] = [m["data"] for m in fixture("binance_usdm_ws_2021.jsonl")]
    assert shape(routed[2]) == shape(real_ticker)
    assert [shape(m) for m in wire["binance"]["market"]] == [shape(real_agg)] * 3


def test_binance_answers_ping_frames(wire):
    pong = wire["binance"]["pong"]
    assert (pong.type, pong.data) == (aiohttp.WSMsgType.PONG, b"hello")


def test_binance_depth_interval_merges_messages(wire):
    slow = wire["binance"]["slow"]
    assert all(b["E"] - a["E"] >= 500 for a, b in itertools.pairwise(slow))
    assert all(b["pu"] == a["u"] for a, b in itertools.pairwise(slow))
    assert all(m["U"] <= m["u"] for m in slow)


def test_binance_book_ticker_is_the_top_of_the_served_book(wire):
    tickers = [m for m in wire["binance"]["routed"][2:] if m.get("e") == "bookTicker"]
    assert all(float(t["b"]) < float(t["a"]) for t in tickers)
    assert len({(t["b"], t["B"], t["a"], t["A"]) for t in tickers}) == len(tickers)


# --------------------------------------------------------------------------- Bybit


def test_bybit_rest_has_the_venue_format(wire):
    bybit = wire["bybit"]
    reals = [fixture(f"bybit_instruments_linear{n}.json") for n in ("", "_2")]
    entry = shape(bybit["info"]["result"]["list"][0])
    examples = [shape(r["result"]["list"][0]) for r in reals]
    for key in examples[0].keys() & examples[1].keys():  # as in one of the real answers
        assert entry[key] in (examples[0][key], examples[1][key]), key
    assert shape(bybit["info"]) | {"result": None} == shape(reals[1]) | {"result": None}
    assert bybit["info"]["result"].keys() == reals[1]["result"].keys()
    assert [i["symbol"] for i in bybit["info"]["result"]["list"]] == ["BTCUSDT", "ETHUSDT"]
    assert (bybit["page1"]["result"]["nextPageCursor"], bybit["page2"]["result"][
        "nextPageCursor"]) == ("1", "")
    assert [bybit["page1"]["result"]["list"][0]["symbol"],
            bybit["page2"]["result"]["list"][0]["symbol"]] == ["BTCUSDT", "ETHUSDT"]
    assert bybit["book"].keys() == bybit["info"].keys()  # the one envelope
    assert shape(bybit["book"]["result"]) == shape(fixture("bybit_orderbook.json")["result"])
    assert len(bybit["book"]["result"]["b"]) == 50


def test_bybit_websocket_has_the_venue_format(wire):
    messages = wire["bybit"]["ws"]
    ack, refused, pong = messages[0], messages[2], next(m for m in messages if
                                                        m.get("op") == "ping")
    assert shape(ack) == shape(fixture("bybit_subscription_ack.json"))
    assert (ack["success"], ack["req_id"]) == (True, "s1")
    assert (refused["success"], refused["req_id"]) == (False, "s2")
    assert (pong["success"], pong["ret_msg"]) == (True, "pong")
    real_snapshot, real_delta, real_trade = fixture("bybit_ws_v5.jsonl")
    book = [m for m in messages if m.get("topic") == "orderbook.50.BTCUSDT"]
    assert messages[1] == book[0] and book[0]["type"] == "snapshot"
    assert shape(book[0]) == shape(real_snapshot)
    assert len(book[0]["data"]["b"]) == len(book[0]["data"]["a"]) == 50
    deltas = [m for m in book if m["type"] == "delta"]
    assert all(shape(m) | {"data": None} == shape(real_delta) | {"data": None} for m in deltas)
    assert [m["data"]["u"] for m in book] == list(range(book[0]["data"]["u"],
                                                        book[0]["data"]["u"] + len(book)))
    trades = [m for m in messages if m.get("topic") == "publicTrade.BTCUSDT"]
    real_fields = shape(real_trade)["data"][0] | {"i": "str"}  # ids: uuids there, archived here
    assert trades and all((shape(t)["data"][0] | {"i": "str"}).items() >= real_fields.items()
                          for t in trades)


# --------------------------------------------------------------------------- Hyperliquid


def test_hyperliquid_info_has_the_venue_format(wire):
    hl = wire["hyperliquid"]
    real_entry = fixture("hyperliquid_meta.json")["universe"][0]
    entries = hl["meta"]["universe"]
    assert [e["name"] for e in entries] == ["BTCUSDT", "ETHUSDT"]
    assert all(shape(e).items() >= {k: shape(real_entry)[k] for k in
                                    ("name", "szDecimals", "maxLeverage")}.items()
               for e in entries)
    assert entries[0]["szDecimals"] == 3
    real_book = fixture("hyperliquid_l2book.json")
    book_shape = shape(hl["book"])
    assert book_shape["levels"][0][0].pop("n") == "int"
    assert book_shape == shape(real_book)
    assert [len(side) for side in hl["book"]["levels"]] == [20, 20]
    assert set(hl["mids"]) == {"BTCUSDT", "ETHUSDT"}
    assert (hl["unknown_coin"], hl["bad_type"]) == (None, 422)


def test_hyperliquid_websocket_has_the_venue_format(wire):
    messages = wire["hyperliquid"]["ws"]
    real_book, real_trades = fixture("hyperliquid_ws_2025.jsonl")
    assert messages[0] == {"channel": "subscriptionResponse", "data": {
        "method": "subscribe", "subscription": {"type": "l2Book", "coin": "BTCUSDT"}}}
    assert messages[1]["channel"] == "l2Book"  # the book right after the subscription
    assert messages[2]["channel"] == "error" and "Already subscribed" in messages[2]["data"]
    assert {"channel": "pong"} in messages
    assert any(m["channel"] == "error" and "NOPE" in m["data"] for m in messages)
    books = [m for m in messages if m["channel"] == "l2Book"]
    trades = [m for m in messages if m["channel"] == "trades"]
    assert books and trades
    assert all(shape(m) == shape(real_book) for m in books)
    assert all(shape(m) == shape(real_trades) for m in trades)
    subscribed, unsubscribed, again, _ = wire["hyperliquid"]["unsubscribe"]
    assert (subscribed["data"]["method"], unsubscribed["data"]["method"]) == (
        "subscribe", "unsubscribe")
    assert again["channel"] == "error" and "Already unsubscribed" in again["data"]
    times = [m["data"]["time"] for m in books]
    assert times == sorted(set(times))  # strictly newer snapshots
    assert all(float(m["data"]["levels"][0][0]["px"]) < float(m["data"]["levels"][1][0]["px"])
               for m in books)


# --------------------------------------------------------------------------- aggressor side


def test_each_venue_encodes_the_aggressor_side(wire):
    trades = read_table(BUNDLED, "trades", "binance", "BTCUSDT", START, END).to_pylist()
    side = {t["trade_id"]: t["side"] for t in trades}
    binance = _data(wire["binance"]["stream"], "trade")
    bybit = [t for m in wire["bybit"]["ws"] if m.get("topic", "").startswith("publicTrade")
             for t in m["data"]]
    hyperliquid = [t for m in wire["hyperliquid"]["ws"] if m["channel"] == "trades"
                   for t in m["data"]]
    assert binance and bybit and hyperliquid
    assert {side[str(t["t"])] for t in binance if t["m"]} == {-1}  # buyer maker: a sell
    assert {side[str(t["t"])] for t in binance if not t["m"]} == {1}
    assert all(side[t["i"]] == (1 if t["S"] == "Buy" else -1) for t in bybit)
    assert all(side[str(t["tid"])] == (1 if t["side"] == "B" else -1) for t in hyperliquid)
    assert {t["S"] for t in bybit} == {"Buy", "Sell"}
