"""Binance's public protocols on the paper exchange: USD-M futures and spot.

Paths under the venue prefix (``/binance``, ``/binance_spot``), as on the real hosts:

- futures REST ``/fapi/v1/exchangeInfo``, ``/fapi/v1/depth?symbol=&limit=``,
  ``/fapi/v1/time``, ``/fapi/v1/ping``; spot the same under ``/api/v3``.
- futures websockets routed by path: ``/public/ws``, ``/public/ws/<stream>[/...]``,
  ``/public/stream?streams=a/b`` (``depth``, ``trade``, ``bookTicker``) and the same under
  ``/market`` (``aggTrade``); a stream on the wrong path is acknowledged and delivers
  nothing, as on the real venue. Spot: ``/ws``, ``/ws/<stream>``, ``/stream?streams=``.
- ``{"method": "SUBSCRIBE"|"UNSUBSCRIBE", "params": [...], "id": n}`` ->
  ``{"result": null, "id": n}``; ``LIST_SUBSCRIPTIONS``; ``SET_PROPERTY``/``GET_PROPERTY``
  ``combined``. Combined frames are ``{"stream": name, "data": {...}}``.

Wire rules (checked against the fixtures in ``tests/paper/fixtures``):

- ``<sym>@depth[@Nms]`` (futures 0/100/250/500 ms, bare = 250 ms; spot 100/1000 ms, bare
  = 1000 ms): the market's messages with their archive ids ``U``/``u``/``pu``, merged over
  the interval (levels: last size wins; ``U`` and ``pu`` of the first merged message,
  ``u`` of the last). A message is sent as soon as its ``E`` is at least the interval
  after the previous one sent; messages are never merged across a break in the id chain
  or an archived snapshot (the chain then breaks, and a correct client resyncs).
- REST depth: the full book after the last message handed to the streams, best
  ``limit`` levels per side, ``lastUpdateId`` = that message's ``u``.
- ``trade``/``aggTrade``: one per archived trade; ``m`` (buyer is maker) is true for an
  aggressive sell. ``aggTrade`` numbers ``a`` per symbol and has ``f`` = ``l`` = ``t``.
- ``bookTicker``: the top of the book after each message that changed it, ``u`` = the
  message's ``u``.
- Prices and sizes with the decimals of the tick and lot as published (futures) or 8
  (spot), more if an archived number needs them; ``E`` and ``T`` are the archive's
  exchange time in ms.
- Under a ``gap`` fault a depth message's ``pu`` (spot: ``U``) is one past the chain.
"""

from __future__ import annotations

import asyncio
import functools
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from makerlab.core.instruments import InstrumentSpec
from makerlab.paper.book import BID
from makerlab.paper.instruments import decimals, fixed, plain
from makerlab.paper.market import Market
from makerlab.paper.session import Outgoing, Session, SessionFaults, Topic
from makerlab.paper.source import BookMessage, TradePrint
from makerlab.paper.venue import Venue, VenueContext, json_response, ms, numeric_id

__all__ = ["FUTURES", "SPOT", "BinanceVenue", "Flavour", "futures_exchange_info",
           "spot_exchange_info"]

_STREAM = re.compile(r"^([a-z0-9_]+)@(depth|trade|aggTrade|bookTicker)(?:@(\d+)ms)?$")
_HEARTBEAT_S = 180.0


@dataclass(frozen=True)
class Flavour:
    """What differs between Binance futures and spot."""

    protocol: str
    futures: bool
    api: str
    routes: dict[str, frozenset[str]]  # websocket path -> stream kinds delivered there
    bare_depth_ms: int
    depth_ms: frozenset[int]
    max_limit: int
    default_limit: int

    def continues(self, previous: BookMessage, message: BookMessage) -> bool:
        """Whether ``message`` follows ``previous`` in the id chain (futures: ``pu`` is
        the previous ``u``; spot: ``U`` is the previous ``u`` + 1)."""
        if self.futures:
            return message.prev_seq == previous.seq
        return message.first_seq == previous.seq + 1


