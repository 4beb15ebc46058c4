"""The OMS live, against a stateful fake Binance (tests/live/fake_binance.py): the
tutorial's surface over the Gateway, and the reliability rules of makerlab.trading.reconcile
and makerlab.live.order_venue (one test per rule, named after it)."""

from __future__ import annotations

import asyncio
import logging
from decimal import Decimal

import orjson
import pytest
from fake_binance import FakeBinance
from fake_private import until
from oms_harness import EXC, SYMBOL, ShiftedClock, live, live_oms, streams_up

from makerlab.core.orders import Orders, OrderStatus
from makerlab.errors import ConfigError, ConnectionLost, OrderRejected, RateLimited
from makerlab.live.venues.private_base import Answer, Op, OpKind, answer_update
from makerlab.trading.oms import OMS
from makerlab.trading.protocols import AmendRequest, CancelRequest, OrderRequest
from makerlab.trading.reconcile import NOT_FOUND
from makerlab.trading.risk import RISK_RATE, RiskLimits

D = Decimal


def run(coro):
    return asyncio.run(coro)


async def place(oms: OMS, amount: str = "0.01", price: str = "59000", **kw) -> str:
    cloid = await oms.limit_order(EXC, SYMBOL, D(amount), D(price), **kw)
    await until(lambda: (cloid, "NEW") in live(oms), f"{cloid} acknowledged")
    return cloid


def oid_of(exchange: FakeBinance, cloid: str) -> int:
    return next(o.oid for o in exchange.orders.values() if o.cloid == cloid)


# --------------------------------------------------------------------------- the surface


def test_oms_gateway_starts_from_the_venues_snapshots(monkeypatch, tmp_path):
    async def main():
        from fake_private import FakePrivate
        from oms_harness import gateway, streams_up
        async with FakePrivate() as fake:
            exchange = FakeBinance(fake)
            exchange.positions[SYMBOL] = (D("0.02"), D("58000"), exchange.now_ms())
            exchange._place({"symbol": SYMBOL, "side": "SELL", "quantity": "0.01",
                             "price": "61000", "newClientOrderId": "before-restart"})
            gw = gateway(fake.url, monkeypatch, tmp_path)
            await gw.init_clients()
            try:
                oms = OMS(gateway=gw, exchanges=[EXC], refresh_orders_snapshot=10,
                          refresh_positions_snapshot=10)
                await oms.init()
                await streams_up(oms, fake)
                return (live(oms), oms.get_position(EXC, SYMBOL), oms.balances[EXC],
                        oms.contract_specs(EXC, SYMBOL), await oms.orders_get(EXC),
                        await oms.positions_get(EXC), await oms.get_all_balances(),
                        await oms.get_all_equities(), await oms.get_funding_info(EXC, SYMBOL))
            finally:
                await gw.cleanup_clients()

    (orders, position, balances, specs, venue_orders, venue_positions, all_balances,
     equities, funding) = run(main())
    assert orders == [("before-restart", "NEW")] and position == D("0.02")
    assert [b.asset for b in balances] == ["BNB", "USDT", "USDC"]
    assert balances[1].equity == D("10012.5")
    assert specs["min_notional"] == D("100") and specs["tick_size"] == D("0.1")
    [(oid, row)] = venue_orders.items()
    assert (row["cloid"], row["amount"], row["price"], row["ord_status"]) == (
        "before-restart", D("-0.01"), D("61000"), "NEW") and row["oid"] == oid
    assert venue_positions[SYMBOL]["amount"] == D("0.02")
    assert venue_positions[SYMBOL]["value"] == D("0.02") * D("58000")
    assert all_balances[EXC]["equity_total"] == 10012.5 and equities == {EXC: 10012.5}
    assert funding == {"funding_rate": D("0.0001"), "funding_interval": 4 * 3600 * 1000,
                       "next_funding": 1_800_000_000_000, "mark_price": D("60000.5")}


