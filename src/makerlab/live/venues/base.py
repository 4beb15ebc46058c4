"""What a venue module provides: translation between the wire and makerlab's types.

A venue module holds no sockets, sessions or tasks. It says where to connect
(:class:`Endpoints` per environment, the real paths appended to configured bases), what to
send (subscribe/unsubscribe/ping frames, REST requests as :class:`Request` values) and how
to read what comes back (``parse`` turns one frame into :mod:`makerlab.core.events`
objects; ``parse_snapshot``/``parse_specs`` read REST bodies). The shared
:mod:`makerlab.live.stream` and :mod:`makerlab.live.transport` do the I/O, the sequence
checks (:mod:`makerlab.live.book`) and the reconnects.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from enum import Enum
from typing import ClassVar, Protocol

import numpy as np

from makerlab.core.events import BookDelta, TradeEvent, levels
from makerlab.core.instruments import InstrumentSpec
from makerlab.live.book import SequenceRule
from makerlab.trading.protocols import MarketKind
from makerlab.units import NS_PER_MS

__all__ = [
    "NO_TIME",
    "Endpoints",
    "Parsed",
    "Reply",
    "Request",
    "RestSnapshots",
    "Resync",
    "SocketSnapshots",
    "SpecPage",
    "Venue",
    "book_delta",
    "decimal",
    "ms_to_ns",
]


NO_TIME = 0
"""``exchange_ts`` of a snapshot the venue sends without a time (Binance spot's REST depth).
The stream delivers such a book only once a message is applied on it, with that
message's id and time, so no delivered book carries a made-up exchange time
(:mod:`makerlab.live.stream`)."""


class Resync(Enum):
    """How a venue's book is made whole again after a gap."""

    REST_SNAPSHOT = "rest_snapshot"  # fetch a REST snapshot, keep the socket, buffer deltas
    RESUBSCRIBE = "resubscribe"  # unsubscribe and subscribe the book topic: a new snapshot
    SOCKET_SNAPSHOT = "socket_snapshot"  # ask for a snapshot on the socket, buffer deltas
    NEXT_SNAPSHOT = "next_snapshot"  # every message is a snapshot: wait for the next one


@dataclass(frozen=True, slots=True)
class Endpoints:
    """REST and websocket base URLs; venue paths are appended to them."""

    rest: str
    ws: str


@dataclass(frozen=True, slots=True)
class Request:
    """One REST call: ``method`` ``path`` (appended to the REST base) with query
    ``params`` or a ``body`` (JSON unless ``headers`` say otherwise), and extra
    ``headers`` (signed calls: keys and signatures, never logged)."""

    method: str
    path: str
    params: Mapping[str, str] = field(default_factory=dict)
    body: bytes | None = None
    headers: Mapping[str, str] = field(default_factory=dict, repr=False)


@dataclass(frozen=True, slots=True)
class Reply:
    """A frame the venue expects in answer to one it sent (an application pong)."""

    frame: bytes


@dataclass(frozen=True, slots=True)
class SpecPage:
    """Instrument specs from one metadata response, and the request for the next page."""

    specs: list[InstrumentSpec]
    next_request: Request | None = None


Parsed = BookDelta | TradeEvent | Reply


class Venue(Protocol):
    """One exchange id's wire protocol (see the module docstring)."""

    exchange: ClassVar[str]
    urls: ClassVar[Mapping[str, Endpoints]]  # env name -> real endpoints
    rule: SequenceRule
    resync: ClassVar[Resync]
    ping_frame: ClassVar[bytes | None]  # application ping; None = protocol pings only
    ping_interval: ClassVar[float]  # seconds

    def topics(self, kind: MarketKind, symbol: str, depth: int) -> list[str]:
        """The stream topics carrying ``kind`` data of ``symbol``."""
        ...

    def stream_url(self, ws: str, topics: Sequence[str]) -> str:
        """The socket URL for ``topics`` under the websocket base ``ws``."""
        ...

    def open_frames(self, topics: Sequence[str]) -> list[bytes]:
        """Frames to send right after connecting (subscriptions not in the URL)."""
        ...

    def subscribe_frames(self, topics: Sequence[str]) -> list[bytes]: ...

    def unsubscribe_frames(self, topics: Sequence[str]) -> list[bytes]: ...

    def parse(self, frame: bytes | str, local_ts: int) -> list[Parsed]:
        """Events in one frame (control frames give ``[]`` or a :class:`Reply`)."""
        ...

    def specs_request(self) -> Request:
        """The first instrument-metadata request."""
        ...

    def parse_specs(self, body: bytes) -> SpecPage: ...


class RestSnapshots(Venue, Protocol):
    """A venue whose books start from a REST snapshot (``Resync.REST_SNAPSHOT``)."""

    def snapshot_request(self, symbol: str) -> Request: ...

    def parse_snapshot(self, body: bytes, symbol: str, local_ts: int) -> BookDelta: ...


class SocketSnapshots(Venue, Protocol):
    """A venue whose books start from a snapshot requested on the socket
    (``Resync.SOCKET_SNAPSHOT``); ``parse`` returns the reply as a snapshot BookDelta."""

    def snapshot_frame(self, symbol: str) -> bytes: ...


def ms_to_ns(ms: int) -> int:
    return int(ms) * NS_PER_MS


def decimal(text: object) -> Decimal:
    """A wire number (string or JSON number) as an exact Decimal."""
    return Decimal(str(text))


def book_delta(exchange: str, symbol: str, exchange_ts: int, local_ts: int, *,
               seq: int, bids: Sequence[Sequence[float]], asks: Sequence[Sequence[float]],
               is_snapshot: bool, first_seq: int | None = None,
               prev_seq: int = -1) -> BookDelta:
    """A :class:`BookDelta` from ``[[price, size], ...]`` rows (``first_seq`` defaults
    to ``seq``).

    Raises:
        ValueError: a price that is not positive and finite, or a size that is not
            finite (the stream reports the frame as unreadable; the book never sees it).
    """
    bid_levels, ask_levels = _checked(list(bids), list(asks), symbol)
    return BookDelta(exchange, symbol, exchange_ts, local_ts, seq,
                     seq if first_seq is None else first_seq, prev_seq, bid_levels,
                     ask_levels, is_snapshot)


def _checked(bids: list, asks: list, symbol: str) -> tuple[np.ndarray, np.ndarray]:
    """Both sides as read-only views of one array, checked with two reductions."""
    both = levels(bids + asks)
    if both.size and not (math.isfinite(both.sum()) and both[:, 0].min() > 0):  # NaN: not
        bad = ~np.isfinite(both).all(axis=1) | ~(both[:, 0] > 0)
        raise ValueError(f"{symbol}: book levels {both[bad][:3].tolist()} are not a positive "
                         "finite price with a finite size")
    return both[: len(bids)], both[len(bids):]
