"""Reading the archive for the paper exchange: which markets it holds and their events,
one UTC hour at a time.

Only the public reading API of :mod:`makerlab.data` is used (``list_archive``,
``read_table``, the array helpers). A market's book comes from ``book_delta`` when the
archive has it (the venue's own messages and update ids), otherwise from the deepest
``book_snapshot`` dataset (each row a full book state; the market derives the level
changes between consecutive rows and numbers the messages 1, 2, 3, ...).

Events of one hour are merged across markets and kinds by ``local_ts`` (the recorder's
receive time): at most one hour of one instrument's data is held in memory at a time.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import numpy as np
import pyarrow as pa

from makerlab.data.archive import list_archive, read_table
from makerlab.data.arrays import column_numpy, message_offsets
from makerlab.data.schema import BOOK_DELTA, BOOK_SNAPSHOT, FLAG_SNAPSHOT, NO_SEQ, TRADES
from makerlab.data.storage import existing
from makerlab.errors import ConfigError
from makerlab.paper.book import Level

__all__ = ["BookMessage", "Dataset", "HourEvents", "TradePrint", "find_datasets",
           "hour_name", "hour_range", "load_hour", "snapshot_hours"]

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(slots=True)
class BookMessage:
    """One venue book message: clocks in ns, update ids, absolute level changes.

    ``is_snapshot``: the message replaces the whole book (``changes`` is that book).
    ``seq``/``first_seq``/``prev_seq`` are the archive's ids (Binance's ``u``/``U``/``pu``;
    ``-1`` where it has none: the market fills those in, see
    :meth:`makerlab.paper.market.Market.apply`).
    """

    exchange_ts: int
    local_ts: int
    seq: int
    first_seq: int
    prev_seq: int
    changes: list[Level]
    is_snapshot: bool


@dataclass(frozen=True, slots=True)
class TradePrint:
    """One archived trade: clocks in ns, aggressor ``side`` (+1 buy / -1 sell / 0)."""

    exchange_ts: int
    local_ts: int
    price: float
    size: float
    side: int
    trade_id: str


@dataclass(frozen=True)
class Dataset:
    """What the archive holds for one instrument in the served range."""

    exchange: str
    symbol: str
    book_kind: str | None  # BOOK_DELTA, BOOK_SNAPSHOT or None (trades only)
    depth: int | None  # of the book_snapshot dataset
    hours: frozenset[int] = field(default_factory=frozenset)  # epoch hours with book data
    trade_hours: frozenset[int] = field(default_factory=frozenset)


# --------------------------------------------------------------------------- range


def hour_range(start: str, end: str) -> list[int]:
    """Epoch hours from ``start`` to ``end``, both inclusive ('YYYY-MM-DD:HH' or a day)."""
    first, last = _parse_hour(start, end=False), _parse_hour(end, end=True)
    if last < first:
        raise ConfigError(f"empty range: end {end!r} is before start {start!r}")
    return list(range(first, last + 1))


def _parse_hour(text: str, *, end: bool) -> int:
    for fmt, span in (("%Y-%m-%d:%H", 0), ("%Y-%m-%d", 23)):
        try:
            moment = datetime.strptime(text, fmt).replace(tzinfo=UTC)
        except ValueError:
            continue
        return (moment - _EPOCH) // timedelta(hours=1) + (span if end else 0)
    raise ConfigError(f"cannot parse hour {text!r}: expected 'YYYY-MM-DD:HH' or 'YYYY-MM-DD'")


def hour_name(hour: int) -> str:
    """``'YYYY-MM-DD:HH'`` of an epoch hour (the archive's inclusive hour bound)."""
    return f"{_EPOCH + timedelta(hours=hour):%Y-%m-%d:%H}"


# --------------------------------------------------------------------------- discovery


def find_datasets(root: str | os.PathLike, hours: list[int]) -> dict[tuple[str, str], Dataset]:
    """Every instrument with book or trade data in ``hours``, keyed ``(exchange, symbol)``;
    ConfigError when there is no archive at ``root`` or nothing in ``hours``."""
    archive = existing(root)
    listing = list_archive(root)
    wanted = set(hours)
    found: dict[tuple[str, str], dict[tuple[str, int], set[int]]] = {}
    for row in listing.itertuples(index=False):
        day = (datetime.fromisoformat(row.date).replace(tzinfo=UTC) - _EPOCH) // timedelta(
            hours=1)
        kinds = found.setdefault((row.exchange, row.symbol), {})
        kinds.setdefault((row.kind, int(row.depth)), set()).update(day + h for h in row.hours)
    datasets = {key: _dataset(*key, kinds, wanted) for key, kinds in found.items()}
    datasets = {k: d for k, d in datasets.items() if d.hours & wanted or d.trade_hours}
    if not datasets:
        raise ConfigError(f"the archive at {archive.shown} has no book or trade data from "
                          f"{hour_name(hours[0])} to {hour_name(hours[-1])}")
    return datasets


