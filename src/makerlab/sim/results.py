"""A replay's results: its records, the saved run and the analytics over them.

:class:`ReplayResults` keeps what a replay produces besides the venue's journal (``fills``,
``actions``): the equity ``stamps`` and the strategy's ``declarations``; it builds the
:class:`~makerlab.analytics.record.RunRecord` (once, when the replay has ended) and saves
it. :class:`Analytics` is the tutorial's analytics API (``statistics``, ``df_*``, ...)
over any object with a ``record()``: the results and the Replayer share it. Definitions
of every metric: docs/analytics.md.
"""

from __future__ import annotations

import importlib
import os
import shutil
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from makerlab.analytics.record import RunRecord

__all__ = ["Analytics", "ReplayResults"]


def _analytics(name: str) -> ModuleType:
    """``makerlab.analytics.<name>``, imported when first used: a replay alone never loads
    the analytics stack (pandas, scipy, matplotlib)."""
    return importlib.import_module(f"makerlab.analytics.{name}")


class Analytics:
    """The analytics of a run, each delegating to :mod:`makerlab.analytics` over
    :meth:`record`."""

    def record(self) -> RunRecord:
        raise NotImplementedError

    def statistics(self, **kwargs: Any) -> dict[str, dict[str, Any] | None]:
        """``{exc: statistics or None}`` (:func:`makerlab.analytics.metrics.statistics`)."""
        return _analytics("metrics").statistics(self.record(), **kwargs)

    def daily_statistics(self) -> Any:
        """One row per exchange and UTC day: pnl, return, trades, volume, fees, Sharpe, drawdown
        (:func:`makerlab.analytics.daily.daily_statistics`)."""
        return _analytics("daily").daily_statistics(self.record())

    def range_summary(self) -> dict[str, dict[str, Any]]:
        """``{exc: summary}`` of the whole range, day by day and overall
        (:func:`makerlab.analytics.daily.range_summary`)."""
        return _analytics("daily").range_summary(self.record())

    def statistics_exc(self, exc: str, **kwargs: Any) -> dict[str, Any] | None:
        return _analytics("metrics").statistics_exc(self.record(), exc, **kwargs)

    def df_exchange(self, exc: str, **kwargs: Any) -> Any:
        return _analytics("frames").df_exchange(self.record(), exc, **kwargs)

    def df_portfolio(self, **kwargs: Any) -> Any:
        return _analytics("frames").df_portfolio(self.record(), **kwargs)

    def df_markouts(self, **kwargs: Any) -> Any:
        return _analytics("frames").df_markouts(self.record(), **kwargs)

    def df_prices(self, ticker: str, exc: str, **kwargs: Any) -> Any:
        return _analytics("frames").df_prices(self.record(), ticker, exc, **kwargs)

    def df_fills(self, ticker: str, exc: str, **kwargs: Any) -> Any:
        return _analytics("frames").df_fills(self.record(), ticker, exc, **kwargs)

    def df_actions(self, exc: str | None = None, ticker: str | None = None) -> Any:
        return _analytics("frames").df_actions(self.record(), exc, ticker)

    def df_counterparty_pnl(self, exc_tickers: Mapping[str, Sequence[str]],
                            **kwargs: Any) -> Any:
        return _analytics("frames").df_counterparty_pnl(self.record(), exc_tickers, **kwargs)

    def df_declarations(self, **kwargs: Any) -> Any:
        return _analytics("research").df_declarations(self.record(), **kwargs)

    def augment_forward_prices(self, df: Any, **kwargs: Any) -> Any:
        return _analytics("research").augment_forward_prices(self.record(), df, **kwargs)

    def df_fairprices(self, group: str, **kwargs: Any) -> Any:
        return _analytics("research").df_fairprices(self.record(), group, **kwargs)


class ReplayResults(Analytics):
    """What a replay produces (see the module docstring).

    Args:
        replay: the Replayer (read through :meth:`RunRecord.from_replayer
            <makerlab.analytics.record.RunRecord.from_replayer>` only).
    """

    def __init__(self, replay: Any) -> None:
        self._replay = replay
        self.stamps: list[tuple[int, str, float, float, float]] = []
        self.declarations: list[dict[str, Any]] = []
        self._final: RunRecord | None = None

    def record(self) -> RunRecord:
        """The run as a :class:`~makerlab.analytics.record.RunRecord`: built once when the
        replay has ended, a snapshot so far while it runs."""
        record = _analytics("record").RunRecord
        if not self._replay.finished:
            return record.from_replayer(self._replay)
        if self._final is None:
            self._final = record.from_replayer(self._replay)
        return self._final

    def save(self, path: str | os.PathLike, code_file: str | os.PathLike | None = None) -> Path:
        """Save the record under ``path`` for ``makerlab report``, with a copy of the script
        that ran it (``code_file``, default: the ``__main__`` script unless it is an
        installed tool such as pytest)."""
        folder = self.record().save(Path(path))
        script = code_file or _main_script()
        if script is not None:
            shutil.copyfile(script, folder / _analytics("report").CODE_FILE)
        return folder


def _main_script() -> str | None:
    """The running script's path, unless it is an installed tool (pytest, ipython...)."""
    main = getattr(sys.modules.get("__main__"), "__file__", None)
    if main is None or not main.endswith(".py") or "site-packages" in main:
        return None
    return main
