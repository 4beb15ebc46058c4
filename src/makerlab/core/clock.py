"""Clocks: where a strategy's time comes from.

A strategy never reads the wall clock itself; it asks the clock of the venue it runs on.
:class:`ReplayClock` is the replay engine's simulated time (set by the event loop),
:class:`WallClock` the machine's real time for live trading. Both count int64
nanoseconds since the Unix epoch inside; :meth:`Clock.ms` is the tutorial's millisecond
``time()``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from makerlab.units import NS_PER_MS

__all__ = ["Clock", "ReplayClock", "WallClock", "default_clock", "use_clock"]


@runtime_checkable
class Clock(Protocol):
    """Local time: ``now_ns()`` in ns and ``ms()`` in whole milliseconds."""

    def now_ns(self) -> int: ...

    def ms(self) -> int: ...


@dataclass(slots=True)
class ReplayClock:
    """Simulated time, advanced by the replay loop (``ns`` is writable)."""

    ns: int = 0

    def now_ns(self) -> int:
        return self.ns

    def ms(self) -> int:
        return self.ns // NS_PER_MS


class WallClock:
    """The machine's real time (``time.time_ns``)."""

    __slots__ = ()

    def now_ns(self) -> int:
        return time.time_ns()

    def ms(self) -> int:
        return time.time_ns() // NS_PER_MS


_default: list[Clock] = [WallClock()]


def default_clock() -> Clock:
    """The process's clock for code that has no venue to ask (the tutorial's ``_time()``):
    the wall clock, unless a Gateway in lockstep with a paper exchange installed its
    data-driven clock (:func:`use_clock`)."""
    return _default[0]


def use_clock(clock: Clock | None) -> None:
    """Make ``clock`` the process's default clock (None: the wall clock again)."""
    _default[0] = clock if clock is not None else WallClock()
