"""makerlab: crypto market making from tick data to live trading.

Record tick data, replay it in a realistic simulator, study fair prices and signals,
and trade live, with one strategy codebase for backtest and production.
"""

import importlib as _importlib
from typing import TYPE_CHECKING

from makerlab.core.bars import (
    Bars,
    DistanceBars,
    DollarBars,
    ProbabilisticSignedTickBars,
    SignedDollarBars,
    SignedTickBars,
    SignedVolumeBars,
    TickBars,
    TimeBars,
    VolumeBars,
)
from makerlab.core.instruments import InstrumentSpec, get_spec, load_specs
from makerlab.core.lob import LOB
from makerlab.core.orders import Order, Orders, OrderStatus
from makerlab.core.positions import Position, Positions
from makerlab.core.ringbuffer import RingBuffer
from makerlab.core.trades import Trades
from makerlab.errors import (
    ConfigError,
    CrossedBook,
    DataError,
    MakerlabError,
    OrderRejected,
    SequenceGap,
    UnsortedData,
)
from makerlab.sweep import params
from makerlab.trading.feed import Feed, FeedCls, FeedType
from makerlab.trading.oms import OMS

if TYPE_CHECKING:
    from makerlab.live.gateway import Gateway

__version__ = "0.1.0"

_LAZY = {"Gateway": "makerlab.live.gateway"}  # the live stack loads when first asked for


def __getattr__(name: str) -> object:
    """``makerlab.Gateway`` imports the live stack on first use: a backtest never loads it
    (hundreds of modules whose objects the garbage collector would walk during a replay)."""
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'makerlab' has no attribute {name!r}")
    value = getattr(_importlib.import_module(module), name)
    globals()[name] = value
    return value


__all__ = [  # noqa: RUF022 - plain sorted order, checked by a test
    "Bars",
    "ConfigError",
    "CrossedBook",
    "DataError",
    "DistanceBars",
    "DollarBars",
    "Feed",
    "FeedCls",
    "FeedType",
    "Gateway",
    "InstrumentSpec",
    "LOB",
    "MakerlabError",
    "OMS",
    "Order",
    "OrderRejected",
    "OrderStatus",
    "Orders",
    "Position",
    "Positions",
    "ProbabilisticSignedTickBars",
    "RingBuffer",
    "SequenceGap",
    "SignedDollarBars",
    "SignedTickBars",
    "SignedVolumeBars",
    "TickBars",
    "TimeBars",
    "Trades",
    "UnsortedData",
    "VolumeBars",
    "get_spec",
    "load_specs",
    "params",
]
