"""Columnar loaders for the replay engine: numpy arrays, no Python object per row.

Every loader reads one instrument's archive range (see :mod:`makerlab.data.archive` for
``start``/``end``), sorts it by ``local_ts`` and returns a frozen dataclass of read-only
numpy arrays. Timestamps are int64 nanoseconds since the epoch (UTC); prices and sizes
float64; ``side`` int8 (+1 bid / taker buy, -1 ask / taker sell).

Book deltas are grouped by venue message (consecutive rows sharing ``exchange_ts``,
``local_ts`` and ``seq``): the clocks and ``seq`` are stored once per message and
``offsets`` points into the per-level arrays, so a level update costs 18 bytes plus its
share of the 32-byte message header.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, fields
from typing import Any

import numpy as np
import pyarrow as pa

from makerlab.data import archive
from makerlab.data.archive import TimeLike
from makerlab.data.schema import BBO, BOOK_DELTA, BOOK_SNAPSHOT, TRADES
from makerlab.data.storage import resolve
from makerlab.errors import DataError

__all__ = [
    "BboArrays",
    "DeltaArrays",
    "SnapshotArrays",
    "TradeArrays",
    "column_numpy",
    "load_bbo_arrays",
    "load_delta_arrays",
    "load_snapshot_arrays",
    "load_trade_arrays",
]


class _Arrays:
    """Shared ``nbytes`` and read-only freezing for the array dataclasses."""

    def __post_init__(self) -> None:
        for f in fields(self):  # type: ignore[arg-type]
            value = getattr(self, f.name)
            if isinstance(value, np.ndarray):
                value.flags.writeable = False

    @property
    def nbytes(self) -> int:
        """Bytes held by the arrays (views of one buffer are counted once each)."""
        return sum(getattr(self, f.name).nbytes for f in fields(self))  # type: ignore[arg-type]

    def __len__(self) -> int:
        return int(self.exchange_ts.size)  # type: ignore[attr-defined]


@dataclass(frozen=True, eq=False)
class SnapshotArrays(_Arrays):
    """Depth-N book states: ``exchange_ts``/``local_ts`` (n,), levels (n, depth), best first.

    Missing levels are NaN. ``len()`` is the number of snapshots.
    """

    exchange_ts: np.ndarray
    local_ts: np.ndarray
    bid_price: np.ndarray
    bid_size: np.ndarray
    ask_price: np.ndarray
    ask_size: np.ndarray

    @property
    def depth(self) -> int:
        """Levels per side."""
        return int(self.bid_price.shape[1])


@dataclass(frozen=True, eq=False)
class TradeArrays(_Arrays):
    """Trade prints, each (n,): clocks, ``price``, ``size``, aggressor ``side``."""

    exchange_ts: np.ndarray
    local_ts: np.ndarray
    price: np.ndarray
    size: np.ndarray
    side: np.ndarray


@dataclass(frozen=True, eq=False)
class BboArrays(_Arrays):
    """Best bid/offer updates, each (n,)."""

    exchange_ts: np.ndarray
    local_ts: np.ndarray
    bid_price: np.ndarray
    bid_size: np.ndarray
    ask_price: np.ndarray
    ask_size: np.ndarray


@dataclass(frozen=True, eq=False)
class DeltaArrays(_Arrays):
    """Book deltas grouped by venue message.

    Per message (n_msg,): ``exchange_ts``, ``local_ts``, ``seq``; ``offsets`` (n_msg + 1,)
    so that message ``i`` owns levels ``offsets[i]:offsets[i + 1]``. Per level update
    (n_updates,): ``side`` int8, ``price``, ``size`` (0 deletes the level) and ``flags``
    uint8 (``FLAG_SNAPSHOT``: the message replaces the book). ``len()`` is the number of
    messages.
    """

    exchange_ts: np.ndarray
    local_ts: np.ndarray
    seq: np.ndarray
    offsets: np.ndarray
    side: np.ndarray
    price: np.ndarray
    size: np.ndarray
    flags: np.ndarray

    @property
    def n_updates(self) -> int:
        """Number of level updates (rows)."""
        return int(self.price.size)

    @property
    def bytes_per_update(self) -> float:
        """Resident bytes per level update, message headers included."""
        return self.nbytes / max(1, self.n_updates)


# --------------------------------------------------------------------------- loading


def _load(root: str | os.PathLike, kind: str, exchange: str, symbol: str,
          start: TimeLike, end: TimeLike, columns: list[str], *, depth: int | None = None,
          filesystem: Any = None) -> dict[str, np.ndarray]:
    """``columns`` (plus both clocks) as numpy arrays, rows sorted by ``local_ts``."""
    arc = resolve(root, filesystem)
    return _sorted(archive._read_range(arc, kind, exchange, symbol, depth, start, end, columns))


def column_numpy(column: pa.ChunkedArray) -> np.ndarray:
    """A column as numpy; fixed-size lists become (n, size) without copying one chunk."""
    if not pa.types.is_fixed_size_list(column.type):
        return column.to_numpy()
    size = column.type.list_size
    parts = [_list_chunk(chunk, size) for chunk in column.chunks]
    if len(parts) == 1:
        return parts[0]
    return np.concatenate(parts) if parts else np.empty((0, size), np.float64)


def _list_chunk(chunk: pa.FixedSizeListArray, size: int) -> np.ndarray:
    values = chunk.flatten()
    flat = values.to_numpy(zero_copy_only=values.null_count == 0, writable=False)
    return flat.reshape(-1, size)


def load_snapshot_arrays(root: str | os.PathLike, exchange: str, symbol: str, depth: int,
                         start: TimeLike = None, end: TimeLike = None, *,
                         filesystem: Any = None) -> SnapshotArrays:
    """Depth-``depth`` book snapshots of ``exchange``/``symbol`` in [start, end]."""
    names = ["bid_price", "bid_size", "ask_price", "ask_size"]
    cols = _load(root, BOOK_SNAPSHOT, exchange, symbol, start, end, names, depth=depth,
                 filesystem=filesystem)
    if cols["bid_price"].ndim == 1:  # no rows: give the level arrays their (0, depth) shape
        cols.update({name: np.empty((0, depth), np.float64) for name in names})
    return SnapshotArrays(**cols)


def load_snapshot_arrays_from_deltas(root: str | os.PathLike, exchange: str, symbol: str,
                                     depth: int, start: TimeLike = None, end: TimeLike = None,
                                     *, filesystem: Any = None) -> SnapshotArrays:
    """Depth-``depth`` book states rebuilt from the ``book_delta`` archive, one per message.

    The book is replayed from the archive's first snapshot (before ``start`` if need be:
    a delta only means something on a known book), then cut to [start, end]. Raises
    :class:`~makerlab.errors.DataError` when the deltas up to ``end`` hold no snapshot.
    """
    from makerlab.data.book_builder import materialize

    deltas = archive.read_table(root, BOOK_DELTA, exchange, symbol, None, end,
                                filesystem=filesystem)
    books = materialize(deltas, depth, source=f"{exchange}/{symbol} book_delta")
    if deltas.num_rows and not books.num_rows:
        raise DataError(f"{exchange}/{symbol}: no book snapshot in the book_delta archive "
                        "up to the requested end; a delta stream needs one to start from")
    lo, hi = archive._bounds(start, end)
    ets = books.column("exchange_ts").to_numpy()
    keep = np.ones(len(ets), bool) if lo is None else ets >= lo
    if hi is not None:
        keep &= ets < hi
    books = books.filter(pa.array(keep))
    names = ["bid_price", "bid_size", "ask_price", "ask_size"]
    cols = _sorted(books)
    if books.num_rows == 0:
        cols.update({name: np.empty((0, depth), np.float64) for name in names})
    return SnapshotArrays(**{k: cols[k] for k in ("exchange_ts", "local_ts", *names)})


def load_trade_arrays(root: str | os.PathLike, exchange: str, symbol: str,
                      start: TimeLike = None, end: TimeLike = None, *,
                      filesystem: Any = None) -> TradeArrays:
    """Trade prints of ``exchange``/``symbol`` in [start, end]."""
    cols = _load(root, TRADES, exchange, symbol, start, end, ["price", "size", "side"],
                 filesystem=filesystem)
    return TradeArrays(**cols)


def load_bbo_arrays(root: str | os.PathLike, exchange: str, symbol: str,
                    start: TimeLike = None, end: TimeLike = None, *,
                    filesystem: Any = None) -> BboArrays:
    """Best bid/offer updates of ``exchange``/``symbol`` in [start, end]."""
    names = ["bid_price", "bid_size", "ask_price", "ask_size"]
    cols = _load(root, BBO, exchange, symbol, start, end, names, filesystem=filesystem)
    return BboArrays(**cols)


def load_delta_arrays(root: str | os.PathLike, exchange: str, symbol: str,
                      start: TimeLike = None, end: TimeLike = None, *,
                      filesystem: Any = None) -> DeltaArrays:
    """Book deltas of ``exchange``/``symbol`` in [start, end], grouped by venue message."""
    arc = resolve(root, filesystem)
    levels = ["side", "price", "size", "flags"]
    table = archive._read_range(arc, BOOK_DELTA, exchange, symbol, None, start, end,
                                ["seq", *levels])
    keys = [[c.to_numpy() for c in table.column(k).chunks]
            for k in ("exchange_ts", "local_ts", "seq")]
    if not _chunks_sorted(keys[1]):
        cols = _sorted(table)
        ets, lts, seq = cols.pop("exchange_ts"), cols.pop("local_ts"), cols.pop("seq")
        offsets = message_offsets(ets, lts, seq)
        heads = offsets[:-1]
        return DeltaArrays(exchange_ts=ets[heads], local_ts=lts[heads], seq=seq[heads],
                           offsets=offsets, **cols)
    # Sorted already (the usual case): the clocks and seq are only gathered at message
    # heads, chunk by chunk, instead of being concatenated whole.
    offsets, firsts = _chunked_heads(*keys)
    cols = {name: column_numpy(table.column(name)) for name in levels}
    return DeltaArrays(exchange_ts=firsts[0], local_ts=firsts[1], seq=firsts[2],
                       offsets=offsets, **cols)


def _sorted(table: pa.Table) -> dict[str, np.ndarray]:
    """Every column of ``table`` as numpy, rows stably sorted by ``local_ts``."""
    arrays = {name: column_numpy(table.column(name)) for name in table.column_names}
    order = archive._sort_order(arrays["local_ts"])
    return arrays if order is None else {k: v[order] for k, v in arrays.items()}


def _chunks_sorted(chunks: list[np.ndarray]) -> bool:
    """Whether the concatenation of ``chunks`` is non-decreasing."""
    previous = None
    for chunk in chunks:
        if chunk.size == 0:
            continue
        if np.any(chunk[1:] < chunk[:-1]) or (previous is not None and chunk[0] < previous):
            return False
        previous = chunk[-1]
    return True


def _chunked_heads(ets: list[np.ndarray], lts: list[np.ndarray],
                   seq: list[np.ndarray]) -> tuple[np.ndarray, list[np.ndarray]]:
    """Message offsets and the (exchange_ts, local_ts, seq) of each message's first row.

    A message may continue across a chunk (row group) boundary.
    """
    starts: list[np.ndarray] = []
    heads: list[list[np.ndarray]] = [[], [], []]
    base, last = 0, None
    for e, t, q in zip(ets, lts, seq, strict=True):
        if e.size == 0:
            continue
        local = message_offsets(e, t, q)[:-1]
        if last is not None and (e[0], t[0], q[0]) == last:
            local = local[1:]
        starts.append(local + base)
        for out, column in zip(heads, (e, t, q), strict=True):
            out.append(column[local])
        base, last = base + e.size, (e[-1], t[-1], q[-1])
    offsets = np.concatenate([*starts, [base]]).astype(np.int64)
    return offsets, [np.concatenate(h) if h else np.empty(0, np.int64) for h in heads]


def message_offsets(exchange_ts: np.ndarray, local_ts: np.ndarray,
                    seq: np.ndarray) -> np.ndarray:
    """Start of each run of equal (exchange_ts, local_ts, seq), plus the total length."""
    n = exchange_ts.size
    if n == 0:
        return np.zeros(1, np.int64)
    change = exchange_ts[1:] != exchange_ts[:-1]
    change |= local_ts[1:] != local_ts[:-1]
    change |= seq[1:] != seq[:-1]
    starts = np.flatnonzero(change)
    offsets = np.empty(starts.size + 2, np.int64)
    offsets[0] = 0
    offsets[1:-1] = starts + 1
    offsets[-1] = n
    return offsets
