"""Hyperliquid perpetuals (``hyperliquid``): wire translation.

- Book: ``l2Book`` pushes the whole aggregated book (up to 20 levels per side) on every
  change, with its ``time`` and no sequence number. Each message replaces the book; one
  older than the book is dropped (:class:`~makerlab.live.book.SnapshotTimeRule`).
- Trades: ``trades``; ``side`` is the aggressor, ``B`` buy / ``A`` sell.
- Keepalive: ``{"method": "ping"}`` (the server drops sockets idle for 60 s).
- Specs: ``POST /info {"type": "meta"}``; a price has at most 5 significant figures and
  ``6 - szDecimals`` decimals, integers always allowed
  (:class:`~makerlab.core.instruments.SigFigSpec`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

import msgspec
import orjson

from makerlab.core.events import TradeEvent
from makerlab.core.instruments import SigFigSpec
from makerlab.live.book import SnapshotTimeRule
from makerlab.live.venues.base import (
    Endpoints,
    Parsed,
    Request,
    Resync,
    SpecPage,
    book_delta,
    ms_to_ns,
)
from makerlab.trading.protocols import MarketKind

__all__ = ["Hyperliquid"]

MAX_DECIMALS = 6  # perps: price decimals <= 6 - szDecimals


class _Level(msgspec.Struct):
    px: float
    sz: float


class _Book(msgspec.Struct):
    coin: str
    time: int
    levels: tuple[list[_Level], list[_Level]]


class _Trade(msgspec.Struct):
    coin: str
    side: str
    px: float
    sz: float
    time: int
    tid: int


class _Envelope(msgspec.Struct):
    channel: str = ""
    data: msgspec.Raw = msgspec.Raw()  # empty when absent


_envelope = msgspec.json.Decoder(_Envelope)
_book = msgspec.json.Decoder(_Book, strict=False)
_trades = msgspec.json.Decoder(list[_Trade], strict=False)


class Hyperliquid:
    """Hyperliquid perpetuals (exchange id ``hyperliquid``); symbols are coins (``BTC``)."""

    exchange: ClassVar[str] = "hyperliquid"
    urls: ClassVar[dict[str, Endpoints]] = {
        "mainnet": Endpoints("https://api.hyperliquid.xyz", "wss://api.hyperliquid.xyz"),
        "testnet": Endpoints("https://api.hyperliquid-testnet.xyz",
                             "wss://api.hyperliquid-testnet.xyz"),
    }
    resync: ClassVar[Resync] = Resync.NEXT_SNAPSHOT
    ping_frame: ClassVar[bytes | None] = b'{"method":"ping"}'
    ping_interval: ClassVar[float] = 30.0

    def __init__(self) -> None:
        self.rule = SnapshotTimeRule()

    def topics(self, kind: MarketKind, symbol: str, depth: int) -> list[str]:
        return [f"{'l2Book' if kind is MarketKind.L2BOOK else 'trades'}:{symbol}"]

    def stream_url(self, ws: str, topics: Sequence[str]) -> str:
        return f"{ws}/ws"

    def open_frames(self, topics: Sequence[str]) -> list[bytes]:
        return self.subscribe_frames(topics)

    def subscribe_frames(self, topics: Sequence[str]) -> list[bytes]:
        return [_frame("subscribe", t) for t in topics]

    def unsubscribe_frames(self, topics: Sequence[str]) -> list[bytes]:
        return [_frame("unsubscribe", t) for t in topics]

    def parse(self, frame: bytes | str, local_ts: int) -> list[Parsed]:
        env = _envelope.decode(frame)
        if not env.data:
            return []
        if env.channel == "l2Book":
            book = _book.decode(env.data)
            bids, asks = book.levels
            return [book_delta(self.exchange, book.coin, ms_to_ns(book.time), local_ts,
                               seq=-1, bids=[(x.px, x.sz) for x in bids],
                               asks=[(x.px, x.sz) for x in asks], is_snapshot=True)]
        if env.channel == "trades":
            return [TradeEvent(self.exchange, t.coin, ms_to_ns(t.time), local_ts, t.px, t.sz,
                               1 if t.side == "B" else -1, str(t.tid))
                    for t in _trades.decode(env.data)]
        return []  # subscriptionResponse, pong

    def specs_request(self) -> Request:
        return Request("POST", "/info", body=b'{"type":"meta"}')

    def parse_specs(self, body: bytes) -> SpecPage:
        return SpecPage([SigFigSpec.hyperliquid(row["name"], int(row["szDecimals"]))
                         for row in orjson.loads(body)["universe"]
                         if not row.get("isDelisted")])


def _frame(method: str, topic: str) -> bytes:
    channel, coin = topic.split(":", 1)
    return orjson.dumps({"method": method, "subscription": {"type": channel, "coin": coin}})
