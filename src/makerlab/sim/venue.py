"""The simulated venue: :class:`SimVenue` implements
:class:`~makerlab.trading.protocols.OrderVenue` in replay.

It owns one :class:`~makerlab.sim.matching.MatchingEngine` per instrument and one
:class:`SimAccount` per exchange (the venue's truth: positions, balance, fees), and carries
every message between its listeners (the OMS, a recorder, a risk module) and the engines
over the latency channels:

- **requests travel REQ_PRIVATE**: an order, cancel, amend or cancel-all sent at local time
  ``t`` reaches the engine at ``t + REQ_PRIVATE``.
- **every outcome is a typed event on both clocks**: the engine decides at exchange time
  (the event's ``exchange_ts``); the :class:`~makerlab.core.events.OrderUpdate` or
  :class:`~makerlab.core.events.Fill` reaches every attached listener, in the order they
  were attached, a channel latency later (its ``local_ts``, the delivery time).
- **acks and rejections travel ACK_PRIVATE**: ACK (NEW), REJECT (REJECTED, with the
  engine's code and reason, e.g. ``-5022``), CANCEL_ACK (CANCELLED), CANCEL_REJECT,
  AMEND_ACK and AMEND_REJECT.
- **fills and expiries travel FEED_PRIVATE**: each fill as a ``Fill`` followed by its FILL
  update (PARTIAL or FILLED, the filled size after that fill), each expiry (IOC/market
  remainder, reduce-only once flat) as EXPIRE (CANCELLED).
- **a cancel or amend for an order the engine does not hold is refused**: the order was
  filled, expired or cancelled before the request arrived, or has not arrived yet; the
  refusal (``-2011 Unknown order sent.``) carries the request's ids, an empty ``status``
  (the venue does not know the order) and a zero amount.
- **cancel-all cancels what rests when it arrives**: every order of the exchange (of the
  symbol, if given) resting in the engine at that moment, each with its CANCEL_ACK;
  orders still travelling are not touched.
- **ids are the venue's counters**: oids, trade ids and ``update_id`` s count from 1 per
  venue, so a replay's ids are deterministic and an order's updates are ordered by
  ``update_id``.
- **the account books fills at exchange time** with
  :func:`~makerlab.core.positions.apply_fill` and the fee model, so reduce-only checks and
  equity stamps see the venue's position, not the OMS's lagging mirror.
- **snapshots are the venue's truth now**: ``open_orders`` (a STATE update per resting
  order, with the ``update_id`` and exchange time of its latest event), ``positions`` and
  ``balances`` at the current exchange time, marked at the engines' mids.
- **engines are read current**: an engine that is not being stepped row by row is brought
  to the clock (``sync``, installed by the replayer) whenever the venue reads it: order
  arrival, :meth:`SimVenue.engine`, marks, balances and snapshots.

Besides the events, the venue keeps its journal for the run record at exchange time:
``actions`` (every request and outcome) and ``fills`` (with the matching rule, the order's
arrival time and the venue position after each fill): what the venue knows and its
listeners, a latency later, do not. Times are ns.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, NamedTuple

from makerlab.core.callbacks import run_handlers
from makerlab.core.clock import ReplayClock
from makerlab.core.events import (
    BalanceState,
    Fill,
    OrderEventKind,
    OrderUpdate,
    PositionState,
)
from makerlab.core.instruments import InstrumentSpec
from makerlab.core.orders import OrderStatus
from makerlab.core.positions import Accounting, Position, accounting_for
from makerlab.errors import ConfigError
from makerlab.sim.fees import FeeSchedule
from makerlab.sim.journal import OrderJournal
from makerlab.sim.latency import Latencies, LatencyModel
from makerlab.sim.matching import (
    REJECT_UNKNOWN_ORDER,
    MatchingEngine,
    MatchResult,
    RawFill,
    SimOrder,
)
from makerlab.sim.timeline import EventQueue
from makerlab.trading.protocols import (
    AmendRequest,
    CancelRequest,
    OrderListener,
    OrderRequest,
)
from makerlab.units import NS_PER_MS

__all__ = ["SimAccount", "SimVenue", "Valuation"]

ZERO = Decimal(0)
_Delivery = tuple[Fill | None, OrderUpdate]


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

    def unrealized(self, ticker: str, mark: float) -> Decimal:
        """Unrealised PnL of ``ticker``'s position at ``mark`` (zero if flat or no mark)."""
        pos = self.positions.get(ticker)
        if pos is None or not pos.amount or mark != mark:
            return ZERO
        return self.accounting[ticker].unrealized_pnl(pos, Decimal(repr(mark)))

    def equity(self, marks: dict[str, float]) -> float:
        """Balance plus unrealised PnL at ``marks`` (entry price where a mark is missing)."""
        eq = float(self.balance)
        for ticker in self.positions:
            eq += float(self.unrealized(ticker, marks.get(ticker, float("nan"))))
        return eq