FUTURES = Flavour("binance", True, "/fapi/v1",
                  {"/public": frozenset({"depth", "trade", "bookTicker"}),
                   "/market": frozenset({"aggTrade"})},
                  250, frozenset({0, 100, 250, 500}), 1000, 500)
SPOT = Flavour("binance_spot", False, "/api/v3",
               {"": frozenset({"depth", "trade", "aggTrade", "bookTicker"})},
               1000, frozenset({100, 1000}), 5000, 100)


def parse_stream(name: str, flavour: Flavour) -> tuple[str, str, int] | None:
    """``(SYMBOL, kind, interval ms)`` of a stream name; None if there is no such stream."""
    match = _STREAM.match(name)
    if match is None:
        return None
    symbol, kind, speed = match.groups()
    if kind != "depth":
        return None if speed is not None else (symbol.upper(), kind, 0)
    interval = flavour.bare_depth_ms if speed is None else int(speed)
    return (symbol.upper(), kind, interval) if interval in flavour.depth_ms else None


@dataclass(frozen=True)
class Wire:
    """How one market's numbers are written."""

    symbol: str
    price: Callable[[float], str]
    size: Callable[[float], str]

    def levels(self, levels: list[tuple[float, float]]) -> list[list[str]]:
        price, size = self.price, self.size
        return [[price(p), size(z)] for p, z in levels]


# --------------------------------------------------------------------------- topics


class DepthTopic(Topic):
    """``<sym>@depth[@Nms]``: the market's messages merged over the stream's interval."""

    def __init__(self, name: str, flavour: Flavour, wire: Wire, interval_ms: int) -> None:
        super().__init__(name)
        self._flavour = flavour
        self._wire = wire
        self._interval = interval_ms * 1_000_000
        self._pending: list[BookMessage] = []
        self._sent_ts: int | None = None

    def on_book(self, message: BookMessage) -> None:
        if not self.sessions:
            self._pending.clear()
            return
        if message.is_snapshot:
            self.flush()
            return
        if self._pending and not self._flavour.continues(self._pending[-1], message):
            self.flush()
        self._pending.append(message)
        if self._sent_ts is None or message.exchange_ts >= self._sent_ts + self._interval:
            self.flush()

    def flush(self) -> None:
        """Send the merged pending messages, if any."""
        if self._pending:
            self.publish(depth_update(self._flavour, self._wire, self._pending))
            self._sent_ts = self._pending[-1].exchange_ts
            self._pending = []


def depth_update(flavour: Flavour, wire: Wire, messages: list[BookMessage]) -> dict[str, Any]:
    """The ``depthUpdate`` event for consecutive book messages, merged."""
    merged: dict[tuple[int, float], float] = {}
    for message in messages:
        for side, price, size in message.changes:
            merged[(side, price)] = size
    first, last = messages[0], messages[-1]
    bids = wire.levels([(p, z) for (s, p), z in merged.items() if s == BID])
    asks = wire.levels([(p, z) for (s, p), z in merged.items() if s != BID])
    if not flavour.futures:
        return {"e": "depthUpdate", "E": ms(last.exchange_ts), "s": wire.symbol,
                "U": first.first_seq, "u": last.seq, "b": bids, "a": asks}
    return {"e": "depthUpdate", "E": ms(last.exchange_ts), "T": ms(last.exchange_ts),
            "s": wire.symbol, "U": first.first_seq, "u": last.seq, "pu": first.prev_seq,
            "b": bids, "a": asks}


def trade_event(flavour: Flavour, wire: Wire, trade: TradePrint, number: int) -> dict[str, Any]:
    """The ``trade`` event: ``m`` (buyer is maker) for an aggressive sell."""
    t, maker = ms(trade.exchange_ts), trade.side < 0
    if not flavour.futures:
        return {"e": "trade", "E": t, "s": wire.symbol, "t": number, "p": wire.price(trade.price),
                "q": wire.size(trade.size), "T": t, "m": maker, "M": True}
    return {"e": "trade", "E": t, "T": t, "s": wire.symbol, "t": number,
            "p": wire.price(trade.price), "q": wire.size(trade.size), "X": "MARKET", "m": maker}


