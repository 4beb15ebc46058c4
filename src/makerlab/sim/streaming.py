"""Streaming replay: an archive range read segment by segment as the replay advances.

``Replayer.from_archive`` loads, by default, one **segment** at a time (a quarter of an
hour: the archive's files are split by the UTC hour of ``exchange_ts``, and an hour file is
read once, when its first segment begins) instead of the whole range, so its memory
follows the busiest hour, not the range. Segments shorter than the files matter: moving
to the next segment holds the old window and the new one at once, and a quarter-hour
window makes that overlap small beside the hour file being read (24 h streamed peaked at
1.33x the peak of 1 h with hour segments, 1.12x with quarter hours: docs/performance.md).
The replay it runs is the replay of the range loaded whole (same fills, actions, stamps,
record; tests compare them). How:

- **one order for every row**: a range loaded whole is its hour files concatenated in hour
  order and sorted (stably) by ``local_ts`` (:mod:`makerlab.data.arrays`). Each row here
  carries that order's key, ``(raw local_ts, seq)`` with ``seq = hour << 32 | row in its
  file``, and every window is sorted by it: the rows of a window keep the relative order
  they have in the whole tape, so every tie the replay breaks by row index breaks the same
  way (:mod:`makerlab.sim.timeline`).
- **a window per segment** ``[T_k, T_k+1)``: the rows whose exchange time is in it (the
  matching engines step those), the earlier rows whose local time is at or after ``T_k``
  (received late: the strategy sees them in this segment or later) and, per book, the
  **carry row**, the engine's book at ``T_k`` (the last row before it in exchange-time
  order, the whole tape's ``EngineRows.row_at(T_k - 1)``). Everything else of the previous
  window is dropped. Local time is never before exchange time (after the clock
  alignment, and latencies are ``>= 0``), so no row received in a segment lies in a later
  segment's file.
- **the loop runs each segment to its end** (:meth:`ReplayLoop.run
  <makerlab.sim.loop.ReplayLoop.run>` ``stop``): every event before ``T_k+1`` (market rows
  delivered at local time, engine rows, scheduled events) runs in the segment, none after;
  then the loop moves engines, lanes and deliveries onto the next window
  (:meth:`ReplayLoop.rebase <makerlab.sim.loop.ReplayLoop.rebase>`): engines keep their
  book (the carry row, renumbered), a stepping lane goes on at ``T_k+1``, buffers filled
  when read (:class:`~makerlab.sim.mock_feed.LazyTrades`) are written up to the segment's
  end before its rows are dropped.
- **what needs the whole range is scanned first, clocks only**: the replay's span, the
  per-exchange shift of a recorded local clock that ran behind (the smallest
  ``local_ts - exchange_ts`` of the range), the row counts of the progress bar.
- **the record's market tables** (mids and trades the analytics mark against) are read
  again from the archive when the record is built (top of book and prints only, ordered
  as the whole tape): the replay never holds the range; the analytics of a record do.

Streams when the local clock is the recorded one and books come from snapshots; otherwise
(a feed latency model samples the whole tape in order, and a sweep may swap it; delta books
are rebuilt from the range's first snapshot) ``from_archive`` loads whole (``stream=None``)
or refuses (``stream=True``): :func:`unstreamable` says why.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa

from makerlab.data import archive
from makerlab.data.arrays import column_numpy
from makerlab.data.layout import dataset_dir
from makerlab.data.schema import BOOK_SNAPSHOT, TRADES, schema_for
from makerlab.data.storage import Root, resolve
from makerlab.errors import ConfigError
from makerlab.sim.timeline import BookTape, TradeTape

__all__ = ["SEGMENT_NS", "ArchiveStream", "StreamClocks", "Window", "check_markets", "unstreamable"]

SEGMENT_NS = archive.HOUR_NS // 4  # a quarter of an hour (see the module docstring)
_BEFORE = -(1 << 62)
_AFTER = 1 << 62
_LEVELS = ["bid_price", "bid_size", "ask_price", "ask_size"]
_TRADE_COLUMNS = ["price", "size", "side"]

Columns = dict[str, np.ndarray]


@dataclass(frozen=True)
class StreamClocks:
    """What the builder takes from the scan instead of whole tapes: the replay's span
    ``(start, end)`` ns, the recorded clock's shift per exchange (ns added), and the
    market's price/size sample for a spec inferred from data."""

    span: tuple[int, int]
    shifts: dict[str, int]
    sample: Callable[[str, str], Callable[[], tuple[np.ndarray, np.ndarray]]]


