"""The second half of the Binance converter: one symbol's parsed records (a
:class:`~makerlab.data.convert._binance_parse.Capture`) into checked tables.

Trades and bookTicker rows are checked for plausible values and times and sorted; depth
messages are checked, synchronised by update id (:class:`_Sync`), laid out as deltas and
replayed, and every rebuilt book state is checked against the recorded bookTicker. See
:mod:`makerlab.data.convert.binance` and docs/convert.md.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from itertools import chain
from pathlib import Path

import numpy as np
import pyarrow as pa

from makerlab.data.arrays import column_numpy
from makerlab.data.convert import Converted, Repairs
from makerlab.data.convert import _binance_parse as fast
from makerlab.data.convert._binance_parse import B, Capture, D, T, floats, floats_slow, level_pair
from makerlab.data.convert._book import StateCheck, replay_checked
from makerlab.data.schema import (
    BBO,
    BBO_SCHEMA,
    BOOK_DELTA,
    BOOK_DELTA_SCHEMA,
    BOOK_SNAPSHOT,
    FLAG_SNAPSHOT,
    NO_SEQ,
    TRADES,
    TRADES_SCHEMA,
    book_snapshot_schema,
)
from makerlab.data.validate import (
    Plausibility,
    book_ticker_agreement,
    check_sequence_times,
    check_sorted,
    check_times,
    check_uncrossed,
    check_values,
    implausible,
    to_ns,
)
from makerlab.errors import CrossedBook, DataError, SequenceGap
from makerlab.units import NS_PER_MS, NS_PER_S, NS_PER_US

_COINM = re.compile(r"^[A-Z0-9]+USD_(PERP|\d{6})$")
_LOCAL_CLOCK = {b"makerlab.clock": b"local: spot bookTicker has no event time"}


def ns(ts: np.ndarray) -> np.ndarray:
    """Unix timestamps in s, ms, µs or ns (by digit count) -> int64 ns (see ``to_ns`` for
    values that do not fit)."""
    ts = np.asarray(ts, dtype=np.int64)
    ns = to_ns(ts, NS_PER_S)
    for digits, unit in ((11, NS_PER_MS), (14, NS_PER_US), (17, 1)):
        ns = np.where(ts >= 10**digits, to_ns(ts, unit), ns)
    return ns


def build(capture: Capture, paths: list[Path], exchange: str | None, depth: int,
           repair: bool, limits: Plausibility) -> Converted:
    """Turn one symbol's parsed records into its tables."""
    repairs = capture.repairs if repair else None
    ctx = _Context(paths, capture.symbol, repairs, limits)
    bbo, ticker = _bbo(capture, ctx)
    deltas, snapshots = _book(capture, depth, ctx, ticker)
    tables = {BOOK_DELTA: deltas, BOOK_SNAPSHOT: snapshots, TRADES: _trades(capture, ctx),
              BBO: bbo}
    stats = dict(capture.stats) | ctx.stats
    return Converted(
        exchange=exchange or exchange_id(capture),
        symbol=capture.symbol,
        tables=tables,
        depth=depth,
        repairs=capture.repairs,
        stats={k: int(v) for k, v in sorted(stats.items())},
    )


def exchange_id(capture: Capture) -> str:
    """``binance`` (USD-M), ``binance_coinm`` (COIN-M) or ``binance_spot``."""
    if not capture.futures:
        return "binance_spot"
    return "binance_coinm" if _COINM.match(capture.symbol) else "binance"


