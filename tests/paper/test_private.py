"""The paper exchange's private side, through makerlab's real clients (Gateway →
LiveOrderVenue): signatures checked with the configured keys, order entry round trips,
user streams carrying the matching engine's fills, snapshots, venue errors. One
parametrized test per rule, for Binance USD-M, Bybit v5 and Hyperliquid."""

from __future__ import annotations

import asyncio
import json
import logging
from decimal import Decimal

import aiohttp
import pytest
from private_kit import KEYS, PROTOCOLS, WRONG, cloid, run_market, trading, until

from makerlab.core.events import OrderEventKind
from makerlab.errors import AuthError
from makerlab.trading.protocols import AmendRequest, CancelRequest, OrderRequest

ACK, REJECT, FILL = OrderEventKind.ACK, OrderEventKind.REJECT, OrderEventKind.FILL
QTY = Decimal("0.002")
_TOPIC = {"binance": "btcusdt@trade",
          "bybit": '{"op":"subscribe","args":["publicTrade.BTCUSDT"]}',
          "hyperliquid": '{"method":"subscribe","subscription":{"type":"trades",'
                         '"coin":"BTCUSDT"}}'}


def _order(protocol: str, n: int, amount: Decimal, price: Decimal, tif: str = "GTC"
           ) -> OrderRequest:
    return OrderRequest(protocol, "BTCUSDT", cloid(protocol, n), amount, price, tif=tif)


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_signatures_are_checked_with_the_configured_keys(protocol, btc_archive, monkeypatch,
                                                         tmp_path):
    async def body() -> None:
        async with trading(btc_archive, protocol, monkeypatch, tmp_path,
                           secret=WRONG[protocol]) as t:
            order = _order(protocol, 1, QTY, t.price(-50))
            if protocol == "hyperliquid":  # an answer, not an exception, on this venue
                await t.venue.submit(order)
                [refusal] = t.recorder.updates
                assert refusal.kind is REJECT and "does not exist" in refusal.reason
            else:
                with pytest.raises(AuthError):
                    await t.venue.submit(order)
            assert not t.engine.resting

    asyncio.run(body())


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_order_entry_round_trip(protocol, btc_archive, monkeypatch, tmp_path):
    async def body() -> None:
        async with trading(btc_archive, protocol, monkeypatch, tmp_path) as t:
            rec, venue = t.recorder, t.venue
            await venue.submit(_order(protocol, 1, QTY, t.price(-50)))
            ack = rec.of(cloid(protocol, 1), "ack")[0]  # the answer (the stream may repeat it)
            assert ack.oid == t.engine.resting[cloid(protocol, 1)].oid
            await venue.amend(AmendRequest(protocol, "BTCUSDT", cloid(protocol, 1),
                                           price=t.price(-60), amount=Decimal("0.003")))
            assert t.engine.resting[cloid(protocol, 1)].qty == Decimal("0.003")
            await venue.submit(_order(protocol, 2, QTY, t.price(+200)))  # takes the asks
            await until(lambda: rec.of(cloid(protocol, 2), "fill"), "the taker fill")
            await venue.cancel(CancelRequest(protocol, "BTCUSDT", cloid(protocol, 1)))
            await until(lambda: rec.of(cloid(protocol, 1), "cancel_ack"), "the cancel")
            [position] = [p for p in await venue.positions(protocol) if p.symbol == "BTCUSDT"]
            [balance] = await venue.balances(protocol)
            [fill] = t.paper.desk.fills
            assert (position.amount, position.entry_price) == (QTY, fill["price"])
            assert balance.wallet == Decimal(10_000) - fill["fee"]
            assert not t.engine.resting and await venue.open_orders(protocol) == []

    asyncio.run(body())


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_user_stream_fills_are_the_engines(protocol, btc_archive, monkeypatch, tmp_path):
    """Every fill the matching engine books reaches the client with its price, size,
    side, fee, role and trade id; maker fills come as the market plays."""
    async def body() -> None:
        async with trading(btc_archive, protocol, monkeypatch, tmp_path) as t:
            for n, (side, offset) in enumerate([(1, -1), (-1, 1), (1, -3), (-1, 3)], 1):
                await t.venue.submit(_order(protocol, n, side * QTY, t.price(offset)))
            await run_market(t.paper, protocol, _TOPIC[protocol])
            journal = t.paper.desk.fills
            await until(lambda: len(t.recorder.fills) == len(journal), "every fill")
            got = [(f.trade_id, f.side, f.price, f.size, f.fee, f.is_maker)
                   for f in t.recorder.fills]
            assert journal and got == [(str(i), f["dir"], f["price"], f["size"], f["fee"],
                                        f["is_maker"]) for i, f in enumerate(journal, 1)]

    asyncio.run(body())


_POST_ONLY = {"binance": ("reject", "-5022"), "bybit": ("expire", ""),
              "hyperliquid": ("reject", "error")}


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_a_crossing_post_only_order_is_refused_as_the_venue_does(protocol, btc_archive,
                                                                   monkeypatch, tmp_path):
    """Binance ``-5022`` and Hyperliquid's error answer the order; Bybit accepts it, then
    cancels it (``EC_PostOnlyWillTakeLiquidity``)."""
    async def body() -> None:
        async with trading(btc_archive, protocol, monkeypatch, tmp_path) as t:
            await t.venue.submit(_order(protocol, 1, QTY, t.price(+200), tif="GTX"))
            kind, code = _POST_ONLY[protocol]
            await until(lambda: t.recorder.of(cloid(protocol, 1), kind), kind)
            [refusal] = t.recorder.of(cloid(protocol, 1), kind)
            assert refusal.code == code and refusal.status in ("REJECTED", "CANCELLED")
            assert "ost" in refusal.reason  # Post Only / PostOnly
            assert not t.engine.resting and not t.paper.desk.fills

    asyncio.run(body())