def agg_trade_event(wire: Wire, trade: TradePrint, number: int, agg: int) -> dict[str, Any]:
    """The ``aggTrade`` event of one trade."""
    t = ms(trade.exchange_ts)
    return {"e": "aggTrade", "E": t, "a": agg, "s": wire.symbol, "p": wire.price(trade.price),
            "q": wire.size(trade.size), "f": number, "l": number, "T": t, "m": trade.side < 0}


def book_ticker(flavour: Flavour, wire: Wire, top: tuple[float, float, float, float],
                message: BookMessage) -> dict[str, Any]:
    """The ``bookTicker`` event for the top of the book after ``message``."""
    bid, bid_size, ask, ask_size = top
    event = {"u": message.seq, "s": wire.symbol, "b": wire.price(bid), "B": wire.size(bid_size),
             "a": wire.price(ask), "A": wire.size(ask_size)}
    if flavour.futures:
        t = ms(message.exchange_ts)
        return {"e": "bookTicker", **event, "T": t, "E": t}
    return event


# --------------------------------------------------------------------------- venue


class BinanceVenue(Venue):
    """Binance USD-M futures (``FUTURES``) or spot (``SPOT``) over some markets."""

    def __init__(self, context: VenueContext, markets: list[Market], flavour: Flavour) -> None:
        self.protocol = flavour.protocol
        self.flavour = flavour
        super().__init__(context, markets)
        self._wires = {s: self._wire(m) for s, m in self.markets.items()}
        self.topics: dict[str, Topic] = {}
        self._depth: dict[str, list[DepthTopic]] = {s: [] for s in self.markets}
        self._tops: dict[str, tuple[float, float, float, float] | None] = {}
        self._agg_ids: dict[str, int] = dict.fromkeys(self.markets, 0)
        self._held: dict[str, list[tuple[int, asyncio.Future[dict[str, Any]]]]] = {}

    def _wire(self, market: Market) -> Wire:
        least = 0 if self.flavour.futures else 8
        return Wire(market.symbol, fixed(max(least, market.price_places)),
                    fixed(max(least, market.size_places)))

    # -- routes

    def routes(self) -> list[web.RouteDef]:
        api = self.flavour.api
        table = [web.get(f"{api}/exchangeInfo", self.exchange_info),
                 web.get(f"{api}/depth", self.depth),
                 web.get(f"{api}/time", self.time),
                 web.get(f"{api}/ping", self.ping)]
        for route in self.flavour.routes:
            raw = functools.partial(self.websocket, route=route, combined=False)
            combined = functools.partial(self.websocket, route=route, combined=True)
            table += [web.get(f"{route}/ws", raw), web.get(f"{route}/ws/{{streams:.+}}", raw),
                      web.get(f"{route}/stream", combined)]
        return table

    # -- REST

    async def ping(self, request: web.Request) -> web.Response:
        return json_response({})

    async def time(self, request: web.Request) -> web.Response:
        return json_response({"serverTime": self.now_ms()})

    async def exchange_info(self, request: web.Request) -> web.Response:
        specs = [m.spec for m in self.markets.values()]
        if self.flavour.futures:
            return json_response(futures_exchange_info(specs, self.now_ms()))
        return json_response(spot_exchange_info(specs, self.now_ms()))

    async def depth(self, request: web.Request) -> web.Response:
        symbol = request.query.get("symbol", "")
        if not symbol:
            return _error(-1102, "Mandatory parameter 'symbol' was not sent, was empty/null, "
                                 "or malformed.")
        market = self.markets.get(symbol)
        if market is None:
            return _error(-1121, "Invalid symbol.")
        limit = request.query.get("limit", str(self.flavour.default_limit))
        if not limit.isdigit() or not 1 <= int(limit) <= self.flavour.max_limit:
            return _error(-1100, f"Illegal characters found in parameter 'limit'; legal range "
                                 f"is '1' to '{self.flavour.max_limit}'.")
        if not market.ready:  # lockstep: the book opens when its snapshot plays
            held: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
            self._held.setdefault(symbol, []).append((int(limit), held))
            return json_response(await held)
        self.context.hub.rest_books[self.protocol] += 1
        return json_response(self._depth_snapshot(market, int(limit)))

    def _depth_snapshot(self, market: Market, limit: int) -> dict[str, Any]:
        book, last = market.past(self.stale_back())
        wire = self._wires[market.symbol]
        bids, asks = book.top(limit)
        body: dict[str, Any] = {"lastUpdateId": last.seq if last else 0}
        if self.flavour.futures:
            body["E"] = self.now_ms()
            body["T"] = ms(last.exchange_ts) if last else body["E"]
        return {**body, "bids": wire.levels(bids), "asks": wire.levels(asks)}

    # -- websocket

    async def websocket(self, request: web.Request, *, route: str,
                        combined: bool) -> web.WebSocketResponse:
        names = request.match_info.get("streams", "") or request.query.get("streams", "")

        def make(ws: web.WebSocketResponse, faults: SessionFaults, name: str) -> Session:
            session = BinanceSession(ws, self, faults, name, route=route, combined=combined)
            session.add_streams([n for n in names.split("/") if n])
            return session

        return await self.serve_websocket(request, make, heartbeat=_HEARTBEAT_S)

    def topic(self, name: str, route: str) -> Topic | None:
        """The topic of stream ``name`` if it delivers anything on ``route``."""
        parsed = parse_stream(name, self.flavour)
        if parsed is None or parsed[0] not in self.markets:
            return None
        symbol, kind, interval = parsed
        if kind not in self.flavour.routes[route]:
            return None
        if name not in self.topics:
            self.topics[name] = self._new_topic(name, symbol, kind, interval)
        return self.topics[name]

    def _new_topic(self, name: str, symbol: str, kind: str, interval: int) -> Topic:
        if kind != "depth":
            return Topic(name)
        interval = 0 if self.context.lockstep else interval  # lockstep: every message
        topic = DepthTopic(name, self.flavour, self._wires[symbol], interval)
        self._depth[symbol].append(topic)
        return topic

    # -- market events

    def on_book(self, market: Market, message: BookMessage) -> None:
        for limit, held in self._held.pop(market.symbol, []):
            if not held.done():
                self.context.hub.rest_books[self.protocol] += 1
                held.set_result(self._depth_snapshot(market, limit))
        for topic in self._depth[market.symbol]:
            topic.on_book(message)
        ticker = self.topics.get(f"{market.symbol.lower()}@bookTicker")
        if ticker is not None and ticker.sessions:
            self._publish_top(market, ticker, message)

    def on_end(self, market: Market) -> None:
        for topic in self._depth[market.symbol]:
            topic.flush()

    def _publish_top(self, market: Market, ticker: Topic, message: BookMessage) -> None:
        bids, asks = market.book.top(1)
        top = (*bids[0], *asks[0]) if bids and asks else None
        if top is not None and top != self._tops.get(market.symbol):
            ticker.publish(book_ticker(self.flavour, self._wires[market.symbol], top, message))
        self._tops[market.symbol] = top

    def on_trade(self, market: Market, trade: TradePrint) -> None:
        symbol, wire = market.symbol, self._wires[market.symbol]
        number = numeric_id(trade.trade_id)
        trades = self.topics.get(f"{symbol.lower()}@trade")
        if trades is not None and trades.sessions:
            trades.publish(trade_event(self.flavour, wire, trade, number))
        aggs = self.topics.get(f"{symbol.lower()}@aggTrade")
        self._agg_ids[symbol] += 1
        if aggs is not None and aggs.sessions:
            aggs.publish(agg_trade_event(wire, trade, number, self._agg_ids[symbol]))


