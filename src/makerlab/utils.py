"""Small helpers the tutorial's scripts import."""

from __future__ import annotations

import time

__all__ = ["_time"]


def _time() -> int:
    """Wall-clock time in epoch milliseconds (live mode; replay uses ``replayer.time()``)."""
    return time.time_ns() // 1_000_000
