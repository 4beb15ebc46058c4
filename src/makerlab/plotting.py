"""Matplotlib plumbing shared by the analytics and research plots: headless-safe figures,
time axes.

Figures are plain :class:`matplotlib.figure.Figure` objects (no pyplot state, no display
needed) unless ``show=True`` under an interactive backend, where pyplot creates them so
``plt.show()`` can display them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib
import matplotlib.dates as mdates
from matplotlib.axes import Axes
from matplotlib.figure import Figure

__all__ = ["BUY", "SELL", "finish", "new_figure", "time_axis"]

BUY, SELL = "#1a9850", "#d73027"  # green buys, red sells
_NON_INTERACTIVE = {"agg", "pdf", "ps", "svg", "cairo", "pgf", "template"}


def interactive() -> bool:
    """Whether the current backend can display windows."""
    backend = matplotlib.get_backend().lower()
    return backend not in _NON_INTERACTIVE and "inline" not in backend


def new_figure(show: bool, nrows: int = 1, ncols: int = 1, **kw: Any) -> tuple[Figure, Any]:
    """``(figure, axes)`` like ``plt.subplots``; pyplot only when it will be shown."""
    kw.setdefault("squeeze", True)
    if show and interactive():
        import matplotlib.pyplot as plt

        return plt.subplots(nrows, ncols, **kw)
    fig = Figure(figsize=kw.pop("figsize", None), layout=kw.pop("layout", None))
    return fig, fig.subplots(nrows, ncols, **kw)


def finish(fig: Figure, show: bool = False, save: str | Path | None = None) -> None:
    """Save ``fig`` as PNG to ``save`` (folders created) and/or show it, then release it."""
    if save is not None:
        Path(save).parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(save, dpi=120, bbox_inches="tight")
    if show and interactive():
        import matplotlib.pyplot as plt

        plt.show()
        plt.close(fig)


def time_axis(ax: Axes, label: str = "time (UTC)") -> None:
    """Concise UTC date labels on the x axis."""
    locator = mdates.AutoDateLocator(tz="UTC")
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator, tz="UTC"))
    ax.set_xlabel(label)
    ax.grid(alpha=0.3)
