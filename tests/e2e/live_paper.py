"""makerlab's live path (Gateway, LiveMarketData, VenueStream, Feed) against the paper
exchange, and what the archive says it should have delivered.

:func:`follow` starts one :class:`~makerlab.paper.PaperExchange` at speed 0, one
:class:`~makerlab.live.gateway.Gateway` configured for every protocol asked for (``env:
paper``), and one :class:`~makerlab.trading.feed.Feed` subscribed to each market's depth-20
book and trades, exactly as a strategy would. Every handler call is recorded with the
:class:`~makerlab.core.events.BookUpdate` that caused it, so a delivered book can be
compared with the archive's depth-20 ``book_snapshot`` row of the same update
(:class:`Archived`): by update id where the venue's id is the archive's (Binance ``u``),
else by exchange millisecond (Bybit, Hyperliquid); never earlier than the book before.
"""

from __future__ import annotations

import asyncio
import bisect
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from makerlab.core.events import BookUpdate, FeedStatus, StatusKind, TradeEvent
from makerlab.core.lob import LOB
from makerlab.data.archive import read_table
from makerlab.data.arrays import column_numpy
from makerlab.live.gateway import Gateway
from makerlab.live.transport import ReconnectPolicy
from makerlab.paper import PaperExchange
from makerlab.trading.feed import Feed

BUNDLED = Path(__file__).resolve().parents[2] / "data" / "archive"
START, END = "2024-08-08:23", "2024-08-09:00"  # the bundled archive's two hours
DEPTH = 20
POLICY = ReconnectPolicy(initial_delay=0.01, max_delay=0.05, watchdog=10.0, rest_timeout=10.0)
MARKETS = {"binance": "BTCUSDT", "binance_spot": "BTCUSDT", "bybit": "BTCUSDT",
           "hyperliquid": "BTCUSDT"}
"""Every paper protocol, each following BTCUSDT of the bundled archive."""
SERVE = {"bybit": "binance", "hyperliquid": "binance"}
ARCHIVED_AS = {"binance": "binance", "binance_spot": "binance_spot", "bybit": "binance",
               "hyperliquid": "binance"}
BY_SEQ = frozenset({"binance", "binance_spot"})  # the venue's update id is the archive's seq
Side = tuple[tuple[float, float], ...]
Top = tuple[Side, Side]
Trade = tuple[float, float, float, float]


