"""Research helpers on a run: declared series, forward prices, fair-price estimator
comparison and order-flow features.

- :func:`df_declarations` filters what the strategy ``declare``-d (``ts`` in epoch ms);
- :func:`augment_forward_prices` adds the forward **mid** ``t<h>`` at ``ts + h`` seconds;
- :func:`df_fairprices` scores every key of a declaration group as an estimator of those
  forward mids and marks the best per horizon;
- :func:`trade_imbalance`, :func:`flow_pnl`, :func:`intensity` and :func:`rolling_vol`
  are features on trade tapes and mid series.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from makerlab.analytics.record import RunRecord
from makerlab.core.weights import rolling_vol
from makerlab.plotting import finish, new_figure
from makerlab.units import NS_PER_MS

__all__ = [
    "DEFAULT_FORWARD_S",
    "augment_forward_prices",
    "df_declarations",
    "df_fairprices",
    "flow_pnl",
    "intensity",
    "rolling_vol",
    "trade_imbalance",
]

DEFAULT_FORWARD_S: list[float] = [0, 1, 10, 30, 60, 120, 300]
METRIC_COLUMNS = ["Q1(e%)", "Q3(e%)", "MEDIAN(e%)", "MEAN(e%)", "MSE(e%)", "MAD(e%)"]


# -- declarations and forward prices ----------------------------------------------------

def df_declarations(record: RunRecord, key: str | None = None, exc: str | None = None,
                    ticker: str | None = None, group: str | None = None) -> pd.DataFrame:
    """Declared values, optionally filtered: columns ``ts`` (epoch ms, replay time of the
    declaration), ``key``, ``value``, ``exc``, ``ticker``, ``group``; in declaration order."""
    df = record.declarations
    mask = np.ones(len(df), dtype=bool)
    for column, wanted in (("key", key), ("exc", exc), ("ticker", ticker), ("group", group)):
        if wanted is not None:
            mask &= (df[column] == wanted).to_numpy()
    columns = ["ts", "key", "value", "exc", "ticker", "group"]
    return df.loc[mask, columns].reset_index(drop=True)


def _label(seconds: float) -> str:
    return f"t{seconds:g}"


def augment_forward_prices(record: RunRecord, df: pd.DataFrame,
                           forward_intervals: Sequence[float] = DEFAULT_FORWARD_S,
                           dropna: bool = True) -> pd.DataFrame:
    """``df`` (columns ``ts`` epoch ms, ``exc``, ``ticker``) plus one column ``t<h>`` per
    horizon ``h`` in seconds: the mid of that row's market at ``ts + h``, i.e. of the last
    book state the strategy had **received** by then (``ts`` is the strategy's replay time,
    so states are looked up by receive time ``local_ts``; with the tutorial's constructor
    and zero feed latency this is exchange time). NaN past the market's last book state or
    for a market without books; ``dropna`` drops those rows (as the tutorial's output) and
    renumbers."""
    out = df.copy()
    ts_ns = out.ts.to_numpy(np.int64) * NS_PER_MS
    for h in forward_intervals:
        out[_label(h)] = np.nan
    for (exc, ticker), rows in out.groupby(["exc", "ticker"], sort=False).indices.items():
        if (exc, ticker) not in record.mids:
            continue
        for h in forward_intervals:
            values = record.mid_at(exc, ticker, ts_ns[rows] + int(h * 1e9), stale=False,
                                   clock="local")
            out.iloc[rows, out.columns.get_loc(_label(h))] = values
    if dropna:
        out = out.dropna(subset=[_label(h) for h in forward_intervals]).reset_index(drop=True)
    return out


# -- fair-price estimators --------------------------------------------------------------

def df_fairprices(record: RunRecord, group: str, key: str | None = None,
                  exc: str | None = None, ticker: str | None = None,
                  forward_intervals: Sequence[float] = DEFAULT_FORWARD_S, plot: bool = False,
                  show: bool = False, save: str | Path | None = None
                  ) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, pd.DataFrame]]:
    """Score every key of ``group`` as an estimator of the forward mid.

    The error of a declaration ``v`` at horizon ``h`` is ``e% = 100 (v - t<h>) / t<h>``
    (percent of the realised mid). Returns ``(metrics_df, declarations, error_dfs)``:

    - ``metrics_df`` indexed by (``T+`` = ``t0``, ``t1``..., ``Estimator``) with the 25 %,
      75 % and 50 % quantiles, mean, mean square (``MSE(e%)``, in %²) and mean absolute
      (``MAD(e%)``, in %) error, plus ``MSE*``/``MAD*`` holding ``'*'`` for the estimator
      with the lowest MSE/MAD at that horizon (``''`` otherwise);
    - ``declarations``: the group's declarations with their forward mids;
    - ``error_dfs``: ``{key: DataFrame}`` of ``e%`` per horizon (columns ``t<h>``, ``ts``
      ms index).
    """
    decl = augment_forward_prices(record, df_declarations(record, key, exc, ticker, group),
                                  forward_intervals, dropna=False)
    labels = [_label(h) for h in forward_intervals]
    errors = {str(k): _errors(rows, labels) for k, rows in decl.groupby("key", sort=True)}
    rows = [_error_row(h, k, err[h]) for h in labels for k, err in errors.items()]
    metrics = pd.DataFrame(rows, columns=["T+", "Estimator", *METRIC_COLUMNS])
    metrics = _mark_best(metrics.set_index(["T+", "Estimator"]))
    if plot:
        _plot_fairprices(metrics, labels, group, show, save)
    return metrics, decl, errors


def _errors(rows: pd.DataFrame, labels: list[str]) -> pd.DataFrame:
    value = rows.value.astype(float).to_numpy()
    data = {h: 100 * (value - rows[h].to_numpy(float)) / rows[h].to_numpy(float)
            for h in labels}
    return pd.DataFrame(data, index=pd.Index(rows.ts.to_numpy(), name="ts"))


def _error_row(horizon: str, key: str, e: pd.Series) -> list[Any]:
    e = e.dropna()
    if e.empty:
        return [horizon, key, *[np.nan] * len(METRIC_COLUMNS)]
    q1, med, q3 = np.percentile(e, [25, 50, 75])
    return [horizon, key, q1, q3, med, e.mean(), (e**2).mean(), e.abs().mean()]


def _mark_best(metrics: pd.DataFrame) -> pd.DataFrame:
    for column in ("MSE", "MAD"):
        values = metrics[f"{column}(e%)"]
        best = values.groupby(level="T+", sort=False).transform("min")
        metrics[f"{column}*"] = np.where(values.notna() & (values == best), "*", "")
    return metrics


def _plot_fairprices(metrics: pd.DataFrame, labels: list[str], group: str, show: bool,
                     save: str | Path | None) -> None:
    fig, axes = new_figure(show, 1, 2, figsize=(12, 4.5), layout="constrained")
    for ax, column, unit in zip(axes, ("MSE(e%)", "MAD(e%)"), ("%²", "%"), strict=True):
        table = metrics[column].unstack("Estimator").reindex(labels)
        for estimator in table.columns:
            ax.plot(range(len(labels)), table[estimator], marker="o", ms=3, label=estimator)
        ax.set_xticks(range(len(labels)), labels)
        ax.set(yscale="log", xlabel="horizon T+ [s]", ylabel=f"{column} [{unit}]",
               title=f"{group}: {column.split('(')[0]} of fair-price error")
        ax.grid(alpha=0.3, which="both")
    axes[0].legend(fontsize="small")
    finish(fig, show, save)


# -- flow features ----------------------------------------------------------------------

def _trade_array(trades: Any) -> np.ndarray:
    """Trades as an ``(n, 4)`` float array ``(ts, price, size, dir)``."""
    if isinstance(trades, pd.DataFrame):
        trades = trades[["ts", "price", "size", "dir"]].to_numpy(float)
    return np.asarray(trades, dtype=float).reshape(-1, 4)


def trade_imbalance(trades: Any, window: float) -> np.ndarray:
    """Signed-volume imbalance at every trade over the trailing window ``(t - window, t]``:
    ``sum(size * dir) / sum(size)`` in [-1, 1] (``window`` in the trades' time unit; equal
    weights, as :meth:`makerlab.core.trades.Trades.get_imbalance`)."""
    arr = _trade_array(trades)
    ts = arr[:, 0]
    signed = np.concatenate(([0.0], np.cumsum(arr[:, 2] * arr[:, 3])))
    total = np.concatenate(([0.0], np.cumsum(arr[:, 2])))
    lo = np.searchsorted(ts, ts - window, side="right")
    hi = np.arange(1, len(ts) + 1)
    volume = total[hi] - total[lo]
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(volume > 0, (signed[hi] - signed[lo]) / volume, 0.0)


def flow_pnl(trades: Any, norm_volume: bool = True, norm_variance: bool = False) -> float:
    """PnL of a zero-fee counterparty to every trade, marked at the last trade price ``P``:
    ``sum dir * size * (price - P)`` (quote currency); with ``norm_volume`` divided by the
    traded notional ``sum price * size``, then with ``norm_variance`` by ``sqrt(n)``. As
    :meth:`makerlab.core.trades.Trades.get_flow_pnl` on a whole tape; NaN when empty."""
    arr = _trade_array(trades)
    if not len(arr):
        return float("nan")
    price, size, side = arr[:, 1], arr[:, 2], arr[:, 3]
    pnl = float(np.sum(side * size * (price - price[-1])))
    if not norm_volume:
        return pnl
    pnl /= float(np.dot(price, size))
    return pnl / np.sqrt(len(arr)) if norm_variance else pnl


def intensity(lob_timestamps: Any, lob_mids: Any, trades: Any, alpha_0: float = 0,
              kappa_0: float = 0) -> dict[str, Any]:
    """Fit the arrival-amount curve ``A(delta) = alpha * exp(-kappa * delta)`` of trades at
    distance ``delta`` from the mid.

    Each trade ``(ts, price, size, dir)`` is measured against the last mid at or before its
    time (``lob_timestamps`` in the trades' unit, sorted): ``delta = |price - mid|`` (price
    units); sizes are summed per distinct ``delta`` (``levels``, ``amounts``); ``alpha``
    (base units) and ``kappa`` (per price unit) minimise the squared error
    ``sum (A(delta) - amount)^2`` with ``scipy.optimize.least_squares`` (bounds
    ``alpha, kappa >= 0``) from ``alpha_0``/``kappa_0`` (0 means: start at the largest amount
    and ``1 / mean delta``).

    Returns a dict ``{alpha, kappa, levels, amounts}`` (the reference's worked example reads
    a dict while its API text says a tuple; a dict keeps the data behind the fit). With no
    usable trade, ``alpha`` and ``kappa`` are ``None``.
    """
    levels, amounts = _levels(np.asarray(lob_timestamps, float), np.asarray(lob_mids, float),
                              _trade_array(trades))
    if len(levels) < 2:
        return {"alpha": None, "kappa": None, "levels": levels, "amounts": amounts}
    start = [alpha_0 or float(amounts.max()),
             kappa_0 or 1.0 / max(float(np.average(levels, weights=amounts)), 1e-12)]
    from scipy.optimize import least_squares  # 0.2 s to import: only when a fit runs

    fit = least_squares(lambda p: p[0] * np.exp(-p[1] * levels) - amounts, start,
                        bounds=([0.0, 0.0], [np.inf, np.inf]), x_scale="jac")
    return {"alpha": float(fit.x[0]), "kappa": float(fit.x[1]), "levels": levels,
            "amounts": amounts}


def _levels(lob_ts: np.ndarray, mids: np.ndarray, trades: np.ndarray
            ) -> tuple[np.ndarray, np.ndarray]:
    """Distinct distances from the prevailing mid and the size traded at each."""
    idx = np.searchsorted(lob_ts, trades[:, 0], side="right") - 1
    ok = idx >= 0
    mid = mids[np.maximum(idx, 0)]
    ok &= np.isfinite(mid)
    delta = np.round(np.abs(trades[ok, 1] - mid[ok]), 10)
    levels, inverse = np.unique(delta, return_inverse=True)
    return levels, np.bincount(inverse, weights=trades[ok, 2], minlength=len(levels))
