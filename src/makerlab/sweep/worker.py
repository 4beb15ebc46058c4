"""One configuration, run in a worker: the script as ``python SCRIPT ARGS`` would run it.

:func:`run_configuration` is a module-level function of picklable input and output, so the
process pool and Ray can run it. For one configuration it:

1. makes the configuration active (:mod:`makerlab.sweep.context`): the script's
   ``params()`` returns its strategy values, every Replayer it builds takes its Replayer
   arguments;
2. runs the script as ``__main__`` with ``sys.argv = [SCRIPT, *ARGS]``, inside the
   configuration's own folder ``OUT/runs/<id>/`` (what the script writes with relative
   paths, its reports, lands there) with its output captured in ``log.txt``, and
   :data:`ARCHIVE_ENV` set to the sweep's archive when it names one;
3. reads the one Replayer the script played: its statistics become the result row, its
   record is saved to ``OUT/runs/<id>/record/`` (``makerlab report`` rebuilds it).

An exception (or ``SystemExit``) in the script becomes a row with ``status='error'``, the
error and its traceback; it never propagates.
"""

from __future__ import annotations

import contextlib
import gc
import json
import os
import runpy
import socket
import sys
import time
import traceback
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np

from makerlab.data.storage import redact
from makerlab.errors import ConfigError
from makerlab.sweep.context import ActiveRun, activated
from makerlab.sweep.replayer_args import is_replayer_param, replayer_options, reserved_names

__all__ = ["ARCHIVE_ENV", "FIXED_COLUMNS", "LOG_FILE", "RECORD_DIR", "TIMING_COLUMNS", "Task",
           "flatten", "run_configuration"]

LOG_FILE = "log.txt"
RECORD_DIR = "record"
TIMING_COLUMNS = ("wall_s", "cpu_s", "started", "worker")
"""Where and how long a configuration ran (they vary between runs; its result does not):
wall and CPU seconds in its worker (cleanup included), its start (Unix time, s) and the
worker (``host:pid``)."""
FIXED_COLUMNS = ("config", "status", "error", "traceback", *TIMING_COLUMNS, "run_dir")


ARCHIVE_ENV = "MAKERLAB_ARCHIVE"
"""The environment variable that tells a script which archive to read (the examples')."""


@dataclass(frozen=True)
class Task:
    """One configuration: ``values`` of every swept parameter, run as ``script *args``.

    ``script`` and ``out`` are absolute paths (the worker changes its directory);
    ``archive``, when given, is the script's :data:`ARCHIVE_ENV` while it runs.
    """

    id: str
    script: str
    args: tuple[str, ...]
    values: dict[str, Any]
    out: str
    archive: str | None = None

    @property
    def folder(self) -> Path:
        return Path(self.out) / "runs" / self.id


def run_configuration(task: Task) -> dict[str, Any]:
    """Run ``task`` and return its result row (see the module docstring)."""
    started, wall, cpu = time.time(), time.perf_counter(), time.process_time()
    row: dict[str, Any] = {"config": task.id, **task.values, "status": "ok", "error": None,
                           "traceback": None, "run_dir": f"runs/{task.id}"}
    try:
        row.update(_run(task))
    except (Exception, SystemExit) as error:  # the script's failure is this row's result
        row.update(status="error", error=_describe(error, task), traceback=traceback.format_exc())
        _log_failure(task, row["traceback"])
    gc.collect()  # a Replayer holds reference cycles: free its tapes before the next task
    row.update(wall_s=time.perf_counter() - wall, cpu_s=time.process_time() - cpu,
               started=started, worker=f"{socket.gethostname()}:{os.getpid()}")
    return row


