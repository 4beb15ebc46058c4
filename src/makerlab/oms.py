"""The order management system the strategy talks to, over a venue seam.

One :class:`OMS` serves replay and live: it keeps the local :class:`~makerlab.core.orders.Orders`
and :class:`~makerlab.core.positions.Positions` mirrors, rounds by the instrument's
:class:`~makerlab.core.instruments.InstrumentSpec`, inserts orders as PENDING and marks
cancels CANCEL_PENDING, and applies the venue's updates. What differs between modes is
the *venue* object behind it (:class:`~makerlab.sim.venue.SimVenue` in replay; a Gateway
connection live, in a later issue), which must provide:

- ``spec(exc, ticker) -> InstrumentSpec``;
- ``async submit(exc, request)``, ``async cancel(exc, ticker, cloid)``;
- ``attach(listener)``, after which it calls ``listener.on_order_update(exc, update)`` and
  ``listener.on_fill(exc, fill)``;
- ``add_timer(callback, interval_ms)``, ``clock.ms()``, ``balance(exc) -> dict``.

Rules:

- **orders start pending**: ``limit_order``/``market_order`` insert the order as PENDING
  (timestamp: local send time in ms) before the request leaves, and return its cloid.
- **rounding comes from the spec**: with ``round_to_specs=True`` the amount is rounded
  toward zero to the lot grid and the price to the nearest tick; otherwise they are sent
  as given (and a venue may reject them).
- **cancels are pending until confirmed**: ``cancel_order`` marks the order CANCEL_PENDING;
  only the venue's confirmation removes it. Without ``oid``/``cloid`` it cancels every
  live order of the ticker (of the exchange, without a ticker).
- **positions follow fills**: each fill the venue reports is booked with
  :func:`~makerlab.core.positions.apply_fill` (fee included) in the positions mirror.
"""

from __future__ import annotations

import itertools
from collections.abc import Awaitable, Callable
from decimal import Decimal
from typing import Any

from makerlab.core.instruments import InstrumentSpec
from makerlab.core.orders import Order, Orders, OrderStatus
from makerlab.core.positions import Positions
from makerlab.errors import ConfigError

__all__ = ["OMS"]

Number = Decimal | float | int | str


def _dec(value: Number) -> Decimal:
    return value if isinstance(value, Decimal) else Decimal(str(value))


