"""The replay loop: one job, running a built replay in time order.

:class:`ReplayLoop` interleaves three sources by the rules of :mod:`makerlab.sim.timeline`:
the subscribed market rows at local time (delivered to the strategy's feeds), the
exchange-time rows of the matching engines that hold resting orders (each engine's
:class:`EngineLane`), and the scheduled events of the :class:`~makerlab.sim.timeline.EventQueue`
(orders, acks, fills, timers, custom events, equity stamps). It alone moves the engines:
a lane steps its engine while orders rest; any other engine is caught up with
:meth:`~makerlab.sim.matching.MatchingEngine.seek` when the venue reads it.

How it stays cheap:

- **only subscribed rows are iterated**: rows of tapes nobody subscribed to, and the
  exchange-time rows of engines without orders, cost nothing per row.
- **an engine with orders wakes the loop only where they may fill**: of its rows, a lane
  steps only the *stops* (a book row reaching our orders' prices, a print reaching them:
  :mod:`makerlab.sim.follow`, found ahead by one compiled scan once the orders have
  changed, after the last scheduled event of that time); the queue updates of the book
  rows between are applied at once, when the next stop, an order event or a read of the
  engine needs them.
- **flat and idle stamps are written in bulk**: while no position is open, no engine
  steps and nothing else is scheduled, the equity stamps up to the next event are
  appended at once.
- ``row_by_row`` turns these off (every engine steps through every row): the reference the
  tests compare the fast path with.
"""

from __future__ import annotations

import asyncio
import bisect
import time
from collections.abc import Sequence
from typing import Any, Protocol

import numpy as np

from makerlab.core.callbacks import run_handlers
from makerlab.core.clock import ReplayClock
from makerlab.sim.follow import first_stop, stop_prices
from makerlab.sim.matching import MatchingEngine
from makerlab.sim.mock_feed import Deliveries, ReplayCursor
from makerlab.sim.timeline import (
    BOOK_EXCH,
    NEVER,
    TRADE_LOCAL,
    BookTape,
    EngineRows,
    EventQueue,
    MarketTimeline,
    TradeTape,
)
from makerlab.sim.venue import SimVenue

__all__ = ["NEVER", "EngineLane", "ProgressBar", "ReplayLoop"]

_STAMP = object()  # payload marking the equity stamp on the event queue
_PROGRESS_EVERY = 0x4000  # local rows between progress updates
AFTER_ALL = NEVER + 1  # a lane's next time when no row of it needs stepping

Stamp = tuple[int, str, float, float, float]


class ProgressBar(Protocol):
    n: int

    def update(self, k: int) -> None: ...


class _StepArrays:
    """A lane's steps as arrays, for the compiled scans (:mod:`makerlab.sim.follow`)."""

    __slots__ = ("book_rows", "books_before", "end", "hit_ask", "hit_bid", "steps")

    def __init__(self, rows: EngineRows) -> None:
        self.steps = rows.steps()
        _, kind, _, row = rows.step_arrays()
        self.end = len(kind)  # a closing NEVER row is no step
        is_book = kind == BOOK_EXCH
        self.book_rows = np.ascontiguousarray(row[is_book], np.int64)
        self.books_before = np.concatenate(([0], np.cumsum(is_book)))
        book, trades, empty = rows.book, rows.trades, np.empty(0)
        self.hit_bid, self.hit_ask = stop_prices(
            kind, row, BOOK_EXCH, empty if book is None else book.bid_price[:, 0],
            empty if book is None else book.ask_price[:, 0],
            empty if trades is None else trades.price,
            empty if trades is None else trades.side)


