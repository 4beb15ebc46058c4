"""Property tests: the LOB against a deliberately naive dict-based reference book."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from makerlab.core.lob import LOB
from makerlab.errors import CrossedBook

TICK = 0.5
SIZES = st.one_of(st.just(0.0), st.floats(0.01, 100.0, allow_nan=False))
# Bids live on ticks 1..20 and asks on ticks 21..40, so these books can never cross.
BID_LEVELS = st.lists(st.tuples(st.integers(1, 20), SIZES), max_size=8)
ASK_LEVELS = st.lists(st.tuples(st.integers(21, 40), SIZES), max_size=8)
DELTAS = st.lists(st.tuples(BID_LEVELS, ASK_LEVELS), max_size=30)
PROPERTY_SETTINGS = settings(max_examples=200, deadline=None)


class ReferenceBook:
    """Price -> size dicts; a delta row sets a size, size 0 deletes."""

    def __init__(self):
        self.bids, self.asks = {}, {}

    def apply(self, bids, asks):
        for side, rows in ((self.bids, bids), (self.asks, asks)):
            for tick, size in rows:
                side[tick * TICK] = size
                if size == 0:
                    del side[tick * TICK]

    def top(self, depth):
        bids = sorted(self.bids.items(), reverse=True)[:depth]
        asks = sorted(self.asks.items())[:depth]
        return np.array(bids).reshape(-1, 2), np.array(asks).reshape(-1, 2)


def as_rows(levels):
    return [[tick * TICK, size] for tick, size in levels]


def run_deltas(lob, deltas):
    reference = ReferenceBook()
    for ts, (bids, asks) in enumerate(deltas, start=1):
        lob.update(ts, as_rows(bids), as_rows(asks), is_snapshot=False)
        reference.apply(bids, asks)
    return reference


def assert_book_invariants(lob):
    bids, asks = lob.get_bids(), lob.get_asks()
    assert np.all(np.diff(bids[:, 0]) < 0)
    assert np.all(np.diff(asks[:, 0]) > 0)
    assert np.all(bids[:, 1] > 0) and np.all(asks[:, 1] > 0)
    assert len(bids) <= lob.depth and len(asks) <= lob.depth


@PROPERTY_SETTINGS
@given(deltas=DELTAS, depth=st.integers(1, 6))
def test_shadow_book_equals_reference_top_levels(deltas, depth):
    lob = LOB(depth=depth, apply_shadow_depth=True)
    reference = run_deltas(lob, deltas)
    assert_book_invariants(lob)
    ref_bids, ref_asks = reference.top(depth)
    np.testing.assert_array_equal(lob.get_bids(), ref_bids)
    np.testing.assert_array_equal(lob.get_asks(), ref_asks)


@PROPERTY_SETTINGS
@given(deltas=DELTAS, depth=st.integers(1, 6))
def test_deltas_equal_the_reference_snapshot(deltas, depth):
    lob = LOB(depth=depth, apply_shadow_depth=True)
    reference = run_deltas(lob, deltas)
    snapshot = LOB(depth=depth)
    ref_bids, ref_asks = reference.top(len(reference.bids) + len(reference.asks))
    snapshot.update(1, ref_bids, ref_asks, is_snapshot=True)
    np.testing.assert_array_equal(lob.get_bids(), snapshot.get_bids())
    np.testing.assert_array_equal(lob.get_asks(), snapshot.get_asks())


@PROPERTY_SETTINGS
@given(deltas=DELTAS, depth=st.integers(1, 6))
def test_truncated_book_shows_only_true_levels(deltas, depth):
    """Without shadow depth the book may miss deep levels but never shows a wrong one."""
    lob = LOB(depth=depth)
    reference = run_deltas(lob, deltas)
    assert_book_invariants(lob)
    for levels, truth in ((lob.get_bids(), reference.bids), (lob.get_asks(), reference.asks)):
        for price, size in levels:
            assert truth[price] == size


# Overlapping grids: these deltas can cross the book.
CROSSING = st.lists(
    st.tuples(st.lists(st.tuples(st.integers(1, 12), SIZES), max_size=4),
              st.lists(st.tuples(st.integers(8, 20), SIZES), max_size=4)),
    max_size=30,
)


@PROPERTY_SETTINGS
@given(deltas=CROSSING)
def test_crossing_deltas_are_rejected_atomically(deltas):
    lob, reference = LOB(depth=5, apply_shadow_depth=True), ReferenceBook()
    for ts, (bids, asks) in enumerate(deltas, start=1):
        trial = ReferenceBook()
        trial.bids, trial.asks = dict(reference.bids), dict(reference.asks)
        trial.apply(bids, asks)
        crossed = trial.bids and trial.asks and max(trial.bids) >= min(trial.asks)
        if crossed:
            with pytest.raises(CrossedBook):
                lob.update(ts, as_rows(bids), as_rows(asks), is_snapshot=False)
        else:
            lob.update(ts, as_rows(bids), as_rows(asks), is_snapshot=False)
            reference = trial
        ref_bids, ref_asks = reference.top(5)
        np.testing.assert_array_equal(lob.get_bids(), ref_bids)
        np.testing.assert_array_equal(lob.get_asks(), ref_asks)


NON_EMPTY_BIDS = st.lists(st.tuples(st.integers(1, 20), st.floats(0.01, 100.0)), min_size=1,
                          max_size=8, unique_by=lambda level: level[0])
NON_EMPTY_ASKS = st.lists(st.tuples(st.integers(21, 40), st.floats(0.01, 100.0)), min_size=1,
                          max_size=8, unique_by=lambda level: level[0])
NOTIONALS = st.floats(0.0, 1e5, allow_nan=False)


@PROPERTY_SETTINGS
@given(bids=NON_EMPTY_BIDS, asks=NON_EMPTY_ASKS, notional=NOTIONALS, more=NOTIONALS)
def test_vamp_is_the_mean_of_side_vwaps_bracketing_the_touch(bids, asks, notional, more):
    """Each side's VWAP is at or beyond its touch and moves away from it as notional grows.

    (VAMP itself can leave [best bid, best ask] on a lopsided book; see test_lob.py.)
    """
    lob = LOB(1, as_rows(bids), as_rows(asks))
    bid_vwap, ask_vwap = lob.get_impact_price(-1, notional), lob.get_impact_price(1, notional)
    tolerance = 1e-9 * lob.get_ask()
    assert lob.get_bids()[-1, 0] - tolerance <= bid_vwap <= lob.get_bid() + tolerance
    assert lob.get_ask() - tolerance <= ask_vwap <= lob.get_asks()[-1, 0] + tolerance
    assert lob.get_vamp(notional) == pytest.approx((bid_vwap + ask_vwap) / 2)
    assert lob.get_impact_price(-1, notional + more) <= bid_vwap + tolerance
    assert lob.get_impact_price(1, notional + more) >= ask_vwap - tolerance


@PROPERTY_SETTINGS
@given(bids=NON_EMPTY_BIDS, asks=NON_EMPTY_ASKS, fraction=st.floats(0.0, 1.0))
def test_vamp_within_touch_notional_is_the_mid(bids, asks, fraction):
    lob = LOB(1, as_rows(bids), as_rows(asks))
    touch = min(lob.get_bid() * lob.get_bid_sz(), lob.get_ask() * lob.get_ask_sz())
    assert lob.get_vamp(fraction * touch) == pytest.approx(lob.get_mid())
    assert lob.get_bid() < lob.get_vamp(fraction * touch) < lob.get_ask()
