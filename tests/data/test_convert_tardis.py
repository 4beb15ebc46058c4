"""tardis.dev CSV converter: real sample rows, exchange mapping, bad input and repairs."""

from __future__ import annotations

import gzip
import importlib.util
from pathlib import Path

import numpy as np
import pytest

from makerlab.data.convert import tardis
from makerlab.data.schema import BBO, BOOK_SNAPSHOT, TRADES, schema_for
from makerlab.errors import ConfigError, CrossedBook, DataError, UnsortedData

TRADES_FILE = "binance-futures_trades_2020-02-22_BTCUSDT.csv.gz"
QUOTES_FILE = "binance-futures_quotes_2020-02-22_BTCUSDT.csv.gz"
BOOK_FILE = "binance-futures_book_snapshot_25_2020-09-01_BTCUSDT.sample.csv"
L2_FILE = "deribit_incremental_book_L2_2020-04-01_BTC-PERPETUAL.sample.csv"
T0 = 1_582_329_600_000_000  # 2020-02-22 in µs


@pytest.fixture
def folder(samples: Path) -> Path:
    return samples / "tardis"


def lines_of(path: Path) -> list[str]:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt") as f:
        return f.read().splitlines()


def write(tmp_path: Path, name: str, lines: list[str]) -> Path:
    path = tmp_path / name
    path.write_text("\n".join(lines) + "\n")
    return path


def only(results):
    assert len(results) == 1
    return results[0]


def test_trades_first_row_exactly_as_in_the_file(folder):
    converted = only(tardis.read([folder / TRADES_FILE], progress=False))
    table = converted.tables[TRADES]
    assert (converted.exchange, converted.symbol) == ("binance", "BTCUSDT")
    assert table.schema.equals(schema_for(TRADES))
    assert table.num_rows == 2000
    # binance-futures,BTCUSDT,1582329602111000,1582329602418379,42377944,buy,9682,0.132
    assert table.slice(0, 1).to_pylist()[0] == {
        "exchange_ts": 1582329602111000000, "local_ts": 1582329602418379000,
        "price": 9682.0, "size": 0.132, "side": 1, "trade_id": "42377944"}


def test_trade_sides_match_the_file(folder):
    sides = [line.split(",")[5] for line in lines_of(folder / TRADES_FILE)[1:]]
    table = only(tardis.read(folder / TRADES_FILE, progress=False)).tables[TRADES]
    got = table.column("side").to_numpy()
    assert (got == 1).sum() == sides.count("buy")
    assert (got == -1).sum() == sides.count("sell")
    assert np.array_equal(got, np.where(np.array(sides) == "buy", 1, -1))


def test_quotes_become_bbo(folder):
    table = only(tardis.read([folder / QUOTES_FILE], progress=False)).tables[BBO]
    assert table.schema.equals(schema_for(BBO))
    # ...,1582329601096000,1582329603502092,0.84,9682,9681.92,0.67 (ask_amount, ask_price, ...)
    assert table.slice(0, 1).to_pylist()[0] == {
        "exchange_ts": 1582329601096000000, "local_ts": 1582329603502092000, "seq": -1,
        "bid_price": 9681.92, "bid_size": 0.67, "ask_price": 9682.0, "ask_size": 0.84}


def test_book_snapshot_truncated_to_depth(folder):
    converted = only(tardis.read([folder / BOOK_FILE], progress=False))
    table = converted.tables[BOOK_SNAPSHOT]
    assert converted.depth == 20
    assert table.schema.equals(schema_for(BOOK_SNAPSHOT, 20))
    first = table.slice(0, 1).to_pylist()[0]
    assert (first["exchange_ts"], first["local_ts"]) == (1598918403696000000, 1598918403810979000)
    assert (first["ask_price"][0], first["ask_size"][0]) == (11657.08, 1.714)
    assert (first["bid_price"][0], first["bid_size"][0]) == (11657.07, 10.896)


def test_book_snapshot_keeps_the_file_depth_when_smaller(folder):
    table = only(tardis.read([folder / BOOK_FILE], depth=50, progress=False)).tables[BOOK_SNAPSHOT]
    assert table.schema.equals(schema_for(BOOK_SNAPSHOT, 25))
    first = table.slice(0, 1).to_pylist()[0]
    # asks[24].price,asks[24].amount,bids[24].price,bids[24].amount = 11659.34,0.618,11653.25,1.003
    assert (first["ask_price"][24], first["ask_size"][24]) == (11659.34, 0.618)
    assert (first["bid_price"][24], first["bid_size"][24]) == (11653.25, 1.003)


