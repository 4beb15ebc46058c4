"""Arguments checked at the call: the OMS's refusals before anything is recorded or sent.

A refusal is an :class:`~makerlab.errors.OrderRejected` naming the call, the argument and
its value (``binance/BTCUSDT limit_order: price=inf must be a finite number smaller than
1e+15 in size``). The rules are listed in :mod:`makerlab.trading.oms`.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

import numpy as np

from makerlab.core.orders import TIFS
from makerlab.errors import OrderRejected

__all__ = ["DUPLICATE_CLOID", "MAX_ORDER_NUMBER", "UNKNOWN_ORDER", "Number", "flag",
           "number", "parsed", "refuse", "tif"]

Number = Decimal | float | int | str

#: Prices and amounts must be smaller than this in size: larger ones are unit mistakes, and
#: Decimal arithmetic on an instrument's grid (28 digits) would fail on them.
MAX_ORDER_NUMBER = Decimal("1e15")
UNKNOWN_ORDER = -2011
DUPLICATE_CLOID = -4015
_NUMBER_TYPES = (Decimal, int, float, str, np.integer, np.floating)


def refuse(where: str, argument: str, value: object, problem: str,
           code: int | str | None = None) -> OrderRejected:
    """The refusal of ``argument=value`` in the call ``where``."""
    return OrderRejected(f"{where}: {argument}={value!r} {problem}", argument=argument,
                         value=value, code=code)


def number(where: str, argument: str, value: object) -> Decimal:
    """``value`` as a finite Decimal smaller than ``MAX_ORDER_NUMBER`` in size."""
    checked = parsed(value)
    if isinstance(checked, str):
        raise refuse(where, argument, value, checked)
    return checked


def parsed(value: object) -> Decimal | str:
    """``value`` as a finite Decimal smaller than ``MAX_ORDER_NUMBER`` in size, or what is
    wrong with it."""
    if isinstance(value, bool | np.bool_) or not isinstance(value, _NUMBER_TYPES):
        return "must be a number (Decimal, int, float or numeric str)"
    try:
        checked = Decimal(value) if isinstance(value, Decimal | int | str) else Decimal(
            str(value))
    except (InvalidOperation, ValueError):
        return "is not a number"
    if not checked.is_finite() or abs(checked) >= MAX_ORDER_NUMBER:
        return f"must be a finite number smaller than {MAX_ORDER_NUMBER:.0e} in size"
    return checked


def flag(where: str, argument: str, value: object) -> bool:
    if not isinstance(value, bool | np.bool_):
        raise refuse(where, argument, value, "must be True or False")
    return bool(value)


def tif(where: str, value: object) -> str:
    if not isinstance(value, str) or value.upper() not in TIFS:
        raise refuse(where, "tif", value, f"must be one of {', '.join(sorted(TIFS))}")
    return value.upper()
