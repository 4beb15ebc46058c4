"""Fixtures of the monitoring page's tests: a short archive for the paper exchange, and
Debian's Chromium (the browser tests skip, saying why, without it)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pyarrow as pa
import pytest
from page_kit import CHROMIUM, HOUR

from makerlab.data.archive import read_table, write_table

BUNDLED = Path(__file__).resolve().parents[2] / "data" / "archive"


@pytest.fixture(scope="session")
def page_archive(tmp_path_factory) -> Path:
    """The first 120 s of the bundled 23:00 hour: USD-M and spot BTCUSDT (book deltas,
    depth-20 snapshots, trades)."""
    root = tmp_path_factory.mktemp("page_archive")
    for exchange in ("binance", "binance_spot"):
        for kind, depth in (("book_delta", None), ("book_snapshot", 20), ("trades", None)):
            table = read_table(BUNDLED, kind, exchange, "BTCUSDT", HOUR, HOUR, depth=depth)
            stamps = table.column("exchange_ts").to_numpy()
            keep = stamps < stamps.min() + 120 * 1_000_000_000
            write_table(root, kind, exchange, "BTCUSDT", table.filter(pa.array(keep)))
    return root


@pytest.fixture(scope="session")
def chromium() -> str:
    """Debian's Chromium, for Playwright (never a downloaded browser)."""
    pytest.importorskip("playwright.async_api", reason="the playwright package is not "
                        "installed (pip install -e '.[test]')")
    found = shutil.which("chromium") or (CHROMIUM if Path(CHROMIUM).exists() else None)
    if found is None:
        pytest.skip("Debian's chromium is not installed (make test installs it: "
                    "apt-get install -y chromium)")
    return found
