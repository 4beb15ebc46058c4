"""The Replayer: replays recorded books and trades through the simulated venue.

It builds one :class:`~makerlab.sim.matching.MatchingEngine` per instrument, a
:class:`~makerlab.sim.venue.SimVenue`, a :class:`MockOMS` and a
:class:`~makerlab.sim.mock_feed.MockFeed`, then :meth:`Replayer.play` drains the timeline
(:mod:`makerlab.sim.timeline`): market rows at exchange time go to the engines, at local
time to subscribed feeds; scheduled events (orders, acks, fills, timers, custom events)
interleave by time. The tutorial API speaks ms; everything inside is ns.

Records kept for analytics (the analytics issue builds on them):

- ``fills``: one dict per fill (exchange time ``ts`` ns, price, size, dir, is_maker, fee,
  the rule that filled it, the order's arrival time, the venue position after it);
- ``actions``: every submit, cancel, ack, reject, cancellation and expiry with its time;
- ``stamps``: every ``stamp_cycle`` ms per exchange ``(ts_ns, exc, equity, balance,
  inventory notional)``;
- ``declarations``: what the strategy :meth:`Replayer.declare`-d.
"""

from __future__ import annotations

import inspect
import os
from collections.abc import Callable, Mapping, Sequence
from decimal import Decimal
from typing import Any

import numpy as np
from tqdm import tqdm

from makerlab.core.instruments import load_specs
from makerlab.errors import ConfigError
from makerlab.oms import OMS
from makerlab.sim.fees import FeeSchedule
from makerlab.sim.latency import (
    ConstantLatency,
    Latencies,
    LatencyModel,
    latency_models_by_exchange,
)
from makerlab.sim.matching import MatchingEngine
from makerlab.sim.mock_feed import MockFeed, Subscription
from makerlab.sim.queue import QueueModel
from makerlab.sim.stats import statistics
from makerlab.sim.timeline import (
    NS_PER_MS,
    BookTape,
    EventQueue,
    IdleSkipper,
    TradeTape,
    merge_market,
)
from makerlab.sim.venue import Clock, SimVenue

__all__ = ["MockOMS", "Replayer"]


class MockOMS(OMS):
    """The shared :class:`~makerlab.oms.OMS` over the simulated venue."""

    def get_positions_value(self, exc: str) -> float:
        """Net signed notional of ``exc``'s open positions at replay time."""
        return float(self.venue.balance(exc)["notional_position"])

    def lagged_price(self, exc: str, ticker: str) -> float:
        """Mid of ``ticker`` at the current exchange time."""
        return self.venue.engine(exc, ticker).mid()


