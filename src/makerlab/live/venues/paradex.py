"""Paradex perpetuals (``paradex``): wire translation (native JSON-RPC channels).

- Book: ``order_book.<MARKET>.snapshot@15@50ms``: a full 15-level book every 50 ms
  (``update_type`` ``s``); ``d`` messages (the ``deltas`` feed) are read too. A snapshot
  replaces the book; a delta must carry ``seq_no == prev + 1``
  (:class:`~makerlab.live.book.ContiguousRule`); on a gap the channel is resubscribed.
- Trades: ``trades.<MARKET>``; ``side`` is the taker side.
- Keepalive: the server pings every 55 s; aiohttp answers.
- Caveat: Paradex documents binary SBE payloads for public channels from 2026-09-21
  (opt-in with ``?sbeSchemaId=``); this module speaks the JSON payloads, which must still
  be served for it to work (see docs/live.md).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

import msgspec
import orjson

from makerlab.core.events import TradeEvent
from makerlab.core.instruments import InstrumentSpec
from makerlab.live.book import ContiguousRule
from makerlab.live.venues.base import (
    Endpoints,
    Parsed,
    Request,
    Resync,
    SpecPage,
    book_delta,
    decimal,
    ms_to_ns,
)
from makerlab.trading.protocols import MarketKind

__all__ = ["Paradex"]


class _Level(msgspec.Struct):
    side: str
    price: float
    size: float


class _Book(msgspec.Struct):
    seq_no: int
    market: str
    last_updated_at: int
    update_type: str
    inserts: list[_Level] = []
    updates: list[_Level] = []
    deletes: list[_Level] = []


class _Trade(msgspec.Struct):
    id: str
    market: str
    side: str
    size: float
    price: float
    created_at: int


class _Params(msgspec.Struct):
    channel: str
    data: msgspec.Raw


class _Envelope(msgspec.Struct):
    method: str = ""
    params: _Params | None = None


_envelope = msgspec.json.Decoder(_Envelope)
_book = msgspec.json.Decoder(_Book, strict=False)
_trade = msgspec.json.Decoder(_Trade, strict=False)


class Paradex:
    """Paradex (exchange id ``paradex``); symbols are markets (``BTC-USD-PERP``)."""

    exchange: ClassVar[str] = "paradex"
    urls: ClassVar[dict[str, Endpoints]] = {
        "mainnet": Endpoints("https://api.prod.paradex.trade", "wss://ws.api.prod.paradex.trade"),
        "testnet": Endpoints("https://api.testnet.paradex.trade",
                             "wss://ws.api.testnet.paradex.trade"),
    }
    resync: ClassVar[Resync] = Resync.RESUBSCRIBE
    ping_frame: ClassVar[bytes | None] = None
    ping_interval: ClassVar[float] = 0.0

    def __init__(self) -> None:
        self.rule = ContiguousRule()
        self._next_id = 0

    def topics(self, kind: MarketKind, symbol: str, depth: int) -> list[str]:
        if kind is MarketKind.TRADES:
            return [f"trades.{symbol}"]
        return [f"order_book.{symbol}.snapshot@15@50ms"]

    def stream_url(self, ws: str, topics: Sequence[str]) -> str:
        return f"{ws}/v1"

    def open_frames(self, topics: Sequence[str]) -> list[bytes]:
        return self.subscribe_frames(topics)

    def subscribe_frames(self, topics: Sequence[str]) -> list[bytes]:
        return [self._frame("subscribe", t) for t in topics]

    def unsubscribe_frames(self, topics: Sequence[str]) -> list[bytes]:
        return [self._frame("unsubscribe", t) for t in topics]

    def _frame(self, method: str, channel: str) -> bytes:
        self._next_id += 1
        return orjson.dumps({"jsonrpc": "2.0", "method": method,
                             "params": {"channel": channel}, "id": self._next_id})

    def parse(self, frame: bytes | str, local_ts: int) -> list[Parsed]:
        env = _envelope.decode(frame)
        if env.method != "subscription" or env.params is None:
            return []  # subscribe results, errors
        channel = env.params.channel
        if channel.startswith("order_book."):
            return [self._delta(_book.decode(env.params.data), local_ts)]
        if channel.startswith("trades."):
            t = _trade.decode(env.params.data)
            return [TradeEvent(self.exchange, t.market, ms_to_ns(t.created_at), local_ts,
                               t.price, t.size, 1 if t.side == "BUY" else -1, t.id)]
        return []

    def _delta(self, book: _Book, local_ts: int) -> Parsed:
        changed = [*book.inserts, *book.updates]
        gone = [(x.side, x.price, 0.0) for x in book.deletes]
        rows = [(x.side, x.price, x.size) for x in changed] + gone
        return book_delta(self.exchange, book.market, ms_to_ns(book.last_updated_at),
                          local_ts, seq=book.seq_no, is_snapshot=book.update_type == "s",
                          bids=sorted(((p, s) for side, p, s in rows if side == "BUY"),
                                      reverse=True),
                          asks=sorted((p, s) for side, p, s in rows if side == "SELL"))

    def specs_request(self) -> Request:
        return Request("GET", "/v1/markets")

    def parse_specs(self, body: bytes) -> SpecPage:
        return SpecPage([_spec(row) for row in orjson.loads(body)["results"]
                         if row.get("asset_kind", "PERP") == "PERP"])


def _spec(row: dict) -> InstrumentSpec:
    step = decimal(row["order_size_increment"]).normalize()
    return InstrumentSpec("paradex", row["symbol"], row["base_currency"],
                          row["quote_currency"], "linear_perpetual",
                          tick_size=decimal(row["price_tick_size"]).normalize(),
                          lot_size=step, min_qty=step,
                          min_notional=decimal(row.get("min_notional") or 0))
