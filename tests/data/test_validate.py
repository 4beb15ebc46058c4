import numpy as np
import pyarrow as pa
import pytest

from makerlab.data.convert import Repairs
from makerlab.data.schema import (
    BBO_SCHEMA,
    BOOK_DELTA_SCHEMA,
    CLOCK_KEY,
    REPLAYED_CLOCK,
    TRADES_SCHEMA,
)
from makerlab.data.validate import (
    Plausibility,
    book_ticker_agreement,
    check_clock_offset,
    check_finite,
    check_sequence_times,
    check_sorted,
    check_time_outliers,
    check_time_window,
    check_times,
    check_uncrossed,
    check_values,
    to_ns,
    validate_table,
)
from makerlab.errors import CrossedBook, DataError, UnsortedData


def test_check_sorted_names_the_first_backward_row():
    ts = np.array([1, 2, 5, 4, 6, 3])
    with pytest.raises(UnsortedData, match=r"capture\.csv:5: timestamp 4 goes back from 5"):
        check_sorted(ts, source="capture.csv", first_line=2)


def test_check_sorted_repair_sorts_stably_and_counts():
    repairs = Repairs()
    order = check_sorted(np.array([1, 3, 2, 3]), source="f", repairs=repairs)
    assert order.tolist() == [0, 2, 1, 3]
    assert repairs.counts["unsorted"] == 1


def test_check_finite_reports_column_and_line():
    with pytest.raises(DataError, match=r"f:3: non-finite price"):
        check_finite({"price": np.array([1.0, 2.0, np.nan]), "size": np.ones(3)}, source="f")
    repairs = Repairs()
    keep = check_finite({"price": np.array([1.0, np.inf])}, source="f", repairs=repairs)
    assert keep.tolist() == [True, False]
    assert repairs.total == 1


def test_check_uncrossed_allows_empty_sides_and_optionally_locked():
    bid = np.array([10.0, np.nan, 10.0])
    ask = np.array([11.0, 9.0, 10.0])
    with pytest.raises(CrossedBook, match=r"f:3: crossed book"):
        check_uncrossed(bid, ask, source="f")
    assert check_uncrossed(bid, ask, source="f", allow_locked=True).all()


def test_check_uncrossed_with_explicit_line_numbers():
    with pytest.raises(CrossedBook, match=r"f:42:"):
        check_uncrossed(np.array([2.0]), np.array([1.0]), source="f", lines=np.array([42]))


# --------------------------------------------------------------------------- plausibility

NOW = 1_723_161_255_000_000_000  # 2024-08-09 in ns
S = 10**9


def test_prices_must_be_positive_and_at_most_max_price():
    limits = Plausibility(max_price=1e6)
    prices = np.array([61800.2, -61800.2, 0.0, 1e7, np.inf, np.nan])
    keep = check_values({"price": prices}, {}, source="f", repairs=Repairs(), limits=limits)
    assert keep.tolist() == [True, False, False, False, False, True]  # NaN: an absent level
    with pytest.raises(DataError, match=r"f:2: implausible price -61800.2"):
        check_values({"price": prices}, {}, source="f", limits=limits)


def test_sizes_must_be_positive_and_zero_only_deletes_a_level():
    sizes = np.array([1.0, 0.0, 0.0, 1e20])
    is_delta = np.array([True, True, False, True])
    repairs = Repairs()
    keep = check_values({}, {"size": sizes}, source="f", repairs=repairs, zero_size=is_delta)
    assert keep.tolist() == [True, True, False, False]
    assert repairs.counts == {"implausible_value": 1}
    levels = np.array([[1.0, 2.0], [1.0, 0.0]])  # book rows: every level judged
    assert check_values({}, {"size": levels}, source="f", repairs=Repairs()).tolist() == [
        True, False]


def test_timestamps_outside_the_window_are_implausible():
    late = NOW * 1000 // 1000 + 400 * 86_400 * S * 10  # years ahead
    ts = np.array([NOW, NOW * 1000, 0, -NOW, 1_200_000_000 * S, late])
    keep = check_time_window({"local_ts": ts}, source="f", repairs=Repairs())
    assert keep.tolist() == [True, False, False, False, False, False]
    with pytest.raises(DataError, match=r"f:3: implausible local_ts 0 ns: outside 2009"):
        check_time_window({"local_ts": ts[[0, 0, 2]]}, source="f")


