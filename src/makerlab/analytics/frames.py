"""Analysis frames of a run and their plots (matplotlib, headless-safe).

Each ``df_*`` function takes a :class:`~makerlab.analytics.record.RunRecord`, returns a
DataFrame and, with ``plot=True``, draws it; ``save=`` writes a PNG (folders created) and
``show=True`` calls ``plt.show()`` only under an interactive backend. Time-series frames are
indexed by a UTC ``DatetimeIndex`` named ``ts``; the tutorial's tables (``df_actions``,
``df_declarations``) keep epoch-ms ``ts`` columns. Columns and plots are documented in
``docs/analytics.md``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure, SubFigure

from makerlab.analytics.metrics import DEFAULT_INTERVALS_MS, markout_table, ticker_inventory
from makerlab.analytics.record import RunRecord
from makerlab.analytics.research import df_declarations
from makerlab.plotting import BUY, SELL, finish, new_figure, time_axis
from makerlab.units import NS_PER_MS

__all__ = [
    "MarkoutSummary",
    "bootstrap_mean_ci",
    "df_actions",
    "df_counterparty_pnl",
    "df_exchange",
    "df_fills",
    "df_markouts",
    "df_portfolio",
    "df_prices",
    "markout_summary",
    "plot_markouts",
]

Save = str | Path | None


def _utc(ts: Any) -> pd.DatetimeIndex:
    return pd.DatetimeIndex(pd.to_datetime(np.asarray(ts, np.int64), utc=True), name="ts")


# -- equity and inventory ---------------------------------------------------------------

def df_exchange(record: RunRecord, exc: str, plot: bool = True, show: bool = False,
                save: Save = None) -> pd.DataFrame:
    """Equity, net inventory notional, pnl and one inventory-notional column per traded
    ticker at every stamp of ``exc`` (quote currency). ``pnl = equity - start balance``."""
    stamps = record.stamps_of(exc).drop_duplicates("ts", keep="last").set_index("ts")
    df = pd.DataFrame({"equity": stamps.equity, "inventory": stamps.inventory.fillna(0.0),
                       "pnl": stamps.equity - record.start_balance})
    df = df.join(ticker_inventory(record, exc))
    df.index = _utc(df.index)
    if plot:
        _plot_exchange(df, exc, show, save)
    return df


def _plot_exchange(df: pd.DataFrame, exc: str, show: bool, save: Save) -> None:
    fig, (top, bottom) = new_figure(show, 2, 1, figsize=(11, 6.5), sharex=True,
                                    layout="constrained", height_ratios=(1, 1))
    top.plot(df.index, df.pnl, color="black", lw=1.2, label="PnL")
    top.axhline(0, color="grey", lw=0.8, ls=":")
    top.set_ylabel("PnL [quote ccy]")
    top.set_title(f"{exc}: PnL and inventory (final PnL {df.pnl.iloc[-1]:+,.2f})")
    top.grid(alpha=0.3)
    for ticker in df.columns[3:]:
        bottom.plot(df.index, df[ticker], lw=1.0, label=f"{ticker}")
    if len(df.columns) > 4:
        bottom.plot(df.index, df.inventory, color="black", lw=1.2, label="net")
    bottom.axhline(0, color="grey", lw=0.8, ls=":")
    bottom.set_ylabel("inventory notional [quote ccy]")
    bottom.legend(loc="upper left", fontsize="small")
    time_axis(bottom)
    finish(fig, show, save)


def df_portfolio(record: RunRecord, plot: bool = True, show: bool = False,
                 save: Save = None) -> pd.DataFrame:
    """PnL per exchange (``equity - start balance``, quote currency) at every stamp, plus
    their sum ``sum(exchange)``."""
    wide = record.stamps.pivot_table(index="ts", columns="exc", values="equity",
                                     aggfunc="last", sort=False)
    df = wide.ffill() - record.start_balance
    df.columns = [str(c) for c in df.columns]
    df["sum(exchange)"] = df.sum(axis=1)
    df.index = _utc(df.index)
    if plot:
        fig, ax = new_figure(show, figsize=(11, 4.5), layout="constrained")
        for col in df.columns[:-1]:
            ax.plot(df.index, df[col], lw=1.6, label=col)
        ax.plot(df.index, df["sum(exchange)"], color="black", lw=1.2, ls="--",
                label="sum(exchange)")
        ax.axhline(0, color="grey", lw=0.8, ls=":")
        ax.set(title="Portfolio PnL by exchange", ylabel="PnL [quote ccy]")
        ax.legend(loc="upper left", fontsize="small")
        time_axis(ax)
        finish(fig, show, save)
    return df


# -- markouts ---------------------------------------------------------------------------

def df_markouts(record: RunRecord, ticker: str | None = None, exc: str | None = None,
                intervals: Sequence[float] = DEFAULT_INTERVALS_MS, bootstrap: int = 1000,
                ci: float = 0.95, seed: int = 0, plot: bool = True, show: bool = False,
                save: Save = None) -> pd.DataFrame:
    """Fractional markouts ``d (m(t + h) - p) / p`` of every fill (rows, indexed by fill
    time): ``Tick`` (the next book state) then one column per horizon in ``intervals`` (ms,
    labelled ``'1s'``...). ``None`` filters aggregate across tickers/exchanges. The plot
    shows the mean in bps with a ``ci`` percentile bootstrap band (``bootstrap`` resamples
    of the fills, seeded): :func:`markout_summary`, drawn by :func:`plot_markouts`."""
    fills = record.fills_of(exc, ticker)
    df = markout_table(record, fills, intervals)
    if plot:
        summary = markout_summary(df, intervals, bootstrap, ci, seed, exc, ticker)
        plot_markouts(summary, show, save)
    return df


@dataclass(frozen=True)
class MarkoutSummary:
    """What the markout plots draw: per horizon (seconds, the next tick first at x = 0)
    the mean markout and its bootstrap band, in bps."""

    x: np.ndarray
    mean: np.ndarray
    low: np.ndarray
    high: np.ndarray
    fills: int
    bootstrap: int
    ci: float
    label: str


def markout_summary(df: pd.DataFrame, intervals: Sequence[float] = DEFAULT_INTERVALS_MS,
                    bootstrap: int = 1000, ci: float = 0.95, seed: int = 0,
                    exc: str | None = None, ticker: str | None = None) -> MarkoutSummary:
    """Mean markouts of a :func:`df_markouts` frame with their percentile bootstrap band."""
    values = df.to_numpy(float) * 1e4
    low, high = bootstrap_mean_ci(values, bootstrap, ci, seed)
    return MarkoutSummary(np.array([ms / 1000 for ms in intervals]), _col_nanmean(values),
                          low, high, len(df), bootstrap, ci,
                          f"{exc or 'all exchanges'}, {ticker or 'all tickers'}")


def bootstrap_mean_ci(values: np.ndarray, n: int = 1000, ci: float = 0.95, seed: int = 0
                      ) -> tuple[np.ndarray, np.ndarray]:
    """Percentile bootstrap band of the column means of ``values`` (rows resampled with
    replacement ``n`` times, NaNs ignored): ``(low, high)`` at level ``ci``."""
    rng = np.random.default_rng(seed)
    rows = len(values)
    if rows == 0 or n <= 0:
        nan = np.full(values.shape[1], np.nan)
        return nan, nan
    means = np.empty((n, values.shape[1]))
    for b in range(n):
        sample = values[rng.integers(0, rows, rows)]
        means[b] = _col_nanmean(sample)
    tail = (1 - ci) / 2 * 100
    return _col_nanpercentile(means, tail), _col_nanpercentile(means, 100 - tail)


def _col_nanpercentile(values: np.ndarray, q: float) -> np.ndarray:
    """Per-column percentile ignoring NaNs; NaN (no warning) for an all-NaN column."""
    out = np.full(values.shape[1], np.nan)
    some = np.isfinite(values).any(axis=0)
    if some.any():
        out[some] = np.nanpercentile(values[:, some], q, axis=0)
    return out


def _col_nanmean(values: np.ndarray) -> np.ndarray:
    ok = np.isfinite(values)
    count = ok.sum(axis=0)
    total = np.where(ok, values, 0.0).sum(axis=0)
    return np.where(count > 0, total / np.maximum(count, 1), np.nan)


def plot_markouts(summary: MarkoutSummary, show: bool = False, save: Save = None) -> None:
    """The markout plot (matplotlib) of a :class:`MarkoutSummary`."""
    m = summary
    fig, ax = new_figure(show, figsize=(10, 4.8), layout="constrained")
    if m.bootstrap > 0 and m.fills:
        ax.fill_between(m.x, m.low[1:], m.high[1:], alpha=0.25, color="tab:blue",
                        label=f"{m.ci:.0%} bootstrap CI ({m.bootstrap} resamples)")
        ax.vlines(0.0, m.low[0], m.high[0], color="tab:orange", lw=1.5)
        ax.hlines([m.low[0], m.high[0]], -1.0, 1.0, color="tab:orange", lw=1.5)
    ax.plot(m.x, m.mean[1:], marker="o", ms=3, color="tab:blue",
            label=f"mean markout at horizon ({m.fills} fills)")
    ax.plot([0.0], m.mean[:1], marker="D", ms=6, color="tab:orange", ls="none",
            label="mean markout at the next tick (x = 0)")
    ax.axhline(0, color="grey", lw=0.8, ls=":")
    ax.set(title=f"Fill markouts: {m.label}", xlabel="horizon after the fill [s]",
           ylabel="markout [bps of fill price]")
    ax.grid(alpha=0.3)
    ax.legend(loc="best", fontsize="small")
    finish(fig, show, save)


# -- prices and fills -------------------------------------------------------------------

def df_prices(record: RunRecord, ticker: str, exc: str, ax: Axes | None = None,
              with_fill: bool = True, with_inventory: bool | None = None,
              key: str | None = None, group: str | None = None, share_index: bool = False,
              clock: str | None = None, plot: bool = True, show: bool = False,
              save: Save = None) -> pd.DataFrame:
    """Best bid ``b`` and ask ``a`` of a market at every book state (UTC index).

    ``clock`` indexes the states by exchange time (``"exchange"``) or by the time the
    strategy received them (``"local"``, the clock declarations are stamped with); default
    local when declared series are overlaid, exchange otherwise. Fills are always drawn at
    exchange time.

    The plot draws bid/ask, our fills (``with_fill``: green ▲ buys, red ▼ sells, marker area
    proportional to size), the ticker's position (``with_inventory``, default: when no
    ``group`` is given) on a twin axis, and declared series matching ``key``/``group`` on the
    price axis (``share_index=True``) or on their own twin axis.
    """
    mids = record.mid_series(exc, ticker)
    local = (clock or ("local" if key or group else "exchange")) == "local"
    if local:
        mids = mids.sort_values("local_ts", kind="stable")
    times = mids.local_ts if local else mids.ts
    df = pd.DataFrame({"b": mids.bid.to_numpy(), "a": mids.ask.to_numpy()}, index=_utc(times))
    if plot:
        own = ax is None
        fig: Figure | SubFigure  # an axes passed in may live in a subfigure
        if ax is None:
            fig, ax = new_figure(show, figsize=(12, 5.5), layout="constrained")
        else:
            fig = ax.figure
        _draw_prices(ax, record, df, ticker, exc, with_fill)
        ax.set_xlabel("receive time (UTC)" if local else "exchange time (UTC)")
        inventory = with_inventory if with_inventory is not None else group is None
        inventory = inventory and _draw_inventory(ax, record, ticker, exc)
        if key is not None or group is not None:
            _draw_declared(ax, record, ticker, exc, key, group, share_index, inventory)
        _finish_axes(ax, fig, own, show, save)
    return df


def _draw_prices(ax: Axes, record: RunRecord, df: pd.DataFrame, ticker: str, exc: str,
                 with_fill: bool) -> None:
    ax.step(df.index, df.b, where="post", color=BUY, lw=0.7, alpha=0.8, label="best bid")
    ax.step(df.index, df.a, where="post", color=SELL, lw=0.7, alpha=0.8, label="best ask")
    fills = record.fills_of(exc, ticker) if with_fill else record.fills.iloc[:0]
    _draw_fills(ax, fills)
    what = "best bid/ask and our fills" if len(fills) else "best bid/ask"
    ax.set(title=f"{exc} {ticker}: {what}", ylabel="price [quote ccy]")
    time_axis(ax)


def _draw_fills(ax: Axes, fills: pd.DataFrame) -> None:
    if fills.empty:
        return
    area = 8 + 60 * fills["size"] / fills["size"].max()
    for side, color, marker, name in ((1, BUY, "^", "our buys"), (-1, SELL, "v", "our sells")):
        rows = (fills.dir == side).to_numpy()
        ax.scatter(_utc(fills.ts[rows]), fills.price[rows], s=area[rows], c=color,
                   marker=marker, edgecolors="black", linewidths=0.4, zorder=3, label=name)


def _draw_inventory(ax: Axes, record: RunRecord, ticker: str, exc: str) -> bool:
    """The ticker's position on a twin axis; False (nothing drawn) without fills."""
    fills = record.fills_of(exc, ticker)
    if fills.empty:
        return False
    twin = ax.twinx()
    ax.set_zorder(twin.get_zorder() + 1)  # prices and fills above the position line
    ax.patch.set_visible(False)
    end = record.config.get("end_ns", int(fills.ts.iloc[-1]))
    ts = np.append(fills.ts.to_numpy(np.int64), end)
    pos = np.append(fills.position.to_numpy(float), fills.position.iloc[-1])
    twin.step(_utc(ts), pos, where="post", color="tab:purple", lw=1.0, alpha=0.7,
              label="position")
    twin.axhline(0, color="tab:purple", lw=0.6, ls=":")
    twin.set_ylabel(f"position [{ticker} base units]", color="tab:purple")
    return True


