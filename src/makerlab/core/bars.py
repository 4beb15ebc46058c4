"""Trade-driven bars (candles): time, tick, volume, dollar, signed, distance, probabilistic.

A bar is a list ``[t, o, h, l, c, v, n, vwap, T]``: start time (ms), open, high, low, close
(quote currency), volume (base units), number of trades, volume-weighted average price and
the time of its last trade (ms). Feed trades ``(ts, price, size, dir)`` in time order to
:meth:`Bars.update`, which returns a bar when one finishes.

Roll rules (see ``docs/book.md``): a threshold bar finishes on the trade that reaches its
threshold, and that trade belongs to it. A time bar finishes when a trade arrives at or
after the end of its wall-clock interval; that trade opens the next bar.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from makerlab.core.ringbuffer import RingBuffer, sample_slice
from makerlab.errors import ConfigError, UnsortedData

COLUMNS = ("t", "o", "h", "l", "c", "v", "n", "vwap", "T")
T_START, OPEN, HIGH, LOW, CLOSE, VOLUME, N_TICKS, VWAP, T_END = range(9)
GRANULARITY_MS = {"s": 1_000, "m": 60_000, "h": 3_600_000, "d": 86_400_000}


def _positive(name: str, value: float) -> float:
    if not value > 0:
        raise ConfigError(f"{name} must be positive, got {value!r}")
    return value


class Bars:
    """Base class: builds bars and keeps the last ``buffer_size`` finished ones.

    Subclasses define when a bar rolls by overriding :meth:`_should_roll` (checked after a
    trade is added) or, for time bars, :meth:`_closes_before` (checked before).
    """

    def __init__(self, buffer_size: int = 100):
        self._buffer = RingBuffer(buffer_size, float, (len(COLUMNS),))
        self._bar: list[float] | None = None
        self._reset_flow()

    def _reset_flow(self) -> None:
        self._notional = 0.0  # sum(price * size)
        self._signed_ticks = 0.0  # sum(dir)
        self._signed_volume = 0.0  # sum(dir * size)
        self._signed_dollars = 0.0  # sum(dir * size * price)

    def update(self, trade: Sequence[float]) -> list[float] | None:
        """Add a trade ``(ts, price, size, dir)``; return the bar it finishes, if any.

        Raises:
            UnsortedData: the trade is older than the current bar's last trade.
        """
        ts, price, size, dir = (float(value) for value in trade)
        finished = None
        if self._bar is not None:
            if ts < self._bar[T_END]:
                raise UnsortedData(f"trade at {ts:.0f} ms is older than the current bar's "
                                   f"last trade ({self._bar[T_END]:.0f} ms)")
            if self._closes_before(ts):
                finished = self._finish()
        self._add(ts, price, size, dir)
        if self._should_roll(price):
            finished = self._finish()
        return finished

    def _add(self, ts: float, price: float, size: float, dir: float) -> None:
        if self._bar is None:
            self._bar = [self._open_time(ts), price, price, price, price, 0.0, 0.0, 0.0, ts]
        bar = self._bar
        bar[HIGH], bar[LOW], bar[CLOSE] = max(bar[HIGH], price), min(bar[LOW], price), price
        bar[VOLUME] += size
        bar[N_TICKS] += 1
        bar[T_END] = ts
        self._notional += price * size
        self._signed_ticks += dir
        self._signed_volume += dir * size
        self._signed_dollars += dir * size * price

    @property
    def _open(self) -> list[float]:
        """The bar being built (there is one whenever it is finished or a roll condition
        is asked)."""
        assert self._bar is not None
        return self._bar

    def _finish(self) -> list[float]:
        bar = self._open
        bar[VWAP] = self._notional / bar[VOLUME]
        self._on_finish(bar)
        self._buffer.append(bar)
        self._bar = None
        self._reset_flow()
        return bar

    # -- roll conditions: subclasses override these ---------------------------------------

    def _should_roll(self, price: float) -> bool:
        """Whether the current bar, including the trade just added, is finished."""
        return False

    def _closes_before(self, ts: float) -> bool:
        """Whether a trade at ``ts`` must go to a new bar (the current one finishes first)."""
        return False

    def _open_time(self, ts: float) -> float:
        """The start time ``t`` of a bar whose first trade is at ``ts``."""
        return ts

    def _on_finish(self, bar: list[float]) -> None:
        """Called with each finished bar before the flow accumulators reset."""

    # -- reading --------------------------------------------------------------------------

    def get_buffer(self) -> np.ndarray:
        """``(N, 9)`` array of the finished bars, oldest first."""
        return np.array(self._buffer.view())

    def as_df(self) -> pd.DataFrame:
        """The finished bars as a DataFrame with columns ``t, o, h, l, c, v, n, vwap, T``."""
        frame = pd.DataFrame(self.get_buffer(), columns=list(COLUMNS))
        return frame.astype({"n": "int64"})

    def buffer_len(self) -> int:
        """Number of finished bars buffered."""
        return len(self._buffer)

    def clear_buffer(self) -> None:
        """Forget the finished bars (the bar being built is kept)."""
        self._buffer.clear()

    def _window(self, n: int, tau: float, T: float) -> slice:
        return sample_slice(self._buffer.view()[:, T_END], n, tau, T)

    def get_sample(self, n: int = -1, tau: float = -1, T: float = -1) -> np.ndarray:
        """Finished bars selected by ``n``/``tau``/``T`` applied to each bar's end time."""
        return np.array(self._buffer.view()[self._window(n, tau, T)])

    def sample_len(self, n: int = -1, tau: float = -1, T: float = -1) -> int:
        """Number of finished bars ``n``/``tau``/``T`` select."""
        window = self._window(n, tau, T)
        return window.stop - window.start


