"""WOO X private side: the documented v3 signing applied to our requests, the v2 private
stream (payload shapes as ccxt 4.5.90 reads them; no recorded message exists), and the
REST flow against a fake venue that verifies the signature."""

from __future__ import annotations

import asyncio
from decimal import Decimal

import orjson
from fake_private import FakePrivate, Recorder, json_response, started, until

from makerlab.core.events import Fill, OrderEventKind
from makerlab.live.config import Secret
from makerlab.live.gateway import Gateway
from makerlab.live.signing import hmac_hex, woo_payload
from makerlab.live.transport import ReconnectPolicy
from makerlab.live.venues.base import Endpoints
from makerlab.live.venues.private_base import Op, OpKind, Snapshot
from makerlab.live.venues.woo_private import WooPrivate
from makerlab.trading.protocols import CancelRequest, OrderRequest

KEY, SECRET = "AbmyVJGUpN064ks5ELjLfA==", "QHKRXHPAW1MC9YGZMAT8YDJG2HPR"  # WOO's doc example
FAST = ReconnectPolicy(initial_delay=0.01, max_delay=0.05, watchdog=5.0, rest_timeout=2.0)


def _venue() -> WooPrivate:
    return WooPrivate((Secret(KEY), Secret(SECRET)), "paper", Endpoints("http://h", "ws://h"),
                      "app")


def _order(cloid="12345", price="30000", tif="ALO", amount="0.01"):
    return OrderRequest("woox", "PERP_BTC_USDT", cloid, Decimal(amount), Decimal(price), tif=tif)


def test_golden_requests():
    venue = _venue()
    req = venue.rest_call(Op(OpKind.PLACE, "woox", "PERP_BTC_USDT", (_order(),)), 1578565539808)
    assert (req.method, req.path) == ("POST", "/v3/trade/order")
    assert orjson.loads(req.body) == {"symbol": "PERP_BTC_USDT", "side": "BUY",
                                      "type": "POST_ONLY", "quantity": "0.01",
                                      "clientOrderId": 12345, "price": "30000"}
    assert req.headers["x-api-signature"] == hmac_hex(
        SECRET, "1578565539808POST/v3/trade/order" + req.body.decode())
    cancel = venue.rest_call(Op(OpKind.CANCEL, "woox", "PERP_BTC_USDT", (
        CancelRequest("woox", "PERP_BTC_USDT", oid="77"),)), 1578565539808)
    assert dict(cancel.params) == {"symbol": "PERP_BTC_USDT", "orderId": "77"}
    assert cancel.headers["x-api-signature"] == hmac_hex(
        SECRET, "1578565539808DELETE/v3/trade/order?symbol=PERP_BTC_USDT&orderId=77")
    dead = venue.rest_call(Op(OpKind.DEAD_MAN, "woox", timeout_ms=60000), 1)
    assert (dead.path, orjson.loads(dead.body)) == ("/v3/trade/cancelAllAfter",
                                                    {"triggerAfter": 60000})
    mapped = orjson.loads(venue.rest_call(Op(OpKind.PLACE, "woox", "PERP_BTC_USDT", (
        _order("mm-1"),)), 1).body)["clientOrderId"]
    assert 0 < mapped < 2**63 and venue.cloids.ours(str(mapped)) == "mm-1"


REPORT = {"topic": "executionreport", "ts": 1618820361552, "data": {
    "symbol": "PERP_BTC_USDT", "clientOrderId": 12345, "orderId": 54774393, "type": "LIMIT",
    "side": "BUY", "quantity": "0.01", "price": "30000", "tradeId": 56201985,
    "executedPrice": "30000", "executedQuantity": "0.004", "fee": "0.0012", "feeAsset": "USDT",
    "totalExecutedQuantity": "0.004", "status": "PARTIAL_FILLED", "reason": "",
    "timestamp": 1618820361552, "maker": True}}


def test_private_stream():
    venue = _venue()
    frames = [orjson.loads(f) for f in venue.user_socket_open(1618820361552)]
    assert frames[0]["params"]["sign"] == hmac_hex(SECRET, "|1618820361552")
    assert [f["topic"] for f in frames[1:]] == ["executionreport", "position", "balance"]
    fill, update = venue.parse_user(orjson.dumps(REPORT), 9)
    assert isinstance(fill, Fill)
    assert (fill.trade_id, fill.size, fill.fee, fill.is_maker, fill.cloid) == \
        ("56201985", Decimal("0.004"), Decimal("0.0012"), True, "12345")
    assert (update.kind, update.status, update.filled) == \
        (OrderEventKind.FILL, "PARTIAL", Decimal("0.004"))
    assert venue.parse_user(b'{"event":"ping"}', 9)[0].frame == b'{"event":"pong"}'


