"""Fast path of the Binance converter: a strict numba scanner for combined-stream lines.

:func:`scan` reads a buffer of ``<local ts> {"stream": ..., "data": {...}}`` lines and
extracts ``@depth``, ``@trade`` and ``@bookTicker`` messages straight into arrays, without
building Python objects. It accepts only a strict subset of JSON (no whitespace, no
escapes, ASCII strings, non-negative integers without leading zeros, decimal strings
``digits[.digits]``, no duplicate keys, ``X`` only ``"MARKET"``) for which its result is
exactly what the careful path (orjson + Arrow's number parser) gives. Any other line is
left to the careful path (kind ``CAREFUL``), which reports malformed input by file:line.

Decimal strings become floats as ``mantissa / 10**k`` with ``mantissa <= 2**53`` and
``k <= 22``: both operands are exact, so the IEEE division is the correctly rounded value,
bit-identical to any correctly rounded parser (Arrow's); longer numbers go the careful way.

Both paths store records per symbol in a :class:`Capture` (integer columns :class:`D`,
:class:`T`, :class:`B`); the careful path's number parsing (:func:`floats`) is here too.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
from numba import njit

from makerlab.data.convert import Repairs
from makerlab.data.schema import NO_SEQ

# line kinds
CAREFUL, DEPTH, TRADE, TICKER, EMPTY = range(5)


class D:
    """Columns of a depth record (a diff or a REST snapshot)."""

    LOCAL, EX, FIRST, LAST, PREV, NB, NA, SNAP, FILE, LINE = range(10)


class T:
    """Columns of a trade record."""

    LOCAL, EX, MAKER, FILE, LINE = range(5)


class B:
    """Columns of a bookTicker record."""

    LOCAL, EX, SEQ, FILE, LINE = range(5)


# columns of the scanner's per-line integer output
(I_LOCAL, I_EX, I_FIRST, I_LAST, I_PREV, I_ID, I_MAKER, I_NB, I_NA, I_OFF_B, I_OFF_A,
 I_ROUTE, I_FLAG) = range(13)
_N_INT = 13

# slots of the data keys the scanner understands (others must hold a plain scalar)
K_E, K_T, K_U, K_u, K_pu, K_t, K_m, K_s, K_X, K_p, K_q, K_b, K_B, K_a, K_A = range(15)
_N_KEYS = 15
_SLOT1 = np.full(256, -1, np.int64)
for _index, _key in enumerate("ETUu_tmsXpqbBaA"):
    if _key != "_":
        _SLOT1[ord(_key)] = _index
# value types
_ABSENT, _INT, _STR, _BOOL, _LEVELS = range(5)

_HEAD = np.frombuffer(b'{"stream":"', np.uint8)
_MID = np.frombuffer(b'","data":{', np.uint8)
_TRUE = np.frombuffer(b"true", np.uint8)
_FALSE = np.frombuffer(b"false", np.uint8)
_MARKET = np.frombuffer(b"MARKET", np.uint8)
_DEPTH = np.frombuffer(b"depth", np.uint8)
_TRADE = np.frombuffer(b"trade", np.uint8)
_TICKER = np.frombuffer(b"bookTicker", np.uint8)
_POW10 = np.array([10.0**k for k in range(23)])  # exact: 5**22 < 2**53
_MAX_INT = np.int64(2**63 - 1)
_MAX_MANTISSA = 2**53
_ROUTES, _ROUTE_BYTES = 64, 256  # distinct (stream, symbol) pairs per file; key length


@dataclass
class Scan:
    """What :func:`scan` found in one buffer; arrays are per line unless noted."""

    kind: np.ndarray  # int8 line kind
    ints: np.ndarray  # int64 [lines, I_*]
    vals: np.ndarray  # float64 [lines, 4]: bookTicker b, B, a, A; trade p, q
    levels: np.ndarray  # float64 [levels, 2]: depth (price, size), indexed by I_OFF_*
    bounds: np.ndarray  # int64 [lines, 2]: start and end offset of the line


class Routes:
    """The (stream, symbol) pairs a scanner has met in one file, numbered by first sight."""

    def __init__(self):
        self.names = np.zeros((_ROUTES, _ROUTE_BYTES), np.uint8)
        self.lens = np.zeros((_ROUTES, 2), np.int64)
        self.count = np.zeros(1, np.int64)

    def symbol(self, route: int) -> str:
        """The ``s`` field of the messages on ``route``."""
        stream, symbol = self.lens[route]
        return bytes(self.names[route, stream : stream + symbol]).decode()


def newlines(buf: bytes) -> int:
    """Number of ``\\n`` in ``buf``."""
    return int(_newlines(np.frombuffer(buf, np.uint8)))


def scan(buf: bytes, routes: Routes, newline_count: int | None = None) -> Scan:
    """Scan the complete lines in ``buf`` (the last one may lack its newline)."""
    if newline_count is None:
        newline_count = newlines(buf)
    lines = newline_count + (0 if buf.endswith(b"\n") or not buf else 1)
    arr = np.frombuffer(buf, np.uint8)
    kind = np.zeros(lines, np.int8)
    ints = np.zeros((lines, _N_INT), np.int64)
    vals = np.zeros((lines, 4))
    levels = np.empty((len(buf) // 9 + 2, 2))  # a level takes at least 9 bytes
    bounds = np.zeros((lines, 2), np.int64)
    used = _scan(arr, kind, ints, vals, levels, bounds, routes.names, routes.lens,
                 routes.count)
    return Scan(kind, ints, vals, levels[:used], bounds)


def level_rows(offsets: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Indices of the rows ``offsets[i] .. offsets[i] + counts[i]``, concatenated."""
    total = int(counts.sum())
    first = np.cumsum(counts) - counts
    return np.repeat(offsets - first, counts) + np.arange(total)


