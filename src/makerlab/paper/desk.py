"""The paper exchange's trading side: the replay engine's matching, driven by the market.

A :class:`Desk` holds one :class:`~makerlab.sim.matching.MatchingEngine` per traded
market (protocol, symbol) and a :class:`~makerlab.sim.venue.SimVenue` (accounts, fees,
latency channels, the journal of fills and actions, its closed chunks spilled to disk as
a streamed replay's are): the same objects, the same code
and the same models a :class:`~makerlab.sim.replayer.Replayer` uses. The desk only
decides **when** things happen, in the replay's order:

- **the book is the replay's book**: each engine reads the archive's depth-``depth``
  book rows (the ``book_snapshot`` dataset, or the book rebuilt from ``book_delta``
  after every venue message) and its trade tape, at their exchange time.
- **exchange time moves forward only**: :meth:`Desk.advance` steps the engines' rows
  and the requests' arrivals up to a time; rows come before arrivals at equal time
  (market data before scheduled events, as in :mod:`makerlab.sim.timeline`).
- **a request travels REQ_PRIVATE**: :meth:`Desk.send` hands a request to the venue at
  its send time (the market's time when it came in, or the lockstep step's virtual
  time); it reaches the engine REQ_PRIVATE later and the matching rules decide there.
- **outcomes are deliveries**: every event the venue sends (answers, fills, expiries)
  becomes a :class:`Delivery` at its delivery time (``exchange_ts`` + the channel's
  latency) in the outbox; the venue builds them when the engine decides, so running
  them ahead of time changes nothing at the exchange.
- **the answer to a request** is the delivery its arrival produced for it (ACK or
  REJECT, CANCEL_ACK or CANCEL_REJECT, AMEND_ACK or AMEND_REJECT; every CANCEL_ACK of a
  cancel-all).

The desk never reads a wall clock: who drives it decides what time it is
(:mod:`makerlab.paper.market` at the chosen speed, or :mod:`makerlab.paper.lockstep`).
Times are int64 ns.
"""

from __future__ import annotations

import asyncio
import collections
import heapq
import itertools
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from decimal import Decimal
from enum import StrEnum
from typing import Any

from makerlab.core.callbacks import run_handlers
from makerlab.core.clock import ReplayClock
from makerlab.core.events import Fill, OrderEventKind, OrderUpdate
from makerlab.core.instruments import InstrumentSpec
from makerlab.data.archive import available_depths
from makerlab.data.arrays import (
    load_snapshot_arrays,
    load_snapshot_arrays_from_deltas,
    load_trade_arrays,
)
from makerlab.errors import ConfigError, DataError
from makerlab.sim.fees import FeeSchedule
from makerlab.sim.journal import OrderJournal
from makerlab.sim.latency import LatencyModel
from makerlab.sim.matching import FillModel, MatchingEngine, PartialFills
from makerlab.sim.queue import QueueModel, RiskAverseQueue
from makerlab.sim.timeline import BOOK_EXCH, BookTape, EventQueue, TradeTape, merge_exchange
from makerlab.sim.venue import SimVenue
from makerlab.trading.protocols import AmendRequest, CancelRequest, OrderRequest

__all__ = ["NEVER", "Delivery", "Desk", "DeskConfig", "Pending", "RequestKind", "Traded",
           "load_tapes"]

NEVER = 1 << 62  # later than any time
_ANSWERS = {OrderEventKind.ACK, OrderEventKind.REJECT, OrderEventKind.CANCEL_ACK,
            OrderEventKind.CANCEL_REJECT, OrderEventKind.AMEND_ACK, OrderEventKind.AMEND_REJECT}


class RequestKind(StrEnum):
    PLACE = "place"
    CANCEL = "cancel"
    AMEND = "amend"
    CANCEL_ALL = "cancel_all"


@dataclass(frozen=True)
class DeskConfig:
    """The trading side's models (the Replayer's, by the same names).

    ``latency`` is one model per protocol (``latency_models_by_exchange``), ``balance``
    the starting balance of every account (its quote currency), ``depth`` the book depth
    the engines match against.
    """

    latency: Mapping[str, LatencyModel]
    fees: FeeSchedule = field(default_factory=FeeSchedule)
    balance: Decimal = Decimal(10_000)
    queue_model: QueueModel = field(default_factory=RiskAverseQueue)
    fill_model: FillModel = field(default_factory=PartialFills)
    depth: int = 20


