"""The level-indexed engine fills exactly as the naive one that scans every resting order.

Rule (``makerlab.sim.matching``): **resting orders far from the touch cost nothing per
row**: a book row visits only the levels of our orders that cross, are displayed (in this
row or at their last update) or traded since; a print only the levels it reaches. The
reference :class:`naive_engine.NaiveEngine` visits every order on every row.

The markets are rough on purpose: books with holes between levels (prints land on prices
no level shows), jumps of several ticks (one row crosses many of our orders, which
arrived in another order than their prices'), and orders from deep inside the book to far
outside it, some reduce-only, some cancelled.
"""

from __future__ import annotations

import asyncio
from decimal import Decimal

import numpy as np
import pytest
from naive_engine import NaiveEngine
from replay_scenarios import EXC, TICKER, fill_records, replayer

from makerlab.sim.matching import NoPartialFills, PartialFills
from makerlab.sim.queue import LogProbQueue, PowerProbQueue, RiskAverseQueue

D = Decimal
TICK = 0.1


def rough_market(rng: np.random.Generator, n: int = 300) -> tuple[list[dict], np.ndarray]:
    """Depth-5 books (holes of one tick between some levels) on a walk with jumps, and
    prints up to three ticks from the touch."""
    steps = np.where(rng.random(n) < 0.05, rng.integers(-8, 9, n), rng.integers(-1, 2, n))
    bids = 600_000 + np.cumsum(steps)  # in ticks
    books, trades = [], []
    for i, bid in enumerate(bids.tolist()):
        ask = bid + int(rng.integers(1, 3))
        ts = 1_000 + 40 * i
        books.append({"ts": ts, "b": _side(rng, bid, -1), "a": _side(rng, ask, 1)})
        for _ in range(int(rng.integers(0, 4))):
            taker = int(rng.choice([-1, 1]))
            px = (ask if taker > 0 else bid) + taker * int(rng.integers(-1, 4))
            trades.append((ts + int(rng.integers(0, 40)), round(px * TICK, 1),
                           float(rng.uniform(0.001, 0.4)), taker))
    trades.sort(key=lambda r: r[0])
    return books, np.array(trades, dtype=float).reshape(-1, 4)


def _side(rng: np.random.Generator, best: int, away: int) -> list[list[float]]:
    ticks = best + away * np.cumsum([0, *rng.integers(1, 3, 4)])
    return [[round(t * TICK, 1), float(rng.uniform(0.01, 0.5))] for t in ticks.tolist()]


def order_flow(rng: np.random.Generator, n: int = 150) -> list[tuple]:
    """``(ms, kind, lots, ticks from the touch, reduce_only)``; negative ticks are inside
    the book (marketable), large ones far from it."""
    times = np.sort(rng.integers(1_000, 12_900, n)).tolist()
    ticks = np.where(rng.random(n) < 0.3, rng.integers(-40, 41, n), rng.integers(-2, 8, n))
    return [(t, "cancel" if rng.random() < 0.2 else "limit",
             int(rng.choice([-1, 1])) * int(rng.integers(1, 20)), int(k),
             bool(rng.random() < 0.15)) for t, k in zip(times, ticks.tolist(), strict=True)]


def run(seed, queue_model, fill_model, naive: bool):
    rng = np.random.default_rng(seed)
    books, trades = rough_market(rng)
    rep = replayer(books, trades, queue_model=queue_model, fill_model=fill_model)
    engine = rep.venue.engine(EXC, TICKER)
    if naive:
        engine.__class__ = NaiveEngine
        rep.ROW_BY_ROW = True
    oms, states = rep.get_oms(), []

    async def act(msg):
        kind, lots, ticks, reduce_only = msg
        states.append(queue_states(engine))
        live = [o for o in oms.orders_peek(EXC).get_orders() if o.oid is not None]
        if kind == "cancel" and live:
            await oms.cancel_order(EXC, TICKER, cloid=live[ticks % len(live)].cloid)
        elif kind == "limit":
            touch = engine.best(1 if lots > 0 else -1)
            price = D(repr(touch)) - (1 if lots > 0 else -1) * ticks * D("0.1")
            await oms.limit_order(EXC, TICKER, D(lots) * D("0.01"), price,
                                  reduce_only=reduce_only)

    flow = order_flow(rng)
    rep.add_callback("act", act)
    rep.add_events("act", [a[0] for a in flow], [a[1:] for a in flow])
    asyncio.run(rep.play(progress=False))
    states.append(queue_states(engine))
    return fill_records(rep), rep.actions, rep.stamps, states


def queue_states(engine):
    """Every resting order's queue estimate and fills (compared at every action)."""
    return {c: (o.queue.ahead, o.queue.traded, o.queue.fillable, o.level_qty, o.filled)
            for c, o in engine.resting.items()}


@pytest.mark.parametrize("fill_model", [PartialFills(), NoPartialFills()],
                         ids=["partial", "no_partial"])
@pytest.mark.parametrize("queue_model", [RiskAverseQueue(), PowerProbQueue(2.0),
                                         LogProbQueue()], ids=["risk_averse", "power", "log"])
@pytest.mark.parametrize("seed", range(6))
def test_resting_orders_far_from_the_touch_cost_nothing_per_row(seed, queue_model,
                                                                 fill_model):
    fast = run(seed, queue_model, fill_model, naive=False)
    assert fast[0]  # the scenario fills
    assert fast == run(seed, queue_model, fill_model, naive=True)
