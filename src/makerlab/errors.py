"""The makerlab exception tree.

::

    MakerlabError
    ├── ConfigError          bad arguments or configuration given by the user
    └── DataError            input data that would produce a wrong result
        ├── SequenceGap      an update id is missing between two book deltas
        ├── CrossedBook      a book whose best bid is at or above its best ask
        └── UnsortedData     timestamps that go backwards

A ``DataError`` always says *where* (file and line or row) and *what to do*; converters
raise it instead of silently producing a wrong book, unless an explicit repair option
is given, in which case every repair is counted and logged.
"""

from __future__ import annotations


class MakerlabError(Exception):
    """Root of every error makerlab raises on purpose."""


class ConfigError(MakerlabError, ValueError):
    """An argument or configuration value is invalid."""


class DataError(MakerlabError, ValueError):
    """Input data is malformed or inconsistent.

    Attributes:
        source: file name (or other description of the input), if known.
        line: 1-based line or row number in ``source``, if known.
    """

    def __init__(self, message: str, *, source: str | None = None, line: int | None = None):
        self.source = source
        self.line = line
        where = ""
        if source is not None:
            where = f"{source}:{line}: " if line is not None else f"{source}: "
        super().__init__(where + message)


class SequenceGap(DataError):
    """A book delta does not continue the previous one's update id."""


class CrossedBook(DataError):
    """The best bid is at or above the best ask."""


class UnsortedData(DataError):
    """Timestamps are not in non-decreasing order."""