@dataclass(frozen=True)
class _File:
    """One hour file of a dataset and its clocks (after the range's clip)."""

    hour: int
    path: str
    size: int | None
    rows: int
    ets_min: int
    ets_max: int
    lag_min: int  # smallest local_ts - exchange_ts
    local_max: int


@dataclass(eq=False)
class Window:
    """The tapes of segment ``[lo, hi)`` (local time ``lo <= t < hi`` is delivered in it),
    in the replay's tape order, and each book's carry row (index in the window, -1 if
    none) with its index in the previous window."""

    books: list[BookTape]
    trades: list[TradeTape]
    lo: int
    hi: int
    carry: list[tuple[int, int]]
    last: bool


class _Dataset:
    """One market's book or trade dataset: its files, read in segments, and the rows the
    current window holds (with their order keys)."""

    def __init__(self, arc: Root, kind: str, exc: str, ticker: str, depth: int | None,
                 bounds: tuple[int | None, int | None]) -> None:
        self.arc, self.kind, self.exc, self.ticker, self.depth = arc, kind, exc, ticker, depth
        self.bounds = bounds
        self.expected = schema_for(kind, depth)
        self.files = [self._scan(hour, info.path, info.size) for hour, info in
                      archive._hour_paths(arc, dataset_dir(kind, exc, ticker, depth), *bounds)]
        self.files = [f for f in self.files if f.rows]
        self._next = 0  # next file to read
        self._pending: Columns | None = None  # rows read, not yet in a window
        self.window: Columns = {k: v for k, v in self._empty().items() if k not in _LEVELS}
        if self.kind == BOOK_SNAPSHOT:  # a window's levels are stacked: BookTape.sides()
            self.window.update(bids=np.empty((0, depth or 1, 2)),
                               asks=np.empty((0, depth or 1, 2)))

    @property
    def rows(self) -> int:
        return sum(f.rows for f in self.files)

    def _columns(self) -> list[str]:
        return _LEVELS if self.kind == BOOK_SNAPSHOT else _TRADE_COLUMNS

    def _read(self, hour: int, path: str, columns: list[str], size: int | None
              ) -> tuple[pa.Table, np.ndarray]:
        """The file's ``columns`` (clocks last) clipped to the range, and the kept rows'
        indices in the file (``size``: the file's, from its listing)."""
        wanted = [*columns, "exchange_ts", "local_ts"]
        table = archive._read_file(self.arc, path, self.expected, wanted, hour, size)
        ets = table.column("exchange_ts").to_numpy()
        lo, hi = self.bounds
        keep = np.ones(len(ets), bool)
        if lo is not None:
            keep &= ets >= lo
        if hi is not None:
            keep &= ets < hi
        if keep.all():
            return table, np.arange(len(ets), dtype=np.int64)
        return table.filter(pa.array(keep)), np.flatnonzero(keep).astype(np.int64)

    def _scan(self, hour: int, path: str, size: int | None) -> _File:
        table, _ = self._read(hour, path, [], size)
        ets = table.column("exchange_ts").to_numpy()
        lts = table.column("local_ts").to_numpy()
        if not len(ets):
            return _File(hour, path, size, 0, 0, 0, 0, 0)
        return _File(hour, path, size, len(ets), int(ets.min()), int(ets.max()),
                     int((lts - ets).min()), int(lts.max()))

    def _load(self, f: _File, local: Callable[[np.ndarray, np.ndarray], np.ndarray]) -> Columns:
        table, index = self._read(f.hour, f.path, self._columns(), f.size)
        ets = table.column("exchange_ts").to_numpy()
        raw = table.column("local_ts").to_numpy()
        cols: Columns = {"ets": ets, "raw": raw, "local": local(ets, raw),
                         "seq": (np.int64(f.hour) << np.int64(32)) | index}
        for n in self._columns():  # levels: (n, depth) views of the file's buffers
            cols[n] = column_numpy(table.column(n))
        return cols

    def _empty(self) -> Columns:
        i64 = np.empty(0, np.int64)
        cols: Columns = {"ets": i64, "raw": i64, "local": i64, "seq": i64}
        if self.kind == BOOK_SNAPSHOT:
            cols.update({n: np.empty((0, self.depth or 1)) for n in _LEVELS})
        else:
            cols.update(price=np.empty(0), size=np.empty(0), side=np.empty(0, np.int8))
        return cols

    def take_before(self, t: int, local: Callable[[np.ndarray, np.ndarray], np.ndarray]
                    ) -> Columns:
        """The rows not taken yet whose exchange time is before ``t`` (reading files)."""
        parts = []
        while True:
            if self._pending is None:
                if self._next >= len(self.files) or self.files[self._next].hour * \
                        archive.HOUR_NS >= t:
                    break
                self._pending = self._load(self.files[self._next], local)
                self._next += 1
            early = self._pending["ets"] < t
            if early.all():
                parts.append(self._pending)
                self._pending = None
                continue
            parts.append(_take(self._pending, early))
            self._pending = _take(self._pending, ~early)
            break
        return _concat(parts, self._empty())

    def advance(self, t: int, chunk: Columns) -> tuple[int, int]:
        """The window from ``t``: rows received at or after ``t``, the carry row (books)
        and ``chunk``, in the whole tape's order; ``(carry in the old window, carry in
        the new)`` (-1 when there is none)."""
        old = self.window
        keep = old["local"] >= t
        carry = -1
        if self.kind == BOOK_SNAPSHOT and len(old["ets"]):
            carry = _last_max(old["ets"])
            keep[carry] = True
        kept = np.flatnonzero(keep)
        raw = np.concatenate([old["raw"][kept], chunk["raw"]])
        order = np.lexsort((np.concatenate([old["seq"][kept], chunk["seq"]]), raw))
        place = np.empty_like(order)
        place[order] = np.arange(len(order))  # each row's index in the new window
        window = {k: _placed(old[k][kept], chunk[k], place) for k in ("ets", "raw", "local",
                                                                        "seq")}
        if self.kind == BOOK_SNAPSHOT:
            for side in ("bid", "ask"):
                window[f"{side}s"] = _stacked(old[f"{side}s"][kept], chunk[f"{side}_price"],
                                              chunk[f"{side}_size"], place)
        else:
            window.update({k: _placed(old[k][kept], chunk[k], place) for k in _TRADE_COLUMNS})
        self.window = window
        new = -1 if carry < 0 else int(place[int(keep[:carry].sum())])
        return carry, new

    def tape(self) -> BookTape | TradeTape:
        w = self.window
        if self.kind == BOOK_SNAPSHOT:
            return BookTape.stacked(self.exc, self.ticker, w["ets"], w["local"], w["bids"],
                                    w["asks"])
        return TradeTape(self.exc, self.ticker, w["ets"], w["local"], w["price"], w["size"],
                         w["side"])

    def record_tape(self, shift: int) -> BookTape | TradeTape:
        """The whole range as the record keeps it (books: the top level only), read again
        from the files: concatenated in hour order, stably sorted by the recorded local
        time (the whole tape's order), the local clock shifted by ``shift`` ns."""
        parts = []
        for f in self.files:
            table, _ = self._read(f.hour, f.path, self._columns(), f.size)
            cols = {"ets": table.column("exchange_ts").to_numpy(),
                    "raw": table.column("local_ts").to_numpy()}
            if self.kind == BOOK_SNAPSHOT:
                for side in ("bid", "ask"):
                    cols[side] = column_numpy(table.column(f"{side}_price"))[:, :1].copy()
            else:
                cols.update({n: column_numpy(table.column(n)) for n in _TRADE_COLUMNS})
            parts.append(cols)
        c = _concat(parts, {**self._empty(), "bid": np.empty((0, 1)), "ask": np.empty((0, 1))})
        order = np.argsort(c["raw"], kind="stable")
        c = _take(c, order)
        local = c["raw"] + shift
        if self.kind == BOOK_SNAPSHOT:
            return BookTape(self.exc, self.ticker, c["ets"], local, c["bid"], c["bid"],
                            c["ask"], c["ask"])
        return TradeTape(self.exc, self.ticker, c["ets"], local, c["price"], c["size"],
                         c["side"])


