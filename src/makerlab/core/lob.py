"""The limit order book a strategy reads on every tick, with optional history buffers.

Conventions (see ``docs/book.md``):

- A side is a float array of rows ``[price, size]``, best first: bids strictly descending,
  asks strictly ascending, no zero-size level. Prices are in quote currency, sizes in base
  units (contracts for inverse products). Timestamps are integer epoch milliseconds.
- A *snapshot* replaces the book. A *delta* lists levels whose size changed: each row's
  size is the level's new total size, size ``0`` deletes the level (deleting an absent
  level does nothing), and if a price repeats within one delta its last row wins.
- Book analytics (mid, VAMP, impact, cumulative size) use the visible top ``depth`` levels
  and return NaN, never raise, when a side they need is empty.
"""

from __future__ import annotations

from collections import deque
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from makerlab.core.ringbuffer import RingBuffer, sample_slice
from makerlab.core.weights import vol
from makerlab.errors import ConfigError, CrossedBook, DataError, UnsortedData

NAN = float("nan")
BID, ASK = -1, 1  # a side's sign: sorting by ``sign * price`` puts the best level first


def _frozen(levels: np.ndarray) -> np.ndarray:
    levels.flags.writeable = False
    return levels


def _empty_side() -> np.ndarray:
    return _frozen(np.empty((0, 2)))


def _as_levels(raw: ArrayLike | None, name: str) -> np.ndarray:
    """Validated ``(k, 2)`` float copy of ``raw``; rows with a NaN price (padding) dropped."""
    levels = np.array(() if raw is None else raw, dtype=float)
    if levels.size == 0:
        return np.empty((0, 2))
    if levels.ndim != 2 or levels.shape[1] != 2:
        raise DataError(f"{name} must be rows of [price, size], got shape {levels.shape}")
    if np.isnan(levels[:, 0]).any():
        levels = levels[~np.isnan(levels[:, 0])]
        if len(levels) == 0:
            return np.empty((0, 2))
    lowest = levels.min(axis=0)  # NaN propagates, so NaN sizes fail too
    if not (lowest[0] > 0 and lowest[1] >= 0 and levels.max() < np.inf):
        raise DataError(f"{name} has an invalid level in {levels.tolist()}: prices must be "
                        "positive and sizes non-negative, both finite")
    return levels


def _snapshot_side(levels: np.ndarray, sign: int, is_sorted: bool, cap: int | None,
                   name: str) -> np.ndarray:
    """A snapshot side in book order, zero sizes dropped, cut to ``cap`` levels."""
    levels = levels[levels[:, 1] > 0]
    if not is_sorted:
        levels = levels[np.argsort(sign * levels[:, 0], kind="stable")]
    if np.any(np.diff(sign * levels[:, 0]) <= 0):
        raise DataError(f"{name} snapshot is not strictly best-first or repeats a price; "
                        "pass is_sorted=False to sort it (a repeated price is an error)")
    return _frozen(levels[:cap])


def _last_per_price(updates: np.ndarray) -> np.ndarray:
    """Delta rows with each repeated price reduced to its last row (in price order)."""
    if len(updates) < 2:
        return updates
    newest_first = updates[::-1]
    return newest_first[np.unique(newest_first[:, 0], return_index=True)[1]]


def _delta_side(book: np.ndarray, updates: np.ndarray, sign: int,
                cap: int | None) -> np.ndarray:
    """``book`` with the delta rows ``updates`` applied (see the module docstring)."""
    if len(updates) == 0:
        return book
    updates = _last_per_price(updates)
    keys, update_keys = sign * book[:, 0], sign * updates[:, 0]
    at = np.searchsorted(keys, update_keys).clip(max=max(len(keys) - 1, 0))
    keep = np.ones(len(book), dtype=bool)
    if len(book):
        keep[at[keys[at] == update_keys]] = False
    merged = np.concatenate((book[keep], updates[updates[:, 1] > 0]))
    return _frozen(merged[np.argsort(sign * merged[:, 0])][:cap])


