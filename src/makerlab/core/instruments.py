"""Instrument contract rules (tick, lot, minimum size and notional) and exact rounding.

Rounding works in :class:`~decimal.Decimal` so float noise never reaches an order:
``spec.round_price(61800.30000000001)`` is ``Decimal('61800.3')``. Specs for the bundled
instruments ship in ``makerlab/specs/instruments.json``; live venues supply their own
(written to the spec cache, :mod:`makerlab.data.specs`, which also resolves the specs of
a replay).

A spec's JSON row (the bundled file, the spec cache, spec files a user passes) holds
``exchange, symbol, base, quote, kind`` and the Decimal fields as strings, plus
``sig_figs`` for a :class:`SigFigSpec`: :func:`spec_rows` and :func:`spec_from_row`.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import ROUND_CEILING, ROUND_FLOOR, ROUND_HALF_EVEN, Decimal
from functools import cache
from importlib import resources
from typing import Any

from makerlab.core.decimals import to_decimal
from makerlab.errors import ConfigError

KINDS = ("spot", "linear_perpetual", "inverse_perpetual", "linear_future", "inverse_future")
DECIMAL_FIELDS = ("tick_size", "lot_size", "min_qty", "min_notional", "contract_size")


@dataclass(frozen=True, slots=True)
class InstrumentSpec:
    """One instrument's trading rules on one venue.

    ``lot_size`` is the quantity step; ``min_notional`` is in quote currency (for inverse
    contracts, quantity is in contracts of ``contract_size`` quote units each).
    """

    exchange: str
    symbol: str
    base: str
    quote: str
    kind: str
    tick_size: Decimal
    lot_size: Decimal
    min_qty: Decimal
    min_notional: Decimal
    contract_size: Decimal = Decimal(1)

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ConfigError(f"{self.exchange}/{self.symbol}: unknown kind {self.kind!r}")
        for name in ("tick_size", "lot_size"):
            if getattr(self, name) <= 0:
                raise ConfigError(f"{self.exchange}/{self.symbol}: {name} must be positive")

    @property
    def price_precision(self) -> int:
        """Decimal places of the tick size (``0.10`` -> 1)."""
        return _places(self.tick_size)

    @property
    def quantity_precision(self) -> int:
        """Decimal places of the lot size (``0.001`` -> 3)."""
        return _places(self.lot_size)

    @property
    def is_inverse(self) -> bool:
        return self.kind.startswith("inverse")

    def round_price(self, price: float | Decimal | str, rounding: str = ROUND_HALF_EVEN) -> Decimal:
        """``price`` on the tick grid (nearest tick; pass ``ROUND_FLOOR``/``ROUND_CEILING``)."""
        return _to_step(price, self.tick_size, rounding)

    def floor_price(self, price: float | Decimal | str) -> Decimal:
        return self.round_price(price, ROUND_FLOOR)

    def ceil_price(self, price: float | Decimal | str) -> Decimal:
        return self.round_price(price, ROUND_CEILING)

    def round_qty(self, qty: float | Decimal | str) -> Decimal:
        """``qty`` on the lot grid, rounded toward zero so an order never grows."""
        q = to_decimal(qty)
        stepped = _to_step(abs(q), self.lot_size, ROUND_FLOOR)
        return stepped if q >= 0 else -stepped

    def notional(self, price: float | Decimal, qty: float | Decimal) -> Decimal:
        """Quote-currency value of ``qty`` at ``price``."""
        q = abs(to_decimal(qty))
        if self.is_inverse:
            return q * self.contract_size
        return q * to_decimal(price) * self.contract_size

    def as_dict(self) -> dict:
        """Contract specs in the tutorial OMS's shape (plus the raw steps)."""
        return {
            "base_asset": self.base,
            "quote_asset": self.quote,
            "min_notional": self.min_notional,
            "price_precision": self.price_precision,
            "quantity_precision": self.quantity_precision,
            "tick_size": self.tick_size,
            "lot_size": self.lot_size,
            "min_qty": self.min_qty,
        }


def _places(step: Decimal) -> int:
    """Decimal places of a finite ``step`` (``0.10`` -> 1, ``10`` -> 0)."""
    exponent = step.normalize().as_tuple().exponent
    return max(0, -exponent) if isinstance(exponent, int) else 0


def _to_step(value: float | Decimal | str, step: Decimal, rounding: str) -> Decimal:
    if type(value) is float:
        key = (value, step, rounding)
        found = _ROUNDED.get(key)
        if found is None:
            if len(_ROUNDED) >= _ROUNDED_MAX:
                _ROUNDED.clear()
            found = _ROUNDED[key] = _float_to_step(value, step, rounding)
        return found
    units = (to_decimal(value) / step).quantize(Decimal(1), rounding=rounding)
    return (units * step).quantize(step)


# floats a strategy rounds again and again (its quotes move a tick at a time): a bounded
# memo of the results (Decimals are immutable)
_ROUNDED: dict[tuple[float, Decimal, str], Decimal] = {}
_ROUNDED_MAX = 1 << 16


