"""One test per matching rule in makerlab.sim.matching's docstring (named after it)."""

from __future__ import annotations

from decimal import Decimal

import numpy as np
import pytest

from makerlab.core.instruments import get_spec
from makerlab.sim.follow import model_code
from makerlab.sim.matching import (
    REJECT_AMEND_NOTHING,
    REJECT_AMEND_QTY,
    REJECT_DUPLICATE,
    REJECT_LOT,
    REJECT_MIN_QTY,
    REJECT_NOTIONAL,
    REJECT_POST_ONLY,
    REJECT_REDUCE,
    REJECT_TICK,
    REJECT_UNKNOWN_ORDER,
    MatchingEngine,
    SimOrder,
)
from makerlab.sim.queue import PowerProbQueue, RiskAverseQueue
from makerlab.sim.timeline import BookTape

D = Decimal
SPEC = get_spec("binance", "BTCUSDT")  # tick 0.10, lot 0.001, min notional 100

BOOKS = [
    {"ts": 0, "b": [[60000.0, 1.0], [59999.9, 2.0]], "a": [[60000.1, 0.5], [60000.2, 1.0]]},
    {"ts": 1, "b": [[60000.0, 0.4], [59999.9, 2.0]], "a": [[60000.1, 0.5], [60000.2, 1.0]]},
    {"ts": 2, "b": [[59999.8, 1.0]], "a": [[59999.9, 0.3], [60000.0, 1.0]]},
]


class Account:
    def __init__(self) -> None:
        self.pos = D(0)


def engine(queue_model=None, account: Account | None = None) -> MatchingEngine:
    account = account or Account()
    tape = BookTape.from_records("binance", "BTCUSDT", BOOKS)
    eng = MatchingEngine(SPEC, tape, None, lambda: account.pos, queue_model)
    eng.on_book(0)
    return eng


_ids = iter(range(10**6))


def order(amount: str, price: str | None, tif: str = "GTC", reduce_only: bool = False
          ) -> SimOrder:
    n = next(_ids)
    amt = D(amount)
    return SimOrder("binance", "BTCUSDT", f"c{n}", str(n), 1 if amt > 0 else -1, abs(amt),
                    None if price is None else D(price), tif, reduce_only)


def test_validate_tick_lot_and_min_notional():
    eng = engine()
    assert eng.submit(order("0.01", "59990.05")).rejected == REJECT_TICK
    assert eng.submit(order("0.0105", "59990.0")).rejected == REJECT_LOT
    assert eng.submit(order("0.000", "59990.0")).rejected == REJECT_MIN_QTY
    small = eng.submit(order("0.001", "59990.0")).rejected
    assert small == REJECT_NOTIONAL.format(min=SPEC.min_notional)
    market_small = eng.submit(order("-0.001", None)).rejected
    assert market_small == REJECT_NOTIONAL.format(min=SPEC.min_notional)
    assert eng.submit(order("0.002", "59990.0")).rejected is None
    assert not eng.submit(order("0.002", "59990.0")).fills


def test_post_only_rejects_when_crossing():
    eng = engine()
    res = eng.submit(order("0.01", "60000.1", tif="GTX"))
    assert res.rejected == REJECT_POST_ONLY and not res.fills
    assert eng.submit(order("0.01", "60000.0", tif="ALO")).rejected is None


def test_reduce_only_must_reduce():
    account = Account()
    eng = engine(account=account)
    assert eng.submit(order("0.01", "59990.0", reduce_only=True)).rejected == REJECT_REDUCE
    account.pos = D("0.005")
    res = eng.submit(order("-0.01", "60000.0", reduce_only=True))  # marketable: bids 60000
    assert res.rejected is None
    assert [f.qty for f in res.fills] == [D("0.005")]  # capped at the position
    assert res.expired  # the rest is expired (IOC-like: nothing left to reduce)


def test_reduce_only_resting_order_expires_when_flat():
    account = Account()
    account.pos = D("-0.01")
    eng = engine(account=account)
    o = order("0.02", "60000.0", reduce_only=True)
    assert eng.submit(o).rejected is None and o.cloid in eng.resting
    account.pos = D(0)
    res = eng.on_trade(59999.0, 1.0, -1)
    assert not res.fills and res.expired == [o] and o.cloid not in eng.resting


def test_takers_walk_the_visible_book():
    eng = engine()
    res = eng.submit(order("0.8", "60000.2"))
    assert [(f.price, f.qty, f.is_maker) for f in res.fills] == [
        (D("60000.1"), D("0.5"), False), (D("60000.2"), D("0.3"), False)]
    market = eng.submit(order("-1.5", None))
    assert [(f.price, f.qty) for f in market.fills] == [(D("60000.0"), D("1.0")),
                                                         (D("59999.9"), D("0.5"))]


