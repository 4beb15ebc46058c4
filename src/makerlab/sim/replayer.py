"""The Replayer: replays recorded books and trades through the simulated venue.

A thin shell over three pieces, one job each:

- :mod:`makerlab.sim.builder` checks the input, aligns the clocks and builds the
  :class:`~makerlab.sim.venue.SimVenue` with one matching engine per instrument;
- :mod:`makerlab.sim.loop` runs the replay (:class:`~makerlab.sim.loop.ReplayLoop`: market
  rows at exchange time to the engines, at local time to the subscribed feeds, scheduled
  events in between, equity stamps);
- :mod:`makerlab.sim.results` keeps the stamps and declarations, builds and saves the run
  record and serves the analytics.

The Replayer adds the tutorial's API (``get_oms``, ``get_feed``, ``play``, ``time``,
custom events) and is the market-data source of its :class:`MockFeed`. The tutorial API
speaks ms; everything inside is ns. :attr:`Replayer.ROW_BY_ROW` steps every engine
through every row (the reference the tests compare the fast path with). A monitoring
page served before ``play()`` (``await rep.get_oms().serve_page(rep.get_feed())``,
docs/monitor.md) gets the event loop every 5 ms of wall time; it only reads, so the
replay's results do not change.

Records kept for analytics: ``fills`` and ``actions`` (the venue's journal), ``stamps``
(every ``stamp_cycle`` ms per exchange ``(ts_ns, exc, equity, balance, inventory
notional)``) and ``declarations`` (what the strategy :meth:`Replayer.declare`-d).
"""

from __future__ import annotations

import contextlib
import gc
import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from tqdm import tqdm

from makerlab.errors import ConfigError, DataError
from makerlab.sim import builder, streaming
from makerlab.sim.checks import Tape, check_times
from makerlab.sim.journal import OrderJournal
from makerlab.sim.latency import Latencies
from makerlab.sim.loop import ReplayLoop
from makerlab.sim.matching import FillModel
from makerlab.sim.mock_feed import MockFeed, ReplayCursor, deliveries
from makerlab.sim.queue import QueueModel
from makerlab.sim.results import Analytics, ReplayResults
from makerlab.sim.timeline import BookTape, MarketTimeline, TradeTape, merge_market, ms_to_ns
from makerlab.sim.venue import SimVenue
from makerlab.sweep.context import sweepable
from makerlab.trading.oms import OMS
from makerlab.trading.risk import RiskLimits
from makerlab.units import NS_PER_MS

if TYPE_CHECKING:
    from makerlab.analytics.record import RunRecord

__all__ = ["MockOMS", "Replayer"]


class MockOMS(OMS):
    """The shared :class:`~makerlab.trading.oms.OMS` over the simulated venue, with the
    tutorial's two replay-only helpers."""

    def __init__(self, venue: SimVenue, risk: RiskLimits | None = None) -> None:
        super().__init__(venue=venue, risk=risk)
        self._sim = venue

    def get_positions_value(self, exc: str) -> float:
        """Net signed notional of ``exc``'s open positions at replay time."""
        return float(self._sim.balance(exc)["notional_position"])

    def lagged_price(self, exc: str, ticker: str) -> float:
        """Mid of ``ticker`` at the current exchange time."""
        return self._sim.engine(exc, ticker).mid()


