"""Sweep parameters that are Replayer arguments."""

import pytest

from makerlab.errors import ConfigError
from makerlab.sim import Latencies
from makerlab.sim.matching import NoPartialFills
from makerlab.sim.queue import LogProbQueue, PowerProbQueue2, RiskAverseQueue
from makerlab.sweep.replayer_args import is_replayer_param, replayer_options


def test_names_map_to_replayer_arguments():
    options = replayer_options({"maker_fees": -0.0001, "taker_fees": 0, "seed": 3,
                                "balance": 5000, "stamp_cycle": 500,
                                "queue_model": "power2:1.5", "fill_model": "no_partial"})
    assert options["maker_fees"] == -0.0001 and options["taker_fees"] == 0.0
    assert options["seed"] == 3 and options["balance"] == 5000.0
    assert options["stamp_cycle"] == 500
    assert options["queue_model"] == PowerProbQueue2(1.5)
    assert isinstance(options["fill_model"], NoPartialFills)


def test_queue_models_by_name():
    assert replayer_options({"queue_model": "risk_averse"})["queue_model"] == RiskAverseQueue()
    assert replayer_options({"queue_model": "log"})["queue_model"] == LogProbQueue()


def test_latency_sets_every_channel_and_a_channel_parameter_one():
    every = replayer_options({"latency": 3})["latencies"]
    assert set(every) == set(Latencies) - {Latencies.NULL} and set(every.values()) == {3.0}
    one = replayer_options({"latencies.feed_private": 2})["latencies"]
    assert one == {Latencies.FEED_PRIVATE: 2.0}


def test_strategy_parameters_are_not_replayer_arguments():
    assert replayer_options({"spread_bps": 6}) == {}
    assert not is_replayer_param("spread_bps")
    assert is_replayer_param("seed") and is_replayer_param("latencies.req_private")


@pytest.mark.parametrize(("values", "message"), [
    ({"seed": 1.5}, "expected an integer"),
    ({"maker_fees": "cheap"}, "expected a number"),
    ({"latency": -1}, "latency must be >= 0"),
    ({"latencies.req_privat": 1}, "unknown latency channel"),
    ({"queue_model": "fifo"}, "unknown queue model"),
    ({"queue_model": "log:2"}, "takes no ':n'"),
    ({"fill_model": "some"}, "unknown fill model"),
])
def test_bad_values_name_their_parameter(values, message):
    with pytest.raises(ConfigError, match=message) as error:
        replayer_options(values)
    assert str(error.value).startswith(f"sweep parameter {next(iter(values))}")
