"""The Gateway: configured venues, their credentials, sessions and market data.

The tutorial's lifecycle: ``Gateway(config_keys)``, ``await gateway.init_clients()``,
``await gateway.cleanup_clients()`` (or ``async with Gateway(...) as gateway:``).

- **construction opens nothing**: ``Gateway(config_keys)`` only validates the config
  (:mod:`makerlab.live.config`), so the Replayer can take a Gateway it never uses.
- **init_clients()** reads ``.env``, resolves credentials and opens one HTTP session; it
  sends nothing (a backtest that calls it stays offline).
- **instrument specs are fetched on first use** of an exchange (its first subscription,
  or :meth:`Gateway.load_specs`), written to the spec cache; if the venue cannot be
  reached, a cached file is used and a warning logged.
- **market_data()** is the Gateway's one :class:`~makerlab.live.market_data.LiveMarketData`.
- **order_venue()** is the Gateway's one :class:`~makerlab.live.order_venue.LiveOrderVenue`
  over every exchange configured with credentials (after ``init_clients()``; its
  ``start()`` logs in and opens the user streams).
- **cleanup_clients()** closes every stream, task and the session.
- **lockstep** with a paper exchange (a venue configured ``env: paper``, ``lockstep:
  True``): the Gateway's clock is the data's (:mod:`makerlab.live.lockstep`), also for
  the tutorial's ``_time()`` between ``init_clients()`` and ``cleanup_clients()``.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType

import aiohttp
from dotenv import load_dotenv

from makerlab.core.clock import Clock, WallClock, use_clock
from makerlab.core.instruments import InstrumentSpec
from makerlab.data.specs import default_cache_dir, read_specs, write_specs
from makerlab.errors import ConfigError, VenueError
from makerlab.live.config import Secret, VenueConfig, parse_config
from makerlab.live.lockstep import Lockstep
from makerlab.live.market_data import LiveMarketData
from makerlab.live.order_venue import LiveOrderVenue
from makerlab.live.private import PrivateClient
from makerlab.live.transport import ReconnectPolicy, RestClient
from makerlab.live.venues.base import Request

__all__ = ["Gateway"]

log = logging.getLogger(__name__)


class Gateway:
    """Venue connections for live trading (rules in the module docstring).

    Args:
        config_keys: ``{exchange_id: settings}``, see :mod:`makerlab.live.config`.
        spec_cache: directory of the instrument spec cache (default
            :func:`~makerlab.data.specs.default_cache_dir`).
        policy: reconnect and timeout settings shared by every connection.
        clock: where receive times come from (the wall clock by default).
    """

    def __init__(self, config_keys: Mapping[str, Mapping[str, object]] | None = None, *,
                 spec_cache: str | Path | None = None, policy: ReconnectPolicy | None = None,
                 clock: Clock | None = None) -> None:
        self.configs: dict[str, VenueConfig] = parse_config(config_keys)
        self.spec_cache = Path(spec_cache) if spec_cache is not None else default_cache_dir()
        self.policy = policy or ReconnectPolicy()
        self.lockstep = Lockstep() if any(c.lockstep for c in self.configs.values()) else None
        self.clock = clock or (self.lockstep.clock if self.lockstep else WallClock())
        self._market_data = LiveMarketData(self.configs, policy=self.policy, clock=self.clock,
                                           lockstep=self.lockstep)
        self._credentials: dict[str, tuple[Secret, Secret]] = {}
        self._session: aiohttp.ClientSession | None = None
        self._order_venue: LiveOrderVenue | None = None

    def __repr__(self) -> str:
        envs = ", ".join(f"{exc}:{cfg.env}" for exc, cfg in self.configs.items())
        return f"Gateway({envs or 'no exchanges'}, open={self.connected})"

    @property
    def connected(self) -> bool:
        return self._session is not None

    def exchanges(self) -> list[str]:
        return list(self.configs)

    def market_data(self) -> LiveMarketData:
        """The Gateway's market-data source (what ``Feed(gateway=...)`` streams from)."""
        return self._market_data

    def order_venue(self) -> LiveOrderVenue:
        """Order entry on every exchange configured with ``key`` and ``secret``."""
        if self._session is None:
            raise ConfigError("order entry needs `await gateway.init_clients()` first")
        if self._order_venue is None:
            # the private venues (their signing stacks, ~0.2 s to import): a replay's or a
            # market-data-only Gateway never loads them
            from makerlab.live.venues.private import PRIVATE_VENUES

            clients = {}
            venue = LiveOrderVenue({}, self.load_specs, self.clock)
            for exchange, creds in self._credentials.items():
                cfg = self.configs[exchange]
                if exchange not in PRIVATE_VENUES:
                    continue  # binance_spot: market data only
                private = PRIVATE_VENUES[exchange](creds, cfg.env, cfg.endpoints, cfg.options)
                clients[exchange] = PrivateClient(
                    private, cfg.endpoints, self._session, venue, policy=self.policy,
                    clock=self.clock, lockstep=self.lockstep if cfg.lockstep else None)
            venue.add_clients(clients)
            self._order_venue = venue
        return self._order_venue

    def credentials(self, exchange: str) -> tuple[Secret, Secret] | None:
        """``exchange``'s ``(key, secret)`` after ``init_clients()``; None for public."""
        return self._credentials.get(exchange)

    async def init_clients(self) -> None:
        """Read credentials and open the HTTP session (no request is sent yet)."""
        if self._session is not None:
            return
        load_dotenv()
        for exchange, cfg in self.configs.items():
            creds = cfg.credentials()
            if creds is not None:
                self._credentials[exchange] = creds
        self._session = aiohttp.ClientSession()
        self._market_data.open(self._session, self._load_specs)
        if self.lockstep is not None:
            use_clock(self.lockstep.clock)

    async def load_specs(self, exchange: str) -> dict[str, InstrumentSpec]:
        """``exchange``'s instrument specs by symbol, fetched once (after ``init_clients()``)."""
        return await self._market_data.load_specs(exchange)

    async def _load_specs(self, exchange: str) -> dict[str, InstrumentSpec]:
        assert self._session is not None
        cfg = self.configs[exchange]
        venue = cfg.make_venue()
        rest = RestClient(self._session, cfg.endpoints.rest, venue=cfg.exchange,
                          timeout=self.policy.rest_timeout)
        cached = self.spec_cache / f"{cfg.exchange}.json"
        try:
            specs: list[InstrumentSpec] = []
            request: Request | None = venue.specs_request()
            while request is not None:
                page = venue.parse_specs(await rest.request(request))
                specs += page.specs
                request = page.next_request
        except VenueError as exc:
            if not cached.exists():
                raise
            log.warning("%s: instrument specs unavailable (%s); using %s", cfg.exchange,
                        exc, cached)
            return read_specs(cached)
        write_specs(self.spec_cache, cfg.exchange, specs)
        return {spec.symbol: spec for spec in specs}

    async def cleanup_clients(self) -> None:
        """Close every stream and the session."""
        try:
            if self._order_venue is not None:
                await self._order_venue.close()
                self._order_venue = None
            await self._market_data.close()
        finally:
            if self._session is not None:
                await self._session.close()
                self._session = None
            self._credentials.clear()
            if self.lockstep is not None:
                await self.lockstep.close()
                use_clock(None)

    async def __aenter__(self) -> Gateway:
        await self.init_clients()
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None,
                        exc: BaseException | None, tb: TracebackType | None) -> None:
        await self.cleanup_clients()
