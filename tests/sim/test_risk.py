"""One test per rule of makerlab.trading.risk (named after it), in replay: the same limits
and kill switch a live OMS enforces, over the SimVenue."""

from __future__ import annotations

import asyncio
from decimal import Decimal

import numpy as np
import pytest
from replay_scenarios import EXC, TICKER, flat_market, replayer, zero_latencies

from makerlab.core.clock import ReplayClock
from makerlab.core.orders import OrderStatus
from makerlab.errors import ConfigError, OrderRejected
from makerlab.trading.protocols import OrderRequest
from makerlab.trading.risk import (
    KILL_SWITCH,
    RISK_NOTIONAL,
    RISK_POSITION,
    RISK_RATE,
    RISK_TOTAL_NOTIONAL,
    KillReason,
    KillSwitch,
    RiskLimits,
)

D = Decimal
KEY = f"{EXC}/{TICKER}"


def fresh(limits: RiskLimits | None = None, trades=None, **kwargs):
    books, no_trades = flat_market(30)
    rep = replayer(books, no_trades if trades is None else trades, risk=limits, **kwargs)
    return rep, rep.get_oms()


def at(rep, steps: dict) -> None:
    """Run each ``steps[ms]()`` at replay time ``ms``, then play."""
    for ms, step in steps.items():
        rep.add_callback(ms, lambda _, step=step: step())
        rep.add_to_queue(ms, ms, None)
    asyncio.run(rep.play(progress=False))


def refusal(call) -> OrderRejected:
    with pytest.raises(OrderRejected) as info:
        asyncio.run(call())
    return info.value


def test_the_kill_switch_refuses_order_entry():
    rep, oms = fresh()
    outcome = {}

    async def quote():
        await oms.limit_order(EXC, TICKER, D("0.01"), D("59990.0"), cloid="bid")

    async def kill():
        await oms.kill("by hand")
        with pytest.raises(OrderRejected) as info:
            await oms.limit_order(EXC, TICKER, D("0.01"), D("59980.0"))
        outcome["refused"] = info.value

    async def rearm():
        oms.rearm()
        outcome["after"] = await oms.limit_order(EXC, TICKER, D("0.01"), D("59970.0"))

    at(rep, {1_000: quote, 1_200: kill, 1_500: rearm})
    assert outcome["refused"].code == KILL_SWITCH and "by hand" in str(outcome["refused"])
    assert [o.cloid for o in oms.orders_peek(EXC).get_orders()] == [outcome["after"]]
    assert set(rep.venue.engine(EXC, TICKER).resting) == {outcome["after"]}


def test_the_kill_switch_refuses_order_entry_cancels_aside():
    rep, oms = fresh()

    async def go():
        cloid = await oms.limit_order(EXC, TICKER, D("0.01"), D("59990.0"))
        oms.kill_switch.engage(KillReason.MANUAL, "test")
        await oms.cancel_order(EXC, TICKER, cloid=cloid)  # allowed

    at(rep, {1_000: go})
    assert not oms.orders_peek(EXC).get_orders() and not rep.venue.engine(EXC, TICKER).resting


def test_the_kill_switch_refuses_order_entry_amends_too():
    rep, oms = fresh()
    outcome = {}

    async def quote():
        await oms.limit_order(EXC, TICKER, D("0.01"), D("59990.0"), cloid="bid")

    async def amend():
        oms.kill_switch.engage(KillReason.MANUAL, "test")
        with pytest.raises(OrderRejected) as info:
            await oms.amend_order(EXC, TICKER, cloid="bid", price=D("59980.0"))
        outcome["refused"] = info.value

    at(rep, {1_000: quote, 1_200: amend})
    assert outcome["refused"].code == KILL_SWITCH
    assert [a["event"] for a in rep.actions if a["event"].startswith("amend")] == []
    [resting] = rep.venue.engine(EXC, TICKER).resting.values()
    assert resting.price == D("59990.0")