def test_files_of_one_instrument_form_one_converted(folder):
    files = [folder / TRADES_FILE, folder / QUOTES_FILE, folder / BOOK_FILE]
    converted = only(tardis.read(files, depth=5, progress=False))
    assert set(converted.tables) == {TRADES, BBO, BOOK_SNAPSHOT}
    assert converted.stats["files"] == 3
    assert converted.repairs.total == 0


@pytest.mark.parametrize(("venue", "ours"), [
    ("binance-futures", "binance"), ("binance", "binance_spot"),
    ("binance-delivery", "binance_coinm"), ("bybit", "bybit"), ("deribit", "deribit"),
    ("okex-swap", "okex-swap"),
])
def test_exchange_ids_are_mapped(tmp_path, venue, ours):
    path = write(tmp_path, "t.csv", [",".join(tardis.TRADES_HEADER),
                                     f"{venue},BTCUSDT,{T0 + 1},{T0 + 2},7,sell,10.5,2"])
    converted = only(tardis.read([path], progress=False))
    assert converted.exchange == ours
    assert converted.tables[TRADES].column("side").to_pylist() == [-1]


def test_overrides_and_multi_symbol_files(tmp_path):
    lines = [",".join(tardis.TRADES_HEADER), f"bybit,BTCUSD,{T0 + 1},{T0 + 2},a,buy,10,1",
             f"bybit,ETHUSD,{T0 + 3},{T0 + 4},b,unknown,5,1",
             f"bybit,BTCUSD,{T0 + 5},{T0 + 6},c,sell,11,2"]
    path = write(tmp_path, "t.csv", lines)
    results = {c.symbol: c for c in tardis.read(path, progress=False)}
    assert results["BTCUSD"].tables[TRADES].column("trade_id").to_pylist() == ["a", "c"]
    assert results["ETHUSD"].tables[TRADES].column("side").to_pylist() == [0]
    with pytest.raises(ConfigError, match="would merge"):
        tardis.read(path, symbol="Y", progress=False)
    one = write(tmp_path, "one.csv", lines[:2])
    renamed = only(tardis.read(one, exchange="x", symbol="Y", progress=False))
    assert (renamed.exchange, renamed.symbol) == ("x", "Y")


def test_bad_depth_and_missing_input(folder):
    with pytest.raises(ConfigError, match="depth"):
        tardis.read([folder / BOOK_FILE], depth=0, progress=False)
    with pytest.raises(ConfigError, match="does not exist"):
        tardis.read([folder / "nope.csv"], progress=False)


def test_unrecognised_header(tmp_path):
    path = write(tmp_path, "x.csv", ["exchange,symbol,when,price", "a,b,1,2"])
    with pytest.raises(DataError, match=r"x\.csv:1: unrecognised tardis CSV header"):
        tardis.read([path], progress=False)


@pytest.fixture
def trades_lines(folder) -> list[str]:
    return lines_of(folder / TRADES_FILE)[:50]


def test_wrong_field_count_names_the_line(tmp_path, trades_lines):
    trades_lines[5] = trades_lines[5] + ",extra"
    path = write(tmp_path, "t.csv", trades_lines)
    with pytest.raises(DataError, match=r"t\.csv:6: malformed row: expected 8 fields, got 9"):
        tardis.read([path], progress=False)
    converted = only(tardis.read([path], repair=True, progress=False))
    assert converted.repairs.counts["malformed"] == 1
    assert converted.tables[TRADES].num_rows == 48
    assert "42377948" not in converted.tables[TRADES].column("trade_id").to_pylist()


def test_non_numeric_value_names_the_line(tmp_path, trades_lines):
    fields = trades_lines[10].split(",")
    fields[6] = "96x2"
    trades_lines[10] = ",".join(fields)
    path = write(tmp_path, "t.csv", trades_lines)
    with pytest.raises(DataError, match=r"t\.csv:11: malformed row"):
        tardis.read([path], progress=False)
    table = only(tardis.read([path], repair=True, progress=False)).tables[TRADES]
    assert table.num_rows == 48


def test_unsorted_timestamps(tmp_path, trades_lines):
    trades_lines[20], trades_lines[21] = trades_lines[21], trades_lines[20]  # 0.5 s apart
    path = write(tmp_path, "t.csv", trades_lines)
    with pytest.raises(UnsortedData, match=r"t\.csv:22: timestamp"):
        tardis.read([path], progress=False)
    converted = only(tardis.read([path], repair=True, progress=False))
    local = converted.tables[TRADES].column("local_ts").to_numpy()
    assert (np.diff(local) >= 0).all() and converted.repairs.counts["unsorted"] == 1


