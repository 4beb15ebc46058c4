"""Our resting orders on one side of one instrument, indexed by price level.

The matching engine asks three questions on every book row and print, and each must cost
the levels it concerns, not the number of orders resting:

- which orders a price *reaches* (best level first: the ones a print or the opposite
  best price can fill);
- which of our levels lie within a price window (the displayed book's span);
- which levels are *marked*: their orders' queue state depends on the next book row
  (they were displayed at their last update, or a print reached them since).

Prices are the orders' limit prices as floats (``SimOrder.px``), the same floats the
matching rules compare; orders at one price keep their arrival order and are found by
their arrival rank (``SimOrder.seq``), so taking any of them out is O(1) in the level.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from makerlab.sim.matching import SimOrder

__all__ = ["RestingSide"]


class RestingSide:
    """The resting orders of one side (``side``: +1 bids, -1 asks) by price level."""

    def __init__(self, side: int) -> None:
        self.side = side
        self._prices: list[float] = []  # ascending, one per level
        self._levels: dict[float, dict[int, SimOrder]] = {}  # price -> seq -> order
        self.marked: set[float] = set()

    def __len__(self) -> int:
        return len(self._prices)

    def add(self, order: SimOrder) -> None:
        """Put ``order`` (its ``seq`` set) at the back of its price level."""
        px = order.px
        level = self._levels.get(px)
        if level is None:
            bisect.insort(self._prices, px)
            self._levels[px] = {order.seq: order}
        else:
            level[order.seq] = order

    def remove(self, order: SimOrder) -> None:
        """Take ``order`` out (its level goes when it empties)."""
        px = order.px
        level = self._levels[px]
        del level[order.seq]
        if not level:
            del self._levels[px]
            del self._prices[bisect.bisect_left(self._prices, px)]
            self.marked.discard(px)

    def levels(self) -> Iterable[tuple[float, Iterable[SimOrder]]]:
        """``(price, its orders in arrival order)`` of every level, ascending."""
        return ((px, self._levels[px].values()) for px in self._prices)

    def orders_at(self, px: float) -> Iterable[SimOrder]:
        """The orders at ``px`` in arrival order (none if no level)."""
        level = self._levels.get(px)
        return () if level is None else level.values()

    def best(self) -> float:
        """Our best price on this side (``nan`` if no order rests)."""
        prices = self._prices
        if not prices:
            return float("nan")
        return prices[-1] if self.side == 1 else prices[0]

    def reaches(self, ref: float, half_tick: float) -> bool:
        """Whether our best price reaches ``ref`` (see :meth:`reached`)."""
        prices = self._prices
        if not prices:
            return False
        return self.side * ((prices[-1] if self.side == 1 else prices[0]) - ref) > -half_tick

    def reached(self, ref: float, half_tick: float) -> list[SimOrder]:
        """Orders whose price reaches ``ref``: ``side * (px - ref) > -half_tick``, best level
        first, arrival order within a level. Float subtraction is monotonic in ``px``, so
        these levels are a run from our best price and the scan stops at the first miss."""
        out: list[SimOrder] = []
        if not self.reaches(ref, half_tick):
            return out
        for px in self._from_best():
            if not self.side * (px - ref) > -half_tick:
                break
            out.extend(self._levels[px].values())
        return out

    def within(self, low: float, high: float) -> list[float]:
        """Our level prices in ``[low, high]``, ascending."""
        lo = bisect.bisect_left(self._prices, low)
        return self._prices[lo:bisect.bisect_right(self._prices, high)]

    def _from_best(self) -> Iterator[float]:
        return reversed(self._prices) if self.side == 1 else iter(self._prices)
