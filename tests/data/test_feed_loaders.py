"""The tutorial's Feed.load_lob_archives / load_trade_archives on a makerlab archive."""

from __future__ import annotations

from datetime import datetime

import numpy as np
import pyarrow as pa
import pytest

from makerlab.data.archive import write_table
from makerlab.data.schema import BOOK_DELTA_SCHEMA, TRADES_SCHEMA, book_snapshot_schema
from makerlab.errors import DataError
from makerlab.trading.feed import Feed, FeedCls, FeedType, archive_exchange

MIDNIGHT = 1_723_161_600_000_000_000  # 2024-08-09 00:00:00 UTC in ns
MS = 1_000_000
HOUR = 3_600_000 * MS


def write_books(root, exchange: str = "binance", depth: int = 5) -> np.ndarray:
    """Book states at 22:59:59.5, 23:30, 00:00:00.25 and 01:00:00.1; returns exchange_ts."""
    ets = np.array([MIDNIGHT - HOUR - 500 * MS, MIDNIGHT - HOUR // 2, MIDNIGHT + 250 * MS,
                    MIDNIGHT + HOUR + 100 * MS], np.int64)
    n = ets.size
    bids = 61_699.9 - np.arange(depth) * 0.1 + np.zeros((n, 1))
    asks = 61_700.0 + np.arange(depth) * 0.1 + np.zeros((n, 1))
    bids[1, 2:] = np.nan  # a thin book: two bid levels
    asks[2, 1:] = np.nan  # one ask level
    sizes = np.round(np.linspace(0.2, 3.0, n * depth).reshape(n, depth), 3)

    def col(values: np.ndarray) -> pa.Array:
        return pa.FixedSizeListArray.from_arrays(pa.array(values.ravel()), depth)

    table = pa.table([ets, ets + 3 * MS, np.arange(n, dtype=np.int64) + 77, col(bids),
                      col(sizes), col(asks), col(sizes[:, ::-1])],
                     schema=book_snapshot_schema(depth))
    write_table(root, "book_snapshot", exchange, "BTCUSDT", table)
    return ets


def write_trades(root, exchange: str = "binance") -> pa.Table:
    ets = np.array([MIDNIGHT - 20 * MS, MIDNIGHT - 7 * MS, MIDNIGHT + 1 * MS], np.int64)
    table = pa.table([ets, ets + 2 * MS, [61_700.0, 61_699.9, 61_700.1], [0.004, 0.25, 1.5],
                      pa.array([1, -1, 1], pa.int8()), ["11", "12", "13"]], schema=TRADES_SCHEMA)
    write_table(root, "trades", exchange, "BTCUSDT", table)
    return table


