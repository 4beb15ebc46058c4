"""Typed market-data events: what a venue (replayed or live) hands the Feed and recorders.

Every event is a frozen, slotted dataclass carrying both clocks as int64 nanoseconds since
the Unix epoch: ``exchange_ts`` (the venue's event time) and ``local_ts`` (when this
process received the message; in replay, the recorded or modelled receive time). Prices
and sizes are float64 in quote currency and the venue's quantity unit, as in the archive
(:mod:`makerlab.data.schema`); ``side`` is ``+1`` bid / taker buy, ``-1`` ask / taker
sell, ``0`` unknown.

Book levels travel as read-only ``(k, 2)`` float64 arrays of ``[price, size]``, best
first (bids descending, asks ascending).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

import numpy as np

__all__ = [
    "BboEvent",
    "BookDelta",
    "BookUpdate",
    "FeedStatus",
    "StatusKind",
    "TradeEvent",
    "levels",
]

NO_SEQ = -1


def levels(rows: object) -> np.ndarray:
    """``rows`` (``[[price, size], ...]``) as a read-only ``(k, 2)`` float64 array."""
    out = np.array(rows, dtype=np.float64).reshape(-1, 2)
    out.flags.writeable = False
    return out


@dataclass(frozen=True, slots=True)
class BookDelta:
    """One venue book message as applied to the local book.

    ``bids``/``asks`` are the changed levels with their new total size (``0`` deletes the
    level). ``is_snapshot`` marks a message that replaced the whole book (the first one,
    a venue snapshot, or a resync after a gap). ``seq``/``first_seq``/``prev_seq`` are the
    venue's update ids (``-1`` where the venue has none), as in the archive's
    ``book_delta`` kind.
    """

    exchange: str
    symbol: str
    exchange_ts: int
    local_ts: int
    seq: int
    first_seq: int
    prev_seq: int
    bids: np.ndarray
    asks: np.ndarray
    is_snapshot: bool


@dataclass(frozen=True, slots=True)
class BookUpdate:
    """The book after one venue message: its top levels, and what changed.

    A consumer holding an ``l2book`` subscription loads ``bids``/``asks`` as a snapshot;
    a recorder writes ``delta``. A venue hands out a ``BookUpdate`` only for a book it
    knows to be correct (sequence checked): after a gap the next update is a resync
    snapshot (``delta.is_snapshot``).
    """

    exchange: str
    symbol: str
    exchange_ts: int
    local_ts: int
    seq: int
    bids: np.ndarray
    asks: np.ndarray
    delta: BookDelta


@dataclass(frozen=True, slots=True)
class TradeEvent:
    """One trade print with its aggressor side and the venue's trade id."""

    exchange: str
    symbol: str
    exchange_ts: int
    local_ts: int
    price: float
    size: float
    side: int
    trade_id: str


@dataclass(frozen=True, slots=True)
class BboEvent:
    """Best bid and offer as the venue pushed it (NaN for an empty side)."""

    exchange: str
    symbol: str
    exchange_ts: int
    local_ts: int
    seq: int
    bid_price: float
    bid_size: float
    ask_price: float
    ask_size: float


class StatusKind(StrEnum):
    """What happened to a market-data connection or book."""

    CONNECTED = "connected"
    DISCONNECTED = "disconnected"
    GAP = "gap"
    RESYNC = "resync"
    STALE = "stale"
    ERROR = "error"


@dataclass(frozen=True, slots=True)
class FeedStatus:
    """A health event of a venue's market data: connections, gaps, resyncs.

    ``symbol`` is empty for events of a whole connection. ``detail`` says what was seen
    (for a gap: the ids on either side).
    """

    exchange: str
    symbol: str
    kind: StatusKind
    local_ts: int
    detail: str = ""
