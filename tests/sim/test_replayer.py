"""The Replayer, MockOMS and MockFeed through the tutorial's API, on synthetic markets."""

from __future__ import annotations

import asyncio
from decimal import Decimal

import numpy as np
import pytest
from replay_scenarios import EXC, TICKER, book, flat_market, replayer, zero_latencies

from makerlab.core.lob import LOB
from makerlab.core.orders import OrderStatus
from makerlab.errors import ConfigError, DataError
from makerlab.sim import Latencies, Replayer
from makerlab.sim.queue import PowerProbQueue

D = Decimal


def test_tutorial_shapes_and_feeds():
    books = [book(1_000, 60000.0, 60000.1), book(1_100, 60000.1, 60000.2)]
    trades = [(1_050, 60000.1, 0.01, 1), (1_060, 60000.0, 0.02, -1)]
    rep = replayer(books, np.array(trades))
    feed, seen = rep.get_feed(), []

    async def on_book(lob):
        seen.append(("book", rep.time(), lob.get_mid()))

    async def on_trade(msg):
        seen.append(("trade", *msg))

    async def go():
        bid = await feed.add_l2_book_feed(EXC, TICKER, handler=on_book, depth=20)
        tid = await feed.add_trades_feed(EXC, TICKER, handler=on_trade)
        assert rep.time() == 1_000
        await rep.play(progress=False)
        return feed.get_feed(bid), feed.get_feed(tid)

    lob, tape = asyncio.run(go())
    assert isinstance(lob, LOB) and lob.get_bid() == 60000.1
    assert tape.buffer_len() == 2
    assert seen == [("book", 1_000, pytest.approx(60000.05)),
                    ("trade", 1_050, 60000.1, 0.01, 1), ("trade", 1_060, 60000.0, 0.02, -1),
                    ("book", 1_100, pytest.approx(60000.15))]


def test_feed_is_delivered_after_feed_public_latency():
    books, trades = flat_market(3)
    rep = replayer(books, trades, latencies=zero_latencies(feed_public=7.5))
    times = []

    async def go():
        await rep.get_feed().add_l2_book_feed(EXC, TICKER, handler=lambda lob: times.append(
            (rep.clock.ns, lob.timestamp)))
        await rep.play(progress=False)

    asyncio.run(go())
    assert times == [((ts + 7.5) * 1_000_000, ts) for ts in (1_000, 1_100, 1_200)]


def _one_order_run(latencies, trades, cancel_at_ms=None, price="60000.0", amount="0.01"):
    """Send one buy at the first book; optionally cancel at ``cancel_at_ms``."""
    books, _ = flat_market(30)
    rep = replayer(books, np.array(trades, dtype=float).reshape(-1, 4), latencies=latencies)
    oms, states = rep.get_oms(), []

    async def first_book(lob):
        if not any(a["event"] == "submit" for a in rep.actions):
            cloid = await oms.limit_order(EXC, TICKER, D(amount), D(price))
            states.append(oms.cloid_query(EXC, cloid).ord_status)

    async def go():
        await rep.get_feed().add_l2_book_feed(EXC, TICKER, handler=first_book)
        if cancel_at_ms is not None:
            rep.add_callback("cancel", lambda _: oms.cancel_order(EXC, TICKER))
            rep.add_to_queue("cancel", cancel_at_ms, None)
        await rep.play(progress=False)

    asyncio.run(go())
    return rep, oms, states


def test_order_lifecycle_pending_new_filled_with_latencies():
    lat = zero_latencies(req_private=10, ack_private=20, feed_private=5)
    trades = [(1_500, 59999.0, 1.0, -1)]
    rep, oms, states = _one_order_run(lat, trades)
    assert states == [OrderStatus.PENDING]
    events = {a["event"]: a["ts"] for a in rep.actions}
    assert events["submit"] == 1_000 * 10**6
    assert events["ack"] == 1_010 * 10**6  # REQ_PRIVATE later
    [fill] = rep.fills
    assert fill["ts"] == 1_500 * 10**6 and fill["arrival_ts"] == events["ack"]
    assert fill["price"] == D("60000.0") and fill["is_maker"] and fill["rule"] == "trade_through"
    assert oms.get_position(EXC, TICKER) == D("0.01")
    assert not oms.orders_peek(EXC).get_orders()  # FILLED orders leave the page


def test_a_fill_never_precedes_arrival():
    lat = zero_latencies(req_private=600)
    trades = [(1_300, 59999.0, 1.0, -1), (1_700, 59999.0, 1.0, -1)]
    rep, _, _ = _one_order_run(lat, trades)
    assert [f["ts"] for f in rep.fills] == [1_700 * 10**6]


