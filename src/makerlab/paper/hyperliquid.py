"""Hyperliquid (perps) public protocol on the paper exchange.

Paths under the venue prefix ``/hyperliquid``, as on the real host:

- REST ``POST /info`` with ``{"type": "meta"}`` (``universe`` with ``name``,
  ``szDecimals``, ``maxLeverage``; asset id = index), ``{"type": "l2Book", "coin": c}``
  (best 20 levels per side, ``null`` for an unknown coin) and ``{"type": "allMids"}``;
  another type is a 422, as on the venue.
- websocket ``/ws``: ``{"method": "subscribe", "subscription": {"type": "l2Book" |
  "trades", "coin": c}}`` -> ``{"channel": "subscriptionResponse", "data": request}``;
  ``unsubscribe`` alike; ``{"method": "ping"}`` -> ``{"channel": "pong"}``; problems ->
  ``{"channel": "error", "data": "..."}``.

Channels:

- ``l2Book``: full snapshots of the best 20 levels per side (``n`` = 1 per level: the
  archive has no order counts), ``time`` the exchange time in ms of the message that made
  the book. Sent on subscribe, then whenever the book changed and ``time`` moved on (two
  archive messages in the same millisecond give one snapshot, the later state then
  arriving with the next one): a client keeping the newest ``time`` never goes back.
- ``trades``: one message per archived trade: ``side`` the aggressor (``B``/``A``),
  ``tid`` the archived id (or a stable hash of it), placeholder ``hash`` and ``users``.

Numbers are written without trailing zeros (one decimal kept: ``"105055.0"``). The server
pings every 10 s (websocket ping frames), so a quiet socket (a user stream) stays open.
There are no update ids, so the ``gap`` fault does not apply.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson
from aiohttp import web

from makerlab.paper.hyperliquid_private import PRIVATE_SUBSCRIPTIONS
from makerlab.paper.instruments import cached, decimals
from makerlab.paper.market import Market
from makerlab.paper.session import Outgoing, Session, SessionFaults, Topic
from makerlab.paper.source import BookMessage, TradePrint
from makerlab.paper.venue import Venue, VenueContext, json_response, ms, numeric_id

__all__ = ["DEPTH", "HyperliquidVenue", "number"]

DEPTH = 20
_HEARTBEAT_S = 10.0  # protocol pings: a quiet user stream stays open
_PRIVATE_INFO = frozenset({"clearinghouseState", "openOrders", "frontendOpenOrders",
                           "userFills", "orderStatus"})
_NOBODY = "0x" + "0" * 40
Levels = list[tuple[float, float]]


def number(places: int) -> Callable[[float], str]:
    """A writer of floats with at most ``places`` decimals, trailing zeros dropped but one
    kept (``105055.0``, ``0.1428``)."""
    write = f"{{:.{places}f}}".format

    def trimmed(value: float) -> str:
        text = write(value)
        if "." not in text:
            return text + ".0"
        text = text.rstrip("0")
        return text + "0" if text.endswith(".") else text

    return cached(trimmed)


class BookTopic(Topic):
    """``l2Book`` of one coin: the best 20 levels per side when they changed."""

    def __init__(self, name: str, venue: HyperliquidVenue, market: Market) -> None:
        super().__init__(name)
        self._venue = venue
        self._market = market
        self._sent: tuple[Levels, Levels] | None = None
        self._time = -1

    @property
    def ready(self) -> bool:
        """Whether the market's book is open."""
        return self._market.ready

    def snapshot(self) -> dict[str, Any]:
        """What a new subscriber gets first: the last snapshot sent, or the current book."""
        if self._sent is None:
            last = self._market.last
            self._sent = self._market.book.top(DEPTH)
            self._time = ms(last.exchange_ts) if last else 0
        return self._venue.l2_book(self._market, *self._sent, self._time)

    def on_book(self, message: BookMessage) -> None:
        if not self.sessions:
            self._sent = None
        elif ms(message.exchange_ts) > self._time:
            self.flush()

    def flush(self) -> None:
        """Send the book if it changed since the last snapshot sent."""
        last = self._market.last
        if not self.sessions or last is None:
            return
        top = self._market.book.top(DEPTH)
        if top != self._sent:
            self._sent, self._time = top, ms(last.exchange_ts)
            self.publish(self._venue.l2_book(self._market, *top, self._time))


