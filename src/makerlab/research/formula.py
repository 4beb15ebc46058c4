"""Formula ("gene") expressions evaluated over the rows of a pandas DataFrame.

An expression is a terminal or a primitive applied to expressions::

    div(minus(t60, t0), t0)        mean_20(value)        ite(gt(x, const_0), x, const_-1)

- **terminals**: a column name (letters, digits, ``_`` and ``.``; any other name in
  backticks, ``\\`mid price\\```) or a constant ``const_<number>`` (``const_3.14``,
  ``const_-1``, ``const_1e-4``);
- **primitives**: ``name(arg, ...)``; time-series and pairwise primitives carry their window
  in the name (``mean_20``), ``pow`` its exponent (``pow_2``, ``pow_0.5``).

Every value is a float Series aligned on the frame's index, so windows run over **rows in
frame order** (sort the frame by time first; a frame mixing instruments is not split).
Division by zero gives NaN, as do ``log`` of a non-positive number and ``recpcal(0)``;
comparisons and logic propagate NaN; no evaluation emits a numpy warning. See
``docs/research.md`` for the definition of every primitive.

A **formula** joins expressions ("blocks") with patsy-style operators: ``~`` separates the
dependent block from the regressors, ``+`` adds a term, ``:`` is an interaction (product) and
``a*b`` means ``a + b + a:b``. Operators are recognised only outside parentheses.
:func:`parse_formula` names the blocks ``b0`` (dependent), ``b1``, ... Errors are
:class:`~makerlab.errors.ConfigError` naming the bad token and its 1-based column.
"""

from __future__ import annotations

import difflib
import functools
import itertools
import operator
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import TypeAlias

import numpy as np
import pandas as pd
from scipy.special import expit

from makerlab.errors import ConfigError

__all__ = [
    "PRIMITIVES",
    "Expression",
    "design_terms",
    "evaluate",
    "parse_expression",
    "parse_formula",
    "parse_formula_expressions",
]

Series: TypeAlias = pd.Series

# ---------------------------------------------------------------------------- primitives


def _safe_div(a: Series, b: Series) -> Series:
    """``a / b`` with NaN wherever ``b`` is zero."""
    return a / b.where(b != 0)


def _fold(op: Callable[[Series, Series], Series]) -> Callable[..., Series]:
    """An n-ary primitive folding ``op`` from the left: ``op(op(a, b), c)``."""
    return lambda *xs: functools.reduce(op, xs)


def _known(*xs: Series) -> Series:
    """True where no argument is NaN."""
    return functools.reduce(operator.and_, (x.notna() for x in xs))


def _compare(op: Callable[[Series, Series], Series]) -> Callable[..., Series]:
    """A comparison giving 1.0 / 0.0, NaN where either side is NaN."""
    return lambda a, b: op(a, b).astype(float).where(_known(a, b))


def _logic(op: Callable[[Series, Series], Series]) -> Callable[..., Series]:
    """An n-ary logical primitive on truth values (non-zero is true), NaN-propagating."""
    return lambda *xs: _fold(op)(*(x != 0 for x in xs)).astype(float).where(_known(*xs))


def _ite(cond: Series, a: Series, b: Series) -> Series:
    """``a`` where ``cond`` is non-zero, else ``b``; NaN where ``cond`` is NaN."""
    return a.where(cond != 0, b).where(cond.notna())


def _rolling(method: str) -> Callable[[int, Series], Series]:
    """A full-window rolling statistic: NaN until ``n`` rows are available."""
    return lambda n, x: getattr(x.rolling(n, min_periods=n), method)()


def _rolling_apply(func: Callable[[np.ndarray], float]) -> Callable[[int, Series], Series]:
    """A full-window rolling statistic computed by ``func`` on the window's values."""
    return lambda n, x: x.rolling(n, min_periods=n).apply(func, raw=True)


def _tszscore(n: int, x: Series) -> Series:
    """``(x - mean_n(x)) / std_n(x)``; NaN where the window is constant."""
    roll = x.rolling(n, min_periods=n)
    return _safe_div(x - roll.mean(), roll.std())


def _ema(n: int, x: Series) -> Series:
    """Recursive EMA with ``alpha = 2 / (n + 1)``, seeded with the first value."""
    return x.ewm(span=n, adjust=False, min_periods=n).mean()


def _pairwise(method: str) -> Callable[[int, Series, Series], Series]:
    """A full-window rolling statistic of two series (``corr``, ``cov``)."""
    return lambda n, a, b: getattr(a.rolling(n, min_periods=n), method)(b)


