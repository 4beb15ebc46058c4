"""Market-data feeds with the tutorial's interface (quantpylib's ``Feed``).

One :class:`Feed` serves replay and live: it keeps the subscriptions (feed ids, the
:class:`~makerlab.core.lob.LOB`/:class:`~makerlab.core.trades.Trades`/bars buffers and
their handlers) and loads archives. What differs between modes is the market-data
*source* behind it, a :class:`~makerlab.trading.protocols.MarketDataSource`: the replay
engine (through :class:`~makerlab.sim.mock_feed.MockFeed`) or a live venue connection
(``Feed(gateway=...)`` takes the Gateway's
:class:`~makerlab.live.market_data.LiveMarketData`).

Subscription rules:

- **handlers get the live objects**: a book handler receives the subscription's
  :class:`~makerlab.core.lob.LOB`, a trade handler the tuple ``(ts_ms, price, size, dir)``,
  a bars handler each finished bar.
- **one buffer per feed id**: subscribing twice to the same feed returns the same id and
  buffer (the larger ``buffer`` wins while nothing is buffered) and adds the handler.
- **feed ids follow the tutorial**: ``{exc}/{cls}/l2book/{ticker}_depth{depth}``,
  ``{exc}/{cls}/trades/{ticker}``, ``{exc}/{cls}/{BarClass}/{ticker}``.
- **the market class selects the market**: ``feed_cls`` picks the data as well as the
  feed id: ``exc='binance', feed_cls=SPOT`` subscribes to ``binance_spot`` (see
  :func:`archive_exchange`), and a source that does not serve that market refuses it.
- **unknown arguments raise**: a keyword the Feed does not support (for example
  ``implied_orderbook``) is a ``TypeError``, never silently ignored.
- **live events update buffers, then handlers run**: each
  :class:`~makerlab.core.events.BookUpdate` is loaded into every matching book
  subscription as a snapshot of its depth (trusted, as the replay's checked rows are:
  a source hands over levels in book order, positive, finite and uncrossed), each
  :class:`~makerlab.core.events.TradeEvent` appended to every trade buffer and bar
  builder; handlers are awaited in subscription order, in the source's read loop (a slow
  handler delays the next message rather than reordering it).

The tutorial speaks milliseconds: ``ts`` values returned here are exchange time in integer
epoch milliseconds, while the archive itself stores nanoseconds.

Archive recording (the tutorial's ``run_archive_scheduler``/``flush_archives``/
``squash_archives``) is the live :class:`~makerlab.live.recorder.Recorder` over this Feed's
subscriptions, writing the archive the loaders read (``docs/recorder.md``).

Exchange names in the archive carry the market class, see :func:`archive_exchange`:
``binance`` is Binance USD-M perpetuals (as in the tutorial), ``binance_spot`` Binance spot,
``binance_coinm`` Binance COIN-M; ``bybit``, ``hyperliquid`` ... are their perpetuals.
"""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

import numpy as np

from makerlab.core.bars import Bars, TimeBars
from makerlab.core.callbacks import run_handlers
from makerlab.core.events import BookUpdate, FeedStatus, TradeEvent
from makerlab.core.lob import LOB, top_of
from makerlab.core.trades import Trades
from makerlab.data import archive
from makerlab.data.arrays import SnapshotArrays, load_snapshot_arrays, load_trade_arrays
from makerlab.data.convert import quantpylib
from makerlab.data.schema import BOOK_DELTA, BOOK_SNAPSHOT, TRADES
from makerlab.errors import ConfigError, DataError
from makerlab.trading.protocols import MarketDataSource, MarketKind
from makerlab.units import NS_PER_MS

__all__ = ["Feed", "FeedCls", "FeedType", "Subscription", "archive_exchange", "run_handlers"]

Handler = Callable[[Any], Awaitable[Any] | Any]

_DEFAULT_DAYS = 14
_SUFFIXES = ("_spot", "_perp", "_futures", "_options", "_coinm", "_usdm")


