"""Binance USD-M private side: golden requests, user-stream translation on the real
fixture messages, and the whole flow against a fake venue that verifies signatures."""

from __future__ import annotations

import asyncio
import logging
from decimal import Decimal
from urllib.parse import parse_qsl

import orjson
import pytest
from captures import FIXTURES
from fake_private import FakePrivate, Recorder, json_response, started, until

from makerlab.core.events import BalanceState, Fill, OrderEventKind, OrderUpdate, PositionState
from makerlab.errors import AuthError, ConfigError, RateLimited
from makerlab.live.config import Secret
from makerlab.live.gateway import Gateway
from makerlab.live.signing import binance_ws_payload, hmac_hex
from makerlab.live.transport import ReconnectPolicy
from makerlab.live.venues.base import Endpoints
from makerlab.live.venues.binance_private import BinancePrivate
from makerlab.live.venues.private_base import Op, OpKind, Relogin, Snapshot
from makerlab.trading.protocols import AmendRequest, CancelRequest, OrderRequest

KEY, SECRET = "bn-key-1234", "bn-SECRET-never-logged-5678"
FAST = ReconnectPolicy(initial_delay=0.01, max_delay=0.05, watchdog=5.0, rest_timeout=2.0)
PRIVATE = FIXTURES / "private"


def _venue() -> BinancePrivate:
    return BinancePrivate((Secret(KEY), Secret(SECRET)), "paper",
                          Endpoints("http://h/binance", "ws://h/binance"))


def _order(cloid="mm-1", amount="0.010", price="42088.0", tif="GTX", **kw) -> OrderRequest:
    return OrderRequest("binance", "BTCUSDT", cloid, Decimal(amount),
                        None if price is None else Decimal(price), tif=tif, **kw)


def _fixture(name: str) -> bytes:
    return (PRIVATE / f"binance_{name}.json").read_bytes()


# --------------------------------------------------------------------------- golden requests


def test_golden_rest_place_request():
    req = _venue().rest_call(Op(OpKind.PLACE, "binance", "BTCUSDT", (_order(),)), 1705311512994)
    params = dict(req.params)
    signature = params.pop("signature")
    assert (req.method, req.path) == ("POST", "/fapi/v1/order")
    assert list(params.items()) == [
        ("symbol", "BTCUSDT"), ("side", "BUY"), ("type", "LIMIT"), ("quantity", "0.01"),
        ("price", "42088"), ("timeInForce", "GTX"), ("newClientOrderId", "mm-1"),
        ("recvWindow", "5000"), ("timestamp", "1705311512994")]
    query = "&".join(f"{k}={v}" for k, v in params.items())
    assert signature == hmac_hex(SECRET, query)
    assert req.headers == {"X-MBX-APIKEY": KEY}


def test_golden_ws_api_frames():
    venue = _venue()
    sell = _order(amount="-0.5", price="100.10", tif="IOC", reduce_only=True)
    frame = orjson.loads(venue.ws_call(Op(OpKind.PLACE, "binance", "BTCUSDT", (sell,)),
                                       1705311512994, "7"))
    params = frame["params"]
    assert (frame["id"], frame["method"]) == ("7", "order.place")
    assert params["signature"] == hmac_hex(SECRET, binance_ws_payload(params))
    assert {k: v for k, v in params.items() if k != "signature"} == {
        "symbol": "BTCUSDT", "side": "SELL", "type": "LIMIT", "quantity": "0.5",
        "price": "100.1", "timeInForce": "IOC", "reduceOnly": "true",
        "newClientOrderId": "mm-1", "apiKey": KEY, "recvWindow": 5000,
        "timestamp": 1705311512994}
    cancel = orjson.loads(venue.ws_call(Op(OpKind.CANCEL, "binance", "BTCUSDT", (
        CancelRequest("binance", "BTCUSDT", cloid="mm-1"),)), 1, "8"))
    assert cancel["method"] == "order.cancel" and cancel["params"]["origClientOrderId"] == "mm-1"
    amend = orjson.loads(venue.ws_call(Op(OpKind.AMEND, "binance", "BTCUSDT", (
        AmendRequest("binance", "BTCUSDT", oid="42", price=Decimal("99"),
                     amount=Decimal("-2")),)), 1, "9"))
    assert amend["method"] == "order.modify"
    assert {k: amend["params"][k] for k in ("orderId", "side", "quantity", "price")} == \
        {"orderId": 42, "side": "SELL", "quantity": "2", "price": "99"}