class HyperliquidVenue(Venue):
    """Hyperliquid perps over some markets (coin = the archive's symbol)."""

    protocol = "hyperliquid"

    def __init__(self, context: VenueContext, markets: list[Market]) -> None:
        super().__init__(context, markets)
        self._writers = {c: (number(m.price_places), number(m.size_places))
                         for c, m in self.markets.items()}
        self.topics: dict[str, Topic] = {}
        self.private: Any = None  # the private side (hyperliquid_private), when served

    def routes(self) -> list[web.RouteDef]:
        return [web.post("/info", self.info), web.get("/ws", self.websocket)]

    # -- wire

    def levels(self, coin: str, levels: Levels) -> list[dict[str, Any]]:
        price, size = self._writers[coin]
        return [{"px": price(p), "sz": size(z), "n": 1} for p, z in levels]

    def l2_book(self, market: Market, bids: Levels, asks: Levels, time: int) -> dict[str, Any]:
        coin = market.symbol
        return {"channel": "l2Book", "data": {
            "coin": coin, "time": time,
            "levels": [self.levels(coin, bids), self.levels(coin, asks)]}}

    # -- REST

    async def info(self, request: web.Request) -> web.Response:
        try:
            body = orjson.loads(await request.read())
            kind = body["type"]
        except (orjson.JSONDecodeError, KeyError, TypeError):
            kind = None
        if kind == "meta":
            return json_response(self.meta())
        if kind == "l2Book":
            return json_response(self._rest_book(body.get("coin")))
        if kind == "allMids":
            return json_response(self._mids())
        if kind in _PRIVATE_INFO and self.private is not None:
            return json_response(self.private.info(body))
        return web.Response(status=422, text="Failed to deserialize the JSON body into the "
                                             "target type")

    def meta(self) -> dict[str, Any]:
        """``{"type": "meta"}``: one universe entry per coin; asset id = index."""
        universe = [{"name": c, "szDecimals": decimals(m.spec.lot_size), "maxLeverage": 50,
                     "marginTableId": 50} for c, m in self.markets.items()]
        return {"universe": universe, "marginTables": [], "collateralToken": 0}

    def _rest_book(self, coin: Any) -> dict[str, Any] | None:
        market = self.markets.get(coin) if isinstance(coin, str) else None
        if market is None:
            return None
        book, last = market.past(self.stale_back())
        bids, asks = book.top(DEPTH)
        time = ms(last.exchange_ts) if last else self.now_ms()
        return self.l2_book(market, bids, asks, time)["data"]

    def _mids(self) -> dict[str, str]:
        mids = {}
        for coin, market in self.markets.items():
            bids, asks = market.book.top(1)
            if bids and asks:
                places = self.markets[coin].price_places + 1
                mids[coin] = number(places)((bids[0][0] + asks[0][0]) / 2)
        return mids

    # -- websocket

    async def websocket(self, request: web.Request) -> web.WebSocketResponse:
        def make(ws: web.WebSocketResponse, faults: SessionFaults, name: str) -> Session:
            return HyperliquidSession(ws, self, faults, name)

        return await self.serve_websocket(request, make, heartbeat=_HEARTBEAT_S)

    def topic(self, subscription: Any) -> Topic | None:
        """The topic of a subscription object, or None when it names none."""
        if not isinstance(subscription, dict) or subscription.get("coin") not in self.markets:
            return None
        kind, coin = subscription.get("type"), subscription["coin"]
        if kind not in ("l2Book", "trades") or subscription.get("nSigFigs") is not None:
            return None
        name = f"{kind}:{coin}"
        if name not in self.topics:
            market = self.markets[coin]
            self.topics[name] = BookTopic(name, self, market) if kind == "l2Book" else Topic(
                name)
        return self.topics[name]

    # -- market events

    def on_book(self, market: Market, message: BookMessage) -> None:
        topic = self.topics.get(f"l2Book:{market.symbol}")
        if isinstance(topic, BookTopic):
            topic.on_book(message)

    def on_end(self, market: Market) -> None:
        topic = self.topics.get(f"l2Book:{market.symbol}")
        if isinstance(topic, BookTopic):
            topic.flush()

    def on_trade(self, market: Market, trade: TradePrint) -> None:
        topic = self.topics.get(f"trades:{market.symbol}")
        if topic is None or not topic.sessions:
            return
        coin, tid = market.symbol, numeric_id(trade.trade_id)
        price, size = self._writers[coin]
        topic.publish({"channel": "trades", "data": [{
            "coin": coin, "side": "A" if trade.side < 0 else "B",
            "px": price(trade.price), "sz": size(trade.size),
            "time": ms(trade.exchange_ts), "hash": f"0x{tid:064x}", "tid": tid,
            "users": [_NOBODY, _NOBODY]}]})


