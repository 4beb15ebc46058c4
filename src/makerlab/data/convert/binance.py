"""Binance raw websocket captures (hftbacktest collector format) -> makerlab tables.

Input: text (optionally gzip) with one ``<local receive timestamp> <raw JSON>`` line per
message: combined-stream envelopes ``{"stream": ..., "data": ...}`` for ``@depth``,
``@trade`` and ``@bookTicker`` (other streams are counted and ignored), plus REST depth
snapshot lines ``{"lastUpdateId": ..., "bids": ..., "asks": ...}``.

Output per symbol (see :mod:`makerlab.data.schema` and docs/convert.md):

- ``book_delta``: the REST snapshot (``FLAG_SNAPSHOT``, ``seq`` = lastUpdateId) followed by
  every depth diff in sequence (``seq`` = ``u``, ``first_seq`` = ``U``, ``prev_seq`` =
  ``pu`` or -1 on spot; ``exchange_ts`` = ``T``, the transaction time, on futures and
  ``E`` on spot, which has no ``T``), synchronised by Binance's rules:

  * futures: drop diffs with ``u < lastUpdateId``; the first applied diff has
    ``U <= lastUpdateId <= u``; then each diff's ``pu`` equals the previous ``u``;
  * spot: drop diffs with ``u <= lastUpdateId``; the first applied diff has
    ``U <= lastUpdateId + 1 <= u``; then each ``U`` equals the previous ``u + 1``.

  Diffs received before the snapshot line but applied after it get the snapshot's
  ``local_ts`` (the moment a live recorder could apply them), keeping ``local_ts`` sorted.
- ``book_snapshot``: :func:`~makerlab.data.book_builder.materialize` of the deltas.
- ``trades``: ``X == "MARKET"`` prints only (others counted in ``stats``); ``side`` is the
  aggressor (``m`` = buyer is maker -> seller aggressed -> -1); ``exchange_ts`` = ``T``.
- ``bbo``: ``@bookTicker``; ``exchange_ts`` = ``T``. Spot bookTicker has no event time:
  there ``exchange_ts`` = ``local_ts`` and the schema metadata ``makerlab.clock`` says so.

Several files of one instrument continue one another (files are ordered by their first
timestamp); sequence continuity is checked across them.
"""

from __future__ import annotations

import gc
import gzip
import zlib
from collections.abc import Iterator, Sequence
from itertools import repeat
from pathlib import Path

import numpy as np
import orjson
from tqdm import tqdm

from makerlab.data.convert import Converted, Repairs
from makerlab.data.convert import _binance_parse as fast
from makerlab.data.convert._binance_build import build, exchange_id, ns
from makerlab.data.convert._binance_parse import Capture
from makerlab.data.schema import NO_SEQ
from makerlab.data.validate import Plausibility
from makerlab.errors import ConfigError, DataError

__all__ = ["read"]

_CHUNK = 1 << 22  # bytes of decompressed text processed at a time
_MALFORMED = (ValueError, KeyError, TypeError, AttributeError, IndexError)
_INT64 = range(-(2**63), 2**63)


def _int64s(*columns: list) -> None:
    """Raise ValueError unless every value is an int that fits int64 (ids, times)."""
    for column in columns:
        for value in column:
            if type(value) is not int or value not in _INT64:
                raise ValueError(f"expected an int64 integer, got {value!r}")


_FAST_BLOCKS = {fast.DEPTH: ("depth_fast", fast.depth_block),  # Capture field, builder
                fast.TRADE: ("trades_fast", fast.trade_block),
                fast.TICKER: ("bbo_fast", fast.ticker_block)}


