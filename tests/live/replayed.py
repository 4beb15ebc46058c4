"""``makerlab validate`` for archives recorded from a replayed market.

A fake venue replaying a 2021 capture, or the paper exchange replaying the 2024 bundled
archive, stamps messages with the capture's exchange time while the recorder stamps the
receive time now: years apart, which ``validate``'s clock-offset rule (5 minutes, meant
for real captures) reports. Everything else is checked as ``validate_archive`` does."""

from __future__ import annotations

from makerlab.data.integrity import ArchiveReport, check_archive
from makerlab.data.validate import Plausibility, validate_table

REPLAYED = Plausibility(max_clock_offset_ns=2**62)


def validate_replayed(root) -> ArchiveReport:
    """Every check of ``makerlab validate`` except the exchange/local clock offset."""
    return check_archive(root, check=lambda kind, table, source: validate_table(
        kind, table, source, limits=REPLAYED))
