"""``makerlab paper`` as a real process: prints its URLs, serves, stops cleanly."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import threading
import urllib.request

import pytest
from paper_oracles import BUNDLED, END, START

LINE = re.compile(r"^(\w+)\s+rest (http://127\.0\.0\.1:\d+/\w+)\s+ws (ws://127\.0\.0\.1:\d+/\w+)$")


def _start(*extra: str) -> subprocess.Popen[str]:
    command = [sys.executable, "-m", "makerlab.cli", "paper", "--archive", str(BUNDLED),
               "--start", START, "--end", END, "--speed", "0", "--port", "0", *extra]
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)


def _urls(process: subprocess.Popen[str], count: int) -> dict[str, tuple[str, str]]:
    """The printed URLs; the process is killed if they are not there within a minute."""
    urls = {}
    assert process.stdout is not None
    watchdog = threading.Timer(60, process.kill)
    watchdog.start()
    try:
        while len(urls) < count:
            line = process.stdout.readline()
            assert line, "the server stopped or printed no URLs"
            match = LINE.match(line.strip())
            if match:
                urls[match.group(1)] = (match.group(2), match.group(3))
    finally:
        watchdog.cancel()
    return urls


def _get(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=10) as reply:
        return json.loads(reply.read())


@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGINT])
def test_paper_command_serves_and_stops_cleanly(stop):
    process = _start("--serve", "bybit=binance", "--faults", "stale_snapshot=0.5,seed=3")
    try:
        urls = _urls(process, 3)
        assert set(urls) == {"binance", "binance_spot", "bybit"}
        port = urls["binance"][0].split(":")[2].split("/")[0]
        assert all(f":{port}/{p}" in rest for p, (rest, _) in urls.items())  # one port
        depth = _get(urls["binance"][0] + "/fapi/v1/depth?symbol=BTCUSDT&limit=5")
        assert len(depth["bids"]) == 5 and depth["lastUpdateId"] > 0
        book = _get(urls["bybit"][0] + "/v5/market/orderbook?category=linear&symbol=ETHUSDT")
        assert book["retCode"] == 0 and book["result"]["s"] == "ETHUSDT"
    finally:
        process.send_signal(stop)
        out, err = process.communicate(timeout=30)
    assert process.returncode == 0, err
    assert "faults injected:" in out


def test_paper_command_reports_each_traded_account_on_exit(monkeypatch):
    monkeypatch.setenv("MAKERLAB_PAPER_BINANCE_KEY", "cli-key")
    monkeypatch.setenv("MAKERLAB_PAPER_BINANCE_SECRET", "cli-secret-never-printed")
    process = _start("--serve", "bybit=binance")
    try:
        _urls(process, 3)
    finally:
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=30)
    assert process.returncode == 0, err
    accounts = [line for line in out.splitlines() if " orders " in line]
    assert accounts == ["binance  orders 0 (0 refused), cancelled 0, fills 0, open 0, "
                        "position flat"]
    assert "cli-secret" not in out + err


def test_paper_command_rejects_a_bad_pairing():
    process = _start("--serve", "bybit=nosuchexchange")
    _, err = process.communicate(timeout=60)
    assert process.returncode == 2
    assert "no data for exchange 'nosuchexchange'" in err


def test_paper_command_names_a_missing_archive_and_an_empty_range(tmp_path):
    command = [sys.executable, "-m", "makerlab.cli", "paper", "--speed", "0", "--port", "0"]
    missing = subprocess.run([*command, "--archive", str(tmp_path / "absent"), "--start",
                              START, "--end", END], capture_output=True, text=True,
                             timeout=60)
    assert missing.returncode == 2
    assert f"makerlab: error: no archive at {tmp_path / 'absent'}" in missing.stderr
    empty = subprocess.run([*command, "--archive", str(BUNDLED), "--start", "2023-01-01:00",
                            "--end", "2023-01-01:01"], capture_output=True, text=True,
                           timeout=60)
    assert empty.returncode == 2
    assert ("has no book or trade data from 2023-01-01:00 to 2023-01-01:01"
            in empty.stderr)
