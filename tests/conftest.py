"""Shared test fixtures: paths to bundled samples and to the optional ../shared/data."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

# CI runs the property tests derandomised (the same examples every run, so a red run is
# reproducible and never a fluke of the draw) and without per-example time limits (a busy
# 2-core machine is slow); locally they keep exploring new examples each run.
settings.register_profile("ci", derandomize=True, deadline=None, print_blob=True,
                          suppress_health_check=[HealthCheck.too_slow])
if os.environ.get("CI"):
    settings.load_profile("ci")

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


@pytest.fixture(autouse=True)
def spec_cache(tmp_path_factory, monkeypatch) -> Path:
    """An empty venue spec cache per test ($MAKERLAB_SPEC_CACHE), so a developer's real
    ~/.cache/makerlab/specs never changes what a replay resolves (and no test writes
    there)."""
    path = tmp_path_factory.mktemp("spec_cache")
    monkeypatch.setenv("MAKERLAB_SPEC_CACHE", str(path))
    return path
