"""The market side of the paper exchange: the book, the clock's pacing and hour-by-hour
loading, opening a book that started earlier, and a clean shutdown."""

from __future__ import annotations

import asyncio
import time

import aiohttp
import pyarrow as pa
import pytest
from hypothesis import given
from hypothesis import strategies as st
from paper_oracles import run

from makerlab.data.archive import write_table
from makerlab.data.schema import FLAG_SNAPSHOT, schema_for
from makerlab.paper import PaperExchange, market
from makerlab.paper.book import ASK, BID, Book
from makerlab.paper.market import Market
from makerlab.paper.source import BookMessage

HOUR = 3_600_000_000_000
T0 = 1_704_067_200_000_000_000  # 2024-01-01 00:00 UTC
SECOND = 1_000_000_000

# --------------------------------------------------------------------------- the book

levels = st.lists(st.tuples(st.sampled_from([BID, ASK]), st.integers(1, 30).map(float),
                            st.sampled_from([0.0, 1.0, 2.5])), max_size=12)


def naive(messages: list[list[tuple[int, float, float]]]) -> tuple[list, list]:
    sides: dict[int, dict[float, float]] = {BID: {}, ASK: {}}
    for message in messages:
        for side, price, size in message:
            if size:
                sides[side][price] = size
            else:
                sides[side].pop(price, None)
    return (sorted(sides[BID].items(), reverse=True), sorted(sides[ASK].items()))


@given(st.lists(levels, max_size=8))
def test_book_is_a_sorted_price_map(messages):
    book = Book()
    for message in messages:
        book.apply(message)
    assert book.top(None) == naive(messages)
    assert book.top(3) == tuple(side[:3] for side in naive(messages))


@given(st.lists(levels, max_size=8), levels)
def test_replacing_gives_the_changes_between_the_books(messages, new):
    book = Book()
    for message in messages:
        book.apply(message)
    before = book.copy()
    target = naive([[(s, p, z) for s, p, z in new if z]])
    changes, undo = book.replace([(s, p, z) for s, p, z in new if z])
    assert book.top(None) == target
    before_changed = before.copy()
    before_changed.apply(changes)
    assert before_changed.top(None) == target
    book.revert(undo)
    assert book.top(None) == before.top(None)


@given(st.lists(levels, min_size=1, max_size=20), st.integers(0, 25))
def test_a_market_serves_the_book_of_a_few_messages_ago(messages, back):
    from makerlab.core.instruments import load_specs
    from makerlab.paper.instruments import Instrument

    spec = load_specs()[("binance", "BTCUSDT")]
    m = Market(Instrument(spec, 2, 3), derive=False)
    states = []
    for i, changes in enumerate([[(BID, 1.0, 1.0)], *messages]):
        m.apply(BookMessage(i, i, i + 1, i + 1, i, changes, is_snapshot=i == 0))
        states.append(m.book.top(None))
    book, message = m.past(back)
    depth = min(back, market.HISTORY - 1, len(states) - 1)
    assert book.top(None) == states[-1 - depth]
    assert message is not None and message.seq == len(states) - depth


# --------------------------------------------------------------------------- archives


def _deltas(rows: list[tuple[int, int, int, float, float, int]]) -> pa.Table:
    """``(exchange_ts, seq, side, price, size, flags)`` rows; ``prev_seq`` = seq - 1."""
    columns = list(zip(*rows, strict=True))
    return pa.table({
        "exchange_ts": columns[0], "local_ts": columns[0], "seq": columns[1],
        "first_seq": columns[1], "prev_seq": [s - 1 for s in columns[1]],
        "side": pa.array(columns[2], pa.int8()), "price": columns[3], "size": columns[4],
        "flags": pa.array(columns[5], pa.uint8())}, schema=schema_for("book_delta"))


def _trades(stamps: list[int]) -> pa.Table:
    return pa.table({"exchange_ts": stamps, "local_ts": stamps,
                     "price": [100.0 + i for i in range(len(stamps))],
                     "size": [1.0] * len(stamps), "side": pa.array([1] * len(stamps), pa.int8()),
                     "trade_id": [str(i) for i in range(len(stamps))]},
                    schema=schema_for("trades"))


@pytest.fixture
def three_hours(tmp_path):
    """TESTUSDT: a snapshot in hour 0, one delta per hour after, one trade per hour."""
    rows = [(T0 + SECOND, 10, BID, 99.0, 1.0, FLAG_SNAPSHOT),
            (T0 + SECOND, 10, ASK, 101.0, 1.0, FLAG_SNAPSHOT),
            (T0 + HOUR + SECOND, 11, BID, 99.5, 2.0, 0),
            (T0 + 2 * HOUR + SECOND, 12, ASK, 100.5, 3.0, 0)]
    write_table(tmp_path, "book_delta", "binance", "TESTUSDT", _deltas(rows))
    write_table(tmp_path, "trades", "binance", "TESTUSDT",
                _trades([T0 + h * HOUR + 2 * SECOND for h in range(3)]))
    return tmp_path


async def _depth(paper: PaperExchange) -> dict:
    async with aiohttp.ClientSession() as http, http.get(
            paper.urls["binance"]["rest"] + "/fapi/v1/depth",
            params={"symbol": "TESTUSDT"}) as reply:
        return await reply.json()


async def _subscribe(paper: PaperExchange, http: aiohttp.ClientSession
                     ) -> aiohttp.ClientWebSocketResponse:
    ws = await http.ws_connect(paper.urls["binance"]["ws"] + "/public/ws/testusdt@trade")
    return ws


