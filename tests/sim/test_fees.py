"""Maker/taker fees and the tutorial's per-exchange fee arguments."""

from __future__ import annotations

from decimal import Decimal as D

import pytest
from hypothesis import given
from hypothesis import strategies as st

from makerlab.core.instruments import get_spec
from makerlab.errors import ConfigError
from makerlab.sim.fees import FeeModel, FeeSchedule, MakerTakerFees


def test_fee_is_rate_times_notional():
    fees = MakerTakerFees(maker=0.0002, taker="0.0005")
    assert fees.fee(D(10_000), is_maker=True) == D("2.0000")
    assert fees.fee(D(10_000), is_maker=False) == D("5.0000")
    assert fees.fee(D(-10_000), is_maker=False) == D("5.0000")  # sign of notional ignored
    assert fees.fee(1000.1, is_maker=False) == D("0.50005")


def test_rebates_are_negative_fees():
    fees = MakerTakerFees(maker=D("-0.00005"), taker=D("0.0003"))
    assert fees.fee(D(20_000), is_maker=True) == D("-1.00000")


def test_notional_is_in_quote_currency():
    linear = get_spec("hyperliquid", "BTC")
    inverse = get_spec("binance_coinm", "BTCUSD_PERP")
    fees = MakerTakerFees(maker=D("0.0001"), taker=D("0.0005"))
    assert fees.fee(linear.notional(D(60_000), D("0.5")), False) == D(15)
    quote_fee = fees.fee(inverse.notional(D(60_000), D(3)), False)  # 3 contracts of 100 USD
    assert quote_fee == D("0.15") and quote_fee / D(60_000) == D("0.0000025")  # in BTC


@pytest.mark.parametrize("rate", [1, -1, 2.5, "nan", "inf"])
def test_rates_are_sane(rate):
    with pytest.raises(ConfigError, match="fraction of notional"):
        MakerTakerFees(maker=rate)


def test_rates_are_stored_as_exact_decimals():
    fees = MakerTakerFees(0.0001, 0.0003)
    assert fees.maker == D("0.0001") and fees.taker == D("0.0003")
    assert fees.rate(True) == fees.maker and fees.rate(False) == fees.taker
    assert isinstance(fees, FeeModel)  # structural: MakerTakerFees has fee(...)


@given(st.decimals(min_value=0, max_value=10**9, places=4),
       st.decimals(min_value=D("-0.001"), max_value=D("0.01"), places=6))
def test_fee_scales_linearly_with_notional(notional, rate):
    fees = MakerTakerFees(maker=rate, taker=rate)
    assert fees.fee(notional * 2, True) == 2 * fees.fee(notional, True)
    assert (fees.fee(notional, True) >= 0) == (rate >= 0 or notional == 0)


def test_schedule_from_the_tutorial_arguments():
    schedule = FeeSchedule.from_tutorial(maker_fees=0.000, taker_fees=0.000,
                                         exchange_fees={"bybit": {"maker": 0.0002,
                                                                  "taker": 0.0005},
                                                        "binance": {"taker": 0.0004}})
    assert schedule.for_exchange("bybit") == MakerTakerFees(D("0.0002"), D("0.0005"))
    assert schedule.for_exchange("binance") == MakerTakerFees(D(0), D("0.0004"))
    assert schedule.for_exchange("okx") == MakerTakerFees(D(0), D(0))


def test_schedule_defaults_match_the_tutorial_replayer():
    default = FeeSchedule.from_tutorial().for_exchange("any")
    assert (default.maker, default.taker) == (D("0.0001"), D("0.0003"))
    assert FeeSchedule().default == default


def test_schedule_refuses_unknown_keys():
    with pytest.raises(ConfigError, match="unknown keys"):
        FeeSchedule.from_tutorial(exchange_fees={"bybit": {"maker_fee": 0.0002}})