class HyperliquidSession(Session):
    """One ``/ws`` websocket."""

    def __init__(self, ws: web.WebSocketResponse, venue: HyperliquidVenue,
                 faults: SessionFaults, name: str) -> None:
        super().__init__(ws, venue.context.hub, faults, name)
        self._venue = venue

    async def serve(self) -> None:
        try:
            await super().serve()
        finally:
            if self._venue.private is not None:
                self._venue.private.forget(self)

    def handle(self, message: Any) -> None:
        method = message.get("method") if isinstance(message, dict) else None
        subscription = message.get("subscription") if isinstance(message, dict) else None
        if method == "ping":
            self.reply({"channel": "pong"})
        elif method == "post" and self._venue.private is not None:
            self._venue.private.post(self, message)
        elif method in ("subscribe", "unsubscribe") and isinstance(subscription, dict) and \
                subscription.get("type") in PRIVATE_SUBSCRIPTIONS:
            self._private(method, subscription)
        elif method in ("subscribe", "unsubscribe"):
            self._change(method, subscription)
        else:
            self.reply({"channel": "error", "data": f"Error parsing JSON into valid websocket "
                                                    f"request: {str(message)[:200]}"})

    def _change(self, method: str, subscription: Any) -> None:
        topic = self._venue.topic(subscription)
        text = orjson.dumps(subscription).decode()
        if topic is None:
            self.reply({"channel": "error", "data": f"Invalid subscription {text}"})
        elif method == "subscribe" and topic.name in self.topics:
            self.reply({"channel": "error", "data": f"Already subscribed: {text}"})
        elif method == "unsubscribe" and topic.name not in self.topics:
            self.reply({"channel": "error", "data": f"Already unsubscribed: {text}"})
        else:
            self.reply({"channel": "subscriptionResponse",
                        "data": {"method": method, "subscription": subscription}})
            self._apply(method, topic)

    def _private(self, method: str, subscription: dict[str, Any]) -> None:
        private = self._venue.private
        if private is None or not private.serves(subscription):
            text = orjson.dumps(subscription).decode()
            self.reply({"channel": "error", "data": f"Invalid subscription {text}"})
            return
        self.reply({"channel": "subscriptionResponse",
                    "data": {"method": method, "subscription": subscription}})
        private.subscribe(self, subscription, method == "subscribe")

    def _apply(self, method: str, topic: Topic) -> None:
        if method == "unsubscribe":
            self.unsubscribe(topic)
            return
        self.subscribe(topic)
        if isinstance(topic, BookTopic) and topic.ready:  # lockstep: at its opening
            self.push(Outgoing(topic.name, topic.snapshot()))