def test_cancel_race_is_settled_at_exchange_time():
    lat = zero_latencies(req_private=100)
    # the cancel leaves at 1500 and arrives at 1600: the 1550 print still fills
    trades = [(1_550, 59999.0, 0.004, -1), (1_650, 59999.0, 1.0, -1)]
    rep, oms, _ = _one_order_run(lat, trades, cancel_at_ms=1_500)
    assert [(f["ts"], f["size"]) for f in rep.fills] == [(1_550 * 10**6, D("0.004"))]
    assert [a["event"] for a in rep.actions] == ["submit", "ack", "cancel", "cancelled"]
    assert not oms.orders_peek(EXC).get_orders()


def test_rejections_reach_the_oms():
    rep, oms, _ = _one_order_run(zero_latencies(ack_private=3), [], price="60000.05")
    [reject] = [a for a in rep.actions if a["event"] == "reject"]
    assert reject["reason"].startswith("-4014")
    assert not oms.orders_peek(EXC).get_orders()


def test_round_to_specs_and_contract_rules():
    books, trades = flat_market(2)
    oms = replayer(books, trades).get_oms()
    assert oms.rounded_price(EXC, TICKER, 60000.04999) == D("60000.0")
    for price in (60000.05, 60000.15, 59999.94999, 0.05, 123.45):  # numpy's float64 as text
        rounded = oms.rounded_price(EXC, TICKER, np.float64(price))
        assert str(rounded) == str(oms.rounded_price(EXC, TICKER, str(np.float64(price))))
    assert oms.rounded_lots(EXC, TICKER, 0.0039) == D("0.003")
    assert oms.min_notional(EXC, TICKER) == D("100")
    assert oms.contract_specs(EXC, TICKER)["price_precision"] == 1
    balance = asyncio.run(oms.get_balance(EXC))
    assert balance["equity_total"] == 10_000
    with pytest.raises(ConfigError):
        oms.rounded_price(EXC, "NOPE", 1.0)


def test_market_order_walks_the_book():
    books, trades = flat_market(5)
    rep = replayer(books, trades, taker_fees=0.001)
    oms = rep.get_oms()

    async def go():
        rep.add_callback("go", lambda _: oms.market_order(EXC, TICKER, -1.5))
        rep.add_to_queue("go", 1_050, None)
        await rep.play(progress=False)

    asyncio.run(go())
    assert [(f["price"], f["size"], f["is_maker"]) for f in rep.fills] == [
        (D("60000.0"), D("1.000"), False), (D("59999.9"), D("0.500"), False)]
    assert rep.fills[0]["fee"] == D("60.000000")
    assert oms.get_position(EXC, TICKER) == D("-1.5")


def test_clock_callbacks_and_declarations():
    books, trades = flat_market(20)  # 1000 .. 2900 ms
    rep = replayer(books, trades)
    ticks = []

    async def on_clock():
        ticks.append(rep.time())
        rep.declare("mid", rep.get_mid(EXC, TICKER), exc=EXC, ticker=TICKER)

    async def go():
        await rep.get_oms().add_clock_callback(on_clock, interval_ms=500)
        await rep.play(progress=False)

    asyncio.run(go())
    assert ticks == [1_500, 2_000, 2_500]
    assert rep.declarations[0] == {"ts": 1_500, "key": "mid", "value": 60000.05, "exc": EXC,
                                   "ticker": TICKER, "group": None}


def test_custom_events_run_in_time_order_with_latency():
    books, trades = flat_market(10)
    rep = replayer(books, trades, latencies=zero_latencies(feed_public=50))
    got = []
    rep.add_callback("alt", lambda msg: got.append((rep.time(), msg)))
    rep.add_events("alt", [1_300, 1_100], ["b", "a"], exc=EXC, latency=Latencies.FEED_PUBLIC)
    asyncio.run(rep.play(progress=False))
    assert got == [(1_150, "a"), (1_350, "b")]


def test_stamps_and_statistics():
    rep, _, _ = _one_order_run(zero_latencies(), [(1_500, 59999.0, 1.0, -1)])
    stamps = [s for s in rep.stamps if s[1] == EXC]  # data runs 1000 .. 3900 ms
    assert [s[0] for s in stamps] == [1_000 * 10**6, 2_000 * 10**6, 3_000 * 10**6]
    assert stamps[0][2] == 10_000 and stamps[1][4] == pytest.approx(0.01 * 60000.05)
    stats = rep.statistics()
    assert stats[EXC]["#trades"] == 1
    assert stats[EXC]["volume"] == D("600.000")
    assert stats[EXC]["terminal"] == pytest.approx(10_000 + 0.01 * 0.05 - 0.06)
    assert stats[EXC]["pnl"] == pytest.approx(stats[EXC]["terminal"] - 10_000)


