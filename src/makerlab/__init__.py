"""makerlab: crypto market making from tick data to live trading.

Record tick data, replay it in a realistic simulator, study fair prices and signals,
and trade live, with one strategy codebase for backtest and production.
"""

from makerlab.errors import ConfigError, CrossedBook, DataError, MakerlabError, SequenceGap

__version__ = "0.1.0"

__all__ = [
    "ConfigError",
    "CrossedBook",
    "DataError",
    "MakerlabError",
    "SequenceGap",
]