class BinanceSession(Session):
    """One Binance websocket: the method protocol, raw or combined frames."""

    def __init__(self, ws: web.WebSocketResponse, venue: BinanceVenue, faults: SessionFaults,
                 name: str, *, route: str, combined: bool) -> None:
        super().__init__(ws, venue.context.hub, faults, name)
        self._venue = venue
        self._route = route
        self.combined = combined
        self.streams: list[str] = []

    def add_streams(self, names: list[str]) -> None:
        for name in names:
            if name not in self.streams:
                self.streams.append(name)
            topic = self._venue.topic(name, self._route)
            if topic is not None:
                self.subscribe(topic)

    def remove_streams(self, names: list[str]) -> None:
        for name in names:
            if name in self.streams:
                self.streams.remove(name)
            if name in self.topics:
                self.unsubscribe(self.topics[name])

    def handle(self, message: Any) -> None:
        if not isinstance(message, dict) or not isinstance(message.get("method"), str):
            self.reply({"error": {"code": 3, "msg": "Invalid JSON: expected an object with "
                                                    "a method"}, "id": None})
            return
        method, params, ident = message["method"], message.get("params", []), message.get("id")
        handler = self._methods().get(method)
        if handler is None or not isinstance(params, list):
            self.reply({"error": {"code": 2, "msg": f"Invalid request: unknown method or "
                                                    f"params for {method!r}"}, "id": ident})
            return
        self.reply({"result": handler(params), "id": ident})

    def _methods(self) -> dict[str, Callable[[list[Any]], Any]]:
        return {"SUBSCRIBE": self._subscribe, "UNSUBSCRIBE": self._unsubscribe,
                "LIST_SUBSCRIPTIONS": lambda _: list(self.streams),
                "SET_PROPERTY": self._set_property,
                "GET_PROPERTY": lambda _: self.combined}

    def _subscribe(self, params: list[Any]) -> None:
        self.add_streams([p for p in params if isinstance(p, str)])

    def _unsubscribe(self, params: list[Any]) -> None:
        self.remove_streams([p for p in params if isinstance(p, str)])

    def _set_property(self, params: list[Any]) -> None:
        if len(params) == 2 and params[0] == "combined":
            self.combined = bool(params[1])

    def encode(self, item: Outgoing) -> str:
        if self.combined and item.data:
            return f'{{"stream":"{item.topic}","data":{item.text()}}}'
        return item.text()

    def gap(self, item: Outgoing) -> Outgoing | None:
        payload = item.payload
        if payload.get("e") != "depthUpdate":
            return None
        field = "pu" if "pu" in payload else "U"
        return Outgoing(item.topic, {**payload, field: payload[field] + 1})