def test_unsorted_input_is_sorted_with_a_warning():
    books = [book(1_100, 60000.0, 60000.1), book(1_000, 60000.1, 60000.2)]
    with pytest.warns(UserWarning, match="not in time order"):
        rep = replayer(books, [])
    assert rep.books[0].exchange_ts.tolist() == [1_000 * 10**6, 1_100 * 10**6]


def test_subscribing_after_play_fails():
    books, trades = flat_market(2)
    rep = replayer(books, trades)
    asyncio.run(rep.play(progress=False))
    with pytest.raises(ConfigError, match="before"):
        asyncio.run(rep.get_feed().add_trades_feed(EXC, TICKER))


def test_sampling_bars_feed():
    from makerlab.core.bars import TickBars

    trades = [(1_000 + 10 * i, 60000.0 + i % 3, 0.01, 1) for i in range(9)]
    rep = replayer([book(1_000, 60000.0, 60000.1)], trades)
    bars = []

    async def go():
        fid = await rep.get_feed().add_sampling_bars_feed(EXC, TICKER, handler=bars.append,
                                                          bar_cls=TickBars, n_ticks=3)
        await rep.play(progress=False)
        return fid

    assert asyncio.run(go()) == f"{EXC}/perp/TickBars/{TICKER}"
    assert len(bars) == 3 and bars[0][6] == 3  # n_ticks column


@pytest.mark.parametrize("books, trades, error", [
    ([book(1_000, 60000.0, 60000.1), book(1_100, 60000.2, 60000.1)], [],
     r"BTCUSDT book data:2: crossed book"),
    ([book(1_000, 60000.0, 60000.1)], [(1_050, float("nan"), 1.0, 1)],
     r"BTCUSDT trade data:1: non-finite price"),
    ([book(1_000, 60000.0, 60000.1)], [(1_050, 60000.1, -1.0, 1)],
     r"BTCUSDT trade data:1: trade with price 60000.1 and size -1.0"),
])
def test_bad_input_records_are_rejected_naming_market_and_record(books, trades, error):
    with pytest.raises(DataError, match=error):
        replayer(books, trades)


@pytest.mark.parametrize("bids", [[[60000.0, 1.0], [60000.05, 1.0]],
                                  [[60000.0, 1.0], [60000.0, 2.0]]],  # one price twice
                         ids=["ascending", "repeated"])
def test_levels_out_of_book_order_are_rejected(bids):
    bad = {"ts": 1_000, "b": np.array(bids), "a": np.array([[60000.1, 1.0]])}
    with pytest.raises(DataError, match=r"book data:1: bid levels out of book order"):
        Replayer({EXC: {TICKER: [bad]}}, {}, latencies=zero_latencies())


@pytest.mark.parametrize("bad", [float("nan"), "abc", None, 1_000.5], ids=repr)
def test_custom_event_timestamps_are_whole_milliseconds(bad):
    books, trades = flat_market(3)
    rep = replayer(books, trades)
    with pytest.raises(ConfigError, match=r"add_to_queue\('x'\): timestamp .* not a whole"):
        rep.add_to_queue("x", bad, None)


def test_custom_events_cannot_be_scheduled_in_the_past():
    books, trades = flat_market(10)
    rep, got = replayer(books, trades), []

    def at_1500(_):
        rep.add_to_queue("now", rep.time(), "now")  # the current ms: runs now
        with pytest.raises(ConfigError, match="before the replay time 1500 ms"):
            rep.add_to_queue("late", 1_499, None)

    rep.add_callback("at_1500", at_1500)
    rep.add_callback("now", lambda msg: got.append((rep.time(), msg)))
    rep.add_to_queue("at_1500", 1_500, None)
    asyncio.run(rep.play(progress=False))
    assert got == [(1_500, "now")]


@pytest.mark.parametrize("models", [{"queue_model": "risk averse"},
                                    {"fill_model": "NoPartialFills"},
                                    {"fill_model": PowerProbQueue(2.0)}], ids=repr)
def test_engine_models_are_checked_at_construction(models):
    books, trades = flat_market(3)
    with pytest.raises(ConfigError, match=f"{next(iter(models))}="):
        replayer(books, trades, **models)
