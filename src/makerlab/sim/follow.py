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
an engine with any other model follows the rows through its Python ``on_book``.
"""

from __future__ import annotations

import math

from numba import njit

from makerlab.sim.queue import (
    LogProbQueue,
    LogProbQueue2,
    PowerProbQueue,
    PowerProbQueue2,
    PowerProbQueue3,
    QueueModel,
    RiskAverseQueue,
)

__all__ = ["first_stop", "follow_rows", "model_code"]

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


@njit(cache=True)
def first_stop(kind, row, lo, hi, book_kind, bid_best, ask_best, trade_price, trade_side,
               our_bid, our_ask, half):  # pragma: no cover
    """Index in ``[lo, hi)`` of the first step that may fill or move a queue by a print:
    a book row whose best opposite price our best bid ``our_bid`` or best ask ``our_ask``
    reaches, or a print that reaches our best price on the side it hits (``nan``: no
    order on that side); ``hi`` if none."""
    for k in range(lo, hi):
        r = row[k]
        if kind[k] == book_kind:
            if our_bid - ask_best[r] > -half or -(our_ask - bid_best[r]) > -half:
                return k
        elif trade_side[r] > 0:  # a buyer took: it reaches our asks
            if -(our_ask - trade_price[r]) > -half:
                return k
        elif our_bid - trade_price[r] > -half:
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
def _level_qty(prices, sizes, r, low, high, count, ordered, side, px, half
               ):  # pragma: no cover
    """``MatchingEngine.level_qty`` at row ``r``."""
    if not (low[r] - px < half and high[r] - px > -half):
        return 0.0
    if ordered[r]:
        lo, hi = 0, count[r]
        while lo < hi:  # bisect_right of -half by the distance on the near side
            mid = (lo + hi) // 2
            key = px - prices[r, mid] if side == 1 else prices[r, mid] - px
            if -half < key:
                hi = mid
            else:
                lo = mid + 1
        if lo < count[r] and abs(prices[r, lo] - px) < half:
            return sizes[r, lo]
        return 0.0
    for k in range(prices.shape[1]):
        if abs(prices[r, k] - px) < half:
            return sizes[r, k]
    return 0.0


@njit(cache=True)
def follow_rows(rows, bid_price, bid_size, ask_price, ask_size, bid_low, bid_high, bid_count,
                bid_ordered, ask_low, ask_high, ask_count, ask_ordered, half, levels, orders,
                code, n):  # pragma: no cover
    """Book ``rows`` (none reaching our orders) applied in order, in place, to our
    ``levels`` (rows of price, side, marked) and ``orders`` (rows of their level's index,
    the size it showed at their last update, the queue ahead and traded since)."""
    tick = 2 * half
    for r in rows:
        for lv in range(levels.shape[0]):
            px, side = levels[lv, 0], levels[lv, 1]
            if side == 1:
                opposite, low, high = ask_price[r, 0], bid_low[r], bid_high[r]
            else:
                opposite, low, high = bid_price[r, 0], ask_low[r], ask_high[r]
            if side * (px - opposite) > -half:
                continue
            shown = low == low and low - tick <= px <= high + tick
            if not (shown or levels[lv, 2] != 0):
                continue
            if side == 1:
                new_qty = _level_qty(bid_price, bid_size, r, bid_low, bid_high, bid_count,
                                     bid_ordered, 1, px, half)
            else:
                new_qty = _level_qty(ask_price, ask_size, r, ask_low, ask_high, ask_count,
                                     ask_ordered, -1, px, half)
            for o in range(orders.shape[0]):
                if orders[o, 0] == lv:
                    orders[o, 2] = _level_change(code, n, orders[o, 2], orders[o, 3],
                                                 orders[o, 1], new_qty)
                    orders[o, 3] = 0.0
                    orders[o, 1] = new_qty
            levels[lv, 2] = 1.0 if new_qty != 0 else 0.0
