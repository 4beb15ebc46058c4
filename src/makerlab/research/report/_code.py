"""The code file: comment stripping, loading and hashing, the reproducibility header, layout.

``strip_comments`` removes comments and docstrings with ``tokenize``. ``_load_code`` reads and
hashes the script; ``_collect_meta`` gathers the versions, command line and git commit shown
at the top of the report. The listing helpers wrap long lines outside string literals and
colour them with pygments when it is installed.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import importlib.util
import io
import platform
import shlex
import subprocess
import sys
import tokenize
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from makerlab.errors import ConfigError

# --------------------------------------------------------------------------- comment stripping


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


# --------------------------------------------------------------------------- loading and hashing


@dataclass(frozen=True)
class _Code:
    path: Path
    text: str  # the code as displayed: tabs expanded, "\n" line ends
    numbers: list[int]  # each displayed line's number in the original file
    sha256: str
    note: str


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


# --------------------------------------------------------------------------- listing layout


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
    pieces: list[tuple[int, int]] = []
    start = 0
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