def _draw_declared(ax: Axes, record: RunRecord, ticker: str, exc: str, key: str | None,
                   group: str | None, share_index: bool, offset: bool) -> None:
    """Declared series on the price axis or, unless ``share_index``, a twin axis (moved
    right of the position axis when ``offset``)."""
    decl = df_declarations(record, key=key, exc=exc, ticker=ticker, group=group)
    target = ax if share_index else ax.twinx()
    if not share_index:
        if offset:
            target.spines["right"].set_position(("axes", 1.08))
        target.set_ylabel(f"declared {key or group} [declared units]")
    colors = ["tab:blue", "tab:orange", "tab:cyan", "tab:olive", "tab:brown", "tab:pink"]
    for i, (name, rows) in enumerate(decl.groupby("key", sort=True)):
        target.plot(_utc(rows.ts.to_numpy(np.int64) * NS_PER_MS), rows.value.astype(float),
                    lw=0.9, alpha=0.75, color=colors[i % len(colors)], label=str(name))


def _finish_axes(ax: Axes, fig: Any, own: bool, show: bool, save: Save) -> None:
    handles: list[Any] = []
    labels: list[str] = []
    for axis in fig.axes:
        h, lab = axis.get_legend_handles_labels()
        handles, labels = handles + h, labels + lab
    if own:
        fig.legend(handles, labels, loc="outside lower center", ncol=min(len(labels), 6),
                   fontsize="small")
    else:
        ax.legend(handles, labels, loc="best", fontsize="small", ncol=2)
    if own:
        finish(fig, show, save)
    elif save is not None:
        Path(save).parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(save, dpi=120, bbox_inches="tight")


