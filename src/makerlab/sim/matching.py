"""The simulated exchange's matching engine for one instrument.

Orders are matched at **exchange time** against the replayed depth-N book and trade tape.
Our orders never change the replayed book (there is no market impact). Sizes are
:class:`~decimal.Decimal` on the lot grid; book and trade sizes are floats, floored to the
lot grid before they become fills. Rules, each with a test named after it in
``tests/sim/test_matching.py``:

- **validate tick, lot and min notional**: a limit price off the tick grid, a size off the
  lot grid or below ``min_qty``, or a notional (price x size; market orders use the best
  opposite price) below ``min_notional`` is rejected with a venue-like reason.
- **post-only rejects when crossing**: a ``GTX``/``ALO`` order whose price reaches the best
  opposite price on arrival is rejected, never filled.
- **reduce-only must reduce**: a reduce-only order that would not reduce the venue's
  position on arrival is rejected; its fills are capped at the position, and it is
  expired once the position is flat (at once if its taker part flattened it).
- **takers walk the visible book**: a market order, or a limit order whose price reaches the
  best opposite price, takes the visible levels best first (up to its limit price) at each
  level's price, as taker.
- **consumed liquidity is not taken twice**: what our taker orders took at a level is
  remembered until the next book update, so our next order at that level sees less.
- **IOC and market remainders are expired**; **FOK fills in full or not at all**; a GTC
  limit remainder rests at its price.
- **resting orders join the queue at the back**: the displayed size at the order's price
  is ahead of it; the queue model (default :class:`~makerlab.sim.queue.RiskAverseQueue`)
  then follows trades and level changes at that price.
- **trades through the price fill**: a taker print strictly through a resting order's price
  fills it (at its own price, as maker) by up to the print's size; one print's size is
  shared by our orders best price first.
- **trades at the price fill through the queue**: a print at the order's price fills only
  what the queue model says went past the queue ahead.
- **a crossing book fills**: a book update whose best opposite price reaches a resting
  order's price fills the order's remainder at its price, as maker. (Since our fills do
  not change the replayed book, a GTC remainder resting beyond levels it consumed fills
  this way at the next book update if those levels are still displayed.)
- **partial fills sum to the order**: an order's fills never exceed its size and it is
  FILLED exactly when they reach it.
- **cancels are settled at exchange time**: a cancel removes the order only when it
  reaches the engine; fills before that stand, and a cancel for an order that is gone
  fails.
- **client order ids are unique among resting orders**: an order whose cloid is already
  resting is rejected (Binance ``-4015``); the resting one is untouched.
- **an amend keeps the queue place only when it shrinks the order**: an amend of a resting
  order reaches the engine at exchange time and is checked as a new order would be (tick,
  lot, minimum size and notional, post-only crossing, reduce-only); the new size must
  exceed what is filled and something must change, or it is rejected and the order is
  untouched. A size decrease at the same price keeps the order's place in the queue; a
  price change or a size increase sends it to the back: it re-enters at its new price as
  a new arrival would (taking liquidity if it now crosses, the rest joining the queue
  behind the displayed size). An amend of an order the engine does not hold fails.
- **resting orders far from the touch cost nothing per row**: orders are indexed by price
  level (:mod:`makerlab.sim.resting`); a book row looks only at the levels it crosses,
  those displayed now or at their last update, and those a print reached since (any
  other level showed nothing and still shows nothing, so its queue cannot move); a print
  looks only at the levels it reaches.
- **quiet rows only move queues**: a book row whose best opposite price reaches none of
  our orders fills nothing, and a print that reaches none of them changes nothing; the
  replay finds the rows that may fill ahead (:mod:`makerlab.sim.follow`) and applies the
  queue updates of the book rows before them at once (:meth:`MatchingEngine.follow`, a
  compiled pass for the built-in queue models), with the states ``on_book`` would give.
- **sizes on the lot grid are not lost to float error**: a float size within 1e-9 lot of
  a lot multiple counts as that multiple (``0.003 - 0.002`` is one lot, not zero).
- **a halted engine refuses new orders and amends**: ``halted`` (a reason, ``None``
  unless set: the paper exchange operator's halt, ``makerlab paper --page``) rejects every
  order and amend arriving with that reason (:data:`REJECT_HALTED`); cancels still work.

The fill model is an option (``fill_model``): :class:`PartialFills` (default, the rules
above) or :class:`NoPartialFills` (hftbacktest's ``no_partial_fill_exchange``, whose rules
replace the size-limited ones; tests in ``tests/sim/test_matching_no_partial.py``).
"""

