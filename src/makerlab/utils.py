"""Small helpers the tutorial's scripts import (``from makerlab.utils import _time,
pdf_snapshot``)."""

from __future__ import annotations

import time

from makerlab.research.report import pdf_snapshot
from makerlab.units import NS_PER_MS

__all__ = ["_time", "pdf_snapshot"]


def _time() -> int:
    """Wall-clock time in epoch milliseconds (live mode; replay uses ``replayer.time()``)."""
    return time.time_ns() // NS_PER_MS
