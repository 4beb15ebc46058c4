"""Value formatting shared by the PDF and HTML writers.

Scalars, sequences, Series and arrays become compact text; nested mappings become indented
display rows (``_dict_rows``); DataFrames become grids of text cells (``_grid``), squeezed to
their first and last rows when asked.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, is_dataclass
from decimal import Decimal
from typing import Any

import numpy as np
import pandas as pd

_EDGE_ROWS = 15  # rows kept at each end of a squeezed table
_SEQ_ITEMS = 12  # items shown in full before a list or Series is shortened
_LONG_TEXT = 3000  # longer one-line values are cut (a table cell cannot span pages)


# --------------------------------------------------------------------------- values


def _fmt_float(x: float) -> str:
    """Six significant digits, without exponent between 1e-4 and 1e15."""
    if not math.isfinite(x) or x == 0:
        return "0" if x == 0 else str(x)
    if not 1e-4 <= abs(x) < 1e15:
        return f"{x:.6g}"
    digits = max(0, 5 - math.floor(math.log10(abs(x))))
    text = f"{x:.{digits}f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


def _fmt_scalar(value: Any) -> str:
    """One value as text: floats shortened, Decimals exact, everything else ``str``."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, float):
        return _fmt_float(value)
    return str(value)


def _fmt_item(value: Any) -> str:
    """An element of a sequence: strings quoted like Python prints them."""
    return repr(value) if isinstance(value, str) else _compact(value)


def _shorten(items: Sequence[str], total: int) -> str:
    if total <= _SEQ_ITEMS:
        return ", ".join(items)
    return ", ".join([*items[:8], "\u2026", *items[-3:]])


def _fmt_sequence(value: list[Any] | tuple[Any, ...] | set[Any] | frozenset[Any]) -> str:
    items = sorted(value, key=repr) if isinstance(value, set | frozenset) else list(value)
    shown = items if len(items) <= _SEQ_ITEMS else [*items[:8], *items[-3:]]
    text = _shorten([_fmt_item(v) for v in shown], len(items))
    brackets = {list: "[]", tuple: "()"}.get(type(value), "{}")
    suffix = f"  ({len(items)} items)" if len(items) > _SEQ_ITEMS else ""
    return f"{brackets[0]}{text}{brackets[1]}{suffix}"


def _fmt_series(s: pd.Series) -> str:
    shown = s if len(s) <= _SEQ_ITEMS else pd.concat([s.iloc[:8], s.iloc[-3:]])
    items = [f"{_fmt_scalar(k)}: {_fmt_scalar(v)}" for k, v in shown.items()]
    name = f" {s.name!r}" if s.name is not None else ""
    return f"{_shorten(items, len(s))}  (Series{name}, {len(s)} \u00d7 {s.dtype})"


def _fmt_array(a: np.ndarray) -> str:
    flat = a.ravel()
    shown = flat if flat.size <= _SEQ_ITEMS else np.concatenate([flat[:8], flat[-3:]])
    text = _shorten([_fmt_scalar(v) for v in shown], flat.size)
    shape = " \u00d7 ".join(map(str, a.shape)) or "scalar"
    return f"[{text}]  (array, {shape} {a.dtype})"


def _compact(value: Any) -> str:
    """A value as one line of text, cut when very long."""
    text = _compact_full(value)
    if len(text) <= _LONG_TEXT:
        return text
    return f"{text[: _LONG_TEXT - 500]} \u2026 {text[-200:]}  ({len(text):,} characters)"


def _compact_full(value: Any) -> str:
    if isinstance(value, pd.Series):
        return _fmt_series(value)
    if isinstance(value, np.ndarray):
        return _fmt_array(value)
    if isinstance(value, list | tuple | set | frozenset):
        return _fmt_sequence(value)
    return _fmt_scalar(value)


def _block_text(value: Any) -> str | None:
    """Multi-line text for values best shown as a monospace block, else None."""
    if hasattr(value, "as_text"):  # a statsmodels Summary
        return str(value.as_text())
    summary = getattr(value, "summary", None)
    if callable(summary) and not isinstance(value, type):
        try:
            result = summary()
        except TypeError:
            return str(value)
        return _block_text(result) or str(result)
    if isinstance(value, pd.DataFrame):
        return value.to_string(max_rows=2 * _EDGE_ROWS, max_cols=12)
    if isinstance(value, str) and "\n" in value.strip("\n"):
        return value
    return None


# --------------------------------------------------------------------------- mappings


@dataclass(frozen=True)
class _Row:
    depth: int
    key: str
    text: str
    block: bool = False  # text is a monospace block
    heading: bool = False  # the key of a nested mapping


def _dict_rows(data: Mapping[Any, Any], depth: int = 0) -> list[_Row]:
    """Flatten a (nested) mapping into display rows."""
    rows: list[_Row] = []
    notes = _keyed_notes(data)
    for key, value in data.items():
        rows.extend(_value_rows(str(key), value, depth, notes.get(str(key))))
    return rows


