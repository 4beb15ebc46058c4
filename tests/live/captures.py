"""Readers for the recorded sessions in ``fixtures/`` (formats in ``fixtures/README.md``)."""

from __future__ import annotations

import gzip
import zipfile
from collections.abc import Iterator
from pathlib import Path

FIXTURES = Path(__file__).parent / "fixtures"


def _lines(name: str) -> list[str]:
    path = FIXTURES / name
    if name.endswith(".gz"):
        text = gzip.decompress(path.read_bytes()).decode()
    elif name.endswith(".zip"):
        with zipfile.ZipFile(path) as zf:
            text = zf.read(zf.namelist()[0]).decode()
    else:
        text = path.read_text()
    return [line for line in text.splitlines() if line.strip()]


def cryptofeed_ws(name: str) -> Iterator[tuple[int, bytes]]:
    """``(receive time ns, raw frame)`` from a cryptofeed ``<seconds>: <json>`` transcript."""
    for line in _lines(name)[1:]:
        stamp, _, raw = line.partition(": ")
        yield int(float(stamp) * 1e9), raw.encode()


def cryptofeed_http(name: str) -> Iterator[tuple[str, int, bytes]]:
    """``(url, receive time ns, body)`` from a cryptofeed ``<url> -> <seconds>: <json>`` file."""
    for line in _lines(name):
        url, _, rest = line.partition(" -> ")
        stamp, _, raw = rest.partition(": ")
        yield url, int(float(stamp) * 1e9), raw.encode()


def stamped(name: str, unit_ns: int) -> Iterator[tuple[int, bytes]]:
    """``(receive time ns, raw frame)`` from ``<integer time> <json>`` lines."""
    for line in _lines(name):
        stamp, _, raw = line.partition(" ")
        yield int(stamp) * unit_ns, raw.encode()


def jsonl(name: str) -> list[bytes]:
    return [line.encode() for line in _lines(name)]