@dataclass
class _Context:
    """Where rows came from, where to report problems, and the plausibility bounds."""

    paths: list[Path]
    symbol: str
    repairs: Repairs | None
    limits: Plausibility
    stats: Counter = field(default_factory=Counter)

    def fail(self, error: type[DataError], where: np.ndarray, message: str, kind: str) -> None:
        """Raise ``error`` at ``where`` = (file index, line), or record a repair."""
        source, line = str(self.paths[int(where[0])]), int(where[1])
        if self.repairs is None:
            raise error(message, source=source, line=line)
        self.repairs.record(kind, source, line, message)

    def rows(self, where: np.ndarray) -> dict:
        """``source=``, ``lines=`` and ``repairs=`` for a check of the rows at ``where``."""
        names = np.array([str(path) for path in self.paths], dtype=object)
        source = names[0] if len(names) == 1 else names[where[:, 0]]
        return {"source": source, "lines": where[:, 1], "repairs": self.repairs}

    def locate(self, where: np.ndarray) -> Callable[[int], tuple[str, int]]:
        """(file, line) of message ``k`` of ``where``."""
        return lambda k: (str(self.paths[int(where[k, 0])]), int(where[k, 1]))


def _valid_numbers(
    texts: list[str], owner: np.ndarray, where: np.ndarray, ctx: _Context, what: str
) -> tuple[np.ndarray, np.ndarray]:
    """Parse ``texts``; return (values, mask of owning records with a bad value).

    ``owner[i]`` is the record index of ``texts[i]``; ``where`` is (file, line) per record.
    Bad values raise DataError naming the record's line unless repairing.
    """
    try:
        values = floats(texts)
    except ValueError:
        values = floats_slow(texts)
    bad = ~np.isfinite(values)
    bad_records = np.zeros(len(where), dtype=bool)
    bad_records[owner[bad]] = True
    if bad.any():
        first = int(np.argmax(bad))
        ctx.fail(DataError, where[owner[first]], f"non-numeric or non-finite {what} "
                 f"{texts[first]!r}; pass repair=True to skip the line", "malformed_line")
        ctx.stats[f"{what}_records_dropped"] += int(bad_records.sum())
    return values, bad_records


def _ordered(keep: np.ndarray, where: np.ndarray, times: tuple[np.ndarray, np.ndarray],
             ctx: _Context) -> np.ndarray:
    """The rows ``keep`` with plausible timestamps (``times``: exchange and local ns of
    every record), in non-decreasing local_ts order."""
    exchange_ts, local_ts = times
    keep = keep[check_times(exchange_ts[keep], local_ts[keep], limits=ctx.limits,
                            **ctx.rows(where[keep]))]
    return keep[check_sorted(local_ts[keep], max_backstep=ctx.limits.max_backstep_ns,
                             **ctx.rows(where[keep]))]


def _trades(capture: Capture, ctx: _Context) -> pa.Table:
    if not capture.trades and not capture.trades_fast:
        return TRADES_SCHEMA.empty_table()
    rec, values, bad, market, ids = _trade_records(capture, ctx)
    where = rec[:, [T.FILE, T.LINE]]
    perm = _file_order(where)
    keep = perm[(market & ~bad)[perm]]
    keep = keep[check_values({"price": values[keep, 0]}, {"size": values[keep, 1]},
                             limits=ctx.limits, **ctx.rows(where[keep]))]
    local = ns(rec[:, T.LOCAL])
    keep = _ordered(keep, where, (to_ns(rec[:, T.EX], NS_PER_MS), local), ctx)
    return pa.Table.from_arrays(
        [
            pa.array(rec[keep, T.EX] * NS_PER_MS),
            pa.array(local[keep]),
            pa.array(values[keep, 0]),
            pa.array(values[keep, 1]),
            pa.array(np.where(rec[keep, T.MAKER] != 0, -1, 1).astype(np.int8)),
            ids.take(pa.array(keep)),
        ],
        schema=TRADES_SCHEMA,
    )