def test_a_stream_balance_moves_the_wallet_and_keeps_the_venues_available(monkeypatch,
                                                                           tmp_path):
    """Binance's ACCOUNT_UPDATE (the user-data reference's "Balance and Position Update")
    states the wallet ``wb`` and the cross wallet ``cw``, no available balance, and orders
    placed or cancelled push none: the available balance stays the last the venue stated
    (``/fapi/v2/balance``'s ``availableBalance``), not ``cw``."""
    async def main():
        async with live_oms(monkeypatch, tmp_path) as (oms, exchange, _):
            await exchange.emit(orjson.dumps({"e": "ACCOUNT_UPDATE", "E": exchange.now_ms(),
                "T": exchange.now_ms(), "a": {"m": "FUNDING_FEE", "B": [
                    {"a": "USDT", "wb": "10005.5", "cw": "10005.5", "bc": "0"}], "P": []}}))
            await until(lambda: margin(oms).wallet == D("10005.5"), "the stream's balance")
            return margin(oms), oms.venue.latest_balances[(EXC, "USDT")]

    def margin(oms):
        return next(b for b in oms.balances[EXC] if b.asset == "USDT")

    usdt, latest = run(main())
    assert (usdt.wallet, usdt.equity, usdt.available) == (D("10005.5"), D("10005.5"), D("9000"))
    assert latest.wallet == D("10005.5") and latest.available is None  # the stream's word


def test_balances_are_the_venues_each_positions_round_takes_the_snapshot(monkeypatch,
                                                                         tmp_path):
    """The stream cannot follow Binance's available balance (no event states it): the
    positions round takes the balance snapshot, so it is at most one round old."""
    async def main():
        async with live_oms(monkeypatch, tmp_path,
                            refresh_positions_snapshot=0.05) as (oms, exchange, _):
            start = margin(oms).available
            exchange.available = D("8250.5")  # an order placed: less available, no event
            await until(lambda: margin(oms).available == D("8250.5"), "the next round")
            return start

    def margin(oms):
        return next(b for b in oms.balances[EXC] if b.asset == "USDT")

    assert run(main()) == D("9000")


def test_get_balance_takes_the_margin_assets_row(monkeypatch, tmp_path):
    """Binance lists every asset of the account: the row of a used market's quote, else of
    USDT, USDC or USD, else a VenueError naming what the venue has."""
    from makerlab.core.events import BalanceState
    from makerlab.errors import VenueError

    def row(asset: str) -> BalanceState:
        return BalanceState(EXC, asset, 0, 0, D(1), D(1), D(1))

    async def main():
        async with live_oms(monkeypatch, tmp_path) as (oms, _, _):
            fresh = oms.margin_balance("other", [row("BNB"), row("USDC"), row("USDT")])
            oms.spec(EXC, SYMBOL)  # a market used: its quote, USDT
            used = oms.margin_balance(EXC, [row("USDC"), row("USDT")])
            only = oms.margin_balance(EXC, [row("BNB")])
            with pytest.raises(VenueError, match=r"\(USDT, USDC, USD\) among \['BNB', 'ETH'\]"):
                oms.margin_balance("other", [row("ETH"), row("BNB")])
            return fresh.asset, used.asset, only.asset

    assert run(main()) == ("USDT", "USDT", "BNB")


def test_oms_gateway_needs_order_entry_for_its_exchanges(tmp_path):
    from makerlab.live.gateway import Gateway

    async def main():
        gw = Gateway({"binance": {}}, spec_cache=tmp_path)
        with pytest.raises(ConfigError, match="init_clients"):
            OMS(gateway=gw)
        await gw.init_clients()
        try:
            with pytest.raises(ConfigError, match="'key' and 'secret'"):
                OMS(gateway=gw, exchanges=[EXC])
        finally:
            await gw.cleanup_clients()

    with pytest.raises(ConfigError, match="gateway"):
        OMS()
    run(main())


def test_cross_venue_helpers_and_assets(monkeypatch, tmp_path):
    async def main():
        async with live_oms(monkeypatch, tmp_path, spot=False) as (oms, _, _):
            return (oms.common_lot_precision(EXC, SYMBOL, EXC, SYMBOL),
                    oms.common_price_precision(EXC, SYMBOL, EXC, SYMBOL),
                    oms.common_min_notional(EXC, SYMBOL, EXC, SYMBOL),
                    oms.get_base_asset(EXC, SYMBOL), oms.get_quote_asset(EXC, SYMBOL))

    assert run(main()) == (3, 1, D("100"), "BTC", "USDT")


