"""Market-data feeds with the tutorial's interface (quantpylib's ``Feed``).

Only archive loading is implemented so far; live and replay subscriptions join this same
class later. The tutorial speaks milliseconds: ``ts`` values returned here are exchange
time in integer epoch milliseconds, while the archive itself stores nanoseconds.

Exchange names in the archive carry the market class, see :func:`archive_exchange`:
``binance`` is Binance USD-M perpetuals (as in the tutorial), ``binance_spot`` Binance spot,
``binance_coinm`` Binance COIN-M; ``bybit``, ``hyperliquid`` ... are their perpetuals.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from enum import StrEnum

import numpy as np

from makerlab.data import archive
from makerlab.data.arrays import SnapshotArrays, load_snapshot_arrays, load_trade_arrays
from makerlab.data.schema import BOOK_DELTA, BOOK_SNAPSHOT, TRADES
from makerlab.errors import DataError

__all__ = ["Feed", "FeedCls", "FeedType", "archive_exchange"]

_NS_PER_MS = 1_000_000
_DEFAULT_DAYS = 14
_SUFFIXES = ("_spot", "_perp", "_futures", "_options", "_coinm", "_usdm")


class FeedCls(StrEnum):
    """Market class of a feed; the value is its path segment in feed ids."""

    PERPETUAL = "perp"
    FUTURES = "futures"
    SPOT = "spot"
    OPTIONS = "options"


class FeedType(StrEnum):
    """Kind of feed; the value is its path segment in feed ids."""

    L1BOOK = "l1book"
    L2BOOK = "l2book"
    L2DELTA = "l2delta"
    TRADES = "trades"
    MIDS = "mids"


def archive_exchange(exc: str, feed_cls: FeedCls | str = FeedCls.PERPETUAL) -> str:
    """The archive's exchange name for venue ``exc`` and market class ``feed_cls``.

    Perpetuals use the bare venue name (``binance`` = Binance USD-M). Other classes append
    ``_spot``, ``_futures`` or ``_options``: ``('binance', SPOT) -> 'binance_spot'``. A
    name that already carries a class suffix (``binance_spot``, ``binance_coinm``) is
    used as it is.
    """
    feed_cls = FeedCls(feed_cls)
    if feed_cls is FeedCls.PERPETUAL or exc.endswith(_SUFFIXES):
        return exc
    return f"{exc}_{feed_cls.value}"


def _range(start: archive.TimeLike, end: archive.TimeLike) -> tuple[str, str]:
    """Tutorial bounds as whole inclusive hours ('YYYY-MM-DD:HH'); defaults: last 14 days."""
    now = datetime.now(UTC)
    start = now - timedelta(days=_DEFAULT_DAYS) if start is None else start
    end = now if end is None else end
    return _hour_text(start), _hour_text(end)


def _hour_text(value: archive.TimeLike) -> str:
    if isinstance(value, str):
        return value
    ns = archive._to_ns(value, end=False)
    moment = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=ns // 1000)
    return f"{moment:%Y-%m-%d:%H}"


class Feed:
    """Market-data feeds. Archive loading works without a gateway (static methods)."""

    @staticmethod
    def load_lob_archives(
        exc: str,
        ticker: str,
        depth: int,
        feed_cls: FeedCls = FeedCls.PERPETUAL,
        path: str | os.PathLike = "./archives/",
        start: archive.TimeLike = None,
        end: archive.TimeLike = None,
        only_paths: bool = False,
    ) -> list[dict] | list[str]:
        """Depth-``depth`` book states from the archive at ``path``.

        ``start``/``end``: datetime (naive = UTC) or ``'%Y-%m-%d:%H'``; both hours are
        inclusive and a datetime counts as its whole hour. Defaults: the last 14 days.

        Returns:
            ``[{'ts': int_ms, 'b': ndarray (k, 2), 'a': ndarray (k, 2)}, ...]`` in
            receive order, ``ts`` the exchange time in ms, levels ``[price, size]`` best
            first, only the levels present (k <= depth). With ``only_paths`` the list
            of hour files instead. A deeper snapshot dataset is cut down to ``depth``.
        """
        exchange = archive_exchange(exc, feed_cls)
        lo, hi = _range(start, end)
        stored = _stored_depth(path, exchange, ticker, depth)
        if only_paths:
            return archive.archive_paths(path, BOOK_SNAPSHOT, exchange, ticker, lo, hi,
                                         depth=stored)
        books = load_snapshot_arrays(path, exchange, ticker, stored, lo, hi)
        return _lob_records(books, depth)

    @staticmethod
    def load_trade_archives(
        exc: str,
        ticker: str,
        feed_cls: FeedCls = FeedCls.PERPETUAL,
        path: str | os.PathLike = "./archives/",
        start: archive.TimeLike = None,
        end: archive.TimeLike = None,
        only_paths: bool = False,
    ) -> np.ndarray | list[str]:
        """Trade prints from the archive at ``path`` (range as :meth:`load_lob_archives`).

        Returns:
            An (n, 4) float64 array whose rows are ``[ts_ms, price, size, dir]`` (exchange
            time in ms, ``dir`` +1 taker buy / -1 taker sell), as quantpylib returns it;
            with ``only_paths`` the list of hour files instead.
        """
        exchange = archive_exchange(exc, feed_cls)
        lo, hi = _range(start, end)
        if only_paths:
            return archive.archive_paths(path, TRADES, exchange, ticker, lo, hi)
        trades = load_trade_arrays(path, exchange, ticker, lo, hi)
        out = np.empty((len(trades), 4), np.float64)
        out[:, 0] = trades.exchange_ts // _NS_PER_MS
        out[:, 1] = trades.price
        out[:, 2] = trades.size
        out[:, 3] = trades.side
        return out


def _stored_depth(path: str | os.PathLike, exchange: str, ticker: str, depth: int) -> int:
    """``depth`` if archived, else the shallowest deeper snapshot dataset."""
    depths = archive.available_depths(path, exchange, ticker)
    deeper = [d for d in depths if d >= depth]
    if deeper:
        return deeper[0]
    has_deltas = archive.archive_paths(path, BOOK_DELTA, exchange, ticker)
    hint = ("it has book_delta: materialise snapshots at that depth when converting "
            f"(e.g. depth={depth})" if has_deltas else "convert a capture first")
    raise DataError(f"no book_snapshot of depth >= {depth} for {exchange}/{ticker} "
                    f"(depths {depths or 'none'}); {hint}", source=os.fspath(path))


def _lob_records(books: SnapshotArrays, depth: int) -> list[dict]:
    """The tutorial's per-state dicts; 'b'/'a' are views into two stacked arrays."""
    bids = np.stack([books.bid_price[:, :depth], books.bid_size[:, :depth]], axis=2)
    asks = np.stack([books.ask_price[:, :depth], books.ask_size[:, :depth]], axis=2)
    n_bid = _present(books.bid_price[:, :depth]).tolist()
    n_ask = _present(books.ask_price[:, :depth]).tolist()
    ts = (books.exchange_ts // _NS_PER_MS).tolist()
    return [
        {"ts": t, "b": bids[i, :nb], "a": asks[i, :na]}
        for i, (t, nb, na) in enumerate(zip(ts, n_bid, n_ask, strict=True))
    ]


def _present(prices: np.ndarray) -> np.ndarray:
    """Number of leading non-NaN levels per row (levels are best first, NaN-padded)."""
    missing = np.isnan(prices)
    return np.where(missing.any(axis=1), missing.argmax(axis=1), prices.shape[1])
