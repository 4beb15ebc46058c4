"""The monitoring page's server: :class:`Monitor` serves a running strategy's page.

::

    monitor = Monitor(oms, feed, port=8765)      # PageConfig's keywords
    await monitor.start()                        # prints nothing; monitor.url has the link
    ...
    await monitor.stop()                         # or: async with Monitor(oms, feed): ...

or in one line, ``await oms.serve_page(feed, port=8765)`` (stopped by ``oms.cleanup()``).

Rules:

- **opt-in and owned**: nothing runs until :meth:`Monitor.start`; it owns one snapshot
  task and one aiohttp site, both ended by :meth:`Monitor.stop` (and leaving the
  ``async with``), which also detaches the feed tap where the source can (a live one);
  the order tap stays attached to the venue (venues have no detach) and only counts.
  Starting twice, or after stopping, is a ``ConfigError``.
- **snapshots at a bounded rate**: one :class:`~makerlab.monitor.collect.Collector`
  snapshot every ``interval_s`` in its own task, between the loop's other work, however
  many pages are open; each is encoded once and pushed to every websocket. The taps are
  attached to the OMS's venue and the Feed's source after everything else, so each event
  reaches the strategy first; nothing the page does sends an order, but the kill switch.
- **routes**: ``GET /`` the page, ``GET /static/<file>`` its files, ``GET /api/snapshot``
  the latest snapshot (JSON), ``GET /ws`` the websocket (a ``hello`` message with the
  chart history, then one ``snapshot`` message per interval), ``POST /api/kill`` the
  kill switch (answers what it did). Access and input rules: :mod:`makerlab.monitor.auth`.
- **the kill switch** awaits the source's ``kill`` (:mod:`makerlab.monitor.source`; the
  paper venue's page: the operator's halt). A strategy's page: ``oms.kill("monitoring
  page")`` (every exchange cancelled,
  order entry refused until ``oms.rearm()``) and answers ``{"ok", "reason", "detail",
  "open_before", "open_after"}``: the live orders before, and those the mirror shows
  live without a cancel pending once the cancels were sent (a PENDING order the venue has
  not answered yet stays so until it does; the page shows the venue's answers as they
  come). Both answer a ``message`` line the page shows.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from importlib import resources
from pathlib import Path
from typing import Any

import orjson
from aiohttp import WSMsgType, web

from makerlab.errors import ConfigError
from makerlab.monitor.auth import COOKIE, HEADER, Access, Refusal, kill_request, presented
from makerlab.monitor.collect import Collector
from makerlab.monitor.config import PageConfig
from makerlab.monitor.source import PageSource
from makerlab.monitor.taps import FeedTap, OrderTap
from makerlab.monitor.views import Snapshot

__all__ = ["Monitor"]

log = logging.getLogger(__name__)

STATIC = Path(str(resources.files("makerlab.monitor") / "static"))
_FILES = {"page.js": "text/javascript", "page.css": "text/css",
          "uPlot.iife.min.js": "text/javascript", "uPlot.min.css": "text/css"}
_SECURITY = {"X-Content-Type-Options": "nosniff", "X-Frame-Options": "DENY",
             "Referrer-Policy": "no-referrer", "Cache-Control": "no-store",
             "Content-Security-Policy": "default-src 'self'; connect-src 'self'; "
                                        "style-src 'self' 'unsafe-inline'; img-src 'self' data:"}


class Monitor:
    """The page of a running strategy (rules in the module docstring).

    Args:
        oms: the strategy's OMS (None with ``source``).
        feed: its Feed (books, feed health); ``None`` shows orders and positions only.
        config: a :class:`~makerlab.monitor.config.PageConfig`, or its keywords
            (``host``, ``port``, ``token``, ``interval_s``, ...) directly.
        source: another :class:`~makerlab.monitor.source.PageSource` to serve instead of
            the OMS's :class:`~makerlab.monitor.collect.Collector` (the paper exchange's
            desk, ``makerlab paper --page``).
    """

    def __init__(self, oms: Any = None, feed: Any = None, config: PageConfig | None = None,
                 *, source: PageSource | None = None, **options: Any) -> None:
        if config is not None and options:
            raise TypeError("Monitor: give either config= or PageConfig's keywords, not both")
        if (oms is None) == (source is None):
            raise TypeError("Monitor: give an oms or a source (one of them)")
        self.config = config if config is not None else PageConfig(**options)
        self.oms, self.feed = oms, feed
        self.order_tap, self.feed_tap = OrderTap(self.config.fills), FeedTap()
        self.source: PageSource = source if source is not None else Collector(
            oms, feed, self.config, self.order_tap, self.feed_tap)
        self.access = Access(str(self.config.token), open_to_look=self.config.local)
        self.latest: Snapshot | None = None
        self._encoded = b""
        self._history: deque[bytes] = deque(maxlen=self.config.history)
        self._sockets: set[web.WebSocketResponse] = set()
        self._task: asyncio.Task[None] | None = None
        self._runner: web.AppRunner | None = None
        self._state = "new"
        self.port = self.config.port
        self.snapshot_ns: deque[int] = deque(maxlen=1000)  # time each take() cost

    def __repr__(self) -> str:
        return f"Monitor({self.config.host}:{self.port}, {self._state})"

    @property
    def url(self) -> str:
        """The page's address (without the token)."""
        host = f"[{self.config.host}]" if ":" in self.config.host else self.config.host
        return f"http://{host}:{self.port}/"

    @property
    def login_url(self) -> str:
        """The page's address with its token: opening it sets the token cookie."""
        return f"{self.url}?token={self.config.token}"

    # -- lifecycle -----------------------------------------------------------------------

    async def start(self) -> Monitor:
        """Attach the taps, take a first snapshot, listen; returns self."""
        if self._state != "new":
            raise ConfigError(f"{self!r}: start() once (state {self._state})")
        self._state = "starting"
        self.source.attach()
        self._snap()
        self._runner = web.AppRunner(self._app(), handle_signals=False, access_log=None,
                                     shutdown_timeout=0.5)
        await self._runner.setup()
        await web.TCPSite(self._runner, self.config.host, self.config.port).start()
        self.port = self._runner.addresses[0][1]
        self._task = asyncio.create_task(self._run(), name="makerlab-monitor-snapshots")
        self._state = "running"
        log.info("monitoring page at %s", self.url)
        return self

    async def stop(self) -> None:
        """Stop snapshots, close every websocket and the site (idempotent)."""
        if self._state in ("new", "stopped"):
            self._state = "stopped"
            return
        self._state = "stopped"
        if self._task is not None:
            self._task.cancel()
            done, _ = await asyncio.wait({self._task}, timeout=5)  # never hang an exit
            if not done:
                log.error("monitoring page: the snapshot task did not stop")
        for ws in list(self._sockets):
            await _close(ws)
        if self._runner is not None:
            await self._runner.cleanup()
        self.source.detach()

    async def __aenter__(self) -> Monitor:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # -- snapshots -----------------------------------------------------------------------

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.config.interval_s)
            try:
                message = self._snap()
            except Exception:  # a page must never stop the strategy
                log.exception("monitoring page: snapshot failed")
                continue
            for ws in list(self._sockets):
                await _push(ws, message)

    def _snap(self) -> bytes:
        """Take, encode and keep one snapshot; the websocket message."""
        from time import perf_counter_ns

        start = perf_counter_ns()
        self.latest = self.source.take()
        self._encoded = orjson.dumps(self.latest)
        point = orjson.dumps(_chart_point(self.latest))
        self._history.append(point)
        self.snapshot_ns.append(perf_counter_ns() - start)
        return b'{"type":"snapshot","snapshot":' + self._encoded + b',"point":' + point + b"}"

    # -- web -----------------------------------------------------------------------------

    def _app(self) -> web.Application:
        app = web.Application(middlewares=[self._guard], client_max_size=4096)
        app.add_routes([web.get("/", self._page), web.get("/static/{name}", self._static),
                        web.get("/api/snapshot", self._snapshot), web.get("/ws", self._ws),
                        web.post("/api/kill", self._kill),
                        web.get("/favicon.ico", self._no_icon)])
        return app

    @web.middleware
    async def _guard(self, request: web.Request, handler: Any) -> web.StreamResponse:
        """Access rules for every request; refusals as JSON with their status."""
        try:
            token = presented(request.headers, request.cookies, request.query,
                              self.access)
            self.access.check_look(token)
            if request.path == "/api/kill":
                self.access.check_act(request.headers.get(HEADER),
                                      request.headers.get("Origin"), request.host)
            response = await handler(request)
        except Refusal as refusal:
            response = web.json_response({"ok": False, "error": str(refusal)},
                                         status=refusal.status)
        if not isinstance(response, web.WebSocketResponse):
            response.headers.update(_SECURITY)
        return response

    async def _page(self, request: web.Request) -> web.StreamResponse:
        response = web.Response(body=(STATIC / "index.html").read_bytes(),
                                content_type="text/html", charset="utf-8")
        if "token" in request.query:  # a valid token (the guard checked): keep it
            response.set_cookie(COOKIE, request.query["token"], httponly=True,
                                samesite="Strict", path="/")
        return response

    async def _no_icon(self, request: web.Request) -> web.StreamResponse:
        return web.Response(status=204)

    async def _static(self, request: web.Request) -> web.StreamResponse:
        name = request.match_info["name"]
        if name not in _FILES:
            raise Refusal(404, "no such file")
        return web.Response(body=(STATIC / name).read_bytes(), content_type=_FILES[name])

    async def _snapshot(self, request: web.Request) -> web.StreamResponse:
        return web.Response(body=self._encoded, content_type="application/json")

    async def _ws(self, request: web.Request) -> web.StreamResponse:
        ws = web.WebSocketResponse(heartbeat=20, max_msg_size=1024)
        await ws.prepare(request)
        authorized = presented(request.headers, request.cookies, request.query,
                               self.access) is not None
        hello = (b'{"type":"hello","authorized":' + (b"true" if authorized else b"false")
                 + b',"history":[' + b",".join(self._history) + b'],"snapshot":'
                 + (self._encoded or b"null") + b"}")
        await ws.send_bytes(hello)
        self._sockets.add(ws)
        try:
            async for message in ws:  # the page sends nothing: anything else is refused
                if message.type in (WSMsgType.TEXT, WSMsgType.BINARY):
                    await ws.close(code=1008, message=b"this socket takes no input")
        finally:
            self._sockets.discard(ws)
        return ws

    async def _kill(self, request: web.Request) -> web.StreamResponse:
        try:
            body = await request.json(loads=orjson.loads)
        except (orjson.JSONDecodeError, ValueError):
            raise Refusal(400, "the body must be JSON") from None
        note = kill_request(body)
        result = await self.source.kill(note)
        self._snap()
        return web.json_response(result, dumps=lambda r: orjson.dumps(r).decode())

    @property
    def collector(self) -> Collector:
        """The OMS's collector (a Monitor of an OMS)."""
        assert isinstance(self.source, Collector), "this page serves another source"
        return self.source


