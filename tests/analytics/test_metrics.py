"""Every statistic on the hand-made record of conftest.py, computed by hand."""

from __future__ import annotations

import math
from decimal import Decimal

import numpy as np
import pandas as pd
import pytest

from makerlab.analytics import metrics as m
from makerlab.analytics.record import RunRecord

S = 1_000_000_000


@pytest.fixture
def stats(record: RunRecord) -> dict:
    out = m.statistics(record, intervals_ms=[1000, 3000])["X"]
    assert out is not None
    return out


def test_equity_metrics(stats):
    assert stats["#trades"] == 3
    assert stats["terminal"] == 1002 and stats["pnl"] == 2
    assert stats["roi"] == pytest.approx(0.002)
    assert stats["maxdd(%)"] == pytest.approx(100 * 2 / 1001)


def test_sharpe_annualised_by_stamp_cycle(stats):
    r = np.array([1001 / 1000, 999 / 1001, 1002 / 999, 1]) - 1
    expected = r.mean() / r.std(ddof=1) * math.sqrt(365 * 24 * 3600 / 1.0)
    assert stats["sharpe"] == pytest.approx(expected)


def test_sharpe_of_flat_equity_is_nan():
    flat = pd.DataFrame({"equity": [5.0, 5.0, 5.0]})
    assert math.isnan(m.sharpe(flat, 1.0))


def test_volume_metrics(stats):
    assert stats["volume"] == Decimal("402.00")
    assert stats["volume/s($)"] == Decimal("40.20")  # 10 s replayed
    assert stats["turnover"] == pytest.approx(0.402)
    assert stats["fees"] == pytest.approx(0.06)


def test_leverage_and_beta(record, stats):
    inv = m.ticker_inventory(record, "X")
    assert inv["T"].tolist() == [0, 100, 101, -102, -101]
    assert stats["max_leverage"] == pytest.approx(102 / 1002)
    assert stats["max_norm_beta"] == pytest.approx(102 / 1002)
    equity = record.stamps_of("X").set_index("ts").equity
    assert m.max_norm_beta(inv, equity, {"T": 0.5}) == pytest.approx(51 / 1002)


def test_inventory_flips_and_win_ratio(stats):
    # positions 1, -1, 0: one flip; cycle PnL (-99.51 + 203 - 0.02) - 1 * 101 = +2.47 > 0
    assert stats["inventory_flips"] == 1
    assert stats["flip_win_ratio"] == 1.0


def test_losing_flip_cycle(record):
    fills = record.fills.copy()
    fills.loc[1, "price"] = 100.0  # sold at 100 into a 101 mid: cycle PnL -0.53
    assert m.flip_win_ratio(record, fills) == 0.0


def test_interval_quartiles_one_markout_per_distinct_horizon(stats):
    # gaps 2 s and 4 s: quartiles 2.5, 3, 3.5 s floored onto {0, 1, 3} s
    assert stats["interval_quartiles"] == ["1s", "3s", "3s"]
    # 1 s after: m(1.5)=100, m(3.5)=102, m(7.5)=100
    assert stats["1s Markouts"] == pytest.approx(np.mean([0.5 / 99.5, -0.5 / 101.5, 0.5 / 99.5]))
    # 3 s after: m(3.5)=102, m(5.5)=100, m(9.5)=101
    assert stats["3s Markouts"] == pytest.approx(np.mean([2.5 / 99.5, 1.5 / 101.5, 1.5 / 99.5]))
    assert isinstance(stats["3s Markouts"], float)


def test_tick_markout_uses_the_next_book_state(stats):
    # next states: t=1 (100), t=3 (102), t=7 (100)
    expected = np.mean([0.5 / 99.5, -0.5 / 101.5, 0.5 / 99.5])
    assert stats["Tick Markouts"] == pytest.approx(expected)


def test_spread_capture_and_adverse_selection(record, stats):
    capture = np.mean([0.5 / 99.5, 0.5 / 101.5, -0.5 / 99.5]) * 1e4
    assert stats["spread_capture(bps)"] == pytest.approx(capture)
    # 1 s mid moves in our favour: 0, -1 (sold, mid rose 101 -> 102), +1 (bought 99 -> 100)
    adverse = -np.mean([0.0, -1 / 101.5, 1 / 99.5]) * 1e4
    assert stats["adverse_selection_1s(bps)"] == pytest.approx(adverse)
    markout_1s = m.fill_markouts(record, record.fills_of("X"), 1000).mean() * 1e4
    assert markout_1s == pytest.approx(capture - adverse)


def test_fill_ratio_maker_share_time_in_queue(stats):
    # submitted 1 @ 99.5 + 4 @ 101.5 + market 1 @ mid(6.5 s) = 99 -> 604.5
    assert stats["fill_ratio"] == pytest.approx(402 / 604.5)
    assert stats["maker_share"] == pytest.approx(302.5 / 402)
    assert stats["time_in_queue(s)"] == pytest.approx(np.median([0.3, 1.0]))