def df_fills(record: RunRecord, ticker: str, exc: str, ax: Axes | None = None,
             plot: bool = True, show: bool = False, save: Save = None) -> pd.DataFrame:
    """One market's fills (:func:`df_actions` columns); the plot is the bid/ask with the
    fills on it (as :func:`df_prices` without inventory)."""
    if plot:
        df_prices(record, ticker, exc, ax=ax, with_inventory=False, show=show, save=save)
    return df_actions(record, exc, ticker)


def df_actions(record: RunRecord, exc: str | None = None, ticker: str | None = None
               ) -> pd.DataFrame:
    """Our fills as the tutorial lists them: ``ts`` (epoch ms), price, size, dir (+1 buy),
    is_maker, exc, ticker."""
    fills = record.fills_of(exc, ticker)
    out = fills[["ts", "price", "size", "dir", "is_maker", "exc", "ticker"]].copy()
    out["ts"] = out.ts.astype(np.int64) // NS_PER_MS
    return out.reset_index(drop=True)


# -- counterparty flow ------------------------------------------------------------------

def df_counterparty_pnl(record: RunRecord, exc_tickers: Mapping[str, Sequence[str]],
                        plot: bool = True, show: bool = False, save: Save = None
                        ) -> pd.DataFrame:
    """PnL of a zero-fee maker taking the other side of every market trade, per market.

    On a grid every ``stamp_cycle`` over the run, ``pnl(t) = sum_{i: t_i <= t} d_i q_i
    (p_i - m(t))`` (``d_i`` the taker side: the maker sold ``q_i`` at ``p_i`` to a buyer and
    is marked at the mid). Normalised to compare markets and exchanges of any size:
    ``1e4 * pnl(t) / V`` with ``V = sum_i p_i q_i`` the market's traded notional over the
    whole run, i.e. bps of the run's flow. Columns ``'exc/ticker'``.
    """
    grid = _grid(record)
    columns = {f"{exc}/{t}": _counterparty_bps(record, exc, t, grid)
               for exc, tickers in exc_tickers.items() for t in tickers}
    df = pd.DataFrame(columns, index=_utc(grid))
    if plot:
        fig, ax = new_figure(show, figsize=(11, 4.5), layout="constrained")
        for col in df.columns:
            ax.plot(df.index, df[col], lw=1.0, label=col)
        ax.axhline(0, color="grey", lw=0.8, ls=":")
        ax.set(title="Counterparty PnL of taking every market order (zero fees, marked at mid)",
               ylabel="PnL [bps of the market's traded notional]")
        ax.legend(loc="upper left", fontsize="small")
        time_axis(ax)
        finish(fig, show, save)
    return df


def _grid(record: RunRecord) -> np.ndarray:
    start = record.config.get("start_ns", int(record.stamps.ts.min()))
    end = record.config.get("end_ns", int(record.stamps.ts.max()))
    step = int(record.stamp_cycle_s * 1e9)
    return np.arange(int(start), int(end) + 1, step, dtype=np.int64)


def _counterparty_bps(record: RunRecord, exc: str, ticker: str, grid: np.ndarray
                      ) -> np.ndarray:
    trades = record.trades.get((exc, ticker))
    if trades is None or trades.empty:
        return np.full(len(grid), np.nan)
    signed = (trades.dir * trades["size"]).to_numpy(float)
    cash = np.concatenate(([0.0], np.cumsum(signed * trades.price.to_numpy(float))))
    qty = np.concatenate(([0.0], np.cumsum(signed)))
    n = np.searchsorted(trades.ts.to_numpy(np.int64), grid, side="right")
    pnl = cash[n] - qty[n] * record.mid_at(exc, ticker, grid)
    return 1e4 * pnl / float(np.dot(trades.price, trades["size"]))
