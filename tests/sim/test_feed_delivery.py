"""Feed subscriptions over the replayed market: trusted and checked delivery agree."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest
from replay_scenarios import EXC, TICKER, book, random_market, replayer, zero_latencies

from makerlab.errors import ConfigError, DataError
from makerlab.sim import Replayer, mock_feed
from makerlab.sim.mock_feed import MockFeed
from makerlab.trading.feed import Feed


def _record(books, trades, monkeypatch=None, block=None):
    if monkeypatch is not None:
        monkeypatch.setattr(mock_feed, "BLOCK", block)
    rep = replayer(books, trades)
    feed, seen, tops = rep.get_feed(), [], []

    def on_book(lob):
        seen.append((lob.timestamp, lob.get_bids().tolist(), lob.get_asks().tolist()))
        tops.append((lob.get_bid(), lob.get_ask(), lob.get_mid()))

    async def main():
        lid = await feed.add_l2_book_feed(EXC, TICKER, depth=2, buffer=7, handler=on_book)
        tid = await feed.add_trades_feed(EXC, TICKER, buffer=5, handler=seen.append)
        await rep.play(progress=False)
        lob, tape = feed.get_feed(lid), feed.get_feed(tid)
        return (lob.get_bids_buffer(), lob.get_mids_buffer(), tape.get_buffer(),
                np.array(tops))

    return seen, asyncio.run(main())


def test_trusted_delivery_matches_checked_delivery(monkeypatch):
    books, trades = random_market(5, n=60)
    fast_seen, fast_buffers = _record(books, trades)
    original = mock_feed._BookBlock.__init__

    def every_row_checked(self, *args):
        original(self, *args)
        self.clean = [False] * len(self.clean)

    original_trades = mock_feed._TradeBlock.__init__

    def every_trade_checked(self, *args):
        original_trades(self, *args)
        self.trades = [None] * len(self.trades)

    monkeypatch.setattr(mock_feed._BookBlock, "__init__", every_row_checked)
    monkeypatch.setattr(mock_feed._TradeBlock, "__init__", every_trade_checked)
    slow_seen, slow_buffers = _record(books, trades, monkeypatch, 7)  # small blocks too
    assert fast_seen == slow_seen
    def trade_types(seen):  # trades arrive as (ts, price, size, dir), books as 3-tuples
        return [tuple(map(type, t)) for t in seen if len(t) == 4]

    assert trade_types(fast_seen) == trade_types(slow_seen)
    assert set(trade_types(fast_seen)) == {(int, float, float, int)}
    for fast, slow in zip(fast_buffers, slow_buffers, strict=True):
        np.testing.assert_array_equal(fast, slow)


def test_unclean_rows_take_the_checked_path():
    books = [book(1_000, 60000.0, 60000.1), book(1_100, 60000.0, 60000.1)]
    books[1]["b"][1][1] = 0.0  # a zero-size level is dropped, as LOB.update does
    seen, _ = _record(books, [])
    assert seen[1][1] == [[60000.0, 1.0], [59999.8, 1.0]]
    books[1]["a"] = books[1]["a"][::-1]  # not best first: LOB.update's error
    with pytest.raises(DataError):
        _record(books, [])


def test_feed_ids_and_buffers_are_shared():
    books, trades = random_market(1, n=5)
    rep = replayer(books, trades)
    feed = rep.get_feed()
    assert isinstance(feed, MockFeed) and isinstance(feed, Feed) and feed.source.replayer is rep

    async def main():
        a = await feed.add_l2_book_feed(EXC, TICKER, depth=3)
        b = await feed.add_l2_book_feed(EXC, TICKER, depth=3, handler=print)
        t = await feed.add_trades_feed(EXC, TICKER)
        return a, b, t

    a, b, t = asyncio.run(main())
    assert a == b == f"{EXC}/perp/l2book/{TICKER}_depth3" and t == f"{EXC}/perp/trades/{TICKER}"
    assert feed.get_feed_ids() == [a, t] and feed.subscriptions()[0].handlers == [print]


def test_feed_needs_a_gateway_or_a_source():
    with pytest.raises(ConfigError, match="gateway"):
        Feed(gateway=None)


def test_unknown_feed_arguments_raise():
    rep = replayer(*random_market(1, n=5))
    with pytest.raises(TypeError, match="implied_orderbook"):
        asyncio.run(rep.get_feed().add_l2_book_feed(EXC, TICKER, implied_orderbook=True))
    with pytest.raises(TypeError, match="bogus"):
        asyncio.run(rep.get_feed().add_trades_feed(EXC, TICKER, bogus=1))


def test_spot_feed_class_subscribes_to_the_spot_market_not_the_perpetual():
    rep = replayer(*random_market(1, n=5))
    with pytest.raises(ConfigError, match=f"{EXC}_spot"):
        asyncio.run(rep.get_feed().add_l2_book_feed(EXC, TICKER, feed_cls="spot"))


def _reads_of_quiet_trades(handled: bool, spot_first: bool) -> tuple[list, list]:
    """What handlers of the other markets and a timer read from a perp trades buffer that
    has a handler (``handled``: delivered row by row) or none (written when read)."""
    books, trades = random_market(3, n=80)
    spot_books, spot_trades = random_market(4, n=80)
    data = {EXC: (books, trades), "binance_spot": (spot_books, spot_trades)}
    order = ["binance_spot", EXC] if spot_first else [EXC, "binance_spot"]
    rep = Replayer({e: {TICKER: data[e][0]} for e in order},
                   {e: {TICKER: data[e][1]} for e in order}, latencies=zero_latencies())
    feed, seen = rep.get_feed(), []

    async def main():
        tid = await feed.add_trades_feed(EXC, TICKER, buffer=5,
                                         handler=(lambda _: None) if handled else None)
        tape = feed.get_feed(tid)

        def read(_=None):
            seen.append((rep.time(), tape.get_buffer().tolist()))

        await feed.add_trades_feed(EXC, TICKER, feed_cls="spot", handler=read)
        await feed.add_l2_book_feed(EXC, TICKER, depth=2, handler=read)
        await rep.get_oms().add_clock_callback(read, interval_ms=37)
        await rep.play(progress=False)
        return tape.get_buffer().tolist()

    return seen, asyncio.run(main())


@pytest.mark.parametrize("spot_first", [False, True])
def test_trades_nobody_handles_are_written_when_read(spot_first):
    lazy = _reads_of_quiet_trades(False, spot_first)
    assert lazy == _reads_of_quiet_trades(True, spot_first)
    assert len(lazy[0]) > 100 and lazy[1]



def _tape(exchange_ms: list[int], size: list[float]):
    from makerlab.sim.timeline import TradeTape

    n = len(exchange_ms)
    return TradeTape(EXC, TICKER, np.array(exchange_ms, np.int64) * 10**6,
                     np.arange(1, n + 1, dtype=np.int64) * 10**9, np.linspace(100, 101, n),
                     np.array(size), np.array([1, -1] * (n // 2) + [1] * (n % 2)))


def _lazy_reads(tape, last_ts: int) -> list[list[list[float]]]:
    """The buffer of a trades subscription written when read, read after the local time
    of rows 2, 3, 7 and the last (the tape's local times are 1 s, 2 s, ...)."""
    from makerlab.core.clock import ReplayClock
    from makerlab.core.trades import Trades
    from makerlab.trading.feed import Subscription

    sub = Subscription("t", EXC, TICKER, "trades", Trades(buffer_size=50), last_ts=last_ts)
    cursor = mock_feed.ReplayCursor(ReplayClock())
    mock_feed.LazyTrades(tape, 0, sub, cursor)
    reads = []
    for k in (2, 3, 7, len(tape)):
        cursor.clock.ns = k * 10**9
        reads.append(sub.obj.get_buffer().tolist())
    return reads


def test_trades_written_when_read_keep_times_from_going_back():
    from makerlab.core.trades import Trades

    tape = _tape([3, 9, 7, 12, 10, 10, 15, 2, 20], [1.0] * 9)
    reads = _lazy_reads(tape, last_ts=4)
    delivered, last = Trades(buffer_size=50), 4  # what delivery row by row appends
    for ts, price, qty, side in zip([3, 9, 7, 12, 10, 10, 15, 2, 20], tape.price, tape.size,
                                    tape.side, strict=True):
        last = max(last, ts)
        delivered.append((last, float(price), float(qty), int(side)))
    assert reads[-1] == delivered.get_buffer().tolist()
    assert [len(r) for r in reads] == [2, 3, 7, 9]


def test_a_bad_trade_written_when_read_raises_at_the_read():
    tape = _tape([3, 9, 7, 12, 10, 10, 15, 2, 20], [1.0] * 5 + [0.0] + [1.0] * 3)
    with pytest.raises(DataError):
        _lazy_reads(tape, last_ts=4)


def test_every_subscription_of_a_tape_gets_each_row_in_order():
    """Two book subscriptions (depths 2 and 3) and two handlers on the one trades
    subscription, sync and async: each handler runs once a row, in the order they were
    added, seeing its own buffer at that row (the paths for several subscriptions and
    several handlers, beside the single ones of the tests above)."""
    books, trades = random_market(3, n=40)
    single, _ = _record(books, trades)
    rep = replayer(books, trades)
    feed, seen = rep.get_feed(), []

    async def main():
        def book_view(tag):
            return lambda lob: seen.append((tag, lob.timestamp, lob.get_bids().tolist(),
                                            lob.get_asks().tolist()))

        async def deep(lob):
            book_view("deep")(lob)

        await feed.add_l2_book_feed(EXC, TICKER, depth=2, buffer=7, handler=book_view("top"))
        await feed.add_l2_book_feed(EXC, TICKER, depth=3, buffer=7, handler=deep)

        async def second(trade):
            seen.append(("t2", *trade))

        await feed.add_trades_feed(EXC, TICKER, buffer=5,
                                   handler=lambda t: seen.append(("t1", *t)))
        await feed.add_trades_feed(EXC, TICKER, buffer=5, handler=second)
        await rep.play(progress=False)

    asyncio.run(main())
    tags = [s[0] for s in seen]
    assert [t for t in tags if t in ("top", "deep")] == ["top", "deep"] * (len(books))
    assert [t for t in tags if t in ("t1", "t2")] == ["t1", "t2"] * len(trades)
    top = [s[1:] for s in seen if s[0] in ("top", "t1")]
    assert top == [tuple(s) for s in single]
    deep_rows = [s[1:] for s in seen if s[0] == "deep"]
    assert [(ts, b[:2], a[:2]) for ts, b, a in deep_rows] == [
        s for s in map(tuple, single) if len(s) == 3]


def _with_shared_times(trades: np.ndarray) -> np.ndarray:
    """``trades`` with every third print at its predecessor's time (prints of one instant)."""
    trades = trades.copy()
    trades[1::3, 0] = trades[0:-1:3, 0][:len(trades[1::3])]
    return trades


@pytest.mark.parametrize("reads", [True, False])
def test_handled_trades_buffer_holds_what_delivery_gave(monkeypatch, reads):
    """A handled trades feed's buffer, read by its own handler and by a book handler between
    prints (``reads``), or only at the end after more prints than the pending list keeps,
    holds what checked delivery (every print appended through ``Trades.append`` as it
    arrives) gives."""
    books, trades = random_market(11, n=1500 if not reads else 200, step_ms=20)
    trades = _with_shared_times(trades)
    if not reads:  # the pending list is trimmed at each block's start: trimmed here
        monkeypatch.setattr(mock_feed, "BLOCK", 100)

    def run(checked: bool):
        if checked:
            original = mock_feed._TradeBlock.__init__

            def every_trade_checked(self, *args):
                original(self, *args)
                self.trades = [None] * len(self.trades)

            monkeypatch.setattr(mock_feed._TradeBlock, "__init__", every_trade_checked)
        rep = replayer(books, trades)
        feed, seen, tid = rep.get_feed(), [], []

        def buffer():
            return feed.get_feed(tid[0]).get_buffer().tolist()

        def on_trade(trade):
            seen.append(("t", trade, buffer() if reads else None))

        async def main():
            handler = (lambda lob: seen.append(("b", buffer()))) if reads else None
            await feed.add_l2_book_feed(EXC, TICKER, depth=2, buffer=3, handler=handler)
            tid.append(await feed.add_trades_feed(EXC, TICKER, buffer=4, handler=on_trade))
            await rep.play(progress=False)
            return buffer()

        return seen, asyncio.run(main())

    fast, checked = run(False), run(True)
    assert len(fast[0]) > (1100 if not reads else 100)
    assert fast == checked
    if reads:  # each print is the last row its own handler sees
        assert all(s[2][-1] == [float(v) for v in s[1]] for s in fast[0] if s[0] == "t")


@pytest.mark.parametrize("n", [3, 1031, 1032, 4096, 4097, 5000, 9000])
def test_pending_prints_keep_only_what_the_buffer_can_hold(n):
    """Prints delivered to a handled buffer of 4 that nobody reads are trimmed to the
    newest as they accumulate (the pending list stays under its bound) and written oldest
    first: the buffer then holds the newest four, as four appends in order would leave
    it."""
    from makerlab.core.trades import Trades
    from makerlab.sim.timeline import TradeTape
    from makerlab.trading.feed import Subscription

    k = np.arange(n)
    ts = (1_000 + k) * 1_000_000
    tape = TradeTape(EXC, TICKER, ts, ts, 100.0 + k, np.full(n, 0.5),
                     np.where(k % 2, 1, -1).astype(np.int8))
    trades = Trades(4)
    delivery = mock_feed.TradeDelivery(
        tape, [Subscription("t", EXC, TICKER, "trades", trades, [lambda trade: None])])
    pending = delivery._pending[0]
    assert pending is not None
    for row in range(n):
        assert delivery.deliver(row) is None
        assert len(pending.rows) < pending.bound
    if n > mock_feed.BLOCK:  # trimmed at the last block's start
        assert len(pending.rows) <= 4 + n % mock_feed.BLOCK
    expected = [[1_000 + r, 100.0 + r, 0.5, 1.0 if r % 2 else -1.0]
                for r in range(max(0, n - 4), n)]
    assert trades.get_buffer().tolist() == expected  # the read writes them
    assert pending.rows == []
