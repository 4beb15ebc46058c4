"""Where configurations run: in this process, in a local process pool, or on Ray.

Every backend has one method, ``run(next_task, done)``: it keeps at most ``workers``
configurations in flight, asking ``next_task()`` for the next one (None: no more) whenever
a worker is free, and calls ``done(task, row)`` as each finishes, in completion order. A
configuration's result does not depend on the backend: each runs the same
:func:`~makerlab.sweep.worker.run_configuration` on its own seeded replay.

- ``serial``: one after the other in this process (debugging, the benchmark's baseline).
- ``local``: a :class:`~concurrent.futures.ProcessPoolExecutor`. Its workers are forked
  from a fork server (:data:`POOL_PRELOAD` imported once, in a process that never held a
  thread: safe with the driver's threads, and a worker starts in milliseconds instead of
  paying makerlab's imports); spawned fresh interpreters where there is no fork server
  (Windows). A worker that dies (a crash, out of memory) fails the configurations in
  flight on it and the pool is replaced; the sweep goes on. Each worker first imports the
  driver's main script, as multiprocessing's forkserver and spawn methods do, so a script
  that starts the sweep at import (outside ``if __name__ == '__main__':``) is refused
  when the pool is made, before anything runs (:func:`check_main_guard`): its workers
  would start the sweep again and die.
- ``ray``: Ray tasks (``max_retries=0``: a failure is a result, not retried). With an
  ``address`` it joins that cluster; otherwise it starts a local Ray with ``workers`` CPUs
  and stops it at the end. Cluster nodes need makerlab installed, and the script, its data
  and the output folder at the same paths (a shared file system).
"""

from __future__ import annotations

import ast
import gc
import multiprocessing
import os
import signal
import sys
import threading
import traceback
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from types import FrameType
from typing import Any, Protocol

from makerlab.errors import ConfigError
from makerlab.sweep.worker import Task, run_configuration

__all__ = [
    "BACKENDS",
    "POOL_PRELOAD",
    "Backend",
    "PoolBackend",
    "RayBackend",
    "SerialBackend",
    "check_main_guard",
    "failed_row",
    "frozen_configuration",
    "make_backend",
    "pool_context",
]

NextTask = Callable[[], Task | None]
Done = Callable[[Task, dict[str, Any]], None]
BACKENDS = ("serial", "local", "ray")


class Backend(Protocol):
    """Runs configurations (see the module docstring)."""

    name: str
    workers: int

    def run(self, next_task: NextTask, done: Done) -> None: ...


def failed_row(task: Task, error: str, trace: str | None = None) -> dict[str, Any]:
    """The row of a configuration whose worker failed before it could report."""
    nan = float("nan")
    return {"config": task.id, **task.values, "status": "error", "error": error,
            "traceback": trace, "run_dir": f"runs/{task.id}", "wall_s": nan, "cpu_s": nan,
            "started": nan, "worker": None}


class SerialBackend:
    """Each configuration in turn, in this process (its heap frozen meanwhile, as a pool
    worker's: see :func:`frozen_configuration`)."""

    name = "serial"
    workers = 1

    def run(self, next_task: NextTask, done: Done) -> None:
        # a caller that froze objects itself has its heap left as it is
        configuration = run_configuration if gc.get_freeze_count() else frozen_configuration
        try:
            while (task := next_task()) is not None:
                done(task, configuration(task))
        finally:
            if configuration is frozen_configuration:
                gc.unfreeze()  # this process's objects are collected again


def frozen_configuration(task: Task) -> dict[str, Any]:
    """:func:`run_configuration`, then what survived it (the modules and caches it loaded)
    frozen: the next configuration's cleanup collection walks only that configuration's
    objects, not the whole heap again (a full collection of the warm heap costs ~0.2 s)."""
    row = run_configuration(task)
    gc.freeze()
    return row