def depth_block(found: Scan, idx: np.ndarray, file: int, first_line: int) -> tuple:
    """(records in ``D`` columns, level values) of the depth lines ``idx``."""
    rows = found.ints[idx]
    rec = np.zeros((len(idx), 10), np.int64)
    for dst, src in ((D.LOCAL, I_LOCAL), (D.EX, I_EX), (D.FIRST, I_FIRST),
                     (D.LAST, I_LAST), (D.PREV, I_PREV), (D.NB, I_NB), (D.NA, I_NA)):
        rec[:, dst] = rows[:, src]
    rec[:, D.FILE], rec[:, D.LINE] = file, idx + first_line
    offsets = rows[:, [I_OFF_B, I_OFF_A]].ravel()  # bids, then asks, per message
    counts = rows[:, [I_NB, I_NA]].ravel()
    return rec, found.levels[level_rows(offsets, counts)]


def trade_block(found: Scan, idx: np.ndarray, file: int, first_line: int) -> tuple:
    """(records in ``T`` columns, [price, qty], trade ids) of the trade lines ``idx``."""
    rows = found.ints[idx]
    rec = np.stack([rows[:, I_LOCAL], rows[:, I_EX], rows[:, I_MAKER],
                    np.full(len(idx), file), idx + first_line], axis=1).astype(np.int64)
    return rec, found.vals[idx, :2], rows[:, I_ID]


def ticker_block(found: Scan, idx: np.ndarray, file: int, first_line: int) -> tuple:
    """(records in ``B`` columns, [bid, bid qty, ask, ask qty]) of bookTicker ``idx``."""
    rows = found.ints[idx]
    rec = np.stack([rows[:, I_LOCAL], rows[:, I_EX], rows[:, I_LAST],
                    np.full(len(idx), file), idx + first_line], axis=1).astype(np.int64)
    return rec, found.vals[idx]


# --------------------------------------------------------------------------- careful path


