"""One exchange's private connection: login, order entry, user stream, snapshots.

A :class:`PrivateClient` is the same code for every venue; the venue's private module
(:mod:`makerlab.live.venues.private_base`) says what to send and how to read it. Rules:

- **login first**: ``start()`` makes the venue's login call (Binance listen key, Paradex
  JWT, Hyperliquid asset ids) before any socket opens, and repeats the venue's refresh
  every ``refresh_interval`` (Binance keep-alive PUT every 30 min, Paradex a new JWT);
  a failed refresh (Binance ``-1125``) or a ``Relogin`` event on the stream (Binance
  ``listenKeyExpired``) logs in again and reconnects the user stream.
- **websocket orders, REST fallback**: on venues with a websocket order API an op goes
  over that socket while it is connected (and authenticated where the venue wants it);
  otherwise — not yet connected, reconnecting — over REST. A request whose socket dies
  before its answer, or whose answer does not come within ``policy.rest_timeout``, raises
  :class:`~makerlab.errors.ConnectionLost` / :class:`~makerlab.errors.RequestTimeout`
  and is **not** resent: the user stream reports what became of the order.
- **answers, not exceptions**: a venue refusal comes back as a failed
  :class:`~makerlab.live.venues.private_base.Answer`; exceptions are for transport,
  rate limits and credentials. Rate-limit headers and refusals update ``limits``.
- **a rate limit holds back order entry, never a cancel**: while the venue's retry-after
  runs, places, amends and batches are refused without being sent
  (:class:`~makerlab.errors.RateLimited`); cancels, cancel-alls and dead-man calls go to
  the venue, which has the last word (Bybit counts each endpoint apart, Binance's order
  counts leave cancels out): the kill switch's cancel-all is never stopped here.
- **user stream**: supervised like the market-data sockets (backoff, watchdog, pings;
  a venue without application pings is kept alive by protocol pings every half
  watchdog instead of the frame watchdog: a quiet account is not a lost stream);
  every parsed event goes to the sink, in socket order, between a
  ``FeedStatus(CONNECTED)`` when the socket opens and a ``FeedStatus(DISCONNECTED)`` when
  it is lost (symbol ``""``): what the mirror hears is whole only in between.
- **stopped sockets say so**: when a socket's task ends (``close()``, or the event loop
  cancelling it at exit) its order API is no longer ready and every request waiting on it
  fails with :class:`~makerlab.errors.ConnectionLost` at once (``call(op, rest=True)``
  then reaches the venue over REST).
- **secrets are never logged**: log lines name the call (method and path), never its
  headers, query or frame.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
from collections.abc import Awaitable, Sequence
from typing import Protocol

import aiohttp
import msgspec
import orjson

from makerlab.core.clock import Clock
from makerlab.core.events import (
    BalanceState,
    FeedStatus,
    Fill,
    FundingState,
    OrderUpdate,
    PositionState,
    StatusKind,
)
from makerlab.errors import AuthError, ConnectionLost, RateLimited, RequestTimeout, VenueError
from makerlab.live.lockstep import Lockstep
from makerlab.live.ratelimit import RateLimitState
from makerlab.live.transport import Link, ReconnectPolicy, RestClient, RestReply, WsSupervisor
from makerlab.live.venues.base import Endpoints, Reply, Request
from makerlab.live.venues.private_base import (
    Answer,
    Op,
    OpKind,
    PrivateVenue,
    Relogin,
    Snapshot,
    WsAnswer,
)

__all__ = ["EventSink", "PrivateClient"]

log = logging.getLogger(__name__)

#: What a running retry-after holds back (module docstring): order entry, not cancels.
_HELD_BACK = frozenset({OpKind.PLACE, OpKind.AMEND, OpKind.BATCH})

AccountEvent = OrderUpdate | Fill | PositionState | BalanceState | FeedStatus
_UNREADABLE = (msgspec.DecodeError, msgspec.ValidationError, orjson.JSONDecodeError,
               ValueError, KeyError, TypeError)


class EventSink(Protocol):
    """Receives a client's account events (the live order venue)."""

    async def deliver(self, event: AccountEvent) -> None: ...


