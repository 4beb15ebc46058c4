from decimal import Decimal

import pytest

from makerlab.core.instruments import InstrumentSpec, get_spec, load_specs
from makerlab.errors import ConfigError


def test_bundled_specs_cover_the_bundled_instruments():
    specs = load_specs()
    for key in [("binance", "BTCUSDT"), ("binance", "ETHUSDT"),
                ("binance_spot", "BTCUSDT"), ("binance_spot", "ETHUSDT")]:
        assert key in specs


def test_round_price_removes_float_noise():
    spec = get_spec("binance", "BTCUSDT")
    assert spec.round_price(61800.30000000001) == Decimal("61800.3")
    assert spec.round_price(0.1 + 0.2) == Decimal("0.3")
    assert spec.floor_price(61800.39) == Decimal("61800.3")
    assert spec.ceil_price(61800.31) == Decimal("61800.4")


def test_round_qty_never_grows_the_order_and_keeps_sign():
    spec = get_spec("binance", "BTCUSDT")
    assert spec.round_qty(0.0039) == Decimal("0.003")
    assert spec.round_qty(-0.0039) == Decimal("-0.003")
    assert spec.round_qty(200 / 61800.3) == Decimal("0.003")


def test_precisions_match_tick_and_lot():
    spec = get_spec("binance_spot", "BTCUSDT")
    assert spec.price_precision == 2
    assert spec.quantity_precision == 5
    assert spec.as_dict()["min_notional"] == Decimal("5")


def test_notional_linear_and_inverse():
    assert get_spec("binance", "BTCUSDT").notional(60000, -0.002) == Decimal("120.000")
    assert get_spec("binance_coinm", "BTCUSD_PERP").notional(60000, 3) == Decimal("300")


def test_unknown_instrument_names_the_known_ones():
    with pytest.raises(ConfigError, match="binance/BTCUSDT"):
        get_spec("binance", "DOGEUSDT")


def test_invalid_spec_is_rejected():
    with pytest.raises(ConfigError, match="tick_size"):
        InstrumentSpec("x", "Y", "B", "Q", "spot", Decimal(0), Decimal(1), Decimal(1), Decimal(0))
    with pytest.raises(ConfigError, match="kind"):
        InstrumentSpec("x", "Y", "B", "Q", "swap", Decimal(1), Decimal(1), Decimal(1), Decimal(0))
