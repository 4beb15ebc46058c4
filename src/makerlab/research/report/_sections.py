"""The section model: ``report_data`` validation, the prepared report and image data.

``_Report.prepare`` checks every ``(title, data, dtype)`` section, loads the code file and
collects the header metadata before anything is written; the PDF and HTML writers only read
the result.
"""

from __future__ import annotations

import io
import itertools
import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, is_dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd
from reportlab.lib.utils import ImageReader

from makerlab.errors import ConfigError
from makerlab.research.report._code import _Code, _collect_meta, _load_code

DTYPES = ("dict", "df", "img", "plot")
"""The section kinds ``report_data`` may use."""


@dataclass(frozen=True)
class _Section:
    title: str
    data: Any
    dtype: str


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


# --------------------------------------------------------------------------- section checks


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

# --------------------------------------------------------------------------- image data


def _image_bytes(data: Any) -> bytes:
    """PNG bytes of a matplotlib figure, or the bytes of an image file."""
    if hasattr(data, "savefig"):
        buffer = io.BytesIO()
        data.savefig(buffer, format="png", dpi=150, bbox_inches="tight")
        return buffer.getvalue()
    return Path(data).read_bytes()
