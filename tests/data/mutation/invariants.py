"""Invariants of a converted capture, written apart from the converters' own checks.

They judge an output by the schema's contract and by the unmutated capture's conversion
(the baseline): rows sorted by local_ts; timestamps inside the baseline's time range
(± a minute); prices finite, positive and within a factor 10 of the baseline's range;
sizes finite, positive (zero only for a delta that deletes a level) and at most 1000
times the baseline's largest; books uncrossed with levels in book order; replaying the
deltas gives every snapshot; on Binance, each book state's top equals the latest
bookTicker at or below its update id.
"""

from __future__ import annotations

import bisect
import math
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

MARGIN_NS = 60 * 10**9
LEVELS = ("bid_price", "bid_size", "ask_price", "ask_size")


@dataclass
class Baseline:
    """What the unmutated capture converts to, as the invariants need it."""

    time: tuple[int, int]
    price: tuple[float, float]
    size: float
    tickers: dict[str, list[int]]  # symbol -> sorted bookTicker update ids

    @classmethod
    def of(cls, converted: list) -> Baseline:
        times, prices, sizes, tickers = [], [], [], {}
        for c in converted:
            for table in c.tables.values():
                if not table.num_rows:
                    continue
                times += [table[name].to_numpy() for name in ("exchange_ts", "local_ts")]
                prices += [_values(table, n) for n in table.column_names if "price" in n]
                sizes += [_values(table, n) for n in table.column_names if "size" in n]
            if "bbo" in c.tables:
                tickers[c.symbol] = sorted(c.tables["bbo"]["seq"].to_pylist())
        times, prices, sizes = (np.concatenate(x) for x in (times, prices, sizes))
        return cls((int(times.min()), int(times.max())),
                   (float(np.nanmin(prices)), float(np.nanmax(prices))),
                   float(np.nanmax(sizes)), tickers)


def _values(table: pa.Table, name: str) -> np.ndarray:
    column = table[name].combine_chunks()
    if pa.types.is_fixed_size_list(column.type):
        return column.flatten().to_numpy(zero_copy_only=False)
    return column.to_numpy(zero_copy_only=False)


def _levels(table: pa.Table, name: str) -> np.ndarray:
    kind = table.schema.field(name).type
    width = kind.list_size if pa.types.is_fixed_size_list(kind) else 1
    return _values(table, name).reshape(table.num_rows, width)


def violations(converted: list, base: Baseline, converter: str) -> list[str]:
    """Every broken invariant of ``converted``, as text (empty: the output is sound)."""
    found = []
    for c in converted:
        for kind, table in c.tables.items():
            found += [f"{c.symbol} {kind}: {text}" for text in _table_faults(kind, table, base)]
        if "book_delta" in c.tables and "book_snapshot" in c.tables:
            found += [f"{c.symbol}: {text}" for text in
                      replay_faults(c.tables["book_delta"], c.tables["book_snapshot"])]
        if converter == "binance" and "bbo" in c.tables:
            found += [f"{c.symbol}: {text}" for text in
                      ticker_faults(c, base.tickers.get(c.symbol, []))]
    return found


def _table_faults(kind: str, table: pa.Table, base: Baseline) -> list[str]:
    if not table.num_rows:
        return []
    faults = []
    local = table["local_ts"].to_numpy()
    if (np.diff(local) < 0).any():
        faults.append("local_ts not sorted")
    for name in ("exchange_ts", "local_ts"):
        ts = table[name].to_numpy()
        if ts.min() < base.time[0] - MARGIN_NS or ts.max() > base.time[1] + MARGIN_NS:
            faults.append(f"{name} outside the capture's time range")
    if kind in ("trades", "book_delta"):
        zero_ok = (table["flags"].to_numpy() & 1) == 0 if kind == "book_delta" else False
        faults += _value_faults(_values(table, "price"), _values(table, "size"), base, zero_ok)
    else:
        faults += _book_faults({name: _levels(table, name) for name in LEVELS}, base)
    return faults


def _value_faults(price: np.ndarray, size: np.ndarray, base: Baseline,
                  zero_ok) -> list[str]:
    faults = []
    low, high = base.price[0] / 10, base.price[1] * 10
    if not (np.isfinite(price) & (price >= low) & (price <= high)).all():
        faults.append("a price that is not finite or far outside the capture's prices")
    sane = np.isfinite(size) & (size <= base.size * 1000)
    if not (sane & ((size > 0) | (zero_ok & (size == 0)))).all():
        faults.append("a size that is not finite, not positive, or far too large")
    return faults


def _book_faults(levels: dict[str, np.ndarray], base: Baseline) -> list[str]:
    faults = []
    for side, step in (("bid", -1), ("ask", 1)):
        price, size = levels[f"{side}_price"], levels[f"{side}_size"]
        present = ~np.isnan(price)
        if (present != ~np.isnan(size)).any():
            faults.append(f"a {side} level with a price but no size, or the reverse")
        if (present[:, 1:] & ~present[:, :-1]).any():
            faults.append(f"a {side} level after a missing one")
        with np.errstate(invalid="ignore"):
            if (np.diff(price, axis=1) * step <= 0).any():
                faults.append(f"{side} levels out of book order")
        faults += _value_faults(price[present], size[present], base, False)
    with np.errstate(invalid="ignore"):
        if (levels["bid_price"][:, 0] >= levels["ask_price"][:, 0]).any():
            faults.append("a crossed book")
    return faults