def test_rest_orders_and_stream_against_a_fake(monkeypatch, tmp_path):
    monkeypatch.setenv("MK_WOO_KEY", KEY)
    monkeypatch.setenv("MK_WOO_SECRET", SECRET)
    monkeypatch.chdir(tmp_path)

    async def info(request, body):
        return json_response({"data": {"rows": [{"symbol": "PERP_BTC_USDT", "status": "TRADING",
                                                 "quoteTick": "0.1", "baseTick": "0.0001",
                                                 "baseMin": "0.0001", "minNotional": "10"}]}})

    async def place(request, body):
        signed = woo_payload(int(request.headers["x-api-timestamp"]), "POST", request.path_qs
                             .removeprefix("/woo"), body.decode())
        assert request.headers["x-api-signature"] == hmac_hex(SECRET, signed)
        order = orjson.loads(body)
        if order["type"] == "POST_ONLY" and Decimal(order["price"]) > 40000:
            return json_response({"success": False, "code": -1012, "message": "post only "
                                  "order would be filled"}, 400)
        return json_response({"success": True, "timestamp": 1618820361600,
                              "data": {"orderId": 9, "clientOrderId": order["clientOrderId"]}})

    async def private(conn, text):
        if orjson.loads(text).get("topic") == "balance":
            await conn.send(orjson.dumps(REPORT))

    async def main():
        async with FakePrivate() as fake:
            fake.rest[("GET", "/woo/v3/public/instruments")] = info
            fake.rest[("POST", "/woo/v3/trade/order")] = place
            fake.sockets["/woo/v2/ws/private/stream/app1"] = private
            recorder = Recorder()
            gateway = Gateway({"woox": {"env": "paper", "base_url": fake.url + "/woo",
                                        "app_id": "app1", "key": "MK_WOO_KEY",
                                        "secret": "MK_WOO_SECRET"}},
                              spec_cache=tmp_path, policy=FAST)
            async with started(gateway) as venue:
                venue.attach(recorder)
                await venue.submit(_order())
                await venue.submit(_order("7", price="41000"))
                await until(lambda: recorder.fills, "execution report")
                return recorder

    recorder = asyncio.run(main())
    assert [(u.kind, u.cloid, u.oid, u.code) for u in recorder.updates[:2]] == [
        (OrderEventKind.ACK, "12345", "9", ""), (OrderEventKind.REJECT, "7", None, "-1012")]


def test_order_snapshot_and_query_read_the_v3_order_rows():
    venue = _venue()
    row = {"symbol": "PERP_BTC_USDT", "orderId": 5, "clientOrderId": 12345, "side": "SELL",
           "type": "LIMIT", "status": "PARTIAL_FILLED", "quantity": "0.3", "price": "100",
           "executed": "0.1", "updatedTime": 1618820361552}
    (state,) = venue.parse_snapshot(Snapshot.ORDERS, orjson.dumps({"data": {"rows": [row]}}), 3)
    assert (state.kind, state.status, state.cloid, state.oid, state.amount, state.price,
            state.filled, state.exchange_ts) == \
        (OrderEventKind.STATE, "PARTIAL", "12345", "5", Decimal("-0.3"), Decimal("100"),
         Decimal("0.1"), 1618820361552 * 10**6)
    market = {"symbol": "PERP_BTC_USDT", "orderId": 6, "type": "MARKET", "side": "BUY",
              "quantity": "1"}
    queried = venue.parse_query(200, orjson.dumps({"success": True, "data": market}), 3)
    assert queried is not None
    assert (queried.cloid, queried.price, queried.filled, queried.status) == \
        (None, None, Decimal(0), "NEW")


def test_position_and_balance_stream_topics():
    """The v2 stream's maps by symbol and token (numbers as JSON numbers, as ccxt 4.5.90's
    comments show them); the unrealised PnL comes from the mark, not ``pnl24H``."""
    venue = _venue()
    position = {"topic": "position", "ts": 1705292345255, "data": {"positions": {
        "PERP_BTC_USDT": {"holding": -0.5, "pendingLongQty": 0, "averageOpenPrice": 60000.0,
                          "pnl24H": 7.5, "markPrice": 59000.0, "version": 7},
        "PERP_ETH_USDT": {"holding": 0, "averageOpenPrice": 0, "pnl24H": 1, "markPrice": 3000}}}}
    btc, eth = venue.parse_user(orjson.dumps(position), 9)
    assert (btc.symbol, btc.amount, btc.entry_price, btc.unrealized_pnl, btc.exchange_ts,
            btc.local_ts) == ("PERP_BTC_USDT", Decimal("-0.5"), Decimal("60000.0"),
                              Decimal("500.00"), 1705292345255 * 10**6, 9)
    assert (eth.amount, eth.unrealized_pnl) == (0, 0)
    balance = {"topic": "balance", "ts": 1651836695254, "data": {"balances": {
        "USDT": {"holding": 1000.5, "frozen": 200.25, "pnl24H": 0, "markPrice": 1}}}}
    (usdt,) = venue.parse_user(orjson.dumps(balance), 9)
    assert (usdt.asset, usdt.wallet, usdt.equity, usdt.available, usdt.exchange_ts) == \
        ("USDT", Decimal("1000.5"), Decimal("1000.5"), Decimal("800.25"),
         1651836695254 * 10**6)


def test_position_and_balance_snapshots_read_the_v3_lists():
    """``GET /v3/futures/positions`` and ``GET /v3/asset/balances`` as WOO's v3 reference
    shows them: lists, numbers as strings, times in ms."""
    venue = _venue()
    positions = {"success": True, "data": {"positions": [
        {"symbol": "PERP_BTC_USDT", "holding": "1.5", "positionSide": "BOTH",
         "averageOpenPrice": "60000", "pnl24H": "-3", "markPrice": "60010",
         "timestamp": 1696663260695}]}, "timestamp": 1696663264324}
    (btc,) = venue.parse_snapshot(Snapshot.POSITIONS, orjson.dumps(positions), 4)
    assert (btc.symbol, btc.amount, btc.entry_price, btc.unrealized_pnl, btc.exchange_ts) == \
        ("PERP_BTC_USDT", Decimal("1.5"), Decimal("60000"), Decimal("15"),
         1696663260695 * 10**6)
    balances = {"success": True, "data": {"holding": [
        {"token": "USDT", "holding": "250", "frozen": "50", "availableBalance": "200",
         "timestamp": 1673323746259}]}}
    (usdt,) = venue.parse_snapshot(Snapshot.BALANCES, orjson.dumps(balances), 4)
    assert (usdt.asset, usdt.wallet, usdt.available, usdt.exchange_ts) == \
        ("USDT", Decimal("250"), Decimal("200"), 1673323746259 * 10**6)
