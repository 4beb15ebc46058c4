"""Shared test fixtures: paths to bundled samples and to the optional ../shared/data."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SAMPLES = REPO / "tests" / "samples"
BUNDLED_RAW = REPO / "data" / "raw"
BUNDLED_ARCHIVE = REPO / "data" / "archive"
SHARED_DATA = Path(os.environ.get("MAKERLAB_SHARED_DATA", REPO.parent / "shared" / "data"))


@pytest.fixture
def samples() -> Path:
    """Small real samples bundled with the tests (tests/samples/<source>/...)."""
    return SAMPLES


@pytest.fixture
def shared_data() -> Path:
    """The full real-data corpus in ../shared/data; the test is skipped without it."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"shared data not available at {SHARED_DATA}")
    return SHARED_DATA