class Replayer:
    """Replay books and trades with the tutorial's constructor (all times in ms).

    Args:
        l2_data: ``{exc: {ticker: [{'ts', 'b', 'a'}, ...]}}`` book snapshots (``ts`` ms).
        trade_data: ``{exc: {ticker: [(ts, price, size, dir), ...] or N x 4 array}}``.
        maker_fees, taker_fees: fractions of notional (negative maker fee = rebate).
        gateway: accepted for compatibility and ignored (specs come from the bundled
            :class:`~makerlab.core.instruments.InstrumentSpec` file).
        exchanges: exchanges to trade (default: every exchange in the data).
        latencies: ms per :class:`~makerlab.sim.latency.Latencies` channel, or a latency
            model; default 100 ms public / 50 ms private.
        exchange_fees: ``{exc: {'maker': .., 'taker': ..}}`` overrides.
        exchange_latencies: ``{exc: latencies}`` overrides.
        stamp_cycle: ms between equity/inventory stamps.
        validate_data: sort unsorted input (stable, by exchange time) after checking it.
        balance: starting balance per exchange, quote currency.
        seed: seed of :attr:`rng`, for custom random models (the built-in latency models
            carry their own seeds).
        queue_model: the queue-position model (default risk-averse).
    """

    def __init__(self, l2_data: Mapping[str, Mapping[str, Any]],
                 trade_data: Mapping[str, Mapping[str, Any]], maker_fees: float = 0.0001,
                 taker_fees: float = 0.0003, gateway: Any = None,
                 exchanges: Sequence[str] | None = None, latencies: Any = None,
                 exchange_fees: Mapping[str, Mapping[str, Any]] | None = None,
                 exchange_latencies: Mapping[str, Any] | None = None, stamp_cycle: int = 1000,
                 validate_data: bool = True, balance: float = 10_000, seed: int = 0,
                 queue_model: QueueModel | None = None, **kwargs: Any) -> None:
        books = [BookTape.from_records(e, t, recs) for e, d in l2_data.items()
                 for t, recs in d.items()]
        trades = [TradeTape.from_rows(e, t, rows) for e, d in trade_data.items()
                  for t, rows in d.items()]
        names = list(dict.fromkeys([*l2_data, *trade_data]))
        self.latency_models = latency_models_by_exchange(names, latencies, exchange_latencies)
        books = [_with_feed_latency(b, self.latency_models[b.exc]) for b in books]
        trades = [_with_feed_latency(t, self.latency_models[t.exc]) for t in trades]
        fees = FeeSchedule.from_tutorial(maker_fees, taker_fees, exchange_fees)
        self._setup(books, trades, fees, exchanges, stamp_cycle, validate_data, balance, seed,
                    queue_model)
        self.config = {"maker_fees": maker_fees, "taker_fees": taker_fees,
                       "stamp_cycle": stamp_cycle, "balance": balance, "seed": seed}

    @classmethod
    def from_archive(cls, markets: Mapping[str, Sequence[str]], start: Any, end: Any,
                     path: str | os.PathLike = "data/archive", depth: int = 20,
                     recorded_local_time: bool = True, maker_fees: float = 0.0001,
                     taker_fees: float = 0.0003, latencies: Any = None,
                     exchange_latencies: Mapping[str, Any] | None = None,
                     **kwargs: Any) -> Replayer:
        """Replay ``{exc: [tickers]}`` from an archive, as numpy arrays (no per-row objects).

        ``start``/``end`` as in :func:`makerlab.data.arrays.load_snapshot_arrays`; with
        ``recorded_local_time`` the strategy sees data at its recorded receive time,
        otherwise at exchange time + FEED_PUBLIC latency.
        """
        from makerlab.data.arrays import load_snapshot_arrays, load_trade_arrays

        books, trades = [], []
        for exc, tickers in markets.items():
            for t in tickers:
                snap = load_snapshot_arrays(path, exc, t, depth, start, end)
                books.append(BookTape.from_arrays(exc, t, snap))
                trades.append(TradeTape.from_arrays(exc, t, load_trade_arrays(
                    path, exc, t, start, end)))
        self = cls.__new__(cls)
        self.latency_models = latency_models_by_exchange(list(markets), latencies,
                                                         exchange_latencies)
        if not recorded_local_time:
            books = [_with_feed_latency(b, self.latency_models[b.exc]) for b in books]
            trades = [_with_feed_latency(t, self.latency_models[t.exc]) for t in trades]
        fees = FeeSchedule.from_tutorial(maker_fees, taker_fees, kwargs.pop("exchange_fees",
                                                                           None))
        self._setup(books, trades, fees, kwargs.pop("exchanges", None),
                    kwargs.pop("stamp_cycle", 1000), False, kwargs.pop("balance", 10_000),
                    kwargs.pop("seed", 0), kwargs.pop("queue_model", None))
        self.config = {"maker_fees": maker_fees, "taker_fees": taker_fees, "path": str(path),
                       "start": str(start), "end": str(end), "depth": depth}
        return self

    # -- construction ------------------------------------------------------------------

    def _setup(self, books: list[BookTape], trades: list[TradeTape], fees: FeeSchedule,
               exchanges: Sequence[str] | None, stamp_cycle: int, validate: bool,
               balance: float, seed: int, queue_model: QueueModel | None) -> None:
        if validate:
            books = [_checked(b) for b in books]
            trades = [_checked(t) for t in trades]
        self.books, self.trades = books, trades
        self.rng = np.random.default_rng(seed)
        self.stamp_cycle_ns = int(stamp_cycle) * NS_PER_MS
        self.clock, self.queue = Clock(), EventQueue()
        self.venue = SimVenue(self.queue, self.clock, self.latency_models, fees,
                              Decimal(str(balance)))
        self._traded = set(exchanges) if exchanges is not None else None
        self._build_engines(queue_model)
        self._set_times()
        self.stamps: list[tuple[int, str, float, float, float]] = []
        self.declarations: list[dict[str, Any]] = []
        self._callbacks: dict[Any, Callable[[Any], Any]] = {}
        self.started = False
        self._oms = MockOMS(venue=self.venue)
        self._feed = MockFeed(self)

    def _build_engines(self, queue_model: QueueModel | None) -> None:
        specs = load_specs()
        markets = dict.fromkeys([(t.exc, t.ticker) for t in [*self.books, *self.trades]])
        self._book_engine: list[MatchingEngine | None] = []
        self._trade_engine: list[MatchingEngine | None] = []
        for exc, ticker in markets:
            spec = specs.get((exc, ticker))
            if spec is None or (self._traded is not None and exc not in self._traded):
                continue
            book = next((b for b in self.books if (b.exc, b.ticker) == (exc, ticker)), None)
            trade = next((t for t in self.trades if (t.exc, t.ticker) == (exc, ticker)), None)
            account = self.venue.account(exc)
            engine = MatchingEngine(spec, book, trade,
                                    _position_getter(account, ticker), queue_model)
            self.venue.add_engine(engine)
        get = self.venue.engines.get
        self._book_engine = [get((b.exc, b.ticker)) for b in self.books]
        self._trade_engine = [get((t.exc, t.ticker)) for t in self.trades]

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
        """Schedule one custom event at ``timestamp`` ms plus the channel latency."""
        t = int(timestamp) * NS_PER_MS
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

    def statistics(self) -> dict[str, dict[str, Any] | None]:
        """Per exchange statistics (see :func:`makerlab.sim.stats.statistics`)."""
        return statistics(self)

    def _stamp(self, _: Any = None) -> None:
        for exc, account in self.venue.accounts.items():
            marks = self.venue.marks(exc)
            inventory = sum(float(p.amount) * marks.get(t, float("nan"))
                            for t, p in account.positions.items() if p.amount)
            self.stamps.append((self.clock.ns, exc, account.equity(marks),
                                float(account.balance), inventory))
        if self.clock.ns + self.stamp_cycle_ns <= self.end_ns:
            self.queue.push(self.clock.ns + self.stamp_cycle_ns, self._stamp)

    # -- the loop ------------------------------------------------------------------------

    async def play(self, progress: bool = True) -> None:
        """Replay everything (a tqdm bar on stderr unless ``progress=False``)."""
        if self.started:
            raise ConfigError("Replayer.play() runs once; build a new Replayer to replay again")
        self.started = True
        subs = self._feed.subscriptions()
        self._book_subs = _subs_by_tape(subs, "l2book", self.books)
        self._trade_subs = _subs_by_tape(subs, "trades", self.trades, "bars")
        timeline = merge_market(self.books, self.trades, set(self._book_subs),
                                set(self._trade_subs))
        self.n_events = len(timeline)
        self.queue.push(self.start_ns, self._stamp)
        with tqdm(total=len(timeline), disable=not progress, unit="ev",
                  mininterval=0.5) as bar:
            await self._drain(timeline, bar)

    async def _drain(self, timeline: Any, bar: Any) -> None:
        ts, kinds = timeline.t.tolist(), timeline.kind.tolist()
        streams, rows = timeline.stream.tolist(), timeline.row.tolist()
        exch = (self._trade_exch, self._book_exch)
        local = (self._trade_local, self._book_local)
        heap, clock, n = self.queue._heap, self.clock, len(ts)
        skipper, checked_until, i = IdleSkipper(timeline), 0, 0
        while i < n:
            t = ts[i]
            while heap and heap[0][0] < t:
                await self._run_next()
            kind = kinds[i]
            if kind < 2:
                if i >= checked_until and not self._any_resting():
                    checked_until = skipper.run_end(i, heap[0][0] if heap else None)
                    if checked_until - i >= skipper.MIN_RUN:
                        i = self._skip(skipper, i, checked_until, ts, bar)
                        continue
                clock.ns = t
                exch[kind](streams[i], rows[i])
            else:
                clock.ns = t
                await local[kind - 2](streams[i], rows[i])
            i += 1
            if not i & 0x3FFF:
                bar.update(i - bar.n)
        bar.update(n - bar.n)
        while heap and heap[0][0] <= self.end_ns:
            await self._run_next()

    def _any_resting(self) -> bool:
        return any(engine.resting for engine in self.venue.engines.values())

    def _skip(self, skipper: IdleSkipper, i: int, j: int, ts: list[int], bar: Any) -> int:
        """Apply the idle run ``[i, j)`` at once (see :class:`IdleSkipper`); returns ``j``."""
        for stream, row in skipper.last_book_rows(i, j).items():
            engine = self._book_engine[stream]
            if engine is not None:
                engine.row = row
                engine._consumed.clear()
        self.clock.ns = ts[j - 1]
        if (j >> 14) != (i >> 14):
            bar.update(j - bar.n)
        return j

    async def _run_next(self) -> None:
        t, callback, payload = self.queue.pop()
        self.clock.ns = t
        result = callback(payload)
        if inspect.isawaitable(result):
            await result

    def _trade_exch(self, stream: int, row: int) -> None:
        engine = self._trade_engine[stream]
        if engine is None or not engine.resting:
            return
        tape = self.trades[stream]
        result = engine.on_trade(float(tape.price[row]), float(tape.size[row]),
                                 int(tape.side[row]))
        if result.fills or result.expired:
            self.venue.settle(tape.exc, result)

    def _book_exch(self, stream: int, row: int) -> None:
        engine = self._book_engine[stream]
        if engine is None:
            return
        if not engine.resting:
            engine.row = row
            if engine._consumed:
                engine._consumed.clear()
            return
        result = engine.on_book(row)
        if result.fills or result.expired:
            self.venue.settle(engine.spec.exchange, result)

    async def _trade_local(self, stream: int, row: int) -> None:
        tape = self.trades[stream]
        ts = int(tape.exchange_ts[row]) // NS_PER_MS
        trade = (ts, float(tape.price[row]), float(tape.size[row]), int(tape.side[row]))
        for sub in self._trade_subs[stream]:
            msg = _deliver_trade(sub, trade)
            if msg is not None:
                for handler in sub.handlers:
                    await _call(handler, msg)

    async def _book_local(self, stream: int, row: int) -> None:
        tape = self.books[stream]
        ts = int(tape.exchange_ts[row]) // NS_PER_MS
        bids, asks = tape.levels(row)
        for sub in self._book_subs[stream]:
            sub.last_ts = max(ts, sub.last_ts)
            sub.obj.update(sub.last_ts, bids, asks, is_snapshot=True, is_sorted=True)
            for handler in sub.handlers:
                await _call(handler, sub.obj)


