"""Declarations, forward prices, the fair-price table and flow features, by hand."""

from __future__ import annotations

import numpy as np
import pytest

from makerlab.analytics import research as r


def test_df_declarations_filters(record):
    df = r.df_declarations(record, key="good")
    assert list(df.columns) == ["ts", "key", "value", "exc", "ticker", "group"]
    assert df.ts.tolist() == [500, 9500] and df.value.tolist() == [100.0, 101.0]
    assert len(r.df_declarations(record, group="fair", exc="X", ticker="T")) == 4
    assert r.df_declarations(record, exc="Y").empty


def test_augment_forward_prices_on_the_mid_series(record):
    decl = r.df_declarations(record, key="good")
    out = r.augment_forward_prices(record, decl, [0, 1, 2], dropna=False)
    # 0.5 s: m(0.5)=100, m(1.5)=100, m(2.5)=101; 9.5 s: m(9.5)=101, then past the data
    assert out[["t0", "t1", "t2"]].iloc[0].tolist() == [100, 100, 101]
    assert out.t0.iloc[1] == 101 and np.isnan(out.t1.iloc[1])
    assert len(r.augment_forward_prices(record, decl, [0, 1, 2])) == 1  # dropna default


def test_forward_prices_use_the_receive_clock(record):
    mids = record.mids[("X", "T")]
    mids["local_ts"] = mids.ts + 2 * 10**9  # received 2 s late
    out = r.augment_forward_prices(record, r.df_declarations(record, key="good"), [0],
                                   dropna=False)
    assert np.isnan(out.t0.iloc[0])  # at 0.5 s nothing was received yet
    assert out.t0.iloc[1] == 100  # at 9.5 s the state of 7 s exchange time is the latest


def test_df_fairprices_marks_the_best_estimator(record, tmp_path):
    metrics, decl, errors = r.df_fairprices(record, group="fair", forward_intervals=[0, 1],
                                            plot=True, save=tmp_path / "fair.png")
    assert list(metrics.columns) == [*r.METRIC_COLUMNS, "MSE*", "MAD*"]
    assert metrics.index.names == ["T+", "Estimator"]
    assert metrics.loc[("t0", "good"), "MSE*"] == "*" and metrics.loc[("t0", "bad"), "MSE*"] == ""
    # bad at t0: e% = 100 * 1/100 and 100 * 1/101
    e = np.array([1.0, 100 / 101])
    row = metrics.loc[("t0", "bad")]
    assert row["MEAN(e%)"] == pytest.approx(e.mean())
    assert row["MSE(e%)"] == pytest.approx((e**2).mean())
    assert row["MAD(e%)"] == pytest.approx(np.abs(e).mean())
    assert row["MEDIAN(e%)"] == pytest.approx(np.median(e))
    assert set(errors) == {"bad", "good"} and list(errors["good"].columns) == ["t0", "t1"]
    assert len(decl) == 4 and (tmp_path / "fair.png").is_file()


def test_trade_imbalance_and_flow_pnl():
    trades = np.array([[0, 100, 1, 1], [1, 101, 3, -1], [5, 102, 2, 1]], float)
    assert r.trade_imbalance(trades, 2).tolist() == [1.0, -0.5, 1.0]
    # counterparty marked at the last price 102: 1*(100-102) - 3*(101-102) + 0 = 1
    assert r.flow_pnl(trades, norm_volume=False) == pytest.approx(1.0)
    assert r.flow_pnl(trades) == pytest.approx(1 / (100 + 303 + 204))


def test_intensity_recovers_an_exponential():
    mids_ts, mids = np.array([0.0]), np.array([100.0])
    levels = np.arange(1, 8) * 0.5
    amounts = 50 * np.exp(-1.2 * levels)
    trades = np.column_stack([np.ones(7), 100 + levels, amounts, np.ones(7)])
    fit = r.intensity(mids_ts, mids, trades)
    assert fit["alpha"] == pytest.approx(50, rel=1e-4)
    assert fit["kappa"] == pytest.approx(1.2, rel=1e-4)
    assert fit["levels"].tolist() == levels.tolist()
    empty = r.intensity(mids_ts, mids, np.empty((0, 4)))
    assert empty["alpha"] is None and empty["kappa"] is None


def test_rolling_vol_is_the_core_helper():
    out = r.rolling_vol([1.0, 2.0, 4.0, 4.0], 3)
    assert np.isnan(out[1]) and out[2] == pytest.approx(np.sqrt((1 + 4) / 2))
