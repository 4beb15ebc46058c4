"""GeneticRegression: known coefficients, binning, dropped rows, plots without a display."""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest

from makerlab.errors import ConfigError
from makerlab.research.regression import (
    Bin,
    GeneticRegression,
    influence_measures,
    winsorised_mean,
)

TUTORIAL = "div(minus(t60,t0),t0) ~ div(minus(value,t0),t0)"


@pytest.fixture
def prices() -> pd.DataFrame:
    """Tutorial-shaped frame: the t60 return is 1.5 times the value-to-mid ratio plus noise."""
    rng = np.random.default_rng(7)
    n = 400
    t0 = 100 + rng.normal(0, 1, n).cumsum() * 0.1
    ratio = rng.normal(0, 1e-3, n)
    ret = 1.5 * ratio + rng.normal(0, 1e-3, n)
    return pd.DataFrame({"t0": t0, "value": t0 * (1 + ratio), "t60": t0 * (1 + ret)})


@pytest.fixture
def linear() -> pd.DataFrame:
    """y = 2 + 0.5 x1 - 1 x2 + noise."""
    rng = np.random.default_rng(3)
    n = 300
    x1, x2 = rng.normal(size=n), rng.normal(size=n)
    return pd.DataFrame({"x1": x1, "x2": x2, "y": 2 + 0.5 * x1 - x2 + rng.normal(0, 0.5, n)})


@pytest.fixture
def agg_backend() -> None:
    plt.switch_backend("Agg")


# ---------------------------------------------------------------------------- fitting


def test_tutorial_formula_recovers_known_slope(prices: pd.DataFrame) -> None:
    model = GeneticRegression(formula=TUTORIAL, intercept=False, df=prices)
    results = model.ols()
    assert list(results.params.index) == ["b1"]
    assert results.nobs == len(prices)
    assert abs(results.params["b1"] - 1.5) < 4 * results.bse["b1"]


def test_summary_names_blocks(prices: pd.DataFrame) -> None:
    text = str(GeneticRegression(TUTORIAL, intercept=False, df=prices).ols().summary())
    assert "Dep. Variable:                     b0" in text
    assert "\nb1 " in text
    assert "R-squared (uncentered)" in text  # no constant, as in the tutorial


def test_intercept_and_several_regressors(linear: pd.DataFrame) -> None:
    results = GeneticRegression("y ~ x1 + x2", df=linear).ols()
    assert list(results.params.index) == ["const", "b1", "b2"]
    for name, want in {"const": 2.0, "b1": 0.5, "b2": -1.0}.items():
        assert abs(results.params[name] - want) < 4 * results.bse[name]


def test_interaction_term_is_product(linear: pd.DataFrame) -> None:
    model = GeneticRegression("y ~ x1*x2", df=linear)
    results = model.ols()
    assert list(results.params.index) == ["const", "b1", "b2", "b1:b2"]
    exog = pd.DataFrame(results.model.exog, columns=results.model.exog_names)
    np.testing.assert_allclose(exog["b1:b2"], linear["x1"] * linear["x2"])


def test_rows_with_nan_or_inf_are_dropped_and_counted(prices: pd.DataFrame) -> None:
    prices = prices.copy()
    prices.loc[0, "t0"] = 0.0  # division by zero: NaN in both blocks
    prices.loc[1, "t60"] = np.nan
    prices.loc[2, "value"] = np.inf
    model = GeneticRegression(TUTORIAL, intercept=False, df=prices)
    results = model.ols()
    assert model.n_dropped == 3
    assert results.nobs == len(prices) - 3


def test_time_series_blocks_drop_warm_up(linear: pd.DataFrame) -> None:
    model = GeneticRegression("forward_1(y) ~ mean_5(x1)", df=linear)
    model.ols()
    assert model.n_dropped == 4 + 1


def test_build_false_defers_evaluation(linear: pd.DataFrame) -> None:
    model = GeneticRegression("y ~ x1", df=linear, build=False)
    assert model.data is None
    assert model.ols().nobs == len(linear)
    assert list(model.data.columns) == ["b0", "b1"]


# ---------------------------------------------------------------------------- binning


