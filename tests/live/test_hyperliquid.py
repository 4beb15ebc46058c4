"""Hyperliquid translation, on the real 2025-01-26 BTC capture and tardis messages."""

from __future__ import annotations

from decimal import Decimal

import orjson
import pytest
from captures import FIXTURES, jsonl, stamped

from makerlab.core.events import BookDelta, TradeEvent
from makerlab.core.instruments import SigFigSpec
from makerlab.live.book import BookSync
from makerlab.live.venues.hyperliquid import Hyperliquid


def test_capture_books_replace_and_trades_keep_the_aggressor():
    venue, sync, books, trades = Hyperliquid(), None, 0, []
    for ts, frame in stamped("hyperliquid_btc_20250126.txt.gz", 1):
        for event in venue.parse(frame, ts):
            if isinstance(event, BookDelta):
                sync = sync or BookSync(venue.rule, buffer_deltas=False)
                books += len(sync.on_message(event))
                raw = orjson.loads(frame)["data"]["levels"]
                assert sync.book.top(20)[0].tolist() == \
                    [[float(x["px"]), float(x["sz"])] for x in raw[0]]
            else:
                trades.append(event)
    assert books == 46 and len(trades) > 9
    raw = [t for _, f in stamped("hyperliquid_btc_20250126.txt.gz", 1) if b"trades" in f
           for t in orjson.loads(f)["data"]]
    assert [t.side for t in trades] == [1 if r["side"] == "B" else -1 for r in raw]


def test_an_older_book_is_dropped():
    venue = Hyperliquid()
    frame = next(f for f in jsonl("hyperliquid_messages.jsonl") if b"BANANA" in f)
    (new,) = venue.parse(frame, 0)
    (old,) = venue.parse(frame.replace(b"1730160007687", b"1730160007000"), 0)
    sync = BookSync(venue.rule, buffer_deltas=False)
    assert sync.on_message(new) == [new] and sync.on_message(old) == []
    assert new.bids.tolist() == [[59.8, 3.4], [59.778, 1.6]]


def test_golden_sides_and_empty_book():
    frames = jsonl("hyperliquid_messages.jsonl")
    sides = [t.side for f in frames for t in Hyperliquid().parse(f, 0)
             if isinstance(t, TradeEvent)]
    assert sides[:2] == [-1, -1] and 1 in sides  # FXS "A", BTC "B"
    (empty,) = Hyperliquid().parse(next(f for f in frames if b"SHIA" in f), 0)
    assert empty.bids.shape == (0, 2) and empty.is_snapshot
    assert Hyperliquid().parse(b'{"channel":"pong"}', 0) == []


def test_meta_specs_follow_the_significant_figure_rule():
    specs = {s.symbol: s for s in Hyperliquid().parse_specs(
        (FIXTURES / "hyperliquid_meta.json").read_bytes()).specs}
    btc, eth = specs["BTC"], specs["ETH"]
    assert isinstance(btc, SigFigSpec) and btc.lot_size == Decimal("0.00001")
    assert btc.round_price(100000.42343243) == Decimal("100000")
    assert eth.round_price("3500.12345") == Decimal("3500.1")
    assert btc.round_qty("0.0014646") == Decimal("0.00146")
    meme = SigFigSpec.hyperliquid("MEME", 0)
    assert meme.round_price("0.043423423434") == Decimal("0.043423")
    assert specs["ATOM"].round_price("12.34567") == Decimal("12.346")


@pytest.mark.parametrize(("price", "expected"), [("12345.6", "12346"), ("0.000012345", "0.000012")])
def test_significant_figures_never_beat_the_tick(price, expected):
    assert SigFigSpec.hyperliquid("X", 0).round_price(price) == Decimal(expected)
