"""Converters from real market-data captures into makerlab archives.

Each source has one module here exposing the same function::

    read(inputs, *, exchange=None, symbol=None, depth=20, repair=False, progress=True)
        -> list[Converted]

It parses the capture into Arrow tables of the kinds in :mod:`makerlab.data.schema`
(deltas stay deltas and are also materialised into depth-N snapshots) without writing
anything. :func:`convert` runs a source's ``read`` and writes the result into an archive.

A converter never produces a silently wrong book: malformed lines, sequence gaps,
unsorted timestamps and crossed books raise :class:`~makerlab.errors.DataError` naming
the file and line. With ``repair=True`` the converter repairs what it can instead and
records every repair in :class:`Repairs` (also logged).
"""

from __future__ import annotations

import importlib
import logging
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa

from makerlab.errors import ConfigError, DataError

log = logging.getLogger(__name__)

SOURCES = {
    "binance": "makerlab.data.convert.binance",
    "tardis": "makerlab.data.convert.tardis",
    "hyperliquid": "makerlab.data.convert.hyperliquid",
    "lobster": "makerlab.data.convert.lobster",
    "quantpylib": "makerlab.data.convert.quantpylib",
}


@dataclass
class Repairs:
    """Every repair a converter made under ``repair=True``, counted by kind."""

    counts: Counter = field(default_factory=Counter)
    examples: dict[str, str] = field(default_factory=dict)

    def record(self, kind: str, source: str, line: int | None, detail: str) -> None:
        """Count one repair of ``kind`` and log where it happened."""
        self.counts[kind] += 1
        where = f"{source}:{line}" if line is not None else source
        self.examples.setdefault(kind, f"{where}: {detail}")
        log.warning("repair %s at %s: %s", kind, where, detail)

    @property
    def total(self) -> int:
        return sum(self.counts.values())


def reject(repairs: Repairs | None, kind: str, message: str, repaired: str, *, source: str,
           line: int | None, error: type[DataError] = DataError) -> None:
    """The one rule for bad input: without ``repairs`` raise ``error(message)`` naming
    ``source`` and ``line``; with ``repairs`` record a repair of ``kind`` (``repaired`` says
    what was done) and let the caller repair."""
    if repairs is None:
        raise error(message, source=source, line=line)
    repairs.record(kind, source, line, repaired)


@dataclass
class Converted:
    """One instrument's converted data: a table per kind (see makerlab.data.schema)."""

    exchange: str
    symbol: str
    tables: dict[str, pa.Table]
    depth: int | None = None
    repairs: Repairs = field(default_factory=Repairs)
    stats: dict[str, int] = field(default_factory=dict)

    def summary(self) -> str:
        rows = ", ".join(f"{kind} {t.num_rows:,}" for kind, t in self.tables.items())
        text = f"{self.exchange}/{self.symbol}: {rows}"
        if self.repairs.total:
            text += f"; repairs {dict(self.repairs.counts)}"
        return text


def reader(source: str):
    """The ``read`` function of converter ``source``."""
    try:
        module = importlib.import_module(SOURCES[source])
    except KeyError:
        raise ConfigError(
            f"unknown source {source!r}; expected one of {sorted(SOURCES)}"
        ) from None
    return module.read


def convert(
    source: str,
    inputs: Sequence[str | Path],
    out: str | Path,
    **options,
) -> list[Converted]:
    """Convert ``inputs`` of ``source`` and write every table into the archive at ``out``.

    All or nothing: the target's writability is checked before the capture is read, every
    exchange and symbol name before anything is written, and all kinds of all instruments
    are committed together (:class:`~makerlab.data.archive.ArchiveWriter`), so a failed or
    killed conversion leaves the archive as it was (or, killed while committing, with a
    journal that ``makerlab validate`` reports and the next write completes).

    Raises:
        ConfigError: ``out`` cannot be written to, or a name cannot be a directory name.
        DataError: bad input (see the converter), or a file could not be written.
    """
    from makerlab.data.archive import ArchiveWriter, check_writable, table_dataset

    read = reader(source)
    check_writable(out)
    results = read(list(inputs), **options)
    for converted in results:
        for kind, table in converted.tables.items():
            table_dataset(kind, converted.exchange, converted.symbol, table)
    with ArchiveWriter(out, converter=source) as writer:
        for converted in results:
            for kind, table in converted.tables.items():
                writer.write(kind, converted.exchange, converted.symbol, table)
    return results
