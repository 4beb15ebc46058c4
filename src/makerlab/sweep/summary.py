"""A finished sweep's summary plot and report (PDF and HTML).

The plot shows the objective against the swept parameters: a line over one parameter, a
heatmap over two (the mean over any others, said in the title), a scatter when a parameter
has too many distinct values for a grid (optuna's continuous draws). The report
(:func:`makerlab.research.report.pdf_snapshot`) holds the sweep's settings, the results
table, the plot, the best configuration's full statistics (with their sample warnings next
to the numbers), the failed configurations with their errors, and the script.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from makerlab.plotting import finish, new_figure
from makerlab.sweep.search import objective_column
from makerlab.sweep.space import Range
from makerlab.sweep.worker import RECORD_DIR

if TYPE_CHECKING:
    from makerlab.sweep.backends import Backend
    from makerlab.sweep.runner import SweepResult

__all__ = ["plot_kind", "plot_summary", "write_summary"]

_GRID_VALUES = 25  # more distinct values than this: a scatter, not a grid
_KEY_STATS = ("pnl", "sharpe", "#trades", "maxdd(%)", "fill_ratio")


def write_summary(result: SweepResult, *, script: Path, search: str,
                  backend: Backend) -> dict[str, Path]:
    """Write ``summary.png``, ``report.pdf`` and ``report.html`` into the sweep's folder."""
    from makerlab.research.report import pdf_snapshot

    out = result.out
    plot = plot_summary(result.table, list(result.space), result.objective, out / "summary.png")
    data: list[tuple[str, Any, str]] = [
        ("sweep", _settings(result, script, search, backend), "dict"),
        ("results", _results_view(result), "df"),
    ]
    if plot is not None:
        data.append((f"{result.objective} over the parameters", plot, "img"))
    data += _best_section(result)
    if len(result.failed):
        columns = ["config", *result.space, "error"]
        data.append(("failed configurations", result.failed[columns], "df"))
    pdf, html = pdf_snapshot(out / "report.pdf", code_file=script, report_data=data,
                             include_comments=False, title="makerlab sweep report",
                             html=out / "report.html")
    files = {"report": Path(pdf), "html": Path(html)}
    if plot is not None:
        files["plot"] = plot
    return files


def _settings(result: SweepResult, script: Path, search: str, backend: Backend) -> dict:
    table = result.table
    return {"script": str(script),
            "parameters": {k: str(v) if isinstance(v, Range) else v
                           for k, v in result.space.items()},
            "search": search, "objective": result.objective,
            "configurations": len(table), "failed": len(result.failed),
            "backend": backend.name, "workers": backend.workers,
            "wall time (s)": round(result.wall_s, 2),
            "mean configuration wall time (s)": float(table.wall_s.mean())}


def _results_view(result: SweepResult) -> pd.DataFrame:
    """Config, parameters, status and the key statistics of the objective's exchange."""
    table = result.table
    column = objective_column(table.columns, result.objective)
    exc = column.partition(".")[0] + "." if column and "." in column else ""
    stats = [f"{exc}{s}" for s in _KEY_STATS if f"{exc}{s}" in table.columns]
    if column and column not in stats:
        stats.insert(0, column)
    return table[["config", *result.space, "status", *stats, "wall_s"]].set_index("config")


def _best_section(result: SweepResult) -> list[tuple[str, Any, str]]:
    """The best configuration's parameters and full statistics, read from its record."""
    from makerlab.analytics.metrics import statistics
    from makerlab.analytics.record import RunRecord

    table = result.table
    column = objective_column(table.columns, result.objective)
    ok = table[table.status == "ok"]
    if column is None or ok[column].isna().all():
        return []
    best = ok.loc[ok[column].astype(float).idxmax()]
    record = RunRecord.load(result.out / best.run_dir / RECORD_DIR)
    values = {name: best[name] for name in result.space}
    return [(f"best configuration by {result.objective}: {best.config}",
             {"parameters": values, "statistics": statistics(record)}, "dict")]


