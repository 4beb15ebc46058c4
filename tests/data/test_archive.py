"""The Parquet archive: layout, hour files, ranges, merging, metadata and bad input."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import duckdb
import fsspec
import numpy as np
import pandas as pd
import polars as pl
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest

from makerlab.data.archive import (
    ArchiveWriter,
    archive_paths,
    list_archive,
    read_table,
    write_table,
)
from makerlab.data.schema import (
    BBO_SCHEMA,
    BOOK_DELTA_SCHEMA,
    TRADES_SCHEMA,
    book_snapshot_schema,
)
from makerlab.data.validate import validate_archive
from makerlab.errors import ConfigError, DataError

MIDNIGHT = 1_723_161_600_000_000_000  # 2024-08-09 00:00:00 UTC in ns
SEC = 1_000_000_000


def trades_table(n: int = 40, first: int = MIDNIGHT - 2 * SEC) -> pa.Table:
    """BTCUSDT prints every 100 ms around midnight, received 3 ms later."""
    ets = first + np.arange(n, dtype=np.int64) * 100_000_000 + 17
    price = 61_700.0 + np.round(np.sin(np.arange(n)) * 5, 1)
    size = np.round(0.001 + (np.arange(n) % 7) * 0.013, 3)
    side = np.where(np.arange(n) % 3 == 0, -1, 1).astype(np.int8)
    ids = [str(4_712_000_000 + i) for i in range(n)]
    return pa.table([ets, ets + 3_000_000, price, size, side, ids], schema=TRADES_SCHEMA)


def delta_table() -> pa.Table:
    """Three Binance-like depth messages straddling midnight, 2-3 levels each."""
    rows = [  # exchange_ts, local_ts, seq, first, prev, side, price, size, flags
        (MIDNIGHT - 50_000_000, MIDNIGHT - 46_000_000, 501, 498, 497, 1, 61_699.9, 1.25, 0),
        (MIDNIGHT - 50_000_000, MIDNIGHT - 46_000_000, 501, 498, 497, -1, 61_700.0, 0.0, 0),
        (MIDNIGHT + 10_000_000, MIDNIGHT + 14_000_000, 507, 502, 501, 1, 61_699.8, 3.1, 0),
        (MIDNIGHT + 10_000_000, MIDNIGHT + 14_000_000, 507, 502, 501, -1, 61_700.1, 0.5, 0),
        (MIDNIGHT + 10_000_000, MIDNIGHT + 14_000_000, 507, 502, 501, -1, 61_700.3, 2.0, 0),
    ]
    columns = list(zip(*rows, strict=True))
    return pa.table([pa.array(c, f.type) for c, f in zip(columns, BOOK_DELTA_SCHEMA,
                                                         strict=True)], schema=BOOK_DELTA_SCHEMA)


def snapshot_table(depth: int = 5, n: int = 6) -> pa.Table:
    """Depth-``depth`` books every second around midnight; the last ask level missing."""
    ets = MIDNIGHT - 3 * SEC + np.arange(n, dtype=np.int64) * SEC
    tick = np.arange(depth) * 0.1
    bids = np.tile(61_699.9 - tick, (n, 1))
    asks = np.tile(61_700.0 + tick, (n, 1))
    asks[:, -1] = np.nan
    sizes = np.tile(np.linspace(0.5, 2.5, depth), (n, 1))
    level = pa.list_(pa.float64(), depth)

    def col(values: np.ndarray) -> pa.Array:
        return pa.FixedSizeListArray.from_arrays(pa.array(values.ravel()), depth).cast(level)

    return pa.table([ets, ets + 2_000_000, np.arange(n, dtype=np.int64) + 900,
                     col(bids), col(sizes), col(asks), col(sizes)],
                    schema=book_snapshot_schema(depth))


def bbo_table() -> pa.Table:
    ets = MIDNIGHT + np.arange(4, dtype=np.int64) * 7_000_000
    return pa.table([ets, ets + 1_000_000, np.arange(4, dtype=np.int64) + 10,
                     [61_699.9] * 4, [1.0, 1.1, 1.2, 1.3], [61_700.0] * 4, [0.4] * 4],
                    schema=BBO_SCHEMA)


def assert_same(got: pa.Table, want: pa.Table) -> None:
    """Equal schemas (without metadata) and values, NaN equal to NaN."""
    assert got.schema.remove_metadata().equals(want.schema.remove_metadata())
    for name in want.column_names:
        np.testing.assert_array_equal(np.array(got.column(name).to_pylist()),
                                      np.array(want.column(name).to_pylist()), err_msg=name)


# --------------------------------------------------------------------------- layout


def test_write_splits_by_utc_hour_of_exchange_ts(tmp_path):
    paths = write_table(tmp_path, "trades", "binance", "BTCUSDT", trades_table())
    rel = [p.removeprefix(f"{tmp_path}/") for p in paths]
    assert rel == [
        "kind=trades/exchange=binance/symbol=BTCUSDT/date=2024-08-08/23.parquet",
        "kind=trades/exchange=binance/symbol=BTCUSDT/date=2024-08-09/00.parquet",
    ]
    first = pq.read_table(paths[0]).column("exchange_ts").to_numpy()
    assert first.max() < MIDNIGHT and pq.read_table(paths[0]).num_rows == 20


def test_snapshot_dataset_has_a_depth_level(tmp_path):
    paths = write_table(tmp_path, "book_snapshot", "binance", "BTCUSDT", snapshot_table(5))
    assert "kind=book_snapshot/depth=5/exchange=binance/symbol=BTCUSDT/date=2024-08-09/00"\
        ".parquet" in paths[-1]


def test_round_trip_keeps_rows_and_types(tmp_path):
    table = trades_table()
    write_table(tmp_path, "trades", "binance", "BTCUSDT", table)
    back = read_table(tmp_path, "trades", "binance", "BTCUSDT")
    assert back.schema.equals(TRADES_SCHEMA)
    assert back.equals(table)


def test_round_trip_every_kind(tmp_path):
    tables = {"book_delta": delta_table(), "bbo": bbo_table(), "book_snapshot": snapshot_table()}
    for kind, table in tables.items():
        write_table(tmp_path, kind, "binance", "ETHUSDT", table)
        back = read_table(tmp_path, kind, "binance", "ETHUSDT")
        assert_same(back, table)


def test_write_sorts_rows_by_local_ts(tmp_path):
    table = trades_table(10, first=MIDNIGHT)
    shuffled = table.take(np.array([3, 1, 0, 2, 9, 8, 4, 5, 7, 6]))
    write_table(tmp_path, "trades", "binance", "BTCUSDT", shuffled)
    assert read_table(tmp_path, "trades", "binance", "BTCUSDT").equals(table)


def test_read_sorts_by_local_ts_across_hour_files(tmp_path):
    # The last 23:xx message arrives after the first 00:xx one.
    table = pa.table([[MIDNIGHT - 1, MIDNIGHT + 1], [MIDNIGHT + 9, MIDNIGHT + 5],
                      [61_700.0, 61_700.1], [0.01, 0.02], pa.array([1, -1], pa.int8()),
                      ["7", "8"]], schema=TRADES_SCHEMA)
    write_table(tmp_path, "trades", "binance", "BTCUSDT", table)
    back = read_table(tmp_path, "trades", "binance", "BTCUSDT")
    assert back.column("trade_id").to_pylist() == ["8", "7"]


# --------------------------------------------------------------------------- ranges


def test_inclusive_hour_strings_give_both_hours(tmp_path):
    write_table(tmp_path, "trades", "binance", "BTCUSDT", trades_table())
    both = read_table(tmp_path, "trades", "binance", "BTCUSDT", "2024-08-08:23", "2024-08-09:00")
    first = read_table(tmp_path, "trades", "binance", "BTCUSDT", "2024-08-08:23", "2024-08-08:23")
    second = read_table(tmp_path, "trades", "binance", "BTCUSDT", start="2024-08-09:00")
    assert (both.num_rows, first.num_rows, second.num_rows) == (40, 20, 20)
    paths = archive_paths(tmp_path, "trades", "binance", "BTCUSDT", "2024-08-08:23",
                          "2024-08-09:00")
    assert [p.rsplit("/", 2)[1:] for p in paths] == [["date=2024-08-08", "23.parquet"],
                                                     ["date=2024-08-09", "00.parquet"]]


def test_day_strings_and_empty_ranges(tmp_path):
    write_table(tmp_path, "trades", "binance", "BTCUSDT", trades_table())
    assert read_table(tmp_path, "trades", "binance", "BTCUSDT", "2024-08-09",
                      "2024-08-09").num_rows == 20
    empty = read_table(tmp_path, "trades", "binance", "BTCUSDT", "2024-08-10:00")
    assert empty.num_rows == 0 and empty.schema.equals(TRADES_SCHEMA)
    assert archive_paths(tmp_path, "trades", "binance", "ETHUSDT") == []


def test_instant_bounds_filter_rows_half_open(tmp_path):
    table = trades_table()
    write_table(tmp_path, "trades", "binance", "BTCUSDT", table)
    ets = table.column("exchange_ts").to_numpy()
    got = read_table(tmp_path, "trades", "binance", "BTCUSDT", int(ets[5]), int(ets[30]))
    assert got.column("exchange_ts").to_numpy().tolist() == ets[5:30].tolist()
    naive = datetime(2024, 8, 9, 0, 0, 1)  # naive means UTC
    aware = datetime(2024, 8, 9, 0, 0, 1, tzinfo=UTC)
    for bound in (naive, aware, np.datetime64("2024-08-09T00:00:01")):
        got = read_table(tmp_path, "trades", "binance", "BTCUSDT", start=bound)
        assert got.num_rows == 10


def test_bad_bounds_raise_config_error(tmp_path):
    with pytest.raises(ConfigError, match="cannot parse time"):
        read_table(tmp_path, "trades", "binance", "BTCUSDT", "08/09/2024")
    with pytest.raises(ConfigError, match="empty time range"):
        read_table(tmp_path, "trades", "binance", "BTCUSDT", "2024-08-09:01", "2024-08-09:00")


def test_columns_selects_and_keeps_local_ts_order(tmp_path):
    write_table(tmp_path, "trades", "binance", "BTCUSDT", trades_table())
    got = read_table(tmp_path, "trades", "binance", "BTCUSDT", columns=["price", "side"])
    assert got.column_names == ["price", "side"] and got.num_rows == 40
    with pytest.raises(ConfigError, match="'bogus'"):
        read_table(tmp_path, "trades", "binance", "BTCUSDT", columns=["bogus"])


# --------------------------------------------------------------------------- merging


def test_rewriting_the_same_table_changes_nothing(tmp_path):
    table = delta_table()
    write_table(tmp_path, "book_delta", "binance", "BTCUSDT", table)
    files = sorted(p.name for p in tmp_path.rglob("*") if p.is_file())
    write_table(tmp_path, "book_delta", "binance", "BTCUSDT", table)
    assert sorted(p.name for p in tmp_path.rglob("*") if p.is_file()) == files
    assert read_table(tmp_path, "book_delta", "binance", "BTCUSDT").equals(table)


def test_capture_split_over_two_writes_merges_into_the_hour(tmp_path):
    table = trades_table()
    write_table(tmp_path, "trades", "binance", "BTCUSDT", table.slice(13, 27))
    write_table(tmp_path, "trades", "binance", "BTCUSDT", table.slice(0, 15))  # overlaps
    assert read_table(tmp_path, "trades", "binance", "BTCUSDT").equals(table)


# --------------------------------------------------------------------------- metadata


def test_files_carry_makerlab_metadata(tmp_path):
    table = snapshot_table(5).replace_schema_metadata({"makerlab.clock": "exchange_only"})
    path = write_table(tmp_path, "book_snapshot", "binance", "BTCUSDT", table)[0]
    meta = pq.read_schema(path).metadata
    assert meta[b"makerlab.schema_version"] == b"1"
    assert meta[b"makerlab.kind"] == b"book_snapshot"
    assert meta[b"makerlab.exchange"] == b"binance"
    assert meta[b"makerlab.symbol"] == b"BTCUSDT"
    assert meta[b"makerlab.depth"] == b"5"
    assert meta[b"makerlab.clock"] == b"exchange_only"
    assert pq.ParquetFile(path).metadata.row_group(0).column(0).compression == "ZSTD"


def test_list_archive_summarises_each_date(tmp_path):
    write_table(tmp_path, "trades", "binance", "BTCUSDT", trades_table())
    write_table(tmp_path, "book_snapshot", "binance", "BTCUSDT", snapshot_table(5))
    info = list_archive(tmp_path)
    assert list(info.columns) == ["kind", "exchange", "symbol", "depth", "date", "hours",
                                  "rows", "bytes"]
    snap = info[info.kind == "book_snapshot"]
    assert snap.depth.tolist() == [5, 5] and snap.rows.sum() == 6
    trades = info[info.kind == "trades"]
    assert trades.date.tolist() == ["2024-08-08", "2024-08-09"]
    assert trades.hours.tolist() == [[23], [0]] and (trades.bytes > 0).all()


# --------------------------------------------------------------------------- other readers


def test_other_readers_see_hive_columns(tmp_path):
    write_table(tmp_path, "trades", "binance", "BTCUSDT", trades_table())
    write_table(tmp_path, "trades", "binance_spot", "BTCUSDT", trades_table(5))
    root = tmp_path / "kind=trades"
    frame = pl.scan_parquet(f"{root}/**/*.parquet", hive_partitioning=True).collect()
    assert frame.height == 45 and {"exchange", "symbol", "date"} <= set(frame.columns)
    pandas = pd.read_parquet(root)
    assert len(pandas) == 45 and set(pandas.exchange.astype(str)) == {"binance", "binance_spot"}
    dataset = ds.dataset(root, format="parquet", partitioning="hive")
    assert dataset.to_table(filter=ds.field("exchange") == "binance").num_rows == 40
    sql = (f"select count(*), max(price) from read_parquet('{root}/**/*.parquet', "
           "hive_partitioning=true) where exchange = 'binance' and symbol = 'BTCUSDT'")
    count, top = duckdb.sql(sql).fetchall()[0]
    assert count == 40 and top == trades_table().column("price").to_numpy().max()


def test_snapshot_depth_dataset_reads_with_hive_partitioning(tmp_path):
    write_table(tmp_path, "book_snapshot", "binance", "BTCUSDT", snapshot_table(5))
    root = tmp_path / "kind=book_snapshot" / "depth=5"
    table = ds.dataset(root, format="parquet", partitioning="hive").to_table()
    assert table.num_rows == 6 and "symbol" in table.column_names
    sql = f"select count(*) from read_parquet('{root}/**/*.parquet', hive_partitioning=true)"
    assert duckdb.sql(sql).fetchall()[0][0] == 6


def test_other_readers_ignore_the_manifest(tmp_path):
    write_table(tmp_path, "trades", "binance", "BTCUSDT", trades_table())
    write_table(tmp_path, "bbo", "binance", "BTCUSDT", bbo_table())
    assert (tmp_path / "_makerlab").is_dir()
    files = ds.dataset(tmp_path, format="parquet", partitioning="hive").files
    assert len(files) == 3 and not [f for f in files if "_makerlab" in f]
    sql = f"select count(*) from read_parquet('{tmp_path}/**/*.parquet', union_by_name=true)"
    assert duckdb.sql(sql).fetchall()[0][0] == 44
    assert pl.scan_parquet(tmp_path / "kind=trades", hive_partitioning=True).collect().height \
        == 40
    assert len(pd.read_parquet(tmp_path / "kind=bbo")) == 4


# --------------------------------------------------------------------------- writers


def test_a_writer_commits_all_its_tables_at_once(tmp_path):
    with ArchiveWriter(tmp_path) as writer:
        writer.write("trades", "binance", "BTCUSDT", trades_table())
        writer.write("bbo", "binance", "BTCUSDT", bbo_table())
        assert archive_paths(tmp_path, "trades", "binance", "BTCUSDT") == []  # not yet
    assert read_table(tmp_path, "trades", "binance", "BTCUSDT").num_rows == 40
    assert read_table(tmp_path, "bbo", "binance", "BTCUSDT").num_rows == 4


def test_an_exception_in_the_block_aborts_and_changes_nothing(tmp_path):
    write_table(tmp_path, "trades", "binance", "BTCUSDT", trades_table(5, MIDNIGHT))
    before = tree(tmp_path)
    with pytest.raises(RuntimeError, match="stop"), ArchiveWriter(tmp_path) as writer:
        writer.write("trades", "binance", "BTCUSDT", trades_table())
        writer.write("bbo", "binance", "ETHUSDT", bbo_table())
        raise RuntimeError("stop")
    assert tree(tmp_path) == before
    with pytest.raises(ConfigError, match="already committed or aborted"):
        writer.write("bbo", "binance", "ETHUSDT", bbo_table())


def test_a_failed_write_aborts_the_whole_writer(tmp_path):
    writer = ArchiveWriter(tmp_path)
    writer.write("trades", "binance", "BTCUSDT", trades_table())
    with pytest.raises(DataError, match="'trade_id' is missing"):
        writer.write("trades", "binance", "ETHUSDT", trades_table().drop_columns(["trade_id"]))
    assert tree(tmp_path) == {}
    with pytest.raises(ConfigError, match="already committed or aborted"):
        writer.commit()


def test_a_writer_merges_an_hour_it_writes_twice_with_its_own_staged_file(tmp_path):
    table = trades_table()
    with ArchiveWriter(tmp_path) as writer:
        writer.write("trades", "binance", "BTCUSDT", table.slice(13, 27))
        writer.write("trades", "binance", "BTCUSDT", table.slice(0, 15))
    assert read_table(tmp_path, "trades", "binance", "BTCUSDT").equals(table)
    assert validate_archive(tmp_path).ok


def test_writers_of_different_instruments_do_not_interfere(tmp_path):
    first, second = ArchiveWriter(tmp_path), ArchiveWriter(tmp_path)
    first.write("trades", "binance", "BTCUSDT", trades_table())
    second.write("trades", "binance", "ETHUSDT", trades_table(7))  # its cleanup runs here
    second.commit()
    first.commit()
    assert read_table(tmp_path, "trades", "binance", "BTCUSDT").num_rows == 40
    assert read_table(tmp_path, "trades", "binance", "ETHUSDT").num_rows == 7
    assert validate_archive(tmp_path).ok


# --------------------------------------------------------------------------- filesystems


def test_memory_url_round_trip(memory_root):
    table = trades_table()
    paths = write_table(memory_root, "trades", "binance", "BTCUSDT", table)
    assert paths[0].startswith(f"{memory_root}/kind=trades/")
    assert read_table(memory_root, "trades", "binance", "BTCUSDT").equals(table)
    assert archive_paths(memory_root, "trades", "binance", "BTCUSDT") == paths
    assert list_archive(memory_root).rows.sum() == 40


def test_fsspec_filesystem_argument(memory_root):
    fs = fsspec.filesystem("memory")
    root = memory_root.removeprefix("memory://")
    write_table(root, "bbo", "bybit", "BTCUSDT", bbo_table(), filesystem=fs)
    assert fs.exists(f"/{root}/kind=bbo/exchange=bybit/symbol=BTCUSDT/date=2024-08-09/00.parquet")
    back = read_table(root, "bbo", "bybit", "BTCUSDT", filesystem=fs)
    assert back.equals(bbo_table())


def test_file_url_round_trip(tmp_path):
    write_table(f"file://{tmp_path}", "trades", "binance", "BTCUSDT", trades_table())
    assert read_table(tmp_path, "trades", "binance", "BTCUSDT").num_rows == 40


# --------------------------------------------------------------------------- bad input


def test_truncated_file_raises_data_error_naming_it(tmp_path):
    path = write_table(tmp_path, "trades", "binance", "BTCUSDT", trades_table())[1]
    with open(path, "r+b") as handle:
        handle.truncate(len(handle.read()) // 2)
    with pytest.raises(DataError, match=r"00\.parquet") as info:
        read_table(tmp_path, "trades", "binance", "BTCUSDT")
    assert info.value.source == path
    with pytest.raises(DataError, match=r"00\.parquet"):
        list_archive(tmp_path)


def test_missing_column_is_named(tmp_path):
    table = trades_table().drop_columns(["trade_id"])
    with pytest.raises(DataError, match="'trade_id' is missing"):
        write_table(tmp_path, "trades", "binance", "BTCUSDT", table)


def test_wrong_type_is_named(tmp_path):
    table = trades_table()
    table = table.set_column(4, "side", table.column("side").cast(pa.int64()))
    with pytest.raises(DataError, match="column 'side' has type int64, expected int8"):
        write_table(tmp_path, "trades", "binance", "BTCUSDT", table)


def test_extra_column_and_nulls_are_named(tmp_path):
    with pytest.raises(DataError, match="unexpected column 'venue'"):
        write_table(tmp_path, "trades", "binance", "BTCUSDT",
                    trades_table().append_column("venue", pa.array(["x"] * 40)))
    table = trades_table()
    price = pa.array([None, *table.column("price").to_pylist()[1:]], pa.float64())
    with pytest.raises(DataError, match="'price' has null"):
        write_table(tmp_path, "trades", "binance", "BTCUSDT", table.set_column(2, "price", price))


def test_unknown_kind_and_bad_names(tmp_path):
    with pytest.raises(ConfigError, match="unknown kind 'quotes'"):
        write_table(tmp_path, "quotes", "binance", "BTCUSDT", trades_table())
    with pytest.raises(ConfigError, match="unknown kind"):
        read_table(tmp_path, "quotes", "binance", "BTCUSDT")
    with pytest.raises(ConfigError, match="'PURR/USDC'"):
        write_table(tmp_path, "trades", "hyperliquid", "PURR/USDC", trades_table())


def test_snapshot_needs_depth_when_ambiguous(tmp_path):
    write_table(tmp_path, "book_snapshot", "binance", "BTCUSDT", snapshot_table(5))
    assert read_table(tmp_path, "book_snapshot", "binance", "BTCUSDT").num_rows == 6
    write_table(tmp_path, "book_snapshot", "binance", "BTCUSDT", snapshot_table(3))
    with pytest.raises(ConfigError, match=r"give depth=.*\[3, 5\]"):
        read_table(tmp_path, "book_snapshot", "binance", "BTCUSDT")
    assert read_table(tmp_path, "book_snapshot", "binance", "BTCUSDT", depth=3).num_rows == 6


def test_newer_schema_version_says_upgrade(tmp_path):
    # A file from a newer makerlab copied into an archive without a manifest.
    path = tmp_path / "kind=trades/exchange=binance/symbol=BTCUSDT/date=2024-08-09/00.parquet"
    path.parent.mkdir(parents=True)
    meta = {b"makerlab.schema_version": b"99"}
    pq.write_table(trades_table(5, MIDNIGHT).replace_schema_metadata(meta), path)
    with pytest.raises(DataError, match="upgrade makerlab"):
        read_table(tmp_path, "trades", "binance", "BTCUSDT")


def tree(root: Path) -> dict[str, bytes]:
    """Every file under ``root`` (hidden and manifest files included) with its bytes."""
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file()}


def test_failed_write_leaves_the_archive_as_it_was(tmp_path, full_disk):
    write_table(tmp_path, "trades", "binance", "BTCUSDT", trades_table(5, MIDNIGHT))
    before = tree(tmp_path)
    # The second hour file of the write finds the disk full.
    with pytest.raises(DataError, match=r"00\.parquet.*No space left on device"):
        write_table(tmp_path, "trades", "binance", "BTCUSDT", trades_table(),
                    filesystem=full_disk(1))
    assert tree(tmp_path) == before
    assert not list(tmp_path.glob("**/date=2024-08-08"))  # the new directory is gone too


def test_rows_repeated_within_written_data_are_stored_once_and_logged(tmp_path, caplog):
    table = trades_table(3)
    doubled = pa.concat_tables([table, table.slice(0, 1)])
    with caplog.at_level("WARNING", logger="makerlab.data.archive"):
        write_table(tmp_path, "trades", "binance", "BTCUSDT", doubled)
    assert "1 rows repeat earlier rows exactly" in caplog.text
    assert read_table(tmp_path, "trades", "binance", "BTCUSDT").num_rows == 3
    caplog.clear()
    with caplog.at_level("WARNING", logger="makerlab.data.archive"):
        write_table(tmp_path, "trades", "binance", "BTCUSDT", table)  # re-conversion: silent
    assert caplog.text == ""
