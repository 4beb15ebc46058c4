"""A fake private venue on 127.0.0.1 (port 0): async REST handlers keyed by (method,
path) and websocket handlers keyed by path, each a plain function the test writes (it
verifies signatures with the test's secret and answers as the venue would). Records every
REST call; ``push`` sends a frame to every open socket of a path (one whose client is
leaving is skipped); ``on_connect`` handlers run when a socket of their path opens (a
stream that speaks first)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from aiohttp import WSMsgType, web

RestHandler = Callable[[web.Request, bytes], Awaitable[web.Response]]
Frame = Callable[["Conn", str], Awaitable[None]]


@dataclass
class Conn:
    """One accepted socket: the request that opened it and the frames it sent."""

    ws: web.WebSocketResponse
    request: web.Request
    received: list[str] = field(default_factory=list)

    async def send(self, frame: bytes | str) -> None:
        await self.ws.send_str(frame.decode() if isinstance(frame, bytes) else frame)


class FakePrivate:
    def __init__(self) -> None:
        self.rest: dict[tuple[str, str], RestHandler] = {}
        self.sockets: dict[str, Frame] = {}
        self.on_connect: dict[str, Callable[[Conn], Awaitable[None]]] = {}
        self.calls: list[tuple[str, str, dict[str, str], bytes]] = []
        self.conns: dict[str, list[Conn]] = {}
        self.url = ""
        self._runner: web.AppRunner | None = None

    async def __aenter__(self) -> FakePrivate:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.url = f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}"
        return self

    async def __aexit__(self, *exc: object) -> None:
        for conns in self.conns.values():
            for conn in conns:
                await conn.ws.close()
        assert self._runner is not None
        await self._runner.cleanup()

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        if request.path in self.sockets and request.headers.get("Upgrade"):
            return await self._socket(request)
        body = await request.read()
        self.calls.append((request.method, request.path_qs, dict(request.headers), body))
        handler = self.rest.get((request.method, request.path))
        if handler is None:
            return web.Response(status=404, text=f"no route {request.method} {request.path}")
        return await handler(request, body)

    async def _socket(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        conn = Conn(ws, request)
        self.conns.setdefault(request.path, []).append(conn)
        greet = self.on_connect.get(request.path)
        if greet is not None:
            await greet(conn)
        async for msg in ws:
            if msg.type is WSMsgType.TEXT:
                conn.received.append(msg.data)
                await self.sockets[request.path](conn, msg.data)
        return ws

    async def push(self, path: str, frame: bytes | str) -> None:
        for conn in self.conns.get(path, []):
            if not conn.ws.closed:
                # A client that has just left (its close not read yet): a venue sends on,
                # and the test is not told.
                with contextlib.suppress(ConnectionResetError):
                    await conn.send(frame)

    async def drop(self, path: str) -> None:
        for conn in self.conns.get(path, []):
            await conn.ws.close()


def json_response(data: object, status: int = 200,
                  headers: dict[str, str] | None = None) -> web.Response:
    import orjson
    return web.Response(body=orjson.dumps(data), status=status, headers=headers,
                        content_type="application/json")


async def until(predicate: Callable[[], bool], what: str, tries: int = 500) -> None:
    """Wait (bounded) until ``predicate()`` holds."""
    for _ in range(tries):
        if predicate():
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"never happened: {what}")


class Recorder:
    """An OrderListener that keeps everything it is given."""

    def __init__(self) -> None:
        self.updates: list = []
        self.fills: list = []
        self.positions: list = []
        self.balances: list = []
        self.order: list = []  # (kind, event) in arrival order

    async def on_order_update(self, update) -> None:
        self.updates.append(update)
        self.order.append(("update", update))

    async def on_fill(self, fill) -> None:
        self.fills.append(fill)
        self.order.append(("fill", fill))

    async def on_position(self, position) -> None:
        self.positions.append(position)

    async def on_balance(self, balance) -> None:
        self.balances.append(balance)


@contextlib.asynccontextmanager
async def started(gateway):
    """``gateway`` opened and its order venue started; everything closed after."""
    await gateway.init_clients()
    venue = gateway.order_venue()
    try:
        await venue.start()
        yield venue
    finally:
        await gateway.cleanup_clients()
