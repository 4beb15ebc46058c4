"""Snapshots against the OMS they read: a quoter replayed on the bundled archive, a
snapshot taken every second of replay time (a clock callback, so the OMS stands still
while it is checked), each compared with the OMS, the Feed's book and the venue's fills."""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from decimal import Decimal
from pathlib import Path

import pytest

from makerlab.core.events import FeedStatus, StatusKind, TradeEvent
from makerlab.errors import OrderRejected
from makerlab.monitor import Monitor
from makerlab.monitor.collect import Collector
from makerlab.monitor.config import PageConfig
from makerlab.monitor.markouts import Markouts
from makerlab.monitor.taps import FeedTap, OrderTap
from makerlab.sim import Replayer
from makerlab.trading.risk import RiskLimits

ARCHIVE = Path(__file__).resolve().parents[2] / "data" / "archive"
HOUR = "2024-08-08:23"
LIMITS = RiskLimits(max_position={"binance/BTCUSDT": Decimal("0.02")},
                    max_notional=Decimal(5000), max_orders_per_s=50)


def replay_with_snapshots() -> tuple[Replayer, list[tuple]]:
    """Quote the best bid and ask each second; after each quote, a snapshot and what the
    OMS and the book hold, read directly."""
    rep = Replayer.from_archive({"binance": ["BTCUSDT"]}, HOUR, HOUR, path=ARCHIVE,
                                latencies={"req_private": 5, "ack_private": 5},
                                risk=LIMITS)
    oms, feed = rep.get_oms(), rep.get_feed()
    monitor = Monitor(oms, feed, interval_s=1.0)
    delivered = Delivered()
    oms.venue.attach(delivered)
    oms.venue.attach(monitor.order_tap)
    engine = rep.venue.engine("binance", "BTCUSDT")
    taken: list[tuple] = []

    async def quote() -> None:
        await oms.cancel_order("binance", "BTCUSDT")
        bid, ask = engine.best(1), engine.best(-1)
        if bid == bid and ask == ask:
            for amount, price in ((Decimal("0.002"), bid), (Decimal("-0.002"), ask)):
                with contextlib.suppress(OrderRejected):  # a limit reached: one side only
                    await oms.limit_order("binance", "BTCUSDT", amount,
                                          Decimal(repr(price)), tif="GTX")

    async def snap() -> None:
        lob = feed.get_feed(book)
        alive = {o.cloid: (o.price, o.remaining * o.side, o.ord_status.value)
                 for o in oms.orders_peek("binance").get_orders() if o.is_alive()}
        position = oms.positions_peek("binance").get_ticker_position("BTCUSDT")
        taken.append((monitor.collector.take(), alive, position, lob.get_mid(),
                      rep.venue.clock.ns, list(delivered.fills)))

    async def go() -> None:
        nonlocal book
        book = await feed.add_l2_book_feed("binance", "BTCUSDT", depth=20)
        await oms.add_clock_callback(quote, interval_ms=1000)
        await oms.add_clock_callback(snap, interval_ms=1000)
        await rep.play(progress=False)
        rep.final_snapshot = monitor.collector.take()  # type: ignore[attr-defined]

    book = ""
    asyncio.run(go())
    return rep, taken


class Delivered:
    """The fills the venue delivered (an order listener beside the OMS)."""

    def __init__(self) -> None:
        self.fills: list = []

    async def on_order_update(self, update) -> None:
        """Not needed."""

    async def on_fill(self, fill) -> None:
        self.fills.append(fill)


@pytest.fixture(scope="module")
def replayed() -> tuple[Replayer, list[tuple]]:
    return replay_with_snapshots()


def test_each_snapshot_shows_the_oms_and_the_book_of_its_time(replayed):
    _, taken = replayed
    assert len(taken) > 100
    with_orders = 0
    for snapshot, alive, position, mid, now, _ in taken:
        [market] = snapshot.markets
        assert (market.exchange, market.ticker) == ("binance", "BTCUSDT")
        assert snapshot.time_ms == now / 1_000_000
        shown = {o.cloid: (Decimal(str(o.price)), Decimal(str(o.amount)), o.status)
                 for o in market.orders}
        assert shown == alive
        with_orders += bool(alive)
        amount = position.amount if position is not None else Decimal(0)
        assert market.position == float(amount)
        if mid == mid:
            assert market.mid == pytest.approx(mid)
            assert market.notional == pytest.approx(float(amount) * mid)
            if amount:
                assert market.unrealized_pnl == pytest.approx(
                    float(amount) * (mid - float(position.entry)))
        assert market.bids and market.bids[0][0] == market.best_bid
        assert all(a[0] > b[0] for a, b in zip(market.bids, market.bids[1:], strict=False))
    assert with_orders > len(taken) // 2


def test_fills_are_the_venues_newest_first_with_markouts_once_due(replayed):
    rep, taken = replayed
    assert len(rep.fills) > 5, "the quoter traded"
    mids = [(now, mid) for _, _, _, mid, now, _ in taken]
    for snapshot, *_, delivered in taken:
        assert [(f.trade_id, f.side, f.price, f.size) for f in snapshot.fills] == [
            (f.trade_id, f.side, float(f.price), float(f.size))
            for f in reversed(delivered[-50:])]
    assert [(f["price"], f["size"]) for f in rep.fills] == [
        (f.price, f.size) for f in taken[-1][-1]], "every fill was delivered"
    last, *_ = taken[-1]
    due = 0
    for fill in last.fills:
        for horizon, value in zip(last.horizons_s, fill.markouts_bps, strict=True):
            at = fill.time_ms * 1e6 + horizon * 1e9
            later = [m for t, m in mids if t >= at]
            if not later:
                assert value is None
                continue
            due += 1
            assert value == pytest.approx(fill.side * (later[0] - fill.price) / fill.price * 1e4)
    assert due > 0


