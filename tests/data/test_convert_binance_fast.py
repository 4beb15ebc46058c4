"""Binance converter: the numba fast path gives exactly what the careful (orjson) path gives.

The careful path is forced by making the scanner leave every line to it.
"""

from __future__ import annotations

import gzip
import random
from pathlib import Path

import numpy as np
import pytest

from makerlab.data.convert import _binance_parse as fast
from makerlab.data.convert import binance
from makerlab.errors import DataError

USDM = "binance/usdm_btcusdt_20240808_head.gz"
SPOT = "binance/spot_btcusdt_20240808_head.gz"
BUNDLED = Path(__file__).resolve().parents[2] / "data" / "raw" / "binance"


SCAN = fast.scan


def careful_only(buf, routes, newlines=None):
    found = SCAN(buf, routes, newlines)
    found.kind[found.kind != fast.EMPTY] = fast.CAREFUL
    return found


def outcome(paths, careful, monkeypatch, **kwargs):
    """(tables, stats, repair counts) per symbol, or (error type, message).

    Not only DataError: a 20-digit id overflows int64 in either path (as before).
    """
    with monkeypatch.context() as m:
        if careful:
            m.setattr(binance.fast, "scan", careful_only)
        try:
            converted = binance.read(paths, progress=False, **kwargs)
        except (DataError, OverflowError) as e:
            return type(e), str(e)
    return [(c.exchange, c.symbol, c.tables, c.stats, dict(c.repairs.counts))
            for c in converted]


def assert_same(paths, monkeypatch, **kwargs):
    quick = outcome(paths, False, monkeypatch, **kwargs)
    slow = outcome(paths, True, monkeypatch, **kwargs)
    if isinstance(slow, tuple):
        assert quick == slow
        return
    assert len(quick) == len(slow)
    for a, b in zip(quick, slow, strict=True):
        assert a[:2] == b[:2] and a[3:] == b[3:]
        for kind in b[2]:
            assert a[2][kind].equals(b[2][kind], check_metadata=True), kind


def lines_of(path: Path) -> list[bytes]:
    return gzip.decompress(path.read_bytes()).splitlines()


def write(path: Path, lines: list[bytes]) -> Path:
    path.write_bytes(gzip.compress(b"\n".join(lines) + b"\n"))
    return path


def nth(lines: list[bytes], stream: bytes, n: int = 0) -> int:
    return [i for i, line in enumerate(lines) if stream in line[:60]][n]


def test_scanner_takes_the_stream_lines(samples):
    buf = gzip.decompress((samples / USDM).read_bytes())
    found = fast.scan(buf, fast.Routes())
    kinds = np.bincount(found.kind, minlength=5)
    assert kinds[fast.CAREFUL] == 1  # the REST snapshot
    assert kinds[fast.DEPTH] and kinds[fast.TRADE] and kinds[fast.TICKER]


@pytest.mark.parametrize("sample", [USDM, SPOT])
def test_samples_same_as_careful_path(samples, sample, monkeypatch):
    assert_same([samples / sample], monkeypatch)


@pytest.mark.slow
def test_bundled_files_same_as_careful_path(monkeypatch):
    files = sorted(BUNDLED.glob("*.gz"))
    for path in files:
        assert_same([path], monkeypatch)
    assert_same(files, monkeypatch)


