"""What the replay needs to know about each book row, computed once per tape.

The matching engine and the feed delivery ask the same questions of every row of a
:class:`~makerlab.sim.timeline.BookTape`, per side: how many levels it shows, the lowest
and highest price, whether the levels are in book order (the engine then finds a level by
bisection) and whether the row is clean (delivered to a strategy's LOB without the
validating path). One compiled pass over the tape answers them all (:func:`book_rows`),
stopping its order checks at a row's padding, so a row costs the same few operations per
level whatever else reads it.

Definitions (per row and side; ``sign`` +1 for bids, -1 for asks):

- **count**: levels with a price (not NaN);
- **low**, **high**: the lowest and highest such price (NaN for an empty side);
- **ordered**: the priced levels come first (padding only at the end) and
  ``sign * (price[k-1] - price[k]) >= 0`` along them;
- **clean**: ordered, strictly (``> 0``), and every priced level has a positive finite
  price and size.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numba import njit

__all__ = ["BookRows", "SideRows", "book_rows"]


@dataclass(frozen=True, eq=False)
class SideRows:
    """The facts of one side, one entry per row (see the module docstring)."""

    count: np.ndarray
    low: np.ndarray
    high: np.ndarray
    ordered: np.ndarray
    clean: np.ndarray


@dataclass(frozen=True, eq=False)
class BookRows:
    """:class:`SideRows` of the bids and the asks of a tape."""

    bids: SideRows
    asks: SideRows

    def side(self, side: int) -> SideRows:
        """Bids for ``side=1``, asks for ``-1``."""
        return self.bids if side == 1 else self.asks


def book_rows(bid_price: np.ndarray, bid_size: np.ndarray, ask_price: np.ndarray,
              ask_size: np.ndarray) -> BookRows:
    """The facts of every row of ``(n, depth)`` level arrays."""
    return BookRows(_side_rows(bid_price, bid_size, 1), _side_rows(ask_price, ask_size, -1))


def _side_rows(prices: np.ndarray, sizes: np.ndarray, sign: int) -> SideRows:
    n = len(prices)
    count = np.zeros(n, np.int64)
    low, high = np.full(n, np.nan), np.full(n, np.nan)
    ordered, clean = np.zeros(n, np.bool_), np.zeros(n, np.bool_)
    if prices.shape[1:] != (0,) and n:
        _scan(np.asarray(prices, np.float64), np.asarray(sizes, np.float64), float(sign),
              count, low, high, ordered, clean)
    else:
        ordered[:], clean[:] = True, True
    return SideRows(count, low, high, ordered, clean)


@njit(cache=True)
def _scan(prices, sizes, sign, count, low, high, ordered, clean):  # pragma: no cover
    n, depth = prices.shape
    for i in range(n):
        mono, strict, good = True, True, True
        lo, hi, prev = np.inf, -np.inf, 0.0
        k = 0
        while k < depth and prices[i, k] == prices[i, k]:  # the priced run from the best
            x, y = prices[i, k], sizes[i, k]
            if k > 0:
                step = sign * (prev - x)
                mono = mono and step >= 0
                strict = strict and step > 0
            good = good and 0 < x < np.inf and 0 < y < np.inf
            lo, hi, prev = min(lo, x), max(hi, x), x
            k += 1
        total = k
        for j in range(k, depth):  # padding: a price after it breaks the book order
            x = prices[i, j]
            if x == x:
                total += 1
                lo, hi = min(lo, x), max(hi, x)
        padded = total == k
        count[i] = total
        if total:
            low[i], high[i] = lo, hi
        ordered[i] = mono and padded
        clean[i] = strict and padded and good
