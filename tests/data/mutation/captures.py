"""The bundled real captures as editable lines, and the fields of each line by role.

A field's role is ``time`` (with its unit in ns), ``price``, ``size`` or ``id``; the
mutations use roles, never positions, so they apply to every source alike.
"""

from __future__ import annotations

import gzip
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import orjson

SAMPLES = Path(__file__).resolve().parents[2] / "samples"


@dataclass
class SampleFile:
    """One file of a capture: its lines (without line ends) and how it is stored."""

    name: str
    lines: list[bytes]
    newline: bytes
    gz: bool
    header: bool

    @classmethod
    def load(cls, path: Path, header: bool) -> SampleFile:
        data = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
        newline = b"\r\n" if b"\r\n" in data[:1000] else b"\n"
        lines = data.split(newline)
        assert lines[-1] == b"", f"{path} does not end with a line end"
        return cls(path.name, lines[:-1], newline, path.suffix == ".gz", header)

    @property
    def data_lines(self) -> range:
        return range(int(self.header), len(self.lines))

    def text(self) -> bytes:
        return self.newline.join(self.lines) + self.newline

    def encode(self, text: bytes | None = None) -> bytes:
        """The file's bytes as stored (``text`` instead of its lines when given)."""
        text = self.text() if text is None else text
        return gzip.compress(text, compresslevel=1, mtime=0) if self.gz else text

    def with_lines(self, lines: list[bytes]) -> SampleFile:
        return SampleFile(self.name, lines, self.newline, self.gz, self.header)


@dataclass
class Capture:
    """A converter and the files it reads together."""

    converter: str
    label: str
    files: list[SampleFile]

    def fields(self, file: SampleFile, line: int) -> list[Field]:
        """The mutable fields of ``file.lines[line]``."""
        if self.converter == "binance":
            return _json_fields(file.lines[line])
        return _csv_fields(self.converter, file, line)


@dataclass
class Field:
    """One value of a line: its column or key, role, unit (ns per unit, for times), text,
    and how to write the line with another value."""

    name: str
    role: str
    unit: int
    value: str
    put: Callable[[str], bytes]


def load_captures() -> list[Capture]:
    """Every bundled capture, one per converter input set."""
    binance = SAMPLES / "binance"
    lobster = sorted((SAMPLES / "lobster").glob("*.csv.gz"))
    return [
        Capture("binance", "binance usdm",
                [SampleFile.load(binance / "usdm_btcusdt_20240808_head.gz", False)]),
        Capture("binance", "binance spot",
                [SampleFile.load(binance / "spot_btcusdt_20240808_head.gz", False)]),
        Capture("tardis", "tardis",
                [SampleFile.load(p, True) for p in sorted((SAMPLES / "tardis").iterdir())]),
        Capture("hyperliquid", "hyperliquid",
                [SampleFile.load(p, True) for p in sorted((SAMPLES / "hyperliquid").iterdir())]),
        Capture("lobster", "lobster", [SampleFile.load(p, False) for p in lobster]),
    ]


# --------------------------------------------------------------------------- CSV

_LOBSTER_MESSAGE = ["time", "type", "order_id", "size", "price", "direction"]
_LOBSTER_BOOK = ["ask_price", "ask_size", "bid_price", "bid_size"]
_TIME_UNITS = {  # (converter, column) -> ns per unit
    ("tardis", "timestamp"): 1_000, ("tardis", "local_timestamp"): 1_000,
    ("hyperliquid", "timestamp"): 10**9, ("hyperliquid", "exchange_timestamp"): 10**6,
    ("lobster", "time"): 10**9,
}


def columns(converter: str, file: SampleFile) -> list[str]:
    if converter != "lobster":
        return file.lines[0].decode().split(",")
    if "_message_" in file.name:
        return _LOBSTER_MESSAGE
    return _LOBSTER_BOOK * (len(file.lines[0].split(b",")) // 4)


def _role(converter: str, column: str) -> tuple[str, int] | None:
    if (converter, column) in _TIME_UNITS:
        return "time", _TIME_UNITS[converter, column]
    if column in ("id", "trade_id", "order_id"):
        return "id", 1
    if "price" in column:
        return "price", 1
    if "amount" in column or "size" in column:
        return "size", 1
    return None


def _csv_fields(converter: str, file: SampleFile, line: int) -> list[Field]:
    values = file.lines[line].split(b",")
    fields = []
    for i, column in enumerate(columns(converter, file)):
        role = _role(converter, column)
        if role is None or i >= len(values) or not values[i]:
            continue

        def put(text: str, i: int = i) -> bytes:
            changed = list(values)
            changed[i] = text.encode()
            return b",".join(changed)

        fields.append(Field(column, role[0], role[1], values[i].decode(), put))
    return fields


# --------------------------------------------------------------------------- Binance JSON

_JSON_ROLES = {"E": ("time", 10**6), "T": ("time", 10**6), "U": ("id", 1), "u": ("id", 1),
               "pu": ("id", 1), "t": ("id", 1), "lastUpdateId": ("id", 1),
               "p": ("price", 1), "q": ("size", 1), "b": ("price", 1), "B": ("size", 1),
               "a": ("price", 1), "A": ("size", 1)}


def _json_fields(raw: bytes) -> list[Field]:
    local, _, body = raw.partition(b" ")
    message = orjson.loads(body)
    data = message.get("data", message)

    def dump(changed: dict) -> bytes:
        return local + b" " + orjson.dumps(changed)

    fields = [Field("local", "time", 1 if len(local) > 17 else 1_000, local.decode(),
                    lambda text: text.encode() + b" " + body)]
    for key, value in data.items():
        if key in _JSON_ROLES and not isinstance(value, list):
            fields.append(Field(key, *_JSON_ROLES[key], str(value),
                                _json_put(message, data, key, dump)))
    for side in ("b", "a", "bids", "asks"):
        if isinstance(data.get(side), list):
            fields += _level_fields(message, data, side, dump)
    return fields


def _json_put(message: dict, data: dict, key: str, dump) -> Callable[[str], bytes]:
    def put(text: str) -> bytes:
        original = data[key]
        data[key] = text if isinstance(original, str) else _number(text)
        try:
            return dump(message)
        finally:
            data[key] = original

    return put


def _level_fields(message: dict, data: dict, side: str, dump) -> list[Field]:
    fields = []
    for level in data[side]:
        for k, role in ((0, "price"), (1, "size")):
            def put(text: str, level: list = level, k: int = k) -> bytes:
                original = level[k]
                level[k] = text
                try:
                    return dump(message)
                finally:
                    level[k] = original

            fields.append(Field(side, role, 1, level[k], put))
    return fields


def _number(text: str) -> int | float:
    try:
        return int(text)
    except ValueError:
        return float(text)
