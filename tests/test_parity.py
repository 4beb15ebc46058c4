"""Sim-live parity on the bundled archive: ``makerlab parity examples/market_maker.py``
runs the tutorial's quoter in the Replayer and live (Gateway -> Feed -> OMS) against the
paper exchange in lockstep; the two fill lists must be identical (docs/paper.md,
"Sim-live parity"), once as a user runs the command (the monitoring page off) and once
with the page on in the live run (``MAKERLAB_PAGE=0``: a free port): the page reads the
OMS and the Feed at its own rate and must not change a fill."""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from makerlab.parity import run_parity

REPO = Path(__file__).resolve().parents[1]
ARCHIVE = REPO / "data" / "archive"
HOUR = "2024-08-08:23"

pytestmark = [pytest.mark.parity,
              pytest.mark.skipif(not (ARCHIVE / "kind=book_snapshot").is_dir(),
                                 reason="bundled archive data/archive absent")]

SUMMARY = re.compile(r"^fills: replay (\d+), live (\d+); (\d+) of (\d+) agree on side, "
                     r"price and size \((identical|NOT identical)\)$", re.MULTILINE)
ROW = re.compile(r"^\s*(\d+)  (.{48})  (.*)$")
FILL = re.compile(r"^\d\d:\d\d:\d\d\.\d{3}  (buy|sell) +[\d.]+ x [\d.]+$")


def parity(tmp_path: Path) -> subprocess.CompletedProcess[str]:
    """``makerlab parity`` as a user runs it, from a scratch folder."""
    env = {**os.environ, "MPLBACKEND": "Agg", "MAKERLAB_PAGE": "off"}
    return subprocess.run(
        [sys.executable, "-m", "makerlab.cli", "parity", str(REPO / "examples" / "market_maker.py"),
         "--archive", str(ARCHIVE), "--start", HOUR, "--end", HOUR],
        capture_output=True, text=True, cwd=tmp_path, env=env, timeout=900)


def fill_rows(output: str) -> list[tuple[str, str]]:
    """The side-by-side table as (replay, live) pairs, in fill order."""
    rows = [ROW.match(line) for line in output.splitlines()]
    pairs = [(m.group(2).strip(), m.group(3).strip()) for m in rows if m]
    assert [int(m.group(1)) for m in rows if m] == list(range(1, len(pairs) + 1)), output
    return pairs


def test_the_example_fills_identically_in_replay_and_live_against_the_paper(tmp_path):
    run = parity(tmp_path)
    assert run.returncode == 0, run.stdout + run.stderr
    [summary] = SUMMARY.findall(run.stdout)
    replay, live, agree, total, verdict = summary
    assert int(replay) == int(live) == int(agree) == int(total) > 0, run.stdout
    assert verdict == "identical"
    assert "times: identical (every fill at the same exchange time)" in run.stdout
    assert run.stdout.splitlines()[-1] == "parity: OK"
    pairs = fill_rows(run.stdout)
    assert len(pairs) == int(replay)
    for left, right in pairs:  # each row: the same time, side, price and size on both sides
        assert FILL.match(left) and left == right, (left, right)


def test_fills_are_identical_with_the_monitoring_page_on(tmp_path, monkeypatch):
    monkeypatch.setenv("MAKERLAB_PAGE", "0")
    result = asyncio.run(run_parity(REPO / "examples" / "market_maker.py", ARCHIVE, HOUR, HOUR,
                                    workdir=tmp_path, timeout_s=600))
    live_output = (tmp_path / "live" / "output.txt").read_text()
    assert "monitoring page: http://127.0.0.1:" in live_output, live_output[-2000:]
    assert len(result.replay) > 5, result.report()
    assert result.same_terms, result.report()
    assert result.same_times, result.report()
