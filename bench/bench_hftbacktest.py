"""(c) hftbacktest's equivalent of the tutorial market maker, on the same capture.

The tutorial's rule (``examples/market_maker.py``) as a numba strategy over hftbacktest
2.4.4 (``ROIVectorMarketDepthBacktest``, risk-averse queue, no-partial-fill exchange,
zero order latency and fees as the example): on every feed event of Binance USD-M BTCUSDT,
``q = position notional / 200``; ``bid = min(vamp * (1 - (6 + 4 tanh q) bp), 2nd bid)``,
``ask = max(vamp * (1 + (6 + 4 tanh -q) bp), 2nd ask)``; a GTC order of 200 USDT at each
price unless one rests there; other prices are cancelled.

Differences from (b), stated in the output: hftbacktest has one asset here, so the VAMP
is the **quoted market's own** depth-20 book (the tutorial uses Binance spot's), with the
notional of the quoted market's last 15 prints (20,000 USDT before any); the strategy runs
on every feed event (depth message or trade: hftbacktest's ``wait_next_feed`` does not
say which), not only on book updates. Events are the rows of hftbacktest's converted
array (exchange/local split rows included). The warm run excludes numba compilation,
which the first (cold) run includes.

    python bench/bench_hftbacktest.py
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np
from numba import njit

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_convert import FILE

try:
    from hftbacktest import BUY, GTC, LIMIT
except ImportError:  # main() says so; the numba functions are only compiled when called
    BUY, GTC, LIMIT = 1, 0, 0

ORDER_VALUE = 200.0
ROI = (50_000.0, 75_000.0)


def convert() -> tuple[np.ndarray, float]:
    """hftbacktest's converter on the bundled capture: (events, seconds)."""
    import contextlib
    import io

    from hftbacktest.data.utils import binancefutures

    t0 = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()):
        data = binancefutures.convert(str(FILE), output_filename=None, combined_stream=True)
    return data, time.perf_counter() - t0


@njit
def _vamp_side(depth, side, notional):
    """VWAP of taking ``notional`` from the best 20 levels of ``side`` (1 bid, -1 ask)."""
    tick = depth.best_bid_tick if side == 1 else depth.best_ask_tick
    spent, got, levels = 0.0, 0.0, 0
    for _ in range(5000):
        if levels == 20 or spent >= notional:
            break
        qty = depth.bid_qty_at_tick(tick) if side == 1 else depth.ask_qty_at_tick(tick)
        if qty > 0:
            px = tick * depth.tick_size
            take = min(qty, (notional - spent) / px)
            spent, got, levels = spent + take * px, got + take, levels + 1
        tick -= side
    return spent / got if got > 0 else np.nan


@njit
def _second_tick(depth, side):
    """Price tick of the second displayed level of ``side``."""
    tick, seen = (depth.best_bid_tick if side == 1 else depth.best_ask_tick), 0
    for _ in range(5000):
        qty = depth.bid_qty_at_tick(tick) if side == 1 else depth.ask_qty_at_tick(tick)
        seen += qty > 0
        if seen == 2:
            break
        tick -= side
    return tick


@njit
def _ref_notional(hbt, ring, n_ring):
    """Push the new prints' notionals into the 15-slot ring; the VAMP notional to use."""
    trades = hbt.last_trades(0)
    for i in range(len(trades)):
        ring[n_ring % 15] = trades[i].px * trades[i].qty
        n_ring += 1
    hbt.clear_last_trades(0)
    return n_ring, (20_000.0 if n_ring == 0 else ring[:min(n_ring, 15)].sum())


@njit
def _targets(hbt, notional):
    """The tutorial's (bid tick, ask tick, size), or NaN ticks when there is no VAMP."""
    d = hbt.depth(0)
    mid = (d.best_bid + d.best_ask) / 2.0
    q = hbt.position(0) * mid / ORDER_VALUE
    v = (_vamp_side(d, 1, notional) + _vamp_side(d, -1, notional)) / 2.0
    bid = min(np.floor(v * (1 - (6 + np.tanh(q) * 4) * 1e-4) / d.tick_size + 0.5),
              _second_tick(d, 1))
    ask = max(np.floor(v * (1 + (6 + np.tanh(-q) * 4) * 1e-4) / d.tick_size + 0.5),
              _second_tick(d, -1))
    return bid, ask, np.floor(ORDER_VALUE / mid / d.lot_size) * d.lot_size


