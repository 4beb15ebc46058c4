"""makerlab.sim.follow: the compiled pass over quiet rows against the engine's Python
``on_book``, row by row, for every built-in queue model and one of a user's own."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from decimal import Decimal

import numpy as np
import pytest

from makerlab.core.instruments import get_spec
from makerlab.sim.follow import first_stop, model_code, stop_prices
from makerlab.sim.matching import MatchingEngine, SimOrder
from makerlab.sim.queue import (
    LogProbQueue,
    LogProbQueue2,
    PowerProbQueue,
    PowerProbQueue2,
    PowerProbQueue3,
    RiskAverseQueue,
)
from makerlab.sim.timeline import BOOK_EXCH, TRADE_EXCH, BookTape

SPEC = get_spec("binance", "BTCUSDT")  # tick 0.10, lot 0.001
TICK = 0.1
MODELS = [RiskAverseQueue(), PowerProbQueue(2.0), PowerProbQueue2(3.0), PowerProbQueue3(0.5),
          LogProbQueue(), LogProbQueue2()]


@dataclass(frozen=True, slots=True)
class HalfRiskAverse(RiskAverseQueue):
    """A user's own model: a subclass, so it has no compiled form."""

    def _decrease(self, front: float, back: float, chg: float, new_qty: float) -> float:
        return min(front - chg / 2, max(new_qty, 0.0))


def rough_books(rng: np.random.Generator, n: int) -> list[dict]:
    """Books around 60000 whose levels come and go, some rows out of book order (the
    scan, not the bisection), some thin (levels followed because they are marked, not
    shown), with sizes repeating (a level change of zero)."""
    books = []
    for i in range(n):
        bids = [[round((600000 - k) * TICK, 1), float(rng.choice([0.5, 1.0, rng.uniform(0, 3)]))]
                for k in range(12) if rng.random() < 0.9]
        asks = [[round((600010 + k) * TICK, 1), float(rng.uniform(0.01, 3))]
                for k in range(12) if rng.random() < 0.9]
        if rng.random() < 0.4:
            rng.shuffle(bids)
        if rng.random() < 0.1:  # a thin book: our deeper levels leave its price span
            bids, asks = bids[:2], asks[:2]
        books.append({"ts": i, "b": bids, "a": asks})
    return books


def engine_with_orders(books: list[dict], model, rng: np.random.Generator) -> MatchingEngine:
    tape = BookTape.from_records("binance", "BTCUSDT", books)
    eng = MatchingEngine(SPEC, tape, None, lambda: Decimal(0), model)
    eng.on_book(0)
    for n, ticks in enumerate([0, 0, 3, 7, 11, 30]):
        for side, base in ((1, 600000 - ticks), (-1, 600010 + ticks)):
            eng.submit(SimOrder("binance", "BTCUSDT", f"c{n}{side}", f"{n}{side}", side,
                                Decimal("0.01"), Decimal(base) * Decimal("0.1")))
    for price, taker in ((59999.3, -1), (60001.3, 1), (60000.0, -1)):  # traded, marked
        eng.on_trade(price, float(rng.uniform(0.01, 0.3)), taker)
    return eng


def states(eng: MatchingEngine) -> tuple:
    resting = {c: (o.queue.ahead, o.queue.traded, o.queue.fillable, o.level_qty)
               for c, o in eng.resting.items()}
    return resting, eng.row, {s: sorted(eng._sides[s].marked) for s in (1, -1)}


@pytest.mark.parametrize(("model", "compiled"), [
    *((m, False) for m in [*MODELS, HalfRiskAverse()]), *((m, True) for m in MODELS)],
    ids=lambda p: type(p).__name__ if not isinstance(p, bool) else
    ("compiled" if p else "follow"))
@pytest.mark.parametrize("seed", range(4))
def test_quiet_rows_followed_at_once_as_row_by_row(model, seed, compiled):
    """``follow`` (one row through ``on_book``, more in the compiled pass for a built-in
    model), and the compiled pass alone (built-in models), single rows included, give what
    ``on_book`` row by row gives."""
    code = model_code(model)
    rng = np.random.default_rng(seed)
    books = rough_books(rng, 80)
    by_row = engine_with_orders(books, model, np.random.default_rng(seed))
    at_once = engine_with_orders(books, model, np.random.default_rng(seed))
    before = states(at_once)
    assert before == states(by_row)
    cuts = [1, *sorted(rng.choice(np.arange(2, len(books)), 40, replace=False)), len(books)]
    for lo, hi in itertools.pairwise(cuts):
        for row in range(lo, hi):
            assert not by_row.on_book(row).fills  # quiet: nothing crosses
        if compiled:
            at_once._follow_compiled(np.arange(lo, hi), code)
        else:
            at_once.follow(np.arange(lo, hi))
        assert states(at_once) == states(by_row)
    assert states(at_once)[0] != before[0]  # the rows did move the queues


def test_only_the_built_in_models_are_compiled():
    assert all(model_code(m) is not None for m in MODELS)
    assert model_code(HalfRiskAverse()) is None


def test_the_first_stop_is_the_first_row_that_reaches_our_best_price():
    bid_best, ask_best = np.array([100.0, 100.0, 100.2]), np.array([100.3, 100.1, 100.3])
    price, side = np.array([100.2, 100.1, 99.9]), np.array([1, 1, -1], np.int8)
    kind = np.array([BOOK_EXCH, TRADE_EXCH, BOOK_EXCH, TRADE_EXCH, TRADE_EXCH, BOOK_EXCH])
    row = np.array([0, 0, 1, 1, 2, 2])

    hit_bid, hit_ask = stop_prices(kind, row, BOOK_EXCH, bid_best, ask_best, price, side)

    def stop(our_bid, our_ask, lo=0):
        return first_stop(hit_bid, hit_ask, lo, len(kind), our_bid, our_ask, 0.05)

    assert stop(99.8, 100.4) == len(kind)  # nothing reaches
    assert stop(99.9, 100.4) == 4  # the sell print at 99.9
    assert stop(100.1, np.nan) == 2  # the ask at 100.1 (book row 1)
    assert stop(np.nan, 100.2) == 1  # the buy print at 100.2
    assert stop(np.nan, 100.2, lo=2) == 5  # book row 2's bid at 100.2
