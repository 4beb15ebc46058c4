"""Trading fees as fractions of notional.

Sign convention: a **positive fee is paid** by us and a **negative fee is a rebate**
received. Rates are fractions of notional: ``0.0001`` is 1 basis point.

- **fee is rate times notional**: ``fee = |notional| * rate``, the rate being the maker
  rate for a fill of a resting order and the taker rate otherwise.
- **rebates are negative fees**: a negative maker rate gives a negative fee.
- **notional is in quote currency**: use :meth:`InstrumentSpec.notional
  <makerlab.core.instruments.InstrumentSpec.notional>`; for inverse contracts the engine
  divides the quote fee by the fill price to charge it in base currency.
- **rates are sane**: a rate of 1 or more in size (100 %) is refused as a likely unit
  mistake (bps or percent given as a fraction).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Protocol, runtime_checkable

from makerlab.errors import ConfigError

__all__ = ["FeeModel", "FeeSchedule", "MakerTakerFees"]


def _rate(value: Any, name: str) -> Decimal:
    rate = value if isinstance(value, Decimal) else Decimal(str(value))
    if not rate.is_finite() or abs(rate) >= 1:
        raise ConfigError(f"{name} fee {value!r} must be a fraction of notional in (-1, 1); "
                          "0.0001 is 1 bp")
    return rate


@runtime_checkable
class FeeModel(Protocol):
    """Says what a fill costs."""

    def fee(self, notional: Decimal, is_maker: bool) -> Decimal:
        """Fee in quote currency for a fill of quote ``notional``; positive is paid."""
        ...


@dataclass(frozen=True, slots=True)
class MakerTakerFees:
    """A maker rate and a taker rate, fractions of notional (negative = rebate)."""

    maker: Decimal = Decimal("0.0001")
    taker: Decimal = Decimal("0.0003")

    def __post_init__(self) -> None:
        object.__setattr__(self, "maker", _rate(self.maker, "maker"))
        object.__setattr__(self, "taker", _rate(self.taker, "taker"))

    def rate(self, is_maker: bool) -> Decimal:
        """The maker or taker rate."""
        return self.maker if is_maker else self.taker

    def fee(self, notional: Decimal | float | str, is_maker: bool) -> Decimal:
        """``|notional| * rate``; positive is paid, negative is a rebate (quote currency)."""
        value = notional if isinstance(notional, Decimal) else Decimal(str(notional))
        return abs(value) * self.rate(is_maker)


@dataclass(frozen=True, slots=True)
class FeeSchedule:
    """Fee models per exchange, with a default for exchanges not listed."""

    default: MakerTakerFees = field(default_factory=MakerTakerFees)
    by_exchange: Mapping[str, MakerTakerFees] = field(default_factory=dict)

    @classmethod
    def from_tutorial(cls, maker_fees: Any = Decimal("0.0001"),
                      taker_fees: Any = Decimal("0.0003"),
                      exchange_fees: Mapping[str, Mapping[str, Any]] | None = None,
                      ) -> FeeSchedule:
        """From the tutorial Replayer's ``maker_fees``, ``taker_fees`` and
        ``exchange_fees={'bybit': {'maker': 0.0002, 'taker': 0.0005}}``.

        A venue entry may give only one of ``maker``/``taker``; the other is the global
        rate. Other keys raise :class:`ConfigError`.
        """
        default = MakerTakerFees(maker_fees, taker_fees)
        venues = {exc: _venue_fees(exc, spec, default)
                  for exc, spec in (exchange_fees or {}).items()}
        return cls(default, venues)

    def for_exchange(self, exc: str) -> MakerTakerFees:
        """The fee model of ``exc`` (the default if it has none of its own)."""
        return self.by_exchange.get(exc, self.default)


def _venue_fees(exc: str, spec: Mapping[str, Any], default: MakerTakerFees) -> MakerTakerFees:
    unknown = set(spec) - {"maker", "taker"}
    if unknown:
        raise ConfigError(f"exchange_fees[{exc!r}]: unknown keys {sorted(unknown)}; "
                          "use 'maker' and 'taker'")
    return MakerTakerFees(spec.get("maker", default.maker), spec.get("taker", default.taker))
