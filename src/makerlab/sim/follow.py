"""Quiet rows, compiled: what a matching engine's resting orders do between the rows that
can fill them.

While orders rest, most exchange-time rows can only move their queue estimates: a book
row whose best opposite price reaches none of our orders fills nothing, and a print that
reaches none of them changes nothing at all (:mod:`makerlab.sim.matching`). Both tests
look at prices only (our best price per side against the row's), never at queue states,
so the rows that need the engine's Python rules (the *stops*) are found ahead of time by
one compiled scan (:func:`first_stop`), and the queue updates of the book rows before a
stop are applied in one compiled pass (:func:`follow_rows`) when something needs them:
the replay loop then wakes only at a stop, at an order event or when the engine is read
(:mod:`makerlab.sim.loop`).

The pass is the engine's ``on_book`` without its crossing fills (none can happen on these
rows), float for float: the same levels followed (those within the row's price span, with
a tick of margin, and the marked ones), the same displayed size at each (the first level
within half a tick: by bisection in a row in book order, else a scan), the same queue
model arithmetic. Only the built-in queue models have a compiled form (:func:`model_code`);
an engine with any other model follows the rows through its Python ``on_book``, and so
does any engine for a single row (the pass's arrays cost more than ``on_book`` there).
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from makerlab.sim.book_rows import SideRows
from makerlab.sim.queue import (
    LogProbQueue,
    LogProbQueue2,
    PowerProbQueue,
    PowerProbQueue2,
    PowerProbQueue3,
    QueueModel,
    RiskAverseQueue,
)

__all__ = ["first_stop", "follow_rows", "model_code", "row_facts", "stop_prices"]

_RISK_AVERSE, _POWER, _POWER2, _POWER3, _LOG, _LOG2 = range(6)
_CODES: dict[type, int] = {RiskAverseQueue: _RISK_AVERSE, PowerProbQueue: _POWER,
                           PowerProbQueue2: _POWER2, PowerProbQueue3: _POWER3,
                           LogProbQueue: _LOG, LogProbQueue2: _LOG2}


def model_code(model: QueueModel) -> tuple[int, float] | None:
    """``(code, n)`` of a built-in queue model's compiled form; ``None`` for any other
    model (a subclass too: it may change the rules)."""
    code = _CODES.get(type(model))
    if code is None:
        return None
    return code, float(getattr(model, "n", 0.0))


def stop_prices(kind: np.ndarray, row: np.ndarray, book_kind: int, bid_best: np.ndarray,
                ask_best: np.ndarray, trade_price: np.ndarray, trade_side: np.ndarray
                ) -> tuple[np.ndarray, np.ndarray]:
    """Per step (``kind``, ``row``): the price our bids must reach to stop there (a book
    row's best ask, a sell print's price) and the price our asks must reach (a book row's
    best bid, a buy print's price); ``nan`` where nothing can reach."""
    is_book = kind == book_kind
    books, prints = row[is_book], row[~is_book]
    hit_bid, hit_ask = np.full(len(kind), np.nan), np.full(len(kind), np.nan)
    hit_bid[is_book], hit_ask[is_book] = ask_best[books], bid_best[books]
    price, buys = trade_price[prints], trade_side[prints] > 0
    hit_bid[np.flatnonzero(~is_book)[~buys]] = price[~buys]
    hit_ask[np.flatnonzero(~is_book)[buys]] = price[buys]
    return hit_bid, hit_ask


@njit(cache=True)
def first_stop(hit_bid, hit_ask, lo, hi, our_bid, our_ask, half):  # pragma: no cover
    """Index in ``[lo, hi)`` of the first step that may fill or move a queue by a print
    (:func:`stop_prices`): where our best bid ``our_bid`` reaches ``hit_bid`` or our best
    ask ``our_ask`` reaches ``hit_ask`` (``nan``: no order on that side); ``hi`` if none."""
    for k in range(lo, hi):
        if our_bid - hit_bid[k] > -half or -(our_ask - hit_ask[k]) > -half:
            return k
    return hi


@njit(cache=True)
def _min(a, b):  # pragma: no cover
    """Python's ``min(a, b)`` (``a`` unless ``b < a``: the same with a NaN)."""
    return b if b < a else a


@njit(cache=True)
def _max(a, b):  # pragma: no cover
    """Python's ``max(a, b)``."""
    return b if b > a else a


@njit(cache=True)
def _prob_back(code, front, back, n):  # pragma: no cover
    """The share of a decrease taken from behind (:mod:`makerlab.sim.queue`'s functions)."""
    if code == _POWER:
        fb, ff = back**n, front**n
        return fb / (fb + ff) if fb + ff > 0 else 1.0
    if code == _POWER2:
        total = (back + front) ** n
        return back**n / total if total > 0 else 1.0
    if code == _POWER3:
        total = front + back
        return 1.0 - (front / total) ** n if total > 0 else 1.0
    if code == _LOG:
        lb, lf = math.log1p(back), math.log1p(front)
        return lb / (lb + lf) if lb + lf > 0 else 1.0
    total = math.log1p(back + front)
    return math.log1p(back) / total if total > 0 else 1.0


@njit(cache=True)
def _level_change(code, n, ahead, traded, prev_qty, new_qty):  # pragma: no cover
    """``_QueueRules.on_level_change``: the new ``ahead`` (``traded`` becomes 0)."""
    chg = prev_qty - new_qty - traded
    front, back = ahead, _max(prev_qty - traded - ahead, 0.0)
    if chg <= 0:
        return _min(ahead, _max(new_qty, 0.0))
    if code == _RISK_AVERSE:
        return _min(front, _max(new_qty, 0.0))
    prob_back = _prob_back(code, front, back, n)
    if not math.isfinite(prob_back):
        prob_back = 1.0
    est = front - (1.0 - prob_back) * chg + _min(back - prob_back * chg, 0.0)
    return _min(_max(est, 0.0), _max(new_qty, 0.0))


@njit(cache=True)
def _level_qty(levels, r, low, high, count, ordered, side, px, half):  # pragma: no cover
    """``MatchingEngine.level_qty`` at row ``r`` of ``levels`` (``(n, depth, 2)``)."""
    if not (low - px < half and high - px > -half):
        return 0.0
    if ordered:
        lo, hi = 0, count
        while lo < hi:  # bisect_right of -half by the distance on the near side
            mid = (lo + hi) // 2
            key = px - levels[r, mid, 0] if side == 1 else levels[r, mid, 0] - px
            if -half < key:
                hi = mid
            else:
                lo = mid + 1
        if lo < count and abs(levels[r, lo, 0] - px) < half:
            return levels[r, lo, 1]
        return 0.0
    for k in range(levels.shape[1]):
        if abs(levels[r, k, 0] - px) < half:
            return levels[r, k, 1]
    return 0.0


def row_facts(bids: SideRows, asks: SideRows) -> np.ndarray:
    """The per-row facts :func:`follow_rows` reads, as one ``(n, 8)`` array: lowest and
    highest price, level count and book order of the bids, then of the asks."""
    return np.ascontiguousarray(np.column_stack([
        bids.low, bids.high, bids.count, bids.ordered, asks.low, asks.high, asks.count,
        asks.ordered]).astype(np.float64))


@njit(cache=True)
def follow_rows(rows, bids, asks, facts, half, levels, marked, order_level, state, code, n
                ):  # pragma: no cover
    """Book ``rows`` (none reaching our orders) applied in order to our ``levels`` (rows
    of price and side) and orders (``order_level``: their level's index), in place: the
    levels' ``marked`` flags and the orders' ``state`` (rows of the size their level showed
    at their last update, the queue ahead and the size traded since); ``bids`` and
    ``asks`` the book's ``(n, depth, 2)`` price and size levels, ``facts`` its
    :func:`row_facts`."""
    tick = 2 * half
    for r in rows:
        for lv in range(levels.shape[0]):
            px, side = levels[lv, 0], levels[lv, 1]
            f = 0 if side == 1 else 4
            opposite = asks[r, 0, 0] if side == 1 else bids[r, 0, 0]
            if side * (px - opposite) > -half:
                continue
            low, high = facts[r, f], facts[r, f + 1]
            shown = low == low and low - tick <= px <= high + tick
            if not (shown or marked[lv] != 0):
                continue
            new_qty = _level_qty(bids if side == 1 else asks, r, low, high, int(facts[r, f + 2]),
                                 facts[r, f + 3] != 0, side, px, half)
            for o in range(order_level.shape[0]):
                if order_level[o] == lv:
                    state[o, 1] = _level_change(code, n, state[o, 1], state[o, 2], state[o, 0],
                                                new_qty)
                    state[o, 2] = 0.0
                    state[o, 0] = new_qty
            marked[lv] = 1.0 if new_qty != 0 else 0.0
