"""The reproducible research report: the Open Research Standard PDF and its HTML twin.

``pdf_snapshot`` renders ``report_data``, a list of ``(title, data, dtype)`` sections, after a
header that pins down how the results were produced (UTC time, makerlab and Python versions,
platform, command line, git commit of the working tree, SHA-256 of the code file) and before a
"Script" section holding the code that produced them. ``html_snapshot`` (or ``html=`` on
``pdf_snapshot``) writes the same report as one self-contained HTML file, with interactive
plotly figures.

Section dtypes:

- ``'dict'``: a mapping (or dataclass) shown as a key/value table; nested mappings are
  indented, floats get six significant digits, ``Decimal`` values are exact, Series and arrays
  become compact text, and long multi-line values (a statsmodels summary) become monospace
  blocks sized to fit the page.
- ``'df'``: a pandas DataFrame (or Series, or anything with ``to_pandas()``). Wide frames are
  split into column chunks that repeat the index; long frames keep their first and last rows
  with an "... N rows omitted ..." row when ``squeeze=True``.
- ``'img'``: a path to an image file, or a matplotlib figure; scaled to the page width.
- ``'plot'``: a plotly figure; interactive in HTML, a static image in the PDF when kaleido is
  installed and a pointer to the HTML report otherwise.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import importlib.metadata
import importlib.util
import io
import itertools
import math
import os
import platform
import shlex
import subprocess
import sys
import tokenize
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, is_dataclass
from datetime import UTC, datetime
from decimal import Decimal
from html import escape
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from reportlab.lib import colors
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import mm
from reportlab.lib.utils import ImageReader
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.ttfonts import TTFError, TTFont
from reportlab.platypus import (
    Flowable,
    Image,
    LongTable,
    Paragraph,
    Preformatted,
    SimpleDocTemplate,
    Spacer,
    Table,
    TableStyle,
    XPreformatted,
)

from makerlab.errors import ConfigError

__all__ = ["DTYPES", "html_snapshot", "pdf_snapshot", "strip_comments"]

DTYPES = ("dict", "df", "img", "plot")
"""The section kinds ``report_data`` may use."""

_EDGE_ROWS = 15  # rows kept at each end of a squeezed table
_SEQ_ITEMS = 12  # items shown in full before a list or Series is shortened
_LONG_TEXT = 3000  # longer one-line values are cut (a table cell cannot span pages)
_MARGIN = 15 * mm
_WIDTH = A4[0] - 2 * _MARGIN - 12  # usable frame width (the frame pads 6 pt on each side)
_HEIGHT = A4[1] - _MARGIN - 20 * mm - 12
_PAD = 3  # table cell padding
_TABLE_SIZE = 7
_CODE_SIZE = 7
_CODE_CHUNK = 8  # code rows per flowable (small, so a page never ends early)
_GREY = colors.HexColor("#6b7280")
_RULE = colors.HexColor("#d1d5db")
_ZEBRA = colors.HexColor("#f3f4f6")
_HEAD = colors.HexColor("#e5e7eb")
_INK = colors.HexColor("#111827")
_ACCENT = colors.HexColor("#1d4ed8")


# --------------------------------------------------------------------------- public API


def pdf_snapshot(
    save: str | Path,
    code_file: str | Path | None = None,
    include_comments: bool = True,
    squeeze: bool = True,
    report_data: Iterable[tuple[str, Any, str]] = (),
    title: str = "makerlab research report",
    html: str | Path | None = None,
) -> Path | tuple[Path, Path]:
    """Write the Open Research Standard PDF report (and optionally its HTML twin).

    Args:
        save: PDF file to write; missing parent folders are created.
        code_file: the script that produced the results (usually ``__file__``); it is hashed
            and printed in a closing "Script" section. ``None`` leaves both out.
        include_comments: keep comments and docstrings in the printed code. When False they
            are removed with ``tokenize`` and the code stays valid Python.
        squeeze: show only the first and last rows of long tables; when False every row is
            printed over as many pages as needed.
        report_data: ``(title, data, dtype)`` sections, rendered in order; see ``DTYPES``.
        title: the report title.
        html: if given, also write the same report as a self-contained HTML file there.

    Returns:
        The PDF path, or ``(pdf_path, html_path)`` when ``html`` is given.

    Raises:
        ConfigError: a section with an unknown dtype or unusable data (naming the section), a
            missing image file or a missing ``code_file``. Nothing is written in that case.
    """
    report = _Report.prepare(title, code_file, include_comments, report_data)
    pdf_path = _write_pdf(_target(save), report, squeeze)
    if html is None:
        return pdf_path
    return pdf_path, _write_html(_target(html), report, squeeze)


def html_snapshot(
    save: str | Path,
    code_file: str | Path | None = None,
    include_comments: bool = True,
    squeeze: bool = True,
    report_data: Iterable[tuple[str, Any, str]] = (),
    title: str = "makerlab research report",
) -> Path:
    """Write the report as one self-contained HTML file; arguments as in ``pdf_snapshot``.

    Tables are HTML tables, images are embedded as base64 data URIs, the code is syntax
    highlighted and ``'plot'`` sections are interactive plotly figures whose plotly.js is
    inlined, so the file opens offline.

    Returns:
        The HTML path.
    """
    report = _Report.prepare(title, code_file, include_comments, report_data)
    return _write_html(_target(save), report, squeeze)


def strip_comments(source: str) -> str:
    """Remove comments and docstrings from Python source, keeping it valid Python.

    Every comment and every statement that is only a string literal (docstrings included) is
    removed; such a statement that is the last one left in its block becomes ``pass``. Lines
    left empty by a removal are dropped; all other lines are kept verbatim.

    Raises:
        SyntaxError, tokenize.TokenError: ``source`` cannot be tokenized as Python.
    """
    return "".join(line for _, line in _strip_numbered(source))


def _strip_numbered(source: str) -> list[tuple[int, str]]:
    """``strip_comments`` keeping each remaining line's original 1-based number."""
    tokens = list(tokenize.generate_tokens(io.StringIO(source).readline))
    edits = [(t.start, t.end, "") for t in tokens if t.type == tokenize.COMMENT]
    edits += _docstring_edits(tokens)
    return _apply_edits(source, edits)


