"""Formula-based ordinary least squares, compatible with the tutorial's ``GeneticRegression``.

::

    model = GeneticRegression('div(minus(t60,t0),t0) ~ div(minus(value,t0),t0)',
                              intercept=False, df=forward_prices)
    model.ols().summary()          # dependent variable b0, regressor b1
    model.ols(bins=50)             # 50 equal-count bins of b0, winsorised means
    model.plot(show=False, save_fit='fit.png', save_influence='influence.png')
    model.diagnose()               # {'cond_num': ..., 'vif b1': 1.0}

The formula grammar is :mod:`makerlab.research.formula`'s; blocks are named ``b0`` (dependent),
``b1``, ... and an interaction term ``b1:b2`` is the product of its blocks. Rows where any block
is NaN or infinite are dropped before fitting (counted in :attr:`GeneticRegression.n_dropped`).
Plots use matplotlib without needing a display. See ``docs/research.md``.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import statsmodels.api as sm
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from statsmodels.regression.linear_model import RegressionResults
from statsmodels.stats.outliers_influence import variance_inflation_factor

from makerlab.errors import ConfigError
from makerlab.plotting import interactive
from makerlab.research.formula import design_terms, parse_formula_expressions

__all__ = ["Bin", "GeneticRegression", "influence_measures", "winsorised_mean"]

Aggregator = Callable[[pd.Series], float]


class Bin(enum.Enum):
    """How :meth:`GeneticRegression.ols` bins the data when ``bins > 0``."""

    WIDTH = "width"
    """Equal-width bins ``[lo, hi)`` over the ``bin_block`` range (the last one includes the
    maximum); empty bins are left out."""
    OBSERVATIONS = "observations"
    """Equal-count bins: sizes differ by at most one; ties are split in row order."""


def winsorised_mean(values: pd.Series, limit: float = 0.05) -> float:
    """Mean after clipping to the ``limit`` and ``1 - limit`` quantiles (the default aggregator).

    Quantiles interpolate linearly, so with few values the clip is gentle.
    """
    low, high = values.quantile([limit, 1.0 - limit])
    return float(values.clip(low, high).mean())


class GeneticRegression:
    """Ordinary least squares on the blocks of a formula evaluated over a DataFrame.

    Args:
        formula: ``'dependent ~ regressor + ...'`` in the expression grammar.
        intercept: add a constant regressor named ``const``.
        df: the data; its columns are the formula's terminals; its rows, in order, are the
            observations (time-series primitives roll over them).
        start, end, dfs, instruments, granularity: the tutorial library's panel form, which
            makerlab does not support yet; passing any of them raises ``ConfigError``.
        build: evaluate the blocks now; otherwise on :meth:`build` or the first :meth:`ols`.

    Attributes:
        blocks: block name to parsed :class:`~makerlab.research.formula.Expression`.
        structure: the formula in block names, e.g. ``'b0~b1+b2'``.
        data: the evaluated blocks (columns ``b0``, ``b1``, ...), once built.
        n_dropped: rows removed by the last :meth:`ols` for a NaN or infinite block value.
        results: the last fitted statsmodels ``RegressionResults``.

    Raises:
        ConfigError: a formula error (naming the token and its column), a missing ``df``, or
            panel arguments.
    """

    def __init__(self, formula: str, intercept: bool = True, df: pd.DataFrame | None = None,
                 start: Any = None, end: Any = None, dfs: Any = None, instruments: Any = None,
                 granularity: Any = None, build: bool = True) -> None:
        _reject_panel(start=start, end=end, dfs=dfs, instruments=instruments,
                      granularity=granularity)
        if not isinstance(df, pd.DataFrame):
            raise ConfigError(f"GeneticRegression needs df=<pandas DataFrame>, got {type(df)!r}")
        self.formula = formula
        self.intercept = bool(intercept)
        self.df = df
        self.blocks, self.structure = parse_formula_expressions(formula)
        self.dependent, self.terms = design_terms(self.structure)
        self.data: pd.DataFrame | None = None
        self.n_dropped = 0
        self.results: RegressionResults | None = None
        if build:
            self.build()

    def __repr__(self) -> str:
        return (f"GeneticRegression({self.formula!r}, intercept={self.intercept}, "
                f"rows={len(self.df)})")

    def build(self) -> pd.DataFrame:
        """Evaluate every block over ``df``; returns (and keeps as :attr:`data`) the frame.

        Raises:
            ConfigError: a column is missing or not numeric.
        """
        self.data = pd.DataFrame({name: expr.evaluate(self.df)
                                  for name, expr in self.blocks.items()}, index=self.df.index)
        return self.data

    # ------------------------------------------------------------------------ fitting

    def ols(self, axis: str = "flatten", bins: int = 0,
            binned_by: Bin | str = Bin.OBSERVATIONS, bin_block: str = "b0",
            selector: Any = None,
            aggregator: Aggregator | Mapping[str, Aggregator] | None = None,
            ) -> RegressionResults:
        """Fit OLS of ``b0`` on the formula's terms; returns statsmodels ``RegressionResults``.

        Args:
            axis: ``'flatten'`` (all rows). The panel axes ``'xs'``/``'ts'`` are not supported.
            bins: 0 fits every row; ``n > 0`` first groups rows into ``n`` bins of
                ``bin_block`` and fits one observation per bin.
            binned_by: :attr:`Bin.OBSERVATIONS` (equal-count) or :attr:`Bin.WIDTH`
                (equal-width; empty bins dropped, so there may be fewer than ``bins``).
            bin_block: the block whose values define the bins (``'b0'``, ``'b1'``, ...).
            selector: panel selection; not supported (must be ``None``).
            aggregator: reduces each block within a bin: a callable for every block or a dict
                ``{block: callable}`` (missing blocks use the default), default
                :func:`winsorised_mean` (5 %).

        Raises:
            ConfigError: bad arguments, or too few observations left to fit.
        """
        _check_axis(axis, selector)
        data = self._clean()
        if bins:
            data = _binned(data, bins, _as_bin(binned_by), self._block(bin_block),
                           _aggregators(aggregator, list(data.columns)))
        y, exog = self._design(data)
        self.results = sm.OLS(y, exog).fit()
        return self.results

    def _block(self, name: str) -> str:
        if name not in self.blocks:
            raise ConfigError(f"unknown block {name!r}; blocks are {sorted(self.blocks)}")
        return name

    def _clean(self) -> pd.DataFrame:
        """The evaluated blocks without rows holding NaN or inf; counts them in n_dropped."""
        data = self.data if self.data is not None else self.build()
        finite = np.isfinite(data.to_numpy(dtype=float)).all(axis=1)
        self.n_dropped = int((~finite).sum())
        if not finite.any():
            raise ConfigError(f"no rows left: all {len(data)} rows have a NaN or infinite "
                              f"block value in {self.formula!r}")
        return data[finite]

    def _design(self, data: pd.DataFrame) -> tuple[pd.Series, pd.DataFrame]:
        """The dependent Series and the regressor frame (terms, then ``const`` first)."""
        exog = pd.DataFrame({":".join(term): data[list(term)].prod(axis=1)
                             for term in self.terms}, index=data.index)
        if self.intercept:
            exog.insert(0, "const", 1.0)
        if len(exog) <= exog.shape[1]:
            raise ConfigError(f"{len(exog)} observations for {exog.shape[1]} parameters; "
                              "use more data or more bins")
        return data[self.dependent].rename(self.dependent), exog

    def _fitted(self) -> RegressionResults:
        return self.results if self.results is not None else self.ols()

    # ------------------------------------------------------------------------ diagnostics

    def diagnose(self) -> dict[str, float]:
        """Condition number and variance inflation factors of the last fit.

        Returns ``{'cond_num': ..., 'vif b1': ..., ...}`` (one ``vif`` per regressor, not
        ``const``). With a single column VIF is 1.0; perfectly collinear columns give inf.
        Fits with :meth:`ols` defaults first if nothing was fitted yet.
        """
        results = self._fitted()
        exog, names = results.model.exog, results.model.exog_names
        out = {"cond_num": float(results.condition_number)}
        for i, name in enumerate(names):
            if name != "const":
                out[f"vif {name}"] = _vif(exog, i)
        return out

    def plot(self, fit: bool = True, diagnostics: bool = True, influence: bool = True,
             leverage: bool = True, show: bool = True, save_fit: str | Path | None = None,
             save_diagnostics: str | Path | None = None,
             save_influence: str | Path | None = None,
             save_leverage: str | Path | None = None) -> dict[str, Figure]:
        """Draw the last fit's plots; returns ``{name: Figure}`` for the plots drawn.

        - ``fit``: y against each regressor with the fitted values and their 95 % band;
        - ``diagnostics``: residuals vs fitted, normal QQ, and per regressor the partial
          regression and component-plus-residual (CCPR) plots;
        - ``influence``: externally studentised residuals against leverage, marker area by
          Cook's distance, the 10 most influential observations labelled (statsmodels'
          ``influence_plot`` in closed form, see :func:`influence_measures`);
        - ``leverage``: leverage against squared normalised residuals (statsmodels'
          ``plot_leverage_resid2``, labelling only the 5 highest of each).

        ``save_*`` writes that plot to a file (format from the suffix). ``show`` calls
        ``plt.show()`` only under an interactive backend, so it is safe headless. Figures are
        closed in pyplot after saving/showing but stay usable. Fits with :meth:`ols`
        defaults first if nothing was fitted yet.

        Raises:
            ConfigError: a ``save_*`` path for a plot that is switched off.
        """
        plans = {"fit": (fit, save_fit, self._plot_fit),
                 "diagnostics": (diagnostics, save_diagnostics, self._plot_diagnostics),
                 "influence": (influence, save_influence, _plot_influence),
                 "leverage": (leverage, save_leverage, _plot_leverage)}
        for name, (wanted, path, _) in plans.items():
            if path is not None and not wanted:
                raise ConfigError(f"save_{name}={str(path)!r} given but {name}=False")
        results = self._fitted()
        figures = {name: draw(results) for name, (wanted, _, draw) in plans.items() if wanted}
        for name, fig in figures.items():
            path = plans[name][1]
            if path is not None:
                Path(path).parent.mkdir(parents=True, exist_ok=True)
                fig.savefig(path, dpi=120, bbox_inches="tight")
        _show_and_release(list(figures.values()), show)
        return figures

    def _label(self, block: str) -> str:
        """Axis label: a term's name and its expression(s)."""
        parts = block.split(":")
        return f"{block} = " + " * ".join(self.blocks[p].text for p in parts if p in self.blocks)

    def _plot_fit(self, results: RegressionResults) -> Figure:
        names = [n for n in results.model.exog_names if n != "const"]
        fig, axes = plt.subplots(1, len(names), figsize=(6 * len(names), 4.5), squeeze=False)
        band = results.get_prediction().summary_frame(alpha=0.05)
        y = results.model.endog
        for ax, name in zip(axes[0], names, strict=True):
            x = results.model.exog[:, results.model.exog_names.index(name)]
            _draw_fit(ax, x, y, band, line=len(names) == 1)
            ax.set_xlabel(self._label(name))
            ax.set_ylabel(self._label(self.dependent))
        fig.suptitle(f"OLS fit: {self.formula}")
        fig.tight_layout()
        return fig

    def _plot_diagnostics(self, results: RegressionResults) -> Figure:
        names = [n for n in results.model.exog_names if n != "const"]
        fig, axes = plt.subplots(1 + len(names), 2, figsize=(11, 4 * (1 + len(names))),
                                 squeeze=False)
        _draw_residuals(axes[0, 0], results)
        sm.qqplot(results.resid, line="45", fit=True, ax=axes[0, 1])
        axes[0, 1].set_title("normal QQ of residuals")
        for row, name in enumerate(names, start=1):
            _draw_partial_regression(axes[row, 0], results, name)
            sm.graphics.plot_ccpr(results, name, ax=axes[row, 1])
            axes[row, 1].set_title(f"CCPR: {name}")
        fig.suptitle(f"OLS diagnostics: {self.formula}")
        fig.tight_layout()
        return fig