@dataclass
class Capture:
    """Everything parsed for one symbol, in file order, before conversion to arrays."""

    symbol: str
    depth: list[tuple] = field(default_factory=list)  # D columns
    levels: list[list[str]] = field(default_factory=list)  # [price, qty] per level
    trades: list[tuple] = field(default_factory=list)  # T columns
    trade_text: list[tuple] = field(default_factory=list)  # (price, qty, id, X)
    bbo: list[tuple] = field(default_factory=list)  # B columns
    bbo_text: list[tuple] = field(default_factory=list)  # (bid, bid qty, ask, ask qty)
    # the same records from the fast path (numpy blocks, see *_block below)
    depth_fast: list[tuple] = field(default_factory=list)  # (records, levels [n, 2])
    trades_fast: list[tuple] = field(default_factory=list)  # (records, [price, qty], ids)
    bbo_fast: list[tuple] = field(default_factory=list)  # (records, [b, B, a, A])
    stats: Counter = field(default_factory=Counter)
    repairs: Repairs = field(default_factory=Repairs)
    futures: bool = False  # saw a depth diff with pu, a trade with X or a ticker with E


def floats(texts: list[str]) -> np.ndarray:
    """Decimal strings -> float64 in bulk (Arrow's CSV parser); ValueError if any is bad."""
    if not texts:
        return np.empty(0)
    options = pacsv.ConvertOptions(column_types={"x": pa.float64()}, strings_can_be_null=False)
    try:
        table = pacsv.read_csv(
            pa.py_buffer("\n".join(texts).encode()),
            read_options=pacsv.ReadOptions(column_names=["x"], use_threads=False),
            parse_options=pacsv.ParseOptions(quote_char=False, ignore_empty_lines=False),
            convert_options=options,
        )
    except (pa.ArrowInvalid, TypeError) as e:
        raise ValueError(str(e)) from None
    values = table.column(0).to_numpy()
    if len(values) != len(texts) or table.column(0).null_count:
        raise ValueError("number count mismatch")
    return values


def floats_slow(texts: list) -> np.ndarray:
    """Per-item parsing (only after the bulk parser failed): NaN for anything but a
    decimal string."""
    def number(text) -> float:
        if not isinstance(text, str) or text != text.strip():
            return np.nan
        try:
            return float(text)
        except ValueError:
            return np.nan

    return np.fromiter(map(number, texts), dtype=np.float64, count=len(texts))


def level_pair(level) -> list:
    """``level`` if it is a two-item list, else a pair that fails number parsing."""
    return level if isinstance(level, list) and len(level) == 2 else [None, None]


# --------------------------------------------------------------------------- numba


@njit(cache=True)
def _newlines(buf):  # pragma: no cover
    n = 0
    for c in buf:
        n += c == 10
    return n


@njit(cache=True)
def _scan(buf, kind, ints, vals, levels, bounds, names, lens, count):  # pragma: no cover
    """Fill the per-line outputs; return the number of level rows used."""
    typ = np.zeros(_N_KEYS, np.int64)
    ival = np.zeros(_N_KEYS, np.int64)
    span = np.zeros((_N_KEYS, 2), np.int64)
    start, used, n = 0, 0, len(buf)
    for line in range(len(kind)):
        end = start
        while end < n and buf[end] != 10:
            end += 1
        bounds[line, 0], bounds[line, 1] = start, end
        if end == start:
            kind[line] = EMPTY
        else:
            k, grown = _line(buf, start, end, typ, ival, span, levels, used, names, lens,
                             count, ints[line], vals[line])
            kind[line] = k
            if k != CAREFUL:
                used = grown
        start = end + 1
    return used


@njit(cache=True)
def _line(
    buf, a, e, typ, ival, span, levels, used, names, lens, count, out, val
):  # pragma: no cover
    """Parse one line into ``out``/``val``; return (kind or CAREFUL, level rows used)."""
    name, name_end, grown = _envelope(buf, a, e, typ, ival, span, levels, used, out)
    if name < 0:
        return CAREFUL, used
    k = _stream_kind(buf, name, name_end)
    if k == CAREFUL or typ[K_s] != _STR:
        return CAREFUL, used
    route = _route(buf, name, name_end, span[K_s, 0], span[K_s, 1], names, lens, count)
    if route < 0:
        return CAREFUL, used
    out[I_ROUTE] = route
    if k == DEPTH:
        ok = _fill_depth(typ, ival, span, out)
    elif k == TRADE:
        ok = _fill_trade(buf, typ, ival, span, out, val)
    else:
        ok = _fill_ticker(buf, typ, ival, span, out, val)
    return (k, grown) if ok else (CAREFUL, used)


