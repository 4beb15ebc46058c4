"""One test per rule of makerlab.sim.matching.NoPartialFills (named after it), plus the
lot-grid rounding rule of the module docstring."""

from __future__ import annotations

from decimal import Decimal

from makerlab.core.instruments import get_spec
from makerlab.sim.matching import (
    MatchingEngine,
    NoPartialFills,
    PartialFills,
    SimOrder,
    _floor_lot,
)
from makerlab.sim.timeline import BookTape

D = Decimal
SPEC = get_spec("binance", "BTCUSDT")  # tick 0.10, lot 0.001, min notional 100

BOOKS = [
    {"ts": 0, "b": [[60000.0, 1.0], [59999.9, 2.0]], "a": [[60000.1, 0.5], [60000.2, 1.0]]},
    {"ts": 1, "b": [[59999.8, 1.0]], "a": [[59999.9, 0.3], [60000.0, 1.0]]},
]

_ids = iter(range(10**6))


def engine(fill_model=None) -> MatchingEngine:
    tape = BookTape.from_records("binance", "BTCUSDT", BOOKS)
    eng = MatchingEngine(SPEC, tape, None, lambda: D(0),
                         fill_model=NoPartialFills() if fill_model is None else fill_model)
    eng.on_book(0)
    return eng


def order(amount: str, price: str | None, tif: str = "GTC") -> SimOrder:
    n = next(_ids)
    amt = D(amount)
    return SimOrder("binance", "BTCUSDT", f"c{n}", str(n), 1 if amt > 0 else -1, abs(amt),
                    None if price is None else D(price), tif)


def test_no_partial_trades_through_fill_the_whole_order():
    eng = engine()
    hi, lo = order("0.3", "60000.0"), order("0.3", "59999.9")
    eng.submit(hi)
    eng.submit(lo)
    res = eng.on_trade(59999.8, 0.001, -1)  # one lot prints through both bids
    assert [(f.order.cloid, f.qty, f.price, f.rule) for f in res.fills] == [
        (hi.cloid, D("0.3"), D("60000.0"), "trade_through"),
        (lo.cloid, D("0.3"), D("59999.9"), "trade_through")]
    assert not eng.resting


def test_no_partial_trades_at_the_price_fill_the_whole_order_past_the_queue():
    eng = engine()
    o = order("0.3", "60000.0")
    eng.submit(o)  # 1.0 ahead
    assert not eng.on_trade(60000.0, 0.999, -1).fills  # one lot still ahead
    assert not eng.on_trade(60000.0, 0.001, -1).fills  # queue ahead exactly eaten
    res = eng.on_trade(60000.0, 0.001, -1)  # one lot past our position: all of it fills
    assert [(f.qty, f.rule) for f in res.fills] == [(D("0.3"), "queue")]
    assert o.filled == o.qty and not eng.resting


def test_no_partial_crossing_books_fill_the_whole_order():
    eng = engine()
    o = order("0.5", "59999.9")
    eng.submit(o)
    res = eng.on_book(1)  # best ask 59999.9 (0.3 displayed) reaches our bid
    assert [(f.qty, f.price, f.is_maker, f.rule) for f in res.fills] == [
        (D("0.5"), D("59999.9"), True, "book_cross")]


def test_no_partial_takers_fill_in_full_at_the_best_price():
    eng = engine()
    res = eng.submit(order("2.0", "60000.2"))  # 1.5 displayed up to 60000.2
    assert [(f.qty, f.price, f.is_maker) for f in res.fills] == [
        (D("2.0"), D("60000.1"), False)]
    fok = eng.submit(order("-5.0", None, "FOK"))
    assert [(f.qty, f.price) for f in fok.fills] == [(D("5.0"), D("60000.0"))]


def test_partial_fills_is_the_default_fill_model():
    tape = BookTape.from_records("binance", "BTCUSDT", BOOKS)
    assert MatchingEngine(SPEC, tape, None, lambda: D(0)).fill_model == PartialFills()
    eng = engine(PartialFills())
    res = eng.submit(order("2.0", "60000.2"))
    assert sum(f.qty for f in res.fills) == D("1.5")


def test_sizes_on_the_lot_grid_are_not_lost_to_float_error():
    lot = SPEC.lot_size
    assert _floor_lot(0.003 - 0.002, lot) == D("0.001")
    assert _floor_lot(0.0015, lot) == D("0.001")
    eng = engine(PartialFills())
    o = order("0.01", "60000.0")
    eng.submit(o)  # 1.0 ahead
    eng.on_trade(60000.0, 0.998, -1)
    res = eng.on_trade(60000.0, 0.003, -1)  # 0.002 ahead, 0.003 - 0.002 reaches us
    assert [f.qty for f in res.fills] == [D("0.001")]
