"""Live market data: the :class:`~makerlab.trading.protocols.MarketDataSource` over the
Gateway's venue connections.

- **markets are checked against the venue's instrument list** (fetched on the
  exchange's first subscription): an unconfigured exchange or an unknown symbol is a
  :class:`~makerlab.errors.ConfigError` naming the known ones.
- **one socket per exchange id** carries all its markets
  (:class:`~makerlab.live.stream.VenueStream`).
- **every listener gets every event**, in the order the socket delivered them: the Feed,
  a recorder, a monitor. A listener that raises stops that venue's stream; the error is
  logged at once, handed to the failure handlers (``add_failure_handler``: the OMS's
  kill switch) and raised again by :meth:`LiveMarketData.close`.
"""

from __future__ import annotations

import difflib
import logging
from collections.abc import Awaitable, Callable, Mapping

import aiohttp
import numpy as np

from makerlab.core.clock import Clock, WallClock
from makerlab.core.events import BookUpdate, FeedStatus, TradeEvent
from makerlab.core.instruments import InstrumentSpec
from makerlab.errors import ConfigError
from makerlab.live.config import VenueConfig
from makerlab.live.lockstep import Lockstep
from makerlab.live.stream import VenueStream
from makerlab.live.transport import ReconnectPolicy, RestClient
from makerlab.trading.protocols import MarketDataListener, MarketKind

__all__ = ["LiveMarketData"]

log = logging.getLogger(__name__)

SpecLoader = Callable[[str], Awaitable[dict[str, InstrumentSpec]]]
FailureHandler = Callable[[BaseException], Awaitable[None]]


