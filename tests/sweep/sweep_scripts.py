"""Paths of the sweep tests' scripts and the bundled archive they replay."""

from __future__ import annotations

from pathlib import Path

import pytest

SCRIPTS = Path(__file__).resolve().parent / "scripts"
QUOTER = SCRIPTS / "quoter.py"
REPO = Path(__file__).resolve().parents[2]
ARCHIVE = REPO / "data" / "archive"

needs_archive = pytest.mark.skipif(not (ARCHIVE / "kind=book_snapshot").is_dir(),
                                   reason="bundled archive data/archive absent")
