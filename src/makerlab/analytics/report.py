"""The standard simulation report of a run: the tutorial's ``sim_report`` sections, built
from a :class:`~makerlab.analytics.record.RunRecord` so a saved run can be reported again
(``makerlab report RUN_DIR``) without replaying it.

Sections, in order: configs, stats, perf[inventory] (table and plot) per traded exchange,
markouts, fills (prices with fills) per traded market, counterparty_pnl, and — when the run
declared values — fair-price metrics per declared group. Then the code that produced the
run (the script saved with the run, if any).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from makerlab.analytics import frames, metrics, research
from makerlab.analytics.record import RunRecord
from makerlab.research.report import pdf_snapshot

__all__ = ["CODE_FILE", "simulation_report"]

CODE_FILE = "code.py"  # the script saved beside a run's record


def simulation_report(record: RunRecord, folder: str | Path, *, code_file: str | Path | None = None,
                      html: bool = True, include_comments: bool = False) -> list[Path]:
    """Write the report's plots and ``report.pdf`` (and ``report.html``) into ``folder``.

    Returns the paths of the report files written.
    """
    folder = Path(folder)
    stats = metrics.statistics(record)
    traded = [exc for exc, values in stats.items() if values is not None]
    data: list[tuple[str, Any, str]] = [("configs", record.config, "dict"),
                                        ("stats", stats, "dict")]
    for exc in traded:
        data += _exchange_sections(record, exc, folder)
    if traded:
        data.append(("markouts", _saved(frames.df_markouts, folder / "markouts.png", record),
                     "img"))
    for exc, ticker in _traded_markets(record, traded):
        path = folder / f"prices_{exc}_{ticker}.png"
        data.append(("fills", _saved(frames.df_prices, path, record, ticker, exc), "img"))
    data += _counterparty_section(record, folder)
    data += _fairprice_sections(record)
    pdf = folder / "report.pdf"
    written = pdf_snapshot(pdf, code_file=code_file, include_comments=include_comments,
                           report_data=data, html=folder / "report.html" if html else None)
    return [Path(p) for p in (written if isinstance(written, tuple) else (written,))]


def _saved(frame_fn: Any, path: Path, *args: Any) -> Path:
    frame_fn(*args, save=path, show=False)
    return path


def _exchange_sections(record: RunRecord, exc: str, folder: str | Path) -> list[tuple]:
    path = Path(folder) / f"exchange_{exc}.png"
    table = frames.df_exchange(record, exc, save=path, show=False)
    return [(f"perf[inventory] {exc}", table, "df"), (f"perf[inventory] {exc}", path, "img")]


def _traded_markets(record: RunRecord, traded: list[str]) -> list[tuple[str, str]]:
    fills = record.fills
    pairs = fills[fills["exc"].isin(traded)][["exc", "ticker"]].drop_duplicates()
    return [tuple(row) for row in pairs.itertuples(index=False)]


def _counterparty_section(record: RunRecord, folder: Path) -> list[tuple]:
    markets: dict[str, list[str]] = {}
    for exc, ticker in record.trades:
        markets.setdefault(exc, []).append(ticker)
    if not markets:
        return []
    path = _saved(frames.df_counterparty_pnl, folder / "counterparty_pnl.png", record, markets)
    return [("counterparty_pnl", path, "img")]


def _fairprice_sections(record: RunRecord) -> list[tuple]:
    declared = record.declarations
    if declared.empty:
        return []
    groups = sorted(g for g in declared["group"].dropna().unique())
    return [(f"fairprice metrics [{group}]",
             research.df_fairprices(record, group, plot=False)[0], "df") for group in groups]
