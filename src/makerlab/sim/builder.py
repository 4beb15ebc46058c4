"""Building a replay: input tapes, clocks, models, the simulated venue and its engines.

One job: turn what a :class:`~makerlab.sim.replayer.Replayer` constructor was given into a
:class:`ReplaySetup` (checked tapes on aligned clocks, a :class:`~makerlab.sim.venue.SimVenue`
with one :class:`~makerlab.sim.matching.MatchingEngine` per traded instrument on its spec
resolved by :class:`~makerlab.data.specs.SpecResolver`, the risk limits of its OMS, and the
run's config). The three entry points are the constructor's three inputs:

- :func:`tutorial_tapes`: the tutorial's in-memory records (ms), checked
  (:mod:`makerlab.sim.checks`);
- :func:`archive_tapes`: an archive's arrays (checked when they were converted);
- tapes already in memory (``Replayer.from_tapes``: timestamps checked).

Clocks: with ``recorded_local_time`` the recorded receive times are kept, shifted per
exchange when the recorder's clock ran behind (:func:`align_local_clocks`); otherwise the
local time is exchange time plus a ``FEED_PUBLIC`` latency sample (:func:`with_feed_latency`).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import numpy as np

from makerlab.core.clock import ReplayClock
from makerlab.data.specs import Resolved, SpecResolver
from makerlab.errors import ConfigError
from makerlab.sim.checks import Tape, check_times, checked_values
from makerlab.sim.fees import FeeSchedule
from makerlab.sim.latency import (
    ConstantLatency,
    Latencies,
    LatencyModel,
    latency_model_from,
    latency_models_by_exchange,
)
from makerlab.sim.matching import FillModel, MatchingEngine, NoPartialFills, PartialFills
from makerlab.sim.models import to_config
from makerlab.sim.queue import QueueModel, RiskAverseQueue
from makerlab.sim.streaming import StreamClocks, check_markets
from makerlab.sim.timeline import BookTape, EventQueue, TradeTape
from makerlab.sim.venue import SimAccount, SimVenue
from makerlab.trading.risk import RiskLimits
from makerlab.units import NS_PER_MS

__all__ = ["ReplaySetup", "align_local_clocks", "archive_tapes", "build", "engine_models",
           "tutorial_tapes", "with_feed_latency"]

log = logging.getLogger(__name__)


@dataclass(eq=False)
class ReplaySetup:
    """Everything a replay starts from (see the module docstring)."""

    books: list[BookTape]
    trades: list[TradeTape]
    venue: SimVenue
    clock: ReplayClock
    queue: EventQueue
    latency_models: dict[str, LatencyModel]
    start_ns: int
    end_ns: int
    stamp_cycle_ns: int
    seed: int
    specs: dict[tuple[str, str], Resolved]
    risk: RiskLimits | None
    config: dict[str, Any]


def tutorial_tapes(l2_data: Mapping[str, Mapping[str, Any]],
                   trade_data: Mapping[str, Mapping[str, Any]], validate_data: bool
                   ) -> tuple[list[BookTape], list[TradeTape]]:
    """Tapes of the tutorial's ``{exc: {ticker: records}}`` input, checked (DataError)."""
    books = [BookTape.from_records(e, t, recs) for e, d in l2_data.items()
             for t, recs in d.items()]
    trades = [TradeTape.from_rows(e, t, rows) for e, d in trade_data.items()
              for t, rows in d.items()]
    check_times([*books, *trades])
    if validate_data:
        books = [checked_values(b) for b in books]
        trades = [checked_values(t) for t in trades]
    return books, trades