from __future__ import annotations

import bisect
import itertools
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from decimal import ROUND_FLOOR, Decimal
from typing import ClassVar

import numpy as np

from makerlab.core.decimals import to_decimal
from makerlab.core.instruments import InstrumentSpec
from makerlab.core.orders import POST_ONLY, TIFS
from makerlab.sim.follow import follow_rows, model_code, row_facts
from makerlab.sim.queue import QueueModel, QueueState, RiskAverseQueue
from makerlab.sim.resting import RestingSide
from makerlab.sim.timeline import BookTape, TradeTape

__all__ = ["FillModel", "MatchResult", "MatchingEngine", "NoPartialFills", "PartialFills",
           "RawFill", "SimOrder"]

ZERO = Decimal(0)

REJECT_TICK = "-4014 Price not increased by tick size."
REJECT_LOT = "-1111 Precision is over the maximum defined for this asset."
REJECT_MIN_QTY = "-4003 Quantity less than or equal to zero or below the minimum."
REJECT_NOTIONAL = "-4164 Order's notional must be no smaller than {min} (unless reduce only)."
REJECT_POST_ONLY = "-5022 Post Only order would be executed immediately as a taker."
REJECT_REDUCE = "-2022 ReduceOnly Order is rejected."
REJECT_TIF = "-1115 Invalid timeInForce."
REJECT_NO_BOOK = "-2010 No market data to price a market order."
REJECT_DUPLICATE = "-4015 Client order id is not valid: an open order already uses it."
REJECT_UNKNOWN_ORDER = "-2011 Unknown order sent."
REJECT_AMEND_QTY = ("-4003 Quantity less than or equal to zero or below the minimum: an "
                    "amended size must keep the order's side and exceed its filled size.")
REJECT_HALTED = "-2010 New order rejected: trading halted by the venue operator."
REJECT_AMEND_NOTHING = "-5027 No need to modify the order."


@dataclass(slots=True)
class SimOrder:
    """An order as the simulated exchange holds it (``qty`` unsigned, ``side`` +1/-1)."""

    exc: str
    ticker: str
    cloid: str
    oid: str
    side: int
    qty: Decimal
    price: Decimal | None
    tif: str = "GTC"
    reduce_only: bool = False
    arrival_ns: int = 0
    filled: Decimal = ZERO
    queue: QueueState = field(default_factory=QueueState)
    level_qty: float = 0.0
    seq: int = 0  # arrival rank among the engine's resting orders
    update_id: int = 0  # the venue's id of the order's latest event
    update_ns: int = 0  # and its exchange time

    @property
    def remaining(self) -> Decimal:
        return self.qty - self.filled

    @property
    def px(self) -> float:
        """The limit price as a float (``nan`` for a market order)."""
        return float("nan") if self.price is None else float(self.price)


@dataclass(frozen=True, slots=True)
class RawFill:
    """One fill before fees: ``qty`` unsigned, ``filled`` the order's filled size after it,
    ``rule`` the matching rule that made it."""

    order: SimOrder
    qty: Decimal
    price: Decimal
    is_maker: bool
    rule: str
    filled: Decimal


@dataclass(slots=True)
class MatchResult:
    """What one engine call produced: fills, orders expired and a rejection reason."""

    fills: list[RawFill] = field(default_factory=list)
    expired: list[SimOrder] = field(default_factory=list)
    rejected: str | None = None


#: The result of a call that changed nothing (shared: never mutate it).
NOTHING = MatchResult()


