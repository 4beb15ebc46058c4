"""The spec resolver: passed specs, then the venue cache, then the bundled specs, then
specs inferred from the data with a warning; spec files and rows."""

from __future__ import annotations

import json
from decimal import Decimal

import numpy as np
import pytest

from makerlab.core.instruments import InstrumentSpec, SigFigSpec, load_specs, spec_rows
from makerlab.data.specs import (
    SpecResolver,
    infer_spec,
    infer_step,
    passed_specs,
    read_spec_file,
    write_specs,
)
from makerlab.errors import ConfigError

D = Decimal
PRICES = np.array([61800.2, 61800.4, 61801.0, np.nan])  # NaN: book padding
SIZES = np.array([0.002, 0.004, 0.0, 1.5])  # 0: a deleted level


def _sample():
    return PRICES, SIZES


def _spec(exchange: str, symbol: str, tick: str) -> InstrumentSpec:
    return InstrumentSpec(exchange, symbol, "BTC", "USDT", "linear_perpetual", D(tick),
                          D("0.001"), D("0.001"), D(5))


def test_inference_takes_the_largest_step_every_value_is_a_multiple_of():
    assert infer_step(PRICES) == D("0.2")
    assert infer_step(SIZES) == D("0.002")
    assert infer_step(np.array([105054.0, 105058.0])) == D(2)
    assert infer_step(np.array([np.nan])) == D(1)  # nothing to read: one unit
    spec = infer_spec("bybit", "SOLUSDT", PRICES, SIZES)
    assert (spec.base, spec.quote, spec.kind) == ("SOL", "USDT", "linear_perpetual")
    assert (spec.min_qty, spec.min_notional) == (D("0.002"), 0)
    assert infer_spec("binance_spot", "ETHBTC", PRICES, SIZES).kind == "spot"


def test_resolution_order_is_passed_then_cache_then_bundled_then_inferred(spec_cache):
    bundled = load_specs()[("binance", "BTCUSDT")]
    write_specs(spec_cache, "binance", [_spec("binance", "BTCUSDT", "0.5")])
    passed = {"binance": {"BTCUSDT": _spec("binance", "BTCUSDT", "1")}}

    def resolve(specs=None):
        return SpecResolver(specs).resolve("binance", "BTCUSDT", _unused)

    assert (resolve(passed).source, resolve(passed).spec.tick_size) == ("passed", D(1))
    assert (resolve().source, resolve().spec.tick_size) == ("cache", D("0.5"))
    (spec_cache / "binance.json").unlink()
    assert resolve().source == "bundled" and resolve().spec == bundled
    with pytest.warns(UserWarning, match=r"bybit/SOLUSDT: .*inferred from the data: "
                                         r"tick 0\.2, lot 0\.002, min notional 0"):
        inferred = SpecResolver().resolve("bybit", "SOLUSDT", _sample)
    assert inferred.source == "inferred" and inferred.spec.tick_size == D("0.2")


def _unused():
    raise AssertionError("the data is read only to infer a spec")


def test_a_cache_directory_can_be_moved(tmp_path):
    write_specs(tmp_path, "bybit", [_spec("bybit", "SOLUSDT", "0.01")])
    resolved = SpecResolver(cache_dir=tmp_path).resolve("bybit", "SOLUSDT", _unused)
    assert resolved.source == "cache" and resolved.spec.tick_size == D("0.01")


def test_passed_rows_need_only_tick_and_lot_and_round_trip_through_the_record():
    specs = passed_specs({"bybit": {"SOLUSDT": {"tick_size": "0.01", "lot_size": 0.1}}})
    spec = specs[("bybit", "SOLUSDT")]
    assert (spec.tick_size, spec.lot_size, spec.min_qty, spec.min_notional) == (
        D("0.01"), D("0.1"), D("0.1"), 0)
    assert (spec.base, spec.quote, spec.kind) == ("SOL", "USDT", "linear_perpetual")
    record = SpecResolver({"bybit": {"SOLUSDT": spec}}).resolve("bybit", "SOLUSDT",
                                                                 _unused).record()
    assert record["source"] == "passed"
    assert passed_specs({"bybit": {"SOLUSDT": record}})[("bybit", "SOLUSDT")] == spec


@pytest.mark.parametrize(("specs", "message"), [
    ({"bybit": {"SOLUSDT": {"tick_size": "0.01"}}}, "needs tick_size and lot_size"),
    ({"bybit": {"SOLUSDT": {"tick_size": "0.01", "lot_size": "1", "tick": 1}}},
     r"unknown key\(s\): tick"),
    ({"bybit": {"SOLUSDT": {"tick_size": "0", "lot_size": "1"}}}, "tick_size must be positive"),
    ({"bybit": {"SOLUSDT": {"tick_size": "abc", "lot_size": "1"}}}, "bybit.*SOLUSDT"),
    ({"bybit": {"SOLUSDT": 0.01}}, "must be an InstrumentSpec or a mapping"),
    ({"bybit": ["SOLUSDT"]}, "must map symbols to specs"),
    ("no/such/file.json", "no such spec file or directory"),
])
def test_bad_passed_specs_are_config_errors(specs, message):
    with pytest.raises(ConfigError, match=message):
        SpecResolver(specs)


def test_spec_files_and_directories(tmp_path):
    rows = spec_rows([_spec("bybit", "SOLUSDT", "0.01"), SigFigSpec.hyperliquid("ETH", 4)])
    path = tmp_path / "mine.json"
    path.write_text(json.dumps({"instruments": rows}))
    specs = read_spec_file(path)
    assert specs[("hyperliquid", "ETH")].round_price("3500.12345") == D("3500.1")
    assert passed_specs(path) == passed_specs(tmp_path) == specs
    path.write_text(json.dumps({"instruments": [{**rows[0], "tick_size": None}]}))
    with pytest.raises(ConfigError, match=r"mine\.json: not a readable spec file"):
        read_spec_file(path)


def test_a_corrupt_cache_file_is_named(spec_cache):
    (spec_cache / "bybit.json").write_text("{")
    with pytest.raises(ConfigError, match=r"bybit\.json: not a readable spec file"):
        SpecResolver().resolve("bybit", "SOLUSDT", _sample)