def _dot(n: int, a: Series, b: Series) -> Series:
    """Rolling sum of ``a * b`` over ``n`` rows."""
    return (a * b).rolling(n, min_periods=n).sum()


def _wmean(n: int, x: Series, w: Series) -> Series:
    """Rolling mean of ``x`` weighted by ``w``: ``dot_n(x, w) / sum_n(w)``."""
    return _safe_div(_dot(n, x, w), w.rolling(n, min_periods=n).sum())


def _correlation(n: int, a: Series, b: Series) -> Series:
    """Rolling Pearson correlation; NaN (not inf) where either window is constant."""
    out = _pairwise("corr")(n, a, b)
    return out.where(np.isfinite(out))


@dataclass(frozen=True, slots=True)
class _Spec:
    """How a primitive is called.

    ``param`` is ``""`` (none), ``"window"`` (a positive integer suffix, ``mean_20``) or
    ``"power"`` (a real suffix, ``pow_0.5``). ``max_args`` ``None`` means n-ary.
    """

    func: Callable[..., Series]
    min_args: int
    max_args: int | None
    param: str = ""


def _unary(func: Callable[..., Series]) -> _Spec:
    return _Spec(func, 1, 1)


def _windowed(func: Callable[..., Series], nargs: int = 1) -> _Spec:
    return _Spec(func, nargs, nargs, "window")


_NARY = {
    "plus": _fold(operator.add),
    "minus": _fold(operator.sub),
    "mult": _fold(operator.mul),
    "div": _fold(_safe_div),
    "max": _fold(np.maximum),
    "min": _fold(np.minimum),
    "and": _logic(operator.and_),
    "or": _logic(operator.or_),
}
_BINARY = {
    "eq": _compare(operator.eq),
    "neq": _compare(operator.ne),
    "gt": _compare(operator.gt),
    "gte": _compare(operator.ge),
    "lt": _compare(operator.lt),
    "lte": _compare(operator.le),
}
_UNARY = {
    "abs": lambda x: x.abs(),
    "neg": lambda x: -x,
    "log": lambda x: np.log(x.where(x > 0)),
    "sign": np.sign,
    "tanh": np.tanh,
    "sigmoid": expit,
    "recpcal": lambda x: _safe_div(pd.Series(1.0, index=x.index), x),
}
_WINDOWED = {
    "delta": lambda n, x: x - x.shift(n),
    "delay": lambda n, x: x.shift(n),
    "forward": lambda n, x: x.shift(-n),
    "sum": _rolling("sum"),
    "prod": _rolling_apply(np.prod),
    "mean": _rolling("mean"),
    "sma": _rolling("mean"),
    "ema": _ema,
    "ewma": _ema,
    "median": _rolling("median"),
    "std": _rolling("std"),
    "var": _rolling("var"),
    "skew": _rolling("skew"),
    "kurt": _rolling("kurt"),
    "tsrank": _rolling("rank"),
    "tsmax": _rolling("max"),
    "tsmin": _rolling("min"),
    "tsargmax": _rolling_apply(lambda w: float(len(w) - 1 - np.argmax(w))),
    "tsargmin": _rolling_apply(lambda w: float(len(w) - 1 - np.argmin(w))),
    "tszscre": _tszscore,
}
_PAIRWISE = {"cor": _correlation, "cov": _pairwise("cov"), "dot": _dot, "wmean": _wmean}


def _build_table() -> dict[str, _Spec]:
    table = {name: _Spec(f, 2, None) for name, f in _NARY.items()}
    table |= {name: _Spec(f, 2, 2) for name, f in _BINARY.items()}
    table["ite"] = _Spec(_ite, 3, 3)
    # quantpylib's index-union (_un) / intersection (_ix) variants: one frame, one index.
    aligned = {**table}
    table |= {f"{name}_{how}": spec for name, spec in aligned.items() for how in ("un", "ix")}
    table |= {name: _unary(f) for name, f in _UNARY.items()}
    table["pow"] = _Spec(lambda p, x: x**p, 1, 1, "power")
    table |= {name: _windowed(f) for name, f in _WINDOWED.items()}
    table |= {name: _windowed(f, 2) for name, f in _PAIRWISE.items()}
    return table


_TABLE = _build_table()

#: Every primitive name (windowed ones without their ``_n`` suffix), sorted.
PRIMITIVES: tuple[str, ...] = tuple(sorted(_TABLE))
_CANONICAL = tuple(name for name in PRIMITIVES if not name.endswith(("_un", "_ix")))