def plot_summary(table: pd.DataFrame, params: list[str], objective: str,
                 save: Path) -> Path | None:
    """Plot ``objective`` over the parameters that vary (see the module docstring); None
    when nothing can be plotted (no successful configuration, or no parameter varies)."""
    column = objective_column(table.columns, objective)
    ok = table[table.status == "ok"] if "status" in table else table
    if column is None or ok.empty:
        return None
    ok = ok.assign(_y=pd.to_numeric(ok[column], errors="coerce"))
    varying = [p for p in params if ok[p].nunique() > 1]
    if not varying:
        return None
    fig, ax = new_figure(False, figsize=(7, 4.8), layout="constrained")
    kind = plot_kind(ok, varying)
    if kind == "line":
        _line(ax, ok, varying[0], column)
    elif kind == "scatter":
        _scatter(fig, ax, ok, varying[:2], column)
    else:
        _heatmap(fig, ax, ok, varying, column)
    finish(fig, save=save)
    return save


def plot_kind(table: pd.DataFrame, varying: list[str]) -> str:
    """``line`` over one parameter, ``heatmap`` over two with a few values each, else
    ``scatter``."""
    if len(varying) == 1:
        return "line"
    if any(table[p].nunique() > _GRID_VALUES for p in varying[:2]):
        return "scatter"
    return "heatmap"


def _line(ax: Any, ok: pd.DataFrame, x: str, objective: str) -> None:
    line = ok.groupby(x, sort=True)._y.mean()
    ax.plot(_positions(line.index), line.to_numpy(), marker="o")
    _ticks(ax, "x", line.index)
    ax.set_xlabel(x)
    ax.set_ylabel(objective)
    ax.set_title(objective)
    ax.grid(alpha=0.3)


def _scatter(fig: Any, ax: Any, ok: pd.DataFrame, xy: list[str], objective: str) -> None:
    """One point per configuration, coloured by the objective."""
    points = ax.scatter(ok[xy[0]], ok[xy[1]], c=ok._y, cmap="viridis")
    fig.colorbar(points, ax=ax, label=objective)
    ax.set_xlabel(xy[0])
    ax.set_ylabel(xy[1])
    ax.set_title(f"{objective}, one point per configuration")
    ax.grid(alpha=0.3)


def _heatmap(fig: Any, ax: Any, ok: pd.DataFrame, varying: list[str], objective: str) -> None:
    x, y = varying[0], varying[1]
    grid = ok.pivot_table(index=y, columns=x, values="_y", aggfunc="mean").sort_index()
    values = grid.to_numpy(float)
    image = ax.imshow(values, origin="lower", aspect="auto", cmap="viridis")
    fig.colorbar(image, ax=ax, label=objective)
    for (i, j), v in np.ndenumerate(values):
        if np.isfinite(v):
            light = image.norm(v) > 0.6  # viridis turns yellow: dark text there
            ax.text(j, i, f"{v:.3g}", ha="center", va="center", fontsize=8,
                    color="black" if light else "white")
    _ticks(ax, "x", grid.columns, always=True)
    _ticks(ax, "y", grid.index, always=True)
    ax.set_xlabel(x)
    ax.set_ylabel(y)
    rest = varying[2:]
    ax.set_title(objective + (f" (mean over {', '.join(rest)})" if rest else ""))


def _positions(labels: pd.Index) -> np.ndarray:
    return np.arange(len(labels)) if labels.dtype == object else labels.to_numpy(float)


def _ticks(ax: Any, axis: str, labels: pd.Index, always: bool = False) -> None:
    """Label cell positions with the values (a numeric line keeps its numeric axis)."""
    if always or labels.dtype == object:
        getattr(ax, f"set_{axis}ticks")(np.arange(len(labels)), [str(v) for v in labels])
