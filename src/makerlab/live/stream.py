"""One venue's market-data socket: subscriptions, book sync, resync, event delivery.

A :class:`VenueStream` is the same code for every venue: it asks the venue module what
to subscribe and how to read frames, checks every book message with a
:class:`~makerlab.live.book.BookSync`, and hands typed events to its listener. Rules:

- **one socket per venue** carries every market subscribed on it; a subscription made
  while connected is sent at once, and every subscription is sent again after a reconnect.
- **a book is delivered only while it is known correct**: on a gap (or a crossed book, or
  a lost connection) the market gets ``FeedStatus(GAP)`` and no book until it is resynced
  by the venue's :class:`~makerlab.live.venues.base.Resync` mode; then ``FeedStatus(RESYNC)``
  and a snapshot ``BookUpdate`` (``delta.is_snapshot``) before anything else.
- **a lost snapshot is asked for again**: a snapshot the socket should send (after a
  resubscription or a socket request) that has not come after :data:`SNAPSHOT_PATIENCE`
  deltas of the market was lost; the stream resyncs again. A REST snapshot fetch that
  ends without a snapshot (the connection dropped, even before the fetch started) is
  started again by the next sync.
- **each BookUpdate carries the top ``depth`` levels** (the deepest depth subscribed for
  the market) and the message that produced it.
- **a delivered book never goes back in time**: a snapshot without a venue time
  (:data:`~makerlab.live.venues.base.NO_TIME`), or older than the last book delivered
  for the market (a lagging REST snapshot after a resync), is held and delivered with
  the first message applied on it that brings the book up to that time, as a snapshot
  at that message's id and time.
- **a trade is delivered once**: a trade whose id is among the market's last
  :data:`RECENT_TRADES` delivered is a repeat and skipped (Hyperliquid has sent trades
  twice; a resubscription can replay recent ones).
- **a frame that cannot be read** is logged and reported as ``FeedStatus(ERROR)``; it does
  not drop the connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, cast

import aiohttp
import msgspec
import numpy as np

from makerlab.core.clock import Clock, WallClock
from makerlab.core.events import BookDelta, BookUpdate, FeedStatus, StatusKind, TradeEvent
from makerlab.errors import CrossedBook, SequenceGap, VenueError
from makerlab.live.book import BookSync
from makerlab.live.transport import Backoff, Link, ReconnectPolicy, RestClient, WsSupervisor
from makerlab.live.venues.base import (
    NO_TIME,
    Reply,
    RestSnapshots,
    Resync,
    SocketSnapshots,
    Venue,
)
from makerlab.trading.protocols import MarketDataListener, MarketKind

if TYPE_CHECKING:
    from makerlab.live.lockstep import Lockstep

__all__ = ["VenueStream"]

log = logging.getLogger(__name__)

SNAPSHOT_PATIENCE = 50
"""Deltas of a market that may arrive, while it waits for a snapshot on the socket,
before the snapshot counts as lost (some were in flight before the request)."""

RECENT_TRADES = 4096
"""Trade ids remembered per market to skip repeated trades."""

_UNREADABLE = (msgspec.DecodeError, msgspec.ValidationError, ValueError, KeyError, TypeError)
_BUFFERING = (Resync.REST_SNAPSHOT, Resync.SOCKET_SNAPSHOT)


class _RecentIds:
    """The last ``size`` ids seen, in arrival order."""

    def __init__(self, size: int) -> None:
        self.size, self._order, self._ids = size, deque[str](), set[str]()

    def repeats(self, trade_id: str) -> bool:
        """True if ``trade_id`` was seen (an empty id never repeats); else remember it."""
        if not trade_id:
            return False
        if trade_id in self._ids:
            return True
        self._ids.add(trade_id)
        self._order.append(trade_id)
        if len(self._order) > self.size:
            self._ids.discard(self._order.popleft())
        return False


@dataclass(eq=False)
class _Market:
    symbol: str
    depth: int = 0
    trades: bool = False
    sync: BookSync | None = None
    book_topics: list[str] = field(default_factory=list)
    gapped: bool = False  # a GAP was reported and no RESYNC yet
    fetch: asyncio.Task[None] | None = None  # the REST snapshot fetch in flight
    waited: int = 0  # deltas seen while waiting for a snapshot sent on the socket
    recent: _RecentIds = field(default_factory=lambda: _RecentIds(RECENT_TRADES))
    held: bool = False  # the whole book is not delivered yet: no time, or behind `shown`
    shown: int = 0  # exchange time of the last book delivered


class VenueStream:
    """Market data of one exchange id over one supervised socket.

    Args:
        venue: the venue's wire translation.
        ws: websocket base URL (venue paths are appended).
        rest: the venue's REST client (snapshots).
        session: the aiohttp session sockets open on.
        listener: receives every event (the :class:`~makerlab.live.market_data.LiveMarketData`).
    """

    def __init__(self, venue: Venue, ws: str, rest: RestClient, session: aiohttp.ClientSession,
                 listener: MarketDataListener, *, policy: ReconnectPolicy,
                 clock: Clock | None = None, lockstep: Lockstep | None = None) -> None:
        self.venue, self.ws, self.rest, self.listener = venue, ws, rest, listener
        self.policy, self.clock = policy, clock or WallClock()
        self.lockstep = lockstep
        self.supervisor = WsSupervisor(session, self, policy, name=venue.exchange,
                                       clock=self.clock, lockstep=lockstep)
        self._markets: dict[str, _Market] = {}
        self._topics: list[str] = []
        self._url_topics: list[str] = []
        self._link: Link | None = None
        self._task: asyncio.Task[None] | None = None

    @property
    def ping_frame(self) -> bytes | None:
        return self.venue.ping_frame

    @property
    def ping_interval(self) -> float:
        return self.venue.ping_interval

    # -- subscriptions ---------------------------------------------------------------------

    async def subscribe(self, kind: MarketKind, symbol: str, depth: int) -> None:
        """Start ``kind`` data of ``symbol``; opens the socket on first use."""
        if self.lockstep is not None:
            self.lockstep.touch()
        market = self._markets.setdefault(symbol, _Market(symbol))
        stale: list[str] = []
        if kind is MarketKind.TRADES:
            new = [] if market.trades else self.venue.topics(kind, symbol, 0)
            market.trades = True
        else:
            new, stale = self._book_topics(market, depth)
        fresh = [t for t in new if t not in self._topics]
        self._topics += fresh
        if self._link is not None and fresh:
            if stale:
                await self._send(self.venue.unsubscribe_frames(stale))
            await self._send(self.venue.subscribe_frames(fresh))
            if kind is MarketKind.L2BOOK:
                await self._start_sync(market)
        self._start()

    def _book_topics(self, market: _Market, depth: int) -> tuple[list[str], list[str]]:
        """(topics to subscribe, topics to drop) for a book of at least ``depth`` levels."""
        market.depth = max(market.depth, depth)
        topics = self.venue.topics(MarketKind.L2BOOK, market.symbol, market.depth)
        if market.sync is None:
            market.sync = BookSync(self.venue.rule, buffer_deltas=self.venue.resync in _BUFFERING)
        if topics == market.book_topics:
            return [], []
        stale = market.book_topics
        self._topics = [t for t in self._topics if t not in stale]
        market.book_topics = topics
        market.sync.invalidate()
        return topics, stale

    def _start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self.supervisor.run(),
                                             name=f"makerlab-{self.venue.exchange}")
            self._task.add_done_callback(_log_failure)

    async def close(self) -> None:
        """Stop the socket and every task it owns."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    @property
    def task(self) -> asyncio.Task[None] | None:
        return self._task

    def full_book(self, symbol: str) -> tuple[np.ndarray, np.ndarray] | None:
        """Every level of ``symbol``'s local book while it is known correct, else None."""
        market = self._markets.get(symbol)
        if market is None or market.sync is None or not market.sync.live:
            return None
        return market.sync.book.top(len(market.sync.book))

    # -- socket callbacks (transport.SocketHandler) ----------------------------------------

    def url(self) -> str:
        self._url_topics = list(self._topics)
        return self.venue.stream_url(self.ws, self._url_topics)

    async def on_open(self, link: Link) -> None:
        self._link = link
        await self._status("", StatusKind.CONNECTED,
                           self.venue.stream_url(self.ws, self._url_topics)[:200])
        late = [t for t in self._topics if t not in self._url_topics]
        await self._send(self.venue.open_frames(self._url_topics))
        if late:
            await self._send(self.venue.subscribe_frames(late))
        for market in self._markets.values():
            if market.sync is not None:
                await self._start_sync(market)

    async def on_frame(self, data: str | bytes, local_ts: int, link: Link) -> None:
        try:
            events = self.venue.parse(data, local_ts)
        except _UNREADABLE as exc:
            log.warning("%s: unreadable frame (%s): %.200r", self.venue.exchange, exc, data)
            await self._status("", StatusKind.ERROR, f"unreadable frame: {exc}")
            return
        for event in events:
            if isinstance(event, BookDelta):
                await self._on_delta(event)
            elif isinstance(event, TradeEvent):
                await self._on_trade(event)
            elif isinstance(event, Reply):
                await link.send(event.frame)

    async def _on_trade(self, trade: TradeEvent) -> None:
        market = self._markets.get(trade.symbol)
        if market is not None and market.trades and not market.recent.repeats(trade.trade_id):
            await self.listener.on_trade(trade)

    async def on_close(self, reason: str) -> None:
        self._link = None
        await self._status("", StatusKind.DISCONNECTED, reason)
        for market in self._markets.values():
            if market.sync is not None:
                await self._lose(market, f"connection lost: {reason}")

    # -- books -----------------------------------------------------------------------------

    async def _on_delta(self, delta: BookDelta) -> None:
        market = self._markets.get(delta.symbol)
        if market is None or market.sync is None:
            return
        try:
            applied = market.sync.on_message(delta)
        except (SequenceGap, CrossedBook) as exc:
            await self._gap(market, str(exc))
            return
        if not applied:
            if not market.sync.live:
                await self._await_snapshot(market)
            return
        market.waited = 0
        if applied[0].is_snapshot or market.held:
            await self._deliver_snapshot(market, applied)
        else:
            await self._deliver(market, applied[0])

    async def _deliver_snapshot(self, market: _Market, applied: list[BookDelta]) -> None:
        last = applied[-1]
        market.held = last.exchange_ts == NO_TIME or last.exchange_ts < market.shown
        if market.held:  # the next messages applied bring it up to time
            return
        snap = last if len(applied) == 1 and last.is_snapshot else \
            _whole_book(cast(BookSync, market.sync), last)
        if market.gapped:
            market.gapped = False
            await self._status(market.symbol, StatusKind.RESYNC, f"snapshot seq={snap.seq}")
        await self._deliver(market, snap)

    async def _deliver(self, market: _Market, delta: BookDelta) -> None:
        market.shown = max(market.shown, delta.exchange_ts)
        bids, asks = cast(BookSync, market.sync).book.top(market.depth)
        await self.listener.on_book(BookUpdate(delta.exchange, delta.symbol, delta.exchange_ts,
                                               delta.local_ts, delta.seq, bids, asks, delta))

    async def _lose(self, market: _Market, detail: str) -> None:
        """The book can no longer be trusted: report it once and forget it."""
        sync = cast(BookSync, market.sync)
        if not market.gapped:
            market.gapped = True
            await self._status(market.symbol, StatusKind.GAP, detail)
        sync.invalidate()

    async def _gap(self, market: _Market, detail: str) -> None:
        log.warning("%s: %s; resyncing", self.venue.exchange, detail)
        await self._lose(market, detail)
        await self._resync(market)

    async def _await_snapshot(self, market: _Market) -> None:
        """A delta the book cannot use yet; too many mean a socket snapshot was lost."""
        if self.venue.resync is Resync.REST_SNAPSHOT:
            return  # buffered; the fetch brings the snapshot
        market.waited += 1
        if market.waited >= SNAPSHOT_PATIENCE:
            market.waited = 0
            log.warning("%s: %s: no snapshot after %d deltas; asking again",
                        self.venue.exchange, market.symbol, SNAPSHOT_PATIENCE)
            await self._resync(market)

    async def _resync(self, market: _Market) -> None:
        """Ask the venue for what makes ``market``'s book whole again."""
        if self._link is None:
            return
        if self.venue.resync is Resync.RESUBSCRIBE:
            await self._send(self.venue.unsubscribe_frames(market.book_topics))
            await self._send(self.venue.subscribe_frames(market.book_topics))
        else:
            await self._start_sync(market)

    async def _start_sync(self, market: _Market) -> None:
        """Ask for the snapshot that starts (or restarts) ``market``'s book."""
        if self._link is None:
            return
        idle = market.fetch is None or market.fetch.done()  # done: also cancelled unstarted
        if self.venue.resync is Resync.REST_SNAPSHOT and idle:
            market.fetch = self._link.spawn(self._fetch_snapshot(market))
        elif self.venue.resync is Resync.SOCKET_SNAPSHOT:
            await self._send([cast(SocketSnapshots, self.venue).snapshot_frame(market.symbol)])

    async def _fetch_snapshot(self, market: _Market) -> None:
        body = await self._snapshot_body(market)
        market.fetch = None  # a gap found while applying it fetches again
        if self.lockstep is not None:
            await self.lockstep.book_turn(self.venue.exchange)
        try:
            await self._on_delta(cast(RestSnapshots, self.venue).parse_snapshot(
                body, market.symbol, self.clock.now_ns()))
        finally:
            if self.lockstep is not None:
                self.lockstep.book_delivered(self.venue.exchange)

    async def _snapshot_body(self, market: _Market) -> bytes:
        venue = cast(RestSnapshots, self.venue)
        backoff = Backoff(self.policy)
        if market.gapped:  # a resync: let the stream buffer a few deltas first
            await asyncio.sleep(self.policy.initial_delay)
        while True:
            try:
                return await self.rest.request(venue.snapshot_request(market.symbol))
            except VenueError as exc:
                await self._status(market.symbol, StatusKind.ERROR, f"snapshot: {exc}")
                await asyncio.sleep(backoff.next())

    # -- helpers ---------------------------------------------------------------------------

    async def _send(self, frames: list[bytes]) -> None:
        if self._link is not None:
            for frame in frames:
                await self._link.send(frame)

    async def _status(self, symbol: str, kind: StatusKind, detail: str) -> None:
        await self.listener.on_status(FeedStatus(self.venue.exchange, symbol, kind,
                                                 self.clock.now_ns(), detail))


def _whole_book(sync: BookSync, last: BookDelta) -> BookDelta:
    """The book after a snapshot and the buffered deltas replayed on it, as one snapshot."""
    bids, asks = sync.book.top(len(sync.book))
    return BookDelta(last.exchange, last.symbol, last.exchange_ts, last.local_ts, last.seq,
                     last.seq, -1, bids, asks, True)


def _log_failure(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("%s stopped", task.get_name(), exc_info=task.exception())