def replay_faults(deltas: pa.Table, snapshots: pa.Table) -> list[str]:
    """Replay the deltas with a plain sorted-list book. Walking both in order, each
    snapshot row must be the book after the next delta message when it has that message's
    (exchange_ts, local_ts, seq), else (LOBSTER: a message that changed nothing visible)
    the book after the last one; and every replayed message must meet its row."""
    depth = snapshots.schema.field("bid_price").type.list_size
    replayed = _replay(deltas, depth)
    keys = zip(*(snapshots[n].to_pylist() for n in ("exchange_ts", "local_ts", "seq")),
               strict=True)
    expected = np.stack([_levels(snapshots, name) for name in LEVELS], axis=1)
    applied = 0
    for row, key in enumerate(keys):
        if applied < len(replayed) and replayed[applied][0] == key:
            applied += 1
        state = replayed[applied - 1][1] if applied else None
        if state is None or not np.array_equal(np.array(state, dtype=np.float64),
                                               expected[row], equal_nan=True):
            return [f"replaying the deltas does not give snapshot row {row}"]
    if applied < len(replayed):
        return [f"no snapshot row for the delta message {replayed[applied][0]}"]
    return []


def _replay(deltas: pa.Table, depth: int) -> list[tuple[tuple, list]]:
    """(message key, top ``depth`` levels after it) for each message from the first one
    holding a snapshot row."""
    cols = {name: deltas[name].to_pylist() for name in
            ("exchange_ts", "local_ts", "seq", "side", "price", "size", "flags")}
    books = {1: {}, -1: {}}
    keys = {1: [], -1: []}  # sorted prices per side
    states, started, previous, cleared = [], False, None, False
    for i in range(deltas.num_rows):
        message = (cols["exchange_ts"][i], cols["local_ts"][i], cols["seq"][i])
        if message != previous:
            if started:
                states.append((previous, _top(books, keys, depth)))
            previous, cleared = message, False
        if cols["flags"][i] & 1 and not cleared:
            books, keys, started, cleared = {1: {}, -1: {}}, {1: [], -1: []}, True, True
        _set(books[cols["side"][i]], keys[cols["side"][i]], cols["price"][i], cols["size"][i])
    if started:
        states.append((previous, _top(books, keys, depth)))
    return states


def _set(book: dict, keys: list, price: float, size: float) -> None:
    if size == 0:
        if book.pop(price, None) is not None:
            del keys[bisect.bisect_left(keys, price)]
        return
    if price not in book:
        bisect.insort(keys, price)
    book[price] = size


def _top(books: dict, keys: dict, depth: int) -> list:
    bids = keys[1][::-1][:depth]
    asks = keys[-1][:depth]
    pad = [math.nan] * depth
    return [(bids + pad)[:depth], ([books[1][p] for p in bids] + pad)[:depth],
            (asks + pad)[:depth], ([books[-1][p] for p in asks] + pad)[:depth]]


def ticker_faults(converted, base_ids: list[int]) -> list[str]:
    """Binance: after the depth message with update id u, the book's top must be the
    latest bookTicker with id <= u, where the output holds that ticker (the baseline's
    latest id <= u); on spot, Binance's documented boundary case is allowed (bookTicker
    better on one side by a level that message does not mention, and the next state
    agreeing)."""
    snaps, bbo, deltas = (converted.tables[k] for k in ("book_snapshot", "bbo", "book_delta"))
    if not snaps.num_rows or not bbo.num_rows:
        return []
    quotes = zip(*(bbo[n].to_pylist() for n in LEVELS), strict=True)
    tickers = sorted(zip(bbo["seq"].to_pylist(), quotes, strict=True), key=lambda t: t[0])
    ids = [u for u, _ in tickers]
    tops = list(zip(*(_levels(snaps, n)[:, 0].tolist() for n in LEVELS), strict=True))
    spot = not (deltas["prev_seq"].to_numpy() != -1).any()
    agree = []
    for u, top in zip(snaps["seq"].to_pylist(), tops, strict=True):
        k = bisect.bisect_right(ids, u) - 1
        b = bisect.bisect_right(base_ids, u) - 1
        if k < 0 or b < 0 or ids[k] != base_ids[b]:
            agree.append((u, None, None))
        else:
            agree.append((u, top, tickers[k][1]))
    return _disagreements(agree, deltas, spot)


def _disagreements(agree: list, deltas: pa.Table, spot: bool) -> list[str]:
    for m, (u, top, ticker) in enumerate(agree):
        if top is None or tuple(top) == tuple(ticker):
            continue
        after = agree[m + 1] if m + 1 < len(agree) else (None, None, None)
        next_agrees = after[1] is not None and tuple(after[1]) == tuple(after[2])
        if spot and next_agrees and _missed_level(u, top, ticker, deltas):
            continue
        return [f"the book after update id {u} is {top}, bookTicker says {ticker}"]
    return []


def _missed_level(u: int, top: tuple, ticker: tuple, deltas: pa.Table) -> bool:
    """bookTicker shows a better price on one side, the other side is the book's, and
    the depth message ``u`` does not mention that price."""
    if top[2:] == ticker[2:] and ticker[0] > top[0]:
        side, price = 1, ticker[0]
    elif top[:2] == ticker[:2] and ticker[2] < top[2]:
        side, price = -1, ticker[2]
    else:
        return False
    message = deltas.filter(pc.equal(deltas["seq"], u))
    mentioned = zip(message["side"].to_pylist(), message["price"].to_pylist(), strict=True)
    return (side, price) not in set(mentioned)
