"""Queue-position models for a resting order at one price level of an L2 book.

An L2 feed shows only the total size at a price, so where our order sits in the queue
must be estimated. A :class:`QueueState` holds the estimate for one order; a model updates
it from three events the engine sees at the order's price, and the engine asks how much
of the order the trades have reached. The replayed book never contains our own order.

Rules shared by every model (sizes are floats in the instrument's quantity unit):

- **join at the back**: a new order has the whole displayed level ahead of it.
- **trades eat the front first**: a trade at our price shrinks the queue ahead; the part
  of the trade beyond the queue ahead becomes fillable for our order.
- **trades are not counted twice**: trade size seen since the last level update is
  subtracted from the next level decrease before the model splits it.
- **increases go behind**: a level increase (net of trades) never moves us back; the
  queue ahead is only capped at the new level size.
- **ahead never exceeds the level and is never negative**.
- **fillable never exceeds what traded**: it only grows by trade size beyond the queue
  ahead, and :meth:`QueueModel.consume` takes from it what the engine fills.
- **an empty level that stays empty changes nothing**: ``on_level_change(state, 0, 0)``
  with no trade since the last update leaves the state as it is. The engine relies on it:
  it reports level changes only at levels displayed now or at the last update, or traded
  since (:mod:`makerlab.sim.matching`), so a model of your own must keep this rule.

How a level decrease net of trades (cancellations) is split between the queue ahead
(``front``) and behind (``back = prev_qty - traded - front``) is the one thing models
differ in. The maths is kept in plain functions of floats so the engine can compile it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np

from makerlab.errors import ConfigError

__all__ = [
    "QUEUE_STATE_DTYPE",
    "LogProbQueue",
    "LogProbQueue2",
    "PowerProbQueue",
    "PowerProbQueue2",
    "PowerProbQueue3",
    "QueueModel",
    "QueueState",
    "RiskAverseQueue",
    "after_decrease",
    "after_trade",
    "log_prob",
    "log_prob2",
    "power_prob",
    "power_prob2",
    "power_prob3",
]

#: The same record as :class:`QueueState`, for engines that keep states in arrays.
QUEUE_STATE_DTYPE = np.dtype([("ahead", "f8"), ("traded", "f8"), ("fillable", "f8")])


@dataclass(slots=True)
class QueueState:
    """Queue estimate of one resting order.

    Attributes:
        ahead: displayed size ahead of our order at its price.
        traded: trade size at our price since the last level update.
        fillable: trade size that went past our position and is not yet filled.
    """

    ahead: float = 0.0
    traded: float = 0.0
    fillable: float = 0.0


@runtime_checkable
class QueueModel(Protocol):
    """Updates a :class:`QueueState` from the events at the order's price."""

    def on_new(self, state: QueueState, level_qty: float) -> None:
        """Our order joined a level showing ``level_qty``."""
        ...

    def on_trade(self, state: QueueState, qty: float) -> None:
        """A trade of ``qty`` hit the level at our price (on our side)."""
        ...

    def on_level_change(self, state: QueueState, prev_qty: float, new_qty: float) -> None:
        """The level's displayed size went from ``prev_qty`` to ``new_qty``."""
        ...

    def fillable(self, state: QueueState) -> float:
        """Size the trades have reached past our position and the engine may fill."""
        ...

    def consume(self, state: QueueState, qty: float) -> None:
        """The engine filled ``qty`` of the fillable size."""
        ...


# ---- the maths, in plain floats --------------------------------------------------------

def after_trade(ahead: float, fillable: float, qty: float) -> tuple[float, float]:
    """``(ahead, fillable)`` after a trade of ``qty`` at our price."""
    eaten = min(ahead, qty)
    return ahead - eaten, fillable + (qty - eaten)


def after_decrease(front: float, back: float, chg: float, prob_back: float,
                   new_qty: float) -> float:
    """Queue ahead after a decrease ``chg > 0``, a share ``prob_back`` of it from behind.

    What ``back`` cannot absorb comes from the front; the result is in ``[0, new_qty]``.
    """
    if not math.isfinite(prob_back):
        prob_back = 1.0
    est = front - (1.0 - prob_back) * chg + min(back - prob_back * chg, 0.0)
    return min(max(est, 0.0), max(new_qty, 0.0))


def power_prob(front: float, back: float, n: float) -> float:
    """``back^n / (back^n + front^n)``: share of a decrease taken from behind."""
    fb, ff = back**n, front**n
    return fb / (fb + ff) if fb + ff > 0 else 1.0


def power_prob2(front: float, back: float, n: float) -> float:
    """``back^n / (back + front)^n``."""
    total = (back + front) ** n
    return back**n / total if total > 0 else 1.0


def power_prob3(front: float, back: float, n: float) -> float:
    """``1 - (front / (front + back))^n``."""
    total = front + back
    return 1.0 - (front / total) ** n if total > 0 else 1.0


