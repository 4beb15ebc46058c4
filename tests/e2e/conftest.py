"""Fixtures of the end-to-end tests (helpers in live_paper.py)."""

from __future__ import annotations

import pytest
from live_paper import BUNDLED, Archived


@pytest.fixture(scope="session")
def archived() -> dict[str, Archived]:
    """The bundled archive's BTCUSDT books and trades, USD-M and spot."""
    return {exchange: Archived.read(BUNDLED, exchange, "BTCUSDT")
            for exchange in ("binance", "binance_spot")}
