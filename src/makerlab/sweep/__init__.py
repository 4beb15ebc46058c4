"""Parameter sweeps: one independent replay per configuration, on a process pool or Ray.

A script declares its strategy parameters with :func:`params` and runs as it always does;
:func:`sweep` (or ``makerlab sweep``) runs it once per configuration, with the parameters
and the Replayer arguments (fees, latencies, seed, queue model) of that configuration, and
gathers every run's statistics into one table. See ``docs/sweep.md``.

Modules: ``context`` (what the script sees), ``space`` (``--param`` syntax, grid),
``replayer_args`` (parameters that are Replayer arguments), ``worker`` (one
configuration), ``backends`` (serial, process pool, Ray), ``search`` (grid, optuna),
``runner`` (:func:`sweep`), ``summary`` (plot and report).
"""

from makerlab.sweep.context import params
from makerlab.sweep.runner import SweepResult, sweep
from makerlab.sweep.space import Range

__all__ = ["Range", "SweepResult", "params", "sweep"]
