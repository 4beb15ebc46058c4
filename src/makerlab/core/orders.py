"""Orders and the open-orders container shared by live mirroring and replay.

An :class:`Order` carries the tutorial OMS's fields; its signed ``amount`` is the side
(positive buys, negative sells) and sizes/prices are :class:`~decimal.Decimal`. The
:class:`Orders` container keeps the live orders of one account, answers the quoting
queries strategies make on every tick (``get_bid_orders``, ``pending_asks``, ...) and
applies updates through :meth:`Orders.upsert_order` (fields by name, the tutorial's call) or
:meth:`Orders.apply_update` (a venue's typed :class:`~makerlab.core.events.OrderUpdate`),
which refuse stale or out-of-order updates. Times are epoch **milliseconds**.

Lifecycle::

    PENDING ──> NEW ──> PARTIAL ──> FILLED
       │         │  ╲      │
       │         │   ╲     ├──> CANCEL_PENDING ──> CANCELLED
       │         │    ╲    │         (back to NEW/PARTIAL if the cancel fails)
       └─────────┴─────┴───┴──> REJECTED / CANCELLED

``PENDING`` (sent, not acknowledged) and ``CANCEL_PENDING`` (cancel sent) are local
states; the others come from the exchange. ``FILLED``, ``CANCELLED`` and ``REJECTED`` are
dead: nothing ever leaves them.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, fields
from decimal import Decimal
from enum import StrEnum
from operator import attrgetter
from typing import Any

from makerlab.core.callbacks import run_handlers
from makerlab.core.decimals import to_decimal
from makerlab.core.events import OrderEventKind, OrderUpdate
from makerlab.errors import ConfigError
from makerlab.units import NS_PER_MS

__all__ = ["POST_ONLY", "TIFS", "DeltaHandler", "Order", "OrderStatus", "Orders"]

#: Post-only times in force: rejected rather than filled if they would take liquidity.
POST_ONLY = frozenset({"GTX", "ALO", "POST_ONLY"})
#: Every time in force the OMS accepts and the simulated venue implements (upper case).
TIFS = frozenset({"GTC", "IOC", "FOK", *POST_ONLY})


class OrderStatus(StrEnum):
    """Order states; the value is the upper-case name (``CREATE_PENDING`` reads as PENDING)."""

    PENDING = "PENDING"
    NEW = "NEW"
    PARTIAL = "PARTIAL"
    FILLED = "FILLED"
    CANCEL_PENDING = "CANCEL_PENDING"
    CANCELLED = "CANCELLED"
    REJECTED = "REJECTED"

    @classmethod
    def _missing_(cls, value: object) -> OrderStatus | None:
        text = str(value).upper()
        if text == "CREATE_PENDING":
            return cls.PENDING
        return cls.__members__.get(text)

    @classmethod
    def of(cls, value: str) -> OrderStatus:
        """``OrderStatus(value)``, an exact value found without the enum's call (venue
        updates carry the status as its value)."""
        found = _BY_VALUE.get(value) if type(value) is str else None
        return found if found is not None else cls(value)

    @property
    def is_alive(self) -> bool:
        """True for states in which the order may still trade."""
        return self not in _DEAD

    @property
    def is_local(self) -> bool:
        """True for the states set by us rather than reported by the exchange."""
        return self in (OrderStatus.PENDING, OrderStatus.CANCEL_PENDING)


_BY_VALUE = {status.value: status for status in OrderStatus}
_DEAD = frozenset({OrderStatus.FILLED, OrderStatus.CANCELLED, OrderStatus.REJECTED})
_DEAD_OR_PENDING = _DEAD | {OrderStatus.PENDING}
_OPEN = frozenset({OrderStatus.NEW, OrderStatus.PARTIAL})


_DECIMAL_OR_NONE = (Decimal, type(None))


def _dec(value: Any) -> Decimal | None:
    """``value`` as a Decimal (:func:`~makerlab.core.decimals.to_decimal`), ``None`` kept."""
    return None if value is None else to_decimal(value)


@dataclass(slots=True)
class Order:
    """One order, as the tutorial OMS reports it.

    Attributes:
        exc: exchange name.
        oid: exchange order id; ``None`` until acknowledged.
        cloid: client order id.
        ticker: instrument symbol.
        amount: signed order size; positive buys, negative sells.
        price: limit price, ``None`` for market orders.
        tif: time in force (``GTC``, ``IOC``, ``FOK``, ``ALO``, ...).
        ord_type: ``limit``, ``market``, ...
        reduce_only: whether the order may only reduce the position.
        ord_status: an :class:`OrderStatus`.
        filled_sz: cumulative filled size, non-negative.
        last_fill_sz: size of the latest fill (the increase of ``filled_sz``).
        timestamp: time of the latest update in ms; exchange time once acknowledged.
        avg_fill_price: size-weighted average price of the fills so far.
        reject_reason: why the exchange rejected the order, or (on an order still alive)
            why it rejected the latest cancel or amend, e.g. ``cancel rejected: -2011
            Unknown order sent.``
        update_id: the venue's sequence number of the latest update applied
            (:attr:`~makerlab.core.events.OrderUpdate.update_id`); ``None`` until one is.
    """

    exc: str | None = None
    oid: str | None = None
    cloid: str | None = None
    ticker: str | None = None
    amount: Decimal = Decimal(0)
    price: Decimal | None = None
    tif: str | None = None
    ord_type: str | None = None
    reduce_only: bool = False
    ord_status: OrderStatus = OrderStatus.PENDING
    filled_sz: Decimal = Decimal(0)
    last_fill_sz: Decimal | None = None
    timestamp: int | None = None
    avg_fill_price: Decimal | None = None
    reject_reason: str | None = None
    update_id: int | None = None

    def __post_init__(self) -> None:
        # each field converted only when it is not a Decimal (or None) already: every
        # venue update of the mirror passes through here
        if not (isinstance(self.amount, Decimal) and self.amount):  # zero reads Decimal(0)
            self.amount = _dec(self.amount) or Decimal(0)
        if not isinstance(self.price, _DECIMAL_OR_NONE):
            self.price = _dec(self.price)
        if not (isinstance(self.filled_sz, Decimal) and self.filled_sz):
            self.filled_sz = _dec(self.filled_sz) or Decimal(0)
        if not isinstance(self.last_fill_sz, _DECIMAL_OR_NONE):
            self.last_fill_sz = _dec(self.last_fill_sz)
        if not isinstance(self.avg_fill_price, _DECIMAL_OR_NONE):
            self.avg_fill_price = _dec(self.avg_fill_price)
        if type(self.ord_status) is not OrderStatus:  # a member converts to itself
            self.ord_status = OrderStatus.of(self.ord_status)
        if self.filled_sz < 0:
            raise ConfigError(f"order {self.cloid or self.oid}: filled_sz must be >= 0")

    @property
    def side(self) -> int:
        """``+1`` for a buy, ``-1`` for a sell, ``0`` when ``amount`` is zero."""
        return (self.amount > 0) - (self.amount < 0)

    @property
    def remaining(self) -> Decimal:
        """Unfilled size (non-negative): ``|amount| - filled_sz``."""
        return max(abs(self.amount) - self.filled_sz, Decimal(0))

    def is_alive(self) -> bool:
        """True while the order may still trade (not FILLED, CANCELLED or REJECTED)."""
        return self.ord_status.is_alive

    def as_dict(self) -> dict[str, Any]:
        """The order's fields by name; ``ord_status`` as its string value."""
        out = dict(zip(_NAMES, _values(self), strict=True))
        out["ord_status"] = self.ord_status.value
        return out

    def __copy__(self) -> Order:
        """A shallow copy (``copy.copy``), without re-validating the fields."""
        return _copy_into(_new(Order), self)


