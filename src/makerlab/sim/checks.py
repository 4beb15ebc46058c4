"""Checks of the market data a user hands the Replayer in memory.

Archives are checked when they are converted, so ``Replayer.from_archive`` trusts them; the
tutorial constructor's records (``l2_data``/``trade_data``, ``ts`` in ms) and the arrays of
``Replayer.from_tapes`` are checked here. A problem raises
:class:`~makerlab.errors.DataError` naming the market and the 1-based record, e.g.
``binance/BTCUSDT book data:2: ...``. Rules:

- **timestamps are whole epoch milliseconds** (the tape constructors,
  :func:`~makerlab.sim.timeline.ms_to_ns`): NaN, inf, fractions and non-numbers are errors.
- **timestamps are positive**: a record at or before the epoch (``0``, ``-1``) is an error,
  on the exchange and the local clock.
- **no record lies far from the rest of the data**: in time order, the records of every
  tape of the replay together leave no hole longer than :data:`MAX_GAP_NS` (7 days); the
  first record (in its tape's input order) on the side of the first such hole holding
  fewer records is the error, as one at the wrong scale (seconds or µs for ms) or in the
  wrong year would be. One mistyped record would otherwise stretch the replay over years
  (an equity stamp every second, a timer tick every interval).
- **a book record lists no level without a price** (the tape constructor,
  :meth:`~makerlab.sim.timeline.BookTape.from_records`): a NaN price would read as no level.
- with ``validate_data`` (the constructor's default): **books are uncrossed with levels in
  book order**, every level given with a finite, positive price and a finite size >= 0 (a
  zero size is an empty level); **trades have a finite, positive price and size**;
  **unsorted records are sorted** (stably, by exchange time) with a warning.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import TypeVar

import numpy as np

from makerlab.data.validate import (
    check_finite,
    check_level_values,
    check_levels_ordered,
    check_uncrossed,
)
from makerlab.errors import DataError
from makerlab.sim.timeline import BookTape, TradeTape, tape_source
from makerlab.units import NS_PER_MS, NS_PER_S

__all__ = ["MAX_GAP_NS", "check_times", "checked_values"]

MAX_GAP_NS = 7 * 24 * 3600 * NS_PER_S

Tape = BookTape | TradeTape
AnyTape = TypeVar("AnyTape", BookTape, TradeTape)

FIX_INPUT = ("fix the input (archives converted by makerlab are checked and repaired at "
             "conversion: `makerlab convert --repair`)")


def source_of(tape: Tape) -> str:
    return tape_source(tape.exc, tape.ticker, "book" if isinstance(tape, BookTape) else "trade")


def check_times(tapes: Sequence[Tape]) -> None:
    """The timestamp rules of the module docstring, over every tape of one replay."""
    for tape in tapes:
        for clock in ("exchange_ts", "local_ts"):
            _check_positive(getattr(tape, clock), source_of(tape), clock)
    _check_gaps(tapes)


def _check_positive(ts: np.ndarray, source: str, clock: str) -> None:
    bad = np.flatnonzero(np.asarray(ts) <= 0)
    if bad.size:
        i = int(bad[0])
        raise DataError(f"{clock} {int(ts[i]) / NS_PER_MS:g} ms is not after the epoch; "
                        "timestamps are epoch milliseconds", source=source, line=i + 1)


def _check_gaps(tapes: Sequence[Tape]) -> None:
    times = [np.asarray(t.exchange_ts, np.int64) for t in tapes]
    if sum(len(t) for t in times) < 2:
        return
    ts = np.concatenate(times)
    order = np.argsort(ts, kind="stable")
    holes = np.flatnonzero(np.diff(ts[order]) > MAX_GAP_NS)
    if not holes.size:
        return
    cut = int(holes[0]) + 1
    before, after = order[:cut], order[cut:]
    isolated = before if len(before) < len(after) else after
    k = int(isolated.min())  # first in tape order, then record order
    starts = np.cumsum([0, *(len(t) for t in times)])
    which = int(np.searchsorted(starts, k, side="right")) - 1
    row = k - int(starts[which])
    days = int(ts[order[cut]] - ts[order[cut - 1]]) / (24 * 3600 * NS_PER_S)
    raise DataError(f"exchange_ts {int(ts[k]) // NS_PER_MS} ms lies {days:.1f} days away from "
                    f"the rest of the replay's data (more than {MAX_GAP_NS // NS_PER_S // 86400}"
                    " days): timestamps are epoch milliseconds; fix the record or replay the "
                    "two periods separately", source=source_of(tapes[which]), line=row + 1)


def checked_values(tape: AnyTape) -> AnyTape:
    """``tape`` checked for bad values, and sorted by exchange time if it is not (a warning
    says so)."""
    source = source_of(tape)
    if isinstance(tape, BookTape):
        check_level_values({"bid": (tape.bid_price, tape.bid_size),
                            "ask": (tape.ask_price, tape.ask_size)}, source=source,
                           hint=FIX_INPUT)
        check_uncrossed(tape.bid_price[:, 0], tape.ask_price[:, 0], source=source,
                        hint=FIX_INPUT)
        check_levels_ordered(tape.bid_price, tape.ask_price, source=source)
    else:
        _check_trades(tape, source)
    ets = tape.exchange_ts
    if len(ets) < 2 or not np.any(ets[1:] < ets[:-1]):
        return tape
    warnings.warn(f"{tape.exc}/{tape.ticker}: data not in time order; sorted it (stable)",
                  stacklevel=4)
    return tape.sorted_by_exchange_time()


def _check_trades(tape: TradeTape, source: str) -> None:
    check_finite({"price": tape.price, "size": tape.size}, source=source, hint=FIX_INPUT)
    bad = np.flatnonzero((tape.price <= 0) | (tape.size <= 0))
    if bad.size:
        i = int(bad[0])
        raise DataError(f"trade with price {tape.price[i]} and size {tape.size[i]}: both must "
                        f"be positive; {FIX_INPUT}", source=source, line=i + 1)
