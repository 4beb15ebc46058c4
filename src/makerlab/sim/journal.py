"""OrderJournal: the simulated venue's order journal (``replayer.actions``) as columns.

A replay quoting on every book update writes tens of thousands of order events an hour;
kept as one dict each (about 330 B with its values) the journal of a day outgrows the
replay's data window. The journal keeps them as columns instead:

- **rows arrive as dicts and read back as the same dicts**: iteration, ``len``, indexing
  and ``==`` behave as the list of dicts the journal used to be (same keys in the same
  order, same values and types: ``Decimal`` prices stay ``Decimal``, an absent key stays
  absent, ``None`` stays ``None``).
- **the newest rows are the dicts themselves** (an open chunk of at most ``chunk_rows``);
  a full chunk is **closed** into an Arrow record batch: per key a column of its values,
  strings and integers as Arrow arrays (low-cardinality strings dictionary-encoded), any
  other type (``Decimal``, ``bool``, enums, mixed) as int32 codes into the journal's
  dictionary of distinct values, and per row the code of its key order (its shape).
- **with ``spill`` a closed chunk goes to disk** (one Arrow IPC file per chunk in a
  temporary directory removed with the journal), so the journal holds one open chunk and
  the value dictionaries whatever the range: a streamed replay spills
  (:meth:`Replayer.from_archive <makerlab.sim.replayer.Replayer.from_archive>`), a replay
  in memory does not.
- **the run record reads columns, not rows**: :meth:`OrderJournal.to_frame` builds the
  DataFrame a list of the dicts would give (``pd.DataFrame(rows)``), one column at a time,
  converting each distinct value once.
"""

from __future__ import annotations

import shutil
import tempfile
import weakref
from collections.abc import Callable, Iterator, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any, overload

import numpy as np
import pandas as pd
import pyarrow as pa

__all__ = ["OrderJournal"]

CHUNK_ROWS = 32_768  # rows of the open chunk: a few MB of dicts
_SHAPE = "__shape__"  # the column of each row's key order (no journal key starts with __)
_CODED = b"coded"  # field metadata: int32 codes into the journal's value dictionary
_NONE = -1  # the code of an absent key (a present None has its own code)


