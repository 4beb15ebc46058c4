"""The self-contained HTML report: tables, base64 images, inlined plotly and highlighted code."""

from __future__ import annotations

import base64
import importlib.util
from collections.abc import Mapping
from html import escape
from pathlib import Path
from typing import Any

import pandas as pd

from makerlab.research.report._code import _Code, _lexer
from makerlab.research.report._format import _dict_rows, _frame_caption, _Grid, _grid
from makerlab.research.report._sections import _image_bytes, _Report, _Section

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