@dataclass(frozen=True)
class Traded:
    """One traded market: the protocol it is traded over, its spec (``exchange`` = the
    protocol) and the archive's tapes."""

    protocol: str
    spec: InstrumentSpec
    book: BookTape | None
    trades: TradeTape | None


@dataclass(frozen=True, slots=True)
class Delivery:
    """An event for the client, due at ``t`` (its ``local_ts``); ``seq`` orders it among
    everything the venue scheduled; ``parent`` is the seq of the arrival that made it
    (0 for a fill of a resting order)."""

    t: int
    seq: int
    protocol: str
    update: OrderUpdate
    fill: Fill | None
    parent: int


@dataclass(eq=False)
class Pending:
    """A request on its way: ``seq`` of its arrival; ``done`` resolves with the
    deliveries its arrival produced."""

    protocol: str
    kind: RequestKind
    seq: int
    arrival_ns: int
    done: asyncio.Future[list[Delivery]]

    def answers(self, deliveries: list[Delivery]) -> list[Delivery]:
        """The deliveries that answer this request (see the module rules)."""
        return [d for d in deliveries if d.update.kind in _ANSWERS]


class _Queue(EventQueue):
    """The venue's event queue, split: arrivals (pushed while a request is handed to the
    venue) wait in the heap for their time; everything else the venue schedules is a
    delivery, collected to be run at once (:class:`Desk` keeps its seq)."""

    def __init__(self) -> None:
        super().__init__()
        self.accepting = False
        self.heap: list[tuple[int, int, Callable[[Any], Any], Any]] = []
        self.fresh: list[tuple[int, int, Callable[[Any], Any], Any]] = []
        self.seq = itertools.count(1)
        self.last: tuple[int, int, Callable[[Any], Any], Any] | None = None

    def push(self, t_ns: int, callback: Callable[[Any], Any], payload: Any = None) -> None:
        entry = (int(t_ns), next(self.seq), callback, payload)
        if self.accepting:
            heapq.heappush(self.heap, entry)
            self.last = entry
        else:
            self.fresh.append(entry)

    def peek_time(self, default: int | None = None) -> int | None:
        return self.heap[0][0] if self.heap else default

    def pop(self) -> tuple[int, Callable[[Any], Any], Any]:
        t, _, callback, payload = heapq.heappop(self.heap)
        return t, callback, payload

    def __len__(self) -> int:
        return len(self.heap)