# ---------------------------------------------------------------------------- tokens

_TOKEN_RE = re.compile(
    r"""
    (?P<ws>\s+)
  | (?P<const>const_[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?(?![A-Za-z0-9_.]))
  | (?P<power>pow_[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?(?![A-Za-z0-9_.]))
  | (?P<name>[A-Za-z0-9_.]+)
  | (?P<quoted>`[^`]*`)
  | (?P<punct>[(),])
  | (?P<op>[~+*:])
    """,
    re.VERBOSE,
)


@dataclass(frozen=True, slots=True)
class _Token:
    kind: str  # const, name, quoted, punct, op
    text: str
    pos: int  # 0-based offset in the source text

    @property
    def end(self) -> int:
        return self.pos + len(self.text)


@dataclass(frozen=True, slots=True)
class _Source:
    """The text being parsed, for error messages that point at a column."""

    text: str

    def error(self, message: str, pos: int, hint: str = "") -> ConfigError:
        where = f" at column {pos + 1} in {self.text!r}"
        return ConfigError(message + where + (f"; {hint}" if hint else ""))


def _tokenize(src: _Source) -> list[_Token]:
    """Split ``src`` into tokens, skipping whitespace; unknown characters are errors."""
    tokens, pos = [], 0
    while pos < len(src.text):
        match = _TOKEN_RE.match(src.text, pos)
        if match is None:
            raise src.error(f"unexpected character {src.text[pos]!r}", pos)
        if match.lastgroup != "ws":
            kind = "name" if match.lastgroup == "power" else str(match.lastgroup)
            tokens.append(_Token(kind, match.group(), pos))
        pos = match.end()
    return tokens


def _check_parentheses(tokens: Sequence[_Token], src: _Source) -> None:
    """Raise on a ``)`` without its ``(`` or a ``(`` never closed."""
    opened: list[int] = []
    for tok in tokens:
        if tok.text == "(":
            opened.append(tok.pos)
        elif tok.text == ")" and not opened:
            raise src.error("unbalanced ')'", tok.pos, "no '(' to close")
        elif tok.text == ")":
            opened.pop()
    if opened:
        raise src.error("unbalanced '('", opened[-1], "it is never closed")


# ---------------------------------------------------------------------------- syntax tree


@dataclass(frozen=True, slots=True)
class _Context:
    df: pd.DataFrame
    src: _Source


@dataclass(frozen=True, slots=True)
class _Constant:
    value: float
    pos: int

    def evaluate(self, ctx: _Context) -> Series:
        return pd.Series(self.value, index=ctx.df.index, dtype=float)

    def columns(self) -> Iterator[str]:
        return iter(())


@dataclass(frozen=True, slots=True)
class _Column:
    name: str
    pos: int

    def evaluate(self, ctx: _Context) -> Series:
        if self.name not in ctx.df.columns:
            raise ctx.src.error(f"unknown column {self.name!r}", self.pos,
                                _did_you_mean(self.name, map(str, ctx.df.columns)))
        try:
            return pd.to_numeric(ctx.df[self.name]).astype(float)
        except (TypeError, ValueError) as exc:
            raise ctx.src.error(f"column {self.name!r} is not numeric", self.pos) from exc

    def columns(self) -> Iterator[str]:
        yield self.name


@dataclass(frozen=True, slots=True)
class _Call:
    name: str
    spec: _Spec
    param: float | int | None
    args: tuple[_Node, ...]
    pos: int

    def evaluate(self, ctx: _Context) -> Series:
        values = [arg.evaluate(ctx) for arg in self.args]
        extra = () if self.param is None else (self.param,)
        out = self.spec.func(*extra, *values)
        return pd.Series(out, index=ctx.df.index, dtype=float)

    def columns(self) -> Iterator[str]:
        return itertools.chain.from_iterable(arg.columns() for arg in self.args)


_Node = _Constant | _Column | _Call


def _did_you_mean(word: str, choices: Iterator[str] | Sequence[str]) -> str:
    close = difflib.get_close_matches(word, list(choices), n=3, cutoff=0.6)
    return f"did you mean {' or '.join(map(repr, close))}?" if close else ""


def _parse_param(kind: str, suffix: str) -> float | int | None:
    """The window (positive int) or power (real) written after a primitive's name."""
    try:
        value = int(suffix) if kind == "window" else float(suffix)
    except ValueError:
        return None
    return value if kind == "power" or value >= 1 else None


