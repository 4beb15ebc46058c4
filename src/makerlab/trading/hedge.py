"""Hedges: a maker order's fills hedged on another market, and the portfolio's delta.

``oms.hedge_order(maker_order, hedge_order, trigger_after_ms=0)``:

- **the legs**: ``maker_order`` holds :meth:`~makerlab.trading.oms.OMS.limit_order`'s
  keyword arguments; ``hedge_order`` names the hedge market (``exc``, ``ticker``) and
  optionally ``reduce_only``, or a ``price`` (then each hedge is an IOC limit order at
  it; else a market order) — never an ``amount``. Both markets are checked before the
  maker order is sent; the maker's cloid is returned.
- **each maker fill is hedged**: its size, in base units (times the maker market's
  contract size, divided by the hedge market's), is added with the opposite sign to the
  hedge market's balance, and the balance goes out as one taker order rounded toward zero
  to the hedge market's lot grid (nothing below its minimum quantity). What rounding
  leaves stays in the balance and goes with later fills — of any hedged maker order on
  that market.
- **trigger_after_ms** (quantpylib leaves it undocumented; this is makerlab's meaning):
  ``0`` hedges at each fill; otherwise the first fill not yet hedged starts a countdown of
  ``trigger_after_ms`` on the venue's clock, and everything accumulated by its end goes
  in one order (fewer, larger taker orders for a maker order filled in pieces).
- **what a hedge does not fill returns to the balance**: when a hedge order ends
  (rejected, expired, cancelled) its unfilled size is added back; a hedge refused before
  it is sent (risk, kill switch, rate limit) keeps its size in the balance. One lost in
  transit is not added back (the venue may have it; the reconciliation will tell).

``oms.hedge_portfolio_delta(hedge_on, default_on, by="base", ord_type="market", **kwargs)``
(undocumented in quantpylib; makerlab's meaning):

- **the delta is the net position per group across every tracked exchange**: ``by="base"``
  groups by base asset (in base units: amount times contract size), ``by="ticker"`` by
  symbol name. Only linear contracts are netted (an inverse one raises ConfigError).
- **each group is brought to zero on one market**: on ``hedge_on``, the group's market
  the OMS holds a position or orders in there, else the first market of the group's
  positions elsewhere whose symbol ``hedge_on`` also lists; failing that the same on
  ``default_on``; none is a ConfigError naming the group. The order is ``-net`` in that
  market's contracts, rounded toward zero to its lot (nothing sent if that is zero).
- **ord_type** ``"market"``: market orders (``kwargs``: ``reduce_only``); ``"limit"``: IOC
  limit orders at ``kwargs["prices"][group]``. The cloids sent are returned.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Protocol

from makerlab.core.clock import Clock
from makerlab.core.events import Fill, OrderUpdate
from makerlab.core.instruments import InstrumentSpec
from makerlab.core.orders import Orders, OrderStatus
from makerlab.core.positions import Positions
from makerlab.errors import ConfigError, OrderRejected, RateLimited
from makerlab.trading.checks import parsed
from makerlab.units import NS_PER_MS

__all__ = ["Hedger"]

log = logging.getLogger(__name__)

ZERO = Decimal(0)
Market = tuple[str, str]
_HEDGE_KEYS = frozenset({"exc", "ticker", "reduce_only", "price", "tif"})
_NOT_SENT = (OrderRejected, RateLimited)


class HedgeHost(Protocol):
    """What the :class:`Hedger` uses of the OMS."""

    exchanges: list[str]

    def spec(self, exc: str, ticker: str) -> InstrumentSpec: ...

    def orders_peek(self, exc: str) -> Orders: ...

    def positions_peek(self, exc: str) -> Positions: ...

    async def limit_order(self, exc: str, ticker: str, amount: Any, price: Any,
                          round_to_specs: bool = False, tif: str = "GTC",
                          reduce_only: bool = False, cloid: str | None = None) -> str: ...

    async def market_order(self, exc: str, ticker: str, amount: Any,
                           round_to_specs: bool = False, reduce_only: bool = False,
                           cloid: str | None = None) -> str: ...

    async def add_clock_callback(self, callback: Callable[[], Awaitable[object] | object],
                                 name: str = "CLOCK", interval_ms: float = 500) -> None: ...


@dataclass
class _Leg:
    """A hedged maker order: where its fills go."""

    market: Market
    ratio: Decimal  # maker contract size / hedge contract size
    trigger_ns: int


@dataclass
class _Sent:
    """A hedge order out: its signed size and what has filled."""

    market: Market
    amount: Decimal
    filled: Decimal = ZERO


class Hedger:
    """The OMS's hedges (rules in the module docstring)."""

    def __init__(self, oms: HedgeHost, clock: Clock) -> None:
        self._oms, self._clock = oms, clock
        self._legs: dict[Market, _Leg] = {}  # (maker exc, maker cloid)
        self._sent: dict[Market, _Sent] = {}  # (hedge exc, hedge cloid)
        self.balance: dict[Market, Decimal] = {}
        self._terms: dict[Market, dict[str, Any]] = {}
        self._due: dict[Market, int] = {}
        self._sweeps: set[int] = set()

    async def hedge_order(self, maker_order: Mapping[str, Any], hedge_order: Mapping[str, Any],
                          trigger_after_ms: float = 0) -> str:
        market, terms = self._hedge_terms(hedge_order)
        trigger = parsed(trigger_after_ms)
        if isinstance(trigger, str) or trigger < 0:
            raise ConfigError(f"hedge_order: trigger_after_ms={trigger_after_ms!r} must be "
                              "a number >= 0")
        maker = dict(maker_order)
        maker_spec = self._oms.spec(str(maker.get("exc")), str(maker.get("ticker")))
        ratio = maker_spec.contract_size / self._oms.spec(*market).contract_size
        trigger_ms = int(trigger)
        if trigger_ms and trigger_ms not in self._sweeps:
            await self._oms.add_clock_callback(self._sweep, f"hedge {trigger_ms} ms",
                                               trigger_ms)
            self._sweeps.add(trigger_ms)
        cloid = await self._oms.limit_order(**maker)
        self._terms[market] = terms
        self._legs[(maker_spec.exchange, cloid)] = _Leg(market, ratio,
                                                         trigger_ms * NS_PER_MS)
        return cloid

    def _hedge_terms(self, hedge_order: Mapping[str, Any]) -> tuple[Market, dict[str, Any]]:
        unknown = set(hedge_order) - _HEDGE_KEYS
        if "amount" in hedge_order or unknown:
            raise ConfigError(f"hedge_order: the hedge leg takes {sorted(_HEDGE_KEYS)}; got "
                              f"{sorted(unknown | ({'amount'} & set(hedge_order)))} (its "
                              "size comes from the maker's fills)")
        if "exc" not in hedge_order or "ticker" not in hedge_order:
            raise ConfigError("hedge_order: the hedge leg needs 'exc' and 'ticker'")
        market = (str(hedge_order["exc"]), str(hedge_order["ticker"]))
        self._oms.spec(*market)  # an unknown market raises here, before the maker is sent
        terms = {k: v for k, v in hedge_order.items() if k not in ("exc", "ticker")}
        return market, terms

    # -- venue events (the OMS forwards them after its mirrors) -------------------------

    async def on_fill(self, fill: Fill) -> None:
        if not self._legs and not self._sent:
            return  # no hedged order: nothing to count or hedge
        key = (fill.exchange, self._cloid(fill))
        sent = self._sent.get(key)
        if sent is not None:
            sent.filled += fill.size
        leg = self._legs.get(key)
        if leg is None:
            return
        self.balance[leg.market] = self.balance.get(leg.market, ZERO) - (
            fill.side * fill.size * leg.ratio)
        if not leg.trigger_ns:
            await self._flush(leg.market)
        else:
            self._due.setdefault(leg.market, self._clock.now_ns() + leg.trigger_ns)

    def _cloid(self, fill: Fill) -> str:
        if fill.cloid is not None:
            return fill.cloid
        order = self._oms.orders_peek(fill.exchange).oid_query(str(fill.oid))
        return str(order.cloid) if order is not None else ""

    async def on_order_update(self, update: OrderUpdate) -> None:
        if not self._legs and not self._sent:
            return  # no hedged order, nothing to settle (every update of an unhedged book)
        key = (update.exchange, update.cloid or "")
        if not update.status or OrderStatus.of(update.status).is_alive:
            return
        self._legs.pop(key, None)
        sent = self._sent.pop(key, None)
        if sent is not None:
            unfilled = abs(sent.amount) - sent.filled
            if unfilled > 0:
                sign = 1 if sent.amount > 0 else -1
                self.balance[sent.market] = self.balance.get(sent.market, ZERO) + (
                    sign * unfilled)

    async def _sweep(self) -> None:
        now = self._clock.now_ns()
        for market, due in list(self._due.items()):
            if due <= now:
                del self._due[market]
                await self._flush(market)

    async def _flush(self, market: Market) -> None:
        spec = self._oms.spec(*market)
        amount = spec.round_qty(self.balance.get(market, ZERO))
        if not amount or abs(amount) < spec.min_qty:
            return
        self.balance[market] -= amount
        try:
            cloid = await self._send(market, amount, self._terms.get(market, {}))
        except _NOT_SENT as error:
            self.balance[market] += amount
            log.warning("%s/%s hedge of %s not sent (%s); kept in the balance", *market,
                        amount, error)
            return
        self._sent[(market[0], cloid)] = _Sent(market, amount)

    async def _send(self, market: Market, amount: Decimal, terms: Mapping[str, Any]) -> str:
        reduce_only = bool(terms.get("reduce_only", False))
        if "price" in terms:
            return await self._oms.limit_order(*market, amount, terms["price"],
                                               tif=terms.get("tif", "IOC"),
                                               reduce_only=reduce_only)
        return await self._oms.market_order(*market, amount, reduce_only=reduce_only)

    # -- portfolio delta -----------------------------------------------------------------

    async def hedge_portfolio_delta(self, hedge_on: str, default_on: str, by: str = "base",
                                    ord_type: str = "market", **kwargs: Any) -> list[str]:
        if by not in ("base", "ticker") or ord_type not in ("market", "limit"):
            raise ConfigError(f"hedge_portfolio_delta: by={by!r} must be 'base' or 'ticker', "
                              f"ord_type={ord_type!r} 'market' or 'limit'")
        sent = []
        for group, (net, members) in self._nets(by).items():
            market = self._market_for(group, by, members, hedge_on) or self._market_for(
                group, by, members, default_on)
            if market is None:
                raise ConfigError(f"hedge_portfolio_delta: no market of {group} on "
                                  f"{hedge_on} or {default_on}")
            spec = self._oms.spec(*market)
            amount = spec.round_qty(-net / spec.contract_size)
            if amount:
                sent.append(await self._portfolio_order(market, amount, group, ord_type,
                                                        kwargs))
        return sent

    def _nets(self, by: str) -> dict[str, tuple[Decimal, list[Market]]]:
        nets: dict[str, tuple[Decimal, list[Market]]] = {}
        for exc in self._oms.exchanges:
            for ticker, position in self._oms.positions_peek(exc).as_dict().items():
                spec = self._oms.spec(exc, ticker)
                if spec.is_inverse:
                    raise ConfigError(f"hedge_portfolio_delta nets linear contracts; "
                                      f"{exc}/{ticker} is inverse")
                group = spec.base if by == "base" else ticker
                net, members = nets.get(group, (ZERO, []))
                nets[group] = (net + position["amount"] * spec.contract_size,
                               [*members, (exc, ticker)])
        return {g: v for g, v in nets.items() if v[0]}

    def _market_for(self, group: str, by: str, members: list[Market],
                    exc: str) -> Market | None:
        if exc not in self._oms.exchanges:
            return None
        held = {t for e, t in members if e == exc}
        held |= {str(o.ticker) for o in self._oms.orders_peek(exc).get_orders(copy=False)}
        for ticker in sorted(held) + [t for _, t in members]:
            if self._in_group(exc, ticker, group, by):
                return exc, ticker
        return None

    def _in_group(self, exc: str, ticker: str, group: str, by: str) -> bool:
        try:
            spec = self._oms.spec(exc, ticker)
        except ConfigError:
            return False
        return (spec.base if by == "base" else ticker) == group

    async def _portfolio_order(self, market: Market, amount: Decimal, group: str,
                               ord_type: str, kwargs: Mapping[str, Any]) -> str:
        if ord_type == "market":
            return await self._oms.market_order(*market, amount,
                                                reduce_only=kwargs.get("reduce_only", False))
        prices = kwargs.get("prices") or {}
        if group not in prices:
            raise ConfigError(f"hedge_portfolio_delta: ord_type='limit' needs "
                              f"prices[{group!r}]")
        return await self._oms.limit_order(*market, amount, prices[group], tif="IOC")
