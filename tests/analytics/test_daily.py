"""Per-day statistics and the whole-range summary (analytics/daily.py)."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from makerlab.analytics.daily import (
    DAY_COLUMNS,
    daily_statistics,
    range_summary,
    report_sections,
)
from makerlab.analytics.record import RunRecord

DAY = 86_400 * 10**9
T0 = 1723075200 * 10**9  # 2024-08-08 00:00 UTC


def _record(days: int = 3) -> RunRecord:
    """Equity stamps every hour over ``days`` days: +10 a day on day 0, -4 on day 1, ...;
    one maker and one taker fill a day."""
    stamps, fills, equity = [], [], 1000.0
    for d in range(days):
        step = (10.0 if d % 2 == 0 else -4.0) / 24
        for h in range(24):
            equity += step if h != 12 else -3 * step  # a dip mid-day
            stamps.append((T0 + d * DAY + h * 3600 * 10**9, "X", equity, 1000.0, 0.0))
        for k, maker in ((1, True), (2, False)):
            fills.append({"ts": T0 + d * DAY + k * 3600 * 10**9, "exc": "X", "ticker": "T",
                          "price": 100.0, "size": float(k), "dir": 1, "is_maker": maker,
                          "fee": -0.01 if maker else 0.03})
    return RunRecord.build(fills=fills, stamps=stamps,
                           config={"start_balance": 1000.0, "stamp_cycle_ms": 3_600_000})


def test_a_row_per_day_chains_equity_and_counts_the_days_fills():
    days = daily_statistics(_record())
    assert list(days.columns) == DAY_COLUMNS
    assert days.day.tolist() == ["2024-08-08", "2024-08-09", "2024-08-10"]
    assert days.start.iloc[0] == 1000.0
    assert days.start.iloc[1:].tolist() == days.end.iloc[:-1].tolist()
    assert days.pnl.tolist() == pytest.approx([10 - 4 * 10 / 24, -4 + 4 * 4 / 24,
                                               10 - 4 * 10 / 24])
    assert days["return(%)"].iloc[0] == pytest.approx(100 * days.pnl.iloc[0] / 1000)
    assert days["#trades"].tolist() == [2, 2, 2]
    assert days.volume.tolist() == [300.0] * 3 and days.fees.tolist() == pytest.approx([0.02] * 3)
    assert days.maker_share.tolist() == pytest.approx([1 / 3] * 3)
    assert (days["maxdd(%)"] > 0).all()  # the mid-day dip
    assert days.note.notna().all()  # 24 hourly stamps a day: too few to annualise


def test_the_summary_adds_the_days_up():
    record = _record(days=8)
    days = daily_statistics(record)
    summary = range_summary(record)["X"]
    assert summary["days"] == 8
    assert summary["pnl"] == pytest.approx(days.pnl.sum())
    assert summary["pnl"] == pytest.approx(record.stamps.equity.iloc[-1] - 1000)
    assert summary["#trades"] == 16 and summary["volume"] == 8 * 300.0
    assert summary["best_day"][0] == "2024-08-08" and summary["worst_day"][0] == "2024-08-09"
    assert summary["positive_days"] == 0.5
    assert not math.isnan(summary["daily_sharpe"])
    assert math.isnan(range_summary(_record(days=3))["X"]["daily_sharpe"])  # too few days



def test_the_report_of_a_run_over_two_days_has_the_days_and_the_summary(record, tmp_path):
    from pypdf import PdfReader

    from makerlab.analytics.report import simulation_report

    later = record.stamps.assign(ts=record.stamps.ts + DAY, equity=record.stamps.equity + 5)
    two_days = RunRecord.build(record.fills, record.actions, pd.concat([record.stamps, later]),
                               record.declarations, mids=record.mids, trades=record.trades,
                               config=record.config)
    [(title, days, _, _), (summary_title, summary, _, _)] = report_sections(two_days)
    assert title == "days" and days.equals(daily_statistics(two_days))
    assert summary_title == "range summary" and summary == range_summary(two_days)
    [pdf] = simulation_report(two_days, tmp_path, html=False)
    text = "".join(page.extract_text() for page in PdfReader(pdf).pages)
    assert "range summary" in text and "worst_day" in text and "maxdd(%)" in text
    assert "1970-01-01" in text and "1970-01-02" in text


def test_a_run_within_one_day_reports_no_days(record):
    assert report_sections(record) == [] and daily_statistics(record).day.nunique() == 1
