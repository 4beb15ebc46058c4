"""Ordering rules of makerlab.sim.timeline (one test per rule)."""

from __future__ import annotations

import asyncio

import numpy as np
from replay_scenarios import EXC, TICKER, book, replayer, zero_latencies

from makerlab.sim.timeline import (
    BOOK_EXCH,
    BOOK_LOCAL,
    TRADE_EXCH,
    TRADE_LOCAL,
    BookTape,
    EventQueue,
    TradeTape,
    merge_market,
)


def tapes(feed_ms: int = 0) -> tuple[BookTape, TradeTape]:
    books = BookTape.from_records(EXC, TICKER, [book(10, 1.0, 1.1), book(20, 1.0, 1.1)])
    trades = TradeTape.from_rows(EXC, TICKER, [(10, 1.1, 1.0, 1), (15, 1.0, 1.0, -1)])
    for tape in (books, trades):
        tape.local_ts = tape.exchange_ts + feed_ms * 1_000_000
    return books, trades


def test_time_first():
    books, trades = tapes(feed_ms=3)
    tl = merge_market([books], [trades], {0}, {0})
    assert np.all(np.diff(tl.t) >= 0) and len(tl) == 8


def test_trades_before_books_at_equal_time():
    books, trades = tapes()
    tl = merge_market([books], [trades], {0}, {0})
    at10 = tl.kind[tl.t == 10_000_000].tolist()
    assert at10 == [TRADE_EXCH, BOOK_EXCH, TRADE_LOCAL, BOOK_LOCAL]


def test_local_rows_only_for_subscribed_tapes():
    books, trades = tapes()
    tl = merge_market([books], [trades], set(), {0})
    assert set(tl.kind.tolist()) == {TRADE_EXCH, BOOK_EXCH, TRADE_LOCAL}


def test_then_stream_then_row():
    books, _ = tapes()
    other = BookTape.from_records("binance_spot", TICKER, [book(10, 1.0, 1.1)])
    tl = merge_market([books, other], [], set(), set())
    assert list(zip(tl.stream.tolist(), tl.row.tolist(), strict=True)) == [(0, 0), (1, 0),
                                                                           (0, 1)]


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
