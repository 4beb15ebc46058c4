"""What a script sees inside and outside a sweep: params() and the Replayer hook."""

import numpy as np
import pytest

from makerlab import params
from makerlab.errors import ConfigError
from makerlab.sim import Latencies, Replayer
from makerlab.sim.timeline import BookTape, TradeTape
from makerlab.sweep.context import ActiveRun, activated
from makerlab.sweep.replayer_args import replayer_options, reserved_names

BOOKS = {"binance": {"BTCUSDT": [
    {"ts": 1_000, "b": np.array([[100.0, 1.0]]), "a": np.array([[100.1, 1.0]])},
    {"ts": 2_000, "b": np.array([[100.0, 2.0]]), "a": np.array([[100.1, 1.0]])}]}}
TRADES = {"binance": {"BTCUSDT": [(1_500, 100.1, 0.5, 1)]}}


def run(strategy=None, replayer=None) -> ActiveRun:
    return ActiveRun(strategy or {}, replayer_options(replayer or {}), reserved_names())


def test_outside_a_sweep_params_are_the_defaults():
    assert params(order_value=200, spread_bps=6) == {"order_value": 200, "spread_bps": 6}


def test_inside_a_sweep_params_take_the_configuration_values():
    with activated(run({"spread_bps": 4})) as active:
        values = params(order_value=200, spread_bps=6)
    assert values == {"order_value": 200, "spread_bps": 4}
    assert active.declared == values
    assert params(spread_bps=6) == {"spread_bps": 6}  # cleared after the block


def test_an_undeclared_parameter_is_refused_with_the_closest_names():
    with activated(run({"spred_bps": 4})), \
            pytest.raises(ConfigError, match="did you mean 'spread_bps'"):
        params(order_value=200, spread_bps=6)


def test_a_strategy_parameter_named_like_a_replayer_argument_is_refused():
    with activated(run()), pytest.raises(ConfigError, match="seed name Replayer arguments"):
        params(seed=1)


def test_one_configuration_at_a_time():
    with activated(run()), pytest.raises(ConfigError, match="already running"), \
            activated(run()):
        pass


def test_outside_a_sweep_the_replayer_keeps_the_script_arguments(tmp_path):
    rep = Replayer(BOOKS, TRADES, maker_fees=0.0002, seed=3, run_dir=tmp_path)
    assert rep.config["maker_fees"] == 0.0002 and rep.config["seed"] == 3
    assert rep.run_dir == tmp_path


def test_inside_a_sweep_replayer_arguments_replace_the_script_ones(tmp_path):
    script_latencies = {Latencies.REQ_PRIVATE: 0, Latencies.ACK_PRIVATE: 0}
    overrides = {"maker_fees": -0.0001, "seed": 7, "latencies.req_private": 5,
                 "queue_model": "power:3"}
    with activated(run(replayer=overrides)) as active:
        rep = Replayer(BOOKS, TRADES, maker_fees=0.0002, seed=3, run_dir=tmp_path,
                       latencies=script_latencies)
    assert active.replayers == [rep]
    assert rep.config["maker_fees"] == -0.0001 and rep.config["seed"] == 7
    channels = rep.config["latencies"]["latencies_ms"]
    assert channels["req_private"] == 5 and channels["ack_private"] == 0  # merged
    assert channels["feed_private"] == 50  # neither script nor sweep: the default
    assert rep.config["queue_model"] == {"type": "PowerProbQueue", "n": 3.0}
    assert rep.run_dir is None  # the sweep saves the record itself
    assert rep.rng.integers(1 << 30) == np.random.default_rng(7).integers(1 << 30)


def test_from_archive_paths_are_swept_too():
    with activated(run(replayer={"latency": 2, "taker_fees": 0.001})) as active:
        rep = Replayer.from_tapes(
            [BookTape.from_records("binance", "BTCUSDT", BOOKS["binance"]["BTCUSDT"])],
            [TradeTape.from_rows("binance", "BTCUSDT", TRADES["binance"]["BTCUSDT"])],
            recorded_local_time=False, taker_fees=0.0)
    assert active.replayers == [rep]
    assert rep.config["taker_fees"] == 0.001
    assert set(rep.config["latencies"]["latencies_ms"].values()) == {2}


def test_latency_parameters_need_a_latency_dict_from_the_script():
    class Model:
        def sample(self, channel, ts_ns):
            return 0

    with activated(run(replayer={"latency": 1})), \
            pytest.raises(ConfigError, match="latency model"):
        Replayer(BOOKS, TRADES, latencies=Model())