# --------------------------------------------------------------------------- the report model


@dataclass(frozen=True)
class _Section:
    title: str
    data: Any
    dtype: str


@dataclass(frozen=True)
class _Code:
    path: Path
    text: str  # the code as displayed: tabs expanded, "\n" line ends
    numbers: list[int]  # each displayed line's number in the original file
    sha256: str
    note: str


@dataclass(frozen=True)
class _Report:
    title: str
    generated: str
    meta: list[tuple[str, str]]
    sections: list[_Section]
    code: _Code | None

    @classmethod
    def prepare(
        cls,
        title: str,
        code_file: str | Path | None,
        include_comments: bool,
        report_data: Iterable[tuple[str, Any, str]],
    ) -> _Report:
        """Validate every input and collect the header metadata, before anything is written."""
        sections = [_check_section(i, item) for i, item in enumerate(report_data)]
        code = _load_code(code_file, include_comments)
        generated = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
        return cls(str(title), generated, _collect_meta(generated, code), sections, code)

    def groups(self) -> list[tuple[str, list[_Section]]]:
        """Consecutive sections sharing a title, shown under one heading."""
        return [(k, list(g)) for k, g in itertools.groupby(self.sections, key=lambda s: s.title)]


def _target(save: str | Path) -> Path:
    path = Path(save)
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


def _check_section(i: int, item: Any) -> _Section:
    """Validate one ``(title, data, dtype)`` tuple and normalise its data."""
    try:
        title, data, dtype = item
    except (TypeError, ValueError):
        msg = f"report_data[{i}] must be a (title, data, dtype) tuple, got {item!r:.80}"
        raise ConfigError(msg) from None
    name = f"report section {i} ({title!r})"
    if dtype not in DTYPES:
        raise ConfigError(f"{name}: unknown dtype {dtype!r}; use one of {', '.join(DTYPES)}")
    return _Section(str(title), _CHECKS[dtype](name, data), dtype)


def _check_dict(name: str, data: Any) -> dict[Any, Any]:
    if is_dataclass(data) and not isinstance(data, type):
        return asdict(data)
    if not isinstance(data, Mapping):
        raise ConfigError(f"{name}: dtype 'dict' needs a mapping, got {type(data).__name__}")
    return dict(data)


def _check_df(name: str, data: Any) -> pd.DataFrame:
    if isinstance(data, pd.Series):
        return data.to_frame()
    if not isinstance(data, pd.DataFrame) and hasattr(data, "to_pandas"):
        data = data.to_pandas()
    if not isinstance(data, pd.DataFrame):
        raise ConfigError(f"{name}: dtype 'df' needs a DataFrame, got {type(data).__name__}")
    return data


def _check_img(name: str, data: Any) -> Any:
    if hasattr(data, "savefig"):
        return data
    if not isinstance(data, str | os.PathLike):
        raise ConfigError(f"{name}: dtype 'img' needs an image path, got {type(data).__name__}")
    path = Path(data)
    if not path.is_file():
        raise ConfigError(f"{name}: image file {str(path)!r} does not exist")
    try:
        ImageReader(str(path)).getSize()
    except (OSError, ValueError) as e:
        raise ConfigError(f"{name}: {str(path)!r} is not a readable image ({e})") from e
    return path


def _check_plot(name: str, data: Any) -> Any:
    if not hasattr(data, "to_html") or not hasattr(data, "to_plotly_json"):
        raise ConfigError(f"{name}: dtype 'plot' needs a plotly figure, got {type(data).__name__}")
    return data


_CHECKS: dict[str, Callable[[str, Any], Any]] = {
    "dict": _check_dict,
    "df": _check_df,
    "img": _check_img,
    "plot": _check_plot,
}


def _load_code(code_file: str | Path | None, include_comments: bool) -> _Code | None:
    """Read, hash and (optionally) strip the code file."""
    if code_file is None:
        return None
    path = Path(code_file)
    if not path.is_file():
        raise ConfigError(f"code_file {str(path)!r} does not exist; pass __file__ or None")
    raw = path.read_bytes()
    text = _decode(raw)
    numbered, note = list(enumerate(text.splitlines(), start=1)), "comments and docstrings kept"
    if not include_comments:
        try:
            numbered, note = _strip_numbered(text), "comments and docstrings removed"
        except (SyntaxError, tokenize.TokenError):
            note = "not valid Python, so comments are kept"
    lines = [line.rstrip("\r\n").expandtabs(4) for _, line in numbered]
    display = "".join(line + "\n" for line in lines)
    numbers = [n for n, _ in numbered]
    return _Code(path.resolve(), display, numbers, hashlib.sha256(raw).hexdigest(), note)


