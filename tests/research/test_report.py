"""The research report: the Open Research Standard PDF and its self-contained HTML twin."""

from __future__ import annotations

import re
from decimal import Decimal
from pathlib import Path

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import pytest
import statsmodels.api as sm
from matplotlib.figure import Figure

from makerlab.errors import ConfigError
from makerlab.research.report import html_snapshot, pdf_snapshot, strip_comments

# sentinel-comment: this line must vanish from the Script section when include_comments=False
MARKER = "sentinel" + "-comment"  # built so that the code itself never contains the marker
TITLES = ["configs", "stats", "perf[inventory]", "wide frame", "fairprice metrics", "summary"]


class _SummaryLike:
    """An object with a ``summary()`` method, like a fitted model."""

    def summary(self) -> str:
        return "Fit summary\n===========\nalpha   0.12\nbeta    1.41\n" + "=" * 140


def _png(path: Path) -> Path:
    fig = Figure(figsize=(6, 3))
    fig.add_subplot().plot(np.sin(np.linspace(0, 6, 50)))
    fig.savefig(path)  # a Figure without pyplot draws with Agg: no display needed
    return path


def _regression_summary() -> object:
    rng = np.random.default_rng(1)
    x = rng.normal(size=60)
    return sm.OLS(1.4 * x + rng.normal(size=60), x).fit().summary()


def _frames() -> dict[str, pd.DataFrame]:
    rng = np.random.default_rng(0)
    n = 2_000
    exchange = pd.DataFrame(
        {"pnl": rng.normal(size=n).cumsum(), "inventory": rng.normal(size=n)},
        index=pd.Index(1_736_470_799_934 + 500 * np.arange(n), name="ts"),
    )
    wide = pd.DataFrame(rng.normal(size=(6, 30)), columns=[f"feature_{i}" for i in range(30)])
    index = pd.MultiIndex.from_product(
        [["t0", "t1", "t10"], ["vamp10k", "vamp100k"]], names=["T+", "Estimator"]
    )
    metrics = pd.DataFrame(rng.normal(size=(6, 3)) * 1e-3, index=index, columns=["Q1", "Q3", "MSE"])
    metrics["MSE*"] = ["*", "", "", "*", "*", ""]
    return {"exchange": exchange, "wide": wide, "metrics": metrics}


def _report_data(tmp: Path) -> list[tuple[str, object, str]]:
    frames = _frames()
    stats = {
        "bybit": {
            "#trades": 59,
            "0s Markouts": pd.Series([-1.5e-05, -1.5e-05], index=["0s", "0s"]),
            "sharpe": -7.76,
            "volume": Decimal("3899.41"),
            "interval_quartiles": ["0s", "0s", "11s"],
            "fit": _SummaryLike(),
        },
        "binance": None,
    }
    configs = {"exc": "bybit", "tickers": ["SOLUSDT"], "params": {"fees": {"maker": -0.0001}}}
    return [
        ("configs", configs, "dict"),
        ("stats", stats, "dict"),
        ("perf[inventory]", frames["exchange"], "df"),
        ("perf[inventory]", _png(tmp / "exchange.png"), "img"),
        ("wide frame", frames["wide"], "df"),
        ("fairprice metrics", frames["metrics"], "df"),
        ("summary", {"summary": _regression_summary()}, "dict"),
    ]


def _pdf_pages(path: Path) -> list[str]:
    pypdf = pytest.importorskip("pypdf")
    return [page.extract_text() for page in pypdf.PdfReader(path).pages]


def _page_count(path: Path) -> int:
    try:
        import pypdf
    except ImportError:
        return len(re.findall(rb"/Type\s*/Page\b", path.read_bytes()))
    return len(pypdf.PdfReader(path).pages)


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """One full report (PDF and HTML), comments stripped, as the tutorial builds it."""
    tmp = tmp_path_factory.mktemp("report")
    data = _report_data(tmp)
    data.append(("interactive", go.Figure(go.Scatter(y=[1, 3, 2])), "plot"))
    pdf, html = pdf_snapshot(
        save=tmp / "nested" / "folder" / "report.pdf",
        code_file=__file__,
        report_data=data,
        include_comments=False,
        html=tmp / "report.html",
    )
    return pdf, html