def test_nan_price(tmp_path, trades_lines):
    trades_lines[3] = trades_lines[3].replace(",9682,", ",NaN,")
    path = write(tmp_path, "t.csv", trades_lines)
    with pytest.raises(DataError, match=r"t\.csv:4: non-finite price"):
        tardis.read([path], progress=False)
    converted = only(tardis.read([path], repair=True, progress=False))
    assert converted.repairs.counts["non_finite"] == 1
    assert converted.tables[TRADES].num_rows == 48


def test_unknown_side(tmp_path, trades_lines):
    trades_lines[2] = trades_lines[2].replace(",buy,", ",bid,")
    path = write(tmp_path, "t.csv", trades_lines)
    with pytest.raises(DataError, match=r"t\.csv:3: unknown trade side 'bid'"):
        tardis.read([path], progress=False)
    table = only(tardis.read([path], repair=True, progress=False)).tables[TRADES]
    assert table.column("side").to_pylist()[1] == 0


def test_crossed_quotes(tmp_path, folder):
    lines = lines_of(folder / QUOTES_FILE)[:20]
    # ask_amount,ask_price,bid_price,bid_amount: bid 9690 > ask 9682
    lines[7] = ",".join([*lines[7].split(",")[:6], "9690", "1"])
    path = write(tmp_path, "q.csv", lines)
    with pytest.raises(CrossedBook, match=r"q\.csv:8: crossed book"):
        tardis.read([path], progress=False)
    converted = only(tardis.read([path], repair=True, progress=False))
    assert converted.repairs.counts["crossed"] == 1
    assert converted.tables[BBO].num_rows == 18


def test_book_snapshot_with_a_nan_level(tmp_path, folder):
    lines = lines_of(folder / BOOK_FILE)
    fields = lines[3].split(",")
    fields[4 + 4 * 2 + 2] = ""  # bids[2].price missing while bids[2].amount is given
    lines[3] = ",".join(fields)
    path = write(tmp_path, "b.csv", lines)
    with pytest.raises(DataError, match=r"b\.csv:4: bad book levels \(bids: NaN"):
        tardis.read([path], progress=False)
    converted = only(tardis.read([path], repair=True, progress=False))
    assert converted.tables[BOOK_SNAPSHOT].num_rows == 9
    assert converted.repairs.counts["bad_levels"] == 1


def test_book_snapshot_missing_tail_levels_are_nan(tmp_path, folder):
    lines = lines_of(folder / BOOK_FILE)[:2]
    fields = lines[1].split(",")
    fields[4 + 4 * 20:] = [""] * (len(fields) - 4 - 4 * 20)
    lines[1] = ",".join(fields)
    table = only(tardis.read([write(tmp_path, "b.csv", lines)], depth=25,
                             progress=False)).tables[BOOK_SNAPSHOT]
    row = table.to_pylist()[0]
    assert np.isnan(row["bid_price"][20:]).all() and row["bid_price"][19] == float(fields[80 + 2])


@pytest.mark.skipif(importlib.util.find_spec("makerlab.data.convert.tardis_l2") is None,
                    reason="tardis_l2 not written yet")
def test_incremental_book_l2_is_delegated(folder):
    converted = only(tardis.read([folder / L2_FILE], depth=5, progress=False))
    assert (converted.exchange, converted.symbol) == ("deribit", "BTC-PERPETUAL")
    assert {"book_delta", "book_snapshot"} <= set(converted.tables)
    deltas = converted.tables["book_delta"]
    assert deltas.schema.equals(schema_for("book_delta"))
    assert deltas.num_rows == 15
    # deribit,BTC-PERPETUAL,1585699200245000,1585699200355684,true,ask,6421.5,18640
    first = deltas.slice(0, 1).to_pylist()[0]
    assert (first["exchange_ts"], first["local_ts"]) == (1585699200245000000, 1585699200355684000)
    assert converted.tables["book_snapshot"].schema.equals(schema_for("book_snapshot", 5))
    renamed = only(tardis.read([folder / L2_FILE], symbol="BTC-PERP", progress=False))
    assert (renamed.symbol, renamed.tables["book_delta"].num_rows) == ("BTC-PERP", 15)


def _field(lines: list[str], row: int, column: int, value: str) -> None:
    fields = lines[row].split(",")
    fields[column] = value
    lines[row] = ",".join(fields)


