"""The Feed loads live books without checking levels again: the result must be exactly
what LOB.update gives for the same snapshot (state and history buffers), for every LOB
configuration a subscription can have."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

from makerlab.core.events import BookUpdate, levels
from makerlab.core.lob import LOB
from makerlab.trading.feed import Feed
from makerlab.trading.protocols import MarketKind


class Source:
    """A market-data source that only accepts subscriptions."""

    def attach(self, listener) -> None:
        pass

    def check_market(self, kind: MarketKind, exchange: str, symbol: str) -> None:
        pass

    async def subscribe(self, kind: MarketKind, exchange: str, symbol: str, depth: int) -> None:
        pass


def _updates(seed: int, n: int = 200) -> list[BookUpdate]:
    """Random uncrossed books of 0-30 levels a side, best first, as a venue stream
    delivers them (its top levels, read-only); times in ms, sometimes going back."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        mid = 100 + rng.normal()
        nb, na = rng.integers(0, 31, 2)
        bids = mid - 0.01 - np.sort(rng.choice(500, nb, replace=False)) * 0.01
        asks = mid + 0.01 + np.sort(rng.choice(500, na, replace=False)) * 0.01
        ts = (1_000 + i * 10 - 30 * (i % 7 == 3)) * 1_000_000
        out.append(BookUpdate("x", "S", ts, ts, i,
                              levels(np.column_stack([bids, rng.uniform(0.1, 5, nb)])),
                              levels(np.column_stack([asks, rng.uniform(0.1, 5, na)])), None))
    return out


def _state(lob: LOB) -> list:
    return [lob.timestamp, lob._bids.tolist(), lob._asks.tolist(), lob.get_mid(),
            lob.get_bid(), lob.get_ask(),
            lob.timestamps_buffer.view().tolist(), lob.get_bids_buffer(),
            lob.get_asks_buffer(), lob.get_mids_buffer()]


@pytest.mark.parametrize(("depth", "buffer", "shadow"), [
    (20, 100, False), (5, 7, False), (1, 0, False), (40, 3, False), (5, 7, True)])
def test_live_books_load_exactly_as_lob_update_does(depth, buffer, shadow):
    feed, reference, states = Feed(source=Source()), LOB(depth=depth, buffer_size=buffer,
                                                        apply_shadow_depth=shadow,
                                                        validate=False), []

    def compare(lob: LOB) -> None:
        states.append((_state(lob), _state(reference)))

    async def main() -> None:
        await feed.add_l2_book_feed("x", "S", depth=depth, buffer=buffer, handler=compare,
                                    apply_shadow_depth=shadow)
        last = -1
        for update in _updates(depth + buffer):
            last = max(last, update.exchange_ts // 1_000_000)
            reference.update(last, update.bids, update.asks, is_snapshot=True)
            await feed.on_book(update)

    asyncio.run(main())
    assert len(states) == 200
    for got, expected in states:
        for a, b in zip(got, expected, strict=True):
            np.testing.assert_array_equal(a, b)
