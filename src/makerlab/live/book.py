"""The local order book every live venue keeps, and the sequence rules that guard it.

:class:`LocalBook` holds a venue's full depth (no level cap): per side a ``{price: size}``
dict and the side's prices in a sorted list. A level whose size changes is one dict
write; a level that appears or goes is a ``bisect`` and a list insert or delete (a
``memmove`` of at most a few thousand floats); the top ``n`` levels are a slice. On the
real Binance diffs of the bundled archive (about 70 levels a message on a 2,000-level
book) this is about twice as fast as a ``SortedDict`` per side, its previous form
(``bench/bench_live_feed.py`` measures the alternatives).

:class:`BookSync` decides, message by message, whether the book may change; the venue's
:class:`SequenceRule` says how its update ids chain. The rules of :class:`BookSync`:

- **never a wrong book**: a message that breaks the chain (:data:`Verdict.GAP`) or leaves
  the book crossed raises :class:`~makerlab.errors.SequenceGap` /
  :class:`~makerlab.errors.CrossedBook` and empties the book; nothing is delivered for the
  market until a snapshot makes it whole again.
- **stale and duplicate messages are skipped**: a message the book already contains
  (:data:`Verdict.SKIP`) changes nothing and is not delivered.
- **REST-snapshot venues buffer**: while waiting for a snapshot, deltas are kept (up to
  ``buffer_limit``) and replayed through the rule once it arrives; stream-snapshot venues
  drop them (their next snapshot comes on the socket).
- **a snapshot always replaces** the whole book, and the first delivery after one is that
  snapshot.
"""

from __future__ import annotations

from bisect import bisect_left, insort
from collections import deque
from enum import Enum
from typing import Protocol

import numpy as np

from makerlab.core.events import BookDelta
from makerlab.errors import CrossedBook, SequenceGap

__all__ = [
    "BinanceSpotRule",
    "BinanceUsdmRule",
    "BookSync",
    "ContiguousRule",
    "LocalBook",
    "SequenceRule",
    "SnapshotTimeRule",
    "StraddleChainRule",
    "Verdict",
]


class LocalBook:
    """Full-depth L2 book: :attr:`bids` and :attr:`asks` map price to size; each side's
    prices are also kept in ascending order (the best bid last, the best ask first)."""

    __slots__ = ("_ask_prices", "_bid_prices", "asks", "bids")

    def __init__(self) -> None:
        self.bids: dict[float, float] = {}
        self.asks: dict[float, float] = {}
        self._bid_prices: list[float] = []
        self._ask_prices: list[float] = []

    def clear(self) -> None:
        for side in (self.bids, self.asks, self._bid_prices, self._ask_prices):
            side.clear()

    def replace(self, bids: np.ndarray, asks: np.ndarray) -> None:
        """Load a snapshot (zero sizes are ignored)."""
        self.clear()
        self.apply(bids, asks)

    def apply(self, bids: np.ndarray, asks: np.ndarray) -> None:
        """Set each level's absolute size; ``0`` deletes it (unknown levels are fine)."""
        _apply_side(self.bids, self._bid_prices, bids.tolist())
        _apply_side(self.asks, self._ask_prices, asks.tolist())

    def top(self, n: int) -> tuple[np.ndarray, np.ndarray]:
        """The best ``n`` levels per side as ``(k, 2)`` float64 arrays, best first."""
        return (_levels(self.bids, self._bid_prices[-1:-n - 1:-1]),
                _levels(self.asks, self._ask_prices[:n]))

    def best(self) -> tuple[float, float]:
        """Best bid and best ask price (NaN for an empty side)."""
        return (self._bid_prices[-1] if self._bid_prices else float("nan"),
                self._ask_prices[0] if self._ask_prices else float("nan"))

    def crossed(self) -> bool:
        """True when both sides exist and the best bid is at or above the best ask."""
        bid, ask = self.best()
        return bid >= ask

    def __len__(self) -> int:
        return len(self.bids) + len(self.asks)


def _apply_side(sizes: dict[float, float], prices: list[float],
                rows: list[list[float]]) -> None:
    for price, size in rows:
        if size > 0.0:
            if price not in sizes:
                insort(prices, price)
            sizes[price] = size
        elif sizes.pop(price, None) is not None:
            del prices[bisect_left(prices, price)]


def _levels(sizes: dict[float, float], prices: list[float]) -> np.ndarray:
    """``prices`` (best first) and their sizes as a read-only ``(k, 2)`` array."""
    out = np.empty((len(prices), 2))
    out[:, 0] = prices
    out[:, 1] = [sizes[p] for p in prices]
    out.flags.writeable = False
    return out


class Verdict(Enum):
    """What a sequence rule says about the next message."""

    APPLY = "apply"
    SKIP = "skip"
    GAP = "gap"


class SequenceRule(Protocol):
    """A venue's update-id chain: judge ``msg`` given the last message applied."""

    def check(self, last: BookDelta, msg: BookDelta) -> Verdict: ...


class BinanceUsdmRule:
    """Binance USD-M futures: REST ``lastUpdateId`` L, then the ``pu`` chain.

    - after the snapshot: drop ``u < L``; the first applied must straddle it, ``U <= L <= u``
      (or continue it exactly, ``pu == L``: the snapshot was taken between two diffs);
    - then each message's ``pu`` must equal the previous ``u``; ``u <= prev u`` is a repeat.
    Ids are a global counter, so ``U == prev u + 1`` is never tested.
    """

    def check(self, last: BookDelta, msg: BookDelta) -> Verdict:
        if last.is_snapshot:
            if msg.seq < last.seq:
                return Verdict.SKIP
            straddles = msg.first_seq <= last.seq or msg.prev_seq == last.seq
            return Verdict.APPLY if straddles else Verdict.GAP
        if msg.seq <= last.seq:
            return Verdict.SKIP
        return Verdict.APPLY if msg.prev_seq == last.seq else Verdict.GAP


