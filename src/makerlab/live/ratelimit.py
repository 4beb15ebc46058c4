"""What a venue says about our request budget: one :class:`RateLimitState` per exchange.

The private clients feed it; the risk layer reads it (``LiveOrderVenue.rate_limits``).

- **reported usage** comes from the venue where it reports it: Binance
  ``X-MBX-USED-WEIGHT-1M`` / ``X-MBX-ORDER-COUNT-10S`` / ``-1M`` headers and the WS API's
  ``rateLimits`` array, Bybit ``X-Bapi-Limit`` / ``-Status`` / ``-Reset-Timestamp``. Each
  observation replaces the previous one of that name.
- **counted usage** is kept here for venues that report nothing (Hyperliquid, Paradex,
  WOO X): each call spends its documented weight in a fixed window
  (:meth:`RateLimitState.spend`).
- **a refusal for rate** (HTTP 429/418, Bybit ``retCode 10006``, ...) sets
  ``retry_at_ns``; :meth:`RateLimitState.retry_after` says how long remains.
- **headroom is what is left of the tightest current budget**: :meth:`RateLimitState.
  headroom` is the smallest ``1 - used / limit`` among budgets with a known limit that
  are still current: before their ``reset_ns`` where the venue gave one, else within the
  window their name ends with (``_10s``, ``_1m``, ``_1s``...; a name without one counts
  for 60 s after it was observed). 1.0 when no budget is current.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from makerlab.units import NS_PER_S

__all__ = ["Observation", "RateLimitState", "Usage"]

_WINDOW = re.compile(r"_(\d+)([smhd])$")
_UNIT_S = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_DEFAULT_WINDOW_S = 60


@dataclass(frozen=True, slots=True)
class Observation:
    """One budget as a venue reports it: ``used`` of ``limit`` (``None`` = unknown) in the
    window named ``name`` (``weight_1m``, ``orders_10s``, ``order_create`` ...); ``reset_ns``
    is when the window resets, if the venue says."""

    name: str
    used: int
    limit: int | None = None
    reset_ns: int | None = None


@dataclass(slots=True)
class Usage:
    """The latest state of one budget; ``window_ns`` is set for counted budgets."""

    used: int
    limit: int | None
    updated_ns: int
    reset_ns: int | None = None
    window_ns: int = 0

    @property
    def remaining(self) -> int | None:
        return None if self.limit is None else self.limit - self.used


@dataclass(slots=True)
class RateLimitState:
    """Every known budget of one exchange (rules in the module docstring)."""

    exchange: str
    usage: dict[str, Usage] = field(default_factory=dict)
    retry_at_ns: int | None = None

    def observe(self, observations: list[Observation], now_ns: int) -> None:
        for o in observations:
            self.usage[o.name] = Usage(o.used, o.limit, now_ns, o.reset_ns)

    def spend(self, name: str, weight: int, limit: int, window_s: float, now_ns: int) -> None:
        """Count ``weight`` against a budget of ``limit`` per ``window_s`` seconds."""
        window_ns = int(window_s * NS_PER_S)
        usage = self.usage.get(name)
        if usage is None or usage.reset_ns is None or now_ns >= usage.reset_ns:
            usage = Usage(0, limit, now_ns, now_ns + window_ns, window_ns)
            self.usage[name] = usage
        usage.used += weight
        usage.updated_ns = now_ns

    def limited(self, retry_after_s: float | None, now_ns: int) -> None:
        """The venue refused a call for rate; wait ``retry_after_s`` (60 s if unknown)."""
        wait = 60.0 if retry_after_s is None else retry_after_s
        self.retry_at_ns = now_ns + int(wait * NS_PER_S)

    def retry_after(self, now_ns: int) -> float:
        """Seconds until the venue said calls may resume (0 when they may)."""
        if self.retry_at_ns is None or now_ns >= self.retry_at_ns:
            return 0.0
        return (self.retry_at_ns - now_ns) / NS_PER_S

    def headroom(self, now_ns: int) -> float:
        """The fraction left of the tightest current budget (see the module docstring)."""
        left = [1 - usage.used / usage.limit for name, usage in self.usage.items()
                if usage.limit and _current(name, usage, now_ns)]
        return max(0.0, min(left, default=1.0))


def _current(name: str, usage: Usage, now_ns: int) -> bool:
    if usage.reset_ns is not None:
        return now_ns < usage.reset_ns
    match = _WINDOW.search(name)
    window_s = int(match[1]) * _UNIT_S[match[2]] if match else _DEFAULT_WINDOW_S
    return now_ns < usage.updated_ns + window_s * NS_PER_S
