"""The kill switch live, on each trigger (makerlab.trading.risk, makerlab.trading.session):
every test ends with zero open orders at the fake venue and a mirror that says so; and
secrets never appear in what the OMS and its risk checks log, show or raise."""

from __future__ import annotations

import asyncio
import gc
import logging
import traceback
from decimal import Decimal

import pytest
from fake_binance import KEY, SECRET, SYMBOL
from fake_private import until
from oms_harness import EXC, ThreadedExchange, gateway, live, live_oms, streams_up

from makerlab.errors import ConfigError, MakerlabError, OrderRejected
from makerlab.sim.models import to_config
from makerlab.trading.feed import Feed
from makerlab.trading.oms import OMS
from makerlab.trading.risk import KILL_SWITCH, RISK_POSITION, KillReason, RiskLimits

D = Decimal


def run(coro):
    return asyncio.run(coro)


async def quote(oms: OMS, n: int = 2) -> list[str]:
    """``n`` bids resting at the venue, acknowledged in the mirror."""
    cloids = [await oms.limit_order(EXC, SYMBOL, D("0.005"), D(59000 - 10 * k))
              for k in range(n)]
    await until(lambda: all((c, "NEW") in live(oms) for c in cloids), "quotes resting")
    return cloids


async def refused(oms: OMS) -> OrderRejected:
    with pytest.raises(OrderRejected) as info:
        await oms.limit_order(EXC, SYMBOL, D("0.005"), D("58000"))
    return info.value


def test_kill_switch_on_exit_cleanup(monkeypatch, tmp_path):
    async def main():  # no dead-man switch kept: the kill arms it as a backstop
        async with live_oms(monkeypatch, tmp_path,
                            risk=RiskLimits(dead_man_ms=0)) as (oms, exchange, _):
            await quote(oms)
            assert not exchange.dead_man
            await oms.cleanup()
            return (exchange.open(), live(oms), oms.kill_switch.reason, await refused(oms),
                    exchange.dead_man, exchange.cancel_alls)

    at_venue, mirror, reason, refusal, dead_man, cancel_alls = run(main())
    assert at_venue == [] and mirror == [] and reason is KillReason.EXIT
    assert refusal.code == KILL_SWITCH and "rearm" in str(refusal)
    assert cancel_alls == [SYMBOL] and dead_man == [(SYMBOL, 60_000)]  # the backstop


def test_kill_switch_on_exit_gateway_cleanup(monkeypatch, tmp_path):
    async def main():
        from fake_binance import FakeBinance
        from fake_private import FakePrivate
        async with FakePrivate() as fake:
            exchange = FakeBinance(fake)
            gw = gateway(fake.url, monkeypatch, tmp_path)
            await gw.init_clients()
            oms = OMS(gateway=gw, exchanges=[EXC])
            await oms.init()
            await streams_up(oms, fake)
            await quote(oms)
            await gw.cleanup_clients()  # the tutorial's last line; no oms.cleanup()
            return exchange.open(), live(oms)

    assert run(main()) == ([], [])


@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_kill_switch_on_exit_the_event_loop_cancelling_the_oms(monkeypatch, tmp_path,
                                                              caplog):
    with ThreadedExchange() as served:
        async def main():
            gw = gateway(served.url, monkeypatch, tmp_path)
            await gw.init_clients()
            oms = OMS(gateway=gw, exchanges=[EXC])
            await oms.init()
            await until(lambda: oms.venue.client(EXC).order_socket_ready, "order socket")
            await quote(oms)
            raise RuntimeError("the strategy crashed; nobody cleans up")

        with pytest.raises(RuntimeError, match="nobody cleans up"):
            run(main())
        open_orders = served.call(lambda exchange: exchange.open())
        placed = served.call(lambda exchange: len(exchange.orders))
    gc.collect()  # the session nobody closed is collected here (its warning is expected)
    assert placed == 2 and open_orders == []
    assert "kill switch tripped (exit): the event loop cancelled the OMS" in caplog.text


