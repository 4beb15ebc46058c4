"""The recorder: live market data into the archive the Replayer reads (``makerlab record``).

::

    async with Gateway({"binance": {}}) as gateway:
        async with Recorder(gateway, [("binance", "BTCUSDT")], depth=20, out="archive") as rec:
            await rec.run(duration=3600)

Rules:

- **what is written**, per market: ``book_delta`` (every applied venue message),
  ``book_snapshot`` at each recorded depth and ``bbo`` (the book after each message) and
  ``trades`` (:mod:`makerlab.live.tables`), as the archive's hour files, under the
  exchange ids of the Gateway (``binance`` = USD-M, ``binance_spot``, ``bybit``, ...).
- **a book is recorded from a snapshot on**: the first message recorded for a market is the
  venue's snapshot or, when the recorder joins a market that is already live, the whole
  local book after that message (``FLAG_SNAPSHOT``). After a gap the venue's resync
  snapshot comes first (the live book rules, :mod:`makerlab.live.stream`).
- **write-ahead**: every ``flush_interval`` seconds (1) the rows received are appended to
  this session's segments in the archive's local spool (:mod:`makerlab.data.segments`: the
  archive's ``_makerlab/`` on a local disk; for ``s3://`` and other object stores ``spool``
  or ``~/.cache/makerlab/spool/...``), so a ``kill -9`` loses at most the rows of the last
  second. Only hour files go to the archive.
- **hourly commits**: hour H (UTC, of ``exchange_ts``) is committed, every kind of every
  market in one :class:`~makerlab.data.archive.ArchiveWriter` commit, once the recorder
  has seen an exchange time ``grace`` seconds (5) past its end; rows of H that arrive later
  are merged in by a later commit. Commits run in a worker thread while recording goes
  on. A clean stop (``stop()``, the end of ``async with``, SIGINT/SIGTERM for
  ``makerlab record``) commits everything.
- **recovery first**: entering the recorder commits the segments that interrupted
  sessions left in the archive (as ``makerlab validate --fix`` does).
- **health log**: every :class:`~makerlab.core.events.FeedStatus` of a recorded exchange
  (connects, disconnects, gaps, resyncs, errors) and the session's start and stop become a
  JSON line in ``<spool>/health/<exchange>/<YYYY-MM-DD>.jsonl`` (UTC day of ``local_ts``;
  ``_makerlab/health/`` of a local archive)
  and a log line; each line has both clocks: ``local_ts`` (when it happened) and
  ``last_exchange_ts`` (the venue time of the last message recorded for that market, or
  for the exchange).
- **one source**: the recorder is a listener of the Gateway's
  :class:`~makerlab.live.market_data.LiveMarketData`, the source the ``Feed`` uses.
- **one recorder per instrument and archive**: two recorders of the same market into the
  same archive are not supported (different markets are fine).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import Enum
from pathlib import Path
from types import TracebackType
from typing import Any

import orjson
import pyarrow as pa

from makerlab.core.events import BookDelta, BookUpdate, FeedStatus, StatusKind, TradeEvent
from makerlab.data.archive import HOUR_NS, check_writable
from makerlab.data.layout import check_name, dataset_dir
from makerlab.data.schema import (
    BBO,
    BOOK_DELTA,
    BOOK_SNAPSHOT,
    CLOCK_KEY,
    REPLAYED_CLOCK,
    TRADES,
)
from makerlab.data.segments import (
    Committed,
    SegmentFile,
    SegmentLog,
    commit_segments,
    recover_segments,
    spool_dir,
)
from makerlab.data.storage import redact
from makerlab.errors import ConfigError
from makerlab.live.gateway import Gateway
from makerlab.live.market_data import LiveMarketData
from makerlab.live.tables import bbo_table, delta_table, snapshot_table, trade_table
from makerlab.trading.protocols import MarketKind
from makerlab.units import NS_PER_S

__all__ = ["HealthLog", "Recorder", "read_health", "record"]

log = logging.getLogger(__name__)


# --------------------------------------------------------------------------- health log


class HealthLog:
    """Appends health records to ``<spool>/health/<exchange>/<YYYY-MM-DD>.jsonl``.

    One ``write`` per line, in append mode: a kill can cut only the last line short, and
    :func:`read_health` skips such a line.
    """

    def __init__(self, spool: str | os.PathLike, session: str) -> None:
        self.folder = Path(spool) / "health"
        self.session = session

    def write(self, exchange: str, local_ts: int, kind: str, **fields: Any) -> None:
        moment = datetime.fromtimestamp(local_ts / NS_PER_S, UTC)
        record = {"local_ts": local_ts, "time": moment.isoformat(timespec="microseconds"),
                  "exchange": exchange, "kind": kind, **fields, "session": self.session}
        path = self.folder / exchange / f"{moment:%Y-%m-%d}.jsonl"
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "ab") as out:
            out.write(orjson.dumps(record) + b"\n")


def read_health(root: str | os.PathLike, exchange: str | None = None, *,
                spool: str | os.PathLike | None = None) -> list[dict[str, Any]]:
    """The health records of ``exchange`` (every exchange when None) of the archive at
    ``root``, from its spool (:func:`~makerlab.data.segments.spool_dir`), oldest file
    first; a line a kill cut short is skipped."""
    folder = Path(spool_dir(root, spool)) / "health"
    records = []
    for path in sorted(folder.glob(f"{exchange or '*'}/*.jsonl")):
        for line in path.read_bytes().splitlines():
            with contextlib.suppress(orjson.JSONDecodeError):
                records.append(orjson.loads(line))
    return records


# --------------------------------------------------------------------------- recorder


@dataclass(eq=False)
class _Track:
    """One market being recorded: its snapshot depths (none: no book) and trades."""

    exchange: str
    symbol: str
    depths: set[int] = field(default_factory=set)
    trades: bool = False
    synced: bool = False  # a snapshot was recorded: deltas may follow


class _State(Enum):
    NEW = "new"
    RUNNING = "running"
    STOPPED = "stopped"


@dataclass(frozen=True)
class _Batch:
    """The events of one flush, grouped by market, with the depths to write."""

    books: dict[tuple[str, str], tuple[list[BookUpdate], list[BookDelta], tuple[int, ...]]]
    trades: dict[tuple[str, str], list[TradeEvent]]


class Recorder:
    """Records live markets into an archive (rules in the module docstring).

    Args:
        gateway: the :class:`~makerlab.live.gateway.Gateway` (after ``init_clients()``) or
            its :class:`~makerlab.live.market_data.LiveMarketData`.
        markets: ``(exchange, symbol)`` pairs; each is subscribed on entering and recorded
            with its book (``depth`` levels in ``book_snapshot``) and trades. More can be
            added with :meth:`track` (markets something else subscribes).
        depth: levels per side of ``book_snapshot``.
        out: the archive root: a local directory or a URL (``s3://bucket/archive``).
        spool: the local directory of the write-ahead segments and the health log
            (default: :func:`~makerlab.data.segments.spool_dir`).
        flush_interval: seconds between appends to the write-ahead segments.
        grace: seconds of exchange time past an hour's end before it is committed.
    """

    def __init__(self, gateway: Gateway | LiveMarketData,
                 markets: Iterable[tuple[str, str]] = (), depth: int = 20,
                 out: str | os.PathLike = "./archives/", *,
                 spool: str | os.PathLike | None = None, flush_interval: float = 1.0,
                 grace: float = 5.0) -> None:
        self.source = gateway.market_data() if isinstance(gateway, Gateway) else gateway
        self.out = os.fspath(out)
        self.spool = spool
        if not flush_interval > 0 or not grace >= 0:
            raise ConfigError(f"flush_interval must be > 0 and grace >= 0, got "
                              f"{flush_interval} and {grace}")
        self.flush_interval, self.grace_ns = flush_interval, int(grace * NS_PER_S)
        self._tracks: dict[tuple[str, str], _Track] = {}
        self._subscribe = [(exchange, symbol, depth) for exchange, symbol in markets]
        for exchange, symbol, _ in self._subscribe:
            self.track(exchange, symbol, depth=depth, trades=True)
        self._books: list[tuple[_Track, BookUpdate, BookDelta]] = []
        self._trades: list[tuple[_Track, TradeEvent]] = []
        self._watermark = 0
        self._last_ts: dict[tuple[str, str], int] = {}
        self._connections: dict[str, int] = {}
        self._state = _State.NEW
        self._segments: SegmentLog | None = None
        self._health: HealthLog | None = None
        self._flusher: asyncio.Task[None] | None = None
        self._committer: asyncio.Task[Committed] | None = None
        self._wake = asyncio.Event()
        self._closing = False
        self._commit_requests: list[asyncio.Future[None]] = []
        self.rows_received = 0
        self.rows_committed = 0
        self.hour_files: set[str] = set()

    def __repr__(self) -> str:
        markets = ", ".join(f"{e}/{s}" for e, s in self._tracks)
        return (f"Recorder({markets or 'no markets'} -> {redact(self.out)}, "
                f"{self._state.value})")

    def track(self, exchange: str, symbol: str, *, depth: int | None = None,
              trades: bool = False) -> None:
        """Record ``exchange``/``symbol`` too: its book with a ``depth``-level
        ``book_snapshot`` (when given) and/or its trades. Subscribing is the caller's."""
        check_name("exchange", exchange)
        check_name("symbol", symbol)
        if depth is not None and (not isinstance(depth, int) or depth < 1):
            raise ConfigError(f"depth must be a positive integer, got {depth!r}")
        track = self._tracks.setdefault((exchange, symbol), _Track(exchange, symbol))
        track.depths |= {depth} if depth is not None else set()
        track.trades |= trades

    @property
    def session(self) -> str | None:
        """This recording session's id (its segments' directory), once started."""
        return None if self._segments is None else self._segments.session

    # -- lifecycle ------------------------------------------------------------------------

    async def __aenter__(self) -> Recorder:
        await self.start()
        return self

    async def __aexit__(self, kind: type[BaseException] | None, error: BaseException | None,
                        traceback: TracebackType | None) -> None:
        await self.stop()

    async def start(self) -> None:
        """Recover interrupted sessions, open this one, subscribe the markets."""
        if self._state is not _State.NEW:
            raise ConfigError(f"this Recorder is {self._state.value}; make a new one")
        check_writable(self.out)
        for line in await asyncio.to_thread(recover_segments, self.out, spool=self.spool):
            log.warning("%s", line)
        self._segments = SegmentLog(self.out, spool=self.spool)
        self._health = HealthLog(self._segments.spool, self._segments.session)
        self._state = _State.RUNNING
        self._session_event("recorder_started", f"recording into {redact(self.out)}")
        self.source.attach(self)
        self._flusher = asyncio.create_task(self._flush_loop(),
                                            name=f"makerlab-recorder-{self.session}")
        try:
            for exchange, symbol, depth in self._subscribe:
                await self.source.subscribe(MarketKind.L2BOOK, exchange, symbol, depth)
                await self.source.subscribe(MarketKind.TRADES, exchange, symbol, 0)
        except BaseException:
            await self.stop()
            raise

    async def run(self, duration: float | None = None) -> None:
        """Record until ``duration`` seconds have passed (None: until :meth:`stop` or
        :meth:`request_stop`); raises what made recording fail."""
        flusher = self._running()
        await asyncio.wait({flusher}, timeout=duration)
        if flusher.done():
            flusher.result()

    def request_stop(self) -> None:
        """Stop receiving, then commit everything and finish (safe from a signal handler);
        :meth:`run` returns once it has."""
        self.source.detach(self)
        self._closing = True
        self._wake.set()

    async def stop(self) -> None:
        """Stop recording: commit every row received, remove the session's segments.
        Idempotent. When recording failed, the segments stay for recovery and the error
        is raised."""
        if self._state is not _State.RUNNING:
            return
        self.request_stop()
        segments = self._segments
        assert segments is not None and self._flusher is not None
        try:
            await self._flusher
        except BaseException:
            segments.abandon()
            raise
        else:
            segments.close()
            self._session_event("recorder_stopped", f"{self.rows_committed} rows committed")
        finally:
            self._state = _State.STOPPED

    async def commit(self) -> None:
        """Commit every row received so far as hour files now (the current hour too; the
        rest of it is merged in later)."""
        self._running()
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._commit_requests.append(done)
        self._wake.set()
        await done

    def _running(self) -> asyncio.Task[None]:
        if self._state is not _State.RUNNING or self._flusher is None:
            raise ConfigError(f"this Recorder is {self._state.value}, not recording")
        return self._flusher

    # -- listener (MarketDataListener) ------------------------------------------------------

    async def on_book(self, update: BookUpdate) -> None:
        track = self._tracks.get((update.exchange, update.symbol))
        if track is None or not track.depths:
            return
        delta = update.delta if track.synced else self._first(update)
        if delta is None:
            return
        track.synced = True
        self._books.append((track, update, delta))
        self._seen(update.exchange, update.symbol, update.exchange_ts)

    def _first(self, update: BookUpdate) -> BookDelta | None:
        """The first message of a market as a snapshot: the venue's own, or the whole
        local book after ``update`` when joining a live market."""
        if update.delta.is_snapshot:
            return update.delta
        book = self.source.full_book(update.exchange, update.symbol)
        if book is None:
            return None
        return BookDelta(update.exchange, update.symbol, update.exchange_ts, update.local_ts,
                         update.seq, update.seq, -1, book[0], book[1], True)

    async def on_trade(self, trade: TradeEvent) -> None:
        track = self._tracks.get((trade.exchange, trade.symbol))
        if track is None or not track.trades:
            return
        self._trades.append((track, trade))
        self._seen(trade.exchange, trade.symbol, trade.exchange_ts)

    def _seen(self, exchange: str, symbol: str, exchange_ts: int) -> None:
        self._last_ts[(exchange, symbol)] = exchange_ts
        self._last_ts[(exchange, "")] = max(exchange_ts, self._last_ts.get((exchange, ""), 0))
        self._watermark = max(self._watermark, exchange_ts)

    async def on_status(self, status: FeedStatus) -> None:
        if not any(exchange == status.exchange for exchange, _ in self._tracks):
            return
        fields: dict[str, Any] = {}
        if status.kind is StatusKind.CONNECTED:
            self._connections[status.exchange] = self._connections.get(status.exchange, 0) + 1
            fields["reconnect"] = self._connections[status.exchange] > 1
        if status.kind in (StatusKind.CONNECTED, StatusKind.DISCONNECTED):
            fields["connection"] = self._connections.get(status.exchange, 0)
        last = self._last_ts.get((status.exchange, status.symbol))
        assert self._health is not None
        self._health.write(status.exchange, status.local_ts, status.kind.value,
                           symbol=status.symbol, detail=status.detail,
                           last_exchange_ts=last, **fields)
        quiet = status.kind in (StatusKind.CONNECTED, StatusKind.RESYNC)
        log.log(logging.INFO if quiet else logging.WARNING,
                "health: %s %s %s %s (last exchange_ts %s)", status.exchange,
                status.symbol or "*", status.kind.value, status.detail, last)

    def _session_event(self, kind: str, detail: str) -> None:
        assert self._health is not None
        now = time.time_ns()
        for exchange in sorted({exchange for exchange, _ in self._tracks}):
            self._health.write(exchange, now, kind, symbol="", detail=detail,
                               last_exchange_ts=self._last_ts.get((exchange, "")))
        log.info("recorder %s: %s", kind.removeprefix("recorder_"), detail)

    # -- flushing and committing ------------------------------------------------------------

    async def _flush_loop(self) -> None:
        """Append every ``flush_interval``; commit due hours; commit all on request/stop.
        However it ends, a commit still running in its thread is waited for (its failure
        matters no more then: the rows stay in the segments)."""
        try:
            await self._record()
        finally:
            if self._committer is not None:
                await asyncio.gather(self._committer, return_exceptions=True)

    async def _record(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.flush_interval)
            self._wake.clear()
            await self._flush()
            if self._closing or self._commit_requests:
                await self._flush()  # the rows received while the flush above was writing
                await self._commit_all()
                if self._closing:
                    return
            else:
                await self._commit_due()

    async def _flush(self) -> None:
        batch = self._take()
        if batch.books or batch.trades:
            assert self._segments is not None
            self.rows_received += await asyncio.to_thread(
                self._segments.append, _tables(batch, self.source.replays))

    def _take(self) -> _Batch:
        """The events received since the last flush, grouped (on the event loop, so that
        :meth:`track` cannot change a market's depths meanwhile)."""
        books, trades = self._books, self._trades
        self._books, self._trades = [], []
        grouped: _Batch = _Batch({}, {})
        for track, update, delta in books:
            key = (track.exchange, track.symbol)
            entry = grouped.books.setdefault(key, ([], [], tuple(sorted(track.depths))))
            entry[0].append(update)
            entry[1].append(delta)
        for track, trade in trades:
            grouped.trades.setdefault((track.exchange, track.symbol), []).append(trade)
        return grouped

    async def _commit_due(self) -> None:
        """Start committing the hours that ended ``grace`` before the newest exchange time
        (one commit at a time; a finished one's failure is raised here)."""
        if self._committer is not None:
            if not self._committer.done():
                return
            self._committed(self._committer.result())
            self._committer = None
        assert self._segments is not None
        limit = (self._watermark - self.grace_ns) // HOUR_NS
        due = {hour for hour in self._segments.open_hours() if hour < limit}
        if due:
            files = self._segments.seal(due)
            self._committer = asyncio.create_task(self._commit(files))

    async def _commit_all(self) -> None:
        try:
            if self._committer is not None:
                committer, self._committer = self._committer, None
                self._committed(await committer)
            assert self._segments is not None
            self._committed(await self._commit(self._segments.seal()))
        except BaseException as error:
            for request in self._commit_requests:
                request.set_exception(error)
            self._commit_requests.clear()
            raise
        for request in self._commit_requests:
            request.set_result(None)
        self._commit_requests.clear()

    async def _commit(self, files: Sequence[SegmentFile]) -> Committed:
        assert self._segments is not None
        return await asyncio.to_thread(commit_segments, self.out, files,
                                       upto=self._segments.flushes)

    def _committed(self, done: Committed) -> None:
        if done.rows:
            self.rows_committed += done.rows
            self.hour_files.update(done.files)
            log.info("committed %d rows into %d hour files", done.rows, len(done.files))


def _tables(batch: _Batch, replays: Callable[[str], bool]) -> list[tuple[str, pa.Table]]:
    """(dataset, table) pairs of one flush (runs in a worker thread); tables of an
    exchange that ``replays`` an archive carry the replayed-clock tag."""
    out = []
    for (exchange, symbol), (updates, deltas, depths) in batch.books.items():
        tables = [(dataset_dir(BOOK_DELTA, exchange, symbol), delta_table(deltas))]
        tables += [(dataset_dir(BOOK_SNAPSHOT, exchange, symbol, depth),
                    snapshot_table(updates, depth)) for depth in depths]
        tables.append((dataset_dir(BBO, exchange, symbol), bbo_table(updates)))
        out += _tag(tables, replays(exchange))
    for (exchange, symbol), trades in batch.trades.items():
        out += _tag([(dataset_dir(TRADES, exchange, symbol), trade_table(trades))],
                    replays(exchange))
    return out


def _tag(tables: list[tuple[str, pa.Table]], replayed: bool) -> list[tuple[str, pa.Table]]:
    if not replayed:
        return tables
    return [(dataset, table.replace_schema_metadata({CLOCK_KEY: REPLAYED_CLOCK}))
            for dataset, table in tables]


# --------------------------------------------------------------------------- makerlab record


async def record(exchange: str, symbols: Sequence[str], depth: int,
                 out: str | os.PathLike, *, base_url: str | None = None,
                 env: str | None = None, duration: float | None = None,
                 spool: str | os.PathLike | None = None) -> Recorder:
    """``makerlab record``: record ``symbols`` of ``exchange`` until ``duration`` seconds
    have passed or SIGINT/SIGTERM, then commit everything. Returns the stopped recorder."""
    settings = {k: v for k, v in (("env", env), ("base_url", base_url)) if v is not None}
    loop = asyncio.get_running_loop()
    async with Gateway({exchange: settings}) as gateway:
        recorder = Recorder(gateway, [(exchange, s) for s in symbols], depth, out,
                            spool=spool)
        async with recorder:
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.add_signal_handler(sig, recorder.request_stop)
            try:
                await recorder.run(duration)
            finally:
                for sig in (signal.SIGINT, signal.SIGTERM):
                    loop.remove_signal_handler(sig)
    return recorder
