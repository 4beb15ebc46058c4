"""What the page's server reads: a :class:`PageSource`.

The :class:`~makerlab.monitor.server.Monitor` serves any source behind this interface
(the server, access rules, views and page are the same):

- :class:`~makerlab.monitor.collect.Collector`: a strategy's OMS and Feed (the strategy's
  side); its kill switch is ``oms.kill`` (cancel everything, stop quoting).
- :class:`~makerlab.paper.page.DeskCollector`: the paper exchange's desk (the venue's
  side, ``makerlab paper --page``); its kill switch is the operator's halt (every open
  order of the traded accounts cancelled, their new orders refused until the paper
  exits).

Rules: ``attach`` once before the first ``take`` (listeners go after everything else),
``detach`` on stop; ``take`` only reads; ``kill`` is the only action.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from makerlab.monitor.views import Snapshot

__all__ = ["KillResult", "PageSource"]


@dataclass(frozen=True, slots=True)
class KillResult:
    """What the kill switch did: ``ok`` (tripped), its reason and detail, the open orders
    before and after, and one line for the page (``message``)."""

    ok: bool
    reason: str
    detail: str
    open_before: int
    open_after: int
    message: str


class PageSource(Protocol):
    """A source of snapshots with a kill switch (module rules)."""

    mode: str  # shown in the page's header: "live", "paper venue"

    def attach(self) -> None: ...

    def detach(self) -> None: ...

    def take(self) -> Snapshot: ...

    async def kill(self, note: str) -> KillResult: ...