def _float_to_step(value: float, step: Decimal, rounding: str) -> Decimal:
    fast = _float_units(value, step, rounding)
    if fast is not None:
        return (Decimal(fast) * step).quantize(step)
    units = (Decimal(str(value)) / step).quantize(Decimal(1), rounding=rounding)
    return (units * step).quantize(step)


_FAST_LIMIT = 2.0**40  # below it, value / step in floats is within 5e-4 of the exact quotient
_MARGIN = 1e-3  # a float quotient this far from a rounding boundary rounds as the exact one


def _float_units(value: float, step: Decimal, rounding: str) -> int | None:
    """``Decimal(str(value)) / step`` rounded to whole steps, computed in floats when that is
    unambiguous (the float quotient is at least ``_MARGIN`` from a rounding boundary, so
    its error, under ``_MARGIN / 2`` for positive quotients below ``_FAST_LIMIT``, cannot
    cross one); ``None`` otherwise (then Decimal decides)."""
    x = value / float(step)
    if not 0.0 < x < _FAST_LIMIT:
        return None
    if rounding == ROUND_HALF_EVEN:
        units = round(x)
        return units if abs(x - units) < 0.5 - _MARGIN else None
    units = math.floor(x) if rounding == ROUND_FLOOR else math.ceil(x)
    if rounding not in (ROUND_FLOOR, ROUND_CEILING) or not _MARGIN < abs(x - units) < 1 - _MARGIN:
        return None
    return units


@dataclass(frozen=True, slots=True)
class SigFigSpec(InstrumentSpec):
    """A spec whose valid prices have at most ``sig_figs`` significant figures, on top
    of the ``tick_size`` grid (the finest step allowed); integer prices are always valid.

    This is Hyperliquid's rule: ``sig_figs=5`` and ``tick_size = 10**-(6 - szDecimals)``
    (perps), so ETH (``szDecimals=4``) prices ``3500.12345`` as ``3500.1`` and BTC
    ``100000.42`` as ``100000``.
    """

    sig_figs: int = 5

    @classmethod
    def hyperliquid(cls, coin: str, sz_decimals: int) -> SigFigSpec:
        step = Decimal(1).scaleb(-sz_decimals)
        return cls("hyperliquid", coin, coin, "USD", "linear_perpetual",
                   tick_size=Decimal(1).scaleb(-(6 - sz_decimals)), lot_size=step,
                   min_qty=step, min_notional=Decimal(10), sig_figs=5)

    def round_price(self, price: float | Decimal | str,
                    rounding: str = ROUND_HALF_EVEN) -> Decimal:
        """``price`` with at most ``sig_figs`` significant figures and on the tick grid."""
        value = Decimal(str(price))
        if value == 0:
            return Decimal(0).quantize(self.tick_size)
        digits = value.adjusted() + 1  # digits before the point
        if digits >= self.sig_figs:
            return value.quantize(Decimal(1), rounding=rounding)
        step = max(Decimal(1).scaleb(digits - self.sig_figs), self.tick_size)
        return value.quantize(step, rounding=rounding)


def spec_rows(specs: Iterable[InstrumentSpec]) -> list[dict]:
    """Specs as JSON rows (Decimals as strings; ``sig_figs`` for a :class:`SigFigSpec`)."""
    rows = []
    for spec in specs:
        row: dict[str, str | int] = {"exchange": spec.exchange, "symbol": spec.symbol,
                                     "base": spec.base, "quote": spec.quote,
                                     "kind": spec.kind}
        row.update({name: str(getattr(spec, name)) for name in DECIMAL_FIELDS})
        if isinstance(spec, SigFigSpec):
            row["sig_figs"] = spec.sig_figs
        rows.append(row)
    return rows


def spec_from_row(row: Mapping) -> InstrumentSpec:
    """The spec of one JSON row (see the module docstring); KeyError names a missing field."""
    decimals: dict[str, Any] = {name: Decimal(str(row[name])) for name in DECIMAL_FIELDS}
    args = (row["exchange"], row["symbol"], row["base"], row["quote"], row["kind"])
    if "sig_figs" in row:
        return SigFigSpec(*args, **decimals, sig_figs=int(row["sig_figs"]))
    return InstrumentSpec(*args, **decimals)


@cache
def load_specs() -> dict[tuple[str, str], InstrumentSpec]:
    """The bundled specs, keyed by ``(exchange, symbol)``."""
    text = resources.files("makerlab.specs").joinpath("instruments.json").read_text()
    specs = (spec_from_row(row) for row in json.loads(text)["instruments"])
    return {(spec.exchange, spec.symbol): spec for spec in specs}


def get_spec(exchange: str, symbol: str) -> InstrumentSpec:
    """The bundled spec of ``exchange``/``symbol``; a clear error when there is none."""
    try:
        return load_specs()[(exchange, symbol)]
    except KeyError:
        known = ", ".join(f"{e}/{s}" for e, s in sorted(load_specs()))
        raise ConfigError(f"no instrument spec for {exchange}/{symbol}; known: {known}") from None
