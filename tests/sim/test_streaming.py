"""A streamed archive replay is the replay of the range loaded whole (sim/streaming.py).

The strategy is the tutorial's market maker (examples/market_maker.py's quoting logic:
VAMP of the reference book, trade-sample notional, inventory skew), quoting Binance USD-M
BTCUSDT on the bundled archive's two hours (2024-08-08 23:00 and 2024-08-09 00:00), with
every kind of delivery on: a book feed with a handler, a quiet reference book, a
reference trade buffer filled when read, a trade feed with a handler, clock callbacks
and declarations. Each test compares everything the run leaves behind: fills, actions,
equity stamps, declarations, the order of the strategy's callbacks, the run record's
tables and config. Shorter segments (``Replayer.STREAM_SEGMENT_NS``) put a window
boundary every few seconds, with orders resting and rows received late across each.
"""

from __future__ import annotations

import asyncio
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from makerlab.errors import ConfigError
from makerlab.sim import Replayer, journal
from makerlab.units import NS_PER_S

REPO = Path(__file__).resolve().parents[2]
ARCHIVE = REPO / "data" / "archive"
START, END = "2024-08-08:23", "2024-08-09:00"
BOUNDARY_NS = 1723161600 * NS_PER_S  # 2024-08-09 00:00 UTC
MARKETS = {"binance": ["BTCUSDT", "ETHUSDT"], "binance_spot": ["BTCUSDT", "ETHUSDT"]}

pytestmark = pytest.mark.skipif(
    not (ARCHIVE / "kind=book_snapshot").is_dir(), reason="bundled archive data/archive absent")


async def _market_maker(rep: Replayer, log: list[tuple[Any, ...]], spread_bps: float = 1.0,
                        skew_bps: float = 4.0, order_value: float = 200.0) -> None:
    """The tutorial's quoter (examples/market_maker.py), logging every callback."""
    oms, feed = rep.get_oms(), rep.get_feed()
    exc, ticker = "binance", "BTCUSDT"
    orders, positions = oms.orders_peek(exc=exc), oms.positions_peek(exc=exc)
    ref_trades = feed.get_feed(await feed.add_trades_feed("binance_spot", "BTCUSDT",
                                                          buffer=500))
    ref_lob = feed.get_feed(await feed.add_l2_book_feed("binance_spot", "BTCUSDT", depth=20,
                                                        buffer=100))

    eth: list[Any] = []  # its Trades, read once a second (prints pending in between)

    async def on_eth(msg: Any) -> None:
        log.append(("eth", rep.time(), *msg))

    eth.append(feed.get_feed(await feed.add_trades_feed("binance", "ETHUSDT", buffer=50,
                                                        handler=on_eth)))

    async def on_book(lob: Any) -> None:
        q = float(positions.get_ticker_amount(ticker=ticker)) * lob.get_mid() / order_value
        tds = ref_trades.get_sample(n=15)
        notional = 20000 if len(tds) == 0 else float(np.sum(tds[:, 1] * tds[:, 2]))
        vamp = ref_lob.get_vamp(notional)
        log.append(("book", rep.time(), lob.get_mid(), len(tds), vamp, q))
        if np.isnan(vamp):
            return
        bid = min(vamp - (spread_bps + np.tanh(q) * skew_bps) * 1e-4 * vamp,
                  lob.get_bids()[1, 0])
        ask = max(vamp + (spread_bps + np.tanh(-q) * skew_bps) * 1e-4 * vamp,
                  lob.get_asks()[1, 0])
        await _requote(oms, orders, exc, ticker, lob.get_mid(), order_value, {1: bid, -1: ask})

    async def every_second() -> None:
        rep.declare("mid", rep.get_mid(exc, ticker), exc, ticker)
        log.append(("clock", rep.time(), rep.get_mid("binance", "ETHUSDT"),
                    eth[0].get_buffer()[-3:].tolist()))

    def probe(_: Any) -> None:  # the engines' books at whole seconds: window boundaries
        log.append(("probe", rep.time(), *(rep.get_mid(e, t) for e, ts in MARKETS.items()
                                            for t in ts)))

    seconds = list(range(BOUNDARY_NS // 1_000_000 - 346_000, BOUNDARY_NS // 1_000_000 + 2_000,
                         1000))
    rep.add_callback("probe", probe)
    rep.add_events("probe", seconds, [None] * len(seconds))
    await feed.add_l2_book_feed(exc, ticker, depth=20, buffer=100, handler=on_book)
    await oms.add_clock_callback(every_second, interval_ms=1000)


