"""Frames on the hand-made record, plots rendered headless, save/load, and end to end."""

from __future__ import annotations

import os
import runpy
import sys
from pathlib import Path

import matplotlib
import numpy as np
import pandas as pd
import pytest

from makerlab.analytics import frames
from makerlab.analytics.metrics import statistics
from makerlab.analytics.record import RunRecord
from makerlab.analytics.research import df_fairprices

S = 1_000_000_000
REPO = Path(__file__).resolve().parents[2]
ARCHIVE = REPO / "data" / "archive"


def png(path: Path) -> bool:
    return path.is_file() and path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_df_exchange_columns_and_plot(record, tmp_path):
    df = frames.df_exchange(record, "X", save=tmp_path / "a" / "exchange.png")
    assert list(df.columns) == ["equity", "inventory", "pnl", "T"]
    assert df.pnl.tolist() == [0, 1, -1, 2, 2]
    assert df["T"].tolist() == [0, 100, 101, -102, -101]
    assert df.index[1] == pd.Timestamp(1, unit="s", tz="UTC")
    assert png(tmp_path / "a" / "exchange.png")


def test_df_portfolio_sums_exchanges(record, tmp_path):
    df = frames.df_portfolio(record, save=tmp_path / "portfolio.png")
    assert list(df.columns) == ["X", "sum(exchange)"]
    assert df["sum(exchange)"].tolist() == [0, 1, -1, 2, 2]
    assert png(tmp_path / "portfolio.png")


def test_df_markouts_rows_per_fill_and_bootstrap_plot(record, tmp_path):
    df = frames.df_markouts(record, intervals=[1000, 3000], bootstrap=200,
                            save=tmp_path / "markouts.png")
    assert list(df.columns) == ["Tick", "1s", "3s"] and len(df) == 3
    assert df["1s"].iloc[1] == pytest.approx(-0.5 / 101.5)
    assert png(tmp_path / "markouts.png")
    assert frames.df_markouts(record, ticker="nope", plot=False).empty


def test_bootstrap_band_brackets_the_mean():
    values = np.random.default_rng(1).normal(2.0, 1.0, (400, 2))
    low, high = frames.bootstrap_mean_ci(values, 300, 0.95, seed=3)
    assert np.all(low < values.mean(0)) and np.all(values.mean(0) < high)
    assert np.all(high - low < 0.5)


def test_df_prices_with_fills_inventory_and_declarations(record, tmp_path):
    df = frames.df_prices(record, "T", "X", save=tmp_path / "prices.png")
    assert list(df.columns) == ["b", "a"] and df.b.iloc[3] == 101.5
    assert png(tmp_path / "prices.png")
    frames.df_prices(record, "T", "X", key="good", group="fair", share_index=True,
                     save=tmp_path / "shared.png")
    frames.df_prices(record, "T", "X", group="fair", with_inventory=True,
                     save=tmp_path / "twin.png")
    assert png(tmp_path / "shared.png") and png(tmp_path / "twin.png")


def test_df_fills_and_df_actions(record, tmp_path):
    df = frames.df_fills(record, "T", "X", save=tmp_path / "fills.png")
    assert list(df.columns) == ["ts", "price", "size", "dir", "is_maker", "exc", "ticker"]
    assert df.ts.tolist() == [500, 2500, 6500]  # epoch ms
    assert png(tmp_path / "fills.png")
    assert len(frames.df_actions(record, exc="X")) == 3 and frames.df_actions(record, "Y").empty


def test_df_counterparty_pnl_by_hand(record, tmp_path):
    df = frames.df_counterparty_pnl(record, {"X": ["T"]}, save=tmp_path / "cp.png")
    flow = 100.5 * 1 + 99.5 * 2
    # t=1 s: the maker sold 1 @ 100.5, mid 100 -> +0.5; t=2 s: also bought 2 @ 99.5, mid 101
    assert df["X/T"].iloc[0] == 0
    assert df["X/T"].iloc[1] == pytest.approx(1e4 * 0.5 / flow)
    assert df["X/T"].iloc[2] == pytest.approx(1e4 * (-0.5 + 3.0) / flow)
    assert len(df) == 11 and png(tmp_path / "cp.png")


def test_plots_never_need_a_display(record, tmp_path):
    assert matplotlib.get_backend().lower() == "agg" or "DISPLAY" not in os.environ
    frames.df_exchange(record, "X", show=True, save=tmp_path / "x.png")
    assert png(tmp_path / "x.png")


def test_save_load_round_trip(record, tmp_path):
    loaded = RunRecord.load(record.save(tmp_path / "run"))
    for name in ("fills", "stamps", "declarations"):
        pd.testing.assert_frame_equal(getattr(loaded, name), getattr(record, name),
                                      check_dtype=False)
    assert loaded.actions.reason.iloc[3] in (-5022, "-5022")
    pd.testing.assert_frame_equal(loaded.mids[("X", "T")], record.mids[("X", "T")])
    pd.testing.assert_frame_equal(loaded.trades[("X", "T")], record.trades[("X", "T")],
                                  check_dtype=False)
    assert loaded.config == record.config
    assert statistics(loaded)["X"]["pnl"] == statistics(record)["X"]["pnl"]


def test_saved_tables_are_what_pandas_writes(record, tmp_path):
    import pyarrow.parquet as pq

    from makerlab.analytics.record import _parquet_safe

    folder = record.save(tmp_path / "run")
    for name in ("fills", "actions", "stamps", "declarations"):
        _parquet_safe(getattr(record, name)).to_parquet(tmp_path / f"{name}.parquet")
        ours, theirs = folder / f"{name}.parquet", tmp_path / f"{name}.parquet"
        assert pq.read_schema(ours).equals(pq.read_schema(theirs), check_metadata=True)
        pd.testing.assert_frame_equal(pd.read_parquet(ours), pd.read_parquet(theirs))


@pytest.mark.skipif(not (ARCHIVE / "kind=book_snapshot").is_dir(),
                    reason="bundled archive data/archive absent")
def test_bundled_market_maker_end_to_end(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("MAKERLAB_ARCHIVE", str(ARCHIVE))
    monkeypatch.setattr(sys, "argv", ["market_maker.py", "0"])
    monkeypatch.chdir(tmp_path)
    env = runpy.run_path(str(REPO / "examples" / "market_maker.py"), run_name="__main__")
    capsys.readouterr()
    record = RunRecord.load(RunRecord.from_replayer(env["replayer"]).save(tmp_path / "run"))
    stats = statistics(record)
    assert stats["binance"]["#trades"] == len(record.fills) > 0
    assert stats["binance_spot"] is None
    ex = frames.df_exchange(record, "binance", save=tmp_path / "exchange.png")
    assert ex.pnl.iloc[-1] == pytest.approx(stats["binance"]["pnl"])
    assert ex["BTCUSDT"].to_numpy() == pytest.approx(ex.inventory.to_numpy(), abs=1e-6)
    frames.df_portfolio(record, save=tmp_path / "portfolio.png")
    frames.df_markouts(record, bootstrap=100, save=tmp_path / "markouts.png")
    frames.df_prices(record, "BTCUSDT", "binance", save=tmp_path / "prices.png")
    frames.df_fills(record, "BTCUSDT", "binance", plot=False)
    frames.df_counterparty_pnl(record, env["stream_data"], save=tmp_path / "cp.png")
    assert len(frames.df_actions(record)) == len(record.fills)
    assert all(png(tmp_path / f"{n}.png") for n in ("exchange", "portfolio", "markouts",
                                                    "prices", "cp"))
    metrics, _, _ = df_fairprices(record, group="none")
    assert metrics.empty