def unstreamable(books: str, recorded_local_time: bool) -> str | None:
    """Why a ``from_archive`` replay with these options cannot stream (None: it can)."""
    if books != "snapshot":
        return "books='delta' rebuilds the book from the range's first snapshot"
    if not recorded_local_time:
        return ("recorded_local_time=False samples the feed latency over whole tapes, in "
                "tape order")
    return None


def _take(cols: Columns, index: np.ndarray) -> Columns:
    return {k: v[index] for k, v in cols.items()}


def _placed(kept: np.ndarray, chunk: np.ndarray, place: np.ndarray) -> np.ndarray:
    """``kept`` then ``chunk`` rows written at their ``place`` in one new array (no
    intermediate concatenation: a window is copied once)."""
    out = np.empty((len(place), *chunk.shape[1:]), chunk.dtype)
    out[place[:len(kept)]] = kept
    out[place[len(kept):]] = chunk
    return out


def _stacked(kept: np.ndarray, prices: np.ndarray, sizes: np.ndarray,
             place: np.ndarray) -> np.ndarray:
    """:func:`_placed` for levels: ``kept`` ``(k, depth, 2)`` rows and the file's level
    columns stacked as ``[price, size]`` (size NaN where the price is, as
    ``BookTape.sides``), written straight into the window."""
    out = np.empty((len(place), prices.shape[1], 2))
    out[place[:len(kept)]] = kept
    new = place[len(kept):]
    out[new, :, 0] = prices
    out[new, :, 1] = np.where(np.isnan(prices), np.nan, sizes)
    return out


