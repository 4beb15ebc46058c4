"""The simulated venue: the exchange side of the OMS seam in replay.

:class:`SimVenue` owns one :class:`~makerlab.sim.matching.MatchingEngine` per instrument
and one :class:`SimAccount` per exchange (the venue's truth: positions, balance, fees), and
carries every message between the OMS and the engines over the latency channels:

- **requests travel REQ_PRIVATE**: an order or cancel sent at local time ``t`` reaches the
  engine at ``t + REQ_PRIVATE``.
- **acks and rejections travel ACK_PRIVATE**: the NEW ack, a rejection, a cancel
  confirmation or failure reach the OMS ``ACK_PRIVATE`` after the engine decided.
- **a cancel for an order the engine does not hold fails**: the order was filled, expired
  or cancelled before the cancel arrived, or has not arrived yet; the venue records
  ``cancel_reject`` (reason ``-2011 Unknown order sent.``) and reports it to the OMS's
  ``on_cancel_reject``.
- **fills and order updates travel FEED_PRIVATE**: each fill (with its PARTIAL/FILLED order
  update and position change) and each expiry reach the OMS ``FEED_PRIVATE`` later.
- **the account books fills at exchange time** with
  :func:`~makerlab.core.positions.apply_fill` and the fee model, so reduce-only checks and
  equity stamps see the venue's position, not the OMS's lagging mirror.

- **engines are read current**: an engine that is not being stepped row by row is brought
  to the clock (``sync``, installed by the replayer) whenever the venue reads it: order
  arrival, :meth:`SimVenue.engine`, marks and balances.

Times are ns inside; the OMS-facing payloads carry ms timestamps as the tutorial does.
"""

from __future__ import annotations

import inspect
import itertools
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Protocol

from makerlab.core.instruments import InstrumentSpec
from makerlab.core.orders import OrderStatus
from makerlab.core.positions import Accounting, Position, accounting_for
from makerlab.errors import ConfigError
from makerlab.sim.fees import FeeSchedule
from makerlab.sim.latency import Latencies, LatencyModel
from makerlab.sim.matching import (
    REJECT_UNKNOWN_ORDER,
    MatchingEngine,
    MatchResult,
    RawFill,
    SimOrder,
)
from makerlab.sim.timeline import EventQueue
from makerlab.units import NS_PER_MS

__all__ = ["Clock", "SimAccount", "SimVenue", "VenueListener"]

ZERO = Decimal(0)


class VenueListener(Protocol):
    """What the venue calls on the OMS side (the OMS implements it)."""

    async def on_order_update(self, exc: str, update: dict[str, Any]) -> None: ...

    async def on_fill(self, exc: str, fill: dict[str, Any]) -> None: ...

    async def on_cancel_reject(self, exc: str, reject: dict[str, Any]) -> None: ...


@dataclass(slots=True)
class Clock:
    """The replay clock: current time in integer ns."""

    ns: int = 0

    def ms(self) -> int:
        return self.ns // NS_PER_MS


@dataclass
class SimAccount:
    """One exchange account at the venue: balance, positions and trading totals (Decimal).

    ``balance`` is the starting balance plus realised PnL net of fees; ``cash`` the starting
    balance plus every fill's signed cash flow minus fees (the two agree on flat books).
    """

    start: Decimal
    positions: dict[str, Position] = field(default_factory=dict)
    accounting: dict[str, Accounting] = field(default_factory=dict)
    cash: Decimal = ZERO
    fees: Decimal = ZERO
    volume: Decimal = ZERO
    n_fills: int = 0

    def __post_init__(self) -> None:
        self.cash = self.start

    def position(self, ticker: str) -> Position:
        return self.positions.get(ticker) or Position(ticker)

    def book(self, ticker: str, qty: Decimal, price: Decimal, fee: Decimal) -> Position:
        """Book a fill of signed ``qty`` at ``price`` paying ``fee``; the new position."""
        acct = self.accounting[ticker]
        pos = acct.apply_fill(self.position(ticker), qty, price, fee)
        self.positions[ticker] = pos
        self.cash += acct.cash_flow(qty, price) - fee
        self.fees += fee
        self.volume += abs(qty) * price
        self.n_fills += 1
        return pos

    @property
    def balance(self) -> Decimal:
        return self.start + sum((p.realized_pnl for p in self.positions.values()), ZERO)

    def equity(self, marks: dict[str, float]) -> float:
        """Balance plus unrealised PnL at ``marks`` (entry price where a mark is missing)."""
        eq = float(self.balance)
        for ticker, pos in self.positions.items():
            mark = marks.get(ticker, float("nan"))
            if pos.amount and mark == mark:
                eq += float(self.accounting[ticker].unrealized_pnl(pos, Decimal(repr(mark))))
        return eq


