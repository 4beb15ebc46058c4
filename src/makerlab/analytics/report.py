"""The standard simulation report of a run: the tutorial's ``sim_report`` sections, built
from a :class:`~makerlab.analytics.record.RunRecord` so a saved run can be reported again
(``makerlab report RUN_DIR``) without replaying it.

Sections, in order: configs, stats, days and range summary (a run over more than one UTC
day: :func:`~makerlab.analytics.daily.report_sections`), perf[inventory] (table and plot)
per traded exchange,
markouts, fills (prices with fills) per traded market, counterparty_pnl, and — when the run
declared values — fair-price metrics per declared group. Then the code that produced the
run (the script saved with the run, if any). The PDF shows the plots as matplotlib PNGs, the
HTML as interactive plotly figures (:mod:`makerlab.analytics.interactive`).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from makerlab.analytics import daily, frames, interactive, metrics, research
from makerlab.analytics.record import RunRecord
from makerlab.research.report import html_snapshot, pdf_snapshot

__all__ = ["CODE_FILE", "simulation_report"]

CODE_FILE = "code.py"  # the script saved beside a run's record

# A report section: (title, PDF data, dtype, builder of its interactive HTML figure or None
# when the HTML shows the same data as the PDF).
Section = tuple[str, Any, str, Callable[[], Any] | None]


def simulation_report(record: RunRecord, folder: str | Path, *, code_file: str | Path | None = None,
                      html: bool = True, include_comments: bool = False) -> list[Path]:
    """Write the report's plots and ``report.pdf`` (and ``report.html``) into ``folder``.

    The PDF shows the matplotlib PNGs; the HTML shows interactive plotly figures
    (:mod:`makerlab.analytics.interactive`) in their place, with the same tables.
    Returns the paths of the report files written.
    """
    folder = Path(folder)
    sections = _sections(record, folder)
    options: dict[str, Any] = {"code_file": code_file, "include_comments": include_comments}
    pdf_data = [(title, data, dtype) for title, data, dtype, _ in sections]
    written = [pdf_snapshot(folder / "report.pdf", report_data=pdf_data, **options)]
    if html:
        html_data = [(title, data, dtype) if figure is None else (title, figure(), "plot")
                     for title, data, dtype, figure in sections]
        written.append(html_snapshot(folder / "report.html", report_data=html_data, **options))
    return [Path(p) for p in written]


def _sections(record: RunRecord, folder: Path) -> list[Section]:
    """Every section in report order; plots are saved as PNGs into ``folder``."""
    stats = metrics.statistics(record)
    traded = [exc for exc, values in stats.items() if values is not None]
    data: list[Section] = [("configs", record.config, "dict", None),
                           ("stats", stats, "dict", None), *daily.report_sections(record)]
    for exc in traded:
        data += _exchange_sections(record, exc, folder)
    if traded:
        data.append(_markouts_section(record, folder))
    for exc, ticker in _traded_markets(record, traded):
        data.append(_prices_section(record, exc, ticker, folder))
    data += _counterparty_section(record, folder)
    data += _fairprice_sections(record)
    return data


def _saved(frame_fn: Any, path: Path, *args: Any) -> Path:
    frame_fn(*args, save=path, show=False)
    return path


def _exchange_sections(record: RunRecord, exc: str, folder: Path) -> list[Section]:
    path = folder / f"exchange_{exc}.png"
    table = frames.df_exchange(record, exc, save=path, show=False)
    return [(f"perf[inventory] {exc}", table, "df", None),
            (f"perf[inventory] {exc}", path, "img",
             lambda: interactive.exchange_figure(record, exc))]


def _markouts_section(record: RunRecord, folder: Path) -> Section:
    """One markout summary (the bootstrap runs once) drawn as PNG and as plotly figure."""
    summary = frames.markout_summary(frames.df_markouts(record, plot=False))
    frames.plot_markouts(summary, save=folder / "markouts.png")
    return ("markouts", folder / "markouts.png", "img",
            lambda: interactive.summary_figure(summary))


def _prices_section(record: RunRecord, exc: str, ticker: str, folder: Path) -> Section:
    path = _saved(frames.df_prices, folder / f"prices_{exc}_{ticker}.png", record, ticker, exc)
    return ("fills", path, "img", lambda: interactive.prices_figure(record, ticker, exc))


def _traded_markets(record: RunRecord, traded: list[str]) -> list[tuple[str, str]]:
    fills = record.fills
    pairs = fills[fills["exc"].isin(traded)][["exc", "ticker"]].drop_duplicates()
    return [tuple(row) for row in pairs.itertuples(index=False)]


def _counterparty_section(record: RunRecord, folder: Path) -> list[Section]:
    markets: dict[str, list[str]] = {}
    for exc, ticker in record.trades:
        markets.setdefault(exc, []).append(ticker)
    if not markets:
        return []
    path = _saved(frames.df_counterparty_pnl, folder / "counterparty_pnl.png", record, markets)
    return [("counterparty_pnl", path, "img",
             lambda: interactive.counterparty_figure(record, markets))]


def _fairprice_sections(record: RunRecord) -> list[Section]:
    declared = record.declarations
    if declared.empty:
        return []
    groups = sorted(g for g in declared["group"].dropna().unique())
    return [(f"fairprice metrics [{group}]",
             research.df_fairprices(record, group, plot=False)[0], "df", None)
            for group in groups]