def archive_tapes(markets: Mapping[str, Sequence[str]], start: Any, end: Any,
                  path: str | os.PathLike, depth: int, books: str
                  ) -> tuple[list[BookTape], list[TradeTape]]:
    """Tapes of ``{exc: [tickers]}`` from the archive at ``path`` (``books``: ``"snapshot"``
    or ``"delta"``, see ``Replayer.from_archive``)."""
    from makerlab.data import arrays
    from makerlab.data.storage import redact

    loaders = {"snapshot": arrays.load_snapshot_arrays,
               "delta": arrays.load_snapshot_arrays_from_deltas}
    if books not in loaders:
        raise ConfigError(f"books must be 'snapshot' or 'delta', got {books!r}")
    load_books = loaders[books]
    book_tapes, trade_tapes = [], []
    for exc, tickers in markets.items():
        for t in tickers:
            book_tapes.append(BookTape.from_arrays(exc, t, load_books(path, exc, t, depth,
                                                                      start, end)))
            trade_tapes.append(TradeTape.from_arrays(exc, t, arrays.load_trade_arrays(
                path, exc, t, start, end)))
    check_markets([(e, t) for e, ts in markets.items() for t in ts],
                  [len(b) + len(t) for b, t in zip(book_tapes, trade_tapes, strict=True)],
                  start, end, redact(os.fspath(path)))
    return book_tapes, trade_tapes


def build(books: list[BookTape], trades: list[TradeTape], *, recorded_local_time: bool,
          maker_fees: float = 0.0001, taker_fees: float = 0.0003,
          exchanges: Sequence[str] | None = None, latencies: Any = None,
          exchange_fees: Mapping[str, Mapping[str, Any]] | None = None,
          exchange_latencies: Mapping[str, Any] | None = None, stamp_cycle: int = 1000,
          balance: float = 10_000, seed: int = 0, queue_model: QueueModel | None = None,
          fill_model: FillModel | None = None,
          specs: str | os.PathLike | Mapping[str, Any] | None = None,
          risk: RiskLimits | None = None, clocks: StreamClocks | None = None) -> ReplaySetup:
    """The replay of ``books``/``trades`` with the constructor's options (its defaults).

    ``clocks``: the tapes are a streaming replay's first window, their local clocks
    already set; the span, clock shifts and spec samples are the whole range's
    (:mod:`makerlab.sim.streaming`).
    """
    tapes: list[Tape] = [*books, *trades]
    sampler = _sampler if clocks is None else _stream_sampler(clocks)
    resolved = _resolve_specs(SpecResolver(specs), books, trades, exchanges, sampler)
    names = list(dict.fromkeys(t.exc for t in tapes))
    default_latency = latency_model_from(latencies)
    models = latency_models_by_exchange(names, default_latency, exchange_latencies)
    if clocks is not None:
        shifts = dict(clocks.shifts)
    elif recorded_local_time:
        shifts = align_local_clocks(books, trades)
    else:
        shifts = {}
        books = [with_feed_latency(b, models[b.exc]) for b in books]
        trades = [with_feed_latency(t, models[t.exc]) for t in trades]
    fees = FeeSchedule.from_tutorial(maker_fees, taker_fees, exchange_fees)
    queue_model, fill_model = engine_models(queue_model, fill_model)
    start_ns, end_ns = _span(books, trades) if clocks is None else clocks.span
    clock, queue = ReplayClock(), EventQueue()
    clock.ns = start_ns
    venue = SimVenue(queue, clock, models, fees, Decimal(str(balance)))
    venue.end_ns = end_ns
    _add_engines(venue, resolved, books, trades, queue_model, fill_model)
    config = {"maker_fees": maker_fees, "taker_fees": taker_fees,
              "exchange_fees": exchange_fees, "latencies": to_config(default_latency),
              "exchange_latencies": {e: to_config(models[e]) for e in exchange_latencies or {}},
              "stamp_cycle": stamp_cycle, "balance": balance, "seed": seed,
              "queue_model": to_config(queue_model), "fill_model": to_config(fill_model),
              "fees": to_config(fees),
              "latency_models": {e: to_config(m) for e, m in models.items()},
              "recorded_local_time": recorded_local_time,
              "risk": None if risk is None else to_config(risk),
              "local_clock_shift_ms": {e: ns / NS_PER_MS for e, ns in shifts.items()},
              "specs": _spec_records(resolved)}
    return ReplaySetup(books, trades, venue, clock, queue, models, start_ns, end_ns,
                       int(stamp_cycle) * NS_PER_MS, seed, resolved, risk, config)


