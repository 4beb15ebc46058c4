"""The paper exchange's trading models: the Replayer's, by the same names and defaults.

:class:`TradingConfig` holds what ``makerlab paper`` takes as ``--latency``,
``--queue-model``, ``--maker-fee``, ``--taker-fee`` and ``--balance``; the text forms are
parsed here:

- ``--latency 0`` sets every channel to 0 ms; ``--latency req_private=5,ack_private=5``
  sets the channels given (ms; the others keep the Replayer's defaults: 100 ms public,
  50 ms private), a :class:`~makerlab.sim.latency.ConstantLatency` either way.
- ``--queue-model`` is ``risk_averse`` (default), ``power[:n]``, ``power2[:n]``,
  ``power3[:n]``, ``log`` or ``log2`` (:mod:`makerlab.sim.queue`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from makerlab.errors import ConfigError
from makerlab.paper.desk import DeskConfig
from makerlab.sim.fees import FeeSchedule, MakerTakerFees
from makerlab.sim.latency import ConstantLatency, Latencies, LatencyModel, latency_model_from
from makerlab.sim.matching import FillModel, PartialFills
from makerlab.sim.queue import (
    LogProbQueue,
    LogProbQueue2,
    PowerProbQueue,
    PowerProbQueue2,
    PowerProbQueue3,
    QueueModel,
    RiskAverseQueue,
)

__all__ = ["TradingConfig", "parse_latency", "parse_queue_model"]

_QUEUES: dict[str, Callable[..., QueueModel]] = {
    "risk_averse": RiskAverseQueue, "power": PowerProbQueue, "power2": PowerProbQueue2,
    "power3": PowerProbQueue3, "log": LogProbQueue, "log2": LogProbQueue2}


@dataclass(frozen=True)
class TradingConfig:
    """The trading side's models (module docstring); ``latency`` as the Replayer's
    ``latencies`` (ms per channel, or a model; None: its defaults), fees as fractions
    of notional, ``balance`` the starting balance of each account in its quote currency,
    ``depth`` the book depth the engines match against (the tutorial's 20)."""

    latency: LatencyModel | Mapping[Latencies | str, Any] | None = None
    maker_fee: Decimal | float = Decimal("0.0001")
    taker_fee: Decimal | float = Decimal("0.0003")
    balance: Decimal | float = Decimal(10_000)
    queue_model: QueueModel = field(default_factory=RiskAverseQueue)
    fill_model: FillModel = field(default_factory=PartialFills)
    depth: int = 20

    @property
    def latency_model(self) -> LatencyModel:
        return latency_model_from(self.latency)

    def desk_config(self, protocols: list[str]) -> DeskConfig:
        """The desk's models for ``protocols`` (one latency model for every protocol)."""
        model = self.latency_model
        fees = FeeSchedule(MakerTakerFees(Decimal(str(self.maker_fee)),
                                          Decimal(str(self.taker_fee))))
        return DeskConfig(dict.fromkeys(protocols, model), fees, Decimal(str(self.balance)),
                          self.queue_model, self.fill_model, self.depth)


def parse_latency(text: str | None) -> ConstantLatency | None:
    """``--latency``'s text as a constant latency model (None: the defaults)."""
    if text is None:
        return None
    try:
        if "=" not in text:
            return ConstantLatency(dict.fromkeys(
                [c for c in Latencies if c is not Latencies.NULL], Decimal(text)))
        pairs = [item.split("=", 1) for item in text.split(",") if item.strip()]
        return ConstantLatency({name.strip(): Decimal(value) for name, value in pairs})
    except (ArithmeticError, ValueError):
        raise ConfigError(f"bad --latency {text!r}: a number of ms, or CHANNEL=MS,... with "
                          f"channels {', '.join(c.value for c in Latencies)}") from None


def parse_queue_model(text: str | None) -> QueueModel:
    """``--queue-model``'s text as a queue model (None: risk averse)."""
    if text is None:
        return RiskAverseQueue()
    name, _, n = text.partition(":")
    make = _QUEUES.get(name)
    if make is None:
        raise ConfigError(f"unknown --queue-model {text!r}; known: {', '.join(_QUEUES)} "
                          "(power, power2 and power3 take :n)")
    try:
        return make(float(n)) if n else make()
    except (TypeError, ValueError):
        raise ConfigError(f"bad --queue-model {text!r}: only power, power2 and power3 take "
                          ":n, a number") from None