class FeedCls(StrEnum):
    """Market class of a feed; the value is its path segment in feed ids."""

    PERPETUAL = "perp"
    FUTURES = "futures"
    SPOT = "spot"
    OPTIONS = "options"


class FeedType(StrEnum):
    """Kind of feed; the value is its path segment in feed ids."""

    L1BOOK = "l1book"
    L2BOOK = "l2book"
    L2DELTA = "l2delta"
    TRADES = "trades"
    MIDS = "mids"


def archive_exchange(exc: str, feed_cls: FeedCls | str = FeedCls.PERPETUAL) -> str:
    """The archive's exchange name for venue ``exc`` and market class ``feed_cls``.

    Perpetuals use the bare venue name (``binance`` = Binance USD-M). Other classes append
    ``_spot``, ``_futures`` or ``_options``: ``('binance', SPOT) -> 'binance_spot'``. A
    name that already carries a class suffix (``binance_spot``, ``binance_coinm``) is
    used as it is.
    """
    feed_cls = FeedCls(feed_cls)
    if feed_cls is FeedCls.PERPETUAL or exc.endswith(_SUFFIXES):
        return exc
    return f"{exc}_{feed_cls.value}"


def _range(start: archive.TimeLike, end: archive.TimeLike) -> tuple[str, str]:
    """Tutorial bounds as whole inclusive hours ('YYYY-MM-DD:HH'); defaults: last 14 days."""
    now = datetime.now(UTC)
    start = now - timedelta(days=_DEFAULT_DAYS) if start is None else start
    end = now if end is None else end
    return _hour_text(start), _hour_text(end)


def _hour_text(value: archive.TimeLike) -> str:
    if isinstance(value, str):
        return value
    ns = archive._to_ns(value, end=False)
    if ns is None:
        raise ConfigError("an archive range needs a start and an end")
    moment = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=ns // 1000)
    return f"{moment:%Y-%m-%d:%H}"


@dataclass(eq=False)
class Subscription:
    """One feed: its buffer object and handlers.

    ``exc`` is the market's exchange id in the archive's naming (``binance_spot`` for
    ``exc='binance', feed_cls=SPOT``), the name sources deliver under.
    """

    feed_id: str
    exc: str
    ticker: str
    kind: str  # "l2book" | "trades" | "bars"
    obj: Any
    handlers: list[Handler] = field(default_factory=list)
    last_ts: int = -1  # ms; deliveries never go back in time (local vs exchange order)


def _no_extra(method: str, kwargs: dict[str, Any]) -> None:
    if kwargs:
        raise TypeError(f"Feed.{method}() got unsupported keyword argument(s) "
                        f"{', '.join(sorted(kwargs))}")