# ---------------------------------------------------------------------------- helpers


def _reject_panel(**panel: Any) -> None:
    given = [name for name, value in panel.items() if value is not None and value != []]
    if given:
        raise ConfigError(f"GeneticRegression: {', '.join(given)} belong to the panel form "
                          "(dfs, instruments, start, end, granularity), which makerlab does "
                          "not support yet; pass a single frame as df=")


def _check_axis(axis: str, selector: Any) -> None:
    if axis != "flatten":
        raise ConfigError(f"axis={axis!r}: only axis='flatten' is supported (the 'xs' and "
                          "'ts' axes need the panel form, not supported yet)")
    if selector is not None:
        raise ConfigError("selector picks an instrument or date of a panel; makerlab's "
                          "GeneticRegression supports a single df only, so leave it None")


def _as_bin(binned_by: Bin | str) -> Bin:
    try:
        return binned_by if isinstance(binned_by, Bin) else Bin(str(binned_by).lower())
    except ValueError:
        raise ConfigError(f"binned_by={binned_by!r}: use Bin.OBSERVATIONS or Bin.WIDTH") from None


def _aggregators(aggregator: Aggregator | Mapping[str, Aggregator] | None,
                 blocks: list[str]) -> dict[str, Aggregator]:
    """One aggregator per block from a callable, a partial dict or None (the default)."""
    if aggregator is None or callable(aggregator):
        return dict.fromkeys(blocks, aggregator or winsorised_mean)
    if not isinstance(aggregator, Mapping):
        raise ConfigError(f"aggregator must be a callable or a dict, got {type(aggregator)!r}")
    unknown = sorted(set(aggregator) - set(blocks))
    if unknown:
        raise ConfigError(f"aggregator names unknown blocks {unknown}; blocks are {blocks}")
    return {block: aggregator.get(block, winsorised_mean) for block in blocks}


