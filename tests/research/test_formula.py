"""The gene expression grammar: every primitive against a hand or pandas value, and errors."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from makerlab.errors import ConfigError
from makerlab.research.formula import (
    PRIMITIVES,
    design_terms,
    evaluate,
    parse_expression,
    parse_formula,
)

NAN = np.nan


@pytest.fixture
def df() -> pd.DataFrame:
    return pd.DataFrame({
        "a": [1.0, 2.0, 4.0, 3.0, 5.0],
        "b": [2.0, 0.0, 1.0, 3.0, -1.0],
        "z": [0.0, 1.0, 0.0, 1.0, NAN],
    }, index=[10, 11, 12, 13, 14])


def values(expr: str, frame: pd.DataFrame) -> list[float]:
    return evaluate(expr, frame).tolist()


def same(got: list[float], want: list[float]) -> None:
    np.testing.assert_allclose(np.array(got, dtype=float), np.array(want, dtype=float),
                               rtol=1e-12, atol=1e-12, equal_nan=True)


# ---------------------------------------------------------------------------- terminals


def test_columns_and_constants(df: pd.DataFrame) -> None:
    out = evaluate("a", df)
    assert out.index.tolist() == [10, 11, 12, 13, 14]
    assert out.dtype == float
    same(values("const_3.14", df), [3.14] * 5)
    same(values("const_-1", df), [-1.0] * 5)
    same(values("const_1e-2", df), [0.01] * 5)


def test_backquoted_column_names(df: pd.DataFrame) -> None:
    frame = df.rename(columns={"a": "mid price"})
    same(values("plus(`mid price`, const_1)", frame), [2, 3, 5, 4, 6])


def test_boolean_column_is_numeric() -> None:
    frame = pd.DataFrame({"flag": [True, False]})
    same(values("flag", frame), [1.0, 0.0])


# ---------------------------------------------------------------------------- arithmetic


@pytest.mark.parametrize(("expr", "want"), [
    ("plus(a, b)", [3, 2, 5, 6, 4]),
    ("plus(a, b, const_1)", [4, 3, 6, 7, 5]),
    ("minus(a, b)", [-1, 2, 3, 0, 6]),
    ("minus(a, b, const_1)", [-2, 1, 2, -1, 5]),
    ("mult(a, b)", [2, 0, 4, 9, -5]),
    ("div(a, b)", [0.5, NAN, 4, 1, -5]),
    ("div(a, b, const_2)", [0.25, NAN, 2, 0.5, -2.5]),
    ("max(a, b)", [2, 2, 4, 3, 5]),
    ("min(a, b, const_0)", [0, 0, 0, 0, -1]),
    ("plus_un(a, b)", [3, 2, 5, 6, 4]),
    ("minus_ix(a, b)", [-1, 2, 3, 0, 6]),
])
def test_nary(df: pd.DataFrame, expr: str, want: list[float]) -> None:
    same(values(expr, df), want)


@pytest.mark.parametrize(("expr", "want"), [
    ("abs(b)", [2, 0, 1, 3, 1]),
    ("neg(a)", [-1, -2, -4, -3, -5]),
    ("log(b)", [np.log(2), NAN, 0, np.log(3), NAN]),
    ("sign(b)", [1, 0, 1, 1, -1]),
    ("tanh(b)", np.tanh([2, 0, 1, 3, -1]).tolist()),
    ("sigmoid(b)", (1 / (1 + np.exp(-np.array([2, 0, 1, 3, -1.0])))).tolist()),
    ("recpcal(b)", [0.5, NAN, 1, 1 / 3, -1]),
    ("pow_2(b)", [4, 0, 1, 9, 1]),
    ("pow_0.5(a)", np.sqrt([1, 2, 4, 3, 5]).tolist()),
    ("pow_-1(a)", [1, 0.5, 0.25, 1 / 3, 0.2]),
])
def test_unary(df: pd.DataFrame, expr: str, want: list[float]) -> None:
    same(values(expr, df), want)


# ---------------------------------------------------------------------------- comparison, logic


@pytest.mark.parametrize(("expr", "want"), [
    ("eq(a, const_3)", [0, 0, 0, 1, 0]),
    ("neq(a, const_3)", [1, 1, 1, 0, 1]),
    ("gt(a, b)", [0, 1, 1, 0, 1]),
    ("gte(a, const_4)", [0, 0, 1, 0, 1]),
    ("lt(a, b)", [1, 0, 0, 0, 0]),
    ("lte(a, b)", [1, 0, 0, 1, 0]),
    ("gt(z, const_0)", [0, 1, 0, 1, NAN]),
    ("and(z, b)", [0, 0, 0, 1, NAN]),
    ("or(z, b)", [1, 1, 1, 1, NAN]),
    ("and(gt(a, const_1), gt(b, const_0), const_1)", [0, 0, 1, 1, 0]),
    ("ite(z, a, b)", [2, 2, 1, 3, NAN]),
    ("ite(gt(a, const_2), a, const_-1)", [-1, -1, 4, 3, 5]),
])
def test_comparison_and_logic(df: pd.DataFrame, expr: str, want: list[float]) -> None:
    same(values(expr, df), want)


# ---------------------------------------------------------------------------- time series


@pytest.mark.parametrize(("expr", "want"), [
    ("delta_1(a)", [NAN, 1, 2, -1, 2]),
    ("delta_2(a)", [NAN, NAN, 3, 1, 1]),
    ("delay_1(a)", [NAN, 1, 2, 4, 3]),
    ("forward_2(a)", [4, 3, 5, NAN, NAN]),
    ("sum_3(a)", [NAN, NAN, 7, 9, 12]),
    ("prod_2(a)", [NAN, 2, 8, 12, 15]),
    ("mean_2(a)", [NAN, 1.5, 3, 3.5, 4]),
    ("sma_2(a)", [NAN, 1.5, 3, 3.5, 4]),
    ("median_3(a)", [NAN, NAN, 2, 3, 4]),
    ("tsmax_3(a)", [NAN, NAN, 4, 4, 5]),
    ("tsmin_3(a)", [NAN, NAN, 1, 2, 3]),
    ("tsrank_3(a)", [NAN, NAN, 3, 2, 3]),
    ("tsargmax_3(a)", [NAN, NAN, 0, 1, 0]),
    ("tsargmin_3(a)", [NAN, NAN, 2, 2, 1]),
])
def test_time_series_by_hand(df: pd.DataFrame, expr: str, want: list[float]) -> None:
    same(values(expr, df), want)


def test_ema_recursion_by_hand(df: pd.DataFrame) -> None:
    alpha = 2 / (3 + 1)
    e1 = 1.0
    e2 = alpha * 2 + (1 - alpha) * e1
    e3 = alpha * 4 + (1 - alpha) * e2
    e4 = alpha * 3 + (1 - alpha) * e3
    e5 = alpha * 5 + (1 - alpha) * e4
    same(values("ema_3(a)", df), [NAN, NAN, e3, e4, e5])
    same(values("ewma_3(a)", df), [NAN, NAN, e3, e4, e5])


def test_rolling_moments_match_pandas(df: pd.DataFrame) -> None:
    a = df["a"].rolling(3, min_periods=3)
    same(values("std_3(a)", df), a.std().tolist())
    same(values("var_3(a)", df), a.var().tolist())
    same(values("skew_3(a)", df), a.skew().tolist())
    same(values("kurt_4(a)", df), df["a"].rolling(4, min_periods=4).kurt().tolist())
    # std of [1, 2, 4] with ddof=1 by hand
    assert values("std_3(a)", df)[2] == pytest.approx(np.sqrt(7 / 3))


def test_tszscore(df: pd.DataFrame) -> None:
    mean, std = 7 / 3, np.sqrt(7 / 3)
    assert values("tszscre_3(a)", df)[2] == pytest.approx((4 - mean) / std)
    flat = pd.DataFrame({"x": [1.0, 1.0, 1.0]})
    same(values("tszscre_2(x)", flat), [NAN, NAN, NAN])  # constant window: NaN, not inf


def test_pairwise(df: pd.DataFrame) -> None:
    a, b = df["a"], df["b"]
    same(values("cor_3(a, b)", df), a.rolling(3, min_periods=3).corr(b).tolist())
    same(values("cov_3(a, b)", df), a.rolling(3, min_periods=3).cov(b).tolist())
    same(values("dot_2(a, b)", df), [NAN, 2, 4, 13, 4])
    same(values("wmean_2(a, b)", df), [NAN, 1, 4, 13 / 4, 4 / 2])
    flat = pd.DataFrame({"x": [1.0, 1.0, 1.0], "y": [1.0, 2.0, 3.0]})
    same(values("cor_2(x, y)", flat), [NAN, NAN, NAN])


def test_windows_follow_row_order_not_index(df: pd.DataFrame) -> None:
    shuffled = df.iloc[::-1]
    same(values("delay_1(a)", shuffled), [NAN, 5, 3, 4, 2])


def test_nested_tutorial_expression() -> None:
    frame = pd.DataFrame({"t0": [100.0, 200.0], "t60": [101.0, 190.0]})
    same(values("div(minus(t60,t0),t0)", frame), [0.01, -0.05])


def test_no_numpy_warnings_on_bad_values() -> None:
    frame = pd.DataFrame({"x": [0.0, -1.0, 1e308]})
    same(values("log(x)", frame), [NAN, NAN, np.log(1e308)])
    assert np.isinf(values("pow_2(x)", frame)[2])  # overflow is inf, silently


def test_primitives_listed() -> None:
    required = {"plus", "minus", "mult", "div", "max", "min", "abs", "neg", "log", "sign",
                "tanh", "sigmoid", "recpcal", "pow", "delta", "delay", "forward", "sum",
                "mean", "sma", "ema", "median", "std", "var", "skew", "kurt", "tsrank",
                "tsmax", "tsmin", "tszscre", "eq", "gt", "gte", "lt", "lte", "and", "or",
                "ite", "cor", "cov"}
    assert required <= set(PRIMITIVES)


def test_expression_columns() -> None:
    expr = parse_expression("div(minus(t60, t0), t0)")
    assert expr.columns == ("t60", "t0")
    assert str(expr) == "div(minus(t60, t0), t0)"


# ---------------------------------------------------------------------------- formulas


def test_parse_formula_tutorial() -> None:
    blocks, structure = parse_formula("div(minus(t60,t0),t0) ~ div(minus(value,t0),t0)")
    assert blocks == {"b0": "div(minus(t60,t0),t0)", "b1": "div(minus(value,t0),t0)"}
    assert structure == "b0~b1"


def test_parse_formula_several_blocks() -> None:
    blocks, structure = parse_formula("forward_1(x) ~ x + mean_5(x) + plus(x, y)")
    assert blocks == {"b0": "forward_1(x)", "b1": "x", "b2": "mean_5(x)", "b3": "plus(x, y)"}
    assert structure == "b0~b1+b2+b3"


def test_plus_inside_parentheses_is_not_a_split() -> None:
    blocks, structure = parse_formula("y ~ plus(a, const_1e+2) + b")
    assert blocks == {"b0": "y", "b1": "plus(a, const_1e+2)", "b2": "b"}
    assert structure == "b0~b1+b2"


def test_repeated_block_keeps_one_name() -> None:
    blocks, structure = parse_formula("y ~ x + x")
    assert blocks == {"b0": "y", "b1": "x"}
    assert structure == "b0~b1+b1"


def test_interactions() -> None:
    _, structure = parse_formula("y ~ a*b + c:a")
    assert structure == "b0~b1*b2+b3:b1"
    assert design_terms(structure) == ("b0", [("b1",), ("b2",), ("b1", "b2"), ("b3", "b1")])
    assert design_terms("b0~b1+b1") == ("b0", [("b1",)])


# ---------------------------------------------------------------------------- errors


@pytest.mark.parametrize(("expr", "message"), [
    ("div(minuss(t60,t0),t0)",
     "unknown primitive 'minuss' at column 5 in 'div(minuss(t60,t0),t0)'; did you mean 'minus'"),
    ("div(t0", "unbalanced '(' at column 4"),
    ("div(t0))", "unbalanced ')' at column 8"),
    ("minus(t0)", "wrong arity for 'minus' at column 1 in 'minus(t0)'; it takes at least 2"),
    ("abs(t0, t60)", "wrong arity for 'abs' at column 1"),
    ("ite(a, b)", "it takes 3 arguments, got 2"),
    ("mean(t0)", "primitive 'mean' needs a window at column 1"),
    ("mean_0(t0)", "bad window '0' in 'mean_0' at column 1"),
    ("plus(a, meen_3(b))", "unknown primitive 'meen_3' at column 9"),
    ("const_abc", "bad constant 'const_abc' at column 1"),
    ("abs(t0 t60)", "unexpected 't60' at column 8"),
    ("div(t0,#)", "unexpected character '#' at column 8"),
    ("a + b", "unexpected '+' at column 3"),
    ("", "empty expression"),
])
def test_syntax_errors_name_the_token(expr: str, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_expression(expr)
    assert message in str(info.value)


def test_unknown_column_suggests_close_matches() -> None:
    frame = pd.DataFrame({"value": [1.0], "t0": [1.0]})
    with pytest.raises(ConfigError, match=r"unknown column 'valeu' at column 11 .*'value'"):
        evaluate("div(minus(valeu,t0),t0)", frame)


def test_non_numeric_column() -> None:
    frame = pd.DataFrame({"exc": ["binance"]})
    with pytest.raises(ConfigError, match="column 'exc' is not numeric at column 1"):
        evaluate("exc", frame)


@pytest.mark.parametrize(("formula", "message"), [
    ("y", "formula has no '~'"),
    ("y ~ a ~ b", "second '~' at column 7"),
    ("y + z ~ a", "operator '+' before '~' at column 3"),
    ("y ~ + a", "empty expression at column 5"),
    ("y ~ ", "empty expression at column 4"),
    ("y ~ minuss(a)", "unknown primitive 'minuss' at column 5 in 'y ~ minuss(a)'"),
])
def test_formula_errors(formula: str, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_formula(formula)
    assert message in str(info.value)
