"""Bybit v5 (linear) public protocol on the paper exchange.

Paths under the venue prefix ``/bybit``, as on the real hosts:

- REST ``/v5/market/instruments-info?category=linear[&symbol=][&limit=][&cursor=]``
  (cursor pagination: ``nextPageCursor`` is ``""`` on the last page),
  ``/v5/market/orderbook?category=linear&symbol=&limit=`` (1..500, default 25),
  ``/v5/market/time``; every answer in the ``{"retCode", "retMsg", "result",
  "retExtInfo", "time"}`` envelope.
- websocket ``/v5/public/linear``: ``{"op": "subscribe"|"unsubscribe", "args": [...],
  "req_id": ...}`` -> ``{"success", "ret_msg", "conn_id", "req_id", "op"}``;
  ``{"op": "ping"}`` -> ``{"success": true, "ret_msg": "pong", ..., "op": "ping"}``.

Topics:

- ``orderbook.{1,50,200,500,1000}.<SYMBOL>``: on subscribe a ``snapshot`` of the best N
  levels per side; then ``delta`` messages with the level changes of the best N levels
  (a level leaving the top N is deleted with size ``"0"``, one entering it is inserted),
  ``u`` contiguous per topic, ``seq`` the archive message's id, ``ts``/``cts`` its
  exchange time. A message is sent when the top N changed and at least the topic's push
  interval (10/20/100/100/200 ms) passed since the last; the next one carries whatever
  changed meanwhile. An archived book snapshot is pushed as a new ``snapshot`` (as
  Bybit does after a service restart).
- ``publicTrade.<SYMBOL>``: one message per archived trade; ``S`` the taker side,
  ``L`` the tick direction, ``i`` the archived trade id, ``seq`` the book's last id.

Under a ``gap`` fault, a session's ``u`` for that topic jumps by one from that message on.
"""

from __future__ import annotations

import re
from typing import Any

import orjson
from aiohttp import web

from makerlab.core.instruments import InstrumentSpec
from makerlab.paper.book import top_difference
from makerlab.paper.instruments import decimals, fixed, plain
from makerlab.paper.market import Market
from makerlab.paper.session import Outgoing, Session, SessionFaults, Topic
from makerlab.paper.source import BookMessage, TradePrint
from makerlab.paper.venue import Venue, VenueContext, json_response, ms

__all__ = ["BOOK_INTERVAL_MS", "BybitVenue", "instrument_info"]

BOOK_INTERVAL_MS = {1: 10, 50: 20, 200: 100, 500: 100, 1000: 200}
_TOPIC = re.compile(r"^(?:orderbook\.(\d+)|publicTrade)\.([A-Z0-9]+)$")
_MAX_REST_DEPTH = 500
Levels = list[tuple[float, float]]


class Wire:
    """How one market's numbers are written (a deleted level's size is ``"0"``)."""

    def __init__(self, symbol: str, price_places: int, size_places: int) -> None:
        self.symbol = symbol
        self.price = fixed(price_places)
        self.size = fixed(size_places)

    def levels(self, levels: Levels) -> list[list[str]]:
        price, size = self.price, self.size
        return [[price(p), size(z) if z else "0"] for p, z in levels]


class BookTopic(Topic):
    """``orderbook.N.SYMBOL``: best-N snapshots and deltas with contiguous ``u``."""

    def __init__(self, name: str, market: Market, wire: Wire, depth: int, *,
                 lockstep: bool = False) -> None:
        super().__init__(name)
        self._market = market
        self._wire = wire
        self._depth = depth
        self._interval = BOOK_INTERVAL_MS[depth] * 1_000_000 * (not lockstep)
        self._sent: tuple[Levels, Levels] | None = None
        self._sent_ts = 0
        self._last: BookMessage | None = None
        self.u = 0

    @property
    def ready(self) -> bool:
        """Whether the market's book is open."""
        return self._market.ready

    def snapshot(self) -> dict[str, Any]:
        """The snapshot a new subscriber gets: what the topic last sent, or the current
        book when nobody was subscribed."""
        if self._sent is None:
            self._sent, self._last = self._market.book.top(self._depth), self._market.last
            self.u += 1
        return self._message("snapshot", *self._sent)

    def on_book(self, message: BookMessage) -> None:
        if not self.sessions:
            self._sent = None
        elif message.is_snapshot:
            top = self._market.book.top(self._depth)
            self._publish("snapshot", top, top, message)
        elif message.exchange_ts >= self._sent_ts + self._interval:
            self.flush()

    def flush(self) -> None:
        """Send the changes of the best N levels since the last message, if any."""
        message = self._market.last
        if self._sent is None or not self.sessions or message is None:
            return
        top = self._market.book.top(self._depth)
        changed = (top_difference(self._sent[0], top[0]), top_difference(self._sent[1], top[1]))
        if changed[0] or changed[1]:
            self._publish("delta", changed, top, message)

    def _publish(self, kind: str, levels: tuple[Levels, Levels], top: tuple[Levels, Levels],
                 message: BookMessage) -> None:
        self.u += 1
        self._sent, self._last, self._sent_ts = top, message, message.exchange_ts
        self.publish(self._message(kind, *levels))

    def _message(self, kind: str, bids: Levels, asks: Levels) -> dict[str, Any]:
        last = self._last
        t = ms(last.exchange_ts) if last else 0
        return {"topic": self.name, "type": kind, "ts": t,
                "data": {"s": self._wire.symbol, "b": self._wire.levels(bids),
                         "a": self._wire.levels(asks), "u": self.u,
                         "seq": last.seq if last else 0},
                "cts": t}