def _resolve(tok: _Token, src: _Source) -> tuple[_Spec, float | int | None]:
    """Look up a primitive by name, splitting off a window or power suffix."""
    spec = _TABLE.get(tok.text)
    if spec is not None and not spec.param:
        return spec, None
    if spec is not None:
        need, example = ("a window", 20) if spec.param == "window" else ("an exponent", 2)
        raise src.error(f"primitive {tok.text!r} needs {need}", tok.pos,
                        f"write {tok.text}_<n>, e.g. {tok.text}_{example}")
    base, _, suffix = tok.text.rpartition("_")
    spec = _TABLE.get(base)
    if spec is None or not spec.param:
        raise src.error(f"unknown primitive {tok.text!r}", tok.pos,
                        _did_you_mean(base or tok.text, _CANONICAL))
    value = _parse_param(spec.param, suffix)
    if value is None:
        what = "window" if spec.param == "window" else "exponent"
        expected = "a positive integer" if what == "window" else "a number"
        raise src.error(f"bad {what} {suffix!r} in {tok.text!r}", tok.pos, f"expected {expected}")
    return spec, value


class _Parser:
    """Recursive-descent parser over one expression's tokens."""

    def __init__(self, tokens: Sequence[_Token], src: _Source, end: int) -> None:
        self.tokens, self.src, self.i, self.end = tokens, src, 0, end

    def parse(self) -> _Node:
        node = self._expression()
        if self.i < len(self.tokens):
            tok = self.tokens[self.i]
            raise self.src.error(f"unexpected {tok.text!r}", tok.pos, "expected end of expression")
        return node

    def _next(self, expected: str) -> _Token:
        if self.i >= len(self.tokens):
            raise self.src.error(f"expected {expected}, found end of expression", self.end)
        self.i += 1
        return self.tokens[self.i - 1]

    def _peek(self, text: str) -> bool:
        return self.i < len(self.tokens) and self.tokens[self.i].text == text

    def _expression(self) -> _Node:
        tok = self._next("an expression")
        if tok.kind == "const":
            return _Constant(float(tok.text[len("const_"):]), tok.pos)
        if tok.kind == "quoted":
            return _Column(tok.text[1:-1], tok.pos)
        if tok.kind != "name":
            raise self.src.error(f"unexpected {tok.text!r}", tok.pos, "expected an expression")
        if self._peek("("):
            return self._call(tok)
        if tok.text.startswith("const_"):
            raise self.src.error(f"bad constant {tok.text!r}", tok.pos, "write e.g. const_-1.5")
        return _Column(tok.text, tok.pos)

    def _arguments(self) -> list[_Node]:
        self.i += 1  # the '(' checked by the caller
        args: list[_Node] = []
        while not self._peek(")"):
            if args:
                sep = self._next("',' or ')'")
                if sep.text != ",":
                    raise self.src.error(f"unexpected {sep.text!r}", sep.pos, "expected ',' or ')'")
            args.append(self._expression())
        self.i += 1  # ')' (parentheses are balanced)
        return args

    def _call(self, tok: _Token) -> _Call:
        spec, param = _resolve(tok, self.src)
        args = self._arguments()
        low, high = spec.min_args, spec.max_args
        if len(args) < low or (high is not None and len(args) > high):
            want = f"at least {low}" if high is None else str(low)
            raise self.src.error(f"wrong arity for {tok.text!r}", tok.pos,
                                 f"it takes {want} argument{'s' * (want != '1')}, "
                                 f"got {len(args)}")
        return _Call(tok.text, spec, param, tuple(args), tok.pos)


# ---------------------------------------------------------------------------- public API


@dataclass(frozen=True)
class Expression:
    """A parsed expression; :meth:`evaluate` computes it over a DataFrame.

    Attributes:
        text: the expression as written (stripped).
        source: the text error messages quote (the whole formula for a formula block).
    """

    text: str
    source: str
    _root: _Node = field(repr=False)

    @property
    def columns(self) -> tuple[str, ...]:
        """The column names the expression reads, in order of first use."""
        return tuple(dict.fromkeys(self._root.columns()))

    def evaluate(self, df: pd.DataFrame) -> pd.Series:
        """Evaluate over ``df``'s rows: a float Series on ``df.index``, named :attr:`text`.

        Raises:
            ConfigError: a column is missing (close matches are suggested) or not numeric.
        """
        ctx = _Context(df, _Source(self.source))
        with np.errstate(all="ignore"):  # NaN/inf are results here, not incidents
            return self._root.evaluate(ctx).rename(self.text)

    def __str__(self) -> str:
        return self.text


