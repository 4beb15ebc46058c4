"""One test per rule of makerlab.sim.models (models as plain dicts), and a run rebuilt
from its config.json."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from decimal import Decimal

import numpy as np
import pytest
from replay_scenarios import EXC, TICKER, fill_records, random_market

from makerlab.analytics.record import RunRecord
from makerlab.errors import ConfigError
from makerlab.sim import Latencies, Replayer
from makerlab.sim.fees import FeeSchedule, MakerTakerFees
from makerlab.sim.latency import ConstantLatency, LognormalLatency, ReplayedLatency
from makerlab.sim.matching import NoPartialFills, PartialFills
from makerlab.sim.models import MODELS, from_config, to_config
from makerlab.sim.queue import (
    LogProbQueue,
    LogProbQueue2,
    PowerProbQueue,
    PowerProbQueue2,
    PowerProbQueue3,
    RiskAverseQueue,
)
from makerlab.trading.risk import RiskLimits

D = Decimal
BUILT_IN = [
    ConstantLatency({Latencies.REQ_PRIVATE: 0.3, "ack_private": D("1.25")}),
    LognormalLatency({"req_private": 5, Latencies.FEED_PUBLIC: 2}, sigma={
        "req_private": 0.7, "feed_public": 0.1}, seed=7),
    ReplayedLatency({"req_private": (np.array([0, 10]), np.array([5, 7]))},
                    fallback=LognormalLatency({"ack_private": 3}, seed=2)),
    RiskAverseQueue(), PowerProbQueue(3.0), PowerProbQueue2(1.5), PowerProbQueue3(),
    LogProbQueue(), LogProbQueue2(), PartialFills(), NoPartialFills(),
    MakerTakerFees(D("-0.0001"), D("0.0004")),
    FeeSchedule.from_tutorial(0.0001, 0.0003, {"bybit": {"maker": -0.00025}}),
    RiskLimits(max_position={"binance/BTCUSDT": D("0.05")}, max_notional=D("2000"),
               max_orders_per_s=5),
]


def test_every_built_in_model_is_covered():
    assert {type(m).__name__ for m in BUILT_IN} == set(MODELS)


@pytest.mark.parametrize("model", BUILT_IN, ids=lambda m: type(m).__name__)
def test_a_model_is_its_type_and_parameters(model):
    config = to_config(model)
    assert config["type"] == type(model).__name__
    assert json.loads(json.dumps(config)) == config  # plain JSON, nothing lost
    assert "object at 0x" not in json.dumps(config)


def test_a_model_is_its_type_and_parameters_example():
    model = LognormalLatency({Latencies.REQ_PRIVATE: 5}, sigma=0.5, seed=3)
    assert to_config(model) == {"type": "LognormalLatency", "median_ms": {"req_private": 5},
                                "sigma": {"req_private": 0.5}, "seed": 3}
    assert to_config(FeeSchedule())["default"] == {"type": "MakerTakerFees",
                                                   "maker": "0.0001", "taker": "0.0003"}


@pytest.mark.parametrize("model", BUILT_IN, ids=lambda m: type(m).__name__)
def test_a_config_rebuilds_its_model(model):
    config = json.loads(json.dumps(to_config(model)))
    rebuilt = from_config(config)
    assert type(rebuilt) is type(model) and to_config(rebuilt) == config
    if not isinstance(model, ReplayedLatency):  # compared by identity (arrays)
        assert rebuilt == model
    if hasattr(model, "sample"):  # the same samples as a fresh model, seeded ones included
        fresh = from_config(config)
        draws = [(c, t) for t in (0, 5, 20) for c in Latencies if c is not Latencies.NULL]
        assert [rebuilt.sample(c, t) for c, t in draws] == [fresh.sample(c, t)
                                                            for c, t in draws]


def test_other_models_are_recorded_not_rebuilt():
    @dataclass(frozen=True)
    class MyQueue(RiskAverseQueue):
        pass

    class MyLatency:
        def sample(self, channel, ts_ns):
            return 0

    assert to_config(MyQueue())["type"].endswith("MyQueue")
    config = to_config(MyLatency())
    assert config["type"].endswith("MyLatency") and "repr" in config
    for bad in (config, {"type": "Nope"}, {}, {"type": "PowerProbQueue", "m": 1}):
        with pytest.raises(ConfigError):
            from_config(bad)


def _run(config: dict | None = None, **models):
    """A random market with a scripted quoter; ``config``: rebuild the models from it."""
    if config is not None:
        models = {"latencies": from_config(config["latencies"]),
                  "exchange_latencies": {e: from_config(m)
                                         for e, m in config["exchange_latencies"].items()},
                  "queue_model": from_config(config["queue_model"]),
                  "fill_model": from_config(config["fill_model"]),
                  **{k: config[k] for k in ("maker_fees", "taker_fees", "exchange_fees",
                                            "stamp_cycle", "balance", "seed")}}
    books, trades = random_market(3)
    rep = Replayer({EXC: {TICKER: books}}, {EXC: {TICKER: trades}}, **models)
    oms, engine = rep.get_oms(), rep.venue.engine(EXC, TICKER)

    async def quote(i):
        await oms.cancel_order(EXC, TICKER)
        bid = D(repr(engine.best(1)))
        await oms.limit_order(EXC, TICKER, D("0.05"), bid - D("0.1") * (i % 3))
        await oms.limit_order(EXC, TICKER, D("-0.05"), bid + D("0.1") * (1 + i % 2))

    rep.add_callback("quote", quote)
    rep.add_events("quote", list(range(1_000, 10_000, 250)), list(range(36)))
    asyncio.run(rep.play(progress=False))
    return rep


def test_config_json_reproduces_the_run(tmp_path):
    first = _run(latencies=LognormalLatency({"req_private": 3, "ack_private": 2,
                                             "feed_private": 1, "feed_public": 1},
                                            sigma=1.0, seed=5),
                 exchange_latencies={"bybit": ConstantLatency({"req_private": 9})},
                 queue_model=PowerProbQueue(2.0), fill_model=NoPartialFills(),
                 maker_fees=-0.0001, exchange_fees={EXC: {"taker": 0.0005}}, seed=4)
    first.save(tmp_path / "run")
    config = RunRecord.load(tmp_path / "run").config
    assert "object at 0x" not in (tmp_path / "run" / "config.json").read_text()
    assert config["latencies"][EXC]["type"] == "LognormalLatency"
    assert config["fees"]["by_exchange"][EXC] == {"type": "MakerTakerFees",
                                                  "maker": "-0.0001", "taker": "0.0005"}
    again = _run(config["replayer"])
    assert fill_records(first) and fill_records(again) == fill_records(first)
    assert again.actions == first.actions and again.config == first.config
