"""Bybit v5 private side: golden requests, the real fixture messages, and the flow against
a fake venue that verifies the REST and socket signatures."""

from __future__ import annotations

import asyncio
import logging
from decimal import Decimal

import orjson
import pytest
from captures import FIXTURES
from fake_private import FakePrivate, Recorder, json_response, started, until

from makerlab.core.events import BalanceState, Fill, OrderEventKind, PositionState
from makerlab.errors import AuthError, RateLimited
from makerlab.live.config import Secret
from makerlab.live.gateway import Gateway
from makerlab.live.signing import bybit_rest_payload, bybit_ws_payload, hmac_hex
from makerlab.live.transport import ReconnectPolicy
from makerlab.live.venues.base import Endpoints
from makerlab.live.venues.bybit_private import BybitPrivate
from makerlab.live.venues.private_base import Op, OpKind, Snapshot
from makerlab.trading.protocols import AmendRequest, CancelRequest, OrderRequest

KEY, SECRET = "bb-key-1234", "bb-SECRET-never-logged-5678"
FAST = ReconnectPolicy(initial_delay=0.01, max_delay=0.05, watchdog=5.0, rest_timeout=2.0)


def _venue(env="paper") -> BybitPrivate:
    return BybitPrivate((Secret(KEY), Secret(SECRET)), env,
                        Endpoints("http://h/bybit", "ws://h/bybit"))


def _fixture(name: str) -> bytes:
    return (FIXTURES / "private" / f"bybit_{name}.json").read_bytes()


def _order(cloid="mm-1", amount="0.010", price="30000.50", tif="ALO", **kw) -> OrderRequest:
    return OrderRequest("bybit", "BTCUSDT", cloid, Decimal(amount),
                        None if price is None else Decimal(price), tif=tif, **kw)


def test_golden_rest_create_with_signed_headers():
    req = _venue().rest_call(Op(OpKind.PLACE, "bybit", "BTCUSDT", (_order(),)), 1711001595207)
    assert (req.method, req.path) == ("POST", "/v5/order/create")
    assert orjson.loads(req.body) == {
        "category": "linear", "symbol": "BTCUSDT", "side": "Buy", "orderType": "Limit",
        "qty": "0.01", "price": "30000.5", "timeInForce": "PostOnly", "orderLinkId": "mm-1"}
    payload = bybit_rest_payload(1711001595207, KEY, 5000, req.body.decode())
    assert req.headers == {"X-BAPI-API-KEY": KEY, "X-BAPI-TIMESTAMP": "1711001595207",
                           "X-BAPI-RECV-WINDOW": "5000",
                           "X-BAPI-SIGN": hmac_hex(SECRET, payload)}


def test_golden_socket_frames():
    venue = _venue()
    (auth,) = venue.order_socket_open(1711010111452)
    assert orjson.loads(auth) == {"op": "auth", "args": [
        KEY, 1711010121452, hmac_hex(SECRET, bybit_ws_payload(1711010121452))]}
    sell = _order(amount="-1", price="100", tif="IOC", reduce_only=True)
    frame = orjson.loads(venue.ws_call(Op(OpKind.PLACE, "bybit", "BTCUSDT", (sell,)), 5, "o-1"))
    assert frame == {"reqId": "o-1", "op": "order.create",
                     "header": {"X-BAPI-TIMESTAMP": "5", "X-BAPI-RECV-WINDOW": "5000"},
                     "args": [{"category": "linear", "symbol": "BTCUSDT", "side": "Sell",
                               "orderType": "Limit", "qty": "1", "price": "100",
                               "timeInForce": "IOC", "reduceOnly": True, "orderLinkId": "mm-1"}]}
    amend = orjson.loads(venue.ws_call(Op(OpKind.AMEND, "bybit", "BTCUSDT", (AmendRequest(
        "bybit", "BTCUSDT", cloid="mm-1", price=Decimal("101")),)), 5, "o-2"))
    assert amend["op"] == "order.amend" and amend["args"][0] == {
        "category": "linear", "symbol": "BTCUSDT", "orderLinkId": "mm-1", "price": "101"}
    dead = orjson.loads(venue.rest_call(Op(OpKind.DEAD_MAN, "bybit", timeout_ms=10_000), 5).body)
    assert dead == {"timeWindow": 10}
    every = orjson.loads(venue.rest_call(Op(OpKind.CANCEL_ALL, "bybit"), 5).body)
    assert every == {"category": "linear", "settleCoin": "USDT"}
    assert not _venue("demo").order_socket  # demo trading: REST only