_new = object.__new__


def _copy_into(dst: Order, src: Order) -> Order:
    """Every field of ``src`` set on ``dst`` (the fields listed one by one: the cheap way
    to copy a slots object; :func:`_check_copy` proves the list complete at import)."""
    dst.exc, dst.oid, dst.cloid, dst.ticker = src.exc, src.oid, src.cloid, src.ticker
    dst.amount, dst.price, dst.tif, dst.ord_type = src.amount, src.price, src.tif, src.ord_type
    dst.reduce_only, dst.ord_status, dst.filled_sz = src.reduce_only, src.ord_status, src.filled_sz
    dst.last_fill_sz, dst.timestamp = src.last_fill_sz, src.timestamp
    dst.avg_fill_price, dst.reject_reason = src.avg_fill_price, src.reject_reason
    dst.update_id = src.update_id
    return dst


DeltaHandler = Callable[[dict[str, Any]], Awaitable[None] | None]

_NAMES = tuple(f.name for f in fields(Order))
_FIELD_NAMES = frozenset(_NAMES)
_values = attrgetter(*_NAMES)  # the fields' values as a tuple, in field order
_compared = attrgetter(*(n for n in _NAMES if n not in ("last_fill_sz", "update_id")))
_INF = Decimal("Infinity")


def _check_copy() -> None:
    """Fail at import if :func:`_copy_into` misses a field of :class:`Order`."""
    src, dst = object.__new__(Order), object.__new__(Order)
    for k, name in enumerate(_NAMES):
        setattr(src, name, k)
    if _values(_copy_into(dst, src)) != tuple(range(len(_NAMES))):
        raise RuntimeError("orders._copy_into does not copy every Order field")


