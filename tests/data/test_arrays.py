"""Array loaders: message grouping of deltas, shapes, ordering and memory per update."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from makerlab.data.archive import write_table
from makerlab.data.arrays import (
    _chunked_heads,
    load_bbo_arrays,
    load_delta_arrays,
    load_snapshot_arrays,
    load_trade_arrays,
    message_offsets,
)
from makerlab.data.schema import (
    BBO_SCHEMA,
    BOOK_DELTA_SCHEMA,
    FLAG_SNAPSHOT,
    TRADES_SCHEMA,
    book_snapshot_schema,
)

MIDNIGHT = 1_723_161_600_000_000_000  # 2024-08-09 00:00:00 UTC in ns
MS = 1_000_000


def delta_table(levels: list[int], *, first: int = MIDNIGHT - 30 * MS) -> pa.Table:
    """Messages 10 ms apart, ``levels[i]`` rows each; the first is a snapshot."""
    rng = np.random.default_rng(7)
    n_msg = len(levels)
    counts = np.asarray(levels)
    ets = np.repeat(first + np.arange(n_msg, dtype=np.int64) * 10 * MS, counts)
    lts = ets + 4 * MS
    seq = np.repeat(5_000_000 + np.arange(n_msg, dtype=np.int64) * 3, counts)
    n = int(counts.sum())
    side = np.where(rng.random(n) < 0.5, 1, -1).astype(np.int8)
    price = np.round(61_700.0 - side * rng.integers(1, 200, n) * 0.1, 1)
    size = np.round(rng.exponential(1.5, n), 3)
    flags = np.zeros(n, np.uint8)
    flags[: counts[0]] = FLAG_SNAPSHOT
    return pa.table([ets, lts, seq, seq - 2, seq - 3, side, price, size, flags],
                    schema=BOOK_DELTA_SCHEMA)


def test_deltas_are_grouped_by_message(tmp_path):
    levels = [6, 2, 1, 3, 4, 2]  # messages at -30, -20, -10, 0, +10, +20 ms around midnight
    table = delta_table(levels)
    write_table(tmp_path, "book_delta", "binance", "BTCUSDT", table)
    deltas = load_delta_arrays(tmp_path, "binance", "BTCUSDT")
    assert len(deltas) == 6 and deltas.n_updates == sum(levels)
    assert deltas.offsets.tolist() == [0, 6, 8, 9, 12, 16, 18]
    assert deltas.seq.tolist() == [5_000_000 + 3 * i for i in range(6)]
    np.testing.assert_array_equal(deltas.price, table.column("price").to_numpy())
    np.testing.assert_array_equal(deltas.side, table.column("side").to_numpy())
    assert deltas.side.dtype == np.int8 and deltas.flags.dtype == np.uint8
    assert deltas.flags[:6].tolist() == [FLAG_SNAPSHOT] * 6 and not deltas.flags[6:].any()
    assert (deltas.local_ts - deltas.exchange_ts == 4 * MS).all()


def test_delta_range_selects_whole_messages(tmp_path):
    write_table(tmp_path, "book_delta", "binance", "BTCUSDT", delta_table([6, 2, 1, 3, 4, 2]))
    after = load_delta_arrays(tmp_path, "binance", "BTCUSDT", start="2024-08-09:00")
    assert after.offsets.tolist() == [0, 3, 7, 9]
    exact = load_delta_arrays(tmp_path, "binance", "BTCUSDT", MIDNIGHT - 20 * MS, MIDNIGHT)
    assert exact.offsets.tolist() == [0, 2, 3]


def test_message_boundaries_use_all_three_keys():
    ets = np.array([1, 1, 1, 1, 2, 2], np.int64)
    lts = np.array([5, 5, 6, 6, 7, 7], np.int64)
    seq = np.array([9, 9, 9, 10, 11, 11], np.int64)
    assert message_offsets(ets, lts, seq).tolist() == [0, 2, 3, 4, 6]
    empty = np.empty(0, np.int64)
    assert message_offsets(empty, empty, empty).tolist() == [0]


def test_a_message_may_continue_across_chunks():
    ets = [np.array([1, 1], np.int64), np.array([1, 2, 2], np.int64), np.array([2], np.int64)]
    lts = [e + 10 for e in ets]
    seq = [e * 100 for e in ets]
    offsets, (heads_e, heads_l, heads_s) = _chunked_heads(ets, lts, seq)
    assert offsets.tolist() == [0, 3, 6]
    assert heads_e.tolist() == [1, 2] and heads_l.tolist() == [11, 12]
    assert heads_s.tolist() == [100, 200]


def test_deltas_out_of_order_across_hours_are_sorted(tmp_path):
    # The 23:59:59.990 message is received after the 00:00:00.001 one.
    table = delta_table([2, 3], first=MIDNIGHT - 10 * MS)
    lts = table.column("local_ts").to_numpy().copy()
    lts[:2] = MIDNIGHT + 20 * MS
    table = table.set_column(1, "local_ts", pa.array(lts))
    write_table(tmp_path, "book_delta", "binance", "BTCUSDT", table)
    deltas = load_delta_arrays(tmp_path, "binance", "BTCUSDT")
    assert deltas.offsets.tolist() == [0, 3, 5]
    assert deltas.seq.tolist() == [5_000_003, 5_000_000]
    np.testing.assert_array_equal(deltas.price[3:], table.column("price").to_numpy()[:2])


def test_delta_arrays_stay_under_32_bytes_per_update(tmp_path):
    levels = np.random.default_rng(3).integers(1, 30, 400).tolist()
    write_table(tmp_path, "book_delta", "binance", "BTCUSDT", delta_table(levels))
    deltas = load_delta_arrays(tmp_path, "binance", "BTCUSDT")
    per_message = 3 * 8 + 8
    expected = (18 * deltas.n_updates + per_message * len(deltas) + 8) / deltas.n_updates
    assert deltas.bytes_per_update == pytest.approx(expected)
    assert deltas.bytes_per_update <= 32


def test_arrays_are_read_only(tmp_path):
    write_table(tmp_path, "book_delta", "binance", "BTCUSDT", delta_table([2, 3]))
    deltas = load_delta_arrays(tmp_path, "binance", "BTCUSDT")
    with pytest.raises(ValueError, match="read-only"):
        deltas.price[0] = 1.0


def test_snapshot_arrays_shape_and_zero_copy(tmp_path):
    depth, n = 4, 5
    ets = MIDNIGHT + np.arange(n, dtype=np.int64) * 250 * MS
    bids = 61_699.9 - np.arange(n * depth).reshape(n, depth) % depth * 0.1
    asks = 61_700.0 + np.arange(n * depth).reshape(n, depth) % depth * 0.1
    asks[0, 3] = np.nan
    sizes = np.full((n, depth), 0.75)

    def col(values: np.ndarray) -> pa.Array:
        return pa.FixedSizeListArray.from_arrays(pa.array(values.ravel()), depth)

    table = pa.table([ets, ets + MS, np.arange(n, dtype=np.int64), col(bids), col(sizes),
                      col(asks), col(sizes)], schema=book_snapshot_schema(depth))
    write_table(tmp_path, "book_snapshot", "binance", "BTCUSDT", table)
    books = load_snapshot_arrays(tmp_path, "binance", "BTCUSDT", depth)
    assert len(books) == n and books.depth == depth and books.bid_price.shape == (n, depth)
    np.testing.assert_array_equal(books.ask_price, asks)
    assert not books.bid_price.flags.owndata  # a reshaped view of the Arrow buffer
    assert books.nbytes == n * (2 * 8 + 4 * depth * 8)


def test_empty_ranges_have_the_right_shapes(tmp_path):
    books = load_snapshot_arrays(tmp_path, "binance", "BTCUSDT", 20)
    assert len(books) == 0 and books.ask_size.shape == (0, 20)
    deltas = load_delta_arrays(tmp_path, "binance", "BTCUSDT")
    assert len(deltas) == 0 and deltas.offsets.tolist() == [0] and deltas.price.dtype == float


def test_trade_arrays_sorted_by_local_ts_across_files(tmp_path):
    ets = np.array([MIDNIGHT - 1 * MS, MIDNIGHT + 1 * MS, MIDNIGHT + 2 * MS], np.int64)
    lts = np.array([MIDNIGHT + 9 * MS, MIDNIGHT + 5 * MS, MIDNIGHT + 10 * MS], np.int64)
    table = pa.table([ets, lts, [61_700.0, 61_700.1, 61_700.2], [0.01, 0.2, 0.003],
                      pa.array([1, -1, 1], pa.int8()), ["1", "2", "3"]], schema=TRADES_SCHEMA)
    write_table(tmp_path, "trades", "binance", "BTCUSDT", table)
    trades = load_trade_arrays(tmp_path, "binance", "BTCUSDT")
    assert trades.local_ts.tolist() == sorted(lts.tolist())
    assert trades.price.tolist() == [61_700.1, 61_700.0, 61_700.2]
    assert trades.side.tolist() == [-1, 1, 1] and trades.side.dtype == np.int8


def test_bbo_arrays(tmp_path):
    ets = MIDNIGHT + np.arange(3, dtype=np.int64) * MS
    table = pa.table([ets, ets + MS, np.arange(3, dtype=np.int64), [61_699.9] * 3,
                      [1.5, 1.2, 0.9], [61_700.0] * 3, [0.3] * 3], schema=BBO_SCHEMA)
    write_table(tmp_path, "bbo", "binance", "BTCUSDT", table)
    bbo = load_bbo_arrays(tmp_path, "binance", "BTCUSDT")
    assert len(bbo) == 3 and bbo.bid_size.tolist() == [1.5, 1.2, 0.9]
    assert bbo.nbytes == 3 * 6 * 8


def test_snapshots_rebuilt_from_deltas_equal_the_archived_snapshots():
    from pathlib import Path

    from makerlab.data.arrays import load_snapshot_arrays_from_deltas

    archive = Path(__file__).resolve().parents[2] / "data" / "archive"
    if not (archive / "kind=book_delta").is_dir():
        pytest.skip("bundled archive absent")
    hour = "2024-08-08:23"
    rebuilt = load_snapshot_arrays_from_deltas(archive, "binance", "BTCUSDT", 20, hour, hour)
    stored = load_snapshot_arrays(archive, "binance", "BTCUSDT", 20, hour, hour)
    assert len(rebuilt) == len(stored) > 6000
    for name in ("exchange_ts", "local_ts", "bid_price", "bid_size", "ask_price", "ask_size"):
        np.testing.assert_array_equal(getattr(rebuilt, name), getattr(stored, name))


def test_deltas_without_a_snapshot_cannot_be_rebuilt(tmp_path):
    from makerlab.data.arrays import load_snapshot_arrays_from_deltas
    from makerlab.errors import DataError

    table = delta_table([1, 2, 3])
    flags = pa.array(np.zeros(table.num_rows, np.uint8))
    table = table.set_column(table.schema.get_field_index("flags"), "flags", flags)
    write_table(tmp_path, "book_delta", "binance", "BTCUSDT", table)
    with pytest.raises(DataError, match="no book snapshot"):
        load_snapshot_arrays_from_deltas(tmp_path, "binance", "BTCUSDT", 5)
