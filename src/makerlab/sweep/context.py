"""What a script sees of the sweep configuration it runs in.

A script declares its sweepable strategy parameters once, at module level::

    from makerlab import params
    PARAMS = params(order_value=200, spread_bps=6)

Run on its own (``python script.py 0``), :func:`params` returns the defaults. Run by
``makerlab sweep``, it returns them with the configuration's values in their place, and
every :class:`~makerlab.sim.Replayer` the script builds takes the configuration's Replayer
arguments (fees, latencies, seed, queue model ...; see :mod:`makerlab.sweep.replayer_args`)
in place of the script's own, and is remembered so the sweep can read its statistics.

The active configuration is process state: a sweep worker runs one configuration at a time
(:func:`activated` sets and clears it around the script).
"""

from __future__ import annotations

import difflib
import functools
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from makerlab.errors import ConfigError

__all__ = ["ActiveRun", "activated", "params", "sweepable"]


@dataclass
class ActiveRun:
    """The configuration a worker is running.

    Attributes:
        strategy: strategy parameter overrides, by name (the script's :func:`params`).
        replayer: Replayer keyword overrides, as Replayer arguments (objects, not text).
        reserved: names that are Replayer parameters (a script may not declare them).
        declared: what the script's :func:`params` call returned (None: never called).
        replayers: every Replayer the script built, in order.
    """

    strategy: dict[str, Any]
    replayer: dict[str, Any]
    reserved: frozenset[str] = frozenset()
    declared: dict[str, Any] | None = None
    replayers: list[Any] = field(default_factory=list)


_active: ActiveRun | None = None


@contextmanager
def activated(run: ActiveRun) -> Iterator[ActiveRun]:
    """Make ``run`` the active configuration for the duration of the block."""
    global _active
    if _active is not None:
        raise ConfigError("a sweep configuration is already running in this process")
    _active = run
    try:
        yield run
    finally:
        _active = None


def params(**defaults: Any) -> dict[str, Any]:
    """The script's strategy parameters: ``defaults``, overridden inside a sweep.

    Call it once, at module level, with every parameter a sweep may vary and its default
    value; read the values from the returned dict where the strategy uses them.

    Raises:
        ConfigError: inside a sweep, when the sweep sets a name the script does not
            declare (with the closest declared names), or when the script declares a name
            reserved for a Replayer argument (``seed``, ``maker_fees``, ...).
    """
    values = dict(defaults)
    if _active is None:
        return values
    clash = sorted(set(defaults) & _active.reserved)
    if clash:
        raise ConfigError(f"params(): {', '.join(clash)} name Replayer arguments in a sweep; "
                          "give the strategy parameters other names")
    unknown = sorted(set(_active.strategy) - set(defaults))
    if unknown:
        raise ConfigError(f"the sweep sets {', '.join(map(repr, unknown))}, which the script's "
                          f"params() does not declare{_did_you_mean(unknown[0], defaults)}")
    values.update(_active.strategy)
    _active.declared = values
    return values


def _did_you_mean(name: str, names: Mapping[str, Any]) -> str:
    close = difflib.get_close_matches(name, list(names), n=3)
    declared = f" (declared: {', '.join(names) or 'none'})"
    return f"; did you mean {' or '.join(map(repr, close))}?" if close else declared


def sweepable(configure: Callable[..., None]) -> Callable[..., None]:
    """Decorate ``Replayer._configure`` (the one path every construction takes): inside a
    sweep the configuration's Replayer arguments replace the script's, and the Replayer
    is recorded for the sweep; outside a sweep nothing changes."""

    @functools.wraps(configure)
    def wrapper(replayer: Any, books: Any, trades: Any, **options: Any) -> None:
        run = _active
        if run is None:
            configure(replayer, books, trades, **options)
            return
        configure(replayer, books, trades, **_merged(options, run.replayer))
        run.replayers.append(replayer)

    return wrapper


def _merged(options: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    """The script's Replayer options with the sweep's in their place; latency channels
    merge into the script's latency dict, and ``run_dir`` is dropped (the sweep saves)."""
    out = {**options, "run_dir": None}
    for name, value in overrides.items():
        if name == "latencies":
            out[name] = _merged_latencies(options.get("latencies"), value)
        else:
            out[name] = value
    return out


def _merged_latencies(script: Any, channels: dict[Any, Any]) -> dict[Any, Any]:
    if script is not None and not isinstance(script, Mapping):
        raise ConfigError("the script passes a latency model to the Replayer; latency "
                          "parameters of a sweep need a dict of ms per channel")
    return {**(script or {}), **channels}