def _trade_records(capture: Capture, ctx: _Context) -> tuple:
    """(records, [price, size], bad value, MARKET status, ids) of all trades, fast first."""
    blocks = capture.trades_fast
    recs = [b[0] for b in blocks]
    values: list[np.ndarray] = [b[1] for b in blocks]
    ids = [pa.array(b[2]).cast(pa.string()) for b in blocks]
    bad: list[np.ndarray] = [np.zeros(len(r), dtype=bool) for r in recs]
    market: list[np.ndarray] = [np.ones(len(r), dtype=bool) for r in recs]
    if capture.trades:
        rec = np.array(capture.trades, dtype=np.int64)
        price_t, size_t, id_t, status = (list(c) for c in zip(*capture.trade_text, strict=True))
        where, owner = rec[:, [T.FILE, T.LINE]], np.arange(len(rec))
        price, bad_p = _valid_numbers(price_t, owner, where, ctx, "trade")
        size, bad_s = _valid_numbers(size_t, owner, where, ctx, "trade")
        is_market = np.array([x == "MARKET" for x in status], dtype=bool)
        for name, count in Counter(status[i] for i in np.flatnonzero(~is_market)).items():
            ctx.stats[f"trades_skipped_{name}"] += count
        recs.append(rec)
        values.append(np.stack([price, size], axis=1))
        bad.append(bad_p | bad_s)
        market.append(is_market)
        ids.append(pa.array(id_t, type=pa.string()))
    return (np.concatenate(recs), np.concatenate(values), np.concatenate(bad),
            np.concatenate(market), pa.concat_arrays(ids))


def _bbo(capture: Capture, ctx: _Context) -> tuple[pa.Table, tuple | None]:
    """The ``bbo`` table, and every parsed bookTicker as ``(u, [b, B, a, A], kept)`` for
    the check of the rebuilt book (None without any)."""
    if not capture.bbo and not capture.bbo_fast:
        return BBO_SCHEMA.empty_table(), None
    rec, values, bad = _ticker_records(capture, ctx)
    where = rec[:, [B.FILE, B.LINE]]
    perm = _file_order(where)
    keep = perm[~bad[perm]]
    named = ctx.rows(where[keep])
    keep = keep[check_values({"bid_price": values[keep, 0], "ask_price": values[keep, 2]},
                             {"bid_size": values[keep, 1], "ask_size": values[keep, 3]},
                             limits=ctx.limits, **named)]
    keep = keep[check_uncrossed(values[keep, 0], values[keep, 2], **ctx.rows(where[keep]))]
    local = ns(rec[:, B.LOCAL])
    no_event = rec[:, B.EX] == NO_SEQ
    exchange_ts = np.where(no_event, local, to_ns(rec[:, B.EX], NS_PER_MS))
    keep = _ordered(keep, where, (exchange_ts, local), ctx)
    table = pa.Table.from_arrays(
        [pa.array(exchange_ts[keep]), pa.array(local[keep]), pa.array(rec[keep, B.SEQ])]
        + [pa.array(values[keep, j]) for j in range(4)],
        schema=BBO_SCHEMA,
    )
    if no_event[keep].any():
        table = table.replace_schema_metadata(_LOCAL_CLOCK)
    kept = np.zeros(len(rec), dtype=bool)
    kept[keep] = True
    return table, (rec[:, B.SEQ], values, kept)


def _ticker_records(capture: Capture, ctx: _Context) -> tuple:
    """(records, [b, B, a, A], bad record) of all bookTicker messages, fast first."""
    recs, values = [b[0] for b in capture.bbo_fast], [b[1] for b in capture.bbo_fast]
    bad = [np.zeros(len(r), dtype=bool) for r in recs]
    if capture.bbo:
        recs.append(np.array(capture.bbo, dtype=np.int64))
        where = recs[-1][:, [B.FILE, B.LINE]]
        texts = [t for row in capture.bbo_text for t in row]
        owner = np.repeat(np.arange(len(where)), 4)
        parsed, bad_c = _valid_numbers(texts, owner, where, ctx, "bbo")
        values.append(parsed.reshape(-1, 4))
        bad.append(bad_c)
    return np.concatenate(recs), np.concatenate(values), np.concatenate(bad)


# --------------------------------------------------------------------------- the book