def walk_notional(levels: np.ndarray, notional: float) -> float:
    """VWAP of taking ``notional`` quote currency from ``levels`` (best first).

    Levels are taken whole, best first, until their quote notional ``price * size`` adds up
    to ``notional``; the last level is taken partially. The result is
    ``notional / base size taken``. If the side holds less notional than asked, the whole
    side is taken. ``notional = 0`` gives the best price; an empty side gives NaN.
    """
    if len(levels) == 0:
        return NAN
    if notional <= 0:
        return float(levels[0, 0])
    notional = float(notional)  # the same value (a numpy scalar compares slower)
    price = levels.item(0, 0)
    taken = 0.0 + price * levels.item(0, 1)
    if taken >= notional:  # filled inside the best level (most walks): no other level read
        return price
    # The running notional in Python floats, stopping at the level that completes the
    # order: the same IEEE sums as ``np.cumsum(prices * sizes)`` and ``searchsorted``.
    rows = levels.tolist()
    for k in range(1, len(rows)):
        price, size = rows[k]
        before, taken = taken, taken + price * size
        if taken >= notional:
            partial = (notional - before) / price
            return float(notional / (numpy_sum([row[1] for row in rows[:k]]) + partial))
    return float(taken / numpy_sum([row[1] for row in rows]))


def numpy_sum(values: list[float]) -> float:
    """``np.sum(values)`` of float64 values, bit for bit, in Python floats.

    numpy adds up to 8 values one after the other and up to 128 in eight interleaved
    partial sums, combined pairwise (``pairwise_sum`` in its loops); longer arrays are left
    to numpy. A small sum in Python costs a fraction of a numpy call.
    """
    n = len(values)
    if n < 8:
        total = -0.0
        for value in values:
            total += value
        return 0.0 + total
    if n > 128:
        return float(np.sum(values))
    r0, r1, r2, r3, r4, r5, r6, r7 = values[:8]
    full = n - n % 8
    for i in range(8, full, 8):
        r0 += values[i]
        r1 += values[i + 1]
        r2 += values[i + 2]
        r3 += values[i + 3]
        r4 += values[i + 4]
        r5 += values[i + 5]
        r6 += values[i + 6]
        r7 += values[i + 7]
    total = ((r0 + r1) + (r2 + r3)) + ((r4 + r5) + (r6 + r7))
    for value in values[full:]:
        total += value
    return 0.0 + total


def top_of(bids: np.ndarray, asks: np.ndarray) -> tuple[float, float, float]:
    """Best bid, best ask and ``(best bid + best ask) / 2``, NaN where a side is empty."""
    bid = float(bids[0, 0]) if len(bids) else NAN
    ask = float(asks[0, 0]) if len(asks) else NAN
    return bid, ask, (bid + ask) / 2 if len(bids) and len(asks) else NAN


def _unpadded(levels: np.ndarray) -> np.ndarray:
    return levels[~np.isnan(levels[:, 0])]


def _check_notional(notional: float) -> float:
    if not notional >= 0:
        raise ConfigError(f"notional must be a non-negative quote amount, got {notional!r}")
    return notional