def test_clock_callbacks_run_on_the_wall_clock(monkeypatch, tmp_path):
    async def main():
        async with live_oms(monkeypatch, tmp_path) as (oms, _, _):
            ticks: list[int] = []

            async def tick():
                ticks.append(oms.venue.clock.ms())

            await oms.add_clock_callback(tick, interval_ms=10)
            await until(lambda: len(ticks) >= 3, "three ticks")
            return ticks

    ticks = run(main())
    assert ticks == sorted(ticks)


def test_orders_cancels_and_fills_live(monkeypatch, tmp_path):
    async def main():
        async with live_oms(monkeypatch, tmp_path) as (oms, exchange, _):
            deltas: list[tuple[str, str]] = []
            oms.orders_mirror(EXC, on_delta=lambda o: deltas.append(
                (o["ord_status"], str(o["filled_sz"]))))
            cloid = await place(oms)
            await exchange.fill(oid_of(exchange, cloid), D("0.004"), D("59000"))
            await until(lambda: oms.get_position(EXC, SYMBOL) == D("0.004"), "fill booked")
            await oms.cancel_order(EXC, SYMBOL, cloid=cloid)
            await until(lambda: not live(oms), "cancelled")
            return deltas

    deltas = run(main())
    assert deltas[0] == ("PENDING", "0") and ("PARTIAL", "0.004") in deltas
    assert deltas[-1] == ("CANCELLED", "0.004")  # the cancel did not regress the fill


# --------------------------------------------------------------------------- reliability


def test_an_answer_reports_what_the_venue_said_and_claims_no_rank():
    cancel = Op(OpKind.CANCEL, EXC, SYMBOL, (CancelRequest(EXC, SYMBOL, cloid="c"),))
    amend = Op(OpKind.AMEND, EXC, SYMBOL, (AmendRequest(EXC, SYMBOL, cloid="c",
                                                        price=D("59000")),))
    cancelled = answer_update(cancel, 0, Answer(True, exchange_ts=2_000_000), 9)
    amended = answer_update(amend, 0, Answer(True), 9)
    said = answer_update(cancel, 0, Answer(True, status="CANCELLED", filled=D("0.004")), 9)
    assert (cancelled.status, cancelled.filled, cancelled.amount, cancelled.update_id) == (
        "CANCELLED", None, 0, 0)
    assert (amended.status, amended.filled, amended.price) == ("", None, D("59000"))
    assert said.filled == D("0.004")

    async def mirror():
        orders = Orders()
        await orders.upsert_order(exc=EXC, cloid="c", oid="1", ticker=SYMBOL,
                                  amount=D("0.01"), ord_status="PARTIAL",
                                  filled_sz=D("0.004"), timestamp=1)
        return await orders.apply_update(cancelled)

    order = run(mirror())
    assert (order.ord_status, order.filled_sz) == (OrderStatus.CANCELLED, D("0.004"))


def test_answers_claim_no_rank_a_local_clock_ahead_drops_no_stream_update(monkeypatch,
                                                                          tmp_path):
    async def main():
        clock = ShiftedClock(offset_ns=10 * 10**9)  # our clock 10 s ahead of the venue
        async with live_oms(monkeypatch, tmp_path, clock=clock) as (oms, exchange, _):
            exchange.answer_times = False  # the answer's time is our receive time
            exchange.silent = True  # the answer comes first, the stream after
            cloid = await oms.limit_order(EXC, SYMBOL, D("0.01"), D("59000"))
            oid = oid_of(exchange, cloid)
            await exchange.fill(oid, D("0.004"))
            exchange.silent = False
            for frame in exchange.held:
                await exchange.emit(frame)
            await until(lambda: oms.get_position(EXC, SYMBOL) == D("0.004"), "fill")
            await until(lambda: live(oms) == [(cloid, "PARTIAL")], "stream updates applied")
            return oms.orders_peek(EXC).cloid_query(cloid)

    order = run(main())
    assert order.filled_sz == D("0.004") and order.update_id > 0


