"""The PDF report, rendered with reportlab: header, sections, tables, images and the script."""

from __future__ import annotations

import importlib.util
import io
import itertools
from collections.abc import Callable, Mapping, Sequence
from html import escape
from pathlib import Path
from typing import Any

import pandas as pd
from reportlab.lib import colors
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import mm
from reportlab.lib.utils import ImageReader
from reportlab.pdfbase import pdfmetrics
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

from makerlab.research.report._code import (
    _char_colors,
    _Code,
    _code_rows,
    _makerlab_version,
    _wrap_line,
)
from makerlab.research.report._format import _dict_rows, _frame_caption, _Grid, _grid, _Row
from makerlab.research.report._pdf_style import (
    _CODE_CHUNK,
    _CODE_SIZE,
    _GREY,
    _HEAD,
    _HEIGHT,
    _MARGIN,
    _PAD,
    _RULE,
    _TABLE_SIZE,
    _WIDTH,
    _ZEBRA,
    _fonts,
    _styles,
)
from makerlab.research.report._sections import _image_bytes, _Report

# --------------------------------------------------------------------------- document


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


# --------------------------------------------------------------------------- dict sections


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


# --------------------------------------------------------------------------- frame sections


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


# --------------------------------------------------------------------------- images and plots


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


# --------------------------------------------------------------------------- script


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