def test_the_time_window_is_configurable():
    ts = np.array([1_200_000_000 * S])  # 2008
    limits = Plausibility(earliest_ns=1_000_000_000 * S)
    assert check_time_window({"t": ts}, source="f", limits=limits).all()


def test_exchange_and_local_clocks_at_most_max_clock_offset_apart():
    local = np.array([NOW, NOW, NOW])
    exchange = np.array([NOW - 2 * S, NOW + 3600 * S, NOW - 301 * S])
    with pytest.raises(DataError, match=r"f:2: exchange_ts .* 3600 s apart \(at most 300 s\)"):
        check_clock_offset(exchange, local, source="f")
    assert check_clock_offset(exchange, local, source="f", repairs=Repairs()).tolist() == [
        True, False, False]


def test_a_row_far_from_both_neighbours_is_a_time_outlier():
    ts = NOW + np.array([0, 1, 3600 * S, 2, 3, -3600 * S, 4, 5])
    with pytest.raises(DataError, match=r"f:3: timestamp .* away from both of its neighbours"):
        check_time_outliers(ts, source="f")
    repairs = Repairs()
    keep = check_time_outliers(ts, source="f", repairs=repairs)
    assert keep.tolist() == [True, True, False, True, True, False, True, True]
    assert repairs.counts == {"time_outlier": 1}


def test_a_gap_or_a_run_of_equal_times_is_no_outlier():
    gap = NOW + np.array([0, 1, 7200 * S, 7200 * S + 1])  # the recorder paused
    assert check_time_outliers(gap, source="f").all()
    message = NOW + np.array([0, 3600 * S, 3600 * S, 1])  # a whole message an hour late
    assert check_time_outliers(message, source="f", repairs=Repairs()).tolist() == [
        True, False, False, True]
    edges = NOW + np.array([3600 * S, 0, 1, 2, -3600 * S])  # first late, last early
    assert check_time_outliers(edges, source="f", repairs=Repairs()).tolist() == [
        False, True, True, True, False]


def test_check_times_counts_each_bad_row_once_by_its_first_fault():
    local = NOW + np.array([0, 1, 2, 3])
    exchange = np.array([NOW, 0, NOW + 3600 * S, NOW + 3])  # implausible, then offset
    repairs = Repairs()
    keep = check_times(exchange, local, source="f", repairs=repairs)
    assert keep.tolist() == [True, False, False, True]
    assert repairs.counts == {"implausible_time": 1, "clock_offset": 1}