def _book(capture: Capture, depth: int, ctx: _Context,
          ticker: tuple | None) -> tuple[pa.Table, pa.Table]:
    """``book_delta`` and ``book_snapshot``: the depth messages synchronised, checked and
    replayed; every book state must agree with the recorded bookTicker."""
    if not capture.depth and not capture.depth_fast:
        return BOOK_DELTA_SCHEMA.empty_table(), book_snapshot_schema(depth).empty_table()
    rec, values, bad = _depth_records(capture, ctx)
    counts = rec[:, D.NB] + rec[:, D.NA]
    starts = np.cumsum(counts) - counts
    bad |= _implausible_levels(rec, values, (starts, counts), ctx)
    perm = _file_order(rec[:, [D.FILE, D.LINE]])
    rec, counts, starts, bad = rec[perm], counts[perm], starts[perm], bad[perm]
    bad |= _bad_snapshots(rec, values, (starts, counts), bad, ctx)
    bad |= ~_plausible_times(rec, bad, ctx)
    applied, local = _Sync(rec, bad, ctx).run()
    ctx.stats["depth_messages_applied"] = int((rec[applied, D.SNAP] == 0).sum())
    deltas, origins = _delta_rows(rec, values, (starts, counts), applied, local, ctx)
    check = None
    if ticker is not None:
        check = _agrees_with_ticker(ticker, spot=not capture.futures, stats=ctx.stats)
    return replay_checked(deltas, depth, origins=origins, repairs=ctx.repairs, check=check,
                          locate=ctx.locate(rec[applied][:, [D.FILE, D.LINE]]))


def _implausible_levels(rec: np.ndarray, values: np.ndarray, levels: tuple,
                        ctx: _Context) -> np.ndarray:
    """Mask of depth records with an implausible level (a size 0 deletes a level in a diff,
    but is no level of a REST snapshot)."""
    bad = np.zeros(len(rec), dtype=bool)
    snap = np.flatnonzero(rec[:, D.SNAP] != 0)
    in_snap = fast.level_rows(levels[0][snap], levels[1][snap])
    top = ctx.limits
    prices, sizes = values[:, 0], values[:, 1]
    if (prices.min(initial=1) >= top.min_price and prices.max(initial=0) <= top.max_price
            and ((sizes == 0) | (sizes >= top.min_size)).all()
            and sizes.max(initial=0) <= top.max_size
            and sizes[in_snap].min(initial=1) >= top.min_size):
        return bad  # the common case, decided without a mask per level (NaN fails here)
    owner = np.repeat(np.arange(len(rec)), levels[1])
    wrong = np.flatnonzero(implausible(prices, top.price_range)
                           | implausible(sizes, top.size_range, rec[owner, D.SNAP] == 0))
    if wrong.size:
        # the first in reading order: by file, its diffs by line, then its REST snapshots
        order = (rec[:, D.FILE] * 2 + rec[:, D.SNAP]) * (1 << 40) + rec[:, D.LINE]
        first = wrong[np.argmin(order[owner[wrong]])]
        ctx.fail(DataError, rec[owner[first], [D.FILE, D.LINE]], f"depth level "
                 f"{values[first].tolist()} is implausible ({top.describe()}, but not in a "
                 "REST snapshot)", "implausible_value")
        bad[owner[wrong]] = True
    return bad


def _bad_snapshots(rec: np.ndarray, values: np.ndarray, levels: tuple, bad: np.ndarray,
                   ctx: _Context) -> np.ndarray:
    """Mask of REST snapshots whose bids do not strictly descend, asks strictly ascend, or
    whose best bid is at or above the best ask: the book they would start is wrong, so a
    repair drops them (and with them the diffs that had no other snapshot to start on)."""
    wrong = np.zeros(len(rec), dtype=bool)
    for j in np.flatnonzero((rec[:, D.SNAP] != 0) & ~bad):
        first, nb, na = levels[0][j], rec[j, D.NB], rec[j, D.NA]
        bids, asks = values[first : first + nb, 0], values[first + nb : first + nb + na, 0]
        problem = None
        if (np.diff(bids) >= 0).any() or (np.diff(asks) <= 0).any():
            problem = "REST snapshot levels out of book order"
        elif nb and na and bids[0] >= asks[0]:
            problem = f"crossed REST snapshot: best bid {bids[0]} >= best ask {asks[0]}"
        if problem:
            ctx.fail(CrossedBook if "crossed" in problem else DataError,
                     rec[j, [D.FILE, D.LINE]], f"{problem}; pass repair=True to drop it and "
                     "the diffs up to the next snapshot", "bad_snapshot")
            wrong[j] = True
    return wrong


