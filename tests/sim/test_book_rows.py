"""makerlab.sim.book_rows: the compiled per-row facts against their numpy definitions."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from makerlab.sim.book_rows import book_rows

VALUES = st.sampled_from([np.nan, 0.0, -1.0, np.inf, 1.0, 2.0, 3.0, 3.0, 4.0, 5.0])


def reference(prices: np.ndarray, sizes: np.ndarray, sign: int) -> dict[str, np.ndarray]:
    """The module docstring's definitions, in numpy."""
    present = ~np.isnan(prices)
    padded = (present[:, 1:] <= present[:, :-1]).all(axis=1)
    with np.errstate(invalid="ignore"):
        step = sign * (prices[:, :-1] - prices[:, 1:])
    mono = np.where(present[:, 1:], step >= 0, True).all(axis=1)
    strict = np.where(present[:, 1:], step > 0, True).all(axis=1)
    good = np.where(present, (prices > 0) & (prices < np.inf) & (sizes > 0)
                    & (sizes < np.inf), True).all(axis=1)
    return {"count": present.sum(axis=1),
            "low": np.fmin.reduce(prices, axis=1, initial=np.nan),
            "high": np.fmax.reduce(prices, axis=1, initial=np.nan),
            "ordered": padded & mono, "clean": padded & strict & good}


@settings(max_examples=200, deadline=None)
@given(arrays(np.float64, st.tuples(st.integers(1, 6), st.integers(1, 5)), elements=VALUES),
       arrays(np.float64, st.tuples(st.integers(1, 6), st.integers(1, 5)), elements=VALUES),
       st.randoms())
def test_facts_follow_their_definitions(prices, sizes, rnd):
    sizes = np.resize(sizes, prices.shape)
    if rnd.random() < 0.5:  # mostly well-formed rows too: sorted, padded at the end
        prices = np.sort(prices, axis=1)
    rows = book_rows(prices, sizes, prices[:, ::-1].copy(), sizes)
    for side, (p, s, sign) in ((rows.bids, (prices, sizes, 1)),
                               (rows.asks, (prices[:, ::-1].copy(), sizes, -1))):
        want = reference(p, s, sign)
        for name, values in want.items():
            np.testing.assert_array_equal(getattr(side, name), values, err_msg=name)