class Feed:
    """Market-data feeds over a source (see the module docstring).

    Archive loading works without a gateway or source (static methods).

    Args:
        gateway: a live :class:`~makerlab.live.gateway.Gateway`; the Feed streams from
            its market-data connections (used when ``source`` is not given).
        source: the market-data source (the replay engine for ``MockFeed``).
    """

    def __init__(self, gateway: Any = None, *, source: MarketDataSource | None = None) -> None:
        if source is None:
            if gateway is None:
                raise ConfigError("Feed needs a gateway (live) or a source; in simulation "
                                  "use the Replayer's get_feed()")
            source = gateway.market_data()
        self.gateway, self.source = gateway, source
        self._subs: dict[str, Subscription] = {}
        self._by_market: dict[tuple[str, str, str], list[Subscription]] = {}
        self._archiver: Any = None  # the running Recorder of run_archive_scheduler
        source.attach(self)

    # -- subscriptions -------------------------------------------------------------------

    async def _add(self, feed_id: str, kind: MarketKind, exc: str, ticker: str,
                   sub_kind: str, make: Callable[[], Any], handler: Handler | None,
                   depth: int = 0) -> Subscription:
        sub = self._subs.get(feed_id)
        if sub is None:
            self.source.check_market(kind, exc, ticker)
            await self.source.subscribe(kind, exc, ticker, depth)
            sub = self._subs[feed_id] = Subscription(feed_id, exc, ticker, sub_kind, make())
            self._by_market.setdefault((kind.value, exc, ticker), []).append(sub)
            if self._archiver is not None:
                _track(self._archiver, sub)
        if handler is not None:
            sub.handlers.append(handler)
        return sub

    async def add_l2_book_feed(self, exc: str, ticker: str, handler: Handler | None = None,
                               depth: int = 20, buffer: int = 100,
                               feed_cls: FeedCls | str = FeedCls.PERPETUAL,
                               apply_shadow_depth: bool = False, **kwargs: Any) -> str:
        """Subscribe to ``exc``/``ticker``'s book; returns the feed id."""
        _no_extra("add_l2_book_feed", kwargs)
        feed_id = f"{exc}/{FeedCls(feed_cls).value}/l2book/{ticker}_depth{depth}"
        sub = await self._add(feed_id, MarketKind.L2BOOK, archive_exchange(exc, feed_cls),
                              ticker, "l2book",
                              lambda: LOB(depth=depth, buffer_size=buffer,
                                          apply_shadow_depth=apply_shadow_depth,
                                          validate=False),
                              handler, depth)
        if buffer > sub.obj.buffer_size and sub.obj.buffer_len() == 0:
            sub.obj = LOB(depth=depth, buffer_size=buffer,
                          apply_shadow_depth=apply_shadow_depth, validate=False)
        return feed_id

    async def add_trades_feed(self, exc: str, ticker: str, handler: Handler | None = None,
                              buffer: int = 100, feed_cls: FeedCls | str = FeedCls.PERPETUAL,
                              **kwargs: Any) -> str:
        """Subscribe to ``exc``/``ticker``'s trades; returns the feed id."""
        _no_extra("add_trades_feed", kwargs)
        feed_id = f"{exc}/{FeedCls(feed_cls).value}/trades/{ticker}"
        sub = await self._add(feed_id, MarketKind.TRADES, archive_exchange(exc, feed_cls),
                              ticker, "trades", lambda: Trades(buffer), handler)
        if buffer > sub.obj._buffer.maxlen and sub.obj.buffer_len() == 0:
            sub.obj = Trades(buffer)
        return feed_id

    async def add_sampling_bars_feed(self, exc: str, ticker: str,
                                     handler: Handler | None = None, buffer: int = 100,
                                     feed_cls: FeedCls | str = FeedCls.PERPETUAL,
                                     bar_cls: type[Bars] = TimeBars, **kwargs: Any) -> str:
        """Bars built from ``exc``/``ticker``'s trades (``kwargs`` go to ``bar_cls``, which
        raises on any it does not take)."""
        feed_id = f"{exc}/{FeedCls(feed_cls).value}/{bar_cls.__name__}/{ticker}"
        await self._add(feed_id, MarketKind.TRADES, archive_exchange(exc, feed_cls), ticker,
                        "bars", lambda: bar_cls(buffer_size=buffer, **kwargs), handler)
        return feed_id

    async def add_handler_to_feed(self, feed_id: str, handler: Handler) -> None:
        self._sub(feed_id).handlers.append(handler)

    def _sub(self, feed_id: str) -> Subscription:
        try:
            return self._subs[feed_id]
        except KeyError:
            raise ConfigError(f"unknown feed id {feed_id!r}; known: {list(self._subs)}") from None

    def get_feed(self, feed_id: str) -> Any:
        """The LOB, Trades or Bars object of ``feed_id``."""
        return self._sub(feed_id).obj

    def get_feed_ids(self) -> list[str]:
        return list(self._subs)

    def subscriptions(self) -> list[Subscription]:
        """Every subscription, in subscription order (what the source delivers to)."""
        return list(self._subs.values())

    async def cleanup(self) -> None:
        """Stop the archive scheduler (committing what it holds), close the source's
        streams."""
        if self._archiver is not None:
            await self._archiver.stop()
        await self.source.close()

    # -- live delivery (MarketDataListener) ----------------------------------------------

    async def on_book(self, update: BookUpdate) -> None:
        """Load ``update`` into each book subscription of its market, then run handlers."""
        ts = update.exchange_ts // NS_PER_MS
        for sub in self._by_market.get((MarketKind.L2BOOK.value, update.exchange,
                                        update.symbol), ()):
            sub.last_ts = max(ts, sub.last_ts)
            _load_book(sub.obj, sub.last_ts, update.bids, update.asks)
            if sub.handlers:
                await run_handlers(sub.handlers, sub.obj)

    async def on_trade(self, trade: TradeEvent) -> None:
        """Append ``trade`` to each trade buffer and bar builder of its market."""
        ts = trade.exchange_ts // NS_PER_MS
        for sub in self._by_market.get((MarketKind.TRADES.value, trade.exchange,
                                        trade.symbol), ()):
            sub.last_ts = max(ts, sub.last_ts)
            row = (sub.last_ts, trade.price, trade.size, trade.side)
            if sub.kind == "trades":
                sub.obj.append(row)
                await run_handlers(sub.handlers, row)
            elif (bar := sub.obj.update(row)) is not None:
                await run_handlers(sub.handlers, bar)

    async def on_status(self, status: FeedStatus) -> None:
        """Connection and book health events (kept by the source's health log)."""


    # -- archive recording (the tutorial's scheduler) -------------------------------------

    async def run_archive_scheduler(self, path: str | os.PathLike = "./archives/",
                                    splits: int = 1, squash: bool = True,
                                    rm_subfiles: bool = True, max_workers: int = 5,
                                    **kwargs: Any) -> None:
        """Record every market this Feed subscribes to (now and later) into the archive at
        ``path`` until the task is cancelled or :meth:`cleanup` runs; then commit all.

        Books go to ``book_delta``, ``book_snapshot`` (each subscribed depth) and ``bbo``,
        trades (trade and bar feeds) to ``trades``, as hour files committed hourly, with a
        one-second write-ahead log (:class:`~makerlab.live.recorder.Recorder`). The
        tutorial's knobs map onto that: ``splits`` and ``max_workers`` bound memory and
        threads in quantpylib and change nothing here (memory never holds more than a
        second, commits run on one worker thread); ``rm_subfiles``: the write-ahead
        segments are always removed once committed; ``squash`` must be True (hour files
        are always whole).
        """
        _no_extra("run_archive_scheduler", kwargs)
        _positive("splits", splits)
        _positive("max_workers", max_workers)
        _flag("rm_subfiles", rm_subfiles)
        if squash is not True:
            raise ConfigError("squash=False is not supported: makerlab always commits whole "
                              "hour files (there are no partial files to keep)")
        if self._archiver is not None:
            raise ConfigError(f"an archive scheduler is already running into "
                              f"{self._archiver.out}")
        from makerlab.live.market_data import LiveMarketData
        from makerlab.live.recorder import Recorder

        if not isinstance(self.source, LiveMarketData):
            raise ConfigError("run_archive_scheduler records live data: build the Feed with "
                              "a Gateway")
        recorder = Recorder(self.source, out=path)
        for sub in self._subs.values():
            _track(recorder, sub)
        self._archiver = recorder
        try:
            async with recorder:
                await recorder.run()
        finally:
            self._archiver = None

    async def flush_archives(self, path: str | os.PathLike = "./archives/", prefix: str = "",
                             postfix: str = "", idx: str | int = "", **kwargs: Any) -> None:
        """Commit what the running archive scheduler holds now into the hour files at
        ``path`` (the current hour too; the rest of it is merged in later).

        makerlab writes hour files only, so ``prefix``/``postfix``/``idx`` (ad-hoc file
        names in quantpylib) must stay empty.
        """
        _no_extra("flush_archives", kwargs)
        if prefix or postfix or idx not in ("", None):
            raise ConfigError("makerlab archives hold hour files only: prefix, postfix and "
                              "idx (ad-hoc file names) are not supported")
        if self._archiver is None or not _same_path(self._archiver.out, path):
            raise ConfigError(f"no archive scheduler is running into {os.fspath(path)}; "
                              "start run_archive_scheduler(path=...) first")
        await self._archiver.commit()

    @staticmethod
    def squash_archives(path: str | os.PathLike = "./archives/", rm_subfiles: bool = False,
                        max_workers: int = 5, **kwargs: Any) -> list[str]:
        """Commit the rows interrupted recorders left at ``path`` (their write-ahead
        segments) into hour files, as the next ``makerlab record`` or ``makerlab validate
        --fix`` would. Segments are removed once committed, whatever ``rm_subfiles`` says;
        ``max_workers`` changes nothing. Returns one line per recovered session."""
        _no_extra("squash_archives", kwargs)
        _flag("rm_subfiles", rm_subfiles)
        _positive("max_workers", max_workers)
        from makerlab.data.segments import recover_segments

        return recover_segments(path)

    # -- archives ------------------------------------------------------------------------

    @staticmethod
    def load_lob_archives(
        exc: str,
        ticker: str,
        depth: int,
        feed_cls: FeedCls = FeedCls.PERPETUAL,
        path: str | os.PathLike = "./archives/",
        start: archive.TimeLike = None,
        end: archive.TimeLike = None,
        only_paths: bool = False,
    ) -> list[dict] | list[str]:
        """Depth-``depth`` book states from the archive at ``path``.

        ``start``/``end``: datetime (naive = UTC) or ``'%Y-%m-%d:%H'``; both hours are
        inclusive and a datetime counts as its whole hour. Defaults: the last 14 days.
        ``path`` may also be an archive in quantpylib's own layout
        (``{exc}/{feed_cls}/l2book/{yyyy}/{mm}/{ticker}_depth{N}_{ddhh}.parquet``, see
        :mod:`makerlab.data.convert.quantpylib`), read in place.

        Returns:
            ``[{'ts': int_ms, 'b': ndarray (k, 2), 'a': ndarray (k, 2)}, ...]`` in
            receive order, ``ts`` the exchange time in ms, levels ``[price, size]`` best
            first, only the levels present (k <= depth). With ``only_paths`` the list
            of hour files instead. A deeper snapshot dataset is cut down to ``depth``.
        """
        exchange = archive_exchange(exc, feed_cls)
        lo, hi = _range(start, end)
        if quantpylib.is_archive(path, exchange):  # quantpylib's own layout: read in place
            files = quantpylib.hour_files(path, exchange, "l2book", ticker, lo, hi, depth)
            return [str(f) for f in files] if only_paths else _lob_records(
                quantpylib.snapshot_arrays(files, depth), depth)
        stored = _stored_depth(path, exchange, ticker, depth)
        if only_paths:
            return archive.archive_paths(path, BOOK_SNAPSHOT, exchange, ticker, lo, hi,
                                         depth=stored)
        books = load_snapshot_arrays(path, exchange, ticker, stored, lo, hi)
        return _lob_records(books, depth)

    @staticmethod
    def load_trade_archives(
        exc: str,
        ticker: str,
        feed_cls: FeedCls = FeedCls.PERPETUAL,
        path: str | os.PathLike = "./archives/",
        start: archive.TimeLike = None,
        end: archive.TimeLike = None,
        only_paths: bool = False,
    ) -> np.ndarray | list[str]:
        """Trade prints from the archive at ``path`` (range as :meth:`load_lob_archives`).

        Returns:
            An (n, 4) float64 array whose rows are ``[ts_ms, price, size, dir]`` (exchange
            time in ms, ``dir`` +1 taker buy / -1 taker sell), as quantpylib returns it;
            with ``only_paths`` the list of hour files instead.
        """
        exchange = archive_exchange(exc, feed_cls)
        lo, hi = _range(start, end)
        if quantpylib.is_archive(path, exchange):  # quantpylib's own layout: read in place
            files = quantpylib.hour_files(path, exchange, "trades", ticker, lo, hi)
            if only_paths:
                return [str(f) for f in files]
            trades = quantpylib.trade_arrays(files)
        elif only_paths:
            return archive.archive_paths(path, TRADES, exchange, ticker, lo, hi)
        else:
            trades = load_trade_arrays(path, exchange, ticker, lo, hi)
        out = np.empty((len(trades), 4), np.float64)
        out[:, 0] = trades.exchange_ts // NS_PER_MS
        out[:, 1] = trades.price
        out[:, 2] = trades.size
        out[:, 3] = trades.side
        return out