def test_order_topic_states():
    (cancelled,) = _venue().parse_user(_fixture("ws_account_order"), 7)
    assert (cancelled.kind, cancelled.status, cancelled.cloid, cancelled.oid) == \
        (OrderEventKind.CANCEL_ACK, "CANCELLED", "client-1", "abcdef123456")
    assert (cancelled.amount, cancelled.price) == (Decimal("0.010"), Decimal("30000"))
    assert cancelled.update_id == 1700000005000 * 10**6
    (rejected,) = _venue().parse_user(_fixture("ws_account_order_partially_filled_rejected"), 7)
    assert (rejected.kind, rejected.status, rejected.filled) == \
        (OrderEventKind.REJECT, "REJECTED", Decimal("50.0"))
    (filled,) = _venue().parse_user(_fixture("ws_account_order_filled"), 7)
    assert filled.kind is OrderEventKind.FILL and filled.status == "FILLED"


def test_execution_position_wallet():
    (fill,) = _venue().parse_user(_fixture("ws_account_execution"), 3)
    assert isinstance(fill, Fill)
    assert (fill.trade_id, fill.side, fill.price, fill.size) == (
        "0ab1bdf7-4219-438b-b30a-32ec863018f7", -1, Decimal("95900.1"), Decimal("0.5"))
    assert (fill.fee, fill.fee_asset, fill.is_maker, fill.cloid) == \
        (Decimal("26.3725275"), "USDT", False, "test-order-link-001")
    (pos,) = _venue().parse_user(_fixture("ws_account_position"), 3)
    assert isinstance(pos, PositionState)
    assert (pos.symbol, pos.amount, pos.entry_price) == \
        ("ETHUSDT", Decimal("-0.01"), Decimal("3641.075"))
    balances = _venue().parse_user(_fixture("ws_account_wallet"), 3)
    usdt = next(b for b in balances if b.asset == "USDT")
    assert isinstance(usdt, BalanceState)
    assert (usdt.wallet, usdt.equity, usdt.available) == \
        (Decimal("9647.75537647"), Decimal("10226.20575506"), Decimal("9519.89806037"))
    assert _venue().parse_user(_fixture("ws_account_execution_fast"), 3) == []
    assert _venue().parse_user(_fixture("ws_auth_success"), 3) == []
    with pytest.raises(AuthError, match="Invalid apikey"):
        _venue().parse_user(_fixture("ws_auth_failure"), 3)


def test_answers_and_snapshots():
    venue = _venue()
    answer = venue.read_ws(_fixture("ws_order_response"))
    assert answer.req_id == "order-req-001" and answer.answers[0].oid == "1726025498520715008"
    order, *_ = venue.parse_snapshot(Snapshot.ORDERS, _fixture("http_get_orders_realtime"), 1)
    assert (order.kind, order.cloid, order.symbol) == \
        (OrderEventKind.STATE, "client-open-1", "ETHUSDT")
    positions = venue.parse_snapshot(Snapshot.POSITIONS, _fixture("http_get_positions"), 1)
    assert positions[0].amount == Decimal("0.5") and positions[1].amount < 0
    balances = venue.parse_snapshot(Snapshot.BALANCES, _fixture("http_get_wallet_balance"), 1)
    assert any(b.asset == "USDT" and b.wallet > 0 for b in balances)


