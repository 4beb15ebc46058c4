"""The mutations: each turns a capture into the bytes of its files, changed in one place.

A mutation is ``f(capture, rng) -> {file name: bytes as stored}`` or None when it does not
apply to the capture (no such field, or the kind is specific to another source). Only
one file changes; the others are written as they are.
"""

from __future__ import annotations

import random
from collections.abc import Callable

import orjson

from .captures import Capture, Field, SampleFile

Mutation = Callable[[Capture, random.Random], dict[str, bytes] | None]

_HOUR_NS = 3600 * 10**9


def _files(capture: Capture, changed: SampleFile, data: bytes | None = None) -> dict:
    out = {f.name: f.encode() for f in capture.files if f.name != changed.name}
    out[changed.name] = changed.encode() if data is None else data
    return out


def _some_file(capture: Capture, rng: random.Random) -> SampleFile:
    return rng.choice([f for f in capture.files if len(f.data_lines) > 2])


def _interior(file: SampleFile) -> range:
    """Data lines with a data line before and after them."""
    lines = file.data_lines
    return range(lines.start + 1, lines.stop - 1)


# --------------------------------------------------------------------------- lines


def drop_line(capture: Capture, rng: random.Random) -> dict:
    file = _some_file(capture, rng)
    i = rng.choice(file.data_lines)
    return _files(capture, file.with_lines(file.lines[:i] + file.lines[i + 1 :]))


def duplicate_line(capture: Capture, rng: random.Random) -> dict:
    file = _some_file(capture, rng)
    i = rng.choice(file.data_lines)
    return _files(capture, file.with_lines(file.lines[: i + 1] + file.lines[i:]))


def swap_lines(capture: Capture, rng: random.Random) -> dict:
    file = _some_file(capture, rng)
    i, j = rng.sample(list(file.data_lines), 2)
    lines = list(file.lines)
    lines[i], lines[j] = lines[j], lines[i]
    return _files(capture, file.with_lines(lines))


def _insert(capture: Capture, rng: random.Random, line: bytes) -> dict:
    file = _some_file(capture, rng)
    i = rng.choice(file.data_lines)
    return _files(capture, file.with_lines([*file.lines[:i], line, *file.lines[i:]]))


def blank_line(capture: Capture, rng: random.Random) -> dict:
    return _insert(capture, rng, b"")


def binary_line(capture: Capture, rng: random.Random) -> dict:
    noise = bytes(rng.choice([b for b in range(256) if b not in (10, 13)])
                  for _ in range(rng.randint(1, 80)))
    return _insert(capture, rng, noise)


def header_only(capture: Capture, rng: random.Random) -> dict:
    file = _some_file(capture, rng)
    return _files(capture, file.with_lines(file.lines[: int(file.header)]))


def truncate(capture: Capture, rng: random.Random) -> dict:
    """Cut the file at a random byte: the text of a plain file, the stored bytes of a
    gzip one (an interrupted copy), or (a third of the time) the text of a gzip file that
    was then compressed again."""
    file = _some_file(capture, rng)
    if file.gz and rng.random() < 2 / 3:
        data = file.encode()
        return _files(capture, file, data[: rng.randrange(10, len(data))])
    text = file.text()
    return _files(capture, file, file.encode(text[: rng.randrange(1, len(text))]))


def corrupt_byte(capture: Capture, rng: random.Random) -> dict:
    """Flip one bit of the file as stored (inside the compressed stream of a gzip file)."""
    file = _some_file(capture, rng)
    data = bytearray(file.encode())
    i = rng.randrange(10 if file.gz else 0, len(data) - (8 if file.gz else 0))
    data[i] ^= 1 << rng.randrange(8)
    return _files(capture, file, bytes(data))


# --------------------------------------------------------------------------- fields


def _field_mutation(roles: tuple[str, ...], new: Callable[[Field, random.Random], str],
                    interior: bool = False) -> Mutation:
    """A mutation setting one field of ``roles`` on a random line to ``new(field, rng)``."""

    def mutate(capture: Capture, rng: random.Random) -> dict | None:
        files = [f for f in capture.files if len(f.data_lines) > 2]
        for _ in range(200):
            file = rng.choice(files)
            i = rng.choice(_interior(file) if interior else file.data_lines)
            fields = [f for f in capture.fields(file, i) if f.role in roles]
            if fields:
                field = rng.choice(fields)
                lines = list(file.lines)
                lines[i] = field.put(new(field, rng))
                return _files(capture, file.with_lines(lines))
        return None

    return mutate


def _times(value: str, op: Callable) -> str:
    """``op`` applied to a timestamp's text, keeping it an integer when it was one."""
    try:
        return str(op(int(value)))
    except ValueError:
        return repr(op(float(value)))


