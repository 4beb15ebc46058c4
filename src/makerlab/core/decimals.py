"""Numbers into :class:`~decimal.Decimal` at the order and accounting boundary: the one
conversion (floats through their shortest repr, so ``0.1`` is ``Decimal('0.1')``)."""

from __future__ import annotations

from decimal import Decimal

__all__ = ["to_decimal"]


def to_decimal(value: Decimal | float | int | str) -> Decimal:
    """``value`` as a Decimal (a Decimal as it is)."""
    return value if isinstance(value, Decimal) else Decimal(str(value))
