"""Plotly twins of the report plots and the report's interactive HTML."""

import re

import pandas as pd
import plotly.graph_objects as go
from pypdf import PdfReader

from makerlab.analytics import frames, interactive
from makerlab.analytics.report import simulation_report


def names(fig: go.Figure) -> list[str]:
    return [trace.name for trace in fig.data]


def test_exchange_figure_has_pnl_over_inventory_on_a_shared_utc_axis(record):
    fig = interactive.exchange_figure(record, "X")
    assert isinstance(fig, go.Figure)
    assert names(fig) == ["PnL", "T inventory"]
    assert [trace.yaxis for trace in fig.data] == ["y", "y2"]
    assert list(fig.data[0].y) == [0, 1, -1, 2, 2]  # equity - 1000 at the stamps
    assert fig.layout.xaxis.matches == "x2"  # shared x
    assert fig.layout.yaxis.title.text == "PnL [quote ccy]"
    assert fig.layout.yaxis2.title.text == "inventory notional [quote ccy]"
    assert fig.layout.xaxis2.title.text == "time (UTC)"
    assert "final PnL +2.00 quote ccy" in fig.layout.title.text
    assert pd.Timestamp(fig.data[0].x[1]) == pd.Timestamp("1970-01-01 00:00:01")  # UTC, naive


def test_markouts_figure_shows_the_mean_in_bps_with_its_bootstrap_band(record):
    fig = interactive.markouts_figure(record)
    band_high, band_low, mean, tick = fig.data
    assert band_low.fill == "tonexty" and "bootstrap CI" in band_low.name
    assert band_high.showlegend is False  # one legend entry for the band
    assert mean.name == "mean markout at horizon (3 fills)"
    assert mean.x[0] == 1.0 and mean.x[-1] == 151.0  # horizons in seconds
    expected = frames.df_markouts(record, plot=False).mean() * 1e4
    assert abs(tick.y[0] - expected["Tick"]) < 1e-9
    assert abs(mean.y[0] - expected["1s"]) < 1e-9
    assert all(low <= m <= high for low, m, high in zip(band_low.y, mean.y, band_high.y,
                                                        strict=True) if m == m)
    assert tick.x == (0.0,) and tick.error_y.type == "data"
    assert fig.layout.xaxis.title.text == "horizon after the fill [s]"
    assert fig.layout.yaxis.title.text == "markout [bps of fill price]"


def test_prices_figure_marks_fills_with_hover_details_and_the_position(record):
    fig = interactive.prices_figure(record, "T", "X")
    assert names(fig) == ["best bid", "best ask", "our buys", "our sells", "position"]
    bid, _, buys, sells, position = fig.data
    assert bid.line.shape == "hv" and list(bid.y[:3]) == [99.5, 99.5, 100.5]
    assert list(buys.y) == [99.5, 99.5] and list(sells.y) == [101.5]
    assert buys.marker.symbol == "triangle-up" and sells.marker.symbol == "triangle-down"
    assert buys.text[0] == "buy 1 @ 99.5<br>maker, fee 0.01 quote ccy<br>position after 1"
    assert "taker, fee 0.03" in buys.text[1] and sells.text[0].startswith("sell 2 @ 101.5")
    assert position.yaxis == "y2" and list(position.y) == [1, -1, 0, 0]
    assert fig.layout.yaxis.title.text == "price [quote ccy]"
    assert fig.layout.yaxis2.title.text == "position [T base units]"
    assert fig.layout.xaxis.title.text == "exchange time (UTC)"


def test_counterparty_figure_has_one_line_per_market_in_bps(record):
    fig = interactive.counterparty_figure(record, {"X": ["T"]})
    assert names(fig) == ["X/T"]
    assert len(fig.data[0].y) == 11  # the stamp grid 0..10 s
    assert fig.layout.yaxis.title.text == "PnL [bps of the market's traded notional]"
    assert fig.layout.xaxis.title.text == "time (UTC)"


def test_every_figure_has_a_set_height(record):
    figures = [interactive.exchange_figure(record, "X"), interactive.markouts_figure(record),
               interactive.prices_figure(record, "T", "X"),
               interactive.counterparty_figure(record, {"X": ["T"]})]
    assert all(400 <= fig.layout.height <= 800 for fig in figures)


def test_report_html_is_interactive_and_offline_while_the_pdf_keeps_its_images(
        record, tmp_path):
    pdf, html = simulation_report(record, tmp_path)
    assert (pdf.name, html.name) == ("report.pdf", "report.html")
    page = html.read_text()
    assert page.count("Plotly.newPlot") == 4  # exchange, markouts, fills, counterparty
    assert page.count('class="plotly-graph-div"') == 4
    assert not re.search(r"<script[^>]+src=[\"']?https?:", page)  # plotly.js is inlined
    assert "<img " not in page  # every plot is a plotly figure in the HTML
    assert "fairprice metrics [fair]" in page and "configs" in page  # tables as before
    images = [img for p in PdfReader(pdf).pages for img in p.images]
    assert len(images) == 4  # exchange, markouts, prices, counterparty PNGs


def test_report_without_html_writes_only_the_pdf(record, tmp_path):
    assert simulation_report(record, tmp_path, html=False) == [tmp_path / "report.pdf"]
    assert not (tmp_path / "report.html").exists()