def test_duplicated_and_out_of_order_user_stream_events(monkeypatch, tmp_path):
    async def main():
        async with live_oms(monkeypatch, tmp_path) as (oms, exchange, _):
            cloid = await place(oms)
            marker = await place(oms, price="58000")
            oid = oid_of(exchange, cloid)
            fill = await exchange.fill(oid, D("0.004"))
            await until(lambda: oms.get_position(EXC, SYMBOL) == D("0.004"), "fill")
            order = exchange.orders[oid]
            order.price, order.updated = D("58900"), exchange.now_ms()  # amended later
            await exchange.emit(exchange.event(order, "AMENDMENT"))
            for frame in (fill, fill):  # the fill again, twice: older than the amendment
                await exchange.emit(frame)
            await exchange.fill(oid_of(exchange, marker), D("0.001"))  # after them
            await until(lambda: oms.get_position(EXC, SYMBOL) == D("0.005"), "marker fill")
            mirrored = oms.orders_peek(EXC).cloid_query(cloid)
            return mirrored.ord_status, mirrored.filled_sz, mirrored.price

    assert run(main()) == (OrderStatus.PARTIAL, D("0.004"), D("58900"))


def test_a_send_lost_in_transit_is_doubtful_not_dead_the_stream_revives_it(monkeypatch,
                                                                          tmp_path):
    async def main():
        async with live_oms(monkeypatch, tmp_path) as (oms, exchange, fake):
            exchange.drop_next_answer = True  # the venue takes it, the answer never comes
            with pytest.raises(ConnectionLost):  # the stream said NEW before: it stands
                await oms.limit_order(EXC, SYMBOL, D("0.01"), D("59000"), cloid="lost-0")
            first = live(oms)
            await streams_up(oms, fake)
            exchange.drop_next_answer = exchange.silent = True
            with pytest.raises(ConnectionLost):  # the stream speaks after the failure
                await oms.limit_order(EXC, SYMBOL, D("0.01"), D("58000"), cloid="lost-1")
            rejected = [c for c, _ in live(oms)]
            exchange.silent = False
            await exchange.emit(exchange.held.pop())
            await until(lambda: ("lost-1", "NEW") in live(oms), "revived by the stream")
            return first, rejected, [o.cloid for o in exchange.open()]

    first, rejected, at_venue = run(main())
    assert first == [("lost-0", "NEW")] and rejected == ["lost-0"]
    assert at_venue == ["lost-0", "lost-1"]


def test_a_send_lost_in_transit_is_doubtful_not_dead_a_snapshot_revives_it(monkeypatch,
                                                                          tmp_path):
    async def main():
        async with live_oms(monkeypatch, tmp_path) as (oms, exchange, _):
            exchange.drop_next_answer = exchange.silent = True  # answer and stream lost
            with pytest.raises(ConnectionLost):
                await oms.limit_order(EXC, SYMBOL, D("0.01"), D("59000"), cloid="lost-2")
            rejected = oms.orders_peek(EXC).cloid_known("lost-2") and not live(oms)
            await oms.reconciler.orders(EXC)  # one refresh
            return rejected, live(oms)

    rejected, after = run(main())
    assert rejected and after == [("lost-2", "NEW")]


def test_a_send_lost_in_transit_is_doubtful_not_dead_the_query_revives_it(monkeypatch,
                                                                         tmp_path):
    async def main():
        clock = ShiftedClock()
        async with live_oms(monkeypatch, tmp_path, clock=clock,
                            pending_timeout=1000) as (oms, exchange, _):
            exchange.drop_next_answer = exchange.silent = True
            with pytest.raises(ConnectionLost):
                await oms.limit_order(EXC, SYMBOL, D("0.01"), D("59000"), cloid="lost-3")
            await oms.reconciler.pending(EXC)  # too early: nothing asked
            early = live(oms)
            clock.advance(1000)
            await oms.reconciler.pending(EXC)
            return early, live(oms)

    early, after = run(main())
    assert early == [] and after == [("lost-3", "NEW")]