def _concat(parts: list[Columns], empty: Columns) -> Columns:
    parts = [p for p in parts if len(p["ets"])]
    if not parts:
        return empty
    if len(parts) == 1:
        return parts[0]
    return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}


def _last_max(ets: np.ndarray) -> int:
    """Index of the last row with the largest exchange time (``EngineRows.row_at``'s row
    after every row)."""
    return int(len(ets) - 1 - np.argmax(ets[::-1]))


class ArchiveStream:
    """The windows of an archive range, one per segment (see the module docstring).

    Args:
        markets: ``{exc: [tickers]}``; the replay's tapes are books then trades, in this
            order.
        start, end, path, depth: as ``Replayer.from_archive``'s.
        segment_ns: segment length (a quarter of an hour; it must divide an hour).
    """

    def __init__(self, markets: Mapping[str, Sequence[str]], start: Any, end: Any,
                 path: str | os.PathLike, depth: int, *, segment_ns: int = SEGMENT_NS) -> None:
        if segment_ns <= 0 or archive.HOUR_NS % segment_ns:
            raise ConfigError(f"segment_ns={segment_ns} must divide an hour")
        arc, bounds = resolve(path, None), archive._bounds(start, end)
        self.path, self.start, self.end, self.depth = path, start, end, depth
        self.shown = arc.shown
        pairs = [(exc, t) for exc, tickers in markets.items() for t in tickers]
        self.markets = pairs
        self.books = [_Dataset(arc, BOOK_SNAPSHOT, e, t, depth, bounds) for e, t in pairs]
        self.trades = [_Dataset(arc, TRADES, e, t, None, bounds) for e, t in pairs]
        self.segment_ns = segment_ns
        self.shifts = self._shifts()
        self.bounds = self._boundaries()
        self._k = -1

    @property
    def datasets(self) -> list[_Dataset]:
        return [*self.books, *self.trades]

    def _shifts(self) -> dict[str, int]:
        """ns added to each exchange's recorded local clock (``align_local_clocks``)."""
        low: dict[str, int] = {}
        for d in self.datasets:
            for f in d.files:
                low[d.exc] = min(low.get(d.exc, 0), f.lag_min)
        return {exc: -lag for exc, lag in low.items() if lag}

    def _local(self, exc: str) -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
        """The replay's local clock of ``exc``'s rows: the recorded one, shifted."""
        shift = self.shifts.get(exc, 0)
        return lambda ets, raw: raw + shift if shift else raw

    def _boundaries(self) -> list[int]:
        """Segment starts: every multiple of ``segment_ns`` holding a row."""
        seg, found = self.segment_ns, set[int]()
        for d in self.datasets:
            for f in d.files:
                found.update(range(f.ets_min // seg * seg, f.ets_max + 1, seg))
        return sorted(found)

    def clocks(self) -> StreamClocks:
        """The span, shifts and sampler of the whole range (see :class:`StreamClocks`)."""
        check_markets(self.markets, [b.rows + t.rows for b, t in zip(self.books, self.trades,
                                                                     strict=True)],
                      self.start, self.end, self.shown)
        files = [(d, f) for d in self.datasets for f in d.files]
        start = min(f.ets_min for _, f in files)
        end = max(max(f.ets_max, self._local_max(d.exc, f)) for d, f in files)
        return StreamClocks((start, end), self.shifts, self._sampler)

    def _local_max(self, exc: str, f: _File) -> int:
        return f.local_max + self.shifts.get(exc, 0)

    def last_ns(self, subscribed: set[tuple[str, str, str]]) -> int:
        """The replay's last time: the latest exchange time, or local time of a
        subscribed tape's row (``(kind, exc, ticker)``)."""
        last = max(f.ets_max for d in self.datasets for f in d.files)
        for d in self.datasets:
            if (d.kind, d.exc, d.ticker) in subscribed and d.files:
                last = max(last, max(self._local_max(d.exc, f) for f in d.files))
        return last

    def _sampler(self, exc: str, ticker: str) -> Callable[[], tuple[np.ndarray, np.ndarray]]:
        """The whole range's prices and sizes (only read when a spec is inferred)."""
        def sample() -> tuple[np.ndarray, np.ndarray]:
            from makerlab.data import arrays

            b = arrays.load_snapshot_arrays(self.path, exc, ticker, self.depth, self.start,
                                            self.end)
            t = arrays.load_trade_arrays(self.path, exc, ticker, self.start, self.end)
            return (np.concatenate([np.empty(0), b.bid_price.ravel(), b.ask_price.ravel(),
                                    t.price]),
                    np.concatenate([np.empty(0), b.bid_size.ravel(), b.ask_size.ravel(),
                                    t.size]))
        return sample

    # -- windows -------------------------------------------------------------------------

    def windows(self) -> Iterator[Window]:
        """The window of every segment, in time order (each built when asked for)."""
        bounds = self.bounds or [0]
        for k in range(len(bounds)):
            lo = _BEFORE if k == 0 else bounds[k]
            hi = bounds[k + 1] if k + 1 < len(bounds) else _AFTER
            carry = [d.advance(lo, d.take_before(hi, self._local(d.exc)))
                     for d in self.datasets]
            yield Window([d.tape() for d in self.books],  # type: ignore[misc]
                         [d.tape() for d in self.trades],  # type: ignore[misc]
                         lo, hi, carry[:len(self.books)], hi == _AFTER)

    def record_tapes(self) -> tuple[list[BookTape], list[TradeTape]]:
        """The range's rows as the record keeps them (top of book, prints), read again
        when the record is built: the replay itself never holds them whole."""
        return ([d.record_tape(self.shifts.get(d.exc, 0)) for d in self.books],  # type: ignore[misc]
                [d.record_tape(self.shifts.get(d.exc, 0)) for d in self.trades])  # type: ignore[misc]

    def counts(self) -> tuple[list[int], list[int]]:
        """Rows per book and per trade tape over the range."""
        return [d.rows for d in self.books], [d.rows for d in self.trades]


def check_markets(markets: Sequence[tuple[str, str]], rows: Sequence[int], start: Any,
                  end: Any, shown: str) -> None:
    """ConfigError naming the markets with no book or trade row (``rows``, per market) in
    the range: a market asked for is never dropped in silence (a mistyped symbol)."""
    missing = [f"{exc}/{ticker}" for (exc, ticker), n in zip(markets, rows, strict=True)
               if not n]
    if missing:
        raise ConfigError(f"Replayer: no book or trade data for {', '.join(missing)} from "
                          f"{start} to {end} in the archive at {shown}")
