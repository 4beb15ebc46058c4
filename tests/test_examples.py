"""The tutorial's two scripts, ported, run end to end on the bundled archive."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
ARCHIVE = REPO / "data" / "archive"

pytestmark = pytest.mark.skipif(not (ARCHIVE / "kind=book_snapshot").is_dir(),
                                reason="bundled archive data/archive absent")


def run_example(name: str, cwd: Path, *args: str) -> str:
    env = {**os.environ, "MAKERLAB_ARCHIVE": str(ARCHIVE), "MPLBACKEND": "Agg"}
    return subprocess.run([sys.executable, str(REPO / "examples" / name), *args],
                          capture_output=True, text=True, cwd=cwd, env=env, timeout=600,
                          check=True).stdout


def test_vamp_study_writes_fair_prices_regression_plots_and_report(tmp_path):
    out = run_example("vamp_study.py", tmp_path)
    assert "vamp10k" in out and "MSE*" in out
    assert "Dep. Variable:" in out and "b1" in out
    reports = tmp_path / "logs" / "reports"
    for name in ("regression.png", "regression_influence.png", "prices.png"):
        assert (reports / name).stat().st_size > 10_000
    [pdf] = reports.glob("*.pdf")
    assert pdf.read_bytes().startswith(b"%PDF")