def test_worst_case_exposure_position():
    _rep, oms = fresh(RiskLimits(max_position={KEY: D("0.03")}))

    async def go():
        await oms.limit_order(EXC, TICKER, D("0.02"), D("59990.0"))
        await oms.limit_order(EXC, TICKER, D("-0.03"), D("60010.0"))  # its own side
        with pytest.raises(OrderRejected) as info:  # 0.02 resting + 0.02 > 0.03
            await oms.limit_order(EXC, TICKER, D("0.02"), D("59980.0"))
        return info.value

    refused = asyncio.run(go())
    assert refused.code == RISK_POSITION and refused.argument == "amount"
    assert "worst-case position to 0.04 (max_position 0.03)" in str(refused)


def test_worst_case_exposure_notional_and_total():
    limits = RiskLimits(max_notional=D("1500"), max_total_notional=D("2000"))
    _, oms = fresh(limits)

    async def go():
        await oms.limit_order(EXC, TICKER, D("0.02"), D("59990.0"))  # 1199.8
        with pytest.raises(OrderRejected) as one:
            await oms.limit_order(EXC, TICKER, D("0.01"), D("59980.0"))  # 1799.5 > 1500
        return one.value, oms.risk.total_notional()

    one, total = asyncio.run(go())
    assert one.code == RISK_NOTIONAL and total == D("0.02") * D("59990.0")
    _rep, oms = fresh(RiskLimits(max_total_notional=D("2000")))

    async def both_sides():
        await oms.limit_order(EXC, TICKER, D("0.02"), D("59990.0"))
        await oms.limit_order(EXC, TICKER, D("-0.02"), D("60010.0"))  # larger side counts
        with pytest.raises(OrderRejected) as info:
            await oms.limit_order(EXC, TICKER, D("-0.02"), D("60020.0"))
        return info.value

    assert asyncio.run(both_sides()).code == RISK_TOTAL_NOTIONAL


def test_worst_case_exposure_an_order_that_only_reduces_is_never_refused():
    trades = np.array([[1_100, 59990.0, 0.05, -1]])
    rep, oms = fresh(RiskLimits(max_position={KEY: D("0.03")}), trades=trades)
    outcome = {}

    async def buy():
        await oms.limit_order(EXC, TICKER, D("0.03"), D("59990.0"))

    async def sell():  # long 0.03 at the limit: selling reduces, buying does not
        outcome["sell"] = await oms.limit_order(EXC, TICKER, D("-0.03"), D("60010.0"))
        with pytest.raises(OrderRejected) as info:
            await oms.limit_order(EXC, TICKER, D("0.001"), D("59980.0"))
        outcome["buy"] = info.value

    at(rep, {1_000: buy, 1_500: sell})
    assert oms.get_position(EXC, TICKER) == D("0.03")
    assert outcome["buy"].code == RISK_POSITION and outcome["sell"]


def test_worst_case_exposure_an_order_that_only_reduces_is_never_refused_an_amend():
    trades = np.array([[1_300, 59990.0, 0.05, -1]])
    rep, oms = fresh(RiskLimits(max_position={KEY: D("0.03")}), trades=trades)
    outcome = {}

    async def quote():
        outcome["bid"] = await oms.limit_order(EXC, TICKER, D("0.02"), D("59980.0"))

    async def around():  # filled around the OMS: exposure 0.03 + 0.02, beyond the limit
        await rep.venue.submit(OrderRequest(EXC, TICKER, "manual", D("0.03"), D("59990.0")))

    async def shrink():  # to 0.03 + 0.01: still beyond, but less
        await oms.amend_order(EXC, TICKER, cloid=outcome["bid"], amount=D("0.01"))

    at(rep, {1_000: quote, 1_200: around, 1_500: shrink})
    assert oms.get_position(EXC, TICKER) == D("0.03") and not oms.kill_switch.tripped
    assert oms.orders_peek(EXC).cloid_query(outcome["bid"]).amount == D("0.01")


def test_worst_case_exposure_an_amend_counts_as_its_order_resized():
    rep, oms = fresh(RiskLimits(max_position={KEY: D("0.03")}))
    outcome = {}

    async def go():
        outcome["cloid"] = await oms.limit_order(EXC, TICKER, D("0.02"), D("59990.0"))

    async def amend():
        await oms.amend_order(EXC, TICKER, cloid=outcome["cloid"], amount=D("0.01"))  # less
        with pytest.raises(OrderRejected) as info:
            await oms.amend_order(EXC, TICKER, cloid=outcome["cloid"], amount=D("0.04"))
        outcome["refused"] = info.value

    at(rep, {1_000: go, 1_200: amend})
    assert outcome["refused"].code == RISK_POSITION
    assert oms.orders_peek(EXC).cloid_query(outcome["cloid"]).amount == D("0.01")