def test_pdf_is_written_with_every_section(built: tuple[Path, Path]) -> None:
    pdf, _ = built
    assert pdf.read_bytes().startswith(b"%PDF")
    assert _page_count(pdf) > 1
    text = "\n".join(_pdf_pages(pdf))
    for title in [*TITLES, "Script"]:
        assert title in text
    assert "1,970 rows omitted" in text


def test_pdf_header_pins_down_the_run(built: tuple[Path, Path]) -> None:
    first = _pdf_pages(built[0])[0]
    for field in ("Generated", "makerlab", "Python", "Git commit", "Code SHA-256"):
        assert field in first


def test_pdf_values_are_readable(built: tuple[Path, Path]) -> None:
    text = "\n".join(_pdf_pages(built[0]))
    assert "3899.41" in text  # Decimal printed exactly
    assert "-7.76" in text
    assert "'11s'" in text
    assert "OLS Regression Results" in text  # the statsmodels summary block
    assert "Fit summary" in text  # .summary() of a plain object
    assert "vamp100k" in text  # MultiIndex labels
    assert "columns 1" in text  # the 30-column frame is split into column chunks


def test_comments_are_stripped_only_on_request(tmp_path: Path) -> None:
    kept = pdf_snapshot(tmp_path / "kept.pdf", code_file=__file__, include_comments=True)
    stripped = pdf_snapshot(tmp_path / "stripped.pdf", code_file=__file__, include_comments=False)
    assert MARKER in "".join(_pdf_pages(kept))
    stripped_text = "".join(_pdf_pages(stripped))
    assert MARKER not in stripped_text
    assert "def test_comments_are_stripped_only_on_request" in stripped_text


def test_strip_comments_keeps_code_valid() -> None:
    source = Path(__file__).read_text()
    stripped = strip_comments(source)
    compile(stripped, __file__, "exec")
    assert MARKER not in stripped
    assert "An object" + " with" not in stripped  # a class docstring
    docstring_only = 'class A:\n    """Doc."""\n\n\nx = """kept\n\ninside"""  # gone\n'
    assert strip_comments(docstring_only) == 'class A:\n    pass\n\n\nx = """kept\n\ninside"""\n'


def test_unsqueezed_frame_prints_every_row(tmp_path: Path) -> None:
    df = pd.DataFrame({"x": np.arange(150) * 1.5})
    pdf = pdf_snapshot(tmp_path / "all.pdf", squeeze=False, report_data=[("all", df, "df")])
    text = "\n".join(_pdf_pages(pdf))
    assert "rows omitted" not in text
    assert "223.5" in text  # the last row
    assert _page_count(pdf) > 1


def test_long_code_lines_wrap_outside_strings(tmp_path: Path) -> None:
    literal = "a string literal that must stay on one printed row"
    code = tmp_path / "long.py"
    args = ", ".join(f"argument_{i}" for i in range(20))
    code.write_text(f"def f({args}):\n    return ({args}, {literal!r})\n")
    text = "\n".join(_pdf_pages(pdf_snapshot(tmp_path / "long.pdf", code_file=code)))
    assert "argument_19" in text
    assert repr(literal) in text


def test_html_is_self_contained(built: tuple[Path, Path]) -> None:
    text = built[1].read_text(encoding="utf-8")
    for title in [*TITLES, "Script"]:
        assert f">{title}</a>" in text  # in the table of contents
    assert '<img src="data:image/png;base64,' in text
    assert not re.search(r"<script[^>]*\bsrc=[\"']?https?:", text)
    assert "Plotly.newPlot" in text  # the interactive figure, with plotly.js inlined
    assert "1,970 rows omitted" in text


def test_html_snapshot_alone(tmp_path: Path) -> None:
    path = html_snapshot(
        tmp_path / "r.html", code_file=__file__, report_data=[("configs", {"a": 1}, "dict")]
    )
    text = path.read_text(encoding="utf-8")
    assert "configs" in text
    assert "test_html_snapshot_alone" in text


def test_bad_dtype_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"'stats'.*unknown dtype 'table'"):
        pdf_snapshot(tmp_path / "bad.pdf", report_data=[("stats", {}, "table")])
    assert not (tmp_path / "bad.pdf").exists()


def test_missing_image_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"'fills'.*does not exist"):
        pdf_snapshot(tmp_path / "bad.pdf", report_data=[("fills", tmp_path / "no.png", "img")])


def test_wrong_data_for_dtype_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"'perf'.*needs a DataFrame"):
        pdf_snapshot(tmp_path / "bad.pdf", report_data=[("perf", [1, 2], "df")])
