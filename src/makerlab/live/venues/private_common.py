"""Small pieces every private venue module shares: wire numbers, status and time-in-force
vocabulary, and the HMAC-signed venues' credentials."""

from __future__ import annotations

import logging
from decimal import Decimal
from typing import TypeVar

from makerlab.core.events import OrderEventKind, OrderUpdate
from makerlab.core.orders import POST_ONLY
from makerlab.live.config import Secret
from makerlab.live.venues.base import decimal, ms_to_ns

__all__ = ["HmacKeys", "as_type", "dec", "is_post_only", "order_state", "signed", "wire_number"]

log = logging.getLogger(__name__)
T = TypeVar("T")


class HmacKeys:
    """An API key and its HMAC secret; repr never shows either."""

    __slots__ = ("key", "secret")

    def __init__(self, creds: tuple[Secret, Secret]) -> None:
        self.key, self.secret = creds

    def __repr__(self) -> str:
        return "HmacKeys('***')"


def as_type(value: object, cls: type[T]) -> T:
    """``value``, known to be a ``cls`` (an op's request of the kind its op says)."""
    assert isinstance(value, cls)
    return value


def wire_number(value: Decimal) -> str:
    """``value`` as a plain decimal string without exponent or trailing zeros."""
    text = format(value.normalize(), "f")
    return "0" if text in ("-0", "") else text


def dec(text: object) -> Decimal:
    """A wire number as Decimal (``""``/``None`` read as zero)."""
    return decimal(text) if text not in (None, "") else Decimal(0)


def signed(amount: Decimal, buy: bool) -> Decimal:
    return amount if buy else -amount


def is_post_only(tif: str) -> bool:
    return tif.upper() in POST_ONLY


def order_state(exchange: str, symbol: str, *, kind: OrderEventKind, status: str,
                cloid: str | None, oid: str | None, amount: Decimal, price: Decimal | None,
                filled: Decimal | None, ts_ms: int, local_ts: int, update_id: int | None = None,
                tif: str = "", reduce_only: bool = False, code: str = "",
                reason: str = "") -> OrderUpdate:
    """An :class:`OrderUpdate` from venue fields (``ts_ms`` the venue time in ms;
    ``update_id`` defaults to it in ns)."""
    ts = ms_to_ns(ts_ms)
    return OrderUpdate(exchange, symbol, ts, local_ts, kind, status, cloid, oid, amount,
                       price, filled, ts if update_id is None else update_id, code=code,
                       reason=reason, tif=tif, reduce_only=reduce_only)
