"""The order management system the strategy talks to, over a venue seam.

One :class:`OMS` serves replay and live: it keeps the local :class:`~makerlab.core.orders.Orders`
and :class:`~makerlab.core.positions.Positions` mirrors, rounds by the instrument's
:class:`~makerlab.core.instruments.InstrumentSpec`, inserts orders as PENDING and marks
cancels CANCEL_PENDING, and applies the venue's updates. What differs between modes is
the *venue* object behind it (:class:`~makerlab.sim.venue.SimVenue` in replay; a Gateway
connection live, in a later issue), which must provide:

- ``spec(exc, ticker) -> InstrumentSpec``;
- ``async submit(exc, request)``, ``async cancel(exc, ticker, cloid)``;
- ``attach(listener)``, after which it calls ``listener.on_order_update(exc, update)``,
  ``listener.on_fill(exc, fill)`` and ``listener.on_cancel_reject(exc, reject)`` (a cancel
  the venue could not apply: ``{ticker, cloid, reason, timestamp}``);
- ``add_timer(callback, interval_ms)``, ``clock.ms()``, ``balance(exc) -> dict``.

Rules:

- **arguments are checked at the call**: ``amount`` and ``price`` must be a number
  (``Decimal``, ``int``, ``float``, numpy number or numeric ``str``; not ``bool``/``None``),
  finite and below ``1e15`` in size; ``price > 0`` and ``amount != 0`` (before and after
  rounding); ``tif`` one of :data:`~makerlab.core.orders.TIFS` (any case);
  ``reduce_only`` and ``round_to_specs`` booleans; ``cloid`` a non-empty ``str``. A bad
  one raises :class:`~makerlab.errors.OrderRejected` naming the argument and its value,
  and nothing is sent. Unknown keyword arguments raise ``TypeError``; a clock callback's
  ``interval_ms`` must be a positive number (``ConfigError``).
- **client order ids are unique**: a ``cloid`` the orders mirror holds (alive) or
  remembers as closed (the newest ``max_tombstones`` of them) is refused
  (``OrderRejected``, code ``-4015``): updates for it could not be told apart.
  ``rand_cloid`` never returns one.: ``limit_order``/``market_order`` insert the order as PENDING
  (timestamp: local send time in ms) before the request leaves, and return its cloid.
- **rounding comes from the spec**: with ``round_to_specs=True`` the amount is rounded
  toward zero to the lot grid and the price to the nearest tick; otherwise they are sent
  as given (and a venue may reject them).
- **cancels are pending until confirmed**: ``cancel_order`` marks an acknowledged order
  CANCEL_PENDING (a PENDING order stays PENDING; the venue resolves it); only the venue's
  confirmation removes it. Without ``oid``/``cloid`` it cancels every live order of the
  ticker (of the exchange, without a ticker).
- **cancelling an unknown order is refused at the call**: an ``oid``/``cloid`` that names
  no live order of the mirror (of ``ticker``, if given) raises ``OrderRejected`` with code
  ``-2011`` (Binance's "Unknown order sent."), as a live venue's cancel call raises.
- **a cancel the venue cannot apply comes back**: the order was already gone there (filled,
  expired, cancelled by an earlier cancel) or not there yet; the venue reports it
  (``on_cancel_reject``) and, if the mirror still holds the order, it is updated with
  ``reject_reason="cancel rejected: <venue reason>"`` (its status unchanged: a closed
  order's own final update follows), which its delta handlers see.
- **positions follow fills**: each fill the venue reports is booked with
  :func:`~makerlab.core.positions.apply_fill` (fee included) in the positions mirror.
"""

from __future__ import annotations

import itertools
from collections.abc import Awaitable, Callable
from decimal import Decimal, InvalidOperation
from typing import Any

import numpy as np

from makerlab.core.instruments import InstrumentSpec
from makerlab.core.orders import TIFS, Order, Orders, OrderStatus
from makerlab.core.positions import Positions
from makerlab.errors import ConfigError, OrderRejected

__all__ = ["MAX_ORDER_NUMBER", "OMS"]

Number = Decimal | float | int | str

#: Prices and amounts must be smaller than this in size: larger ones are unit mistakes, and
#: Decimal arithmetic on an instrument's grid (28 digits) would fail on them.
MAX_ORDER_NUMBER = Decimal("1e15")
_NUMBER_TYPES = (Decimal, int, float, str, np.integer, np.floating)
UNKNOWN_ORDER = -2011
DUPLICATE_CLOID = -4015


def _refuse(where: str, argument: str, value: Any, problem: str,
            code: int | None = None) -> OrderRejected:
    return OrderRejected(f"{where}: {argument}={value!r} {problem}", argument=argument,
                         value=value, code=code)