def _load_book(lob: LOB, ts: int, bids: np.ndarray, asks: np.ndarray) -> None:
    """``bids``/``asks`` (a source's read-only top levels, best first) as ``lob``'s new
    state: what ``lob.update(ts, bids, asks, is_snapshot=True)`` gives, without checking
    levels the source already checked."""
    cap = lob.safe_depth
    bids, asks = bids[:cap], asks[:cap]
    top = top_of(bids, asks)
    if lob.buffer_size:
        lob._load_snapshot(ts, bids, asks, _padded(bids, lob.depth), _padded(asks, lob.depth),
                           top)
    else:
        lob._load_snapshot(ts, bids, asks, bids, asks, top)


def _padded(levels: np.ndarray, depth: int) -> np.ndarray:
    out = np.full((depth, 2), np.nan)
    out[: len(levels)] = levels[:depth]
    return out


def _track(recorder: Any, sub: Subscription) -> None:
    """Have the archive scheduler's recorder record ``sub``'s market."""
    if sub.kind == "l2book":
        recorder.track(sub.exc, sub.ticker, depth=sub.obj.depth)
    else:
        recorder.track(sub.exc, sub.ticker, trades=True)


def _positive(name: str, value: object) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ConfigError(f"{name} must be a positive integer, got {value!r}")


