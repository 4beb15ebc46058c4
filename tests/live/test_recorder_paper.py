"""The round trip: the bundled archive served by the paper exchange over real venue
protocols, recorded by the recorder, equals the source archive.

The paper exchange (``makerlab.paper``, speed 0) replays ``data/archive``'s Binance USD-M
BTCUSDT over the Binance USD-M, Bybit and Hyperliquid protocols, one exchange per
protocol so that each waits for its recorder's subscription (nothing is played before
it). One Recorder records all three through one Gateway, exactly as ``makerlab record``
would. Then, per protocol:

- every recorded ``book_snapshot`` row is a source row, in order: same ``exchange_ts``
  and the same top-20 levels (and the same ``seq`` where the venue carries the archive's
  ids: Binance); the venues merge messages (Binance ``@depth@100ms``, Bybit's push
  interval, Hyperliquid's one snapshot per millisecond), so the recorded rows are a
  subsequence of the source's; the last recorded book is the source's last book;
- the recorded deltas replay (``book_builder``) to exactly the recorded snapshots;
- the recorded trades are the source's, every one (Binance USD-M, Bybit, Hyperliquid);
- the recorded archive passes ``makerlab validate`` except its clock-offset rule (the
  replay's exchange time is 2024, the receive time now: ``replayed.py``).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
from pathlib import Path

import numpy as np
import orjson
import pyarrow as pa
import pytest

from makerlab.data.archive import read_table, write_table
from makerlab.data.book_builder import materialize
from makerlab.data.validate import validate_archive
from makerlab.live.gateway import Gateway
from makerlab.live.recorder import Recorder
from makerlab.paper import PaperExchange
from makerlab.units import NS_PER_MS

BUNDLED = Path(__file__).resolve().parents[2] / "data" / "archive"
START, END = "2024-08-08:23", "2024-08-09:00"
SOURCE, SYMBOL, DEPTH = "binance", "BTCUSDT", 20
PROTOCOLS = ("binance", "bybit", "hyperliquid")


class Done:
    """Waits until every protocol delivered the source's last trade and last book."""

    def __init__(self, last_trade: str, last_book: bytes) -> None:
        self.last_trade, self.last_book = last_trade, last_book
        self.trades: set[str] = set()
        self.books: dict[str, bytes] = {}
        self.changed = asyncio.Event()

    async def on_book(self, update) -> None:
        top = [update.bids[:DEPTH], update.asks[:DEPTH]]
        self.books[update.exchange] = orjson.dumps(
            [side[:, i].tolist() for side in top for i in (0, 1)])
        self.changed.set()

    async def on_trade(self, trade) -> None:
        if trade.trade_id == self.last_trade:
            self.trades.add(trade.exchange)
            self.changed.set()

    async def on_status(self, status) -> None:
        pass

    def finished(self, exchange: str) -> bool:
        return exchange in self.trades and self.books.get(exchange) == self.last_book

    async def wait(self, exchanges) -> None:
        while not all(self.finished(e) for e in exchanges):
            self.changed.clear()
            await self.changed.wait()


def _source(kind: str, **kwargs) -> pa.Table:
    return read_table(BUNDLED, kind, SOURCE, SYMBOL, START, END, **kwargs)


@pytest.fixture(scope="module")
def source_archive(tmp_path_factory) -> Path:
    """The bundled archive's USD-M BTCUSDT, as it is (ETHUSDT left out: half the replay)."""
    source = tmp_path_factory.mktemp("source")
    for kind, depth in (("book_delta", None), ("book_snapshot", DEPTH), ("trades", None)):
        write_table(source, kind, SOURCE, SYMBOL, _source(kind, depth=depth))
    return source


@pytest.fixture(scope="module")
def recorded(tmp_path_factory, source_archive) -> Path:
    out = tmp_path_factory.mktemp("recorded")
    last_trade = _source("trades").column("trade_id")[-1].as_py()
    last_book = _rows(_source("book_snapshot", depth=DEPTH), trim=True)[-1]

    async def main() -> None:
        async with contextlib.AsyncExitStack() as stack:
            papers = {p: await stack.enter_async_context(PaperExchange(
                source_archive, START, END, speed=0, serve={p: SOURCE})) for p in PROTOCOLS}
            config = {p: {"env": "paper", "base_url": papers[p].urls[p]["rest"]}
                      for p in PROTOCOLS}
            gateway = await stack.enter_async_context(Gateway(config, spec_cache=out / "specs"))
            done = Done(last_trade, last_book)
            gateway.market_data().attach(done)
            markets = [(p, SYMBOL) for p in PROTOCOLS]
            async with Recorder(gateway, markets, DEPTH, out / "archive"):
                await done.wait(PROTOCOLS)

    asyncio.run(asyncio.wait_for(main(), 120))
    return out / "archive"