def test_only_doubtful_orders_are_revived(monkeypatch, tmp_path):
    async def main():
        async with live_oms(monkeypatch, tmp_path) as (oms, exchange, _):
            cloid = await place(oms)
            oid = oid_of(exchange, cloid)
            stale = exchange.orders[oid].row()
            await oms.cancel_order(EXC, SYMBOL, cloid=cloid)
            await until(lambda: not live(oms), "cancelled")
            exchange.orders[oid].status = "NEW"  # a stale snapshot still shows it open
            exchange.orders[oid].updated = stale["updateTime"]
            await oms.reconciler.orders(EXC)
            return live(oms)

    assert run(main()) == []


def test_positions_are_the_venues_a_disagreeing_snapshot_converges_nothing_counted_twice(
        monkeypatch, tmp_path, caplog):
    async def main():
        async with live_oms(monkeypatch, tmp_path) as (oms, exchange, _):
            cloid = await place(oms)
            exchange.silent = True  # the fill's event is lost for now
            await exchange.fill(oid_of(exchange, cloid), D("0.006"), D("59000"))
            before = oms.get_position(EXC, SYMBOL)
            corrected = await oms.reconciler.positions(EXC)  # one refresh
            after = oms.get_position(EXC, SYMBOL), oms.positions_peek(EXC).get_ticker_position(
                SYMBOL).entry
            exchange.silent = False
            for frame in exchange.held:  # the late fill, twice: already counted
                await exchange.emit(frame)
                await exchange.emit(frame)
            later = await exchange.fill(oid_of(exchange, cloid), D("0.001"), D("59000"))
            await until(lambda: oms.get_position(EXC, SYMBOL) == D("0.007"), "next fill")
            again = await oms.reconciler.positions(EXC)
            return before, corrected, after, again, later

    caplog.set_level(logging.WARNING)
    before, corrected, after, again, _ = run(main())
    assert before == 0 and corrected == [SYMBOL] and after == (D("0.006"), D("59000"))
    assert again == []  # the mirror agrees with the venue: nothing double-counted
    assert "position corrected from the venue's snapshot: mirror 0, venue 0.006" in caplog.text


def test_orders_reconciliation_upserts_venue_orders_and_queries_the_mirrors_own(
        monkeypatch, tmp_path):
    async def main():
        clock = ShiftedClock()
        async with live_oms(monkeypatch, tmp_path, clock=clock,
                            pending_timeout=1000) as (oms, exchange, _):
            gone = await place(oms, price="58000")
            clock.advance(1000)
            young = await place(oms, price="57000")  # news inside pending_timeout
            exchange.silent = True
            for cloid in (gone, young):  # cancelled at the venue, the stream says nothing
                order = exchange.orders[oid_of(exchange, cloid)]
                order.status, order.updated = "CANCELED", exchange.now_ms()
            exchange._place({"symbol": SYMBOL, "side": "BUY", "quantity": "0.01",
                             "price": "56000", "newClientOrderId": "other-session"})
            await oms.reconciler.orders(EXC)  # one refresh
            return live(oms), young

    after, young = run(main())
    assert sorted(after) == sorted([("other-session", "NEW"), (young, "NEW")])


def test_pending_states_time_out_a_cancel_with_no_news_is_resolved(monkeypatch, tmp_path):
    async def main():
        clock = ShiftedClock()
        async with live_oms(monkeypatch, tmp_path, clock=clock,
                            pending_timeout=1000) as (oms, exchange, _):
            cloid = await place(oms)
            exchange.silent = True  # the stream will not say CANCELLED
            await oms.cancel_order(EXC, SYMBOL, cloid=cloid)
            pending = live(oms)  # the answer is older news than the stream's NEW
            clock.advance(1000)
            await oms.reconciler.pending(EXC)
            return pending, live(oms)

    pending, after = run(main())
    assert pending == [(pending[0][0], "CANCEL_PENDING")] and after == []