def test_a_symbols_latest_price_values_a_market_order():
    _rep, oms = fresh(RiskLimits(max_notional=D("1000")))
    refused = refusal(lambda: oms.market_order(EXC, TICKER, D("0.01")))
    assert refused.code == RISK_NOTIONAL and "no price seen" in str(refused)

    async def go():
        await oms.limit_order(EXC, TICKER, D("0.001"), D("59990.0"))  # a price is seen
        return await oms.market_order(EXC, TICKER, D("0.01"))

    assert asyncio.run(go())


def test_order_rate_max_orders_per_s_on_the_venues_clock():
    rep, oms = fresh(RiskLimits(max_orders_per_s=2))
    outcome = {}

    async def burst():
        for price in ("59990.0", "59980.0"):
            await oms.limit_order(EXC, TICKER, D("0.01"), D(price))
        with pytest.raises(OrderRejected) as info:
            await oms.limit_order(EXC, TICKER, D("0.01"), D("59970.0"))
        outcome["refused"] = info.value

    async def later():  # a second of replay time later: allowed again
        outcome["later"] = await oms.limit_order(EXC, TICKER, D("0.01"), D("59960.0"))

    at(rep, {1_000: burst, 2_000: later})
    assert outcome["refused"].code == RISK_RATE and "max_orders_per_s" in str(
        outcome["refused"])
    assert outcome["later"] and len(oms.orders_peek(EXC).get_orders()) == 3


class Budget:
    def __init__(self, wait: float, room: float) -> None:
        self.wait, self.room = wait, room

    def retry_after(self, now_ns: int) -> float:
        return self.wait

    def headroom(self, now_ns: int) -> float:
        return self.room


def test_order_rate_on_a_venue_that_reports_rate_limits():
    from makerlab.trading.risk import Risk
    rep, oms = fresh()
    budget = Budget(wait=2.5, room=1.0)

    async def breach(detail: str) -> None: ...

    risk = Risk(RiskLimits(rate_headroom=0.2), oms, rep.venue.clock, lambda exc: budget, breach)
    with pytest.raises(OrderRejected, match=r"2\.5 s' to wait") as waiting:
        risk.check_order("w", EXC, TICKER, D("0.01"), D("59990"))
    budget.wait, budget.room = 0, 0.15
    with pytest.raises(OrderRejected, match="15% left") as low:
        risk.check_order("w", EXC, TICKER, D("0.01"), D("59990"))
    budget.room = 0.25
    risk.check_order("w", EXC, TICKER, D("0.01"), D("59990"))
    assert waiting.value.code == low.value.code == RISK_RATE


@pytest.mark.parametrize("side", [1, -1], ids=["long", "short"])
def test_a_breached_limit_trips_the_kill_switch(side):
    near, far = (D("59990.0"), D("60010.0"))[::side]  # the order around the OMS rests near
    trades = np.array([[1_300, float(near), 0.05, -side]])  # and a print fills it
    rep, oms = fresh(RiskLimits(max_position={KEY: D("0.02")}), trades=trades)

    async def quote():
        await oms.limit_order(EXC, TICKER, D("-0.01") * side, far, cloid="quote")

    async def around():  # an order sent around the OMS, to the venue directly
        await rep.venue.submit(OrderRequest(EXC, TICKER, "manual", D("0.03") * side, near))

    at(rep, {1_000: quote, 1_200: around})
    assert oms.positions_peek(EXC).get_ticker_amount(TICKER) == D("0.03") * side
    assert oms.kill_switch.reason is KillReason.LIMIT
    assert "beyond max_position 0.02" in oms.kill_switch.detail
    assert not rep.venue.engine(EXC, TICKER).resting  # everything cancelled
    assert not oms.orders_peek(EXC).get_orders()  # and the mirror says so


