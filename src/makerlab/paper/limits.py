"""Request budgets of the paper exchange's private protocols, counted in venue time.

A :class:`Budget` counts what an account spent in the current fixed window of venue time
(the market's exchange time, or the lockstep's virtual time): windows start at multiples
of their span, as the venues' per-minute counters reset on the minute. A request that
would pass the limit is refused with the venue's error and spends nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["Budget"]


@dataclass
class Budget:
    """``limit`` per ``span_ns`` of venue time; ``used`` in the window of ``window``."""

    limit: int
    span_ns: int
    used: int = 0
    window: int = field(default=-1)

    def count(self, now_ns: int) -> int:
        """What is spent in the window holding ``now_ns``."""
        return self.used if now_ns // self.span_ns == self.window else 0

    def allows(self, now_ns: int, weight: int = 1) -> bool:
        return self.count(now_ns) + weight <= self.limit

    def spend(self, now_ns: int, weight: int = 1) -> int:
        """Spend ``weight`` now; the window's total after it."""
        window = now_ns // self.span_ns
        if window != self.window:
            self.window, self.used = window, 0
        self.used += weight
        return self.used

    def reset_ns(self, now_ns: int) -> int:
        """When the window holding ``now_ns`` ends."""
        return (now_ns // self.span_ns + 1) * self.span_ns