def _plausible_times(rec: np.ndarray, bad: np.ndarray, ctx: _Context) -> np.ndarray:
    """Mask of depth records (in file order) with plausible timestamps; a bad record is
    not judged (it is skipped anyway). A REST snapshot without a time is judged by its
    local time alone."""
    judged = np.flatnonzero(~bad)
    local = ns(rec[judged, D.LOCAL])
    exchange = np.where(rec[judged, D.EX] == NO_SEQ, local, to_ns(rec[judged, D.EX], NS_PER_MS))
    keep = np.ones(len(rec), dtype=bool)
    keep[judged] = check_times(exchange, local, limits=ctx.limits,
                               **ctx.rows(rec[judged][:, [D.FILE, D.LINE]]))
    return keep


def _depth_records(capture: Capture, ctx: _Context) -> tuple:
    """(records, level values [n, 2], bad record) of all depth messages, fast first.

    Each record's levels are contiguous in the values, bids first, in record order.
    """
    recs = [b[0] for b in capture.depth_fast]
    values = [b[1] for b in capture.depth_fast]
    bad = [np.zeros(len(r), dtype=bool) for r in recs]
    if capture.depth:
        rec = np.array(capture.depth, dtype=np.int64)
        counts = rec[:, D.NB] + rec[:, D.NA]
        owner = np.repeat(np.arange(len(rec)), counts)
        texts = list(chain.from_iterable(capture.levels))
        if len(texts) != 2 * len(capture.levels):  # some level is not a [price, qty] pair
            texts = list(chain.from_iterable(level_pair(level) for level in capture.levels))
        where = rec[:, [D.FILE, D.LINE]]
        parsed, bad_c = _valid_numbers(texts, np.repeat(owner, 2), where, ctx, "depth level")
        recs.append(rec)
        values.append(parsed.reshape(-1, 2))
        bad.append(bad_c)
    return np.concatenate(recs), np.concatenate(values), np.concatenate(bad)


def _file_order(where: np.ndarray) -> np.ndarray:
    """Permutation putting records in (file, line) order."""
    key = where[:, 0] * (1 << 40) + where[:, 1]
    if (np.diff(key) >= 0).all():
        return np.arange(len(key))
    return np.argsort(key, kind="stable")