def _bin_ids(values: pd.Series, bins: int, how: Bin) -> np.ndarray:
    """Bin number of every value: equal-count by rank, or equal-width over [min, max]."""
    if how is Bin.OBSERVATIONS:
        ranks = values.rank(method="first").to_numpy() - 1
        return np.floor(ranks * bins / len(values)).astype(int)
    return np.asarray(pd.cut(values, bins, labels=False, right=False))


def _binned(data: pd.DataFrame, bins: int, how: Bin, block: str,
            aggregators: dict[str, Aggregator]) -> pd.DataFrame:
    """One row per non-empty bin of ``block``, each block reduced by its aggregator."""
    if not isinstance(bins, int | np.integer) or bins < 1:
        raise ConfigError(f"bins={bins!r} must be a non-negative integer (0: no binning)")
    if how is Bin.OBSERVATIONS and bins > len(data):
        raise ConfigError(f"bins={bins} is more than the {len(data)} usable rows")
    groups = data.groupby(_bin_ids(data[block], bins, how), sort=True)
    return pd.DataFrame({name: groups[name].agg(func) for name, func in aggregators.items()})


def _vif(exog: np.ndarray, i: int) -> float:
    """Variance inflation factor of column ``i`` (1.0 when it is the only column)."""
    if exog.shape[1] == 1:
        return 1.0
    with np.errstate(divide="ignore"):  # a perfectly collinear column: VIF is inf, by design
        return float(variance_inflation_factor(exog, i))