class PrivateClient:
    """Private connection of one exchange (rules in the module docstring).

    Attributes:
        limits: the exchange's rate-limit state (read by risk checks).
    """

    def __init__(self, venue: PrivateVenue, endpoints: Endpoints,
                 session: aiohttp.ClientSession, sink: EventSink, *,
                 policy: ReconnectPolicy, clock: Clock, lockstep: Lockstep | None = None) -> None:
        self.venue, self.endpoints, self.sink = venue, endpoints, sink
        self.policy, self.clock = policy, clock
        self.lockstep = lockstep
        self.rest = RestClient(session, endpoints.rest, venue=venue.exchange,
                               timeout=policy.rest_timeout)
        self.limits = RateLimitState(venue.exchange)
        self._user = _UserSocket(self)
        self._orders = _OrderSocket(self) if venue.order_socket else None
        self._session = session
        self._tasks: list[asyncio.Task[None]] = []

    @property
    def exchange(self) -> str:
        return self.venue.exchange

    @property
    def order_socket_ready(self) -> bool:
        return self._orders is not None and self._orders.ready

    # -- lifecycle ---------------------------------------------------------------------------

    async def start(self) -> None:
        """Log in, then open the user stream (and the order socket)."""
        if self.lockstep is not None:
            self.lockstep.touch()
        await self.login()
        self._spawn(self._supervise(self._user, "user"))
        if self._orders is not None:
            self._spawn(self._supervise(self._orders, "orders"))
        if self.venue.refresh_interval:
            self._spawn(self._refresh_loop())

    def _spawn(self, coro: Awaitable[None]) -> None:
        task = asyncio.ensure_future(coro)
        task.add_done_callback(_log_failure)
        self._tasks.append(task)

    async def _supervise(self, handler: _UserSocket | _OrderSocket, what: str) -> None:
        supervisor = WsSupervisor(self._session, handler, self.policy,
                                  name=f"{self.exchange}-{what}", clock=self.clock,
                                  lockstep=self.lockstep)
        try:
            await supervisor.run()
        finally:
            handler.stopped()

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()

    async def login(self) -> None:
        call = self.venue.login_call(self.clock.ms())
        if call is None:
            return
        reply = await self._send(call)
        _raise_for_status(reply, call, self.exchange)
        self.venue.read_login(reply.body)

    async def _refresh_loop(self) -> None:
        while True:
            await asyncio.sleep(self.venue.refresh_interval)
            call = self.venue.refresh_call(self.clock.ms())
            if call is None:
                continue
            reply = await self._send(call)
            if not self.venue.read_refresh(reply.status, reply.body):
                log.warning("%s: login refresh refused (HTTP %s); logging in again",
                            self.exchange, reply.status)
                await self.relogin()

    async def relogin(self) -> None:
        """Log in again and reconnect the user stream (its URL or auth may change)."""
        await self.login()
        await self._user.reconnect()

    # -- order entry -------------------------------------------------------------------------

    async def call(self, op: Op, *, rest: bool = False) -> list[Answer]:
        """Send ``op`` (over REST with ``rest``); the venue's answer per order (rules in the
        module docstring)."""
        wait = self.limits.retry_after(self.clock.now_ns()) if op.kind in _HELD_BACK else 0
        if wait > 0:
            raise RateLimited(f"{op.kind} not sent: rate limited for {wait:.1f} s more",
                              venue=self.exchange, retry_after=wait)
        budget = self.venue.budget(op)
        if budget is not None:
            self.limits.spend(*budget, now_ns=self.clock.now_ns())
        if self.lockstep is not None:
            self.lockstep.sent()
        orders = self._orders
        if not rest and orders is not None and orders.ready and self.venue.uses_ws(op):
            return await orders.call(op)
        return await self._rest_call(op)

    async def _rest_call(self, op: Op) -> list[Answer]:
        call = self.venue.rest_call(op, self.clock.ms())
        reply = await self._send(call)
        try:
            return self.venue.read_rest(op, reply.status, reply.body, reply.headers)
        except RateLimited as exc:
            self.limits.limited(exc.retry_after, self.clock.now_ns())
            raise

    async def _send(self, call: Request) -> RestReply:
        log.debug("%s: %s %s", self.exchange, call.method, call.path)
        reply = await self.rest.exchange(call)
        self.limits.observe(self.venue.rate_limits(reply.headers, self.clock.ms()),
                            self.clock.now_ns())
        return reply

    # -- snapshots, queries, funding ------------------------------------------------------

    async def snapshot(self, kind: Snapshot
                       ) -> Sequence[OrderUpdate | PositionState | BalanceState]:
        """The venue's current open orders, positions or balances (REST)."""
        call = self.venue.snapshot_call(kind, self.clock.ms())
        reply = await self._send(call)
        _raise_for_status(reply, call, self.exchange)
        return self.venue.parse_snapshot(kind, reply.body, self.clock.now_ns())

    async def query(self, symbol: str, cloid: str | None, oid: str | None
                    ) -> OrderUpdate | None:
        """The venue's state of one order (``None``: the venue does not know it)."""
        call = self.venue.query_call(symbol, cloid, oid, self.clock.ms())
        reply = await self._send(call)
        _raise_for_access(reply, call, self.exchange)
        return self.venue.parse_query(reply.status, reply.body, self.clock.now_ns())

    async def funding(self, symbol: str) -> FundingState:
        """``symbol``'s funding rate, interval and next settlement (public calls)."""
        bodies = [await self.rest.request(call) for call in self.venue.funding_calls(symbol)]
        return self.venue.parse_funding(symbol, bodies, self.clock.ms(), self.clock.now_ns())


