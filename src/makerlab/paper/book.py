"""The paper exchange's price-level book: full depth, sorted, with undo for stale snapshots.

A side keeps ``price -> size`` in a dict and the prices in a sorted list (bisect), so a
level update costs a dict store plus a list insert/delete, and the top ``n`` levels are a
slice. Bids are kept under the key ``-price`` so both sides read best-first from the front.

Every change returns an :data:`Undo` record; reverting the records of the last few
messages, newest first, gives the book as it was before them (the ``stale_snapshot``
fault serves such an older book).
"""

from __future__ import annotations

from bisect import bisect_left, insort
from dataclasses import dataclass

__all__ = ["ASK", "BID", "Book", "Level", "Undo", "top_difference"]

BID, ASK = 1, -1

Level = tuple[int, float, float]
"""One level change: ``(side, price, size)``, ``side`` +1 bid / -1 ask, size 0 deletes."""


@dataclass(frozen=True, slots=True)
class Undo:
    """How to restore the book before one message: the old sizes of the levels it touched
    (``replaced``: the message replaced the whole book, ``levels`` is that old book)."""

    levels: list[Level]
    replaced: bool


class Side:
    """One side of the book, best level first."""

    __slots__ = ("_keys", "_sign", "sizes")

    def __init__(self, side: int) -> None:
        self._sign = -1.0 if side == BID else 1.0
        self._keys: list[float] = []
        self.sizes: dict[float, float] = {}

    def set(self, price: float, size: float) -> float:
        """Set the level at ``price`` to ``size`` (0 deletes); returns the old size."""
        old = self.sizes.get(price, 0.0)
        if size > 0:
            if not old:
                insort(self._keys, self._sign * price)
            self.sizes[price] = size
        elif old:
            del self.sizes[price]
            del self._keys[bisect_left(self._keys, self._sign * price)]
        return old

    def top(self, n: int | None = None) -> list[tuple[float, float]]:
        """The best ``n`` levels (all when None) as ``(price, size)``, best first."""
        keys = self._keys if n is None else self._keys[:n]
        sign, sizes = self._sign, self.sizes
        return [(sign * k, sizes[sign * k]) for k in keys]

    def clear(self) -> None:
        self._keys.clear()
        self.sizes.clear()

    def copy(self) -> Side:
        other = Side(BID if self._sign < 0 else ASK)
        other._keys = self._keys.copy()
        other.sizes = self.sizes.copy()
        return other


class Book:
    """A full-depth L2 book: ``bids`` and ``asks`` :class:`Side` objects."""

    __slots__ = ("asks", "bids")

    def __init__(self) -> None:
        self.bids = Side(BID)
        self.asks = Side(ASK)

    def side(self, side: int) -> Side:
        return self.bids if side == BID else self.asks

    def apply(self, changes: list[Level]) -> Undo:
        """Apply absolute level changes in order; the undo record restores the old sizes."""
        bids, asks = self.bids, self.asks
        old = [(s, p, (bids if s == BID else asks).set(p, z)) for s, p, z in changes]
        old.reverse()
        return Undo(old, replaced=False)

    def replace(self, levels: list[Level]) -> tuple[list[Level], Undo]:
        """Replace the whole book by ``levels``.

        Returns the level changes that turn the old book into the new one (deletions as
        size 0) and the undo record.
        """
        old_bids, old_asks = self.top(None)
        undo = Undo(self.levels(), replaced=True)
        self.bids.clear()
        self.asks.clear()
        for s, p, z in levels:
            self.side(s).set(p, z)
        changes = [(BID, p, z) for p, z in top_difference(old_bids, self.bids.top())]
        changes += [(ASK, p, z) for p, z in top_difference(old_asks, self.asks.top())]
        return changes, undo

    def revert(self, undo: Undo) -> None:
        """Undo one message (records must be reverted newest first)."""
        if undo.replaced:
            self.bids.clear()
            self.asks.clear()
        for s, p, z in undo.levels:
            self.side(s).set(p, z)

    def levels(self) -> list[Level]:
        """Every level as a change list (bids then asks, best first)."""
        return [(BID, p, z) for p, z in self.bids.top()] + [(ASK, p, z) for p, z in
                                                           self.asks.top()]

    def top(self, n: int | None) -> tuple[list[tuple[float, float]], list[tuple[float, float]]]:
        """``(bids, asks)``: the best ``n`` levels per side (all when None)."""
        return self.bids.top(n), self.asks.top(n)

    def copy(self) -> Book:
        other = Book()
        other.bids, other.asks = self.bids.copy(), self.asks.copy()
        return other


def top_difference(old: list[tuple[float, float]],
                   new: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """Level changes turning one side's levels ``old`` into ``new``: ``(price, size)``
    with size 0 for a level that left. Order: deletions first, then the new levels."""
    gone = dict(new)
    changes = [(p, 0.0) for p, _ in old if p not in gone]
    before = dict(old)
    return changes + [(p, z) for p, z in new if before.get(p) != z]
