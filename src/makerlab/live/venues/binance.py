"""Binance USD-M futures (``binance``) and spot (``binance_spot``): wire translation.

- Book: ``<sym>@depth@100ms`` diffs on a combined stream plus a REST depth snapshot;
  USD-M chains ``pu == prev u`` (:class:`~makerlab.live.book.BinanceUsdmRule`), spot
  ``U == prev u + 1`` (:class:`~makerlab.live.book.BinanceSpotRule`).
- Trades: ``<sym>@trade``; ``m`` (buyer is maker) means the seller aggressed, so the
  aggressor side is ``-1`` when ``m`` is true. Only ``X == "MARKET"`` prints are trades
  (USD-M also prints insurance-fund and ADL fills on this stream).
- Times: ``exchange_ts`` is the transaction time ``T`` (the event time ``E`` where there
  is no ``T``; :data:`~makerlab.live.venues.base.NO_TIME` for spot REST snapshots, which
  carry neither).
- USD-M streams are routed by path since 2026: depth and trades live on ``/public``
  (a stream on the wrong path silently delivers nothing). Spot has one ``/stream`` path.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import ClassVar

import msgspec
import orjson

from makerlab.core.events import BookDelta, TradeEvent
from makerlab.core.instruments import InstrumentSpec
from makerlab.live.book import BinanceSpotRule, BinanceUsdmRule
from makerlab.live.venues.base import (
    NO_TIME,
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

__all__ = ["BinanceSpot", "BinanceUsdm"]

log = logging.getLogger(__name__)

Levels = list[tuple[float, float]]


class _Depth(msgspec.Struct, tag_field="e", tag="depthUpdate"):
    E: int
    s: str
    U: int
    u: int
    b: Levels
    a: Levels
    T: int = 0
    pu: int = -1


class _Trade(msgspec.Struct, tag_field="e", tag="trade"):
    E: int
    s: str
    t: int
    p: float
    q: float
    m: bool
    T: int = 0
    X: str = "MARKET"


class _Envelope(msgspec.Struct):
    stream: str = ""
    data: _Depth | _Trade | None = None


class _Snapshot(msgspec.Struct):
    lastUpdateId: int
    bids: Levels
    asks: Levels
    E: int = 0
    T: int = 0


# strict=False reads the wire's decimal strings straight into floats
_envelope = msgspec.json.Decoder(_Envelope, strict=False)
_snapshot = msgspec.json.Decoder(_Snapshot, strict=False)


_TRANSLATED = frozenset({"depthUpdate", "trade"})


def _event_type(frame: bytes | str) -> object:
    data = orjson.loads(frame)
    return data.get("data", {}).get("e") if isinstance(data, dict) else None


class _Binance:
    """What USD-M and spot share; subclasses declare endpoints, paths and the rule."""

    exchange: ClassVar[str]
    urls: ClassVar[dict[str, Endpoints]]
    stream_path: ClassVar[str]
    depth_path: ClassVar[str]
    info_path: ClassVar[str]
    resync: ClassVar[Resync] = Resync.REST_SNAPSHOT
    ping_frame: ClassVar[bytes | None] = None  # the server pings; aiohttp answers pongs
    ping_interval: ClassVar[float] = 0.0

    def __init__(self) -> None:
        self._next_id = 0

    def topics(self, kind: MarketKind, symbol: str, depth: int) -> list[str]:
        stream = "depth@100ms" if kind is MarketKind.L2BOOK else "trade"
        return [f"{symbol.lower()}@{stream}"]

    def stream_url(self, ws: str, topics: Sequence[str]) -> str:
        return f"{ws}{self.stream_path}?streams={'/'.join(topics)}"

    def open_frames(self, topics: Sequence[str]) -> list[bytes]:
        return []  # the URL carries them

    def subscribe_frames(self, topics: Sequence[str]) -> list[bytes]:
        return [self._frame("SUBSCRIBE", topics)]

    def unsubscribe_frames(self, topics: Sequence[str]) -> list[bytes]:
        return [self._frame("UNSUBSCRIBE", topics)]

    def _frame(self, method: str, topics: Sequence[str]) -> bytes:
        self._next_id += 1
        return orjson.dumps({"method": method, "params": list(topics), "id": self._next_id})

    def parse(self, frame: bytes | str, local_ts: int) -> list[Parsed]:
        try:
            data = _envelope.decode(frame).data
        except msgspec.ValidationError:
            if _event_type(frame) in _TRANSLATED:
                raise
            return []  # a stream we do not translate (bookTicker, kline, ...)
        if isinstance(data, _Depth):
            return [self._delta(data, local_ts)]
        if isinstance(data, _Trade) and data.X == "MARKET":
            return [TradeEvent(self.exchange, data.s, ms_to_ns(data.T or data.E), local_ts,
                               data.p, data.q, -1 if data.m else 1, str(data.t))]
        return []  # subscription acks ({"result": null, "id": n}), non-market prints

    def _delta(self, d: _Depth, local_ts: int) -> BookDelta:
        return book_delta(self.exchange, d.s, ms_to_ns(d.T or d.E), local_ts, seq=d.u,
                          first_seq=d.U, prev_seq=d.pu, bids=d.b, asks=d.a,
                          is_snapshot=False)

    def snapshot_request(self, symbol: str) -> Request:
        return Request("GET", self.depth_path, {"symbol": symbol, "limit": "1000"})

    def parse_snapshot(self, body: bytes, symbol: str, local_ts: int) -> BookDelta:
        snap = _snapshot.decode(body)
        ts = ms_to_ns(snap.T or snap.E) if (snap.T or snap.E) else NO_TIME
        return book_delta(self.exchange, symbol, ts, local_ts, seq=snap.lastUpdateId,
                          bids=snap.bids, asks=snap.asks, is_snapshot=True)

    def specs_request(self) -> Request:
        return Request("GET", self.info_path)

    def parse_specs(self, body: bytes) -> SpecPage:
        specs = [self._spec(s) for s in orjson.loads(body)["symbols"]
                 if s.get("status") == "TRADING"]
        return SpecPage(specs)

    def _spec(self, sym: dict) -> InstrumentSpec:
        filters = {f["filterType"]: f for f in sym["filters"]}
        notional = filters.get("MIN_NOTIONAL") or filters.get("NOTIONAL") or {}
        return InstrumentSpec(
            self.exchange, sym["symbol"], sym["baseAsset"], sym["quoteAsset"],
            self._kind(sym),
            tick_size=decimal(filters["PRICE_FILTER"]["tickSize"]).normalize(),
            lot_size=decimal(filters["LOT_SIZE"]["stepSize"]).normalize(),
            min_qty=decimal(filters["LOT_SIZE"]["minQty"]).normalize(),
            min_notional=decimal(notional.get("notional", notional.get("minNotional", 0))),
        )

    def _kind(self, sym: dict) -> str:
        raise NotImplementedError


class BinanceUsdm(_Binance):
    """Binance USD-M futures (exchange id ``binance``)."""

    exchange: ClassVar[str] = "binance"
    urls: ClassVar[dict[str, Endpoints]] = {
        "mainnet": Endpoints("https://fapi.binance.com", "wss://fstream.binance.com"),
        "testnet": Endpoints("https://testnet.binancefuture.com",
                             "wss://fstream.binancefuture.com"),
    }
    stream_path: ClassVar[str] = "/public/stream"
    depth_path: ClassVar[str] = "/fapi/v1/depth"
    info_path: ClassVar[str] = "/fapi/v1/exchangeInfo"

    def __init__(self) -> None:
        super().__init__()
        self.rule = BinanceUsdmRule()

    def _kind(self, sym: dict) -> str:
        return "linear_perpetual" if sym.get("contractType") == "PERPETUAL" else "linear_future"


class BinanceSpot(_Binance):
    """Binance spot (exchange id ``binance_spot``)."""

    exchange: ClassVar[str] = "binance_spot"
    urls: ClassVar[dict[str, Endpoints]] = {
        "mainnet": Endpoints("https://api.binance.com", "wss://stream.binance.com:9443"),
        "testnet": Endpoints("https://testnet.binance.vision",
                             "wss://stream.testnet.binance.vision"),
    }
    stream_path: ClassVar[str] = "/stream"
    depth_path: ClassVar[str] = "/api/v3/depth"
    info_path: ClassVar[str] = "/api/v3/exchangeInfo"

    def __init__(self) -> None:
        super().__init__()
        self.rule = BinanceSpotRule()

    def _kind(self, sym: dict) -> str:
        return "spot"
