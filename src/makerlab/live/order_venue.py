"""The live :class:`~makerlab.trading.protocols.OrderVenue`: order entry and account state
over the Gateway's private clients, one per configured exchange with credentials.

``gateway.order_venue()`` builds it; ``await venue.start()`` logs in and opens the user
streams (the Gateway's ``cleanup_clients()`` closes it). Rules, on top of the protocol's:

- **every answer is an event**: ``submit``/``cancel``/``amend``/``submit_batch`` send the
  request, turn each answer into an :class:`~makerlab.core.events.OrderUpdate` (ACK /
  REJECT / CANCEL_ACK / CANCEL_REJECT / AMEND_ACK / AMEND_REJECT, venue ``code`` and
  ``reason``) and hand it to every listener before returning. An answer reports what the
  venue said and marks the rest unknown (``filled=None``, status ``""``), with
  ``update_id`` 0: it never outranks the order's stream updates
  (:func:`~makerlab.live.venues.private_base.answer_update`). Fills, expiries and the
  order's later life come from the user stream.
- **the user stream** delivers ``OrderUpdate`` and ``Fill`` to every listener;
  ``PositionState``/``BalanceState`` and the stream's ``FeedStatus`` (CONNECTED /
  DISCONNECTED) to listeners that have ``on_position`` / ``on_balance`` / ``on_status``;
  the latest position and balance are kept (``latest_positions``/``latest_balances``; a
  balance that does not state its available balance, ``None``, keeps the last stated).
- **a failing listener does not stop the stream**: its exception is logged and handed to
  the failure handlers (``add_failure_handler``: the OMS's kill switch); the next
  listeners and events are still delivered, so the mirror stays current.
- **safety calls reach the venue**: ``cancel_all`` and ``arm_dead_man`` whose websocket
  request is lost are sent again over REST (they are idempotent). Where the venue scopes
  them to one symbol (Binance both, WOO X cancel-all), ``cancel_all(exchange)`` covers
  every symbol of the open-orders snapshot and ``arm_dead_man(exchange, ms)`` every symbol
  this venue has sent orders on or seen open orders of.
- **dead-man switch**: ``arm_dead_man(exchange, timeout_ms)`` asks the venue to cancel
  every open order if it is not armed again within ``timeout_ms`` (0 disarms);
  ``keep_dead_man`` re-arms it periodically in an owned task (a failed arming is logged
  and tried again next period). Where it is per symbol and armed, a symbol's first order
  arms it for that symbol before it leaves.
- **clock callbacks** (:class:`~makerlab.trading.protocols.VenueTimers`): ``add_timer``
  runs a callback every ``interval_ms`` of the wall clock in an owned task; a late
  callback skips the ticks it missed rather than bursting. A callback that raises ends its
  timer (logged).
- **rate limits**: ``rate_limits(exchange)`` is the venue's :class:`RateLimitState`; a
  call while the venue's retry-after runs raises :class:`~makerlab.errors.RateLimited`.
- **closing tells the listeners first**: ``close()`` awaits each listener's ``on_close``
  (the OMS cancels everything while the connections are still open), then stops every
  task and connection.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Coroutine, Iterable, Mapping, Sequence
from decimal import Decimal
from typing import Any, cast

from makerlab.core.callbacks import run_handlers
from makerlab.core.clock import Clock
from makerlab.core.events import (
    BalanceState,
    FeedStatus,
    Fill,
    FundingState,
    OrderUpdate,
    PositionState,
    kept_available,
)
from makerlab.core.instruments import InstrumentSpec
from makerlab.errors import ConfigError, ConnectionLost, VenueError
from makerlab.live.private import AccountEvent, PrivateClient
from makerlab.live.ratelimit import RateLimitState
from makerlab.live.venues.private_base import Op, OpKind, Snapshot, answer_update
from makerlab.trading.protocols import AmendRequest, CancelRequest, OrderListener, OrderRequest
from makerlab.units import NS_PER_MS, NS_PER_S

__all__ = ["LiveOrderVenue"]

log = logging.getLogger(__name__)

SpecLoader = Callable[[str], Awaitable[dict[str, InstrumentSpec]]]
FailureHandler = Callable[[BaseException], Awaitable[None]]


class LiveOrderVenue:
    """Order entry on live venues (rules in the module docstring)."""

    def __init__(self, clients: Mapping[str, PrivateClient], load_specs: SpecLoader,
                 clock: Clock) -> None:
        self.clock = clock
        self._clients = dict(clients)
        self._load_specs = load_specs
        self._specs: dict[str, dict[str, InstrumentSpec]] = {}
        self._listeners: list[OrderListener] = []
        self._failure_handlers: list[FailureHandler] = []
        self._tasks: list[asyncio.Task[None]] = []
        self._active: dict[str, set[str]] = {}
        self._armed: dict[str, int] = {}  # the dead-man timeout last armed, by exchange
        self._started = False
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

    def add_failure_handler(self, handler: FailureHandler) -> None:
        """Await ``handler(error)`` when a listener raises (see the module docstring)."""
        self._failure_handlers.append(handler)

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
        """Load instrument specs, log in, open the user streams and order sockets (once)."""
        if self._started:
            return
        self._started = True
        for exchange, client in self._clients.items():
            self._specs[exchange] = await self._load_specs(exchange)
            await client.start()

    async def close(self) -> None:
        for listener in list(self._listeners):
            on_close = getattr(listener, "on_close", None)
            if on_close is not None:
                await on_close()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)  # failures were logged
        self._tasks.clear()
        for client in self._clients.values():
            await client.close()

    def _spawn(self, coro: Coroutine[Any, Any, None], name: str) -> None:
        task = asyncio.create_task(coro, name=name)
        task.add_done_callback(_log_failure)
        self._tasks.append(task)

    # -- order entry ---------------------------------------------------------------------

    async def submit(self, request: OrderRequest) -> None:
        await self._cover(request.exchange, [request.symbol])
        await self._run(Op(OpKind.PLACE, request.exchange, request.symbol, (request,)))

    async def submit_batch(self, requests: Sequence[OrderRequest]) -> None:
        """Several new orders of one exchange, in as few calls as the venue allows."""
        if not requests:
            return
        exchange = requests[0].exchange
        await self._cover(exchange, [r.symbol for r in requests])
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
        venue = self._client(exchange).venue
        if not venue.has_cancel_all:
            for order in await self.open_orders(exchange):
                if symbol is None or order.symbol == symbol:
                    await self._safe(Op(OpKind.CANCEL, exchange, order.symbol, (
                        CancelRequest(exchange, order.symbol, order.cloid, order.oid),)))
            return
        for scope in await self._scopes(exchange, OpKind.CANCEL_ALL, symbol, snapshot=True):
            await self._safe(Op(OpKind.CANCEL_ALL, exchange, scope))

    async def arm_dead_man(self, exchange: str, timeout_ms: int,
                           symbol: str | None = None) -> None:
        """Cancel every open order of ``exchange`` unless armed again within
        ``timeout_ms`` (0 disarms); per symbol where the venue scopes it (see the module
        docstring)."""
        self._armed[exchange] = timeout_ms
        for scope in await self._scopes(exchange, OpKind.DEAD_MAN, symbol, snapshot=False):
            await self._safe(Op(OpKind.DEAD_MAN, exchange, scope, timeout_ms=timeout_ms))

    async def _cover(self, exchange: str, symbols: list[str]) -> None:
        """Mark ``symbols`` active; where the dead-man switch is per symbol and armed,
        arm it for a symbol's first order before that order leaves."""
        new = set(symbols) - self._active.get(exchange, set())
        self._mark_active(exchange, symbols)
        timeout = self._armed.get(exchange, 0)
        if timeout and OpKind.DEAD_MAN in self._client(exchange).venue.symbol_scoped:
            for symbol in sorted(new):
                await self._safe(Op(OpKind.DEAD_MAN, exchange, symbol, timeout_ms=timeout))

    def keep_dead_man(self, exchange: str, timeout_ms: int, every_s: float,
                      symbol: str | None = None) -> None:
        """Re-arm the dead-man switch every ``every_s`` seconds until ``close()``."""
        async def loop() -> None:
            while True:
                try:
                    await self.arm_dead_man(exchange, timeout_ms, symbol)
                except VenueError as exc:
                    log.warning("%s: dead-man switch not armed (%s); trying again in %s s",
                                exchange, exc, every_s)
                await asyncio.sleep(every_s)
        self._spawn(loop(), f"makerlab-deadman-{exchange}")

    async def _scopes(self, exchange: str, kind: OpKind, symbol: str | None, *,
                      snapshot: bool) -> list[str | None]:
        """The symbols an exchange-wide ``kind`` must name one by one (``[None]``: the
        venue takes it for the whole exchange)."""
        if symbol is not None or kind not in self._client(exchange).venue.symbol_scoped:
            return [symbol]
        if snapshot:
            await self.open_orders(exchange)  # marks the symbols with open orders
        scopes: list[str | None] = [*sorted(self._active.get(exchange, set()))]
        return scopes

    def _mark_active(self, exchange: str, symbols: Iterable[str]) -> None:
        self._active.setdefault(exchange, set()).update(symbols)

    async def _safe(self, op: Op) -> None:
        """A safety call: over REST again if its websocket request was lost."""
        try:
            await self._run(op)
        except ConnectionLost as exc:
            log.warning("%s %s lost (%s); sending it over REST", op.exchange, op.kind, exc)
            await self._run(op, rest=True)

    async def _run(self, op: Op, *, rest: bool = False) -> None:
        answers = await self._client(op.exchange).call(op, rest=rest)
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
        orders = cast(list[OrderUpdate],
                      list(await self._client(exchange).snapshot(Snapshot.ORDERS)))
        self._mark_active(exchange, [o.symbol for o in orders])
        return orders

    async def positions(self, exchange: str) -> list[PositionState]:
        return cast(list[PositionState],
                    list(await self._client(exchange).snapshot(Snapshot.POSITIONS)))

    async def balances(self, exchange: str) -> list[BalanceState]:
        return cast(list[BalanceState],
                    list(await self._client(exchange).snapshot(Snapshot.BALANCES)))

    async def query_order(self, exchange: str, symbol: str, cloid: str | None = None,
                          oid: str | None = None) -> OrderUpdate | None:
        """The venue's state of one order (a ``STATE`` update), or ``None`` if the venue
        does not know it."""
        if cloid is None and oid is None:
            raise ConfigError("query_order needs a cloid or an oid")
        return await self._client(exchange).query(symbol, cloid, oid)

    async def funding(self, exchange: str, symbol: str) -> FundingState:
        """``symbol``'s current funding rate, interval and next settlement."""
        return await self._client(exchange).funding(symbol)

    # -- clock callbacks (trading.protocols.VenueTimers) ----------------------------------

    def add_timer(self, callback: Callable[[], object], interval_ms: float | Decimal) -> None:
        """Run ``callback()`` every ``interval_ms`` of wall-clock time until ``close()``."""
        step = int(Decimal(str(interval_ms)) * NS_PER_MS)
        if step <= 0:
            raise ConfigError(f"interval_ms must be positive, got {interval_ms!r}")
        self._spawn(self._timer(callback, step), f"makerlab-timer-{len(self._tasks)}")

    async def _timer(self, callback: Callable[[], object], step: int) -> None:
        due = self.clock.now_ns() + step
        while True:
            await asyncio.sleep(max(0, due - self.clock.now_ns()) / NS_PER_S)
            await run_handlers((callback,))
            due += step
            if due <= self.clock.now_ns():  # late: skip the missed ticks
                due = self.clock.now_ns() + step

    # -- delivery (the clients' EventSink) -------------------------------------------------

    async def deliver(self, event: AccountEvent) -> None:
        if isinstance(event, OrderUpdate):
            self._mark_active(event.exchange, [event.symbol])
            await self._each("on_order_update", event)
        elif isinstance(event, Fill):
            await self._each("on_fill", event)
        elif isinstance(event, PositionState):
            self.latest_positions[(event.exchange, event.symbol)] = event
            await self._each("on_position", event)
        elif isinstance(event, BalanceState):
            key = (event.exchange, event.asset)
            held = self.latest_balances.get(key)
            self.latest_balances[key] = kept_available(event, () if held is None else (held,))
            await self._each("on_balance", event)
        else:
            await self._each("on_status", event)

    async def _each(self, name: str, event: AccountEvent | FeedStatus) -> None:
        """``listener.<name>(event)`` for each listener that has it; a failure is logged
        and reported, and delivery goes on."""
        for listener in list(self._listeners):
            handler = getattr(listener, name, None)
            if handler is None:
                continue
            try:
                await handler(event)
            except Exception as exc:
                log.exception("%s.%s failed on %s", type(listener).__name__, name,
                              type(event).__name__)
                await self._failed(exc)

    async def _failed(self, exc: BaseException) -> None:
        for handler in self._failure_handlers:
            try:
                await handler(exc)
            except Exception:
                log.exception("failure handler %r failed", handler)


def _log_failure(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("%s stopped", task.get_name(), exc_info=task.exception())
