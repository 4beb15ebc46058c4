"""Fault injection for the paper exchange: seeded, deterministic, counted.

A :class:`FaultSpec` gives each fault a probability. Stream faults are drawn once per
market-data message a websocket session sends (acks, pongs and errors are never faulted),
from that session's own random generator (seeded by ``seed``, the protocol and the
session's number), so the same client behaviour meets the same faults. At most one fault
hits a message; the stream probabilities must therefore sum to at most 1.

- ``drop``: the message is never sent.
- ``duplicate``: the message is sent twice.
- ``reorder``: the message is held back and sent right after the next one.
- ``gap``: the message's update ids jump as if one message's worth of ids had been
  skipped (the protocol says how; streams without ids, such as Hyperliquid's full
  snapshots or trades, are not hit).
- ``disconnect``: instead of the message, the server closes the websocket.
- ``stale_snapshot``: drawn per REST book request (not per stream message): the book
  returned is the one of a few messages (2 to :data:`STALE_MAX`) before the stream position.

Every injected fault is logged (logger ``makerlab.paper.faults``, INFO) and counted by
kind in :class:`FaultLog`.
"""

from __future__ import annotations

import logging
import random
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, fields
from typing import Any, Generic, TypeVar

from makerlab.errors import ConfigError

__all__ = ["STALE_MAX", "STREAM_FAULTS", "FaultInjector", "FaultLog", "FaultSpec"]

log = logging.getLogger(__name__)

T = TypeVar("T")
STREAM_FAULTS = ("drop", "duplicate", "reorder", "gap", "disconnect")
STALE_MAX = 10


@dataclass(frozen=True)
class FaultSpec:
    """Per-message fault probabilities and the seed (see the module docstring)."""

    drop: float = 0.0
    duplicate: float = 0.0
    reorder: float = 0.0
    gap: float = 0.0
    disconnect: float = 0.0
    stale_snapshot: float = 0.0
    seed: int = 0

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name != "seed" and not 0.0 <= value <= 1.0:
                raise ConfigError(f"fault {f.name}={value} is not a probability in [0, 1]")
        if sum(getattr(self, k) for k in STREAM_FAULTS) > 1.0:
            raise ConfigError(f"the stream fault probabilities ({', '.join(STREAM_FAULTS)}) "
                              "must sum to at most 1")

    @classmethod
    def parse(cls, text: str | None) -> FaultSpec:
        """``"drop=0.01,gap=0.005,seed=7"`` (empty or None: no faults)."""
        if not text:
            return cls()
        known = {f.name for f in fields(cls)}
        values: dict[str, Any] = {}
        for item in text.split(","):
            name, sep, value = item.strip().partition("=")
            if not sep or name not in known:
                raise ConfigError(f"bad fault {item.strip()!r}: expected NAME=VALUE with NAME "
                                  f"one of {', '.join(sorted(known))}")
            try:
                values[name] = int(value) if name == "seed" else float(value)
            except ValueError:
                raise ConfigError(f"bad fault value {item.strip()!r}: not a number") from None
        return cls(**values)

    def __str__(self) -> str:
        parts = [f"{f.name}={getattr(self, f.name)}" for f in fields(self)
                 if f.name != "seed" and getattr(self, f.name)]
        return ",".join([*parts, f"seed={self.seed}"]) if parts else "none"

    def rng(self, *scope: object) -> random.Random:
        """A generator seeded by ``seed`` and ``scope`` (e.g. protocol and session number)."""
        return random.Random("/".join(map(str, (self.seed, *scope))))


class FaultLog:
    """Counts of injected faults by kind; every fault is also logged."""

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()

    def record(self, kind: str, where: str, what: str) -> None:
        self.counts[kind] += 1
        log.info("fault %s: %s %s", kind, where, what)

    def summary(self) -> str:
        if not self.counts:
            return "faults injected: none"
        return "faults injected: " + " ".join(f"{k}={n}" for k, n in sorted(self.counts.items()))


class FaultInjector(Generic[T]):
    """The stream faults of one websocket session (items of type ``T``).

    :meth:`route` turns each outgoing item into what to send now; ``data`` tells
    market-data items (faulted) from control replies (passed through).
    """

    def __init__(self, spec: FaultSpec, faults: FaultLog, where: str,
                 rng: random.Random) -> None:
        self._spec = spec
        self._log = faults
        self._where = where
        self._rng = rng
        self._held: T | None = None
        self._cumulative = _cumulative(spec)

    def route(self, item: T, data: bool, what: str,
              gap: Callable[[T], T | None]) -> list[T] | None:
        """Items to send now for ``item`` (None: close the connection instead)."""
        if not data or not self._cumulative:
            return [item]
        kind = self._draw()
        out = self._apply(kind, item, gap)
        if out is None:  # a gap on a message without ids: not applicable
            kind, out = None, [item]
        if kind is not None:
            self._log.record(kind, self._where, what)
        if kind == "disconnect":
            return None
        if self._held is not None and kind != "reorder":
            out, self._held = [*out, self._held], None
        return out

    def _apply(self, kind: str | None, item: T, gap: Callable[[T], T | None]) -> list[T] | None:
        if kind in ("drop", "disconnect"):
            return []
        if kind == "duplicate":
            return [item, item]
        if kind == "gap":
            bumped = gap(item)
            return None if bumped is None else [bumped]
        if kind == "reorder":
            self._held = item
            return []
        return [item]

    def _draw(self) -> str | None:
        x = self._rng.random()
        for kind, upper in self._cumulative:
            if x < upper:
                return None if kind == "reorder" and self._held is not None else kind
        return None

    def stale_back(self) -> int:
        """Messages to step back for one REST book request (0: the current book)."""
        if self._rng.random() >= self._spec.stale_snapshot:
            return 0
        back = self._rng.randint(2, STALE_MAX)
        self._log.record("stale_snapshot", self._where, f"{back} messages back")
        return back


def _cumulative(spec: FaultSpec) -> list[tuple[str, float]]:
    """``(kind, upper bound)`` intervals of [0, 1) for the stream faults that can happen."""
    bounds, total = [], 0.0
    for kind in STREAM_FAULTS:
        p = getattr(spec, kind)
        if p > 0:
            total += p
            bounds.append((kind, total))
    return bounds