def test_consumed_liquidity_is_not_taken_twice():
    eng = engine()
    first = eng.submit(order("0.4", "60000.1", tif="IOC"))
    second = eng.submit(order("0.4", "60000.1", tif="IOC"))
    assert sum(f.qty for f in first.fills) == D("0.4")
    assert sum(f.qty for f in second.fills) == D("0.1")  # only 0.5 was displayed
    eng.on_book(1)  # the book updates: the level is whole again
    third = eng.submit(order("0.4", "60000.1", tif="IOC"))
    assert sum(f.qty for f in third.fills) == D("0.4")


def test_ioc_and_market_remainders_are_expired():
    eng = engine()
    ioc = order("1.0", "60000.1", tif="IOC")
    res = eng.submit(ioc)
    assert sum(f.qty for f in res.fills) == D("0.5") and res.expired == [ioc]
    assert ioc.cloid not in eng.resting
    mkt = order("3.0", None)
    res = eng.submit(mkt)
    assert sum(f.qty for f in res.fills) == D("1.0") and res.expired == [mkt]


def test_fok_fills_in_full_or_not_at_all():
    eng = engine()
    res = eng.submit(order("0.6", "60000.1", tif="FOK"))
    assert not res.fills and len(res.expired) == 1
    res = eng.submit(order("0.5", "60000.1", tif="FOK"))
    assert sum(f.qty for f in res.fills) == D("0.5") and not res.expired


def test_gtc_limit_remainder_rests_at_its_price():
    eng = engine()
    o = order("0.7", "60000.1")
    res = eng.submit(o)
    assert sum(f.qty for f in res.fills) == D("0.5")
    assert eng.resting[o.cloid] is o and o.remaining == D("0.2")


def test_resting_orders_join_the_queue_at_the_back():
    eng = engine()
    o = order("0.01", "60000.0")
    eng.submit(o)
    assert o.queue.ahead == pytest.approx(1.0)
    away = order("0.01", "59990.0")
    eng.submit(away)
    assert away.queue.ahead == 0.0


def test_trades_through_the_price_fill():
    eng = engine()
    hi, lo = order("0.3", "60000.0"), order("0.3", "59999.9")
    eng.submit(hi)
    eng.submit(lo)
    res = eng.on_trade(59999.8, 0.4, -1)  # a taker sell printing through both
    assert [(f.order.cloid, f.price, f.qty, f.is_maker, f.rule) for f in res.fills] == [
        (hi.cloid, D("60000.0"), D("0.3"), True, "trade_through"),
        (lo.cloid, D("59999.9"), D("0.1"), True, "trade_through")]
    assert not eng.on_trade(59999.8, 0.4, 1).fills  # a taker buy cannot hit our bids


def test_quiet_rows_only_move_queues():
    by_row, at_once = engine(PowerProbQueue(2.0)), engine(PowerProbQueue(2.0))
    for eng in (by_row, at_once):
        eng.submit(order("0.01", "60000.0"))
        eng.submit(order("0.01", "59999.9"))
    assert not by_row.on_book(1).fills
    at_once._follow_compiled(np.array([1]), model_code(at_once.queue_model))  # the kernel
    assert [(o.queue, o.level_qty) for o in at_once.resting.values()] == [
        (o.queue, o.level_qty) for o in by_row.resting.values()]
    assert next(iter(at_once.resting.values())).queue.ahead == 0.4  # 1.0 shown, then 0.4


def test_trades_at_the_price_fill_through_the_queue():
    eng = engine()
    o = order("0.3", "60000.0")
    eng.submit(o)  # 1.0 ahead
    assert not eng.on_trade(60000.0, 0.8, -1).fills  # 0.2 still ahead
    res = eng.on_trade(60000.0, 0.3, -1)  # eats 0.2 ahead, 0.1 reaches us
    assert [(f.qty, f.rule) for f in res.fills] == [(D("0.1"), "queue")]
    assert o.remaining == D("0.2")


def test_queue_model_is_pluggable():
    """The engine follows the model it is given: cancels shrink the queue ahead under
    PowerProbQueue (split by the sizes around us), never under the risk-averse default."""
    books = [{"ts": 0, "b": [[60000.0, 1.0]], "a": [[60000.1, 0.5]]},  # we join behind 1.0
             {"ts": 1, "b": [[60000.0, 2.0]], "a": [[60000.1, 0.5]]},  # 1.0 joins behind us
             {"ts": 2, "b": [[60000.0, 1.4]], "a": [[60000.1, 0.5]]}]  # 0.6 cancelled
    ahead = {}
    for model in (RiskAverseQueue(), PowerProbQueue(2.0)):
        tape = BookTape.from_records("binance", "BTCUSDT", books)
        eng = MatchingEngine(SPEC, tape, None, lambda: D(0), model)
        eng.on_book(0)
        o = order("0.3", "60000.0")
        eng.submit(o)
        eng.on_book(1)
        eng.on_book(2)
        ahead[type(model).__name__] = o.queue.ahead
    assert ahead["RiskAverseQueue"] == 1.0
    assert ahead["PowerProbQueue"] == pytest.approx(0.7)  # half of the 0.6 was ahead of us


