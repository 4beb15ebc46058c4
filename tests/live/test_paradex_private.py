"""Paradex private side: the login and order signatures verify with the account's Stark
key, payloads from the official AsyncAPI schema (no recorded private messages exist), and
the flow against a fake venue that verifies every signature."""

from __future__ import annotations

import asyncio
import logging
from decimal import Decimal

import fast_stark_crypto
import orjson
import pytest
from fake_private import FakePrivate, Recorder, json_response, started, until

from makerlab.core.events import BalanceState, OrderEventKind, OrderUpdate
from makerlab.core.orders import Orders, OrderStatus
from makerlab.errors import ConfigError, VenueError
from makerlab.live.config import Secret
from makerlab.live.gateway import Gateway
from makerlab.live.signing import paradex_auth_hash, paradex_order_hash
from makerlab.live.transport import ReconnectPolicy
from makerlab.live.venues.base import Endpoints
from makerlab.live.venues.paradex_private import CHAIN_IDS, ParadexPrivate
from makerlab.live.venues.private_base import Op, OpKind, Snapshot
from makerlab.trading.protocols import CancelRequest, OrderRequest

ACCOUNT = "0x129f3dc1b8962d8a87abc692424c78fda963ade0e1cd17bf3d1c26f8d41ee7a"
STARK_KEY = "0x" + "0123456789abcdef" * 3 + "01"
PUBLIC = fast_stark_crypto.get_public_key(int(STARK_KEY, 16))
FAST = ReconnectPolicy(initial_delay=0.01, max_delay=0.05, watchdog=5.0, rest_timeout=2.0)


def _venue(env="mainnet") -> ParadexPrivate:
    return ParadexPrivate((Secret(ACCOUNT), Secret(STARK_KEY)), env,
                          Endpoints("http://h/pdx", "ws://h/pdx"))


def _order(cloid="mm-1", amount="0.01", price="29500.00", tif="POST_ONLY", **kw):
    return OrderRequest("paradex", "BTC-USD-PERP", cloid, Decimal(amount),
                        None if price is None else Decimal(price), tif=tif, **kw)


def _verify_order(params: dict, chain: str) -> bool:
    r, s = (int(x) for x in orjson.loads(params["signature"]))
    digest = paradex_order_hash(
        ACCOUNT, chain, timestamp_ms=params["signature_timestamp"], market=params["market"],
        buy=params["side"] == "BUY", order_type=params["type"], size=Decimal(params["size"]),
        price=Decimal(params.get("price", "0")))
    return fast_stark_crypto.verify(PUBLIC, digest, r, s)


def _verify_auth(headers, chain: str) -> bool:
    r, s = (int(x) for x in orjson.loads(headers["PARADEX-STARKNET-SIGNATURE"]))
    digest = paradex_auth_hash(headers["PARADEX-STARKNET-ACCOUNT"], chain,
                               timestamp=int(headers["PARADEX-TIMESTAMP"]),
                               expiration=int(headers["PARADEX-SIGNATURE-EXPIRATION"]))
    return fast_stark_crypto.verify(PUBLIC, digest, r, s)


def test_golden_login_and_order_requests():
    venue = _venue()
    login = venue.login_call(1_700_000_000_123)
    assert (login.method, login.path) == ("POST", "/v1/auth")
    assert login.headers["PARADEX-TIMESTAMP"] == "1700000000"
    assert login.headers["PARADEX-SIGNATURE-EXPIRATION"] == str(1700000000 + 24 * 3600)
    assert _verify_auth(login.headers, CHAIN_IDS["mainnet"])
    venue.read_login(b'{"jwt_token":"jwt-1"}')
    frame = orjson.loads(venue.ws_call(Op(OpKind.PLACE, "paradex", "BTC-USD-PERP", (
        _order(reduce_only=True),)), 1696291200000, "7"))
    params = frame["params"]
    assert (frame["method"], frame["id"]) == ("order.create", "7")
    assert {k: v for k, v in params.items() if k != "signature"} == {
        "market": "BTC-USD-PERP", "side": "BUY", "type": "LIMIT", "size": "0.01",
        "price": "29500", "instruction": "POST_ONLY", "signature_timestamp": 1696291200000,
        "client_id": "mm-1", "flags": ["REDUCE_ONLY"]}
    assert _verify_order(params, CHAIN_IDS["mainnet"])
    rest = venue.rest_call(Op(OpKind.CANCEL, "paradex", "BTC-USD-PERP", (
        CancelRequest("paradex", "BTC-USD-PERP", cloid="mm-1"),)), 1)
    assert (rest.method, rest.path, dict(rest.params)) == \
        ("DELETE", "/v1/orders/by_client_id/mm-1", {"market": "BTC-USD-PERP"})
    assert rest.headers == {"Authorization": "Bearer jwt-1"}
    dead = orjson.loads(venue.ws_call(Op(OpKind.DEAD_MAN, "paradex", timeout_ms=5000), 1, "8"))
    assert (dead["method"], dead["params"]) == ("order.cancel_on_disconnect", {"enabled": True})
    with pytest.raises(ConfigError, match="only on the order socket"):
        venue.rest_call(Op(OpKind.DEAD_MAN, "paradex", timeout_ms=5000), 1)