def _parse_tokens(tokens: Sequence[_Token], src: _Source, end: int) -> Expression:
    if not tokens:
        raise src.error("empty expression", end)
    text = src.text[tokens[0].pos:tokens[-1].end]
    return Expression(text, src.text, _Parser(tokens, src, end).parse())


def parse_expression(text: str) -> Expression:
    """Parse one expression (no formula operators).

    Raises:
        ConfigError: naming the offending token and its 1-based column: unknown primitive
            (with close matches), wrong arity, unbalanced parentheses, bad constant or window.
    """
    src = _Source(text)
    tokens = _tokenize(src)
    _check_parentheses(tokens, src)
    return _parse_tokens(tokens, src, len(text.rstrip()))


def evaluate(expression: str | Expression, df: pd.DataFrame) -> pd.Series:
    """Parse (if needed) and evaluate ``expression`` over ``df``; see :class:`Expression`."""
    expr = parse_expression(expression) if isinstance(expression, str) else expression
    return expr.evaluate(df)


def _split_top_level(tokens: Sequence[_Token]) -> tuple[list[list[_Token]], list[_Token]]:
    """Split a formula's tokens on operators outside parentheses: (blocks, operators)."""
    blocks: list[list[_Token]] = [[]]
    ops: list[_Token] = []
    depth = 0
    for tok in tokens:
        depth += (tok.text == "(") - (tok.text == ")")
        if tok.kind == "op" and depth == 0:
            ops.append(tok)
            blocks.append([])
        else:
            blocks[-1].append(tok)
    return blocks, ops


def _check_operators(ops: Sequence[_Token], src: _Source) -> None:
    tildes = [op for op in ops if op.text == "~"]
    if not tildes:
        raise src.error("formula has no '~'", 0, "write 'dependent ~ regressor + ...'")
    if len(tildes) > 1:
        raise src.error("second '~'", tildes[1].pos, "a formula has exactly one '~'")
    if ops[0].text != "~":
        raise src.error(f"operator {ops[0].text!r} before '~'", ops[0].pos,
                        "the dependent side is a single expression")


def parse_formula_expressions(formula: str) -> tuple[dict[str, Expression], str]:
    """Like :func:`parse_formula` but the blocks are parsed :class:`Expression` objects."""
    src = _Source(formula)
    tokens = _tokenize(src)
    _check_parentheses(tokens, src)
    chunks, ops = _split_top_level(tokens)
    _check_operators(ops, src)
    names: dict[str, str] = {}
    exprs: dict[str, Expression] = {}
    for i, chunk in enumerate(chunks):
        end = ops[i].pos if i < len(ops) else len(formula.rstrip())
        expr = _parse_tokens(chunk, src, end)
        if expr.text not in names:
            names[expr.text] = f"b{len(names)}"
            exprs[names[expr.text]] = expr
        chunks[i] = [_Token("name", names[expr.text], chunk[0].pos)]
    structure = "".join(chunk[0].text + (ops[i].text if i < len(ops) else "")
                        for i, chunk in enumerate(chunks))
    return exprs, structure


def parse_formula(formula: str) -> tuple[dict[str, str], str]:
    """Split a formula into named blocks and its structure.

    ``parse_formula('div(minus(t60,t0),t0) ~ x + mean_5(x)')`` returns
    ``({'b0': 'div(minus(t60,t0),t0)', 'b1': 'x', 'b2': 'mean_5(x)'}, 'b0~b1+b2')``.
    A block written twice gets one name. Every block is parsed, so syntax errors surface here.

    Raises:
        ConfigError: no or several ``~``, an empty block, or any expression error, naming the
            token and its column in ``formula``.
    """
    exprs, structure = parse_formula_expressions(formula)
    return {name: expr.text for name, expr in exprs.items()}, structure


def design_terms(structure: str) -> tuple[str, list[tuple[str, ...]]]:
    """The dependent block and the regressor terms of a structure string.

    A term is a tuple of block names multiplied together: ``'b0~b1+b2*b3'`` gives
    ``('b0', [('b1',), ('b2',), ('b3',), ('b2', 'b3')])``; ``:`` binds tighter than ``*``.
    """
    dependent, _, rhs = structure.partition("~")
    terms: list[tuple[str, ...]] = []
    for chunk in rhs.split("+"):
        factors = [tuple(part.split(":")) for part in chunk.split("*")]
        for size in range(1, len(factors) + 1):
            for combo in itertools.combinations(factors, size):
                term = tuple(dict.fromkeys(b for factor in combo for b in factor))
                if term not in terms:
                    terms.append(term)
    return dependent, terms