# -- helpers -----------------------------------------------------------------------------

async def _call(handler: Callable[[Any], Any], msg: Any) -> None:
    result = handler(msg)
    if inspect.isawaitable(result):
        await result


def _deliver_trade(sub: Subscription, trade: tuple[int, float, float, int]) -> Any:
    """Update ``sub``'s buffer with ``trade``; the message its handlers get (or None)."""
    sub.last_ts = max(trade[0], sub.last_ts)
    trade = (sub.last_ts, *trade[1:])
    if sub.kind == "trades":
        sub.obj.append(trade)
        return trade
    return sub.obj.update(trade)


def _subs_by_tape(subs: list[Subscription], kind: str, tapes: Sequence[Any],
                  other: str | None = None) -> dict[int, list[Subscription]]:
    out: dict[int, list[Subscription]] = {}
    for i, tape in enumerate(tapes):
        found = [s for s in subs if s.kind in (kind, other)
                 and (s.exc, s.ticker) == (tape.exc, tape.ticker)]
        if found:
            out[i] = found
    return out


def _find(tapes: Sequence[Any], exc: str, ticker: str, what: str) -> Any:
    for tape in tapes:
        if (tape.exc, tape.ticker) == (exc, ticker):
            return tape
    known = ", ".join(f"{t.exc}/{t.ticker}" for t in tapes)
    raise ConfigError(f"no {what} data for {exc}/{ticker} in this replay; known: {known}")


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


def _checked(tape: Any) -> Any:
    """``tape`` sorted by exchange time if it is not (a warning says so)."""
    ets = tape.exchange_ts
    if len(ets) < 2 or not np.any(ets[1:] < ets[:-1]):
        return tape
    import warnings

    warnings.warn(f"{tape.exc}/{tape.ticker}: data not in time order; sorted it (stable)",
                  stacklevel=3)
    return tape.sorted_by_exchange_time()
