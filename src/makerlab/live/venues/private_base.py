"""What a venue's private module provides: order entry, user stream and account
translation, with the same rule as the public side — no sockets, sessions or tasks.

A private venue object holds the credentials (as :class:`~makerlab.live.config.Secret`)
and the little state its protocol needs between calls (a listen key, a JWT, asset ids),
and translates:

- an :class:`Op` (place / cancel / amend / cancel-all / dead-man / batch) into a signed
  REST :class:`~makerlab.live.venues.base.Request` (``rest_call``) or a signed websocket
  frame (``ws_call``, venues with a websocket order API), and the venue's answer into
  :class:`Answer` values, one per order (``read_rest`` / ``read_ws``);
- the user stream (``user_socket_url``/``user_socket_open``/``parse_user``) into
  :class:`~makerlab.core.events.OrderUpdate`, :class:`~makerlab.core.events.Fill`,
  :class:`~makerlab.core.events.PositionState` and :class:`~makerlab.core.events.BalanceState`;
- REST snapshots (``snapshot_call``/``parse_snapshot``) and single-order queries
  (``query_call``/``parse_query``) for reconciliation; funding (``funding_calls``/
  ``parse_funding``);
- rate-limit headers into :class:`~makerlab.live.ratelimit.Observation` values.

**A venue refusal is an answer, not an exception**: ``read_*`` returns ``Answer(ok=False,
code, reason)``; they raise only for what is not about the order — rate limits
(:class:`~makerlab.errors.RateLimited`), bad credentials (:class:`~makerlab.errors.AuthError`)
and unreadable answers (:class:`~makerlab.errors.VenueError`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from enum import StrEnum
from typing import ClassVar, Protocol

from makerlab.core.events import (
    BalanceState,
    Fill,
    FundingState,
    OrderEventKind,
    OrderUpdate,
    PositionState,
)
from makerlab.errors import ConfigError, VenueError
from makerlab.live.config import Secret
from makerlab.live.ratelimit import Observation
from makerlab.live.venues.base import Reply, Request
from makerlab.trading.protocols import AmendRequest, CancelRequest, OrderRequest

__all__ = [
    "Answer",
    "CloidMap",
    "Op",
    "OpKind",
    "PrivateEvent",
    "PrivateVenue",
    "Relogin",
    "Snapshot",
    "WsAnswer",
    "answer_update",
    "credentials",
    "sha_hex",
]

@dataclass(frozen=True, slots=True)
class Relogin:
    """The user stream says its login ended (Binance ``listenKeyExpired``): log in again
    and reconnect."""

    reason: str


PrivateEvent = OrderUpdate | Fill | PositionState | BalanceState | Reply | Relogin


class OpKind(StrEnum):
    PLACE = "place"
    CANCEL = "cancel"
    AMEND = "amend"
    CANCEL_ALL = "cancel_all"
    DEAD_MAN = "dead_man"
    BATCH = "batch"  # several places in one call


class Snapshot(StrEnum):
    ORDERS = "orders"
    POSITIONS = "positions"
    BALANCES = "balances"


@dataclass(frozen=True, slots=True)
class Op:
    """One order-entry call. ``orders`` holds the request(s): one for place/cancel/amend,
    several for a batch, none for cancel-all (``symbol`` or every symbol) and the dead-man
    switch (``timeout_ms``, 0 disarms)."""

    kind: OpKind
    exchange: str
    symbol: str | None = None
    orders: tuple[OrderRequest | CancelRequest | AmendRequest, ...] = ()
    timeout_ms: int = 0

    @property
    def order(self) -> OrderRequest | CancelRequest | AmendRequest:
        return self.orders[0]


@dataclass(frozen=True, slots=True)
class Answer:
    """The venue's answer about one order of an op (or the whole op when it names none).

    ``exchange_ts`` is the venue's time in ns (0 when the answer carries none); ``status``
    (an :class:`~makerlab.core.orders.OrderStatus` name) and ``filled`` are the order's,
    where the answer states them (``""`` / ``None`` otherwise)."""

    ok: bool
    code: str = ""
    reason: str = ""
    oid: str | None = None
    exchange_ts: int = 0
    status: str = ""
    filled: Decimal | None = None


@dataclass(frozen=True, slots=True)
class WsAnswer:
    """A websocket frame answering the request ``req_id`` (``auth`` for a login);
    ``error`` when the venue refused it for a reason that is not about the order (rate
    limit, credentials): the caller raises it."""

    req_id: str
    answers: list[Answer]
    observations: list[Observation] = field(default_factory=list)
    error: VenueError | None = None


class PrivateVenue(Protocol):
    """One exchange's private wire protocol (see the module docstring)."""

    exchange: ClassVar[str]
    max_batch: ClassVar[int]  # orders per batch call (1 = no batch endpoint)
    has_cancel_all: ClassVar[bool]  # False: the order venue cancels open orders one by one
    ping_frame: ClassVar[bytes | None]
    ping_interval: ClassVar[float]
    refresh_interval: ClassVar[float]  # seconds between login refreshes (0 = none)
    symbol_scoped: ClassVar[frozenset[OpKind]]  # ops that act on one symbol at a time

    @property
    def order_socket(self) -> bool:
        """Whether orders go over a websocket order API (REST is then the fallback)."""
        ...

    def login_call(self, now_ms: int) -> Request | None:
        """A call to make before anything else (listen key, JWT, asset ids), if any."""
        ...

    def read_login(self, body: bytes) -> None: ...

    def refresh_call(self, now_ms: int) -> Request | None:
        """The periodic call that keeps the login alive (``refresh_interval``)."""
        ...

    def read_refresh(self, status: int, body: bytes) -> bool:
        """Whether the refresh worked; False: log in again and reconnect the user stream."""
        ...

    def budget(self, op: Op) -> tuple[str, int, int, float] | None:
        """For venues that report no usage: ``(budget name, weight of op, limit, window
        in seconds)`` to count locally; None where the venue reports usage itself."""
        ...

    def rest_call(self, op: Op, now_ms: int) -> Request: ...

    def read_rest(self, op: Op, status: int, body: bytes,
                  headers: Mapping[str, str]) -> list[Answer]: ...

    def uses_ws(self, op: Op) -> bool:
        """Whether ``op`` has a websocket form (else it always goes over REST)."""
        ...

    def order_socket_url(self, ws: str) -> str: ...

    def order_socket_open(self, now_ms: int) -> list[bytes]:
        """Frames sent when the order socket opens; non-empty means the socket is usable
        only once a ``WsAnswer("auth", [Answer(ok=True)])`` comes back."""
        ...

    def ws_call(self, op: Op, now_ms: int, req_id: str) -> bytes: ...

    def read_ws(self, frame: bytes | str) -> WsAnswer | None: ...

    def user_socket_url(self, ws: str) -> str: ...

    def user_socket_open(self, now_ms: int) -> list[bytes]: ...

    def parse_user(self, frame: bytes | str, local_ts: int) -> list[PrivateEvent]: ...

    def snapshot_call(self, kind: Snapshot, now_ms: int) -> Request: ...

    def parse_snapshot(self, kind: Snapshot, body: bytes, local_ts: int
                       ) -> Sequence[OrderUpdate | PositionState | BalanceState]: ...

    def query_call(self, symbol: str, cloid: str | None, oid: str | None,
                   now_ms: int) -> Request:
        """The venue's state of one order, by our ``cloid`` or its ``oid``."""
        ...

    def parse_query(self, status: int, body: bytes, local_ts: int) -> OrderUpdate | None:
        """The queried order as a ``STATE`` update; ``None`` when the venue does not know
        it (never received, or forgotten)."""
        ...

    def funding_calls(self, symbol: str) -> list[Request]:
        """The public calls that give ``symbol``'s funding (read together)."""
        ...

    def parse_funding(self, symbol: str, bodies: list[bytes], now_ms: int,
                      local_ts: int) -> FundingState: ...

    def rate_limits(self, headers: Mapping[str, str], now_ms: int) -> list[Observation]: ...


