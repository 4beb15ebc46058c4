"""LOBSTER converter: New York time, executions, derived deltas, bad input and repairs."""

from __future__ import annotations

import gzip
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from makerlab.data.convert import lobster
from makerlab.data.schema import BBO, BOOK_DELTA, BOOK_SNAPSHOT, FLAG_SNAPSHOT, TRADES, schema_for
from makerlab.errors import ConfigError, CrossedBook, DataError, UnsortedData

BASE = "AMZN_2012-06-21_44553_57600_{}_1.subset.csv.gz"


@pytest.fixture
def folder(samples: Path) -> Path:
    return samples / "lobster"


@pytest.fixture
def converted(folder):
    results = lobster.read(folder, progress=False)
    assert len(results) == 1
    return results[0]


def lines_of(folder: Path, kind: str, count: int = 60) -> list[str]:
    with gzip.open(folder / BASE.format(kind), "rt") as f:
        return f.read().splitlines()[:count]


def write_pair(tmp_path: Path, messages: list[str], books: list[str]) -> Path:
    for kind, lines in (("message", messages), ("orderbook", books)):
        (tmp_path / BASE.format(kind).removesuffix(".gz")).write_text("\n".join(lines) + "\n")
    return tmp_path


def ns(*args) -> int:
    return int(datetime(*args[:6], tzinfo=UTC).timestamp()) * 10**9 + args[6]


def test_new_york_time_becomes_utc_ns(converted):
    first = converted.tables[BOOK_SNAPSHOT].slice(0, 1).to_pylist()[0]
    # 44553.639826023 s after midnight = 12:22:33.639826023 EDT = 16:22:33.639826023 UTC
    assert first["exchange_ts"] == first["local_ts"] == ns(2012, 6, 21, 16, 22, 33, 639826023)


def test_utc_ns_uses_the_days_offset():
    assert lobster.utc_ns("2012-12-21", np.array([34200.0]))[0] == ns(2012, 12, 21, 14, 30, 0, 0)
    # 2012-03-11: clocks went forward at 02:00, the open is 13:30 UTC
    assert lobster.utc_ns("2012-03-11", np.array([34200.0]))[0] == ns(2012, 3, 11, 13, 30, 0, 0)


def test_book_snapshot_from_the_orderbook_file(converted):
    table = converted.tables[BOOK_SNAPSHOT]
    assert (converted.exchange, converted.symbol, converted.depth) == ("nasdaq", "AMZN", 1)
    assert table.schema.equals(schema_for(BOOK_SNAPSHOT, 1))
    assert table.schema.metadata[b"makerlab.clock"].startswith(b"exchange")
    assert table.num_rows == 2000
    first = table.slice(0, 1).to_pylist()[0]
    # 2236700,100,2235300,400
    assert (first["ask_price"], first["ask_size"]) == ([223.67], [100.0])
    assert (first["bid_price"], first["bid_size"], first["seq"]) == ([223.53], [400.0], 1)


def test_executions_become_trades_with_the_aggressor_side(converted, folder):
    messages = [line.split(",") for line in lines_of(folder, "message", 2000)]
    fills = [m for m in messages if m[1] in ("4", "5")]
    table = converted.tables[TRADES]
    assert table.schema.equals(schema_for(TRADES))
    assert table.num_rows == len(fills)
    assert converted.stats["executions_visible"] + converted.stats["executions_hidden"] == len(
        fills)
    assert table.column("side").to_pylist() == [-int(m[5]) for m in fills]
    # line 14: 44571.091351892,4,148356933,100,2235300,1 -> a buy order hit by a seller
    visible = table.slice(2, 1).to_pylist()[0]
    assert visible == {"exchange_ts": ns(2012, 6, 21, 16, 22, 51, 91351892),
                       "local_ts": ns(2012, 6, 21, 16, 22, 51, 91351892), "price": 223.53,
                       "size": 100.0, "side": -1, "trade_id": "148356933"}
    # line 12: 44571.09124861,5,0,100,2235500,1 -> hidden buy order executed, seller aggressed
    hidden = table.slice(0, 1).to_pylist()[0]
    assert (hidden["price"], hidden["side"], hidden["trade_id"]) == (223.55, -1, "0:12")


