"""Regenerate the monitoring page's screenshots in docs/ (docs/monitor.md): the tutorial's
quoter on the live stack against the paper exchange (the first two minutes of the bundled
archive at 4x speed), its page in Debian's Chromium through Playwright, once while
quoting, once after the kill switch.

    .venv/bin/python docs/monitor_screenshots.py
"""

from __future__ import annotations

import asyncio
import os
import sys
import tempfile
from pathlib import Path

import pyarrow as pa

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests" / "monitor"))

from page_kit import browser, quoting, until  # noqa: E402

from makerlab.data.archive import read_table, write_table  # noqa: E402


class _Env:
    def setenv(self, name: str, value: str) -> None:
        os.environ[name] = value


def _archive(root: Path) -> Path:
    for exchange in ("binance", "binance_spot"):
        for kind, depth in (("book_delta", None), ("book_snapshot", 20), ("trades", None)):
            table = read_table(HERE.parent / "data" / "archive", kind, exchange, "BTCUSDT",
                               "2024-08-08:23", "2024-08-08:23", depth=depth)
            stamps = table.column("exchange_ts").to_numpy()
            keep = stamps < stamps.min() + 120 * 1_000_000_000
            write_table(root, kind, exchange, "BTCUSDT", table.filter(pa.array(keep)))
    return root


async def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        archive = _archive(Path(tmp) / "archive")
        async with quoting(archive, _Env(), Path(tmp), speed=4) as desk, \
                browser("/usr/bin/chromium") as context:
            page = await context.new_page()
            await page.goto(desk.monitor.login_url)
            await until(lambda: len(desk.fills.trade_ids) >= 2, "two fills", seconds=90)
            await asyncio.sleep(8)  # some markouts due
            await page.screenshot(path=str(HERE / "monitor_page.png"), full_page=True)
            await page.click("#kill")
            await page.screenshot(path=str(HERE / "monitor_kill_confirm.png"))
            await page.click("#kill-confirm")
            await page.wait_for_selector("#kill-result[data-state=ok]")
            await until(lambda: not desk.alive(), "every order cancelled")
            await asyncio.sleep(1)
            await page.screenshot(path=str(HERE / "monitor_killed.png"))


if __name__ == "__main__":
    asyncio.run(main())