def test_pending_states_time_out_a_cancel_the_venue_never_applied_is_sent_again(
        monkeypatch, tmp_path):
    async def main():
        clock = ShiftedClock()
        async with live_oms(monkeypatch, tmp_path, clock=clock,
                            pending_timeout=1000) as (oms, exchange, _):
            cloid = await place(oms)
            exchange.silent = True
            await oms.cancel_order(EXC, SYMBOL, cloid=cloid)
            order = exchange.orders[oid_of(exchange, cloid)]
            order.status = "NEW"  # the cancel was lost at the venue
            exchange.silent = False
            clock.advance(1000)
            await oms.reconciler.pending(EXC)
            await until(lambda: not live(oms), "cancelled the second time")
            return order.status

    assert run(main()) == "CANCELED"


def test_pending_states_time_out_an_order_unknown_to_the_venue_is_closed(monkeypatch,
                                                                        tmp_path):
    async def main():
        clock = ShiftedClock()
        async with live_oms(monkeypatch, tmp_path, clock=clock,
                            pending_timeout=1000) as (oms, _, _):
            await oms.orders_peek(EXC).upsert_order(  # a PENDING order the venue never got
                exc=EXC, cloid="ghost", ticker=SYMBOL, amount=D("0.01"), price=D("1"),
                ord_status=OrderStatus.PENDING, timestamp=clock.ms())
            oms.reconciler._news[(EXC, "ghost")] = clock.now_ns()
            clock.advance(1000)
            seen = []
            oms.orders_peek(EXC).add_delta_handler(seen.append)
            await oms.reconciler.pending(EXC)
            return seen

    [closed] = run(main())
    assert (closed["ord_status"], closed["reject_reason"]) == ("REJECTED", NOT_FOUND)


def test_rejects_min_notional_post_only_and_rate_limits(monkeypatch, tmp_path, caplog):
    caplog.set_level(logging.DEBUG)

    async def main():
        async with live_oms(monkeypatch, tmp_path) as (oms, exchange, fake):
            seen = []
            oms.orders_peek(EXC).add_delta_handler(seen.append)
            await oms.limit_order(EXC, SYMBOL, D("0.001"), D("59000"), cloid="small")
            await oms.limit_order(EXC, SYMBOL, D("0.01"), D("60010"), tif="GTX",
                                  cloid="crossing")
            exchange.rate_limited = True
            with pytest.raises(RateLimited):
                await oms.limit_order(EXC, SYMBOL, D("0.01"), D("59000"), cloid="limited")
            sent = len(fake.calls)
            with pytest.raises(OrderRejected) as waiting:
                await oms.limit_order(EXC, SYMBOL, D("0.01"), D("59000"), cloid="refused")
            nothing_sent = len(fake.calls) == sent
            return seen, waiting.value, nothing_sent, oms.reconciler._doubtful

    seen, waiting, nothing_sent, doubtful = run(main())
    rejected = {d["cloid"]: d["reject_reason"] for d in seen if d["ord_status"] == "REJECTED"}
    assert rejected["small"].startswith("-4164 Order's notional")
    assert rejected["crossing"].startswith("-5022")
    assert rejected["limited"].startswith("submit failed: RateLimited")
    assert not doubtful  # refused for rate: never taken, not revivable
    assert waiting.code == RISK_RATE and "wait" in str(waiting) and nothing_sent


def test_a_rate_limit_holds_back_orders_but_never_cancels_or_the_kill(monkeypatch, tmp_path):
    """While the venue's retry-after runs (HTTP 429, Retry-After 30), a new order is not
    sent, but a cancel and the kill switch's cancel-all reach the venue."""
    async def main():
        async with live_oms(monkeypatch, tmp_path) as (oms, exchange, fake):
            other = (await place(oms), await place(oms, price="58000"))[1]
            exchange.rate_limited = True
            with pytest.raises(RateLimited):
                await oms.limit_order(EXC, SYMBOL, D("0.01"), D("57000"))
            sent = len(fake.calls)
            with pytest.raises(RateLimited, match="not sent: rate limited"):
                await oms.venue.submit(OrderRequest(EXC, SYMBOL, "held", D("0.01"),
                                                    D("57000")))
            held_back = len(fake.calls) == sent
            await oms.cancel_order(EXC, SYMBOL, cloid=other)
            await until(lambda: len(exchange.open()) == 1, "the cancel at the venue")
            await oms.kill("rate-limited test")
            await until(lambda: not exchange.open(), "the kill's cancel-all at the venue")
            return held_back

    assert run(main())