@njit(cache=True)
def _envelope(buf, a, e, typ, ival, span, levels, used, out):  # pragma: no cover
    """Check ``<ts> {"stream":"...","data":{...}}``.

    Returns (start, end) of the stream name (-1, -1 when the line does not fit) and the
    level rows used.
    """
    ts, i = _int(buf, a, e)
    if i < 0 or i >= e or buf[i] != 32:
        return -1, -1, used
    out[I_LOCAL] = ts
    name = _literal(buf, i + 1, e, _HEAD)
    name_end = _str_end(buf, name, e)
    j = _literal(buf, name_end, e, _MID)
    if j < 0:
        return -1, -1, used
    j, grown = _members(buf, j, e, typ, ival, span, levels, used)
    if j != e - 1 or buf[j] != 125:  # the envelope's closing brace ends the line
        return -1, -1, used
    return name, name_end, grown


@njit(cache=True)
def _members(buf, i, e, typ, ival, span, levels, used):  # pragma: no cover
    """Parse an object's members after its ``{``; return (index after ``}``, levels)."""
    typ[:] = _ABSENT
    if i < e and buf[i] == 125:
        return i + 1, used
    while i >= 0:
        i, used = _member(buf, i, e, typ, ival, span, levels, used)
        if i < 0 or i >= e:
            return -1, used
        if buf[i] == 125:
            return i + 1, used
        i = i + 1 if buf[i] == 44 else -1
    return -1, used


@njit(cache=True, inline="always")
def _member(buf, i, e, typ, ival, span, levels, used):  # pragma: no cover
    """Parse ``"key":value``; return (index after the value or -1, levels used)."""
    if i >= e or buf[i] != 34:
        return -1, used
    key_end = _str_end(buf, i + 1, e)
    if key_end < 0 or key_end + 1 >= e or buf[key_end + 1] != 58:
        return -1, used
    slot = _slot(buf, i + 1, key_end)
    if slot >= 0 and typ[slot] != _ABSENT:  # duplicate key
        return -1, used
    return _value(buf, key_end + 2, e, slot, typ, ival, span, levels, used)


@njit(cache=True, inline="always")
def _value(buf, i, e, slot, typ, ival, span, levels, used):  # pragma: no cover
    """Parse a string, integer, boolean or (keys b/a) level list into ``slot``.

    Strings keep their span, level lists their first row and count in ``levels``.
    """
    if i >= e:
        return -1, used
    c, t, v, w, j = buf[i], _ABSENT, np.int64(0), np.int64(0), -1
    if c == 34:
        j = _str_end(buf, i + 1, e)
        t, v, w = _STR, np.int64(i + 1), np.int64(j)
        j = j + 1 if j >= 0 else -1
    elif c == 91 and slot in (K_b, K_a):
        j, n = _levels(buf, i + 1, e, levels, used)
        t, v, w = _LEVELS, np.int64(used), np.int64(n)
        used += n
    elif c == 116 or c == 102:
        t, v = _BOOL, np.int64(c == 116)
        j = _literal(buf, i, e, _TRUE if c == 116 else _FALSE)
    else:
        v, j = _int(buf, i, e)
        t = _INT
    if slot >= 0 and j >= 0:
        typ[slot], ival[slot], span[slot, 0], span[slot, 1] = t, v, v, w
    return j, used


@njit(cache=True)
def _levels(buf, i, e, levels, used):  # pragma: no cover
    """Parse ``["px","qty"],...]`` (after ``[``) into ``levels[used:]``; (end, count)."""
    if i < e and buf[i] == 93:
        return i + 1, 0
    n = 0
    while used + n < len(levels):
        i = _pair(buf, i, e, levels[used + n])
        if i < 0 or i >= e:
            return -1, 0
        n += 1
        if buf[i] == 93:
            return i + 1, n
        if buf[i] != 44:
            return -1, 0
        i += 1
    return -1, 0