# --------------------------------------------------------------------------- fake venue

INFO = {"retCode": 0, "result": {"list": [{
    "symbol": "BTCUSDT", "status": "Trading", "baseCoin": "BTC", "quoteCoin": "USDT",
    "contractType": "LinearPerpetual", "priceFilter": {"tickSize": "0.10"},
    "lotSizeFilter": {"qtyStep": "0.001", "minOrderQty": "0.001", "minNotionalValue": "5"}}]}}
LIMIT_HEADERS = {"X-Bapi-Limit": "10", "X-Bapi-Limit-Status": "9",
                 "X-Bapi-Limit-Reset-Timestamp": "1711001596000", "Timenow": "1711001595000"}


class BybitFake:
    def __init__(self, fake: FakePrivate) -> None:
        self.fake, self.oid = fake, 0
        self.authed: list[str] = []
        fake.rest[("GET", "/bybit/v5/market/instruments-info")] = self._info
        fake.rest[("POST", "/bybit/v5/order/create")] = self._rest_create
        fake.rest[("POST", "/bybit/v5/order/disconnected-cancel-all")] = self._dcp
        fake.sockets["/bybit/v5/trade"] = self._trade
        fake.sockets["/bybit/v5/private"] = self._private

    async def _info(self, request, body):
        return json_response(INFO)

    def _check_rest(self, request, body: bytes) -> None:
        h = request.headers
        payload = bybit_rest_payload(int(h["X-BAPI-TIMESTAMP"]), h["X-BAPI-API-KEY"],
                                     int(h["X-BAPI-RECV-WINDOW"]), body.decode())
        assert h["X-BAPI-SIGN"] == hmac_hex(SECRET, payload)

    def _create(self, args: dict) -> dict:
        if Decimal(args["qty"]) > 100:
            return {"retCode": 10001, "retMsg": "The number of contracts exceeds maximum "
                    "limit allowed: too large", "result": {}}
        self.oid += 1
        return {"retCode": 0, "retMsg": "OK", "time": 1711001595300,
                "result": {"orderId": str(self.oid), "orderLinkId": args["orderLinkId"]}}

    async def _rest_create(self, request, body):
        self._check_rest(request, body)
        return json_response(self._create(orjson.loads(body)), headers=LIMIT_HEADERS)

    async def _dcp(self, request, body):
        self._check_rest(request, body)
        return json_response({"retCode": 10006, "retMsg": "Too many visits!"},
                             headers=LIMIT_HEADERS)

    async def _auth(self, conn, msg: dict, where: str) -> bool:
        key, expires, sign = msg["args"]
        ok = key == KEY and sign == hmac_hex(SECRET, bybit_ws_payload(expires))
        self.authed.append(where)
        await conn.send(orjson.dumps({"op": "auth", "success": ok, "retCode": 0 if ok else 10004,
                                      "retMsg": "" if ok else "Invalid sign"}))
        return ok

    async def _trade(self, conn, text):
        msg = orjson.loads(text)
        if msg["op"] == "auth":
            await self._auth(conn, msg, "trade")
            return
        answer = self._create(msg["args"][0])
        await conn.send(orjson.dumps({"reqId": msg["reqId"], "op": msg["op"],
                                      "retCode": answer["retCode"], "retMsg": answer["retMsg"],
                                      "data": answer["result"], "header": LIMIT_HEADERS}))

    async def _private(self, conn, text):
        msg = orjson.loads(text)
        if msg["op"] == "auth":
            await self._auth(conn, msg, "private")
        elif msg["op"] == "subscribe":
            assert msg["args"] == ["order", "execution", "position", "wallet"]
            await conn.send(orjson.dumps({"success": True, "op": "subscribe"}))
            await conn.send(_fixture("ws_account_execution"))
            await conn.send(_fixture("ws_account_wallet"))


