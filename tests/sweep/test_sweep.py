"""Sweeps end to end on the bundled archive: table, files, failures, search, CLI."""

import pandas as pd
import pytest
from sweep_scripts import QUOTER, REPO, needs_archive

from makerlab.analytics.record import RunRecord
from makerlab.cli import main
from makerlab.errors import ConfigError
from makerlab.sweep import Range, sweep
from makerlab.sweep.summary import plot_kind, plot_summary

pytestmark = needs_archive


def test_a_grid_sweep_writes_its_table_records_plot_and_report(tmp_path):
    result = sweep(QUOTER, {"interval_ms": [1000, 2000], "maker_fees": [0.0, -0.0001]},
                   args=["0"], out=tmp_path, backend="serial", progress=False)
    table = result.table
    assert table.config.tolist() == ["0", "1", "2", "3"]
    assert list(table.columns[:7]) == ["config", "interval_ms", "maker_fees", "status",
                                       "error", "traceback", "wall_s"]
    assert table[["interval_ms", "maker_fees"]].values.tolist() == [
        [1000, 0.0], [1000, -0.0001], [2000, 0.0], [2000, -0.0001]]
    assert (table.status == "ok").all() and (table["binance.#trades"] > 0).all()
    rebate = table.maker_fees < 0
    assert (table["binance.fees"][rebate] < 0).all() and (table["binance.fees"][~rebate] == 0).all()
    assert table.loc[0, "binance.#trades"] != table.loc[2, "binance.#trades"]
    pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / "results.parquet"), table)
    record = RunRecord.load(tmp_path / "runs" / "1" / "record")
    assert len(record.fills) == table.loc[1, "binance.#trades"]
    assert record.config["replayer"]["maker_fees"] == -0.0001
    assert result.files["plot"].stat().st_size > 10_000
    assert result.files["report"].read_bytes().startswith(b"%PDF")
    assert "interval_ms" in result.files["html"].read_text()


def test_a_failing_configuration_is_reported_and_the_sweep_goes_on(tmp_path):
    result = sweep(QUOTER, {"fail": [False, True, False]}, args=["0"], out=tmp_path,
                   backend="serial", progress=False)
    assert result.table.status.tolist() == ["ok", "error", "ok"]
    [failed] = result.failed.itertuples()
    assert failed.error == "RuntimeError: asked to fail" and "main" in failed.traceback
    assert result.files["report"].is_file()


def test_optuna_samples_within_the_ranges_reproducibly(tmp_path):
    pytest.importorskip("optuna")
    space = {"interval_ms": Range(500, 2000, 500), "size": [0.002, 0.003]}
    runs = [sweep(QUOTER, space, args=["0"], out=tmp_path / str(i), search="optuna",
                  trials=3, objective="pnl", backend="serial", progress=False, report=False)
            for i in range(2)]
    table = runs[0].table
    assert len(table) == 3 and (table.status == "ok").all()
    assert table.interval_ms.isin([500, 1000, 1500, 2000]).all()
    assert table["size"].isin([0.002, 0.003]).all()
    pd.testing.assert_frame_equal(table[["interval_ms", "size", "binance.pnl"]],
                                  runs[1].table[["interval_ms", "size", "binance.pnl"]])


def test_the_cli_runs_a_sweep_and_names_the_best_configuration(tmp_path, capsys):
    code = main(["sweep", str(QUOTER), "0", "--param", "interval_ms=1000,2000",
                 "--start", "2024-08-08:23", "--end", "2024-08-08:23", "--backend", "serial",
                 "--objective", "sharpe", "--out", str(tmp_path), "--quiet", "--no-report"])
    out = capsys.readouterr().out
    assert code == 0 and "2/2 configurations ran" in out and "best binance.sharpe" in out
    table = pd.read_parquet(tmp_path / "results.parquet")
    assert table.start.tolist() == ["2024-08-08:23"] * 2


def test_the_cli_stops_on_a_bad_parameter_before_running(tmp_path, capsys):
    code = main(["sweep", str(QUOTER), "0", "--param", "queue_model=fifo", "--out",
                 str(tmp_path / "out")])
    assert code == 2 and "unknown queue model 'fifo'" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_the_market_maker_example_is_sweepable(tmp_path):
    """order_value doubles the quoted size; every other figure of the run is the script's."""
    result = sweep(REPO / "examples" / "market_maker.py", {"order_value": [400]},
                   args=["0"], out=tmp_path, backend="serial", progress=False, report=False)
    assert result.table.status.tolist() == ["ok"], result.table.error[0]
    record = RunRecord.load(tmp_path / "runs" / "0" / "record")
    submits = record.actions[record.actions.event == "submit"]
    assert len(record.fills) > 0
    assert (submits.amount.abs() == 0.006).all()  # 400 / ~61,600; the default 200 quotes 0.003
    assert list((tmp_path / "runs" / "0" / "logs" / "reports").glob("*.pdf"))


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"search": "optuna"}, "needs --trials"),
    ({"trials": 3}, "needs --search optuna"),
    ({"search": "random"}, "unknown search"),
    ({"backend": "spark"}, "unknown backend"),
    ({"address": "auto", "backend": "local"}, "needs --backend ray"),
    ({"workers": 0}, "workers must be >= 1"),
])
def test_bad_sweep_settings_are_refused(tmp_path, kwargs, message):
    with pytest.raises(ConfigError, match=message):
        sweep(QUOTER, {"interval_ms": [1000]}, out=tmp_path, **kwargs)


def test_values_may_be_any_iterable_and_an_old_sweep_is_not_overwritten(tmp_path):
    import numpy as np

    result = sweep(QUOTER, {"interval_ms": np.array([1500]), "size": 0.002}, args=["0"],
                   out=tmp_path, backend="serial", progress=False, report=False)
    assert result.table[["interval_ms", "size"]].values.tolist() == [[1500, 0.002]]
    with pytest.raises(ConfigError, match="already holds a sweep"):
        sweep(QUOTER, {"interval_ms": [1000]}, out=tmp_path)


def test_parameter_names_may_not_be_result_columns(tmp_path):
    with pytest.raises(ConfigError, match="result columns"):
        sweep(QUOTER, {"status": [1]}, out=tmp_path)


def test_the_table_does_not_depend_on_the_order_configurations_finish():
    from makerlab.sweep.runner import _table

    rows = [{"config": "0", "a": 1, "status": "ok", "x.1s Markouts": 0.1},
            {"config": "1", "a": 2, "status": "ok", "x.6s Markouts": 0.2}]
    pd.testing.assert_frame_equal(_table(rows, {"a": [1, 2]}), _table(rows[::-1], {"a": [1, 2]}))


def test_the_summary_plot_fits_the_parameters(tmp_path):
    grid = pd.DataFrame({"a": [1, 1, 2, 2], "b": [5, 6, 5, 6], "c": [0, 0, 0, 1],
                         "status": "ok", "x.pnl": [1.0, 2.0, 3.0, 4.0]})
    assert plot_kind(grid, ["a"]) == "line"
    assert plot_kind(grid, ["a", "b"]) == "heatmap"
    draws = pd.DataFrame({"a": range(40), "b": range(40)})
    assert plot_kind(draws, ["a", "b"]) == "scatter"
    assert plot_summary(grid, ["a", "b", "c"], "pnl", tmp_path / "h.png").stat().st_size
    assert plot_summary(grid.assign(a=1, b=5, c=0), ["a", "b"], "pnl", tmp_path / "n.png") is None
    assert plot_summary(grid.assign(status="error"), ["a"], "pnl", tmp_path / "e.png") is None
