import math

import numpy as np
import pytest

from makerlab.core.lob import LOB, walk_notional
from makerlab.errors import ConfigError, CrossedBook, DataError, UnsortedData

BIDS = [[100.0, 1.0], [99.0, 2.0], [98.0, 3.0]]  # notionals 100, 198, 294
ASKS = [[101.0, 1.0], [102.0, 2.0], [103.0, 3.0]]  # notionals 101, 204, 309


@pytest.fixture
def book():
    return LOB(1_000, BIDS, ASKS, depth=10)


def make_history(mids, depth=3):
    """A buffered book whose states have the given mids, one second apart."""
    lob = LOB(depth=depth, buffer_size=100)
    for i, mid in enumerate(mids):
        lob.update(1_000 * (i + 1), [[mid - 0.5, 1.0]], [[mid + 0.5, 1.0]], is_snapshot=True)
    return lob


# -- top of book ----------------------------------------------------------------------------


def test_top_of_book(book):
    assert (book.get_bid(), book.get_bid_sz(), book.get_ask(), book.get_ask_sz()) == (
        100.0, 1.0, 101.0, 1.0)
    assert book.get_mid() == 100.5
    assert book.get_spread() == 1.0
    assert book.get_spread(x=True) == pytest.approx(1 / 100.5)
    assert book.get_bids()[1, 0] == 99.0
    assert book.get_asks()[1, 0] == 102.0


def test_levels_are_read_only(book):
    with pytest.raises(ValueError, match="read-only"):
        book.get_bids()[0, 1] = 5.0


def test_empty_and_one_sided_books_give_nan():
    empty = LOB()
    one_sided = LOB(1, bids=BIDS)
    for lob in (empty, one_sided):
        assert math.isnan(lob.get_mid())
        assert math.isnan(lob.get_vamp(500))
        assert math.isnan(lob.get_impact_price(1, 500))
        assert math.isnan(lob.get_impact_worst(1, 2))
        assert math.isnan(lob.get_ask())
    assert one_sided.get_impact_price(-1, 100) == 100.0
    assert empty.get_cumulative_size(1, 1e9) == (0.0, 0.0)


# -- VAMP and impact (hand-computed) --------------------------------------------------------


def test_vamp_zero_notional_is_mid(book):
    assert book.get_vamp() == book.get_mid() == 100.5


def test_vamp_on_three_level_book(book):
    # 400 of quote on the bids: 100 + 198 whole, then 102 of the 98 level: 102/98 units.
    bid = 400 / (1 + 2 + 102 / 98)
    # 400 on the asks: 101 + 204 whole, then 95 of the 103 level.
    ask = 400 / (1 + 2 + 95 / 103)
    assert bid == pytest.approx(39_200 / 396)
    assert book.get_vamp(400) == pytest.approx((bid + ask) / 2)


def test_vamp_takes_the_whole_side_when_short_of_notional(book):
    assert book.get_vamp(10_000) == pytest.approx((592 / 6 + 614 / 6) / 2)


def test_vamp_per_side_notionals(book):
    expected = (100.0 + 400 / (1 + 2 + 95 / 103)) / 2  # 50 fits in the best bid
    assert book.get_vamp(bid_notional=50, ask_notional=400) == pytest.approx(expected)
    assert book.get_vamp(400, bid_notional=50) == pytest.approx(expected)


def test_vamp_can_leave_the_touch_on_a_lopsided_book():
    lob = LOB(1, [[100.0, 0.01], [50.0, 100.0]], [[101.0, 100.0]])
    assert lob.get_vamp(1_000) < lob.get_bid()


def test_negative_notional_is_rejected(book):
    with pytest.raises(ConfigError, match="notional"):
        book.get_vamp(-1)


def test_impact_price(book):
    assert book.get_impact_price(1, 101) == 101.0
    assert book.get_impact_price(-1, 150) == pytest.approx(150 / (1 + 50 / 99))
    assert book.get_impact_spread(0) == 1.0
    spread = book.get_impact_price(1, 400) - book.get_impact_price(-1, 400)
    assert book.get_impact_spread(400) == pytest.approx(spread)
    assert book.get_impact_spread(400, x=True) == pytest.approx(spread / 100.5)
    with pytest.raises(ConfigError, match="dir"):
        book.get_impact_price(0, 100)


def test_impact_worst(book):
    assert book.get_impact_worst(1, 1) == 101.0
    assert book.get_impact_worst(1, 1.5) == 102.0
    assert book.get_impact_worst(-1, 3) == 99.0
    assert book.get_impact_worst(-1, 3.5) == 98.0
    assert book.get_impact_worst(1, 100) == 103.0
    assert book.get_impact_worst(1, 0) == 101.0


