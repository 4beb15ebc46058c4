"""Ordering rules of makerlab.sim.timeline (one test per rule), observed in the replay loop
that production runs (engines stepping their exchange-time rows, handlers seeing the
local-time rows, the event queue between them)."""

from __future__ import annotations

import asyncio
from decimal import Decimal as D

import pytest
from replay_scenarios import EXC, TICKER, book, replayer, zero_latencies

from makerlab.sim import Latencies, Replayer
from makerlab.sim import loop as loop_module
from makerlab.sim.loop import ReplayLoop
from makerlab.sim.timeline import BOOK_EXCH, EventQueue

FAR_BID = "59000.0"  # an order resting far from the touch: its engine steps every row


def observed(feed_ms: int = 0, books_subscribed: bool = True, other_book: bool = False,
             row_by_row: bool = False) -> list[tuple[int, str, str]]:
    """What the replay loop does, in order: ``(time ms, what, market)`` of each exchange
    row its engine steps (``book@exch``, ``trade@exch``) and each local row a handler
    sees (``book@local``, ``trade@local``), from 10 ms on (an order rests from 5 ms)."""
    books = [book(5, 60000.0, 60000.1), book(10, 60000.0, 60000.1),
             book(20, 60000.0, 60000.1)]
    trades = [(10, 60000.1, 1.0, 1), (15, 60000.0, 1.0, -1)]
    l2 = {EXC: {TICKER: books}}
    if other_book:
        l2["binance_spot"] = {TICKER: [book(5, 60000.0, 60000.1), book(10, 60000.0, 60000.1)]}
    rep = Replayer(l2, {EXC: {TICKER: trades}}, latencies={
        **zero_latencies(), Latencies.FEED_PUBLIC: feed_ms})
    rep.ROW_BY_ROW = row_by_row
    seen: list[tuple[int, str, str]] = []
    step = ReplayLoop._step

    def recording_step(loop, lane):
        k = lane.stop
        what = "book@exch" if lane.kind[k] == BOOK_EXCH else "trade@exch"
        seen.append((lane.t[k] // 1_000_000, what, lane.engine.spec.exchange))
        step(loop, lane)

    def local(what, exc):
        return lambda _: seen.append((rep.time(), what, exc))

    async def main():
        feed = rep.get_feed()
        await feed.add_trades_feed(EXC, TICKER, handler=local("trade@local", EXC))
        if books_subscribed:
            await feed.add_l2_book_feed(EXC, TICKER, handler=local("book@local", EXC))
        if other_book:
            await feed.add_l2_book_feed(EXC, TICKER, feed_cls="spot",
                                        handler=local("book@local", "binance_spot"))
        await rep.get_oms().limit_order(EXC, TICKER, D("0.01"), D(FAR_BID))
        await rep.play(progress=False)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(ReplayLoop, "_step", recording_step)
        # every row a stop: the rows a lane steps between its compiled follows are
        # interleaved by the same rules (the follows themselves are compared with the
        # reference path in test_resting_index and test_engine_invariants)
        mp.setattr(loop_module, "first_stop", lambda hit_bid, hit_ask, lo, *_: lo)
        asyncio.run(main())
    return [s for s in seen if s[0] >= 10]


@pytest.mark.parametrize("row_by_row", [False, True])
def test_time_first(row_by_row):
    seen = observed(feed_ms=3, row_by_row=row_by_row)
    assert [t for t, _, _ in seen] == sorted(t for t, _, _ in seen)
    assert len(seen) == 8  # two books and two trades, each at both clocks


@pytest.mark.parametrize("row_by_row", [False, True])
def test_trades_before_books_at_equal_time(row_by_row):
    at10 = [what for t, what, _ in observed(row_by_row=row_by_row) if t == 10]
    assert at10 == ["trade@exch", "book@exch", "trade@local", "book@local"]


def test_local_rows_only_for_subscribed_tapes():
    seen = observed(books_subscribed=False)
    assert {what for _, what, _ in seen} == {"book@exch", "trade@exch", "trade@local"}


def test_then_stream_then_row():
    at10 = [(what, exc) for t, what, exc in observed(other_book=True) if t == 10]
    assert at10 == [("trade@exch", EXC), ("book@exch", EXC), ("trade@local", EXC),
                    ("book@local", EXC), ("book@local", "binance_spot")]


def test_scheduled_events_at_equal_time_run_fifo():
    q, out = EventQueue(), []
    for name in "abc":
        q.push(5, out.append, name)
    q.push(1, out.append, "first")
    while len(q):
        _, callback, payload = q.pop()
        callback(payload)
    assert out == ["first", "a", "b", "c"]


def test_market_data_before_scheduled_events_at_equal_time():
    rep = replayer([book(1_000, 60000.0, 60000.1), book(1_000, 60000.1, 60000.2)], [],
                   latencies=zero_latencies())
    seen = []
    rep.add_callback("x", lambda _: seen.append(rep.venue.engine(EXC, TICKER).row))
    rep.add_to_queue("x", 1_000, None)
    asyncio.run(rep.play(progress=False))
    assert seen == [1]  # both books at 1000 ms ran before the custom event at 1000 ms