@njit(cache=True)
def _pair(buf, i, e, out):  # pragma: no cover
    """Parse ``["px","qty"]`` into ``out``; return the index after it or -1."""
    if i + 2 > e or buf[i] != 91 or buf[i + 1] != 34:
        return -1
    b = _str_end(buf, i + 2, e)
    ok, px = _decimal(buf, i + 2, b)
    if not ok or b + 3 > e or buf[b + 1] != 44 or buf[b + 2] != 34:
        return -1
    a = b + 3
    b = _str_end(buf, a, e)
    ok, qty = _decimal(buf, a, b)
    if not ok or b + 2 > e or buf[b + 1] != 93:
        return -1
    out[0], out[1] = px, qty
    return b + 2


@njit(cache=True)
def _fill_depth(typ, ival, span, out):  # pragma: no cover
    if typ[K_E] != _INT or typ[K_U] != _INT or typ[K_u] != _INT:
        return False
    if typ[K_b] != _LEVELS or typ[K_a] != _LEVELS:
        return False
    if typ[K_pu] != _INT and typ[K_pu] != _ABSENT:
        return False
    if typ[K_T] != _INT and typ[K_T] != _ABSENT:
        return False
    out[I_EX] = ival[K_T] if typ[K_T] == _INT else ival[K_E]  # transaction time, if any
    out[I_FIRST], out[I_LAST] = ival[K_U], ival[K_u]
    out[I_PREV] = ival[K_pu] if typ[K_pu] == _INT else NO_SEQ
    out[I_FLAG] = typ[K_pu] == _INT
    out[I_OFF_B], out[I_NB] = ival[K_b], span[K_b, 1]
    out[I_OFF_A], out[I_NA] = ival[K_a], span[K_a, 1]
    return True


@njit(cache=True)
def _fill_trade(buf, typ, ival, span, out, val):  # pragma: no cover
    if typ[K_T] != _INT or typ[K_t] != _INT or typ[K_m] != _BOOL:
        return False
    if typ[K_X] == _STR:
        if _literal(buf, span[K_X, 0], span[K_X, 1], _MARKET) != span[K_X, 1]:
            return False  # other statuses are counted by the careful path
    elif typ[K_X] != _ABSENT:
        return False
    out[I_EX], out[I_ID], out[I_MAKER] = ival[K_T], ival[K_t], ival[K_m]
    out[I_FLAG] = typ[K_X] == _STR
    return _decimals(buf, typ, span, (K_p, K_q), val)


@njit(cache=True)
def _fill_ticker(buf, typ, ival, span, out, val):  # pragma: no cover
    if typ[K_u] != _INT or (typ[K_E] != _INT and typ[K_E] != _ABSENT):
        return False
    if typ[K_T] != _INT and typ[K_T] != _ABSENT:
        return False
    out[I_EX] = ival[K_T] if typ[K_T] == _INT else (ival[K_E] if typ[K_E] == _INT else NO_SEQ)
    out[I_LAST], out[I_FLAG] = ival[K_u], typ[K_E] == _INT
    return _decimals(buf, typ, span, (K_b, K_B, K_a, K_A), val)


@njit(cache=True, inline="always")
def _decimals(buf, typ, span, slots, val):  # pragma: no cover
    """Parse the decimal strings in ``slots`` into ``val``; False if any is not one."""
    for k, slot in enumerate(slots):
        if typ[slot] != _STR:
            return False
        ok, val[k] = _decimal(buf, span[slot, 0], span[slot, 1])
        if not ok:
            return False
    return True


@njit(cache=True)
def _decimal(buf, a, b):  # pragma: no cover
    """``digits[.digits]`` in ``buf[a:b]`` -> (ok, correctly rounded float)."""
    if a < 0 or b <= a or buf[a] == 46 or buf[b - 1] == 46 or b - a > 17:
        return False, 0.0  # more than 16 digits may not fit the 53-bit mantissa
    m, k, dot = np.int64(0), 0, False
    for j in range(a, b):
        c = np.int64(buf[j])
        if c == 46 and not dot:
            dot = True
        elif 48 <= c <= 57:
            m = m * 10 + c - 48
            k += dot
        else:
            return False, 0.0
    if m > _MAX_MANTISSA:
        return False, 0.0
    return True, m / _POW10[k]


