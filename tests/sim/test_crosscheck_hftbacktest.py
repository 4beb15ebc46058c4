"""Cross-check of makerlab's replay engine against hftbacktest (PyPI 2.4.4).

The same quoting rule runs in both engines on the bundled Binance USD-M BTCUSDT capture:
every 100 ms (local time) quote one post-only bid ``K`` ticks below the best bid and one
ask ``K`` ticks above the best ask, fixed size; an order whose price is no longer the
target is cancelled once acknowledged, a new one is sent when no live order (pending
included, cancel-requested excluded) sits at the target. Both engines use the risk-averse
queue, whole-order fills (``NoPartialFills`` / ``no_partial_fill_exchange``), the same
constant entry and response latency, no fees. Fills are compared one by one (side, price,
exchange time). docs/crosscheck.md explains the alignment and every difference.

hftbacktest is not a test dependency: the module skips when it is not installed.
"""

from __future__ import annotations

import asyncio
import gzip
import warnings
from collections import Counter
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import numpy as np
import orjson
import pytest

hbt_mod = pytest.importorskip("hftbacktest")

from hftbacktest import BUY, CANCELED, EXPIRED, FILLED, GTX, LIMIT  # noqa: E402
from numba import njit  # noqa: E402

from makerlab.core.orders import OrderStatus  # noqa: E402
from makerlab.sim import Latencies, Replayer  # noqa: E402
from makerlab.sim.matching import NoPartialFills  # noqa: E402
from makerlab.sim.queue import RiskAverseQueue  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
RAW = REPO / "data" / "raw" / "binance" / "usdm_btcusdt_20240808.gz"
ARCHIVE = REPO / "data" / "archive"
EXC, TICKER = "binance", "BTCUSDT"
TICK = 0.1
STEP_NS = 100_000_000
QTY = 0.002  # Binance's min notional is 100 USDT: 0.001 BTC would be rejected by makerlab
ENTRY_NS = 10_000_500
RESPONSE_NS = 10_000_500  # off the ms grid: no response lands exactly on a 100 ms step
TOLERANCE_NS = 1_000_000
MIN_AGREEMENT = 0.95


@dataclass(frozen=True)
class Fill:
    ts: int
    side: int
    tick: int


# ---- hftbacktest side ----------------------------------------------------------------


def hbt_events(tmp_path: Path) -> np.ndarray:
    """The capture converted by hftbacktest's converter (npz in ``tmp_path``)."""
    from hftbacktest.data.utils import binancefutures

    out = tmp_path / "usdm_btcusdt_20240808.npz"
    binancefutures.convert(str(RAW), output_filename=str(out), combined_stream=True)
    return np.load(out)["data"]


@njit
def _record_done(hbt, out, n, counts):
    """Store the FILLED orders (exchange time, side, price tick), count the EXPIRED ones
    (post-only rejections), then drop both from the order dict; the new fill count."""
    it = hbt.orders(0).values()
    while it.has_next():
        o = it.get()
        if o.status == FILLED:
            out[n, 0] = o.exch_timestamp
            out[n, 1] = 1 if o.side == BUY else -1
            out[n, 2] = o.price_tick
            n += 1
        elif o.status == EXPIRED:
            counts[1] += 1
    hbt.clear_inactive_orders(0)
    return n


@njit
def _cancel_off_target(hbt, bid, ask):
    """Cancel live orders off the targets; (bid held, ask held) by an order in flight or
    live that is not being cancelled."""
    have_bid = have_ask = False
    it = hbt.orders(0).values()
    while it.has_next():
        o = it.get()
        if o.req == CANCELED:
            continue
        if o.price_tick == (bid if o.side == BUY else ask):
            have_bid = have_bid or o.side == BUY
            have_ask = have_ask or o.side != BUY
        elif o.cancellable:
            hbt.cancel(0, o.order_id, False)
    return have_bid, have_ask


@njit
def _requote(hbt, k, qty, oid):
    d = hbt.depth(0)
    bid, ask = d.best_bid_tick - k, d.best_ask_tick + k
    have_bid, have_ask = _cancel_off_target(hbt, bid, ask)
    if not have_bid:
        oid += 1
        hbt.submit_buy_order(0, oid, bid * d.tick_size, qty, GTX, LIMIT, False)
    if not have_ask:
        oid += 1
        hbt.submit_sell_order(0, oid, ask * d.tick_size, qty, GTX, LIMIT, False)
    return oid


