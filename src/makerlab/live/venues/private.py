"""The private venue modules by exchange id (what ``gateway.order_venue()`` builds)."""

from __future__ import annotations

from collections.abc import Callable, Mapping

from makerlab.live.config import Secret
from makerlab.live.venues.base import Endpoints
from makerlab.live.venues.binance_private import BinancePrivate
from makerlab.live.venues.bybit_private import BybitPrivate
from makerlab.live.venues.hyperliquid_private import HyperliquidPrivate
from makerlab.live.venues.paradex_private import ParadexPrivate
from makerlab.live.venues.private_base import PrivateVenue
from makerlab.live.venues.woo_private import WooPrivate

__all__ = ["PRIVATE_VENUES"]

Factory = Callable[[tuple[Secret, Secret], str, Endpoints, Mapping[str, str]], PrivateVenue]


def _binance(creds: tuple[Secret, Secret], env: str, endpoints: Endpoints,
             options: Mapping[str, str]) -> PrivateVenue:
    return BinancePrivate(creds, env, endpoints)


def _bybit(creds: tuple[Secret, Secret], env: str, endpoints: Endpoints,
           options: Mapping[str, str]) -> PrivateVenue:
    return BybitPrivate(creds, env, endpoints)


def _hyperliquid(creds: tuple[Secret, Secret], env: str, endpoints: Endpoints,
                 options: Mapping[str, str]) -> PrivateVenue:
    return HyperliquidPrivate(creds, env, endpoints)


def _paradex(creds: tuple[Secret, Secret], env: str, endpoints: Endpoints,
             options: Mapping[str, str]) -> PrivateVenue:
    return ParadexPrivate(creds, env, endpoints)


def _woox(creds: tuple[Secret, Secret], env: str, endpoints: Endpoints,
          options: Mapping[str, str]) -> PrivateVenue:
    return WooPrivate(creds, env, endpoints, options.get("app_id", ""))


PRIVATE_VENUES: dict[str, Factory] = {
    "binance": _binance,
    "bybit": _bybit,
    "hyperliquid": _hyperliquid,
    "paradex": _paradex,
    "woox": _woox,
}
