"""The parameter space of a sweep: ``--param`` syntax, ranges and the grid.

``--param NAME=V1,V2,...`` lists values; each is read as an int, a float, ``true``/``false``
or else kept as text (``2024-08-08:23``, ``power:3``). ``--param NAME=LOW:HIGH`` is a range
(both ends numbers; ints when both are ints): ``LOW:HIGH:STEP`` also lists its values for a
grid, ``LOW:HIGH:log`` samples on a log scale (optuna only). A grid sweep runs the cartesian
product of every parameter's values, in the order the parameters are given.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from makerlab.errors import ConfigError

__all__ = ["Range", "Space", "grid", "literal", "parse_param", "parse_params"]


@dataclass(frozen=True)
class Range:
    """A numeric range ``[low, high]``: a step makes it a grid, ``log`` a log-scale draw."""

    low: int | float
    high: int | float
    step: int | float | None = None
    log: bool = False

    def __post_init__(self) -> None:
        if not self.low < self.high:
            raise ConfigError(f"range {self}: low must be below high")
        if self.step is not None and not self.step > 0:
            raise ConfigError(f"range {self}: step must be positive")
        if self.log and not self.low > 0:
            raise ConfigError(f"range {self}: a log range needs low > 0")

    @property
    def is_int(self) -> bool:
        return all(isinstance(v, int) for v in (self.low, self.high, self.step or 1))

    def values(self) -> list[int | float]:
        """The grid ``low, low + step, ...`` up to ``high`` (included within rounding)."""
        if self.step is None:
            raise ConfigError(f"range {self.low}:{self.high} has no step; give LOW:HIGH:STEP "
                              "for a grid, or sample it with --search optuna")
        count = math.floor((self.high - self.low) / self.step + 1e-9) + 1
        values = [self.low + i * self.step for i in range(count)]
        return values if self.is_int else [round(v, 12) for v in values]

    def __str__(self) -> str:
        tail = f":{self.step}" if self.step is not None else ":log" if self.log else ""
        return f"{self.low}:{self.high}{tail}"


Space = dict[str, list[Any] | Range]


def literal(text: str) -> Any:
    """A command-line value: int, float, bool (``true``/``false``) or the text itself."""
    lowered = text.strip().lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text.strip()


def _range(text: str) -> Range | None:
    """``LOW:HIGH[:STEP|:log]`` as a :class:`Range`, or None if the ends are not numbers."""
    parts = text.split(":")
    if len(parts) not in (2, 3):
        return None
    low, high = literal(parts[0]), literal(parts[1])
    if not all(_is_number(v) for v in (low, high)):
        return None
    if len(parts) == 2:
        return Range(low, high)
    if parts[2].strip().lower() == "log":
        return Range(low, high, log=True)
    step = literal(parts[2])
    if not _is_number(step):
        raise ConfigError(f"range {text!r}: the third part must be a step or 'log'")
    return Range(low, high, step)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def parse_param(text: str) -> tuple[str, list[Any] | Range]:
    """``'NAME=V1,V2'`` → ``(NAME, [V1, V2])``; ``'NAME=LOW:HIGH[:STEP]'`` → a Range."""
    name, sep, values = text.partition("=")
    name = name.strip()
    if not sep or not name or not values.strip():
        raise ConfigError(f"--param {text!r}: expected NAME=V1,V2,... or NAME=LOW:HIGH")
    items = [item for item in values.split(",") if item.strip()]
    ranges = [_range(item) for item in items]
    if any(r is not None for r in ranges):
        if len(items) > 1:
            raise ConfigError(f"--param {text!r}: a range must be the parameter's only value")
        return name, ranges[0]  # type: ignore[return-value]
    return name, [literal(item) for item in items]


def parse_params(texts: Sequence[str]) -> Space:
    """Every ``--param`` into a :data:`Space` (a name given twice is an error)."""
    space: Space = {}
    for text in texts:
        name, values = parse_param(text)
        if name in space:
            raise ConfigError(f"--param {name} is given twice")
        space[name] = values
    return space


def grid(space: Mapping[str, list[Any] | Range]) -> list[dict[str, Any]]:
    """Every configuration of the cartesian product, first parameter varying slowest."""
    names = list(space)
    axes = [v.values() if isinstance(v, Range) else list(v) for v in space.values()]
    for name, axis in zip(names, axes, strict=True):
        if not axis:
            raise ConfigError(f"parameter {name} has no values")
    return [dict(zip(names, combo, strict=True)) for combo in itertools.product(*axes)]
