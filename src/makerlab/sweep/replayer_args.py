"""Sweep parameters that are Replayer arguments, and how their values become arguments.

- ``maker_fees``, ``taker_fees``: the same Replayer arguments, fractions of notional
  (a negative maker fee is a rebate);
- ``seed``, ``balance`` (quote currency per exchange), ``stamp_cycle`` (ms): the same;
- ``latency``: ``latencies`` with every channel at this many ms;
- ``latencies.<channel>`` (``req_private``, ``ack_private``, ``feed_public``, ...): that
  channel of ``latencies``, in ms;
- ``queue_model``: ``risk_averse``, ``power``, ``power2``, ``power3`` (optionally
  ``:n``, e.g. ``power:3``), ``log`` or ``log2`` (:mod:`makerlab.sim.queue`);
- ``fill_model``: ``partial`` or ``no_partial`` (:mod:`makerlab.sim.matching`).

Latency parameters merge into the script's own ``latencies`` dict (channels not swept keep
the script's values). Every other parameter name is a strategy parameter the script
declares with :func:`makerlab.params`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from makerlab.errors import ConfigError

__all__ = ["LATENCY_PREFIX", "is_replayer_param", "replayer_options", "reserved_names"]

LATENCY_PREFIX = "latencies."
_CHANNELS = ("req_public", "req_private", "ack_public", "ack_private", "feed_public",
             "feed_private")


def _number(kind: type) -> Callable[[Any], Any]:
    def convert(value: Any) -> Any:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(f"expected a number, got {value!r}")
        if kind is int and value != int(value):
            raise ConfigError(f"expected an integer, got {value!r}")
        return kind(value)

    return convert


def _queue_model(value: Any) -> Any:
    from makerlab.sim import queue

    name, _, n = str(value).partition(":")
    models = {"risk_averse": queue.RiskAverseQueue, "power": queue.PowerProbQueue,
              "power2": queue.PowerProbQueue2, "power3": queue.PowerProbQueue3,
              "log": queue.LogProbQueue, "log2": queue.LogProbQueue2}
    if name not in models:
        raise ConfigError(f"unknown queue model {value!r}; expected one of {sorted(models)}")
    if not n:
        return models[name]()
    if not name.startswith("power"):
        raise ConfigError(f"queue model {name!r} takes no ':n'")
    return models[name](float(n))


def _fill_model(value: Any) -> Any:
    from makerlab.sim.matching import NoPartialFills, PartialFills

    models = {"partial": PartialFills, "no_partial": NoPartialFills}
    if value not in models:
        raise ConfigError(f"unknown fill model {value!r}; expected partial or no_partial")
    return models[value]()


_CONVERTERS: dict[str, Callable[[Any], Any]] = {
    "maker_fees": _number(float), "taker_fees": _number(float), "seed": _number(int),
    "balance": _number(float), "stamp_cycle": _number(int), "queue_model": _queue_model,
    "fill_model": _fill_model,
}


def reserved_names() -> frozenset[str]:
    """Every sweep parameter name that is a Replayer argument."""
    return frozenset([*_CONVERTERS, "latency", *(LATENCY_PREFIX + c for c in _CHANNELS)])


def is_replayer_param(name: str) -> bool:
    """Whether ``name`` is a Replayer parameter (rather than a strategy parameter)."""
    return name in reserved_names() or name.startswith(LATENCY_PREFIX)


def replayer_options(values: Mapping[str, Any]) -> dict[str, Any]:
    """Replayer keyword arguments from the Replayer parameters among ``values``.

    Raises:
        ConfigError: a value that does not fit its parameter, or an unknown channel.
    """
    options: dict[str, Any] = {}
    latencies: dict[Any, float] = {}
    for name, value in values.items():
        try:
            if name in _CONVERTERS:
                options[name] = _CONVERTERS[name](value)
            elif name == "latency":
                latencies.update(dict.fromkeys(_channels(_CHANNELS), _ms(value)))
            elif name.startswith(LATENCY_PREFIX):
                latencies[_channels([name.removeprefix(LATENCY_PREFIX)])[0]] = _ms(value)
        except (ConfigError, ValueError) as error:
            raise ConfigError(f"sweep parameter {name}: {error}") from None
    if latencies:
        options["latencies"] = latencies
    return options


def _channels(names: Any) -> list[Any]:
    from makerlab.sim.latency import Latencies

    unknown = [n for n in names if n not in _CHANNELS]
    if unknown:
        raise ConfigError(f"unknown latency channel {unknown[0]!r}; expected one of "
                          f"{', '.join(_CHANNELS)}")
    return [Latencies(n) for n in names]


def _ms(value: Any) -> float:
    ms = _number(float)(value)
    if ms < 0:
        raise ConfigError(f"latency must be >= 0 ms, got {value!r}")
    return ms
