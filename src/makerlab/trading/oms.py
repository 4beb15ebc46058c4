"""The order management system the strategy talks to, over the typed venue seam.

One :class:`OMS` serves replay and live, every line shared: it keeps the local
:class:`~makerlab.core.orders.Orders` and :class:`~makerlab.core.positions.Positions`
mirrors, rounds by the instrument's :class:`~makerlab.core.instruments.InstrumentSpec`,
inserts orders as PENDING and marks cancels CANCEL_PENDING, and applies the venue's events.
It depends only on :class:`~makerlab.trading.protocols.OrderVenue` (the replay engine's
:class:`~makerlab.sim.venue.SimVenue`, or :class:`~makerlab.live.order_venue.LiveOrderVenue`
passed as ``venue``): it sends :class:`~makerlab.trading.protocols.OrderRequest` /
``CancelRequest`` / ``AmendRequest`` and, attached as one
:class:`~makerlab.trading.protocols.OrderListener` among any others, receives
:class:`~makerlab.core.events.OrderUpdate` and :class:`~makerlab.core.events.Fill` events.

Rules:

- **arguments are checked at the call**: ``amount`` and ``price`` must be a number
  (``Decimal``, ``int``, ``float``, numpy number or numeric ``str``; not ``bool``/``None``),
  finite and below ``1e15`` in size; ``price > 0`` and ``amount != 0`` (before and after
  rounding); ``tif`` one of :data:`~makerlab.core.orders.TIFS` (any case);
  ``reduce_only`` and ``round_to_specs`` booleans; ``cloid`` a non-empty ``str``. A bad
  one raises :class:`~makerlab.errors.OrderRejected` naming the argument and its value,
  and nothing is sent. Unknown keyword arguments raise ``TypeError``; a clock callback's
  ``interval_ms`` must be a positive number and the venue must run timers
  (:class:`~makerlab.trading.protocols.VenueTimers`; ``ConfigError`` otherwise).
- **client order ids are unique**: a ``cloid`` the orders mirror holds (alive) or
  remembers as closed (the newest ``max_tombstones`` of them) is refused
  (``OrderRejected``, code ``-4015``): updates for it could not be told apart.
  ``rand_cloid`` never returns one. ``limit_order``/``market_order`` insert the order as
  PENDING (timestamp: local send time in ms) before the request leaves, and return its
  cloid.
- **a request that does not leave rejects its order**: if ``venue.submit`` raises (a
  transport failure: connection lost, timeout), the order is marked REJECTED with
  ``reject_reason="submit failed: <error>"`` (its handlers see it) and the error
  propagates to the caller, so no order waits PENDING for an answer that may never come.
  Should the venue have received it after all, its events for that cloid are ignored
  (dead orders stay dead): only a reconciliation against ``venue.open_orders`` finds it.
- **rounding comes from the spec**: with ``round_to_specs=True`` the amount is rounded
  toward zero to the lot grid and the price to the nearest tick; otherwise they are sent
  as given (and a venue may reject them).
- **cancels are pending until confirmed**: ``cancel_order`` sends the cancel, then marks
  an acknowledged order CANCEL_PENDING; only the venue's events end it. A PENDING order
  stays PENDING: its ACK (or REJECT), then the CANCEL_ACK or the cancel's refusal, resolve
  it, so it is never left PENDING or CANCEL_PENDING once the venue has answered. If the
  send raises, nothing is marked and the error propagates. Without ``oid``/``cloid`` it
  cancels every live order of the ticker (of the exchange, without a ticker).
- **cancelling or amending an unknown order is refused at the call**: an ``oid``/``cloid``
  that names no live order of the mirror (of ``ticker``, if given) raises
  ``OrderRejected`` with code ``-2011`` (Binance's "Unknown order sent."), as a live
  venue's call fails.
- **amends change the mirror when the venue acknowledges them**: ``amend_order`` checks
  the new price/amount like an order's (the amount keeps the order's side) and sends
  them; the order keeps its mirrored price and amount until the AMEND_ACK arrives.
- **a refused cancel or amend comes back as an event**: the order was already gone at the
  venue (filled, expired, cancelled) or not there yet, or the new values were refused;
  the venue's CANCEL_REJECT / AMEND_REJECT leaves the order's state as it is and, if the
  mirror still holds the order, records ``reject_reason="cancel rejected: <code>
  <reason>"`` (``"amend rejected: ..."``), which its handlers see. A closed order's own
  final update follows.
- **venue events go through the mirrors' rules**: updates by
  :meth:`~makerlab.core.orders.Orders.apply_update` (stale or out-of-order ones, by
  ``update_id``, are dropped; dead orders stay dead), fills by
  :meth:`~makerlab.core.positions.Positions.book_fill` (fee included, each trade id
  booked once, with the instrument's accounting). Events of exchanges this OMS does not
  track are ignored.
- **handlers fire on every change**: ``orders_mirror``/``positions_mirror`` register the
  tutorial's ``on_delta`` (each changed order's dict; each position delta) and
  ``on_update`` (the whole page after the change: live orders as dicts; non-zero
  positions by ticker).
"""