@njit(cache=True)
def _int(buf, i, e):  # pragma: no cover
    """A JSON non-negative integer at ``i`` -> (value, index after it); index -1 if none."""
    if i >= e or buf[i] < 48 or buf[i] > 57:
        return np.int64(0), -1
    if buf[i] == 48 and i + 1 < e and 48 <= buf[i + 1] <= 57:
        return np.int64(0), -1  # leading zero
    v, start = np.int64(0), i
    while i < e and 48 <= buf[i] <= 57 and i - start < 18:
        v = v * 10 + (np.int64(buf[i]) - 48)
        i += 1
    if i < e and 48 <= buf[i] <= 57:  # a 19th digit: the value must stay below 2**63
        d = np.int64(buf[i]) - 48
        if (i + 1 < e and 48 <= buf[i + 1] <= 57) or v > (_MAX_INT - d) // 10:
            return np.int64(0), -1
        v, i = v * 10 + d, i + 1
    return v, i


@njit(cache=True)
def _str_end(buf, i, e):  # pragma: no cover
    """Index of the closing quote of a plain ASCII string starting at ``i``, or -1."""
    if i < 0:
        return -1
    while i < e:
        c = buf[i]
        if c == 34:
            return i
        if c < 32 or c == 92 or c >= 128:  # control, escape, non-ASCII: careful path
            return -1
        i += 1
    return -1


@njit(cache=True)
def _literal(buf, i, e, lit):  # pragma: no cover
    """Index after ``lit`` if ``buf[i:]`` starts with it, else -1."""
    if i < 0 or i + len(lit) > e:
        return -1
    for k in range(len(lit)):
        if buf[i + k] != lit[k]:
            return -1
    return i + len(lit)


@njit(cache=True)
def _slot(buf, a, b):  # pragma: no cover
    """Slot of the key ``buf[a:b]`` or -1 for a key the scanner ignores."""
    if b - a == 1:
        return _SLOT1[buf[a]]
    if b - a == 2 and buf[a] == 112 and buf[a + 1] == 117:
        return K_pu
    return -1


@njit(cache=True)
def _stream_kind(buf, a, name_end):  # pragma: no cover
    """DEPTH, TRADE or TICKER from the part of the name ``buf[a:name_end]`` after its
    first ``@`` (up to the next ``@``)."""
    i = a
    while i < name_end and buf[i] != 64:
        i += 1
    j = i + 1
    while j < name_end and buf[j] != 64:
        j += 1
    if i == name_end:
        return CAREFUL
    if _literal(buf, i + 1, j, _DEPTH) == j:
        return DEPTH
    if _literal(buf, i + 1, j, _TRADE) == j:
        return TRADE
    return TICKER if _literal(buf, i + 1, j, _TICKER) == j else CAREFUL


@njit(cache=True)
def _route(buf, start, name_end, sym_a, sym_b, names, lens, count):  # pragma: no cover
    """Number of the (stream, symbol) pair, registering a new one; -1 if the table is full."""
    n_name, n_sym = name_end - start, sym_b - sym_a
    if n_name + n_sym > names.shape[1]:
        return -1
    for r in range(count[0]):
        if lens[r, 0] == n_name and lens[r, 1] == n_sym and _same(
            buf, start, names[r], 0, n_name
        ) and _same(buf, sym_a, names[r], n_name, n_sym):
            return r
    r = count[0]
    if r == names.shape[0]:
        return -1
    names[r, :n_name] = buf[start:name_end]
    names[r, n_name : n_name + n_sym] = buf[sym_a:sym_b]
    lens[r, 0], lens[r, 1] = n_name, n_sym
    count[0] += 1
    return r


@njit(cache=True)
def _same(buf, a, row, b, n):  # pragma: no cover
    for k in range(n):  # noqa: SIM110 - a plain loop for numba
        if buf[a + k] != row[b + k]:
            return False
    return True