def credentials(exchange: str, creds: tuple[Secret, Secret] | None) -> tuple[Secret, Secret]:
    """The ``(key, secret)`` a private venue needs; ConfigError naming what is missing."""
    if creds is None:
        raise ConfigError(f"{exchange}: order entry needs 'key' and 'secret' in the Gateway "
                          "config (names of environment variables)")
    return creds


# The status an answer implies when it does not state one: an accepted order is NEW, a
# refused one REJECTED, an acknowledged cancel CANCELLED. An amend's answer and a refused
# cancel or amend imply none ("": the mirror keeps what it has).
_SUCCESS = {OpKind.PLACE: (OrderEventKind.ACK, "NEW"),
            OpKind.CANCEL: (OrderEventKind.CANCEL_ACK, "CANCELLED"),
            OpKind.AMEND: (OrderEventKind.AMEND_ACK, ""),
            OpKind.BATCH: (OrderEventKind.ACK, "NEW")}
_FAILURE = {OpKind.PLACE: (OrderEventKind.REJECT, "REJECTED"),
            OpKind.CANCEL: (OrderEventKind.CANCEL_REJECT, ""),
            OpKind.AMEND: (OrderEventKind.AMEND_REJECT, ""),
            OpKind.BATCH: (OrderEventKind.REJECT, "REJECTED")}