from __future__ import annotations

import functools
import itertools
from collections.abc import Awaitable, Callable
from decimal import Decimal, InvalidOperation
from typing import Any

import numpy as np

from makerlab.core.callbacks import run_handlers
from makerlab.core.events import Fill, OrderUpdate
from makerlab.core.instruments import InstrumentSpec
from makerlab.core.orders import TIFS, DeltaHandler, Order, Orders, OrderStatus
from makerlab.core.positions import (
    Accounting,
    PositionDeltaHandler,
    Positions,
    accounting_for,
)
from makerlab.errors import ConfigError, OrderRejected
from makerlab.trading.protocols import (
    AmendRequest,
    CancelRequest,
    OrderRequest,
    OrderVenue,
    VenueTimers,
)

__all__ = ["MAX_ORDER_NUMBER", "OMS"]

Number = Decimal | float | int | str

#: Prices and amounts must be smaller than this in size: larger ones are unit mistakes, and
#: Decimal arithmetic on an instrument's grid (28 digits) would fail on them.
MAX_ORDER_NUMBER = Decimal("1e15")
_MAX_FLOAT = float(MAX_ORDER_NUMBER)
_NUMBER_TYPES = (Decimal, int, float, str, np.integer, np.floating)
UNKNOWN_ORDER = -2011
DUPLICATE_CLOID = -4015


def _refuse(where: str, argument: str, value: object, problem: str,
            code: int | None = None) -> OrderRejected:
    return OrderRejected(f"{where}: {argument}={value!r} {problem}", argument=argument,
                         value=value, code=code)


def _number(where: str, argument: str, value: object) -> Decimal:
    """``value`` as a finite Decimal smaller than ``MAX_ORDER_NUMBER`` in size."""
    number = _parsed(value)
    if isinstance(number, str):
        raise _refuse(where, argument, value, number)
    return number


def _parsed(value: object) -> Decimal | str:
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


def _flag(where: str, argument: str, value: object) -> bool:
    if not isinstance(value, bool | np.bool_):
        raise _refuse(where, argument, value, "must be True or False")
    return bool(value)


def _tif(where: str, tif: object) -> str:
    if not isinstance(tif, str) or tif.upper() not in TIFS:
        raise _refuse(where, "tif", tif, f"must be one of {', '.join(sorted(TIFS))}")
    return tif.upper()