def test_bbo_rows_only_when_level_one_changes(converted):
    bbo = converted.tables[BBO]
    snap = converted.tables[BOOK_SNAPSHOT]
    assert bbo.schema.equals(schema_for(BBO))
    assert 0 < bbo.num_rows < snap.num_rows
    quotes = np.column_stack([bbo.column(c).to_numpy() for c in
                              ("bid_price", "bid_size", "ask_price", "ask_size")])
    assert (np.abs(np.diff(quotes, axis=0)).sum(axis=1) > 0).all()


def test_deltas_replay_to_every_snapshot(converted):
    deltas = converted.tables[BOOK_DELTA]
    assert deltas.schema.equals(schema_for(BOOK_DELTA))
    rows = deltas.to_pylist()
    assert rows[0]["flags"] == rows[1]["flags"] == FLAG_SNAPSHOT
    assert all(r["flags"] == 0 for r in rows[2:])
    book: dict[int, dict[float, float]] = {1: {}, -1: {}}
    after: dict[int, tuple] = {}
    for row in rows:
        levels = book[row["side"]]
        if row["size"] == 0:
            levels.pop(row["price"])
        else:
            levels[row["price"]] = row["size"]
        bid, ask = max(book[1], default=None), min(book[-1], default=None)
        after[row["seq"]] = (bid, book[1].get(bid), ask, book[-1].get(ask))
    for snap in converted.tables[BOOK_SNAPSHOT].to_pylist():
        expected = (snap["bid_price"][0], snap["bid_size"][0], snap["ask_price"][0],
                    snap["ask_size"][0])
        assert after.get(snap["seq"], expected) == expected
    assert len(after) == converted.tables[BBO].num_rows


def test_dummy_prices_become_nan(tmp_path, folder):
    messages, books = lines_of(folder, "message"), lines_of(folder, "orderbook")
    ask, ask_size, bid, bid_size = books[-2].split(",")
    messages[-1] = f"{messages[-1].split(',')[0]},3,1,{ask_size},{ask},-1"  # empties the asks
    books[-1] = f"9999999999,0,{bid},{bid_size}"
    converted = lobster.read(write_pair(tmp_path, messages, books), progress=False)[0]
    row = converted.tables[BOOK_SNAPSHOT].slice(59, 1).to_pylist()[0]
    assert np.isnan(row["ask_price"][0]) and np.isnan(row["ask_size"][0])
    deltas = converted.tables[BOOK_DELTA].to_pandas()
    assert ((deltas["seq"] == 60) & (deltas["side"] == -1) & (deltas["size"] == 0)).any()


def test_a_dummy_price_with_a_size_is_a_price(tmp_path, folder):
    messages, books = lines_of(folder, "message"), lines_of(folder, "orderbook")
    books[10] = "9999999999,100," + books[10].split(",", 2)[2]
    with pytest.raises(DataError, match=r"orderbook_1\.subset\.csv:11: the order book row "
                                        "does not follow"):
        lobster.read(write_pair(tmp_path, messages, books), progress=False)


def test_file_names_and_pairs(tmp_path, folder):
    (tmp_path / "x.csv").write_text("1,2\n")
    with pytest.raises(ConfigError, match="not a LOBSTER file name"):
        lobster.read([folder / BASE.format("message"), tmp_path / "x.csv"], progress=False)
    with pytest.raises(ConfigError, match="has no matching orderbook file"):
        lobster.read([folder / BASE.format("message")], progress=False)


def test_overrides(folder):
    converted = lobster.read(folder, exchange="xnas", symbol="AMZN.O", depth=1,
                             progress=False)[0]
    assert (converted.exchange, converted.symbol) == ("xnas", "AMZN.O")


def test_mismatched_row_counts(tmp_path, folder):
    path = write_pair(tmp_path, lines_of(folder, "message"), lines_of(folder, "orderbook")[:59])
    with pytest.raises(DataError, match=r"60 messages but .* has 59 rows"):
        lobster.read(path, repair=True, progress=False)