# (stream, old, new): edits the careful path accepts, rejects or reads differently
EDITS = [
    (b"@bookTicker", b'"b":"', b'"b":"x'),  # non-numeric price
    (b"@bookTicker", b'"b":"', b'"b":"-'),
    (b"@bookTicker", b'"B":"', b'"B":"1e3'),
    (b"@bookTicker", b'"a":"', b'"a":"123456789012345678'),  # beyond 53 bits
    (b"@bookTicker", b'"a":"', b'"a":"0000'),  # leading zeros: same value
    (b"@bookTicker", b'"A":"', b'"A": "'),  # whitespace
    (b"@bookTicker", b'"s":"BTCUSDT"', b'"s":"BTC\\u0055SDT"'),  # escape
    (b"@bookTicker", b'"u":', b'"u":0'),  # leading zero in a number
    (b"@bookTicker", b'"u":', b'"u":"1",'),  # an id as a string
    (b"@bookTicker", b'"u":', b'"u":1,"u":'),  # duplicate key
    (b"@bookTicker", b'"E":', b'"x":[1],"E":'),  # unknown key with a list
    (b"@bookTicker", b'"E":', b'"x":1.5,"E":'),  # unknown key with a float
    (b"@bookTicker", b"}}", b"}} "),
    (b"@bookTicker", b"}}", b"}"),
    (b"@bookTicker", b'"s":"BTCUSDT"', b'"s":"ETHUSDT"'),  # another symbol
    (b"@trade", b'"X":"MARKET"', b'"X":"INSURANCE_FUND"'),
    (b"@trade", b'"m":false', b'"m":0'),
    (b"@trade", b'"m":true', b'"m":0'),
    (b"@trade", b'"t":', b'"t":-'),
    (b"@trade", b'"T":', b'"T":99999999999999999999'),
    (b"@depth", b'"b":[[', b'"b":[["1","2","3"],['),  # a level that is not a pair
    (b"@depth", b'"a":[[', b'"a":[["0.0","1.0"],['),  # a non-positive price
    (b"@depth", b'"pu":', b'"pu":null,"x":'),
    (b"@depth", b'"b":[', b'"b":[],"x":['),
    (b"@depth", b'{"stream":"btcusdt@depth@0ms"', b'{"stream":"btcusdt@depthx"'),
    (b"@depth", b'{"stream":"btcusdt@depth@0ms"', b'{"stream":"btcusdt@markPrice@1s"'),
]


@pytest.mark.parametrize("repair", [False, True])
@pytest.mark.parametrize(("stream", "old", "new"), EDITS)
def test_edited_line_same_as_careful_path(samples, tmp_path, monkeypatch, stream, old, new,
                                          repair):
    lines = lines_of(samples / USDM)
    i = [k for k, line in enumerate(lines) if stream in line[:60] and old in line][5]
    lines[i] = lines[i].replace(old, new, 1)
    path = write(tmp_path / "edit.gz", lines)
    assert_same([path], monkeypatch, repair=repair)


def test_malformed_bookticker_names_its_line(samples, tmp_path):
    lines = lines_of(samples / USDM)
    i = nth(lines, b"@bookTicker", 7)
    lines[i] = lines[i].replace(b'"B":"', b'"B":"1.2.3', 1)
    path = write(tmp_path / "bbo.gz", lines)
    with pytest.raises(DataError, match=rf"bbo\.gz:{i + 1}: non-numeric or non-finite bbo"):
        binance.read([path], progress=False)
    lines[i] = lines[i][:-5]  # now not JSON at all
    path = write(tmp_path / "bbo.gz", lines)
    with pytest.raises(DataError, match=rf"bbo\.gz:{i + 1}: malformed line"):
        binance.read([path], progress=False)
    (c,) = binance.read([path], repair=True, progress=False)
    (whole,) = binance.read([samples / USDM], progress=False)
    assert c.repairs.counts["malformed_line"] == 1
    assert c.tables["bbo"].num_rows == whole.tables["bbo"].num_rows - 1


def test_random_decimals_parse_like_arrow(samples, tmp_path, monkeypatch):
    rng = random.Random(7)
    lines = lines_of(samples / USDM)
    i = nth(lines, b"@bookTicker")
    head, rest = lines[i].split(b'"b":"', 1)
    tail = rest.split(b'"T":', 1)[1]
    ts = int(head.split(b" ", 1)[0])
    out = []
    for k in range(3000):
        digits = rng.randint(1, 16)
        text = str(rng.randrange(10**digits)).zfill(digits)
        cut = rng.randint(0, digits - 1)
        value = (text[:cut] or "0") + "." + text[cut:] if cut else text
        body = f'"b":"{value}","B":"{value}","a":"{value}","A":"{value}","T":'.encode()
        out.append(str(ts + k).encode() + head[len(str(ts)):] + body + tail)
    path = write(tmp_path / "numbers.gz", out)
    assert_same([path], monkeypatch)


@pytest.mark.parametrize("repair", [False, True])
def test_line_layout_same_as_careful_path(samples, tmp_path, monkeypatch, repair):
    lines = lines_of(samples / USDM)
    ticker = nth(lines, b"@bookTicker", 3)
    lines[ticker] += b"\r"  # CRLF: JSON whitespace, the careful path's business
    lines.insert(nth(lines, b"@trade", 4), b"")  # an empty line
    lines.insert(nth(lines, b"@trade", 9), b"   ")  # a blank one
    path = tmp_path / "layout.gz"
    path.write_bytes(gzip.compress(b"\n".join(lines)))  # no newline at the end
    assert_same([path], monkeypatch, repair=repair)
