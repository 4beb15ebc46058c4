"""Instrument specs for any archived market: spec files, the venue spec cache, inference
from the data, and the one resolver a replay uses.

:class:`SpecResolver` gives each market its spec from the first of these that has it:

1. **passed by the user**: ``specs=`` a spec file, a directory of spec files, or a
   mapping ``{exchange: {symbol: InstrumentSpec | row}}`` (a row needs ``tick_size`` and
   ``lot_size``; ``min_qty`` defaults to one lot, ``min_notional`` to 0, ``kind``,
   ``base`` and ``quote`` to what :func:`infer_spec` would say);
2. **the venue spec cache**: ``<cache>/<exchange>.json``, written by the live
   :class:`~makerlab.live.gateway.Gateway` whenever it fetches a venue's instrument list
   (``$MAKERLAB_SPEC_CACHE`` or ``~/.cache/makerlab/specs``);
3. **the bundled specs** (:func:`makerlab.core.instruments.load_specs`, ``makerlab specs``);
4. **inferred from the data** (:func:`infer_spec`): tick = the largest step every price
   is a multiple of (the finest step the prices show), lot likewise for sizes, minimum
   quantity one lot, minimum notional 0; a :class:`UserWarning` names the market and the
   values, since orders will be checked against a guess.

A spec file is JSON ``{"instruments": [rows]}`` (rows as in
:func:`~makerlab.core.instruments.spec_rows`), the format of the bundled file and of the
cache. Cache files are written atomically (temporary file + rename), so a reader never
sees half a file.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
import warnings
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import numpy as np

from makerlab.core.instruments import (
    DECIMAL_FIELDS,
    InstrumentSpec,
    load_specs,
    spec_from_row,
    spec_rows,
)
from makerlab.errors import ConfigError

__all__ = [
    "SOURCES",
    "Resolved",
    "SpecResolver",
    "default_cache_dir",
    "infer_spec",
    "infer_step",
    "passed_specs",
    "read_spec_dir",
    "read_spec_file",
    "read_specs",
    "split_symbol",
    "write_specs",
]

SOURCES = ("passed", "cache", "bundled", "inferred")
"""Where a resolved spec came from, in the order they are tried."""

Key = tuple[str, str]
Sample = Callable[[], tuple[np.ndarray, np.ndarray]]

_QUOTES = ("USDT", "USDC", "FDUSD", "BUSD", "USD", "EUR", "BTC", "ETH")
_MAX_DECIMALS = 12
_ROW_KEYS = frozenset({"exchange", "symbol", "base", "quote", "kind", "sig_figs", "source",
                       *DECIMAL_FIELDS})


# -- the cache and spec files -------------------------------------------------------------


def default_cache_dir() -> Path:
    """``$MAKERLAB_SPEC_CACHE`` or ``~/.cache/makerlab/specs``."""
    env = os.environ.get("MAKERLAB_SPEC_CACHE")
    return Path(env) if env else Path.home() / ".cache" / "makerlab" / "specs"


def write_specs(directory: Path, exchange: str, specs: Iterable[InstrumentSpec]) -> Path:
    """Write ``exchange``'s specs to ``directory/<exchange>.json`` atomically."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{exchange}.json"
    text = json.dumps({"exchange": exchange, "fetched_at_ns": time.time_ns(),
                       "instruments": spec_rows(specs)}, indent=1)
    fd, tmp = tempfile.mkstemp(prefix=f".{exchange}.", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "w") as out:
            out.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def read_spec_file(path: str | os.PathLike) -> dict[Key, InstrumentSpec]:
    """The specs in one spec file, keyed by ``(exchange, symbol)``.

    Raises:
        ConfigError: the file cannot be read or a row is incomplete or invalid.
    """
    try:
        rows = json.loads(Path(path).read_text())["instruments"]
        specs = [spec_from_row(row) for row in rows]
    except (OSError, ValueError, KeyError, TypeError, InvalidOperation) as exc:
        raise ConfigError(f"{path}: not a readable spec file ({type(exc).__name__}: {exc})"
                          ) from exc
    return {(spec.exchange, spec.symbol): spec for spec in specs}


def read_spec_dir(directory: str | os.PathLike) -> dict[Key, InstrumentSpec]:
    """The specs of every ``*.json`` spec file in ``directory`` (none if it is absent)."""
    found: dict[Key, InstrumentSpec] = {}
    for file in sorted(Path(directory).glob("*.json")):
        found.update(read_spec_file(file))
    return found


def read_specs(path: str | os.PathLike) -> dict[str, InstrumentSpec]:
    """The specs in one cache file (one exchange), keyed by symbol."""
    return {symbol: spec for (_, symbol), spec in read_spec_file(path).items()}


# -- inference ----------------------------------------------------------------------------


def infer_step(values: np.ndarray) -> Decimal:
    """The largest decimal step every positive finite value is a multiple of
    (``[61800.2, 61800.4]`` -> ``0.2``; at most 12 decimals)."""
    v = np.unique(values[np.isfinite(values) & (values > 0)])
    if v.size == 0:
        return Decimal(1)
    for places in range(_MAX_DECIMALS + 1):
        scaled = v * 10.0**places
        units = np.round(scaled)
        if np.all(np.abs(scaled - units) <= 1e-9 * np.maximum(1.0, scaled)):
            step = int(np.gcd.reduce(units.astype(np.int64)))
            return Decimal(step).scaleb(-places)
    return Decimal(1).scaleb(-_MAX_DECIMALS)


def split_symbol(symbol: str, exchange: str) -> tuple[str, str]:
    """``('BTC', 'USDT')`` for ``BTCUSDT``; a bare coin (Hyperliquid's ``BTC``) is quoted
    in USDC there and USD elsewhere."""
    for quote in _QUOTES:
        if symbol.endswith(quote) and len(symbol) > len(quote):
            return symbol[: -len(quote)].rstrip("-_/"), quote
    return symbol, "USDC" if exchange.startswith("hyperliquid") else "USD"