def test_cumulative_size(book):
    assert book.get_cumulative_size(1, 102) == (3.0, 305.0)
    assert book.get_cumulative_size(-1, 99) == (3.0, 298.0)
    assert book.get_cumulative_size(1, 100.5) == (0.0, 0.0)
    assert book.get_cumulative_size(-1, 97) == (6.0, 592.0)


def test_walk_notional_exact_level_boundary():
    levels = np.array(ASKS)
    assert walk_notional(levels, 305) == pytest.approx(305 / 3)


# -- updates --------------------------------------------------------------------------------


def test_delta_encoding(book):
    book.update(2_000, [[100.0, 0.0], [99.5, 4.0], [97.0, 0.0]], [[102.0, 5.0]], False)
    np.testing.assert_array_equal(book.get_bids(), [[99.5, 4.0], [99.0, 2.0], [98.0, 3.0]])
    np.testing.assert_array_equal(book.get_asks(), [[101.0, 1.0], [102.0, 5.0], [103.0, 3.0]])
    assert book.timestamp == 2_000


def test_delta_repeated_price_last_row_wins(book):
    book.update(2_000, [[99.0, 7.0], [99.0, 0.0], [99.0, 8.0]], None, False)
    assert book.get_bids()[1].tolist() == [99.0, 8.0]


def test_unsorted_snapshot_needs_is_sorted_false():
    lob = LOB()
    with pytest.raises(DataError, match="is_sorted=False"):
        lob.update(1, BIDS[::-1], ASKS, is_snapshot=True)
    lob.update(1, BIDS[::-1], ASKS[::-1], is_snapshot=True, is_sorted=False)
    np.testing.assert_array_equal(lob.get_bids(), BIDS)
    np.testing.assert_array_equal(lob.get_asks(), ASKS)


def test_snapshot_drops_zero_sizes_and_nan_padding():
    lob = LOB()
    lob.update(1, [[100.0, 1.0], [99.0, 0.0], [np.nan, np.nan]], ASKS, is_snapshot=True)
    np.testing.assert_array_equal(lob.get_bids(), [[100.0, 1.0]])


@pytest.mark.parametrize("bad", [[[100.0, -1.0]], [[0.0, 1.0]], [[100.0, np.inf]], [1, 2, 3]])
def test_malformed_levels_raise(book, bad):
    with pytest.raises(DataError):
        book.update(2_000, bad, None, is_snapshot=False)


def test_crossed_update_raises_and_leaves_book_unchanged(book):
    before = book.as_tuple()
    with pytest.raises(CrossedBook):
        book.update(2_000, [[101.0, 1.0]], None, is_snapshot=False)
    with pytest.raises(CrossedBook):
        book.update(2_000, [[101.0, 1.0]], [[101.0, 1.0]], is_snapshot=True)
    assert book.timestamp == before[0]
    np.testing.assert_array_equal(book.get_bids(), before[1])


def test_crossed_book_accepted_without_validation():
    lob = LOB(validate=False)
    lob.update(1, [[101.0, 1.0]], [[100.0, 1.0]], is_snapshot=True)
    assert lob.get_spread() == -1.0


def test_older_update_raises(book):
    with pytest.raises(UnsortedData):
        book.update(999, None, None, is_snapshot=False)


def test_bad_constructor_arguments():
    with pytest.raises(ConfigError):
        LOB(depth=0)
    with pytest.raises(ConfigError):
        LOB(buffer_size=-1)


def test_depth_truncates_visible_book():
    lob = LOB(1, BIDS, ASKS, depth=2)
    assert lob.get_bids().shape == (2, 2)
    assert lob.get_vamp(10_000) == pytest.approx((298 / 3 + 305 / 3) / 2)


def test_without_shadow_depth_a_dropped_level_is_lost():
    lob = LOB(1, BIDS, ASKS, depth=2)
    lob.update(2, [[100.0, 0.0]], None, is_snapshot=False)
    np.testing.assert_array_equal(lob.get_bids(), [[99.0, 2.0]])


def test_shadow_depth_keeps_levels_beyond_depth():
    lob = LOB(1, BIDS, ASKS, depth=2, apply_shadow_depth=True)
    assert lob.safe_depth is None
    assert lob.get_bids().shape == (2, 2)
    lob.update(2, [[100.0, 0.0]], None, is_snapshot=False)
    np.testing.assert_array_equal(lob.get_bids(), [[99.0, 2.0], [98.0, 3.0]])


