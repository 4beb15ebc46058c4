"""Shared test fixtures: bundled samples, the optional ../shared/data, an empty spec cache
per test, and the local S3 server (moto's)."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

from s3_server import S3Server

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


@pytest.fixture(autouse=True)
def signals_left_as_found():
    """A test leaves SIGTERM and SIGINT handled as it found them: the OMS takes SIGTERM
    over only when nothing else handles it, so a handler left behind changes what later
    tests exercise (restored here, and the test that left it fails)."""
    found = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT)}
    yield
    left = [sig.name for sig, handler in found.items() if signal.getsignal(sig) != handler]
    for sig, handler in found.items():
        signal.signal(sig, handler)
    assert not left, f"the test left {', '.join(left)} handled"


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


# --------------------------------------------------------------------------- object storage


@pytest.fixture(scope="session")
def s3(tmp_path_factory):
    """The session's :class:`S3Server` (moto's server, a process on 127.0.0.1), its
    environment set (``s3.bucket()`` makes a fresh bucket); the test is skipped when moto's
    server is not installed."""
    try:
        import boto3  # noqa: F401
        import moto.server  # noqa: F401
    except ImportError as error:
        pytest.skip(f"moto's S3 server is not installed ({error}); pip install 'moto[server]'")
    s3 = S3Server.start(tmp_path_factory.mktemp("s3") / "server.log")
    try:
        with pytest.MonkeyPatch.context() as patch:
            for name, value in s3.env.items():
                patch.setenv(name, value)
            for name in ("AWS_ENDPOINT_URL_S3", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
                patch.delenv(name, raising=False)
            yield s3
    finally:
        s3.stop()