def test_a_crossing_book_fills():
    eng = engine()
    o = order("0.3", "59999.9")
    eng.submit(o)
    res = eng.on_book(2)  # best ask drops to 59999.9
    assert [(f.price, f.qty, f.is_maker, f.rule) for f in res.fills] == [
        (D("59999.9"), D("0.3"), True, "book_cross")]
    assert not eng.resting


def test_partial_fills_sum_to_the_order():
    eng = engine()
    o = order("0.5", "60000.0")
    eng.submit(o)
    eng.on_trade(60000.0, 1.0, -1)  # queue ahead gone
    total = D(0)
    for _ in range(10):
        total += sum(f.qty for f in eng.on_trade(60000.0, 0.15, -1).fills)
    assert total == D("0.5") and o.filled == o.qty and o.cloid not in eng.resting


def test_cancels_are_settled_at_exchange_time():
    eng = engine()
    o = order("0.3", "60000.0")
    eng.submit(o)
    eng.on_trade(59999.0, 0.1, -1)  # fills 0.1 before the cancel arrives
    assert eng.cancel(o.cloid) is o
    assert not eng.on_trade(59999.0, 1.0, -1).fills
    assert eng.cancel(o.cloid) is None  # cancelling again fails: the order is gone
    assert o.filled == D("0.1")


def test_fills_never_change_the_replayed_book():
    eng = engine()
    before = eng.book.ask_size.copy()
    eng.submit(order("0.5", "60000.1"))
    assert (eng.book.ask_size == before).all()


def test_client_order_ids_are_unique_among_resting_orders():
    eng = engine()
    first = order("0.3", "59990.0")
    eng.submit(first)
    dup = SimOrder("binance", "BTCUSDT", first.cloid, "dup", 1, D("0.5"), D("59980.0"))
    assert eng.submit(dup).rejected == REJECT_DUPLICATE
    assert eng.resting == {first.cloid: first}
    assert eng.cancel(first.cloid) is first and not eng.resting
    assert eng.submit(dup).rejected is None  # free again once the first is gone


def test_an_amend_keeps_the_queue_place_only_when_it_shrinks_the_order():
    eng = engine()
    first, second = order("0.3", "60000.0"), order("0.3", "60000.0")
    eng.submit(first)
    eng.submit(second)
    eng.on_trade(60000.0, 0.8, -1)  # 0.2 of the displayed 1.0 left ahead of both
    assert not eng.amend(first.cloid, None, D("0.2")).fills  # smaller: keeps its place
    assert (first.qty, first.seq, first.queue.ahead) == (D("0.2"), 0, pytest.approx(0.2))
    eng.amend(second.cloid, None, D("0.4"))  # larger: to the back, behind the level
    assert (second.qty, second.seq, second.queue.ahead) == (D("0.4"), 2, pytest.approx(1.0))
    eng.amend(first.cloid, D("59999.9"), None)  # repriced: to the back of the new level
    assert (first.seq, first.queue.ahead, first.price) == (3, pytest.approx(2.0),
                                                           D("59999.9"))
    assert set(eng.resting) == {first.cloid, second.cloid}
    res = eng.on_trade(60000.0, 1.3, -1)  # 1.0 ahead of second, then second
    assert [(f.order.cloid, f.qty) for f in res.fills] == [(second.cloid, D("0.3"))]


def test_an_amend_keeps_the_queue_place_only_when_it_shrinks_the_order_a_crossing_price_takes():
    eng = engine()
    o = order("0.7", "60000.0")
    eng.submit(o)
    res = eng.amend(o.cloid, D("60000.1"), None)  # reaches the ask: takes it as a new order
    assert [(f.price, f.qty, f.is_maker, f.filled) for f in res.fills] == [
        (D("60000.1"), D("0.5"), False, D("0.5"))]
    assert eng.resting[o.cloid] is o and o.remaining == D("0.2")


def test_an_amend_keeps_the_queue_place_only_when_it_shrinks_the_order_refusals():
    eng = engine()
    o, post = order("0.3", "60000.0"), order("-0.3", "60000.2", tif="GTX")
    eng.submit(o)
    eng.submit(post)
    eng.on_trade(59999.0, 0.1, -1)  # 0.1 filled
    refused = [eng.amend(o.cloid, D("60000.05"), None).rejected,  # off the tick grid
               eng.amend(o.cloid, None, D("0.1")).rejected,  # not above the filled 0.1
               eng.amend(o.cloid, D("60000.0"), D("0.3")).rejected,  # nothing changes
               eng.amend(post.cloid, D("60000.0"), None).rejected,  # post-only would cross
               eng.amend("nope", D("1"), None).rejected]
    assert refused == [REJECT_TICK, REJECT_AMEND_QTY, REJECT_AMEND_NOTHING, REJECT_POST_ONLY,
                       REJECT_UNKNOWN_ORDER]
    assert (o.price, o.qty, o.seq, post.price) == (D("60000.0"), D("0.3"), 0, D("60000.2"))