def test_rate_headroom_keeps_the_venues_last_budget_for_cancels(monkeypatch, tmp_path):
    async def main():
        async with live_oms(monkeypatch, tmp_path,
                            risk=RiskLimits(rate_headroom=0.1)) as (oms, exchange, _):
            exchange.order_count = 280
            cloid = await place(oms)  # its answer reports 280 of 300 used
            with pytest.raises(OrderRejected) as refused:
                await oms.limit_order(EXC, SYMBOL, D("0.01"), D("58000"))
            await oms.cancel_order(EXC, SYMBOL, cloid=cloid)  # cancels are never refused
            await until(lambda: not live(oms), "cancelled")
            return refused.value

    refused = run(main())
    assert refused.code == RISK_RATE and "7% left" in str(refused)


def test_hedges_each_maker_fill_and_keeps_what_lots_cannot_hedge(monkeypatch, tmp_path):
    async def main():
        async with live_oms(monkeypatch, tmp_path) as (oms, exchange, _):
            maker = await oms.hedge_order(
                {"exc": EXC, "ticker": SYMBOL, "amount": D("0.01"), "price": D("59000")},
                {"exc": EXC, "ticker": SYMBOL})
            oid = oid_of(exchange, maker)
            await until(lambda: (maker, "NEW") in live(oms), "maker acknowledged")
            for size in ("0.0025", "0.0025"):
                await exchange.fill(oid, D(size))
            await until(lambda: len(exchange.orders) == 3, "two hedges")
            return [(o.side, o.qty, o.price) for o in exchange.orders.values()][1:], \
                oms.hedger.balance[(EXC, SYMBOL)]

    hedges, balance = run(main())
    assert hedges == [("SELL", D("0.002"), None), ("SELL", D("0.005") - D("0.002"), None)]
    assert balance == 0


def test_hedge_portfolio_delta_nets_by_base_asset(monkeypatch, tmp_path):
    async def main():
        async with live_oms(monkeypatch, tmp_path) as (oms, exchange, _):
            await exchange.foreign_fill("BUY", D("0.0125"), D("60000"))
            await until(lambda: oms.get_position(EXC, SYMBOL) == D("0.0125"), "position")
            sent = await oms.hedge_portfolio_delta(hedge_on=EXC, default_on=EXC)
            return sent, [o for o in exchange.orders.values() if o.cloid in sent]

    _, [order] = run(main())
    assert (order.side, order.qty, order.price) == ("SELL", D("0.012"), None)


def test_orders_get_shapes_are_the_tutorials(monkeypatch, tmp_path):
    async def main():
        async with live_oms(monkeypatch, tmp_path) as (oms, _, _):
            cloid = await place(oms)
            return cloid, await oms.orders_get_all(), await oms.positions_get_all()

    cloid, orders, positions = run(main())
    [row] = orders[EXC].values()
    assert set(row) == {"amount", "cloid", "filled_sz", "oid", "ord_status", "price",
                        "ticker", "timestamp"} and row["cloid"] == cloid
    assert positions == {EXC: {}}


def test_cancel_open_orders_cancels_what_the_mirror_does_not_know(monkeypatch, tmp_path):
    async def main():
        async with live_oms(monkeypatch, tmp_path) as (oms, exchange, _):
            cloid = await place(oms)
            exchange._place({"symbol": SYMBOL, "side": "SELL", "quantity": "0.01",
                             "price": "61000", "newClientOrderId": "elsewhere"})
            await oms.cancel_open_orders(EXC, SYMBOL)
            marked = live(oms)
            await until(lambda: not live(oms), "cancelled")
            return cloid, marked, exchange.open()

    cloid, marked, at_venue = run(main())
    assert marked in ([(cloid, "CANCEL_PENDING")], []) and at_venue == []
