"""Vectorised checks shared by converters and the archive reader.

Each check either raises :class:`~makerlab.errors.DataError` naming the source and the
first offending row, or (with ``repairs`` given) repairs the data and records how many
rows it touched. Rows are numbered from ``first_line`` so messages can point at the
line of the original file.
"""

from __future__ import annotations

import numpy as np

from makerlab.data.convert import Repairs, reject
from makerlab.errors import CrossedBook, DataError, UnsortedData


def _line(rows: np.ndarray, index: int, first_line: int) -> int:
    return int(rows[index]) if rows is not None else first_line + index


def check_sorted(
    ts: np.ndarray,
    *,
    source: str,
    lines: np.ndarray | None = None,
    first_line: int = 1,
    repairs: Repairs | None = None,
) -> np.ndarray:
    """Indices that put ``ts`` in non-decreasing order.

    Without ``repairs`` a backwards step raises :class:`UnsortedData` at its row and the
    identity order is returned; with ``repairs`` the rows are stably sorted and counted.
    """
    back = np.flatnonzero(np.diff(ts) < 0)
    if back.size == 0:
        return np.arange(ts.size)
    i = int(back[0]) + 1
    reject(repairs, "unsorted",
           f"timestamp {int(ts[i])} goes back from {int(ts[i - 1])} "
           f"({back.size} backward steps in total); pass repair=True to sort",
           f"{back.size} backward timestamp steps, rows sorted",
           source=source, line=_line(lines, i, first_line), error=UnsortedData)
    return np.argsort(ts, kind="stable")


def check_finite(
    columns: dict[str, np.ndarray],
    *,
    source: str,
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
           source=source, line=_line(lines, i, first_line))
    return keep


def check_uncrossed(
    best_bid: np.ndarray,
    best_ask: np.ndarray,
    *,
    source: str,
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
           source=source, line=_line(lines, i, first_line), error=CrossedBook)
    return ~crossed


def check_levels_ordered(bid_price: np.ndarray, ask_price: np.ndarray, *, source: str,
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
                            source=source, line=_line(lines, int(rows[0]), first_line))


def validate_table(kind: str, table, source: str) -> None:
    """Raise :class:`DataError` at the first problem of an archive table of ``kind``.

    Checks: rows sorted by ``local_ts``; prices and sizes finite where a level exists;
    books (``book_snapshot``, ``bbo``) uncrossed, snapshot levels in book order.
    """
    from makerlab.data.schema import BBO, BOOK_DELTA, BOOK_SNAPSHOT, TRADES

    check_sorted(table.column("local_ts").to_numpy(), source=source)
    if kind in (TRADES, BOOK_DELTA):
        check_finite({name: table.column(name).to_numpy() for name in ("price", "size")},
                     source=source)
    elif kind == BBO:
        check_uncrossed(table.column("bid_price").to_numpy(), table.column("ask_price").to_numpy(),
                        source=source)
    elif kind == BOOK_SNAPSHOT:
        from makerlab.data.arrays import column_numpy

        bids, asks = (column_numpy(table.column(c)) for c in ("bid_price", "ask_price"))
        check_uncrossed(bids[:, 0], asks[:, 0], source=source)
        check_levels_ordered(bids, asks, source=source)


def validate_archive(root, *, fix: bool = False, filesystem=None):
    """Check the whole archive at ``root``: every path, every hour file, the manifest.

    Each hour file is read through the archive reader (schema, version, corruption, rows in
    its own hour) and then :func:`validate_table`; the manifest adds missing, duplicated,
    moved, extra and changed files, interrupted writes and half-written instruments (see
    :mod:`makerlab.data.integrity`). Stray paths are reported, never crashed on. With
    ``fix`` interrupted writes are first completed and their leftovers deleted.

    Returns:
        :class:`~makerlab.data.integrity.ArchiveReport`: ``problems`` (empty when the
        archive is sound), ``notes`` and ``fixed``, one line each naming the path.
    """
    from dataclasses import replace

    from makerlab.data.integrity import check_archive, repair_archive

    fixed = repair_archive(root, filesystem=filesystem) if fix else []
    report = check_archive(root, check=validate_table, filesystem=filesystem)
    return replace(report, fixed=tuple(fixed))