def _kind(exchange: str) -> str:
    return "spot" if exchange.endswith("_spot") else "linear_perpetual"


def infer_spec(exchange: str, symbol: str, prices: np.ndarray,
               sizes: np.ndarray) -> InstrumentSpec:
    """A spec read off the data: tick and lot by :func:`infer_step`, minimum quantity one
    lot, no minimum notional; ``spot`` for ``*_spot`` exchanges, else a linear perpetual;
    base and quote by :func:`split_symbol`."""
    base, quote = split_symbol(symbol, exchange)
    lot = infer_step(sizes)
    return InstrumentSpec(exchange, symbol, base, quote, _kind(exchange),
                          tick_size=infer_step(prices), lot_size=lot, min_qty=lot,
                          min_notional=Decimal(0))


# -- specs passed by the user -------------------------------------------------------------


def passed_specs(specs: str | os.PathLike | Mapping[str, Any] | None) -> dict[Key, InstrumentSpec]:
    """What a user passed as ``specs=`` (see the module docstring), keyed by market."""
    if specs is None:
        return {}
    if isinstance(specs, Mapping):
        return _mapping_specs(specs)
    path = Path(specs)
    if path.is_dir():
        return read_spec_dir(path)
    if not path.is_file():
        raise ConfigError(f"specs={os.fspath(specs)!r}: no such spec file or directory")
    return read_spec_file(path)


def _mapping_specs(specs: Mapping[str, Any]) -> dict[Key, InstrumentSpec]:
    found = {}
    for exchange, symbols in specs.items():
        if not isinstance(symbols, Mapping):
            raise ConfigError(f"specs[{exchange!r}] must map symbols to specs, got "
                              f"{type(symbols).__name__}")
        for symbol, value in symbols.items():
            found[(exchange, symbol)] = _passed_spec(exchange, symbol, value)
    return found


def _passed_spec(exchange: str, symbol: str, value: Any) -> InstrumentSpec:
    if isinstance(value, InstrumentSpec):
        return value
    if not isinstance(value, Mapping):
        raise ConfigError(f"specs[{exchange!r}][{symbol!r}] must be an InstrumentSpec or a "
                          f"mapping with tick_size and lot_size, got {type(value).__name__}")
    unknown = sorted(set(value) - _ROW_KEYS)
    if unknown or "tick_size" not in value or "lot_size" not in value:
        raise ConfigError(f"specs[{exchange!r}][{symbol!r}]: needs tick_size and lot_size; "
                          f"unknown key(s): {', '.join(unknown) or 'none'}; "
                          f"allowed: {', '.join(sorted(_ROW_KEYS))}")
    base, quote = split_symbol(symbol, exchange)
    row = {"base": base, "quote": quote, "kind": _kind(exchange), "min_qty": value["lot_size"],
           "min_notional": "0", "contract_size": "1", **value,
           "exchange": exchange, "symbol": symbol}
    try:
        return spec_from_row(row)
    except (ValueError, TypeError, InvalidOperation) as exc:
        raise ConfigError(f"specs[{exchange!r}][{symbol!r}]: {exc}") from exc


# -- the resolver -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Resolved:
    """A market's spec and where it came from (one of :data:`SOURCES`)."""

    spec: InstrumentSpec
    source: str

    def record(self) -> dict[str, Any]:
        """The spec as a JSON row with its ``source`` (what a run's config records; it can
        be passed back as ``specs={exchange: {symbol: row}}``)."""
        row = spec_rows([self.spec])[0]
        del row["exchange"], row["symbol"]
        return {"source": self.source, **row}


class SpecResolver:
    """Specs for any market, in the order of the module docstring.

    Args:
        specs: what the user passed (a spec file, a directory of them, or a mapping).
        cache_dir: the venue spec cache (default :func:`default_cache_dir`).

    Raises:
        ConfigError: ``specs`` or a cache file cannot be read.
    """

    def __init__(self, specs: str | os.PathLike | Mapping[str, Any] | None = None, *,
                 cache_dir: str | os.PathLike | None = None) -> None:
        self.passed = passed_specs(specs)
        self.cache_dir = Path(cache_dir) if cache_dir is not None else default_cache_dir()
        self._cached: dict[str, dict[str, InstrumentSpec]] = {}

    def cached(self, exchange: str) -> dict[str, InstrumentSpec]:
        """``exchange``'s cache file by symbol (empty when there is none)."""
        if exchange not in self._cached:
            path = self.cache_dir / f"{exchange}.json"
            self._cached[exchange] = read_specs(path) if path.is_file() else {}
        return self._cached[exchange]

    def resolve(self, exchange: str, symbol: str, sample: Sample) -> Resolved:
        """``exchange``/``symbol``'s spec; ``sample()`` gives the market's prices and sizes
        (called only when the spec must be inferred)."""
        key = (exchange, symbol)
        if key in self.passed:
            return Resolved(self.passed[key], "passed")
        if symbol in self.cached(exchange):
            return Resolved(self.cached(exchange)[symbol], "cache")
        if key in load_specs():
            return Resolved(load_specs()[key], "bundled")
        spec = infer_spec(exchange, symbol, *sample())
        warnings.warn(f"{exchange}/{symbol}: no instrument spec passed, cached in "
                      f"{self.cache_dir} or bundled; inferred from the data: tick "
                      f"{spec.tick_size}, lot {spec.lot_size}, min notional 0. Pass "
                      "specs=... to set the venue's rules", UserWarning, stacklevel=2)
        return Resolved(spec, "inferred")
