"""What the private protocols of the paper exchange share: credentials, the account as
told to the client, and the :class:`PrivateHub` between the protocols and the
:class:`~makerlab.paper.desk.Desk`.

- **credentials** come from a key file (``--key-file``: JSON ``{"binance": {"key": ...,
  "secret": ...}, ...}``) or the environment (``MAKERLAB_PAPER_BINANCE_KEY`` /
  ``MAKERLAB_PAPER_BINANCE_SECRET``, ...); a protocol without them serves no private side
  (its private calls answer the venue's invalid-key error). Secrets are kept in
  :class:`Credentials`, whose repr never shows them, and are never logged.
- **a request's send time** is the venue's "now": the market's exchange time when it
  comes in (the clock at its speed) or, in lockstep, the virtual time of the step the
  client is handling (:mod:`makerlab.paper.lockstep`).
- **answers come when the venue sends them**: at the market's pace, once exchange time
  reaches the answer's delivery time (request latency + the engine's decision + answer
  latency); in lockstep at once, the desk running ahead to the request's arrival.
- **user streams** get every delivery of their protocol at its delivery time (at the
  market's pace, or in the lockstep order), each protocol writing its own messages.
- **snapshots are what the client was told**: open orders, positions and the wallet as
  the answers and the stream events sent so far report them (:class:`Told`), so a
  reconciliation never sees an event that is still on its way.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
import os
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Protocol

from aiohttp import web

from makerlab.core.events import Fill, OrderEventKind, OrderUpdate
from makerlab.core.instruments import InstrumentSpec
from makerlab.core.positions import Position, accounting_for
from makerlab.errors import ConfigError
from makerlab.paper.desk import NEVER, Delivery, Desk, RequestKind
from makerlab.paper.faults import FaultInjector
from makerlab.paper.session import Session, SessionFaults
from makerlab.paper.venue import VenueContext
from makerlab.trading.protocols import AmendRequest, CancelRequest, OrderRequest
from makerlab.units import NS_PER_MS

__all__ = ["PRIVATE_PROTOCOLS", "Credentials", "Outcome", "PrivateHub", "Streamer", "Told",
           "desk_filled", "load_credentials", "serve_private"]

log = logging.getLogger(__name__)

PRIVATE_PROTOCOLS = ("binance", "bybit", "hyperliquid")
CLOSED_KEPT = 10_000
ZERO = Decimal(0)
_ALIVE = frozenset({"NEW", "PARTIAL"})


@dataclass(frozen=True)
class Credentials:
    """One account's API key and secret (Hyperliquid: the account address and the API
    wallet's private key); repr never shows the secret."""

    key: str
    secret: str = field(repr=False)

    def __repr__(self) -> str:
        return f"Credentials(key={self.key[:4]}***)"


def load_credentials(key_file: str | os.PathLike | None = None,
                     environ: Mapping[str, str] | None = None) -> dict[str, Credentials]:
    """Credentials per protocol: the key file's, then ``MAKERLAB_PAPER_<PROTOCOL>_KEY`` /
    ``_SECRET`` from the environment (see the module docstring)."""
    found: dict[str, Credentials] = {}
    if key_file is not None:
        found.update(_read_key_file(Path(key_file)))
    env = os.environ if environ is None else environ
    for protocol in PRIVATE_PROTOCOLS:
        key = env.get(f"MAKERLAB_PAPER_{protocol.upper()}_KEY")
        secret = env.get(f"MAKERLAB_PAPER_{protocol.upper()}_SECRET")
        if key and secret:
            found[protocol] = Credentials(key, secret)
    return found


