"""The OMS's live session: what runs beside the mirrors while trading on a live venue.

Started by ``await oms.init()`` on a :class:`~makerlab.trading.protocols.ConnectedVenue`
(the Gateway's ``LiveOrderVenue``), stopped by ``await oms.cleanup()``. Rules:

- **start**: start the venue (specs, logins, user streams), take the initial snapshots of
  open orders, positions and balances into the mirrors, then run the owned tasks below.
- **owned tasks only**: orders reconciliation every ``refresh_orders_snapshot`` s,
  positions and balances every ``refresh_positions_snapshot`` s, the pending sweep every
  ``pending_timeout`` ms, the dead-man keeper (``RiskLimits.dead_man_ms``, re-armed every
  third of it) and the exit guard. A round that fails for the venue's sake (a
  :class:`~makerlab.errors.VenueError`) is logged and tried again next period; a task that
  fails otherwise trips the kill switch (exception): the mirror is no longer checked.
- **the private stream's health**: a DISCONNECTED status trips the kill switch
  (disconnect); a CONNECTED one after it reconciles that exchange (orders, every order
  only in the mirror queried whatever its age; positions and balances), then lifts the
  disconnect trip
  once every exchange's stream is up.
- **exit cancels everything**: ``cleanup()``, the venue closing (the Gateway's
  ``cleanup_clients()``), the event loop cancelling the exit guard (``asyncio.run``
  ending on an exception or Ctrl-C) and SIGTERM trip the kill switch (exit) before the
  connections close. SIGTERM is taken over only when nothing else handles it (its
  handler is the default) in the main thread; it trips the kill switch, closes the
  Gateway's connections, then ends the event loop with ``SystemExit(143)`` (128 +
  SIGTERM, the status SIGTERM's default handler gives).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import threading
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

from makerlab.core.events import FeedStatus, StatusKind
from makerlab.errors import VenueError
from makerlab.trading.protocols import ConnectedVenue
from makerlab.trading.reconcile import Reconciler
from makerlab.trading.risk import KillReason, KillSwitch

__all__ = ["LiveSession"]

log = logging.getLogger(__name__)

BACKSTOP_MS = 60_000  # the dead-man timeout armed by a kill when none is kept


class LiveSession:
    """Owned tasks and stream health of a live OMS (rules in the module docstring).

    Args:
        venue: the live venue.
        exchanges: the exchanges the OMS tracks.
        reconciler: the OMS's reconciler.
        kill_switch: the OMS's kill switch.
        trip: the OMS's trip (reason, detail): engages the switch and cancels everything.
        after_positions: awaited after a positions reconciliation that corrected a
            position (the risk check).
        close: closes the connections at SIGTERM (the Gateway's ``cleanup_clients``).
        refresh_orders_s, refresh_positions_s, pending_timeout_ms, dead_man_ms: periods.
    """

    def __init__(self, venue: ConnectedVenue, exchanges: list[str], reconciler: Reconciler,
                 kill_switch: KillSwitch,
                 trip: Callable[[KillReason, str], Coroutine[Any, Any, None]],
                 after_positions: Callable[[], Awaitable[None]],
                 close: Callable[[], Awaitable[None]], *,
                 refresh_orders_s: float, refresh_positions_s: float,
                 pending_timeout_ms: float, dead_man_ms: int) -> None:
        self.venue, self.exchanges, self.reconciler = venue, exchanges, reconciler
        self.kill_switch, self._trip = kill_switch, trip
        self._after_positions, self._close = after_positions, close
        self.periods = {"orders": refresh_orders_s, "positions": refresh_positions_s,
                        "pending": pending_timeout_ms / 1000}
        self.dead_man_ms = dead_man_ms
        self.down: set[str] = set()
        self._tasks: list[asyncio.Task[None]] = []
        self._signalled = False
        self._terminating: asyncio.Task[None] | None = None
        self.stopping = False

    # -- lifecycle ---------------------------------------------------------------------

    async def start(self) -> None:
        await self.venue.start()
        self.venue.add_failure_handler(self.failed)
        for exc in self.exchanges:
            await self.reconciler.orders(exc)
            await self._account(exc)
        for name, period in self.periods.items():
            for exc in self.exchanges:
                self.spawn(self._every(period, name, exc), f"makerlab-oms-{name}-{exc}")
        if self.dead_man_ms:
            self.spawn(self._keep_dead_man(), "makerlab-oms-deadman")
        self.spawn(self._guard(), "makerlab-oms-exit-guard")
        self._take_sigterm()

    def spawn(self, coro: Coroutine[Any, Any, None], name: str) -> None:
        """Run ``coro`` as an owned task (cancelled by ``stop()``)."""
        task = asyncio.create_task(coro, name=name)
        task.add_done_callback(self._ended)
        self._tasks.append(task)

    async def stop(self) -> None:
        """Cancel every owned task (but the one calling) and give SIGTERM back."""
        self.stopping = True
        self._give_sigterm_back()
        current = asyncio.current_task()
        tasks = [t for t in self._tasks if t is not current]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)  # failures were logged
        self._tasks.clear()

    def _ended(self, task: asyncio.Task[None]) -> None:
        if task in self._tasks:
            self._tasks.remove(task)
        if task.cancelled() or task.exception() is None or self.stopping:
            return
        log.error("%s failed", task.get_name(), exc_info=task.exception())
        self.spawn(self._trip(KillReason.EXCEPTION, f"{task.get_name()} failed: "
                              f"{task.exception()!r}"), "makerlab-oms-kill")

    async def failed(self, error: BaseException) -> None:
        """A listener or handler raised (venue, market data): trip the kill switch."""
        if not self.stopping:
            self.spawn(self._trip(KillReason.EXCEPTION, f"a handler raised {error!r}"),
                       "makerlab-oms-kill")

    # -- periodic work -----------------------------------------------------------------

    async def _every(self, period: float, name: str, exc: str) -> None:
        work = {"orders": self.reconciler.orders, "positions": self._account,
                "pending": self.reconciler.pending}[name]
        while True:
            await asyncio.sleep(period)
            try:
                await work(exc)
            except VenueError as error:
                log.warning("%s: %s reconciliation failed (%s); trying again in %s s",
                            exc, name, error, period)

    async def _account(self, exc: str) -> None:
        """The positions round: positions (the risk check after a correction), then
        balances."""
        if await self.reconciler.positions(exc):
            await self._after_positions()
        await self.reconciler.balances(exc)

    async def _keep_dead_man(self) -> None:
        while True:
            await self.arm_dead_man(self.dead_man_ms)
            await asyncio.sleep(self.dead_man_ms / 3000)

    async def arm_dead_man(self, timeout_ms: int | None = None) -> None:
        """Arm the venue's dead-man switch on every exchange (the kill's backstop)."""
        for exc in self.exchanges:
            try:
                await self.venue.arm_dead_man(exc, timeout_ms or self.dead_man_ms
                                              or BACKSTOP_MS)
            except VenueError as error:
                log.warning("%s: dead-man switch not armed (%s)", exc, error)

    # -- stream health -----------------------------------------------------------------

    async def on_status(self, status: FeedStatus) -> None:
        exc = status.exchange
        if exc not in self.exchanges or self.stopping:
            return
        if status.kind is StatusKind.DISCONNECTED and exc not in self.down:
            self.down.add(exc)
            self.spawn(self._trip(KillReason.DISCONNECT, f"{exc} private stream lost "
                                  f"({status.detail})"), "makerlab-oms-kill")
        elif status.kind is StatusKind.CONNECTED and exc in self.down:
            self.spawn(self._recover(exc), f"makerlab-oms-recover-{exc}")

    async def _recover(self, exc: str) -> None:
        """Reconcile ``exc`` after its stream came back; lift a disconnect trip once all
        streams are up."""
        await self.reconciler.orders(exc, force=True)
        await self._account(exc)
        self.down.discard(exc)
        if not self.down and self.kill_switch.reason is KillReason.DISCONNECT:
            log.warning("%s: private stream back and mirror reconciled", exc)
            self.kill_switch.release()

    # -- exit ----------------------------------------------------------------------------

    async def _guard(self) -> None:
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            if not self.stopping:
                await self._exit("the event loop cancelled the OMS (exit)")
            raise

    async def _exit(self, detail: str) -> None:
        self.stopping = True
        try:
            await self._trip(KillReason.EXIT, detail)
        except Exception:
            log.exception("kill switch at exit failed")

    def _take_sigterm(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            return
        if signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL:
            return
        with contextlib.suppress(NotImplementedError, RuntimeError):
            asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, self._on_sigterm)
            self._signalled = True

    def _give_sigterm_back(self) -> None:
        if self._signalled:
            self._signalled = False
            with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                asyncio.get_running_loop().remove_signal_handler(signal.SIGTERM)

    def _on_sigterm(self) -> None:
        log.warning("SIGTERM: cancelling everything, then stopping")
        if self._terminating is None:
            self._terminating = asyncio.get_running_loop().create_task(
                self._terminate(), name="makerlab-sigterm")

    async def _terminate(self) -> None:
        await self._exit("SIGTERM")
        await self._close()
        asyncio.get_running_loop().call_soon(_exit_terminated)


def _exit_terminated() -> None:
    """Raised in a loop callback, SystemExit leaves ``asyncio.run`` (which then cancels
    what is left) with SIGTERM's usual exit status."""
    raise SystemExit(128 + signal.SIGTERM)