class OMS:
    """Orders, positions, balances and contract rules (the tutorial's OMS surface).

    Args:
        gateway: a live Gateway (live mode, not available yet); ignored when ``venue`` is
            given.
        exchanges: exchanges to track (default: every exchange of the venue).
        venue: the :class:`~makerlab.trading.protocols.OrderVenue` (see the module
            docstring); the OMS attaches itself to it as a listener.
        orders_mirrored_exchanges, positions_mirrored_exchanges, pending_timeout,
            refresh_orders_snapshot, refresh_positions_snapshot, orders_cls_init: the
            tutorial's live-mirroring options, kept in :attr:`options` for live
            reconciliation (nothing to reconcile in replay).
    """

    def __init__(self, gateway: object = None, exchanges: list[str] | None = None, *,
                 venue: OrderVenue | None = None,
                 orders_mirrored_exchanges: list[str] | None = None,
                 positions_mirrored_exchanges: list[str] | None = None,
                 pending_timeout: float = 5000, refresh_orders_snapshot: float = 60,
                 refresh_positions_snapshot: float = 60,
                 orders_cls_init: object = None) -> None:
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
        self._positions = {exc: Positions(accounting=_accounting_of(venue, exc))
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

    def orders_mirror(self, exc: str, on_update: Callable[[list[dict[str, Any]]], object]
                      | None = None, on_delta: DeltaHandler | None = None) -> Orders:
        """The live orders of ``exc``; ``on_delta(order_dict)`` after each change of an
        order, ``on_update(open_orders)`` (dicts of the live orders) after every change."""
        orders = self.orders_peek(exc)
        if on_delta is not None:
            orders.add_delta_handler(on_delta)
        if on_update is not None:
            orders.add_delta_handler(_page_handler(
                on_update, lambda: [o.as_dict() for o in orders.get_orders(copy=False)]))
        return orders

    def positions_mirror(self, exc: str,
                         on_update: Callable[[dict[str, dict[str, Any]]], object] | None = None,
                         on_delta: PositionDeltaHandler | None = None) -> Positions:
        """The live positions of ``exc``; ``on_delta(delta)`` after each change of a
        position, ``on_update(positions)`` (non-zero ones by ticker) after every change."""
        positions = self.positions_peek(exc)
        if on_delta is not None:
            positions.add_delta_handler(on_delta)
        if on_update is not None:
            positions.add_delta_handler(_page_handler(on_update, positions.as_dict))
        return positions

    def get_position(self, exc: str, ticker: str) -> Decimal:
        """Signed position of ``ticker`` on ``exc`` from the local mirror."""
        return self.positions_peek(exc).get_ticker_amount(ticker)

    def oid_query(self, exc: str, oid: str) -> Order | None:
        return self.orders_peek(exc).oid_query(oid)

    def cloid_query(self, exc: str, cloid: str) -> Order | None:
        return self.orders_peek(exc).cloid_query(cloid)

    async def get_balance(self, exc: str) -> dict[str, float]:
        """The venue account of ``exc`` in its margin asset: ``equity_total`` and
        ``margin_total`` (wallet plus unrealised PnL), ``equity_withdrawable``,
        ``unrealized_pnl`` and ``notional_position`` (net signed value of the positions at
        the venue's marks, ``amount x entry + unrealised PnL``: linear contracts)."""
        [balance, *_] = await self.venue.balances(self._exc(exc))
        positions = await self.venue.positions(exc)
        notional = sum((p.amount * p.entry_price + p.unrealized_pnl for p in positions),
                       Decimal(0))
        return {"equity_total": float(balance.equity), "margin_total": float(balance.equity),
                "equity_withdrawable": float(balance.available),
                "notional_position": float(notional),
                "unrealized_pnl": float(balance.equity - balance.wallet)}

    # -- contract rules ----------------------------------------------------------------

    def spec(self, exc: str, ticker: str) -> InstrumentSpec:
        return self.venue.spec(exc, ticker)

    def contract_specs(self, exc: str, ticker: str) -> dict[str, Any]:
        """``{base_asset, quote_asset, min_notional, price_precision, quantity_precision,
        tick_size, lot_size, min_qty}``."""
        return self.spec(exc, ticker).as_dict()

    def rounded_price(self, exc: str, ticker: str, price: Number) -> Decimal:
        """``price`` on the tick grid (nearest tick)."""
        spec = self.spec(exc, ticker)
        if type(price) is float and 0.0 < price < _MAX_FLOAT:  # a sane number: no Decimal yet
            return spec.round_price(price)
        return spec.round_price(_number(f"{exc}/{ticker} rounded_price", "price", price))

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
        docstring's rules refuse (nothing is sent), and whatever ``venue.submit`` raises
        (the order is then REJECTED).
        """
        where = f"{exc}/{ticker} limit_order"
        qty = self._amount(where, exc, ticker, amount, round_to_specs)
        px = self._price(where, exc, ticker, price, round_to_specs)
        tif, reduce_only = _tif(where, tif), _flag(where, "reduce_only", reduce_only)
        return await self._send(OrderRequest(exc, ticker, self._new_cloid(where, exc, cloid),
                                             qty, px, "limit", tif, reduce_only))

    async def market_order(self, exc: str, ticker: str, amount: Number,
                           round_to_specs: bool = False, reduce_only: bool = False,
                           cloid: str | None = None) -> str:
        """Send a market order (walks the book in replay); returns its cloid.

        Raises as :meth:`limit_order` does.
        """
        where = f"{exc}/{ticker} market_order"
        qty = self._amount(where, exc, ticker, amount, round_to_specs)
        reduce_only = _flag(where, "reduce_only", reduce_only)
        return await self._send(OrderRequest(exc, ticker, self._new_cloid(where, exc, cloid),
                                             qty, None, "market", "IOC", reduce_only))

    def _amount(self, where: str, exc: str, ticker: str, amount: object,
                round_to_specs: object) -> Decimal:
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

    def _price(self, where: str, exc: str, ticker: str, price: object,
               round_to_specs: bool) -> Decimal:
        """The checked limit price, on the tick grid with ``round_to_specs``."""
        px = _number(where, "price", price)
        if round_to_specs:
            px = self.spec(exc, ticker).round_price(px)
        if px <= 0:
            raise _refuse(where, "price", price, "must be > 0" + (
                " after rounding to the tick" if round_to_specs else ""))
        return px

    async def _send(self, request: OrderRequest) -> str:
        exc, cloid = request.exchange, request.cloid
        await self._orders[exc].upsert_order(
            exc=exc, cloid=cloid, ticker=request.symbol, amount=request.amount,
            price=request.price, tif=request.tif, ord_type=request.ord_type,
            reduce_only=request.reduce_only, ord_status=OrderStatus.PENDING,
            timestamp=self.venue.clock.ms())
        try:
            await self.venue.submit(request)
        except Exception as error:
            await self._orders[exc].upsert_order(
                cloid=cloid, ord_status=OrderStatus.REJECTED,
                reject_reason=f"submit failed: {type(error).__name__}: {error}")
            raise
        return cloid

    def _new_cloid(self, where: str, exc: str, cloid: object) -> str:
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
        no live order (of ``ticker``, if given) in the mirror, and whatever
        ``venue.cancel`` raises (the order is then left as it was).
        """
        orders = self.orders_peek(exc)
        if oid is None and cloid is None:
            targets = orders.get_orders(ticker, copy=False)
        else:
            targets = [self._target(f"{exc}/{ticker or '*'} cancel_order", exc, ticker, oid,
                                    cloid)]
        for order in targets:
            await self._cancel_one(exc, order)

    def _target(self, where: str, exc: str, ticker: str | None, oid: str | None,
                cloid: str | None) -> Order:
        """The live mirror order ``oid``/``cloid`` names, or OrderRejected ``-2011``."""
        orders = self._orders[exc]
        ident: str | None
        if cloid is not None:
            argument, ident, found = "cloid", cloid, orders.cloid_query(cloid)
        else:
            argument, ident = "oid", oid
            found = None if oid is None else orders.oid_query(oid)
        if oid is not None and cloid is not None and orders.oid_query(oid) is not found:
            found = None
        if found is None or not found.is_alive() or ticker not in (None, found.ticker):
            raise _refuse(where, argument, ident,
                          "names no live order in the OMS: -2011 Unknown order sent.",
                          UNKNOWN_ORDER)
        return found

    async def _cancel_one(self, exc: str, order: Order) -> None:
        acknowledged = order.ord_status is not OrderStatus.PENDING
        await self.venue.cancel(CancelRequest(exc, str(order.ticker), cloid=order.cloid,
                                              oid=None if order.cloid else order.oid))
        if acknowledged:
            await self._orders[exc].upsert_order(cloid=order.cloid, oid=order.oid,
                                                 ord_status=OrderStatus.CANCEL_PENDING)

    async def amend_order(self, exc: str, ticker: str, oid: str | None = None,
                          cloid: str | None = None, price: Number | None = None,
                          amount: Number | None = None, round_to_specs: bool = False) -> None:
        """Change a live order's price and/or signed ``amount`` (``None`` keeps it).

        The mirror changes when the venue acknowledges the amend (see the module
        docstring). Raises :class:`~makerlab.errors.OrderRejected` for an unknown order
        (``-2011``), a bad value, an amount of the other side or nothing to change.
        """
        where = f"{exc}/{ticker} amend_order"
        order = self._target(where, self._exc(exc), ticker, oid, cloid)
        px = None if price is None else self._price(where, exc, ticker, price,
                                                    _flag(where, "round_to_specs",
                                                          round_to_specs))
        qty = None if amount is None else self._amount(where, exc, ticker, amount,
                                                        round_to_specs)
        if qty is not None and (qty > 0) != (order.amount > 0):
            raise _refuse(where, "amount", amount, f"must keep the order's side "
                          f"(amount {order.amount})")
        if px is None and qty is None:
            raise _refuse(where, "price", price, "and amount=None: nothing to amend")
        await self.venue.amend(AmendRequest(exc, ticker, cloid=order.cloid,
                                            oid=None if order.cloid else order.oid,
                                            price=px, amount=qty))

    # -- venue events ------------------------------------------------------------------

    async def on_order_update(self, update: OrderUpdate) -> None:
        """Apply a venue's order event to the orders mirror (see the module rules)."""
        orders = self._orders.get(update.exchange)
        if orders is not None:
            await orders.apply_update(update)

    async def on_fill(self, fill: Fill) -> None:
        """Book a venue's fill in the positions mirror, once per trade id."""
        positions = self._positions.get(fill.exchange)
        if positions is not None:
            await positions.book_fill(fill)

    # -- clock -------------------------------------------------------------------------

    async def add_clock_callback(self, callback: Callable[[], Awaitable[object] | object],
                                 name: str = "CLOCK", interval_ms: float = 500) -> None:
        """Run ``callback()`` every ``interval_ms`` ms of the venue's clock.

        Raises :class:`~makerlab.errors.ConfigError` if ``callback`` is not callable,
        ``interval_ms`` is not a positive number (as order amounts are checked) or the
        venue runs no timers (:class:`~makerlab.trading.protocols.VenueTimers`).
        """
        where = f"add_clock_callback {name!r}"
        interval = _parsed(interval_ms)
        if isinstance(interval, str) or interval <= 0:
            problem = interval if isinstance(interval, str) else "must be > 0"
            raise ConfigError(f"{where}: interval_ms={interval_ms!r} {problem}")
        if not callable(callback):
            raise ConfigError(f"{where}: callback={callback!r} must be callable")
        if not isinstance(self.venue, VenueTimers):
            raise ConfigError(f"{where}: the venue {self.venue!r} runs no clock callbacks "
                              "(it has no add_timer)")
        self.venue.add_timer(callback, interval)


def _accounting_of(venue: OrderVenue, exc: str) -> Callable[[str], Accounting]:
    """Each ticker's accounting on ``exc``, from the venue's spec (asked once)."""
    return functools.cache(lambda ticker: accounting_for(venue.spec(exc, ticker)))


def _page_handler(on_update: Callable[[Any], object], page: Callable[[], Any]
                  ) -> Callable[[object], Awaitable[None]]:
    """A delta handler that calls ``on_update(page())``, awaiting it if it is async."""
    async def handler(_: object) -> None:
        await run_handlers((on_update,), page())

    return handler
