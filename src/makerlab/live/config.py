"""Gateway configuration: which venues, which environment, where credentials live.

``config_keys`` maps an exchange id to its settings (every key optional)::

    {"binance": {},                                   # mainnet, public data only
     "bybit": {"key": "BYBIT_DEMO_KEY", "secret": "BYBIT_DEMO_SECRET", "env": "demo"},
     "binance_spot": {"env": "paper", "base_url": "http://127.0.0.1:8765/binance_spot"}}

- ``key``/``secret`` **name environment variables** (a ``.env`` file is read too); their
  values are read at ``init_clients()``, kept in :class:`Secret` (masked in every repr and
  message) and never logged.
- ``env`` picks the venue's real endpoints (``mainnet``, ``testnet``, ``demo`` where the
  venue has it) or ``paper``, which needs a ``base_url``.
- ``base_url`` overrides both endpoints (the websocket one derived ``http``→``ws``);
  ``rest_url``/``ws_url`` override one each. Venue paths are appended to these bases.
- ``lockstep: True`` (``env: paper`` only) follows a paper exchange run with
  ``--lockstep``: the Gateway's clock follows the data (:mod:`makerlab.live.lockstep`).
- Unknown exchanges, keys and environments raise :class:`~makerlab.errors.ConfigError`.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from makerlab.errors import ConfigError
from makerlab.live.venues.base import Endpoints, Venue
from makerlab.live.venues.binance import BinanceSpot, BinanceUsdm
from makerlab.live.venues.bybit import Bybit
from makerlab.live.venues.hyperliquid import Hyperliquid
from makerlab.live.venues.paradex import Paradex
from makerlab.live.venues.woo import Woox

__all__ = ["VENUES", "Secret", "VenueConfig", "parse_config"]

VENUES: dict[str, type] = {
    "binance": BinanceUsdm,
    "binance_spot": BinanceSpot,
    "bybit": Bybit,
    "hyperliquid": Hyperliquid,
    "paradex": Paradex,
    "woox": Woox,
}
_KEYS = frozenset({"key", "secret", "env", "base_url", "rest_url", "ws_url", "lockstep"})
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class Secret:
    """A credential value: ``reveal()`` gives it; repr/str never do."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('***')"

    __str__ = __repr__


@dataclass(frozen=True, slots=True)
class VenueConfig:
    """One exchange id's resolved settings (no secret values: those are read later)."""

    exchange: str
    env: str
    endpoints: Endpoints
    key_env: str | None = None
    secret_env: str | None = None
    options: Mapping[str, str] = field(default_factory=dict)
    lockstep: bool = False

    def make_venue(self) -> Venue:
        return VENUES[self.exchange](**self.options)

    def credentials(self) -> tuple[Secret, Secret] | None:
        """``(key, secret)`` read from the environment, or None for public access."""
        if self.key_env is None or self.secret_env is None:
            return None
        return _read(self.exchange, "key", self.key_env), \
            _read(self.exchange, "secret", self.secret_env)


def _read(exchange: str, what: str, name: str) -> Secret:
    value = os.environ.get(name)
    if not value:
        raise ConfigError(f"{exchange}: environment variable {name} (the {what}) is not set; "
                          "export it or put it in .env")
    return Secret(value)


def parse_config(config_keys: Mapping[str, Mapping[str, object]] | None
                 ) -> dict[str, VenueConfig]:
    """Validate ``config_keys`` (see the module docstring)."""
    return {exchange: _venue_config(exchange, dict(cfg or {}))
            for exchange, cfg in (config_keys or {}).items()}


def _venue_config(exchange: str, cfg: dict[str, object]) -> VenueConfig:
    if exchange not in VENUES:
        raise ConfigError(f"unknown exchange {exchange!r} in config_keys; "
                          f"known: {', '.join(VENUES)}")
    venue_cls = VENUES[exchange]
    allowed = _KEYS | set(getattr(venue_cls, "config_options", ()))
    unknown = sorted(set(cfg) - allowed)
    if unknown:
        raise ConfigError(f"{exchange}: unknown config key(s) {', '.join(unknown)}; "
                          f"allowed: {', '.join(sorted(allowed))}")
    env = str(cfg.get("env", "mainnet"))
    options = {k: str(cfg[k]) for k in getattr(venue_cls, "config_options", ()) if k in cfg}
    lockstep = cfg.get("lockstep", False)
    if not isinstance(lockstep, bool) or (lockstep and env != "paper"):
        raise ConfigError(f"{exchange}: 'lockstep' must be true or false, and true only with "
                          "env 'paper' (a paper exchange run with --lockstep)")
    return VenueConfig(exchange, env, _endpoints(exchange, venue_cls, env, cfg),
                       *_credential_names(exchange, cfg), options=options, lockstep=lockstep)


def _endpoints(exchange: str, venue_cls: type, env: str, cfg: dict[str, object]) -> Endpoints:
    known: Mapping[str, Endpoints] = getattr(venue_cls, "urls")  # noqa: B009 - a class attribute of the venue
    base = cfg.get("base_url")
    if env not in known and env != "paper":
        raise ConfigError(f"{exchange}: unknown env {env!r}; known: "
                          f"{', '.join([*known, 'paper'])}")
    if base is None and env == "paper" and not ("rest_url" in cfg and "ws_url" in cfg):
        raise ConfigError(f"{exchange}: env 'paper' needs base_url (or rest_url and ws_url), "
                          "e.g. http://127.0.0.1:8765/" + exchange)
    default = known.get(env, Endpoints("", ""))
    if base is not None:
        default = Endpoints(str(base).rstrip("/"), _ws_of(str(base)).rstrip("/"))
    return Endpoints(str(cfg.get("rest_url", default.rest)).rstrip("/"),
                     str(cfg.get("ws_url", default.ws)).rstrip("/"))


def _ws_of(url: str) -> str:
    if url.startswith("https://"):
        return "wss://" + url[len("https://"):]
    if url.startswith("http://"):
        return "ws://" + url[len("http://"):]
    raise ConfigError(f"base_url must start with http:// or https://, got {url[:40]!r}")


def _credential_names(exchange: str, cfg: dict[str, object]) -> tuple[str | None, str | None]:
    names = [cfg.get("key"), cfg.get("secret")]
    if (names[0] is None) != (names[1] is None):
        raise ConfigError(f"{exchange}: give both 'key' and 'secret' (names of environment "
                          "variables), or neither for public data")
    for what, name in zip(("key", "secret"), names, strict=True):
        if name is not None and not (isinstance(name, str) and _ENV_NAME.match(name)):
            raise ConfigError(f"{exchange}: '{what}' must name an environment variable "
                              "(letters, digits, _), not hold the credential itself")
    return names[0], names[1]  # type: ignore[return-value]