@njit
def _quote(hbt, start_ns, k, qty, out, counts):
    n, oid = 0, 0
    while hbt.elapse(STEP_NS) == 0:
        n = _record_done(hbt, out, n, counts)
        if hbt.current_timestamp >= start_ns:
            oid = _requote(hbt, k, qty, oid)
    counts[0] = oid
    return n


def run_hbt(events: np.ndarray, start_ns: int, k: int) -> tuple[list[Fill], dict[str, int]]:
    from hftbacktest import BacktestAsset, HashMapMarketDepthBacktest

    asset = (BacktestAsset().data([events]).linear_asset(1.0)
             .constant_order_latency(ENTRY_NS, RESPONSE_NS).risk_adverse_queue_model()
             .no_partial_fill_exchange().trading_value_fee_model(0.0, 0.0)
             .tick_size(TICK).lot_size(0.001))
    hbt = HashMapMarketDepthBacktest([asset])
    out, counts = np.zeros((200_000, 3), np.int64), np.zeros(2, np.int64)
    n = _quote(hbt, start_ns, k, QTY, out, counts)
    hbt.close()
    fills = [Fill(int(t), int(s), int(p)) for t, s, p in out[:n]]
    return fills, {"orders": int(counts[0]), "post_only_rejects": int(counts[1])}


# ---- makerlab side -------------------------------------------------------------------


def depth_transaction_times(path: Path = RAW) -> dict[int, int]:
    """``{final update id: transaction time T (ns)}`` of every depth message and snapshot."""
    out = {}
    with gzip.open(path, "rb") as f:
        for line in f:
            msg = orjson.loads(line[line.index(b" ") + 1:])
            data = msg.get("data", msg)
            if data.get("e") == "depthUpdate":
                out[data["u"]] = data["T"] * 1_000_000
            elif "lastUpdateId" in data:
                out[data["lastUpdateId"]] = data["T"] * 1_000_000
    return out


def load_seq(path: Path = ARCHIVE) -> np.ndarray:
    import pyarrow.dataset as ds

    root = path / "kind=book_snapshot" / "depth=20" / f"exchange={EXC}" / f"symbol={TICKER}"
    table = ds.dataset(root, format="parquet").to_table(columns=["exchange_ts", "seq"])
    table = table.sort_by([("exchange_ts", "ascending"), ("seq", "ascending")])
    return table.column("seq").to_numpy()


def check_clocks_are_hftbacktests(rep: Replayer, events: np.ndarray) -> None:
    """makerlab's own clocks are hftbacktest's, with nothing aligned by hand: the archive
    stamps book states with the depth messages' transaction time ``T``, and
    ``from_archive`` shifts the recorded local clock as hftbacktest's converter does (the
    range's tapes: a streamed replay holds one hour at a time, ``market_tapes`` all)."""
    [books], [trades] = rep.market_tapes()
    theirs = events[(events["ev"] & 0xFF) == 2]
    theirs = theirs[(theirs["ev"] & hbt_mod.EXCH_EVENT) != 0]
    assert np.array_equal(theirs["local_ts"], trades.local_ts)
    seq_t = depth_transaction_times()
    seqs = load_seq()
    assert len(seqs) == len(books), "the archive's book rows are the tape's rows"
    assert np.array_equal(books.exchange_ts, [seq_t[int(s)] for s in seqs])


class Quoter:
    """The cross-check rule in makerlab's API (see the module docstring)."""

    def __init__(self, rep: Replayer, start_ns: int, k: int, lob_id: str) -> None:
        self.rep, self.oms, self.start_ns, self.k = rep, rep.get_oms(), start_ns, k
        self.lob = rep.get_feed().get_feed(lob_id)
        self.cancel_sent: set[str] = set()

    async def step(self) -> None:
        if self.rep.clock.ns < self.start_ns:
            return
        bids, asks = self.lob.get_bids(), self.lob.get_asks()
        if not len(bids) or not len(asks):
            return
        orders = self.oms.orders_peek(EXC)
        await self.side(orders.get_bid_orders(TICKER), 1, float(bids[0, 0]) - self.k * TICK)
        await self.side(orders.get_ask_orders(TICKER), -1, float(asks[0, 0]) + self.k * TICK)

    async def side(self, orders: list, side: int, target: float) -> None:
        price = self.oms.rounded_price(EXC, TICKER, target)
        have = False
        for o in orders:
            if o.cloid in self.cancel_sent:
                continue
            if o.price == price:
                have = True
            elif o.ord_status in (OrderStatus.NEW, OrderStatus.PARTIAL):
                self.cancel_sent.add(o.cloid)
                await self.oms.cancel_order(EXC, TICKER, cloid=o.cloid)
        if not have:
            await self.oms.limit_order(EXC, TICKER, side * Decimal(str(QTY)), price, tif="GTX")