def _dataset(exchange: str, symbol: str, kinds: dict[tuple[str, int], set[int]],
             wanted: set[int]) -> Dataset:
    trades = frozenset(kinds.get((TRADES, 0), set()) & wanted)
    delta = kinds.get((BOOK_DELTA, 0), set())
    if delta & wanted:
        return Dataset(exchange, symbol, BOOK_DELTA, None, frozenset(delta), trades)
    depths = sorted(d for k, d in kinds if k == BOOK_SNAPSHOT and kinds[(k, d)] & wanted)
    if depths:
        hours = frozenset(kinds[(BOOK_SNAPSHOT, depths[-1])] & wanted)
        return Dataset(exchange, symbol, BOOK_SNAPSHOT, depths[-1], hours, trades)
    return Dataset(exchange, symbol, None, None, frozenset(), trades)


def snapshot_hours(root: str | os.PathLike, dataset: Dataset, first: int) -> list[int]:
    """Hours before ``first`` to replay silently so that a ``book_delta`` stream starting
    mid-way has a book: from the latest earlier hour holding a snapshot to ``first - 1``
    (empty when there is none)."""
    earlier = sorted((h for h in dataset.hours if h < first), reverse=True)
    for hour in earlier:
        flags = read_table(root, BOOK_DELTA, dataset.exchange, dataset.symbol,
                           hour_name(hour), hour_name(hour), columns=["flags"])
        if np.any(flags.column("flags").to_numpy() & FLAG_SNAPSHOT):
            return list(range(hour, first))
    return []


# --------------------------------------------------------------------------- one hour


class _Stream:
    """One dataset's rows of one hour: ``local_ts`` and ``exchange_ts`` per event and
    ``item(i)``; events before ``start`` were consumed already."""

    local_ts: np.ndarray
    exchange_ts: np.ndarray
    trades: bool = False
    start: int = 0

    def item(self, i: int) -> BookMessage | TradePrint:
        raise NotImplementedError


class _Deltas(_Stream):
    def __init__(self, table: pa.Table) -> None:
        cols = {name: table.column(name).to_numpy() for name in table.column_names}
        self._offsets = message_offsets(cols["exchange_ts"], cols["local_ts"], cols["seq"])
        heads = self._offsets[:-1]
        self.local_ts = cols["local_ts"][heads]
        self.exchange_ts = cols["exchange_ts"][heads]
        self._heads = [cols[k][heads].tolist()
                       for k in ("exchange_ts", "local_ts", "seq", "first_seq", "prev_seq")]
        self._levels = [cols["side"], cols["price"], cols["size"]]
        self._opens = _first_flagged(cols["flags"], self._offsets)

    def item(self, i: int) -> BookMessage:
        lo, hi = int(self._offsets[i]), int(self._offsets[i + 1])
        opens = int(self._opens[i])
        side, price, size = (column[max(lo, opens):hi].tolist() for column in self._levels)
        ets, lts, seq, first, prev = (column[i] for column in self._heads)
        return BookMessage(ets, lts, seq, first, prev, list(zip(side, price, size, strict=True)),
                           opens >= 0)


