"""End to end: makerlab's live Gateway and Feed, pointed at the paper exchange, deliver
exactly the archived books and trades over each venue protocol.

One paper exchange serves the bundled archive (2024-08-08 23:54 to 2024-08-09 00:00,
BTCUSDT) over Binance USD-M, Binance spot, Bybit (``serve bybit=binance``) and Hyperliquid
(``serve hyperliquid=binance``) at speed 0; one Gateway follows all four through one Feed,
depth 20, as a strategy would. Every book a handler receives must be the archive's
depth-20 ``book_snapshot`` row of the same update (Binance: the same ``u``, which is the
archive's ``seq``; Bybit and Hyperliquid: a state of the same exchange millisecond, in
archive order), with the archive's exchange time; the trades must be the archived
prints, in order, none missing or repeated from the first one delivered to the last."""

from __future__ import annotations

import asyncio

import pytest
from live_paper import (
    ARCHIVED_AS,
    BUNDLED,
    BY_SEQ,
    MARKETS,
    SERVE,
    Archived,
    Run,
    follow,
    match_books,
)

from makerlab.core.events import StatusKind


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> Run:
    cache = tmp_path_factory.mktemp("specs")
    return asyncio.run(follow(BUNDLED, MARKETS, serve=SERVE, spec_cache=cache))


@pytest.mark.parametrize("protocol", list(MARKETS))
def test_every_delivered_book_is_the_archived_book_of_its_update(run, archived, protocol):
    seen, expected = run.seen[protocol], archived[ARCHIVED_AS[protocol]]
    assert match_books(seen, expected, by_seq=protocol in BY_SEQ).wrong == []
    assert len(seen.books) > 3000  # the 100 ms streams merge two archive messages in one
    assert seen.books[-1].top == expected.tops[-1]  # followed to the archive's last state
    assert seen.books[0].is_snapshot
    assert [s.kind for s in seen.statuses] == [StatusKind.CONNECTED]  # no false gap


@pytest.mark.parametrize("protocol", list(MARKETS))
def test_trades_are_the_archived_prints_in_order(run, archived, protocol):
    delivered, expected = run.seen[protocol].trades, archived[ARCHIVED_AS[protocol]].trades
    first = expected.index(delivered[0])  # the market starts with the first subscriber
    assert delivered == expected[first:]  # none lost, repeated or changed, to the last


def test_hyperliquid_over_its_own_data(tmp_path, samples):
    """The Hyperliquid protocol over a converted Hyperliquid capture (book_snapshot only,
    coin BTC, the bundled spec's integer tick)."""
    from makerlab.data.convert import convert

    root = tmp_path / "archive"
    convert("hyperliquid", [samples / "hyperliquid" / "orderbooks_BTC.csv.gz",
                            samples / "hyperliquid" / "trades_BTC.csv.gz"], root,
            progress=False)
    hour = "2025-09-04:19"
    expected = Archived.read(root, "hyperliquid", "BTC", hour, hour)
    run = asyncio.run(follow(root, {"hyperliquid": "BTC"}, serve={}, spec_cache=tmp_path,
                             start=hour, end=hour))
    seen = run.seen["hyperliquid"]
    assert match_books(seen, expected, by_seq=False).wrong == []
    assert seen.books[-1].top == expected.tops[-1] and len(seen.books) > 200
    first = expected.trades.index(seen.trades[0])
    assert seen.trades == expected.trades[first:]
