"""Archives for the paper exchange tests, cut from the bundled one (data/archive)."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pytest
from paper_oracles import BUNDLED, END, START

from makerlab.data.archive import read_table, write_table


def copy(kind: str, exchange: str, symbol: str, root: Path, *, as_exchange: str | None = None,
         as_symbol: str | None = None, depth: int | None = None) -> None:
    """Copy a dataset of the bundled archive, optionally under another name."""
    table = read_table(BUNDLED, kind, exchange, symbol, START, END, depth=depth)
    write_table(root, kind, as_exchange or exchange, as_symbol or symbol, table)


@pytest.fixture(scope="session")
def btc_archive(tmp_path_factory) -> Path:
    """BTCUSDT of the bundled archive: USD-M (book_delta, depth-20 snapshots, trades) and
    spot (the same kinds), 2024-08-08 23:54 to 2024-08-09 00:00."""
    root = tmp_path_factory.mktemp("btc_archive")
    for exchange in ("binance", "binance_spot"):
        copy("book_delta", exchange, "BTCUSDT", root)
        copy("book_snapshot", exchange, "BTCUSDT", root, depth=20)
        copy("trades", exchange, "BTCUSDT", root)
    return root


@pytest.fixture(scope="session")
def short_archive(tmp_path_factory) -> Path:
    """The first 40 s of :func:`btc_archive`'s 23:00 hour (USD-M and spot BTCUSDT: book
    deltas, depth-20 snapshots, trades), for runs that play a whole range."""
    root = tmp_path_factory.mktemp("short_archive")
    hour = "2024-08-08:23"
    for exchange in ("binance", "binance_spot"):
        for kind, depth in (("book_delta", None), ("book_snapshot", 20), ("trades", None)):
            table = read_table(BUNDLED, kind, exchange, "BTCUSDT", hour, hour, depth=depth)
            stamps = table.column("exchange_ts").to_numpy()
            keep = stamps < stamps.min() + 40 * 1_000_000_000
            write_table(root, kind, exchange, "BTCUSDT", table.filter(pa.array(keep)))
    return root


@pytest.fixture(scope="session")
def snapshot_archive(tmp_path_factory) -> Path:
    """A book_snapshot-only archive: the USD-M BTCUSDT depth-20 books and trades, stored
    as exchange ``hyperliquid``, symbol ``BTC`` (so every book state is a full snapshot)."""
    root = tmp_path_factory.mktemp("snapshot_archive")
    copy("book_snapshot", "binance", "BTCUSDT", root, as_exchange="hyperliquid",
         as_symbol="BTC", depth=20)
    copy("trades", "binance", "BTCUSDT", root, as_exchange="hyperliquid", as_symbol="BTC")
    return root
