"""The archive-driven market: one :class:`Market` per archived instrument (its full book,
position in the stream and recent history) and the :class:`MarketClock` that plays the
archive's events into them at the chosen speed.

Rules of the clock:

- Events (book messages and trades of every served instrument) are played in the
  archive's ``local_ts`` order, one UTC hour loaded at a time.
- ``speed > 0``: an event is played when ``speed`` times the wall time elapsed since the
  first event reaches its ``local_ts`` distance from the first event. A subscriber whose
  backlog exceeds :data:`~makerlab.paper.session.MAX_BACKLOG` is disconnected as too slow.
- ``speed == 0``: as fast as the clients read: the clock waits while no websocket holds
  a subscription, and while any subscriber's backlog is above the high-water mark (what
  the operating system buffers on the way comes on top of that backlog).
- Before serving, each book is opened: a ``book_delta`` stream that starts in range with
  its snapshot message applies it at once; one that starts mid-way replays silently from
  the latest earlier hour with a snapshot. Deltas on a book that was never opened are
  skipped.
- A market applies a message first, then tells its listeners (the venue protocols), so
  a REST snapshot taken at any moment matches the last message handed to the streams.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections import deque
from collections.abc import Callable
from dataclasses import replace
from typing import Protocol

from makerlab.paper.book import Book, Undo
from makerlab.paper.instruments import Instrument
from makerlab.paper.session import Hub
from makerlab.paper.source import (
    BookMessage,
    Dataset,
    HourEvents,
    TradePrint,
    load_hour,
    snapshot_hours,
)
from makerlab.units import NS_PER_S

__all__ = ["HISTORY", "Market", "MarketClock", "MarketListener"]

log = logging.getLogger(__name__)

HISTORY = 16
"""Book messages a market can undo (the deepest stale snapshot it can serve)."""

Key = tuple[str, str]
_YIELD_EVERY = 64  # events played between two turns of the event loop at speed 0


def _nothing() -> None:
    """No trading side to tell."""


class MarketListener(Protocol):
    """What a venue protocol implements to hear a market's events."""

    def on_book(self, market: Market, message: BookMessage) -> None: ...

    def on_trade(self, market: Market, trade: TradePrint) -> None: ...

    def on_end(self, market: Market) -> None:
        """The replay is over: send whatever a throttled stream still holds."""


class Market:
    """One archived instrument: full book, last message, undo history, listeners.

    ``price_places``/``size_places``: the decimals that write every archived number
    exactly (venues write at least that many). ``derive``: the archive holds book states
    (``book_snapshot``), so every state after the first is handed on as the level changes
    from the previous one.
    """

    def __init__(self, instrument: Instrument, *, derive: bool) -> None:
        self.spec = instrument.spec
        self.price_places = instrument.price_places
        self.size_places = instrument.size_places
        self.book = Book()
        self.derive = derive
        self.ready = False
        self.last: BookMessage | None = None
        self.messages = 0
        self.listeners: list[MarketListener] = []
        self._history: deque[tuple[BookMessage, Undo]] = deque(maxlen=HISTORY)

    @property
    def exchange(self) -> str:
        return self.spec.exchange

    @property
    def symbol(self) -> str:
        return self.spec.symbol

    def apply(self, message: BookMessage) -> None:
        """Apply one book message and hand it to the listeners (skipped until the first
        snapshot opened the book).

        Missing ids are filled in from the previous message: ``seq`` = previous + 1 (so
        book states are numbered 1, 2, 3, ...), ``first_seq`` = previous + 1 and
        ``prev_seq`` = previous.
        """
        message = _fill_ids(message, self.last.seq if self.last else 0)
        if message.is_snapshot:
            changes, undo = self.book.replace(message.changes)
            if self.derive and self.ready:
                message = replace(message, changes=changes, is_snapshot=False)
        elif not self.ready:
            return
        else:
            undo = self.book.apply(message.changes)
        self.ready = True
        self.last = message
        self.messages += 1
        self._history.append((message, undo))
        for listener in self.listeners:
            listener.on_book(self, message)

    def trade(self, trade: TradePrint) -> None:
        for listener in self.listeners:
            listener.on_trade(self, trade)

    def end(self) -> None:
        for listener in self.listeners:
            listener.on_end(self)

    def past(self, back: int) -> tuple[Book, BookMessage | None]:
        """The book ``back`` messages ago (capped by :data:`HISTORY`) and its message."""
        back = max(0, min(back, len(self._history) - 1))
        if back == 0:
            return self.book, self.last
        book = self.book.copy()
        for _, undo in list(self._history)[-back:][::-1]:
            book.revert(undo)
        return book, self._history[-1 - back][0]