def test_market_orders_batches_countdown_and_cloid_mapping():
    venue = _venue()
    market = venue.rest_call(Op(OpKind.PLACE, "binance", "BTCUSDT", (
        _order(price=None, tif="IOC"),)), 1)
    assert "price" not in market.params and market.params["type"] == "MARKET"
    batch = venue.rest_call(Op(OpKind.BATCH, "binance", "BTCUSDT", (
        _order("a"), _order("b", amount="-1"))), 1)
    orders = orjson.loads(batch.params["batchOrders"])
    assert batch.path == "/fapi/v1/batchOrders"
    assert [(o["newClientOrderId"], o["side"]) for o in orders] == [("a", "BUY"), ("b", "SELL")]
    dead = venue.rest_call(Op(OpKind.DEAD_MAN, "binance", "BTCUSDT", timeout_ms=120000), 1)
    assert (dead.path, dead.params["countdownTime"]) == ("/fapi/v1/countdownCancelAll", "120000")
    with pytest.raises(ConfigError, match="needs a symbol"):
        venue.rest_call(Op(OpKind.CANCEL_ALL, "binance"), 1)
    with pytest.raises(ConfigError, match="price and amount"):
        venue.rest_call(Op(OpKind.AMEND, "binance", "BTCUSDT", (
            AmendRequest("binance", "BTCUSDT", oid="1", price=Decimal(1)),)), 1)
    long_id = "an id with spaces that Binance refuses, and too long too"
    wire = venue.rest_call(Op(OpKind.PLACE, "binance", "BTCUSDT", (_order(long_id),)),
                           1).params["newClientOrderId"]
    assert len(wire) == 32 and venue.cloids.ours(wire) == long_id


# --------------------------------------------------------------------------- user stream


def test_order_trade_update_gives_the_fill_then_the_update():
    fill, update = _venue().parse_user(_fixture("user_data_json__order_update_trade"), 99)
    assert isinstance(fill, Fill) and isinstance(update, OrderUpdate)
    assert (fill.trade_id, fill.side, fill.price, fill.size) == \
        ("12345678", 1, Decimal("7100.50"), Decimal("0.001"))
    assert (fill.fee, fill.fee_asset, fill.is_maker) == (Decimal("0.01"), "USDT", True)
    assert (update.kind, update.status, update.cloid, update.oid) == \
        (OrderEventKind.FILL, "PARTIAL", "TEST", "8886774")
    assert (update.amount, update.filled, update.price) == \
        (Decimal("0.001"), Decimal("0.001"), Decimal("7100.50"))
    assert update.update_id == update.exchange_ts == 1568879465651 * 10**6
    assert update.local_ts == 99


def test_new_order_and_liquidation_updates():
    (new,) = _venue().parse_user(_fixture("user_data_json__order_update_new"), 1)
    assert (new.kind, new.status, new.filled) == (OrderEventKind.ACK, "NEW", Decimal(0))
    events = _venue().parse_user(_fixture("py_ws__ws_futures_order_update_liquidation"), 1)
    fill, update = events  # a combined-stream envelope; CALCULATED is an execution
    assert update.status == "FILLED" and update.cloid.startswith("autoclose")
    assert (fill.trade_id, fill.side, fill.fee) == ("1122334455", -1, Decimal(5))


def test_account_update_balances_and_one_way_positions():
    events = _venue().parse_user(_fixture("user_data_json__account_update"), 1)
    balances = [e for e in events if isinstance(e, BalanceState)]
    positions = [e for e in events if isinstance(e, PositionState)]
    # the event states no available balance: cw, the cross wallet, is not it
    assert [(b.asset, b.wallet, b.available) for b in balances] == \
        [("USDT", Decimal("122624.12345678"), None)]
    assert [(p.symbol, p.amount) for p in positions] == [("BTCUSDT", Decimal(0))]  # BOTH leg


def test_trade_lite_and_unknown_events_are_ignored_and_expiry_relogs():
    venue = _venue()
    assert venue.parse_user(_fixture("user_data_json__trade_lite"), 1) == []
    assert venue.parse_user(b'{"e":"MARGIN_CALL","E":1}', 1) == []
    assert venue.parse_user(b'{"e":"listenKeyExpired","E":1}', 1) == [Relogin("listenKeyExpired")]


def test_open_orders_snapshot():
    (order,) = _venue().parse_snapshot(Snapshot.ORDERS,
                                       _fixture("py_http__http_futures_account_orders"), 5)
    assert (order.kind, order.cloid, order.oid, order.amount) == \
        (OrderEventKind.STATE, "abc", "1917641", Decimal("0.40"))


