"""Hyperliquid private side: actions built as the SDK builds them and signed so the SDK
recovers our API wallet, the user stream on real messages, and the flow against a fake
venue that recovers the signer of every action."""

from __future__ import annotations

import asyncio
import logging
from decimal import Decimal

import orjson
import pytest
from captures import FIXTURES
from eth_account import Account
from fake_private import FakePrivate, Recorder, json_response, started, until
from hyperliquid.utils import signing as sdk
from hyperliquid.utils.types import Cloid

from makerlab.core.events import BalanceState, OrderEventKind, PositionState
from makerlab.errors import ConfigError
from makerlab.live.config import Secret
from makerlab.live.gateway import Gateway
from makerlab.live.transport import ReconnectPolicy
from makerlab.live.venues.base import Endpoints
from makerlab.live.venues.hyperliquid_private import HyperliquidPrivate
from makerlab.live.venues.private_base import Op, OpKind, Snapshot
from makerlab.trading.protocols import AmendRequest, CancelRequest, OrderRequest

AGENT_KEY = "0x" + "5a" * 32
AGENT = Account.from_key(AGENT_KEY).address
ACCOUNT = "0x" + "ab" * 20
CLOID = "0x" + "0f" * 16
FAST = ReconnectPolicy(initial_delay=0.01, max_delay=0.05, watchdog=5.0, rest_timeout=2.0)
META = (FIXTURES / "private" / "hyperliquid_http_meta_perp_sample.json").read_bytes()


def _venue(env="mainnet") -> HyperliquidPrivate:
    venue = HyperliquidPrivate((Secret(ACCOUNT), Secret(AGENT_KEY)), env,
                               Endpoints("http://h/hl", "ws://h/hl"))
    venue.read_login(META)
    return venue


def _order(cloid=CLOID, amount="0.0014", price="100000", tif="ALO", **kw) -> OrderRequest:
    return OrderRequest("hyperliquid", "BTC", cloid, Decimal(amount), Decimal(price), tif=tif,
                        **kw)


def test_order_action_is_the_sdks_and_its_signature_recovers_the_agent():
    venue = _venue()
    payload = orjson.loads(venue.rest_call(Op(OpKind.PLACE, "hyperliquid", "BTC", (_order(),)),
                                           1732702700305).body)
    wire = sdk.order_request_to_order_wire(
        {"coin": "BTC", "is_buy": True, "sz": 0.0014, "limit_px": 100000.0,
         "order_type": {"limit": {"tif": "Alo"}}, "reduce_only": False,
         "cloid": Cloid.from_str(CLOID)}, 0)
    assert payload["action"] == sdk.order_wires_to_order_action([wire])
    assert list(payload["action"]["orders"][0]) == list(wire)  # msgpack: key order matters
    assert payload["nonce"] == 1732702700305 and payload["vaultAddress"] is None
    assert sdk.recover_agent_or_user_from_l1_action(
        payload["action"], payload["signature"], None, payload["nonce"], None, True) == AGENT