def test_repair_sorts_only_small_backward_steps():
    small = NOW + np.array([0, 2, 1, 3]) * S // 10
    assert check_sorted(small, source="f", repairs=Repairs(), max_backstep=S).tolist() == [
        0, 2, 1, 3]
    far = NOW + np.array([0, 5, 1, 6]) * S
    with pytest.raises(UnsortedData, match=r"f:3: .* by more than 1000000000 ns"):
        check_sorted(far, source="f", repairs=Repairs(), max_backstep=S)
    limit = NOW + np.array([0, S, 0, 2 * S])  # back by the limit exactly: sorted
    assert check_sorted(limit, source="f", repairs=Repairs(), max_backstep=S).tolist() == [
        0, 2, 1, 3]
    beyond = NOW + np.array([0, S + S // 2 + 1, 0, 2 * S])  # by half as much again: not
    with pytest.raises(UnsortedData, match=r"f:3: .* by more than 1000000000 ns"):
        check_sorted(beyond, source="f", repairs=Repairs(), max_backstep=S)


def test_sequence_times_are_clamped_not_sorted():
    ts = np.array([10, 12, 11, 13])
    with pytest.raises(UnsortedData, match=r"f:3: timestamp 11 goes back from 12"):
        check_sequence_times(ts, source="f")
    repairs = Repairs()
    assert check_sequence_times(ts, source="f", repairs=repairs).tolist() == [10, 12, 12, 13]
    assert repairs.counts == {"unsorted": 1}


def test_rows_from_several_files_name_their_own_file():
    sources = np.array(["a.gz", "a.gz", "b.gz"], dtype=object)
    with pytest.raises(DataError, match=r"^b\.gz:7: implausible price"):
        check_values({"price": np.array([1.0, 2.0, -1.0])}, {}, source=sources,
                     lines=np.array([5, 6, 7]))


def test_to_ns_clamps_what_would_not_fit_instead_of_wrapping():
    ms = np.array([1_723_161_256_298, 1_723_161_256_298_000, -(10**18)])
    ns = to_ns(ms, 10**6)
    assert ns[0] == 1_723_161_256_298_000_000
    far = 4 * 10**18  # year 2096: implausible still, not some plausible time
    assert ns[1] > far and ns[2] < -far
    nan, huge = to_ns(np.array([np.nan, 1e300]), 10**9)
    assert nan < -far and huge > far


def test_book_must_equal_the_latest_ticker_at_or_below_its_update_id():
    book_u = np.array([5, 9, 12, 20])
    book = np.array([[10, 1, 11, 1], [10, 2, 11, 1], [10, 3, 11, 1], [10, 3, 11, 1]], float)
    ticker_u = np.array([8, 4, 11, 13])  # not sorted; 13 was dropped as bad
    ticker = np.array([[10, 2, 11, 1], [10, 1, 11, 1], [10, 3, 11, 1], [9, 9, 9, 9]], float)
    valid = np.array([True, True, True, False])
    compared, agrees, latest = book_ticker_agreement(book_u, book, ticker_u, ticker, valid)
    assert compared.tolist() == [True, True, True, False]  # u=20: the latest is unknown
    assert agrees.tolist() == [True, True, True, False]
    assert latest[:3].tolist() == [1, 0, 2]
    book[1, 1] = 2.5
    assert book_ticker_agreement(book_u, book, ticker_u, ticker, valid)[1].tolist() == [
        True, False, True, False]


def _table(schema, **columns):
    return pa.table(columns, schema=schema)


def test_validate_table_reports_implausible_archive_values():
    trades = _table(TRADES_SCHEMA, exchange_ts=[NOW, NOW], local_ts=[NOW, NOW],
                    price=[61800.2, -61800.2], size=[1.0, 1.0], side=[1, -1],
                    trade_id=["1", "2"])
    with pytest.raises(DataError, match=r"t:2: implausible price -61800.2"):
        validate_table("trades", trades, "t")
    deltas = _table(BOOK_DELTA_SCHEMA, exchange_ts=[NOW], local_ts=[NOW], seq=[1],
                    first_seq=[1], prev_seq=[0], side=[1], price=[10.0], size=[0.0],
                    flags=[0])
    validate_table("book_delta", deltas, "d")  # a delete
    bbo = _table(BBO_SCHEMA, exchange_ts=[0], local_ts=[0], seq=[1], bid_price=[10.0],
                 bid_size=[1.0], ask_price=[11.0], ask_size=[1.0])
    with pytest.raises(DataError, match=r"b:1: implausible exchange_ts 0"):
        validate_table("bbo", bbo, "b")
    levels = pa.list_(pa.float64(), 2)
    snapshot = pa.table({"exchange_ts": [NOW], "local_ts": [NOW], "seq": [1],
                         "bid_price": pa.array([[10.0, 9.0]], levels),
                         "bid_size": pa.array([[1.0, 0.0]], levels),
                         "ask_price": pa.array([[11.0, 12.0]], levels),
                         "ask_size": pa.array([[1.0, 1.0]], levels)})
    with pytest.raises(DataError, match=r"s:1: implausible bid_size \[1.0, 0.0\]"):
        validate_table("book_snapshot", snapshot, "s")


def test_a_replayed_recording_checks_its_clocks_against_their_median_distance():
    years = 2 * 365 * 86_400 * 10**9  # a 2024 capture received two years later
    exchange = [NOW - years + i * 10**9 for i in range(5)]
    local = [NOW + i * 10**9 for i in range(5)]
    trades = _table(TRADES_SCHEMA, exchange_ts=exchange, local_ts=local,
                    price=[100.0] * 5, size=[1.0] * 5, side=[1] * 5,
                    trade_id=[str(i) for i in range(5)])
    with pytest.raises(DataError, match="apart"):
        validate_table("trades", trades, "t")  # untagged: the clocks must be close
    tagged = trades.replace_schema_metadata({CLOCK_KEY: REPLAYED_CLOCK})
    validate_table("trades", tagged, "t")
    shifted = list(exchange)
    shifted[2] += 3_600 * 10**9  # one row's exchange clock an hour late
    bad = _table(TRADES_SCHEMA, exchange_ts=shifted, local_ts=local, price=[100.0] * 5,
                 size=[1.0] * 5, side=[1] * 5, trade_id=[str(i) for i in range(5)])
    with pytest.raises(DataError, match=r"t:3: .*apart"):
        validate_table("trades", bad.replace_schema_metadata({CLOCK_KEY: REPLAYED_CLOCK}),
                       "t")
