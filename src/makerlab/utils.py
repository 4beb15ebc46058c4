"""Small helpers the tutorial's scripts import (``from makerlab.utils import _time,
pdf_snapshot``)."""

from __future__ import annotations

import time

from makerlab.research.report import pdf_snapshot

__all__ = ["_time", "pdf_snapshot"]


def _time() -> int:
    """Wall-clock time in epoch milliseconds (live mode; replay uses ``replayer.time()``)."""
    return time.time_ns() // 1_000_000
