"""The book replay shared by the delta converters (binance, tardis_l2): materialise the
deltas and check every rebuilt book state, refusing or cutting the delta chain.

A wrong book state (crossed, or disagreeing with the venue's recorded top of book) poisons
every later state built on it, so a repair never drops the bad state alone: it drops the
deltas from that message up to the next snapshot, where the book is known again.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pyarrow as pa

from makerlab.data.book_builder import _message_starts as message_starts
from makerlab.data.book_builder import materialize
from makerlab.data.convert import Repairs
from makerlab.data.schema import FLAG_SNAPSHOT
from makerlab.errors import CrossedBook, DataError

#: ``check(deltas, snapshots) -> None or (book_snapshot row, problem)``, run on each replay.
StateCheck = Callable[[pa.Table, pa.Table], tuple[int, str] | None]


def replay_checked(
    deltas: pa.Table,
    depth: int,
    *,
    origins: np.ndarray,
    locate: Callable[[int], tuple[str, int]],
    repairs: Repairs | None,
    check: StateCheck | None = None,
) -> tuple[pa.Table, pa.Table]:
    """``(deltas, snapshots)``: the deltas as kept and their depth-``depth`` snapshots.

    ``origins`` holds, per delta row, what ``locate`` turns into the (file, line) named by
    errors. A crossed book after a message, or a state ``check`` rejects, raises a
    :class:`DataError` (``CrossedBook`` for the former) at that message's line; with
    ``repairs`` the message and every delta after it up to the next ``FLAG_SNAPSHOT``
    message are dropped, counted (``crossed`` or ``book_mismatch``), and the rest replayed.
    """
    while True:
        try:
            snapshots = materialize(deltas, depth, source="book_delta")
            found = check(deltas, snapshots) if check is not None else None
            if found is None:
                return deltas, snapshots
            row, problem = _delta_row(deltas, found[0]), found[1]
            kind, error = "book_mismatch", DataError
        except CrossedBook as e:
            if e.line is None:  # materialize names the delta row; without it, nothing to cut
                raise
            row, problem = int(e.line) - 1, str(e).split(": ", 1)[1].split("; pass")[0]
            kind, error = "crossed", CrossedBook
        source, line = locate(int(origins[row]))
        if repairs is None:
            raise error(f"{problem}; pass repair=True to drop the book up to the next "
                        "snapshot", source=source, line=line)
        keep, dropped = _cut(deltas, row)
        repairs.record(kind, source, line, f"{problem}; {dropped} messages dropped up to "
                       "the next snapshot")
        deltas, origins = deltas.filter(pa.array(keep)), origins[keep]


def _message_starts(deltas: pa.Table) -> np.ndarray:
    """First row of each message, as the replay splits them."""
    return message_starts(*(deltas.column(name).to_numpy()
                            for name in ("exchange_ts", "local_ts", "seq")))


def _delta_row(deltas: pa.Table, state: int) -> int:
    """First delta row of the message after which book state ``state`` was taken
    (states start at the message holding the first snapshot row)."""
    starts = _message_starts(deltas)
    snap = np.flatnonzero(deltas.column("flags").to_numpy() & FLAG_SNAPSHOT)
    first = int(np.searchsorted(starts, snap[0], side="right")) - 1
    return int(starts[first + state])


def _cut(deltas: pa.Table, row: int) -> tuple[np.ndarray, int]:
    """Mask dropping the message starting at ``row`` and every message after it up to the
    next snapshot message; and the number of messages dropped."""
    starts = _message_starts(deltas)
    snap = (deltas.column("flags").to_numpy() & FLAG_SNAPSHOT) != 0
    later = starts[starts > row]
    resync = later[snap[later]]
    end = int(resync[0]) if resync.size else deltas.num_rows
    keep = np.ones(deltas.num_rows, dtype=bool)
    keep[row:end] = False
    return keep, int(((starts >= row) & (starts < end)).sum())
