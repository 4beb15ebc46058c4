"""The level-indexed engine fills exactly as the naive one that scans every resting order.

Rule (``makerlab.sim.matching``): **resting orders far from the touch cost nothing per
row**: a book row visits only the levels of our orders that cross, are displayed (in this
row or the previous one) or traded since; a print only the levels it reaches. The
reference :class:`naive_engine.NaiveEngine` visits every order on every row.
"""

from __future__ import annotations

import asyncio
from decimal import Decimal

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from naive_engine import NaiveEngine
from replay_scenarios import EXC, TICKER, fill_records, random_market, replayer

from makerlab.sim.matching import NoPartialFills, PartialFills
from makerlab.sim.queue import LogProbQueue, PowerProbQueue, RiskAverseQueue

D = Decimal

order = st.tuples(
    st.integers(1_000, 10_900),                                 # when (ms)
    st.sampled_from(["limit", "limit", "limit", "cancel"]),
    st.integers(-20, 20).filter(bool),                          # size in lots x sign
    st.one_of(st.integers(-4, 4), st.integers(-60, 60)),        # ticks from the best bid
    st.booleans(),                                              # reduce_only
)
models = st.sampled_from([RiskAverseQueue(), PowerProbQueue(2.0), LogProbQueue()])
fill_models = st.sampled_from([PartialFills(), NoPartialFills()])


def run(seed, actions, queue_model, fill_model, naive: bool):
    books, trades = random_market(seed)
    rep = replayer(books, trades, queue_model=queue_model, fill_model=fill_model)
    engine = rep.venue.engine(EXC, TICKER)
    if naive:
        engine.__class__ = NaiveEngine
        rep.ROW_BY_ROW = True
    oms = rep.get_oms()

    async def act(msg):
        kind, lots, ticks, reduce_only = msg
        if kind == "cancel":
            await oms.cancel_order(EXC, TICKER)
        elif engine.best(1) == engine.best(1):
            price = D(repr(engine.best(1))) + D(ticks) * D("0.1")
            await oms.limit_order(EXC, TICKER, D(lots) * D("0.01"), price,
                                  reduce_only=reduce_only)

    rep.add_callback("act", act)
    actions = sorted(actions, key=lambda a: a[0])
    rep.add_events("act", [a[0] for a in actions], [a[1:] for a in actions])
    asyncio.run(rep.play(progress=False))
    queues = {c: (o.queue.ahead, o.queue.traded, o.queue.fillable, o.level_qty, o.filled)
              for c, o in engine.resting.items()}
    return fill_records(rep), rep.actions, rep.stamps, queues


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(0, 50), st.lists(order, min_size=1, max_size=60), models, fill_models)
def test_resting_orders_far_from_the_touch_cost_nothing_per_row(seed, actions, queue_model,
                                                                 fill_model):
    fast = run(seed, actions, queue_model, fill_model, naive=False)
    assert fast == run(seed, actions, queue_model, fill_model, naive=True)