_ERRORS = {"binance": {"tick": "-4014", "notional": "-4164", "unknown": "-2011"},
           "bybit": {"tick": "10001", "notional": "110094", "unknown": "110001"},
           "hyperliquid": {"tick": "tick size", "notional": "minimum value",
                           "unknown": "never placed"}}


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_venue_errors(protocol, btc_archive, monkeypatch, tmp_path):
    """Off-tick price, notional below the minimum and a cancel of an unknown order get the
    venue's codes (Hyperliquid: its messages)."""
    async def body() -> None:
        async with trading(btc_archive, protocol, monkeypatch, tmp_path) as t:
            await t.venue.submit(_order(protocol, 1, QTY, t.price(-50) + Decimal("0.05")))
            await t.venue.submit(_order(protocol, 2, Decimal("0.001"), Decimal("1000.0")))
            await t.venue.cancel(CancelRequest(protocol, "BTCUSDT", cloid(protocol, 9)))
            found = {"tick": t.recorder.of(cloid(protocol, 1), "reject"),
                     "notional": t.recorder.of(cloid(protocol, 2), "reject"),
                     "unknown": t.recorder.of(cloid(protocol, 9), "cancel_reject")}
            for what, expected in _ERRORS[protocol].items():
                [refusal] = found[what]
                assert expected in (refusal.code + " " + refusal.reason), what

    asyncio.run(body())


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_secrets_are_never_logged(protocol, btc_archive, monkeypatch, tmp_path, caplog):
    caplog.set_level(logging.DEBUG)

    async def body() -> None:
        async with trading(btc_archive, protocol, monkeypatch, tmp_path) as t:
            await t.venue.submit(_order(protocol, 1, QTY, t.price(-50)))
            assert repr(KEYS[protocol]).count(KEYS[protocol].secret) == 0

    asyncio.run(body())
    assert KEYS[protocol].secret not in caplog.text


def test_hyperliquid_info_rows_have_the_references_shapes(btc_archive, monkeypatch, tmp_path):
    """openOrders states the remaining size only; frontendOpenOrders and orderStatus add
    origSz, the placed size (the info reference): a client reading origSz from openOrders
    must fail against the paper as it would live."""
    async def body() -> tuple:
        async with trading(btc_archive, "hyperliquid", monkeypatch, tmp_path) as t:
            await t.venue.submit(_order("hyperliquid", 1, QTY, t.price(-50)))
            url = t.paper.urls["hyperliquid"]["rest"] + "/info"
            async with aiohttp.ClientSession() as http:
                async def info(kind: str, **more: object) -> object:
                    query = {"type": kind, "user": KEYS["hyperliquid"].key, **more}
                    async with http.post(url, json=query) as response:
                        return await response.json()

                [plain] = await info("openOrders")
                [frontend] = await info("frontendOpenOrders")
                status = await info("orderStatus", oid=plain["oid"])
            return plain, frontend, status

    plain, frontend, status = asyncio.run(body())
    assert set(plain) == {"coin", "side", "limitPx", "sz", "oid", "timestamp", "cloid"}
    assert frontend["origSz"] == frontend["sz"] == plain["sz"] == "0.002"
    assert (frontend["tif"], frontend["isTrigger"]) == ("Gtc", False)
    assert status["order"]["order"]["origSz"] == "0.002"


def test_bybit_wallet_rows_have_the_references_shape(btc_archive, monkeypatch, tmp_path):
    """A unified account's wallet as the references show it since 9 Jan 2025: the coin's
    availableToWithdraw deprecated (empty), the account's totalAvailableBalance (USD) and the
    coin's usdValue what a client converts it by."""
    from makerlab.live.venues.bybit_private import BybitPrivate
    from makerlab.live.venues.private_base import Snapshot

    bodies: list[bytes] = []
    parse = BybitPrivate.parse_snapshot

    def kept(self, kind, body, local_ts):  # the wire as the client reads it
        if kind is Snapshot.BALANCES:
            bodies.append(body)
        return parse(self, kind, body, local_ts)

    monkeypatch.setattr(BybitPrivate, "parse_snapshot", kept)

    async def body() -> list:
        async with trading(btc_archive, "bybit", monkeypatch, tmp_path) as t:
            return await t.venue.balances("bybit")

    [balance] = asyncio.run(body())
    [account] = json.loads(bodies[-1])["result"]["list"]
    [coin] = account["coin"]
    assert coin["availableToWithdraw"] == "" and coin["usdValue"] == coin["equity"]
    assert account["totalAvailableBalance"] == coin["walletBalance"] == "10000"
    assert balance.available == balance.wallet == 10_000


def test_the_desks_order_journal_keeps_its_closed_chunks_on_disk(btc_archive, monkeypatch,
                                                                 tmp_path):
    """A paper session may run for days: its journal of order events is bounded in memory
    as a streamed replay's is (closed chunks spilled), and reads back the same."""
    async def body() -> tuple:
        async with trading(btc_archive, "binance", monkeypatch, tmp_path) as t:
            await t.venue.submit(_order("binance", 1, QTY, t.price(-50)))
            await t.venue.cancel(CancelRequest("binance", "BTCUSDT", cloid("binance", 1)))
            journal = t.paper.desk.venue.actions
            return repr(journal), [row["event"] for row in journal]

    shown, events = asyncio.run(body())
    assert "spilled to" in shown
    assert events == ["submit", "ack", "cancel", "cancelled"]
