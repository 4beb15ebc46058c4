"""The replay engine's trusted fast paths give what the validating public paths give."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from makerlab.core.lob import LOB


def _padded(levels: np.ndarray, depth: int) -> np.ndarray:
    out = np.full((depth, 2), np.nan)
    out[: len(levels)] = levels[:depth]
    return out


def _side(rng: np.random.Generator, k: int, top: float, sign: int) -> np.ndarray:
    prices = top + sign * 0.1 * np.cumsum(rng.integers(1, 4, k))
    return np.column_stack((prices, rng.uniform(0.001, 2.0, k)))


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 2**32 - 1), st.integers(1, 8), st.integers(0, 6),
       st.integers(1, 5), st.booleans())
def test_load_snapshot_matches_update(seed, depth, n_updates, buffer, shadow):
    rng = np.random.default_rng(seed)
    slow = LOB(depth=depth, buffer_size=buffer, apply_shadow_depth=shadow, validate=False)
    fast = LOB(depth=depth, buffer_size=buffer, apply_shadow_depth=shadow, validate=False)
    for ts in range(n_updates):
        bids = _side(rng, int(rng.integers(0, 10)), 100.0, -1)
        asks = _side(rng, int(rng.integers(0, 10)), 100.05, 1)
        slow.update(ts, bids, asks, is_snapshot=True, is_sorted=True)
        cap = None if shadow else depth
        b, a = bids[:cap].copy(), asks[:cap].copy()
        b.flags.writeable = a.flags.writeable = False
        bid0 = bids[0, 0] if len(bids) else np.nan
        ask0 = asks[0, 0] if len(asks) else np.nan
        fast._load_snapshot(ts, b, a, _padded(bids, depth), _padded(asks, depth),
                            (float(bid0), float(ask0), (bid0 + ask0) / 2))
    for name in ("get_bids", "get_asks", "get_ts_buffer", "get_mids_buffer",
                 "get_bids_buffer", "get_asks_buffer"):
        np.testing.assert_array_equal(getattr(fast, name)(), getattr(slow, name)())
    assert fast.timestamp == slow.timestamp
    for name in ("get_bid", "get_ask", "get_mid"):  # NaN == NaN here
        np.testing.assert_array_equal(getattr(fast, name)(), getattr(slow, name)())
    assert not fast.get_bids().flags.writeable


def _walk_reference(levels: np.ndarray, notional: float) -> float:
    """walk_notional as first written with numpy (the fast version must match it)."""
    if len(levels) == 0:
        return float("nan")
    if notional <= 0:
        return float(levels[0, 0])
    prices, sizes = levels[:, 0], levels[:, 1]
    cum_notional = np.cumsum(prices * sizes)
    k = int(np.searchsorted(cum_notional, notional, side="left"))
    if k == 0:
        return float(prices[0])
    if k >= len(levels):
        return float(cum_notional[-1] / sizes.sum())
    partial = (notional - cum_notional[k - 1]) / prices[k]
    return float(notional / (sizes[:k].sum() + partial))


@settings(max_examples=200, deadline=None)
@given(st.integers(0, 2**32 - 1), st.integers(0, 25),
       st.one_of(st.floats(0, 5e6), st.integers(0, 5_000_000)))
def test_walk_notional_matches_numpy_reference(seed, k, notional):
    from makerlab.core.lob import walk_notional

    rng = np.random.default_rng(seed)
    levels = _side(rng, k, 61_800.0, -1)
    levels[:, 1] = np.maximum(np.round(levels[:, 1], int(rng.integers(0, 6))), 1e-3)
    got, want = walk_notional(levels, notional), _walk_reference(levels, notional)
    assert got == want or (np.isnan(got) and np.isnan(want))
    assert walk_notional(levels, np.float64(notional)) == got or np.isnan(got)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.floats(-1e6, 1e6, allow_subnormal=False), max_size=200))
def test_numpy_sum_is_numpy_bit_for_bit(values):
    from makerlab.core.lob import numpy_sum

    got, want = numpy_sum(values), np.sum(np.array(values, dtype=float))
    assert got == want and np.signbit(got) == np.signbit(want)


@settings(max_examples=50, deadline=None)
@given(st.integers(0, 2**32 - 1), st.lists(st.floats(0, 2e5), min_size=1, max_size=6))
def test_vamp_asked_again_is_the_vamp_of_the_book_now(seed, notionals):
    rng = np.random.default_rng(seed)
    lob, fresh = LOB(depth=20), LOB(depth=20)
    for ts, notional in enumerate(notionals):
        if rng.random() < 0.5:  # the book changes between some of the questions
            bids, asks = _side(rng, 12, 100.0, -1), _side(rng, 12, 100.05, 1)
            lob.update(ts, bids, asks, is_snapshot=True)
            fresh.update(ts, bids, asks, is_snapshot=True)
        for asked in (notionals[0], notional, notional / 2, notionals[0]):
            want = fresh.get_vamp(asked)
            fresh._vamp_memo = None
            got = lob.get_vamp(asked)
            assert got == want or (np.isnan(got) and np.isnan(want))
