"""Sweep tests run small scripts in scripts/ on the bundled archive."""

from __future__ import annotations

from pathlib import Path

import pytest

SCRIPTS = Path(__file__).resolve().parent / "scripts"
QUOTER = SCRIPTS / "quoter.py"
REPO = Path(__file__).resolve().parents[2]
ARCHIVE = REPO / "data" / "archive"

needs_archive = pytest.mark.skipif(not (ARCHIVE / "kind=book_snapshot").is_dir(),
                                   reason="bundled archive data/archive absent")


@pytest.fixture
def script(tmp_path):
    """Write a script into tmp_path and return its path."""

    def write(body: str, name: str = "script.py") -> Path:
        path = tmp_path / name
        path.write_text(body)
        return path

    return write