class EngineLane:
    """A matching engine and where it is in its exchange-time rows.

    Of the rows from ``pos`` on, only ``stop`` needs the engine's Python rules: the first
    row that may fill our orders or move a queue by a print (:func:`~makerlab.sim.follow.
    first_stop`; every row with ``every_row``, the reference path). The book rows before
    it are followed in one compiled pass when something needs the queues: the stop, an
    order event, any read of the engine (:meth:`follow_until`).
    """

    __slots__ = ("_arrays", "active", "done", "engine", "every_row", "kind", "n", "pos", "row",
                 "rows", "stop", "stream", "t", "te", "version")

    def __init__(self, engine: MatchingEngine, rows: EngineRows, every_row: bool = False
                 ) -> None:
        self.engine, self.rows, self.every_row = engine, rows, every_row
        self.active = self.done = False
        self.pos = self.n = self.stop = self.version = 0
        self.te = AFTER_ALL
        self.t: list[int] = []
        self.kind: list[int] = []
        self.stream: list[int] = []
        self.row: list[int] = []
        self._arrays: _StepArrays | None = None

    def start(self, after_ns: int) -> bool:
        """Step from the first row later than ``after_ns``; whether a row is left."""
        self.t, self.kind, self.stream, self.row = self.rows.steps()
        self.n = len(self.t)
        self.pos = self.rows.first_after(after_ns)
        self.done = self.pos >= self.n
        self.plan()
        return not self.done

    def plan(self) -> None:
        """Find the next stop from ``pos`` for the engine's orders now."""
        self.version = self.engine.version
        if self.every_row or self.pos >= self.n:
            self.stop = self.pos
        else:
            a = self._arrays
            if a is None or a.steps[0] is not self.t:
                a = self._arrays = _StepArrays(self.rows)
            engine = self.engine
            self.stop = first_stop(a.hit_bid, a.hit_ask, self.pos, a.end, engine.our_best(1),
                                   engine.our_best(-1), engine.half_tick)
        self.te = self.t[self.stop] if self.stop < self.n else AFTER_ALL

    def key(self) -> tuple[int, int, int, int]:
        """The stop's place in timeline order (time, kind, stream, row)."""
        k = self.stop
        if k >= self.n:
            return AFTER_ALL, 0, 0, 0
        return self.t[k], self.kind[k], self.stream[k], self.row[k]

    def catch_up(self, now: int) -> None:
        """Bring the (idle) engine to its book row at ``now``."""
        self.engine.seek(self.rows.row_at(now))

    def follow_until(self, now: int) -> None:
        """Follow the rows at or before ``now`` (none is a stop: the loop steps those
        first)."""
        if self.pos < self.stop and self.t[self.pos] <= now:
            self._follow_to(min(bisect.bisect_right(self.t, now, self.pos), self.stop))

    def _follow_to(self, k: int) -> None:
        """Follow the rows ``[pos, k)`` (no stop among them)."""
        a = self._arrays
        if a is not None and k > self.pos:
            lo, hi = a.books_before[self.pos], a.books_before[k]
            if hi > lo:
                self.engine.follow(a.book_rows[lo:hi])
        self.pos = k
        if k >= self.n:
            self.done = True

    def step(self, clock: ReplayClock, every_print: bool) -> Any:
        """Follow up to the stop and apply it at its exchange time; the engine's result
        (or ``None``)."""
        self._follow_to(self.stop)
        k = self.pos
        self.pos = k + 1
        clock.ns = self.t[k]
        engine, row = self.engine, self.row[k]
        if self.pos == self.n:
            self.done = True
        if not engine.resting:
            if self.kind[k] == BOOK_EXCH:
                engine.seek(row)
            result = None
        elif self.kind[k] == BOOK_EXCH:
            result = engine.on_book(row)
        else:
            result = engine.on_print(row, every_print)
        self.plan()
        return result