class Valuation(NamedTuple):
    """An account marked at the mids: equity (balance + unrealised PnL), balance (start +
    realised PnL net of fees) and inventory (net signed notional), quote currency."""

    equity: float
    balance: float
    inventory: float


def _no_sync() -> None:
    """Engines are kept current by whoever drives them (the default)."""


def _status(filled: Decimal) -> OrderStatus:
    """An open order's status by what it has filled."""
    return OrderStatus.PARTIAL if filled > 0 else OrderStatus.NEW


def _ids(request: CancelRequest | AmendRequest) -> dict[str, str | None]:
    """A request's ids for the journal (``oid`` only when the request names one)."""
    if request.oid is None:
        return {"cloid": request.cloid}
    return {"cloid": request.cloid, "oid": request.oid}


class SimVenue:
    """Matching engines, accounts and latency-delayed messaging for every exchange.

    Args:
        queue: the replay's event queue (scheduled events).
        clock: the replay clock (local time; the replay loop sets it).
        latencies: ``{exc: LatencyModel}``.
        fees: the fee schedule.
        balance: starting balance per exchange (quote currency).
    """

    def __init__(self, queue: EventQueue, clock: ReplayClock,
                 latencies: dict[str, LatencyModel], fees: FeeSchedule,
                 balance: Decimal) -> None:
        self.queue, self.clock, self.latencies, self.fees = queue, clock, latencies, fees
        self.start_balance = balance
        self.engines: dict[tuple[str, str], MatchingEngine] = {}
        self.accounts: dict[str, SimAccount] = {}
        self.actions = OrderJournal()
        self.fills: list[dict[str, Any]] = []
        self._listeners: list[OrderListener] = []
        self._oids, self._trade_ids = itertools.count(1), itertools.count(1)
        self._update_ids = itertools.count(1)
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
            raise ConfigError(f"no replayed market {exc}/{ticker}; known: "
                              f"{self._known()}") from None

    def _check_market(self, exc: str, ticker: str) -> None:
        """ConfigError unless ``exc``/``ticker`` is a replayed market (a request is checked
        when sent; the engine is read, brought to the clock, when the request arrives)."""
        if (exc, ticker) not in self.engines:
            self.engine(exc, ticker)

    def _engines_of(self, exc: str, ticker: str | None = None) -> list[MatchingEngine]:
        """The engines of ``exc`` (of ``ticker`` only, if given), brought to the clock."""
        if ticker is not None:
            return [self.engine(exc, ticker)]
        self.sync()
        found = [engine for (e, _), engine in self.engines.items() if e == exc]
        if not found:
            raise ConfigError(f"no replayed market on {exc}; known: {self._known()}")
        return found

    def _known(self) -> str:
        return ", ".join(f"{e}/{t}" for e, t in self.engines)

    def spec(self, exchange: str, symbol: str) -> InstrumentSpec:
        engine = self.engines.get((exchange, symbol))
        return engine.spec if engine is not None else self.engine(exchange, symbol).spec

    def attach(self, listener: OrderListener) -> None:
        """Deliver every order event to ``listener`` too (after those attached before)."""
        self._listeners.append(listener)

    def _after(self, exc: str, channel: Latencies) -> int:
        now = self.clock.ns
        return now + self.latencies[exc].sample(channel, now)

    def _record(self, event: str, exc: str, **fields: Any) -> None:
        self.actions.append({"ts": self.clock.ns, "event": event, "exc": exc, **fields})

    # -- requests from the listeners' side (local time) -----------------------------------

    async def submit(self, request: OrderRequest) -> None:
        """Send an order; it reaches the engine after REQ_PRIVATE (an unknown market raises
        :class:`~makerlab.errors.ConfigError` here)."""
        exc = request.exchange
        self._check_market(exc, request.symbol)
        self._record("submit", exc, ticker=request.symbol, cloid=request.cloid,
                     amount=request.amount, price=request.price, tif=request.tif,
                     reduce_only=request.reduce_only, ord_type=request.ord_type)
        self.queue.push(self._after(exc, Latencies.REQ_PRIVATE), self._arrive, request)

    async def cancel(self, request: CancelRequest) -> None:
        """Send a cancel (by ``cloid``, else ``oid``); it reaches the engine after
        REQ_PRIVATE."""
        self._check_market(request.exchange, request.symbol)
        self._record("cancel", request.exchange, ticker=request.symbol, **_ids(request))
        self.queue.push(self._after(request.exchange, Latencies.REQ_PRIVATE),
                        self._arrive_cancel, request)

    async def amend(self, request: AmendRequest) -> None:
        """Send an amend (new price and/or signed amount); it reaches the engine after
        REQ_PRIVATE, where the matching rules decide (see :mod:`makerlab.sim.matching`)."""
        self._check_market(request.exchange, request.symbol)
        self._record("amend", request.exchange, ticker=request.symbol, **_ids(request),
                     amount=request.amount, price=request.price)
        self.queue.push(self._after(request.exchange, Latencies.REQ_PRIVATE),
                        self._arrive_amend, request)

    async def cancel_all(self, exchange: str, symbol: str | None = None) -> None:
        """Cancel every order resting on ``exchange`` (of ``symbol``) when the request
        reaches the engines, REQ_PRIVATE later."""
        self._engines_of(exchange, symbol)
        self._record("cancel_all", exchange, ticker=symbol)
        self.queue.push(self._after(exchange, Latencies.REQ_PRIVATE), self._arrive_cancel_all,
                        (exchange, symbol))

    # -- at the exchange (exchange time) -------------------------------------------------

    def _arrive(self, request: OrderRequest) -> None:
        exc, amount = request.exchange, request.amount
        order = SimOrder(exc, request.symbol, request.cloid, str(next(self._oids)),
                         1 if amount > 0 else -1, abs(amount), request.price,
                         request.tif or "GTC", request.reduce_only, self.clock.ns)
        result = self.engine(exc, request.symbol).submit(order)
        if result.rejected is not None:
            self._record("reject", exc, ticker=order.ticker, cloid=order.cloid,
                         reason=result.rejected)
            self._send(order, OrderEventKind.REJECT, OrderStatus.REJECTED, ZERO,
                       result.rejected)
            return
        self._record("ack", exc, ticker=order.ticker, cloid=order.cloid, oid=order.oid)
        self._send(order, OrderEventKind.ACK, OrderStatus.NEW, ZERO)
        self.settle(exc, result)

    def _arrive_cancel(self, request: CancelRequest) -> None:
        engine = self.engine(request.exchange, request.symbol)
        order = self._resting(engine, request)
        if order is None:
            self._record("cancel_reject", request.exchange, ticker=request.symbol,
                         **_ids(request), reason=REJECT_UNKNOWN_ORDER)
            self._refuse(request, OrderEventKind.CANCEL_REJECT)
            return
        self._cancel(engine, order)

    def _arrive_cancel_all(self, args: tuple[str, str | None]) -> None:
        for engine in self._engines_of(*args):
            for order in list(engine.resting.values()):
                self._cancel(engine, order)

    def _cancel(self, engine: MatchingEngine, order: SimOrder) -> None:
        engine.cancel(order.cloid)
        self._record("cancelled", order.exc, ticker=order.ticker, cloid=order.cloid,
                     oid=order.oid)
        self._send(order, OrderEventKind.CANCEL_ACK, OrderStatus.CANCELLED, order.filled)

    def _arrive_amend(self, request: AmendRequest) -> None:
        exc = request.exchange
        engine = self.engine(exc, request.symbol)
        order = self._resting(engine, request)
        if order is None:
            self._record("amend_reject", exc, ticker=request.symbol, **_ids(request),
                         reason=REJECT_UNKNOWN_ORDER)
            self._refuse(request, OrderEventKind.AMEND_REJECT)
            return
        filled = order.filled  # the ack reports the order before its own new fills
        qty = None if request.amount is None else order.side * request.amount
        result = engine.amend(order.cloid, request.price, qty)
        if result.rejected is not None:
            self._record("amend_reject", exc, ticker=order.ticker, cloid=order.cloid,
                         oid=order.oid, reason=result.rejected)
            self._send(order, OrderEventKind.AMEND_REJECT, _status(filled), filled,
                       result.rejected)
            return
        self._record("amended", exc, ticker=order.ticker, cloid=order.cloid, oid=order.oid,
                     amount=order.side * order.qty, price=order.price)
        self._send(order, OrderEventKind.AMEND_ACK, _status(filled), filled)
        self.settle(exc, result)

    @staticmethod
    def _resting(engine: MatchingEngine,
                 request: CancelRequest | AmendRequest) -> SimOrder | None:
        if request.cloid is not None:
            return engine.resting.get(request.cloid)
        return next((o for o in engine.resting.values() if o.oid == request.oid), None)

    def settle(self, exc: str, result: MatchResult) -> None:
        """Book an engine result's fills and expiries and send their events."""
        for raw in result.fills:
            self._book_fill(exc, raw)
        for order in result.expired:
            self._record("expired", exc, ticker=order.ticker, cloid=order.cloid, oid=order.oid)
            self._send(order, OrderEventKind.EXPIRE, OrderStatus.CANCELLED, order.filled,
                       channel=Latencies.FEED_PRIVATE)

    def _book_fill(self, exc: str, raw: RawFill) -> None:
        order, spec = raw.order, self.spec(exc, raw.order.ticker)
        notional = spec.notional(raw.price, raw.qty)
        fee = self.fees.for_exchange(exc).fee(notional, raw.is_maker)
        if spec.is_inverse:
            fee = fee / raw.price
        pos = self.account(exc).book(order.ticker, order.side * raw.qty, raw.price, fee)
        self.fills.append({"ts": self.clock.ns, "exc": exc, "ticker": order.ticker,
                           "oid": order.oid, "cloid": order.cloid, "price": raw.price,
                           "size": raw.qty, "dir": order.side, "is_maker": raw.is_maker,
                           "fee": fee, "rule": raw.rule, "arrival_ts": order.arrival_ns,
                           "position": pos.amount})
        at = self._after(exc, Latencies.FEED_PRIVATE)
        fill = Fill(exc, order.ticker, self.clock.ns, at, order.cloid, order.oid,
                    str(next(self._trade_ids)), order.side, raw.price, raw.qty, fee,
                    spec.base if spec.is_inverse else spec.quote, raw.is_maker)
        status = OrderStatus.FILLED if raw.filled >= order.qty else OrderStatus.PARTIAL
        update = self._update(order, OrderEventKind.FILL, status, raw.filled, at)
        self.queue.push(at, self._deliver, (fill, update))

    # -- events --------------------------------------------------------------------------

    def _update(self, order: SimOrder, kind: OrderEventKind, status: OrderStatus,
                filled: Decimal, at: int, refusal: str = "") -> OrderUpdate:
        """The order's event now, delivered at ``at``; ``refusal`` is the engine's
        ``"<code> <reason>"``."""
        code, _, reason = refusal.partition(" ")
        order.update_id, order.update_ns = next(self._update_ids), self.clock.ns
        return OrderUpdate(order.exc, order.ticker, self.clock.ns, at, kind, status.value,
                           order.cloid, order.oid, order.side * order.qty, order.price,
                           filled, order.update_id, code, reason, order.tif,
                           order.reduce_only)

    def _send(self, order: SimOrder, kind: OrderEventKind, status: OrderStatus,
              filled: Decimal, refusal: str = "",
              channel: Latencies = Latencies.ACK_PRIVATE) -> None:
        at = self._after(order.exc, channel)
        self.queue.push(at, self._deliver, (None, self._update(order, kind, status, filled,
                                                                at, refusal)))

    def _refuse(self, request: CancelRequest | AmendRequest, kind: OrderEventKind) -> None:
        """Refuse a request for an order the engine does not hold (ACK_PRIVATE)."""
        at = self._after(request.exchange, Latencies.ACK_PRIVATE)
        code, _, reason = REJECT_UNKNOWN_ORDER.partition(" ")
        update = OrderUpdate(request.exchange, request.symbol, self.clock.ns, at, kind, "",
                             request.cloid, request.oid, ZERO, None, ZERO,
                             next(self._update_ids), code, reason)
        self.queue.push(at, self._deliver, (None, update))

    async def _deliver(self, delivery: _Delivery) -> None:
        fill, update = delivery
        for listener in self._listeners:
            if fill is not None:
                await listener.on_fill(fill)
            await listener.on_order_update(update)

    # -- clock ---------------------------------------------------------------------------

    def add_timer(self, callback: Callable[[], object], interval_ms: float | Decimal) -> None:
        """Run ``callback()`` every ``interval_ms`` from now until the data ends."""
        step = int(Decimal(str(interval_ms)) * NS_PER_MS)
        if step <= 0:
            raise ConfigError(f"interval_ms must be positive, got {interval_ms!r}")

        async def tick(_: Any) -> None:
            await run_handlers((callback,))
            if self.clock.ns + step <= self.end_ns:
                self.queue.push(self.clock.ns + step, tick)

        self.queue.push(self.clock.ns + step, tick)

    # -- account views -------------------------------------------------------------------

    def exchanges(self) -> list[str]:
        return list(dict.fromkeys(exc for exc, _ in self.engines))

    def marks(self, exc: str) -> dict[str, float]:
        """Mid of each of ``exc``'s instruments at the current exchange time."""
        self.sync()
        return {t: eng.mid() for (e, t), eng in self.engines.items() if e == exc}

    def valuation(self, exc: str) -> Valuation:
        """``exc``'s account now, marked at the mids: the one place equity is computed
        (balances, the replay's equity stamps and the run record all read it)."""
        account, marks = self.account(exc), self.marks(exc)
        inventory = sum(float(p.amount) * marks.get(t, float("nan"))
                        for t, p in account.positions.items() if p.amount)
        return Valuation(account.equity(marks), float(account.balance), inventory)

    def balance(self, exc: str) -> dict[str, Any]:
        """The tutorial's balance dict, from the venue account at the current time."""
        value = self.valuation(exc)
        return {"equity_total": value.equity, "margin_total": value.equity,
                "notional_position": value.inventory,
                "unrealized_pnl": value.equity - value.balance}

    def flat(self) -> bool:
        """Whether every account is flat (no open position on any exchange)."""
        return not any(p.amount for account in self.accounts.values()
                       for p in account.positions.values())

    async def open_orders(self, exchange: str) -> list[OrderUpdate]:
        """A STATE update of every order resting on ``exchange`` now (exchange time: its
        latest event's)."""
        now = self.clock.ns
        return [OrderUpdate(exchange, o.ticker, o.update_ns, now, OrderEventKind.STATE,
                            _status(o.filled).value, o.cloid, o.oid, o.side * o.qty, o.price,
                            o.filled, o.update_id, tif=o.tif, reduce_only=o.reduce_only)
                for engine in self._engines_of(exchange) for o in engine.resting.values()]

    async def positions(self, exchange: str) -> list[PositionState]:
        """Every position the account on ``exchange`` has held (flat ones too), now."""
        account, marks, now = self.account(exchange), self.marks(exchange), self.clock.ns
        return [PositionState(exchange, t, now, now, p.amount, p.entry,
                              account.unrealized(t, marks.get(t, float("nan"))))
                for t, p in account.positions.items()]

    async def balances(self, exchange: str) -> list[BalanceState]:
        """The account on ``exchange`` in its margin asset (the first market's quote) now."""
        engines = self._engines_of(exchange)
        account, marks = self.account(exchange), self.marks(exchange)
        wallet = account.balance
        equity = wallet + sum((account.unrealized(t, marks.get(t, float("nan")))
                               for t in account.positions), ZERO)
        return [BalanceState(exchange, engines[0].spec.quote, self.clock.ns, self.clock.ns,
                             wallet, equity, equity)]
