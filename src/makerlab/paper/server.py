"""The paper exchange server: an archive replayed over real venue protocols on 127.0.0.1.

::

    async with PaperExchange("data/archive", "2024-08-08:23", "2024-08-09:00", speed=0,
                             serve={"bybit": "binance"}) as paper:
        paper.urls["binance"]["rest"]   # 'http://127.0.0.1:PORT/binance'
        paper.urls["bybit"]["ws"]       # 'ws://127.0.0.1:PORT/bybit'
        ...
        paper.fault_counts              # {'drop': 3, ...}

One port, one path prefix per protocol: a connector's REST and websocket base URLs are
the prefix and it appends the venue's real paths (``/fapi/v1/depth``,
``/public/stream?streams=...``, ``/v5/public/linear``, ``/info``, ``/ws``). Protocols:

========================  ==========================================================
``binance``               Binance USD-M futures (:mod:`makerlab.paper.binance`)
``binance_spot``          Binance spot
``bybit``                 Bybit v5 linear (:mod:`makerlab.paper.bybit`)
``hyperliquid``           Hyperliquid perps (:mod:`makerlab.paper.hyperliquid`)
========================  ==========================================================

By default each protocol serves the archive exchange of the same name, when the archive
has it in range; ``serve={"bybit": "binance"}`` serves archive exchange ``binance`` over
the Bybit protocol instead (symbols as archived).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
import signal
from collections.abc import Callable, Mapping
from dataclasses import replace
from types import TracebackType
from typing import Any

from aiohttp import web

from makerlab.data.schema import BOOK_SNAPSHOT
from makerlab.errors import ConfigError
from makerlab.monitor import Monitor, PageConfig
from makerlab.paper.binance import FUTURES, SPOT, BinanceVenue
from makerlab.paper.binance_private import BinancePrivate
from makerlab.paper.bybit import BybitVenue
from makerlab.paper.bybit_private import BybitPrivate
from makerlab.paper.desk import Desk, Traded, load_tapes
from makerlab.paper.faults import FaultLog, FaultSpec
from makerlab.paper.hyperliquid import HyperliquidVenue
from makerlab.paper.hyperliquid_private import HyperliquidPrivate
from makerlab.paper.instruments import load_instrument
from makerlab.paper.lockstep import Lockstep, feed_latency
from makerlab.paper.market import Market, MarketClock
from makerlab.paper.private import Credentials, PrivateHub
from makerlab.paper.session import Hub
from makerlab.paper.source import Dataset, find_datasets, hour_name, hour_range
from makerlab.paper.trading import TradingConfig
from makerlab.paper.venue import Venue, VenueContext

__all__ = ["PROTOCOLS", "PaperExchange", "serve_until_signalled"]

log = logging.getLogger(__name__)

_PRIVATE: dict[str, Callable[[VenueContext, PrivateHub, Venue], Any]] = {
    "binance": lambda context, hub, public: BinancePrivate(context, hub),
    "bybit": lambda context, hub, public: BybitPrivate(context, hub),
    "hyperliquid": lambda context, hub, public: _hyperliquid(context, hub, public),
}
def _hyperliquid(context: VenueContext, hub: PrivateHub, public: Venue) -> HyperliquidPrivate:
    assert isinstance(public, HyperliquidVenue)
    private = HyperliquidPrivate(context, hub, list(public.markets))
    public.private = private
    return private


_VENUES: dict[str, Callable[[VenueContext, list[Market]], Venue]] = {
    "binance": lambda context, markets: BinanceVenue(context, markets, FUTURES),
    "binance_spot": lambda context, markets: BinanceVenue(context, markets, SPOT),
    "bybit": BybitVenue,
    "hyperliquid": HyperliquidVenue,
}
PROTOCOLS = tuple(_VENUES)


class PaperExchange:
    """A local exchange serving ``archive`` from hour ``start`` to ``end`` (inclusive,
    ``'YYYY-MM-DD:HH'``), as an async context manager.

    Args:
        speed: ``1`` real time, ``10`` ten times faster, ``0`` as fast as the clients
            read (see :mod:`makerlab.paper.market`).
        faults: a :class:`FaultSpec` or its text form (``"drop=0.01,seed=7"``).
        port: ``0`` picks a free port (read :attr:`port` or :attr:`urls`).
        serve: ``{protocol: archive exchange}`` overriding the default pairing.
        credentials: ``{protocol: Credentials}`` of the accounts the private side serves
            (:func:`~makerlab.paper.private.load_credentials` reads a key file and the
            environment); a protocol without them has no private side.
        trading: the trading side's models (latency, fees, queue, balance).
        lockstep: play in lockstep with one client (:mod:`makerlab.paper.lockstep`;
            ``speed`` is then ignored, and faults are refused).
        page: serve the monitoring page of the traded accounts, the venue's side
            (:mod:`makerlab.paper.page`): a :class:`~makerlab.monitor.PageConfig`, or
            None (read :attr:`page` for its ``url`` and ``login_url``).
    """

    def __init__(self, archive: str | os.PathLike, start: str, end: str, *,
                 speed: float = 1.0, faults: FaultSpec | str | None = None, port: int = 0,
                 host: str = "127.0.0.1", serve: Mapping[str, str] | None = None,
                 credentials: Mapping[str, Credentials] | None = None,
                 trading: TradingConfig | None = None, lockstep: bool = False,
                 page: PageConfig | None = None) -> None:
        if speed < 0:
            raise ConfigError(f"speed must be >= 0 (0: as fast as clients read), got {speed}")
        self.archive = archive
        self.hours = hour_range(start, end)
        self.speed = speed
        self.faults = faults if isinstance(faults, FaultSpec) else FaultSpec.parse(faults)
        self.host = host
        self.port = port
        self._serve = dict(serve or {})
        self._credentials = dict(credentials or {})
        self.lockstep = lockstep
        if lockstep and str(self.faults) != "none":
            raise ConfigError("lockstep plays the archive exactly: it takes no faults")
        self._lockstep: Lockstep | None = None
        self.trading = trading or TradingConfig()
        self._feed_ns = feed_latency(self.trading.latency_model) if lockstep else 0
        self.desk: Desk | None = None
        self.private: PrivateHub | None = None
        self._drive_task: asyncio.Task[None] | None = None
        self._privates: list[Any] = []
        self.fault_log = FaultLog()
        self.served: dict[str, str] = {}
        self.markets: dict[tuple[str, str], Market] = {}
        self._runner: web.AppRunner | None = None
        self._clock_task: asyncio.Task[None] | None = None
        self._hub: Hub | None = None
        self._clock: MarketClock | None = None
        self.venues: dict[str, Venue] = {}
        self._page_config = page
        self.page: Monitor | None = None

    # -- lifecycle

    async def __aenter__(self) -> PaperExchange:
        await self.start()
        return self

    async def __aexit__(self, kind: type[BaseException] | None, error: BaseException | None,
                        trace: TracebackType | None) -> None:
        await self.close()

    async def start(self) -> None:
        """Read the archive's listing, open the books and start serving."""
        if self._runner is not None:
            raise RuntimeError("the paper exchange is already running")
        datasets = await asyncio.to_thread(find_datasets, self.archive, self.hours)
        self.served = _pair(self._serve, datasets)
        used = [d for d in datasets.values() if d.exchange in self.served.values()]
        self.markets = await asyncio.to_thread(self._markets, used)
        self._hub = Hub()
        self._clock = MarketClock(self.archive, used, self.markets, self.hours, self._hub,
                                  self.speed)
        await asyncio.to_thread(functools.partial(self._clock.open, lockstep=self.lockstep))
        context = VenueContext(self._clock, self._hub, self.faults, self.fault_log,
                               self.lockstep)
        await self._trading_side()
        await self._listen(self._app(context))
        if self.lockstep:
            self._lockstep = Lockstep(self._clock, self._hub, self.private, self._feed_ns)
            self._clock_task = asyncio.create_task(self._lockstep.run(), name="paper-lockstep")
        else:
            self._clock_task = asyncio.create_task(self._clock.run(), name="paper-clock")
        if self._page_config is not None:
            from makerlab.paper.page import DeskCollector

            self.page = await Monitor(source=DeskCollector(self, self._page_config),
                                      config=self._page_config).start()

    def _markets(self, datasets: list[Dataset]) -> dict[tuple[str, str], Market]:
        return {(d.exchange, d.symbol): Market(load_instrument(self.archive, d, self.hours),
                                               derive=d.book_kind == BOOK_SNAPSHOT)
                for d in datasets}

    def _traded_protocols(self) -> list[str]:
        return [p for p in self.served if p in _PRIVATE and p in self._credentials]

    async def _trading_side(self) -> None:
        """The desk and the private hub, when some served protocol has credentials."""
        protocols = self._traded_protocols()
        if not protocols:
            return
        traded = await asyncio.to_thread(self._traded, protocols)
        self.desk = Desk(traded, self.trading.desk_config(protocols))
        assert self._clock is not None
        self.private = PrivateHub(self.desk, self._clock.exchange_ns, self._credentials)
        if not self.lockstep:
            await self.private.advance(self._clock.exchange_ns())  # the opening books
            self._clock.after_play = self._after_play
            self._drive_task = asyncio.create_task(self.private.drive(), name="paper-desk")

    def _after_play(self) -> None:
        assert self._clock is not None and self.private is not None
        self.private.done = self._clock.done.is_set()
        self.private.wake()

    def _traded(self, protocols: list[str]) -> list[Traded]:
        first, last = hour_name(self.hours[0]), hour_name(self.hours[-1])
        out = []
        for protocol in protocols:
            for (exchange, symbol), market in sorted(self.markets.items()):
                if exchange != self.served[protocol]:
                    continue
                book, trades = load_tapes(self.archive, exchange, symbol, self.trading.depth,
                                          first, last)
                out.append(Traded(protocol, replace(market.spec, exchange=protocol), book,
                                  trades))
        return out

    def _app(self, context: VenueContext) -> web.Application:
        app = web.Application()
        for protocol, exchange in self.served.items():
            markets = [m for (e, _), m in sorted(self.markets.items()) if e == exchange]
            sub = web.Application()
            venue = _VENUES[protocol](context, markets)
            self.venues[protocol] = venue
            sub.add_routes(venue.routes())
            if self.private is not None and protocol in self._traded_protocols():
                private = _PRIVATE[protocol](context, self.private, venue)
                self._privates.append(private)
                sub.add_routes(private.routes())
            app.add_subapp(f"/{protocol}", sub)
        return app

    async def _listen(self, app: web.Application) -> None:
        self._runner = web.AppRunner(app, handle_signals=False, access_log=None,
                                     shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        self.port = self._runner.addresses[0][1]

    async def close(self) -> None:
        """Stop the page and the clock, close every connection and the listening socket."""
        if self.page is not None:
            await self.page.stop()
        for task in (self._clock_task, self._drive_task):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        self._clock_task = self._drive_task = None
        for private in self._privates:
            closing = getattr(private, "close", None)  # Bybit: its disconnection timer
            if closing is not None:
                await closing()
        if self.private is not None:
            await self.private.close()
        if self._hub is not None:
            await self._hub.close()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    # -- what it serves

    @property
    def clock(self) -> MarketClock | None:
        """The market clock (None before :meth:`start`)."""
        return self._clock

    @property
    def urls(self) -> dict[str, dict[str, str]]:
        """``{protocol: {"rest": base URL, "ws": base URL}}`` for each served protocol."""
        return {p: {"rest": f"http://{self.host}:{self.port}/{p}",
                    "ws": f"ws://{self.host}:{self.port}/{p}"} for p in self.served}

    def url_lines(self) -> list[str]:
        """One printable line per protocol: ``binance  rest http://...  ws ws://...``."""
        width = max((len(p) for p in self.served), default=0)
        return [f"{p:<{width}}  rest {u['rest']}  ws {u['ws']}" for p, u in self.urls.items()]

    def account_lines(self) -> list[str]:
        """One printable line per traded account (orders, refusals, cancels, fills and
        positions so far); none when no protocol has credentials."""
        if self.desk is None:
            return []
        return [self.desk.account_line(p) for p in self._traded_protocols()]

    @property
    def lockstep_steps(self) -> int:
        """Steps played in lockstep so far (0 when not in lockstep)."""
        return self._lockstep.steps if self._lockstep is not None else 0

    @property
    def fault_counts(self) -> dict[str, int]:
        """Injected faults so far, by kind."""
        return dict(self.fault_log.counts)

    @property
    def replay_done(self) -> asyncio.Event:
        """Set when the clock has played the whole range."""
        assert self._clock is not None, "start the paper exchange first"
        return self._clock.done

    async def wait(self) -> None:
        """Until the clock stops (it played the range, or failed: then raise)."""
        assert self._clock_task is not None, "start the paper exchange first"
        await asyncio.shield(self._clock_task)


def _pair(overrides: dict[str, str], datasets: dict[tuple[str, str], Dataset]) -> dict[str, str]:
    """``{protocol: archive exchange}``: same-named exchanges, then the overrides."""
    exchanges = sorted({e for e, _ in datasets})
    unknown = sorted(set(overrides) - set(PROTOCOLS))
    if unknown:
        raise ConfigError(f"unknown protocol {unknown[0]!r}; expected one of "
                          f"{', '.join(PROTOCOLS)}")
    missing = sorted(set(overrides.values()) - set(exchanges))
    if missing:
        raise ConfigError(f"the archive has no data for exchange {missing[0]!r} in the "
                          f"range; it has {', '.join(exchanges) or 'nothing'}")
    served = {p: p for p in PROTOCOLS if p in exchanges}
    served.update(overrides)
    if not served:
        raise ConfigError(f"nothing to serve: the archive's exchanges in the range "
                          f"({', '.join(exchanges) or 'none'}) match no protocol; pair one "
                          f"with serve={{protocol: exchange}} (--serve PROTOCOL=EXCHANGE)")
    return {p: served[p] for p in PROTOCOLS if p in served}


async def serve_until_signalled(paper: PaperExchange,
                                announce: Callable[[str], None] = print) -> None:
    """Run ``paper`` until SIGINT or SIGTERM, announcing the URLs, the end of the replay
    and, on the way out, what each traded account did and the injected faults. A failing
    clock stops it too (and raises)."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        async with paper:
            for line in paper.url_lines():
                announce(line)
            if paper.page is not None:
                announce(f"page  {paper.page.login_url}")
            async with asyncio.TaskGroup() as tasks:
                watcher = tasks.create_task(_watch(paper, announce, stop))
                await stop.wait()
                watcher.cancel()
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
        for line in paper.account_lines():
            announce(line)
        announce(paper.fault_log.summary())


async def _watch(paper: PaperExchange, announce: Callable[[str], None],
                 stop: asyncio.Event) -> None:
    try:
        await paper.wait()
    except Exception:
        stop.set()
        raise
    announce("replay finished; serving the last state until interrupted")