def _number(where: str, argument: str, value: Any) -> Decimal:
    """``value`` as a finite Decimal smaller than ``MAX_ORDER_NUMBER`` in size."""
    number = _parsed(value)
    if isinstance(number, str):
        raise _refuse(where, argument, value, number)
    return number


def _parsed(value: Any) -> Decimal | str:
    """``value`` as a finite Decimal smaller than ``MAX_ORDER_NUMBER`` in size, or what is
    wrong with it."""
    if isinstance(value, bool | np.bool_) or not isinstance(value, _NUMBER_TYPES):
        return "must be a number (Decimal, int, float or numeric str)"
    try:
        number = Decimal(value) if isinstance(value, Decimal | int | str) else Decimal(
            str(value))
    except (InvalidOperation, ValueError):
        return "is not a number"
    if not number.is_finite() or abs(number) >= MAX_ORDER_NUMBER:
        return f"must be a finite number smaller than {MAX_ORDER_NUMBER:.0e} in size"
    return number


def _flag(where: str, argument: str, value: Any) -> bool:
    if not isinstance(value, bool | np.bool_):
        raise _refuse(where, argument, value, "must be True or False")
    return bool(value)


def _tif(where: str, tif: Any) -> str:
    if not isinstance(tif, str) or tif.upper() not in TIFS:
        raise _refuse(where, "tif", tif, f"must be one of {', '.join(sorted(TIFS))}")
    return tif.upper()