def _gateway(fake, monkeypatch, tmp_path) -> Gateway:
    monkeypatch.setenv("MK_BB_KEY", KEY)
    monkeypatch.setenv("MK_BB_SECRET", SECRET)
    monkeypatch.chdir(tmp_path)
    return Gateway({"bybit": {"env": "paper", "base_url": fake.url + "/bybit",
                              "key": "MK_BB_KEY", "secret": "MK_BB_SECRET"}},
                   spec_cache=tmp_path, policy=FAST)


def test_trade_socket_user_stream_rest_fallback_and_rate_limits(monkeypatch, tmp_path, caplog):
    caplog.set_level(logging.DEBUG)

    async def main():
        async with FakePrivate() as fake:
            bybit = BybitFake(fake)
            recorder = Recorder()
            async with started(_gateway(fake, monkeypatch, tmp_path)) as venue:
                venue.attach(recorder)
                client = venue.client("bybit")
                await until(lambda: client.order_socket_ready, "trade socket authenticated")
                await venue.submit(_order("mm-1"))
                await venue.submit(_order("mm-2", amount="500"))
                await until(lambda: recorder.fills and recorder.balances, "private stream")
                await fake.drop("/bybit/v5/trade")
                await until(lambda: not client.order_socket_ready, "trade socket down")
                await venue.submit(_order("mm-3"))  # over REST while the socket is down
                with pytest.raises(RateLimited) as limited:
                    await venue.arm_dead_man("bybit", 10_000)
                return recorder, bybit, fake, client.limits, limited.value

    recorder, bybit, fake, limits, limited = asyncio.run(main())
    assert [(u.kind, u.cloid, u.oid) for u in recorder.updates] == [
        (OrderEventKind.ACK, "mm-1", "1"), (OrderEventKind.REJECT, "mm-2", None),
        (OrderEventKind.ACK, "mm-3", "2")]
    assert recorder.updates[1].code == "10001" and "too large" in recorder.updates[1].reason
    assert recorder.updates[2].exchange_ts == 1711001595300 * 10**6
    assert {"trade", "private"} <= set(bybit.authed)
    assert [c[1] for c in fake.calls if "/order/" in c[1]] == \
        ["/bybit/v5/order/create", "/bybit/v5/order/disconnected-cancel-all"]
    assert limits.usage["endpoint"].used == 1 and limits.usage["endpoint"].limit == 10
    assert limited.retry_after == 1.0
    assert recorder.fills[0].trade_id == "0ab1bdf7-4219-438b-b30a-32ec863018f7"
    assert SECRET not in caplog.text


def test_cancel_by_cloid_goes_over_the_socket_and_reports_refusal():
    venue = _venue()
    frame = orjson.loads(venue.ws_call(Op(OpKind.CANCEL, "bybit", "BTCUSDT", (
        CancelRequest("bybit", "BTCUSDT", cloid="gone"),)), 1, "c-1"))
    assert frame["op"] == "order.cancel" and frame["args"][0]["orderLinkId"] == "gone"
    answer = venue.read_ws(orjson.dumps({"reqId": "c-1", "op": "order.cancel", "retCode": 110001,
                                         "retMsg": "order not exists or too late to cancel"}))
    assert not answer.answers[0].ok and answer.answers[0].code == "110001"
    limited = venue.read_ws(orjson.dumps({"reqId": "c-2", "retCode": 10006, "retMsg": "slow"}))
    assert isinstance(limited.error, RateLimited)


