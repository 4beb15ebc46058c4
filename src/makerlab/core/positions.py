"""Positions, the positions container and fill accounting, shared by live and replay.

A :class:`Position` is an immutable value: signed ``amount`` (contracts or base units),
average ``entry`` price and cumulative ``realized_pnl``. :func:`apply_fill` turns a
position and a fill into the next position; the live OMS and the simulator both call it,
so their accounting cannot drift apart. All amounts are :class:`~decimal.Decimal`.

Accounting rules (``q`` signed fill size, ``p`` fill price, ``fee`` paid, positive = cost):

- **opening or adding** (flat, or ``q`` has the position's sign): the entry becomes the
  size-weighted average; linear ``(a·e + q·p) / (a + q)``, inverse (harmonic)
  ``(a + q) / (a/e + q/p)``.
- **reducing** (``q`` against the position, ``|q| ≤ |a|``): the entry is unchanged and the
  closed part realises ``c·(p - e)`` (linear) or ``c·(1/e - 1/p)`` (inverse), where
  ``c = -q`` is the closed amount signed like the position, times ``contract_size``.
- **flipping through zero** (``|q| > |a|``): the whole position closes as above and the
  remainder ``a + q`` opens at ``p``.
- **flat means entry zero**: a zero position has ``entry == 0``.
- **fees are realised**: every fee is subtracted from ``realized_pnl`` (linear fees in
  quote currency, inverse fees in base currency).

The identity the tests check: ``realized_pnl + unrealized_pnl(mark)`` equals the sum of the
fills' signed cash flows plus the position valued at ``mark``.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from decimal import Decimal
from typing import Any, Protocol, runtime_checkable

from makerlab.core.callbacks import run_handlers
from makerlab.core.decimals import to_decimal
from makerlab.core.events import Fill
from makerlab.core.instruments import InstrumentSpec
from makerlab.errors import ConfigError

__all__ = [
    "Accounting",
    "InverseAccounting",
    "LinearAccounting",
    "Position",
    "PositionDeltaHandler",
    "Positions",
    "accounting_for",
    "apply_fill",
]

ZERO = Decimal(0)
Number = Decimal | float | int | str


_dec = to_decimal


def _sign(x: Decimal) -> int:
    return (x > 0) - (x < 0)


@dataclass(frozen=True, slots=True)
class Position:
    """One instrument's position.

    Attributes:
        ticker: instrument symbol.
        amount: signed size; positive long, negative short.
        entry: average entry price; ``0`` when flat.
        realized_pnl: cumulative realised PnL net of fees (quote currency for linear
            contracts, base currency for inverse ones).
    """

    ticker: str
    amount: Decimal = ZERO
    entry: Decimal = ZERO
    realized_pnl: Decimal = ZERO

    def __post_init__(self) -> None:
        object.__setattr__(self, "amount", _dec(self.amount))
        object.__setattr__(self, "entry", _dec(self.entry))
        object.__setattr__(self, "realized_pnl", _dec(self.realized_pnl))

    def get_amount(self) -> Decimal:
        """Signed size."""
        return self.amount

    def get_entry(self) -> Decimal:
        """Average entry price (``0`` when flat)."""
        return self.entry

    def get_entry_value(self) -> Decimal:
        """Signed ``amount * entry`` (the position's cost at entry, linear units)."""
        return self.amount * self.entry

    def as_dict(self) -> dict[str, Any]:
        """``{ticker, amount, entry, realized_pnl}``."""
        return {"ticker": self.ticker, "amount": self.amount, "entry": self.entry,
                "realized_pnl": self.realized_pnl}


@runtime_checkable
class Accounting(Protocol):
    """How fills move a position and what it is worth, for one contract type."""

    def apply_fill(self, position: Position, qty: Number, price: Number,
                   fee: Number = ZERO) -> Position:
        """The position after filling signed ``qty`` at ``price`` and paying ``fee``."""
        ...

    def unrealized_pnl(self, position: Position, mark: Number) -> Decimal:
        """PnL of the open position if it were closed at ``mark``."""
        ...

    def cash_flow(self, qty: Number, price: Number) -> Decimal:
        """Signed cash a fill moves, fees excluded (buying pays, so it is negative)."""
        ...

    def value(self, amount: Number, mark: Number) -> Decimal:
        """Signed value of ``amount`` at ``mark`` in the PnL currency: the term that, added to
        the fills' cash flows, gives the total PnL (linear ``amount·mark·contract_size``;
        inverse ``-amount·contract_size/mark``, since a long in quote-sized contracts is a
        short in base)."""
        ...


@dataclass(frozen=True, slots=True)
class LinearAccounting:
    """Linear (USDT/USDC-margined, spot) contracts: PnL in quote currency.

    - **linear PnL**: closing ``c`` at ``p`` from entry ``e`` realises
      ``c · (p - e) · contract_size``.
    - **arithmetic average**: adding averages the entry by size.
    """

    contract_size: Decimal = Decimal(1)

    def apply_fill(self, position: Position, qty: Number, price: Number,
                   fee: Number = ZERO) -> Position:
        return _apply(position, _dec(qty), _check_price(price), _dec(fee), self)

    def average(self, a: Decimal, e: Decimal, q: Decimal, p: Decimal) -> Decimal:
        """Entry after adding ``q`` at ``p`` to ``a`` at ``e`` (same sign)."""
        return (a * e + q * p) / (a + q) if a else p

    def closed_pnl(self, closed: Decimal, entry: Decimal, price: Decimal) -> Decimal:
        """PnL of closing ``closed`` (signed like the position) at ``price``."""
        return closed * (price - entry) * self.contract_size

    def unrealized_pnl(self, position: Position, mark: Number) -> Decimal:
        return self.closed_pnl(position.amount, position.entry, _dec(mark))

    def cash_flow(self, qty: Number, price: Number) -> Decimal:
        return -_dec(qty) * _dec(price) * self.contract_size

    def value(self, amount: Number, mark: Number) -> Decimal:
        return _dec(amount) * _dec(mark) * self.contract_size


@dataclass(frozen=True, slots=True)
class InverseAccounting:
    """Inverse (coin-margined) contracts: ``amount`` in contracts of ``contract_size`` quote
    units each; PnL and fees in base currency.

    - **inverse PnL**: closing ``c`` at ``p`` from entry ``e`` realises
      ``c · contract_size · (1/e - 1/p)``.
    - **harmonic average**: adding sets the entry to ``(a + q) / (a/e + q/p)``.
    """

    contract_size: Decimal = Decimal(1)

    def apply_fill(self, position: Position, qty: Number, price: Number,
                   fee: Number = ZERO) -> Position:
        return _apply(position, _dec(qty), _check_price(price), _dec(fee), self)

    def average(self, a: Decimal, e: Decimal, q: Decimal, p: Decimal) -> Decimal:
        """Entry after adding ``q`` at ``p`` to ``a`` at ``e`` (same sign)."""
        return (a + q) / (a / e + q / p) if a else p

    def closed_pnl(self, closed: Decimal, entry: Decimal, price: Decimal) -> Decimal:
        """PnL (base) of closing ``closed`` contracts at ``price``."""
        if not closed:
            return ZERO
        return closed * self.contract_size * (1 / entry - 1 / price)

    def unrealized_pnl(self, position: Position, mark: Number) -> Decimal:
        return self.closed_pnl(position.amount, position.entry, _check_price(mark))

    def cash_flow(self, qty: Number, price: Number) -> Decimal:
        return _dec(qty) * self.contract_size / _check_price(price)

    def value(self, amount: Number, mark: Number) -> Decimal:
        return -_dec(amount) * self.contract_size / _check_price(mark)


def _check_price(price: Number) -> Decimal:
    p = _dec(price)
    if not p > 0:
        raise ConfigError(f"fill price must be positive, got {price!r}")
    return p


def _apply(pos: Position, q: Decimal, p: Decimal, fee: Decimal,
           acct: LinearAccounting | InverseAccounting) -> Position:
    """The accounting rules in the module docstring, for either contract type."""
    if not q:
        raise ConfigError(f"{pos.ticker}: a fill needs a non-zero qty")
    a, e = pos.amount, pos.entry
    realized = pos.realized_pnl - fee
    if not a or _sign(q) == _sign(a):
        return _moved(pos, a + q, acct.average(a, e, q, p), realized)
    closed = _sign(a) * min(abs(q), abs(a))
    realized += acct.closed_pnl(closed, e, p)
    new_amount = a + q
    if not new_amount:
        entry = ZERO
    elif _sign(new_amount) == _sign(a):
        entry = e
    else:
        entry = p
    return _moved(pos, new_amount, entry, realized)


_new, _set = object.__new__, object.__setattr__


def _moved(pos: Position, amount: Decimal, entry: Decimal, realized: Decimal) -> Position:
    """``replace(pos, amount=amount, entry=entry, realized_pnl=realized)`` (Decimals
    already), without its overhead: every fill of the venue and of the mirror comes here."""
    if type(pos) is not Position:  # a subclass keeps its own fields and checks
        return replace(pos, amount=amount, entry=entry, realized_pnl=realized)
    new = _new(Position)
    _set(new, "ticker", pos.ticker)
    _set(new, "amount", amount)
    _set(new, "entry", entry)
    _set(new, "realized_pnl", realized)
    return new


LINEAR = LinearAccounting()


def apply_fill(position: Position, qty: Number, price: Number, fee: Number = ZERO,
               accounting: Accounting = LINEAR) -> Position:
    """``position`` after a fill of signed ``qty`` at ``price`` paying ``fee``.

    ``fee`` is positive when paid and negative for a rebate; linear by default, pass
    ``accounting=accounting_for(spec)`` for inverse contracts. Raises :class:`ConfigError`
    for a zero ``qty`` or a non-positive ``price``.
    """
    return accounting.apply_fill(position, qty, price, fee)


def accounting_for(spec: InstrumentSpec) -> LinearAccounting | InverseAccounting:
    """The accounting that fits ``spec``'s contract kind and size."""
    cls = InverseAccounting if spec.is_inverse else LinearAccounting
    return cls(contract_size=spec.contract_size)


PositionDeltaHandler = Callable[[dict[str, Any]], Awaitable[None] | None]


class Positions:
    """The positions of one account, keyed by ticker, with delta handlers.

    - **unknown tickers are flat**: ``get_ticker_amount`` returns ``Decimal('0')``.
    - **flat positions are kept but not listed**: ``as_dict``/``as_list`` show non-zero
      positions; ``get_ticker_position`` still returns a flat one (its realised PnL).
    - **handlers see each change**: after an update that changes amount or entry, each
      handler gets ``{ticker, amount (new), delta, entry, realized_pnl}``.
    - **fills are booked once**: :meth:`book_fill` books a venue's
      :class:`~makerlab.core.events.Fill` unless a fill with the same symbol and trade id
      was booked before (the newest ``max_trade_ids`` are remembered): a fill delivered
      twice (a replayed message, a snapshot overlapping the stream) moves nothing.
    """

    def __init__(self, positions: Mapping[str, Position | Mapping[str, Any]] | None = None,
                 delta_handlers: Iterable[PositionDeltaHandler] | None = None, *,
                 accounting: Mapping[str, Accounting] | Callable[[str], Accounting] | None
                 = None, max_trade_ids: int = 100_000) -> None:
        """``accounting`` gives each ticker's accounting when it is not linear: a mapping,
        or a function of the ticker (asked on each fill)."""
        self._positions: dict[str, Position] = {}
        self._handlers: list[PositionDeltaHandler] = list(delta_handlers or [])
        self._accounting_of = _accounting_lookup(accounting)
        self._trade_ids: OrderedDict[tuple[str, str], None] = OrderedDict()
        self._max_trade_ids = max_trade_ids
        self.add_positions(positions or {})

    def get_ticker_amount(self, ticker: str) -> Decimal:
        """Signed position size of ``ticker``; ``Decimal('0')`` if unknown."""
        pos = self._positions.get(ticker)
        return pos.amount if pos is not None else ZERO

    def get_ticker_position(self, ticker: str) -> Position | None:
        """The :class:`Position` of ``ticker``, or ``None`` if never seen."""
        return self._positions.get(ticker)

    def add_positions(self, pos_dict: Mapping[str, Position | Mapping[str, Any]],
                      reset: bool = True) -> None:
        """Load positions from ``{ticker: Position or {amount, entry, ...}}``.

        ``reset=True`` drops every position not in ``pos_dict``. Handlers are not called.
        """
        if reset:
            self._positions.clear()
        for ticker, pos in pos_dict.items():
            self._positions[ticker] = pos if isinstance(pos, Position) else _position_from(
                ticker, pos)

    def add_delta_handler(self, handler: PositionDeltaHandler) -> None:
        """Call ``handler(delta_dict)`` (sync or async) after every change."""
        self._handlers.append(handler)

    def as_dict(self) -> dict[str, dict[str, Any]]:
        """``{ticker: position dict}`` of non-zero positions."""
        return {t: p.as_dict() for t, p in self._positions.items() if p.amount}

    def as_list(self) -> list[dict[str, Any]]:
        """Non-zero positions as dicts."""
        return list(self.as_dict().values())

    async def update_position(self, ticker: str, amount: Number | None = None,
                              fill_amount: Number | None = None, entry: Number | None = None,
                              fill_entry: Number | None = None, trigger_handlers: bool = True,
                              fee: Number = ZERO) -> Position:
        """Set (``amount``) or move (``fill_amount`` at ``fill_entry``) a position.

        - ``amount``: the new signed size as the exchange reports it; ``entry`` replaces the
          entry if given (kept otherwise, zero when flat).
        - ``fill_amount`` + ``fill_entry``: a fill, booked by :func:`apply_fill` with
          ``fee``; ``entry``, if given, then overrides the computed entry.
        - ``entry`` alone: correct the entry price.

        Raises :class:`ConfigError` for ``amount`` with ``fill_amount``, ``fill_amount``
        without ``fill_entry``, or no change at all.
        """
        old = self._positions.get(ticker) or Position(ticker)
        new = self._next(old, amount, fill_amount, entry, fill_entry, fee)
        self._positions[ticker] = new
        if trigger_handlers and (new.amount, new.entry) != (old.amount, old.entry):
            await self._fire(old, new)
        return new

    async def book_fill(self, fill: Fill) -> Position | None:
        """Book a venue's fill (signed by its side, fee included) unless its trade id was
        booked before; the new position, or ``None`` for a duplicate."""
        key = (fill.symbol, fill.trade_id)
        if key in self._trade_ids:
            return None
        self._trade_ids[key] = None
        if len(self._trade_ids) > self._max_trade_ids:
            self._trade_ids.popitem(last=False)
        return await self.update_position(fill.symbol, fill_amount=fill.side * fill.size,
                                          fill_entry=fill.price, fee=fill.fee)

    def _next(self, old: Position, amount: Number | None, fill_amount: Number | None,
              entry: Number | None, fill_entry: Number | None, fee: Number) -> Position:
        if amount is not None and fill_amount is not None:
            raise ConfigError(f"{old.ticker}: pass amount or fill_amount, not both")
        if fill_amount is not None:
            if fill_entry is None:
                raise ConfigError(f"{old.ticker}: fill_amount needs fill_entry (its price)")
            acct = self._accounting_of(old.ticker)
            new = acct.apply_fill(old, fill_amount, fill_entry, fee)
        elif amount is not None:
            new = replace(old, amount=_dec(amount))
        elif entry is None:
            raise ConfigError(f"{old.ticker}: update_position needs amount, fill_amount "
                              "or entry")
        else:
            new = old
        if entry is not None:
            return replace(new, entry=_dec(entry))
        return new if new.amount or new.entry is ZERO else replace(new, entry=ZERO)

    async def _fire(self, old: Position, new: Position) -> None:
        delta = {"ticker": new.ticker, "amount": new.amount, "delta": new.amount - old.amount,
                 "entry": new.entry, "realized_pnl": new.realized_pnl}
        for handler in self._handlers:  # each its own dict
            await run_handlers((handler,), dict(delta))


def _accounting_lookup(accounting: Mapping[str, Accounting] | Callable[[str], Accounting]
                       | None) -> Callable[[str], Accounting]:
    if callable(accounting):
        return accounting
    table = dict(accounting or {})
    return lambda ticker: table.get(ticker, LINEAR)


def _position_from(ticker: str, data: Mapping[str, Any]) -> Position:
    return Position(ticker, _dec(data.get("amount", ZERO)), _dec(data.get("entry") or ZERO),
                    _dec(data.get("realized_pnl") or ZERO))
