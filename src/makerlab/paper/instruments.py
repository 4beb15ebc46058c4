"""Instrument rules for the paper exchange's metadata endpoints and wire numbers.

A served instrument takes makerlab's bundled spec (:func:`makerlab.core.instruments.
load_specs`) when there is one. Otherwise its tick and lot are inferred from the first
hour of data by :func:`makerlab.data.specs.infer_spec` (the largest step that every
price, respectively size, is a multiple of; base and quote from the symbol; minimums
one lot and no notional), as a replay infers an unknown market's spec.

Wire numbers never lose a digit of the archive: an instrument also records how many
decimals its archived prices and sizes need, and venues write at least that many (book
sizes finer than the lot occur on real venues; so does data stored under another
venue's name, whose spec does not fit it).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal

import numpy as np

from makerlab.core.instruments import InstrumentSpec, load_specs
from makerlab.data.archive import read_table
from makerlab.data.arrays import column_numpy
from makerlab.data.schema import BOOK_DELTA, BOOK_SNAPSHOT, TRADES
from makerlab.data.specs import infer_spec, infer_step
from makerlab.paper.source import Dataset, hour_name

__all__ = ["Instrument", "cached", "decimals", "fixed", "load_instrument", "plain"]

log = logging.getLogger(__name__)

_CACHED = 1 << 16


@dataclass(frozen=True)
class Instrument:
    """A served instrument: its rules and the decimals its archived numbers need."""

    spec: InstrumentSpec
    price_places: int
    size_places: int


def load_instrument(root: str | os.PathLike, dataset: Dataset, hours: list[int]) -> Instrument:
    """The rules of ``dataset``'s instrument (see the module docstring)."""
    prices, sizes = _sample(root, dataset, hours)
    tick, lot = infer_step(prices), infer_step(sizes)
    spec = load_specs().get((dataset.exchange, dataset.symbol))
    if spec is None:
        spec = infer_spec(dataset.exchange, dataset.symbol, prices, sizes)
    elif tick % spec.tick_size or lot % spec.lot_size:
        log.info("%s/%s: archived prices/sizes have steps %s/%s, finer than the tick %s "
                 "and lot %s; writing them in full", dataset.exchange, dataset.symbol, tick,
                 lot, spec.tick_size, spec.lot_size)
    return Instrument(spec, max(decimals(tick), decimals(spec.tick_size)),
                      max(decimals(lot), decimals(spec.lot_size)))


def _sample(root: str | os.PathLike, dataset: Dataset,
            hours: list[int]) -> tuple[np.ndarray, np.ndarray]:
    """Prices and sizes of the first hour with data (book levels and trades)."""
    first = min(set(hours) & (dataset.hours | dataset.trade_hours))
    hour, key = hour_name(first), (dataset.exchange, dataset.symbol)
    parts: list[tuple[np.ndarray, np.ndarray]] = []
    if dataset.book_kind == BOOK_DELTA and first in dataset.hours:
        table = read_table(root, BOOK_DELTA, *key, hour, hour, columns=["price", "size"])
        parts.append((table.column("price").to_numpy(), table.column("size").to_numpy()))
    if dataset.book_kind == BOOK_SNAPSHOT and first in dataset.hours:
        table = read_table(root, BOOK_SNAPSHOT, *key, hour, hour, depth=dataset.depth)
        for side in ("bid", "ask"):
            parts.append((column_numpy(table.column(f"{side}_price")).ravel(),
                          column_numpy(table.column(f"{side}_size")).ravel()))
    if first in dataset.trade_hours:
        table = read_table(root, TRADES, *key, hour, hour, columns=["price", "size"])
        parts.append((table.column("price").to_numpy(), table.column("size").to_numpy()))
    prices = np.concatenate([p for p, _ in parts])
    sizes = np.concatenate([s for _, s in parts])
    return prices, sizes


def decimals(step: Decimal) -> int:
    """Digits after the point of ``step`` as written (``Decimal('0.10')`` -> 2)."""
    return max(0, -int(step.as_tuple().exponent))


def plain(value: Decimal) -> str:
    """``value`` in positional notation as written (``Decimal('0.10')`` -> ``'0.10'``)."""
    return format(value, "f")


def fixed(places: int) -> Callable[[float], str]:
    """A writer of floats with ``places`` decimals (``61800.2`` -> ``'61800.20'``).

    Prices and sizes repeat a lot near the touch, so written numbers are remembered (up
    to :data:`_CACHED` of them per writer).
    """
    return cached(f"{{:.{places}f}}".format)


def cached(write: Callable[[float], str]) -> Callable[[float], str]:
    """``write`` remembering its results for up to :data:`_CACHED` distinct numbers."""
    memory: dict[float, str] = {}
    recall = memory.get

    def remembered(value: float) -> str:
        text = recall(value)
        if text is None:
            text = write(value)
            if len(memory) < _CACHED:
                memory[value] = text
        return text

    return remembered