class BybitVenue(Venue):
    """Bybit v5 linear over some markets."""

    protocol = "bybit"

    def __init__(self, context: VenueContext, markets: list[Market]) -> None:
        super().__init__(context, markets)
        self._wires = {s: Wire(s, m.price_places, m.size_places) for s, m in self.markets.items()}
        self.topics: dict[str, Topic] = {}
        self._books: dict[str, list[BookTopic]] = {s: [] for s in self.markets}
        self._ticks: dict[str, tuple[float, str]] = {}

    def routes(self) -> list[web.RouteDef]:
        return [web.get("/v5/market/instruments-info", self.instruments_info),
                web.get("/v5/market/orderbook", self.orderbook),
                web.get("/v5/market/time", self.time),
                web.get("/v5/public/linear", self.websocket)]

    # -- REST

    def _reply(self, result: Any, code: int = 0, message: str = "OK") -> web.Response:
        return json_response({"retCode": code, "retMsg": message, "result": result,
                              "retExtInfo": {}, "time": self.now_ms()})

    def _error(self, message: str) -> web.Response:
        return self._reply({}, 10001, message)

    async def time(self, request: web.Request) -> web.Response:
        now = self.context.clock.exchange_ns()
        return self._reply({"timeSecond": str(now // 1_000_000_000), "timeNano": str(now)})

    async def instruments_info(self, request: web.Request) -> web.Response:
        query = request.query
        if query.get("category") != "linear":
            return self._error("params error: the paper exchange serves category=linear")
        specs = [m.spec for s, m in self.markets.items() if query.get("symbol", s) == s]
        limit, start = query.get("limit", "500"), query.get("cursor", "0") or "0"
        if not (limit.isdigit() and 1 <= int(limit) <= 1000 and start.isdigit()):
            return self._error("params error: limit must be 1..1000 and cursor from "
                               "nextPageCursor")
        end = int(start) + int(limit)
        page = [instrument_info(s) for s in specs[int(start):end]]
        cursor = str(end) if end < len(specs) else ""
        return self._reply({"category": "linear", "list": page, "nextPageCursor": cursor})

    async def orderbook(self, request: web.Request) -> web.Response:
        query = request.query
        market = self.markets.get(query.get("symbol", ""))
        if query.get("category") != "linear" or market is None:
            return self._error("params error: category=linear and a served symbol required")
        limit = query.get("limit", "25")
        if not limit.isdigit() or not 1 <= int(limit) <= _MAX_REST_DEPTH:
            return self._error(f"params error: limit must be 1..{_MAX_REST_DEPTH}")
        book, last = market.past(self.stale_back())
        bids, asks = book.top(int(limit))
        wire = self._wires[market.symbol]
        t = ms(last.exchange_ts) if last else self.now_ms()
        return self._reply({"s": market.symbol, "b": wire.levels(bids), "a": wire.levels(asks),
                            "ts": t, "u": market.messages, "seq": last.seq if last else 0,
                            "cts": t})

    # -- websocket

    async def websocket(self, request: web.Request) -> web.WebSocketResponse:
        def make(ws: web.WebSocketResponse, faults: SessionFaults, name: str) -> Session:
            return BybitSession(ws, self, faults, name)

        return await self.serve_websocket(request, make)

    def topic(self, name: str) -> Topic | None:
        """The topic called ``name``, or None when there is no such topic."""
        match = _TOPIC.match(name)
        if match is None or match.group(2) not in self.markets:
            return None
        depth, symbol = match.groups()
        if depth is not None and int(depth) not in BOOK_INTERVAL_MS:
            return None
        if name not in self.topics:
            self.topics[name] = self._new_topic(name, symbol, depth)
        return self.topics[name]

    def _new_topic(self, name: str, symbol: str, depth: str | None) -> Topic:
        if depth is None:
            return Topic(name)
        topic = BookTopic(name, self.markets[symbol], self._wires[symbol], int(depth),
                          lockstep=self.context.lockstep)
        self._books[symbol].append(topic)
        return topic

    # -- market events

    def on_book(self, market: Market, message: BookMessage) -> None:
        for topic in self._books[market.symbol]:
            topic.on_book(message)

    def on_end(self, market: Market) -> None:
        for topic in self._books[market.symbol]:
            topic.flush()

    def on_trade(self, market: Market, trade: TradePrint) -> None:
        direction = self._tick_direction(market.symbol, trade.price)
        topic = self.topics.get(f"publicTrade.{market.symbol}")
        if topic is None or not topic.sessions:
            return
        wire, t = self._wires[market.symbol], ms(trade.exchange_ts)
        price, size = wire.price, wire.size
        topic.publish({"topic": topic.name, "type": "snapshot", "ts": t, "data": [
            {"T": t, "s": market.symbol, "S": "Sell" if trade.side < 0 else "Buy",
             "v": size(trade.size), "p": price(trade.price), "L": direction,
             "i": trade.trade_id, "BT": False, "RPI": False,
             "seq": market.last.seq if market.last else 0}]})

    def _tick_direction(self, symbol: str, price: float) -> str:
        last = self._ticks.get(symbol)
        if last is None or price == last[0]:
            direction = "Zero" + (last[1].removeprefix("Zero") if last else "PlusTick")
        else:
            direction = "PlusTick" if price > last[0] else "MinusTick"
        self._ticks[symbol] = (price, direction)
        return direction


class BybitSession(Session):
    """One ``/v5/public/linear`` websocket."""

    def __init__(self, ws: web.WebSocketResponse, venue: BybitVenue, faults: SessionFaults,
                 name: str) -> None:
        super().__init__(ws, venue.context.hub, faults, name)
        self._venue = venue
        self._conn_id = f"paper-{name.replace('#', '-')}"
        self._offsets: dict[str, int] = {}

    def handle(self, message: Any) -> None:
        op = message.get("op") if isinstance(message, dict) else None
        args = message.get("args") if isinstance(message, dict) else None
        if op == "ping":
            self._ack(message, "ping", [], "pong")
        elif op in ("subscribe", "unsubscribe") and isinstance(args, list):
            failed = self._subscribe(args) if op == "subscribe" else self._unsubscribe(args)
            self._ack(message, op, failed)
            if op == "subscribe":
                self._snapshots(args)
        else:
            self._ack(message if isinstance(message, dict) else {}, str(op), [
                f"error:unknown op or bad args: {str(message)[:80]}"])

    def _ack(self, request: dict[str, Any], op: str, failed: list[str], ok: str = "") -> None:
        ack = {"success": not failed, "ret_msg": "; ".join(failed) or ok,
               "conn_id": self._conn_id}
        if "req_id" in request:
            ack["req_id"] = request["req_id"]
        self.reply({**ack, "op": op})

    def _subscribe(self, names: list[Any]) -> list[str]:
        failed = []
        for name in names:
            topic = self._venue.topic(name) if isinstance(name, str) else None
            if topic is None:
                failed.append(f"Invalid topic: {name}")
            elif name in self.topics:
                failed.append(f"error:already subscribed,topic:{name}")
            else:
                self.subscribe(topic)
        return failed

    def _snapshots(self, names: list[Any]) -> None:
        for name in names:
            topic = self.topics.get(name) if isinstance(name, str) else None
            if isinstance(topic, BookTopic) and topic.ready:  # lockstep: at its opening
                self.push(Outgoing(name, topic.snapshot()))

    def _unsubscribe(self, names: list[Any]) -> list[str]:
        failed = []
        for name in names:
            if isinstance(name, str) and name in self.topics:
                self.unsubscribe(self.topics[name])
            else:
                failed.append(f"error:not subscribed,topic:{name}")
        return failed

    def encode(self, item: Outgoing) -> str:
        offset = self._offsets.get(item.topic, 0)
        if not offset:
            return item.text()
        payload = item.payload
        data = {**payload["data"], "u": payload["data"]["u"] + offset}
        return orjson.dumps({**payload, "data": data}).decode()

    def gap(self, item: Outgoing) -> Outgoing | None:
        if not item.topic.startswith("orderbook."):
            return None
        self._offsets[item.topic] = self._offsets.get(item.topic, 0) + 1
        return item


def instrument_info(spec: InstrumentSpec) -> dict[str, Any]:
    """One ``instruments-info`` entry (linear perpetual) for ``spec``."""
    lot = plain(spec.lot_size)
    return {
        "symbol": spec.symbol, "contractType": "LinearPerpetual", "status": "Trading",
        "baseCoin": spec.base, "quoteCoin": spec.quote, "launchTime": "1584230400000",
        "deliveryTime": "0", "deliveryFeeRate": "", "priceScale": str(decimals(spec.tick_size)),
        "leverageFilter": {"minLeverage": "1", "maxLeverage": "100.00", "leverageStep": "0.01"},
        "priceFilter": {"minPrice": plain(spec.tick_size), "maxPrice": "1999999.80",
                        "tickSize": plain(spec.tick_size)},
        "lotSizeFilter": {"maxOrderQty": "1190.000", "minOrderQty": plain(spec.min_qty),
                          "qtyStep": lot, "postOnlyMaxOrderQty": "1190.000",
                          "maxMktOrderQty": "119.000",
                          "minNotionalValue": plain(spec.min_notional)},
        "unifiedMarginTrade": True, "fundingInterval": 480, "settleCoin": spec.quote,
    }
