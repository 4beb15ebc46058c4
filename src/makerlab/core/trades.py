"""The trade tape: a ring buffer of prints with order-flow statistics.

A trade is a row ``(ts, price, size, dir)``: ``ts`` in epoch ms, ``price`` in quote currency,
``size`` in base units, ``dir = +1`` for a taker buy and ``-1`` for a taker sell.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from makerlab.core.ringbuffer import RingBuffer, sample_slice
from makerlab.core.weights import simple_weights
from makerlab.errors import ConfigError, DataError, UnsortedData

TS, PRICE, SIZE, DIR = range(4)  # column indices of a trade row

DecayFunction = Callable[[np.ndarray], np.ndarray]


class Trades:
    """The last ``buffer_size`` trades, oldest first, with sampling and flow statistics.

    Samples are selected as in :func:`~makerlab.core.ringbuffer.sample_slice`: trades with
    ``ts <= T`` (``T`` defaults to the last trade's ts), then the last ``n`` of them or
    those with ``ts >= T - tau`` (ms).
    """

    def __init__(self, buffer_size: int = 100):
        self._ring = RingBuffer(buffer_size, float, (4,))
        self._pull: Callable[[], None] | None = None  # brings a lazily fed buffer up to date

    @property
    def _buffer(self) -> RingBuffer:
        """The trades buffer (first brought up to date when a replay fills it lazily)."""
        if self._pull is not None:
            self._pull()
        return self._ring

    def append(self, trade: Sequence[float] | None = None, ts: float | None = None,
               price: float | None = None, size: float | None = None,
               dir: int | None = None) -> None:
        """Add a trade, given as a 4-tuple ``trade`` or as the separate fields.

        Raises:
            ConfigError: a field is missing.
            DataError: ``dir`` is not +1/-1, or price/size is not positive and finite.
            UnsortedData: ``ts`` is earlier than the last trade's.
        """
        row = np.array(trade if trade is not None else (ts, price, size, dir), dtype=float)
        if row.shape != (4,) or np.isnan(row).any():
            raise ConfigError("pass trade=(ts, price, size, dir) or all four fields")
        self._check(row)
        self._buffer.append(row)

    def _check(self, row: np.ndarray) -> None:
        if row[DIR] not in (1.0, -1.0):
            raise DataError(f"trade dir must be +1 (taker buy) or -1 (taker sell), got {row[DIR]}")
        if not (np.isfinite(row[PRICE:DIR]).all() and row[PRICE] > 0 and row[SIZE] > 0):
            raise DataError(f"trade price and size must be positive, got {row.tolist()}")
        if len(self._buffer) and row[TS] < self._buffer.view()[-1, TS]:
            raise UnsortedData(f"trade at {row[TS]:.0f} ms is older than the last trade; "
                               "append trades in time order")

    def buffer_len(self) -> int:
        """Number of buffered trades."""
        return len(self._buffer)

    def clear_buffer(self) -> None:
        """Remove every buffered trade."""
        self._buffer.clear()

    def get_buffer(self) -> np.ndarray:
        """``(N, 4)`` float array of rows ``(ts, price, size, dir)``, oldest first."""
        return np.array(self._buffer.view())

    def get_ts_buffer(self) -> np.ndarray:
        """Timestamps (epoch ms) of the buffered trades."""
        return np.array(self._buffer.view()[:, TS])

    def _window(self, n: int | None, tau: float | None, T: float | None) -> slice:
        return sample_slice(self._buffer.view()[:, TS], n, tau, T)

    def get_sample(self, n: int | None = None, tau: float | None = None,
                   T: float | None = None) -> np.ndarray:
        """The selected trades as an ``(N, 4)`` array of rows ``(ts, price, size, dir)``."""
        if tau is None and T is None and type(n) is int and n >= 0:  # the last n trades
            return self._buffer.tail(n)
        return np.array(self._buffer.view()[self._window(n, tau, T)])

    def sample_len(self, n: int | None = None, tau: float | None = None,
                   T: float | None = None) -> int:
        """Number of trades ``n``/``tau``/``T`` select."""
        window = self._window(n, tau, T)
        return window.stop - window.start

    def _terminal(self, sample: np.ndarray, T: float | None) -> float:
        return T if T is not None and T >= 0 else sample[-1, TS]

    def get_imbalance(self, n: int | None = None, tau: float | None = None,
                      T: float | None = None, min_n: int = 10, default: float = 0,
                      decay_function: DecayFunction | None = None) -> float:
        """Signed-volume imbalance of the sample, in [-1, 1].

        ``sum(w * size * dir) / sum(w * size)`` with ``w = decay_function(T - ts)``, the
        trades' ages in ms (default :func:`~makerlab.core.weights.simple_weights`, i.e.
        equal weights). Returns ``default`` if the sample has fewer than ``min_n`` trades or
        all weights are zero.
        """
        sample = self.get_sample(n, tau, T)
        if len(sample) < max(min_n, 1):
            return default
        decay = decay_function or simple_weights
        weights = decay(self._terminal(sample, T) - sample[:, TS]) * sample[:, SIZE]
        total = weights.sum()
        return float(np.dot(weights, sample[:, DIR]) / total) if total > 0 else default

    def get_flow_pnl(self, n: int | None = None, tau: float | None = None,
                     T: float | None = None, min_n: int = 10, default: float = 0,
                     norm_volume: bool = True, norm_variance: bool = False) -> float:
        """P&L of a zero-fee counterparty (maker) to every trade in the sample.

        The counterparty of a trade takes the opposite side at the trade price, so marked at
        the sample's last trade price ``P`` it earns ``dir * size * (price - P)``. The result
        is the sum over the sample, in quote currency. With ``norm_volume`` it is divided by
        the sample's traded notional ``sum(price * size)`` (a fraction of notional traded),
        and then with ``norm_variance`` also by ``sqrt(number of trades)``. Returns
        ``default`` if the sample has fewer than ``min_n`` trades.
        """
        sample = self.get_sample(n, tau, T)
        if len(sample) < max(min_n, 1):
            return default
        price, size = sample[:, PRICE], sample[:, SIZE]
        pnl = float(np.sum(sample[:, DIR] * size * (price - price[-1])))
        if not norm_volume:
            return pnl
        pnl /= float(np.dot(price, size))
        return pnl / np.sqrt(len(sample)) if norm_variance else pnl

    def __repr__(self) -> str:
        return f"Trades(len={len(self._buffer)}, buffer_size={self._buffer.maxlen})"
