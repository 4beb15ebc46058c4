"""Fixtures of the sweep tests (paths to their scripts: sweep_scripts.py)."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture
def script(tmp_path):
    """Write a script into tmp_path and return its path."""

    def write(body: str, name: str = "script.py") -> Path:
        path = tmp_path / name
        path.write_text(body)
        return path

    return write