class _Sync:
    """Binance's depth synchronisation as a state machine over messages in file order.

    States: waiting for a snapshot (diffs are buffered), holding a snapshot that no diff
    has spanned yet, and live (each diff must continue the previous one).
    """

    def __init__(self, rec: np.ndarray, bad: np.ndarray, ctx: _Context):
        self.rec, self.bad, self.ctx = rec, bad, ctx
        self.spot = not (rec[:, D.PREV] != NO_SEQ).any()
        self.pending: list[int] = []
        self.snapshot: int | None = None  # message index of the unspanned snapshot
        self.last: int | None = None  # last applied u (live state)
        self.applied: list[int] = []
        self.local: list[int] = []
        self.dropped_after_gap = False
        self.floor = 0  # minimum local_ts of applied messages while replaying a buffer

    def run(self) -> tuple[np.ndarray, np.ndarray]:
        """Indices of applied messages (snapshots included) and their local_ts (raw)."""
        for j in range(len(self.rec)):
            if self.bad[j]:
                continue
            if self.rec[j, D.SNAP]:
                self._on_snapshot(j)
            else:
                self._on_diff(j)
        reason = "after_gap" if self.dropped_after_gap else "before_snapshot"
        self.ctx.stats[f"depth_dropped_{reason}"] += len(self.pending)
        return np.array(self.applied, dtype=np.int64), np.array(self.local, dtype=np.int64)

    def _on_snapshot(self, j: int) -> None:
        if self.last is not None:
            self.ctx.stats["snapshots_ignored_in_sync"] += 1
            return
        self.snapshot = j
        buffered, self.pending = self.pending, []
        self.floor = int(self.rec[j, D.LOCAL])  # buffered diffs apply when it arrives
        for i in buffered:
            self._on_diff(i)
        self.floor = 0

    def _on_diff(self, j: int) -> None:
        if self.last is not None:
            self._on_live_diff(j, self.last)
        elif self.snapshot is not None:
            self._on_first_diff(j, self.snapshot)
        else:
            self.pending.append(j)

    def _on_first_diff(self, j: int, snapshot: int) -> None:
        snap = self.rec[snapshot]
        last_id, first, last = snap[D.LAST], self.rec[j, D.FIRST], self.rec[j, D.LAST]
        target = last_id + 1 if self.spot else last_id
        if last < target:
            self.ctx.stats["depth_dropped_before_snapshot"] += 1
            return
        if first > target:
            rule = "U <= lastUpdateId+1" if self.spot else "U <= lastUpdateId"
            self._gap(j, f"first diff after the snapshot (lastUpdateId={last_id}) has "
                      f"U={first}, u={last}: {rule} <= u fails")
            return
        self._apply(snapshot)
        self.snapshot = None
        self._apply(j)

    def _on_live_diff(self, j: int, last: int) -> None:
        first, prev = self.rec[j, D.FIRST], self.rec[j, D.PREV]
        if (first == last + 1) if self.spot else (prev == last):
            self._apply(j)
            return
        got = f"U={first}" if self.spot else f"pu={prev}"
        want = f"U={last + 1}" if self.spot else f"pu={last}"
        self._gap(j, f"depth diff does not continue the book: expected {want}, got {got} "
                  f"(u={self.rec[j, D.LAST]})")

    def _apply(self, j: int) -> None:
        self.applied.append(j)
        self.local.append(max(int(self.rec[j, D.LOCAL]), self.floor))
        self.last = int(self.rec[j, D.LAST])

    def _gap(self, j: int, message: str) -> None:
        """Raise SequenceGap, or (repair) drop the book until the next REST snapshot."""
        self.ctx.fail(SequenceGap, self.rec[j, [D.FILE, D.LINE]], message + "; pass "
                      "repair=True to drop diffs until the next snapshot", "sequence_gap")
        self.last, self.snapshot = None, None
        self.pending = [j]
        self.dropped_after_gap = True


def _delta_rows(
    rec: np.ndarray, values: np.ndarray, levels: tuple[np.ndarray, np.ndarray],
    applied: np.ndarray, local: np.ndarray, ctx: _Context,
) -> tuple[pa.Table, np.ndarray]:
    """Gather the level rows of the applied messages into a book_delta table; and per row,
    the index in ``applied`` of its message.

    ``levels`` holds each message's first row in ``values`` and its number of levels.
    """
    if applied.size == 0:
        return BOOK_DELTA_SCHEMA.empty_table(), np.zeros(0, dtype=np.int64)
    msg = rec[applied]
    local = check_sequence_times(ns(local), max_backstep=ctx.limits.max_backstep_ns,
                                 **ctx.rows(msg[:, [D.FILE, D.LINE]]))
    starts, counts = levels
    n = counts[applied]
    first_row = np.cumsum(n) - n
    rows = np.repeat(starts[applied] - first_row, n) + np.arange(int(n.sum()))
    side = np.where(np.arange(len(rows)) - np.repeat(first_row, n) < np.repeat(msg[:, D.NB], n),
                    1, -1)
    snap = msg[:, D.SNAP] != 0
    ctx.stats["level_updates"] = int(n[~snap].sum())
    ctx.stats["snapshot_levels"] = int(n[snap].sum())
    table = pa.Table.from_arrays(
        [
            pa.array(np.repeat(_exchange_ns(msg, local), n)),
            pa.array(np.repeat(local, n)),
            pa.array(np.repeat(msg[:, D.LAST], n)),
            pa.array(np.repeat(msg[:, D.FIRST], n)),
            pa.array(np.repeat(msg[:, D.PREV], n)),
            pa.array(side.astype(np.int8)),
            pa.array(values[rows, 0]),
            pa.array(values[rows, 1]),
            pa.array(np.repeat(np.where(snap, FLAG_SNAPSHOT, 0).astype(np.uint8), n)),
        ],
        schema=BOOK_DELTA_SCHEMA,
    )
    return table, np.repeat(np.arange(len(applied)), n)