def _sub(channel: str, data: dict) -> bytes:
    return orjson.dumps({"jsonrpc": "2.0", "method": "subscription",
                         "params": {"channel": channel, "data": data}})


ORDER = {"id": "1681462770114080709610001", "account": ACCOUNT, "market": "BTC-USD-PERP",
         "side": "BUY", "type": "LIMIT", "size": "0.05", "remaining_size": "0.02",
         "price": "29500", "status": "OPEN", "client_id": "mm-1", "instruction": "POST_ONLY",
         "cancel_reason": "", "last_updated_at": 1681493746016, "seq_no": 20784, "flags": []}
FILL = {"id": "8615262148007718462", "account": ACCOUNT, "market": "BTC-USD-PERP",
        "side": "BUY", "size": "0.03", "price": "29500", "created_at": 1681375176910,
        "order_id": "1681462770114080709610001", "client_id": "mm-1", "fee": "-0.0044",
        "fee_currency": "USDC", "liquidity": "MAKER", "fill_type": "FILL"}
ACCOUNT_MSG = {"account": ACCOUNT, "account_value": "136285.06918911", "free_collateral":
               "73276.47229774", "total_collateral": "123166.12015264", "settlement_asset":
               "USDC", "updated_at": 1681471234972, "seq_no": 1}


def test_user_stream_from_the_schema():
    venue = _venue()
    (update,) = venue.parse_user(_sub("orders.ALL", ORDER), 3)
    assert (update.kind, update.status, update.filled, update.update_id) == \
        (OrderEventKind.FILL, "PARTIAL", Decimal("0.03"), 1681493746016 * 10**6)
    cancelled = ORDER | {"status": "CLOSED", "cancel_reason": "POST_ONLY_WOULD_CROSS"}
    assert venue.parse_user(_sub("orders.ALL", cancelled), 3)[0].kind is OrderEventKind.EXPIRE
    mine = ORDER | {"status": "CLOSED", "cancel_reason": "USER_CANCELED"}
    assert venue.parse_user(_sub("orders.ALL", mine), 3)[0].kind is OrderEventKind.CANCEL_ACK
    (fill,) = venue.parse_user(_sub("fills.ALL", FILL), 3)
    assert (fill.trade_id, fill.fee, fill.is_maker, fill.cloid) == \
        ("8615262148007718462", Decimal("-0.0044"), True, "mm-1")
    # a fill's side is the account's, maker or taker (the schema's "Taker side" is the
    # public trades' wording): Paradex's own market maker books its position by it
    assert fill.side == 1
    (ask,) = venue.parse_user(_sub("fills.ALL", FILL | {"side": "SELL"}), 3)
    assert (ask.side, ask.is_maker) == (-1, True)
    (balance,) = venue.parse_user(_sub("account", ACCOUNT_MSG), 3)
    assert isinstance(balance, BalanceState)
    assert (balance.equity, balance.available) == \
        (Decimal("136285.06918911"), Decimal("73276.47229774"))
    position = {"market": "BTC-USD-PERP", "size": "-0.5", "side": "SHORT",
                "average_entry_price": "30000", "unrealized_pnl": "-12", "last_updated_at": 5}
    assert venue.parse_user(_sub("positions", position), 3)[0].amount == Decimal("-0.5")