def test_lob_records_have_the_tutorial_shape(tmp_path):
    ets = write_books(tmp_path)
    books = Feed.load_lob_archives("binance", "BTCUSDT", 5, path=tmp_path,
                                   start="2024-08-08:22", end="2024-08-09:01")
    assert [b["ts"] for b in books] == (ets // MS).tolist()
    assert all(isinstance(b["ts"], int) for b in books)
    first = books[0]
    assert first["b"].shape == (5, 2) and first["a"].shape == (5, 2)
    assert first["b"][0].tolist() == [61_699.9, pytest.approx(0.2)]
    assert (np.diff(first["b"][:, 0]) < 0).all() and (np.diff(first["a"][:, 0]) > 0).all()
    assert books[1]["b"].shape == (2, 2) and books[2]["a"].shape == (1, 2)
    assert not any(np.isnan(b["b"]).any() or np.isnan(b["a"]).any() for b in books)


def test_lob_hours_are_inclusive(tmp_path):
    write_books(tmp_path)
    both = Feed.load_lob_archives("binance", "BTCUSDT", 5, path=tmp_path,
                                  start="2024-08-08:23", end="2024-08-09:00")
    assert [b["ts"] for b in both] == [(MIDNIGHT - HOUR // 2) // MS, MIDNIGHT // MS + 250]
    # a datetime counts as its whole hour, as in the tutorial
    same = Feed.load_lob_archives("binance", "BTCUSDT", 5, path=tmp_path,
                                  start=datetime(2024, 8, 8, 23, 45), end=datetime(2024, 8, 9))
    assert [b["ts"] for b in same] == [b["ts"] for b in both]


def test_lob_only_paths(tmp_path):
    write_books(tmp_path)
    paths = Feed.load_lob_archives("binance", "BTCUSDT", 5, path=tmp_path, only_paths=True,
                                   start="2024-08-08:23", end="2024-08-09:00")
    assert [p.split("depth=5/")[1] for p in paths] == [
        "exchange=binance/symbol=BTCUSDT/date=2024-08-08/23.parquet",
        "exchange=binance/symbol=BTCUSDT/date=2024-08-09/00.parquet",
    ]


def test_deeper_snapshots_are_cut_to_depth(tmp_path):
    write_books(tmp_path, depth=10)
    books = Feed.load_lob_archives("binance", "BTCUSDT", 3, path=tmp_path,
                                   start="2024-08-08:22", end="2024-08-09:01")
    assert books[0]["b"].shape == (3, 2) and books[1]["b"].shape == (2, 2)


def test_delta_only_archive_says_to_materialise(tmp_path):
    row = [[MIDNIGHT], [MIDNIGHT + MS], [9], [8], [7], pa.array([1], pa.int8()), [61_700.0],
           [1.0], pa.array([0], pa.uint8())]
    write_table(tmp_path, "book_delta", "binance", "BTCUSDT",
                pa.table(row, schema=BOOK_DELTA_SCHEMA))
    with pytest.raises(DataError, match="materialise snapshots"):
        Feed.load_lob_archives("binance", "BTCUSDT", 20, path=tmp_path)


def test_trades_are_an_n_by_4_array(tmp_path):
    table = write_trades(tmp_path)
    trades = Feed.load_trade_archives("binance", "BTCUSDT", path=tmp_path,
                                      start="2024-08-08:23", end="2024-08-09:00")
    assert trades.shape == (3, 4) and trades.dtype == np.float64
    expected_ts = table.column("exchange_ts").to_numpy() // MS
    assert trades[:, 0].tolist() == expected_ts.tolist()
    assert trades[1].tolist() == [expected_ts[1], 61_699.9, 0.25, -1.0]
    first_hour = Feed.load_trade_archives("binance", "BTCUSDT", path=tmp_path,
                                          start="2024-08-08:23", end="2024-08-08:23")
    assert len(first_hour) == 2
    paths = Feed.load_trade_archives("binance", "BTCUSDT", path=tmp_path, only_paths=True,
                                     start="2024-08-09:00", end="2024-08-09:00")
    assert len(paths) == 1 and paths[0].endswith("date=2024-08-09/00.parquet")


def test_default_range_is_the_last_14_days(tmp_path):
    write_trades(tmp_path)  # 2024: long before the default window
    assert Feed.load_trade_archives("binance", "BTCUSDT", path=tmp_path).shape == (0, 4)


def test_spot_feed_class_reads_the_spot_exchange(tmp_path):
    write_trades(tmp_path, exchange="binance_spot")
    spot = Feed.load_trade_archives("binance", "BTCUSDT", feed_cls=FeedCls.SPOT, path=tmp_path,
                                    start="2024-08-08:23", end="2024-08-09:00")
    perp = Feed.load_trade_archives("binance", "BTCUSDT", path=tmp_path,
                                    start="2024-08-08:23", end="2024-08-09:00")
    assert len(spot) == 3 and len(perp) == 0


def test_exchange_naming():
    assert archive_exchange("binance") == "binance"
    assert archive_exchange("binance", FeedCls.SPOT) == "binance_spot"
    assert archive_exchange("binance_coinm", FeedCls.FUTURES) == "binance_coinm"
    assert archive_exchange("bybit", "spot") == "bybit_spot"
    assert archive_exchange("hyperliquid", FeedCls.PERPETUAL) == "hyperliquid"
    assert FeedCls.PERPETUAL == "perp" and FeedType.L2BOOK == "l2book"
    assert FeedType.TRADES.value == "trades"