def test_cancels_modify_schedule_and_nonces():
    venue = _venue("testnet")
    by_cloid = venue.action(Op(OpKind.CANCEL, "hyperliquid", "BTC", (
        CancelRequest("hyperliquid", "BTC", cloid=CLOID),)), 1)
    assert by_cloid == {"type": "cancelByCloid", "cancels": [{"asset": 0, "cloid": CLOID}]}
    by_oid = venue.action(Op(OpKind.CANCEL, "hyperliquid", "ETH", (
        CancelRequest("hyperliquid", "ETH", oid="77"),)), 1)
    assert by_oid == {"type": "cancel", "cancels": [{"a": 1, "o": 77}]}
    venue.action(Op(OpKind.PLACE, "hyperliquid", "BTC", (_order(tif="IOC"),)), 1)
    modify = venue.action(Op(OpKind.AMEND, "hyperliquid", "BTC", (AmendRequest(
        "hyperliquid", "BTC", cloid=CLOID, price=Decimal("99000"), amount=Decimal("-0.002")),)), 1)
    assert modify["modifies"][0]["oid"] == CLOID
    assert modify["modifies"][0]["order"]["t"] == {"limit": {"tif": "Ioc"}}  # kept
    assert modify["modifies"][0]["order"]["b"] is False
    assert venue.action(Op(OpKind.DEAD_MAN, "hyperliquid", timeout_ms=10_000), 1000) == \
        {"type": "scheduleCancel", "time": 11_000}
    first = orjson.loads(venue.ws_call(Op(OpKind.DEAD_MAN, "hyperliquid"), 5, "1"))
    second = orjson.loads(venue.ws_call(Op(OpKind.DEAD_MAN, "hyperliquid"), 5, "2"))
    assert second["request"]["payload"]["nonce"] == first["request"]["payload"]["nonce"] + 1
    assert first["request"]["payload"]["action"] == {"type": "scheduleCancel"}
    signature = first["request"]["payload"]["signature"]
    assert sdk.recover_agent_or_user_from_l1_action(
        {"type": "scheduleCancel"}, signature, None, 5, None, False) == AGENT  # testnet: "b"
    with pytest.raises(ConfigError, match="no market orders"):
        venue.action(Op(OpKind.PLACE, "hyperliquid", "BTC", (
            OrderRequest("hyperliquid", "BTC", "x", Decimal(1), None),)), 1)
    mapped = venue.action(Op(OpKind.PLACE, "hyperliquid", "BTC", (_order("mm-1"),)), 1)
    wire_cloid = mapped["orders"][0]["c"]
    assert len(wire_cloid) == 34 and venue.cloids.ours(wire_cloid) == "mm-1"


def test_answers():
    venue = _venue()
    ok = {"channel": "post", "data": {"id": 3, "response": {"type": "action", "payload": {
        "status": "ok", "response": {"type": "order", "data": {"statuses": [
            {"resting": {"oid": 77738308}}, {"error": "Post only order would have immediately "
                                             "matched, bbo was 100000@100001. asset=0"}]}}}}}}
    answer = venue.read_ws(orjson.dumps(ok))
    assert answer.req_id == "3" and answer.answers[0].oid == "77738308"
    assert not answer.answers[1].ok and "Post only" in answer.answers[1].reason
    err = {"status": "err", "response": "User or API Wallet 0x... does not exist."}
    (refused,) = venue.read_rest(Op(OpKind.DEAD_MAN, "hyperliquid"), 200, orjson.dumps(err), {})
    assert not refused.ok and "does not exist" in refused.reason
    assert venue.read_ws(b'{"channel":"pong"}') is None


def test_user_stream_translation():
    venue = _venue()
    (fill,) = venue.parse_user((FIXTURES / "private" /
                                "hyperliquid_ws_user_fill_liquidation.json").read_bytes(), 4)
    assert (fill.trade_id, fill.oid, fill.side, fill.price, fill.size) == \
        ("745210434703679", "55030848197", -1, Decimal("66653.0"), Decimal("0.001"))
    assert (fill.fee, fill.fee_asset, fill.is_maker) == (Decimal("0.009997"), "USDC", True)
    snapshot = orjson.dumps({"channel": "userFills", "data": {"isSnapshot": True, "user": ACCOUNT,
                                                              "fills": [{"coin": "BTC"}]}})
    assert venue.parse_user(snapshot, 4) == []
    update = orjson.dumps({"channel": "orderUpdates", "data": [{"order": {
        "coin": "BTC", "side": "A", "limitPx": "87000", "sz": "0.4", "oid": 1000001,
        "timestamp": 1699999999000, "origSz": "1.0", "cloid": CLOID},
        "status": "open", "statusTimestamp": 1699999999999}]})
    (state,) = venue.parse_user(update, 4)
    assert (state.kind, state.status, state.amount, state.filled, state.cloid) == \
        (OrderEventKind.ACK, "PARTIAL", Decimal("-1.0"), Decimal("0.6"), CLOID)
    assert state.update_id == 1699999999999 * 10**6
    gone = update.replace(b'"open"', b'"reduceOnlyCanceled"')
    assert venue.parse_user(gone, 4)[0].kind is OrderEventKind.EXPIRE
    # the orderStatus reference: every "...Rejected" status is a refusal of the order
    refused = update.replace(b'"open"', b'"badAloPxRejected"').replace(b'"0.4"', b'"1.0"')
    (state,) = venue.parse_user(refused, 4)
    assert (state.kind, state.status, state.reason, state.filled) == \
        (OrderEventKind.REJECT, "REJECTED", "badAloPxRejected", Decimal("0"))
    state_body = (FIXTURES / "private" /
                  "hyperliquid_http_clearinghouse_state_negative_total_raw_usd.json").read_bytes()
    (balance,) = venue.parse_snapshot(Snapshot.BALANCES, state_body, 1)
    assert (balance.equity, balance.available) == (Decimal("1736.030875"), Decimal("772.232111"))


