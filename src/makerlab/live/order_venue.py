"""The live :class:`~makerlab.trading.protocols.OrderVenue`: order entry and account state
over the Gateway's private clients, one per configured exchange with credentials.

``gateway.order_venue()`` builds it; ``await venue.start()`` logs in and opens the user
streams (the Gateway's ``cleanup_clients()`` closes it). Rules, on top of the protocol's:

- **every answer is an event**: ``submit``/``cancel``/``amend``/``submit_batch`` send the
  request, turn each answer into an :class:`~makerlab.core.events.OrderUpdate` (ACK /
  REJECT / CANCEL_ACK / CANCEL_REJECT / AMEND_ACK / AMEND_REJECT, venue ``code`` and
  ``reason``) and hand it to every listener before returning. Fills, expiries and the
  order's later life come from the user stream.
- **the user stream** delivers ``OrderUpdate`` and ``Fill`` to every listener, and
  ``PositionState``/``BalanceState`` to listeners that have ``on_position`` /
  ``on_balance``; the latest of each is kept (``latest_positions``/``latest_balances``).
- **dead-man switch**: ``arm_dead_man(exchange, timeout_ms)`` asks the venue to cancel
  every open order if it is not armed again within ``timeout_ms`` (0 disarms);
  ``keep_dead_man`` re-arms it periodically in an owned task.
- **rate limits**: ``rate_limits(exchange)`` is the venue's :class:`RateLimitState`; a
  call while the venue's retry-after runs raises :class:`~makerlab.errors.RateLimited`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import cast

from makerlab.core.clock import Clock
from makerlab.core.events import BalanceState, Fill, OrderUpdate, PositionState
from makerlab.core.instruments import InstrumentSpec
from makerlab.errors import ConfigError
from makerlab.live.private import AccountEvent, PrivateClient
from makerlab.live.ratelimit import RateLimitState
from makerlab.live.venues.private_base import Op, OpKind, Snapshot, answer_update
from makerlab.trading.protocols import AmendRequest, CancelRequest, OrderListener, OrderRequest

__all__ = ["LiveOrderVenue"]

log = logging.getLogger(__name__)

SpecLoader = Callable[[str], Awaitable[dict[str, InstrumentSpec]]]


class LiveOrderVenue:
    """Order entry on live venues (rules in the module docstring)."""

    def __init__(self, clients: Mapping[str, PrivateClient], load_specs: SpecLoader,
                 clock: Clock) -> None:
        self.clock = clock
        self._clients = dict(clients)
        self._load_specs = load_specs
        self._specs: dict[str, dict[str, InstrumentSpec]] = {}
        self._listeners: list[OrderListener] = []
        self._tasks: list[asyncio.Task[None]] = []
        self.latest_positions: dict[tuple[str, str], PositionState] = {}
        self.latest_balances: dict[tuple[str, str], BalanceState] = {}

    def add_clients(self, clients: Mapping[str, PrivateClient]) -> None:
        """Called by the Gateway once the clients (which deliver to this venue) exist."""
        self._clients.update(clients)

    def __repr__(self) -> str:
        return f"LiveOrderVenue({', '.join(self._clients) or 'no exchanges'})"

    def exchanges(self) -> list[str]:
        return list(self._clients)

    def attach(self, listener: OrderListener) -> None:
        if listener not in self._listeners:
            self._listeners.append(listener)

    def spec(self, exchange: str, symbol: str) -> InstrumentSpec:
        try:
            return self._specs[exchange][symbol]
        except KeyError:
            raise ConfigError(f"no instrument spec for {exchange}/{symbol}: unknown symbol, "
                              "or the venue is not started") from None

    def rate_limits(self, exchange: str) -> RateLimitState:
        return self._client(exchange).limits

    def client(self, exchange: str) -> PrivateClient:
        """The exchange's private client (its venue translation, order socket state)."""
        return self._client(exchange)

    def _client(self, exchange: str) -> PrivateClient:
        client = self._clients.get(exchange)
        if client is None:
            raise ConfigError(f"exchange {exchange!r} has no order entry configured (needs "
                              f"key and secret); configured: {', '.join(self._clients) or 'none'}")
        return client

    # -- lifecycle -----------------------------------------------------------------------

    async def start(self) -> None:
        """Load instrument specs, log in, open the user streams and order sockets."""
        for exchange, client in self._clients.items():
            self._specs[exchange] = await self._load_specs(exchange)
            await client.start()

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()
        for client in self._clients.values():
            await client.close()

    # -- order entry ---------------------------------------------------------------------

    async def submit(self, request: OrderRequest) -> None:
        await self._run(Op(OpKind.PLACE, request.exchange, request.symbol, (request,)))

    async def submit_batch(self, requests: Sequence[OrderRequest]) -> None:
        """Several new orders of one exchange, in as few calls as the venue allows."""
        if not requests:
            return
        exchange = requests[0].exchange
        size = self._client(exchange).venue.max_batch
        for start in range(0, len(requests), size):
            chunk = tuple(requests[start:start + size])
            kind = OpKind.BATCH if len(chunk) > 1 else OpKind.PLACE
            await self._run(Op(kind, exchange, chunk[0].symbol, chunk))

    async def cancel(self, request: CancelRequest) -> None:
        if request.cloid is None and request.oid is None:
            raise ConfigError("cancel needs a cloid or an oid")
        await self._run(Op(OpKind.CANCEL, request.exchange, request.symbol, (request,)))

    async def amend(self, request: AmendRequest) -> None:
        if request.cloid is None and request.oid is None:
            raise ConfigError("amend needs a cloid or an oid")
        await self._run(Op(OpKind.AMEND, request.exchange, request.symbol, (request,)))

    async def cancel_all(self, exchange: str, symbol: str | None = None) -> None:
        """Cancel every open order of ``exchange`` (of ``symbol`` only, if given); on a
        venue without a cancel-all call, each open order of its snapshot in turn."""
        if self._client(exchange).venue.has_cancel_all:
            await self._run(Op(OpKind.CANCEL_ALL, exchange, symbol))
            return
        for order in await self.open_orders(exchange):
            if symbol is None or order.symbol == symbol:
                await self.cancel(CancelRequest(exchange, order.symbol, order.cloid, order.oid))

    async def arm_dead_man(self, exchange: str, timeout_ms: int,
                           symbol: str | None = None) -> None:
        """Cancel every open order of ``exchange`` unless armed again within
        ``timeout_ms`` (0 disarms). Binance arms it per symbol (``symbol`` required)."""
        await self._run(Op(OpKind.DEAD_MAN, exchange, symbol, timeout_ms=timeout_ms))

    def keep_dead_man(self, exchange: str, timeout_ms: int, every_s: float,
                      symbol: str | None = None) -> None:
        """Re-arm the dead-man switch every ``every_s`` seconds until ``close()``."""
        async def loop() -> None:
            while True:
                await self.arm_dead_man(exchange, timeout_ms, symbol)
                await asyncio.sleep(every_s)
        self._tasks.append(asyncio.create_task(loop(), name=f"makerlab-deadman-{exchange}"))

    async def _run(self, op: Op) -> None:
        answers = await self._client(op.exchange).call(op)
        local_ts = self.clock.now_ns()
        for index, answer in enumerate(answers):
            update = answer_update(op, index, answer, local_ts)
            if update is not None:
                await self.deliver(update)
            elif not answer.ok:
                log.warning("%s %s refused: %s %s", op.exchange, op.kind, answer.code,
                            answer.reason)

    # -- account state -------------------------------------------------------------------

    async def open_orders(self, exchange: str) -> list[OrderUpdate]:
        return cast(list[OrderUpdate],
                    list(await self._client(exchange).snapshot(Snapshot.ORDERS)))

    async def positions(self, exchange: str) -> list[PositionState]:
        return cast(list[PositionState],
                    list(await self._client(exchange).snapshot(Snapshot.POSITIONS)))

    async def balances(self, exchange: str) -> list[BalanceState]:
        return cast(list[BalanceState],
                    list(await self._client(exchange).snapshot(Snapshot.BALANCES)))

    # -- delivery (the clients' EventSink) -------------------------------------------------

    async def deliver(self, event: AccountEvent) -> None:
        if isinstance(event, OrderUpdate):
            for listener in self._listeners:
                await listener.on_order_update(event)
        elif isinstance(event, Fill):
            for listener in self._listeners:
                await listener.on_fill(event)
        elif isinstance(event, PositionState):
            self.latest_positions[(event.exchange, event.symbol)] = event
            await self._optional("on_position", event)
        else:
            self.latest_balances[(event.exchange, event.asset)] = event
            await self._optional("on_balance", event)

    async def _optional(self, name: str, event: PositionState | BalanceState) -> None:
        for listener in self._listeners:
            handler = getattr(listener, name, None)
            if handler is not None:
                await handler(event)
