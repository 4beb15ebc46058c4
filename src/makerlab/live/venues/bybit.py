"""Bybit v5 linear perpetuals (``bybit``): wire translation.

- Book: ``orderbook.{1,50,200,1000}.<SYM>`` on ``/v5/public/linear`` (the smallest depth
  at or above the one asked for). A ``snapshot`` replaces the book; each ``delta`` must
  carry ``u == prev u + 1`` (:class:`~makerlab.live.book.ContiguousRule`); on a gap the
  topic is resubscribed, which makes Bybit send a fresh snapshot. ``seq`` is a cross
  sequence, monotonic but not contiguous, so it is not used for gap detection.
- Trades: ``publicTrade.<SYM>``; ``S`` is the taker (aggressor) side.
- Times: ``exchange_ts`` is the matching-engine time ``cts`` for books (``ts`` where
  absent) and ``T`` for trades.
- Keepalive: ``{"op": "ping"}`` every 20 s.
"""

from __future__ import annotations

import logging
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

__all__ = ["Bybit"]

log = logging.getLogger(__name__)

Levels = list[tuple[float, float]]
BOOK_DEPTHS = (1, 50, 200, 1000)
_MAX_ARGS = 10  # topics per subscribe request


class _Envelope(msgspec.Struct):
    topic: str = ""
    type: str = ""
    ts: int = 0
    cts: int = 0
    data: msgspec.Raw = msgspec.Raw()  # empty when absent
    success: bool | None = None
    ret_msg: str = ""


class _Book(msgspec.Struct):
    s: str
    b: Levels
    a: Levels
    u: int


class _Trade(msgspec.Struct):
    T: int
    s: str
    S: str
    v: float
    p: float
    i: str


_envelope = msgspec.json.Decoder(_Envelope)
_book = msgspec.json.Decoder(_Book, strict=False)
_trades = msgspec.json.Decoder(list[_Trade], strict=False)


class Bybit:
    """Bybit v5 linear (exchange id ``bybit``)."""

    exchange: ClassVar[str] = "bybit"
    urls: ClassVar[dict[str, Endpoints]] = {
        "mainnet": Endpoints("https://api.bybit.com", "wss://stream.bybit.com"),
        "testnet": Endpoints("https://api-testnet.bybit.com", "wss://stream-testnet.bybit.com"),
        # demo trading serves public market data from the mainnet stream
        "demo": Endpoints("https://api-demo.bybit.com", "wss://stream.bybit.com"),
    }
    resync: ClassVar[Resync] = Resync.RESUBSCRIBE
    ping_frame: ClassVar[bytes | None] = b'{"op":"ping"}'
    ping_interval: ClassVar[float] = 20.0

    def __init__(self) -> None:
        self.rule = ContiguousRule()

    def topics(self, kind: MarketKind, symbol: str, depth: int) -> list[str]:
        if kind is MarketKind.TRADES:
            return [f"publicTrade.{symbol}"]
        level = next((d for d in BOOK_DEPTHS if d >= depth), BOOK_DEPTHS[-1])
        return [f"orderbook.{level}.{symbol}"]

    def stream_url(self, ws: str, topics: Sequence[str]) -> str:
        return f"{ws}/v5/public/linear"

    def open_frames(self, topics: Sequence[str]) -> list[bytes]:
        return self.subscribe_frames(topics)

    def subscribe_frames(self, topics: Sequence[str]) -> list[bytes]:
        return _frames("subscribe", topics)

    def unsubscribe_frames(self, topics: Sequence[str]) -> list[bytes]:
        return _frames("unsubscribe", topics)

    def parse(self, frame: bytes | str, local_ts: int) -> list[Parsed]:
        env = _envelope.decode(frame)
        if not env.data:
            if env.success is False:
                log.warning("bybit refused a request: %s", env.ret_msg)
            return []
        if env.topic.startswith("orderbook."):
            book = _book.decode(env.data)
            return [book_delta(self.exchange, book.s, ms_to_ns(env.cts or env.ts), local_ts,
                               seq=book.u, bids=book.b, asks=book.a,
                               is_snapshot=env.type == "snapshot")]
        if env.topic.startswith("publicTrade."):
            return [TradeEvent(self.exchange, t.s, ms_to_ns(t.T), local_ts, t.p, t.v,
                               1 if t.S == "Buy" else -1, t.i)
                    for t in _trades.decode(env.data)]
        return []

    def specs_request(self, cursor: str = "") -> Request:
        params = {"category": "linear", "limit": "1000"}
        if cursor:
            params["cursor"] = cursor
        return Request("GET", "/v5/market/instruments-info", params)

    def parse_specs(self, body: bytes) -> SpecPage:
        result = orjson.loads(body)["result"]
        specs = [_spec(row) for row in result["list"] if row.get("status") == "Trading"]
        cursor = result.get("nextPageCursor")
        return SpecPage(specs, self.specs_request(cursor) if cursor else None)


def _frames(op: str, topics: Sequence[str]) -> list[bytes]:
    return [orjson.dumps({"op": op, "args": list(topics[i:i + _MAX_ARGS])})
            for i in range(0, len(topics), _MAX_ARGS)]


def _spec(row: dict) -> InstrumentSpec:
    lot = row["lotSizeFilter"]
    kind = "linear_perpetual" if row.get("contractType") == "LinearPerpetual" \
        else "linear_future"
    return InstrumentSpec(
        "bybit", row["symbol"], row["baseCoin"], row["quoteCoin"], kind,
        tick_size=decimal(row["priceFilter"]["tickSize"]).normalize(),
        lot_size=decimal(lot["qtyStep"]).normalize(),
        min_qty=decimal(lot["minOrderQty"]).normalize(),
        min_notional=decimal(lot.get("minNotionalValue", 0)),
    )
