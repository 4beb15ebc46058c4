"""The replay's models as plain dicts: what a run records, and what rebuilds it.

Every model the simulator takes (latency: :mod:`makerlab.sim.latency`; queue position:
:mod:`makerlab.sim.queue`; fills: :class:`~makerlab.sim.matching.PartialFills` /
:class:`~makerlab.sim.matching.NoPartialFills`; fees: :mod:`makerlab.sim.fees`; the risk
limits: :class:`~makerlab.trading.risk.RiskLimits`) is a frozen
dataclass whose init fields are its parameters. Rules:

- **a model is its type and parameters**: :func:`to_config` gives
  ``{"type": class name, **fields}`` in JSON types (``Decimal`` as ``str``, so rates stay
  exact; arrays as lists; channel keys as their values; a model inside a model as its own
  dict), e.g. ``{"type": "LognormalLatency", "median_ms": {"req_private": 5},
  "sigma": {"req_private": 0.5}, "seed": 0}``.
- **a config rebuilds its model**: :func:`from_config` of a built-in model's dict gives a
  model equal to it (seeded models start their random streams afresh, as a new run does).
- **other models are recorded, not rebuilt**: a user's model is recorded under its
  qualified name, by its fields if it is a dataclass, else by its ``repr``;
  :func:`from_config` refuses it with :class:`~makerlab.errors.ConfigError`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from decimal import Decimal
from enum import Enum
from typing import Any

import numpy as np

from makerlab.errors import ConfigError
from makerlab.sim.fees import FeeSchedule, MakerTakerFees
from makerlab.sim.latency import ConstantLatency, LognormalLatency, ReplayedLatency
from makerlab.sim.matching import NoPartialFills, PartialFills
from makerlab.sim.queue import (
    LogProbQueue,
    LogProbQueue2,
    PowerProbQueue,
    PowerProbQueue2,
    PowerProbQueue3,
    RiskAverseQueue,
)
from makerlab.trading.risk import RiskLimits

__all__ = ["MODELS", "from_config", "to_config"]

#: The built-in models :func:`from_config` rebuilds, by class name.
MODELS: Mapping[str, type] = {cls.__name__: cls for cls in (
    ConstantLatency, LognormalLatency, ReplayedLatency, RiskAverseQueue, PowerProbQueue,
    PowerProbQueue2, PowerProbQueue3, LogProbQueue, LogProbQueue2, PartialFills,
    NoPartialFills, MakerTakerFees, FeeSchedule, RiskLimits)}


def to_config(model: Any) -> dict[str, Any]:
    """``model`` as ``{"type": ..., **parameters}`` in JSON types (see the module)."""
    cls = type(model)
    name = cls.__name__ if MODELS.get(cls.__name__) is cls else (
        f"{cls.__module__}.{cls.__qualname__}")
    if not dataclasses.is_dataclass(model):
        return {"type": name, "repr": repr(model)}
    params = {f.name: _plain(getattr(model, f.name)) for f in dataclasses.fields(model)
              if f.init}
    return {"type": name, **params}


def from_config(config: Mapping[str, Any]) -> Any:
    """The built-in model ``config`` describes (:func:`to_config`'s inverse)."""
    params = dict(config)
    name = params.pop("type", None)
    cls = MODELS.get(name) if isinstance(name, str) else None
    if cls is None:
        raise ConfigError(f"cannot rebuild a model of type {name!r}; built-in models: "
                          f"{', '.join(MODELS)}")
    try:
        return cls(**{k: _rebuilt(v) for k, v in params.items()})
    except TypeError as exc:
        raise ConfigError(f"{name}: {exc}") from None


def _plain(value: Any) -> Any:
    """``value`` in JSON types; an object of no JSON-like type is a model."""
    if value is None or isinstance(value, bool | int | float | str):
        return value.value if isinstance(value, Enum) else value
    if isinstance(value, Mapping):
        return {_plain(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple | np.ndarray):
        return [_plain(v) for v in value]
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, np.generic):
        return value.item()
    return to_config(value)


def _rebuilt(value: Any) -> Any:
    if isinstance(value, Mapping):
        if "type" in value:
            return from_config(value)
        return {k: _rebuilt(v) for k, v in value.items()}
    return value
