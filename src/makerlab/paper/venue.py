"""What every venue protocol of the paper exchange shares: its markets, the clock, the
fault machinery and the websocket plumbing. Each protocol module (``binance``, ``bybit``,
``hyperliquid``) subclasses :class:`Venue` with its routes, topics and wire encoding.
"""

from __future__ import annotations

import hashlib
import itertools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson
from aiohttp import web

from makerlab.paper.faults import FaultInjector, FaultLog, FaultSpec
from makerlab.paper.market import Market, MarketClock
from makerlab.paper.session import Hub, Session, SessionFaults
from makerlab.paper.source import BookMessage, TradePrint
from makerlab.units import NS_PER_MS

__all__ = ["Venue", "VenueContext", "json_response", "ms", "numeric_id"]


@dataclass(frozen=True)
class VenueContext:
    """The server-wide parts a venue works with."""

    clock: MarketClock
    hub: Hub
    faults: FaultSpec
    fault_log: FaultLog
    lockstep: bool = False


def ms(ns: int) -> int:
    """Nanoseconds to the integer milliseconds venues put on the wire."""
    return ns // NS_PER_MS


def numeric_id(trade_id: str) -> int:
    """An archived trade id as the integer some venues send: itself when it is a number,
    else a stable 52-bit hash of it."""
    if trade_id.isdigit():
        return int(trade_id)
    return int(hashlib.blake2b(trade_id.encode(), digest_size=8).hexdigest()[:13], 16)


def json_response(body: Any, status: int = 200,
                  headers: dict[str, str] | None = None) -> web.Response:
    """A JSON HTTP response (orjson)."""
    return web.Response(body=orjson.dumps(body), status=status, headers=headers,
                        content_type="application/json")


class Venue:
    """One protocol serving some markets (keyed by their wire symbol).

    Subclasses set :attr:`protocol`, implement :meth:`routes` and the market listener
    methods :meth:`on_book`, :meth:`on_trade` and :meth:`on_end`.
    """

    protocol = ""

    def __init__(self, context: VenueContext, markets: list[Market]) -> None:
        self.context = context
        self.markets = {self.wire_symbol(m): m for m in markets}
        self._sessions = itertools.count(1)
        rng = context.faults.rng(self.protocol, "rest")
        self._rest: FaultInjector[None] = FaultInjector(context.faults, context.fault_log,
                                                        f"{self.protocol} REST", rng)
        for market in markets:
            market.listeners.append(self)

    def wire_symbol(self, market: Market) -> str:
        """The instrument's name on this venue's wire (the archive's symbol)."""
        return market.symbol

    def routes(self) -> list[web.RouteDef]:
        """The REST and websocket routes, relative to the venue's path prefix."""
        raise NotImplementedError

    def on_book(self, market: Market, message: BookMessage) -> None:
        raise NotImplementedError

    def on_trade(self, market: Market, trade: TradePrint) -> None:
        raise NotImplementedError

    def on_end(self, market: Market) -> None:
        raise NotImplementedError

    def now_ms(self) -> int:
        """The market's exchange time in ms (the venue's server time)."""
        return ms(self.context.clock.exchange_ns())

    def stale_back(self) -> int:
        """How many messages back a REST book request is served (the stale fault)."""
        return self._rest.stale_back()

    async def serve_websocket(self, request: web.Request,
                              make: Callable[[web.WebSocketResponse, SessionFaults, str],
                                             Session],
                              heartbeat: float | None = None) -> web.WebSocketResponse:
        """Accept a websocket and run the session ``make`` builds until it closes."""
        ws = web.WebSocketResponse(heartbeat=heartbeat, autoping=True)
        await ws.prepare(request)
        number = next(self._sessions)
        name = f"{self.protocol}#{number}"
        faults: SessionFaults = FaultInjector(self.context.faults, self.context.fault_log, name,
                               self.context.faults.rng(self.protocol, number))
        await make(ws, faults, name).serve()
        return ws