class LiveMarketData:
    """Books, trades and feed health from live venues (rules in the module docstring).

    Built by the :class:`~makerlab.live.gateway.Gateway` (``gateway.market_data()``);
    usable once the Gateway's ``init_clients()`` has run.
    """

    def __init__(self, configs: Mapping[str, VenueConfig], *, policy: ReconnectPolicy,
                 clock: Clock | None = None, lockstep: Lockstep | None = None) -> None:
        self.configs, self.policy, self.clock = dict(configs), policy, clock or WallClock()
        self.lockstep = lockstep
        self._listeners: list[MarketDataListener] = []
        self._streams: dict[str, VenueStream] = {}
        self._specs: dict[str, dict[str, InstrumentSpec]] = {}
        self._session: aiohttp.ClientSession | None = None
        self._fetch_specs: SpecLoader | None = None
        self._failure: BaseException | None = None
        self._failure_handlers: list[FailureHandler] = []

    def open(self, session: aiohttp.ClientSession, fetch_specs: SpecLoader) -> None:
        """Called by the Gateway's ``init_clients()``: the session, and how to fetch an
        exchange's instrument specs."""
        self._session, self._fetch_specs = session, fetch_specs

    def attach(self, listener: MarketDataListener) -> None:
        if listener not in self._listeners:
            self._listeners.append(listener)

    def add_failure_handler(self, handler: FailureHandler) -> None:
        """Await ``handler(error)`` when a listener raises (before the stream stops)."""
        self._failure_handlers.append(handler)

    def detach(self, listener: MarketDataListener) -> None:
        """Stop delivering to ``listener`` (nothing if it is not attached)."""
        if listener in self._listeners:
            self._listeners.remove(listener)

    def full_book(self, exchange: str, symbol: str) -> tuple[np.ndarray, np.ndarray] | None:
        """Every level of ``exchange``/``symbol``'s local book, best first, while it is known
        correct (None otherwise). Called from a listener's ``on_book`` it is the book after
        that update: what a recorder that starts on a live market writes as its snapshot."""
        stream = self._streams.get(exchange)
        return None if stream is None else stream.full_book(symbol)

    def replays(self, exchange: str) -> bool:
        """True when ``exchange`` is a paper venue replaying an archive (its exchange
        times are the archive's, not now)."""
        config = self.configs.get(exchange)
        return config is not None and config.env == "paper"

    def check_market(self, kind: MarketKind, exchange: str, symbol: str) -> None:
        """Raise ConfigError unless ``exchange`` is configured and (once its instrument
        list is loaded) lists ``symbol``; ``subscribe`` loads the list and checks again."""
        if exchange not in self.configs:
            raise ConfigError(f"exchange {exchange!r} is not configured in the Gateway; "
                              f"configured: {', '.join(self.configs) or 'none'}")
        if self._session is None:
            raise ConfigError("live market data needs `await gateway.init_clients()` first")
        known = self._specs.get(exchange)
        if known is not None and symbol not in known:
            close = difflib.get_close_matches(symbol, list(known), n=5)
            hint = f"did you mean {', '.join(close)}?" if close else \
                f"known: {', '.join(sorted(known)[:20])}{' ...' if len(known) > 20 else ''}"
            raise ConfigError(f"{exchange} has no instrument {symbol!r}; {hint}")

    async def load_specs(self, exchange: str) -> dict[str, InstrumentSpec]:
        """``exchange``'s instrument specs by symbol, fetched on first use."""
        if exchange not in self.configs:
            raise ConfigError(f"exchange {exchange!r} is not configured in the Gateway; "
                              f"configured: {', '.join(self.configs) or 'none'}")
        if exchange not in self._specs:
            if self._fetch_specs is None:
                raise ConfigError("live market data needs `await gateway.init_clients()` first")
            self._specs[exchange] = await self._fetch_specs(exchange)
        return dict(self._specs[exchange])

    async def subscribe(self, kind: MarketKind, exchange: str, symbol: str,
                        depth: int) -> None:
        """Open or join ``exchange``'s stream for ``kind`` data of ``symbol``."""
        self.check_market(kind, exchange, symbol)
        await self.load_specs(exchange)
        self.check_market(kind, exchange, symbol)
        await self._stream(exchange).subscribe(kind, symbol, depth)

    def _stream(self, exchange: str) -> VenueStream:
        stream = self._streams.get(exchange)
        if stream is None:
            assert self._session is not None  # check_market ran after open()
            cfg = self.configs[exchange]
            rest = RestClient(self._session, cfg.endpoints.rest, venue=exchange,
                              timeout=self.policy.rest_timeout)
            stream = VenueStream(cfg.make_venue(), cfg.endpoints.ws, rest, self._session, self,
                                 policy=self.policy, clock=self.clock,
                                 lockstep=self.lockstep if cfg.lockstep else None)
            self._streams[exchange] = stream
        return stream

    def streams(self) -> dict[str, VenueStream]:
        """The open venue streams by exchange id."""
        return dict(self._streams)

    async def close(self) -> None:
        """Stop every stream; raises the error that stopped one, if any."""
        for stream in self._streams.values():
            if stream.task is not None and stream.task.done() and not stream.task.cancelled():
                self._failure = self._failure or stream.task.exception()
            await stream.close()
        self._streams.clear()
        if self._failure is not None:
            failure, self._failure = self._failure, None
            raise failure

    # -- fan-out to listeners (the streams' MarketDataListener) -----------------------------

    async def on_book(self, update: BookUpdate) -> None:
        for listener in self._listeners:
            await self._reported(listener.on_book(update))

    async def on_trade(self, trade: TradeEvent) -> None:
        for listener in self._listeners:
            await self._reported(listener.on_trade(trade))

    async def on_status(self, status: FeedStatus) -> None:
        log.info("%s %s %s %s", status.exchange, status.symbol or "*", status.kind.value,
                 status.detail)
        for listener in self._listeners:
            await self._reported(listener.on_status(status))

    async def _reported(self, delivery: Awaitable[None]) -> None:
        """Await a listener's delivery; a failure goes to the failure handlers, then on."""
        try:
            await delivery
        except Exception as exc:
            for handler in self._failure_handlers:
                await handler(exc)
            raise