def test_limits_show_their_usage(replayed):
    rep, taken = replayed
    oms = rep.get_oms()
    for snapshot, alive, position, mid, _, _ in taken:
        usage = {(u.name, u.market): u for u in snapshot.risk.limits}
        amount = position.amount if position is not None else Decimal(0)
        bids = sum((a for _, a, _ in alive.values() if a > 0), Decimal(0))
        asks = sum((-a for _, a, _ in alive.values() if a < 0), Decimal(0))
        worst = max(amount + bids, asks - amount, Decimal(0))
        limit = usage[("max_position", "binance/BTCUSDT")]
        assert (limit.used, limit.limit) == (float(worst), 0.02)
        assert limit.usage == pytest.approx(float(worst) / 0.02)
        if mid == mid:
            assert usage[("max_notional", "binance/BTCUSDT")].used == pytest.approx(
                float(worst) * (snapshot.markets[0].mid or 0))
        assert usage[("max_orders_per_s", "binance")].limit == 50
    assert not snapshot.risk.kill_tripped and oms.kill_switch.tripped is False


def test_order_flow_counts_the_venues_answers(replayed):
    rep, taken = replayed
    [flow] = rep.final_snapshot.flow
    journal = Counter(a["event"] for a in rep.actions)
    assert (flow.acks, flow.rejects, flow.cancels) == (
        journal["ack"], journal["reject"], journal["cancelled"])
    assert flow.acks + flow.rejects == journal["submit"]
    assert flow.fills == len(rep.fills)
    assert flow.rejects and flow.last_reject.startswith("-5022")
    assert all(s.flow[0].orders_per_s > 0 for s, *_ in taken[10:])


def test_markouts_wait_until_due_and_give_none_when_the_page_saw_no_mid_then():
    marks = Markouts([1.0], keep=100, slack_ns=500_000_000)
    fill = _fill(side=1, price="100", local_ts=10_000_000_000)
    marks.sample(("x", "Y"), 10_500_000_000, 100.0)
    assert marks.of(fill) == (None,)  # not due
    marks.sample(("x", "Y"), 11_200_000_000, 101.0)
    assert marks.of(fill) == (pytest.approx(100.0),)  # +1 % = 100 bps for a buy
    marks.sample(("x", "Y"), 12_000_000_000, 50.0)
    assert marks.of(fill) == (pytest.approx(100.0),)  # kept once computed
    late = _fill(side=-1, price="100", local_ts=1_000_000_000, trade_id="late")
    assert marks.of(late) == (None,)  # first mid 9.5 s after due: never known


def test_the_feed_tap_counts_messages_gaps_resyncs_and_reconnects():
    async def go() -> FeedTap:
        tap = FeedTap()
        for i in range(3):
            await tap.on_trade(TradeEvent("binance", "BTCUSDT", 1_000 + i, 5_000_000 + i,
                                          1.0, 1.0, 1, str(i)))
        for kind in (StatusKind.CONNECTED, StatusKind.DISCONNECTED, StatusKind.CONNECTED):
            await tap.on_status(FeedStatus("binance", "", kind, 0))
        await tap.on_status(FeedStatus("binance", "BTCUSDT", StatusKind.GAP, 0))
        return tap

    tap = asyncio.run(go())
    oms = _StillOMS()
    feeds = Collector(oms, None, PageConfig(), OrderTap(5), tap)
    [view] = feeds.take().feeds
    assert (view.messages, view.gaps, view.reconnects, view.state) == (3, 1, 1, "gap")
    assert view.latency_ms == pytest.approx((5_000_002 - 1_002) / 1e6)
    assert view.since_last_ms == pytest.approx((oms.venue.clock.now_ns() - 5_000_002) / 1e6)


def _fill(side: int, price: str, local_ts: int, trade_id: str = "t1"):
    from makerlab.core.events import Fill

    return Fill("x", "Y", local_ts, local_ts, None, None, trade_id, side, Decimal(price),
                Decimal(1), Decimal(0), "USDT", True)


class _StillOMS:
    """An OMS with nothing in it (for the feed-health view alone)."""

    def __init__(self) -> None:
        rep = Replayer.from_archive({"binance": ["BTCUSDT"]}, HOUR, HOUR, path=ARCHIVE)
        self._oms = rep.get_oms()
        self.venue = self._oms.venue

    def __getattr__(self, name: str):
        return getattr(self._oms, name)


def test_the_account_wallet_is_the_margin_assets_not_a_sum_of_assets(replayed):
    """A venue listing several assets (Binance lists every one): the page's wallet is the
    margin asset's (the traded market's quote, USDT), never BNB's amount added to it."""
    from makerlab.core.events import BalanceState

    rep, _ = replayed
    oms = rep.get_oms()
    rows = [BalanceState("binance", asset, 0, 0, Decimal(w), Decimal(w), Decimal(w))
            for asset, w in (("BNB", "1.5"), ("USDT", "1000"), ("BTC", "0.25"))]
    held = oms.balances.get("binance")
    try:
        oms.balances["binance"] = rows
        [account] = Monitor(oms, rep.get_feed(), interval_s=1.0).collector.take().accounts
        assert account.wallet == 1000.0
        oms.balances["binance"] = rows[::2]  # no margin asset: no wallet shown
        [account] = Monitor(oms, rep.get_feed(), interval_s=1.0).collector.take().accounts
        assert account.wallet is None and account.equity is None
    finally:
        if held is None:
            oms.balances.pop("binance", None)
        else:
            oms.balances["binance"] = held