def _error(code: int, message: str) -> web.Response:
    return json_response({"code": code, "msg": message}, status=400)


# --------------------------------------------------------------------------- metadata

_RATE_LIMITS = [
    {"rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE", "intervalNum": 1, "limit": 2400},
    {"rateLimitType": "ORDERS", "interval": "MINUTE", "intervalNum": 1, "limit": 1200},
    {"rateLimitType": "ORDERS", "interval": "SECOND", "intervalNum": 10, "limit": 300},
]


def futures_exchange_info(specs: list[InstrumentSpec], now_ms: int) -> dict[str, Any]:
    """``GET /fapi/v1/exchangeInfo`` for ``specs``."""
    quotes = sorted({s.quote for s in specs})
    return {"timezone": "UTC", "serverTime": now_ms, "futuresType": "U_MARGINED",
            "rateLimits": _RATE_LIMITS, "exchangeFilters": [],
            "assets": [{"asset": q, "marginAvailable": True, "autoAssetExchange": "-10000"}
                       for q in quotes],
            "symbols": [_futures_symbol(s) for s in specs]}


def _futures_symbol(spec: InstrumentSpec) -> dict[str, Any]:
    tick, lot = plain(spec.tick_size), plain(spec.lot_size)
    lots = {"stepSize": lot, "maxQty": "1000", "minQty": plain(spec.min_qty)}
    return {
        "symbol": spec.symbol, "pair": spec.symbol, "contractType": "PERPETUAL",
        "deliveryDate": 4133404800000, "onboardDate": 1569398400000, "status": "TRADING",
        "maintMarginPercent": "2.5000", "requiredMarginPercent": "5.0000",
        "baseAsset": spec.base, "quoteAsset": spec.quote, "marginAsset": spec.quote,
        "pricePrecision": decimals(spec.tick_size), "quantityPrecision": decimals(spec.lot_size),
        "baseAssetPrecision": 8, "quotePrecision": 8, "underlyingType": "COIN",
        "underlyingSubType": [], "settlePlan": 0, "triggerProtect": "0.0500",
        "liquidationFee": "0.012500", "marketTakeBound": "0.05",
        "filters": [
            {"minPrice": tick, "maxPrice": "10000000", "filterType": "PRICE_FILTER",
             "tickSize": tick},
            {**lots, "filterType": "LOT_SIZE"},
            {**lots, "filterType": "MARKET_LOT_SIZE"},
            {"limit": 200, "filterType": "MAX_NUM_ORDERS"},
            {"limit": 10, "filterType": "MAX_NUM_ALGO_ORDERS"},
            {"notional": plain(spec.min_notional), "filterType": "MIN_NOTIONAL"},
            {"multiplierDown": "0.9500", "multiplierUp": "1.0500", "multiplierDecimal": "4",
             "filterType": "PERCENT_PRICE"},
        ],
        "orderTypes": ["LIMIT", "MARKET", "STOP", "STOP_MARKET", "TAKE_PROFIT",
                       "TAKE_PROFIT_MARKET", "TRAILING_STOP_MARKET"],
        "timeInForce": ["GTC", "IOC", "FOK", "GTX", "GTD"],
    }


