"""Hyperliquid collector CSV converter: real sample rows, dedupe, bad input and repairs."""

from __future__ import annotations

import gzip
import logging
from pathlib import Path

import numpy as np
import pytest

from makerlab.data.convert import hyperliquid
from makerlab.data.schema import BBO, BOOK_SNAPSHOT, TRADES, schema_for
from makerlab.errors import CrossedBook, DataError, UnsortedData


@pytest.fixture
def folder(samples: Path) -> Path:
    return samples / "hyperliquid"


def lines_of(path: Path) -> list[str]:
    with gzip.open(path, "rt", newline="") as f:
        return f.read().split("\r\n")[:-1]


def write(tmp_path: Path, name: str, lines: list[str]) -> Path:
    """A CRLF copy like the collector's, gzip-compressed when ``name`` ends in .gz."""
    path = tmp_path / name
    data = ("\r\n".join(lines) + "\r\n").encode()
    path.write_bytes(gzip.compress(data) if name.endswith(".gz") else data)
    return path


def only(results):
    assert len(results) == 1
    return results[0]


def test_sample_files_are_crlf(folder):
    with gzip.open(folder / "trades_BTC.csv.gz", "rb") as f:
        assert f.readline().endswith(b"\r\n")


def test_orderbooks_become_book_snapshots(folder):
    converted = only(hyperliquid.read([folder / "orderbooks_BTC.csv.gz"], progress=False))
    table = converted.tables[BOOK_SNAPSHOT]
    assert (converted.exchange, converted.symbol, converted.depth) == ("hyperliquid", "BTC", 20)
    assert table.schema.equals(schema_for(BOOK_SNAPSHOT, 20))
    assert table.num_rows == 300
    first, second = table.slice(0, 2).to_pylist()
    # 1757015216.673878,1757015216253,1757015216253,109755.0,3.24457,109756.0,15.17236,...
    assert (first["exchange_ts"], first["local_ts"], first["seq"]) == (
        1757015216253000000, 1757015216673878000, -1)
    assert (first["bid_price"][0], first["bid_size"][0]) == (109755.0, 3.24457)
    assert (first["ask_price"][0], first["ask_size"][0]) == (109756.0, 15.17236)
    assert (first["bid_price"][1], first["ask_price"][1]) == (109754.0, 109757.0)
    # 1757015217.1651921 has 7 decimals: rounded to the microsecond
    assert second["local_ts"] == 1757015217165192000


def test_depth_truncates_snapshots(folder):
    converted = only(hyperliquid.read([folder / "orderbooks_BTC.csv.gz"], depth=5,
                                      progress=False))
    assert converted.tables[BOOK_SNAPSHOT].schema.equals(schema_for(BOOK_SNAPSHOT, 5))
    assert converted.depth == 5


def test_trades_first_row_exactly_as_in_the_file(folder):
    table = only(hyperliquid.read([folder / "trades_BTC.csv.gz"],
                                  progress=False)).tables[TRADES]
    assert table.schema.equals(schema_for(TRADES))
    assert table.num_rows == 300
    # 1757015216.673878,109741.0,0.91116,buy,833120162794147,1757015209306
    assert table.slice(0, 1).to_pylist()[0] == {
        "exchange_ts": 1757015209306000000, "local_ts": 1757015216673878000,
        "price": 109741.0, "size": 0.91116, "side": 1, "trade_id": "833120162794147"}
    sides = [line.split(",")[3] for line in lines_of(folder / "trades_BTC.csv.gz")[1:]]
    got = table.column("side").to_numpy()
    assert np.array_equal(got, np.where(np.array(sides) == "buy", 1, -1))


def test_prices_are_paired_into_bbo(folder):
    converted = only(hyperliquid.read([folder / "prices_BTC.csv.gz"], progress=False))
    table = converted.tables[BBO]
    assert table.schema.equals(schema_for(BBO))
    assert table.num_rows == 150
    # 1757015216.8747032,109755.0,3.24457,bid,1757015216253 / ...,109756.0,15.17236,ask,...
    assert table.slice(0, 1).to_pylist()[0] == {
        "exchange_ts": 1757015216253000000, "local_ts": 1757015216874703000, "seq": -1,
        "bid_price": 109755.0, "bid_size": 3.24457, "ask_price": 109756.0,
        "ask_size": 15.17236}


def test_directory_input_groups_by_coin(folder):
    converted = only(hyperliquid.read(folder, progress=False))
    assert set(converted.tables) == {BOOK_SNAPSHOT, TRADES, BBO}
    assert converted.stats == {"files": 3, "duplicate_trades": 0}
    renamed = only(hyperliquid.read(folder, exchange="hl", symbol="BTC-PERP", progress=False))
    assert (renamed.exchange, renamed.symbol) == ("hl", "BTC-PERP")