def _run(task: Task) -> dict[str, Any]:
    strategy = {k: v for k, v in task.values.items() if not is_replayer_param(k)}
    replayer_values = {k: v for k, v in task.values.items() if is_replayer_param(k)}
    run = ActiveRun(strategy, replayer_options(replayer_values), reserved_names())
    task.folder.mkdir(parents=True, exist_ok=True)
    with activated(run), _archive_env(task.archive), _inside(task.folder), \
            _argv([task.script, *task.args]):
        _run_script(task.script)
    replayer = _played(run)
    stats = replayer.statistics()
    replayer.save(task.folder / RECORD_DIR, code_file=task.script)
    (task.folder / "sweep.json").write_text(json.dumps(
        {"config": task.id, "values": task.values, "script": task.script,
         "args": list(task.args), "archive": task.archive and redact(task.archive)},
        indent=2, default=str))
    return flatten(stats)


def _run_script(path: str) -> None:
    """The script as ``__main__``; ``sys.exit(0)`` at its end is a normal end."""
    try:
        runpy.run_path(path, run_name="__main__")
    except SystemExit as end:
        if end.code not in (0, None):
            raise


def _played(run: ActiveRun) -> Any:
    """The one Replayer the script played, or ConfigError saying what went wrong."""
    if run.strategy and run.declared is None:
        raise ConfigError(f"the sweep sets {', '.join(sorted(run.strategy))} but the script "
                          "never calls makerlab.params(...) to declare its parameters")
    played = [r for r in run.replayers if r.finished]
    if len(played) != 1:
        raise ConfigError(f"the script built {len(run.replayers)} Replayer(s) and played "
                          f"{len(played)}; a sweep configuration reads exactly one (are the "
                          "script's arguments those of a backtest?)")
    return played[0]


@contextlib.contextmanager
def _inside(folder: Path) -> Iterator[None]:
    """Run in ``folder`` with stdout and stderr going to its log file."""
    cwd = Path.cwd()
    with open(folder / LOG_FILE, "w", encoding="utf-8") as log:
        os.chdir(folder)
        try:
            with contextlib.redirect_stdout(log), contextlib.redirect_stderr(log):
                yield
        finally:
            os.chdir(cwd)


@contextlib.contextmanager
def _archive_env(archive: str | None) -> Iterator[None]:
    """:data:`ARCHIVE_ENV` set to ``archive`` meanwhile (nothing when None)."""
    saved = os.environ.get(ARCHIVE_ENV)
    if archive is not None:
        os.environ[ARCHIVE_ENV] = archive
    try:
        yield
    finally:
        if saved is None:
            os.environ.pop(ARCHIVE_ENV, None)
        else:
            os.environ[ARCHIVE_ENV] = saved


@contextlib.contextmanager
def _argv(argv: list[str]) -> Iterator[None]:
    saved = sys.argv
    sys.argv = argv
    try:
        yield
    finally:
        sys.argv = saved


def _log_failure(task: Task, trace: str) -> None:
    """Append the traceback to the configuration's log (when its folder exists)."""
    if task.folder.is_dir():
        with open(task.folder / LOG_FILE, "a", encoding="utf-8") as log:
            log.write(f"\nmakerlab sweep: configuration {task.id} failed\n{trace}")


def _describe(error: BaseException, task: Task) -> str:
    """One line for the table; a ``SystemExit`` (argparse) quotes the script's last output."""
    if not isinstance(error, SystemExit):
        return f"{type(error).__name__}: {error}"
    log = task.folder / LOG_FILE
    lines = log.read_text(encoding="utf-8").strip().splitlines() if log.is_file() else []
    last = f" ({lines[-1].strip()})" if lines else ""
    return f"SystemExit: the script exited with status {error.code}{last}"


def flatten(stats: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{exc: {key: value}}`` → ``{'exc.key': cell}``: nested dicts join with ``.``,
    ``None`` (an exchange without fills) gives no columns, and values become Parquet
    cells (Decimal → float, lists → ``'a | b'`` text)."""
    out: dict[str, Any] = {}
    for key, value in stats.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            out.update(flatten(value, f"{name}."))
        elif value is not None:
            out[name] = _cell(value)
    return out


def _cell(value: Any) -> Any:
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, list | tuple):
        return " | ".join(map(str, value))
    if isinstance(value, bool | int | float | str):
        return value
    return str(value)
