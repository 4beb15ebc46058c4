"""One test per rule of makerlab.sim.checks (the Replayer's in-memory input)."""

from __future__ import annotations

import pytest
from replay_scenarios import EXC, TICKER, book, replayer

from makerlab.errors import DataError
from makerlab.sim import Replayer
from makerlab.sim.checks import MAX_GAP_NS
from makerlab.sim.timeline import BookTape, TradeTape

T0 = 1_723_161_600_000  # 2024-08-09 00:00 UTC, ms
DAY_MS = 86_400_000


def books_at(*times) -> list[dict]:
    return [book(t, 60000.0, 60000.1) if isinstance(t, int) else
            {**book(T0, 60000.0, 60000.1), "ts": t} for t in times]


def trades_at(*times) -> list[tuple]:
    return [(t, 60000.1, 0.01, 1) for t in times]


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf"), None, "abc",
                                 T0 + 0.5, 1e300, [T0]], ids=repr)
def test_timestamps_are_whole_epoch_milliseconds(bad):
    with pytest.raises(DataError, match=r"BTCUSDT book data:3: timestamp .* is not"):
        replayer(books_at(T0, T0 + 100, bad, T0 + 200), [])
    with pytest.raises(DataError, match=r"BTCUSDT trade data:2: (timestamp|trade record)"):
        replayer(books_at(T0), [*trades_at(T0), (bad, 60000.1, 0.01, 1), *trades_at(T0)])


@pytest.mark.parametrize("bad", [0, -1, -T0], ids=repr)
def test_timestamps_are_positive(bad):
    with pytest.raises(DataError, match=r"BTCUSDT book data:2: exchange_ts .* not after"):
        replayer(books_at(T0, bad, T0 + 100), [])
    with pytest.raises(DataError, match=r"BTCUSDT trade data:3: exchange_ts .* not after"):
        replayer(books_at(T0), trades_at(T0, T0 + 1, bad))


@pytest.mark.parametrize("bad", [T0 // 1000, T0 * 1000, T0 + 3650 * DAY_MS,
                                 T0 - 8 * DAY_MS], ids=["seconds", "microseconds",
                                                        "ten years later", "8 days early"])
def test_no_record_lies_far_from_the_rest_of_the_data(bad):
    good = [T0 + 100 * i for i in range(5)]
    far = r"exchange_ts .* days away|timestamp .* below"  # µs are beyond any epoch ms
    with pytest.raises(DataError, match=rf"BTCUSDT book data:4: ({far})"):
        replayer(books_at(*good[:3], bad, *good[3:]), trades_at(*good))
    with pytest.raises(DataError, match=rf"BTCUSDT trade data:2: ({far})"):
        replayer(books_at(*good), trades_at(good[0], bad, *good[1:]))


def test_no_record_lies_far_from_the_rest_of_the_data_across_markets():
    """A whole tape at the wrong scale (seconds) is named at its first record."""
    with pytest.raises(DataError, match=r"binance_spot/BTCUSDT book data:1: exchange_ts"):
        Replayer({EXC: {TICKER: books_at(T0, T0 + 100, T0 + 200)},
                  "binance_spot": {TICKER: books_at(T0 // 1000, T0 // 1000 + 1)}}, {})


def test_no_record_lies_far_from_the_rest_of_the_data_allows_holes_up_to_the_limit():
    week = MAX_GAP_NS // 1_000_000
    rep = replayer(books_at(T0, T0 + week, T0 + 2 * week), [])
    assert rep.end_ns - rep.start_ns == 2 * MAX_GAP_NS


def test_timestamps_are_checked_without_validate_data():
    with pytest.raises(DataError, match=r"book data:2: exchange_ts"):
        replayer(books_at(T0, -1), [], validate_data=False)


def test_from_tapes_checks_user_arrays():
    books = BookTape.from_records(EXC, TICKER, books_at(T0, T0 + 100))
    trades = TradeTape.from_rows(EXC, TICKER, trades_at(T0, T0 + 50))
    trades.local_ts = trades.local_ts.copy()
    trades.local_ts[1] = 0
    with pytest.raises(DataError, match=r"BTCUSDT trade data:2: local_ts 0 ms"):
        Replayer.from_tapes([books], [trades])
    trades.local_ts[1] = trades.exchange_ts[1]
    books.exchange_ts = books.exchange_ts.copy()
    books.exchange_ts[1] //= 1000  # µs where ns were meant
    with pytest.raises(DataError, match=r"BTCUSDT book data:2: exchange_ts .* days away"):
        Replayer.from_tapes([books], [trades])


def with_level(side: str, level: int, price: float, size: float) -> dict:
    """A book at ``T0 + 100`` whose ``side`` (``"b"``/``"a"``) lists ``[price, size]`` at
    ``level`` (0 = best)."""
    record = book(T0 + 100, 60000.0, 60000.1)
    record[side][level] = [price, size]
    return record


NAN, INF = float("nan"), float("inf")


@pytest.mark.parametrize(("side", "level", "price", "size", "error"), [
    ("b", 0, NAN, 1.0, "bid level 1 has no price"),
    ("a", 2, NAN, 1.0, "ask level 3 has no price"),
    ("b", 1, INF, 1.0, "bid side has a price that is not finite and positive"),
    ("a", 0, -60000.1, 1.0, "ask side has a price that is not finite and positive"),
    ("b", 0, 60000.0, -1.0, "bid side has a size that is not finite and >= 0"),
    ("a", 1, 60000.2, NAN, "ask side has a size that is not finite and >= 0"),
    ("b", 2, 59999.8, INF, "bid side has a size that is not finite and >= 0"),
], ids=repr)
def test_book_levels_have_finite_positive_prices_and_finite_sizes(side, level, price, size,
                                                                  error):
    with pytest.raises(DataError, match=rf"BTCUSDT book data:2: {error}"):
        replayer([book(T0, 60000.0, 60000.1), with_level(side, level, price, size)], [])


def test_a_zero_size_level_is_an_empty_level_not_an_error():
    rep = replayer([book(T0, 60000.0, 60000.1), with_level("b", 1, 59999.9, 0.0)], [])
    assert len(rep.book_tape(EXC, TICKER)) == 2
