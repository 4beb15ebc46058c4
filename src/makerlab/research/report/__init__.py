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
  blocks sized to fit the page. A mapping's ``warnings`` list of ``'key: note'`` lines (as
  :func:`makerlab.analytics.metrics.statistics` returns) also puts each note next to the
  value of its key.
- ``'df'``: a pandas DataFrame (or Series, or anything with ``to_pandas()``). Wide frames are
  split into column chunks that repeat the index; long frames keep their first and last rows
  with an "... N rows omitted ..." row when ``squeeze=True``.
- ``'img'``: a path to an image file, or a matplotlib figure; scaled to the page width.
- ``'plot'``: a plotly figure; interactive in HTML, a static image in the PDF when kaleido is
  installed and a pointer to the HTML report otherwise.

Layout: ``_sections`` validates ``report_data`` into the report model, ``_code`` handles the
code file (comment stripping, hashing, the git/environment header, listing layout),
``_format`` turns values and frames into text shared by both outputs, ``_pdf`` (with
``_pdf_style``) renders the PDF and ``_html`` the HTML.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any, overload

from makerlab.research.report._code import strip_comments
from makerlab.research.report._html import _write_html
from makerlab.research.report._pdf import _write_pdf
from makerlab.research.report._sections import DTYPES, _Report

__all__ = ["DTYPES", "html_snapshot", "pdf_snapshot", "strip_comments"]


@overload
def pdf_snapshot(
    save: str | Path,
    code_file: str | Path | None = ...,
    include_comments: bool = ...,
    squeeze: bool = ...,
    report_data: Iterable[tuple[str, Any, str]] = ...,
    title: str = ...,
    html: None = ...,
) -> Path: ...


@overload
def pdf_snapshot(
    save: str | Path,
    code_file: str | Path | None = ...,
    include_comments: bool = ...,
    squeeze: bool = ...,
    report_data: Iterable[tuple[str, Any, str]] = ...,
    title: str = ...,
    *,
    html: str | Path,
) -> tuple[Path, Path]: ...


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


def _target(save: str | Path) -> Path:
    path = Path(save)
    path.parent.mkdir(parents=True, exist_ok=True)
    return path