@njit
def _replace(hbt, bid, ask, qty, oid):
    """Cancel orders off the targets, send one GTC order per side where none rests."""
    have_bid = have_ask = False
    orders = hbt.orders(0).values()
    while orders.has_next():
        o = orders.get()
        if o.price_tick == (bid if o.side == BUY else ask):
            have_bid = have_bid or o.side == BUY
            have_ask = have_ask or o.side != BUY
        elif o.cancellable:
            hbt.cancel(0, o.order_id, False)
    tick = hbt.depth(0).tick_size
    if not have_bid:
        oid += 1
        hbt.submit_buy_order(0, oid, bid * tick, qty, GTC, LIMIT, False)
    if not have_ask:
        oid += 1
        hbt.submit_sell_order(0, oid, ask * tick, qty, GTC, LIMIT, False)
    return oid


@njit
def quote(hbt, counts):
    """The strategy loop: counts = [calls, orders, fills, return code]."""
    ring, n_ring, oid = np.zeros(15), 0, 0
    rc = 2
    while rc == 2 or rc == 0:  # 0: timeout, 2: feed; 1: end of data; >= 10: error
        rc = hbt.wait_next_feed(False, 60_000_000_000)
        if rc != 2:
            continue
        counts[0] += 1
        n_ring, notional = _ref_notional(hbt, ring, n_ring)
        hbt.clear_inactive_orders(0)
        bid, ask, qty = _targets(hbt, notional)
        if not (np.isnan(bid) or np.isnan(ask)):
            oid = _replace(hbt, bid, ask, qty, oid)
    counts[1], counts[2], counts[3] = oid, hbt.state_values(0).num_trades, rc
    return rc


def run_once(data: np.ndarray) -> tuple[float, np.ndarray, float]:
    """One backtest of :func:`quote` over ``data``: (wall seconds, [calls, orders, fills,
    code], CPU seconds)."""
    from hftbacktest import BacktestAsset, ROIVectorMarketDepthBacktest

    asset = (BacktestAsset().data([data]).linear_asset(1.0).constant_order_latency(0, 0)
             .risk_adverse_queue_model().no_partial_fill_exchange()
             .trading_value_fee_model(0.0, 0.0).tick_size(0.1).lot_size(0.001)
             .roi_lb(ROI[0]).roi_ub(ROI[1]).last_trades_capacity(10_000))
    hbt = ROIVectorMarketDepthBacktest([asset])
    counts = np.zeros(4, np.int64)
    t0, c0 = time.perf_counter(), time.process_time()
    quote(hbt, counts)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    hbt.close()
    if counts[3] != 1:
        raise RuntimeError(f"hftbacktest stopped early with code {counts[3]}")
    return wall, counts, cpu


def bench_hftbacktest(data: np.ndarray | None = None) -> tuple[float, int]:
    """Warm wall time (s) and events of (c), to set beside ``bench_replay``'s (b)."""
    if data is None:
        data, _ = convert()
    run_once(data)  # compiles
    wall, _, _ = run_once(data)
    return wall, len(data)


def main() -> int:
    try:
        import hftbacktest
    except ImportError:
        print("hftbacktest not importable: `pip install -e '.[test]'`")
        return 0
    data, conv_s = convert()
    version = getattr(hftbacktest, "__version__", "")
    print(f"hftbacktest {version} converter: {FILE.name} -> {len(data):,} rows in {conv_s:.2f} s "
          f"({len(data) / conv_s:,.0f} rows/s)")
    cold, _, _ = run_once(data)
    wall, counts, _ = run_once(data)
    calls, orders, fills, _ = (int(x) for x in counts)
    print(f"(c) hftbacktest market maker {len(data):>9,d} events  {wall:6.3f} s  "
          f"{len(data) / wall:>12,.0f} events/s  (cold, with JIT: {cold:.2f} s)")
    print(f"    {calls:,} strategy calls, {orders:,} orders, {fills:,} fills; VAMP of the "
          "quoted market's own book (single asset), strategy on every feed event")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