@dataclass(frozen=True, slots=True)
class PartialFills:
    """The default fill model: fills are limited by the sizes printed and displayed (the
    module's rules)."""

    partial: ClassVar[bool] = True


@dataclass(frozen=True, slots=True)
class NoPartialFills:
    """Every fill takes the order's whole remainder (hftbacktest's ``no_partial_fill_exchange``).

    - **no-partial trades through fill the whole order**: a print strictly through a
      resting order's price fills its whole remainder at its price, whatever the print's
      size; one print can fill several of our orders (its size is not shared).
    - **no-partial trades at the price fill the whole order past the queue**: once the
      prints at the order's price went past the queue ahead by at least half a lot, the
      whole remainder fills.
    - **no-partial crossing books fill the whole order**: as in the default model.
    - **no-partial takers fill in full at the best price**: a market or marketable limit
      order takes its whole size at the best opposite price, whatever is displayed (FOK
      therefore always fills).
    """

    partial: ClassVar[bool] = False


FillModel = PartialFills | NoPartialFills


#: What :meth:`MatchingEngine.follow` passes of our orders (see ``_followed``).
_Followed = tuple[list[SimOrder], list[tuple[float, RestingSide]], np.ndarray, np.ndarray]

SPAN_BLOCK = 4096  # book rows whose price spans are computed at once