class OrderJournal(Sequence[dict[str, Any]]):
    """The venue's order events, appended as dicts, kept as columns (see the module
    docstring). ``spill``: write closed chunks to a temporary directory."""

    def __init__(self, *, spill: bool = False, chunk_rows: int | None = None) -> None:
        chunk_rows = CHUNK_ROWS if chunk_rows is None else chunk_rows
        if chunk_rows < 1:
            raise ValueError(f"chunk_rows must be >= 1, got {chunk_rows}")
        self._chunk_rows = chunk_rows
        self._open: list[dict[str, Any]] = []
        self._closed: list[pa.RecordBatch | Path] = []
        self._closed_rows = 0
        self._starts: list[int] = []  # first row of each closed chunk
        self._shapes: _Dictionary = _Dictionary()  # key orders (tuples of keys)
        self._values: dict[str, _Dictionary] = {}  # per key: its coded values
        self._cache: tuple[int, list[dict[str, Any]]] | None = None  # last chunk read
        self._dir: Path | None = None
        if spill:
            self._dir = Path(tempfile.mkdtemp(prefix="makerlab_journal_"))
            weakref.finalize(self, shutil.rmtree, self._dir, ignore_errors=True)

    # -- writing -----------------------------------------------------------------------

    def append(self, row: dict[str, Any]) -> None:
        """Add one event (a dict of plain values: the journal keeps it as given)."""
        self._open.append(row)
        if len(self._open) >= self._chunk_rows:
            self._close_chunk()

    def _close_chunk(self) -> None:
        batch = self._encode(self._open)
        self._starts.append(self._closed_rows)
        self._closed_rows += batch.num_rows
        self._closed.append(batch if self._dir is None else self._spill(batch))
        self._open = []

    def _encode(self, rows: list[dict[str, Any]]) -> pa.RecordBatch:
        codes = [self._shapes.code(tuple(r)) for r in rows]
        shapes = self._shapes.values
        keys = dict.fromkeys(k for code in dict.fromkeys(codes) for k in shapes[code])
        arrays, fields = [pa.array(codes, pa.int32())], [pa.field(_SHAPE, pa.int32())]
        for key in keys:
            array, coded = self._column(key, rows)
            arrays.append(array)
            fields.append(pa.field(key, array.type, metadata={_CODED: b"1"} if coded else None))
        return pa.RecordBatch.from_arrays(arrays, schema=pa.schema(fields))

    def _column(self, key: str, rows: list[dict[str, Any]]) -> tuple[pa.Array, bool]:
        """A key's values as an Arrow array: strings, integers (numpy ones read back as
        ``int``), else codes (``bool``, ``Decimal``, enums: coded)."""
        column = [r.get(key) for r in rows]
        kinds = {type(v) for v in column if v is not None}
        if kinds <= {str}:
            array = pa.array(column, pa.string())
            distinct = len(set(column))
            return (array.dictionary_encode() if distinct * 4 < len(column) else array), False
        if kinds and all(k is int or issubclass(k, np.integer) for k in kinds):
            return pa.array(column, pa.int64()), False
        values = self._values.setdefault(key, _Dictionary())
        codes = [values.code(r[key]) if key in r else _NONE for r in rows]
        return pa.array(codes, pa.int32()), True

    def _spill(self, batch: pa.RecordBatch) -> Path:
        assert self._dir is not None
        path = self._dir / f"{len(self._closed):06d}.arrow"
        with pa.OSFile(str(path), "wb") as sink, pa.ipc.new_file(sink, batch.schema) as out:
            out.write_batch(batch)
        return path

    def __getstate__(self) -> dict[str, Any]:
        """A pickled or copied journal holds its chunks in memory: the spilled files
        belong to (and are removed with) this journal, never shared with a copy."""
        state = dict(self.__dict__)
        state.update(_closed=[self._batch(i) for i in range(len(self._closed))], _dir=None,
                     _cache=None)
        return state

    # -- reading -----------------------------------------------------------------------

    def __len__(self) -> int:
        return self._closed_rows + len(self._open)

    def __iter__(self) -> Iterator[dict[str, Any]]:
        for index in range(len(self._closed)):
            yield from self._rows(index)
        yield from list(self._open)

    @overload
    def __getitem__(self, index: int) -> dict[str, Any]: ...

    @overload
    def __getitem__(self, index: slice) -> list[dict[str, Any]]: ...

    def __getitem__(self, index: int | slice) -> dict[str, Any] | list[dict[str, Any]]:
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        n = len(self)
        i = index + n if index < 0 else index
        if not 0 <= i < n:
            raise IndexError(f"journal index {index} out of range ({n} rows)")
        if i >= self._closed_rows:
            return self._open[i - self._closed_rows]
        chunk = int(np.searchsorted(self._starts, i, side="right")) - 1
        return self._rows(chunk)[i - self._starts[chunk]]

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Sequence) or isinstance(other, str):
            return NotImplemented
        return len(self) == len(other) and all(a == b for a, b in zip(self, other, strict=True))

    __hash__ = None  # type: ignore[assignment]  # mutable, compared by content

    def __repr__(self) -> str:
        where = "in memory" if self._dir is None else f"spilled to {self._dir}"
        return f"OrderJournal({len(self)} events, {len(self._closed)} closed chunks {where})"

    def _rows(self, index: int) -> list[dict[str, Any]]:
        """Closed chunk ``index`` as the dicts it was given."""
        if self._cache is not None and self._cache[0] == index:
            return self._cache[1]
        batch = self._batch(index)
        shapes = self._shapes.values
        columns = {name: self._pylist(batch, name) for name in batch.schema.names}
        rows = [{k: columns[k][i] for k in shapes[code]}
                for i, code in enumerate(columns.pop(_SHAPE))]
        self._cache = (index, rows)
        return rows

    def _pylist(self, batch: pa.RecordBatch, name: str) -> list[Any]:
        array = batch.column(name)
        if not _is_coded(batch.schema.field(name)):
            return array.to_pylist()
        values = self._values[name].values
        return [values[c] if c != _NONE else None for c in array.to_numpy()]

    def _batch(self, index: int) -> pa.RecordBatch:
        chunk = self._closed[index]
        if isinstance(chunk, pa.RecordBatch):
            return chunk
        with pa.memory_map(str(chunk)) as source:
            return pa.ipc.open_file(source).get_batch(0)

    # -- the record's table ------------------------------------------------------------

    def to_frame(self, convert: Callable[[Any], Any] | None = None) -> pd.DataFrame:
        """The DataFrame ``pd.DataFrame(list(journal))`` gives (columns in first-seen key
        order, an absent key NaN, dtypes inferred the same way), built column by column.
        ``convert`` maps each distinct non-string, non-integer value once (the record
        makes ``Decimal`` prices floats)."""
        batches = [self._batch(i) for i in range(len(self._closed))]
        if self._open:
            batches.append(self._encode(self._open))
        keys = list(dict.fromkeys(k for shape in self._shapes.values for k in shape))
        if not batches:
            return pd.DataFrame()
        present = {k: self._presence(batches, k) for k in keys}
        return pd.DataFrame({k: self._series(batches, k, present[k], convert) for k in keys})

    def _presence(self, batches: list[pa.RecordBatch], key: str) -> np.ndarray:
        has = np.array([key in shape for shape in self._shapes.values], dtype=bool)
        return np.concatenate([has[b.column(_SHAPE).to_numpy()] for b in batches])

    def _series(self, batches: list[pa.RecordBatch], key: str, present: np.ndarray,
                convert: Callable[[Any], Any] | None) -> pd.Series:
        has = [key in b.schema.names for b in batches]
        strings = [b.column(key) for b, h in zip(batches, has, strict=True) if h
                   and not _is_coded(b.schema.field(key)) and _is_string(b.column(key).type)]
        if len(strings) == len(batches):
            arrays = [a.dictionary_decode() if pa.types.is_dictionary(a.type) else a
                      for a in strings]
            return pa.chunked_array(arrays, pa.string()).to_pandas()
        out = np.empty(len(present), dtype=object)
        table = self._value_table(key, convert) if key in self._values else None
        start = 0
        for batch, here in zip(batches, has, strict=True):
            if here:
                out[start:start + batch.num_rows] = _objects(batch, key, table)
            start += batch.num_rows
        out[~present] = np.nan
        return pd.Series(out).infer_objects()

    def _value_table(self, key: str, convert: Callable[[Any], Any] | None) -> np.ndarray:
        """``key``'s coded values, each converted once, by code (the last slot: absent,
        code -1)."""
        values = self._values[key].values
        table = np.empty(len(values) + 1, dtype=object)
        table[:-1] = [convert(v) if convert is not None else v for v in values]
        table[-1] = np.nan
        return table