class TimeBars(Bars):
    """Bars over wall-clock intervals of ``granularity_multiplier`` x ``granularity``.

    Intervals are aligned to the epoch (UTC): a 10 s bar covers ``[k*10000, (k+1)*10000)``
    ms, and ``t`` is the interval start. A bar finishes when the first trade at or after its
    interval's end arrives; that trade opens the next bar. Intervals without trades produce
    no bar, and the last bar finishes only when a later trade arrives.
    """

    def __init__(self, granularity: str = "s", granularity_multiplier: int = 10,
                 buffer_size: int = 100):
        if granularity not in GRANULARITY_MS:
            raise ConfigError(f"granularity must be one of {sorted(GRANULARITY_MS)}, "
                              f"got {granularity!r}")
        super().__init__(buffer_size)
        self.interval = GRANULARITY_MS[granularity] * _positive(
            "granularity_multiplier", granularity_multiplier)

    def _open_time(self, ts: float) -> float:
        return float(ts // self.interval * self.interval)

    def _closes_before(self, ts: float) -> bool:
        return ts >= self._open[T_START] + self.interval


class TickBars(Bars):
    """A bar finishes on its ``n_ticks``-th trade."""

    def __init__(self, n_ticks: int = 100, buffer_size: int = 100):
        super().__init__(buffer_size)
        self.n_ticks = _positive("n_ticks", n_ticks)

    def _should_roll(self, price: float) -> bool:
        return self._open[N_TICKS] >= self.n_ticks


class VolumeBars(Bars):
    """A bar finishes on the trade that brings its volume to ``n_volume`` (base units)."""

    def __init__(self, n_volume: float = 100, buffer_size: int = 100):
        super().__init__(buffer_size)
        self.n_volume = _positive("n_volume", n_volume)

    def _should_roll(self, price: float) -> bool:
        return self._open[VOLUME] >= self.n_volume


class DollarBars(Bars):
    """A bar finishes when its traded notional ``sum(price*size)`` reaches ``n_dollars``."""

    def __init__(self, n_dollars: float = 10_000, buffer_size: int = 100):
        super().__init__(buffer_size)
        self.n_dollars = _positive("n_dollars", n_dollars)

    def _should_roll(self, price: float) -> bool:
        return self._notional >= self.n_dollars


class SignedTickBars(Bars):
    """A bar finishes when ``|sum(dir)|`` over its trades reaches ``n_ticks``."""

    def __init__(self, n_ticks: int = 100, buffer_size: int = 100):
        super().__init__(buffer_size)
        self.n_ticks = _positive("n_ticks", n_ticks)

    def _should_roll(self, price: float) -> bool:
        return abs(self._signed_ticks) >= self.n_ticks


class SignedVolumeBars(Bars):
    """A bar finishes when ``|sum(dir*size)|`` over its trades reaches ``n_volume``."""

    def __init__(self, n_volume: float = 100, buffer_size: int = 100):
        super().__init__(buffer_size)
        self.n_volume = _positive("n_volume", n_volume)

    def _should_roll(self, price: float) -> bool:
        return abs(self._signed_volume) >= self.n_volume


class SignedDollarBars(Bars):
    """A bar finishes when ``|sum(dir*size*price)|`` over its trades reaches ``n_dollars``."""

    def __init__(self, n_dollars: float = 10_000, buffer_size: int = 100):
        super().__init__(buffer_size)
        self.n_dollars = _positive("n_dollars", n_dollars)

    def _should_roll(self, price: float) -> bool:
        return abs(self._signed_dollars) >= self.n_dollars


class DistanceBars(Bars):
    """A bar finishes on the trade priced at least ``percent`` (a fraction) from its open."""

    def __init__(self, percent: float = 0.005, buffer_size: int = 100):
        super().__init__(buffer_size)
        self.percent = _positive("percent", percent)

    def _should_roll(self, price: float) -> bool:
        return abs(price / self._open[OPEN] - 1) >= self.percent


class ProbabilisticSignedTickBars(Bars):
    """Tick-imbalance bars with an adaptive threshold.

    A bar finishes when ``|theta| >= n_ticks * E[b]``, where ``theta = sum(dir)`` over the
    bar's trades and ``E[b]`` (starting at ``Ebt``) estimates the absolute mean trade sign.
    After each bar of ``k`` trades, ``E[b] <- lamb * |theta / k| + (1 - lamb) * E[b]``.
    ``n_ticks`` is the expected number of trades per bar.
    """

    def __init__(self, lamb: float = 0.06, n_ticks: int = 100, Ebt: float = 0.5,
                 buffer_size: int = 100):
        if not 0 < lamb <= 1:
            raise ConfigError(f"lamb must be in (0, 1], got {lamb!r}")
        super().__init__(buffer_size)
        self.lamb = lamb
        self.n_ticks = _positive("n_ticks", n_ticks)
        self.expected_imbalance = _positive("Ebt", Ebt)

    @property
    def threshold(self) -> float:
        """The current roll threshold ``n_ticks * E[b]`` on ``|sum(dir)|``."""
        return self.n_ticks * self.expected_imbalance

    def _should_roll(self, price: float) -> bool:
        return abs(self._signed_ticks) >= self.threshold

    def _on_finish(self, bar: list[float]) -> None:
        mean_sign = abs(self._signed_ticks / bar[N_TICKS])
        self.expected_imbalance = self.lamb * mean_sign + (1 - self.lamb) * self.expected_imbalance