@pytest.mark.parametrize(("column", "value", "match"), [
    (6, "0", "implausible price 0.0"), (6, "-9682", "implausible price -9682.0"),
    (7, "0", "implausible size 0.0"), (7, "1e300", "implausible size 1e\\+300"),
])
def test_trade_prices_and_sizes_must_be_plausible(tmp_path, trades_lines, column, value,
                                                  match):
    _field(trades_lines, 4, column, value)
    path = write(tmp_path, "t.csv", trades_lines)
    with pytest.raises(DataError, match=rf"t\.csv:5: {match}"):
        tardis.read([path], progress=False)
    converted = only(tardis.read([path], repair=True, progress=False))
    assert converted.repairs.counts == {"implausible_value": 1}
    assert converted.tables[TRADES].num_rows == 48


@pytest.mark.parametrize("value", ["1582329602111000000", "0", "-1582329602111000"])
def test_a_timestamp_times_1000_zero_or_negative_is_implausible(tmp_path, trades_lines,
                                                                value):
    _field(trades_lines, 4, 2, value)  # timestamp: 1840, 1970 or before
    path = write(tmp_path, "t.csv", trades_lines)
    with pytest.raises(DataError, match=r"t\.csv:5: implausible exchange_ts"):
        tardis.read([path], progress=False)
    converted = only(tardis.read([path], repair=True, progress=False))
    assert converted.repairs.counts == {"implausible_time": 1}


def test_a_clock_an_hour_off_is_a_clock_offset(tmp_path, trades_lines):
    _field(trades_lines, 4, 3, str(int(trades_lines[4].split(",")[3]) + 3600 * 10**6))
    path = write(tmp_path, "t.csv", trades_lines)
    with pytest.raises(DataError, match=r"t\.csv:5: exchange_ts .* apart"):
        tardis.read([path], progress=False)


def test_rows_swapped_seconds_apart_are_time_outliers_not_sorted(tmp_path, trades_lines):
    trades_lines[20], trades_lines[30] = trades_lines[30], trades_lines[20]  # 4 s apart
    path = write(tmp_path, "t.csv", trades_lines)
    with pytest.raises(DataError, match=r"t\.csv:21: timestamp .* both of its neighbours"):
        tardis.read([path], progress=False)
    converted = only(tardis.read([path], repair=True, progress=False))
    assert converted.repairs.counts == {"time_outlier": 1}  # both rows, one repair
    assert converted.tables[TRADES].num_rows == 47


def test_zero_sized_quote_is_implausible(tmp_path, folder):
    lines = lines_of(folder / QUOTES_FILE)[:20]
    _field(lines, 7, 4, "0")  # ask_amount
    path = write(tmp_path, "q.csv", lines)
    with pytest.raises(DataError, match=r"q\.csv:8: implausible ask_size"):
        tardis.read([path], progress=False)


def test_a_corrupt_gzip_is_a_data_error_at_a_line(tmp_path, folder):
    data = bytearray((folder / TRADES_FILE).read_bytes())
    data[len(data) // 2] ^= 0x10
    path = tmp_path / TRADES_FILE
    path.write_bytes(bytes(data))
    with pytest.raises(DataError, match=rf"{TRADES_FILE}:\d+: cannot read the file"):
        tardis.read([path], progress=False)


def test_a_file_cut_inside_its_last_line(tmp_path, trades_lines):
    path = tmp_path / "t.csv"
    path.write_text("\n".join(trades_lines)[:-2])  # 0.13 instead of 0.132, no line end
    with pytest.raises(DataError, match=r"t\.csv:50: malformed row: the file ends inside"):
        tardis.read([path], progress=False)
    converted = only(tardis.read([path], repair=True, progress=False))
    assert converted.tables[TRADES].num_rows == 48


def test_header_only_and_empty_files(tmp_path, trades_lines):
    header_only = write(tmp_path, "h.csv", trades_lines[:1])
    with pytest.raises(DataError, match=r"h\.csv:2: no data rows"):
        tardis.read([header_only], progress=False)
    assert tardis.read([header_only], repair=True, progress=False) == []
    (tmp_path / "e.csv").write_text("")
    with pytest.raises(DataError, match=r"e\.csv:1: unrecognised tardis CSV header"):
        tardis.read([tmp_path / "e.csv"], progress=False)


@pytest.mark.shared_data
def test_full_trade_tape_and_quotes(shared_data):
    folder = shared_data / "tardis-format-samples"
    converted = only(tardis.read([folder / TRADES_FILE, folder / QUOTES_FILE],
                                 progress=False))
    trades = converted.tables[TRADES]
    assert trades.num_rows == 9999 and converted.tables[BBO].num_rows == 9999
    side = trades.column("side").to_numpy()
    assert ((side == 1).sum(), (side == -1).sum()) == (5267, 4732)
    price = trades.column("price").to_numpy()
    assert price.min() >= 9653 and price.max() <= 9712
    assert trades.column("exchange_ts")[-1].as_py() // 10**9 == 1582337147  # 02:05:47 UTC
