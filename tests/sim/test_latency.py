"""Latency channels and models: constant, lognormal (seeded) and replayed."""

from __future__ import annotations

from decimal import Decimal as D

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from makerlab.errors import ConfigError
from makerlab.sim.latency import (
    DEFAULT_LATENCIES_MS,
    ConstantLatency,
    Latencies,
    LatencyModel,
    LognormalLatency,
    ReplayedLatency,
    latency_model_from,
    latency_models_by_exchange,
    ms_to_ns,
)

TUTORIAL_ZERO = {c: 0 for c in Latencies if c is not Latencies.NULL}
TS = 1_700_000_000_000_000_000  # a 2023 epoch in ns


def test_channel_values_are_lower_case_names():
    assert [c.value for c in Latencies] == [
        "null", "req_public", "req_private", "ack_public", "ack_private", "feed_public",
        "feed_private"]


# ---- shared rules ----------------------------------------------------------------------------

MODELS = [
    ConstantLatency({Latencies.REQ_PRIVATE: 5}),
    LognormalLatency({Latencies.REQ_PRIVATE: 5}, seed=1),
    ReplayedLatency({Latencies.REQ_PRIVATE: ([0], [5])}),
]


@pytest.mark.parametrize("model", MODELS, ids=lambda m: type(m).__name__)
def test_null_is_instant(model):
    assert model.sample(Latencies.NULL, TS) == 0 and model.sample("null", TS) == 0


@pytest.mark.parametrize("model", MODELS, ids=lambda m: type(m).__name__)
def test_never_negative(model):
    samples = [model.sample(Latencies.REQ_PRIVATE, TS + i) for i in range(200)]
    assert all(isinstance(s, int) and s >= 0 for s in samples)


@pytest.mark.parametrize("model", MODELS, ids=lambda m: type(m).__name__)
def test_models_satisfy_the_protocol_and_refuse_unknown_channels(model):
    assert isinstance(model, LatencyModel)
    with pytest.raises(ConfigError, match="unknown latency channel"):
        model.sample("req_everything", TS)


# ---- ConstantLatency ---------------------------------------------------------------------------

def test_constant():
    model = ConstantLatency({Latencies.REQ_PRIVATE: 50, "ack_private": 20})
    assert {model.sample(Latencies.REQ_PRIVATE, TS + i) for i in range(10)} == {50_000_000}
    assert model.sample("ack_private", 0) == 20_000_000


def test_exact_ms_to_ns():
    model = ConstantLatency({Latencies.REQ_PRIVATE: 0.3, Latencies.ACK_PRIVATE: D("0.000001"),
                             Latencies.FEED_PRIVATE: "1.5", Latencies.FEED_PUBLIC: 0.1})
    assert model.sample(Latencies.REQ_PRIVATE, 0) == 300_000
    assert model.sample(Latencies.ACK_PRIVATE, 0) == 1
    assert model.sample(Latencies.FEED_PRIVATE, 0) == 1_500_000
    assert model.sample(Latencies.FEED_PUBLIC, 0) == 100_000


@settings(max_examples=200, deadline=None)
@given(st.decimals(min_value=0, max_value=10_000, places=6))
def test_constant_is_exact_at_sub_ms_values(ms):
    expected = int(ms * 1_000_000)
    assert ms_to_ns(ms) == expected
    assert ConstantLatency({Latencies.ACK_PUBLIC: ms}).sample(Latencies.ACK_PUBLIC, 0) == expected
    assert ms_to_ns(float(ms)) == expected


def test_missing_channels_take_the_tutorial_defaults():
    model = ConstantLatency({Latencies.REQ_PRIVATE: 1})
    assert model.sample(Latencies.REQ_PRIVATE, 0) == 1_000_000
    for channel, ms in DEFAULT_LATENCIES_MS.items():
        if channel is not Latencies.REQ_PRIVATE:
            assert model.sample(channel, 0) == ms * 1_000_000


def test_tutorial_zero_latencies():
    model = ConstantLatency(TUTORIAL_ZERO)
    assert all(model.sample(c, TS) == 0 for c in Latencies)
    assert "'req_public': 0" in repr(model)


@pytest.mark.parametrize("bad", [{Latencies.REQ_PUBLIC: -1}, {Latencies.NULL: 5},
                                 {Latencies.REQ_PUBLIC: "nan"}])
def test_negative_latencies_are_refused(bad):
    with pytest.raises(ConfigError):
        ConstantLatency(bad)


# ---- LognormalLatency ----------------------------------------------------------------------------

CHANNELS = [Latencies.REQ_PRIVATE, Latencies.ACK_PRIVATE, Latencies.FEED_PUBLIC]


def _lognormal(seed: int) -> LognormalLatency:
    return LognormalLatency(dict.fromkeys(CHANNELS, 10), sigma=0.8, seed=seed)


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 2**32), st.lists(st.sampled_from(CHANNELS), min_size=1, max_size=40))
def test_seeded(seed, calls):
    a, b = _lognormal(seed), _lognormal(seed)
    assert [a.sample(c, TS) for c in calls] == [b.sample(c, TS) for c in calls]


def test_different_seeds_differ():
    a, b = _lognormal(1), _lognormal(2)
    assert [a.sample(CHANNELS[0], 0) for _ in range(5)] != [b.sample(CHANNELS[0], 0)
                                                            for _ in range(5)]


def test_channels_are_independent_streams():
    quiet, busy = _lognormal(7), _lognormal(7)
    for _ in range(25):
        busy.sample(Latencies.FEED_PUBLIC, TS)
    assert [quiet.sample(Latencies.REQ_PRIVATE, TS) for _ in range(10)] == [
        busy.sample(Latencies.REQ_PRIVATE, TS) for _ in range(10)]