def answer_update(op: Op, index: int, answer: Answer, local_ts: int) -> OrderUpdate | None:
    """The :class:`OrderUpdate` an answer about ``op.orders[index]`` reports (None for
    ops on no single order: cancel-all, dead-man).

    It reports what the answer says and marks the rest unknown (``filled=None``, status
    ``""``, a zero amount for a cancel): never a guessed zero the mirror would take for a
    regression. Its ``update_id`` is ``0``: an answer claims no place among the order's
    stream updates (its time may be the venue's response time, or only our receive time,
    whose clock may run ahead), so it is news only until the stream reports the order.
    """
    if not op.orders:
        return None
    kind, status = (_SUCCESS if answer.ok else _FAILURE)[op.kind]
    req = op.orders[index]
    amount, price, tif, reduce_only = _terms(req)
    ts = answer.exchange_ts or local_ts
    oid = answer.oid if isinstance(req, OrderRequest) else answer.oid or req.oid
    return OrderUpdate(op.exchange, req.symbol, ts, local_ts, kind, answer.status or status,
                       req.cloid, oid, amount, price, answer.filled, 0, code=answer.code,
                       reason=answer.reason, tif=tif, reduce_only=reduce_only)


def _terms(req: OrderRequest | CancelRequest | AmendRequest
           ) -> tuple[Decimal, Decimal | None, str, bool]:
    if isinstance(req, OrderRequest):
        return req.amount, req.price, req.tif, req.reduce_only
    if isinstance(req, AmendRequest):
        return req.amount or Decimal(0), req.price, "", False
    return Decimal(0), None, "", False


class CloidMap:
    """Our client order ids in a venue's own format, and back.

    An id the venue accepts as it is (``accepts``) goes unchanged; any other is mapped to
    a stable digest in the venue's format (``digest``) and remembered, so the venue's
    events name the order by our id again. An id the map never saw (an order from before
    a restart) is reported in the venue's form.
    """

    def __init__(self, accepts: Callable[[str], bool], digest: Callable[[str], str]) -> None:
        self._accepts, self._digest = accepts, digest
        self._ours: dict[str, str] = {}

    def wire(self, cloid: str) -> str:
        if self._accepts(cloid):
            return cloid
        wire = self._digest(cloid)
        self._ours[wire] = cloid
        return wire

    def ours(self, wire: str | None) -> str | None:
        if not wire:
            return None
        return self._ours.get(wire, wire)


def sha_hex(text: str, chars: int) -> str:
    """The first ``chars`` hex characters of ``text``'s SHA-256."""
    return hashlib.sha256(text.encode()).hexdigest()[:chars]