def _draw_fit(ax: Axes, x: np.ndarray, y: np.ndarray, band: pd.DataFrame, line: bool) -> None:
    """Observed points, fitted values and their 95 % band; a line only for one regressor.

    With several regressors the fitted values are not a function of one x, so they are drawn
    as points with error bars instead of a (misleading) connecting line.
    """
    fitted = band["mean"].to_numpy()
    low, high = band["mean_ci_lower"].to_numpy(), band["mean_ci_upper"].to_numpy()
    ax.scatter(x, y, s=12, alpha=0.6, color="tab:blue", label=f"observed (n={len(y)})")
    if line:
        order = np.argsort(x, kind="stable")
        ax.plot(x[order], fitted[order], color="tab:red", label="fitted")
        ax.fill_between(x[order], low[order], high[order], color="tab:red", alpha=0.2,
                        label="95% confidence band")
    else:
        ax.errorbar(x, fitted, yerr=[fitted - low, high - fitted], fmt="o", markersize=3,
                    color="tab:red", alpha=0.7, label="fitted ± 95% confidence")
    ax.grid(alpha=0.3)
    ax.legend(fontsize="small")


def _draw_residuals(ax: Axes, results: RegressionResults) -> None:
    ax.scatter(results.fittedvalues, results.resid, s=12, alpha=0.6)
    ax.axhline(0.0, color="grey", linewidth=1)
    ax.set_xlabel("fitted")
    ax.set_ylabel("residual")
    ax.set_title("residuals vs fitted")
    ax.grid(alpha=0.3)