def _raise_for_status(reply: RestReply, call: Request, exchange: str) -> None:
    if reply.status >= 400:
        raise VenueError(f"{call.method} {call.path} answered HTTP {reply.status}: "
                         f"{reply.body[:200].decode(errors='replace')}", venue=exchange)


def _raise_for_access(reply: RestReply, call: Request, exchange: str) -> None:
    """Rate limits and credentials raise; any other answer is the venue's to read."""
    if reply.status in (418, 429):
        raise RateLimited(f"{call.method} {call.path} answered HTTP {reply.status}",
                          venue=exchange)
    if reply.status == 401:
        raise AuthError(f"{call.method} {call.path} answered HTTP 401", venue=exchange)


def _log_failure(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("private connection task %s failed", task.get_name(),
                  exc_info=task.exception())


class _UserSocket:
    """The user-stream socket's callbacks (transport.SocketHandler)."""

    def __init__(self, client: PrivateClient) -> None:
        self.client, self.venue = client, client.venue
        self.ping_frame, self.ping_interval = self.venue.ping_frame, self.venue.ping_interval
        self.heartbeat = None if self.ping_frame else client.policy.watchdog / 2
        self._link: Link | None = None

    def url(self) -> str:
        return self.venue.user_socket_url(self.client.endpoints.ws)

    async def on_open(self, link: Link) -> None:
        self._link = link
        for frame in self.venue.user_socket_open(self.client.clock.ms()):
            await link.send(frame)
        await self._status(StatusKind.CONNECTED, "user stream open")

    async def on_frame(self, data: str | bytes, local_ts: int, link: Link) -> None:
        try:
            events = self.venue.parse_user(data, local_ts)
        except _UNREADABLE as exc:
            log.warning("%s: unreadable user-stream frame (%s)", self.venue.exchange, exc)
            return
        for event in events:
            if isinstance(event, Reply):
                await link.send(event.frame)
            elif isinstance(event, Relogin):
                log.warning("%s: user stream: %s; logging in again", self.venue.exchange,
                            event.reason)
                link.spawn(self.client.relogin())
            else:
                await self.client.sink.deliver(event)

    async def on_close(self, reason: str) -> None:
        self._link = None
        log.warning("%s: user stream lost (%s)", self.venue.exchange, reason)
        await self._status(StatusKind.DISCONNECTED, f"user stream lost: {reason}")

    def stopped(self) -> None:
        self._link = None

    async def _status(self, kind: StatusKind, detail: str) -> None:
        await self.client.sink.deliver(FeedStatus(self.venue.exchange, "", kind,
                                                  self.client.clock.now_ns(), detail))

    async def reconnect(self) -> None:
        if self._link is not None:
            await self._link.close()


class _OrderSocket:
    """The websocket order API's callbacks, and request/answer matching."""

    def __init__(self, client: PrivateClient) -> None:
        self.client, self.venue = client, client.venue
        self.ping_frame, self.ping_interval = self.venue.ping_frame, self.venue.ping_interval
        self.heartbeat = None if self.ping_frame else client.policy.watchdog / 2
        self.ready = False
        self._link: Link | None = None
        self._pending: dict[str, asyncio.Future[list[Answer]]] = {}
        self._ids = itertools.count(1)

    def url(self) -> str:
        return self.venue.order_socket_url(self.client.endpoints.ws)

    async def on_open(self, link: Link) -> None:
        self._link = link
        frames = self.venue.order_socket_open(self.client.clock.ms())
        for frame in frames:
            await link.send(frame)
        self.ready = not frames  # else: once the login is answered

    async def on_frame(self, data: str | bytes, local_ts: int, link: Link) -> None:
        try:
            answer = self.venue.read_ws(data)
        except _UNREADABLE as exc:
            log.warning("%s: unreadable order-socket frame (%s)", self.venue.exchange, exc)
            return
        if answer is not None:
            self._on_answer(answer)

    def _on_answer(self, answer: WsAnswer) -> None:
        self.client.limits.observe(answer.observations, self.client.clock.now_ns())
        if answer.req_id == "auth":
            self.ready = all(a.ok for a in answer.answers)
            if not self.ready:
                log.error("%s: order socket login refused: %s", self.venue.exchange,
                          "; ".join(f"{a.code} {a.reason}" for a in answer.answers))
            return
        if isinstance(answer.error, RateLimited):
            self.client.limits.limited(answer.error.retry_after, self.client.clock.now_ns())
        future = self._pending.pop(answer.req_id, None)
        if future is None or future.done():
            return
        if answer.error is not None:
            future.set_exception(answer.error)
        else:
            future.set_result(answer.answers)

    async def on_close(self, reason: str) -> None:
        self._fail_pending(reason)

    def stopped(self) -> None:
        self._fail_pending("stopped")

    def _fail_pending(self, reason: str) -> None:
        self.ready, self._link = False, None
        lost = ConnectionLost(f"order socket lost before the answer ({reason})",
                              venue=self.venue.exchange)
        for future in self._pending.values():
            if not future.done():
                future.set_exception(lost)
        self._pending.clear()

    async def call(self, op: Op) -> list[Answer]:
        assert self._link is not None
        req_id = str(next(self._ids))
        future: asyncio.Future[list[Answer]] = asyncio.get_running_loop().create_future()
        self._pending[req_id] = future
        log.debug("%s: ws %s #%s", self.venue.exchange, op.kind, req_id)
        await self._link.send(self.venue.ws_call(op, self.client.clock.ms(), req_id))
        try:
            return await asyncio.wait_for(future, self.client.policy.rest_timeout)
        except TimeoutError:
            raise RequestTimeout(f"{op.kind} #{req_id}: no answer in "
                                 f"{self.client.policy.rest_timeout} s",
                                 venue=self.venue.exchange) from None
        finally:
            self._pending.pop(req_id, None)