def _wallet_message(account: dict, coins: list[dict]) -> bytes:
    """A ``wallet`` topic message shaped as the reference's stream example (fields as there,
    ``availableToWithdraw`` deprecated for unified accounts)."""
    rows = [{"equity": "0", "usdValue": "0", "walletBalance": "0", "availableToWithdraw": "",
             "availableToBorrow": "", "borrowAmount": "0", "accruedInterest": "0",
             "totalOrderIM": "0", "totalPositionIM": "0", "totalPositionMM": "0",
             "unrealisedPnl": "0", "cumRealisedPnl": "0", "bonus": "0",
             "collateralSwitch": True, "marginCollateral": True, "locked": "0",
             "spotHedgingQty": "0", "spotBorrow": "0", **coin} for coin in coins]
    return orjson.dumps({"id": "592324d2bce751-ad38-48eb-8f42-4671d1fb4d4e", "topic": "wallet",
                         "creationTime": 1700034722104, "data": [{
                             "accountType": "UNIFIED", "accountLTV": "0", **account,
                             "coin": rows}]})


CROSS = {"accountIMRate": "0.0124", "accountIMRateByMp": "0.0124", "accountMMRate": "0.0012",
         "accountMMRateByMp": "0.0012", "totalEquity": "10262.91335023",
         "totalWalletBalance": "9684.46297164", "totalMarginBalance": "10263.43335023",
         "totalAvailableBalance": "9556.6056555", "totalPerpUPL": "578.97037859",
         "totalInitialMargin": "127.8573161", "totalInitialMarginByMp": "127.8573161",
         "totalMaintenanceMargin": "12.78573161", "totalMaintenanceMarginByMp": "12.78573161"}


def test_available_is_the_documented_one_not_the_deprecated_field():
    """``availableToWithdraw`` is deprecated for unified accounts (the ``wallet`` topic and
    ``wallet-balance`` references): cross margin's available is the account's
    ``totalAvailableBalance`` (USD) in the coin at its index price (``usdValue/equity``);
    isolated margin's (account-wide fields empty) ``walletBalance - totalPositionIM -
    totalOrderIM - locked - bonus``. The old reading, ``equity - totalPositionIM -
    totalOrderIM``, counted the unrealised PnL and the haircut as available."""
    usdt = {"coin": "USDT", "equity": "10226.20575506", "usdValue": "10227.22837564",
            "walletBalance": "9647.75537647", "totalPositionIM": "127.8573161",
            "totalPositionMM": "12.78573161", "unrealisedPnl": "578.45037859"}
    btc = {"coin": "BTC", "equity": "0.00102964", "usdValue": "36.70759517",
           "walletBalance": "0.00102964", "availableToWithdraw": "0.00102964",
           "totalOrderIM": "", "totalPositionIM": "", "totalPositionMM": "",
           "spotHedgingQty": "0.01592413"}
    got = {b.asset: b for b in _venue().parse_user(_wallet_message(CROSS, [usdt, btc]), 3)}
    total = Decimal("9556.6056555")
    assert (got["USDT"].wallet, got["USDT"].equity) == \
        (Decimal("9647.75537647"), Decimal("10226.20575506"))
    assert got["USDT"].available == total * Decimal("10226.20575506") / Decimal("10227.22837564")
    assert got["USDT"].available < total  # USDT a little above one dollar
    assert got["BTC"].available == total * Decimal("0.00102964") / Decimal("36.70759517")
    isolated = dict.fromkeys(CROSS, "")
    usdt |= {"totalOrderIM": "20", "totalPositionIM": "100", "locked": "5", "bonus": "3",
             "walletBalance": "1000", "equity": "1010", "usdValue": "1010.1"}
    (alone,) = _venue().parse_user(_wallet_message(isolated, [usdt]), 3)
    assert alone.available == Decimal("872")  # 1000 - 100 - 20 - 5 - 3
    rest = orjson.dumps({"retCode": 0, "retMsg": "OK", "result": {"list": orjson.loads(
        _wallet_message(CROSS, [usdt]))["data"]}, "retExtInfo": {}, "time": 1690872862481})
    (snap,) = _venue().parse_snapshot(Snapshot.BALANCES, rest, 1)
    assert snap.available == total * Decimal("1010") / Decimal("1010.1")
