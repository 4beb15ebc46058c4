"""A live monitoring page for a running strategy (docs/monitor.md).

``Monitor(oms, feed, port=8765)`` (or ``await oms.serve_page(feed, port=8765)``) serves,
on 127.0.0.1 by default, a page updated over a websocket: positions and PnL, open orders
against the book, fills and markouts, order flow, risk-limit usage, feed health, and the
kill switch; ``makerlab paper --page`` serves it venue-side (:mod:`makerlab.paper.page`).
Modules: :mod:`~makerlab.monitor.config` (PageConfig),
:mod:`~makerlab.monitor.source` (PageSource: what Monitor serves),
:mod:`~makerlab.monitor.taps` (counting listeners), :mod:`~makerlab.monitor.collect`
(snapshots), :mod:`~makerlab.monitor.views` (their payloads),
:mod:`~makerlab.monitor.markouts`, :mod:`~makerlab.monitor.auth` (tokens, input),
:mod:`~makerlab.monitor.server` (Monitor); ``static/`` the page (uPlot 1.6.32, MIT,
vendored: ``static/LICENSE.uPlot.txt``).
"""

from makerlab.monitor.config import PageConfig
from makerlab.monitor.server import Monitor
from makerlab.monitor.views import Snapshot

__all__ = ["Monitor", "PageConfig", "Snapshot"]