def spot_exchange_info(specs: list[InstrumentSpec], now_ms: int) -> dict[str, Any]:
    """``GET /api/v3/exchangeInfo`` for ``specs``."""
    return {"timezone": "UTC", "serverTime": now_ms, "rateLimits": _RATE_LIMITS,
            "exchangeFilters": [], "symbols": [_spot_symbol(s) for s in specs]}


def _spot_symbol(spec: InstrumentSpec) -> dict[str, Any]:
    eight = fixed(8)
    return {
        "symbol": spec.symbol, "status": "TRADING", "baseAsset": spec.base,
        "baseAssetPrecision": 8, "quoteAsset": spec.quote, "quotePrecision": 8,
        "quoteAssetPrecision": 8, "orderTypes": ["LIMIT", "LIMIT_MAKER", "MARKET",
                                                 "STOP_LOSS_LIMIT", "TAKE_PROFIT_LIMIT"],
        "icebergAllowed": True, "ocoAllowed": True, "isSpotTradingAllowed": True,
        "isMarginTradingAllowed": False,
        "filters": [
            {"filterType": "PRICE_FILTER", "minPrice": eight(float(spec.tick_size)),
             "maxPrice": "1000000.00000000", "tickSize": eight(float(spec.tick_size))},
            {"filterType": "LOT_SIZE", "minQty": eight(float(spec.min_qty)),
             "maxQty": "9000.00000000", "stepSize": eight(float(spec.lot_size))},
            {"filterType": "NOTIONAL", "minNotional": eight(float(spec.min_notional)),
             "applyMinToMarket": True, "maxNotional": "9000000.00000000",
             "applyMaxToMarket": False, "avgPriceMins": 5},
        ],
        "permissions": [], "defaultSelfTradePreventionMode": "EXPIRE_MAKER",
        "allowedSelfTradePreventionModes": ["NONE", "EXPIRE_TAKER", "EXPIRE_MAKER",
                                            "EXPIRE_BOTH"],
    }
