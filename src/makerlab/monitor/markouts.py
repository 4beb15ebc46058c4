"""Markouts of the latest fills, from the mids the page samples.

Rules:

- **mids are sampled with each snapshot**: per market, ``(time ns, mid)`` of the Feed's
  book at that time, the last ``keep`` of them.
- **a markout is due** once a sample at or after ``fill time + horizon`` exists; its
  value is ``side * (that sample's mid - fill price) / fill price`` in basis points,
  computed once and kept. A sample more than ``slack_ns`` past the due time (the page
  started late, the book was empty) gives no value: ``None`` for good.
"""

from __future__ import annotations

import bisect
from collections import deque
from collections.abc import Sequence

from makerlab.core.events import Fill

__all__ = ["Markouts"]

_PENDING = object()


class Markouts:
    """Sampled mids per market and the markouts of fills (module rules)."""

    def __init__(self, horizons_s: Sequence[float], keep: int, slack_ns: int) -> None:
        self.horizons_ns = [int(h * 1e9) for h in horizons_s]
        self.keep, self.slack_ns = keep, slack_ns
        self._times: dict[tuple[str, str], deque[int]] = {}
        self._mids: dict[tuple[str, str], deque[float]] = {}
        self._done: dict[tuple[str, str, str], list[object]] = {}

    def sample(self, market: tuple[str, str], now_ns: int, mid: float | None) -> None:
        """Record ``market``'s mid at ``now_ns`` (nothing for an unknown mid)."""
        if mid is None:
            return
        times = self._times.get(market)
        if times is None:
            times = self._times[market] = deque(maxlen=self.keep)
            self._mids[market] = deque(maxlen=self.keep)
        times.append(now_ns)
        self._mids[market].append(mid)

    def of(self, fill: Fill) -> tuple[float | None, ...]:
        """The markouts of ``fill`` at each horizon (``None`` while not due)."""
        key = (fill.exchange, fill.symbol, fill.trade_id)
        done = self._done.get(key)
        if done is None:
            done = self._done[key] = [_PENDING] * len(self.horizons_ns)
        for i, horizon in enumerate(self.horizons_ns):
            if done[i] is _PENDING:
                done[i] = self._value(fill, fill.local_ts + horizon)
        return tuple(None if v is _PENDING else v for v in done)  # type: ignore[misc]

    def _value(self, fill: Fill, due_ns: int) -> object:
        market = (fill.exchange, fill.symbol)
        times = self._times.get(market)
        if not times or times[-1] < due_ns:
            return _PENDING
        i = bisect.bisect_left(times, due_ns)
        if times[i] - due_ns > self.slack_ns:
            return None
        price = float(fill.price)
        return fill.side * (self._mids[market][i] - price) / price * 1e4

    def forget_except(self, fills: Sequence[Fill]) -> None:
        """Drop the kept markouts of fills no longer shown."""
        shown = {(f.exchange, f.symbol, f.trade_id) for f in fills}
        for key in [k for k in self._done if k not in shown]:
            del self._done[key]
