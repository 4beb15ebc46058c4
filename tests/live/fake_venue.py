"""A scriptable fake venue on 127.0.0.1 (port 0): REST routes and websocket paths that
push scripted frames, record what the client sent, and can drop the socket."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import WSMsgType, web

Script = Callable[["Socket"], Awaitable[None]]


class Socket:
    """One accepted client socket, as a script sees it."""

    def __init__(self, ws: web.WebSocketResponse, request: web.Request, venue: FakeVenue):
        self.ws, self.request, self.venue = ws, request, venue
        self.received: list[str] = []
        self._inbox: asyncio.Queue[str] = asyncio.Queue()

    async def send(self, frame: bytes | str) -> None:
        await self.ws.send_str(frame.decode() if isinstance(frame, bytes) else frame)

    async def next_message(self, timeout: float = 5.0) -> str:
        return await asyncio.wait_for(self._inbox.get(), timeout)

    async def drop(self) -> None:
        await self.ws.close()


class FakeVenue:
    """``routes``: path -> response body (bytes) or callable(request) -> bytes (or a
    whole response, or an awaitable of either); ``scripts``: websocket path -> coroutine
    run for each connection; ``autoping=False``: its sockets answer no pings."""

    def __init__(self, heartbeat: float | None = None, autoping: bool = True) -> None:
        self.routes: dict[str, bytes | Callable[[web.Request], Any]] = {}
        self.scripts: dict[str, Script] = {}
        self.sockets: list[Socket] = []
        self.requests: list[str] = []
        self.heartbeat, self.autoping = heartbeat, autoping
        self._runner: web.AppRunner | None = None
        self.url = ""

    async def __aenter__(self) -> FakeVenue:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"
        return self

    async def __aexit__(self, *exc: object) -> None:
        for sock in self.sockets:
            await sock.ws.close()
        assert self._runner is not None
        await self._runner.cleanup()

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        if request.path in self.scripts:
            return await self._websocket(request)
        self.requests.append(request.path_qs)
        body = self.routes.get(request.path)
        if body is None:
            return web.Response(status=404, text=f"no route {request.path}")
        if callable(body):
            body = body(request)
            if inspect.isawaitable(body):
                body = await body
        if isinstance(body, web.StreamResponse):
            return body
        return web.Response(body=body, content_type="application/json")

    async def _websocket(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(heartbeat=self.heartbeat, autoping=self.autoping)
        await ws.prepare(request)
        sock = Socket(ws, request, self)
        self.sockets.append(sock)
        script = asyncio.create_task(self.scripts[request.path](sock))
        try:
            async for msg in ws:
                if msg.type is WSMsgType.TEXT:
                    sock.received.append(msg.data)
                    sock._inbox.put_nowait(msg.data)
        finally:
            script.cancel()
            await asyncio.gather(script, return_exceptions=True)
        return ws