async def _push(ws: web.WebSocketResponse, message: bytes) -> None:
    """Send to one page; a page gone or too slow is dropped, never waited for long."""
    try:  # asyncio.timeout, not wait_for: on 3.11 wait_for can swallow the task's cancel
        async with asyncio.timeout(1.0):
            await ws.send_bytes(message)
    except (ConnectionError, RuntimeError, TimeoutError):
        await _close(ws)


async def _close(ws: web.WebSocketResponse) -> None:
    """Close one page's socket, waiting at most 1 s (aiohttp's close can wait without end
    for the socket's reader when the page went away at the same time); the site's
    cleanup closes what is left."""
    with contextlib.suppress(TimeoutError, ConnectionError, RuntimeError):
        async with asyncio.timeout(1.0):
            await ws.close()


def _chart_point(s: Snapshot) -> dict[str, Any]:
    """What the charts keep of one snapshot."""
    return {"t": s.time_ms,
            "m": {f"{m.exchange}/{m.ticker}": [
                m.realized_pnl + (m.unrealized_pnl or 0.0), m.position, m.mid, m.best_bid,
                m.best_ask, max((o.price for o in m.orders if o.side > 0 and o.price),
                                default=None),
                min((o.price for o in m.orders if o.side < 0 and o.price), default=None)]
                for m in s.markets},
            "a": {a.exchange: [a.pnl, a.equity] for a in s.accounts}}