def _init_worker(environ: dict[str, str]) -> None:
    # the sweep's environment, not the one the fork server started with (a driver may set
    # credentials between two sweeps; the fork server lives as long as the driver)
    os.environ.clear()
    os.environ.update(environ)
    os.environ["MPLBACKEND"] = "Agg"  # a worker never opens plot windows
    gc.freeze()  # the fork server's heap: never walked again, so its pages stay shared


# What a configuration's script and its replay import: loaded once by the fork server.
POOL_PRELOAD = ("numpy", "pandas", "pyarrow.parquet", "matplotlib.backends.backend_agg",
                "makerlab", "makerlab.sim.replayer", "makerlab.analytics",
                "makerlab.analytics.report", "makerlab.sweep.worker")


def pool_context() -> multiprocessing.context.BaseContext:
    """The fork server's context (with :data:`POOL_PRELOAD`), else spawn's."""
    if "forkserver" not in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("spawn")
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(list(POOL_PRELOAD))
    return context


class PoolBackend:
    """A pool of ``workers`` processes forked from a fork server (see the module docstring)."""

    name = "local"

    def __init__(self, workers: int) -> None:
        check_main_guard()
        self.workers = workers

    def _pool(self) -> ProcessPoolExecutor:
        return ProcessPoolExecutor(self.workers, mp_context=pool_context(),
                                   initializer=_init_worker, initargs=(dict(os.environ),))

    def run(self, next_task: NextTask, done: Done) -> None:
        pool = self._pool()
        pending: dict[Future, Task] = {}
        try:
            while True:
                pool = self._fill(pool, pending, next_task)
                if not pending:
                    return
                finished, _ = wait(pending, return_when=FIRST_COMPLETED)
                for future in finished:
                    task = pending.pop(future)
                    done(task, _pool_row(future, task))
        finally:
            pool.shutdown(cancel_futures=True)

    def _fill(self, pool: ProcessPoolExecutor, pending: dict[Future, Task],
              next_task: NextTask) -> ProcessPoolExecutor:
        """Submit until ``workers`` are busy; a broken pool is replaced first."""
        while len(pending) < self.workers and (task := next_task()) is not None:
            try:
                pending[pool.submit(frozen_configuration, task)] = task
            except BrokenProcessPool:
                pool.shutdown(cancel_futures=True)
                pool = self._pool()
                pending[pool.submit(frozen_configuration, task)] = task
        return pool


def check_main_guard() -> None:
    """Raise ConfigError if the main script is running this call at import, outside an
    ``if __name__ == '__main__':`` block.

    A pool worker imports the main script before it runs anything (as ``__mp_main__``;
    multiprocessing skips a package's ``__main__``, so ``python -m makerlab`` is safe), so
    such a call would start the sweep again in every worker and kill it; each
    configuration would fail as a dead worker's. Nothing to check without a script file
    (an interactive session, a notebook) or when the call does not come from the script's
    top level.
    """
    main = sys.modules.get("__main__")
    path = getattr(main, "__file__", None)
    spec_name = getattr(getattr(main, "__spec__", None), "name", "") or ""
    if main is None or path is None or spec_name.endswith(".__main__"):
        return
    frame: FrameType | None = sys._getframe(1)
    while frame is not None and not (frame.f_code.co_name == "<module>"
                                     and frame.f_globals is vars(main)):
        frame = frame.f_back
    if frame is None:
        return
    line = frame.f_lineno
    for statement in ast.parse(Path(path).read_text(encoding="utf-8")).body:
        if statement.lineno <= line <= (statement.end_lineno or statement.lineno):
            if not _is_main_guard(statement):
                raise ConfigError(
                    f"{path} starts the sweep at import (line {line}): put the call under "
                    "`if __name__ == '__main__':`. Each worker of the local pool imports "
                    "the main script first and would start the sweep again")
            return


def _is_main_guard(statement: ast.stmt) -> bool:
    if not isinstance(statement, ast.If):
        return False
    return ast.unparse(statement.test) in ("__name__ == '__main__'", "'__main__' == __name__")