# --------------------------------------------------------------------------- fake venue

# the info endpoint reference's example rows: openOrders states the remaining size only;
# frontendOpenOrders adds origSz (the placed size), tif, orderType, reduceOnly, isTrigger...
_OPEN_ORDERS_KEYS = ("coin", "limitPx", "oid", "side", "sz", "timestamp")


def _frontend_row(oid: int, *, sz: str, orig: str, trigger: bool = False) -> dict:
    return {"coin": "BTC", "isPositionTpsl": False, "isTrigger": trigger, "limitPx": "29792.0",
            "oid": oid, "orderType": "Stop Market" if trigger else "Limit", "origSz": orig,
            "reduceOnly": trigger, "side": "A", "sz": sz, "tif": None if trigger else "Alo",
            "timestamp": 1681247412573, "triggerCondition": "Price above 30000" if trigger
            else "N/A", "triggerPx": "30000.0" if trigger else "0.0", "children": []}


class HyperliquidFake:
    def __init__(self, fake: FakePrivate) -> None:
        self.fake, self.oid, self.actions = fake, 500, []
        self.open: dict[int, dict] = {}
        fake.rest[("POST", "/hl/info")] = self._info
        fake.sockets["/hl/ws"] = self._ws

    async def _info(self, request, body):
        query = orjson.loads(body)
        if query["type"] == "meta":
            return json_response(orjson.loads(META))
        if query["type"] == "frontendOpenOrders":  # the info reference's rows
            assert query["user"] == ACCOUNT
            return json_response(list(self.open.values()))
        if query["type"] == "openOrders":  # the reference's rows: the remaining sz only
            assert query["user"] == ACCOUNT
            return json_response([{k: row[k] for k in _OPEN_ORDERS_KEYS}
                                  for row in self.open.values() if not row["isTrigger"]])
        return json_response({"assetPositions": [{"position": {
            "coin": "BTC", "szi": "0.5", "entryPx": "60000", "unrealizedPnl": "12.5"}}],
            "marginSummary": {"accountValue": "1012.5"}, "withdrawable": "800", "time": 17})

    def _act(self, payload: dict) -> dict:
        action = payload["action"]
        signer = sdk.recover_agent_or_user_from_l1_action(
            action, payload["signature"], None, payload["nonce"], None, False)
        assert signer == AGENT
        self.actions.append(action)
        if action["type"] == "order":
            self.oid += 1
            self.open[self.oid] = _frontend_row(self.oid, sz="1", orig="1")
            return {"status": "ok", "response": {"type": "order", "data": {
                "statuses": [{"resting": {"oid": self.oid}}]}}}
        if action["type"] == "cancel":
            self.open.pop(action["cancels"][0]["o"])
            return {"status": "ok", "response": {"type": "cancel", "data": {
                "statuses": ["success"]}}}
        return {"status": "ok", "response": {"type": "default"}}

    async def _ws(self, conn, text):
        msg = orjson.loads(text)
        if msg["method"] == "post":
            payload = self._act(msg["request"]["payload"])
            await conn.send(orjson.dumps({"channel": "post", "data": {"id": msg["id"], "response": {
                "type": "action", "payload": payload}}}))
        elif msg["method"] == "subscribe" and msg["subscription"]["type"] == "userFills":
            assert msg["subscription"]["user"] == ACCOUNT
            await conn.send(orjson.dumps({"channel": "userFills", "data": {
                "isSnapshot": True, "user": ACCOUNT, "fills": [{"coin": "OLD"}]}}))
            await conn.send(orjson.dumps({"channel": "userFills", "data": {"user": ACCOUNT,
                "fills": [{"coin": "BTC", "px": "60000", "sz": "0.5", "side": "B", "time": 5,
                           "oid": 501, "tid": 9, "fee": "-0.3", "feeToken": "USDC",
                           "crossed": False, "cloid": CLOID}]}}))


