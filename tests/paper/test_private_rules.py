"""The private side's other rules: rate limits with the venues' headers, dead-man switches,
listen keys, batches and cancel-all, account snapshots, order queries, credentials and the
options of ``makerlab paper``."""

from __future__ import annotations

import asyncio
import json
from decimal import Decimal

import aiohttp
import pytest
from private_kit import HOUR, KEYS, cloid, trading, until

from makerlab.errors import ConfigError, RateLimited
from makerlab.live.config import parse_config
from makerlab.paper import PaperExchange
from makerlab.paper.limits import Budget
from makerlab.paper.private import load_credentials
from makerlab.paper.trading import parse_latency, parse_queue_model
from makerlab.sim.latency import Latencies
from makerlab.sim.queue import PowerProbQueue, RiskAverseQueue
from makerlab.trading.protocols import CancelRequest, OrderRequest

QTY = Decimal("0.002")


def _order(protocol: str, n: int, price: Decimal, amount: Decimal = QTY) -> OrderRequest:
    return OrderRequest(protocol, "BTCUSDT", cloid(protocol, n), amount, price)


def test_binance_order_budget_refuses_with_429_and_the_headers_report_it(
        btc_archive, monkeypatch, tmp_path):
    """-1015 past the orders per 10 s (HTTP 429, Retry-After): the client raises
    RateLimited; every answer carries X-MBX-ORDER-COUNT-10S."""
    real = Budget.__init__

    def small(self, limit, span_ns, *args, **kw):
        real(self, 3 if limit == 300 else limit, span_ns, *args, **kw)

    monkeypatch.setattr(Budget, "__init__", small)

    async def body() -> None:
        async with trading(btc_archive, "binance", monkeypatch, tmp_path) as t:
            client = t.venue.client("binance")
            for n in range(1, 4):
                await t.venue.submit(_order("binance", n, t.price(-50 - n)))
            assert client.limits.usage["orders_10s"].used == 3  # the WS API's rateLimits
            with pytest.raises(RateLimited):
                await t.venue.submit(_order("binance", 4, t.price(-60)))
            assert len(t.engine.resting) == 3

    asyncio.run(body())


def test_bybit_endpoint_budget_answers_10006(btc_archive, monkeypatch, tmp_path):
    real = Budget.__init__
    monkeypatch.setattr(Budget, "__init__",
                        lambda self, limit, span_ns, *a, **k: real(self, 2, span_ns, *a, **k))

    async def body() -> None:
        async with trading(btc_archive, "bybit", monkeypatch, tmp_path) as t:
            for n in (1, 2):
                await t.venue.submit(_order("bybit", n, t.price(-50 - n)))
            with pytest.raises(RateLimited) as refused:
                await t.venue.submit(_order("bybit", 3, t.price(-60)))
            # the refusal carries the limit headers, as Bybit's: wait until the window
            # resets (at most its second), not an unknown time (60 s)
            assert refused.value.retry_after is not None and refused.value.retry_after <= 1

    asyncio.run(body())


def test_dead_man_switch_cancels_when_not_armed_again(btc_archive, monkeypatch, tmp_path):
    """Armed for a short time and not re-armed, Binance's countdown cancels every order
    of the symbol (the client hears the cancellations); disarmed, it does not."""
    protocol, timeout = "binance", 300

    async def body() -> None:
        async with trading(btc_archive, protocol, monkeypatch, tmp_path) as t:
            await t.venue.submit(_order(protocol, 1, t.price(-50)))
            await t.venue.arm_dead_man(protocol, timeout, symbol="BTCUSDT")
            await t.venue.arm_dead_man(protocol, 0, symbol="BTCUSDT")  # disarmed
            await asyncio.sleep(timeout / 1000 + 0.3)
            assert t.engine.resting
            await t.venue.arm_dead_man(protocol, timeout, symbol="BTCUSDT")
            await until(lambda: t.recorder.of(cloid(protocol, 1), "cancel_ack"),
                        "the dead-man's cancel", tries=2000)
            assert not t.engine.resting

    asyncio.run(body())


def test_binance_listen_keys_and_user_stream_admission(btc_archive, monkeypatch, tmp_path):
    async def body() -> None:
        async with trading(btc_archive, "binance", monkeypatch, tmp_path) as t:
            base, ws = t.paper.urls["binance"]["rest"], t.paper.urls["binance"]["ws"]
            key = {"X-MBX-APIKEY": KEYS["binance"].key}
            async with aiohttp.ClientSession() as http:
                async with http.post(base + "/fapi/v1/listenKey", headers=key) as reply:
                    listen = (await reply.json())["listenKey"]
                async with http.post(base + "/fapi/v1/listenKey",
                                     headers={"X-MBX-APIKEY": "nope"}) as reply:
                    assert reply.status == 401 and (await reply.json())["code"] == -2015
                async with http.get(f"{ws}/private/ws?listenKey=wrong") as reply:
                    assert reply.status == 400 and (await reply.json())["code"] == -1125
                async with http.ws_connect(f"{ws}/ws/{listen}") as user:
                    await until(lambda: t.paper.private.listeners("binance") == 2,
                                "a second user stream")
                    await t.venue.submit(_order("binance", 1, t.price(-50)))
                    event = json.loads((await user.receive(timeout=10)).data)
                    assert (event["e"], event["o"]["x"], event["o"]["c"]) == \
                        ("ORDER_TRADE_UPDATE", "NEW", cloid("binance", 1))
                async with http.delete(base + "/fapi/v1/listenKey", headers=key) as reply:
                    assert reply.status == 200
                async with http.put(base + "/fapi/v1/listenKey", headers=key) as reply:
                    assert (await reply.json())["code"] == -1125

    asyncio.run(body())