class OMS:
    """Orders, positions, balances and contract rules (the tutorial's OMS surface).

    Args:
        gateway: a live Gateway (live mode, not available yet); ignored when ``venue`` is
            given.
        exchanges: exchanges to track (default: every exchange the venue replays).
        venue: the venue implementation (see the module docstring).
        Other tutorial arguments (``refresh_orders_snapshot`` ...) are accepted and unused
        in replay.
    """

    def __init__(self, gateway: Any = None, exchanges: list[str] | None = None, *,
                 venue: Any = None, **kwargs: Any) -> None:
        if venue is None:
            raise ConfigError("live trading is not available yet: use the Replayer's "
                              "get_oms() for simulation")
        self.gateway, self.venue, self.options = gateway, venue, kwargs
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
        return self.spec(exc, ticker).round_price(price)

    def rounded_ceil_price(self, exc: str, ticker: str, price: Number) -> Decimal:
        return self.spec(exc, ticker).ceil_price(price)

    def rounded_floor_price(self, exc: str, ticker: str, price: Number) -> Decimal:
        return self.spec(exc, ticker).floor_price(price)

    def rounded_lots(self, exc: str, ticker: str, amount: Number) -> Decimal:
        """``amount`` on the lot grid, rounded toward zero."""
        return self.spec(exc, ticker).round_qty(amount)

    def min_notional(self, exc: str, ticker: str) -> Decimal:
        return self.spec(exc, ticker).min_notional

    def price_precision(self, exc: str, ticker: str) -> int:
        return self.spec(exc, ticker).price_precision

    def lot_precision(self, exc: str, ticker: str) -> int:
        return self.spec(exc, ticker).quantity_precision

    def rand_cloid(self, exc: str, **kwargs: Any) -> str:
        """A new client order id: 32 hex digits, deterministic in replay."""
        return f"{next(self._cloids):032x}"

    # -- orders ------------------------------------------------------------------------

    async def limit_order(self, exc: str, ticker: str, amount: Number, price: Number,
                          round_to_specs: bool = False, tif: str = "GTC",
                          reduce_only: bool = False, cloid: str | None = None,
                          **kwargs: Any) -> str:
        """Send a limit order (``amount`` signed: positive buys); returns its cloid."""
        spec = self.spec(self._exc(exc), ticker)
        qty = spec.round_qty(amount) if round_to_specs else _dec(amount)
        px = spec.round_price(price) if round_to_specs else _dec(price)
        return await self._send(exc, ticker, qty, px, "limit", tif, reduce_only, cloid)

    async def market_order(self, exc: str, ticker: str, amount: Number,
                           round_to_specs: bool = False, reduce_only: bool = False,
                           cloid: str | None = None, **kwargs: Any) -> str:
        """Send a market order (walks the book in replay); returns its cloid."""
        spec = self.spec(self._exc(exc), ticker)
        qty = spec.round_qty(amount) if round_to_specs else _dec(amount)
        return await self._send(exc, ticker, qty, None, "market", "IOC", reduce_only, cloid)

    async def _send(self, exc: str, ticker: str, qty: Decimal, price: Decimal | None,
                    ord_type: str, tif: str, reduce_only: bool, cloid: str | None) -> str:
        if not qty:
            raise ConfigError(f"{exc}/{ticker}: order amount rounds to zero")
        cloid = cloid or self.rand_cloid(exc)
        tif = str(tif).upper()
        await self._orders[exc].upsert_order(
            exc=exc, cloid=cloid, ticker=ticker, amount=qty, price=price, tif=tif,
            ord_type=ord_type, reduce_only=reduce_only, ord_status=OrderStatus.PENDING,
            timestamp=self.venue.clock.ms())
        request = {"ticker": ticker, "cloid": cloid, "amount": qty, "price": price,
                   "tif": tif, "reduce_only": reduce_only, "ord_type": ord_type}
        await self.venue.submit(exc, request)
        return cloid

    async def cancel_order(self, exc: str, ticker: str | None = None, oid: str | None = None,
                           cloid: str | None = None) -> None:
        """Cancel by ``oid`` or ``cloid``; with neither, every live order of ``ticker``."""
        orders = self.orders_peek(exc)
        if oid is None and cloid is None:
            targets = orders.get_orders(ticker, copy=False)
        else:
            found = orders.cloid_query(cloid) if cloid else orders.oid_query(oid or "")
            targets = [found] if found is not None else []
        for order in targets:
            await self._cancel_one(exc, order)

    async def _cancel_one(self, exc: str, order: Order) -> None:
        if not order.is_alive() or order.cloid is None:
            return
        if order.ord_status is not OrderStatus.PENDING:
            await self._orders[exc].upsert_order(cloid=order.cloid,
                                                 ord_status=OrderStatus.CANCEL_PENDING)
        await self.venue.cancel(exc, order.ticker, order.cloid)

    # -- venue updates -----------------------------------------------------------------

    async def on_order_update(self, exc: str, update: dict[str, Any]) -> None:
        """Apply an order update from the venue (stale ones are dropped by ``Orders``)."""
        await self._orders[exc].upsert_order(exc=exc, **update)

    async def on_fill(self, exc: str, fill: dict[str, Any]) -> None:
        """Book a fill from the venue in the positions mirror."""
        qty = fill["dir"] * fill["size"]
        await self._positions[exc].update_position(
            fill["ticker"], fill_amount=qty, fill_entry=fill["price"], fee=fill["fee"])

    # -- clock -------------------------------------------------------------------------

    async def add_clock_callback(self, callback: Callable[[], Awaitable[Any] | Any],
                                 name: str = "CLOCK", interval_ms: float = 500) -> None:
        """Run ``callback()`` every ``interval_ms`` ms of venue (replay) time."""
        self.venue.add_timer(callback, interval_ms)