class Replayer(Analytics):
    """Replay books and trades with the tutorial's constructor (all times in ms).

    The Replayer is also the market-data source of its :class:`MockFeed` (see
    :mod:`makerlab.trading.feed`, through :class:`~makerlab.sim.mock_feed.ReplayMarketData`):
    :meth:`check_market` and :attr:`started`.

    Args:
        l2_data: ``{exc: {ticker: [{'ts', 'b', 'a'}, ...]}}`` book snapshots (``ts`` ms).
        trade_data: ``{exc: {ticker: [(ts, price, size, dir), ...] or N x 4 array}}``.
        maker_fees, taker_fees: fractions of notional (negative maker fee = rebate).
        gateway: accepted for compatibility and ignored.
        exchanges: exchanges to trade (default: every exchange in the data).
        latencies: ms per :class:`~makerlab.sim.latency.Latencies` channel, or a latency
            model; default 100 ms public / 50 ms private.
        exchange_fees: ``{exc: {'maker': .., 'taker': ..}}`` overrides.
        exchange_latencies: ``{exc: latencies}`` overrides.
        stamp_cycle: ms between equity/inventory stamps.
        validate_data: reject crossed books, levels out of book order and non-finite or
            non-positive trade prices/sizes (:class:`~makerlab.errors.DataError` naming the
            market and record), and sort unsorted input (stable, by exchange time, with a
            warning). ``False`` trusts those values as given. Timestamps are checked
            either way (:mod:`makerlab.sim.checks`): whole, positive epoch ms, none far
            from the rest of the data.
        balance: starting balance per exchange, quote currency.
        seed: seed of :attr:`rng`, for custom random models (the built-in latency models
            carry their own seeds).
        queue_model: the queue-position model (default risk-averse).
        fill_model: :class:`~makerlab.sim.matching.PartialFills` (default) or
            :class:`~makerlab.sim.matching.NoPartialFills`.
        feed_cls: accepted for compatibility; the exchange id names the product
            (``binance`` perpetuals, ``binance_spot``, ...).
        run_dir: if given, :meth:`play` saves the run's record under
            ``run_dir/<UTC time>/`` when it ends (``makerlab report`` rebuilds reports
            from it).
        specs: instrument specs of the traded markets: a spec file, a directory of them,
            or ``{exc: {ticker: InstrumentSpec | {'tick_size': .., 'lot_size': ..}}}``.
            Markets it lacks take the venue spec cache, then the bundled specs, else
            specs inferred from the data with a warning (:mod:`makerlab.data.specs`);
            each market's spec and its source are in ``config['specs']``.
        risk: the :class:`~makerlab.trading.risk.RiskLimits` the OMS enforces, as a live
            OMS would (refusals, kill switch on a breach); recorded in :attr:`config`.
    """

    ROW_BY_ROW = False  # step every engine through every row (the reference path)
    STREAM_SEGMENT_NS = streaming.SEGMENT_NS  # a streamed archive's segment (tests shorten it)

    def __init__(self, l2_data: Mapping[str, Mapping[str, Any]],
                 trade_data: Mapping[str, Mapping[str, Any]], maker_fees: float = 0.0001,
                 taker_fees: float = 0.0003, gateway: Any = None,
                 exchanges: Sequence[str] | None = None, latencies: Any = None,
                 exchange_fees: Mapping[str, Mapping[str, Any]] | None = None,
                 exchange_latencies: Mapping[str, Any] | None = None, stamp_cycle: int = 1000,
                 validate_data: bool = True, balance: float = 10_000, seed: int = 0,
                 queue_model: QueueModel | None = None, fill_model: FillModel | None = None,
                 run_dir: str | os.PathLike | None = None, feed_cls: Any = None,
                 specs: str | os.PathLike | Mapping[str, Any] | None = None,
                 risk: RiskLimits | None = None) -> None:
        books, trades = builder.tutorial_tapes(l2_data, trade_data, validate_data)
        self._configure(books, trades, recorded_local_time=False, maker_fees=maker_fees,
                        taker_fees=taker_fees, exchanges=exchanges, latencies=latencies,
                        exchange_fees=exchange_fees, exchange_latencies=exchange_latencies,
                        stamp_cycle=stamp_cycle, balance=balance, seed=seed,
                        queue_model=queue_model, fill_model=fill_model, run_dir=run_dir,
                        specs=specs, risk=risk)

    @classmethod
    def from_archive(cls, markets: Mapping[str, Sequence[str]], start: Any, end: Any,
                     path: str | os.PathLike = "data/archive", depth: int = 20,
                     books: str = "snapshot", recorded_local_time: bool = True,
                     stream: bool | None = None, **options: Any) -> Replayer:
        """Replay ``{exc: [tickers]}`` from an archive, as numpy arrays (no per-row objects).

        ``start``/``end`` as in :func:`makerlab.data.arrays.load_snapshot_arrays`. ``books``
        picks the book source: ``"snapshot"`` (the archived depth-``depth`` snapshots) or
        ``"delta"`` (the book rebuilt from the archived deltas after every venue message,
        :func:`makerlab.data.arrays.load_snapshot_arrays_from_deltas`). With
        ``recorded_local_time`` the strategy sees data at its recorded receive time
        (corrected when the recorder's clock ran behind, see docs/replay.md), otherwise at
        exchange time + FEED_PUBLIC latency. ``stream``: read the range segment by segment as
        the replay advances (memory of the busiest hour, results equal to the range
        loaded whole: :mod:`makerlab.sim.streaming`); ``None`` (default) streams whenever
        it can (snapshot books on the recorded clock), ``False`` loads the range whole,
        ``True`` raises :class:`~makerlab.errors.ConfigError` when it cannot stream. A
        streamed replay's order journal (``actions``) spills to disk as it grows
        (:mod:`makerlab.sim.journal`).
        ``options`` as the constructor's (fees, latencies, balance, models, ...).
        ConfigError for an absent archive or a market with no book or trade row in the
        range.
        """
        from makerlab.data.storage import existing, redact

        existing(path)
        reason = streaming.unstreamable(books, recorded_local_time)
        if stream and reason is not None:
            raise ConfigError(f"from_archive(stream=True): cannot stream: {reason}; "
                              "give stream=None or False to load the range whole")
        self = cls.__new__(cls)  # archives were checked at conversion: no input checks
        if reason is None and stream is not False:
            source = streaming.ArchiveStream(markets, start, end, path, depth,
                                             segment_ns=cls.STREAM_SEGMENT_NS)
            windows = source.windows()
            first = next(windows)
            self._configure(first.books, first.trades, recorded_local_time=True,
                            clocks=source.clocks(), **options)
            self.venue.actions = OrderJournal(spill=True)  # bounded whatever the range
            self._stream = _Streamed(source, windows, first)
        else:
            book_tapes, trade_tapes = builder.archive_tapes(markets, start, end, path, depth,
                                                            books)
            self._configure(book_tapes, trade_tapes, recorded_local_time=recorded_local_time,
                            **options)
        self.config.update({"path": redact(os.fspath(path)), "start": str(start),
                            "end": str(end), "depth": depth, "books": books})
        return self

    @classmethod
    def from_tapes(cls, books: Sequence[BookTape], trades: Sequence[TradeTape],
                   recorded_local_time: bool = True, **options: Any) -> Replayer:
        """Replay columnar tapes already in memory (``options`` as the constructor's).

        Their timestamps are checked as the constructor's (:mod:`makerlab.sim.checks`);
        they are trusted to be in exchange-time order per market, with valid values.
        """
        check_times([*books, *trades])
        self = cls.__new__(cls)
        self._configure(list(books), list(trades), recorded_local_time=recorded_local_time,
                        **options)
        return self

    # -- construction ------------------------------------------------------------------

    @sweepable  # in a sweep configuration, its Replayer arguments replace these
    def _configure(self, books: list[BookTape], trades: list[TradeTape], *,
                   recorded_local_time: bool, run_dir: str | os.PathLike | None = None,
                   **options: Any) -> None:
        """The one place every construction path goes through (options: the
        constructor's, see :func:`makerlab.sim.builder.build`)."""
        setup = builder.build(books, trades, recorded_local_time=recorded_local_time,
                              **options)
        self.books, self.trades = setup.books, setup.trades
        self.venue, self.clock, self.queue = setup.venue, setup.clock, setup.queue
        self.latency_models, self.config = setup.latency_models, setup.config
        self.start_ns, self.end_ns = setup.start_ns, setup.end_ns
        self.stamp_cycle_ns = setup.stamp_cycle_ns
        self.rng = np.random.default_rng(setup.seed)
        self.run_dir = run_dir
        self.results = ReplayResults(self)
        self._callbacks: dict[Any, Callable[[Any], Any]] = {}
        self.started = self.finished = False
        self.n_events = 0
        self.specs = setup.specs
        self._stream: _Streamed | None = None
        self._oms = MockOMS(venue=self.venue, risk=setup.risk)
        self._feed = MockFeed(self)

    def check_market(self, kind: str, exc: str, ticker: str) -> None:
        """The Feed source seam: fail clearly if ``kind`` data of the market is absent."""
        if kind == "l2book":
            self.book_tape(exc, ticker)
        else:
            self.trade_tape(exc, ticker)

    def market_tapes(self) -> tuple[list[BookTape], list[TradeTape]]:
        """The replayed range's tapes for the record (a streamed replay: every row read
        so far, books as their top level; see :mod:`makerlab.sim.streaming`)."""
        if self._stream is None:
            return self.books, self.trades
        if self._stream.record is None:  # read once, when first asked for
            self._stream.record = self._stream.source.record_tapes()
        return self._stream.record

    def book_tape(self, exc: str, ticker: str) -> BookTape:
        """The market's loaded book rows: the whole range, or a streamed replay's current
        window only (:meth:`market_tapes` has the range)."""
        return _find(self.books, exc, ticker, "book")

    def trade_tape(self, exc: str, ticker: str) -> TradeTape:
        """The market's loaded prints (as :meth:`book_tape`: a streamed replay's window)."""
        return _find(self.trades, exc, ticker, "trade")

    # -- the tutorial API ----------------------------------------------------------------

    def get_oms(self) -> MockOMS:
        return self._oms

    def get_feed(self) -> MockFeed:
        return self._feed

    def time(self) -> int:
        """Current replay time in epoch ms."""
        return self.clock.ns // NS_PER_MS

    def get_mid(self, exc: str, ticker: str) -> float:
        return self.venue.engine(exc, ticker).mid()

    def declare(self, key: str, value: Any, exc: str | None = None, ticker: str | None = None,
                group: str | None = None) -> None:
        """Log ``value`` under ``key`` at the current replay time (ms) for analysis."""
        self.declarations.append({"ts": self.time(), "key": key, "value": value, "exc": exc,
                                  "ticker": ticker, "group": group})

    def add_callback(self, event_id: Any, callback: Callable[[Any], Any]) -> None:
        """Run ``callback(msg)`` (sync or async) for custom events of ``event_id``."""
        self._callbacks[event_id] = callback

    def add_events(self, event_id: Any, timestamps: Sequence[int], events: Sequence[Any],
                   exc: str | None = None, latency: Latencies | str = Latencies.NULL) -> None:
        """Schedule custom ``events`` at ``timestamps`` (ms) plus ``latency`` on ``exc``."""
        if len(timestamps) != len(events):
            raise ConfigError("add_events: timestamps and events must have the same length")
        for ts, msg in zip(timestamps, events, strict=True):
            self.add_to_queue(event_id, ts, msg, exc, latency)

    def add_to_queue(self, event_id: Any, timestamp: int, msg: Any, exc: str | None = None,
                     latency: Latencies | str = Latencies.NULL) -> None:
        """Schedule one custom event at ``timestamp`` ms plus the channel latency.

        Raises :class:`~makerlab.errors.ConfigError` for a timestamp that is not a whole
        number of epoch ms, or that lies before the replay time (:meth:`time`) once
        :meth:`play` runs; one at the current ms runs now.
        """
        try:
            t = int(ms_to_ns([timestamp], "custom event")[0])
        except DataError:
            raise ConfigError(f"add_to_queue({event_id!r}): timestamp {timestamp!r} is not a "
                              "whole number of epoch milliseconds") from None
        if self.started:
            if t < self.time() * NS_PER_MS:
                raise ConfigError(f"add_to_queue({event_id!r}): timestamp {timestamp!r} ms is "
                                  f"before the replay time {self.time()} ms")
            t = max(t, self.clock.ns)
        if exc is not None and Latencies(latency) is not Latencies.NULL:
            t += self.latency_models[exc].sample(latency, t)
        self.queue.push(t, self._custom, (event_id, msg))

    def _custom(self, args: tuple[Any, Any]) -> Any:
        event_id, msg = args
        callback = self._callbacks.get(event_id)
        if callback is None:
            raise ConfigError(f"no callback for custom event {event_id!r}; add_callback first")
        return callback(msg)

    # -- records -------------------------------------------------------------------------

    @property
    def fills(self) -> list[dict[str, Any]]:
        return self.venue.fills

    @property
    def actions(self) -> OrderJournal:
        return self.venue.actions

    @property
    def stamps(self) -> list[tuple[int, str, float, float, float]]:
        return self.results.stamps

    @property
    def declarations(self) -> list[dict[str, Any]]:
        return self.results.declarations

    def record(self) -> RunRecord:
        """This run's records as a :class:`~makerlab.analytics.record.RunRecord` (built
        once when :meth:`play` has ended; a snapshot so far while it is running)."""
        return self.results.record()

    def save(self, path: str | os.PathLike, code_file: str | os.PathLike | None = None) -> Path:
        """Save the run's record under ``path`` (see :meth:`ReplayResults.save
        <makerlab.sim.results.ReplayResults.save>`)."""
        return self.results.save(path, code_file)

    # -- the loop ------------------------------------------------------------------------

    async def play(self, progress: bool = True) -> None:
        """Replay everything (a tqdm bar on stderr unless ``progress=False``)."""
        if self.started:
            raise ConfigError("Replayer.play() runs once; build a new Replayer to replay again")
        self.started = True
        cursor = ReplayCursor(self.clock)
        window = None if self._stream is None else self._stream.first
        span = None if window is None else (window.lo, window.hi)
        out = deliveries(self._feed, self.books, self.trades, cursor, span)
        subscribed = (set(out.books), set(out.trades))
        local = _local_rows(self.books, self.trades, subscribed, span)
        lazy = {d.stream: len(d.times) for d in out.lazy}  # their local rows, once a tape
        self.n_events, last_ns = self._extent(subscribed, set(lazy), local, lazy)
        loop = ReplayLoop(self.venue, self.clock, self.queue, self.books, self.trades, local,
                          out, cursor, (self.start_ns, self.end_ns), self.stamp_cycle_ns,
                          self.results.stamps, self.ROW_BY_ROW,
                          page=self._oms.page is not None,
                          more=window is not None and not window.last)
        del window  # a streamed replay's windows are dropped as it moves on
        with _frozen_heap():
            if progress:
                with tqdm(total=self.n_events, unit="ev", mininterval=0.5) as bar:
                    await self._run(loop, bar, subscribed)
                    bar.update(self.n_events - bar.n)
            else:
                await self._run(loop, _NoBar(), subscribed)
        loop.finish(last_ns)
        self.finished = True
        if self.run_dir is not None:
            self.save(Path(self.run_dir) / datetime.now(UTC).strftime("%Y%m%dT%H%M%S"))

    def _extent(self, subscribed: tuple[set[int], set[int]], lazy: set[int],
                local: Any, lazy_rows: dict[int, int]) -> tuple[int, int]:
        """The progress bar's event count (every row, plus each subscribed tape's rows at
        local time) and the replay's last time (data at exchange time, delivered rows at
        local time)."""
        if self._stream is None:
            tapes: list[Tape] = [*self.books, *self.trades]
            n = sum(len(t) for t in tapes) + len(local) + sum(lazy_rows.values())
            return n, max([int(t.exchange_ts.max()) for t in tapes if len(t)]
                          + local.t[-1:].tolist())
        source = self._stream.source
        books, trades = source.counts()
        n = sum(books) + sum(trades) + sum(books[i] for i in subscribed[0]) + sum(
            trades[i] for i in subscribed[1] | lazy)
        names = {("book_snapshot", self.books[i].exc, self.books[i].ticker)
                 for i in subscribed[0]} | {("trades", self.trades[i].exc, self.trades[i].ticker)
                                            for i in subscribed[1]}
        return n, source.last_ns(names)

    async def _run(self, loop: ReplayLoop, bar: Any, subscribed: tuple[set[int], set[int]]
                   ) -> None:
        """The loop over the whole tapes, or window after window (a streamed replay)."""
        if self._stream is None:
            await loop.run(bar, self.n_events)
            return
        window = self._stream.first
        self._stream.first = None  # type: ignore[assignment]  # not kept past its segment
        while True:
            await loop.run(bar, self.n_events, window.hi)
            if window.last:
                return
            loop.release()
            window = next(self._stream.windows)
            self.books, self.trades = window.books, window.trades
            span = (window.lo, window.hi)
            loop.rebase(window.books, window.trades,
                        _local_rows(window.books, window.trades, subscribed, span),
                        window.carry, span, not window.last)


