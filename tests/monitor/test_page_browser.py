"""The monitoring page in a real browser (Playwright driving Debian's Chromium), served by
the tutorial's quoter trading on the live stack against the paper exchange: the page
loads, its positions and orders are the OMS's, a fill appears, a wrong token is refused
(page, websocket, kill switch), and the kill switch cancels every order."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from page_kit import KEY, browser, quoting, until

from makerlab.monitor import Monitor

TOKEN = "right-token-0123456789abcdef"


def record_oms_at_each_snapshot(monitor: Monitor) -> dict[int, tuple[set[str], str]]:
    """What the OMS itself held (live cloids, position) when each snapshot was taken,
    read from the OMS (not through the collector)."""
    seen: dict[int, tuple[set[str], str]] = {}
    take = monitor.collector.take
    oms = monitor.oms

    def recording() -> Any:
        snapshot = take()
        alive = {str(o.cloid) for o in oms.orders_peek("binance").get_orders() if o.is_alive()}
        seen[snapshot.seq] = (alive, str(oms.get_position("binance", "BTCUSDT")))
        return snapshot

    monitor.collector.take = recording  # type: ignore[method-assign]
    return seen


async def shown_seq(page: Any) -> int:
    return int(await page.evaluate("document.body.dataset.seq || '0'"))


async def page_orders_and_position(page: Any) -> tuple[int, set[str], str]:
    """The snapshot number the page shows, its orders' cloids and its position, read in
    one go from the DOM."""
    seq, cloids, position = await page.evaluate("""() => [
        document.body.dataset.seq,
        [...document.querySelectorAll('#orders tbody tr')].map(r => r.dataset.cloid),
        document.querySelector('#markets tr[data-market="binance/BTCUSDT"]')
            ?.dataset.position ?? null]""")
    return int(seq or 0), set(cloids), position


def test_the_page_shows_the_oms_and_its_kill_switch_cancels_every_order(
        page_archive, chromium, monkeypatch, tmp_path):
    async def body() -> None:
        async with quoting(page_archive, monkeypatch, tmp_path, speed=4) as desk, \
                browser(chromium) as context:
            seen = record_oms_at_each_snapshot(desk.monitor)
            page = await context.new_page()
            errors: list[str] = []
            page.on("pageerror", lambda e: errors.append(str(e)))
            response = await page.goto(desk.monitor.url)
            assert response is not None and response.status == 200
            await page.wait_for_selector("#conn[data-state=open]")
            await page.wait_for_selector('#markets tr[data-market="binance/BTCUSDT"]')

            # orders and position: the page's, at a snapshot, are the OMS's at that time
            await until(lambda: desk.alive(), "the quoter quoting")
            matched = 0
            for _ in range(20):
                seq, cloids, position = await page_orders_and_position(page)
                if seq in seen and cloids:
                    alive, oms_position = seen[seq]
                    assert cloids == alive
                    assert position is not None and float(position) == float(oms_position)
                    matched += 1
                await asyncio.sleep(0.15)
            assert matched >= 5, "the page kept showing snapshots with orders"

            # feed health: both markets streaming; no credential ever reaches the page
            for market in ("binance/BTCUSDT", "binance_spot/BTCUSDT"):
                state = await page.text_content(f'#feeds tr[data-feed="{market}"] td:nth-child(2)')
                assert state == "ok", market
            snapshot = await (await page.request.get(desk.monitor.url + "api/snapshot")).text()
            assert KEY.key not in snapshot and KEY.secret not in snapshot
            assert KEY.secret not in await page.content()

            # fills appear: every fill the OMS booked (the first comes a few seconds in)
            await until(lambda: desk.fills.trade_ids, "a fill", seconds=90)
            start = time.perf_counter()
            for trade_id in list(desk.fills.trade_ids):
                await page.wait_for_selector(f'#fills tr[data-trade-id="{trade_id}"]',
                                             timeout=5000)
            print(f"fills shown {time.perf_counter() - start:.3f} s after the OMS booked "
                  "the first one or more")

            # a wrong token is refused by the kill switch; nothing is cancelled
            await page.click("#kill")
            await page.fill("#kill-token", "wrong-token-0123456789")
            await page.click("#kill-confirm")
            await page.wait_for_selector("#kill-result[data-state=error]")
            assert "wrong token" in await page.text_content("#kill-result")
            assert not desk.oms.kill_switch.tripped

            # the kill switch, with the token: every order cancelled, entry refused
            await until(lambda: desk.alive(), "open orders to cancel")
            await page.click("#kill")
            assert await page.is_visible("#kill-dialog")
            await page.fill("#kill-token", desk.monitor.config.token)
            await page.click("#kill-confirm")
            await page.wait_for_selector("#kill-result[data-state=ok]")
            assert "cancels sent" in await page.text_content("#kill-result")
            assert desk.oms.kill_switch.tripped
            await until(lambda: not desk.alive() and not desk.resting(),
                        "no order left, in the mirror and at the venue")
            await page.wait_for_selector("#kill-state[data-tripped=true]")
            # (a selector wait: wait_for_function's polling evaluates a string, which the
            # page's Content-Security-Policy refuses)
            await page.wait_for_selector("#orders tbody tr", state="detached")
            await page.screenshot(path=str(tmp_path / "after-kill.png"))
            assert not errors, errors

    asyncio.run(body())


def test_off_localhost_every_request_needs_the_token(page_archive, chromium, monkeypatch,
                                                      tmp_path):
    """A page bound elsewhere than 127.0.0.1 (here 127.0.0.2) refuses the page, its files,
    the snapshot and the websocket without the right token; with it, the page works."""
    async def body() -> None:
        async with quoting(page_archive, monkeypatch, tmp_path, speed=4,
                           host="127.0.0.2", token=TOKEN) as desk, \
                browser(chromium) as context:
            url = desk.monitor.url
            assert url.startswith("http://127.0.0.2:")
            page = await context.new_page()
            for path in ("", "static/page.js", "api/snapshot", f"?token={TOKEN[:-1]}x"):
                response = await page.goto(url + path)
                assert response is not None and response.status == 401, path
            refused = await page.evaluate("""url => new Promise(done => {
                const ws = new WebSocket(url);
                ws.onopen = () => done('open'); ws.onerror = () => done('refused');
            })""", url.replace("http", "ws") + "ws?token=wrong-token-0123456789")
            assert refused == "refused"

            response = await page.goto(f"{url}?token={TOKEN}")
            assert response is not None and response.status == 200
            assert "token" not in page.url  # taken off the address bar
            await page.wait_for_selector("#conn[data-state=open]")
            await page.wait_for_selector('#markets tr[data-market="binance/BTCUSDT"]')
            await page.reload()  # the cookie carries the token from now on
            await page.wait_for_selector('#markets tr[data-market="binance/BTCUSDT"]')

    asyncio.run(body())
