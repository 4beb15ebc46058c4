"""Risk limits, order-rate limits and the kill switch: the same over a replayed and a live
venue.

One frozen :class:`RiskLimits` configures them: ``OMS(..., risk=RiskLimits(...))`` live,
``Replayer(..., risk=RiskLimits(...))`` in replay (recorded in the run's config), so a
backtest shows the refusals a live session would make. :class:`Risk` is the pre-trade
check the OMS runs before it records or sends anything, and one more
:class:`~makerlab.trading.protocols.OrderListener` on the venue, attached after the OMS.

Pre-trade rules (a refusal is an :class:`~makerlab.errors.OrderRejected` with the code in
brackets; nothing is recorded or sent):

- **the kill switch refuses order entry** (``KILL_SWITCH``) while tripped; cancels are
  always allowed.
- **worst-case exposure**: an order's side exposure is the position if every open order of
  its side (their remaining sizes, pending and cancel-pending ones included) and the order
  itself filled: buys ``position + open bids + amount``, sells ``open asks + |amount| -
  position`` (never below zero). The order is refused if that exceeds
  ``max_position["<exc>/<ticker>"]`` (``RISK_POSITION``), or, valued at the order's price
  (a market order: the symbol's latest price), ``max_notional`` (``RISK_NOTIONAL``); or
  if the sum over every symbol of its larger side exposure at its latest price would
  exceed ``max_total_notional`` (``RISK_TOTAL_NOTIONAL``). An order that only reduces
  exposure is never refused for exposure. An amend counts as its order resized.
- **a symbol's latest price** is the last one the OMS saw for it: an order it sent, a venue
  update, a fill, else the position's entry. A market order on a symbol with no price yet
  is refused while a notional limit is set (``RISK_NOTIONAL``).
- **order rate** (``RISK_RATE``): at most ``max_orders_per_s`` new orders and amends per
  exchange in any second of the venue's clock; on a venue that reports rate limits, none
  while its retry-after runs, nor while less than ``rate_headroom`` of its tightest
  current budget is left (kept for cancels). Refused, not queued: a quote sent late is
  worse than none.

Post-trade rule:

- **a breached limit trips the kill switch**: after each fill (Risk reads the mirror the
  OMS has just updated) and each position correction from the venue, a position beyond
  ``max_position``, valued beyond ``max_notional``, or all positions valued beyond
  ``max_total_notional`` trips it (:attr:`KillReason.LIMIT`). The pre-trade check makes
  this the mark of fills it never saw: orders sent around this OMS, a venue correction.

Kill switch (:class:`KillSwitch`, owned by the OMS; what a trip does is the OMS's
``kill`` rules):

- **engaging refuses order entry at once**, before anything is cancelled.
- **exit, exception, limit and manual trips latch** until ``oms.rearm()``; a
  **disconnect** lifts itself once the private stream is back and the mirror reconciled.
  A latching trip replaces a disconnect; nothing replaces a latching trip.
- **every trip is kept**: ``trips`` lists ``(local ns, reason, detail)``.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from enum import StrEnum
from types import MappingProxyType
from typing import Protocol

from makerlab.core.clock import Clock
from makerlab.core.events import Fill, OrderUpdate
from makerlab.core.instruments import InstrumentSpec
from makerlab.core.orders import Order, Orders
from makerlab.core.positions import Positions
from makerlab.errors import ConfigError
from makerlab.trading.checks import parsed, refuse
from makerlab.trading.protocols import RateBudget
from makerlab.units import NS_PER_S

__all__ = ["KILL_SWITCH", "RISK_NOTIONAL", "RISK_POSITION", "RISK_RATE",
           "RISK_TOTAL_NOTIONAL", "KillReason", "KillSwitch", "Risk", "RiskLimits"]

log = logging.getLogger(__name__)

KILL_SWITCH = "KILL_SWITCH"
RISK_POSITION = "RISK_POSITION"
RISK_NOTIONAL = "RISK_NOTIONAL"
RISK_TOTAL_NOTIONAL = "RISK_TOTAL_NOTIONAL"
RISK_RATE = "RISK_RATE"
ZERO = Decimal(0)


@dataclass(frozen=True, slots=True)
class RiskLimits:
    """The limits :class:`Risk` enforces (``None``: no limit).

    Attributes:
        max_position: largest worst-case position per market, in the market's amount unit,
            keyed ``"<exc>/<ticker>"`` (``{"binance/BTCUSDT": 0.05}``); markets not listed
            have none.
        max_notional: largest worst-case value of one market's position, quote currency.
        max_total_notional: largest sum of every market's worst-case value.
        max_orders_per_s: new orders and amends per exchange per second.
        rate_headroom: fraction of the venue's tightest rate budget kept for cancels.
        dead_man_ms: live only: the venue dead-man switch timeout the OMS keeps armed
            (re-armed every third of it; ``0``: not armed while trading, only as the kill
            switch's backstop with a 60 s timeout).
    """

    max_position: Mapping[str, Decimal] = field(default_factory=dict)
    max_notional: Decimal | None = None
    max_total_notional: Decimal | None = None
    max_orders_per_s: int | None = None
    rate_headroom: float = 0.1
    dead_man_ms: int = 60_000

    def __post_init__(self) -> None:
        positions = {_market_key(k): _positive(f"max_position[{k!r}]", v)
                     for k, v in dict(self.max_position).items()}
        object.__setattr__(self, "max_position", MappingProxyType(positions))
        for name in ("max_notional", "max_total_notional"):
            value = getattr(self, name)
            if value is not None:
                object.__setattr__(self, name, _positive(name, value))
        _check_int("max_orders_per_s", self.max_orders_per_s, allow_none=True, low=1)
        _check_int("dead_man_ms", self.dead_man_ms, allow_none=False, low=0)
        if not isinstance(self.rate_headroom, int | float) or not 0 <= self.rate_headroom < 1:
            raise ConfigError(f"RiskLimits: rate_headroom={self.rate_headroom!r} must be a "
                              "fraction in [0, 1)")

    def position_limit(self, exchange: str, symbol: str) -> Decimal | None:
        return self.max_position.get(f"{exchange}/{symbol}")

    @property
    def exposure_limited(self) -> bool:
        """True if any position or notional limit is set."""
        return bool(self.max_position) or self.notional_limited

    @property
    def notional_limited(self) -> bool:
        return self.max_notional is not None or self.max_total_notional is not None


def _market_key(key: object) -> str:
    if not isinstance(key, str) or key.count("/") != 1 or "" in key.split("/"):
        raise ConfigError(f"RiskLimits: max_position key {key!r} must be '<exc>/<ticker>'")
    return key


def _positive(name: str, value: object) -> Decimal:
    number = parsed(value)
    if isinstance(number, str) or number <= 0:
        raise ConfigError(f"RiskLimits: {name}={value!r} must be a positive number")
    return number


def _check_int(name: str, value: object, *, allow_none: bool, low: int) -> None:
    if value is None and allow_none:
        return
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ConfigError(f"RiskLimits: {name}={value!r} must be an integer >= {low}")


class KillReason(StrEnum):
    """Why the kill switch tripped."""

    EXIT = "exit"
    EXCEPTION = "exception"
    DISCONNECT = "disconnect"
    LIMIT = "limit"
    MANUAL = "manual"


class KillSwitch:
    """Whether order entry is refused, and why (rules in the module docstring)."""

    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self.reason: KillReason | None = None
        self.detail = ""
        self.trips: list[tuple[int, KillReason, str]] = []

    def __repr__(self) -> str:
        state = f"tripped: {self.reason.value}" if self.reason else "armed"
        return f"KillSwitch({state})"

    @property
    def tripped(self) -> bool:
        return self.reason is not None

    def engage(self, reason: KillReason, detail: str) -> bool:
        """Refuse order entry from now on; True when this trip changed the state."""
        self.trips.append((self._clock.now_ns(), reason, detail))
        if self.reason is not None and not (self.reason is KillReason.DISCONNECT
                                            and reason is not KillReason.DISCONNECT):
            return False
        self.reason, self.detail = reason, detail
        log.error("kill switch tripped (%s): %s", reason.value, detail)
        return True

    def release(self) -> None:
        if self.reason is not None:
            log.warning("kill switch re-armed (was %s: %s)", self.reason.value, self.detail)
        self.reason, self.detail = None, ""

    def check(self, where: str) -> None:
        """Raise OrderRejected (``KILL_SWITCH``) while tripped."""
        if self.reason is not None:
            raise refuse(where, "kill_switch", self.reason.value,
                         f"is tripped ({self.detail}): order entry is refused until "
                         "oms.rearm()", KILL_SWITCH)


class RiskBook(Protocol):
    """What :class:`Risk` reads of the OMS: its mirrors and contract rules."""

    exchanges: list[str]

    def orders_peek(self, exc: str) -> Orders: ...

    def positions_peek(self, exc: str) -> Positions: ...

    def spec(self, exc: str, ticker: str) -> InstrumentSpec: ...


class Risk:
    """The pre-trade check and post-trade monitor of :class:`RiskLimits` (module rules).

    Args:
        limits: the limits.
        book: the OMS (mirrors and specs).
        clock: the venue's clock (order rate).
        budgets: an exchange's rate budget on a venue that reports one, else ``None``.
        on_breach: awaited with a description when a limit is breached after a fill.
    """

    def __init__(self, limits: RiskLimits, book: RiskBook, clock: Clock,
                 budgets: Callable[[str], RateBudget | None],
                 on_breach: Callable[[str], Awaitable[None]]) -> None:
        self.limits, self._book, self._clock = limits, book, clock
        self._budgets, self._on_breach = budgets, on_breach
        self._prices: dict[tuple[str, str], Decimal] = {}
        self._sent: dict[str, deque[int]] = {}

    # -- pre-trade ---------------------------------------------------------------------

    def check_order(self, where: str, exc: str, ticker: str, amount: Decimal,
                    price: Decimal | None) -> None:
        """Refuse a new order the rules forbid (OrderRejected); else count it."""
        self._check_rate(where, exc)
        self._check_exposure(where, exc, ticker, amount, price, None)
        self._count(exc)
        if price is not None:
            self._prices[(exc, ticker)] = price

    def check_amend(self, where: str, order: Order, price: Decimal | None,
                    amount: Decimal | None) -> None:
        """Refuse an amend the rules forbid (its order resized); else count it."""
        exc, ticker = str(order.exc), str(order.ticker)
        self._check_rate(where, exc)
        new = abs(amount) if amount is not None else abs(order.amount)
        remaining = max(new - order.filled_sz, ZERO) * order.side
        self._check_exposure(where, exc, ticker, remaining,
                             price if price is not None else order.price, order)
        self._count(exc)

    def _check_rate(self, where: str, exc: str) -> None:
        now = self._clock.now_ns()
        budget = self._budgets(exc)
        if budget is not None:
            wait = budget.retry_after(now)
            if wait > 0:
                raise refuse(where, "rate", f"{wait:.1f} s", "to wait: the venue refuses "
                             "orders for rate until then", RISK_RATE)
            room = budget.headroom(now)
            if room < self.limits.rate_headroom:
                raise refuse(where, "rate", f"{room:.0%} left", "of the venue's rate budget "
                             f"(keeping {self.limits.rate_headroom:.0%} for cancels)",
                             RISK_RATE)
        cap = self.limits.max_orders_per_s
        if cap is not None and len(self._window(exc, now)) >= cap:
            raise refuse(where, "rate", f"{cap} per s", "reached: max_orders_per_s",
                         RISK_RATE)

    def _window(self, exc: str, now: int) -> deque[int]:
        sent = self._sent.setdefault(exc, deque())
        while sent and sent[0] <= now - NS_PER_S:
            sent.popleft()
        return sent

    def _count(self, exc: str) -> None:
        if self.limits.max_orders_per_s is not None:
            self._sent.setdefault(exc, deque()).append(self._clock.now_ns())

    def _check_exposure(self, where: str, exc: str, ticker: str, amount: Decimal,
                        price: Decimal | None, replaced: Order | None) -> None:
        limit = self.limits.position_limit(exc, ticker)
        if not amount or (limit is None and not self.limits.notional_limited):
            return
        side = 1 if amount > 0 else -1
        after = self.exposure(exc, ticker, side, replaced) + abs(amount)
        if after <= self.exposure(exc, ticker, side, None):
            return  # never refused for exposure it does not add
        if limit is not None and after > limit:
            raise refuse(where, "amount", amount, f"would bring the worst-case position to "
                         f"{after} (max_position {limit})", RISK_POSITION)
        if not self.limits.notional_limited:
            return
        price = price if price is not None else self.price(exc, ticker)
        if price is None:
            raise refuse(where, "price", None, f"unknown: no price seen for {exc}/{ticker} "
                         "to value a notional limit", RISK_NOTIONAL)
        self._check_notional(where, exc, ticker, amount, price, after, side, replaced)

    def _check_notional(self, where: str, exc: str, ticker: str, amount: Decimal,
                        price: Decimal, after: Decimal, side: int,
                        replaced: Order | None) -> None:
        value = self._book.spec(exc, ticker).notional(price, after)
        cap = self.limits.max_notional
        if cap is not None and value > cap:
            raise refuse(where, "amount", amount, f"would bring the worst-case notional "
                         f"to {value:.2f} (max_notional {cap})", RISK_NOTIONAL)
        total_cap = self.limits.max_total_notional
        if total_cap is None:
            return
        other = -side
        worst = max(after, self.exposure(exc, ticker, other, replaced))
        total = self.total_notional(skip=(exc, ticker)) + self._book.spec(
            exc, ticker).notional(price, worst)
        if total > total_cap:
            raise refuse(where, "amount", amount, f"would bring the total worst-case "
                         f"notional to {total:.2f} (max_total_notional {total_cap})",
                         RISK_TOTAL_NOTIONAL)

    def exposure(self, exc: str, ticker: str, side: int, replaced: Order | None) -> Decimal:
        """The worst-case position of one side of ``exc``/``ticker`` (``replaced`` left
        out)."""
        position = self._book.positions_peek(exc).get_ticker_amount(ticker)
        resting = sum((o.remaining for o in self._book.orders_peek(exc).get_orders(
            ticker, copy=False) if o.side == side and o is not replaced), ZERO)
        return max(ZERO, side * position + resting)

    def total_notional(self, skip: tuple[str, str] | None = None) -> Decimal:
        """The sum over every market of its larger side exposure at its latest price."""
        total = ZERO
        for exc in self._book.exchanges:
            for ticker in self._tickers(exc):
                if (exc, ticker) == skip:
                    continue
                worst = max(self.exposure(exc, ticker, 1, None),
                            self.exposure(exc, ticker, -1, None))
                price = self.price(exc, ticker)
                if worst and price is not None:
                    total += self._book.spec(exc, ticker).notional(price, worst)
        return total

    def _tickers(self, exc: str) -> set[str]:
        orders = self._book.orders_peek(exc).get_orders(copy=False)
        return {str(o.ticker) for o in orders} | set(self._book.positions_peek(exc).as_dict())

    def price(self, exc: str, ticker: str) -> Decimal | None:
        """The latest price seen for ``exc``/``ticker`` (see the module rules)."""
        price = self._prices.get((exc, ticker))
        if price is not None:
            return price
        position = self._book.positions_peek(exc).get_ticker_position(ticker)
        return position.entry if position is not None and position.entry else None

    # -- post-trade (an OrderListener attached after the OMS) ----------------------------

    async def on_order_update(self, update: OrderUpdate) -> None:
        if update.price is not None and self.limits.exposure_limited:
            self._prices[(update.exchange, update.symbol)] = update.price

    async def on_fill(self, fill: Fill) -> None:
        if self.limits.exposure_limited:
            self._prices[(fill.exchange, fill.symbol)] = fill.price
            await self.check_positions()

    async def check_positions(self) -> None:
        """Trip the kill switch (``on_breach``) if a position breaches a limit."""
        breach = self.breach()
        if breach is not None:
            await self._on_breach(breach)

    def breach(self) -> str | None:
        """What the positions breach now, or ``None``."""
        for exc in self._book.exchanges:
            for ticker, position in self._book.positions_peek(exc).as_dict().items():
                found = self._market_breach(exc, ticker, position["amount"])
                if found is not None:
                    return found
        cap = self.limits.max_total_notional
        if cap is not None:
            value = self._positions_value()
            if value > cap:
                return f"positions worth {value:.2f} beyond max_total_notional {cap}"
        return None

    def _market_breach(self, exc: str, ticker: str, amount: Decimal) -> str | None:
        limit = self.limits.position_limit(exc, ticker)
        if limit is not None and abs(amount) > limit:
            return f"{exc}/{ticker} position {amount} beyond max_position {limit}"
        cap, price = self.limits.max_notional, self.price(exc, ticker)
        if cap is not None and price is not None:
            value = self._book.spec(exc, ticker).notional(price, amount)
            if value > cap:
                return f"{exc}/{ticker} position worth {value:.2f} beyond max_notional {cap}"
        return None

    def _positions_value(self) -> Decimal:
        total = ZERO
        for exc in self._book.exchanges:
            for ticker, position in self._book.positions_peek(exc).as_dict().items():
                price = self.price(exc, ticker)
                if price is not None:
                    total += self._book.spec(exc, ticker).notional(price, position["amount"])
        return total