# -- history --------------------------------------------------------------------------------


def test_history_buffers_and_samples():
    lob = make_history([100.0, 101.0, 102.0, 103.0], depth=3)
    assert lob.buffer_len() == 4
    np.testing.assert_array_equal(lob.get_ts_buffer(), [1_000, 2_000, 3_000, 4_000])
    np.testing.assert_array_equal(lob.get_mids_buffer(), [100.0, 101.0, 102.0, 103.0])
    bids = lob.get_bids_buffer()
    assert bids.shape == (4, 3, 2)
    assert bids[0, 0].tolist() == [99.5, 1.0]
    assert np.isnan(bids[0, 1:]).all()
    np.testing.assert_array_equal(lob.get_mids_sample(n=2), [102.0, 103.0])
    np.testing.assert_array_equal(lob.get_mids_sample(tau=1_000), [102.0, 103.0])
    np.testing.assert_array_equal(lob.get_mids_sample(T=2_500), [100.0, 101.0])
    assert lob.get_asks_sample(n=1)[0, 0].tolist() == [103.5, 1.0]
    assert lob.sample_len(tau=1_500, T=3_000) == 2
    lob.clear_buffer()
    assert lob.buffer_len() == 0
    assert lob.get_mid() == 103.0


def test_no_history_without_buffer_size(book):
    assert book.buffer_len() == 0
    assert book.get_bids_buffer().shape == (0, 10, 2)
    assert book.buffer_as_list() == []
    assert math.isnan(book.get_vol())


def test_buffer_as_list_round_trips_through_snapshots():
    lob = LOB(depth=3, buffer_size=10)
    lob.update(1_000, BIDS, ASKS, is_snapshot=True)
    lob.update(2_000, [[100.0, 0.0]], [[101.0, 2.5]], is_snapshot=False)
    records = lob.buffer_as_list()
    assert [sorted(r) for r in records] == [["a", "b", "ts"]] * 2
    assert records[1]["ts"] == 2_000
    np.testing.assert_array_equal(records[1]["b"], BIDS[1:])
    replayed = LOB(depth=3, buffer_size=10)
    for record in records:
        replayed.update(record["ts"], record["b"], record["a"], is_snapshot=True)
    np.testing.assert_array_equal(replayed.get_bids_buffer(), lob.get_bids_buffer())
    np.testing.assert_array_equal(replayed.get_asks_buffer(), lob.get_asks_buffer())


def test_as_dict_and_tuple(book):
    state = book.as_dict()
    assert sorted(state) == ["asks", "bids", "ts"]
    assert state["ts"] == 1_000
    ts, bids, _ = book.as_tuple()
    assert ts == 1_000
    np.testing.assert_array_equal(bids, BIDS)


def test_aggregator_buckets():
    lob = make_history([100.0, 102.0, 99.0, 101.0, 105.0])  # ts 1000..5000
    buckets = lob.aggregator(interval=2_000)
    assert [b["t"] for b in buckets] == [0, 2_000, 4_000]
    assert [b["n"] for b in buckets] == [1, 2, 2]
    assert [b["ts"] for b in buckets] == [1_000, 3_000, 5_000]
    second = buckets[1]
    assert (second["o"], second["h"], second["l"], second["c"]) == (102.0, 102.0, 99.0, 99.0)
    np.testing.assert_array_equal(second["b"], [[98.5, 1.0]])
    with pytest.raises(ConfigError):
        lob.aggregator(0)


# -- volatility -----------------------------------------------------------------------------


def test_vol_ignores_zero_changes():
    lob = make_history([100.0, 100.0, 101.0, 100.5, 100.5, 102.0])  # changes 1, -0.5, 1.5
    assert lob.get_vol() == pytest.approx(math.sqrt((1 + 0.25 + 2.25) / 3))
    assert lob.get_vol(n=4) == pytest.approx(math.sqrt((0.25 + 2.25) / 2))
    weights = np.exp([-1.0, -0.5, 0.0])  # oldest change weighs exp(-1), newest 1
    expected = math.sqrt(np.dot(weights, [1, 0.25, 2.25]) / weights.sum())
    assert lob.get_vol(exp=True) == pytest.approx(expected)


def test_vol_relative_uses_log_mid_changes():
    lob = make_history([100.0, 110.0])
    assert lob.get_vol(x=True) == pytest.approx(math.log(1.1))
    assert math.isnan(make_history([100.0, 100.0]).get_vol())
