"""Sim-live parity (``makerlab parity``, docs/paper.md) of the tutorial's quoter on the
bundled archive, with the monitoring page on in the live run (the example serves it in
live mode; ``MAKERLAB_PAGE=0`` puts it on a free port): the page reads the OMS and the
Feed at its own rate and must not change a fill."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from makerlab.parity import run_parity

REPO = Path(__file__).resolve().parents[1]
HOUR = "2024-08-08:23"


@pytest.mark.parity
def test_fills_are_identical_with_the_monitoring_page_on(tmp_path, monkeypatch):
    monkeypatch.setenv("MAKERLAB_PAGE", "0")
    result = asyncio.run(run_parity(REPO / "examples" / "market_maker.py",
                                    REPO / "data" / "archive", HOUR, HOUR, workdir=tmp_path,
                                    timeout_s=600))
    live_output = (tmp_path / "live" / "output.txt").read_text()
    assert "monitoring page: http://127.0.0.1:" in live_output, live_output[-2000:]
    assert len(result.replay) > 5, result.report()
    assert result.same_terms, result.report()
    assert result.same_times, result.report()