def _flag(name: str, value: object) -> None:
    if not isinstance(value, bool):
        raise ConfigError(f"{name} must be True or False, got {value!r}")


def _same_path(a: str | os.PathLike, b: str | os.PathLike) -> bool:
    return os.path.abspath(os.fspath(a)) == os.path.abspath(os.fspath(b))


def _stored_depth(path: str | os.PathLike, exchange: str, ticker: str, depth: int) -> int:
    """``depth`` if archived, else the shallowest deeper snapshot dataset."""
    depths = archive.available_depths(path, exchange, ticker)
    deeper = [d for d in depths if d >= depth]
    if deeper:
        return deeper[0]
    has_deltas = archive.archive_paths(path, BOOK_DELTA, exchange, ticker)
    hint = ("it has book_delta: materialise snapshots at that depth when converting "
            f"(e.g. depth={depth})" if has_deltas else "convert a capture first")
    raise DataError(f"no book_snapshot of depth >= {depth} for {exchange}/{ticker} "
                    f"(depths {depths or 'none'}); {hint}", source=os.fspath(path))


def _lob_records(books: SnapshotArrays, depth: int) -> list[dict]:
    """The tutorial's per-state dicts; 'b'/'a' are views into two stacked arrays."""
    bids = np.stack([books.bid_price[:, :depth], books.bid_size[:, :depth]], axis=2)
    asks = np.stack([books.ask_price[:, :depth], books.ask_size[:, :depth]], axis=2)
    n_bid = _present(books.bid_price[:, :depth]).tolist()
    n_ask = _present(books.ask_price[:, :depth]).tolist()
    ts = (books.exchange_ts // NS_PER_MS).tolist()
    return [
        {"ts": t, "b": bids[i, :nb], "a": asks[i, :na]}
        for i, (t, nb, na) in enumerate(zip(ts, n_bid, n_ask, strict=True))
    ]


def _present(prices: np.ndarray) -> np.ndarray:
    """Number of leading non-NaN levels per row (levels are best first, NaN-padded)."""
    missing = np.isnan(prices)
    return np.where(missing.any(axis=1), missing.argmax(axis=1), prices.shape[1])
