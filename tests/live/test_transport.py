"""Rules of makerlab.live.transport the venue tests do not reach: the REST client's error
mapping by status, and a quiet socket's heartbeat (a user stream), against a fake server
on 127.0.0.1."""

from __future__ import annotations

import asyncio

import aiohttp
import pytest
from aiohttp import web
from fake_venue import FakeVenue, Socket

from makerlab.errors import AuthError, ConnectionLost, RateLimited, VenueError
from makerlab.live.transport import Link, ReconnectPolicy, RestClient, WsSupervisor
from makerlab.live.venues.base import Request


def _run(coro):
    return asyncio.run(asyncio.wait_for(coro, 30))


def _answer(status: int):
    return lambda _request: web.Response(status=status, text="refused")


async def _slow(_request) -> bytes:
    await asyncio.sleep(2)
    return b"{}"


@pytest.mark.parametrize("route, error", [
    (_answer(400), VenueError), (_answer(503), VenueError), (_answer(418), RateLimited),
    (_answer(429), RateLimited), (_answer(401), AuthError), (_slow, ConnectionLost)],
    ids=["400", "503", "418", "429", "401", "timeout"])
def test_rest_errors_map_to_venue_errors_by_status(route, error):
    async def main():
        async with FakeVenue() as venue:
            venue.routes = {"/x": route}
            async with aiohttp.ClientSession() as session:
                rest = RestClient(session, venue.url, venue="binance", timeout=0.5)
                with pytest.raises(VenueError) as info:
                    await rest.request(Request("GET", "/x"))
                return info.value

    raised = _run(main())
    assert type(raised) is error and "/x" in str(raised)


class Quiet:
    """The handler of a quiet socket (a user stream): no frames, protocol pings every
    ``heartbeat`` s."""

    ping_frame = None
    ping_interval = 0.0

    def __init__(self, url: str, heartbeat: float) -> None:
        self._url, self.heartbeat = url, heartbeat
        self.closes: list[str] = []

    def url(self) -> str:
        return self._url

    async def on_open(self, link: Link) -> None:
        pass

    async def on_frame(self, data: str | bytes, local_ts: int, link: Link) -> None:
        pass

    async def on_close(self, reason: str) -> None:
        self.closes.append(reason)


@pytest.mark.parametrize("answered", [True, False], ids=["pongs", "no-pongs"])
def test_watchdog_a_quiet_socket_with_a_heartbeat_is_closed_by_a_missing_pong_not_silence(
        answered):
    """Silence for ten watchdog periods does not close a socket with a heartbeat; a
    server that stops answering its pings does."""
    async def script(sock: Socket) -> None:
        await asyncio.sleep(10)

    async def main():
        async with FakeVenue(autoping=answered) as venue:
            venue.scripts = {"/quiet": script}
            handler = Quiet(venue.url.replace("http", "ws", 1) + "/quiet", heartbeat=0.1)
            policy = ReconnectPolicy(initial_delay=0.01, max_delay=0.02, watchdog=0.05)
            async with aiohttp.ClientSession() as session:
                supervisor = WsSupervisor(session, handler, policy, name="quiet")
                task = asyncio.create_task(supervisor.run())
                await asyncio.sleep(0.5)
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
                return supervisor.connections, handler.closes

    connections, closes = _run(main())
    if answered:
        assert (connections, closes) == (1, [])
    else:
        assert connections >= 2 and closes
