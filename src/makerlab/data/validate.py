"""Vectorised checks shared by converters and the archive reader.

Each check either raises :class:`~makerlab.errors.DataError` naming the source and the
first offending row, or (with ``repairs`` given) repairs the data and records how many
rows it touched. Rows are numbered from ``first_line`` so messages can point at the
line of the original file, or carry their ``lines``; ``source`` is the file name, or an
array of one per row when rows come from several files. :class:`Plausibility` holds every
bound the checks apply.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from makerlab.data.convert import Repairs, reject
from makerlab.errors import CrossedBook, DataError, UnsortedData
from makerlab.units import NS_PER_S


@dataclass(frozen=True)
class Plausibility:
    """The bounds a converted value must respect; one instance is passed down a converter.

    Every converter's ``read(..., plausibility=)`` takes one (default: these values) and
    ``makerlab validate`` applies the defaults to archive tables. Timestamps are int64 ns.

    Attributes:
        earliest_ns: no timestamp before this (2009-01-01 UTC: no crypto market earlier).
        ahead_ns: no timestamp later than the time of the check plus this (one day).
        max_clock_offset_ns: the largest ``|exchange_ts - local_ts|`` (5 minutes; real
            captures stay within about 45 s, a timestamp off by an hour does not).
        max_backstep_ns: the largest backward step of ``local_ts`` that ``repair=True``
            sorts (1 s: a recorder's jitter); a row further than this from both
            neighbours is a time outlier, and a longer step back is never sorted.
        min_price, max_price: the range of prices (a price is never 0 or negative).
        min_size, max_size: the range of sizes; a size of 0 only deletes a level in a
            book delta.
    """

    earliest_ns: int = 1_230_768_000 * NS_PER_S
    ahead_ns: int = 86_400 * NS_PER_S
    max_clock_offset_ns: int = 300 * NS_PER_S
    max_backstep_ns: int = NS_PER_S
    min_price: float = 1e-12
    max_price: float = 1e10
    min_size: float = 1e-12
    max_size: float = 1e15

    def latest_ns(self) -> int:
        """The latest plausible timestamp: now plus ``ahead_ns``."""
        return time.time_ns() + self.ahead_ns

    @property
    def price_range(self) -> tuple[float, float]:
        return self.min_price, self.max_price

    @property
    def size_range(self) -> tuple[float, float]:
        return self.min_size, self.max_size

    def describe(self) -> str:
        """The value bounds, for error messages."""
        return (f"prices in [{self.min_price:g}, {self.max_price:g}], sizes in "
                f"[{self.min_size:g}, {self.max_size:g}] or 0 to delete a level")


DEFAULT_PLAUSIBILITY = Plausibility()
_NS_BOUND = 2**62  # far outside any plausible time, and from int64 overflow


def to_ns(values: np.ndarray, unit_ns: int) -> np.ndarray:
    """Timestamps counted in units of ``unit_ns`` → int64 ns. Values whose ns would not
    fit int64 (a time times 10**6, 1e300) and NaN are clamped to about ±2**62 ns, which stays
    implausible, instead of wrapping around to some plausible-looking time."""
    bound = _NS_BOUND // unit_ns
    if values.dtype.kind == "f":
        values = np.where(np.isnan(values), -bound, values)
    return np.clip(values, -bound, bound).astype(np.int64) * unit_ns


Source = str | np.ndarray  # a file name, or one per row


def _at(source: Source, lines: np.ndarray | None, index: int, first_line: int) -> dict:
    """``source=`` and ``line=`` naming row ``index``."""
    line = int(lines[index]) if lines is not None else first_line + index
    return {"source": source if isinstance(source, str) else str(source[index]), "line": line}


def _part(source: Source, index: np.ndarray) -> Source:
    """The sources of the rows ``index``."""
    return source if isinstance(source, str) else source[index]


def reject_rows(bad: np.ndarray, kind: str, detail: Callable[[int], str], what: str, *,
                source: Source, lines: np.ndarray | None = None, first_line: int = 1,
                repairs: Repairs | None = None,
                error: type[DataError] = DataError) -> np.ndarray:
    """Mask of the rows to keep: :func:`~makerlab.data.convert.reject` at the first ``bad``
    row (the message is ``detail(row)``); with ``repairs`` every bad row (``what``, e.g.
    "rows with implausible values") is dropped and counted as one repair of ``kind``."""
    if not bad.any():
        return ~bad
    i = int(np.flatnonzero(bad)[0])
    text = detail(i)
    reject(repairs, kind, f"{text}; pass repair=True to drop such rows",
           f"{int(bad.sum())} {what} dropped (first: {text})",
           **_at(source, lines, i, first_line), error=error)
    return ~bad


def check_sorted(
    ts: np.ndarray,
    *,
    source: Source,
    lines: np.ndarray | None = None,
    first_line: int = 1,
    repairs: Repairs | None = None,
    max_backstep: int | None = None,
) -> np.ndarray:
    """Indices that put ``ts`` in non-decreasing order.

    Without ``repairs`` a backwards step raises :class:`UnsortedData` at its row and the
    identity order is returned; with ``repairs`` the rows are stably sorted and counted,
    unless a step goes back by more than ``max_backstep``: that is a wrongly stamped row
    or block, not recorder jitter, and sorting would move it into the data, so it raises
    even when repairing.
    """
    if _backsteps(ts, "sort", "rows sorted", source=source, lines=lines,
                  first_line=first_line, repairs=repairs, max_backstep=max_backstep):
        return np.argsort(ts, kind="stable")
    return np.arange(ts.size)


def check_sequence_times(
    ts: np.ndarray,
    *,
    source: Source,
    lines: np.ndarray | None = None,
    first_line: int = 1,
    repairs: Repairs | None = None,
    max_backstep: int | None = None,
) -> np.ndarray:
    """``ts`` of a stream whose row order is the truth (update ids, LOBSTER's message
    sequence), non-decreasing.

    A backwards step raises :class:`UnsortedData`; with ``repairs`` each timestamp is
    clamped to the largest before it (sorting would reorder the stream) and counted,
    unless a step goes back by more than ``max_backstep``, which raises all the same.
    """
    if _backsteps(ts, "clamp", "timestamps clamped to the previous row's", source=source,
                  lines=lines, first_line=first_line, repairs=repairs,
                  max_backstep=max_backstep):
        return np.maximum.accumulate(ts)
    return ts


def _backsteps(ts: np.ndarray, verb: str, repaired: str, *, source: Source,
               lines: np.ndarray | None, first_line: int, repairs: Repairs | None,
               max_backstep: int | None) -> bool:
    """Whether ``ts`` steps back; raise (or record the repair) as the callers describe."""
    steps = np.diff(ts)
    back = np.flatnonzero(steps < 0)
    if back.size == 0:
        return False
    far = back[-steps[back] > max_backstep] if max_backstep is not None else back[:0]
    i = int((far if far.size else back)[0]) + 1
    where = _at(source, lines, i, first_line)
    detail = f"timestamp {int(ts[i])} goes back from {int(ts[i - 1])}"
    if far.size:
        raise UnsortedData(f"{detail}, by more than {max_backstep} ns: not a reordering "
                           "a repair could undo; fix or remove the rows", **where)
    reject(repairs, "unsorted",
           f"{detail} ({back.size} backward steps in total); pass repair=True to {verb}",
           f"{back.size} backward timestamp steps, {repaired}", **where, error=UnsortedData)
    return True


def check_finite(
    columns: dict[str, np.ndarray],
    *,
    source: Source,
    lines: np.ndarray | None = None,
    first_line: int = 1,
    repairs: Repairs | None = None,
    hint: str | None = None,
) -> np.ndarray:
    """Boolean mask of rows whose every column is finite (not NaN/inf).

    Without ``repairs`` the first bad row raises :class:`DataError` (its message ends with
    ``hint``, by default how to repair); with ``repairs``
    the mask drops bad rows and they are counted.
    """
    n = len(next(iter(columns.values())))
    keep = np.ones(n, dtype=bool)
    for values in columns.values():
        keep &= np.isfinite(values)
    if keep.all():
        return keep
    i = int(np.flatnonzero(~keep)[0])
    bad = [name for name, values in columns.items() if not np.isfinite(values[i])]
    reject(repairs, "non_finite",
           f"non-finite {', '.join(bad)}; {hint or 'pass repair=True to drop such rows'}",
           f"{int((~keep).sum())} rows with NaN/inf dropped",
           **_at(source, lines, i, first_line))
    return keep


def check_values(
    prices: dict[str, np.ndarray],
    sizes: dict[str, np.ndarray],
    *,
    source: Source,
    lines: np.ndarray | None = None,
    first_line: int = 1,
    repairs: Repairs | None = None,
    limits: Plausibility = DEFAULT_PLAUSIBILITY,
    zero_size: bool | np.ndarray = False,
) -> np.ndarray:
    """Mask of rows whose prices lie in [``min_price``, ``max_price``] and sizes in
    [``min_size``, ``max_size``]; a size of 0 also passes where ``zero_size`` (a bool, or
    one per row) allows it: a delta's delete.

    Columns are 1-D, or 2-D ``(rows, levels)`` checked per row. NaN is an absent level
    and passes (:func:`check_finite` and the converters' level checks judge NaN); ±inf
    fails. The first bad row raises :class:`DataError` (``implausible_value``), or with
    ``repairs`` bad rows are dropped and counted.
    """
    price_range, size_range = limits.price_range, limits.size_range
    faults: list[tuple[str, np.ndarray, np.ndarray]] = []
    for name, values, bounds, zero in [
        *((name, values, price_range, False) for name, values in prices.items()),
        *((name, values, size_range, zero_size) for name, values in sizes.items()),
    ]:
        bad = implausible(values, bounds, zero)
        faults.append((name, values, bad if bad.ndim == 1 else np.asarray(bad.any(axis=1))))
    bad = np.logical_or.reduce([fault for _, _, fault in faults])

    def detail(i: int) -> str:
        name, values, _ = next(f for f in faults if f[2][i])
        shown = values[i] if values.ndim == 1 else values[i][~np.isnan(values[i])].tolist()
        return f"implausible {name} {shown} ({limits.describe()})"

    return reject_rows(bad, "implausible_value", detail, "rows with implausible values",
                       source=source, lines=lines, first_line=first_line, repairs=repairs)


def implausible(values: np.ndarray, bounds: tuple[float, float],
                zero_ok: bool | np.ndarray = False) -> np.ndarray:
    """Entries of ``values`` outside ``bounds`` (0 allowed where ``zero_ok``, a bool or one
    per row); NaN, an absent level, is not implausible (±inf is)."""
    zero_ok = np.asarray(zero_ok)
    zero_ok = np.reshape(zero_ok, zero_ok.shape + (1,) * (values.ndim - zero_ok.ndim))
    with np.errstate(invalid="ignore"):
        inside = ((values >= bounds[0]) | (zero_ok & (values == 0))) & (values <= bounds[1])
    return ~(inside | np.isnan(values))


def check_time_window(
    columns: dict[str, np.ndarray],
    *,
    source: Source,
    lines: np.ndarray | None = None,
    first_line: int = 1,
    repairs: Repairs | None = None,
    limits: Plausibility = DEFAULT_PLAUSIBILITY,
) -> np.ndarray:
    """Mask of rows whose every timestamp column (ns) lies in ``[earliest_ns, now +
    ahead_ns]``; a time times 1000, 0, negative or cut short fails (``implausible_time``)."""
    earliest, latest = limits.earliest_ns, limits.latest_ns()
    bad = np.logical_or.reduce([(ts < earliest) | (ts > latest) for ts in columns.values()])

    def detail(i: int) -> str:
        name, ts = next((n, ts) for n, ts in columns.items() if not earliest <= ts[i] <= latest)
        return (f"implausible {name} {int(ts[i])} ns: outside {_iso(earliest)} .. "
                f"{_iso(latest)}")

    return reject_rows(bad, "implausible_time", detail, "rows with implausible timestamps",
                   source=source, lines=lines, first_line=first_line, repairs=repairs)


def _iso(ns: int) -> str:
    return np.datetime64(int(ns), "ns").astype("datetime64[s]").astype(str)


def check_clock_offset(
    exchange_ts: np.ndarray,
    local_ts: np.ndarray,
    *,
    source: Source,
    lines: np.ndarray | None = None,
    first_line: int = 1,
    repairs: Repairs | None = None,
    limits: Plausibility = DEFAULT_PLAUSIBILITY,
) -> np.ndarray:
    """Mask of rows whose exchange and local clocks differ by at most
    ``max_clock_offset_ns`` (``clock_offset``): one clock of a row shifted by an hour
    fails here although each timestamp alone is plausible."""
    offset = exchange_ts - local_ts
    bad = np.abs(offset) > limits.max_clock_offset_ns

    def detail(i: int) -> str:
        return (f"exchange_ts {int(exchange_ts[i])} and local_ts {int(local_ts[i])} are "
                f"{abs(int(offset[i])) / NS_PER_S:g} s apart (at most "
                f"{limits.max_clock_offset_ns / NS_PER_S:g} s)")

    return reject_rows(bad, "clock_offset", detail, "rows with clocks too far apart",
                   source=source, lines=lines, first_line=first_line, repairs=repairs)


def check_time_outliers(
    ts: np.ndarray,
    *,
    source: Source,
    lines: np.ndarray | None = None,
    first_line: int = 1,
    repairs: Repairs | None = None,
    limits: Plausibility = DEFAULT_PLAUSIBILITY,
) -> np.ndarray:
    """Mask of rows that are not time outliers (``time_outlier``).

    An outlier is a run of equal timestamps more than ``max_backstep_ns`` away from both
    neighbouring runs in opposite directions (a spike up then back down, or down then up;
    at the first or last run, a step back beyond the limit): a row stamped an hour late
    inside a sorted stream. Sorting would move it, so ``repair=True`` drops it instead.
    """
    bad = _time_spikes(ts, limits.max_backstep_ns)

    def detail(i: int) -> str:
        return (f"timestamp {int(ts[i])} is more than {limits.max_backstep_ns / NS_PER_S:g} "
                "s away from both of its neighbours")

    return reject_rows(bad, "time_outlier", detail, "time outliers", source=source, lines=lines,
                   first_line=first_line, repairs=repairs)


def _time_spikes(ts: np.ndarray, limit: int) -> np.ndarray:
    """Per row: does its run of equal timestamps stick out from both neighbouring runs?"""
    if ts.size < 2:
        return np.zeros(ts.size, dtype=bool)
    starts = np.flatnonzero(np.r_[True, ts[1:] != ts[:-1]])
    step = np.diff(ts[starts])
    up, down = np.r_[step > limit, False], np.r_[step < -limit, False]
    after_up, after_down = np.r_[False, up[:-1]], np.r_[False, down[:-1]]
    inner = (after_up & down) | (after_down & up)
    spike = inner.copy()
    if spike.size > 1:  # an edge run far from its one neighbour, unless that one sticks out
        spike[0] |= down[0] & ~inner[1]
        spike[-1] |= after_down[-1] & ~inner[-2]
    return np.repeat(spike, np.diff(np.r_[starts, ts.size]))


def check_times(
    exchange_ts: np.ndarray,
    local_ts: np.ndarray,
    *,
    source: Source,
    lines: np.ndarray | None = None,
    first_line: int = 1,
    repairs: Repairs | None = None,
    limits: Plausibility = DEFAULT_PLAUSIBILITY,
) -> np.ndarray:
    """Mask of rows with plausible timestamps: :func:`check_time_window`, then
    :func:`check_clock_offset`, then :func:`check_time_outliers` of ``local_ts`` on the
    rows the earlier checks kept (each bad row is counted once, by its first fault)."""
    lines = _lines(lines, first_line, exchange_ts.size)
    keep = check_time_window({"exchange_ts": exchange_ts, "local_ts": local_ts},
                             source=source, lines=lines, repairs=repairs, limits=limits)
    for check, args in ((check_clock_offset, (exchange_ts, local_ts)),
                        (check_time_outliers, (local_ts,))):
        index = np.flatnonzero(keep)
        keep[index] = check(*(a[index] for a in args), source=_part(source, index),
                            lines=lines[index], repairs=repairs, limits=limits)
    return keep


def _lines(lines: np.ndarray | None, first_line: int, n: int) -> np.ndarray:
    return lines if lines is not None else np.arange(first_line, first_line + n)


def check_uncrossed(
    best_bid: np.ndarray,
    best_ask: np.ndarray,
    *,
    source: Source,
    lines: np.ndarray | None = None,
    first_line: int = 1,
    repairs: Repairs | None = None,
    allow_locked: bool = False,
    hint: str | None = None,
) -> np.ndarray:
    """Boolean mask of rows whose best bid is below the best ask.

    A row with one side empty (NaN) is fine. ``allow_locked`` accepts bid == ask (some
    venues' snapshots lock briefly). Without ``repairs`` the first crossed row raises
    :class:`CrossedBook` (its message ends with ``hint``, by default how to repair); with
    ``repairs`` such rows are dropped and counted.
    """
    with np.errstate(invalid="ignore"):
        crossed = best_bid > best_ask if allow_locked else best_bid >= best_ask
    if not crossed.any():
        return ~crossed
    i = int(np.flatnonzero(crossed)[0])
    detail = f"best bid {best_bid[i]} >= best ask {best_ask[i]}"
    reject(repairs, "crossed",
           f"crossed book: {detail}; {hint or 'pass repair=True to drop crossed rows'}",
           f"{int(crossed.sum())} crossed rows dropped (first: {detail})",
           **_at(source, lines, i, first_line), error=CrossedBook)
    return ~crossed


def check_levels_ordered(bid_price: np.ndarray, ask_price: np.ndarray, *, source: Source,
                         lines: np.ndarray | None = None, first_line: int = 1) -> None:
    """Book rows (``(n, depth)`` arrays, best first, NaN padding) must list bids strictly
    descending and asks strictly ascending; :class:`DataError` at the first row that does
    not."""
    for name, prices, sign in (("bid", bid_price, -1), ("ask", ask_price, 1)):
        with np.errstate(invalid="ignore"):
            bad = np.diff(prices, axis=1) * sign <= 0
        rows = np.flatnonzero(bad.any(axis=1))
        if rows.size:
            raise DataError(f"{name} levels out of book order in a book row",
                            **_at(source, lines, int(rows[0]), first_line))


def check_level_values(sides: dict[str, tuple[np.ndarray, np.ndarray]], *, source: str,
                       hint: str) -> None:
    """Book rows (``{"bid": (prices, sizes), "ask": ...}``, ``(n, depth)`` arrays, best
    first, NaN prices padding) must give every level they list a finite, positive price and
    a finite, non-negative size (a zero size is an empty level); :class:`DataError` at the
    first row that does not."""
    for name, (prices, sizes) in sides.items():
        given = ~np.isnan(prices)
        with np.errstate(invalid="ignore"):
            problems = (
                (given & ~((prices > 0) & np.isfinite(prices)),
                 "has a price that is not finite and positive"),
                (given & ~((sizes >= 0) & np.isfinite(sizes)),
                 "has a size that is not finite and >= 0"),
            )
        for bad, what in problems:
            rows = np.flatnonzero(bad.any(axis=1))
            if rows.size:
                raise DataError(f"{name} side {what}; {hint}", source=source,
                                line=int(rows[0]) + 1)


def book_ticker_agreement(
    book_seq: np.ndarray,
    book_top: np.ndarray,
    ticker_seq: np.ndarray,
    ticker_top: np.ndarray,
    ticker_valid: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Which rebuilt book states have a recorded ticker to compare with, and which agree.

    After the depth message with last update id ``u`` the rebuilt book holds every update
    ``<= u``; the ticker pushes every change of the top level tagged with that change's
    update id, so the top level after the message must equal the *latest ticker with id
    <= u* (best bid price, bid size, ask price, ask size: the ``(n, 4)`` ``*_top``
    arrays). A book state is compared when such a ticker exists and is valid
    (``ticker_valid``: tickers dropped as bad still take their place in the id order, so a
    book state is never compared with a stale ticker). Returns ``(compared, agrees,
    latest)``, ``latest`` being the index of that ticker per book state.
    """
    order = np.argsort(ticker_seq, kind="stable")
    k = np.searchsorted(ticker_seq[order], book_seq, side="right") - 1
    compared = k >= 0
    latest = order[np.maximum(k, 0)] if order.size else np.zeros(book_seq.size, np.int64)
    if ticker_valid is not None:
        compared &= ticker_valid[latest]
    agrees = compared & (book_top == ticker_top[latest]).all(axis=1) if order.size \
        else compared
    return compared, agrees, latest


def validate_table(kind: str, table, source: str,
                   limits: Plausibility = DEFAULT_PLAUSIBILITY) -> None:
    """Raise :class:`DataError` at the first problem of an archive table of ``kind``.

    Checks: rows sorted by ``local_ts``; both timestamps inside the plausible window and
    at most ``max_clock_offset_ns`` apart (for a table recorded from a replayed market,
    :data:`~makerlab.data.schema.REPLAYED_CLOCK`, apart from their median distance);
    prices and sizes finite where a level exists and plausible (:func:`check_values`:
    sizes ≥ 0 in ``book_delta``, > 0 elsewhere); books (``book_snapshot``, ``bbo``)
    uncrossed, snapshot levels in book order.
    """
    from makerlab.data.schema import BOOK_DELTA, TRADES, replayed_clock

    local, exchange = (table.column(name).to_numpy() for name in ("local_ts", "exchange_ts"))
    check_sorted(local, source=source)
    check_time_window({"exchange_ts": exchange, "local_ts": local}, source=source,
                      limits=limits)
    if replayed_clock(table.schema.metadata):  # clocks a constant distance apart
        local = local + int(np.median(exchange - local)) if len(local) else local
    check_clock_offset(exchange, local, source=source, limits=limits)
    if kind in (TRADES, BOOK_DELTA):
        price, size = (table.column(name).to_numpy() for name in ("price", "size"))
        check_finite({"price": price, "size": size}, source=source)
        check_values({"price": price}, {"size": size}, source=source, limits=limits,
                     zero_size=kind == BOOK_DELTA)
        return
    from makerlab.data.arrays import column_numpy

    cols = {name: column_numpy(table.column(name)).reshape(table.num_rows, -1)
            for name in ("bid_price", "bid_size", "ask_price", "ask_size")}
    check_values({k: v for k, v in cols.items() if k.endswith("price")},
                 {k: v for k, v in cols.items() if k.endswith("size")}, source=source,
                 limits=limits)
    check_uncrossed(cols["bid_price"][:, 0], cols["ask_price"][:, 0], source=source)
    check_levels_ordered(cols["bid_price"], cols["ask_price"], source=source)


def validate_archive(root, *, fix: bool = False, filesystem=None, spool=None):
    """Check the whole archive at ``root``: every path, every hour file, the manifest.

    Each hour file is read through the archive reader (schema, version, corruption, rows in
    its own hour) and then :func:`validate_table`; the manifest adds missing, duplicated,
    moved, extra and changed files, interrupted writes and half-written instruments (see
    :mod:`makerlab.data.integrity`). Stray paths are reported, never crashed on. With
    ``fix`` interrupted writes are first completed and their leftovers deleted. ``spool``:
    where recorders keep their sessions, if not the default
    (:func:`~makerlab.data.segments.spool_dir`).

    Returns:
        :class:`~makerlab.data.integrity.ArchiveReport`: ``problems`` (empty when the
        archive is sound), ``notes`` and ``fixed``, one line each naming the path.
    """
    from dataclasses import replace

    from makerlab.data.integrity import check_archive, repair_archive

    fixed = repair_archive(root, filesystem=filesystem, spool=spool) if fix else []
    report = check_archive(root, check=validate_table, filesystem=filesystem, spool=spool)
    return replace(report, fixed=tuple(fixed))
