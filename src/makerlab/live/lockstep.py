"""The client side of a paper exchange's lockstep mode (``makerlab paper --lockstep``,
:mod:`makerlab.paper.lockstep`), used only when a Gateway venue says ``env: paper`` and
``lockstep: true``.

- **the clock follows the data**: ``{"paper": "clock", "t": ns}`` sets :attr:`Lockstep.clock`
  (a :class:`~makerlab.core.clock.ReplayClock`), which the Gateway uses for receive
  times, order timestamps and the tutorial's ``_time()``, as the Replayer's clock.
- **a sync is answered after the handlers**: ``{"paper": "sync", "n", "books"}`` is
  answered ``{"paper": "synced", "n", "requests"}`` on the same socket; the socket's read
  loop handles frames one after the other, so every frame before the marker has been
  handled (handlers returned). ``requests`` is how many order requests the client sent
  (:meth:`Lockstep.sent`, counted by the private clients); on a market-data socket the
  answer also waits until ``books`` REST book snapshots of that exchange were delivered.
- **REST books are delivered in their step**: once the market runs, a REST book
  snapshot (which the paper answers when the book opens) is delivered only when a sync
  marker of its exchange counts it (:meth:`Lockstep.book_turn`), so after that step's
  clock marker.
- **ready when quiet**: once the sockets are open and no subscription came for
  :attr:`Lockstep.settle_s` seconds, ``{"paper": "ready"}`` starts the paper's market.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import Counter

import orjson

from makerlab.core.clock import ReplayClock
from makerlab.live.transport import Link

__all__ = ["Lockstep"]

_MARK = b'{"paper"'


class Lockstep:
    """One Gateway's side of the lockstep (module rules)."""

    settle_s = 1.0

    def __init__(self) -> None:
        self.clock = ReplayClock()
        self.requests = 0
        self.started = False  # "ready" was sent: the market runs
        self._books: Counter[str] = Counter()
        self._fetched: Counter[str] = Counter()
        self._asked: Counter[str] = Counter()
        self._delivered = asyncio.Event()
        self._asking = asyncio.Event()
        self._links: dict[Link, None] = {}
        self._quiet_since = time.monotonic()
        self._ready: asyncio.Task[None] | None = None

    # -- what the live stack reports ---------------------------------------------------

    def touch(self) -> None:
        """A subscription or a login: the strategy is still setting up."""
        self._quiet_since = time.monotonic()
        if self._ready is None:
            self._ready = asyncio.get_running_loop().create_task(self._announce())

    def opened(self, link: Link) -> None:
        self._links[link] = None
        self.touch()

    def closed(self, link: Link) -> None:
        self._links.pop(link, None)

    def sent(self) -> None:
        """An order request is leaving."""
        self.requests += 1

    async def book_turn(self, exchange: str) -> None:
        """A REST book snapshot of ``exchange`` came: wait for the step that counts it."""
        self._fetched[exchange] += 1
        while self.started and self._asked[exchange] < self._fetched[exchange]:
            self._asking.clear()
            await self._asking.wait()

    def book_delivered(self, exchange: str) -> None:
        """A REST book snapshot of ``exchange`` was delivered (or given up)."""
        self._books[exchange] += 1
        self._delivered.set()

    # -- the paper's frames ------------------------------------------------------------

    async def intercept(self, data: str | bytes, link: Link, exchange: str) -> bool:
        """Handle ``data`` if it is a lockstep frame (True), else leave it (False)."""
        raw = data.encode() if isinstance(data, str) else data
        if not raw.startswith(_MARK):
            return False
        message = orjson.loads(raw)
        if message.get("paper") == "clock":
            self.clock.ns = int(message["t"])
        elif message.get("paper") == "sync":
            books = int(message.get("books", 0))
            self._asked[exchange] = max(self._asked[exchange], books)
            self._asking.set()
            await self._synced(books, exchange)
            await link.send(orjson.dumps({"paper": "synced", "n": message.get("n"),
                                          "requests": self.requests}))
        return True

    async def _synced(self, books: int, exchange: str) -> None:
        while self._books[exchange] < books:
            self._delivered.clear()
            await self._delivered.wait()

    async def _announce(self) -> None:
        while not self._links or time.monotonic() - self._quiet_since < self.settle_s:
            await asyncio.sleep(self.settle_s / 4)
        link = next(iter(self._links))
        self.started = True
        await link.send(b'{"paper":"ready"}')

    async def close(self) -> None:
        if self._ready is not None:
            self._ready.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._ready
            self._ready = None