def read(
    inputs: str | Path | Sequence[str | Path],
    *,
    exchange: str | None = None,
    symbol: str | None = None,
    depth: int = 20,
    repair: bool = False,
    progress: bool = True,
    plausibility: Plausibility | None = None,
) -> list[Converted]:
    """Parse Binance raw websocket captures into one :class:`Converted` per symbol.

    Args:
        inputs: capture files (``.gz`` or plain text), in any order.
        exchange: exchange id for every symbol; inferred when None (``binance`` for USD-M
            futures, ``binance_coinm`` for COIN-M, ``binance_spot`` for spot).
        symbol: keep only this symbol (e.g. ``"BTCUSDT"``); all symbols when None.
        depth: levels per side of the materialised ``book_snapshot`` table.
        repair: repair instead of raising (see docs/convert.md): skip malformed and
            implausible lines, resynchronise after sequence gaps, sort slightly unsorted
            rows, drop the book from a wrong state (crossed, or not as bookTicker) up to
            the next snapshot.
        progress: show a tqdm bar per file (bytes read).
        plausibility: the bounds every row must respect (timestamps, prices, sizes; the
            defaults of :class:`~makerlab.data.validate.Plausibility` when None).

    Raises:
        DataError (and its subclasses SequenceGap, UnsortedData, CrossedBook), naming
        the file and line, unless ``repair`` is set.
    """
    limits = plausibility or Plausibility()
    paths = [Path(p) for p in ([inputs] if isinstance(inputs, str | Path) else inputs)]
    if not paths:
        raise ConfigError("no input files given")
    paths.sort(key=_first_timestamp)
    collecting = gc.isenabled()
    gc.disable()  # parsing creates millions of small lists; cyclic GC passes would dominate
    try:
        captures: dict[tuple[str, str], Capture] = {}  # (market, symbol) -> records
        for index, path in enumerate(paths):
            parser = _Parser(path, index, {}, repair=repair, progress=progress)
            parser.run()
            for part in parser.captures.values():
                _merge(captures, part)
        wanted = sorted(k for k in captures if symbol is None or k[1] == symbol.upper())
        if not wanted:
            wanted_text = f" for symbol {symbol!r}" if symbol else ""
            raise DataError(f"no messages{wanted_text}", source=", ".join(map(str, paths)),
                            line=1)
        results = []
        for key in wanted:
            results.append(build(captures.pop(key), paths, exchange, depth, repair, limits))
        captures.clear()  # free the parsed records before the collector runs again
        return results
    finally:
        if collecting:
            gc.enable()


# --------------------------------------------------------------------------- reading


def _merge(captures: dict[tuple[str, str], Capture], part: Capture) -> None:
    """Append one file's records of a symbol to that market's and symbol's records.

    Spot and futures files share symbols (``BTCUSDT``), so the key includes the market.
    """
    key = (exchange_id(part), part.symbol)
    whole = captures.get(key)
    if whole is None:
        captures[key] = part
        return
    for name in ("depth", "levels", "trades", "trade_text", "bbo", "bbo_text", "depth_fast",
                 "trades_fast", "bbo_fast"):
        getattr(whole, name).extend(getattr(part, name))
    whole.stats.update(part.stats)
    whole.repairs.counts.update(part.repairs.counts)
    for kind, example in part.repairs.examples.items():
        whole.repairs.examples.setdefault(kind, example)


def _first_timestamp(path: Path) -> int:
    """Local timestamp of the file's first line (ordering key; 0 if unreadable)."""
    try:
        with _open(path) as f:
            return ns(np.array([int(f.readline().split(b" ", 1)[0])]))[0]
    except (OSError, EOFError, ValueError, zlib.error):
        return 0


def _open(path: Path):
    """Open ``path`` for binary reading, decompressing gzip transparently."""
    with open(path, "rb") as f:
        magic = f.read(2)
    return gzip.open(path, "rb") if magic == b"\x1f\x8b" else open(path, "rb")


