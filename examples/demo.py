"""makerlab demo: convert bundled real Binance captures and print book analytics.

Runs from a fresh checkout (``make demo``). It converts the raw websocket captures in
``data/raw/binance`` into a Parquet archive under ``logs/demo/archive``, loads them back
with the tutorial's ``Feed.load_lob_archives`` / ``Feed.load_trade_archives`` and replays
them through ``LOB`` and ``Trades`` to print what a quoter would look at: mid, spread,
VAMP at several notionals, impact spread, volatility, trade imbalance and the perp-spot
basis. (Later milestones turn this into the tutorial's market-maker backtest and report.)
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import numpy as np

from makerlab import LOB, Feed, Trades
from makerlab.data.archive import list_archive
from makerlab.data.convert import convert

REPO = Path(__file__).resolve().parents[1]
RAW = REPO / "data" / "raw" / "binance"
OUT = REPO / "logs" / "demo" / "archive"
HOURS = ("2024-08-08:23", "2024-08-08:23")
MARKETS = [("binance", "BTCUSDT"), ("binance_spot", "BTCUSDT"),
           ("binance", "ETHUSDT"), ("binance_spot", "ETHUSDT")]


def convert_bundled() -> None:
    shutil.rmtree(OUT, ignore_errors=True)
    for path in sorted(RAW.glob("*.gz")):
        started = time.perf_counter()
        for converted in convert("binance", [path], OUT, depth=20):
            print(f"  {path.name}: {converted.summary()} "
                  f"({time.perf_counter() - started:.2f}s)")


def replay(exchange: str, symbol: str) -> tuple[LOB, Trades, dict]:
    books = Feed.load_lob_archives(exc=exchange, ticker=symbol, depth=20,
                                   start=HOURS[0], end=HOURS[1], path=str(OUT))
    trades = Feed.load_trade_archives(exc=exchange, ticker=symbol,
                                      start=HOURS[0], end=HOURS[1], path=str(OUT))
    lob = LOB(depth=20, buffer_size=len(books))
    tape = Trades(buffer_size=max(len(trades), 1))
    spreads, vamps = [], []
    t = 0
    for book in books:
        while t < len(trades) and trades[t][0] <= book["ts"]:
            tape.append(trade=tuple(trades[t]))
            t += 1
        lob.update(book["ts"], book["b"], book["a"], is_snapshot=True)
        spreads.append(lob.get_spread(x=True) * 1e4)
        vamps.append((lob.get_vamp(100_000) / lob.get_mid() - 1) * 1e4)
    summary = {"books": len(books), "trades": len(trades),
               "median spread (bps)": float(np.nanmedian(spreads)),
               "mean |VAMP100k - mid| (bps)": float(np.nanmean(np.abs(vamps)))}
    return lob, tape, summary


def report(exchange: str, symbol: str) -> float:
    lob, tape, summary = replay(exchange, symbol)
    print(f"\n{exchange}/{symbol}: {summary['books']:,} book states, "
          f"{summary['trades']:,} trades")
    print(f"  last book at {lob.timestamp} ms: bid {lob.get_bid()} x {lob.get_bid_sz()}, "
          f"ask {lob.get_ask()} x {lob.get_ask_sz()}, mid {lob.get_mid():.2f}")
    print(f"  median spread {summary['median spread (bps)']:.3f} bps; "
          f"mean |VAMP(100k) - mid| {summary['mean |VAMP100k - mid| (bps)']:.3f} bps")
    for notional in (10_000, 100_000, 1_000_000):
        print(f"  VAMP({notional:>9,}) {lob.get_vamp(notional):.2f}   "
              f"impact spread {lob.get_impact_spread(notional, x=True) * 1e4:.2f} bps")
    print(f"  mid vol (last 100 states, bps) {lob.get_vol(n=100, x=True) * 1e4:.3f}")
    print(f"  trade imbalance last 500 {tape.get_imbalance(n=500):+.3f}; "
          f"flow PnL last 500 {tape.get_flow_pnl(n=500):+.6f}")
    return lob.get_mid()


def main() -> None:
    print(f"Converting bundled captures from {RAW.relative_to(REPO)} ...")
    convert_bundled()
    print("\nArchive contents:")
    print(list_archive(OUT).to_string(index=False))
    mids = {market: report(*market) for market in MARKETS}
    for symbol in ("BTCUSDT", "ETHUSDT"):
        perp, spot = mids[("binance", symbol)], mids[("binance_spot", symbol)]
        print(f"\n{symbol} perp-spot basis at the end: {(perp / spot - 1) * 1e4:+.2f} bps")


if __name__ == "__main__":
    main()
