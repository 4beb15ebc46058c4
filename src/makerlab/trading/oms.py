"""The order management system the strategy talks to, over the typed venue seam.

One :class:`OMS` serves replay and live, every line shared: it keeps the local
:class:`~makerlab.core.orders.Orders` and :class:`~makerlab.core.positions.Positions`
mirrors, rounds by the instrument's :class:`~makerlab.core.instruments.InstrumentSpec`,
inserts orders as PENDING and marks cancels CANCEL_PENDING, applies the venue's events,
checks risk and owns the kill switch. It depends only on
:class:`~makerlab.trading.protocols.OrderVenue`: the replay engine's
:class:`~makerlab.sim.venue.SimVenue` (``venue=``), or a live Gateway's
:class:`~makerlab.live.order_venue.LiveOrderVenue` (``OMS(gateway=...)`` takes
``gateway.order_venue()``). It sends :class:`~makerlab.trading.protocols.OrderRequest` /
``CancelRequest`` / ``AmendRequest`` and, attached as one
:class:`~makerlab.trading.protocols.OrderListener` among any others, receives
:class:`~makerlab.core.events.OrderUpdate` and :class:`~makerlab.core.events.Fill` events.
On a live venue (a :class:`~makerlab.trading.protocols.ConnectedVenue`) ``init()`` also
starts the live session (:mod:`makerlab.trading.session`: initial snapshots, periodic
reconciliation (:mod:`makerlab.trading.reconcile`), pending timeouts, the dead-man
switch, stream health, exit handling).

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
- **risk is checked before anything is recorded**: the kill switch and the
  :class:`~makerlab.trading.risk.RiskLimits` (``risk=``) refuse an order or amend with an
  ``OrderRejected`` whose ``code`` names the rule (:mod:`makerlab.trading.risk`); cancels
  are never refused.
- **client order ids are unique**: a ``cloid`` the orders mirror holds (alive) or
  remembers as closed (the newest ``max_tombstones`` of them) is refused
  (``OrderRejected``, code ``-4015``): updates for it could not be told apart.
  ``rand_cloid`` never returns one. ``limit_order``/``market_order`` insert the order as
  PENDING (timestamp: local send time in ms) before the request leaves, and return its
  cloid.
- **a request that does not leave rejects its order**: if ``venue.submit`` raises, the
  order, unless the venue has reported it meanwhile, is marked REJECTED with
  ``reject_reason="submit failed: <error>"`` (its handlers see it) and the error
  propagates to the caller, so no order waits PENDING for an answer that may never come.
  A failure in transit (connection lost, timeout, a 5xx) leaves the order doubtful: the
  venue's first news of it revives it as the venue reports it
  (:mod:`makerlab.trading.reconcile`); a refusal before sending (rate limit, credentials)
  does not.
- **rounding comes from the spec**: with ``round_to_specs=True`` the amount is rounded
  toward zero to the lot grid and the price to the nearest tick; otherwise they are sent
  as given (and a venue may reject them). A market's spec is asked of the venue once and
  kept (venues keep it fixed: :class:`~makerlab.trading.protocols.OrderVenue`).
- **cancels are pending until confirmed**: ``cancel_order`` sends the cancel, then marks
  an acknowledged order CANCEL_PENDING; only the venue's events end it. A PENDING order
  stays PENDING: its ACK (or REJECT), then the CANCEL_ACK or the cancel's refusal, resolve
  it, so it is never left PENDING or CANCEL_PENDING once the venue has answered. If the
  send raises, nothing is marked and the error propagates. Without ``oid``/``cloid`` it
  cancels every live order of the ticker (of the exchange, without a ticker);
  ``cancel_open_orders`` asks the venue to cancel everything open, known to the mirror
  or not.
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
  booked once, with the instrument's accounting; a fill a position correction already
  counted is not booked again). Positions a live stream reports are kept as the venue's
  latest word, not applied: fills move the mirror, snapshots correct it. Events of
  exchanges this OMS does not track are ignored.
- **handlers fire on every change**: ``orders_mirror``/``positions_mirror`` register the
  tutorial's ``on_delta`` (each changed order's dict; each position delta) and
  ``on_update`` (the whole page after the change: live orders as dicts; non-zero
  positions by ticker).
- **a strategy callback that raises trips the kill switch**: the handlers above, clock
  callbacks and hedges run guarded: the exception trips the kill switch (exception) and
  is raised again to their caller (a live venue logs it and keeps its stream).
- **the kill switch cancels everything** (``kill()``, and the triggers in
  :mod:`makerlab.trading.risk`): order entry is refused at once; requests in flight are
  awaited; every exchange gets a cancel-all and the mirror's acknowledged live orders
  are marked CANCEL_PENDING; live, the venue's dead-man switch is armed as a backstop and
  the orders are reconciled at once (a snapshot, then a query of each order the snapshot
  lacks), so the mirror shows what the venue holds. While tripped, an order the mirror
  learns is live (a late acknowledgement, a snapshot row) is cancelled at once.
  ``rearm()`` allows order entry again (refused while a private stream is down).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import itertools
import logging
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from decimal import Decimal
from typing import Any

from makerlab.core.callbacks import run_handlers
from makerlab.core.events import (
    BalanceState,
    FeedStatus,
    Fill,
    OrderEventKind,
    OrderUpdate,
    PositionState,
    kept_available,
)
from makerlab.core.instruments import InstrumentSpec
from makerlab.core.orders import DeltaHandler, Order, Orders, OrderStatus
from makerlab.core.positions import (
    Accounting,
    PositionDeltaHandler,
    Positions,
    accounting_for,
)
from makerlab.errors import ConfigError, ConnectionLost, VenueError
from makerlab.trading.checks import (
    DUPLICATE_CLOID,
    MAX_ORDER_NUMBER,
    UNKNOWN_ORDER,
    Number,
    flag,
    number,
    parsed,
    refuse,
)
from makerlab.trading.checks import tif as checked_tif
from makerlab.trading.hedge import Hedger
from makerlab.trading.protocols import (
    AmendRequest,
    CancelRequest,
    ConnectedVenue,
    FailureReporting,
    OrderRequest,
    OrderVenue,
    RateBudget,
    VenueTimers,
)
from makerlab.trading.reconcile import Reconciler, venue_orders_dict
from makerlab.trading.risk import KillReason, KillSwitch, Risk, RiskLimits
from makerlab.trading.session import LiveSession

__all__ = ["MAX_ORDER_NUMBER", "OMS"]

log = logging.getLogger(__name__)

_MAX_FLOAT = float(MAX_ORDER_NUMBER)
_ROUNDED_MAX = 1 << 16  # prices rounded_price remembers (then it starts again)
_DRAIN_S = 30.0  # longest wait for requests in flight when the kill switch trips
_NOTES = (OrderEventKind.CANCEL_REJECT, OrderEventKind.AMEND_REJECT)
_MARGIN_ASSETS = ("USDT", "USDC", "USD")  # get_balance's margin asset when no market says


class OMS:
    """Orders, positions, balances, contract rules, risk and the kill switch (the
    tutorial's OMS surface; rules in the module docstring).

    Args:
        gateway: a live :class:`~makerlab.live.gateway.Gateway` (after its
            ``init_clients()``): the OMS trades on ``gateway.order_venue()``.
        exchanges: exchanges to track (default: every exchange of the venue).
        venue: the :class:`~makerlab.trading.protocols.OrderVenue` (replay passes its
            SimVenue); the OMS attaches itself to it as a listener.
        risk: the :class:`~makerlab.trading.risk.RiskLimits` to enforce (default: none,
            the kill switch only).
        pending_timeout: ms an order may go without venue news before it is queried
            (live).
        refresh_orders_snapshot, refresh_positions_snapshot: seconds between REST
            reconciliations (live).
    """

    def __init__(self, gateway: Any = None, exchanges: list[str] | None = None, *,
                 venue: OrderVenue | None = None, risk: RiskLimits | None = None,
                 pending_timeout: float = 5000, refresh_orders_snapshot: float = 60,
                 refresh_positions_snapshot: float = 60) -> None:
        venue = venue if venue is not None else _venue_of(gateway)
        self.gateway, self.venue = gateway, venue
        self.options = {"pending_timeout": _period("pending_timeout", pending_timeout),
                        "refresh_orders_snapshot": _period("refresh_orders_snapshot",
                                                           refresh_orders_snapshot),
                        "refresh_positions_snapshot": _period("refresh_positions_snapshot",
                                                              refresh_positions_snapshot)}
        self.exchanges = list(exchanges or venue.exchanges())
        _check_tracked(self.exchanges, venue)
        self._orders = {exc: Orders() for exc in self.exchanges}
        self._specs: dict[tuple[str, str], InstrumentSpec] = {}
        self._rounded: dict[tuple[str, str, float], Decimal] = {}  # rounded_price's memo
        self._positions = {exc: Positions(accounting=_accounting_of(venue, exc))
                           for exc in self.exchanges}
        self.balances: dict[str, list[BalanceState]] = {}
        self._cloids = itertools.count(1)
        self.kill_switch = KillSwitch(venue.clock)
        self.limits = risk or RiskLimits()
        self.risk = Risk(self.limits, self, venue.clock, self._budget, self._breach)
        self.hedger = Hedger(self, venue.clock)
        self._sending = 0
        self._idle = asyncio.Event()
        self._idle.set()
        self._live = venue if isinstance(venue, ConnectedVenue) else None
        self.reconciler: Reconciler | None = None
        self.session: LiveSession | None = None
        self.page: Any = None  # the monitoring page, once serve_page() started it
        self._closed = False
        venue.attach(self)
        venue.attach(self.risk)

    def __repr__(self) -> str:
        return f"OMS({', '.join(self.exchanges)}; {self.kill_switch!r})"

    async def init(self) -> None:
        """Start mirroring: on a live venue, the session (module docstring); nothing to
        start in replay."""
        if self._live is None or self.session is not None:
            return
        self.reconciler = Reconciler(self._live, self._orders, self._positions,
                                     self.balances, self.venue.clock,
                                     self.options["pending_timeout"], self._cancel_one,
                                     self._learnt_live)
        self.session = LiveSession(
            self._live, self.exchanges, self.reconciler, self.kill_switch, self.trip,
            self.risk.check_positions, self._close_gateway,
            refresh_orders_s=self.options["refresh_orders_snapshot"],
            refresh_positions_s=self.options["refresh_positions_snapshot"],
            pending_timeout_ms=self.options["pending_timeout"],
            dead_man_ms=self.limits.dead_man_ms)
        source = getattr(self.gateway, "market_data", None)
        if source is not None and isinstance(source(), FailureReporting):
            source().add_failure_handler(self.session.failed)
        await self.session.start()

    async def serve_page(self, feed: Any = None, **options: Any) -> Any:
        """Serve the monitoring page of this OMS (and ``feed``'s books and health) until
        :meth:`cleanup`; ``options`` are :class:`~makerlab.monitor.PageConfig`'s
        (``port``, ``host``, ``token``, ...). Returns the running
        :class:`~makerlab.monitor.Monitor` (its ``url``); ConfigError if one is running."""
        from makerlab.monitor import Monitor

        if self.page is not None:
            raise ConfigError(f"the monitoring page is already served at {self.page.url}")
        self.page = await Monitor(self, feed, **options).start()
        return self.page

    async def cleanup(self) -> None:
        """Live: cancel everything (the kill switch, exit) and stop the session (once).
        Nothing to stop in replay. Stops the monitoring page, if served."""
        if self.page is not None:
            page, self.page = self.page, None
            await page.stop()
        if self.session is None or self._closed:
            return
        self._closed = True
        exited, self.session.stopping = self.session.stopping, True
        if not exited:  # else the exit guard or SIGTERM has cancelled everything
            await self.trip(KillReason.EXIT, "oms.cleanup()")
        await self.session.stop()

    async def _close_gateway(self) -> None:
        cleanup = getattr(self.gateway, "cleanup_clients", None)
        if cleanup is not None:
            with _logged("closing the Gateway at SIGTERM"):
                await cleanup()

    async def on_close(self) -> None:
        """The live venue is closing (the Gateway's ``cleanup_clients()``): clean up first."""
        await self.cleanup()

    @property
    def _live_venue(self) -> ConnectedVenue:
        if self._live is None:
            raise ConfigError("this needs a live venue (OMS(gateway=...)); the replayed "
                              "venue has no REST account")
        return self._live

    # -- kill switch -------------------------------------------------------------------

    async def kill(self, detail: str = "oms.kill()") -> None:
        """Trip the kill switch by hand (see the module docstring)."""
        await self.trip(KillReason.MANUAL, detail)

    def rearm(self) -> None:
        """Allow order entry again after the kill switch (refused while a private stream
        is down: the mirror cannot be trusted)."""
        if self.session is not None and self.session.down:
            raise ConfigError(f"cannot re-arm: the private stream of "
                              f"{', '.join(sorted(self.session.down))} is down")
        self.kill_switch.release()

    async def trip(self, reason: KillReason, detail: str) -> None:
        """Engage the kill switch and cancel everything (module docstring)."""
        if self.kill_switch.engage(reason, detail) or reason is KillReason.EXIT:
            await self._cancel_everything()

    async def _trip_soon(self, reason: KillReason, detail: str) -> None:
        """Trip from inside a venue's delivery: engage now; live, cancel in an owned task
        (the delivery goes on), in replay at once."""
        if self.session is None:
            await self.trip(reason, detail)
        elif self.kill_switch.engage(reason, detail):
            self.session.spawn(self._cancel_everything(), "makerlab-oms-kill")

    async def _breach(self, detail: str) -> None:
        await self._trip_soon(KillReason.LIMIT, detail)

    async def _cancel_everything(self) -> None:
        await self._drain()
        for exc in self.exchanges:
            try:
                await self.venue.cancel_all(exc)
            except (VenueError, ConfigError) as error:
                log.error("%s: cancel-all failed (%s)", exc, error)
            await self._mark_cancelling(exc)
        if self.session is not None and self.reconciler is not None:
            await self.session.arm_dead_man()
            for exc in self.exchanges:
                with _logged(f"{exc}: reconciliation after the kill switch"):
                    await self.reconciler.orders(exc, force=True)

    async def _drain(self) -> None:
        try:
            await asyncio.wait_for(self._idle.wait(), _DRAIN_S)
        except TimeoutError:
            log.error("kill switch: requests still in flight after %s s", _DRAIN_S)

    async def _mark_cancelling(self, exc: str) -> None:
        for order in list(self._orders[exc].get_orders(copy=False)):
            if order.ord_status in (OrderStatus.NEW, OrderStatus.PARTIAL):
                await self._orders[exc].mark_cancel_pending(order)

    # -- local state -------------------------------------------------------------------

    def _exc(self, exc: str) -> str:
        if exc not in self._orders:
            raise ConfigError(f"exchange {exc!r} is not tracked; tracked: {self.exchanges}")
        return exc

    def orders_peek(self, exc: str) -> Orders:
        """The maintained open-orders container of ``exc``."""
        orders = self._orders.get(exc)
        return orders if orders is not None else self._orders[self._exc(exc)]

    def positions_peek(self, exc: str) -> Positions:
        """The maintained positions container of ``exc``."""
        return self._positions[self._exc(exc)]

    def orders_mirror(self, exc: str, on_update: Callable[[list[dict[str, Any]]], object]
                      | None = None, on_delta: DeltaHandler | None = None) -> Orders:
        """The live orders of ``exc``; ``on_delta(order_dict)`` after each change of an
        order, ``on_update(open_orders)`` (dicts of the live orders) after every change."""
        orders = self.orders_peek(exc)
        if on_delta is not None:
            orders.add_delta_handler(self._guarded(on_delta, "orders on_delta"))
        if on_update is not None:
            orders.add_delta_handler(self._guarded(_page_handler(
                on_update, lambda: [o.as_dict() for o in orders.get_orders(copy=False)]),
                "orders on_update"))
        return orders

    def positions_mirror(self, exc: str,
                         on_update: Callable[[dict[str, dict[str, Any]]], object] | None = None,
                         on_delta: PositionDeltaHandler | None = None) -> Positions:
        """The live positions of ``exc``; ``on_delta(delta)`` after each change of a
        position, ``on_update(positions)`` (non-zero ones by ticker) after every change."""
        positions = self.positions_peek(exc)
        if on_delta is not None:
            positions.add_delta_handler(self._guarded(on_delta, "positions on_delta"))
        if on_update is not None:
            positions.add_delta_handler(self._guarded(
                _page_handler(on_update, positions.as_dict), "positions on_update"))
        return positions

    def _guarded(self, callback: Callable[..., object], name: str
                 ) -> Callable[..., Awaitable[None]]:
        """``callback``, awaited if async; an exception trips the kill switch and is
        raised again."""
        async def guarded(*args: object) -> None:
            try:
                await run_handlers((callback,), *args)
            except Exception as error:
                await self._trip_soon(KillReason.EXCEPTION, f"{name} raised {error!r}")
                raise
        return guarded

    def get_position(self, exc: str, ticker: str) -> Decimal:
        """Signed position of ``ticker`` on ``exc`` from the local mirror."""
        return self.positions_peek(exc).get_ticker_amount(ticker)

    def oid_query(self, exc: str, oid: str) -> Order | None:
        return self.orders_peek(exc).oid_query(oid)

    def cloid_query(self, exc: str, cloid: str) -> Order | None:
        return self.orders_peek(exc).cloid_query(cloid)

    def positions_get_by_base(self) -> dict[str, dict[str, dict[str, Decimal]]]:
        """Mirrored non-zero positions by base asset: ``{base: {"<exc>/<ticker>": amount
        in base units}}`` (linear contracts: amount times contract size)."""
        out: dict[str, dict[str, dict[str, Decimal]]] = {}
        for exc in self.exchanges:
            for ticker, position in self._positions[exc].as_dict().items():
                spec = self.spec(exc, ticker)
                out.setdefault(spec.base, {})[f"{exc}/{ticker}"] = {
                    "amount": position["amount"] * spec.contract_size}
        return out

    def positions_get_net_base(self) -> dict[str, Decimal]:
        """Net position per base asset across every tracked exchange, in base units."""
        return {base: sum((p["amount"] for p in legs.values()), Decimal(0))
                for base, legs in self.positions_get_by_base().items()}

    # -- the venue's account (REST on a live venue) --------------------------------------

    async def orders_get(self, exc: str) -> dict[str, dict[str, Any]]:
        """The venue's open orders of ``exc`` now: ``{oid: {amount, cloid, filled_sz, oid,
        ord_status, price, ticker, timestamp}}`` (timestamp in ms)."""
        return venue_orders_dict(await self.venue.open_orders(self._exc(exc)))

    async def orders_get_all(self) -> dict[str, dict[str, dict[str, Any]]]:
        return {exc: await self.orders_get(exc) for exc in self.exchanges}

    async def positions_get(self, exc: str) -> dict[str, dict[str, Any]]:
        """The venue's positions of ``exc`` now: ``{ticker: {amount, entry, ticker,
        unrealized_pnl, value}}`` (value: ``amount x entry + unrealized_pnl``, linear)."""
        states = await self.venue.positions(self._exc(exc))
        return {p.symbol: _position_dict(p) for p in states if p.amount}

    async def positions_get_all(self) -> dict[str, dict[str, dict[str, Any]]]:
        return {exc: await self.positions_get(exc) for exc in self.exchanges}

    async def get_balance(self, exc: str) -> dict[str, float]:
        """The venue account of ``exc`` in its margin asset: ``equity_total`` and
        ``margin_total`` (wallet plus unrealised PnL), ``equity_withdrawable``,
        ``unrealized_pnl`` and ``notional_position`` (net signed value of the positions at
        the venue's marks, ``amount x entry + unrealised PnL``: linear contracts)."""
        balance = self.margin_balance(exc, await self.venue.balances(self._exc(exc)))
        positions = await self.venue.positions(exc)
        notional = sum((p.amount * p.entry_price + p.unrealized_pnl for p in positions),
                       Decimal(0))
        available = balance.available if balance.available is not None else float("nan")
        return {"equity_total": float(balance.equity), "margin_total": float(balance.equity),
                "equity_withdrawable": float(available),
                "notional_position": float(notional),
                "unrealized_pnl": float(balance.equity - balance.wallet)}

    def margin_balance(self, exc: str, rows: Sequence[BalanceState]) -> BalanceState:
        """The row of ``exc``'s margin asset among balances the venue reported (one per
        asset on Binance, Bybit, WOO X; e.g. :attr:`balances`): the only row, else the one
        in the quote asset of a market of ``exc`` the OMS has used, else in USDT, USDC or
        USD, in that order.

        Raises:
            VenueError: none of those assets is among ``rows``.
        """
        if len(rows) == 1:
            return rows[0]
        quotes = [spec.quote for (e, _), spec in self._specs.items() if e == exc]
        by_asset = {b.asset: b for b in rows}
        for asset in (*quotes, *_MARGIN_ASSETS):
            if asset in by_asset:
                return by_asset[asset]
        raise VenueError(f"get_balance: no balance in a margin asset "
                         f"({', '.join(dict.fromkeys((*quotes, *_MARGIN_ASSETS)))}) among "
                         f"{sorted(by_asset) or 'none'}", venue=exc)

    async def get_all_balances(self) -> dict[str, dict[str, float]]:
        """:meth:`get_balance` of every tracked exchange."""
        return {exc: await self.get_balance(exc) for exc in self.exchanges}

    async def get_all_equities(self) -> dict[str, float]:
        """``equity_total`` of every tracked exchange."""
        return {exc: balance["equity_total"]
                for exc, balance in (await self.get_all_balances()).items()}

    async def get_funding_info(self, exc: str, ticker: str) -> dict[str, Any]:
        """The venue's funding of ``ticker``: ``{funding_rate, funding_interval (ms),
        next_funding (epoch ms), mark_price}`` (live venues)."""
        state = await self._live_venue.funding(self._exc(exc), ticker)
        return {"funding_rate": state.rate, "funding_interval": state.interval_ns // 10**6,
                "next_funding": state.next_ts // 10**6, "mark_price": state.mark_price}

    # -- contract rules ----------------------------------------------------------------

    def spec(self, exc: str, ticker: str) -> InstrumentSpec:
        """The venue's spec of ``exc``/``ticker`` (kept once given: it is fixed)."""
        spec = self._specs.get((exc, ticker))
        if spec is None:
            spec = self._specs[(exc, ticker)] = self.venue.spec(exc, ticker)
        return spec

    def contract_specs(self, exc: str, ticker: str) -> dict[str, Any]:
        """``{base_asset, quote_asset, min_notional, price_precision, quantity_precision,
        tick_size, lot_size, min_qty}``."""
        return self.spec(exc, ticker).as_dict()

    def get_base_asset(self, exc: str, ticker: str) -> str:
        return self.spec(exc, ticker).base

    def get_quote_asset(self, exc: str, ticker: str) -> str:
        return self.spec(exc, ticker).quote

    def rounded_price(self, exc: str, ticker: str, price: Number) -> Decimal:
        """``price`` on the tick grid (nearest tick)."""
        if isinstance(price, float):  # numpy's float64 is a float too
            key = (exc, ticker, price)  # quotes repeat: a memo, the spec being fixed
            found = self._rounded.get(key)
            if found is None and 0.0 < price < _MAX_FLOAT:  # a sane number: no Decimal yet
                if len(self._rounded) >= _ROUNDED_MAX:
                    self._rounded.clear()
                found = self._rounded[key] = self.spec(exc, ticker).round_price(float(price))
            if found is not None:
                return found
        where = f"{exc}/{ticker} rounded_price"
        return self.spec(exc, ticker).round_price(number(where, "price", price))

    def rounded_ceil_price(self, exc: str, ticker: str, price: Number) -> Decimal:
        where = f"{exc}/{ticker} rounded_ceil_price"
        return self.spec(exc, ticker).ceil_price(number(where, "price", price))

    def rounded_floor_price(self, exc: str, ticker: str, price: Number) -> Decimal:
        where = f"{exc}/{ticker} rounded_floor_price"
        return self.spec(exc, ticker).floor_price(number(where, "price", price))

    def rounded_lots(self, exc: str, ticker: str, amount: Number) -> Decimal:
        """``amount`` on the lot grid, rounded toward zero."""
        where = f"{exc}/{ticker} rounded_lots"
        return self.spec(exc, ticker).round_qty(number(where, "amount", amount))

    def min_notional(self, exc: str, ticker: str) -> Decimal:
        return self.spec(exc, ticker).min_notional

    def price_precision(self, exc: str, ticker: str) -> int:
        return self.spec(exc, ticker).price_precision

    def lot_precision(self, exc: str, ticker: str) -> int:
        return self.spec(exc, ticker).quantity_precision

    def common_lot_precision(self, ex1: str, ticker1: str, ex2: str, ticker2: str) -> int:
        """The coarser lot precision of two markets (a size both can trade)."""
        return min(self.lot_precision(ex1, ticker1), self.lot_precision(ex2, ticker2))

    def common_price_precision(self, ex1: str, ticker1: str, ex2: str, ticker2: str) -> int:
        """The coarser price precision of two markets."""
        return min(self.price_precision(ex1, ticker1), self.price_precision(ex2, ticker2))

    def common_min_notional(self, ex1: str, ticker1: str, ex2: str, ticker2: str) -> Decimal:
        """The larger minimum notional of two markets."""
        return max(self.min_notional(ex1, ticker1), self.min_notional(ex2, ticker2))

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

        Raises :class:`~makerlab.errors.OrderRejected` for an argument or a limit the
        module docstring's rules refuse (nothing is sent), and whatever ``venue.submit``
        raises (the order is then REJECTED).
        """
        where = f"{exc}/{ticker} limit_order"
        qty = self._amount(where, exc, ticker, amount, round_to_specs)
        px = self._price(where, exc, ticker, price, round_to_specs)
        time_in_force = checked_tif(where, tif)
        only_reduce = flag(where, "reduce_only", reduce_only)
        return await self._send(where, OrderRequest(
            exc, ticker, self._new_cloid(where, exc, cloid), qty, px, "limit", time_in_force,
            only_reduce))

    async def market_order(self, exc: str, ticker: str, amount: Number,
                           round_to_specs: bool = False, reduce_only: bool = False,
                           cloid: str | None = None) -> str:
        """Send a market order (walks the book in replay); returns its cloid.

        Raises as :meth:`limit_order` does.
        """
        where = f"{exc}/{ticker} market_order"
        qty = self._amount(where, exc, ticker, amount, round_to_specs)
        only_reduce = flag(where, "reduce_only", reduce_only)
        return await self._send(where, OrderRequest(
            exc, ticker, self._new_cloid(where, exc, cloid), qty, None, "market", "IOC",
            only_reduce))

    def _amount(self, where: str, exc: str, ticker: str, amount: object,
                round_to_specs: object) -> Decimal:
        """The checked signed amount, on the lot grid with ``round_to_specs`` (an unknown
        exchange or market raises ConfigError here, before anything is recorded)."""
        spec = self.spec(self._exc(exc), ticker)
        qty = number(where, "amount", amount)
        if flag(where, "round_to_specs", round_to_specs):
            qty = spec.round_qty(qty)
            if not qty:
                raise refuse(where, "amount", amount,
                             f"rounds to zero on the lot grid (lot {spec.lot_size})")
        if not qty:
            raise refuse(where, "amount", amount, "must not be zero")
        return qty

    def _price(self, where: str, exc: str, ticker: str, price: object,
               round_to_specs: bool) -> Decimal:
        """The checked limit price, on the tick grid with ``round_to_specs``."""
        px = number(where, "price", price)
        if round_to_specs:
            px = self.spec(exc, ticker).round_price(px)
        if px <= 0:
            raise refuse(where, "price", price, "must be > 0" + (
                " after rounding to the tick" if round_to_specs else ""))
        return px

    async def _send(self, where: str, request: OrderRequest) -> str:
        exc, cloid = request.exchange, request.cloid
        self.kill_switch.check(where)
        self.risk.check_order(where, exc, request.symbol, request.amount, request.price)
        await self._orders[exc].add_pending(
            exc, cloid, request.symbol, request.amount, request.price, request.tif,
            request.ord_type, request.reduce_only, self.venue.clock.ms())
        try:
            await self._request(exc, cloid, self.venue.submit(request))
        except Exception as error:
            await self._failed_send(request, error)
            raise
        return cloid

    async def _request(self, exc: str, cloid: str | None, call: Awaitable[None]) -> None:
        """Await a request, counted in flight (the kill switch waits for it; the
        reconciler leaves the order ``cloid`` alone meanwhile)."""
        self._sending += 1
        self._idle.clear()
        inflight = self.reconciler.inflight if self.reconciler is not None and cloid else None
        key = (exc, cloid or "")
        if inflight is not None:
            inflight[key] += 1
        try:
            await call
        finally:
            self._sending -= 1
            if not self._sending:
                self._idle.set()
            if inflight is not None:
                inflight[key] -= 1
                if not inflight[key]:
                    del inflight[key]

    async def _failed_send(self, request: OrderRequest, error: Exception) -> None:
        order = self._orders[request.exchange].cloid_query(request.cloid)
        if order is None or order.ord_status is not OrderStatus.PENDING:
            return  # the venue has reported it already: its word stands
        await self._orders[request.exchange].upsert_order(
            cloid=request.cloid, ord_status=OrderStatus.REJECTED,
            reject_reason=f"submit failed: {type(error).__name__}: {error}")
        if self.reconciler is not None and _in_transit(error):
            self.reconciler.doubt(request.exchange, request.symbol, request.cloid)

    def _new_cloid(self, where: str, exc: str, cloid: object) -> str:
        if cloid is None:
            return self.rand_cloid(exc)
        if not isinstance(cloid, str) or not cloid:
            raise refuse(where, "cloid", cloid, "must be a non-empty str")
        if self._orders[exc].cloid_known(cloid):
            raise refuse(where, "cloid", cloid, "is already used by an order of this "
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
        for order in list(targets):
            await self._cancel_one(exc, order)

    async def cancel_open_orders(self, exc: str, ticker: str | None = None) -> None:
        """Ask the venue to cancel every open order of ``exc`` (of ``ticker``), whether
        the mirror knows it or not; the mirror's acknowledged ones turn CANCEL_PENDING."""
        await self._request(self._exc(exc), None, self.venue.cancel_all(exc, ticker))
        for order in list(self._orders[exc].get_orders(ticker, copy=False)):
            if order.ord_status in (OrderStatus.NEW, OrderStatus.PARTIAL):
                await self._orders[exc].mark_cancel_pending(order)

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
            raise refuse(where, argument, ident,
                         "names no live order in the OMS: -2011 Unknown order sent.",
                         UNKNOWN_ORDER)
        return found

    async def _cancel_one(self, exc: str, order: Order) -> None:
        acknowledged = order.ord_status is not OrderStatus.PENDING
        await self._request(exc, order.cloid, self.venue.cancel(CancelRequest(
            exc, str(order.ticker), cloid=order.cloid, oid=None if order.cloid else order.oid)))
        if acknowledged and order.is_alive():
            await self._orders[exc].mark_cancel_pending(order)

    async def amend_order(self, exc: str, ticker: str, oid: str | None = None,
                          cloid: str | None = None, price: Number | None = None,
                          amount: Number | None = None, round_to_specs: bool = False) -> None:
        """Change a live order's price and/or signed ``amount`` (``None`` keeps it).

        The mirror changes when the venue acknowledges the amend (see the module
        docstring). Raises :class:`~makerlab.errors.OrderRejected` for an unknown order
        (``-2011``), a bad value, an amount of the other side, nothing to change or a
        limit the risk rules refuse.
        """
        where = f"{exc}/{ticker} amend_order"
        order = self._target(where, self._exc(exc), ticker, oid, cloid)
        px = None if price is None else self._price(where, exc, ticker, price,
                                                    flag(where, "round_to_specs",
                                                         round_to_specs))
        qty = None if amount is None else self._amount(where, exc, ticker, amount,
                                                        round_to_specs)
        if qty is not None and (qty > 0) != (order.amount > 0):
            raise refuse(where, "amount", amount, f"must keep the order's side "
                         f"(amount {order.amount})")
        if px is None and qty is None:
            raise refuse(where, "price", price, "and amount=None: nothing to amend")
        self.kill_switch.check(where)
        self.risk.check_amend(where, order, px, qty)
        await self._request(exc, order.cloid, self.venue.amend(AmendRequest(
            exc, ticker, cloid=order.cloid, oid=None if order.cloid else order.oid,
            price=px, amount=qty)))

    # -- hedges ------------------------------------------------------------------------

    async def hedge_order(self, maker_order: Mapping[str, Any], hedge_order: Mapping[str, Any],
                          trigger_after_ms: float = 0) -> str:
        """A maker order whose fills are hedged by taker orders on another market;
        returns the maker's cloid (rules in :mod:`makerlab.trading.hedge`)."""
        return await self.hedger.hedge_order(maker_order, hedge_order, trigger_after_ms)

    async def hedge_portfolio_delta(self, hedge_on: str, default_on: str, by: str = "base",
                                    ord_type: str = "market", **kwargs: Any) -> list[str]:
        """Bring the net position of each base asset across the tracked exchanges to zero
        on ``hedge_on`` (``default_on`` where ``hedge_on`` has no market for it); the
        cloids sent (rules in :mod:`makerlab.trading.hedge`)."""
        return await self.hedger.hedge_portfolio_delta(hedge_on, default_on, by, ord_type,
                                                       **kwargs)

    # -- venue events ------------------------------------------------------------------

    async def on_order_update(self, update: OrderUpdate) -> None:
        """Apply a venue's order event to the orders mirror (see the module rules)."""
        orders = self._orders.get(update.exchange)
        if orders is None:
            return
        if self.reconciler is not None:
            self.reconciler.revive(update)
        order = await orders.apply_update(update)
        await self.hedger.on_order_update(update)
        if order is not None and update.kind not in _NOTES:
            await self._learnt_live(update.exchange, order)

    async def _learnt_live(self, exc: str, order: Order) -> None:
        """While tripped, cancel an order the mirror learns is live (a late
        acknowledgement; a snapshot row or a query's answer, from the reconciler)."""
        if self.kill_switch.tripped and order.ord_status in (OrderStatus.NEW,
                                                             OrderStatus.PARTIAL):
            await self._cancel_one(exc, order)

    async def on_fill(self, fill: Fill) -> None:
        """Book a venue's fill in the positions mirror, once per trade id."""
        positions = self._positions.get(fill.exchange)
        if positions is None:
            return
        if self.reconciler is not None and self.reconciler.included(fill):
            return  # a position correction counted it already
        await positions.book_fill(fill)
        await self.hedger.on_fill(fill)

    async def on_position(self, position: PositionState) -> None:
        """A live stream's position: kept by the venue as its latest word (module rules)."""

    async def on_balance(self, balance: BalanceState) -> None:
        """A live stream's balance: the latest of its asset replaces the one held; one that
        does not state the available balance (``None``) keeps the one held (the last the
        venue stated: the REST snapshot's on Binance)."""
        rows = self.balances.get(balance.exchange, [])
        self.balances[balance.exchange] = [
            *(b for b in rows if b.asset != balance.asset), kept_available(balance, rows)]

    async def on_status(self, status: FeedStatus) -> None:
        """The private stream's health (live): see :mod:`makerlab.trading.session`."""
        if self.session is not None:
            await self.session.on_status(status)

    # -- clock -------------------------------------------------------------------------

    async def add_clock_callback(self, callback: Callable[[], Awaitable[object] | object],
                                 name: str = "CLOCK", interval_ms: float = 500) -> None:
        """Run ``callback()`` every ``interval_ms`` ms of the venue's clock (guarded: an
        exception trips the kill switch).

        Raises :class:`~makerlab.errors.ConfigError` if ``callback`` is not callable,
        ``interval_ms`` is not a positive number (as order amounts are checked) or the
        venue runs no timers (:class:`~makerlab.trading.protocols.VenueTimers`).
        """
        where = f"add_clock_callback {name!r}"
        interval = parsed(interval_ms)
        if isinstance(interval, str) or interval <= 0:
            problem = interval if isinstance(interval, str) else "must be > 0"
            raise ConfigError(f"{where}: interval_ms={interval_ms!r} {problem}")
        if not callable(callback):
            raise ConfigError(f"{where}: callback={callback!r} must be callable")
        if not isinstance(self.venue, VenueTimers):
            raise ConfigError(f"{where}: the venue {self.venue!r} runs no clock callbacks "
                              "(it has no add_timer)")
        self.venue.add_timer(self._guarded(callback, f"clock callback {name!r}"), interval)

    def _budget(self, exc: str) -> RateBudget | None:
        return self._live.rate_limits(exc) if self._live is not None else None


def _venue_of(gateway: Any) -> OrderVenue:
    if gateway is None or not hasattr(gateway, "order_venue"):
        raise ConfigError("OMS needs a live Gateway (OMS(gateway=...), after "
                          "`await gateway.init_clients()`) or a venue; in simulation use "
                          "the Replayer's get_oms()")
    venue: OrderVenue = gateway.order_venue()
    return venue


def _check_tracked(exchanges: list[str], venue: OrderVenue) -> None:
    known = venue.exchanges()
    missing = [exc for exc in exchanges if exc not in known]
    if missing:
        raise ConfigError(f"OMS: {', '.join(missing)} cannot take orders on {venue!r} "
                          f"(a live exchange needs 'key' and 'secret' in the Gateway "
                          f"config); its exchanges: {', '.join(known) or 'none'}")


def _period(name: str, value: object) -> float:
    checked = parsed(value)
    if isinstance(checked, str) or checked <= 0:
        raise ConfigError(f"OMS: {name}={value!r} must be a positive number")
    return float(checked)


def _in_transit(error: Exception) -> bool:
    """A send that failed after it may have reached the venue."""
    return isinstance(error, ConnectionLost) or (
        isinstance(error, VenueError) and "outcome unknown" in str(error))


def _position_dict(p: PositionState) -> dict[str, Any]:
    return {"amount": p.amount, "entry": p.entry_price, "ticker": p.symbol,
            "unrealized_pnl": p.unrealized_pnl,
            "value": p.amount * p.entry_price + p.unrealized_pnl}


def _accounting_of(venue: OrderVenue, exc: str) -> Callable[[str], Accounting]:
    """Each ticker's accounting on ``exc``, from the venue's spec (asked once)."""
    return functools.cache(lambda ticker: accounting_for(venue.spec(exc, ticker)))


def _page_handler(on_update: Callable[[Any], object], page: Callable[[], Any]
                  ) -> Callable[[object], Awaitable[None]]:
    """A delta handler that calls ``on_update(page())``, awaiting it if it is async."""
    async def handler(_: object) -> None:
        await run_handlers((on_update,), page())

    return handler


@contextlib.contextmanager
def _logged(what: str) -> Iterator[None]:
    """Log (and swallow) a venue failure of a best-effort step."""
    try:
        yield
    except (VenueError, ConfigError) as error:
        log.error("%s failed: %s", what, error)