def _decode(raw: bytes) -> str:
    try:
        encoding = tokenize.detect_encoding(io.BytesIO(raw).readline)[0]
    except SyntaxError:
        encoding = "utf-8"
    return raw.decode(encoding, errors="replace")


# --------------------------------------------------------------------------- header metadata


def _collect_meta(generated: str, code: _Code | None) -> list[tuple[str, str]]:
    """What a reader needs to reproduce the results: versions, command, commit, code hash."""
    folder = code.path.parent if code else Path.cwd()
    rows = [
        ("Generated", generated),
        ("makerlab", _makerlab_version()),
        ("Python", f"{platform.python_version()} ({platform.python_implementation()})"),
        ("Platform", platform.platform()),
        ("Packages", _package_versions()),
        ("Command", shlex.join(sys.argv) if sys.argv else "(interactive)"),
        ("Git commit", _git_commit(folder)),
    ]
    if code is not None:
        rows += [("Code file", str(code.path)), ("Code SHA-256", code.sha256)]
    return rows


def _makerlab_version() -> str:
    try:
        return importlib.metadata.version("makerlab")
    except importlib.metadata.PackageNotFoundError:
        return str(getattr(sys.modules.get("makerlab"), "__version__", "unknown"))


def _package_versions() -> str:
    found = []
    for name in ("numpy", "pandas", "polars", "statsmodels", "numba"):
        try:
            found.append(f"{name} {importlib.metadata.version(name)}")
        except importlib.metadata.PackageNotFoundError:
            continue
    return ", ".join(found)


def _git_commit(folder: Path) -> str:
    """The HEAD commit of the git work tree holding ``folder``, flagged when it has edits."""
    try:
        head = _git(folder, "rev-parse", "HEAD")
        dirty = _git(folder, "status", "--porcelain", "--untracked-files=no")
    except (OSError, subprocess.SubprocessError):
        return "unavailable (not a git work tree)"
    return f"{head} (uncommitted changes)" if dirty else head


def _git(folder: Path, *args: str) -> str:
    done = subprocess.run(
        ["git", *args], cwd=folder, capture_output=True, text=True, timeout=10, check=True
    )
    return done.stdout.strip()


# --------------------------------------------------------------------------- value formatting


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
    for key, value in data.items():
        rows.extend(_value_rows(str(key), value, depth))
    return rows


def _value_rows(key: str, value: Any, depth: int) -> list[_Row]:
    if is_dataclass(value) and not isinstance(value, type):
        value = asdict(value)
    if isinstance(value, Mapping):
        if not value:
            return [_Row(depth, key, "{}")]
        return [_Row(depth, key, "", heading=True), *_dict_rows(value, depth + 1)]
    block = _block_text(value)
    if block is not None:
        return [_Row(depth, key, block.rstrip("\n"), block=True)]
    return [_Row(depth, key, _compact(value))]


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


# --------------------------------------------------------------------------- code


def _docstring_edits(tokens: list[tokenize.TokenInfo]) -> list[tuple[Any, Any, str]]:
    """Edits removing statements that are only string literals (docstrings)."""
    code = [t for t in tokens if t.type not in (tokenize.NL, tokenize.COMMENT)]
    edits, removed_newlines = [], set()
    for i, tok in enumerate(code):
        if tok.type != tokenize.STRING or not _starts_statement(code, i):
            continue
        j = i
        while code[j + 1].type == tokenize.STRING:
            j += 1
        if code[j + 1].type != tokenize.NEWLINE:
            continue
        first = code[i - 1].type == tokenize.INDENT or i - 1 in removed_newlines
        last = code[j + 2].type == tokenize.DEDENT
        edits.append((tok.start, code[j].end, "pass" if first and last else ""))
        removed_newlines.add(j + 1)
    return edits


def _starts_statement(code: list[tokenize.TokenInfo], i: int) -> bool:
    starts = (tokenize.NEWLINE, tokenize.INDENT, tokenize.DEDENT, tokenize.ENCODING)
    return i == 0 or code[i - 1].type in starts


def _apply_edits(source: str, edits: list[tuple[Any, Any, str]]) -> list[tuple[int, str]]:
    """Apply ``(start, end, replacement)`` token edits; drop the lines they leave empty.

    Edited lines get a NUL mark, so that only they (never a blank line inside a string
    literal) can be dropped. Returns the kept lines with their original numbers.
    """
    lines = source.splitlines(keepends=True)
    for (r1, c1), (r2, c2), replacement in sorted(edits, reverse=True):
        head, tail = lines[r1 - 1][:c1], lines[r2 - 1][c2:]
        for r in range(r1, r2):
            lines[r] = "\0"
        lines[r1 - 1] = head + (replacement or "\0") + (tail if r1 == r2 else "")
        if r2 > r1:
            lines[r2 - 1] = "\0" + tail
    out = []
    for number, line in enumerate(lines, start=1):
        if "\0" not in line:
            out.append((number, line))
        elif cleaned := line.replace("\0", "").rstrip():
            out.append((number, cleaned + "\n"))
    return out


def _string_spans(text: str) -> dict[int, list[tuple[int, int]]]:
    """Column ranges of string literals per 1-based line, so wrapping avoids them."""
    spans: dict[int, list[tuple[int, int]]] = {}
    try:
        tokens = list(tokenize.generate_tokens(io.StringIO(text).readline))
    except (tokenize.TokenError, SyntaxError):
        return spans
    for start, end in _string_ranges(tokens):
        for row in range(start[0], end[0] + 1):
            lo = start[1] if row == start[0] else 0
            hi = end[1] if row == end[0] else sys.maxsize
            spans.setdefault(row, []).append((lo, hi))
    return spans