async def _requote(oms: Any, orders: Any, exc: str, ticker: str, mid: float, value: float,
                   prices: dict[int, float]) -> None:
    """The tutorial's order management: quote where missing, cancel what moved."""
    quotes = {side: Decimal(str(oms.rounded_price(exc=exc, ticker=ticker, price=px)))
              for side, px in prices.items()}
    for side, mine in ((1, orders.get_bid_orders(ticker=ticker)),
                       (-1, orders.get_ask_orders(ticker=ticker))):
        if not any(o.price == quotes[side] for o in mine):
            await oms.limit_order(exc=exc, ticker=ticker, price=quotes[side],
                                  amount=side * value / mid, round_to_specs=True)
        for o in mine:
            if o.price != quotes[side]:
                await oms.cancel_order(exc=o.exc, ticker=o.ticker, cloid=o.cloid)


def run(stream: bool | None, segment_ns: int | None = None, row_by_row: bool = False,
        monkeypatch: pytest.MonkeyPatch | None = None, **options: Any
        ) -> tuple[Replayer, list[tuple[Any, ...]]]:
    if segment_ns is not None:
        assert monkeypatch is not None
        monkeypatch.setattr(Replayer, "STREAM_SEGMENT_NS", segment_ns)
    if row_by_row:
        assert monkeypatch is not None
        monkeypatch.setattr(Replayer, "ROW_BY_ROW", True)
    rep = Replayer.from_archive(MARKETS, START, END, path=ARCHIVE, stream=stream,
                                maker_fees=-0.00005, taker_fees=0.0003,
                                latencies={"req_private": 5, "ack_private": 5,
                                           "feed_private": 2}, **options)
    log: list[tuple[Any, ...]] = []

    async def go() -> None:
        await _market_maker(rep, log)
        await rep.play(progress=False)

    asyncio.run(go())
    return rep, log


@pytest.fixture(scope="module")
def whole(tmp_path_factory) -> tuple[Replayer, list[tuple[Any, ...]]]:
    with pytest.MonkeyPatch.context() as mp:  # an empty spec cache, as every test's
        mp.setenv("MAKERLAB_SPEC_CACHE", str(tmp_path_factory.mktemp("spec_cache")))
        rep, log = run(stream=False)
        assert rep._stream is None
        return rep, log


def assert_same_run(a: tuple[Replayer, list], b: tuple[Replayer, list]) -> None:
    (ra, log_a), (rb, log_b) = a, b
    assert rb.fills == ra.fills
    assert rb.actions == ra.actions
    assert rb.stamps == ra.stamps
    # repr: exact for floats, and NaN (an empty book's mid) equals NaN
    assert repr(rb.declarations) == repr(ra.declarations)
    assert repr(log_b) == repr(log_a)  # the strategy's callbacks, in order, what they saw
    assert (rb.start_ns, rb.end_ns, rb.clock.ns, rb.n_events) == (
        ra.start_ns, ra.end_ns, ra.clock.ns, ra.n_events)
    rec_a, rec_b = ra.record(), rb.record()
    for name in ("fills", "actions", "stamps", "declarations"):
        pd.testing.assert_frame_equal(getattr(rec_b, name), getattr(rec_a, name))
    assert rec_b.mids.keys() == rec_a.mids.keys() and rec_b.trades.keys() == rec_a.trades.keys()
    for key in rec_a.mids:
        pd.testing.assert_frame_equal(rec_b.mids[key], rec_a.mids[key])
        pd.testing.assert_frame_equal(rec_b.trades[key], rec_a.trades[key])
    assert rec_b.config == rec_a.config
    assert repr(rb.statistics()) == repr(ra.statistics())


def test_the_strategy_trades_on_both_sides_of_the_hour_boundary(whole):
    rep, log = whole
    assert len(rep.fills) > 20
    last_action = max(a["ts"] for a in rep.actions)
    assert last_action < BOUNDARY_NS and rep.venue.engine("binance", "BTCUSDT").resting
    # quotes rest across the boundary while the handlers keep running after it
    assert any(kind == "book" and ts * 1_000_000 >= BOUNDARY_NS for kind, ts, *_ in log)
    assert {kind for kind, *_ in log} == {"book", "eth", "clock", "probe"}


def test_streaming_is_the_default_and_equals_the_range_loaded_whole(whole):
    streamed = run(stream=None)
    assert streamed[0]._stream is not None
    assert_same_run(whole, streamed)