@dataclass
class Archived:
    """One market's archived depth-20 states (in archive order) and trades."""

    ts_ms: list[int]
    seq: list[int]
    tops: list[Top]
    trades: list[Trade]

    @classmethod
    def read(cls, root: Path, exchange: str, symbol: str, start: str = START,
             end: str = END) -> Archived:
        table = read_table(root, "book_snapshot", exchange, symbol, start, end, depth=DEPTH)
        bp, bs, ap, az = (column_numpy(table.column(c)) for c in
                          ("bid_price", "bid_size", "ask_price", "ask_size"))
        tops = [(_side(bp[i], bs[i]), _side(ap[i], az[i])) for i in range(table.num_rows)]
        trades = read_table(root, "trades", exchange, symbol, start, end)
        rows = np.column_stack([trades.column("exchange_ts").to_numpy() // 1_000_000,
                                trades.column("price").to_numpy(),
                                trades.column("size").to_numpy(),
                                trades.column("side").to_numpy()]).tolist()
        return cls((table.column("exchange_ts").to_numpy() // 1_000_000).tolist(),
                   table.column("seq").to_numpy().tolist(), tops, [tuple(r) for r in rows])

    def index_of_seq(self, seq: int) -> int | None:
        i = bisect.bisect_left(self.seq, seq)
        return i if i < len(self.seq) and self.seq[i] == seq else None

    def describe(self, top: Top) -> str:
        """Where else ``top`` appears in the archive."""
        found = [i for i, t in enumerate(self.tops) if t == top][:5]
        return f"the archive has this book at {[(i, self.ts_ms[i]) for i in found]}"

    def index_at_ms(self, ts_ms: int, top: Top) -> int | None:
        """The last state stamped ``ts_ms`` that is ``top``."""
        lo, hi = bisect.bisect_left(self.ts_ms, ts_ms), bisect.bisect_right(self.ts_ms, ts_ms)
        return next((i for i in range(hi - 1, lo - 1, -1) if self.tops[i] == top), None)


def _side(prices: np.ndarray, sizes: np.ndarray) -> Side:
    return tuple((p, z) for p, z in zip(prices.tolist(), sizes.tolist(), strict=True) if p == p)


def lob_top(lob: LOB) -> Top:
    return (tuple(map(tuple, lob.get_bids().tolist())),
            tuple(map(tuple, lob.get_asks().tolist())))


@dataclass(repr=False)
class Book:
    """One handler call: the LOB's time (ms) and top, the update that made it, and how
    many statuses the market had seen before it."""

    ts_ms: int
    top: Top
    seq: int
    is_snapshot: bool
    after: int

    def __repr__(self) -> str:
        kind = "snapshot" if self.is_snapshot else "delta"
        return f"{kind} seq {self.seq} at {self.ts_ms} ms after status {self.after}, " \
            f"best {self.top[0][:1]} / {self.top[1][:1]}"


@dataclass
class Seen:
    """What one exchange id delivered to the strategy."""

    books: list[Book] = field(default_factory=list)
    trades: list[Trade] = field(default_factory=list)
    statuses: list[FeedStatus] = field(default_factory=list)
    last_update: BookUpdate | None = None
    last_event: float = field(default_factory=time.monotonic)

    def count(self, kind: StatusKind) -> int:
        return sum(1 for s in self.statuses if s.kind is kind)


class Tap:
    """A listener attached before the Feed: it sees each event just before the Feed does."""

    def __init__(self, seen: Mapping[str, Seen]) -> None:
        self.seen = seen

    async def on_book(self, update: BookUpdate) -> None:
        self.seen[update.exchange].last_update = update

    async def on_trade(self, trade: TradeEvent) -> None:
        self.seen[trade.exchange].last_event = time.monotonic()

    async def on_status(self, status: FeedStatus) -> None:
        seen = self.seen[status.exchange]
        seen.statuses.append(status)
        seen.last_event = time.monotonic()


@dataclass
class Run:
    """Everything a :func:`follow` saw, and the paper exchange's fault counts."""

    seen: dict[str, Seen]
    faults: dict[str, int]


async def _subscribe(feed: Feed, exchange: str, symbol: str, seen: Seen) -> None:
    def on_book(lob: LOB) -> None:
        update = seen.last_update
        assert update is not None and update.symbol == symbol
        seen.books.append(Book(lob.timestamp, lob_top(lob), update.seq,
                               update.delta.is_snapshot, len(seen.statuses)))
        seen.last_event = time.monotonic()

    await feed.add_l2_book_feed(exc=exchange, ticker=symbol, depth=DEPTH, handler=on_book)
    await feed.add_trades_feed(exc=exchange, ticker=symbol, handler=seen.trades.append)


async def follow(root: Path, markets: Mapping[str, str], *, serve: Mapping[str, str],
                 faults: str | None = None, spec_cache: Path, quiet: float = 1.0,
                 timeout: float = 240.0, start: str = START, end: str = END) -> Run:
    """Follow ``{protocol: symbol}`` through makerlab's live Feed until the replay is over
    and no protocol has delivered anything for ``quiet`` seconds."""
    seen = {protocol: Seen() for protocol in markets}
    async with PaperExchange(root, start, end, speed=0, faults=faults, serve=serve) as paper:
        config = {p: {"env": "paper", "base_url": paper.urls[p]["rest"]} for p in markets}
        async with Gateway(config, spec_cache=spec_cache, policy=POLICY) as gateway:
            gateway.market_data().attach(Tap(seen))
            feed = Feed(gateway=gateway)
            for protocol, symbol in markets.items():
                await _subscribe(feed, protocol, symbol, seen[protocol])
            await asyncio.wait_for(_until_quiet(paper, seen, quiet), timeout)
        return Run(seen, paper.fault_counts)


async def _until_quiet(paper: PaperExchange, seen: Mapping[str, Seen], quiet: float) -> None:
    await paper.replay_done.wait()
    while time.monotonic() - max(s.last_event for s in seen.values()) < quiet:
        await asyncio.sleep(quiet / 4)


@dataclass
class Matched:
    """Delivered books against the archive: the archive index of each book that is the
    archived state of its update, and a description of (up to 10) that are not."""

    indices: list[int] = field(default_factory=list)
    wrong: list[str] = field(default_factory=list)

    def parts(self, archived: Archived, n: int) -> set[int]:
        """Which of ``n`` equal parts of the archive's states the delivered books fall in."""
        return {i * n // len(archived.tops) for i in self.indices}


def match_books(seen: Seen, archived: Archived, *, by_seq: bool) -> Matched:
    """Match every delivered book with the archive: it must be the archived state of its
    update (``by_seq``: the update id is the archive's ``seq``; else a state of its
    exchange millisecond), with the archived time, and never earlier than the book
    delivered before it."""
    matched, shown = Matched(), 0
    for n, book in enumerate(seen.books):
        i = archived.index_of_seq(book.seq) if by_seq else \
            archived.index_at_ms(book.ts_ms, book.top)
        if i is not None and archived.tops[i] == book.top and \
                archived.ts_ms[i] == book.ts_ms >= shown:
            matched.indices.append(i)
            shown = book.ts_ms
        elif len(matched.wrong) < 10:
            matched.wrong.append(f"book {n} ({book}) after a book of {shown} ms: "
                                 f"{archived.describe(book.top)}")
    return matched