def log_prob(front: float, back: float) -> float:
    """``log(1+back) / (log(1+back) + log(1+front))``."""
    lb, lf = math.log1p(back), math.log1p(front)
    return lb / (lb + lf) if lb + lf > 0 else 1.0


def log_prob2(front: float, back: float) -> float:
    """``log(1+back) / log(1+back+front)``."""
    total = math.log1p(back + front)
    return math.log1p(back) / total if total > 0 else 1.0


# ---- models ------------------------------------------------------------------------------

class _QueueRules:
    """The shared rules of the module docstring; subclasses split decreases."""

    __slots__ = ()

    def on_new(self, state: QueueState, level_qty: float) -> None:
        state.ahead, state.traded, state.fillable = max(float(level_qty), 0.0), 0.0, 0.0

    def on_trade(self, state: QueueState, qty: float) -> None:
        if qty < 0:
            raise ConfigError(f"trade size must be >= 0, got {qty}")
        state.ahead, state.fillable = after_trade(state.ahead, state.fillable, float(qty))
        state.traded += qty

    def on_level_change(self, state: QueueState, prev_qty: float, new_qty: float) -> None:
        chg = prev_qty - new_qty - state.traded
        front, back = state.ahead, max(prev_qty - state.traded - state.ahead, 0.0)
        state.traded = 0.0
        if chg <= 0:
            state.ahead = min(state.ahead, max(float(new_qty), 0.0))
        else:
            state.ahead = self._decrease(front, back, chg, float(new_qty))

    def fillable(self, state: QueueState) -> float:
        return state.fillable

    def consume(self, state: QueueState, qty: float) -> None:
        if not 0 <= qty <= state.fillable:
            raise ConfigError(f"can fill 0..{state.fillable} from the queue, not {qty}")
        state.fillable -= qty

    def _decrease(self, front: float, back: float, chg: float, new_qty: float) -> float:
        raise NotImplementedError


@dataclass(frozen=True, slots=True)
class RiskAverseQueue(_QueueRules):
    """The pessimistic model: only trades move us forward.

    - **cancels are behind us**: a level decrease net of trades never shrinks the queue
      ahead, except that the queue ahead is capped at the new level size.
    """

    def _decrease(self, front: float, back: float, chg: float, new_qty: float) -> float:
        return min(front, max(new_qty, 0.0))


@dataclass(frozen=True, slots=True)
class PowerProbQueue(_QueueRules):
    """Cancels split by a power law of the sizes around us.

    - **power split**: a share ``back^n / (back^n + front^n)`` of a decrease net of trades
      is taken from behind us, the rest from ahead.
    """

    n: float = 2.0

    def __post_init__(self) -> None:
        _check_power(self)

    def _decrease(self, front: float, back: float, chg: float, new_qty: float) -> float:
        return after_decrease(front, back, chg, power_prob(front, back, self.n), new_qty)


@dataclass(frozen=True, slots=True)
class PowerProbQueue2(_QueueRules):
    """- **power split 2**: a share ``back^n / (back + front)^n`` is taken from behind."""

    n: float = 2.0

    def __post_init__(self) -> None:
        _check_power(self)

    def _decrease(self, front: float, back: float, chg: float, new_qty: float) -> float:
        return after_decrease(front, back, chg, power_prob2(front, back, self.n), new_qty)


@dataclass(frozen=True, slots=True)
class PowerProbQueue3(_QueueRules):
    """- **power split 3**: a share ``1 - (front / (front + back))^n`` is taken from behind."""

    n: float = 2.0

    def __post_init__(self) -> None:
        _check_power(self)

    def _decrease(self, front: float, back: float, chg: float, new_qty: float) -> float:
        return after_decrease(front, back, chg, power_prob3(front, back, self.n), new_qty)


@dataclass(frozen=True, slots=True)
class LogProbQueue(_QueueRules):
    """- **log split**: a share ``log(1+back) / (log(1+back) + log(1+front))`` is taken
    from behind."""

    def _decrease(self, front: float, back: float, chg: float, new_qty: float) -> float:
        return after_decrease(front, back, chg, log_prob(front, back), new_qty)


@dataclass(frozen=True, slots=True)
class LogProbQueue2(_QueueRules):
    """- **log split 2**: a share ``log(1+back) / log(1+back+front)`` is taken from behind."""

    def _decrease(self, front: float, back: float, chg: float, new_qty: float) -> float:
        return after_decrease(front, back, chg, log_prob2(front, back), new_qty)


def _check_power(model: PowerProbQueue | PowerProbQueue2 | PowerProbQueue3) -> None:
    if not (math.isfinite(model.n) and model.n > 0):
        raise ConfigError(f"{type(model).__name__}: n must be a positive number, got {model.n}")