class MatchingEngine:
    """Matches one instrument's orders against its replayed book and trades (see module).

    Args:
        spec: the instrument's contract rules.
        book: the replayed book (``None``: trades only, no taker fills).
        trades: the replayed trade tape (unused here; prints are passed to
            :meth:`on_trade` by row).
        position: returns the venue's current signed position (for reduce-only).
        queue_model: queue-position model for orders resting at a visible level.
        fill_model: :class:`PartialFills` (default) or :class:`NoPartialFills`.
    """

    def __init__(self, spec: InstrumentSpec, book: BookTape | None, trades: TradeTape | None,
                 position: Callable[[], Decimal], queue_model: QueueModel | None = None,
                 fill_model: FillModel | None = None):
        self.spec = spec
        self.book = book
        self.trades = trades
        self.position = position
        self.queue_model = queue_model or RiskAverseQueue()
        self.fill_model = fill_model or PartialFills()
        self.row = -1
        self.resting: dict[str, SimOrder] = {}
        self.halted: str | None = None  # a reason: every order and amend refused with it
        self._sides = {1: RestingSide(1), -1: RestingSide(-1)}
        self._seq = itertools.count()
        self._consumed: dict[tuple[int, float], Decimal] = {}
        self._half_tick = float(spec.tick_size) / 2
        self._unbooked = ZERO  # signed size filled in the current call, not yet booked
        self._lists_of: tuple[BookTape | None, int] | None = None  # (book, row) of ``_lists``
        self._lists: dict[int, tuple[list[float], list[float]]] = {}
        self._facts: _BlockFacts | None = None  # of the current row's block
        self.version = 0  # counts the changes of the resting orders' prices
        self._facts_of: tuple[BookTape, tuple[np.ndarray, np.ndarray, np.ndarray]] | None = None
        self._followed_at: tuple[int, _Followed] | None = None  # (version, what follow passes)

    @property
    def half_tick(self) -> float:
        """Half the tick size: prices closer than it are the same level."""
        return self._half_tick

    def our_best(self, side: int) -> float:
        """Our best resting price on ``side`` (``nan`` if none)."""
        return self._sides[side].best()

    # -- book access -------------------------------------------------------------------

    def rebase(self, book: BookTape | None, trades: TradeTape | None, row: int) -> None:
        """Go on with ``book``/``trades`` (a streaming replay's next window), where the
        current book is ``row``: the same book state renumbered, so nothing else changes
        (liquidity taken at it is still remembered)."""
        self.book, self.trades, self.row = book, trades, row
        self._lists_of = self._facts = None

    def seek(self, row: int) -> None:
        """Move to book ``row`` without matching (no order rests, or the replay catches up
        lazily); liquidity we took is forgotten when the row changes."""
        if row != self.row:
            self.row = row
            self._consumed.clear()

    def levels(self, side: int) -> tuple[np.ndarray, np.ndarray]:
        """``(prices, sizes)`` of the current book's bids (``side=1``) or asks (``-1``)."""
        if self.book is None or self.row < 0:
            empty = np.empty(0)
            return empty, empty
        if side == 1:
            return self.book.bid_price[self.row], self.book.bid_size[self.row]
        return self.book.ask_price[self.row], self.book.ask_size[self.row]

    def level_lists(self, side: int) -> tuple[list[float], list[float]]:
        """:meth:`levels` as Python lists (the same float64 values), made once per book row:
        scanning twenty levels in Python is cheaper than a numpy call per order."""
        if self._lists_of is None or self._lists_of[1] != self.row or (
                self._lists_of[0] is not self.book):
            self._lists_of = (self.book, self.row)
            self._lists = {s: (p.tolist(), q.tolist())
                           for s, (p, q) in ((1, self.levels(1)), (-1, self.levels(-1)))}
        return self._lists[side]

    def _block_facts(self) -> _BlockFacts:
        """The facts of the current row's block (``book`` set, ``row >= 0``)."""
        facts = self._facts
        if facts is None or not facts.lo <= self.row < facts.hi or facts.book is not self.book:
            assert self.book is not None
            facts = self._facts = _BlockFacts(self.book, self.row // SPAN_BLOCK)
        return facts

    def _price_span(self, side: int) -> tuple[float, float]:
        """Lowest and highest price of ``side`` in the current row (``nan`` if none)."""
        facts = self._block_facts()
        k = self.row - facts.lo
        return facts.low[side][k], facts.high[side][k]

    def best(self, side: int) -> float:
        """Best bid (``side=1``) or ask (``-1``) price now; ``nan`` if none."""
        if self.book is None or self.row < 0:
            return float("nan")
        facts = self._block_facts()
        return facts.best[side][self.row - facts.lo]

    def mid(self) -> float:
        """Mid of the current book (``nan`` if a side is empty)."""
        return (self.best(1) + self.best(-1)) / 2

    def level_qty(self, side: int, px: float) -> float:
        """Displayed size at ``px`` on ``side``: the first level within half a tick of it
        (0 if none)."""
        if self.book is None or self.row < 0:
            return 0.0
        half = self._half_tick
        facts = self._block_facts()
        k = self.row - facts.lo
        # ``price - px`` rounds monotonically in ``price``: no level is within half a tick
        # when the lowest is half a tick above px or the highest half a tick below
        if not (facts.low[side][k] - px < half and facts.high[side][k] - px > -half):
            return 0.0
        if facts.ordered[side][k]:
            return self._bisect_level(side, px, facts.count[side][k])
        for price, size in zip(*self.level_lists(side), strict=True):
            if abs(price - px) < half:
                return size
        return 0.0

    def _bisect_level(self, side: int, px: float, n: int) -> float:
        """:meth:`level_qty` in a row in book order: the distance ``price - px`` is monotonic
        along it, so the first level less than half a tick on the near side of ``px`` is
        found by bisection, in O(log depth)."""
        prices, sizes = self.levels(side)
        half = self._half_tick
        if side == 1:  # descending: px - price grows along the row
            k = bisect.bisect_right(prices, -half, 0, n, key=lambda p: px - p)
        else:
            k = bisect.bisect_right(prices, -half, 0, n, key=lambda p: p - px)
        if k < n and abs(prices[k] - px) < half:
            return float(sizes[k])
        return 0.0

    def _crosses(self, order: SimOrder, px: float | None = None) -> bool:
        """True if ``order``'s price (``px``: its float, if known) reaches the best opposite
        price now."""
        opposite = self.best(-order.side)
        if order.price is None:
            return True
        if opposite != opposite:  # nan: no opposite side
            return False
        return order.side * ((order.px if px is None else px) - opposite) > -self._half_tick

    # -- order entry -------------------------------------------------------------------

    def submit(self, order: SimOrder) -> MatchResult:
        """An order arriving at exchange time: validate, take liquidity, rest the rest."""
        reason = self.halted or self._reject_reason(order)
        if reason is not None:
            return MatchResult(rejected=reason)
        return self._enter(order)

    def amend(self, cloid: str, price: Decimal | None, qty: Decimal | None) -> MatchResult:
        """Change a resting order's price and/or unsigned size (``None`` keeps it), at
        exchange time (the rule **an amend keeps the queue place only when it shrinks the
        order**)."""
        order = self.resting.get(cloid)
        if order is None:
            return MatchResult(rejected=REJECT_UNKNOWN_ORDER)
        if self.halted is not None:
            return MatchResult(rejected=self.halted)
        trial = replace(order, price=order.price if price is None else price,
                        qty=order.qty if qty is None else qty)
        reason = self._amend_reason(order, trial)
        if reason is not None:
            return MatchResult(rejected=reason)
        if trial.price == order.price and trial.qty < order.qty:
            order.qty = trial.qty
            return MatchResult()
        self._unrest(order)
        order.price, order.qty, order.queue = trial.price, trial.qty, QueueState()
        return self._enter(order)

    def _amend_reason(self, order: SimOrder, trial: SimOrder) -> str | None:
        if trial.qty <= order.filled:
            return REJECT_AMEND_QTY
        if (trial.price, trial.qty) == (order.price, order.qty):
            return REJECT_AMEND_NOTHING
        return self._grid_reason(trial) or self._reject_by_market(trial)

    def _enter(self, order: SimOrder) -> MatchResult:
        """A valid order entering the book: take what it crosses, rest or expire the rest."""
        self._unbooked = ZERO
        result = MatchResult()
        if self._crosses(order) and not self._take(order, result):
            result.expired.append(order)
        elif order.remaining > 0:
            if order.price is None or order.tif in ("IOC", "FOK") or (
                    order.reduce_only and self._reduce_cap(order, order.remaining) <= 0):
                result.expired.append(order)
            else:
                self._rest(order)
        return result

    def _reject_reason(self, order: SimOrder) -> str | None:
        if order.tif not in TIFS:
            return REJECT_TIF
        if order.cloid in self.resting:
            return REJECT_DUPLICATE
        return self._grid_reason(order) or self._reject_by_market(order)

    def _grid_reason(self, order: SimOrder) -> str | None:
        spec = self.spec
        if order.price is not None and order.price % spec.tick_size != 0:
            return REJECT_TICK
        if order.qty % spec.lot_size != 0:
            return REJECT_LOT
        if order.qty < spec.min_qty or order.qty <= 0:
            return REJECT_MIN_QTY
        return None

    def _reject_by_market(self, order: SimOrder) -> str | None:
        ref = order.price if order.price is not None else self.best(-order.side)
        if order.price is None and ref != ref:
            return REJECT_NO_BOOK
        if not order.reduce_only and self.spec.notional(to_decimal(ref), order.qty) < (
                self.spec.min_notional):
            return REJECT_NOTIONAL.format(min=self.spec.min_notional)
        if order.tif in POST_ONLY and self._crosses(order):
            return REJECT_POST_ONLY
        if order.reduce_only and order.side * self.position() >= 0:
            return REJECT_REDUCE
        return None

    def _take(self, order: SimOrder, result: MatchResult) -> bool:
        """Walk the visible opposite levels up to the limit price (the taker rule).

        Returns False for a FOK order that cannot fill in full (nothing is filled).
        """
        plan = self._walk_plan(order)
        total = sum((q for _, q, _ in plan), ZERO)
        if order.tif == "FOK" and total < order.remaining:
            return False
        for px, qty, key in plan:
            qty = self._reduce_cap(order, qty)
            if qty <= 0:
                break
            self._consumed[key] = self._consumed.get(key, ZERO) + qty
            self._fill(order, qty, to_decimal(px).quantize(self.spec.tick_size), False, "taker",
                       result)
        return True

    def _walk_plan(self, order: SimOrder) -> list[tuple[float, Decimal, tuple[int, float]]]:
        """``(price, qty, level key)`` our taker order would take, best level first."""
        prices, sizes = self.levels(-order.side)
        if not self.fill_model.partial:
            return self._whole_plan(order, prices)
        need, plan = order.remaining, []
        for px, size in zip(prices.tolist(), sizes.tolist(), strict=True):
            if need <= 0 or px != px or (order.price is not None and not self._reaches(
                    order, px)):
                break
            key = (-order.side, px)
            avail = _floor_lot(size, self.spec.lot_size) - self._consumed.get(key, ZERO)
            qty = min(need, avail)
            if qty > 0:
                plan.append((px, qty, key))
                need -= qty
        return plan

    def _whole_plan(self, order: SimOrder, prices: np.ndarray
                    ) -> list[tuple[float, Decimal, tuple[int, float]]]:
        """The no-partial taker: the whole remainder at the best opposite price."""
        if not len(prices) or prices[0] != prices[0]:
            return []
        px = float(prices[0])
        return [(px, order.remaining, (-order.side, px))]

    def _reaches(self, order: SimOrder, px: float) -> bool:
        return order.side * (order.px - px) > -self._half_tick

    def _rest(self, order: SimOrder) -> None:
        order.level_qty = self.level_qty(order.side, order.px)
        self.queue_model.on_new(order.queue, order.level_qty)
        order.seq = next(self._seq)
        self.version += 1
        self.resting[order.cloid] = order
        levels = self._sides[order.side]
        levels.add(order)
        if order.level_qty != 0:
            levels.marked.add(order.px)

    def _unrest(self, order: SimOrder) -> None:
        if self.resting.get(order.cloid) is order:
            self.version += 1
            del self.resting[order.cloid]
            self._sides[order.side].remove(order)

    def cancel(self, cloid: str) -> SimOrder | None:
        """Remove a resting order (the cancel reached the engine); ``None`` if it is gone."""
        order = self.resting.get(cloid)
        if order is not None:
            self._unrest(order)
        return order

    # -- fills ---------------------------------------------------------------------------

    def _reduce_cap(self, order: SimOrder, qty: Decimal) -> Decimal:
        if not order.reduce_only:
            return qty
        pos = self.position() + self._unbooked
        if order.side * pos >= 0:
            return ZERO
        return min(qty, abs(pos))

    def _fill(self, order: SimOrder, qty: Decimal, price: Decimal, is_maker: bool, rule: str,
              result: MatchResult) -> None:
        order.filled += qty
        self._unbooked += order.side * qty
        result.fills.append(RawFill(order, qty, price, is_maker, rule, order.filled))
        if order.remaining <= 0:
            self._unrest(order)

    def _fill_resting(self, order: SimOrder, qty: Decimal, rule: str,
                      result: MatchResult) -> Decimal:
        """Fill up to ``qty`` of a resting order at its price; the size actually filled."""
        capped = self._reduce_cap(order, min(qty, order.remaining))
        if order.reduce_only and capped <= 0:
            self._unrest(order)
            result.expired.append(order)
            return ZERO
        if capped > 0:
            assert order.price is not None
            self._fill(order, capped, order.price, True, rule, result)
        return capped

    def on_book(self, row: int) -> MatchResult:
        """The book moved to ``row`` at exchange time: crossings fill, queues follow."""
        self.row = row
        if self._consumed:
            self._consumed.clear()
        self._unbooked = ZERO
        crossed: list[SimOrder] = []
        for side, levels in self._sides.items():
            if levels:
                opposite = self.best(-side)
                crossed += levels.reached(opposite, self._half_tick)
                self._follow_levels(levels, opposite)
        if not crossed:
            return NOTHING
        result = MatchResult()
        if len(crossed) > 1:
            crossed.sort(key=_arrival)
        for order in crossed:
            self._fill_resting(order, order.remaining, "book_cross", result)
        return result

    def follow(self, rows: np.ndarray) -> None:
        """Book ``rows``, in order, that reach none of our orders (the rule **quiet rows
        only move queues**): the queues follow as :meth:`on_book` would have them, in one
        compiled pass for a built-in queue model and more than one row (a single row costs
        less through :meth:`on_book` than the pass's arrays do)."""
        code = model_code(self.queue_model)
        if code is None or self.book is None or len(rows) < 2:
            for row in rows.tolist():
                self.on_book(row)
            return
        self._follow_compiled(rows, code)

    def _follow_compiled(self, rows: np.ndarray, code: tuple[int, float]) -> None:
        """:meth:`follow` in one compiled pass (``code``: the queue model's
        :func:`~makerlab.sim.follow.model_code`)."""
        orders, levels, level_table, order_level = self._followed()
        state = np.array([(o.level_qty, o.queue.ahead, o.queue.traded) for o in orders])
        marked = np.array([px in side.marked for px, side in levels], np.float64)
        bids, asks, facts = self._tape_facts()
        follow_rows(rows, bids, asks, facts, self._half_tick, level_table, marked, order_level,
                    state, *code)
        for o, (qty, ahead, traded) in zip(orders, state.tolist(), strict=True):
            o.level_qty = qty
            o.queue.ahead, o.queue.traded = ahead, traded
        for (px, side), flag in zip(levels, marked.tolist(), strict=True):
            if flag:
                side.marked.add(px)
            else:
                side.marked.discard(px)
        self.row = int(rows[-1])
        self._consumed.clear()

    def _followed(self) -> _Followed:
        """Our orders and levels as :meth:`follow` passes them (once per change of the
        orders): the orders, each level's price and side, the levels as ``(price, side)``
        rows and each order's level index."""
        found = self._followed_at
        if found is None or found[0] != self.version:
            orders: list[SimOrder] = []
            levels: list[tuple[float, RestingSide]] = []
            order_level: list[int] = []
            for resting in self._sides.values():
                for px, at in resting.levels():
                    for o in at:
                        orders.append(o)
                        order_level.append(len(levels))
                    levels.append((px, resting))
            table = np.array([(px, side.side) for px, side in levels], np.float64)
            found = self._followed_at = (self.version, (
                orders, levels, table.reshape(-1, 2), np.array(order_level, np.int64)))
        return found[1]

    def _tape_facts(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The book's levels and per-row facts as :func:`~makerlab.sim.follow.follow_rows`
        reads them (once per book)."""
        cached = self._facts_of
        if cached is None or cached[0] is not self.book:
            assert self.book is not None
            bids, asks = (np.ascontiguousarray(s) for s in self.book.sides())
            rows = self.book.rows()
            cached = self._facts_of = (self.book, (bids, asks, row_facts(rows.bids,
                                                                         rows.asks)))
        return cached[1]

    def _follow_levels(self, levels: RestingSide, opposite: float) -> None:
        """Queue updates at the levels whose displayed size may have moved (the rule
        **resting orders far from the touch cost nothing per row**); crossed levels (that
        reach the ``opposite`` best price) are filled instead."""
        side, half = levels.side, self._half_tick
        for px in self._moved_levels(levels):
            if side * (px - opposite) > -half:
                continue
            new_qty = self.level_qty(side, px)
            for order in levels.orders_at(px):
                self.queue_model.on_level_change(order.queue, order.level_qty, new_qty)
                order.level_qty = new_qty
            if new_qty != 0:
                levels.marked.add(px)
            else:
                levels.marked.discard(px)

    def _moved_levels(self, levels: RestingSide) -> list[float]:
        """Our levels within the current row's price span on their side (with a tick of
        margin: :meth:`level_qty` is 0 outside it) and the marked ones."""
        shown: list[float] = []
        if self.book is not None and self.row >= 0:
            low, high = self._price_span(levels.side)
            if low == low:  # not nan: the side has levels
                tick = 2 * self._half_tick
                shown = levels.within(low - tick, high + tick)
        if not levels.marked:
            return shown
        return [*shown, *levels.marked.difference(shown)]

    def reaches(self, price: float, taker_dir: int) -> bool:
        """Whether a taker print at ``price`` reaches one of our resting orders (at or
        through its price): only such prints can fill or move a queue."""
        return self._sides[-taker_dir].reaches(price, self._half_tick)

    def on_print(self, row: int, every_print: bool = False) -> MatchResult | None:
        """Trade tape ``row`` at exchange time: :meth:`on_trade` if the print reaches one of
        our orders (``every_print``: whatever it reaches, the reference path), else
        ``None`` (nothing can fill or move)."""
        assert self.trades is not None
        tape = self.trades
        price, taker = float(tape.price[row]), int(tape.side[row])
        if not (every_print or self.reaches(price, taker)):
            return None
        return self.on_trade(price, float(tape.size[row]), taker)

    def on_trade(self, price: float, size: float, taker_dir: int) -> MatchResult:
        """A taker print of ``size`` at ``price``: trade-through and queue fills."""
        self._unbooked = ZERO
        levels = self._sides[-taker_dir]  # our orders on the side this print can hit
        hit = levels.reached(price, self._half_tick)
        if not hit:
            return NOTHING
        result = MatchResult()
        levels.marked.update(o.px for o in hit)  # their queues may move: see _follow_levels
        if not self.fill_model.partial:
            return self._trade_whole(sorted(hit, key=_arrival), price, size, result)
        left = _floor_lot(size, self.spec.lot_size)
        for order in hit:
            if levels.side * (order.px - price) > self._half_tick:
                left -= self._fill_resting(order, left, "trade_through", result)
            else:
                left -= self._queue_fill(order, size, left, result)
            if left <= 0:
                break
        return result

    def _trade_whole(self, hit: list[SimOrder], price: float, size: float,
                     result: MatchResult) -> MatchResult:
        """The no-partial trade rules: whole orders, the print's size not shared."""
        half_lot = float(self.spec.lot_size) / 2
        for order in hit:  # every one reaches the print
            if order.side * (order.px - price) > self._half_tick:
                self._fill_resting(order, order.remaining, "trade_through", result)
            else:
                self.queue_model.on_trade(order.queue, size)
                if self.queue_model.fillable(order.queue) >= half_lot:
                    self._fill_resting(order, order.remaining, "queue", result)
        return result

    def _queue_fill(self, order: SimOrder, size: float, left: Decimal,
                    result: MatchResult) -> Decimal:
        model, state = self.queue_model, order.queue
        model.on_trade(state, size)
        want = min(_floor_lot(model.fillable(state), self.spec.lot_size), left)
        filled = self._fill_resting(order, want, "queue", result)
        if filled > 0:
            model.consume(state, min(float(filled), model.fillable(state)))
        return filled


class _BlockFacts:
    """The facts of book rows ``[lo, hi)`` (:meth:`BookTape.rows
    <makerlab.sim.timeline.BookTape.rows>`) as Python values, per side (1 bids, -1 asks):
    best, lowest and highest price, number of levels, whether in book order."""

    __slots__ = ("best", "book", "count", "hi", "high", "lo", "low", "ordered")

    def __init__(self, book: BookTape, block: int) -> None:
        self.book = book
        self.lo = block * SPAN_BLOCK
        self.hi = min(self.lo + SPAN_BLOCK, len(book))
        rows, span = book.rows(), slice(self.lo, self.hi)
        self.best = {1: book.bid_price[span, 0].tolist(), -1: book.ask_price[span, 0].tolist()}
        self.low = {s: rows.side(s).low[span].tolist() for s in (1, -1)}
        self.high = {s: rows.side(s).high[span].tolist() for s in (1, -1)}
        self.count = {s: rows.side(s).count[span].tolist() for s in (1, -1)}
        self.ordered = {s: rows.side(s).ordered[span].tolist() for s in (1, -1)}


def _arrival(order: SimOrder) -> int:
    return order.seq


_LOT_EPS = Decimal("1e-9")


def _floor_lot(qty: float, lot: Decimal) -> Decimal:
    """``qty`` floored to the lot grid, within ``1e-9`` lot of a multiple counting as it."""
    units = (to_decimal(max(qty, 0.0)) / lot + _LOT_EPS).to_integral_value(rounding=ROUND_FLOOR)
    return units * lot
