"""Tardis incremental_book_L2 -> book_delta + book_snapshot."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pytest

from makerlab.data.convert import Repairs
from makerlab.data.convert.tardis_l2 import read_incremental_book_l2
from makerlab.data.schema import FLAG_SNAPSHOT
from makerlab.errors import CrossedBook, DataError, UnsortedData

HEADER = "exchange,symbol,timestamp,local_timestamp,is_snapshot,side,price,amount"
T0 = 1_585_699_200_000_000  # 2020-04-01 in µs
ROWS = [
    f"deribit,BTC-PERPETUAL,{T0 + 1000},{T0 + 1100},true,bid,100.0,5",
    f"deribit,BTC-PERPETUAL,{T0 + 1000},{T0 + 1100},true,bid,99.5,2",
    f"deribit,BTC-PERPETUAL,{T0 + 1000},{T0 + 1100},true,ask,100.5,3",
    f"deribit,BTC-PERPETUAL,{T0 + 2000},{T0 + 2100},false,bid,100.0,0",
    f"deribit,BTC-PERPETUAL,{T0 + 2000},{T0 + 2100},false,ask,100.5,4",
    f"deribit,BTC-PERPETUAL,{T0 + 3000},{T0 + 3100},true,bid,90.0,1",
    f"deribit,BTC-PERPETUAL,{T0 + 3000},{T0 + 3100},true,ask,91.0,1",
]


def write(path: Path, rows: list[str]) -> Path:
    text = "\n".join([HEADER, *rows]) + "\n"
    if path.suffix == ".gz":
        path.write_bytes(gzip.compress(text.encode()))
    else:
        path.write_text(text)
    return path


def read(path: Path, repairs: Repairs | None = None, depth: int = 2):
    return read_incremental_book_l2(path, exchange="deribit", symbol=None, depth=depth,
                                    repairs=repairs)


def test_synthetic_updates_and_resnapshot(tmp_path):
    tables = read(write(tmp_path / "l2.csv.gz", ROWS))
    deltas, snaps = tables["book_delta"], tables["book_snapshot"]
    assert deltas.num_rows == 7
    assert deltas.column("local_ts").to_pylist()[0] == (T0 + 1100) * 1000
    assert deltas.column("flags").to_pylist() == [FLAG_SNAPSHOT] * 3 + [0, 0] + [FLAG_SNAPSHOT] * 2
    assert snaps.column("exchange_ts").to_pylist() == [(T0 + t) * 1000 for t in (1000, 2000, 3000)]
    bids = snaps.column("bid_price").to_pylist()
    assert bids[0] == [100.0, 99.5] and bids[1][0] == 99.5
    assert bids[2][0] == 90.0 and np.isnan(bids[2][1])  # the snapshot cleared the book
    assert snaps.column("ask_size").to_pylist()[1][0] == 4.0


def test_deribit_sample(shared_data):
    path = (shared_data / "tardis-format-samples"
            / "deribit_incremental_book_L2_2020-04-01_BTC-PERPETUAL.sample.csv")
    snaps = read(path, depth=5)["book_snapshot"]
    assert snaps.num_rows == 1
    assert snaps.column("ask_price").to_pylist()[0] == [6421.5, 6422.0, 6422.5, 6423.0, 6423.5]


def test_unsorted_rows(tmp_path):
    rows = [*ROWS[:3], ROWS[5], ROWS[3]]
    with pytest.raises(UnsortedData, match=r"l2\.csv:6: timestamp"):
        read(write(tmp_path / "l2.csv", rows))
    repairs = Repairs()
    read(write(tmp_path / "l2.csv", rows), repairs)
    assert repairs.counts["unsorted"] == 1


def test_crossed_book_names_the_line(tmp_path):
    rows = [*ROWS[:3], f"deribit,BTC-PERPETUAL,{T0 + 2000},{T0 + 2100},false,bid,101.0,1"]
    with pytest.raises(CrossedBook, match=r"l2\.csv:5: crossed book"):
        read(write(tmp_path / "l2.csv", rows))
    repairs = Repairs()
    tables = read(write(tmp_path / "l2.csv", rows), repairs)
    assert tables["book_snapshot"].num_rows == 1
    assert tables["book_delta"].num_rows == 3  # the crossing message is not kept either
    assert repairs.counts["crossed"] == 1


def test_bad_rows(tmp_path):
    with pytest.raises(DataError, match=r"l2\.csv:5: malformed row"):
        read(write(tmp_path / "l2.csv", [*ROWS[:3], "deribit,BTC-PERPETUAL,x,1,true,bid,1,1"]))
    rows = [*ROWS[:3], f"deribit,BTC-PERPETUAL,{T0 + 2000},{T0 + 2100},false,middle,100.0,1"]
    with pytest.raises(DataError, match=r"l2\.csv:5: side is not bid/ask"):
        read(write(tmp_path / "l2.csv", rows))
    repairs = Repairs()
    assert read(write(tmp_path / "l2.csv", rows), repairs)["book_delta"].num_rows == 3
    assert repairs.counts["malformed"] == 1


def test_an_empty_timestamp_is_a_malformed_row(tmp_path):
    rows = [*ROWS[:3], f"deribit,BTC-PERPETUAL,,{T0 + 2100},false,bid,100.0,1"]
    with pytest.raises(DataError, match=r"l2\.csv:5: malformed row: a value is missing"):
        read(write(tmp_path / "l2.csv", rows))


def test_zero_size_deletes_in_a_delta_but_is_no_snapshot_level(tmp_path):
    rows = [*ROWS[:2], f"deribit,BTC-PERPETUAL,{T0 + 1000},{T0 + 1100},true,ask,100.5,0"]
    with pytest.raises(DataError, match=r"l2\.csv:4: implausible size 0.0"):
        read(write(tmp_path / "l2.csv", rows))
    read(write(tmp_path / "l2.csv", ROWS))  # ROWS[3] deletes a bid with size 0


def test_a_crossed_book_drops_the_deltas_up_to_the_next_snapshot(tmp_path):
    crossing = f"deribit,BTC-PERPETUAL,{T0 + 2000},{T0 + 2100},false,bid,101.0,1"
    rows = [*ROWS[:3], crossing, *ROWS[5:]]
    repairs = Repairs()
    tables = read(write(tmp_path / "l2.csv", rows), repairs)
    assert tables["book_delta"]["flags"].to_pylist() == [FLAG_SNAPSHOT] * 5
    assert tables["book_snapshot"]["exchange_ts"].to_pylist() == [(T0 + 1000) * 1000,
                                                                  (T0 + 3000) * 1000]
    assert repairs.counts == {"crossed": 1}
    assert "1 messages dropped" in repairs.examples["crossed"]


def test_an_exchange_timestamp_an_hour_late_is_a_clock_offset(tmp_path):
    late = f"deribit,BTC-PERPETUAL,{T0 + 2000 + 3600 * 10**6},{T0 + 2100},false,bid,100.0,0"
    rows = [*ROWS[:3], late, *ROWS[4:]]
    with pytest.raises(DataError, match=r"l2\.csv:5: exchange_ts .* 3600 s apart"):
        read(write(tmp_path / "l2.csv", rows))


def test_a_message_split_by_a_changed_timestamp_is_refused(tmp_path):
    odd = ROWS[1].replace(f"{T0 + 1000},", f"{T0 + 1002},", 1)  # inside the snapshot
    rows = [ROWS[0], odd, *ROWS[2:]]
    for repairs in (None, Repairs()):
        with pytest.raises(DataError, match=r"l2\.csv:4: rows of one message .* split"):
            read(write(tmp_path / "l2.csv", rows), repairs)