def test_exact_duplicate_trades_are_dropped_and_counted(tmp_path, folder, caplog):
    lines = lines_of(folder / "trades_BTC.csv.gz")[:40]
    changed_size = lines[12].split(",")
    changed_size[2] = "0.5"
    lines = [*lines[:11], lines[10], *lines[11:13], ",".join(changed_size), *lines[13:30],
             lines[29], *lines[30:]]
    path = write(tmp_path, "trades_BTC.csv.gz", lines)
    with caplog.at_level(logging.WARNING):
        converted = only(hyperliquid.read([path], progress=False))
    table = converted.tables[TRADES]
    assert converted.stats["duplicate_trades"] == 2
    assert table.num_rows == 40  # 39 originals + the same id with another size
    assert "dropped 2 duplicate trades" in caplog.text and "line 12" in caplog.text


def test_bad_file_name_and_header(tmp_path, folder):
    with pytest.raises(DataError, match="not a Hyperliquid collector file name"):
        hyperliquid.read([write(tmp_path, "fills_BTC.csv", ["a"])], progress=False)
    lines = lines_of(folder / "trades_BTC.csv.gz")[:5]
    lines[0] = lines[0].replace("trade_id", "tid")
    with pytest.raises(DataError, match=r"trades_BTC\.csv:1: unrecognised header"):
        hyperliquid.read([write(tmp_path, "trades_BTC.csv", lines)], progress=False)


def test_malformed_trade_rows(tmp_path, folder):
    lines = lines_of(folder / "trades_BTC.csv.gz")[:30]
    lines[4] = lines[4].rsplit(",", 1)[0]  # field missing
    fields = lines[9].split(",")
    fields[1] = "1o9742.0"
    lines[9] = ",".join(fields)
    path = write(tmp_path, "trades_BTC.csv", lines)
    with pytest.raises(DataError, match=r"trades_BTC\.csv:5: malformed row: expected 6 fields"):
        hyperliquid.read([path], progress=False)
    converted = only(hyperliquid.read([path], repair=True, progress=False))
    assert converted.repairs.counts["malformed"] == 1  # one record, two rows
    assert "2 malformed rows dropped" in converted.repairs.examples["malformed"]
    assert converted.tables[TRADES].num_rows == 27


def test_unsorted_book_rows(tmp_path, folder):
    lines = lines_of(folder / "orderbooks_BTC.csv.gz")[:20]
    lines[5], lines[6] = lines[6], lines[5]
    path = write(tmp_path, "orderbooks_BTC.csv.gz", lines)
    with pytest.raises(UnsortedData, match=r"orderbooks_BTC\.csv\.gz:7:"):
        hyperliquid.read([path], progress=False)
    converted = only(hyperliquid.read([path], repair=True, progress=False))
    local = converted.tables[BOOK_SNAPSHOT].column("local_ts").to_numpy()
    assert (np.diff(local) > 0).all() and converted.repairs.counts["unsorted"] == 1


def test_nan_price_in_book(tmp_path, folder):
    lines = lines_of(folder / "orderbooks_BTC.csv.gz")[:20]
    fields = lines[3].split(",")
    fields[3 + 4 * 4] = "nan"  # bid_price_4
    lines[3] = ",".join(fields)
    path = write(tmp_path, "orderbooks_BTC.csv", lines)
    with pytest.raises(DataError, match=r"orderbooks_BTC\.csv:4: bad book levels \(bids"):
        hyperliquid.read([path], progress=False)
    converted = only(hyperliquid.read([path], repair=True, progress=False))
    assert converted.tables[BOOK_SNAPSHOT].num_rows == 18
    assert converted.repairs.counts["bad_levels"] == 1


def test_crossed_book(tmp_path, folder):
    lines = lines_of(folder / "orderbooks_BTC.csv.gz")[:20]
    fields = lines[8].split(",")
    fields[5] = fields[3]  # ask_price_0 = bid_price_0: locked
    lines[8] = ",".join(fields)
    path = write(tmp_path, "orderbooks_BTC.csv", lines)
    with pytest.raises(CrossedBook, match=r"orderbooks_BTC\.csv:9: crossed book"):
        hyperliquid.read([path], progress=False)
    converted = only(hyperliquid.read([path], repair=True, progress=False))
    assert converted.tables[BOOK_SNAPSHOT].num_rows == 18
    assert converted.repairs.counts["crossed"] == 1


def test_crossed_and_unpaired_bbo(tmp_path, folder):
    lines = lines_of(folder / "prices_BTC.csv.gz")[:41]  # header + 20 messages
    lines[5] = lines[5].replace(",bid,", ",ask,")  # message 3 now has two asks, no bid
    path = write(tmp_path, "prices_BTC.csv", lines)
    with pytest.raises(DataError, match=r"prices_BTC\.csv:7: a second row for the same side"):
        hyperliquid.read([path], progress=False)
    converted = only(hyperliquid.read([path], repair=True, progress=False))
    assert converted.tables[BBO].num_rows == 19
    assert set(converted.repairs.counts) == {"duplicate_bbo_side", "unpaired_bbo"}

    lines = lines_of(folder / "prices_BTC.csv.gz")[:41]
    fields = lines[9].split(",")
    fields[1] = "999999.0"  # the bid of message 5 above its ask
    lines[9] = ",".join(fields)
    with pytest.raises(CrossedBook, match=r"prices_BTC\.csv:10: crossed book"):
        hyperliquid.read([write(tmp_path, "prices_BTC.csv", lines)], progress=False)