class OMS:
    """Orders, positions, balances and contract rules (the tutorial's OMS surface).

    Args:
        gateway: a live Gateway (live mode, not available yet); ignored when ``venue`` is
            given.
        exchanges: exchanges to track (default: every exchange the venue replays).
        orders_mirrored_exchanges, positions_mirrored_exchanges, pending_timeout,
            refresh_orders_snapshot, refresh_positions_snapshot, orders_cls_init: the
            tutorial's live-mirroring options, kept in :attr:`options` (nothing to mirror
            in replay).
        venue: the venue implementation (see the module docstring).
    """

    def __init__(self, gateway: Any = None, exchanges: list[str] | None = None,
                 orders_mirrored_exchanges: list[str] | None = None,
                 positions_mirrored_exchanges: list[str] | None = None,
                 pending_timeout: int = 5000, refresh_orders_snapshot: float = 60,
                 refresh_positions_snapshot: float = 60, orders_cls_init: Any = None, *,
                 venue: Any = None) -> None:
        if venue is None:
            raise ConfigError("live trading is not available yet: use the Replayer's "
                              "get_oms() for simulation")
        self.gateway, self.venue = gateway, venue
        self.options = {"orders_mirrored_exchanges": orders_mirrored_exchanges,
                        "positions_mirrored_exchanges": positions_mirrored_exchanges,
                        "pending_timeout": pending_timeout,
                        "refresh_orders_snapshot": refresh_orders_snapshot,
                        "refresh_positions_snapshot": refresh_positions_snapshot,
                        "orders_cls_init": orders_cls_init}
        self.exchanges = list(exchanges or venue.exchanges())
        self._orders = {exc: Orders() for exc in self.exchanges}
        self._positions = {exc: Positions(accounting=venue.accounting(exc))
                           for exc in self.exchanges}
        self._cloids = itertools.count(1)
        venue.attach(self)

    async def init(self) -> None:
        """Load contract rules and start mirroring (the replayed venue needs nothing)."""

    async def cleanup(self) -> None:
        """Stop clock callbacks and mirrors (nothing to stop in replay)."""

    # -- local state -----------------------------------------------------------------

    def _exc(self, exc: str) -> str:
        if exc not in self._orders:
            raise ConfigError(f"exchange {exc!r} is not tracked; tracked: {self.exchanges}")
        return exc

    def orders_peek(self, exc: str) -> Orders:
        """The maintained open-orders container of ``exc``."""
        return self._orders[self._exc(exc)]

    def positions_peek(self, exc: str) -> Positions:
        """The maintained positions container of ``exc``."""
        return self._positions[self._exc(exc)]

    def get_position(self, exc: str, ticker: str) -> Decimal:
        """Signed position of ``ticker`` on ``exc`` from the local mirror."""
        return self.positions_peek(exc).get_ticker_amount(ticker)

    def oid_query(self, exc: str, oid: str) -> Order | None:
        return self.orders_peek(exc).oid_query(oid)

    def cloid_query(self, exc: str, cloid: str) -> Order | None:
        return self.orders_peek(exc).cloid_query(cloid)

    async def get_balance(self, exc: str) -> dict[str, Any]:
        """``{'equity_total', 'margin_total', 'notional_position', 'unrealized_pnl'}``."""
        return self.venue.balance(self._exc(exc))

    # -- contract rules ----------------------------------------------------------------

    def spec(self, exc: str, ticker: str) -> InstrumentSpec:
        return self.venue.spec(exc, ticker)

    def contract_specs(self, exc: str, ticker: str) -> dict[str, Any]:
        """``{base_asset, quote_asset, min_notional, price_precision, quantity_precision,
        tick_size, lot_size, min_qty}``."""
        return self.spec(exc, ticker).as_dict()

    def rounded_price(self, exc: str, ticker: str, price: Number) -> Decimal:
        """``price`` on the tick grid (nearest tick)."""
        where = f"{exc}/{ticker} rounded_price"
        return self.spec(exc, ticker).round_price(_number(where, "price", price))

    def rounded_ceil_price(self, exc: str, ticker: str, price: Number) -> Decimal:
        where = f"{exc}/{ticker} rounded_ceil_price"
        return self.spec(exc, ticker).ceil_price(_number(where, "price", price))

    def rounded_floor_price(self, exc: str, ticker: str, price: Number) -> Decimal:
        where = f"{exc}/{ticker} rounded_floor_price"
        return self.spec(exc, ticker).floor_price(_number(where, "price", price))

    def rounded_lots(self, exc: str, ticker: str, amount: Number) -> Decimal:
        """``amount`` on the lot grid, rounded toward zero."""
        where = f"{exc}/{ticker} rounded_lots"
        return self.spec(exc, ticker).round_qty(_number(where, "amount", amount))

    def min_notional(self, exc: str, ticker: str) -> Decimal:
        return self.spec(exc, ticker).min_notional

    def price_precision(self, exc: str, ticker: str) -> int:
        return self.spec(exc, ticker).price_precision

    def lot_precision(self, exc: str, ticker: str) -> int:
        return self.spec(exc, ticker).quantity_precision

    def rand_cloid(self, exc: str) -> str:
        """A new client order id: 32 hex digits, deterministic in replay, never one the
        mirror knows."""
        orders = self.orders_peek(exc)
        while True:
            cloid = f"{next(self._cloids):032x}"
            if not orders.cloid_known(cloid):
                return cloid

    # -- orders ------------------------------------------------------------------------

    async def limit_order(self, exc: str, ticker: str, amount: Number, price: Number,
                          round_to_specs: bool = False, tif: str = "GTC",
                          reduce_only: bool = False, cloid: str | None = None) -> str:
        """Send a limit order (``amount`` signed: positive buys); returns its cloid.

        Raises :class:`~makerlab.errors.OrderRejected` for an argument the module
        docstring's rules refuse (nothing is sent).
        """
        where = f"{exc}/{ticker} limit_order"
        qty = self._amount(where, exc, ticker, amount, round_to_specs)
        px = _number(where, "price", price)
        if round_to_specs:
            px = self.spec(exc, ticker).round_price(px)
        if px <= 0:
            raise _refuse(where, "price", price, "must be > 0" + (
                " after rounding to the tick" if round_to_specs else ""))
        return await self._send(where, exc, ticker, qty, px, "limit", _tif(where, tif),
                                _flag(where, "reduce_only", reduce_only), cloid)

    async def market_order(self, exc: str, ticker: str, amount: Number,
                           round_to_specs: bool = False, reduce_only: bool = False,
                           cloid: str | None = None) -> str:
        """Send a market order (walks the book in replay); returns its cloid.

        Raises :class:`~makerlab.errors.OrderRejected` as :meth:`limit_order` does.
        """
        where = f"{exc}/{ticker} market_order"
        qty = self._amount(where, exc, ticker, amount, round_to_specs)
        return await self._send(where, exc, ticker, qty, None, "market", "IOC",
                                _flag(where, "reduce_only", reduce_only), cloid)

    def _amount(self, where: str, exc: str, ticker: str, amount: Any,
                round_to_specs: Any) -> Decimal:
        """The checked signed amount, on the lot grid with ``round_to_specs`` (an unknown
        exchange or market raises ConfigError here, before anything is recorded)."""
        spec = self.spec(self._exc(exc), ticker)
        qty = _number(where, "amount", amount)
        if _flag(where, "round_to_specs", round_to_specs):
            qty = spec.round_qty(qty)
            if not qty:
                raise _refuse(where, "amount", amount,
                              f"rounds to zero on the lot grid (lot {spec.lot_size})")
        if not qty:
            raise _refuse(where, "amount", amount, "must not be zero")
        return qty

    async def _send(self, where: str, exc: str, ticker: str, qty: Decimal,
                    price: Decimal | None, ord_type: str, tif: str, reduce_only: bool,
                    cloid: str | None) -> str:
        cloid = self._new_cloid(where, exc, cloid)
        await self._orders[exc].upsert_order(
            exc=exc, cloid=cloid, ticker=ticker, amount=qty, price=price, tif=tif,
            ord_type=ord_type, reduce_only=reduce_only, ord_status=OrderStatus.PENDING,
            timestamp=self.venue.clock.ms())
        request = {"ticker": ticker, "cloid": cloid, "amount": qty, "price": price,
                   "tif": tif, "reduce_only": reduce_only, "ord_type": ord_type}
        await self.venue.submit(exc, request)
        return cloid

    def _new_cloid(self, where: str, exc: str, cloid: Any) -> str:
        if cloid is None:
            return self.rand_cloid(exc)
        if not isinstance(cloid, str) or not cloid:
            raise _refuse(where, "cloid", cloid, "must be a non-empty str")
        if self._orders[exc].cloid_known(cloid):
            raise _refuse(where, "cloid", cloid, "is already used by an order of this "
                          "session (client order ids must be unique)", DUPLICATE_CLOID)
        return cloid

    async def cancel_order(self, exc: str, ticker: str | None = None, oid: str | None = None,
                           cloid: str | None = None) -> None:
        """Cancel by ``oid`` or ``cloid``; with neither, every live order of ``ticker``.

        Raises :class:`~makerlab.errors.OrderRejected` (code ``-2011``) when the id names
        no live order (of ``ticker``, if given) in the mirror.
        """
        orders = self.orders_peek(exc)
        if oid is None and cloid is None:
            targets = orders.get_orders(ticker, copy=False)
        else:
            targets = [self._cancel_target(exc, ticker, oid, cloid)]
        for order in targets:
            await self._cancel_one(exc, order)

    def _cancel_target(self, exc: str, ticker: str | None, oid: str | None,
                       cloid: str | None) -> Order:
        orders = self._orders[exc]
        argument, ident = ("cloid", cloid) if cloid is not None else ("oid", oid)
        found = orders.cloid_query(ident) if cloid is not None else orders.oid_query(ident)
        if oid is not None and cloid is not None and orders.oid_query(oid) is not found:
            found = None
        if found is None or not found.is_alive() or ticker not in (None, found.ticker):
            raise _refuse(f"{exc}/{ticker or '*'} cancel_order", argument, ident,
                          "names no live order in the OMS: -2011 Unknown order sent.",
                          UNKNOWN_ORDER)
        return found

    async def _cancel_one(self, exc: str, order: Order) -> None:
        if order.cloid is None:
            return
        if order.ord_status is not OrderStatus.PENDING:
            await self._orders[exc].upsert_order(cloid=order.cloid,
                                                 ord_status=OrderStatus.CANCEL_PENDING)
        await self.venue.cancel(exc, order.ticker, order.cloid)

    # -- venue updates -----------------------------------------------------------------

    async def on_order_update(self, exc: str, update: dict[str, Any]) -> None:
        """Apply an order update from the venue (stale ones are dropped by ``Orders``)."""
        await self._orders[exc].upsert_order(exc=exc, **update)

    async def on_cancel_reject(self, exc: str, reject: dict[str, Any]) -> None:
        """A cancel the venue could not apply: noted on the order if the mirror holds it."""
        if self._orders[exc].cloid_query(reject["cloid"]) is not None:
            await self._orders[exc].upsert_order(
                cloid=reject["cloid"], reject_reason=f"cancel rejected: {reject['reason']}")

    async def on_fill(self, exc: str, fill: dict[str, Any]) -> None:
        """Book a fill from the venue in the positions mirror."""
        qty = fill["dir"] * fill["size"]
        await self._positions[exc].update_position(
            fill["ticker"], fill_amount=qty, fill_entry=fill["price"], fee=fill["fee"])

    # -- clock -------------------------------------------------------------------------

    async def add_clock_callback(self, callback: Callable[[], Awaitable[Any] | Any],
                                 name: str = "CLOCK", interval_ms: float = 500) -> None:
        """Run ``callback()`` every ``interval_ms`` ms of venue (replay) time.

        Raises :class:`~makerlab.errors.ConfigError` if ``callback`` is not callable or
        ``interval_ms`` is not a positive number (as order amounts are checked).
        """
        where = f"add_clock_callback {name!r}"
        interval = _parsed(interval_ms)
        if isinstance(interval, str) or interval <= 0:
            problem = interval if isinstance(interval, str) else "must be > 0"
            raise ConfigError(f"{where}: interval_ms={interval_ms!r} {problem}")
        if not callable(callback):
            raise ConfigError(f"{where}: callback={callback!r} must be callable")
        self.venue.add_timer(callback, interval)

