"""WOO X (``woox``): wire translation, native public stream.

Why native and not ccxt: ccxt keeps WOO's ``orderbookupdate`` book with ``ts`` ordering
only, without the ``prevTs`` chain, so it cannot see a lost update; it also adds a
``broker_id`` to orders. This module is small and checks the chain.

- Socket: ``/ws/stream/<application_id>`` (the ``app_id`` config option, from the WOO
  account page), ``{"event": "subscribe", "topic": ...}``.
- Book: ``<SYM>@orderbookupdate`` deltas (``data.prevTs`` → top-level ``ts``), started from
  a snapshot requested on the socket (``{"event": "request", "params": {"type":
  "orderbook"}}``, answered with the book and its ``ts``). After the snapshot, updates with
  ``ts`` at or before it are dropped, the first applied must have ``prevTs`` at or before
  it, and then ``prevTs == previous ts`` (:class:`~makerlab.live.book.StraddleChainRule`).
- Trades: ``<SYM>@trade``; ``side`` is the taker side (BUY/SELL). WOO sends no trade id.
- Keepalive: ``{"event": "ping"}`` both ways; a server ping is answered with a pong.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

import msgspec
import orjson

from makerlab.core.events import BookDelta, TradeEvent
from makerlab.core.instruments import InstrumentSpec
from makerlab.errors import ConfigError
from makerlab.live.book import StraddleChainRule
from makerlab.live.venues.base import (
    Endpoints,
    Parsed,
    Reply,
    Request,
    Resync,
    SpecPage,
    book_delta,
    decimal,
    ms_to_ns,
)
from makerlab.trading.protocols import MarketKind

__all__ = ["Woox"]

Levels = list[tuple[float, float]]


class _Book(msgspec.Struct):
    symbol: str
    asks: Levels
    bids: Levels
    prevTs: int = -1
    ts: int = 0


class _Trade(msgspec.Struct):
    symbol: str
    price: float
    size: float
    side: str


class _Envelope(msgspec.Struct):
    topic: str = ""
    event: str = ""
    id: str = ""
    ts: int = 0
    data: msgspec.Raw = msgspec.Raw()  # empty when absent


_envelope = msgspec.json.Decoder(_Envelope)
_book = msgspec.json.Decoder(_Book, strict=False)
_trade = msgspec.json.Decoder(_Trade, strict=False)
_PONG = b'{"event":"pong"}'


class Woox:
    """WOO X (exchange id ``woox``); symbols as WOO spells them (``PERP_BTC_USDT``)."""

    exchange: ClassVar[str] = "woox"
    urls: ClassVar[dict[str, Endpoints]] = {
        "mainnet": Endpoints("https://api.woox.io", "wss://wss.woox.io"),
        "testnet": Endpoints("https://api.staging.woox.io", "wss://wss.staging.woox.io"),
    }
    config_options: ClassVar[tuple[str, ...]] = ("app_id",)
    resync: ClassVar[Resync] = Resync.SOCKET_SNAPSHOT
    ping_frame: ClassVar[bytes | None] = b'{"event":"ping"}'
    ping_interval: ClassVar[float] = 10.0

    def __init__(self, app_id: str = "") -> None:
        self.app_id = app_id
        self.rule = StraddleChainRule()

    def topics(self, kind: MarketKind, symbol: str, depth: int) -> list[str]:
        return [f"{symbol}@{'orderbookupdate' if kind is MarketKind.L2BOOK else 'trade'}"]

    def stream_url(self, ws: str, topics: Sequence[str]) -> str:
        if not self.app_id:
            raise ConfigError("woox: the public stream needs 'app_id' (your WOO X application "
                              "id) in the Gateway config")
        return f"{ws}/ws/stream/{self.app_id}"

    def open_frames(self, topics: Sequence[str]) -> list[bytes]:
        return self.subscribe_frames(topics)

    def subscribe_frames(self, topics: Sequence[str]) -> list[bytes]:
        return [orjson.dumps({"id": t, "event": "subscribe", "topic": t}) for t in topics]

    def unsubscribe_frames(self, topics: Sequence[str]) -> list[bytes]:
        return [orjson.dumps({"id": t, "event": "unsubscribe", "topic": t}) for t in topics]

    def snapshot_frame(self, symbol: str) -> bytes:
        return orjson.dumps({"id": f"{symbol}@orderbook", "event": "request",
                             "params": {"type": "orderbook", "symbol": symbol}})

    def parse(self, frame: bytes | str, local_ts: int) -> list[Parsed]:
        env = _envelope.decode(frame)
        if env.event == "ping":
            return [Reply(_PONG)]
        if not env.data:
            return []
        if env.topic.endswith("@orderbookupdate"):
            return [self._delta(_book.decode(env.data), env.ts, local_ts, snapshot=False)]
        if env.event == "request" and env.id.endswith("@orderbook"):
            book = _book.decode(env.data)
            return [self._delta(book, book.ts, local_ts, snapshot=True)]
        if env.topic.endswith("@trade"):
            t = _trade.decode(env.data)
            return [TradeEvent(self.exchange, t.symbol, ms_to_ns(env.ts), local_ts, t.price,
                               t.size, 1 if t.side == "BUY" else -1, "")]
        return []

    def _delta(self, book: _Book, ts: int, local_ts: int, *, snapshot: bool) -> BookDelta:
        return book_delta(self.exchange, book.symbol, ms_to_ns(ts), local_ts, seq=ts,
                          prev_seq=book.prevTs, bids=book.bids, asks=book.asks,
                          is_snapshot=snapshot)

    def specs_request(self) -> Request:
        return Request("GET", "/v3/public/instruments")

    def parse_specs(self, body: bytes) -> SpecPage:
        return SpecPage([_spec(row) for row in orjson.loads(body)["data"]["rows"]
                         if row.get("status") == "TRADING"])


def _spec(row: dict) -> InstrumentSpec:
    kind, base, quote = row["symbol"].split("_", 2)
    return InstrumentSpec("woox", row["symbol"], base, quote,
                          "spot" if kind == "SPOT" else "linear_perpetual",
                          tick_size=decimal(row["quoteTick"]).normalize(),
                          lot_size=decimal(row["baseTick"]).normalize(),
                          min_qty=decimal(row["baseMin"]).normalize(),
                          min_notional=decimal(row.get("minNotional") or 0))
