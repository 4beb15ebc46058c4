"""Typed venue events: what a venue (replayed or live) hands the Feed, the OMS, recorders
and risk modules.

Every event is a frozen, slotted dataclass carrying both clocks as int64 nanoseconds since
the Unix epoch: ``exchange_ts`` (the venue's event time) and ``local_ts`` (when this
process received the message; in replay, the recorded or modelled receive time). Prices
and sizes are float64 in quote currency and the venue's quantity unit, as in the archive
(:mod:`makerlab.data.schema`); ``side`` is ``+1`` bid / taker buy, ``-1`` ask / taker
sell, ``0`` unknown.

Book levels travel as read-only ``(k, 2)`` float64 arrays of ``[price, size]``, best
first (bids descending, asks ascending). Order events (:class:`OrderUpdate`,
:class:`Fill`) carry prices and sizes as :class:`~decimal.Decimal`, as they are on the
wire, so no float noise reaches an order mirror.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from decimal import Decimal
from enum import StrEnum

import numpy as np

__all__ = [
    "BalanceState",
    "BboEvent",
    "BookDelta",
    "BookUpdate",
    "FeedStatus",
    "Fill",
    "FundingState",
    "OrderEventKind",
    "OrderUpdate",
    "PositionState",
    "StatusKind",
    "TradeEvent",
    "kept_available",
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


# --------------------------------------------------------------------------- orders


class OrderEventKind(StrEnum):
    """What a venue reports about one order."""

    ACK = "ack"                      # accepted: resting or about to trade (status NEW)
    REJECT = "reject"                # refused at entry (status REJECTED)
    FILL = "fill"                    # traded (status PARTIAL or FILLED); a Fill event too
    CANCEL_ACK = "cancel_ack"        # cancelled on our request (status CANCELLED)
    CANCEL_REJECT = "cancel_reject"  # a cancel request was refused; the order is unchanged
    AMEND_ACK = "amend_ack"          # price/size changed on our request
    AMEND_REJECT = "amend_reject"    # an amend request was refused; the order is unchanged
    EXPIRE = "expire"                # ended by the venue: IOC remainder, post-only cross,
                                     # reduce-only, self-trade prevention (status CANCELLED)
    STATE = "state"                  # the venue's full state of the order (snapshot / query)


@dataclass(frozen=True, slots=True)
class OrderUpdate:
    """One event of one order at the venue, with the order's state after it.

    ``amount`` is the order's signed size (positive buys) and ``filled`` the cumulative
    filled size (non-negative), both :class:`~decimal.Decimal` as on the wire; ``price`` is
    ``None`` for market orders. ``status`` is a :class:`~makerlab.core.orders.OrderStatus`
    value name (``NEW``, ``PARTIAL``, ``FILLED``, ``CANCELLED``, ``REJECTED``). What an event
    does not report is marked so, never guessed: ``filled=None``, ``status=""``, a zero
    ``amount`` and ``price=None`` (a venue's answer to a cancel or amend may restate
    nothing but the ids). ``code`` and ``reason`` carry the venue's error for rejects (e.g.
    ``-5022`` / ``"Post only order will be rejected"``). ``update_id`` orders the updates of
    one order as the venue does (its update time in ns where it has no sequence), so a
    stale update can be recognised; ``0`` claims no place in that order (a live venue's
    answer to a request: any update of the order's stream is newer).
    """

    exchange: str
    symbol: str
    exchange_ts: int
    local_ts: int
    kind: OrderEventKind
    status: str
    cloid: str | None
    oid: str | None
    amount: Decimal
    price: Decimal | None
    filled: Decimal | None
    update_id: int
    code: str = ""
    reason: str = ""
    tif: str = ""
    reduce_only: bool = False


@dataclass(frozen=True, slots=True)
class Fill:
    """One execution of one of our orders.

    ``size`` is positive and ``side`` the order's side (``+1`` bought, ``-1`` sold);
    ``fee`` is what we paid in ``fee_asset`` (negative for a rebate); ``trade_id`` is the
    venue's execution id, unique per venue and symbol, which is what de-duplicates fills.
    """

    exchange: str
    symbol: str
    exchange_ts: int
    local_ts: int
    cloid: str | None
    oid: str | None
    trade_id: str
    side: int
    price: Decimal
    size: Decimal
    fee: Decimal
    fee_asset: str
    is_maker: bool


@dataclass(frozen=True, slots=True)
class PositionState:
    """The venue's position in one symbol: signed ``amount`` (positive long), average
    ``entry_price`` and ``unrealized_pnl`` in quote currency (zero amount = flat)."""

    exchange: str
    symbol: str
    exchange_ts: int
    local_ts: int
    amount: Decimal
    entry_price: Decimal
    unrealized_pnl: Decimal


@dataclass(frozen=True, slots=True)
class BalanceState:
    """The venue's account in one margin asset: ``wallet`` (deposits plus realised PnL
    net of fees and funding), ``equity`` (wallet plus unrealised PnL) and ``available``
    (what new orders may use; ``None`` when the message does not state it, e.g.
    Binance's ``ACCOUNT_UPDATE``: the last stated figure stands, see
    :func:`kept_available`; the OMS's mirror keeps its REST snapshot's)."""

    exchange: str
    asset: str
    exchange_ts: int
    local_ts: int
    wallet: Decimal
    equity: Decimal
    available: Decimal | None


def kept_available(balance: BalanceState, held: Iterable[BalanceState]) -> BalanceState:
    """``balance``, or, when it does not state its available balance, ``balance`` with the
    available of the held row of its exchange and asset (the last the venue stated)."""
    if balance.available is not None:
        return balance
    for row in held:
        if (row.exchange, row.asset) == (balance.exchange, balance.asset):
            return replace(balance, available=row.available)
    return balance


@dataclass(frozen=True, slots=True)
class FundingState:
    """A perpetual's funding as the venue states it: ``rate`` (a fraction, per
    ``interval_ns``) of the current period, settled at ``next_ts`` (ns); ``mark_price`` the
    venue's mark (``None`` if it gave none)."""

    exchange: str
    symbol: str
    exchange_ts: int
    local_ts: int
    rate: Decimal
    interval_ns: int
    next_ts: int
    mark_price: Decimal | None