def test_kill_switch_on_an_exception_in_a_mirror_handler(monkeypatch, tmp_path, caplog):
    async def main():
        async with live_oms(monkeypatch, tmp_path) as (oms, exchange, _):
            cloids = await quote(oms)

            def on_delta(order):
                if order["ord_status"] == "PARTIAL":
                    raise ValueError("strategy bug")

            oms.orders_mirror(EXC, on_delta=on_delta)
            oid = next(o.oid for o in exchange.orders.values() if o.cloid == cloids[0])
            await exchange.fill(oid, D("0.002"))
            await until(lambda: not exchange.open() and not live(oms), "everything cancelled")
            return oms.kill_switch.reason, oms.get_position(EXC, SYMBOL)

    reason, position = run(main())
    assert reason is KillReason.EXCEPTION and position == D("0.002")  # the stream went on
    assert "strategy bug" in caplog.text


def test_kill_switch_on_an_exception_in_a_clock_callback(monkeypatch, tmp_path):
    async def main():
        async with live_oms(monkeypatch, tmp_path) as (oms, exchange, _):
            await quote(oms)

            def callback():
                raise ZeroDivisionError("clock bug")

            await oms.add_clock_callback(callback, interval_ms=5)
            await until(lambda: oms.kill_switch.tripped, "tripped")
            await until(lambda: not exchange.open() and not live(oms), "everything cancelled")
            return oms.kill_switch.reason, oms.kill_switch.detail

    reason, detail = run(main())
    assert reason is KillReason.EXCEPTION and "clock bug" in detail


def test_kill_switch_on_an_exception_in_a_feed_handler(monkeypatch, tmp_path):
    async def main():
        reasons = []
        with pytest.raises(Exception) as stopped:  # cleanup_clients raises it (documented)
            async with live_oms(monkeypatch, tmp_path) as (oms, exchange, _):
                await quote(oms)

                async def on_book(lob):
                    raise KeyError("book handler bug")

                feed = Feed(gateway=oms.gateway)
                await feed.add_l2_book_feed(EXC, SYMBOL, handler=on_book)
                await until(lambda: exchange.fake.conns.get("/binance/public/stream"),
                            "market stream")
                for _ in range(3):
                    await exchange.tick()
                await until(lambda: oms.kill_switch.tripped, "tripped")
                await until(lambda: not exchange.open() and not live(oms),
                            "everything cancelled")
                reasons.append(oms.kill_switch.reason)
        return reasons, "".join(traceback.format_exception(stopped.value))

    reasons, stopped = run(main())
    assert reasons == [KillReason.EXCEPTION] and "book handler bug" in stopped


def test_kill_switch_on_disconnect_halts_until_reconnected_and_reconciled(monkeypatch,
                                                                        tmp_path):
    async def main():
        async with live_oms(monkeypatch, tmp_path) as (oms, exchange, fake):
            await quote(oms)
            user_stream = fake.sockets.pop("/binance/private/ws")  # no reconnect for now
            await fake.drop("/binance/private/ws")
            await until(lambda: oms.kill_switch.tripped, "tripped")
            await until(lambda: not exchange.open() and not live(oms), "everything cancelled")
            while_down = (await refused(oms)).code
            with pytest.raises(ConfigError, match="is down"):
                oms.rearm()
            fake.sockets["/binance/private/ws"] = user_stream
            await until(lambda: not oms.kill_switch.tripped, "lifted after reconciliation")
            cloid = await oms.limit_order(EXC, SYMBOL, D("0.005"), D("58000"))
            return while_down, exchange.dead_man, cloid, [o.cloid for o in exchange.open()]

    while_down, dead_man, cloid, at_venue = run(main())
    assert while_down == KILL_SWITCH and dead_man and at_venue == [cloid]


