"""The shared transport: one websocket supervisor for every venue, and the REST client.

:class:`WsSupervisor` owns a socket's whole life, the same for every venue:

- **connect → open → read**: connect to ``handler.url()``, call ``handler.on_open`` (which
  subscribes), then hand every frame to ``handler.on_frame`` with its receive time (ns).
- **keepalive**: aiohttp answers the server's protocol pings; a venue that wants an
  application ping (``handler.ping_frame``) gets one every ``handler.ping_interval``.
- **watchdog**: no frame for ``policy.watchdog`` seconds counts as a lost connection;
  except on a socket whose handler has a ``heartbeat`` (seconds; a user stream may be
  quiet for hours): protocol pings go out every ``heartbeat`` and a pong missing for as
  long closes it instead.
- **backoff**: after a loss, wait ``initial_delay * 2**n`` (capped at ``max_delay``,
  ± ``jitter``), reset once a frame arrives; then reconnect. The handler resubscribes in
  ``on_open`` and resyncs its books (it was told ``on_close``).
- **owned tasks**: the ping loop and anything the handler starts with ``link.spawn`` run
  in the connection's :class:`asyncio.TaskGroup`; they end with the connection.
- **lockstep** (a paper exchange's, :mod:`makerlab.live.lockstep`): its frames are
  answered by the Gateway's :class:`~makerlab.live.lockstep.Lockstep` and never reach
  the handler.

Lost connections (:class:`~makerlab.errors.ConnectionLost`, aiohttp and OS errors) are
retried forever; any other exception (a bug, a failing listener) ends ``run()``.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Coroutine, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import urlencode

import aiohttp
import yarl

from makerlab.core.clock import Clock, WallClock
from makerlab.errors import AuthError, ConnectionLost, RateLimited, VenueError
from makerlab.live.venues.base import Request

if TYPE_CHECKING:
    from makerlab.live.lockstep import Lockstep

__all__ = ["Backoff", "Link", "ReconnectPolicy", "RestClient", "RestReply", "SocketHandler",
           "WsSupervisor"]

log = logging.getLogger(__name__)

_DROPPED = (ConnectionLost, aiohttp.ClientError, OSError, TimeoutError)
_CLOSED = (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSING, aiohttp.WSMsgType.CLOSED,
           aiohttp.WSMsgType.ERROR)


@dataclass(frozen=True, slots=True)
class ReconnectPolicy:
    """Reconnect and timeout settings (seconds) of every socket and REST call."""

    initial_delay: float = 0.5
    max_delay: float = 30.0
    jitter: float = 0.2
    watchdog: float = 30.0
    rest_timeout: float = 10.0


class Backoff:
    """Exponential delays with a ceiling and multiplicative jitter."""

    def __init__(self, policy: ReconnectPolicy, rng: random.Random | None = None) -> None:
        self.policy, self.rng, self.attempt = policy, rng or random.Random(), 0

    def next(self) -> float:
        p = self.policy
        delay = min(p.max_delay, p.initial_delay * 2 ** self.attempt)
        self.attempt += 1
        return delay * (1 + p.jitter * (2 * self.rng.random() - 1))

    def reset(self) -> None:
        self.attempt = 0


class Link:
    """An open socket as its handler sees it: send frames, start owned tasks."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse, tasks: asyncio.TaskGroup) -> None:
        self._ws, self._tasks = ws, tasks

    async def send(self, frame: bytes) -> None:
        await self._ws.send_str(frame.decode())

    def spawn(self, coro: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        """Run ``coro`` until it ends or the connection does."""
        return self._tasks.create_task(coro)

    async def close(self) -> None:
        """Close the socket: the supervisor reconnects (a fresh ``handler.url()``)."""
        await self._ws.close()


class SocketHandler(Protocol):
    """What a supervised socket calls back (:class:`~makerlab.live.stream.VenueStream`)."""

    @property
    def ping_frame(self) -> bytes | None: ...

    @property
    def ping_interval(self) -> float: ...

    def url(self) -> str: ...

    async def on_open(self, link: Link) -> None: ...

    async def on_frame(self, data: str | bytes, local_ts: int, link: Link) -> None: ...

    async def on_close(self, reason: str) -> None: ...


class WsSupervisor:
    """Keeps one venue socket alive (rules in the module docstring).

    Attributes:
        connections: how many times a socket opened (1 + reconnects).
    """

    def __init__(self, session: aiohttp.ClientSession, handler: SocketHandler,
                 policy: ReconnectPolicy, *, name: str, clock: Clock | None = None,
                 rng: random.Random | None = None, lockstep: Lockstep | None = None) -> None:
        self.session, self.handler, self.policy, self.name = session, handler, policy, name
        self.clock = clock or WallClock()
        self.lockstep = lockstep
        self.backoff = Backoff(policy, rng)
        self.connections = 0

    async def run(self) -> None:
        """Connect, serve, reconnect after each loss; until cancelled."""
        while True:
            reason = await self._connection()
            await self.handler.on_close(reason)
            delay = self.backoff.next()
            log.warning("%s: connection lost (%s); reconnecting in %.2f s",
                        self.name, reason, delay)
            await asyncio.sleep(delay)

    async def _connection(self) -> str:
        try:
            async with self.session.ws_connect(self.handler.url(), autoping=True,
                                               max_msg_size=0,
                                               heartbeat=self._heartbeat) as ws:
                self.connections += 1
                return await self._serve(ws)
        except _DROPPED as exc:
            return _describe(exc)

    async def _serve(self, ws: aiohttp.ClientWebSocketResponse) -> str:
        reasons: list[str] = []
        try:
            async with asyncio.TaskGroup() as tasks:
                link = Link(ws, tasks)
                if self.handler.ping_frame:
                    tasks.create_task(self._ping(link, self.handler.ping_frame))
                await self.handler.on_open(link)
                if self.lockstep is not None:
                    self.lockstep.opened(link)
                try:
                    await self._read(ws, link)
                finally:
                    if self.lockstep is not None:
                        self.lockstep.closed(link)
        except* _DROPPED as group:
            reasons += [_describe(exc) for exc in group.exceptions]
        return "; ".join(reasons)

    @property
    def _heartbeat(self) -> float | None:
        return getattr(self.handler, "heartbeat", None)

    async def _read(self, ws: aiohttp.ClientWebSocketResponse, link: Link) -> None:
        watchdog = None if self._heartbeat else self.policy.watchdog
        while True:
            try:
                msg = await ws.receive(timeout=watchdog)
            except TimeoutError:
                raise ConnectionLost(f"no frame for {self.policy.watchdog} s",
                                     venue=self.name) from None
            if msg.type in _CLOSED:
                raise ConnectionLost(f"socket closed ({msg.type.name})", venue=self.name)
            self.backoff.reset()
            if self.lockstep is not None and await self.lockstep.intercept(msg.data, link,
                                                                          self.name):
                continue
            await self.handler.on_frame(msg.data, self.clock.now_ns(), link)

    async def _ping(self, link: Link, frame: bytes) -> None:
        while True:
            await asyncio.sleep(self.handler.ping_interval)
            await link.send(frame)


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


@dataclass(frozen=True, slots=True)
class RestReply:
    """A REST answer as received: status, headers (case-insensitive) and body."""

    status: int
    headers: Mapping[str, str]
    body: bytes


class RestClient:
    """REST calls against one venue base URL, with timeouts and error mapping."""

    def __init__(self, session: aiohttp.ClientSession, base: str, *, venue: str,
                 timeout: float) -> None:
        self.session, self.base, self.venue = session, base.rstrip("/"), venue
        self.timeout = aiohttp.ClientTimeout(total=timeout)

    async def request(self, req: Request) -> bytes:
        """The response body; raises RateLimited, AuthError, VenueError or ConnectionLost."""
        reply = await self.exchange(req)
        _check_status(reply.status, req, reply.body, self.venue)
        return reply.body

    async def exchange(self, req: Request) -> RestReply:
        """The answer whatever its status (a signed call reads the venue's refusal from
        it); raises ConnectionLost only, when no answer came. The query string is sent
        exactly as ``req.params`` orders it (signed strings depend on it)."""
        headers = {"Content-Type": "application/json"} if req.body is not None else {}
        headers.update(req.headers)
        url = self.base + req.path
        if req.params:
            url += "?" + urlencode(list(req.params.items()))
        try:
            async with self.session.request(req.method, yarl.URL(url, encoded=True),
                                            data=req.body, headers=headers,
                                            timeout=self.timeout) as resp:
                return RestReply(resp.status, resp.headers, await resp.read())
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise ConnectionLost(f"{req.method} {req.path}: {_describe(exc)}",
                                 venue=self.venue) from exc


def _check_status(status: int, req: Request, body: bytes, venue: str) -> None:
    if status < 400:
        return
    what = f"{req.method} {req.path} answered HTTP {status}: {body[:200].decode(errors='replace')}"
    if status in (418, 429):
        raise RateLimited(what, venue=venue)
    if status == 401:
        raise AuthError(what, venue=venue)
    raise VenueError(what, venue=venue)