class Desk:
    """Matching, accounts and deliveries of every traded market (module rules).

    Args:
        traded: the markets, with their tapes.
        config: the models.
    """

    def __init__(self, traded: list[Traded], config: DeskConfig) -> None:
        missing = sorted({t.protocol for t in traded} - set(config.latency))
        if missing:
            raise ConfigError(f"no latency model for {', '.join(missing)}")
        self.config = config
        self.clock = ReplayClock()
        self._queue = _Queue()
        self.venue = SimVenue(self._queue, self.clock, dict(config.latency), config.fees,
                              config.balance)
        self.venue.actions = OrderJournal(spill=True)  # a paper session may run for days
        self.venue.attach(self)
        self._engines: dict[tuple[int, int], MatchingEngine] = {}
        self._build(traded)
        self.outbox: list[tuple[int, int, Delivery]] = []
        self._pending: dict[int, Pending] = {}
        self._running: tuple[int, int] = (0, 0)  # (parent seq, seq) of the delivery running
        self._collected: list[Delivery] = []
        self._fill: Fill | None = None
        self.now = 0  # exchange time reached

    # -- setup -------------------------------------------------------------------------

    def _build(self, traded: list[Traded]) -> None:
        books: list[BookTape] = []
        trades: list[TradeTape] = []
        for market in traded:
            account = self.venue.account(market.protocol)
            engine = MatchingEngine(market.spec, market.book, market.trades,
                                    _position(account, market.spec.symbol),
                                    self.config.queue_model, self.config.fill_model)
            self.venue.add_engine(engine)
            if market.book is not None:
                self._engines[(BOOK_EXCH, len(books))] = engine
                books.append(market.book)
            if market.trades is not None:
                self._engines[(0, len(trades))] = engine
                trades.append(market.trades)
        rows = merge_exchange(books, trades)
        self._rows = (rows.t.tolist(), rows.kind.tolist(), rows.stream.tolist(),
                      rows.row.tolist())
        self._next_row = 0
        self.start_ns = self._rows[0][0] if self._rows[0] else 0
        self.clock.ns = self.start_ns

    def engine(self, protocol: str, symbol: str) -> MatchingEngine:
        """The engine of a traded market (ConfigError naming the known ones)."""
        return self.venue.engine(protocol, symbol)

    def markets(self, protocol: str) -> list[str]:
        """The symbols traded over ``protocol``."""
        return [s for p, s in self.venue.engines if p == protocol]

    def spec(self, protocol: str, symbol: str) -> InstrumentSpec | None:
        engine = self.venue.engines.get((protocol, symbol))
        return None if engine is None else engine.spec

    @property
    def fills(self) -> list[dict[str, Any]]:
        """The venue's fill journal (exchange time ``ts``, price, size, dir, rule...)."""
        return self.venue.fills

    def account_line(self, protocol: str) -> str:
        """What the account on ``protocol`` did, as one line: ``binance  orders 33 (0
        refused), cancelled 29, fills 3, open 1, position BTCUSDT 0.006`` (open: orders
        resting in the engines now)."""
        events = collections.Counter(a["event"] for a in self.venue.actions
                                     if a["exc"] == protocol)
        fills = sum(f["exc"] == protocol for f in self.venue.fills)
        resting = sum(len(self.engine(protocol, s).resting) for s in self.markets(protocol))
        positions = self.venue.account(protocol).positions
        held = ", ".join(f"{s} {format(p.amount.normalize(), 'f')}"
                         for s, p in sorted(positions.items()) if p.amount) or "flat"
        return (f"{protocol}  orders {events['submit']} ({events['reject']} refused), "
                f"cancelled {events['cancelled']}, fills {fills}, "
                f"open {resting}, position {held}")

    # -- what comes next ---------------------------------------------------------------

    def next_row_ns(self) -> int:
        t = self._rows[0]
        return t[self._next_row] if self._next_row < len(t) else NEVER

    def next_arrival(self) -> tuple[int, int]:
        """``(time, seq)`` of the next arrival, ``(NEVER, 0)`` if none."""
        heap = self._queue.heap
        return (heap[0][0], heap[0][1]) if heap else (NEVER, 0)

    def next_delivery(self) -> tuple[int, int]:
        """``(time, seq)`` of the earliest delivery in the outbox, ``(NEVER, 0)`` if none."""
        return (self.outbox[0][0], self.outbox[0][1]) if self.outbox else (NEVER, 0)

    def pop_delivery(self) -> Delivery:
        return heapq.heappop(self.outbox)[2]

    # -- moving exchange time ----------------------------------------------------------

    async def advance(self, until_ns: int, *, arrivals_at_end: bool = True) -> None:
        """Step rows and arrivals up to ``until_ns`` (arrivals at ``until_ns`` itself only
        with ``arrivals_at_end``), rows first at equal time."""
        while True:
            row_t, (arr_t, _) = self.next_row_ns(), self.next_arrival()
            if arr_t < row_t and (arr_t < until_ns or (arrivals_at_end and arr_t == until_ns)):
                await self.run_arrival()
            elif row_t <= until_ns and row_t != NEVER:
                await self.step_row()
            else:
                break
        if until_ns < NEVER - 1:  # else: everything ran; now is the last event's time
            self.now = max(self.now, until_ns)

    async def run_through(self, pending: Pending) -> list[Delivery]:
        """Move exchange time to ``pending``'s arrival and run it (lockstep: the answer now)."""
        while not pending.done.done():
            row_t, (arr_t, arr_seq) = self.next_row_ns(), self.next_arrival()
            if arr_seq == 0:
                raise RuntimeError("a request's arrival is missing from the desk's queue")
            if row_t <= arr_t:
                await self.step_row()
            else:
                await self.run_arrival()
        self.now = max(self.now, pending.arrival_ns)
        return pending.done.result()

    async def step_row(self) -> None:
        t, kind, stream, row = (col[self._next_row] for col in self._rows)
        self._next_row += 1
        self.clock.ns = self.now = t
        engine = self._engines[(BOOK_EXCH if kind == BOOK_EXCH else 0, stream)]
        if kind == BOOK_EXCH:
            result = engine.on_book(row)
        elif engine.resting and engine.trades is not None:
            tape = engine.trades
            result = engine.on_trade(float(tape.price[row]), float(tape.size[row]),
                                     int(tape.side[row]))
        else:
            return
        if result.fills or result.expired:
            self.venue.settle(engine.spec.exchange, result)
            await self._run_fresh(0)

    async def run_arrival(self) -> None:
        t, seq, callback, payload = heapq.heappop(self._queue.heap)
        self.clock.ns = t
        self.now = max(self.now, t)
        await run_handlers((callback,), payload)
        deliveries = await self._run_fresh(seq)
        pending = self._pending.pop(seq, None)
        if pending is not None:
            pending.done.set_result(deliveries)

    async def _run_fresh(self, parent: int) -> list[Delivery]:
        """Run the deliveries the venue just scheduled (they only reach the listeners)."""
        self._collected = []
        fresh, self._queue.fresh = self._queue.fresh, []
        for _, seq, callback, payload in fresh:
            self._running = (parent, seq)
            await run_handlers((callback,), payload)
        collected, self._collected = self._collected, []
        return collected

    # -- the venue's listener (deliveries) ---------------------------------------------

    async def on_fill(self, fill: Fill) -> None:
        self._fill = fill  # its update follows at once

    async def on_order_update(self, update: OrderUpdate) -> None:
        fill, self._fill = self._fill, None
        parent, seq = self._running
        delivery = Delivery(update.local_ts, seq, update.exchange, update, fill, parent)
        heapq.heappush(self.outbox, (delivery.t, delivery.seq, delivery))
        self._collected.append(delivery)

    # -- requests --------------------------------------------------------------------------

    async def send(self, protocol: str, kind: RequestKind,
                   request: OrderRequest | CancelRequest | AmendRequest | str | None,
                   send_ns: int) -> Pending:
        """Hand a request to the venue at ``send_ns`` (``request`` is the symbol, or None,
        for a cancel-all); it arrives REQ_PRIVATE later."""
        self.clock.ns = send_ns
        self._queue.last = None
        self._queue.accepting = True
        try:
            await self._hand_over(protocol, kind, request)
        finally:
            self._queue.accepting = False
        entry = self._queue.last
        assert entry is not None, "the venue scheduled no arrival"
        done: asyncio.Future[list[Delivery]] = asyncio.get_running_loop().create_future()
        pending = Pending(protocol, kind, entry[1], entry[0], done)
        self._pending[entry[1]] = pending
        return pending

    async def _hand_over(self, protocol: str, kind: RequestKind,
                         request: OrderRequest | CancelRequest | AmendRequest | str | None
                         ) -> None:
        if kind is RequestKind.PLACE and isinstance(request, OrderRequest):
            await self.venue.submit(request)
        elif kind is RequestKind.CANCEL and isinstance(request, CancelRequest):
            await self.venue.cancel(request)
        elif kind is RequestKind.AMEND and isinstance(request, AmendRequest):
            await self.venue.amend(request)
        elif kind is RequestKind.CANCEL_ALL and not isinstance(request, OrderRequest |
                                                               CancelRequest | AmendRequest):
            await self.venue.cancel_all(protocol, request)
        else:
            raise TypeError(f"{kind} does not take {type(request).__name__}")