def _residualise(values: np.ndarray, others: np.ndarray) -> np.ndarray:
    """``values`` minus its least-squares projection on ``others`` (unchanged if none)."""
    if others.shape[1] == 0:
        return values
    beta = np.linalg.lstsq(others, values, rcond=None)[0]
    return values - others @ beta


def _draw_partial_regression(ax: Axes, results: RegressionResults, name: str) -> None:
    """y and x, each residualised on the other regressors, with the slope through them."""
    exog, names = results.model.exog, results.model.exog_names
    i = names.index(name)
    others = np.delete(exog, i, axis=1)
    x = _residualise(exog[:, i], others)
    y = _residualise(results.model.endog, others)
    ax.scatter(x, y, s=12, alpha=0.6)
    grid = np.linspace(x.min(), x.max(), 2)
    ax.plot(grid, results.params.iloc[i] * grid, color="tab:red")
    ax.set_xlabel(f"{name} | others")
    ax.set_ylabel(f"{results.model.endog_names} | others")
    ax.set_title(f"partial regression: {name}")
    ax.grid(alpha=0.3)


def influence_measures(results: RegressionResults) -> pd.DataFrame:
    """Leverage, externally studentised residuals and Cook's distance of every observation.

    Closed forms for OLS (``h`` leverage, ``r`` internally studentised residual, ``p``
    parameters): ``t = r * sqrt((n - p - 1) / (n - p - r**2))`` and
    ``D = r**2 * h / (p * (1 - h))``. Unlike statsmodels' leave-one-out refits these cost
    O(n p^2), so the influence plot stays fast on tick-sized data. A leverage of 1 gives NaN.
    """
    leverage = results.get_influence().hat_matrix_diag
    n, p = results.nobs, results.df_model + results.k_constant
    with np.errstate(divide="ignore", invalid="ignore"):  # h == 1 or a perfect fit: NaN
        internal = results.resid / np.sqrt(results.scale * (1 - leverage))
        external = internal * np.sqrt((n - p - 1) / (n - p - internal**2))
        cooks = internal**2 * leverage / (p * (1 - leverage))
    return pd.DataFrame({"leverage": leverage, "student_resid": external, "cooks_d": cooks},
                        index=results.model.data.row_labels)


def _annotate(ax: Axes, x: pd.Series, y: pd.Series, labels: pd.Index) -> None:
    for label in labels:
        ax.annotate(str(label), (x[label], y[label]), fontsize="small", xytext=(3, 3),
                    textcoords="offset points")


def _plot_influence(results: RegressionResults, labels: int = 10) -> Figure:
    """Studentised residuals against leverage, marker area by Cook's distance."""
    data = influence_measures(results)
    cooks = data["cooks_d"].fillna(0.0)
    size = 20 + 400 * cooks / cooks.max() if cooks.max() > 0 else 20
    fig, ax = plt.subplots(figsize=(8, 6))
    ax.scatter(data["leverage"], data["student_resid"], s=size, alpha=0.6)
    _annotate(ax, data["leverage"], data["student_resid"], cooks.nlargest(labels).index)
    ax.set_xlabel("leverage (hat matrix diagonal)")
    ax.set_ylabel("externally studentised residual")
    ax.set_title(f"influence (marker area: Cook's distance; {labels} largest labelled)")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig


def _plot_leverage(results: RegressionResults, labels: int = 10) -> Figure:
    """Leverage against squared normalised (z-scored) residuals, as statsmodels draws it."""
    leverage = influence_measures(results)["leverage"]
    resid = pd.Series(results.resid, index=leverage.index)
    resid2 = ((resid - resid.mean()) / resid.std(ddof=0)) ** 2
    extremes = leverage.nlargest(labels // 2).index.union(resid2.nlargest(labels // 2).index)
    fig, ax = plt.subplots(figsize=(8, 6))
    ax.scatter(resid2, leverage, s=14, alpha=0.6)
    _annotate(ax, resid2, leverage, extremes)
    ax.set_xlabel("normalised residual squared")
    ax.set_ylabel("leverage (hat matrix diagonal)")
    ax.set_title(f"leverage vs squared normalised residuals ({labels // 2} most extreme of "
                 "each labelled)")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig


def _show_and_release(figures: list[Figure], show: bool) -> None:
    """Show under an interactive backend only, then detach the figures from pyplot."""
    if show and figures and interactive():
        plt.show()
    for fig in figures:
        plt.close(fig)

