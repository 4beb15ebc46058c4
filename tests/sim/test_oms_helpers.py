"""The OMS's cross-venue helpers and base-asset views, over two replayed markets with
different rules (Binance USD-M and spot BTCUSDT)."""

from __future__ import annotations

import asyncio
from decimal import Decimal

import numpy as np
import pytest
from replay_scenarios import flat_market, zero_latencies

from makerlab.errors import ConfigError, OrderRejected
from makerlab.sim import Replayer

D = Decimal
PERP, SPOT, TICKER = "binance", "binance_spot", "BTCUSDT"


def two_markets() -> Replayer:
    books, _ = flat_market(30)
    trades = np.array([[1_200, 59990.0, 0.05, -1]])
    return Replayer({PERP: {TICKER: books}, SPOT: {TICKER: books}},
                    {PERP: {TICKER: trades}, SPOT: {TICKER: trades}},
                    latencies=zero_latencies())


def test_common_precisions_are_the_coarser_and_the_minimum_notional_the_larger():
    oms = two_markets().get_oms()
    assert oms.lot_precision(PERP, TICKER) == 3 and oms.lot_precision(SPOT, TICKER) == 5
    assert oms.common_lot_precision(PERP, TICKER, SPOT, TICKER) == 3
    assert oms.common_price_precision(SPOT, TICKER, PERP, TICKER) == 1
    assert oms.common_min_notional(SPOT, TICKER, PERP, TICKER) == D("100")
    assert (oms.get_base_asset(SPOT, TICKER), oms.get_quote_asset(PERP, TICKER)) == \
        ("BTC", "USDT")


def test_positions_by_base_net_across_exchanges():
    rep = two_markets()
    oms = rep.get_oms()

    async def go(_):
        await oms.limit_order(PERP, TICKER, D("0.02"), D("59990.0"))
        await oms.limit_order(SPOT, TICKER, D("-0.005"), D("60000.1"))
        await oms.market_order(SPOT, TICKER, D("-0.005"))

    rep.add_callback(1_000, go)
    rep.add_to_queue(1_000, 1_000, None)
    asyncio.run(rep.play(progress=False))
    by_base = oms.positions_get_by_base()
    assert by_base == {"BTC": {f"{PERP}/{TICKER}": {"amount": D("0.02")},
                               f"{SPOT}/{TICKER}": {"amount": D("-0.005")}}}
    assert oms.positions_get_net_base() == {"BTC": D("0.015")}


def test_a_markets_spec_is_asked_of_the_venue_once_and_an_unknown_one_always():
    oms = two_markets().get_oms()
    asked: list[tuple[str, str]] = []
    ask = oms.venue.spec

    def counted(exchange: str, symbol: str):
        asked.append((exchange, symbol))
        return ask(exchange, symbol)

    oms.venue.spec = counted  # type: ignore[method-assign]
    for _ in range(3):
        assert oms.rounded_price(PERP, TICKER, 60000.04) == D("60000.0")
        assert oms.spec(SPOT, TICKER).lot_size == D("0.00001")
        with pytest.raises(ConfigError):
            oms.rounded_price(PERP, "ETHUSDT", 3000.0)
    assert asked == [(PERP, TICKER), (SPOT, TICKER), *[(PERP, "ETHUSDT")] * 3]


def test_rounded_prices_are_remembered_per_market_and_bad_ones_still_refused():
    oms = two_markets().get_oms()
    for _ in range(2):  # the second time from the memo
        assert oms.rounded_price(PERP, TICKER, 60000.04) == D("60000.0")
        assert oms.rounded_price(SPOT, TICKER, 60000.04) == D("60000.04")
        assert oms.rounded_price(PERP, TICKER, np.float64(60000.06)) == D("60000.1")
        assert oms.rounded_price(PERP, TICKER, -1.04) == D("-1.0")  # rounded, not judged
        for bad in (float("nan"), float("inf")):
            with pytest.raises(OrderRejected):
                oms.rounded_price(PERP, TICKER, bad)
