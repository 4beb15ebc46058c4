"""``makerlab parity``'s verdict: its exit status and last line say whether the replay's and
the live run's fills agree in side, price, size and exchange time (docs/paper.md,
"Sim-live parity"); the runs themselves are faked here (tests/test_parity.py runs them)."""

from __future__ import annotations

from decimal import Decimal

import pytest

from makerlab import parity
from makerlab.parity import FillRow, ParityResult

T = 1_723_161_288_115_000_000  # ns, 2024-08-08 23:54:48.115 UTC
REPLAY = [FillRow(T, 1, Decimal("61816.7"), Decimal("0.002")),
          FillRow(T + 5_000_000_000, -1, Decimal("61820.1"), Decimal("0.002"))]


def shifted(rows: list[FillRow], ns: int) -> list[FillRow]:
    return [FillRow(r.ts + ns, r.side, r.price, r.size) for r in rows]


def command(monkeypatch, live: list[FillRow]) -> int:
    async def runs(*_args, **_kwargs) -> ParityResult:
        return ParityResult(REPLAY, live, "binance")

    monkeypatch.setattr(parity, "run_parity", runs)
    return parity.main_parity("script.py", "archive", "2024-08-08:23", "2024-08-08:23",
                              "binance")


def test_identical_fills_pass(monkeypatch, capsys):
    assert command(monkeypatch, list(REPLAY)) == 0
    assert capsys.readouterr().out.splitlines()[-1] == "parity: OK"


@pytest.mark.parametrize("shift_ns", [1, 3_000_000])
def test_the_same_fills_at_other_exchange_times_fail(monkeypatch, capsys, shift_ns):
    assert command(monkeypatch, REPLAY[:1] + shifted(REPLAY[1:], shift_ns)) == 1
    out = capsys.readouterr().out
    assert "2 of 2 agree on side, price and size (identical)" in out
    assert "times: 1 matching fills at another exchange time" in out
    assert out.splitlines()[-1].startswith("parity: FAILED, the same fills at other "
                                           "exchange times")


def test_other_fills_fail(monkeypatch, capsys):
    other = [REPLAY[0], FillRow(REPLAY[1].ts, -1, Decimal("61820.2"), Decimal("0.002"))]
    assert command(monkeypatch, other) == 1
    assert capsys.readouterr().out.splitlines()[-1] == \
        "parity: FAILED, the fills differ in count, side, price or size"


def test_an_absent_script_or_archive_is_named_before_anything_runs(tmp_path, capsys):
    from makerlab.cli import main

    script = tmp_path / "strategy.py"
    script.write_text("raise SystemExit('must not run')\n")
    hours = ["--start", "2024-08-08:23", "--end", "2024-08-08:23"]
    assert main(["parity", str(tmp_path / "absent.py"), "--archive", str(tmp_path),
                 *hours]) == 2
    assert capsys.readouterr().err == f"makerlab: error: no script at {tmp_path}/absent.py\n"
    assert main(["parity", str(script), "--archive", str(tmp_path / "absent"), *hours]) == 2
    assert capsys.readouterr().err == f"makerlab: error: no archive at {tmp_path}/absent\n"