def _string_ranges(tokens: list[tokenize.TokenInfo]) -> list[tuple[Any, Any]]:
    """``(start, end)`` of every string literal; f-strings are split into parts on 3.12+."""
    f_start, f_end = getattr(tokenize, "FSTRING_START", -1), getattr(tokenize, "FSTRING_END", -1)
    ranges, opened = [], []
    for tok in tokens:
        if tok.type == tokenize.STRING:
            ranges.append((tok.start, tok.end))
        elif tok.type == f_start:
            opened.append(tok.start)
        elif tok.type == f_end and opened:
            ranges.append((opened.pop(), tok.end))
    return ranges


def _wrap_line(line: str, width: int, spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Split a code line into ``(start, end)`` pieces of at most ``width`` characters.

    Continuation pieces are shown indented four past the line's own indentation, so they get
    that much less room. Breaks go after a space, comma or opening bracket outside string
    literals when one is in the right half of the piece.
    """
    indent = min(len(line) - len(line.lstrip(" ")) + 4, width // 2)
    pieces, start = [], 0
    while True:
        room = width if not pieces else width - indent
        if len(line) - start <= room:
            return [*pieces, (start, len(line))]
        cut = _break_point(line, start, start + room, spans)
        pieces.append((start, cut))
        start = cut


def _break_point(line: str, lo: int, hi: int, spans: list[tuple[int, int]]) -> int:
    for p in range(hi, lo + (hi - lo) // 2, -1):
        if line[p - 1] in " ,([{" and not any(a < p < b for a, b in spans):
            return p
    return hi


def _code_rows(code: _Code, width: int) -> list[tuple[int | None, int, int, int]]:
    """Display rows ``(line number or None, line index, start, end)`` of the code."""
    spans = _string_spans(code.text)
    rows: list[tuple[int | None, int, int, int]] = []
    for i, line in enumerate(code.text.splitlines()):
        for k, (a, b) in enumerate(_wrap_line(line, width, spans.get(i + 1, []))):
            rows.append((code.numbers[i] if k == 0 else None, i, a, b))
    return rows


def _lexer(path: Path) -> Any:
    from pygments.lexers import TextLexer, get_lexer_for_filename
    from pygments.util import ClassNotFound

    try:
        return get_lexer_for_filename(path.name, stripnl=False, ensurenl=True)
    except ClassNotFound:
        return TextLexer(stripnl=False, ensurenl=True)


def _char_colors(code: _Code) -> list[list[str | None]]:
    """Per line, the pygments colour (``rrggbb`` or None) of every character."""
    lines: list[list[str | None]] = [[] for _ in code.text.splitlines()]
    if importlib.util.find_spec("pygments") is None:
        return [[None] * len(line) for line in code.text.splitlines()]
    from pygments.styles import get_style_by_name

    style, row = get_style_by_name("default"), 0
    for ttype, value in _lexer(code.path).get_tokens(code.text):
        color = style.style_for_token(ttype)["color"] or None
        for ch in value:
            if ch == "\n":
                row += 1
            elif row < len(lines):
                lines[row].append(color)
    return lines


# --------------------------------------------------------------------------- PDF


@dataclass(frozen=True)
class _Fonts:
    sans: str
    bold: str
    italic: str
    mono: str


@functools.cache
def _fonts() -> _Fonts:
    """DejaVu fonts from matplotlib (full Unicode) when available, else the PDF base fonts."""
    try:
        import matplotlib

        folder = Path(matplotlib.get_data_path()) / "fonts" / "ttf"
        files = {"Sans": "", "Sans-Bold": "-Bold", "Sans-Oblique": "-Oblique"}
        for name, suffix in files.items():
            font = TTFont(f"ML{name}", str(folder / f"DejaVuSans{suffix}.ttf"))
            pdfmetrics.registerFont(font)
        pdfmetrics.registerFont(TTFont("MLMono", str(folder / "DejaVuSansMono.ttf")))
    except (ImportError, OSError, TTFError):
        return _Fonts("Helvetica", "Helvetica-Bold", "Helvetica-Oblique", "Courier")
    pdfmetrics.registerFontFamily(
        "MLSans", normal="MLSans", bold="MLSans-Bold", italic="MLSans-Oblique"
    )
    return _Fonts("MLSans", "MLSans-Bold", "MLSans-Oblique", "MLMono")


@functools.cache
def _styles() -> dict[str, ParagraphStyle]:
    f = _fonts()
    base = ParagraphStyle("ml-body", fontName=f.sans, fontSize=9, leading=11.5, textColor=_INK)

    def style(name: str, **kw: Any) -> ParagraphStyle:
        return ParagraphStyle(f"ml-{name}", parent=base, **kw)

    return {
        "body": base,
        "title": style("title", fontName=f.bold, fontSize=18, leading=22, spaceAfter=2),
        "subtitle": style("subtitle", textColor=_GREY, spaceAfter=8),
        "h2": style("h2", fontName=f.bold, fontSize=13, leading=16, textColor=_ACCENT,
                    spaceBefore=12, spaceAfter=6, keepWithNext=1),
        "caption": style("caption", fontSize=7.5, leading=9, textColor=_GREY, spaceAfter=3,
                         keepWithNext=1),
        "key": style("key", fontName=f.bold, fontSize=8, leading=10),
        "value": style("value", fontSize=8, leading=10),
        "mono": style("mono", fontName=f.mono, fontSize=7.5, leading=9.5),
        "cell": style("cell", fontSize=_TABLE_SIZE, leading=_TABLE_SIZE + 1.5),
        "cell-bold": style("cell-bold", fontName=f.bold, fontSize=_TABLE_SIZE,
                           leading=_TABLE_SIZE + 1.5),
        "cell-num": style("cell-num", fontSize=_TABLE_SIZE, leading=_TABLE_SIZE + 1.5,
                          alignment=2),
        "code": style("code", fontName=f.mono, fontSize=_CODE_SIZE, leading=_CODE_SIZE * 1.25),
    }


class _Doc(SimpleDocTemplate):
    """Adds a PDF outline (bookmark) entry for every section heading."""

    def afterFlowable(self, flowable: Flowable) -> None:
        key = getattr(flowable, "outline_key", None)
        if key is not None:
            self.canv.bookmarkPage(key)
            self.canv.addOutlineEntry(flowable.getPlainText(), key, level=0)


def _write_pdf(path: Path, report: _Report, squeeze: bool) -> Path:
    doc = _Doc(
        str(path), pagesize=A4, leftMargin=_MARGIN, rightMargin=_MARGIN, topMargin=_MARGIN,
        bottomMargin=20 * mm, title=report.title, author="makerlab",
        subject="Open Research Standard report", creator=f"makerlab {_makerlab_version()}",
    )
    story = _pdf_header(report)
    for n, (title, sections) in enumerate(report.groups(), start=1):
        story += [_heading(f"{n}. {title}", f"s{n}")]
        for section in sections:
            story += [*_PDF_RENDERERS[section.dtype](section.data, squeeze), Spacer(1, 6)]
    if report.code is not None:
        story += _pdf_code(report.code)
    doc.build(story, onFirstPage=_footer(report), onLaterPages=_footer(report))
    return path


def _footer(report: _Report) -> Callable[[Any, Any], None]:
    def draw(canvas: Any, doc: Any) -> None:
        canvas.saveState()
        canvas.setFont(_fonts().sans, 7)
        canvas.setFillColor(_GREY)
        canvas.drawString(_MARGIN, 10 * mm, f"{report.title} \u00b7 {report.generated}")
        canvas.drawRightString(A4[0] - _MARGIN, 10 * mm, f"page {doc.page}")
        canvas.restoreState()

    return draw


def _heading(text: str, key: str) -> Paragraph:
    para = Paragraph(escape(text), _styles()["h2"])
    para.outline_key = key
    return para


def _pdf_header(report: _Report) -> list[Flowable]:
    st = _styles()
    rows = [
        [Paragraph(escape(k), st["key"]), Paragraph(escape(v), st["value"])]
        for k, v in report.meta
    ]
    table = Table(rows, colWidths=[28 * mm, _WIDTH - 28 * mm], hAlign="LEFT")
    table.setStyle(_kv_style())
    subtitle = "Open Research Standard report: results, the configuration and the code"
    return [
        Paragraph(escape(report.title), st["title"]),
        Paragraph(subtitle + " that produced them.", st["subtitle"]),
        table,
        Spacer(1, 6),
    ]


def _kv_style() -> TableStyle:
    return TableStyle([
        ("VALIGN", (0, 0), (-1, -1), "TOP"),
        ("LINEBELOW", (0, 0), (-1, -1), 0.25, _RULE),
        ("TOPPADDING", (0, 0), (-1, -1), 1.5),
        ("BOTTOMPADDING", (0, 0), (-1, -1), 1.5),
        ("LEFTPADDING", (0, 0), (-1, -1), _PAD),
        ("RIGHTPADDING", (0, 0), (-1, -1), _PAD),
    ])


def _pdf_dict(data: Mapping[Any, Any], squeeze: bool) -> list[Flowable]:
    """Scalar rows as key/value tables, multi-line values as full-width monospace blocks."""
    rows = _dict_rows(data)
    if not rows:
        return [Paragraph("(empty)", _styles()["caption"])]
    out: list[Flowable] = []
    pending: list[_Row] = []
    for row in rows:
        if not row.block:
            pending.append(row)
            continue
        out += _kv_table(pending)
        pending = []
        out += [_kv_table([_Row(row.depth, row.key, "", heading=True)])[0], _mono_block(row.text)]
    return out + _kv_table(pending)


def _kv_table(rows: list[_Row]) -> list[Flowable]:
    if not rows:
        return []
    st = _styles()
    key_width = min(_WIDTH * 0.4, max(_key_width(r) for r in rows) + 2 * _PAD + 2)
    cells = [[_key_cell(r), Paragraph(escape(r.text), st["value"])] for r in rows]
    table = Table(cells, colWidths=[key_width, _WIDTH - key_width], hAlign="LEFT")
    table.setStyle(_kv_style())
    return [table]


def _key_width(row: _Row) -> float:
    font = _fonts().bold if row.heading or row.depth == 0 else _fonts().sans
    return row.depth * 10 + pdfmetrics.stringWidth(row.key, font, 8)


def _key_cell(row: _Row) -> Paragraph:
    st = _styles()
    style = st["key"] if row.heading or row.depth == 0 else st["value"]
    indented = ParagraphStyle(f"{style.name}-{row.depth}", parent=style, leftIndent=row.depth * 10)
    return Paragraph(escape(row.key), indented)


def _mono_block(text: str) -> Preformatted:
    """Monospace text shrunk (down to 6 pt) to fit the page width, then wrapped."""
    lines = text.expandtabs(4).splitlines() or [""]
    room = _WIDTH - 8
    char = pdfmetrics.stringWidth("0", _fonts().mono, 1)
    size = max(6.0, min(7.5, room / (char * max(len(line) for line in lines) + 1e-9)))
    per_line = int(room // (char * size))
    wrapped = [line[a:b] for line in lines for a, b in _wrap_line(line, per_line, [])]
    style = ParagraphStyle(
        f"ml-block-{size:.2f}", parent=_styles()["mono"], fontSize=size, leading=size * 1.25,
        backColor=_ZEBRA, borderPadding=3, leftIndent=3, rightIndent=3, spaceBefore=4,
        spaceAfter=6,
    )
    return Preformatted("\n".join(wrapped), style)


def _pdf_frame(df: pd.DataFrame, squeeze: bool) -> list[Flowable]:
    """The frame as tables that fit the page: column chunks each repeating the index."""
    grid = _grid(df, squeeze)
    widths = _column_widths(grid)
    n_cols = len(widths) - grid.n_index
    out: list[Flowable] = [Paragraph(_frame_caption(grid), _styles()["caption"])]
    chunks = _column_chunks(widths[grid.n_index :], _WIDTH - sum(widths[: grid.n_index]))
    for a, b in chunks:
        if len(chunks) > 1:
            text = f"columns {a + 1}\u2013{b} of {n_cols}"
            out.append(Paragraph(text, _styles()["caption"]))
        cols = [*range(grid.n_index), *range(grid.n_index + a, grid.n_index + b)]
        out += [_pdf_table(grid, cols, [widths[c] for c in cols]), Spacer(1, 6)]
    return out


def _text_width(text: str, bold: bool = False) -> float:
    font = _fonts().bold if bold else _fonts().sans
    return pdfmetrics.stringWidth(text, font, _TABLE_SIZE) + 2 * _PAD + 1


def _column_widths(grid: _Grid) -> list[float]:
    """Natural column widths, capped so that any one data column fits beside the index."""
    n = len(grid.numeric)
    natural = [
        max(
            max((_text_width(r[c], True) for r in grid.header), default=0),
            max((_text_width(r[c], c < grid.n_index) for r in grid.body), default=0),
            18.0,
        )
        for c in range(n)
    ]
    index_total = sum(natural[: grid.n_index])
    if index_total > 0.45 * _WIDTH:
        natural[: grid.n_index] = [w * 0.45 * _WIDTH / index_total for w in natural[: grid.n_index]]
    cap = min(0.45 * _WIDTH, _WIDTH - sum(natural[: grid.n_index]))
    return natural[: grid.n_index] + [min(w, cap) for w in natural[grid.n_index :]]


def _column_chunks(widths: list[float], room: float) -> list[tuple[int, int]]:
    """Greedy ``(start, end)`` ranges of data columns whose widths fit in ``room``."""
    chunks, start, used = [], 0, 0.0
    for j, w in enumerate(widths):
        if used + w > room and j > start:
            chunks.append((start, j))
            start, used = j, 0.0
        used += w
    return [*chunks, (start, len(widths))] if widths else [(0, 0)]


def _pdf_cell(text: str, width: float, style: str) -> str | Paragraph:
    if _text_width(text, style == "cell-bold") <= width:
        return text
    return Paragraph(escape(text), _styles()[style])


def _pdf_table(grid: _Grid, cols: list[int], widths: list[float]) -> LongTable:
    styles = ["cell-bold" if c < grid.n_index else "cell-num" if grid.numeric[c] else "cell"
              for c in cols]
    rows: list[list[Any]] = [
        [_pdf_cell(row[c], w, "cell-bold") for c, w in zip(cols, widths, strict=True)]
        for row in grid.header
    ]
    for row in grid.body:
        rows.append([_pdf_cell(row[c], w, s) for c, w, s in zip(cols, widths, styles, strict=True)])
    if grid.omitted_at is not None:
        marker = [grid.omitted_label] + [""] * (len(cols) - 1)
        rows.insert(len(grid.header) + grid.omitted_at, marker)
    table = LongTable(rows, colWidths=widths, repeatRows=len(grid.header), hAlign="LEFT")
    table.setStyle(_table_style(grid, cols))
    return table


def _table_style(grid: _Grid, cols: list[int]) -> TableStyle:
    f, h = _fonts(), len(grid.header)
    commands: list[tuple[Any, ...]] = [
        ("FONT", (0, 0), (-1, -1), f.sans, _TABLE_SIZE, _TABLE_SIZE + 1.5),
        ("FONT", (0, 0), (-1, h - 1), f.bold, _TABLE_SIZE, _TABLE_SIZE + 1.5),
        ("FONT", (0, h), (grid.n_index - 1, -1), f.bold, _TABLE_SIZE, _TABLE_SIZE + 1.5),
        ("BACKGROUND", (0, 0), (-1, h - 1), _HEAD),
        ("ROWBACKGROUNDS", (0, h), (-1, -1), [colors.white, _ZEBRA]),
        ("LINEBELOW", (0, h - 1), (-1, h - 1), 0.6, _GREY),
        ("LINEAFTER", (grid.n_index - 1, 0), (grid.n_index - 1, -1), 0.6, _GREY),
        ("VALIGN", (0, 0), (-1, -1), "TOP"),
        *[(k, (0, 0), (-1, -1), v) for k, v in _PADDING.items()],
    ]
    commands += [("ALIGN", (k, 0), (k, -1), "RIGHT") for k, c in enumerate(cols) if grid.numeric[c]]
    if grid.omitted_at is not None:
        r = h + grid.omitted_at
        commands += [
            ("SPAN", (0, r), (-1, r)),
            ("ALIGN", (0, r), (-1, r), "CENTER"),
            ("FONT", (0, r), (-1, r), f.italic, _TABLE_SIZE, _TABLE_SIZE + 1.5),
            ("TEXTCOLOR", (0, r), (-1, r), _GREY),
        ]
    return TableStyle(commands)


_PADDING = {"TOPPADDING": 1, "BOTTOMPADDING": 1.5, "LEFTPADDING": _PAD, "RIGHTPADDING": _PAD}


def _image_bytes(data: Any) -> bytes:
    """PNG bytes of a matplotlib figure, or the bytes of an image file."""
    if hasattr(data, "savefig"):
        buffer = io.BytesIO()
        data.savefig(buffer, format="png", dpi=150, bbox_inches="tight")
        return buffer.getvalue()
    return Path(data).read_bytes()


def _pdf_image(data: Any, squeeze: bool) -> list[Flowable]:
    """An image file or matplotlib figure at the full text width."""
    return [_pdf_png(_image_bytes(data))]


def _pdf_png(raw: bytes) -> Image:
    """Image bytes at the full text width (shrunk further if taller than a page)."""
    width, height = ImageReader(io.BytesIO(raw)).getSize()
    scale = min(_WIDTH / width, 0.85 * _HEIGHT / height)
    return Image(io.BytesIO(raw), width=width * scale, height=height * scale)


def _pdf_plot(figure: Any, squeeze: bool) -> list[Flowable]:
    """A static rendering of a plotly figure when kaleido is installed, else a pointer."""
    if importlib.util.find_spec("kaleido") is not None:
        try:
            return [_pdf_png(figure.to_image(format="png", scale=2))]
        except (ValueError, RuntimeError, OSError):
            pass
    note = "Interactive plotly figure: open the HTML version of this report to see it."
    return [Paragraph(note, _styles()["caption"])]


_PDF_RENDERERS: dict[str, Callable[[Any, bool], list[Flowable]]] = {
    "dict": _pdf_dict,
    "df": _pdf_frame,
    "img": _pdf_image,
    "plot": _pdf_plot,
}


def _pdf_code(code: _Code) -> list[Flowable]:
    """The "Script" section: numbered, wrapped and coloured code in chunks of rows."""
    st = _styles()
    lines = code.text.splitlines()
    digits = len(str(max(code.numbers, default=1)))
    char = pdfmetrics.stringWidth("0", _fonts().mono, _CODE_SIZE)
    width = int(_WIDTH // char) - digits - 2
    palette = _char_colors(code)
    rows = [
        _code_markup(number, digits, lines[i][a:b], palette[i][a:b], a > 0, lines[i])
        for number, i, a, b in _code_rows(code, width)
    ]
    caption = f"{escape(str(code.path))} ({code.note}); SHA-256 {code.sha256}"
    out: list[Flowable] = [_heading("Script", "script"), Paragraph(caption, st["caption"])]
    for k in range(0, len(rows), _CODE_CHUNK):
        out.append(XPreformatted("\n".join(rows[k : k + _CODE_CHUNK]), st["code"]))
    return out


def _code_markup(
    number: int | None, digits: int, text: str, palette: Sequence[str | None],
    continued: bool, line: str,
) -> str:
    """One display row as reportlab markup: grey line number, then coloured code."""
    gutter = f"{number:>{digits}}" if number is not None else " " * digits
    pad = ""
    if continued:
        pad = " " * min(len(line) - len(line.lstrip(" ")) + 4, len(line))
    parts = [f'<font color="#9ca3af">{gutter}</font>  {pad}']
    for color, group in itertools.groupby(zip(text, palette, strict=False), key=lambda p: p[1]):
        chunk = escape("".join(ch for ch, _ in group), quote=False)
        parts.append(f'<font color="#{color}">{chunk}</font>' if color else chunk)
    return "".join(parts)


# --------------------------------------------------------------------------- HTML


_CSS = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#111827;
max-width:1200px;margin:2em auto;padding:0 1.5em}
h1{margin-bottom:.1em}h2{color:#1d4ed8;border-bottom:1px solid #d1d5db;padding-bottom:.2em;
margin-top:1.8em}.sub,.caption{color:#6b7280;font-size:.85em}
table{border-collapse:collapse;font-size:12px;margin:.4em 0 1em}
td,th{padding:2px 8px;border-bottom:1px solid #e5e7eb;text-align:left;vertical-align:top}
table.df thead th{background:#e5e7eb;border-bottom:1px solid #6b7280}
table.df tbody tr:nth-child(even){background:#f3f4f6}
table.df td.num,table.df th.num{text-align:right;font-variant-numeric:tabular-nums}
tr.omitted td{text-align:center;font-style:italic;color:#6b7280}
.scroll{overflow-x:auto}pre{background:#f3f4f6;padding:.6em;overflow-x:auto;font-size:12px}
table.kv th{white-space:nowrap}img{max-width:100%;height:auto}
.code pre{white-space:pre-wrap;overflow-wrap:anywhere;font-size:12px}
.code .ln{color:#9ca3af;user-select:none}
nav ol{columns:2;font-size:.9em}
"""


def _write_html(path: Path, report: _Report, squeeze: bool) -> Path:
    first_plot = [True]
    body = [_html_header(report)]
    for n, (title, sections) in enumerate(report.groups(), start=1):
        parts = [_html_section(s, squeeze, first_plot) for s in sections]
        body.append(f'<section id="s{n}"><h2>{n}. {_e(title)}</h2>{"".join(parts)}</section>')
    if report.code is not None:
        body.append(_html_code(report.code))
    style = _CSS + _pygments_css()
    page = (
        f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f'<meta name="viewport" content="width=device-width,initial-scale=1">'
        f"<title>{_e(report.title)}</title><style>{style}</style></head>"
        f"<body>{''.join(body)}</body></html>\n"
    )
    path.write_text(page, encoding="utf-8")
    return path


def _e(text: Any) -> str:
    return escape(str(text))


def _html_header(report: _Report) -> str:
    meta = "".join(f"<tr><th>{_e(k)}</th><td>{_e(v)}</td></tr>" for k, v in report.meta)
    toc = [f'<li><a href="#s{n}">{_e(t)}</a></li>' for n, (t, _) in enumerate(report.groups(), 1)]
    if report.code is not None:
        toc.append('<li><a href="#script">Script</a></li>')
    return (
        f"<header><h1>{_e(report.title)}</h1><p class='sub'>Open Research Standard report: "
        f"results, the configuration and the code that produced them.</p>"
        f'<table class="kv">{meta}</table></header><nav><ol>{"".join(toc)}</ol></nav>'
    )


def _html_section(section: _Section, squeeze: bool, first_plot: list[bool]) -> str:
    if section.dtype == "dict":
        return _html_dict(section.data)
    if section.dtype == "df":
        return _html_frame(section.data, squeeze)
    if section.dtype == "img":
        return _html_image(section.data)
    include = first_plot[0]
    first_plot[0] = False
    return section.data.to_html(
        full_html=False, include_plotlyjs=include, config={"responsive": True}
    )


def _html_dict(data: Mapping[Any, Any]) -> str:
    rows = []
    for row in _dict_rows(data):
        pad = f' style="padding-left:{0.5 + 1.5 * row.depth:.1f}em"'
        value = f"<pre>{_e(row.text)}</pre>" if row.block else _e(row.text)
        rows.append(f"<tr><th{pad}>{_e(row.key)}</th><td>{value}</td></tr>")
    return f'<table class="kv">{"".join(rows)}</table>' if rows else "<p>(empty)</p>"


def _html_frame(df: pd.DataFrame, squeeze: bool) -> str:
    grid = _grid(df, squeeze)
    caption = _frame_caption(grid)
    head = "".join(_html_row(row, grid, "th") for row in grid.header)
    body = [_html_row(row, grid, "td") for row in grid.body]
    if grid.omitted_at is not None:
        marker = f'<tr class="omitted"><td colspan="{len(grid.numeric)}">{grid.omitted_label}'
        body.insert(grid.omitted_at, marker + "</td></tr>")
    table = f'<table class="df"><thead>{head}</thead><tbody>{"".join(body)}</tbody></table>'
    return f'<p class="caption">{caption}</p><div class="scroll">{table}</div>'


def _html_row(row: list[str], grid: _Grid, tag: str) -> str:
    cells = []
    for c, text in enumerate(row):
        cell = "th" if c < grid.n_index else tag
        cls = ' class="num"' if grid.numeric[c] else ""
        cells.append(f"<{cell}{cls}>{_e(text)}</{cell}>")
    return f"<tr>{''.join(cells)}</tr>"


_MIME = {".jpg": "jpeg", ".jpeg": "jpeg", ".gif": "gif", ".svg": "svg+xml", ".webp": "webp"}


def _html_image(data: Any) -> str:
    mime = "png" if hasattr(data, "savefig") else _MIME.get(Path(data).suffix.lower(), "png")
    encoded = base64.b64encode(_image_bytes(data)).decode("ascii")
    return f'<img src="data:image/{mime};base64,{encoded}" alt="">'


def _pygments_css() -> str:
    if importlib.util.find_spec("pygments") is None:
        return ""
    from pygments.formatters import HtmlFormatter

    return str(HtmlFormatter(style="default").get_style_defs(".code"))


def _html_code(code: _Code) -> str:
    """The "Script" section: highlighted code numbered like the original file."""
    caption = f"{_e(code.path)} ({_e(code.note)}); SHA-256 {code.sha256}"
    width = len(str(max(code.numbers, default=1)))
    rows = [
        f'<span class="ln">{n:>{width}}</span>  {line}'
        for n, line in zip(code.numbers, _html_code_lines(code), strict=True)
    ]
    listing = '<div class="code"><pre>' + "\n".join(rows) + "</pre></div>"
    head = f'<h2>Script</h2><p class="caption">{caption}</p>'
    return f'<section id="script">{head}{listing}</section>'


def _html_code_lines(code: _Code) -> list[str]:
    """Each code line as HTML, highlighted by pygments when it is installed."""
    lines = code.text.splitlines()
    if importlib.util.find_spec("pygments") is None:
        return [_e(line) for line in lines]
    from pygments import highlight
    from pygments.formatters import HtmlFormatter

    out = highlight(code.text, _lexer(code.path), HtmlFormatter(nowrap=True)).splitlines()
    return out if len(out) == len(lines) else [_e(line) for line in lines]