def _pool_row(future: Future, task: Task) -> dict[str, Any]:
    try:
        return future.result()
    except BrokenProcessPool as error:
        return failed_row(task, f"worker process died (crash or out of memory) while this "
                                f"configuration was in flight: {error}")
    except Exception as error:  # pickling the task or the row failed
        return failed_row(task, f"{type(error).__name__}: {error}", traceback.format_exc())


class RayBackend:
    """Ray tasks on a local Ray (started here) or a cluster at ``address``."""

    name = "ray"

    def __init__(self, workers: int | None, address: str | None) -> None:
        self.address = address
        self.workers = workers or 0  # 0 until known: the cluster's CPUs

    def run(self, next_task: NextTask, done: Done) -> None:
        ray = _import_ray()
        handlers = _signal_handlers()
        started = self._connect(ray)
        remote = ray.remote(max_retries=0, num_cpus=1)(run_configuration)
        pending: dict[Any, Task] = {}
        try:
            while True:
                while len(pending) < self.workers and (task := next_task()) is not None:
                    pending[remote.remote(task)] = task
                if not pending:
                    return
                ready, _ = ray.wait(list(pending), num_returns=1)
                task = pending.pop(ready[0])
                done(task, _ray_row(ray, ready[0], task))
        finally:
            if started:
                ray.shutdown()
                _restore_signal_handlers(handlers)  # ray.init installs its own, and keeps them

    def _connect(self, ray: Any) -> bool:
        """Join or start Ray; True if this call started it (and must stop it)."""
        if ray.is_initialized():
            started = False
        else:
            options: dict[str, Any] = {"log_to_driver": False,
                                       "runtime_env": {"env_vars": {"MPLBACKEND": "Agg"}}}
            if self.address is None:
                options.update(num_cpus=self.workers or os.cpu_count(), include_dashboard=False)
            ray.init(address=self.address, **options)
            started = True
        if not self.workers:
            self.workers = max(1, int(ray.cluster_resources().get("CPU", 1)))
        return started


_SIGNALS = (signal.SIGTERM, signal.SIGINT)


def _signal_handlers() -> dict[signal.Signals, Any]:
    return {sig: signal.getsignal(sig) for sig in _SIGNALS}


def _restore_signal_handlers(handlers: dict[signal.Signals, Any]) -> None:
    """Give the process back the SIGTERM/SIGINT handlers it had (a live OMS run after a
    sweep in the same process takes SIGTERM over only while nothing else handles it)."""
    if threading.current_thread() is not threading.main_thread():
        return  # signals are set from the main thread only (Ray's were not set either)
    for sig, handler in handlers.items():
        if handler is not None and signal.getsignal(sig) != handler:
            signal.signal(sig, handler)


def _ray_row(ray: Any, ref: Any, task: Task) -> dict[str, Any]:
    try:
        return ray.get(ref)
    except Exception as error:  # the worker died, or Ray could not run the task
        return failed_row(task, f"{type(error).__name__}: {error}", traceback.format_exc())


def _import_ray() -> Any:
    try:
        import ray
    except ImportError:
        raise ConfigError("the ray backend needs Ray: pip install 'makerlab[sweep]'") from None
    return ray


def make_backend(name: str, workers: int | None = None, address: str | None = None) -> Backend:
    """The backend called ``name`` (``serial``, ``local`` or ``ray``).

    ``workers`` defaults to the machine's cores (``local``) or the cluster's CPUs (``ray``).
    """
    if workers is not None and workers < 1:
        raise ConfigError(f"workers must be >= 1, got {workers}")
    if address is not None and name != "ray":
        raise ConfigError("--address joins a Ray cluster: it needs --backend ray")
    if name == "serial":
        return SerialBackend()
    if name == "local":
        return PoolBackend(workers or os.cpu_count() or 1)
    if name == "ray":
        return RayBackend(workers, address)
    raise ConfigError(f"unknown backend {name!r}; expected one of {', '.join(BACKENDS)}")