def _plus_hour(field: Field, rng: random.Random) -> str:
    return _times(field.value, lambda v: v + type(v)(_HOUR_NS // field.unit))


VALUES = ("price", "size")
nan_value = _field_mutation(VALUES, lambda f, rng: "NaN")
zero_value = _field_mutation(VALUES, lambda f, rng: "0")
negative_value = _field_mutation(VALUES, lambda f, rng: "-" + f.value.lstrip("-"))
huge_value = _field_mutation(VALUES, lambda f, rng: rng.choice(["1e20", "1e300"]))
tiny_value = _field_mutation(VALUES, lambda f, rng: rng.choice(["1e-20", "1e-300"]))
# plausible but wrong: only a consistency check (a book against its top of book, a LOBSTER
# book row against its message) can tell
changed_size = _field_mutation(("size",), lambda f, rng: repr(float(f.value) * 3))
time_x1000 = _field_mutation(("time",), lambda f, rng: _times(f.value, lambda v: v * 1000))
time_zero = _field_mutation(("time",), lambda f, rng: "0")
time_negative = _field_mutation(("time",), lambda f, rng: _times(f.value, lambda v: -v))
# an edge row shifted in its only clock is indistinguishable from a real gap: shift inside
time_plus_1h = _field_mutation(("time",), _plus_hour, interior=True)
id_gap = _field_mutation(("id",), lambda f, rng: _times(f.value, lambda v: v + 7))


def row_plus_1h(capture: Capture, rng: random.Random) -> dict | None:
    """Every clock of one line an hour late: the row is far from both its neighbours."""
    files = [f for f in capture.files if len(f.data_lines) > 2]
    for _ in range(200):
        file = rng.choice(files)
        i = rng.choice(_interior(file))
        lines = list(file.lines)
        count = sum(f.role == "time" for f in capture.fields(file, i))
        for k in range(count):  # each put gives the whole line: read the fields again
            field = [f for f in capture.fields(file.with_lines(lines), i) if f.role == "time"][k]
            lines[i] = field.put(_plus_hour(field, rng))
        if count:
            return _files(capture, file.with_lines(lines))
    return None


# --------------------------------------------------------------------------- books


def crossed(capture: Capture, rng: random.Random) -> dict | None:
    """Put a bid at or above the best ask somewhere a book is recorded."""
    make = _CROSSERS[capture.converter]
    for _ in range(200):
        file = _some_file(capture, rng)
        i = rng.choice(file.data_lines)
        line = make(capture, file, i)
        if line is not None:
            lines = list(file.lines)
            lines[i] = line
            return _files(capture, file.with_lines(lines))
    return None


def _crossed_csv(capture: Capture, file: SampleFile, i: int) -> bytes | None:
    """Best bid := best ask + 1 on a quote or book row (tardis, hyperliquid, lobster); a
    tardis L2 or hyperliquid bbo row becomes a bid far above the book."""
    fields: dict[str, Field] = {}
    for field in capture.fields(file, i):
        fields.setdefault(field.name, field)
    bid, ask = ([fields[name] for name in names if name in fields]
                for names in (_BEST_BID, _BEST_ASK))
    if bid and ask:
        return bid[0].put(repr(float(ask[0].value) + 1))
    line = file.lines[i]
    if "price" not in fields or not (b",bid," in line or b",ask," in line):
        return None
    return fields["price"].put(repr(float(fields["price"].value) * 3)).replace(b",ask,",
                                                                                b",bid,")


_BEST_BID = ("bid_price", "bid_price_0", "bids[0].price")
_BEST_ASK = ("ask_price", "ask_price_0", "asks[0].price")


def _crossed_binance(capture: Capture, file: SampleFile, i: int) -> bytes | None:
    """A bookTicker with bid above ask, or a depth diff / REST snapshot with a new best
    bid far above the book."""
    fields = {f.name: f for f in capture.fields(file, i) if f.role == "price"}
    line = file.lines[i]
    if b"@bookTicker" in line[:80]:
        return fields["b"].put(repr(float(fields["a"].value) + 1))
    if fields and (b"@depth" in line[:80] or b"lastUpdateId" in line[:80]):
        return _prepend_bid(line, repr(float(next(iter(fields.values())).value) * 3))
    return None


def _prepend_bid(line: bytes, price: str) -> bytes:
    local, _, body = line.partition(b" ")
    message = orjson.loads(body)
    data = message.get("data", message)
    key = "b" if "b" in data else "bids"
    data[key] = [[price, "1.000"], *data[key]]
    return local + b" " + orjson.dumps(message)


_CROSSERS = {"binance": _crossed_binance, "tardis": _crossed_csv,
             "hyperliquid": _crossed_csv, "lobster": _crossed_csv}


def misalign(capture: Capture, rng: random.Random) -> dict | None:
    """LOBSTER: the order book rows shifted by one line against the messages."""
    book = next((f for f in capture.files if "_orderbook_" in f.name), None)
    if capture.converter != "lobster" or book is None:
        return None
    shift = rng.choice([1, -1])
    lines = book.lines[1:] + book.lines[-1:] if shift == 1 else book.lines[:1] + book.lines[:-1]
    return _files(capture, book.with_lines(lines))


MUTATIONS: dict[str, Mutation] = {
    "drop_line": drop_line, "duplicate_line": duplicate_line, "swap_lines": swap_lines,
    "truncate": truncate, "corrupt_byte": corrupt_byte, "header_only": header_only,
    "blank_line": blank_line, "binary_line": binary_line,
    "nan_value": nan_value, "zero_value": zero_value, "negative_value": negative_value,
    "huge_value": huge_value, "tiny_value": tiny_value, "changed_size": changed_size,
    "time_x1000": time_x1000, "time_zero": time_zero, "time_negative": time_negative,
    "time_plus_1h": time_plus_1h, "row_plus_1h": row_plus_1h, "id_gap": id_gap,
    "crossed": crossed, "misalign": misalign,
}