class BinanceSpotRule:
    """Binance spot: REST ``lastUpdateId`` L, then contiguous ``U == prev u + 1``.

    After the snapshot: drop ``u <= L``; the first applied must have ``U <= L + 1``.
    """

    def check(self, last: BookDelta, msg: BookDelta) -> Verdict:
        if msg.seq <= last.seq:
            return Verdict.SKIP
        if last.is_snapshot:
            return Verdict.APPLY if msg.first_seq <= last.seq + 1 else Verdict.GAP
        return Verdict.APPLY if msg.first_seq == last.seq + 1 else Verdict.GAP


class ContiguousRule:
    """Stream snapshot then deltas with ``seq == prev seq + 1`` (Bybit ``u``, Paradex
    ``seq_no``). A snapshot always replaces; an older delta is a repeat."""

    def check(self, last: BookDelta, msg: BookDelta) -> Verdict:
        if msg.is_snapshot:
            return Verdict.APPLY
        if msg.seq <= last.seq:
            return Verdict.SKIP
        return Verdict.APPLY if msg.seq == last.seq + 1 else Verdict.GAP


class SnapshotTimeRule:
    """Every message is a full snapshot (Hyperliquid ``l2Book``): apply unless it is older
    than the book (exchange time), which means it was overtaken."""

    def check(self, last: BookDelta, msg: BookDelta) -> Verdict:
        return Verdict.SKIP if msg.exchange_ts < last.exchange_ts else Verdict.APPLY


class StraddleChainRule:
    """REST snapshot at id L, then deltas chained by ``prev_seq == prev seq`` (WOO X
    ``prevTs``/``ts``).

    After the snapshot: drop ``seq <= L``; the first applied must start at or before it,
    ``prev_seq <= L`` (sizes are absolute, so a delta straddling L yields the book at its
    own ``seq``).
    """

    def check(self, last: BookDelta, msg: BookDelta) -> Verdict:
        if msg.seq <= last.seq:
            return Verdict.SKIP
        if last.is_snapshot:
            return Verdict.APPLY if msg.prev_seq <= last.seq else Verdict.GAP
        return Verdict.APPLY if msg.prev_seq == last.seq else Verdict.GAP


class BookSync:
    """One market's book with its sequence check (rules in the module docstring).

    Args:
        rule: the venue's sequence rule.
        buffer_deltas: keep deltas that arrive before the snapshot (REST-snapshot venues).
        buffer_limit: most deltas kept while waiting; older ones are dropped.
    """

    def __init__(self, rule: SequenceRule, *, buffer_deltas: bool,
                 buffer_limit: int = 10_000) -> None:
        self.rule, self.book = rule, LocalBook()
        self.buffer_deltas = buffer_deltas
        self._pending: deque[BookDelta] = deque(maxlen=buffer_limit)
        self._last: BookDelta | None = None

    @property
    def live(self) -> bool:
        """True while the book is known to be correct."""
        return self._last is not None

    def invalidate(self) -> None:
        """Forget the book (a gap or a lost connection) and wait for a snapshot."""
        self._last = None
        self.book.clear()
        self._pending.clear()

    def on_message(self, msg: BookDelta) -> list[BookDelta]:
        """Judge and apply ``msg``; returns the messages applied, in order (a snapshot
        first when it made the book whole). Raises SequenceGap/CrossedBook on a gap."""
        if self._last is not None:
            return self._step(self._last, msg)
        if msg.is_snapshot:
            return self._load(msg)
        if self.buffer_deltas:
            self._pending.append(msg)
        return []

    def _load(self, snapshot: BookDelta) -> list[BookDelta]:
        self.book.replace(snapshot.bids, snapshot.asks)
        self._last = snapshot
        self._check_crossed(snapshot)
        applied = [snapshot]
        pending, self._pending = self._pending, deque(maxlen=self._pending.maxlen)
        for msg in pending:
            applied += self._step(self._last, msg)
        return applied

    def _step(self, last: BookDelta, msg: BookDelta) -> list[BookDelta]:
        verdict = self.rule.check(last, msg)
        if verdict is Verdict.SKIP:
            return []
        if verdict is Verdict.GAP:
            self.invalidate()
            raise SequenceGap(f"{msg.exchange}/{msg.symbol}: update {_ids(msg)} does not "
                              f"continue {_ids(last)}")
        if msg.is_snapshot:
            self.book.replace(msg.bids, msg.asks)
        else:
            self.book.apply(msg.bids, msg.asks)
        self._last = msg
        self._check_crossed(msg)
        return [msg]

    def _check_crossed(self, msg: BookDelta) -> None:
        if self.book.crossed():
            bid, ask = self.book.best()
            self.invalidate()
            raise CrossedBook(f"{msg.exchange}/{msg.symbol}: crossed after update {_ids(msg)} "
                              f"(bid {bid} >= ask {ask})")


def _ids(msg: BookDelta) -> str:
    kind = "snapshot" if msg.is_snapshot else "delta"
    return f"{kind}(first={msg.first_seq}, seq={msg.seq}, prev={msg.prev_seq}, " \
           f"ts={msg.exchange_ts})"