class LOB:
    """An L2 limit order book kept from snapshots and deltas, with optional history.

    Args:
        timestamp: initial book time in epoch ms; ``-1`` means none yet.
        bids, asks: optional initial levels, rows ``[price, size]`` (applied as a snapshot).
        depth: number of levels per side the book shows (and buffers).
        buffer_size: capacity of the history buffers (one entry per update); ``0`` keeps
            no history.
        apply_shadow_depth: keep every level beyond ``depth`` internally (``safe_depth`` is
            then ``None``, unbounded), so a level that falls off the visible depth and comes
            back is still correct after later deltas. Without it, levels beyond ``depth`` are
            dropped, and after deletions near the top the deeper levels can show gaps until
            the next snapshot. Costs memory and time in proportion to the venue's depth.
        validate: if true (default), an update that would leave the book crossed or locked
            (best bid >= best ask) raises :class:`~makerlab.errors.CrossedBook` and leaves
            the book unchanged; a local book that crosses has missed a message and must be
            resynchronised from a snapshot. With ``False`` the update is applied as given.

    Raises:
        ConfigError: for a non-positive ``depth`` or a negative ``buffer_size``.
    """

    def __init__(self, timestamp: int = -1, bids: ArrayLike | None = None,
                 asks: ArrayLike | None = None, depth: int = 100, buffer_size: int = 0,
                 apply_shadow_depth: bool = False, *, validate: bool = True):
        if not (isinstance(depth, int) and depth > 0):
            raise ConfigError(f"depth must be a positive int, got {depth!r}")
        if not (isinstance(buffer_size, int) and buffer_size >= 0):
            raise ConfigError(f"buffer_size must be a non-negative int, got {buffer_size!r}")
        self.timestamp = int(timestamp)
        self.depth = depth
        self.apply_shadow_depth = apply_shadow_depth
        self.safe_depth: int | None = None if apply_shadow_depth else depth
        self.validate = validate
        self._bids = self._asks = _empty_side()
        self._bid = self._ask = self._mid = NAN  # of the current sides, set with them
        self._vamp_memo: tuple[np.ndarray, np.ndarray, tuple[float, ...], float] | None = None
        self._make_buffers(buffer_size)
        if bids is not None or asks is not None:
            self.update(timestamp, bids, asks, is_snapshot=True, is_sorted=False)

    def _make_buffers(self, buffer_size: int) -> None:
        capacity = max(buffer_size, 1)  # a RingBuffer needs one slot; nothing is recorded
        self.buffer_size = buffer_size
        self._timestamps = RingBuffer(capacity, np.int64)
        self._bid_states = RingBuffer(capacity, float, (self.depth, 2))
        self._ask_states = RingBuffer(capacity, float, (self.depth, 2))
        self._mids = RingBuffer(capacity, float)
        # states not yet in the buffers: they are written when a buffer is read, and only
        # the newest ``capacity`` of them (what the buffers would hold)
        self._unbuffered: deque[tuple[int, Any, Any, float]] = deque(maxlen=capacity)

    def _buffers(self) -> tuple[RingBuffer, RingBuffer, RingBuffer, RingBuffer]:
        """The history buffers (timestamps, bids, asks, mids), brought up to date."""
        ts, bids, asks, mids = self._timestamps, self._bid_states, self._ask_states, self._mids
        pending = self._unbuffered
        while pending:
            t, b, a, m = pending.popleft()
            ts._push(t)
            bids._push(b)
            asks._push(a)
            mids._push(m)
        return ts, bids, asks, mids

    @property
    def timestamps_buffer(self) -> RingBuffer:
        """The buffered states' timestamps (epoch ms)."""
        return self._buffers()[0]

    @property
    def bids_buffer(self) -> RingBuffer:
        """The buffered states' bids, ``(depth, 2)`` NaN-padded each."""
        return self._buffers()[1]

    @property
    def asks_buffer(self) -> RingBuffer:
        """The buffered states' asks, ``(depth, 2)`` NaN-padded each."""
        return self._buffers()[2]

    @property
    def mids_buffer(self) -> RingBuffer:
        """The buffered states' mids."""
        return self._buffers()[3]

    # -- updates --------------------------------------------------------------------------

    def update(self, timestamp: int, bids: ArrayLike | None, asks: ArrayLike | None,
               is_snapshot: bool, is_sorted: bool = True) -> None:
        """Apply a snapshot or a delta received at ``timestamp`` (epoch ms).

        ``bids``/``asks`` are rows ``[price, size]`` (``None`` or empty: nothing for that
        side; rows with a NaN price are padding and ignored). A snapshot replaces both sides;
        ``is_sorted`` says its rows are already best first (checked, not trusted), otherwise
        they are sorted. A delta sets each listed level's total size, ``0`` deleting it; its
        row order does not matter except that a repeated price's last row wins. The new state
        is appended to the history buffers.

        Raises:
            DataError: malformed levels, or an unsorted snapshot with ``is_sorted=True``.
            UnsortedData: ``timestamp`` is earlier than the book's.
            CrossedBook: the result is crossed and ``validate`` is on.
        On any error the book is left unchanged.
        """
        timestamp = int(timestamp)
        if timestamp < self.timestamp:
            raise UnsortedData(f"book update at {timestamp} ms is older than the book "
                               f"({self.timestamp} ms); feed updates in time order")
        new_bids = self._next_side(self._bids, bids, BID, is_snapshot, is_sorted)
        new_asks = self._next_side(self._asks, asks, ASK, is_snapshot, is_sorted)
        if self.validate:
            self._check_uncrossed(new_bids, new_asks, timestamp)
        self._bids, self._asks, self.timestamp = new_bids, new_asks, timestamp
        self._bid, self._ask, self._mid = top_of(new_bids, new_asks)
        self._record()

    def _load_snapshot(self, timestamp: int, bids: np.ndarray, asks: np.ndarray,
                       padded_bids: np.ndarray, padded_asks: np.ndarray,
                       top: tuple[float, float, float]) -> None:
        """Trusted snapshot from data the replay engine already validated.

        ``bids``/``asks`` are read-only ``(k, 2)`` arrays already in book order, without
        padding or zero sizes, cut to ``safe_depth``; ``padded_*`` the same levels as
        ``(depth, 2)`` NaN-padded rows for the history buffers; ``top`` their best bid,
        best ask and mid (what :meth:`get_bid`, :meth:`get_ask` and :meth:`get_mid` answer
        until the next update, so it must be exactly that: NaN for an empty side). The
        result is what :meth:`update` gives for the same snapshot with ``is_sorted=True``,
        without re-checking the levels (the time order and, with ``validate``, crossing
        are still checked).
        """
        if timestamp < self.timestamp:
            raise UnsortedData(f"book update at {timestamp} ms is older than the book "
                               f"({self.timestamp} ms); feed updates in time order")
        if self.validate:
            self._check_uncrossed(bids, asks, timestamp)
        self._bids, self._asks, self.timestamp = bids, asks, timestamp
        self._bid, self._ask, self._mid = top
        if self.buffer_size:
            self._unbuffered.append((timestamp, padded_bids, padded_asks, top[2]))

    def _next_side(self, book: np.ndarray, raw: ArrayLike | None, sign: int,
                   is_snapshot: bool, is_sorted: bool) -> np.ndarray:
        name = "bids" if sign == BID else "asks"
        levels = _as_levels(raw, name)
        if is_snapshot:
            return _snapshot_side(levels, sign, is_sorted, self.safe_depth, name)
        return _delta_side(book, levels, sign, self.safe_depth)

    @staticmethod
    def _check_uncrossed(bids: np.ndarray, asks: np.ndarray, timestamp: int) -> None:
        if len(bids) and len(asks) and bids[0, 0] >= asks[0, 0]:
            raise CrossedBook(f"update at {timestamp} ms leaves best bid {bids[0, 0]} >= best "
                              f"ask {asks[0, 0]}; resync from a snapshot (or validate=False)")

    def _record(self) -> None:
        if self.buffer_size == 0:
            return
        self._unbuffered.append((self.timestamp, self._padded(self.get_bids()),
                                 self._padded(self.get_asks()), self.get_mid()))

    def _padded(self, levels: np.ndarray) -> np.ndarray:
        out = np.full((self.depth, 2), NAN)
        out[: len(levels)] = levels
        return out

    # -- top of book ----------------------------------------------------------------------

    @property
    def bids(self) -> np.ndarray:
        """The visible bid levels (same as :meth:`get_bids`)."""
        return self.get_bids()

    @property
    def asks(self) -> np.ndarray:
        """The visible ask levels (same as :meth:`get_asks`)."""
        return self.get_asks()

    def get_bids(self) -> np.ndarray:
        """Read-only ``(k, 2)`` array of the top ``k <= depth`` bids ``[price, size]``."""
        return self._bids[: self.depth]

    def get_asks(self) -> np.ndarray:
        """Read-only ``(k, 2)`` array of the top ``k <= depth`` asks ``[price, size]``."""
        return self._asks[: self.depth]

    def get_bid(self) -> float:
        """Best bid price, NaN if there is no bid."""
        return self._bid

    def get_ask(self) -> float:
        """Best ask price, NaN if there is no ask."""
        return self._ask

    def get_bid_sz(self) -> float:
        """Size at the best bid, NaN if there is no bid."""
        return float(self._bids[0, 1]) if len(self._bids) else NAN

    def get_ask_sz(self) -> float:
        """Size at the best ask, NaN if there is no ask."""
        return float(self._asks[0, 1]) if len(self._asks) else NAN

    def get_mid(self) -> float:
        """``(best bid + best ask) / 2``; NaN if a side is empty."""
        return self._mid

    def get_spread(self, x: bool = False) -> float:
        """``best ask - best bid`` in quote currency, or divided by the mid if ``x``."""
        spread = self.get_ask() - self.get_bid()
        return spread / self.get_mid() if x else spread

    # -- liquidity analytics --------------------------------------------------------------

    def _side(self, dir: int) -> np.ndarray:
        if dir == ASK:
            return self.get_asks()
        if dir == BID:
            return self.get_bids()
        raise ConfigError(f"dir must be 1 (buy from asks) or -1 (sell into bids), got {dir!r}")

    def get_vamp(self, notional: float = 0, bid_notional: float = 0,
                 ask_notional: float = 0) -> float:
        """Volume-adjusted mid: the mean of the bid-side and ask-side fill VWAPs.

        Each side's price is :func:`walk_notional` of that side for its notional in quote
        currency (``bid_notional``/``ask_notional``, each defaulting to ``notional`` when 0).
        A side with less notional than asked is taken whole. ``notional=0`` gives the mid.
        NaN if a side is empty.
        """
        # asked again of the same book (a strategy reading a reference book on each tick
        # of another market), the answer is the last one: the sides are read-only arrays
        # that every update replaces, so the same objects are the same levels
        asked, memo = (notional, bid_notional, ask_notional), self._vamp_memo
        if memo is not None and memo[0] is self._bids and memo[1] is self._asks \
                and memo[2] == asked:
            return memo[3]
        notional = _check_notional(notional)
        bid_notional = _check_notional(bid_notional) or notional
        ask_notional = _check_notional(ask_notional) or notional
        bid = walk_notional(self.get_bids(), bid_notional)
        ask = walk_notional(self.get_asks(), ask_notional)
        vamp = (bid + ask) / 2
        self._vamp_memo = (self._bids, self._asks, asked, vamp)
        return vamp

    def get_impact_price(self, dir: int, notional: float) -> float:
        """VWAP of a market order for ``notional`` quote currency (see :func:`walk_notional`).

        ``dir=1`` buys from the asks, ``dir=-1`` sells into the bids. NaN if that side is
        empty; a side with less notional than asked is taken whole.
        """
        return walk_notional(self._side(dir), _check_notional(notional))

    def get_impact_spread(self, notional: float, x: bool = False) -> float:
        """Buy impact price minus sell impact price for ``notional``; divided by mid if ``x``."""
        spread = self.get_impact_price(ASK, notional) - self.get_impact_price(BID, notional)
        return spread / self.get_mid() if x else spread

    def get_impact_worst(self, dir: int, sz: float) -> float:
        """Price of the last level a market order of base size ``sz`` reaches.

        ``dir`` as in :meth:`get_impact_price`. ``sz <= 0`` gives the best price; a size
        beyond the visible book gives the last visible level. NaN if that side is empty.
        """
        levels = self._side(dir)
        if len(levels) == 0:
            return NAN
        k = int(np.searchsorted(np.cumsum(levels[:, 1]), sz, side="left"))
        return float(levels[min(k, len(levels) - 1), 0])

    def get_cumulative_size(self, dir: int, price: float) -> tuple[float, float]:
        """``(base size, quote notional)`` a market order limited at ``price`` takes now.

        ``dir=1``: asks priced at or below ``price``; ``dir=-1``: bids at or above it.
        """
        levels = self._side(dir)
        k = int(np.searchsorted(dir * levels[:, 0], dir * price, side="right"))
        taken = levels[:k]
        return float(taken[:, 1].sum()), float(np.dot(taken[:, 0], taken[:, 1]))

    # -- history --------------------------------------------------------------------------

    def _window(self, n: int, tau: float, T: float) -> slice:
        return sample_slice(self.timestamps_buffer.view(), n, tau, T)

    def get_ts_buffer(self) -> np.ndarray:
        """Timestamps (epoch ms, int64) of the buffered states, oldest first."""
        return np.array(self.timestamps_buffer.view())

    def get_mids_buffer(self) -> np.ndarray:
        """Mids of the buffered states (NaN where a side was empty)."""
        return self.get_mids_sample()

    def get_bids_buffer(self) -> np.ndarray:
        """``(N, depth, 2)`` bids of the buffered states, NaN-padded beyond each book."""
        return self.get_bids_sample()

    def get_asks_buffer(self) -> np.ndarray:
        """``(N, depth, 2)`` asks of the buffered states, NaN-padded beyond each book."""
        return self.get_asks_sample()

    def get_mids_sample(self, n: int = -1, tau: float = -1, T: float = -1) -> np.ndarray:
        """Buffered mids selected by ``n``/``tau``/``T`` (see :func:`sample_slice`, ms)."""
        return np.array(self.mids_buffer.view()[self._window(n, tau, T)])

    def get_bids_sample(self, n: int = -1, tau: float = -1, T: float = -1) -> np.ndarray:
        """Buffered bids ``(N, depth, 2)`` selected by ``n``/``tau``/``T``."""
        return np.array(self.bids_buffer.view()[self._window(n, tau, T)])

    def get_asks_sample(self, n: int = -1, tau: float = -1, T: float = -1) -> np.ndarray:
        """Buffered asks ``(N, depth, 2)`` selected by ``n``/``tau``/``T``."""
        return np.array(self.asks_buffer.view()[self._window(n, tau, T)])

    def sample_len(self, n: int = -1, tau: float = -1, T: float = -1) -> int:
        """Number of buffered states ``n``/``tau``/``T`` select."""
        window = self._window(n, tau, T)
        return window.stop - window.start

    def buffer_len(self) -> int:
        """Number of buffered states."""
        return len(self.timestamps_buffer)

    def clear_buffer(self) -> None:
        """Empty the history buffers (the current book is kept)."""
        self._unbuffered.clear()
        for buffer in self._buffers():
            buffer.clear()

    def get_vol(self, n: int = -1, tau: float = -1, T: float = -1, x: bool = False,
                exp: bool = False) -> float:
        """Volatility of the buffered mid: RMS of its non-zero changes (:func:`vol`).

        In quote currency per mid change, or with ``x`` of log-mid changes (a fraction).
        ``exp`` weighs recent changes more. NaN without a non-zero change.
        """
        mids = self.get_mids_sample(n, tau, T)
        return vol(np.log(mids) if x else mids, exp)

    # -- serialisation --------------------------------------------------------------------

    def as_dict(self) -> dict[str, Any]:
        """``{'ts': epoch ms, 'bids': (k, 2) array, 'asks': (k, 2) array}``."""
        return {"ts": self.timestamp, "bids": self.get_bids(), "asks": self.get_asks()}

    def as_tuple(self) -> tuple[int, np.ndarray, np.ndarray]:
        """``(timestamp, bids, asks)``."""
        return self.timestamp, self.get_bids(), self.get_asks()

    def buffer_as_list(self) -> list[dict[str, Any]]:
        """The buffered states as replay records ``[{'ts': ms, 'b': bids, 'a': asks}, ...]``.

        ``b``/``a`` are ``(k, 2)`` arrays best first, without NaN padding.
        """
        ts, bids, asks = self.get_ts_buffer(), self.get_bids_buffer(), self.get_asks_buffer()
        return [{"ts": int(t), "b": _unpadded(b), "a": _unpadded(a)}
                for t, b, a in zip(ts, bids, asks, strict=True)]

    def aggregator(self, interval: int = 60_000) -> list[dict[str, Any]]:
        """Bucket the buffered states into wall-clock intervals of ``interval`` ms.

        One dict per non-empty bucket, oldest first: ``t`` bucket start (a multiple of
        ``interval``), ``n`` number of states, ``o``/``h``/``l``/``c`` first/highest/lowest/
        last mid (highs and lows ignore NaN mids), and ``ts``/``b``/``a`` the bucket's last
        state (its time and levels), so the list is also a downsampled replay record list.
        """
        if not (isinstance(interval, int | np.integer) and interval > 0):
            raise ConfigError(f"interval must be a positive int of ms, got {interval!r}")
        ts = self.get_ts_buffer()
        if len(ts) == 0:
            return []
        keys = ts // interval
        starts = np.flatnonzero(np.r_[True, keys[1:] != keys[:-1]])
        return self._buckets(ts, keys, starts, interval)

    def _buckets(self, ts: np.ndarray, keys: np.ndarray, starts: np.ndarray,
                 interval: int) -> list[dict[str, Any]]:
        mids, bids, asks = self.get_mids_buffer(), self.get_bids_buffer(), self.get_asks_buffer()
        lasts = np.r_[starts[1:], len(ts)] - 1
        highs, lows = np.fmax.reduceat(mids, starts), np.fmin.reduceat(mids, starts)
        return [{"t": int(keys[s] * interval), "n": int(e - s + 1), "o": float(mids[s]),
                 "h": float(h), "l": float(lo), "c": float(mids[e]), "ts": int(ts[e]),
                 "b": _unpadded(bids[e]), "a": _unpadded(asks[e])}
                for s, e, h, lo in zip(starts, lasts, highs, lows, strict=True)]

    def __repr__(self) -> str:
        return (f"LOB(ts={self.timestamp}, bid={self.get_bid()}x{self.get_bid_sz()}, "
                f"ask={self.get_ask()}x{self.get_ask_sz()}, depth={self.depth})")