def test_inventory_half_life():
    stamps = pd.DataFrame({"inventory": 100 * 0.5 ** np.arange(8)})
    assert m.inventory_half_life_s(stamps, 2.0) == pytest.approx(2.0)
    assert m.inventory_half_life_s(pd.DataFrame({"inventory": [1.0, 1.0, 1.0]}), 1) == math.inf
    assert math.isnan(m.inventory_half_life_s(pd.DataFrame({"inventory": [0.0, 0.0]}), 1))


def test_half_life_of_alternating_inventory_is_zero(stats):
    assert stats["inventory_half_life(s)"] == 0.0  # stamps 0, 100, -101, 0, 0


def test_exchange_without_fills_is_none(record):
    empty = RunRecord.build(stamps=record.stamps, mids=record.mids, config=record.config)
    assert m.statistics(empty) == {"X": None}


def test_markout_table_columns(record):
    table = m.markout_table(record, record.fills_of(), [1000, 6000, 500])
    assert list(table.columns) == ["Tick", "1s", "6s", "0.5s"]
    assert len(table) == 3 and np.isnan(table["6s"].iloc[2])  # 12.5 s: past the data


# -- how far to trust the numbers: sample warnings and excluded fills --------------------

def test_fills_without_a_mid_at_the_horizon_are_counted_per_key(stats):
    # mids end at 10 s: fills at 0.5, 2.5 and 6.5 s have no mid 10 s or 60 s later
    assert stats["fills_excluded"] == {"adverse_selection_10s(bps)": 3,
                                       "adverse_selection_60s(bps)": 3}
    assert math.isnan(stats["adverse_selection_60s(bps)"])


def test_every_warning_names_its_key_and_says_why(stats):
    sharpe, *excluded = stats["warnings"]
    assert sharpe == ("sharpe: annualised from 4 s of equity stamps with 3 non-zero returns "
                      "(of 4); under a day or 30 non-zero returns it says little about a year")
    assert [w.partition(": ")[0] for w in excluded] == ["adverse_selection_10s(bps)",
                                                        "adverse_selection_60s(bps)"]
    assert excluded[0].startswith("adverse_selection_10s(bps): 3 of 3 fills left out")
    assert "markout = spread capture - adverse selection holds fill by fill" in excluded[0]


def test_the_markout_identity_holds_over_the_fills_a_mean_keeps(record):
    """A fill at 9.5 s has no mid 1 s later: it leaves the 1 s adverse selection and markout
    (and is counted), so they no longer add up with spread capture over all fills, but do
    over the fills they keep."""
    late = record.fills.iloc[[0]].assign(ts=int(9.5 * S), price=100.5, dir=-1, cloid="e")
    fills = pd.concat([record.fills, late], ignore_index=True)
    rec = RunRecord.build(fills, record.actions, record.stamps, mids=record.mids,
                          config=record.config)
    stats = m.statistics(rec, intervals_ms=[1000])["X"]
    assert stats["fills_excluded"]["adverse_selection_1s(bps)"] == 1
    assert any(w.startswith("adverse_selection_1s(bps): 1 of 4 fills") for w in stats["warnings"])
    kept = rec.fills_of("X").iloc[:3]
    markout = m.fill_markouts(rec, kept, 1000).mean() * 1e4
    assert stats["adverse_selection_1s(bps)"] == pytest.approx(
        m.spread_capture_bps(rec, kept) - markout)
    assert stats["spread_capture(bps)"] != pytest.approx(m.spread_capture_bps(rec, kept))


def test_a_sharpe_note_needs_a_short_span_or_few_non_zero_returns():
    day = 24 * 3600
    rng = np.random.default_rng(0)
    stamps = pd.DataFrame({"ts": np.arange(0, day + 60, 60) * S,
                           "equity": 1000 + np.cumsum(rng.normal(0, 1, day // 60 + 1))})
    assert m.sharpe_note(stamps, 60.0) is None
    assert m.sharpe_note(stamps.iloc[:1000], 60.0).startswith("annualised from 16.6 h")
    few = stamps.assign(equity=np.r_[1000.0, np.full(len(stamps) - 1, 1001.0)])
    assert m.sharpe_note(few, 60.0).startswith(
        "annualised from 24.0 h of equity stamps with 1 non-zero returns (of 1440)")
    assert m.sharpe_note(stamps.assign(equity=1000.0), 60.0) is None  # flat: sharpe is NaN
    assert m.sample_warnings(stamps, 60.0, {}, 5) == []


def test_reports_print_each_note_next_to_its_number():
    from makerlab.research.report._format import _dict_rows

    rows = {r.key: r.text for r in _dict_rows({"sharpe": 99.0, "pnl": 1.0,
                                               "warnings": ["sharpe: a short sample"]})}
    assert rows["sharpe"] == "99  \u26a0 a short sample" and rows["pnl"] == "1"
