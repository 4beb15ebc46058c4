"""Websocket sessions, the topics they subscribe to, and the hub the market clock reads.

- A :class:`Topic` is one named stream (``btcusdt@depth@100ms``, ``orderbook.50.BTCUSDT``,
  an ``l2Book`` subscription) shared by the sessions subscribed to it; a venue builds
  each payload once and publishes it to all of them.
- A :class:`Session` is one websocket connection: the venue subclass parses the client's
  messages (:meth:`Session.handle`) and may override how a payload is framed
  (:meth:`Session.encode`) and how its ids jump under a ``gap`` fault
  (:meth:`Session.gap`). Outgoing items wait in the session's queue; one writer task
  sends them through the session's :class:`~makerlab.paper.faults.FaultInjector`.
- The :class:`Hub` knows every session, for the clock's pacing: at ``speed 0`` the clock
  waits while no session holds a subscription and while a backlog is above
  :data:`HIGH_WATER`; when paced, a session whose backlog passes :data:`MAX_BACKLOG` is
  closed as too slow (as venues do).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import Counter
from collections.abc import Coroutine
from dataclasses import dataclass, field
from typing import Any, Protocol

import orjson
from aiohttp import WSCloseCode, WSMsgType, web

from makerlab.paper.faults import FaultInjector

__all__ = ["HIGH_WATER", "MAX_BACKLOG", "Hub", "Outgoing", "Session", "SessionFaults", "Topic"]

log = logging.getLogger(__name__)

HIGH_WATER = 256
LOW_WATER = 64
MAX_BACKLOG = 50_000
CLOSE_TIMEOUT = 2.0


@dataclass(slots=True)
class Outgoing:
    """One message to send: the JSON ``payload``, the ``topic`` it belongs to ('' for a
    control reply) and whether it is market data (faults apply)."""

    topic: str
    payload: Any
    data: bool = True
    _text: str | None = field(default=None, repr=False)

    def text(self) -> str:
        """The payload as JSON text (encoded once, shared by every subscriber)."""
        if self._text is None:
            self._text = orjson.dumps(self.payload).decode()
        return self._text


class Topic:
    """A named stream and the sessions subscribed to it (in subscription order)."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.sessions: dict[Session, None] = {}
        self.sent = 0  # payloads published (to every subscriber)
        self.last_ns = 0  # monotonic ns of the last one

    def publish(self, payload: Any) -> None:
        """Queue ``payload`` for every subscriber."""
        self.sent += 1
        self.last_ns = time.monotonic_ns()
        item = Outgoing(self.name, payload)
        for session in self.sessions:
            session.push(item)


class Peer(Protocol):
    """The lockstep coordinator, as the sessions see it (:mod:`makerlab.paper.lockstep`)."""

    def on_client(self, session: Session, message: dict[str, Any]) -> None: ...

    def closed(self, session: Session) -> None: ...


class Hub:
    """Every open session, the waits of the market clock, and the lockstep step.

    In lockstep (:attr:`lockstep` set), :attr:`step` is the step being played (0
    between steps): a session that is pushed data or an account event during a step is
    ``touched`` and gets the step's clock marker first. ``rest_books`` counts the REST
    book snapshots each protocol answered (the markers carry it).
    """

    def __init__(self) -> None:
        self.sessions: set[Session] = set()
        self._full: set[Session] = set()
        self._room = asyncio.Event()
        self._active = asyncio.Event()
        self.lockstep: Peer | None = None
        self.step = 0
        self.step_ns = 0
        self.touched: dict[Session, None] = {}
        self.rest_books: Counter[str] = Counter()

    def changed(self) -> None:
        """A session opened, closed or changed its subscriptions."""
        if any(s.topics for s in self.sessions):
            self._active.set()
        else:
            self._active.clear()

    def full(self, session: Session, full: bool) -> None:
        if full:
            self._full.add(session)
        else:
            self._full.discard(session)
            self._room.set()

    async def wait_readers(self) -> None:
        """Return once some session is subscribed and no backlog is above the mark."""
        await self._active.wait()
        while self._full:
            self._room.clear()
            await self._room.wait()

    def drop_slow(self) -> None:
        """Close the sessions whose backlog passed :data:`MAX_BACKLOG`."""
        for session in [s for s in self._full if s.backlog > MAX_BACKLOG]:
            log.warning("%s: %d messages behind, disconnecting a slow client", session.name,
                        session.backlog)
            session.abort()

    async def close(self) -> None:
        """Close every session (server shutdown)."""
        await asyncio.gather(*(s.close(WSCloseCode.GOING_AWAY) for s in list(self.sessions)))


_CLOSE = Outgoing("", None, data=False)

SessionFaults = FaultInjector[Outgoing]
"""The fault injector of one session."""