def _span(books: list[BookTape], trades: list[TradeTape]) -> tuple[int, int]:
    """The replay's first exchange time and last time of either clock."""
    every: list[Tape] = [*books, *trades]
    tapes = [t for t in every if len(t)]
    if not tapes:
        raise ConfigError("Replayer: no book or trade data to replay")
    return (min(int(t.exchange_ts.min()) for t in tapes),
            max(int(max(t.exchange_ts.max(), t.local_ts.max())) for t in tapes))


def _add_engines(venue: SimVenue, specs: Mapping[tuple[str, str], Resolved],
                 books: list[BookTape], trades: list[TradeTape], queue_model: QueueModel,
                 fill_model: FillModel) -> None:
    """One engine per traded market, on its resolved spec."""
    for (exc, ticker), resolved in specs.items():
        book = next((b for b in books if (b.exc, b.ticker) == (exc, ticker)), None)
        trade = next((t for t in trades if (t.exc, t.ticker) == (exc, ticker)), None)
        venue.add_engine(MatchingEngine(resolved.spec, book, trade,
                                        _position_getter(venue.account(exc), ticker),
                                        queue_model, fill_model))


Sampler = Callable[[str, str, list[BookTape], list[TradeTape]],
                   Callable[[], tuple[np.ndarray, np.ndarray]]]


def _resolve_specs(resolver: SpecResolver, books: list[BookTape], trades: list[TradeTape],
                   exchanges: Sequence[str] | None, sampler: Sampler
                   ) -> dict[tuple[str, str], Resolved]:
    """The spec of every traded market (every market when ``exchanges`` is None)."""
    tapes: list[Tape] = [*books, *trades]
    markets = dict.fromkeys((t.exc, t.ticker) for t in tapes
                            if exchanges is None or t.exc in exchanges)
    return {(exc, ticker): resolver.resolve(exc, ticker, sampler(exc, ticker, books, trades))
            for exc, ticker in markets}


def _stream_sampler(clocks: StreamClocks) -> Sampler:
    """The whole range's sample of a streamed market (not only its first window's)."""
    return lambda exc, ticker, books, trades: clocks.sample(exc, ticker)


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


def _position_getter(account: SimAccount, ticker: str) -> Callable[[], Decimal]:
    return lambda: account.position(ticker).amount


def engine_models(queue_model: Any, fill_model: Any) -> tuple[QueueModel, FillModel]:
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


def with_feed_latency(tape: Any, model: LatencyModel) -> Any:
    """``tape`` with local time = exchange time + a FEED_PUBLIC latency sample per row."""
    ets = np.asarray(tape.exchange_ts, np.int64)
    if isinstance(model, ConstantLatency):
        lat: Any = model.ns[Latencies.FEED_PUBLIC]
    else:
        lat = np.array([model.sample(Latencies.FEED_PUBLIC, int(t)) for t in ets.tolist()],
                       dtype=np.int64)
    tape.local_ts = ets + lat
    return tape


def align_local_clocks(books: list[BookTape], trades: list[TradeTape]) -> dict[str, int]:
    """Shift each exchange's recorded local clock so no row is received before it happened.

    A recorder whose clock runs behind the venue's (the bundled Binance captures: about
    1.27 s) stamps receive times *before* exchange times; replayed as they are, the strategy
    would see every book before the matching engine does. Like hftbacktest's converter,
    the shift is the smallest ``local_ts - exchange_ts`` of the exchange's rows, so the
    fastest row arrives with zero latency and every other keeps its recorded delay.
    Returns the shift applied per exchange, in ns.
    """
    shifts: dict[str, int] = {}
    tapes: list[Tape] = [*books, *trades]
    for tape in tapes:
        if len(tape):
            low = int((tape.local_ts - tape.exchange_ts).min())
            shifts[tape.exc] = min(shifts.get(tape.exc, 0), low)
    for tape in tapes:
        if shifts.get(tape.exc):
            tape.local_ts = tape.local_ts - shifts[tape.exc]
    for exc, shift in shifts.items():
        if shift:
            log.info("%s: recorded local clock behind exchange time; shifted by %.3f ms",
                     exc, -shift / NS_PER_MS)
    return {exc: -shift for exc, shift in shifts.items() if shift}