def _read_key_file(path: Path) -> dict[str, Credentials]:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise ConfigError(f"cannot read the key file {path}: {type(exc).__name__}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"key file {path}: expected {{protocol: {{key, secret}}}}")
    out = {}
    for protocol, entry in data.items():
        if protocol not in PRIVATE_PROTOCOLS:
            raise ConfigError(f"key file {path}: unknown protocol {protocol!r}; private "
                              f"protocols: {', '.join(PRIVATE_PROTOCOLS)}")
        if not isinstance(entry, dict) or not entry.get("key") or not entry.get("secret"):
            raise ConfigError(f"key file {path}: {protocol} needs 'key' and 'secret'")
        out[protocol] = Credentials(str(entry["key"]), str(entry["secret"]))
    return out


# --------------------------------------------------------------------------- told


def desk_filled(update: OrderUpdate) -> Decimal:
    """The filled size of an order the desk reported (the desk's venue always says it)."""
    assert update.filled is not None, "the desk's venue reports every order's filled size"
    return update.filled


@dataclass
class Told:
    """One account as the client was told: open orders by oid (and the newest
    :data:`CLOSED_KEPT` closed ones, for order queries), positions with the exchange time
    of their last fill, wallet."""

    start: Decimal
    specs: Callable[[str], InstrumentSpec | None]
    orders: dict[str, OrderUpdate] = field(default_factory=dict)
    closed: OrderedDict[str, OrderUpdate] = field(default_factory=OrderedDict)
    positions: dict[str, Position] = field(default_factory=dict)
    fill_ns: dict[str, int] = field(default_factory=dict)
    _cloids: dict[str, str] = field(default_factory=dict)

    def apply(self, update: OrderUpdate, fill: Fill | None) -> None:
        """Take in an answer or a stream event sent to the client."""
        if fill is not None:
            self._book(fill)
        if update.kind in (OrderEventKind.CANCEL_REJECT, OrderEventKind.AMEND_REJECT):
            return
        if update.oid is None:
            return
        if update.cloid is not None:
            self._cloids[update.cloid] = update.oid
        if update.oid in self.closed:
            return  # an answer told after the stream closed the order: dead stays dead
        if update.status in _ALIVE:
            self.orders[update.oid] = update
            return
        self.orders.pop(update.oid, None)
        self.closed[update.oid] = update
        if len(self.closed) > CLOSED_KEPT:
            _, old = self.closed.popitem(last=False)
            if old.cloid is not None and self._cloids.get(old.cloid) == old.oid:
                del self._cloids[old.cloid]

    def find(self, cloid: str | None, oid: str | None) -> OrderUpdate | None:
        """An order as last told (open or recently closed), by oid or else cloid."""
        key = oid if oid is not None else self._cloids.get(cloid or "")
        if key is None:
            return None
        return self.orders.get(key) or self.closed.get(key)

    def _book(self, fill: Fill) -> None:
        spec = self.specs(fill.symbol)
        if spec is None:
            return
        old = self.positions.get(fill.symbol) or Position(fill.symbol)
        self.positions[fill.symbol] = accounting_for(spec).apply_fill(
            old, fill.side * fill.size, fill.price, fill.fee)
        self.fill_ns[fill.symbol] = max(self.fill_ns.get(fill.symbol, 0), fill.exchange_ts)

    @property
    def as_of_ns(self) -> int:
        """Exchange time of the last fill told (a snapshot includes every fill up to it)."""
        return max(self.fill_ns.values(), default=0)

    @property
    def wallet(self) -> Decimal:
        """Starting balance plus realised PnL net of fees."""
        return self.start + sum((p.realized_pnl for p in self.positions.values()), ZERO)

    def unrealized(self, symbol: str, mark: float) -> Decimal:
        pos, spec = self.positions.get(symbol), self.specs(symbol)
        if pos is None or spec is None or not pos.amount or mark != mark:
            return ZERO
        return accounting_for(spec).unrealized_pnl(pos, Decimal(repr(mark)))


# --------------------------------------------------------------------------- hub


@dataclass(frozen=True)
class Outcome:
    """What a request's arrival produced: its ``answers`` and every delivery (fills,
    expiries) it made."""

    answers: list[OrderUpdate]
    deliveries: list[Delivery]

    @property
    def answer(self) -> OrderUpdate:
        """The one answer of a request about one order."""
        [answer] = self.answers
        return answer

    def fills(self) -> list[Fill]:
        return [d.fill for d in self.deliveries if d.fill is not None]

    def expired(self) -> bool:
        return any(d.update.kind is OrderEventKind.EXPIRE for d in self.deliveries)


class Streamer(Protocol):
    """A protocol's user streams: send one delivery to the account's sessions."""

    def stream(self, delivery: Delivery, told: Told) -> None: ...

    def listeners(self) -> int:
        """How many user streams are open (subscribed to order events)."""
        ...


class Stepper(Protocol):
    """What the hub needs from the lockstep coordinator."""

    step_ns: int
    finished: bool

    def received(self) -> None: ...


class PrivateHub:
    """The private protocols' way to the desk (rules in the module docstring).

    Args:
        desk: the trading side.
        market_ns: the market's exchange time now (the market clock's).
        credentials: per protocol.
    """

    def __init__(self, desk: Desk, market_ns: Callable[[], int],
                 credentials: Mapping[str, Credentials]) -> None:
        self.desk = desk
        self._market_ns = market_ns
        self._credentials = dict(credentials)
        self.lockstep: Stepper | None = None
        self.done = False  # the market played everything: exchange time runs out
        self._told: dict[str, Told] = {}
        self._streamers: dict[str, Streamer] = {}
        self._waiters: list[tuple[int, asyncio.Future[None]]] = []
        self._wake = asyncio.Event()
        self.reached = 0  # deliveries sent up to this time (at the market's pace)
        self._dead_men: dict[tuple[str, str | None], asyncio.Task[None]] = {}

    # -- accounts ----------------------------------------------------------------------

    def credentials(self, protocol: str) -> Credentials | None:
        return self._credentials.get(protocol)

    def told(self, protocol: str) -> Told:
        if protocol not in self._told:
            self._told[protocol] = Told(self.desk.config.balance,
                                        lambda symbol: self.desk.spec(protocol, symbol))
        return self._told[protocol]

    def add_streamer(self, protocol: str, streamer: Streamer) -> None:
        self._streamers[protocol] = streamer

    def spec(self, protocol: str, symbol: str) -> InstrumentSpec | None:
        return self.desk.spec(protocol, symbol)

    def listeners(self, protocol: str) -> int:
        """How many user streams of ``protocol``'s account are open."""
        streamer = self._streamers.get(protocol)
        return 0 if streamer is None else streamer.listeners()

    def marks(self, protocol: str) -> dict[str, float]:
        """Mid of each traded market of ``protocol`` (the engines' current book)."""
        return {s: self.desk.engine(protocol, s).mid() for s in self.desk.markets(protocol)}

    # -- time --------------------------------------------------------------------------

    def send_ns(self) -> int:
        """The send time of a request coming in now (module rules)."""
        if self.lockstep is not None:
            return self.lockstep.step_ns
        return max(self.desk.now, self._market_ns())

    def client_ms(self) -> int:
        """The time a client's request timestamps are checked against: the wall clock,
        or in lockstep the virtual time the client's clock follows."""
        if self.lockstep is not None:
            return self.lockstep.step_ns // NS_PER_MS
        return time.time_ns() // NS_PER_MS

    # -- requests ----------------------------------------------------------------------

    def received(self) -> None:
        """An order-entry message came in (counted in lockstep, valid or not)."""
        if self.lockstep is not None:
            self.lockstep.received()

    async def request(self, protocol: str, kind: RequestKind,
                      request: OrderRequest | CancelRequest | AmendRequest | str | None
                      ) -> Outcome:
        """Send a request; the venue's answers to it (module rules)."""
        pending = await self.desk.send(protocol, kind, request, self.send_ns())
        if self.lockstep is not None:
            deliveries = await self.desk.run_through(pending)
            if self.lockstep.finished:  # no more steps: what is due goes out now
                await self.advance(max(self.desk.now, self.reached))
        else:
            self.wake()
            deliveries = await pending.done
        answers = pending.answers(deliveries)
        if self.lockstep is None and answers:
            await self._until(max(a.t for a in answers))
        told = self.told(protocol)
        for answer in answers:
            told.apply(answer.update, None)
        return Outcome([a.update for a in answers], deliveries)

    def arm_dead_man(self, protocol: str, symbol: str | None, timeout_ms: int) -> None:
        """Cancel ``protocol``'s orders (of ``symbol``) unless armed again within
        ``timeout_ms`` of **wall** time (0 disarms): a dead-man switch watches the client,
        which lives in wall time whatever the market's speed (in lockstep virtual time
        only moves when the client answers)."""
        key = (protocol, symbol)
        old = self._dead_men.pop(key, None)
        if old is not None:
            old.cancel()
        if timeout_ms > 0:
            self._dead_men[key] = asyncio.get_running_loop().create_task(
                self._dead_man(protocol, symbol, timeout_ms / 1000))

    async def _dead_man(self, protocol: str, symbol: str | None, after_s: float) -> None:
        await asyncio.sleep(after_s)
        self._dead_men.pop((protocol, symbol), None)
        log.info("%s: dead-man switch fired; cancelling every order%s", protocol,
                 f" of {symbol}" if symbol else "")
        await self.request(protocol, RequestKind.CANCEL_ALL, symbol)

    async def close(self) -> None:
        """Stop the dead-man timers."""
        for task in self._dead_men.values():
            task.cancel()
        for task in self._dead_men.values():
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._dead_men.clear()

    # -- deliveries --------------------------------------------------------------------

    def publish(self, delivery: Delivery) -> None:
        """Send a delivery to its protocol's user streams (and the told account)."""
        told = self.told(delivery.protocol)
        told.apply(delivery.update, delivery.fill)
        streamer = self._streamers.get(delivery.protocol)
        if streamer is not None:
            streamer.stream(delivery, told)

    # -- at the market's pace ----------------------------------------------------------

    def wake(self) -> None:
        """Something may be due: the driver looks."""
        self._wake.set()

    async def drive(self) -> None:
        """Keep exchange time with the market (not in lockstep): run what is due whenever
        the market moves or a request comes in, and every few ms while something waits
        for a later time."""
        while True:
            waiting = self.desk.next_arrival()[0] < NEVER or self.desk.outbox
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), 0.005 if waiting else None)
            self._wake.clear()
            await self.advance(NEVER - 1 if self.done else self._market_ns())

    async def advance(self, until_ns: int) -> None:
        """Move exchange time to ``until_ns`` and send what became due."""
        await self.desk.advance(until_ns)
        while self.desk.next_delivery()[0] <= until_ns:
            self.publish(self.desk.pop_delivery())
        self.reached = max(self.reached, until_ns)
        due = [w for w in self._waiters if w[0] <= self.reached]
        self._waiters = [w for w in self._waiters if w[0] > self.reached]
        for _, future in due:
            if not future.done():
                future.set_result(None)

    async def _until(self, t: int) -> None:
        if t <= self.reached:
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append((t, future))
        self.wake()
        await future


_SESSIONS = itertools.count(1)
PRIVATE_HEARTBEAT_S = 10.0  # protocol pings keep quiet user streams alive


async def serve_private(context: VenueContext, request: web.Request, kind: str,
                        make: Callable[[web.WebSocketResponse, SessionFaults, str], Session]
                        ) -> web.WebSocketResponse:
    """Accept a private websocket (order entry or user stream) and serve the session
    ``make`` builds until it closes. Its messages are never faulted."""
    ws = web.WebSocketResponse(heartbeat=PRIVATE_HEARTBEAT_S, autoping=True)
    await ws.prepare(request)
    name = f"{kind}#{next(_SESSIONS)}"
    faults: SessionFaults = FaultInjector(context.faults, context.fault_log, name,
                                          context.faults.rng(kind, name))
    await make(ws, faults, name).serve()
    return ws