class ParadexFake:
    def __init__(self, fake: FakePrivate) -> None:
        self.fake, self.n, self.cod = fake, 0, []
        fake.rest[("GET", "/pdx/v1/markets")] = self._markets
        fake.rest[("POST", "/pdx/v1/auth")] = self._auth
        fake.sockets["/pdx/v1"] = self._ws

    async def _markets(self, request, body):
        return json_response({"results": [{
            "symbol": "BTC-USD-PERP", "base_currency": "BTC", "quote_currency": "USD",
            "asset_kind": "PERP", "order_size_increment": "0.001", "price_tick_size": "0.1",
            "min_notional": "10"}]})

    async def _auth(self, request, body):
        assert _verify_auth(request.headers, CHAIN_IDS["testnet"])
        return json_response({"jwt_token": "jwt-ok"})

    async def _ws(self, conn, text):
        msg = orjson.loads(text)
        method, params = msg["method"], msg.get("params", {})
        if method == "auth":
            ok = params["bearer"] == "jwt-ok"
            await conn.send(orjson.dumps({"jsonrpc": "2.0", "id": msg["id"], **(
                {"result": {"node_id": "n1"}} if ok else
                {"error": {"code": 40111, "message": "invalid bearer"}})}))
        elif method == "subscribe" and params["channel"] == "account":
            await conn.send(_sub("account", ACCOUNT_MSG))
            await conn.send(_sub("fills.ALL", FILL))
        elif method == "order.create":
            assert _verify_order(params, CHAIN_IDS["testnet"])
            self.n += 1
            if params["instruction"] == "POST_ONLY" and Decimal(params["price"]) > 30000:
                reply = {"error": {"code": 40010, "message": "POST_ONLY_WOULD_CROSS"}}
            else:
                reply = {"result": {"id": f"o{self.n}", "status": "NEW", "last_updated_at": 7}}
            await conn.send(orjson.dumps({"jsonrpc": "2.0", "id": msg["id"], **reply}))
        elif method == "order.cancel_on_disconnect":
            self.cod.append(params["enabled"])
            await conn.send(orjson.dumps({"jsonrpc": "2.0", "id": msg["id"],
                                          "result": {"enabled": params["enabled"]}}))


def test_auth_orders_stream_and_cancel_on_disconnect(monkeypatch, tmp_path, caplog):
    caplog.set_level(logging.DEBUG)
    monkeypatch.setenv("MK_PDX_ACCOUNT", ACCOUNT)
    monkeypatch.setenv("MK_PDX_KEY", STARK_KEY)
    monkeypatch.chdir(tmp_path)

    async def main():
        async with FakePrivate() as fake:
            pdx = ParadexFake(fake)
            recorder = Recorder()
            gateway = Gateway({"paradex": {"env": "paper", "base_url": fake.url + "/pdx",
                                           "key": "MK_PDX_ACCOUNT", "secret": "MK_PDX_KEY"}},
                              spec_cache=tmp_path, policy=FAST)
            async with started(gateway) as venue:
                venue.attach(recorder)
                client = venue.client("paradex")
                await until(lambda: client.order_socket_ready, "authenticated order socket")
                await venue.submit(_order("mm-1"))
                await venue.submit(_order("mm-2", price="31000"))
                await venue.arm_dead_man("paradex", 5000)
                await until(lambda: recorder.fills and recorder.balances, "user stream")
                return recorder, pdx

    recorder, pdx = asyncio.run(main())
    assert [(u.kind, u.cloid, u.oid, u.code) for u in recorder.updates] == [
        (OrderEventKind.ACK, "mm-1", "o1", ""), (OrderEventKind.REJECT, "mm-2", None, "40010")]
    assert pdx.cod == [True]
    assert recorder.fills[0].trade_id == "8615262148007718462"
    assert STARK_KEY[2:] not in caplog.text


def test_query_of_an_unknown_order_answers_none():
    # GET /v1/orders/{order_id} and /v1/orders/by_client_id/{client_id} document 200 or
    # 400 with an ApiError; an unknown order is ORDER_ID_NOT_FOUND / CLIENT_ORDER_ID_NOT_FOUND
    venue = _venue()
    for code in ("CLIENT_ORDER_ID_NOT_FOUND", "ORDER_ID_NOT_FOUND"):
        body = orjson.dumps({"error": code, "message": "no such order", "data": {}})
        assert venue.parse_query(400, body, 3) is None
    assert venue.parse_query(404, b"", 3) is None
    with pytest.raises(VenueError):  # any other refusal is not an answer
        venue.parse_query(400, orjson.dumps({"error": "INVALID_REQUEST", "message": "x"}), 3)


def test_rest_and_stream_news_order_by_time_not_by_their_independent_seq_no():
    # the schema: "WebSocket and REST responses use independently generated seq_no per
    # event"; a snapshot row with a large REST seq_no must not make the stream's later
    # news (a smaller stream seq_no) look stale
    venue = _venue()
    row = ORDER | {"seq_no": 9_000_000, "last_updated_at": 1681493746016}
    (snapshot,) = venue.parse_snapshot(Snapshot.ORDERS, orjson.dumps({"results": [row]}), 3)
    closed = ORDER | {"status": "CLOSED", "cancel_reason": "USER_CANCELED",
                      "seq_no": 41, "last_updated_at": 1681493747016}
    (update,) = venue.parse_user(_sub("orders.ALL", closed), 4)
    assert isinstance(snapshot, OrderUpdate)

    async def mirror():
        orders = Orders()
        await orders.apply_update(snapshot)
        return await orders.apply_update(update)

    order = asyncio.run(mirror())
    assert order is not None and order.ord_status == OrderStatus.CANCELLED