def run_makerlab(events: np.ndarray, start_ns: int, clock_ns: int, k: int
                 ) -> tuple[list[Fill], dict[str, int]]:
    private = {Latencies.REQ_PRIVATE: ENTRY_NS / 1e6, Latencies.ACK_PRIVATE: RESPONSE_NS / 1e6,
               Latencies.FEED_PRIVATE: RESPONSE_NS / 1e6}
    rep = Replayer.from_archive({EXC: [TICKER]}, "2024-08-08:23", "2024-08-09:00",
                                path=ARCHIVE, maker_fees=0.0, taker_fees=0.0,
                                latencies={**{c: 0 for c in Latencies if c is not Latencies.NULL},
                                           **private},
                                queue_model=RiskAverseQueue(), fill_model=NoPartialFills())
    check_clocks_are_hftbacktests(rep, events)

    async def main() -> None:
        lob_id = await rep.get_feed().add_l2_book_feed(EXC, TICKER, depth=20, buffer=10)
        quoter = Quoter(rep, start_ns, k, lob_id)
        rep.clock.ns = clock_ns  # hftbacktest's first step is its first event + 100 ms
        await rep.get_oms().add_clock_callback(quoter.step, interval_ms=STEP_NS / 1e6)
        await rep.play(progress=False)

    asyncio.run(main())
    fills = [Fill(int(f["ts"]), int(f["dir"]), round(float(f["price"]) / TICK))
             for f in rep.fills]
    events_ = Counter(a["event"] for a in rep.actions)
    return fills, {"orders": events_["submit"], "post_only_rejects": events_["reject"],
                   **Counter(f["rule"] for f in rep.fills)}


# ---- comparison ----------------------------------------------------------------------


def match_fills(ours: list[Fill], theirs: list[Fill], tol_ns: int = TOLERANCE_NS
                ) -> tuple[list[tuple[Fill, Fill]], list[Fill], list[Fill]]:
    """Pair fills of equal side and price within ``tol_ns``, in time order (greedy)."""
    left = sorted(theirs, key=lambda f: f.ts)
    used = [False] * len(left)
    pairs, only_ours = [], []
    for f in sorted(ours, key=lambda f: f.ts):
        j = next((j for j, g in enumerate(left) if not used[j] and g.side == f.side
                  and g.tick == f.tick and abs(g.ts - f.ts) <= tol_ns), None)
        if j is None:
            only_ours.append(f)
        else:
            used[j] = True
            pairs.append((f, left[j]))
    only_theirs = [g for j, g in enumerate(left) if not used[j]]
    return pairs, only_ours, only_theirs


def agreement(ours: list[Fill], theirs: list[Fill]) -> float:
    pairs, _, _ = match_fills(ours, theirs)
    return len(pairs) / max(len(ours), len(theirs), 1)


def start_times(events: np.ndarray) -> tuple[int, int]:
    """(first quoting time: the REST snapshot's local time, hftbacktest's clock origin)."""
    snap = events[(events["ev"] & 0xFF) == 4]
    return int(snap["local_ts"].max()), int(events["exch_ts"].min())


@pytest.fixture(scope="module")
def events(tmp_path_factory):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # numba's deprecation chatter
        return hbt_events(tmp_path_factory.mktemp("hbt"))


@pytest.mark.parametrize("k", [0, 2])
def test_fills_agree_with_hftbacktest(events, k):
    start_ns, origin = start_times(events)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        theirs, their_counts = run_hbt(events, start_ns, k)
    ours, our_counts = run_makerlab(events, start_ns, origin, k)
    pairs, only_ours, only_theirs = match_fills(ours, theirs)
    rate = len(pairs) / max(len(ours), len(theirs), 1)
    print(f"\nk={k}: fills makerlab {len(ours)}, hftbacktest {len(theirs)}, matched "
          f"{len(pairs)} -> agreement {rate:.1%}; makerlab {our_counts}; "
          f"hftbacktest {their_counts}")
    assert len(theirs) > 50
    assert rate >= MIN_AGREEMENT, (only_ours[:10], only_theirs[:10])
