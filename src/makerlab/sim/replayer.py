"""The Replayer: replays recorded books and trades through the simulated venue.

It builds one :class:`~makerlab.sim.matching.MatchingEngine` per instrument, a
:class:`~makerlab.sim.venue.SimVenue`, a :class:`MockOMS` and a
:class:`~makerlab.sim.mock_feed.MockFeed`, then :meth:`Replayer.play` drains the timeline
(:mod:`makerlab.sim.timeline`): market rows at exchange time go to the engines, at local
time to subscribed feeds; scheduled events (orders, acks, fills, timers, custom events)
interleave by time. The tutorial API speaks ms; everything inside is ns.

How the loop stays cheap (the ordering rules are :mod:`makerlab.sim.timeline`'s):

- **only subscribed rows are iterated**: the loop walks the merged local-time rows of
  subscribed tapes, the event queue, and the exchange-time rows of engines that hold
  resting orders ("stepping" engines). Any other engine is caught up lazily, with a
  ``searchsorted``, whenever the venue reads it (order arrival, marks, ``get_mid``).
- **flat and idle stamps are written in bulk**: while no position is open, no engine
  steps and nothing else is scheduled, the equity stamps up to the next event are
  appended at once.
- :attr:`Replayer.ROW_BY_ROW` turns both off (every engine steps through every row), as
  the reference the tests compare the fast path with.
- **a served monitoring page** (``await rep.get_oms().serve_page(rep.get_feed())`` before
  ``play()``, docs/monitor.md) gets the event loop every 5 ms of wall time; it only
  reads, so the replay's results do not change.

Records kept for analytics (the analytics issue builds on them):

- ``fills``: one dict per fill (exchange time ``ts`` ns, price, size, dir, is_maker, fee,
  the rule that filled it, the order's arrival time, the venue position after it);
- ``actions``: every submit, cancel, ack, reject, cancellation and expiry with its time;
- ``stamps``: every ``stamp_cycle`` ms per exchange ``(ts_ns, exc, equity, balance,
  inventory notional)``;
- ``declarations``: what the strategy :meth:`Replayer.declare`-d.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import os
import shutil
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from makerlab.analytics import frames, metrics, research
from makerlab.analytics.record import RunRecord
from makerlab.analytics.report import CODE_FILE
from makerlab.core.clock import ReplayClock
from makerlab.data.specs import Resolved, SpecResolver
from makerlab.errors import ConfigError, DataError
from makerlab.sim.checks import check_times, checked_values
from makerlab.sim.fees import FeeSchedule
from makerlab.sim.latency import (
    ConstantLatency,
    Latencies,
    LatencyModel,
    latency_model_from,
    latency_models_by_exchange,
)
from makerlab.sim.matching import FillModel, MatchingEngine, NoPartialFills, PartialFills
from makerlab.sim.mock_feed import MockFeed, deliveries
from makerlab.sim.models import to_config
from makerlab.sim.queue import QueueModel, RiskAverseQueue
from makerlab.sim.timeline import (
    BOOK_EXCH,
    TRADE_LOCAL,
    BookTape,
    EngineRows,
    EventQueue,
    TradeTape,
    merge_market,
    ms_to_ns,
)
from makerlab.sim.venue import SimVenue
from makerlab.sweep.context import sweepable
from makerlab.trading.oms import OMS
from makerlab.trading.risk import RiskLimits
from makerlab.units import NS_PER_MS

__all__ = ["MockOMS", "Replayer"]

log = logging.getLogger(__name__)


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


class Replayer:
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
        books = [BookTape.from_records(e, t, recs) for e, d in l2_data.items()
                 for t, recs in d.items()]
        trades = [TradeTape.from_rows(e, t, rows) for e, d in trade_data.items()
                  for t, rows in d.items()]
        check_times([*books, *trades])
        if validate_data:
            books = [checked_values(b) for b in books]
            trades = [checked_values(t) for t in trades]
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
                     **options: Any) -> Replayer:
        """Replay ``{exc: [tickers]}`` from an archive, as numpy arrays (no per-row objects).

        ``start``/``end`` as in :func:`makerlab.data.arrays.load_snapshot_arrays`. ``books``
        picks the book source: ``"snapshot"`` (the archived depth-``depth`` snapshots) or
        ``"delta"`` (the book rebuilt from the archived deltas after every venue message,
        :func:`makerlab.data.arrays.load_snapshot_arrays_from_deltas`). With
        ``recorded_local_time`` the strategy sees data at its recorded receive time
        (corrected when the recorder's clock ran behind, see docs/replay.md), otherwise at
        exchange time + FEED_PUBLIC latency. ``options`` as the constructor's (fees,
        latencies, balance, models, ...).
        """
        from makerlab.data import arrays

        loaders = {"snapshot": arrays.load_snapshot_arrays,
                   "delta": arrays.load_snapshot_arrays_from_deltas}
        if books not in loaders:
            raise ConfigError(f"books must be 'snapshot' or 'delta', got {books!r}")
        load_books, source = loaders[books], books
        books, trades = [], []
        for exc, tickers in markets.items():
            for t in tickers:
                snap = load_books(path, exc, t, depth, start, end)
                books.append(BookTape.from_arrays(exc, t, snap))
                trades.append(TradeTape.from_arrays(exc, t, arrays.load_trade_arrays(
                    path, exc, t, start, end)))
        self = cls.__new__(cls)  # archives were checked at conversion: no input checks
        self._configure(books, trades, recorded_local_time=recorded_local_time, **options)
        self.config.update({"path": str(path), "start": str(start), "end": str(end),
                            "depth": depth, "books": source})
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
                   recorded_local_time: bool, maker_fees: float = 0.0001,
                   taker_fees: float = 0.0003, exchanges: Sequence[str] | None = None,
                   latencies: Any = None,
                   exchange_fees: Mapping[str, Mapping[str, Any]] | None = None,
                   exchange_latencies: Mapping[str, Any] | None = None,
                   stamp_cycle: int = 1000, balance: float = 10_000, seed: int = 0,
                   queue_model: QueueModel | None = None, fill_model: FillModel | None = None,
                   run_dir: str | os.PathLike | None = None,
                   specs: str | os.PathLike | Mapping[str, Any] | None = None,
                   risk: RiskLimits | None = None) -> None:
        """Set up the venue and records for ``books``/``trades`` (the one place every
        construction path goes through; the defaults are the constructor's)."""
        self.specs = _resolve_specs(SpecResolver(specs), books, trades, exchanges)
        names = list(dict.fromkeys(t.exc for t in [*books, *trades]))
        default_latency = latency_model_from(latencies)
        self.latency_models = latency_models_by_exchange(names, default_latency,
                                                         exchange_latencies)
        if recorded_local_time:
            shifts = _align_local_clocks(books, trades)
        else:
            shifts = {}
            books = [_with_feed_latency(b, self.latency_models[b.exc]) for b in books]
            trades = [_with_feed_latency(t, self.latency_models[t.exc]) for t in trades]
        fees = FeeSchedule.from_tutorial(maker_fees, taker_fees, exchange_fees)
        queue_model, fill_model = _engine_models(queue_model, fill_model)
        self._setup(books, trades, fees, stamp_cycle, balance, seed, queue_model, fill_model,
                    risk)
        self.run_dir = run_dir
        self.config = {"maker_fees": maker_fees, "taker_fees": taker_fees,
                       "exchange_fees": exchange_fees, "latencies": to_config(default_latency),
                       "exchange_latencies": {e: to_config(self.latency_models[e])
                                              for e in exchange_latencies or {}},
                       "stamp_cycle": stamp_cycle, "balance": balance, "seed": seed,
                       "queue_model": to_config(queue_model), "fill_model": to_config(fill_model),
                       "fees": to_config(fees),
                       "latency_models": {e: to_config(m) for e, m in self.latency_models.items()},
                       "recorded_local_time": recorded_local_time,
                       "risk": None if risk is None else to_config(risk),
                       "local_clock_shift_ms": {e: ns / NS_PER_MS for e, ns in shifts.items()},
                       "specs": _spec_records(self.specs)}

    def _setup(self, books: list[BookTape], trades: list[TradeTape], fees: FeeSchedule,
               stamp_cycle: int, balance: float, seed: int, queue_model: QueueModel,
               fill_model: FillModel, risk: RiskLimits | None) -> None:
        self.books, self.trades = books, trades
        self.rng = np.random.default_rng(seed)
        self.stamp_cycle_ns = int(stamp_cycle) * NS_PER_MS
        self.clock, self.queue = ReplayClock(), EventQueue()
        self.venue = SimVenue(self.queue, self.clock, self.latency_models, fees,
                              Decimal(str(balance)))
        self._build_engines(queue_model, fill_model)
        self._set_times()
        self.stamps: list[tuple[int, str, float, float, float]] = []
        self.declarations: list[dict[str, Any]] = []
        self._callbacks: dict[Any, Callable[[Any], Any]] = {}
        self.started = False
        self.finished = False
        self._final_record: RunRecord | None = None  # built once, after play() ends
        self._oms = MockOMS(venue=self.venue, risk=risk)
        self._feed = MockFeed(self)

    def _build_engines(self, queue_model: QueueModel, fill_model: FillModel) -> None:
        for (exc, ticker), resolved in self.specs.items():
            spec = resolved.spec
            book = next((b for b in self.books if (b.exc, b.ticker) == (exc, ticker)), None)
            trade = next((t for t in self.trades if (t.exc, t.ticker) == (exc, ticker)), None)
            account = self.venue.account(exc)
            engine = MatchingEngine(spec, book, trade, _position_getter(account, ticker),
                                    queue_model, fill_model)
            self.venue.add_engine(engine)

    def _set_times(self) -> None:
        firsts = [int(tape.exchange_ts.min()) for tape in [*self.books, *self.trades]
                  if len(tape)]
        lasts = [int(max(tape.exchange_ts.max(), tape.local_ts.max()))
                 for tape in [*self.books, *self.trades] if len(tape)]
        if not firsts:
            raise ConfigError("Replayer: no book or trade data to replay")
        self.start_ns, self.end_ns = min(firsts), max(lasts)
        self.clock.ns = self.start_ns
        self.venue.end_ns = self.end_ns

    def check_market(self, kind: str, exc: str, ticker: str) -> None:
        """The Feed source seam: fail clearly if ``kind`` data of the market is absent."""
        if kind == "l2book":
            self.book_tape(exc, ticker)
        else:
            self.trade_tape(exc, ticker)

    def book_tape(self, exc: str, ticker: str) -> BookTape:
        return _find(self.books, exc, ticker, "book")

    def trade_tape(self, exc: str, ticker: str) -> TradeTape:
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
    def actions(self) -> list[dict[str, Any]]:
        return self.venue.actions

    # -- analytics (definitions: docs/analytics.md, makerlab.analytics) -----------------

    def record(self) -> RunRecord:
        """This run's records as a :class:`~makerlab.analytics.record.RunRecord` (built
        once when :meth:`play` has ended; a snapshot so far while it is running)."""
        if not self.finished:
            return RunRecord.from_replayer(self)
        if self._final_record is None:
            self._final_record = RunRecord.from_replayer(self)
        return self._final_record

    def save(self, path: str | os.PathLike, code_file: str | os.PathLike | None = None) -> Path:
        """Save the run's record under ``path`` for ``makerlab report`` to rebuild reports,
        with a copy of the script that ran it (``code_file``, default: the ``__main__``
        script unless it is an installed tool such as pytest)."""
        folder = self.record().save(path)
        script = code_file or _main_script()
        if script is not None:
            shutil.copyfile(script, folder / CODE_FILE)
        return folder

    def statistics(self, **kwargs: Any) -> dict[str, dict[str, Any] | None]:
        """``{exc: statistics or None}`` (:func:`makerlab.analytics.metrics.statistics`)."""
        return metrics.statistics(self.record(), **kwargs)

    def statistics_exc(self, exc: str, **kwargs: Any) -> dict[str, Any] | None:
        return metrics.statistics_exc(self.record(), exc, **kwargs)

    def df_exchange(self, exc: str, **kwargs: Any) -> Any:
        return frames.df_exchange(self.record(), exc, **kwargs)

    def df_portfolio(self, **kwargs: Any) -> Any:
        return frames.df_portfolio(self.record(), **kwargs)

    def df_markouts(self, **kwargs: Any) -> Any:
        return frames.df_markouts(self.record(), **kwargs)

    def df_prices(self, ticker: str, exc: str, **kwargs: Any) -> Any:
        return frames.df_prices(self.record(), ticker, exc, **kwargs)

    def df_fills(self, ticker: str, exc: str, **kwargs: Any) -> Any:
        return frames.df_fills(self.record(), ticker, exc, **kwargs)

    def df_actions(self, exc: str | None = None, ticker: str | None = None) -> Any:
        return frames.df_actions(self.record(), exc, ticker)

    def df_counterparty_pnl(self, exc_tickers: Mapping[str, Sequence[str]],
                            **kwargs: Any) -> Any:
        return frames.df_counterparty_pnl(self.record(), exc_tickers, **kwargs)

    def df_declarations(self, **kwargs: Any) -> Any:
        return research.df_declarations(self.record(), **kwargs)

    def augment_forward_prices(self, df: Any, **kwargs: Any) -> Any:
        return research.augment_forward_prices(self.record(), df, **kwargs)

    def df_fairprices(self, group: str, **kwargs: Any) -> Any:
        return research.df_fairprices(self.record(), group, **kwargs)

    def _stamp_values(self) -> list[tuple[str, float, float, float]]:
        out = []
        for exc, account in self.venue.accounts.items():
            marks = self.venue.marks(exc)
            inventory = sum(float(p.amount) * marks.get(t, float("nan"))
                            for t, p in account.positions.items() if p.amount)
            out.append((exc, account.equity(marks), float(account.balance), inventory))
        return out

    def _stamp(self, _: Any = None) -> None:
        now = self.clock.ns
        self.stamps.extend((now, *values) for values in self._stamp_values())
        if now + self.stamp_cycle_ns <= self.end_ns:
            self.queue.push(now + self.stamp_cycle_ns, self._stamp, _STAMP)

    def _bulk_stamps(self, limit_ns: int) -> None:
        """Every stamp due up to ``limit_ns`` at once, while nothing can change them: no
        position open, no engine stepping, nothing else scheduled before ``limit_ns``."""
        t0 = self.queue.pop()[0]
        cycle = self.stamp_cycle_ns
        last = t0 + (limit_ns - t0) // cycle * cycle
        self.clock.ns = t0
        values = self._stamp_values()
        self.stamps.extend((t, *v) for t in range(t0, last + 1, cycle) for v in values)
        self.clock.ns = last
        if last + cycle <= self.end_ns:
            self.queue.push(last + cycle, self._stamp, _STAMP)

    def _flat(self) -> bool:
        return not any(p.amount for account in self.venue.accounts.values()
                       for p in account.positions.values())

    # -- the loop ------------------------------------------------------------------------

    async def play(self, progress: bool = True) -> None:
        """Replay everything (a tqdm bar on stderr unless ``progress=False``)."""
        if self.started:
            raise ConfigError("Replayer.play() runs once; build a new Replayer to replay again")
        self.started = True
        self._books_out, self._trades_out = deliveries(self._feed, self.books, self.trades)
        local = merge_market(self.books, self.trades, set(self._books_out),
                             set(self._trades_out), exchange_rows=False)
        self.n_events = sum(len(t) for t in [*self.books, *self.trades]) + len(local)
        self._make_lanes()
        self._page_turn = 0.0
        self.queue.push(self.start_ns, self._stamp, _STAMP)
        if progress:
            with tqdm(total=self.n_events, unit="ev", mininterval=0.5) as bar:
                await self._drain(local, bar)
                bar.update(self.n_events - bar.n)
        else:
            await self._drain(local, _NoBar())
        last = [int(tape.exchange_ts.max()) for tape in [*self.books, *self.trades] if len(tape)]
        self.clock.ns = max([self.clock.ns, *last, *local.t[-1:].tolist()])
        self._synced_ns = None
        self._sync_engines()
        self.finished = True
        if self.run_dir is not None:
            self.save(Path(self.run_dir) / datetime.now(UTC).strftime("%Y%m%dT%H%M%S"))

    def _make_lanes(self) -> None:
        self._lanes: list[_Lane] = []
        self._active: list[_Lane] = []
        self._synced_ns: int | None = None
        for engine in self.venue.engines.values():
            rows = EngineRows(engine.book, engine.trades, _index(self.books, engine.book),
                              _index(self.trades, engine.trades))
            self._lanes.append(_Lane(engine, rows))
        self.venue.sync = self._sync_engines
        if self.ROW_BY_ROW:
            for lane in self._lanes:
                self._activate(lane, self.start_ns - 1)

    def _sync_engines(self) -> None:
        """Bring every engine that is not stepping to its book row at the current time."""
        now = self.clock.ns
        if now == self._synced_ns:
            return
        self._synced_ns = now
        for lane in self._lanes:
            if not lane.active:
                engine, row = lane.engine, lane.rows.row_at(now)
                if row != engine.row:
                    engine.row = row
                    engine._consumed.clear()

    def _activate(self, lane: _Lane, after_ns: int) -> None:
        t, lane.kind, lane.stream, lane.row = lane.rows.steps()
        lane.t, lane.n = t, len(t)
        lane.pos = lane.rows.first_after(after_ns)
        lane.done = lane.pos >= lane.n
        if not lane.done:
            lane.active = True
            self._active.append(lane)
            self._synced_ns = None

    def _deactivate(self, lane: _Lane) -> None:
        lane.active = False
        self._active.remove(lane)
        self._synced_ns = None

    def _refresh_lanes(self) -> None:
        """After a scheduled event: engines that now hold orders start stepping."""
        for lane in self._lanes:
            if lane.active:
                if not lane.engine.resting and not self.ROW_BY_ROW:
                    self._deactivate(lane)
            elif lane.engine.resting and not lane.done:
                self._activate(lane, self.clock.ns)

    def _first_lane(self) -> _Lane:
        def key(lane: _Lane) -> tuple[int, int, int, int]:
            k = lane.pos
            return lane.t[k], lane.kind[k], lane.stream[k], lane.row[k]

        return min(self._active, key=key)

    async def _drain(self, local: Any, bar: Any) -> None:
        lt, lk = local.t.tolist(), local.kind.tolist()
        ls, lr = local.stream.tolist(), local.row.tolist()
        heap, clock, end, active = self.queue._heap, self.clock, self.end_ns, self._active
        books, trades = self._books_out, self._trades_out
        n, i = len(lt), 0
        while True:
            t = lt[i] if i < n else _NEVER
            lane, te = None, _NEVER
            if active:
                lane = active[0] if len(active) == 1 else self._first_lane()
                te = lane.t[lane.pos]
            first = te if te < t else t
            if heap and heap[0][0] < first and heap[0][0] <= end:
                if (heap[0][3] is _STAMP and len(heap) == 1 and not active
                        and not self.ROW_BY_ROW and self._flat()):
                    self._bulk_stamps(min(first - 1, end))
                else:
                    await self._run_next()
                    self._refresh_lanes()
                continue
            if lane is not None and te <= t:
                self._step(lane)
            elif i < n:
                clock.ns = t
                out = trades[ls[i]] if lk[i] == TRADE_LOCAL else books[ls[i]]
                if out.quiet:
                    out.push(lr[i])
                else:
                    await out.deliver(lr[i])
                i += 1
                if not i & 0x3F and self._oms.page is not None:
                    await self._let_page_in()
                if not i & 0x3FFF:
                    self._progress(bar, t)
            else:
                return

    async def _let_page_in(self) -> None:
        """Give a served page the loop every 5 ms of wall time (it only reads)."""
        now = time.perf_counter()
        if now >= self._page_turn:
            self._page_turn = now + 0.005
            await asyncio.sleep(0)

    def _progress(self, bar: Any, t: int) -> None:
        span = max(self.end_ns - self.start_ns, 1)
        bar.update(int(self.n_events * (t - self.start_ns) / span) - bar.n)

    def _step(self, lane: _Lane) -> None:
        """One exchange-time row of a stepping engine."""
        k = lane.pos
        lane.pos = k + 1
        self.clock.ns = lane.t[k]
        engine, row = lane.engine, lane.row[k]
        if lane.kind[k] == BOOK_EXCH:
            if engine.resting:
                self._settle(engine, engine.on_book(row))
            else:
                engine.row = row
                if engine._consumed:
                    engine._consumed.clear()
        elif engine.resting:
            tape = engine.trades
            price, taker = float(tape.price[row]), int(tape.side[row])
            if self.ROW_BY_ROW or engine.reaches(price, taker):
                self._settle(engine, engine.on_trade(price, float(tape.size[row]), taker))
        if lane.pos == lane.n:
            self._deactivate(lane)
            lane.done = True
        elif not engine.resting and not self.ROW_BY_ROW:
            self._deactivate(lane)

    def _settle(self, engine: MatchingEngine, result: Any) -> None:
        if result.fills or result.expired:
            self.venue.settle(engine.spec.exchange, result)

    async def _run_next(self) -> None:
        t, callback, payload = self.queue.pop()
        self.clock.ns = t
        self._sync_engines()  # callbacks may read engines directly (tests, custom events)
        result = callback(payload)
        if inspect.isawaitable(result):
            await result


# -- helpers -----------------------------------------------------------------------------

_NEVER = 1 << 62  # later than any replayed time
_STAMP = object()  # payload marking the equity stamp on the event queue


@dataclass(eq=False)
class _Lane:
    """A matching engine and where it is in its exchange-time rows."""

    engine: MatchingEngine
    rows: EngineRows
    active: bool = False
    done: bool = False
    pos: int = 0
    n: int = 0
    t: list[int] = field(default_factory=list)
    kind: list[int] = field(default_factory=list)
    stream: list[int] = field(default_factory=list)
    row: list[int] = field(default_factory=list)


class _NoBar:
    """Stands in for the progress bar (tqdm costs milliseconds to set up)."""

    n = 0

    def update(self, k: int) -> None:
        self.n += k


def _index(tapes: Sequence[Any], tape: Any) -> int:
    return next((i for i, t in enumerate(tapes) if t is tape), -1)


def _find(tapes: Sequence[Any], exc: str, ticker: str, what: str) -> Any:
    for tape in tapes:
        if (tape.exc, tape.ticker) == (exc, ticker):
            return tape
    known = ", ".join(f"{t.exc}/{t.ticker}" for t in tapes)
    raise ConfigError(f"no {what} data for {exc}/{ticker} in this replay; known: {known}")


def _engine_models(queue_model: Any, fill_model: Any) -> tuple[QueueModel, FillModel]:
    """The engines' models, defaults filled in; anything else is a ConfigError."""
    queue_model = RiskAverseQueue() if queue_model is None else queue_model
    fill_model = PartialFills() if fill_model is None else fill_model
    if not isinstance(queue_model, QueueModel):
        raise ConfigError(f"queue_model={queue_model!r} is not a queue model "
                          "(makerlab.sim.queue: RiskAverseQueue(), PowerProbQueue(n), ...)")
    if not isinstance(fill_model, PartialFills | NoPartialFills):
        raise ConfigError(f"fill_model={fill_model!r} must be PartialFills() or "
                          "NoPartialFills()")
    return queue_model, fill_model


def _resolve_specs(resolver: SpecResolver, books: list[BookTape], trades: list[TradeTape],
                   exchanges: Sequence[str] | None) -> dict[tuple[str, str], Resolved]:
    """The spec of every traded market (every market when ``exchanges`` is None)."""
    markets = dict.fromkeys((t.exc, t.ticker) for t in [*books, *trades]
                            if exchanges is None or t.exc in exchanges)
    return {(exc, ticker): resolver.resolve(exc, ticker, _sampler(exc, ticker, books, trades))
            for exc, ticker in markets}


def _sampler(exc: str, ticker: str, books: list[BookTape],
             trades: list[TradeTape]) -> Callable[[], tuple[np.ndarray, np.ndarray]]:
    """The prices and sizes of a market's book levels and trades, when asked for."""
    def sample() -> tuple[np.ndarray, np.ndarray]:
        prices, sizes = [np.empty(0)], [np.empty(0)]
        for b in (b for b in books if (b.exc, b.ticker) == (exc, ticker)):
            prices += [b.bid_price.ravel(), b.ask_price.ravel()]
            sizes += [b.bid_size.ravel(), b.ask_size.ravel()]
        for t in (t for t in trades if (t.exc, t.ticker) == (exc, ticker)):
            prices.append(t.price)
            sizes.append(t.size)
        return np.concatenate(prices), np.concatenate(sizes)
    return sample


def _spec_records(specs: Mapping[tuple[str, str], Resolved]) -> dict[str, dict[str, Any]]:
    """``{exc: {ticker: row with its source}}``: what ``config['specs']`` records (and
    what ``specs=`` takes back)."""
    out: dict[str, dict[str, Any]] = {}
    for (exc, ticker), resolved in specs.items():
        out.setdefault(exc, {})[ticker] = resolved.record()
    return out


def _position_getter(account: Any, ticker: str) -> Callable[[], Decimal]:
    return lambda: account.position(ticker).amount


def _with_feed_latency(tape: Any, model: LatencyModel) -> Any:
    """``tape`` with local time = exchange time + a FEED_PUBLIC latency sample per row."""
    ets = np.asarray(tape.exchange_ts, np.int64)
    if isinstance(model, ConstantLatency):
        lat: Any = model.ns[Latencies.FEED_PUBLIC]
    else:
        lat = np.array([model.sample(Latencies.FEED_PUBLIC, int(t)) for t in ets.tolist()],
                       dtype=np.int64)
    tape.local_ts = ets + lat
    return tape


def _align_local_clocks(books: list[BookTape], trades: list[TradeTape]) -> dict[str, int]:
    """Shift each exchange's recorded local clock so no row is received before it happened.

    A recorder whose clock runs behind the venue's (the bundled Binance captures: about
    1.27 s) stamps receive times *before* exchange times; replayed as they are, the strategy
    would see every book before the matching engine does. Like hftbacktest's converter,
    the shift is the smallest ``local_ts - exchange_ts`` of the exchange's rows, so the
    fastest row arrives with zero latency and every other keeps its recorded delay.
    Returns the shift applied per exchange, in ns.
    """
    shifts: dict[str, int] = {}
    for tape in [*books, *trades]:
        if len(tape):
            low = int((tape.local_ts - tape.exchange_ts).min())
            shifts[tape.exc] = min(shifts.get(tape.exc, 0), low)
    for tape in [*books, *trades]:
        if shifts.get(tape.exc):
            tape.local_ts = tape.local_ts - shifts[tape.exc]
    for exc, shift in shifts.items():
        if shift:
            log.info("%s: recorded local clock behind exchange time; shifted by %.3f ms",
                     exc, -shift / NS_PER_MS)
    return {exc: -shift for exc, shift in shifts.items() if shift}


def _main_script() -> str | None:
    """The running script's path, unless it is an installed tool (pytest, ipython...)."""
    main = getattr(sys.modules.get("__main__"), "__file__", None)
    if main is None or not main.endswith(".py") or "site-packages" in main:
        return None
    return main