def _first_flagged(flags: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """Per message, the row of its first ``FLAG_SNAPSHOT`` row (the book is cleared
    there), or -1."""
    rows = np.flatnonzero(flags & FLAG_SNAPSHOT)
    first = np.full(len(offsets) - 1, -1, np.int64)
    owner = np.searchsorted(offsets, rows, side="right") - 1
    first[owner[::-1]] = rows[::-1]  # the earliest row of each message is written last
    return first


class _Snapshots(_Stream):
    def __init__(self, table: pa.Table) -> None:
        self.local_ts = table.column("local_ts").to_numpy()
        self.exchange_ts = table.column("exchange_ts").to_numpy()
        self._ets = self.exchange_ts.tolist()
        self._levels = [column_numpy(table.column(name)) for name in
                        ("bid_price", "bid_size", "ask_price", "ask_size")]

    def item(self, i: int) -> BookMessage:
        bp, bs, ap, az = (level[i] for level in self._levels)
        changes = [(1, p, z) for p, z in zip(bp.tolist(), bs.tolist(), strict=True) if p == p]
        changes += [(-1, p, z) for p, z in zip(ap.tolist(), az.tolist(), strict=True) if p == p]
        return BookMessage(self._ets[i], int(self.local_ts[i]), NO_SEQ, NO_SEQ, NO_SEQ, changes,
                           True)


class _Trades(_Stream):
    trades = True

    def __init__(self, table: pa.Table) -> None:
        self.local_ts = table.column("local_ts").to_numpy()
        self.exchange_ts = table.column("exchange_ts").to_numpy()
        self._cols = [table.column(n).to_numpy() for n in
                      ("exchange_ts", "local_ts", "price", "size", "side")]
        self._ids = table.column("trade_id").combine_chunks()

    def item(self, i: int) -> TradePrint:
        ets, lts, price, size, side = (column[i].item() for column in self._cols)
        return TradePrint(ets, lts, price, size, side, self._ids[i].as_py())


@dataclass
class HourEvents:
    """The events of one hour: ``(dataset key, message or trade)`` in ``local_ts`` order,
    built one at a time from the hour's columns."""

    streams: list[tuple[tuple[str, str], _Stream]]

    def __iter__(self) -> Iterator[tuple[tuple[str, str], BookMessage | TradePrint]]:
        if not self.streams:
            return
        stamps = np.concatenate([s.local_ts[s.start:] for _, s in self.streams])
        owner = np.concatenate([np.full(len(s.local_ts) - s.start, k, np.int64)
                                for k, (_, s) in enumerate(self.streams)])
        row = np.concatenate([np.arange(s.start, len(s.local_ts)) for _, s in self.streams])
        for j in np.argsort(stamps, kind="stable").tolist():
            key, stream = self.streams[owner[j]]
            yield key, stream.item(int(row[j]))

    def in_order(self, shift: dict[tuple[str, str], int], rank: dict[tuple[str, str], int]
                 ) -> Iterator[tuple[int, tuple[str, str], BookMessage | TradePrint]]:
        """``(local time, key, event)`` in the Replayer's local-time order: local time =
        exchange time + ``shift[key]``, then trades before books, then markets by
        ``rank[key]``, then archive order."""
        if not self.streams:
            return
        parts = [(s.exchange_ts[s.start:] + shift[k], np.full(len(s.local_ts) - s.start,
                                                              0 if s.trades else 1),
                  np.full(len(s.local_ts) - s.start, rank[k]), np.full(
                      len(s.local_ts) - s.start, j), np.arange(s.start, len(s.local_ts)))
                 for j, (k, s) in enumerate(self.streams)]
        t, kind, ranks, owner, row = (np.concatenate([p[i] for p in parts]) for i in range(5))
        for j in np.lexsort((row, ranks, kind, t)).tolist():
            key, stream = self.streams[int(owner[j])]
            yield int(t[j]), key, stream.item(int(row[j]))

    def opens_in_range(self, key: tuple[str, str]) -> bool:
        """Whether ``key``'s first book message this hour is a snapshot."""
        for k, stream in self.streams:
            if k == key and not stream.trades and stream.start < len(stream.local_ts):
                message = stream.item(stream.start)
                return isinstance(message, BookMessage) and message.is_snapshot
        return False

    def opening_snapshot(self, key: tuple[str, str]) -> BookMessage | None:
        """The first book message of ``key`` this hour if it is a snapshot, removed from
        the events (it is applied before serving)."""
        for k, stream in self.streams:
            if k != key or isinstance(stream, _Trades) or stream.start >= len(stream.local_ts):
                continue
            message = stream.item(stream.start)
            if isinstance(message, BookMessage) and message.is_snapshot:
                stream.start += 1
                return message
        return None


def load_hour(root: str | os.PathLike, datasets: list[Dataset], hour: int, *,
              trades: bool = True) -> HourEvents:
    """Load every dataset's rows of epoch ``hour``."""
    name = hour_name(hour)
    streams: list[tuple[tuple[str, str], _Stream]] = []
    for d in datasets:
        key = (d.exchange, d.symbol)
        if d.book_kind == BOOK_DELTA and hour in d.hours:
            streams.append((key, _Deltas(read_table(root, BOOK_DELTA, *key, name, name))))
        elif d.book_kind == BOOK_SNAPSHOT and hour in d.hours:
            table = read_table(root, BOOK_SNAPSHOT, *key, name, name, depth=d.depth)
            streams.append((key, _Snapshots(table)))
        if trades and hour in d.trade_hours:
            streams.append((key, _Trades(read_table(root, TRADES, *key, name, name))))
    return HourEvents(streams)

