"""``python examples/market_maker.py 1``: the tutorial's script trading live against a
local venue (the fake exchange of tests/live/fake_binance.py, public and private sides),
configured by ``MAKERLAB_CONFIG_KEYS``; SIGTERM cancels its quotes before it ends."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from pathlib import Path

from fake_binance import KEY, SECRET, FakeBinance
from fake_private import FakePrivate, until

EXAMPLE = Path(__file__).parents[2] / "examples" / "market_maker.py"


def test_the_example_quotes_live_and_sigterm_cancels_everything(tmp_path):
    async def market(exchange: FakeBinance) -> None:
        while True:
            await exchange.tick()
            await asyncio.sleep(0.02)

    async def main():
        async with FakePrivate() as fake:
            exchange = FakeBinance(fake)
            ticker = asyncio.create_task(market(exchange))
            config = {"binance": {"env": "paper", "base_url": fake.url + "/binance",
                                  "key": "MK_EXAMPLE_KEY", "secret": "MK_EXAMPLE_SECRET"},
                      "binance_spot": {"env": "paper", "base_url": fake.url + "/binance_spot"}}
            env = os.environ | {"MAKERLAB_CONFIG_KEYS": json.dumps(config),
                                "MK_EXAMPLE_KEY": KEY, "MK_EXAMPLE_SECRET": SECRET,
                                "MAKERLAB_SPEC_CACHE": str(tmp_path / "specs"),
                                "MAKERLAB_PAGE": "0",  # the monitoring page, on a free port
                                "MPLBACKEND": "Agg"}
            proc = await asyncio.create_subprocess_exec(
                sys.executable, str(EXAMPLE), "1", cwd=tmp_path, env=env,
                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
            try:
                await until(lambda: len(exchange.open()) >= 2 or proc.returncode is not None,
                            "the script quoting", tries=6000)
                quoted = [(o.side, o.qty, o.price) for o in exchange.open()]
                proc.send_signal(signal.SIGTERM)
                output, _ = await asyncio.wait_for(proc.communicate(), 60)
            finally:
                ticker.cancel()
                if proc.returncode is None:
                    proc.kill()
                    await proc.wait()
            return (quoted, exchange.open(), exchange.cancel_alls, output.decode(),
                    proc.returncode)

    quoted, left, cancel_alls, output, status = asyncio.run(main())
    assert len(quoted) == 2, output
    assert {side for side, _, _ in quoted} == {"BUY", "SELL"}
    assert all(qty * price >= 100 for _, qty, price in quoted)  # rounded to specs, sized
    assert left == [] and cancel_alls == ["BTCUSDT"], output
    assert "kill switch tripped (exit): SIGTERM" in output and status == 143
    assert "monitoring page: http://127.0.0.1:" in output
    assert SECRET not in output and KEY not in output
