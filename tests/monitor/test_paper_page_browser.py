"""The paper exchange's page (``makerlab paper --page``) in a real browser: it loads in
paper mode (the venue's accounts, the halt button), and its halt is shown."""

from __future__ import annotations

import asyncio

from page_kit import HOUR, KEY, browser

from makerlab.monitor import PageConfig
from makerlab.paper import PaperExchange

TOKEN = "paper-browser-token-0123456789"


def test_the_paper_page_loads_in_paper_mode_and_shows_the_halt(page_archive, chromium):
    async def body() -> None:
        page_config = PageConfig(port=0, token=TOKEN, interval_s=0.2)
        async with PaperExchange(page_archive, HOUR, HOUR, speed=4, page=page_config,
                                 credentials={"binance": KEY}) as paper, \
                browser(chromium) as context:
            assert paper.page is not None
            page = await context.new_page()
            errors: list[str] = []
            page.on("pageerror", lambda e: errors.append(str(e)))
            response = await page.goto(paper.page.url)
            assert response is not None and response.status == 200
            await page.wait_for_selector("#conn[data-state=open]")
            await page.wait_for_selector("body[data-mode='paper venue']")
            assert await page.text_content("h1 span") == "paper venue"
            assert await page.text_content("#kill") == "Halt the venue"
            await page.wait_for_selector('#markets tr[data-market="binance/BTCUSDT"]')
            await page.click("#kill")
            await page.fill("#kill-token", TOKEN)
            await page.click("#kill-confirm")
            await page.wait_for_selector("#kill-result[data-state=ok]")
            assert "venue halted" in await page.text_content("#kill-result")
            await page.wait_for_selector("#kill-state[data-tripped=true]")
            assert paper.desk is not None
            assert paper.desk.engine("binance", "BTCUSDT").halted is not None
            assert not errors, errors
            await asyncio.sleep(0)

    asyncio.run(body())
