"""The paper exchange: an archive replayed over the public protocols of Binance USD-M
(and spot), Bybit v5 linear and Hyperliquid on 127.0.0.1, with fault injection.

See ``docs/paper.md`` and :class:`PaperExchange`.
"""

from makerlab.paper.faults import FaultSpec
from makerlab.paper.server import PROTOCOLS, PaperExchange, serve_until_signalled

__all__ = ["PROTOCOLS", "FaultSpec", "PaperExchange", "serve_until_signalled"]