@pytest.mark.parametrize("protocol", ["binance", "bybit", "hyperliquid"])
def test_batches_cancel_all_and_order_queries(protocol, btc_archive, monkeypatch, tmp_path):
    """A batch places each order; cancel-all (Hyperliquid: one cancel per open order)
    cancels them; the open-orders snapshot and order queries follow."""
    async def body() -> None:
        async with trading(btc_archive, protocol, monkeypatch, tmp_path) as t:
            await t.venue.submit_batch([_order(protocol, n, t.price(-50 - n))
                                        for n in (1, 2, 3)])
            opened = await t.venue.open_orders(protocol)
            assert sorted(o.cloid for o in opened) == [cloid(protocol, n) for n in (1, 2, 3)]
            await t.venue.cancel_all(protocol, "BTCUSDT")
            await until(lambda: not t.engine.resting, "everything cancelled")
            assert await t.venue.open_orders(protocol) == []

    asyncio.run(body())


def test_hyperliquid_positions_reach_the_client_from_webdata2(btc_archive, monkeypatch,
                                                              tmp_path):
    async def body() -> None:
        async with trading(btc_archive, "hyperliquid", monkeypatch, tmp_path) as t:
            await t.venue.submit(_order("hyperliquid", 1, t.price(+200)))  # a taker fill
            await until(lambda: t.recorder.positions, "a position from webData2")
            assert [p.amount for p in t.recorder.positions if p.symbol == "BTCUSDT"][-1] == QTY

    asyncio.run(body())


# --------------------------------------------------------------------------- configuration


def test_credentials_come_from_the_key_file_then_the_environment(tmp_path):
    keys = tmp_path / "keys.json"
    keys.write_text(json.dumps({"binance": {"key": "a", "secret": "b"}}))
    found = load_credentials(keys, {"MAKERLAB_PAPER_BYBIT_KEY": "c",
                                    "MAKERLAB_PAPER_BYBIT_SECRET": "d"})
    assert {p: (c.key, c.secret) for p, c in found.items()} == {"binance": ("a", "b"),
                                                                "bybit": ("c", "d")}
    assert "b" not in repr(found["binance"]).replace("binance", "")
    keys.write_text(json.dumps({"kraken": {"key": "a", "secret": "b"}}))
    with pytest.raises(ConfigError, match="unknown protocol"):
        load_credentials(keys, {})


def test_latency_and_queue_model_options():
    assert parse_latency("0").ns[Latencies.REQ_PRIVATE] == 0
    model = parse_latency("req_private=5,ack_private=2.5")
    assert (model.ns[Latencies.REQ_PRIVATE], model.ns[Latencies.ACK_PRIVATE],
            model.ns[Latencies.FEED_PUBLIC]) == (5_000_000, 2_500_000, 100_000_000)
    assert parse_queue_model(None) == RiskAverseQueue()
    assert parse_queue_model("power:3") == PowerProbQueue(3.0)
    with pytest.raises(ConfigError):
        parse_latency("fast")
    with pytest.raises(ConfigError):
        parse_queue_model("log:2")


def test_lockstep_is_a_paper_only_gateway_setting():
    assert parse_config({"binance": {"env": "paper", "base_url": "http://127.0.0.1:9/binance",
                                     "lockstep": True}})["binance"].lockstep
    with pytest.raises(ConfigError, match="lockstep"):
        parse_config({"binance": {"lockstep": True}})


def test_a_protocol_without_credentials_serves_no_private_side(btc_archive):
    async def body() -> int:
        async with PaperExchange(btc_archive, HOUR, HOUR, speed=0) as paper:
            assert paper.desk is None
            async with aiohttp.ClientSession() as http, http.post(
                    paper.urls["binance"]["rest"] + "/fapi/v1/listenKey") as reply:
                return reply.status

    assert asyncio.run(body()) in (404, 405)


def test_cancel_of_a_filled_order_is_refused(btc_archive, monkeypatch, tmp_path):
    async def body() -> None:
        async with trading(btc_archive, "binance", monkeypatch, tmp_path) as t:
            await t.venue.submit(_order("binance", 1, t.price(+200)))
            await until(lambda: t.recorder.of(cloid("binance", 1), "fill"), "the fill")
            await t.venue.cancel(CancelRequest("binance", "BTCUSDT", cloid("binance", 1)))
            [refusal] = t.recorder.of(cloid("binance", 1), "cancel_reject")
            assert refusal.code == "-2011"

    asyncio.run(body())


def test_hyperliquid_schedule_cancel_must_be_five_seconds_ahead(btc_archive, monkeypatch,
                                                                tmp_path, caplog):
    async def body() -> None:
        async with trading(btc_archive, "hyperliquid", monkeypatch, tmp_path) as t:
            await t.venue.arm_dead_man("hyperliquid", 4000)
            assert "too early" in caplog.text
            caplog.clear()
            await t.venue.arm_dead_man("hyperliquid", 6000)
            await t.venue.arm_dead_man("hyperliquid", 0)
            assert "refused" not in caplog.text

    asyncio.run(body())