def test_malformed_message_row(tmp_path, folder):
    messages, books = lines_of(folder, "message"), lines_of(folder, "orderbook")
    messages[7] += ",0"
    books[20] = books[20].replace(",", ",x", 1)
    path = write_pair(tmp_path, messages, books)
    with pytest.raises(DataError, match=r"message_1\.subset\.csv:8: malformed row"):
        lobster.read(path, progress=False)
    converted = lobster.read(path, repair=True, progress=False)[0]
    assert converted.tables[BOOK_SNAPSHOT].num_rows == 58
    assert converted.repairs.counts["malformed"] == 2  # one per file
    assert 8 not in converted.tables[BOOK_SNAPSHOT].column("seq").to_pylist()


def test_decreasing_time_is_clamped_in_file_order(tmp_path, folder):
    messages, books = lines_of(folder, "message"), lines_of(folder, "orderbook")
    time, rest = messages[31].split(",", 1)
    messages[31] = f"{float(time) - 0.5:.9f},{rest}"  # half a second before line 31
    path = write_pair(tmp_path, messages, books)
    with pytest.raises(UnsortedData, match=r"message_1\.subset\.csv:32: timestamp"):
        lobster.read(path, progress=False)
    converted = lobster.read(path, repair=True, progress=False)[0]
    snapshots = converted.tables[BOOK_SNAPSHOT]
    assert snapshots.column("seq").to_pylist()[30:33] == [31, 32, 33]
    assert snapshots["local_ts"][31] == snapshots["local_ts"][30]
    assert converted.repairs.counts["unsorted"] == 1


def test_rows_swapped_with_their_books_are_refused(tmp_path, folder):
    messages, books = lines_of(folder, "message"), lines_of(folder, "orderbook")
    messages[30], messages[31] = messages[31], messages[30]
    books[30], books[31] = books[31], books[30]
    path = write_pair(tmp_path, messages, books)
    with pytest.raises(UnsortedData, match=r"message_1\.subset\.csv:32: timestamp"):
        lobster.read(path, progress=False)
    with pytest.raises(DataError, match=r"orderbook_1\.subset\.csv:31: .* shifted against"):
        lobster.read(path, repair=True, progress=False)


def test_nan_price_and_bad_event_type(tmp_path, folder):
    messages, books = lines_of(folder, "message"), lines_of(folder, "orderbook")
    fields = messages[13].split(",")
    fields[4] = "NaN"
    messages[13] = ",".join(fields)
    fields = messages[40].split(",")
    fields[1] = "9"  # no such event type
    messages[40] = ",".join(fields)
    path = write_pair(tmp_path, messages, books)
    with pytest.raises(DataError, match=r"message_1\.subset\.csv:14: non-finite price"):
        lobster.read(path, progress=False)
    converted = lobster.read(path, repair=True, progress=False)[0]
    assert set(converted.repairs.counts) == {"non_finite", "bad_message"}
    assert converted.tables[TRADES].num_rows == 15  # the execution on line 14 is gone


def test_crossed_book(tmp_path, folder):
    messages, books = lines_of(folder, "message"), lines_of(folder, "orderbook")
    books[25] = "2230000,100,2235300,400"
    path = write_pair(tmp_path, messages, books)
    with pytest.raises(CrossedBook, match=r"message_1\.subset\.csv:26: crossed book"):
        lobster.read(path, progress=False)
    converted = lobster.read(path, repair=True, progress=False)[0]
    assert converted.tables[BOOK_SNAPSHOT].num_rows == 59
    assert converted.tables[TRADES].num_rows == 16  # messages themselves are kept
    assert converted.repairs.counts["crossed"] == 1


@pytest.mark.shared_data
def test_full_sample(shared_data):
    converted = lobster.read(shared_data / "lobster-amzn-20120621", progress=False)[0]
    assert converted.stats["messages"] == 32315
    assert (converted.stats["executions_visible"], converted.stats["executions_hidden"]) == (
        5437, 1381)
    trades = converted.tables[TRADES]
    assert trades.num_rows == 5437 + 1381
    snap = converted.tables[BOOK_SNAPSHOT]
    prices = np.concatenate([snap.column(c).combine_chunks().flatten().to_numpy()
                             for c in ("bid_price", "ask_price")])
    assert (prices.min(), prices.max()) == (220.51, 223.67)
    last = snap.column("local_ts")[-1].as_py()
    assert ns(2012, 6, 21, 19, 59, 59, 0) < last < ns(2012, 6, 21, 20, 0, 0, 0)
    assert converted.repairs.total == 0
    # distinct hidden prints in one nanosecond stay distinct rows
    assert not pl.from_arrow(trades).is_duplicated().any()