# --------------------------------------------------------------------------- fake venue


INFO = orjson.dumps({"symbols": [{
    "symbol": "BTCUSDT", "status": "TRADING", "baseAsset": "BTC", "quoteAsset": "USDT",
    "contractType": "PERPETUAL", "filters": [
        {"filterType": "PRICE_FILTER", "tickSize": "0.10"},
        {"filterType": "LOT_SIZE", "stepSize": "0.001", "minQty": "0.001"},
        {"filterType": "MIN_NOTIONAL", "notional": "100"}]}]})


class BinanceFake:
    """Answers like Binance: listen keys, the WS API and REST orders, with signatures
    checked against SECRET; a GTX buy at or above 50000 crosses and is rejected."""

    def __init__(self, fake: FakePrivate, *, ws_api: bool = True) -> None:
        self.fake, self.keys, self.oid = fake, 0, 100
        fake.rest[("GET", "/binance/fapi/v1/exchangeInfo")] = self._info
        fake.rest[("POST", "/binance/fapi/v1/listenKey")] = self._listen_key
        fake.rest[("PUT", "/binance/fapi/v1/listenKey")] = self._keepalive
        fake.rest[("POST", "/binance/fapi/v1/order")] = self._rest_order
        fake.sockets["/binance/private/ws"] = self._ignore
        if ws_api:
            fake.sockets["/binance/ws-fapi/v1"] = self._ws_api
        self.keepalive_status = 200

    async def _info(self, request, body):
        return json_response(orjson.loads(INFO))

    async def _listen_key(self, request, body):
        assert request.headers["X-MBX-APIKEY"] == KEY
        self.keys += 1
        return json_response({"listenKey": f"lk{self.keys}"})

    async def _keepalive(self, request, body):
        if self.keepalive_status != 200:
            return json_response({"code": -1125, "msg": "This listenKey does not exist."}, 400)
        return json_response({"listenKey": f"lk{self.keys}"})

    async def _ignore(self, conn, text):
        return None

    def _place(self, params: dict) -> tuple[int, dict]:
        if params["timeInForce"] == "GTX" and params["side"] == "BUY" and \
                Decimal(params["price"]) >= 50000:
            return 400, {"code": -5022, "msg": "Due to the order could not be executed as "
                         "maker, the Post Only order will be rejected."}
        self.oid += 1
        return 200, {"orderId": self.oid, "symbol": params["symbol"], "status": "NEW",
                     "clientOrderId": params["newClientOrderId"], "updateTime": 1705311513000}

    async def _rest_order(self, request, body):
        assert request.headers["X-MBX-APIKEY"] == KEY
        raw = request.query_string
        unsigned, _, signature = raw.rpartition("&signature=")
        if signature != hmac_hex(SECRET, unsigned):
            return json_response({"code": -1022, "msg": "Signature for this request is not "
                                  "valid."}, 400)
        status, body = self._place(dict(parse_qsl(unsigned)))
        return json_response(body, status, {"X-MBX-USED-WEIGHT-1M": "7",
                                            "X-MBX-ORDER-COUNT-10S": "2"})

    async def _ws_api(self, conn, text):
        req = orjson.loads(text)
        params = req["params"]
        assert params["apiKey"] == KEY
        assert params["signature"] == hmac_hex(SECRET, binance_ws_payload(params))
        status, body = self._place(params)
        key = "result" if status == 200 else "error"
        await conn.send(orjson.dumps({"id": req["id"], "status": status, key: body,
                                      "rateLimits": [{"rateLimitType": "ORDERS",
                                                      "interval": "SECOND", "intervalNum": 10,
                                                      "limit": 300, "count": 3}]}))


def _gateway(fake: FakePrivate, monkeypatch, tmp_path) -> Gateway:
    monkeypatch.setenv("MK_BN_KEY", KEY)
    monkeypatch.setenv("MK_BN_SECRET", SECRET)
    monkeypatch.chdir(tmp_path)
    return Gateway({"binance": {"env": "paper", "base_url": fake.url + "/binance",
                                "key": "MK_BN_KEY", "secret": "MK_BN_SECRET"}},
                   spec_cache=tmp_path, policy=FAST)


