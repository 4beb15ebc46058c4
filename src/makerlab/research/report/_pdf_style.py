"""PDF page geometry, colours, fonts and paragraph styles (reportlab)."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from reportlab.lib import colors
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import mm
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.ttfonts import TTFError, TTFont

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
