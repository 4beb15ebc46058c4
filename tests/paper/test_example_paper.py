"""``python examples/market_maker.py 1`` against the paper exchange on each of its three
private protocols: the tutorial's script, unchanged but for its environment
(``MAKERLAB_EXCHANGE``, ``MAKERLAB_CONFIG_KEYS``), quotes on Binance USD-M, Bybit and
Hyperliquid (the two served from the Binance archive), gets fills, and its SIGTERM leaves
no order resting at the venue. The paper plays in lockstep with the script, so the market
waits for it however slowly it starts."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from pathlib import Path

import pytest
from private_kit import HOUR, KEYS, until

from makerlab.paper import PaperExchange
from makerlab.paper.trading import TradingConfig, parse_latency
from makerlab.parity import live_config

EXAMPLE = Path(__file__).parents[2] / "examples" / "market_maker.py"


@pytest.mark.parametrize("protocol", ["binance", "bybit", "hyperliquid"])
def test_the_example_trades_on_each_paper_protocol(protocol, short_archive, tmp_path):
    async def main() -> tuple[list[dict], list[dict], str, int | None, str, list]:
        serve = dict.fromkeys(("bybit", "hyperliquid"), "binance")
        async with PaperExchange(short_archive, HOUR, HOUR, serve=serve, lockstep=True,
                                 credentials={protocol: KEYS[protocol]},
                                 trading=TradingConfig(parse_latency("0"), 0, 0)) as paper:
            config = live_config(paper, protocol, "MM_KEY", "MM_SECRET")
            env = os.environ | {"MAKERLAB_CONFIG_KEYS": json.dumps(config),
                                "MAKERLAB_EXCHANGE": protocol, "MPLBACKEND": "Agg",
                                "MAKERLAB_PAGE": "0",  # the monitoring page, on a free port
                                "MM_KEY": KEYS[protocol].key,
                                "MM_SECRET": KEYS[protocol].secret}
            with open(tmp_path / "output.txt", "wb") as out:  # a pipe left unread would fill
                proc = await asyncio.create_subprocess_exec(
                    sys.executable, str(EXAMPLE), "1", cwd=tmp_path, env=env, stdout=out,
                    stderr=out)
                try:
                    await until(lambda: paper.replay_done.is_set() or
                                proc.returncode is not None, "the range played", tries=12_000)
                    proc.send_signal(signal.SIGTERM)
                    await asyncio.wait_for(proc.wait(), 60)
                finally:
                    if proc.returncode is None:
                        proc.kill()
                        await proc.wait()
            output = (tmp_path / "output.txt").read_text()
            desk = paper.desk
            assert desk is not None
            resting = list(desk.engine(protocol, "BTCUSDT").resting.values())
            return (desk.venue.actions, desk.fills, output, proc.returncode,
                    paper.account_lines()[0], resting)

    actions, fills, output, status, account, resting = asyncio.run(main())
    acks = [a for a in actions if a["event"] == "ack" and a["exc"] == protocol]
    assert acks and fills, output
    assert {a["exc"] for a in actions} == {protocol}
    assert status == 143 and "kill switch tripped (exit): SIGTERM" in output, output
    assert resting == [], account
    assert KEYS[protocol].secret not in output