def test_ws_order_entry_user_stream_and_no_secret_in_logs(monkeypatch, tmp_path, caplog):
    caplog.set_level(logging.DEBUG)

    async def main():
        async with FakePrivate() as fake:
            BinanceFake(fake)
            recorder = Recorder()
            async with started(_gateway(fake, monkeypatch, tmp_path)) as venue:
                venue.attach(recorder)
                client = venue.client("binance")
                await until(lambda: client.order_socket_ready, "order socket")
                await until(lambda: fake.conns.get("/binance/private/ws"), "user stream")
                assert fake.conns["/binance/private/ws"][0].request.query["listenKey"] == "lk1"
                await venue.submit(_order("mm-1", price="42000"))
                await venue.submit(_order("mm-2", price="50001"))
                await fake.push("/binance/private/ws",
                                _fixture("user_data_json__order_update_trade"))
                await until(lambda: recorder.fills, "fill")
                assert venue.spec("binance", "BTCUSDT").tick_size == Decimal("0.1")
                return recorder, client.limits, fake

    recorder, limits, fake = asyncio.run(main())
    ack, reject, fill_update = recorder.updates
    assert (ack.kind, ack.cloid, ack.oid, ack.status) == (OrderEventKind.ACK, "mm-1", "101", "NEW")
    assert (ack.exchange_ts, ack.update_id) == (1705311513000 * 10**6, 0)  # answers: no rank
    assert (reject.kind, reject.status, reject.code) == (OrderEventKind.REJECT, "REJECTED", "-5022")
    assert "Post Only" in reject.reason and reject.cloid == "mm-2"
    assert [kind for kind, _ in recorder.order][-2:] == ["fill", "update"]
    assert fill_update.kind is OrderEventKind.FILL
    assert limits.usage["orders_10s"].used == 3 and limits.usage["orders_10s"].limit == 300
    assert not [c for c in fake.calls if c[1].startswith("/binance/fapi/v1/order")]  # all WS
    assert SECRET not in caplog.text


def test_rest_fallback_rate_limits_and_auth_errors(monkeypatch, tmp_path, caplog):
    caplog.set_level(logging.DEBUG)

    async def main():
        async with FakePrivate() as fake:
            bn = BinanceFake(fake, ws_api=False)  # the WS API is unreachable
            recorder = Recorder()
            async with started(_gateway(fake, monkeypatch, tmp_path)) as venue:
                venue.attach(recorder)
                await venue.submit(_order("mm-1", price="42000"))
                await venue.submit(_order("mm-2", price="60000"))
                limits = venue.rate_limits("binance")
                assert limits.usage["weight_1m"].used == 7
                bn.fake.rest[("POST", "/binance/fapi/v1/order")] = _too_many
                with pytest.raises(RateLimited) as limited:
                    await venue.submit(_order("mm-3"))
                assert limited.value.retry_after == 12
                with pytest.raises(RateLimited, match="rate limited for"):
                    await venue.submit(_order("mm-4"))  # not sent: the venue said wait
                limits.retry_at_ns = None
                bn.fake.rest[("POST", "/binance/fapi/v1/order")] = _bad_signature
                with pytest.raises(AuthError):
                    await venue.submit(_order("mm-5"))
                return recorder, fake

    recorder, fake = asyncio.run(main())
    assert [(u.kind, u.cloid) for u in recorder.updates] == \
        [(OrderEventKind.ACK, "mm-1"), (OrderEventKind.REJECT, "mm-2")]
    sent = [c for c in fake.calls if c[1].startswith("/binance/fapi/v1/order")]
    assert len(sent) == 4 and "mm-4" not in str(sent)
    assert SECRET not in caplog.text


async def _too_many(request, body):
    return json_response({"code": -1003, "msg": "Too many requests"}, 429, {"Retry-After": "12"})


async def _bad_signature(request, body):
    return json_response({"code": -1022, "msg": "Signature for this request is not valid."}, 400)


def test_a_refused_keepalive_logs_in_again_with_a_new_key(monkeypatch, tmp_path):
    monkeypatch.setattr(BinancePrivate, "refresh_interval", 0.05)

    async def main():
        async with FakePrivate() as fake:
            bn = BinanceFake(fake)
            bn.keepalive_status = 400
            async with started(_gateway(fake, monkeypatch, tmp_path)):
                await until(lambda: any(c.request.query["listenKey"] == "lk2"
                                        for c in fake.conns.get("/binance/private/ws", [])),
                            "reconnect with the new key")
                return [c[:2] for c in fake.calls if "listenKey" in c[1]]

    calls = asyncio.run(main())
    assert calls[:3] == [("POST", "/binance/fapi/v1/listenKey"),
                         ("PUT", "/binance/fapi/v1/listenKey"),
                         ("POST", "/binance/fapi/v1/listenKey")]
