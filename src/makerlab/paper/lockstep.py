"""Lockstep: the paper exchange plays the archive at the pace of one client's reactions,
in the Replayer's virtual time, so a live strategy sees exactly what it would see in a
replay (``makerlab paper --lockstep``; ``makerlab parity``).

A paper-only extension, off by default, kept out of the venue protocols: it adds three
messages on the sockets the client already has (every one an object whose first key is
``"paper"``), and changes nothing else on the wire.

The problem: a live strategy reacts in wall time while the paper plays its market; for
the replay's fills the venue must handle each order at the **virtual** time the Replayer
would (the local time of the market message the strategy reacted to, plus the request
latency) and must not match past that point before it knows the reaction.

Rules:

- **the Replayer's clock**: every market event has the local time exchange time +
  FEED_PUBLIC latency (a :class:`~makerlab.sim.latency.ConstantLatency`); events are
  played in the Replayer's order (time, trades before books, markets in (exchange,
  symbol) order, archive order). Book streams are not throttled (every archived message
  is sent) and a book opening with a snapshot in the range opens when it plays (a REST
  book request for it waits until then).
- **one step at a time**: the events of one local time are one **step**; each socket
  the step sends something to first gets ``{"paper": "clock", "t": ns}`` (the client's
  clock follows it), then the step's messages, then ``{"paper": "sync", "n": step,
  "books": k}``. The client answers ``{"paper": "synced", "n": step, "requests": N}``
  once the handlers of everything before the marker returned, with ``N`` the order
  requests it has sent so far (and, on a market-data socket, once it has delivered
  the ``k`` REST book snapshots its protocol answered). The paper waits for every
  answer and for ``N`` requests to have arrived before the next step.
- **requests are stamped with the step**: an order request that comes in is sent at the
  virtual time of the step being handled; the desk runs ahead to its arrival (REQ_PRIVATE
  later) at once and answers it, so the client's call returns as a live one does. The
  market itself does not move: what the desk produced waits for its delivery time.
- **account events are steps too**: fills, expiries and the venue's own copies of its
  answers reach the user streams at their delivery time, after the market events of
  that time (scheduled events after market data, as in :mod:`makerlab.sim.timeline`).
- **the client starts it**: nothing plays before the client says
  ``{"paper": "ready"}`` (once its subscriptions are made).

Timing differences with the Replayer, by design: a request's answer reaches the client
at once (the Replayer delivers the ACK ACK_PRIVATE later, after the market events of
its time); random latency models are refused (their samples would be drawn in another
order).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from makerlab.errors import ConfigError
from makerlab.paper.desk import NEVER, Desk
from makerlab.paper.market import MarketClock
from makerlab.paper.private import PrivateHub
from makerlab.paper.session import Hub, Session
from makerlab.paper.source import BookMessage, TradePrint
from makerlab.sim.latency import ConstantLatency, Latencies, LatencyModel

__all__ = ["Lockstep", "feed_latency"]

log = logging.getLogger(__name__)

Key = tuple[str, str]


def feed_latency(model: LatencyModel) -> int:
    """The FEED_PUBLIC latency (ns) lockstep adds to exchange time; ConfigError for a
    model that is not constant."""
    if not isinstance(model, ConstantLatency):
        raise ConfigError(f"lockstep needs constant latencies (ConstantLatency), got "
                          f"{type(model).__name__}: random samples would not follow the "
                          "Replayer's")
    return model.ns[Latencies.FEED_PUBLIC]


class Lockstep:
    """Plays the market in lockstep with one client (module rules).

    Args:
        clock: the market clock (its events, its markets).
        hub: the sessions.
        private: the trading side (None: market data only).
        feed_ns: FEED_PUBLIC latency in ns.
    """

    def __init__(self, clock: MarketClock, hub: Hub, private: PrivateHub | None,
                 feed_ns: int) -> None:
        self.clock, self.hub, self.private, self.feed_ns = clock, hub, private, feed_ns
        self.desk: Desk | None = private.desk if private is not None else None
        self.step_ns = 0
        self.steps = 0
        self.requests = 0
        self.finished = False
        self.ready = asyncio.Event()
        self._arrived = asyncio.Event()
        self._waiting: dict[Session, asyncio.Future[int]] = {}
        hub.lockstep = self
        if private is not None:
            private.lockstep = self

    # -- the client's messages ---------------------------------------------------------

    def on_client(self, session: Session, message: dict[str, Any]) -> None:
        kind = message.get("paper")
        if kind == "ready":
            self.ready.set()
        elif kind == "synced" and message.get("n") == self.steps:
            future = self._waiting.get(session)
            if future is not None and not future.done():
                future.set_result(int(message.get("requests", 0)))

    def closed(self, session: Session) -> None:
        future = self._waiting.get(session)
        if future is not None and not future.done():
            future.set_result(0)

    def received(self) -> None:
        """An order request came in."""
        self.requests += 1
        self._arrived.set()

    # -- playing -----------------------------------------------------------------------

    async def run(self) -> None:
        """Wait for the client, play the range step by step, then every remaining
        account event; then the market is done."""
        await self.ready.wait()
        markets = sorted({(d.exchange, d.symbol) for d in self.clock.datasets})
        rank = {key: i for i, key in enumerate(markets)}
        shift = dict.fromkeys(markets, self.feed_ns)
        for hour in self.clock.hours:
            events = await self.clock.load(hour)
            batch: list[tuple[Key, BookMessage | TradePrint]] = []
            for t, key, event in events.in_order(shift, rank):
                if batch and t != self.step_ns:
                    await self._market_step(batch)
                    batch = []
                self.step_ns = t
                batch.append((key, event))
            if batch:
                await self._market_step(batch)
        await self._until(NEVER)
        self.finished = True
        self.clock.finish()
        if self.private is not None:
            self.private.done = True

    async def _market_step(self, batch: list[tuple[Key, BookMessage | TradePrint]]) -> None:
        t = self.step_ns
        await self._until(t)
        self.step_ns = t

        def play() -> None:
            for key, event in batch:
                self.clock.play(key, event)

        await self._step(play)

    async def _until(self, t: int) -> None:
        """Exchange rows up to ``t`` and scheduled events before it (account deliveries
        as steps), in the Replayer's order."""
        desk = self.desk
        if desk is None:
            return
        while True:
            row = desk.next_row_ns()
            arrival, delivery = desk.next_arrival(), desk.next_delivery()
            scheduled = min(arrival, delivery)
            if row != NEVER and row <= t and row <= scheduled[0]:
                await desk.step_row()
            elif scheduled[0] < t:
                if scheduled == arrival:
                    await desk.run_arrival()
                else:
                    await self._deliveries(scheduled[0])
            else:
                return

    async def _deliveries(self, t: int) -> None:
        """One step of the account events due at ``t`` (up to the next arrival)."""
        desk, private = self.desk, self.private
        assert desk is not None and private is not None
        self.step_ns = t

        def publish() -> None:
            while desk.next_delivery()[0] == t and desk.next_delivery() < desk.next_arrival():
                private.publish(desk.pop_delivery())

        await self._step(publish)

    async def _step(self, send: Callable[[], None]) -> None:
        """Send one step and wait until the client has handled it."""
        hub = self.hub
        self.steps += 1
        hub.step, hub.step_ns = self.steps, self.step_ns
        books = dict(hub.rest_books)
        try:
            send()
        finally:
            touched = list(hub.touched)
            hub.step, hub.touched = 0, {}
        changed = {p for p, n in hub.rest_books.items() if books.get(p) != n}
        touched += [s for s in hub.sessions if s.protocol in changed and s.topics
                    and s not in touched]
        if touched:
            await self._sync(touched)

    async def _sync(self, sessions: list[Session]) -> None:
        loop = asyncio.get_running_loop()
        self._waiting = {s: loop.create_future() for s in sessions}
        for session in sessions:
            if not session.marked(self.steps):
                session.reply({"paper": "clock", "t": self.step_ns})
            session.reply({"paper": "sync", "n": self.steps,
                           "books": self.hub.rest_books.get(session.protocol, 0)})
        counts = await asyncio.gather(*self._waiting.values())
        self._waiting = {}
        while self.requests < max(counts):
            self._arrived.clear()
            await self._arrived.wait()