def _fill_ids(message: BookMessage, previous: int) -> BookMessage:
    if min(message.seq, message.first_seq, message.prev_seq) >= 0:
        return message
    seq = message.seq if message.seq >= 0 else previous + 1
    first = message.first_seq if message.first_seq >= 0 else previous + 1
    prev = message.prev_seq if message.prev_seq >= 0 else previous
    return replace(message, seq=seq, first_seq=first, prev_seq=prev)


class MarketClock:
    """Plays the archive's events of ``hours`` into ``markets`` (see the module rules)."""

    def __init__(self, root: str | os.PathLike, datasets: list[Dataset],
                 markets: dict[Key, Market], hours: list[int], hub: Hub, speed: float) -> None:
        if speed < 0:
            raise ValueError(f"speed must be >= 0, got {speed}")
        self._root = root
        self._datasets = datasets
        self._markets = markets
        self._hours = hours
        self._hub = hub
        self.speed = speed
        self._opened: HourEvents | None = None
        self._anchor: tuple[int, float] | None = None  # (first local_ts, wall time)
        self._last = (0, 0)  # (exchange_ts, local_ts) of the last event
        self._played = 0
        self.done = asyncio.Event()
        self.after_play: Callable[[], None] = _nothing  # the trading side looks

    # -- opening

    def open(self, *, lockstep: bool = False) -> None:
        """Open every book before serving (blocking: reads the archive). In lockstep a
        book opening with a snapshot in the range opens when that snapshot plays."""
        first = self._hours[0]
        self._opened = load_hour(self._root, self._datasets, first)
        for d in self._datasets:
            key = (d.exchange, d.symbol)
            if lockstep and self._opened.opens_in_range(key):
                continue
            message = self._opened.opening_snapshot(key)
            if message is None and d.book_kind is not None:
                self._warm_up(d, first)
            elif message is not None:
                self._markets[key].apply(message)
                self._last = max(self._last, (message.exchange_ts, message.local_ts))

    def _warm_up(self, dataset: Dataset, first: int) -> None:
        hours = snapshot_hours(self._root, dataset, first)
        market = self._markets[(dataset.exchange, dataset.symbol)]
        for hour in hours:
            for _, event in load_hour(self._root, [dataset], hour, trades=False):
                assert isinstance(event, BookMessage)
                market.apply(event)
        log.info("%s/%s: book opened from %d earlier hour(s)", dataset.exchange,
                 dataset.symbol, len(hours))

    # -- time

    def exchange_ns(self) -> int:
        """The market's current exchange time: the last event's, moved on by the wall
        clock when paced."""
        exchange_ts, local_ts = self._last
        if self._anchor is None or self.speed == 0:
            return exchange_ts
        return exchange_ts + max(0, self._local_now() - local_ts)

    def _local_now(self) -> int:
        assert self._anchor is not None
        first, wall = self._anchor
        return first + int((time.monotonic() - wall) * self.speed * NS_PER_S)

    # -- playing

    @property
    def hours(self) -> list[int]:
        return list(self._hours)

    @property
    def datasets(self) -> list[Dataset]:
        return list(self._datasets)

    async def load(self, hour: int) -> HourEvents:
        """The events of epoch ``hour`` (the first hour's as opened)."""
        if self._opened is not None and hour == self._hours[0]:
            events, self._opened = self._opened, None
            return events
        return await asyncio.to_thread(load_hour, self._root, self._datasets, hour)

    async def run(self) -> None:
        """Play every event of the range, then set :attr:`done`."""
        for hour in self._hours:
            for key, event in await self.load(hour):
                await self._pace(event.local_ts)
                self.play(key, event)
                self.after_play()
        self.finish()

    def play(self, key: Key, event: BookMessage | TradePrint) -> None:
        """Hand one event to its market (and the market to its listeners)."""
        self._last = (event.exchange_ts, event.local_ts)
        if isinstance(event, BookMessage):
            self._markets[key].apply(event)
        else:
            self._markets[key].trade(event)

    def finish(self) -> None:
        """The range is played: throttled streams send what they hold; :attr:`done`."""
        for market in self._markets.values():
            market.end()
        self.done.set()
        self.after_play()
        log.info("replay finished at exchange time %d ns", self._last[0])

    async def _pace(self, local_ts: int) -> None:
        if self.speed == 0:
            self._played += 1
            if self._played % _YIELD_EVERY == 0:
                await asyncio.sleep(0)  # let REST requests in
            await self._hub.wait_readers()
            return
        if self._anchor is None:
            self._anchor = (local_ts, time.monotonic())
        self._hub.drop_slow()
        ahead = (local_ts - self._local_now()) / NS_PER_S / self.speed
        if ahead > 0.001:
            await asyncio.sleep(ahead)