@pytest.mark.parametrize("segment_s", [10, 1])
def test_short_segments_cross_many_boundaries_with_the_same_results(whole, monkeypatch,
                                                                      segment_s):
    monkeypatch.setattr(journal, "CHUNK_ROWS", 97)  # the order journal spills many chunks
    rep, log = run(stream=True, segment_ns=segment_s * NS_PER_S, monkeypatch=monkeypatch)
    spilled = Path(repr(rep.actions).split("spilled to ")[1].rstrip(")"))
    assert len(list(spilled.glob("*.arrow"))) == len(rep.actions) // 97 > 10
    bounds = rep._stream.source.bounds  # type: ignore[union-attr]
    assert len(bounds) > 300 // segment_s
    fills = {f["ts"] // (segment_s * NS_PER_S) for f in rep.fills}
    assert len(fills) > 5  # fills in many segments, orders resting across their ends
    assert_same_run(whole, (rep, log))


def test_a_window_holds_its_segment_not_the_range(monkeypatch):
    rep, _ = run(stream=True, segment_ns=NS_PER_S, monkeypatch=monkeypatch)
    whole_rows = sum(rep._stream.source.counts()[0])  # type: ignore[union-attr]
    held = sum(len(b) for b in rep.books)
    assert 0 < held < whole_rows / 100


def test_the_reference_path_streams_the_same(monkeypatch):
    whole_rbr = run(stream=False, row_by_row=True, monkeypatch=monkeypatch)
    streamed = run(stream=True, segment_ns=10 * NS_PER_S, row_by_row=True,
                   monkeypatch=monkeypatch)
    assert_same_run(whole_rbr, streamed)


def test_what_cannot_stream_loads_whole_or_is_refused():
    rep = Replayer.from_archive({"binance": ["BTCUSDT"]}, START, START, path=ARCHIVE,
                                recorded_local_time=False)
    assert rep._stream is None
    with pytest.raises(ConfigError, match="cannot stream: books='delta'"):
        Replayer.from_archive({"binance": ["BTCUSDT"]}, START, START, path=ARCHIVE,
                              books="delta", stream=True)


@pytest.mark.parametrize("segment_s", [3600, 1])
def test_each_window_holds_what_its_segment_needs_in_the_whole_tapes_order(segment_s):
    """Per window and tape: the rows received in the segment are the whole tape's, in its
    order; every row of the segment's exchange time is there; the carry row is the whole
    tape's book at the segment's start."""
    carried = check_windows(ARCHIVE, MARKETS, segment_s)
    assert carried >= (1 if segment_s == 3600 else 300)


def test_rows_received_together_keep_the_files_order_across_a_boundary(tmp_path):
    """Two prints received at the same instant, the first in the file executed a second
    after the other: the late one is carried into the next segment's window and must still
    come second (the whole tape's order: its file's), not first."""
    import pyarrow as pa

    from makerlab.data import archive

    market = {"binance": ["BTCUSDT"]}
    for kind, depth in (("book_snapshot", 20), ("trades", None)):
        table = archive.read_table(ARCHIVE, kind, "binance", "BTCUSDT", START, START,
                                   depth=depth)
        if kind == "trades":
            row = table.slice(100, 1).to_pylist()[0]
            t = row["exchange_ts"] // NS_PER_S * NS_PER_S
            both = [{**row, "exchange_ts": t + NS_PER_S + 1, "local_ts": t + 3 * NS_PER_S,
                     "trade_id": "late-executed"},
                    {**row, "exchange_ts": t + 1, "local_ts": t + 3 * NS_PER_S,
                     "trade_id": "early-executed", "size": row["size"] * 2}]
            table = pa.concat_tables([table, pa.Table.from_pylist(both, table.schema)])
        archive.write_table(tmp_path, kind, "binance", "BTCUSDT", table)
    check_windows(tmp_path, market, 1)


def check_windows(path: Path, markets: dict[str, list[str]], segment_s: int) -> int:
    """:func:`test_each_window_holds_what_its_segment_needs_in_the_whole_tapes_order`'s
    checks on ``path``; the number of carry rows checked."""
    from makerlab.sim.builder import align_local_clocks, archive_tapes
    from makerlab.sim.streaming import ArchiveStream
    from makerlab.sim.timeline import EngineRows

    books, trades = archive_tapes(markets, START, END, path, 20, "snapshot")
    align_local_clocks(books, trades)
    source = ArchiveStream(markets, START, END, path, 20, segment_ns=segment_s * NS_PER_S)
    carried = 0
    for window in source.windows():
        for i, (part, tape) in enumerate([*zip(window.books, books, strict=True),
                                          *zip(window.trades, trades, strict=True)]):
            for clock in ("local_ts", "exchange_ts"):
                mine, full = getattr(part, clock), getattr(tape, clock)
                ours = (mine >= window.lo) & (mine < window.hi)
                theirs = (full >= window.lo) & (full < window.hi)
                assert np.array_equal(part.exchange_ts[ours], tape.exchange_ts[theirs])
                assert np.array_equal(part.local_ts[ours], tape.local_ts[theirs])
                if i >= len(books):
                    assert np.array_equal(part.size[ours], tape.size[theirs])
            if i < len(books):
                old, new = window.carry[i]
                row = EngineRows(tape, None, 0, -1).row_at(window.lo - 1)
                assert (new >= 0) == (row >= 0) == (old >= 0)
                if row >= 0:
                    carried += 1
                    assert part.exchange_ts[new] == tape.exchange_ts[row]
                    assert np.array_equal(part.sides()[0][new], tape.sides()[0][row],
                                          equal_nan=True)
    return carried