def _keyed_notes(data: Mapping[Any, Any]) -> dict[str, str]:
    """``{key: note}`` from a ``warnings`` list of ``'key: note'`` lines naming keys of
    ``data`` (as statistics dicts carry them), so a note is shown next to its number."""
    warnings = data.get("warnings")
    if not isinstance(warnings, list | tuple):
        return {}
    keys = {str(k) for k in data}
    notes: dict[str, str] = {}
    for line in warnings:
        key, sep, note = str(line).partition(": ")
        if sep and key in keys:
            notes[key] = f"{notes[key]}; {note}" if key in notes else note
    return notes


def _value_rows(key: str, value: Any, depth: int, note: str | None = None) -> list[_Row]:
    if is_dataclass(value) and not isinstance(value, type):
        value = asdict(value)
    if isinstance(value, Mapping):
        if not value:
            return [_Row(depth, key, "{}")]
        return [_Row(depth, key, "", heading=True), *_dict_rows(value, depth + 1)]
    block = _block_text(value)
    if block is not None:
        return [_Row(depth, key, block.rstrip("\n"), block=True)]
    text = _compact(value)
    return [_Row(depth, key, f"{text}  \u26a0 {note}" if note else text)]


# --------------------------------------------------------------------------- tables


@dataclass(frozen=True)
class _Grid:
    """A DataFrame as text cells: header rows, then body rows, index cells first."""

    header: list[list[str]]
    body: list[list[str]]
    n_index: int
    numeric: list[bool]  # per column, index columns included
    n_rows: int
    omitted_at: int | None  # body position of the "rows omitted" marker
    omitted: int

    @property
    def omitted_label(self) -> str:
        return f"\u2026 {self.omitted:,} rows omitted \u2026"


def _grid(df: pd.DataFrame, squeeze: bool) -> _Grid:
    """Format ``df`` (its first and last rows only when squeezed) as text cells."""
    n = len(df)
    cut = n > 2 * _EDGE_ROWS + 1 and squeeze
    shown = pd.concat([df.iloc[:_EDGE_ROWS], df.iloc[-_EDGE_ROWS:]]) if cut else df
    restart = _EDGE_ROWS if cut else None
    index = _index_cells(shown.index, restart)
    columns = [_format_column(shown.iloc[:, j]) for j in range(shown.shape[1])]
    body = [idx + [col[i] for col in columns] for i, idx in enumerate(index)]
    n_index = shown.index.nlevels
    numeric = [False] * n_index + [pd.api.types.is_numeric_dtype(t) for t in shown.dtypes]
    omitted = n - 2 * _EDGE_ROWS if cut else 0
    return _Grid(_header_cells(df), body, n_index, numeric, n, restart, omitted)


def _frame_caption(grid: _Grid) -> str:
    n_cols = len(grid.numeric) - grid.n_index
    rows = f"{grid.n_rows:,} row{'s' * (grid.n_rows != 1)}"
    caption = f"{rows} \u00d7 {n_cols} column{'s' * (n_cols != 1)}"
    if grid.omitted:
        caption += f"; the first and last {_EDGE_ROWS} rows are shown"
    return caption


def _header_cells(df: pd.DataFrame) -> list[list[str]]:
    levels = df.columns.nlevels
    names = ["" if name is None else str(name) for name in df.index.names]
    rows = []
    for level in range(levels):
        index_part = names if level == levels - 1 else [""] * len(names)
        labels = df.columns.get_level_values(level)
        rows.append(index_part + [_fmt_scalar(label) for label in labels])
    return rows


def _index_cells(index: pd.Index, restart: int | None) -> list[list[str]]:
    """Index labels per row; repeated outer MultiIndex labels are left blank like pandas."""
    keys = [k if isinstance(k, tuple) else (k,) for k in index]
    rows, previous = [], None
    for i, key in enumerate(keys):
        labels = [_fmt_scalar(k) for k in key]
        shown = labels
        if previous is not None and i != restart and len(labels) > 1:
            shown = _sparsify(labels, previous)
        rows.append(shown)
        previous = labels
    return rows


def _sparsify(labels: list[str], previous: list[str]) -> list[str]:
    out = list(labels)
    for level in range(len(labels) - 1):
        if labels[level] != previous[level]:
            break
        out[level] = ""
    return out


def _format_column(column: pd.Series) -> list[str]:
    if pd.api.types.is_float_dtype(column.dtype):
        return _format_floats(column.to_numpy(dtype=float))
    return [_fmt_scalar(v) for v in column.tolist()]


def _format_floats(values: np.ndarray) -> list[str]:
    """Fixed decimals shared by the column (at most six), like pandas prints a frame."""
    finite = values[np.isfinite(values)]
    tiny = finite[finite != 0]
    if finite.size == 0 or np.abs(finite).max() >= 1e15 or (
        tiny.size and np.abs(tiny).max() < 1e-4
    ):
        return [f"{v:.6g}" if math.isfinite(v) else _nan(v) for v in values]
    texts = [f"{v:.6f}" for v in finite]
    strip = min(min(len(t) - len(t.rstrip("0")) for t in texts), 5)
    decimals = 6 - strip
    return [f"{v:.{decimals}f}" if math.isfinite(v) else _nan(v) for v in values]


def _nan(v: float) -> str:
    return "NaN" if math.isnan(v) else str(v)