class ReplayLoop:
    """Runs a replay (see the module docstring).

    Args:
        venue, clock, queue: the built replay's (:mod:`makerlab.sim.builder`).
        books, trades: its tapes (the timeline's streams are their indices).
        local: the merged local-time rows of the subscribed tapes.
        deliveries: the deliveries of the subscribed tapes; ``cursor`` says where the loop
            is to the buffers filled when read.
        start_ns, end_ns: the replay's span; scheduled events after ``end_ns`` never run.
        stamp_cycle_ns: time between equity stamps, appended to ``stamps``.
        row_by_row: step every engine through every row (the reference path).
        page: a monitoring page is served (docs/monitor.md): the loop gives the event loop
            to it every 5 ms of wall time; it only reads, so results do not change.
        more: the tapes are a streaming window with more to come (:meth:`rebase`).
    """

    def __init__(self, venue: SimVenue, clock: ReplayClock, queue: EventQueue,
                 books: Sequence[BookTape], trades: Sequence[TradeTape],
                 local: MarketTimeline, deliveries: Deliveries, cursor: ReplayCursor,
                 span: tuple[int, int], stamp_cycle_ns: int, stamps: list[Stamp],
                 row_by_row: bool = False, page: bool = False,
                 more: bool = False) -> None:
        self.venue, self.clock, self.queue = venue, clock, queue
        self.page, self._page_turn = page, 0.0
        self.local, self.row_by_row = local, row_by_row
        self.books, self.trades = books, trades
        self.deliveries, self.cursor = deliveries, cursor
        self.start_ns, self.end_ns = span
        self.stamp_cycle_ns, self.stamps = stamp_cycle_ns, stamps
        self.lanes = [EngineLane(e, EngineRows(e.book, e.trades, _index(books, e.book),
                                               _index(trades, e.trades), more), row_by_row)
                      for e in venue.engines.values()]
        self.active: list[EngineLane] = []
        self._synced_ns: int | None = None
        venue.sync = self.sync_engines
        if row_by_row:
            for lane in self.lanes:
                self._activate(lane, self.start_ns - 1)
        queue.push(self.start_ns, self._stamp, _STAMP)

    # -- engines -------------------------------------------------------------------------

    def sync_engines(self) -> None:
        """Bring every engine that is not stepping to its book row at the current time."""
        now = self.clock.ns
        if now == self._synced_ns:
            return
        self._synced_ns = now
        for lane in self.lanes:
            if lane.active:
                lane.follow_until(now)
            else:
                lane.catch_up(now)

    def finish(self, last_ns: int) -> None:
        """The clock to ``last_ns`` (the end of the data), every engine to its row, every
        buffer filled."""
        self.clock.ns = max(self.clock.ns, last_ns)
        self.cursor.kind = ReplayCursor.SCHEDULED
        for lane in self.lanes:
            if lane.active:
                lane.follow_until(self.clock.ns)
            lane.active = False
        self._synced_ns = None
        self.sync_engines()
        for lazy in self.deliveries.lazy:
            lazy.close()
        for trades in self.deliveries.trades.values():
            trades.close()

    def _activate(self, lane: EngineLane, after_ns: int) -> None:
        if lane.start(after_ns):
            lane.active = True
            self.active.append(lane)
            self._synced_ns = None

    def _deactivate(self, lane: EngineLane) -> None:
        lane.active = False
        self.active.remove(lane)
        self._synced_ns = None

    def _refresh_lanes(self) -> None:
        """After a scheduled event: engines that now hold orders start stepping; a lane
        whose orders changed finds its next stop once no other event is due at this time
        (an order and a cancel arriving together are planned for once). Until then its
        stop is later than now (a scheduled event runs only before every stop) and only
        local rows of this time, which step no engine, run first."""
        now = self.clock.ns
        for lane in self.lanes:
            if lane.active:
                if not lane.engine.resting and not self.row_by_row:
                    self._deactivate(lane)
                elif lane.version != lane.engine.version and self.queue.peek_time() != now:
                    lane.follow_until(now)
                    lane.plan()
            elif lane.engine.resting and not lane.done:
                self._activate(lane, self.clock.ns)

    def _first_lane(self) -> EngineLane:
        return min(self.active, key=EngineLane.key)

    def _step(self, lane: EngineLane) -> None:
        result = lane.step(self.clock, self.row_by_row)
        self._synced_ns = None
        if result is not None and (result.fills or result.expired):
            self.venue.settle(lane.engine.spec.exchange, result)
        if lane.done or not (lane.engine.resting or self.row_by_row):
            self._deactivate(lane)

    def release(self) -> None:
        """Drop the segment's row lists (the lanes' steps) before the next window is read:
        :meth:`rebase` starts the stepping lanes again on the new rows."""
        for lane in self.lanes:
            if lane.active:
                lane.follow_until(NEVER)
            lane.t, lane.kind, lane.stream, lane.row = [], [], [], []
            lane.rows = EngineRows(lane.rows.book, lane.rows.trades, lane.rows.book_stream,
                                   lane.rows.trade_stream)

    def rebase(self, books: Sequence[BookTape], trades: Sequence[TradeTape],
               local: MarketTimeline, carry: Sequence[tuple[int, int]],
               span: tuple[int, int], more: bool) -> None:
        """Go on from ``at_ns`` on the next window's tapes (:mod:`makerlab.sim.streaming`):
        every engine to its book at ``at_ns`` (``carry[i]``: that row's index in the old
        and the new window of book tape ``i``), lanes on the new rows (a stepping lane at
        its first row from ``at_ns``), deliveries on the new tapes; ``span``: the window's
        local times ``[at_ns, end)``."""
        at_ns = span[0]
        for lane in self.lanes:
            lane.catch_up(at_ns - 1)
            engine = lane.engine
            b, t = _index(self.books, engine.book), _index(self.trades, engine.trades)
            new_book = None if b < 0 else books[b]
            row = -1 if b < 0 or engine.row < 0 else _renumbered(engine.row, carry[b])
            engine.rebase(new_book, None if t < 0 else trades[t], row)
            lane.rows = EngineRows(new_book, engine.trades, b, t, more)
            if lane.active and not lane.start(at_ns - 1):
                self._deactivate(lane)
        self.books, self.trades, self.local = books, trades, local
        self.deliveries.rebase(books, trades, span)
        self._synced_ns = None

    # -- scheduled events ----------------------------------------------------------------

    async def _scheduled(self, first: int) -> None:
        """The next scheduled event (or every equity stamp before ``first`` at once)."""
        nxt = self.queue.peek()
        if (nxt is not None and nxt[1] is _STAMP and len(self.queue) == 1 and not self.active
                and not self.row_by_row and self.venue.flat()):
            self._bulk_stamps(min(first - 1, self.end_ns))
            return
        t, callback, payload = self.queue.pop()
        self.clock.ns = t
        self.cursor.kind = ReplayCursor.SCHEDULED
        self.sync_engines()  # callbacks may read engines directly (tests, custom events)
        await run_handlers((callback,), payload)
        self._refresh_lanes()

    def _stamp_values(self) -> list[tuple[str, float, float, float]]:
        return [(exc, *self.venue.valuation(exc)) for exc in self.venue.accounts]

    def _stamp(self, _: Any = None) -> None:
        now = self.clock.ns
        self.stamps.extend((now, *values) for values in self._stamp_values())
        if now + self.stamp_cycle_ns <= self.end_ns:
            self.queue.push(now + self.stamp_cycle_ns, self._stamp, _STAMP)

    def _bulk_stamps(self, limit_ns: int) -> None:
        """Every stamp due up to ``limit_ns`` at once, while nothing can change them: no
        position open, no engine stepping, nothing else scheduled before ``limit_ns``."""
        t0 = self.queue.pop()[0]
        cycle = self.stamp_cycle_ns
        last = t0 + (limit_ns - t0) // cycle * cycle
        self.clock.ns = t0
        values = self._stamp_values()
        self.stamps.extend((t, *v) for t in range(t0, last + 1, cycle) for v in values)
        self.clock.ns = last
        if last + cycle <= self.end_ns:
            self.queue.push(last + cycle, self._stamp, _STAMP)

    # -- the loop ------------------------------------------------------------------------

    async def run(self, bar: ProgressBar, n_events: int, stop: int = NEVER) -> None:
        """Every row and event in time order, until the data and the queue run out, or
        every one before ``stop`` (the end of a streaming segment: its local rows and
        engine rows are all before it)."""
        lt, lk = self.local.t.tolist(), self.local.kind.tolist()
        ls, lr = self.local.stream.tolist(), self.local.row.tolist()
        peek, active, end, clock = self.queue.peek_time, self.active, self.end_ns, self.clock
        books, trades, cursor = self.deliveries.books, self.deliveries.trades, self.cursor
        page, n, i = self.page, len(lt), 0
        while True:
            t = lt[i] if i < n else stop
            lane = (active[0] if len(active) == 1 else self._first_lane()) if active else None
            te = NEVER if lane is None else lane.te
            first = te if te < t else t
            th = peek(NEVER)
            if th < first and th <= end:  # type: ignore[operator]
                await self._scheduled(first)
            elif lane is not None and te <= t:
                self._step(lane)
            elif i < n:
                clock.ns = t
                cursor.kind, cursor.stream = lk[i], ls[i]
                if lk[i] == TRADE_LOCAL:
                    handled = trades[ls[i]].deliver(lr[i])
                elif books[ls[i]].quiet:
                    books[ls[i]].push(lr[i])
                    handled = None
                else:
                    handled = books[ls[i]].deliver(lr[i])
                if handled is not None:
                    await handled
                i += 1
                if page and not i & 0x3F:
                    await self._let_page_in()
                if not i % _PROGRESS_EVERY:
                    self._progress(bar, n_events, t)
            else:
                return

    async def _let_page_in(self) -> None:
        """Give a served page the loop every 5 ms of wall time (it only reads)."""
        now = time.perf_counter()
        if now >= self._page_turn:
            self._page_turn = now + 0.005
            await asyncio.sleep(0)

    def _progress(self, bar: ProgressBar, n_events: int, t: int) -> None:
        span = max(self.end_ns - self.start_ns, 1)
        bar.update(int(n_events * (t - self.start_ns) / span) - bar.n)


def _renumbered(row: int, carry: tuple[int, int]) -> int:
    old, new = carry
    assert row == old, f"engine at book row {row}, not the window's carry row {old}"
    return new


def _index(tapes: Sequence[Any], tape: Any) -> int:
    return next((i for i, t in enumerate(tapes) if t is tape), -1)