def test_bins_by_observations_gives_equal_counts(prices: pd.DataFrame) -> None:
    model = GeneticRegression(TUTORIAL, intercept=False, df=prices)
    results = model.ols(bins=10, aggregator={"b1": len})  # b1 becomes the bin size
    assert results.nobs == 10
    assert set(results.model.exog[:, 0]) == {len(prices) / 10}


def test_equal_count_bins_survive_ties() -> None:
    frame = pd.DataFrame({"y": [0.0] * 80 + list(range(20)), "x": np.arange(100.0)})
    results = GeneticRegression("y ~ x", df=frame).ols(bins=10)
    assert results.nobs == 10


def test_bins_default_aggregator_is_winsorised_mean(prices: pd.DataFrame) -> None:
    model = GeneticRegression(TUTORIAL, intercept=False, df=prices)
    results = model.ols(bins=4)
    data = model.data.sort_values("b0", kind="stable")
    first = data.iloc[: len(data) // 4]
    assert results.model.endog[0] == pytest.approx(winsorised_mean(first["b0"]))
    assert results.model.exog[0, 0] == pytest.approx(winsorised_mean(first["b1"]))


def test_bins_by_width() -> None:
    frame = pd.DataFrame({"y": np.arange(100.0), "x": np.arange(100.0) * 2})
    results = GeneticRegression("y ~ x", df=frame).ols(
        bins=4, binned_by=Bin.WIDTH, aggregator=np.mean)
    np.testing.assert_allclose(results.model.endog, [12, 37, 62, 87])


def test_width_bins_leave_out_empty_bins() -> None:
    frame = pd.DataFrame({"y": [0.0, 1.0, 2.0, 9.0, 10.0], "x": [1.0, 2.0, 2.5, 3.0, 4.0]})
    results = GeneticRegression("y ~ x", intercept=False, df=frame).ols(
        bins=5, binned_by="width", aggregator=np.mean)
    assert results.nobs == 3  # bins [0, 2), [2, 4), [8, 10]
    np.testing.assert_allclose(results.model.endog, [0.5, 2.0, 9.5])


def test_bin_by_regressor_block(linear: pd.DataFrame) -> None:
    model = GeneticRegression("y ~ x1", df=linear)
    results = model.ols(bins=5, bin_block="b1", aggregator=np.mean)
    assert np.all(np.diff(results.model.exog[:, 1]) > 0)


def test_winsorised_mean_clips_tails() -> None:
    values = pd.Series([*range(1, 20), 1000.0])
    low, high = values.quantile([0.05, 0.95])
    assert winsorised_mean(values) == pytest.approx(values.clip(low, high).mean())
    assert winsorised_mean(values) < values.mean()


# ---------------------------------------------------------------------------- diagnose


def test_diagnose_single_regressor(prices: pd.DataFrame) -> None:
    model = GeneticRegression(TUTORIAL, intercept=False, df=prices)
    out = model.diagnose()
    assert set(out) == {"cond_num", "vif b1"}
    assert out["vif b1"] == 1.0
    assert out["cond_num"] == pytest.approx(1.0)


def test_diagnose_vif_matches_definition(linear: pd.DataFrame) -> None:
    noise = np.random.default_rng(5).normal(0, 0.5, len(linear))
    linear = linear.assign(x3=linear["x1"] + 0.3 * linear["x2"] + noise)
    model = GeneticRegression("y ~ x1 + x2 + x3", df=linear)
    model.ols()
    out = model.diagnose()
    assert set(out) == {"cond_num", "vif b1", "vif b2", "vif b3"}
    design = np.column_stack([np.ones(len(linear)), linear["x2"], linear["x3"]])
    fitted = design @ np.linalg.lstsq(design, linear["x1"], rcond=None)[0]
    x1 = linear["x1"]
    r2 = 1 - ((x1 - fitted) ** 2).sum() / ((x1 - x1.mean()) ** 2).sum()
    assert out["vif b1"] == pytest.approx(1 / (1 - r2))


def test_influence_measures_match_statsmodels(linear: pd.DataFrame) -> None:
    results = GeneticRegression("y ~ x1 + x2", df=linear.iloc[:60]).ols()
    ours, theirs = influence_measures(results), results.get_influence()
    np.testing.assert_allclose(ours["leverage"], theirs.hat_matrix_diag)
    np.testing.assert_allclose(ours["student_resid"], theirs.resid_studentized_external)
    np.testing.assert_allclose(ours["cooks_d"], theirs.cooks_distance[0])
    assert list(ours.index) == list(linear.index[:60])


# ---------------------------------------------------------------------------- plots


@pytest.mark.usefixtures("agg_backend")
def test_plots_are_written_without_a_display(prices: pd.DataFrame, tmp_path: Path) -> None:
    model = GeneticRegression(TUTORIAL, intercept=False, df=prices)
    model.ols(bins=50)
    paths = {name: tmp_path / f"{name}.png" for name in
             ("fit", "diagnostics", "influence", "leverage")}
    figures = model.plot(show=True, **{f"save_{name}": path for name, path in paths.items()})
    assert set(figures) == set(paths)
    for path in paths.values():
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert path.stat().st_size > 5000
    for fig in figures.values():  # released from pyplot, still usable
        assert not plt.fignum_exists(fig.number)
        assert fig.axes


@pytest.mark.usefixtures("agg_backend")
def test_plot_selection_and_multi_regressor(linear: pd.DataFrame, tmp_path: Path) -> None:
    model = GeneticRegression("y ~ x1 + x2", df=linear)
    figures = model.plot(diagnostics=False, influence=False, leverage=False, show=False,
                         save_fit=tmp_path / "fit.png")
    assert set(figures) == {"fit"}
    assert len(figures["fit"].axes) == 2
    assert (tmp_path / "fit.png").stat().st_size > 0


def test_save_for_disabled_plot_is_refused(linear: pd.DataFrame, tmp_path: Path) -> None:
    model = GeneticRegression("y ~ x1", df=linear)
    with pytest.raises(ConfigError, match=r"save_leverage=.* given but leverage=False"):
        model.plot(leverage=False, show=False, save_leverage=tmp_path / "l.png")


# ---------------------------------------------------------------------------- errors


def test_formula_error_names_token(prices: pd.DataFrame) -> None:
    with pytest.raises(ConfigError, match="unknown primitive 'minuss' at column 5"):
        GeneticRegression("div(minuss(t60,t0),t0) ~ value", df=prices)


def test_unknown_column_points_into_the_formula(prices: pd.DataFrame) -> None:
    with pytest.raises(ConfigError, match=r"unknown column 'valeu' at column 35 .*'value'"):
        GeneticRegression("div(minus(t60,t0),t0) ~ div(minus(valeu,t0),t0)", df=prices)


@pytest.mark.parametrize("panel", [
    {"dfs": {}}, {"instruments": ["BTCUSDT"]}, {"start": "2025-01-01"}, {"granularity": "1d"},
])
def test_panel_form_is_refused(prices: pd.DataFrame, panel: dict[str, object]) -> None:
    with pytest.raises(ConfigError, match=r"panel form .* not support yet; pass a single frame"):
        GeneticRegression(TUTORIAL, df=prices, **panel)


def test_df_is_required() -> None:
    with pytest.raises(ConfigError, match="needs df="):
        GeneticRegression(TUTORIAL)


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"axis": "xs"}, "only axis='flatten'"),
    ({"selector": "BTCUSDT"}, "selector"),
    ({"bins": 10_000}, "more than the 400 usable rows"),
    ({"bins": -1}, "non-negative integer"),
    ({"bins": 5, "bin_block": "b7"}, "unknown block 'b7'"),
    ({"bins": 5, "binned_by": "quantile"}, "Bin.OBSERVATIONS or Bin.WIDTH"),
    ({"bins": 5, "aggregator": {"b9": np.mean}}, "unknown blocks"),
    ({"bins": 1}, "1 observations for 1 parameters"),
])
def test_ols_argument_errors(prices: pd.DataFrame, kwargs: dict, message: str) -> None:
    model = GeneticRegression(TUTORIAL, intercept=False, df=prices)
    with pytest.raises(ConfigError, match=message):
        model.ols(**kwargs)


def test_all_rows_unusable() -> None:
    frame = pd.DataFrame({"y": [1.0, 2.0], "x": [0.0, 0.0]})
    with pytest.raises(ConfigError, match="no rows left"):
        GeneticRegression("y ~ recpcal(x)", df=frame).ols()