@pytest.mark.parametrize("time", ["44571091351.892", "0", "-44571.09"])
def test_a_time_outside_the_files_range_is_implausible(tmp_path, folder, time):
    messages, books = lines_of(folder, "message"), lines_of(folder, "orderbook")
    messages[13] = time + "," + messages[13].split(",", 1)[1]
    path = write_pair(tmp_path, messages, books)
    with pytest.raises(DataError, match=r"message_1\.subset\.csv:14: time .* outside the "
                                        "file's range 44553..57600"):
        lobster.read(path, progress=False)
    converted = lobster.read(path, repair=True, progress=False)[0]
    assert converted.repairs.counts == {"implausible_time": 1}
    assert converted.tables[BOOK_SNAPSHOT].num_rows == 59


def test_a_message_an_hour_late_inside_the_range_is_a_time_outlier(tmp_path, folder):
    messages, books = lines_of(folder, "message"), lines_of(folder, "orderbook")
    time, rest = messages[13].split(",", 1)
    messages[13] = f"{float(time) + 3600:.9f},{rest}"
    path = write_pair(tmp_path, messages, books)
    with pytest.raises(DataError, match=r"message_1\.subset\.csv:14: timestamp .* both"):
        lobster.read(path, progress=False)


def test_an_order_book_price_of_1e12_is_no_empty_level(tmp_path, folder):
    messages, books = lines_of(folder, "message"), lines_of(folder, "orderbook")
    books[20] = "1000000000000," + books[20].split(",", 1)[1]
    with pytest.raises(DataError, match=r"orderbook_1\.subset\.csv:21: the order book row "):
        lobster.read(write_pair(tmp_path, messages, books), progress=False)


def test_order_book_rows_shifted_by_one_line_are_refused(tmp_path, folder):
    messages, books = lines_of(folder, "message"), lines_of(folder, "orderbook")
    path = write_pair(tmp_path, messages, [*books[1:], books[-1]])
    for repair in (False, True):
        with pytest.raises(DataError, match=r"orderbook_1\.subset\.csv:\d+: the order book "
                                            "row does not follow .* shifted against"):
            lobster.read(path, repair=repair, progress=False)


def test_one_wrong_order_book_row_is_dropped_with_its_neighbour(tmp_path, folder):
    messages, books = lines_of(folder, "message"), lines_of(folder, "orderbook")
    ask, ask_size, rest = books[8].split(",", 2)
    books[8] = f"{ask},{int(ask_size) + 7},{rest}"  # a size no message explains
    path = write_pair(tmp_path, messages, books)
    with pytest.raises(DataError, match=r"orderbook_1\.subset\.csv:9: the order book row "
                                        r"does not follow .* \(type 1,"):
        lobster.read(path, progress=False)
    converted = lobster.read(path, repair=True, progress=False)[0]
    assert converted.repairs.counts == {"misaligned": 1}
    seq = converted.tables[BOOK_SNAPSHOT]["seq"].to_pylist()
    assert seq[6:9] == [7, 11, 12]  # rows 8, 9 and 10 (either may be the wrong one) dropped


def test_a_message_whose_size_its_book_row_does_not_show(tmp_path, folder):
    messages, books = lines_of(folder, "message"), lines_of(folder, "orderbook")
    fields = messages[13].split(",")  # 44571.091351892,4,148356933,100,2235300,1
    fields[3] = "70"
    messages[13] = ",".join(fields)
    path = write_pair(tmp_path, messages, books)
    with pytest.raises(DataError, match=r"orderbook_1\.subset\.csv:14: .* size 70.0"):
        lobster.read(path, progress=False)
    converted = lobster.read(path, repair=True, progress=False)[0]
    assert 148356933 not in [int(t) for t in converted.tables[TRADES]["trade_id"].to_pylist()
                             if ":" not in t]