def test_median_is_the_median():
    model = LognormalLatency({Latencies.ACK_PRIVATE: 2.5}, sigma=0.6, seed=3)
    samples = [model.sample(Latencies.ACK_PRIVATE, 0) for _ in range(4001)]
    assert abs(np.median(samples) / 2_500_000 - 1) < 0.05


def test_zero_sigma_is_constant_and_per_channel_sigma():
    model = LognormalLatency({Latencies.REQ_PUBLIC: 1, Latencies.REQ_PRIVATE: 2},
                             sigma={Latencies.REQ_PUBLIC: 0.0, Latencies.REQ_PRIVATE: 0.0})
    assert model.sample(Latencies.REQ_PUBLIC, 0) == 1_000_000
    assert model.sample(Latencies.REQ_PRIVATE, 0) == 2_000_000


def test_channels_without_a_median_are_0():
    assert _lognormal(0).sample(Latencies.ACK_PUBLIC, TS) == 0


@pytest.mark.parametrize("kwargs", [
    {"median_ms": {Latencies.REQ_PUBLIC: 0}},
    {"median_ms": {Latencies.REQ_PUBLIC: 1}, "sigma": -1.0},
    {"median_ms": {Latencies.REQ_PUBLIC: 1}, "sigma": {Latencies.ACK_PUBLIC: 1.0}},
])
def test_lognormal_refuses_bad_config(kwargs):
    with pytest.raises(ConfigError):
        LognormalLatency(**kwargs)


# ---- ReplayedLatency ---------------------------------------------------------------------------

def _replayed() -> ReplayedLatency:
    ts = np.array([TS, TS + 1_000, TS + 3_000], dtype=np.int64)
    return ReplayedLatency({Latencies.REQ_PRIVATE: (ts, [100, 300, 301])})


def test_interpolated():
    model = _replayed()
    assert model.sample(Latencies.REQ_PRIVATE, TS) == 100
    assert model.sample(Latencies.REQ_PRIVATE, TS + 500) == 200
    assert model.sample(Latencies.REQ_PRIVATE, TS + 1_000) == 300
    assert model.sample(Latencies.REQ_PRIVATE, TS + 2_999) == 300  # floor of 300.9995


def test_held_at_the_ends():
    model = _replayed()
    assert model.sample(Latencies.REQ_PRIVATE, 0) == 100
    assert model.sample(Latencies.REQ_PRIVATE, TS + 10**12) == 301


def test_duplicate_timestamps_take_the_later_sample():
    model = ReplayedLatency({Latencies.REQ_PRIVATE: ([0, 10, 10, 20], [1, 2, 8, 8])})
    assert model.sample(Latencies.REQ_PRIVATE, 10) == 8
    assert model.sample(Latencies.REQ_PRIVATE, 5) == 1


def test_unrecorded_channels_use_the_fallback():
    with pytest.raises(ConfigError, match="fallback"):
        _replayed().sample(Latencies.FEED_PUBLIC, TS)
    model = ReplayedLatency({Latencies.REQ_PRIVATE: ([0], [5])},
                            fallback=ConstantLatency({Latencies.FEED_PUBLIC: 2}))
    assert model.sample(Latencies.FEED_PUBLIC, TS) == 2_000_000


@pytest.mark.parametrize("ts, lat", [([0, 1], [5, -1]), ([2, 1], [5, 5]), ([0, 1], [5]),
                                     ([], [])])
def test_negative_or_unsorted_samples_are_refused(ts, lat):
    with pytest.raises(ConfigError):
        ReplayedLatency({Latencies.REQ_PRIVATE: (ts, lat)})


def test_from_order_latency_rows():
    rows = np.array([[TS, TS + 400, TS + 1_000], [TS + 2_000, TS + 2_200, TS + 2_300]])
    model = ReplayedLatency.from_order_latency(rows)
    assert model.sample(Latencies.REQ_PRIVATE, TS) == 400
    assert model.sample(Latencies.ACK_PRIVATE, TS + 400) == 600
    assert model.sample(Latencies.REQ_PRIVATE, TS + 2_000) == 200
    structured = np.zeros(2, dtype=[("req_ts", "i8"), ("exch_ts", "i8"), ("resp_ts", "i8")])
    structured["req_ts"], structured["exch_ts"], structured["resp_ts"] = rows.T
    again = ReplayedLatency.from_order_latency(structured)
    assert again.sample(Latencies.ACK_PRIVATE, TS + 2_200) == 100
    with pytest.raises(ConfigError):
        ReplayedLatency.from_order_latency(np.zeros((3, 2)))


# ---- building models from the tutorial's arguments -------------------------------------------

def test_latency_model_from_accepts_the_tutorial_dict_a_model_or_none():
    assert latency_model_from(TUTORIAL_ZERO).sample(Latencies.REQ_PUBLIC, 0) == 0
    assert latency_model_from(None).sample(Latencies.REQ_PUBLIC, 0) == 100_000_000
    model = _lognormal(0)
    assert latency_model_from(model) is model
    with pytest.raises(ConfigError):
        latency_model_from(5)


def test_latency_models_by_exchange():
    models = latency_models_by_exchange(["bybit", "binance"], TUTORIAL_ZERO,
                                        {"binance": {Latencies.REQ_PRIVATE: 3}, "okx": None})
    assert list(models) == ["bybit", "binance", "okx"]
    assert models["bybit"].sample(Latencies.REQ_PRIVATE, 0) == 0
    assert models["binance"].sample(Latencies.REQ_PRIVATE, 0) == 3_000_000
    assert models["okx"].sample(Latencies.REQ_PRIVATE, 0) == 50_000_000