class _Parser:
    """Reads one capture file into per-symbol :class:`Capture` records.

    Each chunk goes through the strict numba scanner first; the lines it leaves (REST
    snapshots, other streams, anything unusual or malformed) take the careful path:
    orjson, then per-line parsing that reports a bad line by file:line.
    """

    def __init__(self, path, index, captures, *, repair, progress) -> None:
        self.path, self.source, self.index = path, str(path), index
        self.captures: dict[str, Capture] = captures
        self.repair, self.progress = repair, progress
        self.file_symbols: list[str] = []
        self.repairs = Repairs()  # file-level repairs, shared by the file's symbols
        self.snapshots: list[tuple[int, dict, int]] = []  # REST snapshot lines
        self.ended = False  # end of the decompressed text reached
        self.handlers = {"depth": self._depth, "trade": self._trade, "bookTicker": self._ticker}
        self.routes: dict[tuple[str, str], tuple] = {}  # (stream, symbol) -> route
        self.fast_routes = fast.Routes()  # the scanner's (stream, symbol) numbering

    def run(self) -> None:
        """Parse every line of the file."""
        for first_line, buf, newlines in self._chunks():
            found = fast.scan(buf, self.fast_routes, newlines)
            self._fast(found, first_line)
            left = np.flatnonzero(found.kind == fast.CAREFUL)
            if left.size:
                self._careful([buf[a:b] for a, b in found.bounds[left].tolist()],
                              (left + first_line).tolist())
        self._resolve_snapshots()
        for name in self.file_symbols:
            target = self.captures[name].repairs
            target.counts.update(self.repairs.counts)
            for kind, example in self.repairs.examples.items():
                target.examples.setdefault(kind, example)

    def _malformed(self, lineno: int, detail: str) -> None:
        if not self.repair:
            raise DataError(f"malformed line ({detail}); pass repair=True to skip it",
                            source=self.source, line=lineno)
        self.repairs.record("malformed_line", self.source, lineno, detail)

    def _careful(self, lines: list[bytes], linenos: list[int]) -> None:
        """Parse and dispatch the lines the scanner left, numbered ``linenos``."""
        pairs = self._parse_chunk(lines)
        if pairs is None:  # some line is not ``<int> <json>``: find it line by line
            pairs = [self._parse_line(raw, n) for raw, n in zip(lines, linenos, strict=True)]
        self._dispatch(pairs, linenos)

    def _fast(self, found: fast.Scan, first_line: int) -> None:
        """Store the scanner's records, one block per (stream, symbol) and chunk."""
        lines = np.flatnonzero((found.kind != fast.CAREFUL) & (found.kind != fast.EMPTY))
        routes = found.ints[lines, fast.I_ROUTE]
        for route in np.unique(routes).tolist():
            idx = lines[routes == route]
            capture = self._capture(self.fast_routes.symbol(route))
            name, block = _FAST_BLOCKS[int(found.kind[idx[0]])]
            getattr(capture, name).append(block(found, idx, self.index, first_line))
            flags = found.ints[idx, fast.I_FLAG]  # pu (in any diff), X or E (first message)
            capture.futures |= bool(flags.any() if name == "depth_fast" else flags[0])

    def _chunks(self) -> Iterator[tuple[int, bytes, int]]:
        """(first line number, complete lines, their count) per chunk of decompressed text.

        A truncated or corrupt gzip raises DataError (or, repairing, ends the file).
        """
        size = self.path.stat().st_size
        lineno, tail = 1, b""
        with open(self.path, "rb") as raw, tqdm(
            total=size, unit="B", unit_scale=True, desc=self.path.name,
            disable=not self.progress, leave=False,
        ) as bar:
            compressed = raw.read(2) == b"\x1f\x8b"
            raw.seek(0)
            stream = gzip.GzipFile(fileobj=raw, mode="rb") if compressed else raw
            while not self.ended:
                chunk = tail + self._read(stream, lineno)
                bar.update(raw.tell() - bar.n)
                cut = chunk.rfind(b"\n") + 1
                tail = chunk[cut:]
                if cut:
                    body = chunk[:cut]
                    newlines = fast.newlines(body)
                    yield lineno, body, newlines
                    lineno += newlines
        if tail.strip():
            yield lineno, tail, 0

    def _read(self, stream, lineno: int) -> bytes:
        """Up to about ``_CHUNK`` bytes; at a truncated gzip, what decompressed before it."""
        parts: list[bytes] = []
        size = 0
        while size < _CHUNK and not self.ended:
            try:
                part = stream.read1(_CHUNK)
            except (EOFError, OSError, zlib.error) as e:
                self.ended = True
                self._broken(e, lineno + sum(part.count(b"\n") for part in parts))
                break
            self.ended = not part
            parts.append(part)
            size += len(part)
        return b"".join(parts)

    def _broken(self, error: Exception, line: int) -> None:
        """A gzip cut short keeps the (intact) lines before the cut when repairing; a
        corrupt one (bad data or checksum) raises: garbage may have come out before zlib
        noticed, so not even the lines before can be trusted."""
        if not isinstance(error, EOFError):
            raise DataError(f"corrupt gzip, noticed after line {line - 1} ({error}); what "
                            "decompressed before cannot be trusted either",
                            source=self.source, line=line) from error
        detail = f"truncated gzip after line {line - 1} ({error})"
        if not self.repair:
            raise DataError(detail + "; pass repair=True to keep the lines before it",
                            source=self.source, line=line) from error
        self.repairs.record("truncated_gzip", self.source, line, detail)

    @staticmethod
    def _parse_chunk(lines: list[bytes]) -> list | None:
        """Parse all lines with one orjson call as ``[[ts, message], ...]`` (None on error).

        An empty line becomes ``[]``.
        """
        text = b"[[" + b"],[".join([line.replace(b" ", b",", 1) for line in lines]) + b"]]"
        try:
            pairs = orjson.loads(text)
        except orjson.JSONDecodeError:
            return None
        return pairs if len(pairs) == len(lines) else None

    def _parse_line(self, raw: bytes, lineno: int) -> list:
        """One line as ``[ts, message]``; ``[]`` for an empty or (repairing) bad line."""
        if not raw.strip():
            return []
        try:
            space = raw.index(b" ")
            return [int(raw[:space]), orjson.loads(raw[space + 1 :])]
        except ValueError as e:  # JSONDecodeError is a ValueError
            self._malformed(lineno, f"{type(e).__name__}: {e}")
            return []

    def _dispatch(self, pairs: list, linenos: list[int]) -> None:
        """Group a chunk's messages by stream and hand each group to its handler."""
        groups: dict[str, list[int]] = {}
        for k, pair in enumerate(pairs):
            if not pair:
                continue
            try:
                stream = pair[1].get("stream")
                if stream is None:
                    self.snapshots.append((pair[0], pair[1], linenos[k]))
                elif stream in groups:
                    groups[stream].append(k)
                else:
                    groups[stream] = [k]
            except _MALFORMED as e:
                self._malformed(linenos[k], f"{type(e).__name__}: {e}")
        for stream, ks in groups.items():
            self._group(stream, [pairs[k] for k in ks], [linenos[k] for k in ks])

    def _group(self, stream: str, pairs: list, lines: list[int]) -> None:
        """Records of one stream: in bulk, or message by message if any is malformed."""
        try:
            datas = [pair[1]["data"] for pair in pairs]
            symbols = {d["s"] for d in datas}
            if len(symbols) == 1:
                handler, capture = self._route(stream, symbols.pop())
                handler(capture, [pair[0] for pair in pairs], datas, lines)
                return
        except _MALFORMED:
            pass
        for pair, line in zip(pairs, lines, strict=True):
            try:
                d = pair[1]["data"]
                handler, capture = self._route(stream, d["s"])
                handler(capture, [pair[0]], [d], [line])
            except _MALFORMED as e:
                self._malformed(line, f"{type(e).__name__}: {e}")

    def _route(self, stream: str, symbol: str) -> tuple:
        """The (bulk handler, capture) for a stream like ``btcusdt@depth@0ms``."""
        route = self.routes.get((stream, symbol))
        if route is None:
            kind = stream[stream.index("@") + 1 :].split("@", 1)[0]
            handler = self.handlers.get(kind, self._ignored)
            route = self.routes[stream, symbol] = (handler, self._capture(symbol))
        return route

    def _ignored(self, capture: Capture, local: list, datas: list, lines: list) -> None:
        for d in datas:
            capture.stats[f"ignored_{d.get('e', 'unknown')}"] += 1

    def _capture(self, symbol: str) -> Capture:
        capture = self.captures.get(symbol)
        if capture is None:
            capture = self.captures[symbol] = Capture(symbol)
        if symbol not in self.file_symbols:
            self.file_symbols.append(symbol)
        return capture

    def _depth(self, capture: Capture, local: list, datas: list, lines: list) -> None:
        rows = []
        for ts, d, line in zip(local, datas, lines, strict=True):
            bids, asks, pu = d["b"], d["a"], d.get("pu")
            _int64s([ts, d.get("T", d["E"]), d["U"], d["u"], NO_SEQ if pu is None else pu])
            rows.append((ts, d.get("T", d["E"]), d["U"], d["u"], NO_SEQ if pu is None else pu,
                         len(bids), len(asks), 0, self.index, line))
        for d in datas:
            capture.levels += d["b"]
            capture.levels += d["a"]
        capture.depth += rows
        capture.futures |= any(d.get("pu") is not None for d in datas)

    def _resolve_snapshots(self) -> None:
        """Attach the file's REST snapshot lines to its (single) symbol."""
        for local, m, line in self.snapshots:
            if len(self.file_symbols) != 1:
                raise DataError(f"REST snapshot line in a file with symbols "
                                f"{self.file_symbols}: cannot tell its symbol",
                                source=self.source, line=line)
            try:
                bids, asks, last = m["bids"], m["asks"], m["lastUpdateId"]
                exchange_ts = m.get("T", m.get("E", NO_SEQ))  # spot snapshots carry no time
            except _MALFORMED as e:
                self._malformed(line, f"{type(e).__name__}: {e}")
                continue
            capture = self.captures[self.file_symbols[0]]
            capture.depth.append((local, exchange_ts, NO_SEQ, last, NO_SEQ, len(bids),
                                  len(asks), 1, self.index, line))
            capture.levels += bids
            capture.levels += asks

    def _trade(self, capture: Capture, local: list, datas: list, lines: list) -> None:
        n, file = len(datas), self.index
        times, makers = [d["T"] for d in datas], [bool(d["m"]) for d in datas]
        _int64s(local, times)
        text = [(d["p"], d["q"], str(d["t"]), d.get("X", "MARKET")) for d in datas]
        capture.trades += zip(local, times, makers, repeat(file, n), lines, strict=True)
        capture.trade_text += text
        capture.futures |= "X" in datas[0]

    def _ticker(self, capture: Capture, local: list, datas: list, lines: list) -> None:
        n, file = len(datas), self.index
        seq, event = [d["u"] for d in datas], [d.get("T", d.get("E", NO_SEQ)) for d in datas]
        _int64s(local, seq, event)
        text = [(d["b"], d["B"], d["a"], d["A"]) for d in datas]
        capture.bbo += zip(local, event, seq, repeat(file, n), lines, strict=True)
        capture.bbo_text += text
        capture.futures |= event[0] != NO_SEQ