_check_copy()
_BLANK = Order()  # what an order not held starts from (copied, never changed)


class Orders:
    """The open orders of one account, with stale-update protection.

    Rules of :meth:`upsert_order` (an update that breaks one is rejected: ``None`` is
    returned, nothing changes and no handler runs):

    - **match by oid, then cloid**: an update names its order by ``oid`` or ``cloid``; if
      they point at two different orders the update is rejected.
    - **unknown orders need ticker and amount**: an update for an order not held is
      inserted only if it carries an ``oid`` or ``cloid``, a ``ticker`` and a non-zero
      ``amount``.
    - **dead orders stay dead**: once an order is FILLED, CANCELLED or REJECTED, every
      later update for its ids is rejected (ids of removed orders are remembered; the
      newest ``max_tombstones`` of them).
    - **no going back to pending**: an acknowledged order never returns to PENDING.
    - **exchange time is monotonic**: an update whose ``timestamp`` is older than the
      order's last exchange timestamp is rejected (equal times are allowed). The check is
      skipped while the order is PENDING, whose timestamp is the local submit time.
    - **venue updates are ordered by update_id**: where the order and the update both
      carry one, a lower ``update_id`` is stale and rejected and a higher one is newer,
      whatever their timestamps (a venue's sequence outranks clocks; equal ids pass on to
      the other rules). Local updates carry none and keep the order's.
    - **cancel-pending keeps the exchange time**: a CANCEL_PENDING update is local and does
      not move ``timestamp``.
    - **leaving cancel-pending needs news**: CANCEL_PENDING returns to NEW/PARTIAL only on
      a strictly newer update (a higher ``update_id``; without ids, a later timestamp) or
      a larger ``filled_sz`` (an amend or a fill).
    - **fills never regress**: ``filled_sz`` may not decrease, nor exceed ``|amount|``.
    - **identity is fixed**: ``exc``, ``ticker``, ``oid``, ``cloid`` (once known) and the
      sign of ``amount`` never change.
    - **duplicates are rejected**: an update that changes nothing is dropped (its higher
      ``update_id``, if any, is kept).
    - **last fill is inferred**: without ``last_fill_sz`` it is set to the increase of
      ``filled_sz`` (``0`` for an update without a fill); FILLED without ``filled_sz``
      means ``filled_sz = |amount|``.
    - **dead orders are removed**: with ``clear_unalived=True`` an order that dies is
      dropped after its handlers run.
    - **handlers see every accepted change**: each delta handler gets ``order.as_dict()``.

    Rules of :meth:`apply_update` (a venue's :class:`~makerlab.core.events.OrderUpdate`):

    - **venue events are upserts**: the update's ids, symbol, signed amount, price, status,
      filled size, time in force, reduce-only flag, ``update_id`` and exchange time (in ms)
      go through :meth:`upsert_order` and its rules; a REJECT records ``reject_reason``
      (``"<code> <reason>"``). What the update does not report (a zero amount, an empty
      status, ``filled=None``: a venue's answer to a cancel or amend may not restate them)
      is kept as the mirror has it.
    - **refused cancels and amends are notes**: a CANCEL_REJECT or AMEND_REJECT leaves the
      order's state as it is (status, ``update_id``, time) and records ``reject_reason =
      "cancel rejected: <code> <reason>"`` (``"amend rejected: ..."``) on an order the
      mirror holds; its handlers see that. For an order the mirror does not hold (gone,
      or never seen) it changes nothing.

    :meth:`add_pending` (the OMS's insert of an order it sends) and
    :meth:`mark_cancel_pending` (its mark once a cancel is sent) are ``upsert_order`` of
    those fields (``ord_status=PENDING``; the order's own ids and
    ``ord_status=CANCEL_PENDING``), by a shorter path for a new client id and for an
    order the container holds.
    """

    def __init__(
        self,
        orders: Iterable[Order | dict[str, Any]] | None = None,
        delta_handlers: Iterable[DeltaHandler] | None = None,
        *,
        max_tombstones: int = 10_000,
    ) -> None:
        self._orders: dict[int, Order] = {}
        self._by_oid: dict[str, int] = {}
        self._by_cloid: dict[str, int] = {}
        self._dead: OrderedDict[tuple[str, str], None] = OrderedDict()
        self._next_key = 0
        self._handlers: list[DeltaHandler] = list(delta_handlers or [])
        self._max_tombstones = max_tombstones
        # (ticker, side, include_pending, sort) -> the held orders a query selects, the
        # answer to every query until the next accepted change (which clears it)
        self._selections: dict[tuple[str, int, bool, bool], list[Order]] = {}
        for order in orders or []:
            self._insert(order if isinstance(order, Order) else Order(**order))

    # ---- queries -------------------------------------------------------------------

    def get_bid_orders(self, ticker: str, sort: bool = True, include_pending: bool = True,
                       copy: bool = True, as_dict: bool = False) -> list[Any]:
        """Live buy orders of ``ticker``, highest price first (market orders first).

        ``include_pending=False`` leaves out orders not yet acknowledged; ``copy`` returns
        copies (mutating them does not touch the container); ``as_dict`` returns dicts.
        Ties keep insertion order. The selection is kept until the next accepted change,
        so in-place edits of orders obtained with ``copy=False`` are not seen by it.
        """
        return self._query(ticker, 1, include_pending, sort, copy, as_dict)

    def get_ask_orders(self, ticker: str, sort: bool = True, include_pending: bool = True,
                       copy: bool = True, as_dict: bool = False) -> list[Any]:
        """Live sell orders of ``ticker``, lowest price first (market orders first)."""
        return self._query(ticker, -1, include_pending, sort, copy, as_dict)

    def pending_bids(self, ticker: str) -> list[Order]:
        """Unacknowledged (PENDING) buy orders of ``ticker``, best price first."""
        found = self._selected(ticker, 1, True, True)
        return [o.__copy__() for o in found if o.ord_status is OrderStatus.PENDING]

    def pending_asks(self, ticker: str) -> list[Order]:
        """Unacknowledged (PENDING) sell orders of ``ticker``, best price first."""
        found = self._selected(ticker, -1, True, True)
        return [o.__copy__() for o in found if o.ord_status is OrderStatus.PENDING]

    def bid_level_exists(self, ticker: str, price: Decimal | float | str) -> bool:
        """True if a live buy order of ``ticker`` (pending included) rests at ``price``."""
        target = _dec(price)
        return any(o.price == target for o in self._select(ticker, 1, True))

    def ask_level_exists(self, ticker: str, price: Decimal | float | str) -> bool:
        """True if a live sell order of ``ticker`` (pending included) rests at ``price``."""
        target = _dec(price)
        return any(o.price == target for o in self._select(ticker, -1, True))

    def get_total_bid_amount(self, ticker: str, include_pending: bool = True) -> Decimal:
        """Unfilled size of the live buy orders of ``ticker`` (non-negative)."""
        return sum((o.remaining for o in self._select(ticker, 1, include_pending)), Decimal(0))

    def get_total_ask_amount(self, ticker: str, include_pending: bool = True) -> Decimal:
        """Unfilled size of the live sell orders of ``ticker`` (non-negative, unsigned)."""
        return sum((o.remaining for o in self._select(ticker, -1, include_pending)), Decimal(0))

    def get_orders(self, ticker: str | None = None, copy: bool = True) -> list[Order]:
        """Live orders (of ``ticker``, or all), in insertion order."""
        found = [o for o in self._orders.values()
                 if o.is_alive() and (ticker is None or o.ticker == ticker)]
        return [o.__copy__() for o in found] if copy else found

    def oid_query(self, oid: str) -> Order | None:
        """The held order with exchange id ``oid``, or ``None``."""
        key = self._by_oid.get(oid)
        return None if key is None else self._orders[key]

    def cloid_query(self, cloid: str) -> Order | None:
        """The held order with client id ``cloid``, or ``None``."""
        key = self._by_cloid.get(cloid)
        return None if key is None else self._orders[key]

    def cloid_known(self, cloid: str) -> bool:
        """True if ``cloid`` names a held order or one removed among the newest
        ``max_tombstones`` (an update for it could not be applied to a new order)."""
        return cloid in self._by_cloid or ("cloid", cloid) in self._dead

    def forget(self, cloid: str | None = None, oid: str | None = None) -> None:
        """Drop the remembered ids of a removed order, so an update naming them inserts it
        afresh (reconciliation's revival of an order the mirror closed locally but the
        venue holds). Ids of held orders are left alone."""
        for kind, ident in (("cloid", cloid), ("oid", oid)):
            if ident is not None:
                self._dead.pop((kind, ident), None)

    def as_dict(self) -> dict[str, dict[str, Any]]:
        """``{oid: order dict}`` of held orders whose oid is known."""
        return {o.oid: o.as_dict() for o in self._orders.values() if o.oid is not None}

    def as_list(self) -> list[dict[str, Any]]:
        """Every held order as a dict, pending ones included."""
        return [o.as_dict() for o in self._orders.values()]

    def __len__(self) -> int:
        return len(self._orders)

    def add_delta_handler(self, handler: DeltaHandler) -> None:
        """Call ``handler(order_dict)`` (sync or async) after every accepted update."""
        self._handlers.append(handler)

    # ---- updates -------------------------------------------------------------------

    async def upsert_order(self, clear_unalived: bool = True, trigger_handlers: bool = True,
                           **kwargs: Any) -> Order | None:
        """Insert or update one order from ``kwargs`` (Order field names).

        Returns the updated order, or ``None`` when the update breaks one of the rules in
        the class docstring. A field given as ``None`` counts as not reported. Unknown
        keyword names raise :class:`ConfigError`.
        """
        unknown = None if _FIELD_NAMES.issuperset(kwargs) else set(kwargs) - _FIELD_NAMES
        if unknown:
            raise ConfigError(f"upsert_order: unknown order fields {sorted(unknown)}")
        kw = {k: v for k, v in kwargs.items() if v is not None}
        return await self._apply(kw.get("oid"), kw.get("cloid"), kw.get("ticker"),
                                 kw.get("amount"), _replaced, kw, "filled_sz" in kw,
                                 "last_fill_sz" in kw, clear_unalived, trigger_handlers)

    async def _apply(self, oid: str | None, cloid: str | None, ticker: str | None,
                     amount: Any, trial: Callable[[Order, Any], Order], fields: Any,
                     filled_given: bool, last_fill_given: bool, clear_unalived: bool = True,
                     trigger_handlers: bool = True) -> Order | None:
        """The rules for an update naming ``oid``/``cloid`` and reporting ``ticker`` and
        ``amount`` (``None``/zero: not reported): ``trial(base, fields)`` is the order it
        makes of ``base`` (the held order, or a blank one for an order not held);
        ``filled_given``/``last_fill_given``: whether it reported those. The accepted
        order goes to the handlers, then is removed if it died."""
        key = self._find(oid, cloid)
        if key is None:
            return None
        if key < 0:
            if ticker is None or not amount:
                return None
            key, order = self._create(trial(_BLANK, fields), filled_given)
        else:
            order = self._update(key, trial(self._orders[key], fields), filled_given,
                                 last_fill_given)
        if order is None:
            return None
        if trigger_handlers and self._handlers:
            await self._fire(order)
        if clear_unalived and order.ord_status in _DEAD:
            self._remove(key)
        return order

    def _find(self, oid: str | None, cloid: str | None) -> int | None:
        """Key of the order the ids name; ``-1`` if unknown; ``None`` if rejected (no id,
        a dead one, or ids of two different orders)."""
        if oid is None and cloid is None:
            return None
        if ("oid", oid) in self._dead or ("cloid", cloid) in self._dead:
            return None
        by_oid = self._by_oid.get(oid) if oid is not None else None
        by_cloid = self._by_cloid.get(cloid) if cloid is not None else None
        if by_oid is not None and by_cloid is not None and by_oid != by_cloid:
            return None
        found = by_oid if by_oid is not None else by_cloid
        return -1 if found is None else found

    def _create(self, order: Order, filled_given: bool) -> tuple[int, Order | None]:
        """Insert ``order``, an unknown order's reported fields on a blank one (the caller
        has checked that it names its ticker and a non-zero amount); ``filled_given``:
        whether the update reported ``filled_sz``."""
        if order.ord_status is OrderStatus.FILLED and not filled_given:
            order.filled_sz = abs(order.amount)
        if order.filled_sz > abs(order.amount):
            return -1, None
        if order.last_fill_sz is None and order.filled_sz > 0:
            order.last_fill_sz = order.filled_sz
        return self._insert(order), order

    def _update(self, key: int, new: Order, filled_given: bool,
                last_fill_given: bool) -> Order | None:
        """Move the held order ``key`` to ``new`` (it with an update's reported fields) if
        the rules allow; the held order, changed in place, or ``None``."""
        old = self._orders[key]
        if new.ord_status is OrderStatus.FILLED and not filled_given:
            new.filled_sz = abs(new.amount)
        if new.ord_status is OrderStatus.CANCEL_PENDING:
            new.timestamp = old.timestamp
        if not _acceptable(old, new):
            return None
        if _same(old, new):
            old.update_id = new.update_id  # no news, but later updates are measured by it
            return None
        if not last_fill_given:
            new.last_fill_sz = new.filled_sz - old.filled_sz
        _copy_into(old, new)
        self._selections.clear()
        self._index(old, key)
        return old

    async def add_pending(self, exc: str, cloid: str, ticker: str, amount: Decimal,
                          price: Decimal | None, tif: str, ord_type: str, reduce_only: bool,
                          timestamp: int) -> Order | None:
        """``upsert_order(exc=, cloid=, ..., ord_status=PENDING)`` of these fields (an
        order just sent), the same result by a shorter path when ``cloid`` is new to the
        container (neither held nor remembered dead): nothing can match it, so the order is
        created as the rules create one. A known ``cloid`` takes the general path."""
        if self.cloid_known(cloid):
            return await self.upsert_order(
                exc=exc, cloid=cloid, ticker=ticker, amount=amount, price=price, tif=tif,
                ord_type=ord_type, reduce_only=reduce_only, ord_status=OrderStatus.PENDING,
                timestamp=timestamp)
        if not amount:
            return None
        order = Order(exc=exc, cloid=cloid, ticker=ticker, amount=amount, price=price, tif=tif,
                      ord_type=ord_type, reduce_only=reduce_only,
                      ord_status=OrderStatus.PENDING, timestamp=timestamp)
        self._insert(order)
        if self._handlers:
            await self._fire(order)
        return order

    async def mark_cancel_pending(self, order: Order) -> Order | None:
        """``upsert_order(cloid=order.cloid, oid=order.oid, ord_status=CANCEL_PENDING)``
        (a cancel was sent), the same result by a shorter path for an order this
        container holds: its own ids and a local mark that keeps the time and the fills
        pass every rule but **dead orders stay dead** and **duplicates are rejected**.
        Any other order (a copy, an unknown one) takes the general path."""
        key = self._find(order.oid, order.cloid)
        if key is None or key < 0 or self._orders[key] is not order:
            return await self.upsert_order(cloid=order.cloid, oid=order.oid,
                                           ord_status=OrderStatus.CANCEL_PENDING)
        if (order.ord_status in _DEAD or order.ord_status is OrderStatus.CANCEL_PENDING
                or not order.filled_sz <= abs(order.amount)):
            return None
        order.ord_status = OrderStatus.CANCEL_PENDING
        order.last_fill_sz = order.filled_sz - order.filled_sz  # no fill, in its exponent
        self._selections.clear()
        if self._handlers:
            await self._fire(order)
        return order

    async def apply_update(self, update: OrderUpdate) -> Order | None:
        """Apply a venue's typed update (rules in the class docstring); the order, or
        ``None`` if the update was rejected."""
        note = _NOTES.get(update.kind)
        if note is not None:
            return await self.upsert_order(oid=update.oid, cloid=update.cloid,
                                           reject_reason=f"{note}: {_reason(update)}")
        return await self._apply(update.oid, update.cloid, update.symbol, update.amount,
                                 _reported, update, update.filled is not None, False)

    async def _fire(self, order: Order) -> None:
        for handler in self._handlers:  # each its own dict
            await run_handlers((handler,), order.as_dict())

    # ---- storage -------------------------------------------------------------------

    def _insert(self, order: Order) -> int:
        self._selections.clear()
        if order.oid is None and order.cloid is None:
            raise ConfigError(f"order on {order.ticker}: needs an oid or a cloid")
        key = self._next_key
        self._next_key += 1
        self._orders[key] = order
        self._index(order, key)
        return key

    def _index(self, order: Order, key: int) -> None:
        if order.oid is not None:
            self._by_oid[order.oid] = key
        if order.cloid is not None:
            self._by_cloid[order.cloid] = key

    def _remove(self, key: int) -> None:
        self._selections.clear()
        order = self._orders.pop(key)
        for kind, ident, index in (("oid", order.oid, self._by_oid),
                                   ("cloid", order.cloid, self._by_cloid)):
            if ident is not None:
                index.pop(ident, None)
                self._dead[(kind, ident)] = None
        while len(self._dead) > self._max_tombstones:
            self._dead.popitem(last=False)

    def _select(self, ticker: str, side: int, include_pending: bool) -> list[Order]:
        """Live orders of ``ticker`` on ``side`` (``o.side == side and o.is_alive()``,
        spelled out: strategies call this on every tick)."""
        skip = _DEAD if include_pending else _DEAD_OR_PENDING
        if side == 1:
            return [o for o in self._orders.values()
                    if o.ticker == ticker and o.amount > 0 and o.ord_status not in skip]
        return [o for o in self._orders.values()
                if o.ticker == ticker and o.amount < 0 and o.ord_status not in skip]

    def _query(self, ticker: str, side: int, include_pending: bool, sort: bool, copy: bool,
               as_dict: bool) -> list[Any]:
        """A new list of :meth:`_selected`: copies, dicts, or the orders themselves (the
        kept selection looked up here first: strategies query on every tick)."""
        found = self._selections.get((ticker, side, include_pending, sort))
        if found is None:
            found = self._selected(ticker, side, include_pending, sort)
        if copy and not as_dict:  # the quoting call first; its usual answer, one order or
            n = len(found)  # none, without a list comprehension's frame
            if n == 1:
                return [_copy_into(_new(Order), found[0])]
            return [_copy_into(_new(Order), o) for o in found] if n else []
        return [o.as_dict() for o in found] if as_dict else list(found)

    def _selected(self, ticker: str, side: int, include_pending: bool,
                  sort: bool) -> list[Order]:
        """:meth:`_select`, best first if ``sort``, kept until the next change (the
        caller must not change the list: :meth:`_query` hands out a new one)."""
        key = (ticker, side, include_pending, sort)
        found = self._selections.get(key)
        if found is None:
            found = self._select(ticker, side, include_pending)
            if sort and len(found) > 1:  # best first; the sort is stable, reversed or not
                found.sort(key=_bid_key if side == 1 else _ask_key, reverse=side == 1)
            self._selections[key] = found
        return found


