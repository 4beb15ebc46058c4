"""Small helpers the tutorial's scripts import (``from makerlab.utils import _time,
pdf_snapshot``)."""

from __future__ import annotations

from makerlab.core.clock import default_clock
from makerlab.research.report import pdf_snapshot

__all__ = ["_time", "pdf_snapshot"]


def _time() -> int:
    """Time in epoch milliseconds for live mode (replay uses ``replayer.time()``): the wall
    clock, or the data's virtual time under a Gateway in lockstep with a paper exchange
    (:func:`makerlab.core.clock.default_clock`)."""
    return default_clock().ms()
