"""Per-day statistics and the whole-range summary of a run (multi-day replays).

A day is a UTC calendar day of exchange time. Per exchange and day, from the run record:

- ``start``, ``end``: equity at the last stamp before the day (the starting balance for
  the first day) and at the day's last stamp, quote currency;
- ``pnl = end - start`` (fees and rebates included) and ``return(%) = 100 * pnl / start``;
- ``#trades``, ``volume`` (notional, quote), ``fees`` (negative: rebates) and
  ``maker_share`` of the day's fills (NaN without fills);
- ``sharpe``: the annualised Sharpe ratio of the day's stamp-to-stamp equity returns
  (:func:`~makerlab.analytics.metrics.sharpe`), and ``note`` when its sample says little
  (:func:`~makerlab.analytics.metrics.sharpe_note`: under a day of stamps, or few non-zero
  returns);
- ``maxdd(%)``: the day's largest fall of equity from its running peak, the day's
  ``start`` included.

:func:`range_summary` adds, per exchange, the whole range: its days, ``pnl`` (the sum of the
daily pnl), ``roi``, trades, volume, fees, the Sharpe ratio of every stamp (with its
note), ``maxdd(%)`` over the range, the ``daily_sharpe`` (mean / std of daily returns,
times sqrt(365); NaN under :data:`MIN_DAYS` days, where it says nothing), the best and
worst day and the share of days with a positive pnl.

:func:`report_sections` puts both into the simulation report
(:mod:`makerlab.analytics.report`) when a run spans more than one day.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from makerlab.analytics.metrics import max_drawdown_pct, sharpe, sharpe_note
from makerlab.analytics.record import RunRecord

__all__ = ["DAY_COLUMNS", "MIN_DAYS", "daily_statistics", "range_summary", "report_sections"]

DAY_NS = 86_400 * 1_000_000_000
MIN_DAYS = 7  # daily returns needed for a daily Sharpe ratio
DAY_COLUMNS = ["exc", "day", "start", "end", "pnl", "return(%)", "#trades", "volume", "fees",
               "maker_share", "sharpe", "note", "maxdd(%)"]


def daily_statistics(record: RunRecord) -> pd.DataFrame:
    """One row per exchange and UTC day with stamps (see the module docstring)."""
    rows = [row for exc in _exchanges(record) for row in _days(record, exc)]
    return pd.DataFrame(rows, columns=DAY_COLUMNS)


def range_summary(record: RunRecord) -> dict[str, dict[str, Any]]:
    """``{exc: summary}`` over the whole range (see the module docstring)."""
    return _range_summary(record, daily_statistics(record))


def report_sections(record: RunRecord) -> list[tuple[str, Any, str, None]]:
    """The report's ``(title, data, dtype, None)`` sections of a run over more than one
    UTC day: the per-day table ("days") and the whole-range summary ("range summary");
    none for a run within one day (its stats are the day's)."""
    days = daily_statistics(record)
    if days.day.nunique() < 2:
        return []
    return [("days", days, "df", None),
            ("range summary", _range_summary(record, days), "dict", None)]


def _range_summary(record: RunRecord, days: pd.DataFrame) -> dict[str, dict[str, Any]]:
    return {exc: _summary(record, exc, days[days.exc == exc]) for exc in _exchanges(record)}


def _exchanges(record: RunRecord) -> list[str]:
    return list(dict.fromkeys(record.stamps.exc.tolist()))


def _days(record: RunRecord, exc: str) -> list[dict[str, Any]]:
    stamps = record.stamps_of(exc)
    fills = record.fills_of(exc)
    stamp_day = stamps.ts.to_numpy(np.int64) // DAY_NS
    fill_day = fills.ts.to_numpy(np.int64) // DAY_NS
    start = record.start_balance
    rows = []
    for day in np.unique(stamp_day):
        today = stamps[stamp_day == day]
        equity = today.equity.to_numpy(float)
        dd = max_drawdown_pct(pd.DataFrame({"equity": np.concatenate([[start], equity])}))
        rows.append({"exc": exc, "day": str(np.datetime64(int(day), "D")), "start": start,
                     "end": float(equity[-1]), "pnl": float(equity[-1]) - start,
                     "return(%)": 100 * (float(equity[-1]) - start) / start,
                     **_fill_stats(fills[fill_day == day]),
                     "sharpe": sharpe(today, record.stamp_cycle_s),
                     "note": sharpe_note(today, record.stamp_cycle_s), "maxdd(%)": dd})
        start = float(equity[-1])
    return rows


def _fill_stats(fills: pd.DataFrame) -> dict[str, Any]:
    notional = fills.price.to_numpy(float) * fills["size"].to_numpy(float)
    maker = fills.is_maker.to_numpy(bool)
    return {"#trades": len(fills), "volume": float(notional.sum()),
            "fees": float(fills.fee.sum()),
            "maker_share": float(notional[maker].sum() / notional.sum()) if len(fills)
            else math.nan}


def _summary(record: RunRecord, exc: str, days: pd.DataFrame) -> dict[str, Any]:
    stamps = record.stamps_of(exc)
    returns = days["return(%)"].to_numpy(float) / 100
    daily = (float(np.mean(returns) / np.std(returns, ddof=1) * math.sqrt(365))
             if len(returns) >= MIN_DAYS and np.std(returns) > 0 else math.nan)
    pnl = float(days.pnl.sum())
    return {"days": len(days), "pnl": pnl, "roi": pnl / record.start_balance,
            "#trades": int(days["#trades"].sum()), "volume": float(days.volume.sum()),
            "fees": float(days.fees.sum()), "sharpe": sharpe(stamps, record.stamp_cycle_s),
            "note": sharpe_note(stamps, record.stamp_cycle_s),
            "maxdd(%)": max_drawdown_pct(stamps), "daily_sharpe": daily,
            "best_day": _extreme(days, max), "worst_day": _extreme(days, min),
            "positive_days": float((days.pnl > 0).mean()) if len(days) else math.nan}


def _extreme(days: pd.DataFrame, pick: Any) -> tuple[str, float] | None:
    if not len(days):
        return None
    row = days.loc[pick(days.index, key=lambda i: days.pnl[i])]
    return str(row.day), float(row.pnl)