_NOTES = {OrderEventKind.CANCEL_REJECT: "cancel rejected",
          OrderEventKind.AMEND_REJECT: "amend rejected"}


def _reported(base: Order, update: OrderUpdate) -> Order:
    """``base`` with the fields a venue update reports, by :class:`Order` name (what it
    does not report kept as ``base`` has it, as :meth:`Orders.upsert_order` leaves out
    ``None``), built as :func:`_replaced` builds one."""
    new = _copy_into(_new(Order), base)
    new.last_fill_sz = None
    new.timestamp = update.exchange_ts // NS_PER_MS
    new.exc = base.exc if update.exchange is None else update.exchange
    new.ticker = base.ticker if update.symbol is None else update.symbol
    new.oid = base.oid if update.oid is None else update.oid
    new.cloid = base.cloid if update.cloid is None else update.cloid
    new.price = base.price if update.price is None else update.price
    new.filled_sz = base.filled_sz if update.filled is None else update.filled
    new.update_id = base.update_id if update.update_id is None else update.update_id
    new.reduce_only = base.reduce_only if update.reduce_only is None else update.reduce_only
    if update.amount:
        new.amount = update.amount
    if update.tif:
        new.tif = update.tif
    if update.status:
        new.ord_status = OrderStatus.of(update.status)
    if update.kind is OrderEventKind.REJECT:
        new.reject_reason = _reason(update)
    new.__post_init__()
    return new


