from decimal import Decimal
from pathlib import Path

import pyarrow as pa
import pytest

from makerlab.cli import main
from makerlab.core.instruments import InstrumentSpec
from makerlab.data.archive import archive_paths, write_table
from makerlab.data.schema import TRADES, schema_for
from makerlab.data.specs import write_specs

T0 = 1_723_161_256_322_000_000  # 2024-08-08 23:54:16.322 UTC, ns


def _trades(prices, local_offsets=(0, 1, 2)):
    n = len(prices)
    return pa.table({
        "exchange_ts": [T0 + i for i in range(n)],
        "local_ts": [T0 + o for o in local_offsets[:n]],
        "price": prices,
        "size": [0.006] * n,
        "side": pa.array([1, -1, 1][:n], pa.int8()),
        "trade_id": [str(5266583935 + i) for i in range(n)],
    }, schema=schema_for(TRADES))


def test_info_lists_what_the_archive_holds(tmp_path, capsys):
    write_table(tmp_path, TRADES, "binance", "BTCUSDT", _trades([61800.3, 61800.2, 61800.3]))
    assert main(["info", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "trades" in out and "BTCUSDT" in out and "2024-08-08" in out


def test_info_of_a_missing_archive_says_so(tmp_path, capsys):
    assert main(["info", str(tmp_path / "absent")]) == 2
    assert capsys.readouterr().err == f"makerlab: error: no archive at {tmp_path / 'absent'}\n"


@pytest.mark.parametrize("source", ["binance", "tardis", "lobster"])
def test_convert_of_a_missing_file_is_an_error_line_not_a_traceback(tmp_path, capsys, source):
    missing = tmp_path / "absent.gz"
    assert main(["convert", source, str(missing), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("makerlab: error: ") and str(missing) in err
    assert not (tmp_path / "out").exists()


def test_validate_accepts_a_sound_archive(tmp_path, capsys):
    write_table(tmp_path, TRADES, "binance", "BTCUSDT", _trades([61800.3, 61800.2, 61800.3]))
    assert main(["validate", str(tmp_path)]) == 0
    assert "OK" in capsys.readouterr().out


def test_validate_reports_a_truncated_file(tmp_path, capsys):
    write_table(tmp_path, TRADES, "binance", "BTCUSDT", _trades([61800.3, 61800.2, 61800.3]))
    [path] = archive_paths(tmp_path, TRADES, "binance", "BTCUSDT")
    data = Path(path).read_bytes()
    Path(path).write_bytes(data[: len(data) // 2])
    assert main(["validate", str(tmp_path)]) == 1
    out = capsys.readouterr().out
    assert "ERROR" in out and "23.parquet" in out


def test_validate_reports_nan_prices(tmp_path, capsys):
    write_table(tmp_path, TRADES, "binance", "BTCUSDT", _trades([61800.3, float("nan"), 1.0]))
    assert main(["validate", str(tmp_path)]) == 1
    assert "non-finite price" in capsys.readouterr().out


def test_unknown_source_is_rejected_by_the_parser(tmp_path):
    with pytest.raises(SystemExit):
        main(["convert", "nosuchvenue", "x.gz", "--out", str(tmp_path)])


def test_specs_prints_bundled_instruments(capsys):
    assert main(["specs"]) == 0
    assert "binance_spot" in capsys.readouterr().out


def test_specs_lists_the_cache_before_the_bundled_specs(spec_cache, capsys):
    write_specs(spec_cache, "binance", [InstrumentSpec(
        "binance", symbol, "X", "USDT", "linear_perpetual", Decimal("0.5"), Decimal("0.01"),
        Decimal("0.01"), Decimal(5)) for symbol in ("BTCUSDT", "SOLUSDT")])
    assert main(["specs", "binance/BTCUSDT", "binance/SOLUSDT"]) == 0
    lines = [line.split() for line in capsys.readouterr().out.splitlines()]
    assert [line[:6] for line in lines[:3]] == [
        ["cache", "binance", "BTCUSDT", "linear_perpetual", "tick", "0.5"],
        ["bundled", "binance", "BTCUSDT", "linear_perpetual", "tick", "0.10"],
        ["cache", "binance", "SOLUSDT", "linear_perpetual", "tick", "0.5"]]
    assert str(spec_cache) in lines[3][3]


def test_validate_reports_every_corrupt_file_once(tmp_path, capsys):
    for symbol in ("BTCUSDT", "ETHUSDT"):
        write_table(tmp_path, TRADES, "binance", symbol, _trades([61800.3, 61800.2, 61800.3]))
        [path] = archive_paths(tmp_path, TRADES, "binance", symbol)
        Path(path).write_bytes(b"not parquet at all")
    assert main(["validate", str(tmp_path)]) == 1
    out = capsys.readouterr().out
    assert out.count("ERROR") == 2 and "BTCUSDT" in out and "ETHUSDT" in out


def test_python_dash_m_makerlab_is_the_makerlab_command():
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-m", "makerlab", "specs", "--help"],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("usage: makerlab specs")