def _objects(batch: pa.RecordBatch, key: str, table: np.ndarray | None) -> np.ndarray:
    """A batch's column ``key`` as objects (coded values looked up in ``table``)."""
    array = batch.column(key)
    if not _is_coded(batch.schema.field(key)):
        if pa.types.is_dictionary(array.type):
            array = array.dictionary_decode()
        return np.asarray(array.to_numpy(zero_copy_only=False), dtype=object)
    assert table is not None  # a coded column has its key's values
    return table[array.to_numpy()]


class _Dictionary:
    """Distinct values in first-seen order and their codes. Values equal in Python but of
    different types or spellings (``1``, ``True``, ``Decimal("1.0")``) keep their own code."""

    def __init__(self) -> None:
        self.values: list[Any] = []
        self._codes: dict[Any, int] = {}

    def code(self, value: Any) -> int:
        key = _identity(value)
        code = self._codes.get(key)
        if code is None:
            code = self._codes[key] = len(self.values)
            self.values.append(value)
        return code


def _identity(value: Any) -> Any:
    if isinstance(value, Decimal):
        return (Decimal, str(value))
    if isinstance(value, tuple):
        return value  # a shape: a tuple of strings
    return (type(value), value)


def _is_coded(field: pa.Field) -> bool:
    return bool(field.metadata) and field.metadata.get(_CODED) == b"1"


def _is_string(kind: pa.DataType) -> bool:
    if pa.types.is_dictionary(kind):
        kind = kind.value_type
    return bool(pa.types.is_string(kind))

