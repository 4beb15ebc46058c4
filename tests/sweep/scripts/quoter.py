"""A small quoting backtest for the sweep tests, on the bundled archive.

Every ``interval_ms`` it cancels and quotes ``size`` BTC (times a random factor drawn from
the Replayer's seeded ``rng``) at the best bid and ask of Binance USD-M BTCUSDT, post-only.
``fail=True`` raises before replaying; ``mode`` (the first argument) must be ``0``.
"""

import argparse
import asyncio
import os
from decimal import Decimal
from pathlib import Path

from makerlab import params
from makerlab.sim import Replayer

PARAMS = params(size=0.002, interval_ms=1000, fail=False, start="2024-08-08:23",
                end="2024-08-08:23")
ARCHIVE = os.environ.get("MAKERLAB_ARCHIVE",
                         str(Path(__file__).resolve().parents[3] / "data" / "archive"))

parser = argparse.ArgumentParser()
parser.add_argument("mode", type=int)
args = parser.parse_args()


async def main() -> Replayer:
    if PARAMS["fail"]:
        raise RuntimeError("asked to fail")
    rep = Replayer.from_archive({"binance": ["BTCUSDT"]}, PARAMS["start"], PARAMS["end"],
                                path=ARCHIVE, maker_fees=-0.00005,
                                latencies={"req_private": 5, "ack_private": 5})
    oms = rep.get_oms()
    engine = rep.venue.engine("binance", "BTCUSDT")

    async def quote() -> None:
        await oms.cancel_order("binance", "BTCUSDT")
        bid, ask = engine.best(1), engine.best(-1)
        size = Decimal(str(round(PARAMS["size"] * (1 + rep.rng.integers(0, 3)), 3)))
        if bid == bid and ask == ask:
            for amount, price in ((size, bid), (-size, ask)):
                await oms.limit_order("binance", "BTCUSDT", amount, Decimal(repr(price)),
                                      tif="GTX")

    await oms.add_clock_callback(quote, interval_ms=PARAMS["interval_ms"])
    await rep.play(progress=False)
    print(rep.statistics()["binance"]["#trades"], "fills")
    return rep


if __name__ == "__main__":
    replayer = asyncio.run(main())