class Session:
    """One websocket connection (see the module docstring). Subclasses implement
    :meth:`handle` and may override :meth:`encode` and :meth:`gap`."""

    def __init__(self, ws: web.WebSocketResponse, hub: Hub, faults: SessionFaults,
                 name: str) -> None:
        self.ws = ws
        self.hub = hub
        self.name = name
        self.topics: dict[str, Topic] = {}
        self._faults = faults
        self._queue: asyncio.Queue[Outgoing] = asyncio.Queue()
        self._aborted = False
        self._tasks: asyncio.TaskGroup | None = None
        self._step = 0  # the last lockstep step whose clock marker was sent

    # -- subscriptions

    def subscribe(self, topic: Topic) -> None:
        self.topics[topic.name] = topic
        topic.sessions[self] = None
        self.hub.changed()

    def unsubscribe(self, topic: Topic) -> None:
        self.topics.pop(topic.name, None)
        topic.sessions.pop(self, None)
        self.hub.changed()

    # -- sending

    @property
    def backlog(self) -> int:
        return self._queue.qsize()

    def push(self, item: Outgoing) -> None:
        """Queue ``item`` for sending (never blocks; the clock watches the backlog). In a
        lockstep step the session's first item follows the step's clock marker."""
        hub = self.hub
        if hub.step and self._step != hub.step:
            self._step = hub.step
            hub.touched[self] = None
            self._enqueue(Outgoing("", {"paper": "clock", "t": hub.step_ns}, data=False))
        self._enqueue(item)

    def _enqueue(self, item: Outgoing) -> None:
        self._queue.put_nowait(item)
        if self._queue.qsize() > HIGH_WATER:
            self.hub.full(self, True)

    def reply(self, payload: Any) -> None:
        """Queue a control reply (ack, pong, error, answer): in order, never faulted,
        outside the lockstep's steps."""
        self._enqueue(Outgoing("", payload, data=False))

    def marked(self, step: int) -> bool:
        """Whether the session got lockstep step ``step``'s clock marker."""
        return self._step == step

    @property
    def protocol(self) -> str:
        """The protocol of the venue the session belongs to (its name's prefix)."""
        return self.name.split("#", 1)[0]

    def push_private(self, payload: Any) -> None:
        """Queue an account event (user stream): in order, never faulted."""
        self.push(Outgoing("", payload, data=False))

    def encode(self, item: Outgoing) -> str:
        """The text frame for ``item``."""
        return item.text()

    def gap(self, item: Outgoing) -> Outgoing | None:
        """``item`` with its update ids jumped, or None when it has none."""
        return None

    # -- running

    def handle(self, message: Any) -> None:
        """React to one parsed client message."""
        raise NotImplementedError

    def spawn(self, work: Coroutine[Any, Any, None]) -> None:
        """Run ``work`` (a request the session answers later) while the session lives;
        requests start in the order they came in."""
        assert self._tasks is not None, "the session is not serving"
        self._tasks.create_task(work)

    async def serve(self) -> None:
        """Read and write until either side closes."""
        self.hub.sessions.add(self)
        self.hub.changed()
        try:
            async with asyncio.TaskGroup() as tasks:
                self._tasks = tasks
                tasks.create_task(self._write())
                await self._read()
                self._queue.put_nowait(_CLOSE)
        finally:
            self._detach()

    async def _read(self) -> None:
        async for message in self.ws:
            if message.type != WSMsgType.TEXT:
                continue
            try:
                parsed = orjson.loads(message.data)
            except orjson.JSONDecodeError:
                parsed = message.data
            if isinstance(parsed, dict) and "paper" in parsed:
                if self.hub.lockstep is not None:  # lockstep's own messages
                    self.hub.lockstep.on_client(self, parsed)
                continue
            self.handle(parsed)

    async def _write(self) -> None:
        while (item := await self._queue.get()) is not _CLOSE:
            if self._aborted:
                break
            if self._queue.qsize() <= LOW_WATER:
                self.hub.full(self, False)
            sends = self._faults.route(item, item.data, item.topic, self.gap)
            if sends is None:
                await self.close(WSCloseCode.GOING_AWAY)
                return
            try:
                for out in sends:
                    await self.ws.send_str(self.encode(out))
            except ConnectionResetError:
                return
        if self._aborted:
            await self.close(WSCloseCode.POLICY_VIOLATION)

    def abort(self) -> None:
        """Stop publishing to this session; its writer closes the connection next."""
        self._aborted = True
        self._detach()
        self._queue.put_nowait(_CLOSE)

    async def close(self, code: int) -> None:
        """Close the connection: a close frame, then at most :data:`CLOSE_TIMEOUT` seconds
        for the client's answer before the socket is dropped."""
        self._detach()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.ws.close(code=code), CLOSE_TIMEOUT)

    def _detach(self) -> None:
        for topic in list(self.topics.values()):
            topic.sessions.pop(self, None)
        self.topics.clear()
        self.hub.sessions.discard(self)
        self.hub.full(self, False)
        self.hub.changed()
        if self.hub.lockstep is not None:
            self.hub.lockstep.closed(self)