def test_a_book_that_opened_before_the_range_is_replayed_silently(three_hours):
    async def body():
        async with PaperExchange(three_hours, "2024-01-01:01", "2024-01-01:02",
                                 speed=0) as paper:
            return await _depth(paper)

    depth = run(body)
    assert depth["lastUpdateId"] == 10  # hour 0's snapshot, replayed before serving hour 1
    assert (depth["bids"], depth["asks"]) == ([["99.0", "1"]], [["101.0", "1"]])  # inferred



def test_the_clock_loads_one_hour_at_a_time(three_hours, monkeypatch):
    loaded: list[int] = []
    load = market.load_hour

    def spy(root, datasets, hour, **kw):
        loaded.append(hour)
        return load(root, datasets, hour, **kw)

    monkeypatch.setattr(market, "load_hour", spy)

    async def body():
        async with PaperExchange(three_hours, "2024-01-01:00", "2024-01-01:02",
                                 speed=0) as paper, aiohttp.ClientSession() as http:
            opened = list(loaded)
            ws = await _subscribe(paper, http)
            prices = [(await ws.receive_json(timeout=10))["p"] for _ in range(3)]
            await ws.close()
            return opened, prices

    opened, prices = run(body)
    first = T0 // HOUR
    assert opened == [first]  # opening the books reads the first hour only
    assert loaded == [first, first + 1, first + 2]
    assert prices == ["100", "101", "102"]  # tick inferred from hour 0: 1


def test_speed_zero_waits_for_a_subscriber_and_speed_paces_the_replay(three_hours):
    async def waits():
        async with PaperExchange(three_hours, "2024-01-01:00", "2024-01-01:00",
                                 speed=0) as paper:
            await asyncio.sleep(0.3)
            return paper.replay_done.is_set()

    assert run(waits) is False

    def write(tmp):
        stamps = [T0 + i * SECOND // 5 for i in range(11)]  # 2 s of trades
        write_table(tmp, "trades", "binance", "TESTUSDT", _trades(stamps))

    async def paced(root, speed):
        async with PaperExchange(root, "2024-01-01:00", "2024-01-01:00",
                                 speed=speed) as paper:
            began = time.monotonic()
            await asyncio.wait_for(paper.wait(), 30)
            return time.monotonic() - began

    root = three_hours / "paced"
    write(root)
    assert run(lambda: paced(root, 10.0)) >= 0.19  # 2 s of archive at 10x


def test_closing_leaves_no_task_and_closes_the_clients(three_hours):
    async def body():
        async with aiohttp.ClientSession() as http:
            async with PaperExchange(three_hours, "2024-01-01:00", "2024-01-01:02",
                                     speed=0) as paper:
                ws = await _subscribe(paper, http)
                await ws.receive(timeout=10)
                url = paper.urls["binance"]["rest"] + "/fapi/v1/ping"
            closed = await ws.receive(timeout=10)
            others = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            with pytest.raises(aiohttp.ClientConnectionError):
                await http.get(url)
            return closed.type, others

    kind, others = run(body)
    assert kind in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED)
    assert others == []


def test_hyperliquid_sends_one_snapshot_per_millisecond(tmp_path):
    us = 1_000
    rows = [(T0 + SECOND, 1, BID, 99.0, 1.0, FLAG_SNAPSHOT),
            (T0 + SECOND, 1, ASK, 101.0, 1.0, FLAG_SNAPSHOT),
            (T0 + 2 * SECOND + 100 * us, 2, BID, 99.0, 2.0, 0),
            (T0 + 2 * SECOND + 200 * us, 3, BID, 99.0, 3.0, 0),  # the same millisecond
            (T0 + 3 * SECOND, 4, ASK, 101.0, 4.0, 0)]
    write_table(tmp_path, "book_delta", "hyperliquid", "TEST", _deltas(rows))

    async def body():
        async with PaperExchange(tmp_path, "2024-01-01:00", "2024-01-01:00",
                                 speed=0) as paper, aiohttp.ClientSession() as http:
            ws = await http.ws_connect(paper.urls["hyperliquid"]["ws"] + "/ws")
            await ws.send_json({"method": "subscribe",
                                "subscription": {"type": "l2Book", "coin": "TEST"}})
            replies = [await ws.receive_json(timeout=10) for _ in range(4)]
            await ws.close()
            return [r["data"] for r in replies[1:]]

    books = run(body)
    assert [b["time"] - T0 // 1_000_000 for b in books] == [1000, 2000, 3000]
    assert [(b["levels"][0][0]["sz"], b["levels"][1][0]["sz"]) for b in books] == [
        ("1.0", "1.0"), ("2.0", "1.0"), ("3.0", "4.0")]  # the later state comes next time


def test_a_paced_market_disconnects_a_client_that_does_not_read(btc_archive, monkeypatch,
                                                                 caplog):
    from makerlab.paper import session

    monkeypatch.setattr(session, "HIGH_WATER", 4)
    monkeypatch.setattr(session, "MAX_BACKLOG", 20)

    async def body():
        async with PaperExchange(btc_archive, "2024-08-08:23", "2024-08-09:00",
                                 speed=300) as paper, aiohttp.ClientSession() as http:
            ws = await http.ws_connect(paper.urls["binance"]["ws"] +
                                       "/public/ws/btcusdt@depth@0ms", max_msg_size=0)
            await paper.replay_done.wait()  # 6 minutes at 300x, not reading
            while (message := await ws.receive(timeout=10)).type == aiohttp.WSMsgType.TEXT:
                pass
            return message.type, ws.close_code

    kind, code = run(body)
    assert "disconnecting a slow client" in caplog.text
    # a close frame, or a dropped socket when the client does not answer it in time
    assert kind in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.ERROR)
    assert code in (aiohttp.WSCloseCode.POLICY_VIOLATION, aiohttp.WSCloseCode.ABNORMAL_CLOSURE)