def _reason(update: OrderUpdate) -> str:
    """A venue refusal as one string: ``"-2011 Unknown order sent."``."""
    return f"{update.code} {update.reason}".strip()


def _bid_key(order: Order) -> Decimal:
    return _INF if order.price is None else order.price  # market orders first


def _ask_key(order: Order) -> Decimal:
    return -_INF if order.price is None else order.price


def _replaced(old: Order, kw: dict[str, Any]) -> Order:
    """``dataclasses.replace(old, last_fill_sz=None, **kw)``, without its overhead."""
    new = _copy_into(_new(Order), old)
    new.last_fill_sz = None
    for name, value in kw.items():
        setattr(new, name, value)
    new.__post_init__()
    return new


def _acceptable(old: Order, new: Order) -> bool:
    """True if moving from ``old`` to ``new`` breaks none of the :class:`Orders` rules."""
    return (old.ord_status not in _DEAD
            and _identity_kept(old, new)
            and _status_allowed(old, new)
            and _in_order(old, new)
            and old.filled_sz <= new.filled_sz <= abs(new.amount))


def _identity_kept(old: Order, new: Order) -> bool:
    """The known ids (``exc``, ``ticker``, ``oid``, ``cloid``) and the sign of ``amount``
    are kept (spelled out: every update of the mirror is checked here)."""
    return ((old.exc is None or old.exc == new.exc)
            and (old.ticker is None or old.ticker == new.ticker)
            and (old.oid is None or old.oid == new.oid)
            and (old.cloid is None or old.cloid == new.cloid)
            and (old.amount > 0) is (new.amount > 0) and (old.amount < 0) is (new.amount < 0))


def _status_allowed(old: Order, new: Order) -> bool:
    if new.ord_status is OrderStatus.PENDING:
        return old.ord_status is OrderStatus.PENDING
    if old.ord_status is OrderStatus.CANCEL_PENDING and new.ord_status in _OPEN:
        return _newer(old, new) or new.filled_sz > old.filled_sz
    return True


def _newer(old: Order, new: Order) -> bool:
    """``new`` is a strictly later venue update than ``old``: by ``update_id`` where both
    have one, else by timestamp (unknown times count as later)."""
    if old.update_id is not None and new.update_id is not None:
        return new.update_id > old.update_id
    return old.timestamp is None or new.timestamp is None or new.timestamp > old.timestamp


def _in_order(old: Order, new: Order) -> bool:
    """The update-id and exchange-time rules."""
    if (old.update_id is not None and new.update_id is not None
            and new.update_id != old.update_id):
        return new.update_id > old.update_id
    if old.ord_status is OrderStatus.PENDING or old.timestamp is None or new.timestamp is None:
        return True
    return new.timestamp >= old.timestamp


def _same(old: Order, new: Order) -> bool:
    return _compared(old) == _compared(new)