def _position(account: Any, symbol: str) -> Callable[[], Decimal]:
    return lambda: account.position(symbol).amount


# --------------------------------------------------------------------------- tapes


def load_tapes(root: str | os.PathLike, exchange: str, symbol: str, depth: int, start: str,
               end: str) -> tuple[BookTape | None, TradeTape | None]:
    """The archive's book (depth-``depth`` rows: the shallowest ``book_snapshot`` dataset
    at least that deep, else rebuilt from ``book_delta``) and trades of one market, as
    the Replayer reads them (``start``/``end``: inclusive hours)."""
    depths = [d for d in available_depths(root, exchange, symbol) if d >= depth]
    if depths:
        snap = load_snapshot_arrays(root, exchange, symbol, depths[0], start, end)
        snap = replace(snap, bid_price=snap.bid_price[:, :depth], bid_size=snap.bid_size[:, :depth],
                       ask_price=snap.ask_price[:, :depth], ask_size=snap.ask_size[:, :depth])
    else:
        try:
            snap = load_snapshot_arrays_from_deltas(root, exchange, symbol, depth, start, end)
        except DataError:  # no book snapshot to start from: a trades-only market
            snap = None
    book = BookTape.from_arrays(exchange, symbol, snap) if snap is not None and len(
        snap.exchange_ts) else None
    trades = load_trade_arrays(root, exchange, symbol, start, end)
    tape = TradeTape.from_arrays(exchange, symbol, trades) if len(trades.exchange_ts) else None
    return book, tape
