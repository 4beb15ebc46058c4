"""What to run next: every grid configuration, or optuna's suggestions.

A search hands out parameter values (``next_values()``, None when done) and hears back each
configuration's result row (``tell(index, row)``). The objective is a statistic of the row:
``pnl``, ``sharpe``, ... (the one exchange that reports it) or ``EXC.KEY`` (``binance.pnl``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, Protocol

from makerlab.errors import ConfigError
from makerlab.sweep.space import Range, Space, grid

__all__ = ["GridSearch", "OptunaSearch", "Search", "objective_column", "objective_value"]


class Search(Protocol):
    """A source of configurations (see the module docstring)."""

    total: int

    def next_values(self) -> dict[str, Any] | None: ...

    def tell(self, index: int, row: Mapping[str, Any]) -> None: ...


def objective_column(columns: Any, objective: str) -> str | None:
    """The column holding ``objective``: itself if it is one, else the one ``EXC.objective``
    (None if no exchange reports it).

    Raises:
        ConfigError: several exchanges report it (name one: ``EXC.objective``).
    """
    columns = list(columns)
    if objective in columns:
        return objective
    matches = sorted(c for c in columns if c.partition(".")[2] == objective)
    if len(matches) > 1:
        raise ConfigError(f"objective {objective!r} is reported by several exchanges "
                          f"({', '.join(matches)}); name one, e.g. --objective {matches[0]}")
    return matches[0] if matches else None


def objective_value(row: Mapping[str, Any], objective: str) -> float:
    """The row's objective as a float; NaN for a failed configuration or a missing value."""
    if row.get("status") != "ok":
        return math.nan
    column = objective_column(row, objective)
    value = row.get(column) if column is not None else None
    if isinstance(value, bool) or not isinstance(value, int | float):
        return math.nan
    return float(value)


class GridSearch:
    """Every configuration of the cartesian product (:func:`makerlab.sweep.space.grid`)."""

    def __init__(self, space: Space) -> None:
        self._configs = grid(space)
        self.total = len(self._configs)
        self._next = 0

    def next_values(self) -> dict[str, Any] | None:
        if self._next == self.total:
            return None
        self._next += 1
        return self._configs[self._next - 1]

    def tell(self, index: int, row: Mapping[str, Any]) -> None:
        """A grid does not adapt."""


class OptunaSearch:
    """``trials`` configurations suggested by optuna's TPE sampler (seeded), maximising the
    objective. Lists are categorical choices, ranges are sampled within their bounds (on a
    grid of ``step``, or log-scaled), single values stay fixed. A failed configuration or a
    NaN objective is a failed trial. With several workers, trials in flight are suggested
    before the earlier ones finish, so the sequence depends on ``workers`` (each
    configuration's result does not)."""

    def __init__(self, space: Space, trials: int, objective: str, seed: int = 0) -> None:
        optuna = _import_optuna()
        if trials < 1:
            raise ConfigError(f"--trials must be >= 1, got {trials}")
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        self._optuna = optuna
        self._fixed = {k: v[0] for k, v in space.items() if isinstance(v, list) and len(v) == 1}
        self._distributions = {k: _distribution(optuna, v) for k, v in space.items()
                               if k not in self._fixed}
        if not self._distributions:
            raise ConfigError("--search optuna needs a parameter with several values or a range")
        sampler = optuna.samplers.TPESampler(seed=seed)
        self.study = optuna.create_study(direction="maximize", sampler=sampler)
        self.objective, self.total = objective, trials
        self._trials: dict[int, Any] = {}

    def next_values(self) -> dict[str, Any] | None:
        if len(self._trials) == self.total:
            return None
        trial = self.study.ask(self._distributions)
        self._trials[len(self._trials)] = trial
        return {**self._fixed, **trial.params}

    def tell(self, index: int, row: Mapping[str, Any]) -> None:
        value = objective_value(row, self.objective)
        if math.isfinite(value):
            self.study.tell(self._trials[index], value)
        else:
            self.study.tell(self._trials[index], state=self._optuna.trial.TrialState.FAIL)


def _distribution(optuna: Any, values: list[Any] | Range) -> Any:
    dists = optuna.distributions
    if isinstance(values, list):
        return dists.CategoricalDistribution(values)
    if values.is_int:
        return dists.IntDistribution(values.low, values.high, log=values.log,
                                     step=values.step or 1)
    return dists.FloatDistribution(values.low, values.high, log=values.log, step=values.step)


def _import_optuna() -> Any:
    try:
        import optuna
    except ImportError:
        raise ConfigError("--search optuna needs optuna: pip install 'makerlab[sweep]'") from None
    return optuna