def test_post_over_the_socket_user_fills_cancel_all_and_dead_man(monkeypatch, tmp_path, caplog):
    caplog.set_level(logging.DEBUG)
    monkeypatch.setenv("MK_HL_ACCOUNT", ACCOUNT)
    monkeypatch.setenv("MK_HL_AGENT", AGENT_KEY)
    monkeypatch.chdir(tmp_path)

    async def main():
        async with FakePrivate() as fake:
            hl = HyperliquidFake(fake)
            recorder = Recorder()
            gateway = Gateway({"hyperliquid": {"env": "paper", "base_url": fake.url + "/hl",
                                               "key": "MK_HL_ACCOUNT", "secret": "MK_HL_AGENT"}},
                              spec_cache=tmp_path, policy=FAST)
            async with started(gateway) as venue:
                venue.attach(recorder)
                client = venue.client("hyperliquid")
                await until(lambda: client.order_socket_ready, "socket")
                await venue.submit(_order())
                await venue.submit(_order("mm-2"))
                await until(lambda: recorder.fills, "user fill")
                await venue.cancel_all("hyperliquid")
                await venue.arm_dead_man("hyperliquid", 10_000)
                positions = await venue.positions("hyperliquid")
                return recorder, hl, positions, client.limits

    recorder, hl, positions, limits = asyncio.run(main())
    acks = [(u.kind, u.cloid, u.oid) for u in recorder.updates]
    assert acks[:2] == [(OrderEventKind.ACK, CLOID, "501"), (OrderEventKind.ACK, "mm-2", "502")]
    assert [(u.kind, u.oid) for u in recorder.updates[2:]] == \
        [(OrderEventKind.CANCEL_ACK, "501"), (OrderEventKind.CANCEL_ACK, "502")]
    assert [a["type"] for a in hl.actions] == ["order", "order", "cancel", "cancel",
                                               "scheduleCancel"]
    (fill,) = recorder.fills  # the isSnapshot replay was skipped
    assert (fill.cloid, fill.fee, fill.is_maker) == (CLOID, Decimal("-0.3"), True)
    assert isinstance(positions[0], PositionState) and positions[0].amount == Decimal("0.5")
    assert limits.usage["weight_1m"].used == 5 and limits.usage["weight_1m"].limit == 1200
    assert AGENT_KEY[2:] not in caplog.text
    assert not isinstance(positions[0], BalanceState)


def test_a_partly_filled_resting_order_reads_its_fills_from_the_snapshot(monkeypatch, tmp_path):
    """The open-orders snapshot is frontendOpenOrders: openOrders states only the remaining
    ``sz``, so a resting order 5 with 2 filled read as an order of 3 with nothing filled
    (a reconnect's snapshot understated the fills); an untriggered trigger order is not on
    the book."""
    monkeypatch.setenv("MK_HL_ACCOUNT", ACCOUNT)
    monkeypatch.setenv("MK_HL_AGENT", AGENT_KEY)
    monkeypatch.chdir(tmp_path)

    async def main():
        async with FakePrivate() as fake:
            hl = HyperliquidFake(fake)
            hl.open[91490942] = _frontend_row(91490942, sz="3.0", orig="5.0")
            hl.open[91490943] = _frontend_row(91490943, sz="0.0", orig="0.0", trigger=True)
            gateway = Gateway({"hyperliquid": {"env": "paper", "base_url": fake.url + "/hl",
                                               "key": "MK_HL_ACCOUNT", "secret": "MK_HL_AGENT"}},
                              spec_cache=tmp_path, policy=FAST)
            async with started(gateway) as venue:
                return await venue.open_orders("hyperliquid")

    (order,) = asyncio.run(main())
    assert (order.oid, order.status, order.amount, order.filled, order.price) == \
        ("91490942", "PARTIAL", Decimal("-5.0"), Decimal("2.0"), Decimal("29792.0"))
    assert order.kind is OrderEventKind.ACK and order.update_id == 1681247412573 * 10**6
