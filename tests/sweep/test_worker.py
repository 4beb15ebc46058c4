"""One configuration in a worker: the script as `python SCRIPT ARGS`, its row, its files."""

import json
from decimal import Decimal
from pathlib import Path

import pytest

from makerlab.sweep.worker import Task, flatten, run_configuration

# A tiny in-memory backtest: one resting bid that a trade through it fills.
TINY = '''
import asyncio, sys
from decimal import Decimal
import numpy as np
from makerlab import params
from makerlab.sim import Replayer

PARAMS = params(size=0.002, crash=False)
books = {"binance": {"BTCUSDT": [
    {"ts": 1_000 + i * 1_000, "b": np.array([[60000.0, 1.0]]), "a": np.array([[60000.1, 1.0]])}
    for i in range(5)]}}
trades = {"binance": {"BTCUSDT": [(2_500, 59999.0, 5.0, -1)]}}

async def main():
    rep = Replayer(books, trades, latencies={"req_private": 0, "ack_private": 0})
    oms = rep.get_oms()
    async def quote():
        if PARAMS["crash"]:
            raise RuntimeError("crashed in a handler")
        if not oms.orders_peek(exc="binance").get_bid_orders(ticker="BTCUSDT"):
            await oms.limit_order("binance", "BTCUSDT", Decimal(str(PARAMS["size"])),
                                  Decimal("60000.0"))
    await oms.add_clock_callback(quote, interval_ms=1000)
    await rep.play(progress=False)
    print("argv", sys.argv[1:])

if __name__ == "__main__":
    asyncio.run(main())
'''


def task(path, tmp_path, values, args=("0",)) -> Task:
    return Task("07", str(path), tuple(args), values, str(tmp_path / "out"))


def test_a_configuration_runs_the_script_and_reports_its_statistics(script, tmp_path):
    path = script(TINY)
    row = run_configuration(task(path, tmp_path, {"size": 0.003, "maker_fees": -0.001}))
    assert row["status"] == "ok", row["traceback"]
    assert row["config"] == "07" and row["size"] == 0.003 and row["maker_fees"] == -0.001
    assert row["binance.#trades"] == 1
    assert row["binance.volume"] == pytest.approx(60000.0 * 0.003)  # the swept size
    assert row["binance.fees"] == pytest.approx(-0.001 * 60000.0 * 0.003)  # the swept rebate
    assert row["wall_s"] > 0 and row["run_dir"] == "runs/07"
    folder = tmp_path / "out" / "runs" / "07"
    assert "argv ['0']" in (folder / "log.txt").read_text()
    assert (folder / "record" / "config.json").is_file()
    assert (folder / "record" / "code.py").read_text() == path.read_text()
    assert json.loads((folder / "sweep.json").read_text())["values"] == {
        "size": 0.003, "maker_fees": -0.001}


def test_an_error_in_the_script_is_the_row_result(script, tmp_path):
    row = run_configuration(task(script(TINY), tmp_path, {"crash": True}))
    assert row["status"] == "error"
    assert row["error"] == "RuntimeError: crashed in a handler"
    assert "quote" in row["traceback"] and row["wall_s"] > 0
    log = (tmp_path / "out" / "runs" / "07" / "log.txt").read_text()
    assert "configuration 07 failed" in log and "RuntimeError: crashed in a handler" in log


def test_a_script_that_exits_quotes_its_last_output(script, tmp_path):
    body = "import argparse\nargparse.ArgumentParser().add_argument('mode', type=int)\n" \
           "argparse.ArgumentParser(prog='s').parse_args()\n" \
           "p = argparse.ArgumentParser(prog='s')\np.add_argument('mode')\np.parse_args()\n"
    row = run_configuration(task(script(body), tmp_path, {}, args=()))
    assert row["status"] == "error"
    assert row["error"].startswith("SystemExit: the script exited with status 2 (s: error:")


def test_a_script_that_exits_with_status_0_ended_normally(script, tmp_path):
    body = TINY.replace("asyncio.run(main())", "asyncio.run(main())\n    raise SystemExit(0)")
    row = run_configuration(task(script(body), tmp_path, {}))
    assert row["status"] == "ok" and row["binance.#trades"] == 1


def test_strategy_parameters_need_a_params_call(script, tmp_path):
    body = TINY.replace('PARAMS = params(size=0.002, crash=False)',
                        'PARAMS = {"size": 0.01, "crash": False}')
    row = run_configuration(task(script(body), tmp_path, {"size": 0.003}))
    assert row["status"] == "error" and "never calls makerlab.params" in row["error"]


def test_a_script_that_plays_no_replayer_is_an_error(script, tmp_path):
    row = run_configuration(task(script("print('live mode')\n"), tmp_path, {"seed": 1}))
    assert row["status"] == "error" and "played 0" in row["error"]


def test_the_working_directory_is_restored(script, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    body = "from pathlib import Path\nPath('written.txt').write_text('x')\n"
    run_configuration(task(script(body), tmp_path, {}))
    assert (tmp_path / "out" / "runs" / "07" / "written.txt").is_file()
    assert not (tmp_path / "written.txt").exists()
    assert Path.cwd() == tmp_path


def test_flatten_names_columns_by_exchange_and_makes_cells():
    stats = {"binance": {"pnl": 1.5, "volume": Decimal("12.30"), "interval_quartiles":
                         ["0s", "1s"], "fills_excluded": {"Tick Markouts": 2}},
             "binance_spot": None}
    assert flatten(stats) == {"binance.pnl": 1.5, "binance.volume": 12.3,
                              "binance.interval_quartiles": "0s | 1s",
                              "binance.fills_excluded.Tick Markouts": 2}
