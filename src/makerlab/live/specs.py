"""Instrument specs from the venues, and the spec cache file.

Each venue module parses its own metadata into :class:`~makerlab.core.instruments.InstrumentSpec`
(Binance ``exchangeInfo`` filters, Bybit ``instruments-info`` pages, Hyperliquid ``meta``,
Paradex ``/markets``, WOO ``/v1/public/info``). The Gateway fetches them at
``init_clients()`` and writes one cache file per exchange, so a later run (or the Replayer)
can read the same rules without the network.

Cache format: ``<dir>/<exchange>.json`` = ``{"exchange", "fetched_at_ns", "instruments":
[rows]}``, rows as in the bundled ``makerlab/specs/instruments.json`` plus ``sig_figs`` for
significant-figure price rules. Files are written atomically (temporary file + rename), so
a reader never sees half a file. The directory is ``$MAKERLAB_SPEC_CACHE`` or
``~/.cache/makerlab/specs``.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Decimal
from pathlib import Path

from makerlab.core.instruments import InstrumentSpec
from makerlab.errors import ConfigError

__all__ = ["SigFigSpec", "default_cache_dir", "read_specs", "spec_rows", "write_specs"]

_FIELDS = ("tick_size", "lot_size", "min_qty", "min_notional", "contract_size")


@dataclass(frozen=True, slots=True)
class SigFigSpec(InstrumentSpec):
    """A spec whose valid prices have at most ``sig_figs`` significant figures, on top
    of the ``tick_size`` grid (the finest step allowed); integer prices are always valid.

    This is Hyperliquid's rule: ``sig_figs=5`` and ``tick_size = 10**-(6 - szDecimals)``
    (perps), so ETH (``szDecimals=4``) prices ``3500.12345`` as ``3500.1`` and BTC
    ``100000.42`` as ``100000``.
    """

    sig_figs: int = 5

    @classmethod
    def hyperliquid(cls, coin: str, sz_decimals: int) -> SigFigSpec:
        step = Decimal(1).scaleb(-sz_decimals)
        return cls("hyperliquid", coin, coin, "USD", "linear_perpetual",
                   tick_size=Decimal(1).scaleb(-(6 - sz_decimals)), lot_size=step,
                   min_qty=step, min_notional=Decimal(10), sig_figs=5)

    def round_price(self, price: float | Decimal | str,
                    rounding: str = ROUND_HALF_EVEN) -> Decimal:
        """``price`` with at most ``sig_figs`` significant figures and on the tick grid."""
        value = Decimal(str(price))
        if value == 0:
            return Decimal(0).quantize(self.tick_size)
        digits = value.adjusted() + 1  # digits before the point
        if digits >= self.sig_figs:
            return value.quantize(Decimal(1), rounding=rounding)
        step = max(Decimal(1).scaleb(digits - self.sig_figs), self.tick_size)
        return value.quantize(step, rounding=rounding)


def default_cache_dir() -> Path:
    """``$MAKERLAB_SPEC_CACHE`` or ``~/.cache/makerlab/specs``."""
    env = os.environ.get("MAKERLAB_SPEC_CACHE")
    return Path(env) if env else Path.home() / ".cache" / "makerlab" / "specs"


def spec_rows(specs: Iterable[InstrumentSpec]) -> list[dict]:
    """Specs as JSON rows (Decimals as strings)."""
    rows = []
    for spec in specs:
        row = {"exchange": spec.exchange, "symbol": spec.symbol, "base": spec.base,
               "quote": spec.quote, "kind": spec.kind}
        row.update({name: str(getattr(spec, name)) for name in _FIELDS})
        if isinstance(spec, SigFigSpec):
            row["sig_figs"] = spec.sig_figs
        rows.append(row)
    return rows


def _from_row(row: dict) -> InstrumentSpec:
    decimals = {name: Decimal(row[name]) for name in _FIELDS}
    args = (row["exchange"], row["symbol"], row["base"], row["quote"], row["kind"])
    if "sig_figs" in row:
        return SigFigSpec(*args, **decimals, sig_figs=int(row["sig_figs"]))
    return InstrumentSpec(*args, **decimals)


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


def read_specs(path: Path) -> dict[str, InstrumentSpec]:
    """The specs in a cache file, keyed by symbol."""
    try:
        rows = json.loads(Path(path).read_text())["instruments"]
    except (OSError, ValueError, KeyError) as exc:
        raise ConfigError(f"{path}: not a readable spec cache file ({exc})") from exc
    return {row["symbol"]: _from_row(row) for row in rows}