def _exchange_ns(msg: np.ndarray, local: np.ndarray) -> np.ndarray:
    """Exchange time (ns) per applied message.

    A spot REST snapshot carries no time: it gets the event time ``E`` of the diff
    applied right after it (the first diff spanning lastUpdateId, an upper bound), or its
    own local time when no diff follows.
    """
    ts = to_ns(msg[:, D.EX], NS_PER_MS)
    missing = np.flatnonzero(msg[:, D.EX] == NO_SEQ)
    later = missing + 1
    follows = later < len(ts)
    ts[missing[follows]] = ts[later[follows]]
    ts[missing[~follows]] = local[missing[~follows]]
    return ts


def _agrees_with_ticker(ticker: tuple, *, spot: bool, stats: Counter) -> StateCheck:
    """The check of each rebuilt book state against the recorded bookTicker (see
    :func:`~makerlab.data.validate.book_ticker_agreement` and docs/convert.md).

    On spot, one isolated kind of disagreement is Binance's, not ours (docs/convert.md):
    bookTicker shows a better price on one side than the book, a level the 100 ms diff
    does not mention, and the next book state agrees again. It is not refused but counted
    in ``stats["bookticker_spot_boundary"]``.
    """
    ticker_u, quotes, kept = ticker

    def check(deltas: pa.Table, snapshots: pa.Table) -> tuple[int, str] | None:
        top = np.column_stack([column_numpy(snapshots.column(name))[:, 0] for name in
                               ("bid_price", "bid_size", "ask_price", "ask_size")])
        book_u = snapshots.column("seq").to_numpy()
        compared, agrees, latest = book_ticker_agreement(book_u, top, ticker_u, quotes, kept)
        wrong = compared & ~agrees
        if spot:
            boundary = _spot_boundary(deltas, book_u, top, quotes[latest], wrong, agrees)
            stats["bookticker_spot_boundary"] = int(boundary.sum())
            wrong &= ~boundary
        if not wrong.any():
            return None
        m = int(np.argmax(wrong))
        k = latest[m]
        return m, (f"the rebuilt book after this depth message (u={book_u[m]}) disagrees "
                   f"with the latest bookTicker (u={ticker_u[k]}): book bid/ask "
                   f"{_quote(top[m])}, bookTicker {_quote(quotes[k])}")

    return check


def _spot_boundary(deltas: pa.Table, book_u: np.ndarray, book: np.ndarray,
                   ticker: np.ndarray, wrong: np.ndarray, agrees: np.ndarray) -> np.ndarray:
    """Book states showing spot's known boundary inconsistency: one side as bookTicker, on
    the other bookTicker's price is better, a level the depth message does not mention,
    and the next state agrees."""
    bid_same = (book[:, :2] == ticker[:, :2]).all(axis=1)
    ask_same = (book[:, 2:] == ticker[:, 2:]).all(axis=1)
    with np.errstate(invalid="ignore"):
        better_bid = ask_same & (ticker[:, 0] > book[:, 0])
        better_ask = bid_same & (ticker[:, 2] < book[:, 2])
    found = wrong & (better_bid | better_ask) & np.r_[agrees[1:], False]
    seq, side, price = (deltas.column(name).to_numpy() for name in ("seq", "side", "price"))
    for m in np.flatnonzero(found):
        level = (1, ticker[m, 0]) if better_bid[m] else (-1, ticker[m, 2])
        found[m] = not ((seq == book_u[m]) & (side == level[0]) & (price == level[1])).any()
    return found


def _quote(top: np.ndarray) -> str:
    return f"{top[0]:g} x {top[1]:g} / {top[2]:g} x {top[3]:g}"