def test_kill_switch_on_a_breached_limit(monkeypatch, tmp_path):
    limits = RiskLimits(max_position={f"{EXC}/{SYMBOL}": D("0.011")})

    async def main():
        async with live_oms(monkeypatch, tmp_path, risk=limits) as (oms, exchange, _):
            await quote(oms)
            with pytest.raises(OrderRejected) as pre_trade:  # 0.010 resting + 0.005 > 0.011
                await oms.limit_order(EXC, SYMBOL, D("0.005"), D("58000"))
            await exchange.foreign_fill("BUY", D("0.02"), D("60000"))  # around the OMS
            await until(lambda: oms.kill_switch.tripped, "tripped")
            await until(lambda: not exchange.open() and not live(oms), "everything cancelled")
            oms.rearm()  # by hand: a limit latches
            return pre_trade.value, oms.kill_switch.trips

    pre_trade, trips = run(main())
    assert pre_trade.code == RISK_POSITION and "0.015" in str(pre_trade)
    [(_, reason, detail), *_] = trips
    assert reason is KillReason.LIMIT and "beyond max_position 0.011" in detail


def test_secrets_never_appear_in_logs_reprs_exceptions_or_reports(monkeypatch, tmp_path,
                                                                 caplog):
    caplog.set_level(logging.DEBUG)
    limits = RiskLimits(max_position={f"{EXC}/{SYMBOL}": D("0.02")}, max_orders_per_s=50)

    async def main():
        shown: list[str] = []
        async with live_oms(monkeypatch, tmp_path, risk=limits) as (oms, exchange, fake):
            oms.orders_mirror(EXC, on_delta=lambda o: shown.append(repr(o)))
            await quote(oms)
            await oms.limit_order(EXC, SYMBOL, D("0.001"), D("59000"))  # venue: -4164
            with pytest.raises(OrderRejected) as risk:
                await oms.limit_order(EXC, SYMBOL, D("0.5"), D("59000"))
            shown.append(str(risk.value))
            exchange.rate_limited = True
            with pytest.raises(MakerlabError) as limited:
                await oms.limit_order(EXC, SYMBOL, D("0.005"), D("59000"))
            shown.append(str(limited.value))
            exchange.rate_limited = False
            exchange.drop_next_answer = True
            oms.venue.rate_limits(EXC).retry_at_ns = None
            with pytest.raises(MakerlabError) as lost:
                await oms.limit_order(EXC, SYMBOL, D("0.005"), D("59000"))
            shown.append(str(lost.value))
            # The stream stays down until the trip is seen: back at once, it is reconciled
            # and the trip lifted within about the reconnect delay (10 ms), the poll's period.
            user_stream = fake.sockets.pop("/binance/private/ws")
            await fake.drop("/binance/private/ws")
            await until(lambda: oms.kill_switch.tripped, "tripped")
            shown += [repr(oms.kill_switch), str(oms.kill_switch.trips)]
            fake.sockets["/binance/private/ws"] = user_stream
            await until(lambda: not oms.kill_switch.tripped, "lifted after reconciliation")
            await streams_up(oms, fake)
            shown += [repr(oms), repr(oms.kill_switch), repr(oms.limits), repr(oms.venue),
                      repr(oms.gateway), str(oms.kill_switch.trips), str(oms.options),
                      str(to_config(oms.limits)), str(await oms.get_all_balances()),
                      str(await oms.orders_get_all())]
            await oms.cleanup()
            shown.append(repr(oms))
        return shown

    shown = run(main())
    for text in [*shown, caplog.text]:
        assert SECRET not in text and KEY not in text


def test_kill_switch_cancels_nothing_twice_while_it_runs(monkeypatch, tmp_path):
    async def main():
        async with live_oms(monkeypatch, tmp_path) as (oms, exchange, _):
            await quote(oms)
            await asyncio.gather(oms.kill("first"), oms.kill("second"))
            return oms.kill_switch.detail, list(exchange.cancel_alls), exchange.open()

    detail, cancel_alls, at_venue = run(main())
    assert detail == "first" and cancel_alls == [SYMBOL] and at_venue == []

