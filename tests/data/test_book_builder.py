"""materialize(): delta rows -> depth-N snapshots, against hand-made and random books."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from makerlab.data.book_builder import materialize
from makerlab.data.convert import Repairs
from makerlab.data.schema import BOOK_DELTA_SCHEMA, FLAG_SNAPSHOT, book_snapshot_schema
from makerlab.errors import CrossedBook, DataError


def deltas(rows: list[tuple]) -> pa.Table:
    """rows: (message id, side, price, size, snapshot?) -> book_delta table."""
    msg = np.array([r[0] for r in rows], dtype=np.int64)
    return pa.Table.from_arrays(
        [
            pa.array(msg * 10), pa.array(msg * 10 + 1), pa.array(msg),
            pa.array(np.full(len(rows), -1)), pa.array(np.full(len(rows), -1)),
            pa.array(np.array([r[1] for r in rows], dtype=np.int8)),
            pa.array(np.array([r[2] for r in rows], dtype=float)),
            pa.array(np.array([r[3] for r in rows], dtype=float)),
            pa.array(np.array([FLAG_SNAPSHOT if r[4] else 0 for r in rows], dtype=np.uint8)),
        ],
        schema=BOOK_DELTA_SCHEMA,
    )


def top(table: pa.Table, column: str) -> list[list[float]]:
    return table.column(column).to_pylist()


def test_one_row_per_message_from_the_first_snapshot_with_nan_padding():
    table = materialize(deltas([
        (0, 1, 99.0, 1.0, False),  # before any snapshot: skipped
        (1, 1, 100.0, 2.0, True), (1, -1, 101.0, 3.0, True), (1, -1, 58.0e3, 1.0, True),
        (2, 1, 100.5, 1.0, False), (2, -1, 101.0, 0.0, False),
    ]), 3)
    assert table.schema == book_snapshot_schema(3)
    assert table.column("seq").to_pylist() == [1, 2]
    assert table.column("exchange_ts").to_pylist() == [10, 20]
    assert top(table, "bid_price")[1][:2] == [100.5, 100.0]
    assert np.isnan(top(table, "bid_price")[1][2])
    assert top(table, "ask_price")[1][0] == 58.0e3  # far levels are real levels
    assert top(table, "ask_size")[0][:2] == [3.0, 1.0]


def test_snapshot_rows_clear_the_book():
    table = materialize(deltas([
        (1, 1, 100.0, 2.0, True), (1, -1, 101.0, 3.0, True),
        (2, 1, 99.0, 2.0, True), (2, -1, 102.0, 3.0, True),
    ]), 2)
    assert top(table, "bid_price")[1][0] == 99.0
    assert np.isnan(top(table, "bid_price")[1][1])
    assert top(table, "ask_price")[1][0] == 102.0


def test_no_snapshot_gives_an_empty_table():
    assert materialize(deltas([(1, 1, 100.0, 1.0, False)]), 5).num_rows == 0


def test_crossed_book_names_the_message_row_and_repair_drops_it():
    rows = [(1, 1, 100.0, 1.0, True), (1, -1, 101.0, 1.0, True),
            (2, 1, 100.5, 1.0, False), (3, 1, 101.5, 1.0, False), (4, -1, 102.0, 1.0, False)]
    with pytest.raises(CrossedBook, match=r"^book:4: crossed book after message seq=3"):
        materialize(deltas(rows), 2, source="book")
    repairs = Repairs()
    table = materialize(deltas(rows), 2, repairs=repairs)
    assert table.column("seq").to_pylist() == [1, 2]
    assert repairs.counts["crossed"] == 1


def test_invalid_rows_raise_data_error_with_row():
    with pytest.raises(DataError, match=r"<deltas>:2: invalid delta"):
        materialize(deltas([(1, 1, 100.0, 1.0, True), (1, 1, -5.0, 1.0, True)]), 2)


def reference_top(messages: list[list[tuple]], depth: int) -> list[tuple]:
    """Naive dict book: top-N after every message."""
    bids: dict[float, float] = {}
    asks: dict[float, float] = {}
    out = []
    for message in messages:
        for i, (side, price, size, snap) in enumerate(message):
            if snap and not any(m[3] for m in message[:i]):
                bids.clear()
                asks.clear()
            book = bids if side > 0 else asks
            if size > 0:
                book[price] = size
            else:
                book.pop(price, None)
        b = sorted(bids.items(), reverse=True)[:depth]
        a = sorted(asks.items())[:depth]
        out.append((b, a))
    return out


level = st.tuples(
    st.sampled_from([1, -1]), st.integers(0, 40), st.sampled_from([0.0, 0.0, 1.0, 2.5, 7.0]),
)


@settings(max_examples=60, deadline=None)
@given(
    first=st.lists(level, min_size=1, max_size=30),
    messages=st.lists(st.tuples(st.booleans(), st.lists(level, min_size=1, max_size=8)),
                      min_size=1, max_size=25),
    depth=st.integers(1, 6),
)
def test_materialize_matches_a_naive_dict_book(first, messages, depth):
    # bids on ticks 0..40 below 100, asks above 100.5: random books never cross
    def row(side, tick, size, snap):
        price = 100.0 - tick * 0.5 if side > 0 else 100.5 + tick * 0.5
        return (side, price, size, snap)

    plan = [[row(*lv, True) for lv in first]]
    plan += [[row(*lv, snap) for lv in levels] for snap, levels in messages]
    table = materialize(deltas([(m, *r) for m, msg in enumerate(plan) for r in msg]), depth)
    expected = reference_top(plan, depth)
    assert table.num_rows == len(plan)
    for got_bid, got_bsz, got_ask, got_asz, (bids, asks) in zip(
        top(table, "bid_price"), top(table, "bid_size"), top(table, "ask_price"),
        top(table, "ask_size"), expected, strict=True,
    ):
        pad = [(np.nan, np.nan)] * depth
        want_b, want_a = (bids + pad)[:depth], (asks + pad)[:depth]
        np.testing.assert_array_equal(got_bid, [p for p, _ in want_b])
        np.testing.assert_array_equal(got_bsz, [q for _, q in want_b])
        np.testing.assert_array_equal(got_ask, [p for p, _ in want_a])
        np.testing.assert_array_equal(got_asz, [q for _, q in want_a])
