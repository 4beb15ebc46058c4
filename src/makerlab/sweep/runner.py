"""Run a sweep: configurations from a search, run on a backend, gathered into a table."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pandas as pd
from tqdm import tqdm

from makerlab.data.storage import existing
from makerlab.errors import ConfigError
from makerlab.sweep.backends import Backend, make_backend
from makerlab.sweep.replayer_args import is_replayer_param, replayer_options
from makerlab.sweep.search import GridSearch, OptunaSearch, Search
from makerlab.sweep.space import Range, Space
from makerlab.sweep.worker import FIXED_COLUMNS, Task

__all__ = ["RESULTS_FILE", "SweepResult", "sweep"]

RESULTS_FILE = "results.parquet"


@dataclass
class SweepResult:
    """A finished sweep: its table (one row per configuration, by ``config`` id), the output
    folder and the files written there."""

    table: pd.DataFrame
    out: Path
    objective: str
    space: Space
    wall_s: float
    files: dict[str, Path] = field(default_factory=dict)

    @property
    def failed(self) -> pd.DataFrame:
        """The rows of the configurations that failed, with their errors."""
        return self.table[self.table.status != "ok"]


def sweep(script: str | Path, params: Mapping[str, Any], *, out: str | Path,
          args: Sequence[str] = (), start: str | None = None, end: str | None = None,
          search: str = "grid", trials: int | None = None, objective: str = "pnl",
          backend: str | None = None, workers: int | None = None, address: str | None = None,
          seed: int = 0, progress: bool = True, report: bool = True,
          archive: str | None = None) -> SweepResult:
    """Run ``script`` once per configuration of ``params`` and gather the results.

    Args:
        script: a backtest script (``python SCRIPT *args`` plays one Replayer).
        params: ``{name: values}``; values are a list, a single value or a
            :class:`~makerlab.sweep.space.Range`. Names are Replayer parameters
            (:mod:`makerlab.sweep.replayer_args`) or strategy parameters the script declares
            with :func:`makerlab.params`.
        out: output folder: ``results.parquet``, ``runs/<id>/`` per configuration, the
            summary plot and report.
        args: the script's command-line arguments (``['0']`` for the tutorial's backtest).
        start, end: shorthand for the strategy parameters ``start``/``end`` (the script
            reads its replay window from them).
        search: ``grid`` (every combination) or ``optuna`` (``trials`` suggestions).
        objective: the statistic optuna maximises and the summary plots (``pnl``,
            ``sharpe``, ... or ``EXC.KEY``).
        backend: ``serial``, ``local`` (process pool; the default) or ``ray`` (the
            default when ``address`` is given).
        workers: configurations run at once (default: the cores, or Ray's CPUs).
        seed: the optuna sampler's seed.
        report: write the summary plot and the PDF/HTML report.
        archive: the archive the script reads, a path or a URL (``s3://bucket/archive``):
            every configuration sees it as the environment variable ``MAKERLAB_ARCHIVE``
            (the examples' convention). Credentials are not arguments: the workers inherit
            this process's environment (``AWS_*``).

    Raises:
        ConfigError: a bad parameter, value, search or backend, or no archive at
            ``archive`` (before anything runs).
    """
    path = Path(script).resolve()
    if not path.is_file():
        raise ConfigError(f"script {script} does not exist")
    space = _space(params, start, end)
    source = _search(space, search, trials, objective, seed)
    runner = make_backend(backend or ("ray" if address else "local"), workers, address)
    if archive is not None:
        archive = _archive(archive)
    out = Path(out).resolve()
    if (out / "runs").exists():
        raise ConfigError(f"{out} already holds a sweep; give another --out or remove it")
    out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    rows = _run(runner, source, Task("", str(path), tuple(args), {}, str(out), archive),
                progress)
    table = _table(rows, space)
    result = SweepResult(table, out, objective, space, time.perf_counter() - started)
    table.to_parquet(out / RESULTS_FILE, index=False)
    result.files["table"] = out / RESULTS_FILE
    if report:
        from makerlab.sweep.summary import write_summary

        result.files.update(write_summary(result, script=path, search=search,
                                          backend=runner))
    return result


def _space(params: Mapping[str, Any], start: str | None, end: str | None) -> Space:
    space: Space = {name: _values(v) for name, v in params.items()}
    for name, value in (("start", start), ("end", end)):
        if value is not None:
            if name in space:
                raise ConfigError(f"{name} is given both as --{name} and as --param {name}")
            space[name] = [value]
    clash = sorted(set(space) & set(FIXED_COLUMNS))
    if clash:
        raise ConfigError(f"parameter names {clash} are result columns; rename them")
    if not space:
        raise ConfigError("a sweep needs at least one parameter (--param NAME=V1,V2)")
    _check_replayer_values(space)
    return space


def _values(value: Any) -> list[Any] | Range:
    """A parameter's values: a Range, a list (of any iterable but text), or one value."""
    if isinstance(value, Range):
        return value
    if isinstance(value, str | bytes) or not hasattr(value, "__iter__"):
        return [value]
    return [v.item() if hasattr(v, "item") else v for v in value]


def _check_replayer_values(space: Space) -> None:
    """Convert every Replayer parameter value once, so a typo fails before any run."""
    for name, values in space.items():
        if not is_replayer_param(name):
            continue
        items = [values.low, values.high] if isinstance(values, Range) else values
        for value in items:
            replayer_options({name: value})


def _search(space: Space, search: str, trials: int | None, objective: str,
            seed: int) -> Search:
    if search == "grid":
        if trials is not None:
            raise ConfigError("--trials needs --search optuna (a grid runs every combination)")
        return GridSearch(space)
    if search == "optuna":
        if trials is None:
            raise ConfigError("--search optuna needs --trials N")
        return OptunaSearch(space, trials, objective, seed)
    raise ConfigError(f"unknown search {search!r}; expected grid or optuna")


def _archive(archive: str) -> str:
    """``archive`` as the workers will read it (a local path made absolute: they run in
    their own folders); ConfigError when nothing is there."""
    arc = existing(archive)
    return archive if "://" in archive else arc.base


def _run(backend: Backend, search: Search, common: Task,
         progress: bool) -> list[dict[str, Any]]:
    """Run every configuration ``search`` gives as ``common`` (script, arguments, output
    folder, archive) with its id and values."""
    width = len(str(max(search.total - 1, 0)))
    rows: list[dict[str, Any]] = []
    index: dict[str, int] = {}
    bar = tqdm(total=search.total, unit="config", disable=not progress)

    def next_task() -> Task | None:
        values = search.next_values()
        if values is None:
            return None
        task = replace(common, id=f"{len(index):0{width}d}", values=values)
        index[task.id] = len(index)
        return task

    def done(task: Task, row: dict[str, Any]) -> None:
        rows.append(row)
        search.tell(index[task.id], row)
        bar.update(1)
        bar.set_postfix(failed=sum(r["status"] != "ok" for r in rows), refresh=False)

    with bar:
        backend.run(next_task, done)
    return rows


def _table(rows: list[dict[str, Any]], space: Space) -> pd.DataFrame:
    """Rows by config id; columns: config, the parameters, status and the run's fixed
    columns, then the statistics in the order the configurations first report them (so
    the table does not depend on the order the configurations finished in)."""
    table = pd.DataFrame(sorted(rows, key=lambda row: row["config"]))
    first = ["config", *space, *[c for c in FIXED_COLUMNS if c != "config"]]
    rest = [c for c in table.columns if c not in first]
    return table[[c for c in first if c in table.columns] + rest]