def _rows(table: pa.Table, *, trim: bool = False) -> list[bytes]:
    """Each row's levels (bid prices, bid sizes, ask prices, ask sizes) as comparable
    bytes; ``trim`` drops the NaN padding (as a live book has none)."""
    cols = table.to_pydict()
    names = ("bid_price", "bid_size", "ask_price", "ask_size")
    return [orjson.dumps([[x for x in cols[c][i] if not trim or x == x] for c in names])
            for i in range(table.num_rows)]


def test_the_recorded_archive_is_sound(recorded):
    assert validate_archive(recorded).ok


def _assert_source_rows(mine: pa.Table, *, ids: bool) -> list[bytes]:
    """Every row of ``mine`` is a source book row, in order: same exchange_ts and levels
    (and ``seq`` when ``ids``). Returns the rows."""
    source = _source("book_snapshot", depth=DEPTH)
    src_ts = source.column("exchange_ts").to_numpy()
    src_rows, my_rows = _rows(source), _rows(mine)
    at = 0
    for ts, row in zip(mine.column("exchange_ts").to_numpy(), my_rows, strict=True):
        while at < len(src_ts) and not (src_ts[at] == ts and src_rows[at] == row):
            at += 1
        assert at < len(src_ts), f"recorded row at {ts} is not a source row"
    if ids:
        src_seq = dict(zip(source.column("seq").to_pylist(), src_rows, strict=True))
        assert all(src_seq[s] == r for s, r in zip(mine.column("seq").to_pylist(), my_rows,
                                                    strict=True))
    return my_rows


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_recorded_books_are_the_source_books_row_for_row(recorded, protocol):
    mine = read_table(recorded, "book_snapshot", protocol, SYMBOL, depth=DEPTH)
    rows = _assert_source_rows(mine, ids=protocol == "binance")
    assert len(rows) > 1000
    assert rows[-1] == _rows(_source("book_snapshot", depth=DEPTH))[-1]


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_recorded_deltas_replay_to_the_recorded_books(recorded, protocol):
    deltas = read_table(recorded, "book_delta", protocol, SYMBOL)
    mine = read_table(recorded, "book_snapshot", protocol, SYMBOL, depth=DEPTH)
    rebuilt = materialize(deltas, DEPTH)
    assert orjson.dumps(rebuilt.to_pydict()) == orjson.dumps(mine.to_pydict())


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_recorded_trades_are_the_source_trades(recorded, protocol):
    source = _source("trades").to_pydict()
    mine = read_table(recorded, "trades", protocol, SYMBOL).to_pydict()
    for column in ("exchange_ts", "price", "size", "side", "trade_id"):
        assert mine[column] == source[column], column
    assert np.all(np.diff(mine["local_ts"]) >= 0) and mine["exchange_ts"][0] % NS_PER_MS == 0


def test_makerlab_record_against_the_paper_exchange(source_archive, tmp_path):
    """``makerlab record --base-url`` as a child process for two seconds: what it wrote
    is the start of the source (the replay waits for its subscription)."""
    out = tmp_path / "archive"

    async def main() -> int:
        async with PaperExchange(source_archive, START, END, speed=0) as paper:
            child = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "makerlab.cli", "record", "--exchange", "binance",
                "--symbols", SYMBOL, "--depth", str(DEPTH), "--out", str(out),
                "--base-url", paper.urls["binance"]["rest"], "--env", "paper",
                "--duration", "2", stdout=asyncio.subprocess.PIPE,
                env={**os.environ, "MAKERLAB_SPEC_CACHE": str(tmp_path / "specs")})
            stdout, _ = await child.communicate()
            assert b"committed" in stdout
            return child.returncode

    assert asyncio.run(asyncio.wait_for(main(), 60)) == 0
    assert validate_archive(out).ok
    mine = read_table(out, "book_snapshot", "binance", SYMBOL, depth=DEPTH)
    assert len(_assert_source_rows(mine, ids=True)) > 10
    trades = read_table(out, "trades", "binance", SYMBOL).to_pydict()
    source = _source("trades").slice(0, len(trades["trade_id"])).to_pydict()
    assert trades["trade_id"] and trades["trade_id"] == source["trade_id"]
    assert trades["exchange_ts"] == source["exchange_ts"]
