"""The order lifecycle alone (issue 12, docs/performance.md "Fourth pass").

A flat three-level book (best bid 60000.0, best ask 60000.1) updated every 100 ms and no
trades; a handler on every book update re-quotes one bid between two prices far from the
touch, as the tutorial's market maker re-quotes: one ``limit_order`` (a float amount,
``round_to_specs=True``) and one ``cancel_order`` of the acknowledged bid per update,
nothing ever fills. So nearly all of ``play`` is the order path: order entry, the venue's
arrival and acknowledgement, the mirror's updates and the cancels. Prints the best CPU
time of ``play`` over ``--repeat`` warm runs (the first, cold run is not counted), per
update, and the journal's length (four rows an update: submit, ack, cancel, cancelled).

    python bench/bench_orderpath.py [--updates 3000] [--repeat 5] [--latency-ms 0]
"""

from __future__ import annotations

import argparse
import asyncio
import time
from decimal import Decimal

from makerlab.sim import Latencies, Replayer

EXC, TICKER = "binance", "BTCUSDT"
PRICES = (Decimal("59990.0"), Decimal("59990.1"))
AMOUNT = 0.0123456


def flat_books(n: int) -> list[dict]:
    return [{"ts": 1_000 + i * 100,
             "b": [[round(60000.0 - 0.1 * k, 1), 1.0] for k in range(3)],
             "a": [[round(60000.1 + 0.1 * k, 1), 1.0] for k in range(3)]} for i in range(n)]


def run(updates: int, latency_ms: float) -> tuple[float, int]:
    """CPU seconds of one replay's ``play`` and its journal's length."""
    latencies = {c: latency_ms for c in Latencies if c is not Latencies.NULL}
    rep = Replayer({EXC: {TICKER: flat_books(updates)}}, {EXC: {TICKER: []}},
                   latencies=latencies)
    oms, feed = rep.get_oms(), rep.get_feed()
    orders = oms.orders_peek(EXC)
    n = 0

    async def requote(_: object) -> None:
        nonlocal n
        n += 1
        target = PRICES[n & 1]
        bids = orders.get_bid_orders(TICKER)
        if not any(o.price == target for o in bids):
            await oms.limit_order(EXC, TICKER, AMOUNT, target, round_to_specs=True)
        for o in bids:
            if o.price != target and o.ord_status.value != "PENDING":
                await oms.cancel_order(EXC, TICKER, cloid=o.cloid)

    async def main() -> float:
        await feed.add_l2_book_feed(EXC, TICKER, depth=3, handler=requote)
        c0 = time.process_time()
        await rep.play(progress=False)
        return time.process_time() - c0

    return asyncio.run(main()), len(rep.actions)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--updates", type=int, default=3000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--latency-ms", type=float, default=0.0)
    args = parser.parse_args()
    runs = [run(args.updates, args.latency_ms) for _ in range(args.repeat + 1)][1:]
    best = min(cpu for cpu, _ in runs)
    print(f"order lifecycle, {args.updates} book updates, {args.latency_ms} ms latencies: "
          f"play {best:.4f} s CPU (best of {args.repeat}), "
          f"{best / args.updates * 1e6:.1f} us an update; journal {runs[0][1]} rows")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
