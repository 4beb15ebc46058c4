"""Interactive (plotly) versions of the report's analytics plots, for the HTML report.

Each builder takes the frame its matplotlib twin in :mod:`makerlab.analytics.frames` draws
(``df_*(..., plot=False)``) and returns a :class:`plotly.graph_objects.Figure`: zoomable,
with hover values, UTC time axes and units in the axis titles. The figures need no network:
the report inlines plotly.js once (``makerlab.research.report.html_snapshot``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from makerlab.analytics import frames
from makerlab.analytics.metrics import DEFAULT_INTERVALS_MS
from makerlab.analytics.record import RunRecord
from makerlab.plotting import BUY, SELL

__all__ = ["counterparty_figure", "exchange_figure", "markouts_figure", "prices_figure",
           "summary_figure"]

QUOTE = "quote ccy"
POSITION = "#7b3294"  # the position line and its axis
_HOVER_TIME = "%{x|%Y-%m-%d %H:%M:%S.%L} UTC"


def _x(index: pd.DatetimeIndex) -> pd.DatetimeIndex:
    """UTC wall-clock times without a zone: plotly.js shows them as given, labelled UTC."""
    return index.tz_convert("UTC").tz_localize(None)


def _ns(ts: Any) -> pd.DatetimeIndex:
    return _x(pd.DatetimeIndex(pd.to_datetime(np.asarray(ts, np.int64), utc=True)))


def _style(fig: go.Figure, title: str, height: int, hovermode: str = "x unified") -> go.Figure:
    """The shared look: white template, legend above the plot, title, height."""
    fig.update_layout(
        template="plotly_white", title={"text": title, "x": 0.01}, height=height,
        hovermode=hovermode, margin={"l": 70, "r": 30, "t": 90, "b": 60},
        legend={"orientation": "h", "yanchor": "bottom", "y": 1.01, "x": 0},
    )
    return fig


def _zero(fig: go.Figure, **where: Any) -> None:
    fig.add_hline(y=0, line={"color": "grey", "width": 1, "dash": "dot"}, **where)


def _line(x: Any, y: Any, name: str, unit: str, **line: Any) -> go.Scatter:
    """A time-series line whose hover reads ``name: value unit``."""
    return go.Scatter(x=x, y=y, name=name, mode="lines", line={"width": 1.5, **line},
                      hovertemplate=f"{name}: %{{y:,.2f}} {unit}<extra></extra>")


# -- equity and inventory ---------------------------------------------------------------

def exchange_figure(record: RunRecord, exc: str) -> go.Figure:
    """PnL (top) and inventory notional per traded ticker, plus the net with several
    (bottom), on a shared UTC time axis: :func:`~makerlab.analytics.frames.df_exchange`."""
    df = frames.df_exchange(record, exc, plot=False)
    x = _x(df.index)
    fig = make_subplots(rows=2, cols=1, shared_xaxes=True, vertical_spacing=0.07)
    fig.add_trace(_line(x, df.pnl, "PnL", QUOTE, color="black"), row=1, col=1)
    for ticker in df.columns[3:]:
        fig.add_trace(_line(x, df[ticker], f"{ticker} inventory", QUOTE), row=2, col=1)
    if len(df.columns) > 4:
        fig.add_trace(_line(x, df.inventory, "net inventory", QUOTE, color="black"), row=2, col=1)
    _zero(fig, row="all", col=1)
    fig.update_yaxes(title_text=f"PnL [{QUOTE}]", row=1, col=1)
    fig.update_yaxes(title_text=f"inventory notional [{QUOTE}]", row=2, col=1)
    fig.update_xaxes(title_text="time (UTC)", row=2, col=1)
    final = f" (final PnL {df.pnl.iloc[-1]:+,.2f} {QUOTE})" if len(df) else ""
    return _style(fig, f"{exc}: PnL and inventory{final}", 650)


# -- markouts ---------------------------------------------------------------------------

def markouts_figure(record: RunRecord, ticker: str | None = None, exc: str | None = None, *,
                    intervals: Sequence[float] = DEFAULT_INTERVALS_MS, bootstrap: int = 1000,
                    ci: float = 0.95, seed: int = 0) -> go.Figure:
    """Mean fill markout (bps) against the horizon with its percentile bootstrap band; the
    next-tick markout at x = 0 with its band as an error bar (arguments as
    :func:`~makerlab.analytics.frames.df_markouts`)."""
    df = frames.df_markouts(record, ticker, exc, intervals, plot=False)
    return summary_figure(frames.markout_summary(df, intervals, bootstrap, ci, seed, exc,
                                                 ticker))


def summary_figure(m: frames.MarkoutSummary) -> go.Figure:
    """The interactive markout plot of a :class:`~makerlab.analytics.frames.MarkoutSummary`."""
    fig = go.Figure()
    if m.bootstrap > 0 and m.fills:
        _band(fig, m.x, m.low[1:], m.high[1:],
              f"{m.ci:.0%} bootstrap CI ({m.bootstrap} resamples)")
    fig.add_trace(go.Scatter(x=m.x, y=m.mean[1:], name=f"mean markout at horizon ({m.fills} fills)",
                             mode="lines+markers", line={"color": "#1f77b4"},
                             hovertemplate="%{x:g} s: %{y:.2f} bps"))
    fig.add_trace(_tick_marker(m.mean[0], m.low[0], m.high[0]))
    _zero(fig)
    fig.update_xaxes(title_text="horizon after the fill [s]")
    fig.update_yaxes(title_text="markout [bps of fill price]")
    return _style(fig, f"Fill markouts: {m.label}", 480)


def _band(fig: go.Figure, x: np.ndarray, low: np.ndarray, high: np.ndarray, name: str) -> None:
    """A shaded band between ``low`` and ``high`` (one legend entry)."""
    edge = {"width": 0, "color": "rgba(31,119,180,0.25)"}
    fig.add_trace(go.Scatter(x=x, y=high, mode="lines", line=edge, name=name, legendgroup="ci",
                             showlegend=False, hovertemplate="CI high %{y:.2f} bps"))
    fig.add_trace(go.Scatter(x=x, y=low, mode="lines", line=edge, name=name, legendgroup="ci",
                             fill="tonexty", fillcolor="rgba(31,119,180,0.25)",
                             hovertemplate="CI low %{y:.2f} bps"))


def _tick_marker(mean: float, low: float, high: float) -> go.Scatter:
    """The next-tick mean markout at x = 0, its bootstrap band as an error bar."""
    error = {"type": "data", "symmetric": False, "array": [high - mean],
             "arrayminus": [mean - low], "color": "#ff7f0e", "visible": bool(np.isfinite(low))}
    return go.Scatter(x=[0.0], y=[mean], name="mean markout at the next tick (x = 0)",
                      mode="markers", marker={"symbol": "diamond", "size": 10,
                                              "color": "#ff7f0e"},
                      error_y=error, hovertemplate="next tick: %{y:.2f} bps")


# -- prices and fills -------------------------------------------------------------------

def prices_figure(record: RunRecord, ticker: str, exc: str) -> go.Figure:
    """Best bid/ask steps (exchange time), our fills as ▲ buys / ▼ sells (marker size ∝
    fill size; hover: price, size, maker/taker, fee, position after) and the ticker's
    position on a secondary axis: :func:`~makerlab.analytics.frames.df_prices`."""
    df = frames.df_prices(record, ticker, exc, plot=False)
    fills = record.fills_of(exc, ticker)
    fig = make_subplots(specs=[[{"secondary_y": True}]])
    x = _x(df.index)
    for col, name, color in (("b", "best bid", BUY), ("a", "best ask", SELL)):
        fig.add_trace(go.Scatter(x=x, y=df[col], name=name, mode="lines", line_shape="hv",
                                 line={"color": color, "width": 1}, opacity=0.8,
                                 hovertemplate=f"{name} %{{y:,.10~g}}<extra></extra>"))
    for trace in _fill_traces(fills):
        fig.add_trace(trace)
    if not fills.empty:
        fig.add_trace(_position_trace(record, fills), secondary_y=True)
        _position_axis(fig, ticker)
    fig.update_xaxes(title_text="exchange time (UTC)")
    fig.update_yaxes(title_text=f"price [{QUOTE}]", tickformat=",.10~g", secondary_y=False)
    what = "best bid/ask and our fills" if len(fills) else "best bid/ask"
    return _style(fig, f"{exc} {ticker}: {what}", 560, hovermode="closest")


def _fill_traces(fills: pd.DataFrame) -> list[go.Scatter]:
    """One marker trace per side; the hover text describes each fill."""
    if fills.empty:
        return []
    size = 7 + 11 * fills["size"].to_numpy(float) / float(fills["size"].max())
    traces = []
    for side, color, symbol, name in ((1, BUY, "triangle-up", "our buys"),
                                      (-1, SELL, "triangle-down", "our sells")):
        rows = (fills.dir == side).to_numpy()
        traces.append(go.Scatter(
            x=_ns(fills.ts[rows]), y=fills.price[rows], name=name, mode="markers",
            marker={"color": color, "symbol": symbol, "size": size[rows],
                    "line": {"color": "black", "width": 0.6}},
            text=[_fill_text(row) for row in fills[rows].itertuples(index=False)],
            hovertemplate=f"{_HOVER_TIME}<br>%{{text}}<extra>{name}</extra>"))
    return traces


def _fill_text(fill: Any) -> str:
    """Hover text of one fill: side, size @ price, maker/taker, fee (or rebate), position."""
    side = "buy" if fill.dir > 0 else "sell"
    role = "maker" if fill.is_maker else "taker"
    fee = f"rebate {-fill.fee:,.6g}" if fill.fee < 0 else f"fee {fill.fee:,.6g}"
    return (f"{side} {fill.size:,.10g} @ {fill.price:,.10g}<br>{role}, {fee} {QUOTE}"
            f"<br>position after {fill.position:,.10g}")


def _position_trace(record: RunRecord, fills: pd.DataFrame) -> go.Scatter:
    """The position after each fill as a step line held to the end of the run."""
    end = record.config.get("end_ns", int(fills.ts.iloc[-1]))
    ts = np.append(fills.ts.to_numpy(np.int64), end)
    pos = np.append(fills.position.to_numpy(float), fills.position.iloc[-1])
    return go.Scatter(x=_ns(ts), y=pos, name="position", mode="lines", line_shape="hv",
                      line={"color": POSITION, "width": 1.2}, opacity=0.6,
                      hovertemplate="position %{y:,.10~g}<extra></extra>")


def _position_axis(fig: go.Figure, ticker: str) -> None:
    """The position axis on the right: its own round ticks (not synced to the price
    grid) and always reaching zero, so flat, long and short read at a glance."""
    color = {"color": POSITION}
    fig.update_yaxes(title_text=f"position [{ticker} base units]", title_font=color,
                     tickfont=color, tickmode="auto", tickformat=",.6~g", rangemode="tozero",
                     showgrid=False, zeroline=False, secondary_y=True)


# -- counterparty flow ------------------------------------------------------------------

def counterparty_figure(record: RunRecord, exc_tickers: Mapping[str, Sequence[str]]
                        ) -> go.Figure:
    """PnL of a zero-fee maker taking every market order, in bps of each market's traded
    notional, one line per market: :func:`~makerlab.analytics.frames.df_counterparty_pnl`."""
    df = frames.df_counterparty_pnl(record, exc_tickers, plot=False)
    fig = go.Figure([_line(_x(df.index), df[col], str(col), "bps") for col in df.columns])
    _zero(fig)
    fig.update_xaxes(title_text="time (UTC)")
    fig.update_yaxes(title_text="PnL [bps of the market's traded notional]")
    title = "Counterparty PnL of taking every market order (zero fees, marked at mid)"
    return _style(fig, title, 480)
