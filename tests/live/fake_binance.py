"""A stateful fake Binance USD-M exchange (with Binance spot market data) on
:class:`FakePrivate`, for the OMS's reliability tests and the live example.

It keeps orders, positions and a balance; answers the WS API and REST as Binance does
(HMAC checked against ``SECRET``); pushes ``ORDER_TRADE_UPDATE`` on the user stream for
every accepted, cancelled and filled order; rejects post-only orders that would cross its
book (``-5022``), orders below the minimum notional (``-4164``) and, when ``rate_limited``,
every order with HTTP 429. Orders rest until the test fills (:meth:`FakeBinance.fill`) or
cancels them. Knobs the tests turn:

- ``drop_next_answer``: the WS API takes the next order, then closes the socket without
  answering (a disconnect in the middle of order entry);
- ``silent``: user-stream events are held in ``held`` instead of sent (a lost stream);
- ``order_count``: the ``X-MBX-ORDER-COUNT-10S`` it reports (of 300);
- ``answer_times``: ``False`` leaves the venue time out of order answers (as Bybit's and
  Hyperliquid's answers carry none);
- ``positions``: the venue's truth, which the tests may change behind the stream's back.

Market data: ``tick()`` pushes one depth diff (and a trade) to every open market stream of
``binance`` and ``binance_spot``; REST depth snapshots carry the same ids.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from decimal import Decimal
from urllib.parse import parse_qsl

import orjson
from aiohttp import web
from fake_private import Conn, FakePrivate, json_response

from makerlab.live.signing import binance_ws_payload, hmac_hex

KEY, SECRET = "bn-oms-key-1234", "bn-oms-SECRET-never-logged-5678"
SYMBOL = "BTCUSDT"
MIN_NOTIONAL = Decimal("100")
D = Decimal
ZERO = Decimal(0)
_FILTERS = [{"filterType": "PRICE_FILTER", "tickSize": "0.10"},
            {"filterType": "LOT_SIZE", "stepSize": "0.001", "minQty": "0.001"},
            {"filterType": "MIN_NOTIONAL", "notional": str(MIN_NOTIONAL)}]
_INFO = {"symbols": [{"symbol": SYMBOL, "status": "TRADING", "baseAsset": "BTC",
                      "quoteAsset": "USDT", "contractType": "PERPETUAL",
                      "filters": _FILTERS}]}
_SPOT_INFO = {"symbols": [{"symbol": SYMBOL, "status": "TRADING", "baseAsset": "BTC",
                           "quoteAsset": "USDT", "filters": [
                               {"filterType": "PRICE_FILTER", "tickSize": "0.01"},
                               {"filterType": "LOT_SIZE", "stepSize": "0.00001",
                                "minQty": "0.00001"},
                               {"filterType": "NOTIONAL", "minNotional": "5"}]}]}
_USER = "/binance/private/ws"
_MARKETS = ("/binance/public/stream", "/binance_spot/stream")


@dataclass
class Order:
    oid: int
    cloid: str
    symbol: str
    side: str
    qty: Decimal
    price: Decimal | None
    tif: str
    reduce_only: bool
    status: str = "NEW"
    filled: Decimal = Decimal(0)
    updated: int = 0

    @property
    def sign(self) -> int:
        return 1 if self.side == "BUY" else -1

    def row(self) -> dict:
        return {"orderId": self.oid, "symbol": self.symbol, "status": self.status,
                "clientOrderId": self.cloid, "price": str(self.price or 0),
                "origQty": str(self.qty), "executedQty": str(self.filled),
                "type": "MARKET" if self.price is None else "LIMIT", "side": self.side,
                "timeInForce": self.tif, "reduceOnly": self.reduce_only,
                "updateTime": self.updated}


class FakeBinance:
    """The fake exchange (see the module docstring)."""

    def __init__(self, fake: FakePrivate) -> None:
        self.fake, self.bid, self.ask = fake, D("59990"), D("60010")
        self.orders: dict[int, Order] = {}
        self.positions: dict[str, tuple[Decimal, Decimal, int]] = {}  # amount, entry, ms
        self.dead_man: list[tuple[str, int]] = []
        self.cancel_alls: list[str] = []
        self.held: list[bytes] = []
        self.available = D("9000")  # the USDT row's availableBalance
        self.silent = self.rate_limited = self.drop_next_answer = False
        self.answer_times = True  # False: answers without the order's updateTime
        self.order_count = 0
        self.seq, self._oid, self._trade, self._last_ms = 1000, 100, 500, 0
        self._routes()

    def _routes(self) -> None:
        rest = self.fake.rest
        rest[("GET", "/binance/fapi/v1/exchangeInfo")] = _const(_INFO)
        rest[("GET", "/binance_spot/api/v3/exchangeInfo")] = _const(_SPOT_INFO)
        rest[("GET", "/binance/fapi/v1/depth")] = self._depth
        rest[("GET", "/binance_spot/api/v3/depth")] = self._depth
        rest[("POST", "/binance/fapi/v1/listenKey")] = _const({"listenKey": "lk1"})
        rest[("PUT", "/binance/fapi/v1/listenKey")] = _const({"listenKey": "lk1"})
        for method, handler in (("POST", self._rest_place), ("DELETE", self._rest_cancel),
                                ("GET", self._rest_query)):
            rest[(method, "/binance/fapi/v1/order")] = handler
        rest[("DELETE", "/binance/fapi/v1/allOpenOrders")] = self._cancel_all
        rest[("POST", "/binance/fapi/v1/countdownCancelAll")] = self._countdown
        rest[("GET", "/binance/fapi/v1/openOrders")] = self._open_orders
        rest[("GET", "/binance/fapi/v2/positionRisk")] = self._position_risk
        rest[("GET", "/binance/fapi/v2/balance")] = self._balance
        rest[("GET", "/binance/fapi/v1/premiumIndex")] = self._premium
        rest[("GET", "/binance/fapi/v1/fundingInfo")] = _const(
            [{"symbol": SYMBOL, "fundingIntervalHours": 4}])
        self.fake.sockets["/binance/ws-fapi/v1"] = self._ws_api
        for path in (_USER, *_MARKETS):
            self.fake.sockets[path] = _ignore

    # -- time, events --------------------------------------------------------------------

    def now_ms(self) -> int:
        """The venue's clock: wall time in ms, strictly increasing."""
        self._last_ms = max(int(time.time() * 1000), self._last_ms + 1)
        return self._last_ms

    def event(self, order: Order, x: str, last: Decimal = ZERO, price: Decimal = ZERO,
              trade: int = 0) -> bytes:
        """The ``ORDER_TRADE_UPDATE`` of ``order`` now (``x``: NEW, CANCELED, TRADE...)."""
        t = order.updated
        return orjson.dumps({"e": "ORDER_TRADE_UPDATE", "E": t, "T": t, "o": {
            "s": order.symbol, "c": order.cloid, "S": order.side,
            "o": "MARKET" if order.price is None else "LIMIT", "f": order.tif,
            "q": str(order.qty), "p": str(order.price or 0), "x": x, "X": order.status,
            "i": order.oid, "l": str(last), "z": str(order.filled), "L": str(price),
            "T": t, "t": trade, "N": "USDT", "n": "0.01", "m": True, "R": order.reduce_only}})

    async def emit(self, frame: bytes) -> None:
        if self.silent:
            self.held.append(frame)
        else:
            await self.fake.push(_USER, frame)

    def open(self) -> list[Order]:
        return [o for o in self.orders.values() if o.status in ("NEW", "PARTIALLY_FILLED")]

    # -- what the tests do ---------------------------------------------------------------

    async def fill(self, oid: int, qty: Decimal, price: Decimal | None = None) -> bytes:
        """Fill ``qty`` of order ``oid``; returns the event (sent unless ``silent``)."""
        order = self.orders[oid]
        price = price if price is not None else order.price or self.ask
        order.filled += qty
        order.status = "FILLED" if order.filled >= order.qty else "PARTIALLY_FILLED"
        order.updated = self.now_ms()
        self.move_position(order.symbol, order.sign * qty, price, order.updated)
        self._trade += 1
        frame = self.event(order, "TRADE", qty, price, self._trade)
        await self.emit(frame)
        return frame

    async def foreign_fill(self, side: str, qty: Decimal, price: Decimal) -> bytes:
        """A fill of an order placed around the OMS (the venue's web page)."""
        self._oid += 1
        order = Order(self._oid, f"web_{self._oid}", SYMBOL, side, qty, price, "GTC", False)
        self.orders[order.oid] = order
        return await self.fill(order.oid, qty, price)

    def move_position(self, symbol: str, qty: Decimal, price: Decimal, ms: int) -> None:
        amount, entry, _ = self.positions.get(symbol, (D(0), D(0), 0))
        new = amount + qty
        if not new:
            entry = D(0)
        elif amount == 0 or (amount > 0) == (qty > 0):
            entry = (amount * entry + qty * price) / new
        elif (new > 0) != (amount > 0):
            entry = price
        self.positions[symbol] = (new, entry, ms)

    async def tick(self) -> None:
        """One depth diff (and a trade) on every open market stream."""
        self.seq += 1
        now = self.now_ms()
        size = str(D("1.0") + D(self.seq % 5) / 10)
        depth = {"e": "depthUpdate", "E": now, "T": now, "s": SYMBOL, "U": self.seq,
                 "u": self.seq, "pu": self.seq - 1, "b": [[str(self.bid), size]], "a": []}
        trade = {"e": "trade", "E": now, "T": now, "s": SYMBOL, "t": self.seq,
                 "p": str(self.ask), "q": "0.01", "m": False, "X": "MARKET"}
        for path in _MARKETS:
            await self.fake.push(path, orjson.dumps({"stream": "btcusdt@depth@100ms",
                                                     "data": depth}))
            await self.fake.push(path, orjson.dumps({"stream": "btcusdt@trade",
                                                     "data": trade}))

    # -- order entry ---------------------------------------------------------------------

    def _place(self, p: dict) -> tuple[int, dict]:
        if self.rate_limited:
            return 429, {"code": -1003, "msg": "Too many requests; banned until later."}
        qty, price = D(p["quantity"]), D(p["price"]) if "price" in p else None
        tif = p.get("timeInForce", "GTC")
        if tif == "GTX" and price is not None and (
                price >= self.ask if p["side"] == "BUY" else price <= self.bid):
            return 400, {"code": -5022, "msg": "Due to the order could not be executed as "
                         "maker, the Post Only order will be rejected."}
        if qty * (price or self.ask) < MIN_NOTIONAL:
            return 400, {"code": -4164, "msg": "Order's notional must be no smaller than "
                         f"{MIN_NOTIONAL} (unless you choose reduce only)."}
        self._oid += 1
        order = Order(self._oid, p["newClientOrderId"], p["symbol"], p["side"], qty, price,
                      tif, p.get("reduceOnly") == "true", updated=self.now_ms())
        self.orders[order.oid] = order
        return 200, order.row()

    def _find(self, p: dict) -> Order | None:
        if "orderId" in p:
            return self.orders.get(int(p["orderId"]))
        return next((o for o in self.orders.values()
                     if o.cloid == p.get("origClientOrderId")), None)

    def _answer(self, row: dict) -> dict:
        return row if self.answer_times else {k: v for k, v in row.items()
                                              if k != "updateTime"}

    def _cancel(self, p: dict) -> tuple[int, dict]:
        order = self._find(p)
        if order is None or order not in self.open():
            return 400, {"code": -2011, "msg": "Unknown order sent."}
        order.status, order.updated = "CANCELED", self.now_ms()
        return 200, order.row()

    def _headers(self) -> dict[str, str]:
        return {"X-MBX-USED-WEIGHT-1M": "10", "X-MBX-ORDER-COUNT-10S": str(self.order_count)}

    async def _rest_place(self, request: web.Request, body: bytes) -> web.Response:
        status, answer = self._place(_signed(request))
        if status == 200:
            await self.emit(self.event(self.orders[answer["orderId"]], "NEW"))
        return json_response(self._answer(answer), status, self._headers() | (
            {"Retry-After": "30"} if status == 429 else {}))

    async def _rest_cancel(self, request: web.Request, body: bytes) -> web.Response:
        status, answer = self._cancel(_signed(request))
        if status == 200:
            await self.emit(self.event(self.orders[answer["orderId"]], "CANCELED"))
        return json_response(answer, status, self._headers())

    async def _rest_query(self, request: web.Request, body: bytes) -> web.Response:
        order = self._find(_signed(request))
        if order is None:
            return json_response({"code": -2013, "msg": "Order does not exist."}, 400)
        return json_response(order.row())

    async def _cancel_all(self, request: web.Request, body: bytes) -> web.Response:
        symbol = _signed(request)["symbol"]
        self.cancel_alls.append(symbol)
        for order in self.open():
            if order.symbol == symbol:
                order.status, order.updated = "CANCELED", self.now_ms()
                await self.emit(self.event(order, "CANCELED"))
        return json_response({"code": 200, "msg": "The operation of cancel all open order "
                              "is done."})

    async def _countdown(self, request: web.Request, body: bytes) -> web.Response:
        p = _signed(request)
        self.dead_man.append((p["symbol"], int(p["countdownTime"])))
        return json_response({"symbol": p["symbol"], "countdownTime": p["countdownTime"]})

    async def _ws_api(self, conn: Conn, text: str) -> None:
        req = orjson.loads(text)
        params = req["params"]
        assert params["apiKey"] == KEY
        assert params["signature"] == hmac_hex(SECRET, binance_ws_payload(params))
        status, answer = (self._place if req["method"] == "order.place" else
                          self._cancel)(params)
        if status == 200:
            x = "NEW" if req["method"] == "order.place" else "CANCELED"
            await self.emit(self.event(self.orders[answer["orderId"]], x))
        if self.drop_next_answer and req["method"] == "order.place":
            self.drop_next_answer = False
            await conn.ws.close()
            return
        key = "result" if status == 200 else "error"
        await conn.send(orjson.dumps({"id": req["id"], "status": status,
                                      key: self._answer(answer),
                                      "rateLimits": [{"rateLimitType": "ORDERS",
                                                      "interval": "SECOND", "intervalNum": 10,
                                                      "limit": 300,
                                                      "count": self.order_count}]}))

    # -- account -------------------------------------------------------------------------

    async def _open_orders(self, request: web.Request, body: bytes) -> web.Response:
        _signed(request)
        return json_response([o.row() for o in self.open()])

    async def _position_risk(self, request: web.Request, body: bytes) -> web.Response:
        _signed(request)
        return json_response([{"symbol": s, "positionAmt": str(a), "entryPrice": str(e),
                               "unRealizedProfit": "0", "updateTime": ms,
                               "positionSide": "BOTH"}
                              for s, (a, e, ms) in self.positions.items()])

    async def _balance(self, request: web.Request, body: bytes) -> web.Response:
        _signed(request)
        # every asset of the account, as Binance lists them: the margin asset not first
        empty = {"balance": "0", "crossUnPnl": "0", "availableBalance": "0", "updateTime": 0}
        return json_response([{"asset": "BNB"} | empty,
                              {"asset": "USDT", "balance": "10000", "crossUnPnl": "12.5",
                               "availableBalance": str(self.available),
                               "updateTime": self.now_ms()},
                              {"asset": "USDC"} | empty])

    async def _premium(self, request: web.Request, body: bytes) -> web.Response:
        return json_response({"symbol": SYMBOL, "markPrice": "60000.5",
                              "lastFundingRate": "0.0001", "nextFundingTime": 1_800_000_000_000,
                              "time": self.now_ms()})

    async def _depth(self, request: web.Request, body: bytes) -> web.Response:
        bids = [[str(self.bid - 10 * k), "1.0"] for k in range(20)]
        asks = [[str(self.ask + 10 * k), "1.0"] for k in range(20)]
        now = self.now_ms()
        return json_response({"lastUpdateId": self.seq, "E": now, "T": now,
                              "bids": bids, "asks": asks})


def _signed(request: web.Request) -> dict:
    """The request's parameters, its HMAC signature checked against SECRET."""
    assert request.headers["X-MBX-APIKEY"] == KEY
    unsigned, _, signature = request.query_string.rpartition("&signature=")
    assert signature == hmac_hex(SECRET, unsigned), "bad signature"
    return dict(parse_qsl(unsigned))


def _const(data: object):
    async def handler(request: web.Request, body: bytes) -> web.Response:
        return json_response(data)
    return handler


async def _ignore(conn: Conn, text: str) -> None:
    return None