def test_unpaired_bbo_row(tmp_path, folder):
    lines = lines_of(folder / "prices_BTC.csv.gz")[:41]
    del lines[4]  # the ask of message 2
    path = write(tmp_path, "prices_BTC.csv", lines)
    with pytest.raises(DataError, match=r"prices_BTC\.csv:4: a bbo row without"):
        hyperliquid.read([path], progress=False)
    converted = only(hyperliquid.read([path], repair=True, progress=False))
    assert converted.tables[BBO].num_rows == 19



def test_a_header_only_trades_file(tmp_path, folder):
    path = write(tmp_path, "trades_BTC.csv.gz", lines_of(folder / "trades_BTC.csv.gz")[:1])
    with pytest.raises(DataError, match=r"trades_BTC\.csv\.gz:2: no data rows"):
        hyperliquid.read([path], progress=False)
    converted = only(hyperliquid.read([path], repair=True, progress=False))
    assert converted.tables[TRADES].num_rows == 0
    assert converted.repairs.counts == {"empty_file": 1}


@pytest.mark.parametrize(("column", "value", "match"), [
    (0, "0", "implausible local_ts 0 ns"),
    (5, "175701", "implausible exchange_ts 175701000000 ns"),  # a file cut in this field
    (5, "1757015209306000", "implausible exchange_ts"),
])
def test_implausible_trade_timestamps(tmp_path, folder, column, value, match):
    lines = lines_of(folder / "trades_BTC.csv.gz")
    fields = lines[9].split(",")
    fields[column] = value
    lines[9] = ",".join(fields)
    path = write(tmp_path, "trades_BTC.csv", lines)
    with pytest.raises(DataError, match=rf"trades_BTC\.csv:10: {match}"):
        hyperliquid.read([path], progress=False)
    converted = only(hyperliquid.read([path], repair=True, progress=False))
    assert converted.repairs.counts == {"implausible_time": 1}


@pytest.mark.parametrize("value", ["0", "-109755.0", "1e20"])
def test_implausible_book_prices(tmp_path, folder, value):
    lines = lines_of(folder / "orderbooks_BTC.csv.gz")
    fields = lines[5].split(",")
    fields[3] = value  # bid_price_0
    lines[5] = ",".join(fields)
    path = write(tmp_path, "orderbooks_BTC.csv", lines)
    with pytest.raises(DataError, match=r"orderbooks_BTC\.csv:6: "):
        hyperliquid.read([path], progress=False)
    converted = only(hyperliquid.read([path], repair=True, progress=False))
    assert converted.tables[BOOK_SNAPSHOT].num_rows == 299


def test_a_zero_size_bbo_side_is_implausible(tmp_path, folder):
    lines = lines_of(folder / "prices_BTC.csv.gz")
    fields = lines[1].split(",")
    fields[2] = "0"
    lines[1] = ",".join(fields)
    path = write(tmp_path, "prices_BTC.csv", lines)
    with pytest.raises(DataError, match=r"prices_BTC\.csv:2: implausible bid_size"):
        hyperliquid.read([path], progress=False)


def test_a_corrupt_gzip_is_a_data_error_at_a_line(tmp_path, folder):
    data = bytearray((folder / "orderbooks_BTC.csv.gz").read_bytes())
    data[len(data) // 3] ^= 0x01
    path = tmp_path / "orderbooks_BTC.csv.gz"
    path.write_bytes(bytes(data))
    with pytest.raises(DataError, match=r"orderbooks_BTC\.csv\.gz:\d+: cannot read the file"):
        hyperliquid.read([path], progress=False)

@pytest.mark.shared_data
def test_full_recording(shared_data):
    results = {c.symbol: c for c in hyperliquid.read(shared_data / "hyperliquid-20250904",
                                                     progress=False)}
    assert set(results) == {"BTC", "ETH", "SOL", "WLFI"}
    duplicates = {coin: c.stats["duplicate_trades"] for coin, c in results.items()}
    assert duplicates == {"BTC": 0, "ETH": 17, "SOL": 10, "WLFI": 8}
    btc = results["BTC"]
    assert btc.tables[BOOK_SNAPSHOT].num_rows == 3785
    assert btc.tables[TRADES].num_rows == 6675
    assert btc.tables[BBO].num_rows == 27792 // 2
    assert results["ETH"].tables[TRADES].num_rows == 6884 - 17
    mid = (btc.tables[BBO].column("bid_price").to_numpy()
           + btc.tables[BBO].column("ask_price").to_numpy()) / 2
    assert mid.min() >= 109750 and mid.max() <= 110273
    assert all(c.repairs.total == 0 for c in results.values())