@dataclass(eq=False)
class _Streamed:
    """A streamed replay's source and its windows (the first already built)."""

    source: streaming.ArchiveStream
    windows: Iterator[streaming.Window]
    first: streaming.Window
    record: tuple[list[BookTape], list[TradeTape]] | None = None


def _local_rows(books: list[BookTape], trades: list[TradeTape],
                subscribed: tuple[set[int], set[int]], span: tuple[int, int] | None
                ) -> MarketTimeline:
    """The subscribed tapes' local-time rows (received in ``span``, if given)."""
    local = merge_market(books, trades, *subscribed)
    if span is None:
        return local
    keep = (local.t >= span[0]) & (local.t < span[1])
    return MarketTimeline(local.t[keep], local.kind[keep], local.stream[keep],
                          local.row[keep])


@contextlib.contextmanager
def _frozen_heap() -> Iterator[None]:
    """Objects that exist when the replay starts (modules, tapes, the strategy's own) are
    kept out of the garbage collector's walks while it runs (``gc.freeze``), unless the
    caller froze or disabled collection already: a full collection during a replay then
    walks only what the replay made. Measured in docs/performance.md."""
    if not gc.isenabled() or gc.get_freeze_count():
        yield
        return
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


class _NoBar:
    """Stands in for the progress bar (tqdm costs milliseconds to set up)."""

    n = 0

    def update(self, k: int) -> None:
        self.n += k


def _find(tapes: Sequence[Any], exc: str, ticker: str, what: str) -> Any:
    for tape in tapes:
        if (tape.exc, tape.ticker) == (exc, ticker):
            return tape
    known = ", ".join(f"{t.exc}/{t.ticker}" for t in tapes)
    raise ConfigError(f"no {what} data for {exc}/{ticker} in this replay; known: {known}")