def _no_sync() -> None:
    """Engines are kept current by whoever drives them (the default)."""


class SimVenue:
    """Matching engines, accounts and latency-delayed messaging for every exchange.

    Args:
        queue: the replay's event queue (scheduled events).
        clock: the replay clock.
        engines: ``{(exc, ticker): MatchingEngine}``.
        latencies: ``{exc: LatencyModel}``.
        fees: the fee schedule.
        balance: starting balance per exchange (quote currency).
    """

    def __init__(self, queue: EventQueue, clock: Clock, latencies: dict[str, LatencyModel],
                 fees: FeeSchedule, balance: Decimal) -> None:
        self.queue, self.clock, self.latencies, self.fees = queue, clock, latencies, fees
        self.start_balance = balance
        self.engines: dict[tuple[str, str], MatchingEngine] = {}
        self.accounts: dict[str, SimAccount] = {}
        self.listener: VenueListener | None = None
        self.actions: list[dict[str, Any]] = []
        self.fills: list[dict[str, Any]] = []
        self._oids = itertools.count(1)
        self.end_ns = 0  # last market-data time; timers stop there
        self.sync: Callable[[], None] = _no_sync  # brings lazy engines to the clock

    # -- setup -------------------------------------------------------------------------

    def add_engine(self, engine: MatchingEngine) -> None:
        spec = engine.spec
        account = self.account(spec.exchange)
        account.accounting[spec.symbol] = accounting_for(spec)
        self.engines[(spec.exchange, spec.symbol)] = engine

    def account(self, exc: str) -> SimAccount:
        if exc not in self.accounts:
            self.accounts[exc] = SimAccount(self.start_balance)
        return self.accounts[exc]

    def engine(self, exc: str, ticker: str) -> MatchingEngine:
        """The engine of ``exc``/``ticker``, its book row brought up to the clock."""
        self.sync()
        try:
            return self.engines[(exc, ticker)]
        except KeyError:
            known = ", ".join(f"{e}/{t}" for e, t in self.engines)
            raise ConfigError(f"no replayed market {exc}/{ticker}; known: {known}") from None

    def spec(self, exc: str, ticker: str) -> InstrumentSpec:
        engine = self.engines.get((exc, ticker))
        return engine.spec if engine is not None else self.engine(exc, ticker).spec

    def attach(self, listener: VenueListener) -> None:
        self.listener = listener

    def _after(self, exc: str, channel: Latencies) -> int:
        now = self.clock.ns
        return now + self.latencies[exc].sample(channel, now)

    def _record(self, event: str, exc: str, **fields: Any) -> None:
        self.actions.append({"ts": self.clock.ns, "event": event, "exc": exc, **fields})

    # -- requests from the OMS (local time) ----------------------------------------------

    async def submit(self, exc: str, request: dict[str, Any]) -> None:
        """Send an order request; it reaches the engine after REQ_PRIVATE."""
        self.engine(exc, request["ticker"])  # unknown markets fail at the caller
        self._record("submit", exc, **request)
        self.queue.push(self._after(exc, Latencies.REQ_PRIVATE), self._arrive, (exc, request))

    async def cancel(self, exc: str, ticker: str, cloid: str) -> None:
        """Send a cancel; it reaches the engine after REQ_PRIVATE."""
        self._record("cancel", exc, ticker=ticker, cloid=cloid)
        self.queue.push(self._after(exc, Latencies.REQ_PRIVATE), self._arrive_cancel,
                        (exc, ticker, cloid))

    # -- at the exchange (exchange time) -------------------------------------------------

    def _arrive(self, args: tuple[str, dict[str, Any]]) -> None:
        exc, req = args
        engine = self.engine(exc, req["ticker"])
        amount = req["amount"]
        order = SimOrder(exc, req["ticker"], req["cloid"], str(next(self._oids)),
                         1 if amount > 0 else -1, abs(amount), req.get("price"),
                         req.get("tif") or "GTC", bool(req.get("reduce_only")), self.clock.ns)
        result = engine.submit(order)
        if result.rejected is not None:
            self._record("reject", exc, ticker=order.ticker, cloid=order.cloid,
                         reason=result.rejected)
            self._send(exc, Latencies.ACK_PRIVATE, self._update(order, OrderStatus.REJECTED,
                                                                reject_reason=result.rejected))
            return
        self._record("ack", exc, ticker=order.ticker, cloid=order.cloid, oid=order.oid)
        self._send(exc, Latencies.ACK_PRIVATE, self._update(order, OrderStatus.NEW,
                                                            filled_sz=ZERO))
        self.settle(exc, result)

    def _arrive_cancel(self, args: tuple[str, str, str]) -> None:
        exc, ticker, cloid = args
        order = self.engine(exc, ticker).cancel(cloid)
        if order is None:
            self._record("cancel_reject", exc, ticker=ticker, cloid=cloid,
                         reason=REJECT_UNKNOWN_ORDER)
            reject = {"ticker": ticker, "cloid": cloid, "reason": REJECT_UNKNOWN_ORDER,
                      "timestamp": self.clock.ms()}
            self.queue.push(self._after(exc, Latencies.ACK_PRIVATE), self._deliver_reject,
                            (exc, reject))
            return
        self._record("cancelled", exc, ticker=ticker, cloid=cloid, oid=order.oid)
        self._send(exc, Latencies.ACK_PRIVATE, self._update(order, OrderStatus.CANCELLED))

    def settle(self, exc: str, result: MatchResult) -> None:
        """Book an engine result's fills and expiries and send their updates."""
        for raw in result.fills:
            self._book_fill(exc, raw)
        for order in result.expired:
            self._record("expired", exc, ticker=order.ticker, cloid=order.cloid, oid=order.oid)
            self._send(exc, Latencies.FEED_PRIVATE, self._update(order, OrderStatus.CANCELLED))

    def _book_fill(self, exc: str, raw: RawFill) -> None:
        order, spec = raw.order, self.spec(exc, raw.order.ticker)
        notional = spec.notional(raw.price, raw.qty)
        fee = self.fees.for_exchange(exc).fee(notional, raw.is_maker)
        if spec.is_inverse:
            fee = fee / raw.price
        qty = order.side * raw.qty
        pos = self.account(exc).book(order.ticker, qty, raw.price, fee)
        fill = {"ts": self.clock.ns, "exc": exc, "ticker": order.ticker, "oid": order.oid,
                "cloid": order.cloid, "price": raw.price, "size": raw.qty, "dir": order.side,
                "is_maker": raw.is_maker, "fee": fee, "rule": raw.rule,
                "arrival_ts": order.arrival_ns, "position": pos.amount}
        self.fills.append(fill)
        status = OrderStatus.FILLED if order.remaining <= 0 else OrderStatus.PARTIAL
        self._send(exc, Latencies.FEED_PRIVATE, self._update(order, status), fill)

    def _update(self, order: SimOrder, status: OrderStatus, **extra: Any) -> dict[str, Any]:
        return {"oid": order.oid, "cloid": order.cloid, "ticker": order.ticker,
                "amount": order.side * order.qty, "price": order.price,
                "ord_status": status, "filled_sz": order.filled,
                "timestamp": self.clock.ms(), **extra}

    def _send(self, exc: str, channel: Latencies, update: dict[str, Any],
              fill: dict[str, Any] | None = None) -> None:
        self.queue.push(self._after(exc, channel), self._deliver, (exc, update, fill))

    async def _deliver(self, args: tuple[str, dict[str, Any], dict[str, Any] | None]) -> None:
        exc, update, fill = args
        if self.listener is None:
            return
        if fill is not None:
            await self.listener.on_fill(exc, fill)
        await self.listener.on_order_update(exc, update)

    async def _deliver_reject(self, args: tuple[str, dict[str, Any]]) -> None:
        exc, reject = args
        if self.listener is not None:
            await self.listener.on_cancel_reject(exc, reject)

    # -- clock ---------------------------------------------------------------------------

    def add_timer(self, callback: Callable[[], Awaitable[Any] | Any],
                  interval_ms: float) -> None:
        """Run ``callback()`` every ``interval_ms`` from now until the data ends."""
        step = int(Decimal(str(interval_ms)) * NS_PER_MS)
        if step <= 0:
            raise ConfigError(f"interval_ms must be positive, got {interval_ms!r}")

        async def tick(_: Any) -> None:
            result = callback()
            if inspect.isawaitable(result):
                await result
            if self.clock.ns + step <= self.end_ns:
                self.queue.push(self.clock.ns + step, tick)

        self.queue.push(self.clock.ns + step, tick)

    # -- account views -------------------------------------------------------------------

    def exchanges(self) -> list[str]:
        return list(dict.fromkeys(exc for exc, _ in self.engines))

    def accounting(self, exc: str) -> dict[str, Accounting]:
        return dict(self.account(exc).accounting)

    def marks(self, exc: str) -> dict[str, float]:
        """Mid of each of ``exc``'s instruments at the current exchange time."""
        self.sync()
        return {t: eng.mid() for (e, t), eng in self.engines.items() if e == exc}

    def balance(self, exc: str) -> dict[str, Any]:
        """The tutorial's balance dict, from the venue account at the current time."""
        account, marks = self.account(exc), self.marks(exc)
        notional = sum(float(p.amount) * marks.get(t, float("nan"))
                       for t, p in account.positions.items() if p.amount)
        equity = account.equity(marks)
        return {"equity_total": equity, "margin_total": equity,
                "notional_position": notional,
                "unrealized_pnl": equity - float(account.balance)}