def test_a_breached_limit_trips_the_kill_switch_an_order_learnt_live_is_cancelled():
    trades = np.array([[1_300, 59990.0, 0.05, -1]])
    rep, oms = fresh(RiskLimits(max_position={KEY: D("0.02")}), trades=trades,
                     latencies=zero_latencies(req_private=50, ack_private=50))

    async def around():
        await rep.venue.submit(OrderRequest(EXC, TICKER, "manual", D("0.03"), D("59990.0")))

    async def after():  # resting at the venue after the kill's cancel-all
        await rep.venue.submit(OrderRequest(EXC, TICKER, "manual-2", D("-0.01"),
                                            D("60010.0")))

    at(rep, {1_200: around, 1_500: after})
    assert oms.kill_switch.reason is KillReason.LIMIT
    cancelled = [a["cloid"] for a in rep.actions if a["event"] == "cancelled"]
    assert cancelled == ["manual-2"]  # learnt live while tripped: cancelled on arrival
    assert not rep.venue.engine(EXC, TICKER).resting
    assert not oms.orders_peek(EXC).get_orders()


def test_engaging_refuses_order_entry_at_once_exit_exception_limit_and_manual_latch():
    switch = KillSwitch(ReplayClock())
    assert switch.engage(KillReason.DISCONNECT, "lost")
    assert not switch.engage(KillReason.DISCONNECT, "lost again")  # no change of state
    assert switch.detail == "lost"
    assert switch.engage(KillReason.LIMIT, "too long")  # a latching trip replaces it
    assert not switch.engage(KillReason.DISCONNECT, "again")  # nothing replaces a latch
    assert not switch.engage(KillReason.EXIT, "bye")
    assert (switch.reason, switch.detail) == (KillReason.LIMIT, "too long")
    assert [r for _, r, _ in switch.trips] == [KillReason.DISCONNECT, KillReason.DISCONNECT,
                                               KillReason.LIMIT, KillReason.DISCONNECT,
                                               KillReason.EXIT]
    with pytest.raises(OrderRejected, match="tripped"):
        switch.check("here")
    switch.release()
    switch.check("here")


def test_a_strategy_callback_that_raises_trips_the_kill_switch_in_replay():
    rep, oms = fresh()

    def on_delta(order):
        if order["ord_status"] == "NEW":
            raise RuntimeError("handler bug")

    oms.orders_mirror(EXC, on_delta=on_delta)

    async def quote():
        await oms.limit_order(EXC, TICKER, D("0.01"), D("59990.0"))

    with pytest.raises(RuntimeError, match="handler bug"):  # the replay stops on it
        at(rep, {1_000: quote})
    assert oms.kill_switch.reason is KillReason.EXCEPTION


def test_risk_limits_are_recorded_in_the_run_config():
    limits = RiskLimits(max_position={KEY: D("0.05")}, max_orders_per_s=10)
    rep, _ = fresh(limits)
    assert rep.config["risk"] == {"type": "RiskLimits", "max_position": {KEY: "0.05"},
                                  "max_notional": None, "max_total_notional": None,
                                  "max_orders_per_s": 10, "rate_headroom": 0.1,
                                  "dead_man_ms": 60000}
    assert fresh()[0].config["risk"] is None


@pytest.mark.parametrize("kwargs", [
    {"max_position": {"BTCUSDT": 1}}, {"max_position": {KEY: 0}},
    {"max_notional": -1}, {"max_notional": "abc"}, {"max_orders_per_s": 0},
    {"max_orders_per_s": 1.5}, {"rate_headroom": 1.0}, {"dead_man_ms": -1}])
def test_risk_limits_are_checked(kwargs):
    with pytest.raises(ConfigError, match="RiskLimits"):
        RiskLimits(**kwargs)


def test_pending_orders_count_toward_exposure():
    _rep, oms = fresh(RiskLimits(max_position={KEY: D("0.01")}),
                     latencies=zero_latencies(req_private=100, ack_private=100))

    async def go():
        await oms.limit_order(EXC, TICKER, D("0.01"), D("59990.0"))
        assert oms.orders_peek(EXC).get_orders()[0].ord_status is OrderStatus.PENDING
        with pytest.raises(OrderRejected):
            await oms.limit_order(EXC, TICKER, D("0.001"), D("59980.0"))

    asyncio.run(go())
