"""Book sequencing: every rule against a naive reference book, with injected gaps,
duplicates, reorders and stale snapshots. The invariant: whatever BookSync delivers equals
the reference book at that update; after a gap it delivers nothing until a snapshot."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from makerlab.core.events import BookDelta
from makerlab.errors import CrossedBook, SequenceGap
from makerlab.live.book import (
    BinanceSpotRule,
    BinanceUsdmRule,
    BookSync,
    ContiguousRule,
    LocalBook,
    SnapshotTimeRule,
    StraddleChainRule,
    Verdict,
)
from makerlab.live.venues.base import book_delta

# bids on prices 1..10, asks on 11..20: the reference never crosses
change = st.tuples(st.booleans(), st.integers(0, 9), st.sampled_from([0.0, 1.0, 2.5, 7.0]))
changes = st.lists(st.lists(change, min_size=1, max_size=3), min_size=6, max_size=30)


@dataclass
class Scheme:
    """How a venue numbers its deltas and where its snapshots come from."""

    rule: object
    rest: bool  # REST snapshot venue: deltas buffered before the snapshot

    def ids(self, n: int, jumps: list[int]) -> list[tuple[int, int, int]]:
        """(first_seq, seq, prev_seq) per delta."""
        out, prev = [], 100
        for i in range(n):
            first = prev + 1 + (jumps[i % len(jumps)] if self.rule_kind == "global" else 0)
            seq = first + (jumps[i % len(jumps)] if self.rule_kind != "contiguous" else 0)
            out.append((first, seq, prev))
            prev = seq
        return out

    @property
    def rule_kind(self) -> str:
        return {BinanceUsdmRule: "global", BinanceSpotRule: "spot",
                ContiguousRule: "contiguous", StraddleChainRule: "global"}[type(self.rule)]


SCHEMES = [Scheme(BinanceUsdmRule(), True), Scheme(BinanceSpotRule(), True),
           Scheme(ContiguousRule(), False), Scheme(StraddleChainRule(), True)]


def _rows(chg, bid):
    return [[float(p + (1 if bid else 11)), s] for is_bid, p, s in chg if is_bid == bid]


def _reference(deltas: list[list], upto: int) -> tuple[dict, dict]:
    bids, asks = {}, {}
    for chg in deltas[: upto + 1]:
        for is_bid, p, s in chg:
            side, price = (bids, p + 1.0) if is_bid else (asks, p + 11.0)
            if s > 0:
                side[price] = s
            else:
                side.pop(price, None)
    return bids, asks


def _delta(ids, chg, i) -> BookDelta:
    first, seq, prev = ids[i]
    return book_delta("x", "S", seq * 10, 0, seq=seq, first_seq=first, prev_seq=prev,
                      bids=_rows(chg, True), asks=_rows(chg, False), is_snapshot=False)


def _snapshot(deltas, ids, i) -> BookDelta:
    bids, asks = _reference(deltas, i)
    return book_delta("x", "S", ids[i][1] * 10, 0, seq=ids[i][1], is_snapshot=True,
                      bids=sorted(([p, s] for p, s in bids.items()), reverse=True),
                      asks=sorted([p, s] for p, s in asks.items()))


def _perturb(order: list[int], op: str, at: int) -> list[int]:
    if not order:
        return order
    at %= len(order)
    if op == "drop":
        return order[:at] + order[at + 1:]
    if op == "dup":
        return order[: at + 1] + order[at:]
    if op == "swap" and at + 1 < len(order):
        return [*order[:at], order[at + 1], order[at], *order[at + 2:]]
    return order


def _assert_matches(sync: BookSync, deltas, index: int) -> None:
    bids, asks = _reference(deltas, index)
    assert dict(sync.book.bids) == bids and dict(sync.book.asks) == asks


def _run(scheme: Scheme, deltas, jumps, snap_at, ops) -> int:
    """Feed a perturbed stream; resync with a fresh snapshot after each gap. Returns the
    number of deliveries checked."""
    ids = scheme.ids(len(deltas), jumps)
    index_of = {ids[i][1]: i for i in range(len(ids))}
    sync = BookSync(scheme.rule, buffer_deltas=scheme.rest)
    snap_at %= len(deltas)
    start = max(0, snap_at - 2) if scheme.rest else snap_at + 1
    order = list(range(start, len(deltas)))
    for op, at in ops:
        order = _perturb(order, op, at)
    stream = [_delta(ids, deltas[i], i) for i in order]
    if scheme.rest:  # the deltas before the snapshot arrive first and are buffered
        head = [m for m in stream if index_of[m.seq] <= snap_at]
        stream = [*head, _snapshot(deltas, ids, snap_at), *stream[len(head):]]
    else:
        stream = [_snapshot(deltas, ids, snap_at), *stream]
    checked, newest = 0, snap_at
    for msg in stream:
        newest = max(newest, index_of[msg.seq])
        try:
            applied = sync.on_message(msg)
        except SequenceGap:
            assert not sync.live and len(sync.book) == 0
            applied = sync.on_message(_snapshot(deltas, ids, newest))  # the resync
        if applied:
            _assert_matches(sync, deltas, index_of[applied[-1].seq])
            checked += 1
    return checked


ops = st.lists(st.tuples(st.sampled_from(["drop", "dup", "swap", "none"]),
                         st.integers(0, 40)), max_size=3)


@pytest.mark.parametrize("scheme", SCHEMES, ids=lambda s: type(s.rule).__name__)
@settings(max_examples=120, deadline=None)
@given(deltas=changes, jumps=st.lists(st.integers(0, 3), min_size=1, max_size=4),
       snap_at=st.integers(0, 30), ops=ops)
def test_never_a_wrong_book(scheme, deltas, jumps, snap_at, ops):
    _run(scheme, deltas, jumps, snap_at, ops)


@pytest.mark.parametrize("scheme", SCHEMES, ids=lambda s: type(s.rule).__name__)
def test_a_clean_stream_is_delivered_whole(scheme):
    deltas = [[(i % 2 == 0, i % 10, float(i % 3))] for i in range(20)]
    assert _run(scheme, deltas, [2], 5, []) >= 14


@pytest.mark.parametrize("scheme", SCHEMES, ids=lambda s: type(s.rule).__name__)
def test_a_dropped_delta_is_a_gap(scheme):
    deltas = [[(True, i % 10, 1.0 + i)] for i in range(10)]
    ids = scheme.ids(10, [1])
    sync = BookSync(scheme.rule, buffer_deltas=scheme.rest)
    sync.on_message(_snapshot(deltas, ids, 2))
    sync.on_message(_delta(ids, deltas[3], 3))
    with pytest.raises(SequenceGap, match="does not continue"):
        sync.on_message(_delta(ids, deltas[5], 5))
    assert not sync.live and sync.on_message(_delta(ids, deltas[6], 6)) == []


def test_a_stale_rest_snapshot_is_a_gap():
    """The snapshot predates every buffered delta: the first cannot straddle it."""
    scheme = SCHEMES[0]
    deltas = [[(True, i % 10, 1.0)] for i in range(10)]
    ids = scheme.ids(10, [2])
    sync = BookSync(scheme.rule, buffer_deltas=True)
    for i in (5, 6):
        assert sync.on_message(_delta(ids, deltas[i], i)) == []
    with pytest.raises(SequenceGap):
        sync.on_message(_snapshot(deltas, ids, 2))
    assert not sync.live


def test_a_crossed_book_is_treated_as_a_gap():
    sync = BookSync(ContiguousRule(), buffer_deltas=False)
    sync.on_message(book_delta("x", "S", 1, 0, seq=1, bids=[[10.0, 1.0]], asks=[[11.0, 1.0]],
                               is_snapshot=True))
    with pytest.raises(CrossedBook, match="crossed"):
        sync.on_message(book_delta("x", "S", 2, 0, seq=2, bids=[[11.5, 1.0]], asks=[],
                                   is_snapshot=False))
    assert not sync.live and len(sync.book) == 0


def test_snapshot_time_rule_skips_older_books():
    rule = SnapshotTimeRule()
    newer = book_delta("x", "S", 20, 0, seq=-1, bids=[], asks=[], is_snapshot=True)
    older = book_delta("x", "S", 10, 0, seq=-1, bids=[], asks=[], is_snapshot=True)
    assert rule.check(newer, older) is Verdict.SKIP
    assert rule.check(older, newer) is Verdict.APPLY


def test_contiguous_rule_takes_any_new_snapshot():
    rule = ContiguousRule()
    last = book_delta("x", "S", 20, 0, seq=50, bids=[], asks=[], is_snapshot=False)
    restart = book_delta("x", "S", 30, 0, seq=1, bids=[], asks=[], is_snapshot=True)
    assert rule.check(last, restart) is Verdict.APPLY


def test_local_book_top_levels():
    book = LocalBook()
    book.replace(np.array([[1.0, 1.0], [3.0, 2.0], [2.0, 0.0]]),
                 np.array([[5.0, 1.0], [4.0, 3.0]]))
    bids, asks = book.top(5)
    assert bids.tolist() == [[3.0, 2.0], [1.0, 1.0]] and asks.tolist() == [[4.0, 3.0], [5.0, 1.0]]
    assert not bids.flags.writeable and book.top(1)[0].shape == (1, 2)
    book.apply(np.array([[3.0, 0.0], [9.0, 0.0]]), np.empty((0, 2)))
    assert book.top(5)[0].tolist() == [[1.0, 1.0]] and not book.crossed()


def test_a_crossed_book_is_treated_as_a_gap_a_locked_one_too():
    """Best bid at the best ask is crossed too (``bid >= ask``)."""
    sync = BookSync(ContiguousRule(), buffer_deltas=False)
    with pytest.raises(CrossedBook, match=r"bid 10\.0 >= ask 10\.0"):
        sync.on_message(book_delta("x", "S", 1, 0, seq=1, bids=[[10.0, 1.0]],
                                   asks=[[10.0, 1.0]], is_snapshot=True))
    assert not sync.live and len(sync.book) == 0


@pytest.mark.parametrize("scheme", SCHEMES, ids=lambda s: type(s.rule).__name__)
def test_stale_and_duplicate_messages_are_skipped(scheme):
    """A repeat of the last delta, or one the snapshot contains, changes nothing and is no
    gap: the book stays live and the next delta applies."""
    deltas = [[(True, i % 10, 1.0 + i)] for i in range(10)]
    ids = scheme.ids(10, [1])
    sync = BookSync(scheme.rule, buffer_deltas=scheme.rest)
    sync.on_message(_snapshot(deltas, ids, 2))
    assert sync.on_message(_delta(ids, deltas[1], 1)) == []  # in the snapshot
    assert len(sync.on_message(_delta(ids, deltas[3], 3))) == 1
    assert sync.on_message(_delta(ids, deltas[3], 3)) == []  # a repeat
    assert sync.live and len(sync.on_message(_delta(ids, deltas[4], 4))) == 1


def test_stream_snapshot_venues_drop_deltas_that_come_before_the_snapshot():
    """A stream snapshot venue numbers afresh after a resubscription: a delta received
    before the snapshot (seq 50, the old numbering) is not replayed on it (seq 1)."""
    sync = BookSync(ContiguousRule(), buffer_deltas=False)
    assert sync.on_message(book_delta("x", "S", 1, 0, seq=50, bids=[[9.0, 1.0]], asks=[],
                                      is_snapshot=False)) == []
    snapshot = book_delta("x", "S", 2, 0, seq=1, bids=[[10.0, 1.0]], asks=[[11.0, 1.0]],
                          is_snapshot=True)
    assert sync.on_message(snapshot) == [snapshot]
    assert sync.book.top(5)[0].tolist() == [[10.0, 1.0]]


def test_binance_spot_rule_deltas_must_be_contiguous():
    """After the first delta, ``U == prev u + 1``: a delta overlapping the last is a gap."""
    rule = BinanceSpotRule()
    last = book_delta("x", "S", 0, 0, seq=110, first_seq=105, bids=[], asks=[],
                      is_snapshot=False)

    def delta(first: int) -> BookDelta:
        return book_delta("x", "S", 0, 0, seq=115, first_seq=first, bids=[], asks=[],
                          is_snapshot=False)
    assert rule.check(last, delta(111)) is Verdict.APPLY
    assert rule.check(last, delta(108)) is Verdict.GAP
    assert rule.check(last, delta(112)) is Verdict.GAP


def test_straddle_chain_rule_the_first_delta_may_straddle_the_snapshot():
    """WOO X: the snapshot at L; the first delta applied starts at or before it
    (``prev_seq <= L``), not necessarily exactly at it."""
    rule = StraddleChainRule()
    snapshot = book_delta("x", "S", 0, 0, seq=100, bids=[], asks=[], is_snapshot=True)

    def delta(prev: int) -> BookDelta:
        return book_delta("x", "S", 0, 0, seq=105, prev_seq=prev, bids=[], asks=[],
                          is_snapshot=False)
    assert rule.check(snapshot, delta(95)) is Verdict.APPLY
    assert rule.check(snapshot, delta(100)) is Verdict.APPLY
    assert rule.check(snapshot, delta(101)) is Verdict.GAP


def test_rest_snapshot_venues_buffer_up_to_buffer_limit():
    """Of the deltas that came before the snapshot only the newest ``buffer_limit`` are
    kept: with 3, deltas 3..7 keep 5..7, which do not continue a snapshot at 2."""
    scheme = SCHEMES[0]
    deltas = [[(True, i % 10, 1.0 + i)] for i in range(10)]
    ids = scheme.ids(10, [1])
    sync = BookSync(scheme.rule, buffer_deltas=True, buffer_limit=3)
    for i in range(3, 8):
        assert sync.on_message(_delta(ids, deltas[i], i)) == []
    with pytest.raises(SequenceGap):
        sync.on_message(_snapshot(deltas, ids, 2))
