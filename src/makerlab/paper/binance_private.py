"""Binance USD-M futures' private protocol on the paper exchange (under ``/binance``).

- **REST** (signed: ``X-MBX-APIKEY`` + HMAC ``signature``, ``timestamp`` within
  ``recvWindow``): ``POST/DELETE/PUT /fapi/v1/order`` (place, cancel, modify),
  ``POST /fapi/v1/batchOrders`` (≤ 5), ``DELETE /fapi/v1/allOpenOrders``,
  ``POST /fapi/v1/countdownCancelAll`` (the dead-man switch, per symbol),
  ``GET /fapi/v1/openOrders``, ``GET /fapi/v1/order`` (one order, open or recently
  closed), ``GET /fapi/v2/positionRisk``, ``GET /fapi/v2/balance``;
  ``POST/PUT/DELETE /fapi/v1/listenKey`` (key header only).
- **WS API** ``/ws-fapi/v1``: ``order.place``, ``order.cancel``, ``order.modify``, each
  signed on its own; answers ``{"id", "status", "result" | "error", "rateLimits"}``.
- **user stream** ``/private/ws?listenKey=`` (and ``/ws/<listenKey>``):
  ``ORDER_TRADE_UPDATE`` (``x`` NEW, TRADE, CANCELED, EXPIRED, AMENDMENT) and, after each
  fill, ``ACCOUNT_UPDATE`` (USDT wallet, the position). Refusals are answers only.
- **errors** as the venue's: ``-2015`` bad key (HTTP 401), ``-1022`` bad signature,
  ``-1021`` timestamp outside ``recvWindow``, ``-1102``/``-1100``/``-1121``/``-1116``/
  ``-1117`` bad parameters, the engine's ``-5022`` (post-only would cross), ``-4014``
  (tick), ``-1111`` (lot), ``-4003``, ``-4164`` (min notional), ``-2022``, ``-4015``,
  ``-2011`` (unknown order; ``-2013`` for a modify), ``-1125`` (unknown listen key);
  ``-1003`` (request weight, 2400 per minute) and ``-1015`` (orders: 300 per 10 s, 1200
  per minute) with HTTP 429 and ``Retry-After``.
- **rate-limit headers** on every signed answer: ``X-MBX-USED-WEIGHT-1M``,
  ``X-MBX-ORDER-COUNT-10S``, ``X-MBX-ORDER-COUNT-1M``; the WS API's ``rateLimits``.

Budgets count venue time (:mod:`makerlab.paper.limits`); a listen key never expires
unless deleted.
"""

from __future__ import annotations

import secrets
from collections.abc import Awaitable, Callable
from decimal import Decimal, InvalidOperation
from typing import Any
from urllib.parse import parse_qsl

import orjson
from aiohttp import web

from makerlab.core.events import Fill, OrderEventKind, OrderUpdate
from makerlab.core.instruments import InstrumentSpec
from makerlab.paper.auth import binance_rest_ok, binance_ws_ok
from makerlab.paper.desk import Delivery, RequestKind
from makerlab.paper.limits import Budget
from makerlab.paper.private import PrivateHub, Told, desk_filled, serve_private
from makerlab.paper.session import Session, SessionFaults
from makerlab.paper.venue import VenueContext, json_response, ms
from makerlab.trading.protocols import AmendRequest, CancelRequest, OrderRequest
from makerlab.units import NS_PER_S

__all__ = ["BinancePrivate"]

_MINUTE, _TEN_S = 60 * NS_PER_S, 10 * NS_PER_S
_STATUS = {"NEW": "NEW", "PARTIAL": "PARTIALLY_FILLED", "FILLED": "FILLED",
           "CANCELLED": "CANCELED", "REJECTED": "REJECTED"}
_EXEC = {OrderEventKind.ACK: "NEW", OrderEventKind.FILL: "TRADE",
         OrderEventKind.CANCEL_ACK: "CANCELED", OrderEventKind.EXPIRE: "EXPIRED",
         OrderEventKind.AMEND_ACK: "AMENDMENT"}
_TIFS = frozenset({"GTC", "IOC", "FOK", "GTX"})
_WEIGHTS = {"place": 1, "cancel": 1, "modify": 1, "batch": 5, "cancel_all": 1,
            "countdown": 10, "openOrders": 1, "query": 1, "positionRisk": 5, "balance": 5}


class Refused(Exception):
    """A request the venue refuses: its error ``code`` and ``msg``, HTTP ``status``."""

    def __init__(self, code: int, msg: str, status: int = 400,
                 retry_after: int | None = None) -> None:
        super().__init__(f"{code} {msg}")
        self.code, self.msg, self.status, self.retry_after = code, msg, status, retry_after


def _missing(name: str) -> Refused:
    return Refused(-1102, f"Mandatory parameter '{name}' was not sent, was empty/null, or "
                          "malformed.")


def _decimal(params: dict[str, str], name: str) -> Decimal:
    text = params.get(name)
    if not text:
        raise _missing(name)
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise Refused(-1100, f"Illegal characters found in parameter '{name}'; legal range "
                             "is '^([0-9]{1,20})(\\.[0-9]{1,20})?$'.") from None
    if not value.is_finite() or value <= 0:
        raise Refused(-1100, f"Illegal characters found in parameter '{name}'.")
    return value


def _text(value: Decimal, places: int) -> str:
    return format(value.quantize(Decimal(1).scaleb(-places)), "f") if places else format(
        value.quantize(Decimal(1)), "f")


class BinancePrivate:
    """The private side of the ``binance`` protocol (see the module docstring)."""

    protocol = "binance"

    def __init__(self, context: VenueContext, hub: PrivateHub) -> None:
        self.context, self.hub = context, hub
        self.listen_key: str | None = None
        self._users: dict[Session, None] = {}
        self._weight = Budget(2400, _MINUTE)
        self._orders_10s = Budget(300, _TEN_S)
        self._orders_1m = Budget(1200, _MINUTE)
        hub.add_streamer(self.protocol, self)

    def routes(self) -> list[web.RouteDef]:
        return [web.post("/fapi/v1/listenKey", self.new_listen_key),
                web.put("/fapi/v1/listenKey", self.keep_listen_key),
                web.delete("/fapi/v1/listenKey", self.close_listen_key),
                web.post("/fapi/v1/order", self._rest(self.place, "place")),
                web.delete("/fapi/v1/order", self._rest(self.cancel, "cancel")),
                web.put("/fapi/v1/order", self._rest(self.modify, "modify")),
                web.post("/fapi/v1/batchOrders", self._rest(self.batch, "batch")),
                web.delete("/fapi/v1/allOpenOrders", self._rest(self.cancel_all, "cancel_all")),
                web.post("/fapi/v1/countdownCancelAll", self._rest(self.countdown, "countdown")),
                web.get("/fapi/v1/openOrders", self._rest(self.open_orders, "openOrders")),
                web.get("/fapi/v1/order", self._rest(self.query, "query")),
                web.get("/fapi/v2/positionRisk", self._rest(self.position_risk,
                                                            "positionRisk")),
                web.get("/fapi/v2/balance", self._rest(self.balance, "balance")),
                web.get("/ws-fapi/v1", self.order_socket),
                web.get("/private/ws", self.user_socket),
                web.get("/ws/{listen_key}", self.user_socket)]

    # -- authentication ------------------------------------------------------------------

    def check_key(self, key: str | None) -> str:
        creds = self.hub.credentials(self.protocol)
        if creds is None or key != creds.key:
            raise Refused(-2015, "Invalid API-key, IP, or permissions for action.", 401)
        return creds.secret

    def check_time(self, params: dict[str, Any]) -> None:
        try:
            stamp, window = int(params["timestamp"]), int(params.get("recvWindow", 5000))
        except (KeyError, ValueError):
            raise _missing("timestamp") from None
        now = self.hub.client_ms()
        if stamp > now + 1000 or now - stamp > window:
            raise Refused(-1021, "Timestamp for this request is outside of the recvWindow.")

    async def _signed(self, request: web.Request) -> dict[str, str]:
        secret = self.check_key(request.headers.get("X-MBX-APIKEY"))
        body = (await request.read()).decode()
        if not binance_rest_ok(secret, request.rel_url.raw_query_string, body):
            raise Refused(-1022, "Signature for this request is not valid.")
        params = dict(parse_qsl(request.rel_url.raw_query_string)) | dict(parse_qsl(body))
        params.pop("signature", None)
        self.check_time(params)
        return params

    # -- budgets -------------------------------------------------------------------------

    def spend(self, what: str) -> None:
        now = self.hub.send_ns()
        weight = _WEIGHTS[what]
        if not self._weight.allows(now, weight):
            raise Refused(-1003, "Too many requests; current limit is 2400 requests per "
                                 "minute.", 429, self._retry(self._weight, now))
        orders = what in ("place", "modify", "batch")
        for budget, span in ((self._orders_10s, "TEN_SECONDS"), (self._orders_1m, "MINUTE")):
            if orders and not budget.allows(now):
                raise Refused(-1015, f"Too many new orders; current limit is {budget.limit} "
                                     f"orders per {span}.", 429, self._retry(budget, now))
        self._weight.spend(now, weight)
        if orders:
            self._orders_10s.spend(now)
            self._orders_1m.spend(now)

    @staticmethod
    def _retry(budget: Budget, now: int) -> int:
        return max(1, -(-(budget.reset_ns(now) - now) // NS_PER_S))

    def _headers(self) -> dict[str, str]:
        now = self.hub.send_ns()
        return {"X-MBX-USED-WEIGHT-1M": str(self._weight.count(now)),
                "X-MBX-ORDER-COUNT-10S": str(self._orders_10s.count(now)),
                "X-MBX-ORDER-COUNT-1M": str(self._orders_1m.count(now))}

    def rate_limits(self) -> list[dict[str, Any]]:
        """The WS API's ``rateLimits`` of an answer."""
        now = self.hub.send_ns()
        return [{"rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE", "intervalNum": 1,
                 "limit": self._weight.limit, "count": self._weight.count(now)},
                {"rateLimitType": "ORDERS", "interval": "SECOND", "intervalNum": 10,
                 "limit": self._orders_10s.limit, "count": self._orders_10s.count(now)},
                {"rateLimitType": "ORDERS", "interval": "MINUTE", "intervalNum": 1,
                 "limit": self._orders_1m.limit, "count": self._orders_1m.count(now)}]

    # -- REST plumbing -------------------------------------------------------------------

    def _rest(self, op: Callable[[dict[str, str]], Awaitable[Any]], what: str
              ) -> Callable[[web.Request], Awaitable[web.Response]]:
        counted = what in ("place", "cancel", "modify", "batch", "cancel_all", "countdown")

        async def handler(request: web.Request) -> web.Response:
            if counted:
                self.hub.received()
            try:
                params = await self._signed(request)
                self.spend(what)
                body = await op(params)
            except Refused as refused:
                return self._refusal(refused)
            return json_response(body, headers=self._headers())

        return handler

    def _refusal(self, refused: Refused) -> web.Response:
        headers = self._headers()
        if refused.retry_after is not None:
            headers["Retry-After"] = str(refused.retry_after)
        return json_response({"code": refused.code, "msg": refused.msg}, refused.status,
                             headers=headers)

    # -- orders --------------------------------------------------------------------------

    def _spec(self, params: dict[str, str]) -> InstrumentSpec:
        symbol = params.get("symbol")
        if not symbol:
            raise _missing("symbol")
        spec = self.hub.spec(self.protocol, symbol)
        if spec is None:
            raise Refused(-1121, "Invalid symbol.")
        return spec

    def order_request(self, params: dict[str, str]) -> OrderRequest:
        """A place request's params as an order (Refused for bad ones)."""
        spec = self._spec(params)
        side, kind = params.get("side"), params.get("type")
        if side not in ("BUY", "SELL"):
            raise Refused(-1117, "Invalid side.") if side else _missing("side")
        if kind not in ("LIMIT", "MARKET"):
            raise Refused(-1116, "Invalid orderType.") if kind else _missing("type")
        qty = _decimal(params, "quantity")
        price, tif = None, "IOC"
        if kind == "LIMIT":
            price, tif = _decimal(params, "price"), params.get("timeInForce", "")
            if tif not in _TIFS:
                raise Refused(-1115, "Invalid timeInForce.") if tif else _missing(
                    "timeInForce")
        cloid = params.get("newClientOrderId") or f"paper-{secrets.token_hex(8)}"
        return OrderRequest(self.protocol, spec.symbol, cloid, qty if side == "BUY" else -qty,
                            price, kind.lower(), tif, params.get("reduceOnly") == "true")

    async def place(self, params: dict[str, str]) -> dict[str, Any]:
        request = self.order_request(params)
        answer = (await self.hub.request(self.protocol, RequestKind.PLACE, request)).answer
        return self._answer(answer)

    def _ids(self, params: dict[str, str]) -> tuple[str | None, str | None]:
        oid, cloid = params.get("orderId"), params.get("origClientOrderId")
        if not oid and not cloid:
            raise Refused(-1102, "Either orderId or origClientOrderId must be sent.")
        return (None, oid) if oid else (cloid, None)

    async def cancel(self, params: dict[str, str]) -> dict[str, Any]:
        spec = self._spec(params)
        cloid, oid = self._ids(params)
        outcome = await self.hub.request(self.protocol, RequestKind.CANCEL,
                                         CancelRequest(self.protocol, spec.symbol, cloid, oid))
        return self._answer(outcome.answer)

    async def modify(self, params: dict[str, str]) -> dict[str, Any]:
        spec = self._spec(params)
        cloid, oid = self._ids(params)
        side = params.get("side")
        if side not in ("BUY", "SELL"):
            raise _missing("side")
        qty, price = _decimal(params, "quantity"), _decimal(params, "price")
        amend = AmendRequest(self.protocol, spec.symbol, cloid, oid, price,
                             qty if side == "BUY" else -qty)
        outcome = await self.hub.request(self.protocol, RequestKind.AMEND, amend)
        return self._answer(outcome.answer, modify=True)

    async def batch(self, params: dict[str, str]) -> list[dict[str, Any]]:
        try:
            items = orjson.loads(params.get("batchOrders") or "")
        except orjson.JSONDecodeError:
            raise _missing("batchOrders") from None
        if not isinstance(items, list) or not 1 <= len(items) <= 5:
            raise Refused(-1102, "Param 'batchOrders' must contain 1 to 5 orders.")
        out = []
        for item in items:
            try:
                out.append(await self.place({k: str(v) for k, v in item.items()}))
            except Refused as refused:
                out.append({"code": refused.code, "msg": refused.msg})
        return out

    async def cancel_all(self, params: dict[str, str]) -> dict[str, Any]:
        spec = self._spec(params)
        await self.hub.request(self.protocol, RequestKind.CANCEL_ALL, spec.symbol)
        return {"code": 200, "msg": "The operation of cancel all open order is done."}

    async def countdown(self, params: dict[str, str]) -> dict[str, Any]:
        spec = self._spec(params)
        try:
            countdown = int(params["countdownTime"])
        except (KeyError, ValueError):
            raise _missing("countdownTime") from None
        self.hub.arm_dead_man(self.protocol, spec.symbol, countdown)
        return {"symbol": spec.symbol, "countdownTime": str(countdown)}

    def _answer(self, update: OrderUpdate, *, modify: bool = False) -> dict[str, Any]:
        if update.kind in (OrderEventKind.REJECT, OrderEventKind.CANCEL_REJECT,
                           OrderEventKind.AMEND_REJECT):
            code = int(update.code or -1000)
            if modify and code == -2011:
                raise Refused(-2013, "Order does not exist.")
            raise Refused(code, update.reason)
        spec = self.hub.spec(self.protocol, update.symbol)
        assert spec is not None
        return self.order_object(update, spec)

    def order_object(self, update: OrderUpdate, spec: InstrumentSpec) -> dict[str, Any]:
        """An order as Binance's order endpoints show it."""
        kind = "MARKET" if update.price is None else "LIMIT"
        t = ms(update.exchange_ts)
        qty = spec.quantity_precision
        return {"orderId": int(update.oid or 0), "symbol": update.symbol,
                "status": _STATUS.get(update.status, "NEW"),
                "clientOrderId": update.cloid or "",
                "price": _text(update.price or Decimal(0), spec.price_precision),
                "avgPrice": "0.00", "origQty": _text(abs(update.amount), qty),
                "executedQty": _text(desk_filled(update), qty),
                "cumQty": _text(desk_filled(update), qty),
                "cumQuote": "0", "timeInForce": update.tif or "GTC", "type": kind,
                "origType": kind, "reduceOnly": update.reduce_only, "closePosition": False,
                "side": "BUY" if update.amount > 0 else "SELL", "positionSide": "BOTH",
                "stopPrice": "0", "workingType": "CONTRACT_PRICE", "priceProtect": False,
                "priceMatch": "NONE", "selfTradePreventionMode": "NONE",
                "goodTillDate": 0, "time": t, "updateTime": t}

    # -- account snapshots ---------------------------------------------------------------

    async def open_orders(self, params: dict[str, str]) -> list[dict[str, Any]]:
        told, symbol = self.hub.told(self.protocol), params.get("symbol")
        out = []
        for update in told.orders.values():
            spec = self.hub.spec(self.protocol, update.symbol)
            if spec is not None and symbol in (None, update.symbol):
                out.append(self.order_object(update, spec))
        return out

    async def query(self, params: dict[str, str]) -> dict[str, Any]:
        spec = self._spec(params)
        cloid, oid = self._ids(params)
        found = self.hub.told(self.protocol).find(cloid, oid)
        if found is None or found.symbol != spec.symbol:
            raise Refused(-2013, "Order does not exist.")
        return self.order_object(found, spec)

    async def position_risk(self, params: dict[str, str]) -> list[dict[str, Any]]:
        told, marks = self.hub.told(self.protocol), self.hub.marks(self.protocol)
        return [self._position(told, symbol, marks.get(symbol, float("nan")))
                for symbol in self.hub.desk.markets(self.protocol)
                if params.get("symbol") in (None, symbol)]

    def _position(self, told: Told, symbol: str, mark: float) -> dict[str, Any]:
        pos = told.positions.get(symbol)
        amount, entry = (pos.amount, pos.entry) if pos is not None else (Decimal(0),
                                                                         Decimal(0))
        mark_text = "0" if mark != mark else repr(mark)
        return {"symbol": symbol, "positionAmt": format(amount, "f"),
                "entryPrice": format(entry, "f"), "breakEvenPrice": format(entry, "f"),
                "markPrice": mark_text, "unRealizedProfit": format(
                    told.unrealized(symbol, mark), "f"),
                "liquidationPrice": "0", "leverage": "20", "maxNotionalValue": "1000000",
                "marginType": "cross", "isolatedMargin": "0", "isAutoAddMargin": "false",
                "positionSide": "BOTH", "notional": "0", "isolatedWallet": "0",
                "updateTime": ms(told.fill_ns.get(symbol, 0))}

    async def balance(self, params: dict[str, str]) -> list[dict[str, Any]]:
        told, marks = self.hub.told(self.protocol), self.hub.marks(self.protocol)
        upnl = sum((told.unrealized(s, m) for s, m in marks.items()), Decimal(0))
        wallet = format(told.wallet, "f")
        return [{"accountAlias": "paper", "asset": "USDT", "balance": wallet,
                 "crossWalletBalance": wallet, "crossUnPnl": format(upnl, "f"),
                 "availableBalance": format(told.wallet + upnl, "f"),
                 "maxWithdrawAmount": wallet, "marginAvailable": True,
                 "updateTime": ms(told.as_of_ns)}]

    # -- listen key ----------------------------------------------------------------------

    async def new_listen_key(self, request: web.Request) -> web.Response:
        try:
            self.check_key(request.headers.get("X-MBX-APIKEY"))
        except Refused as refused:
            return self._refusal(refused)
        if self.listen_key is None:
            self.listen_key = secrets.token_urlsafe(48)[:64]
        return json_response({"listenKey": self.listen_key})

    async def keep_listen_key(self, request: web.Request) -> web.Response:
        try:
            self.check_key(request.headers.get("X-MBX-APIKEY"))
            if self.listen_key is None:
                raise Refused(-1125, "This listenKey does not exist.")
        except Refused as refused:
            return self._refusal(refused)
        return json_response({"listenKey": self.listen_key})

    async def close_listen_key(self, request: web.Request) -> web.Response:
        try:
            self.check_key(request.headers.get("X-MBX-APIKEY"))
        except Refused as refused:
            return self._refusal(refused)
        self.listen_key = None
        for session in list(self._users):
            session.reply({"e": "listenKeyExpired", "E": ms(self.hub.send_ns())})
        return json_response({})

    # -- sockets -------------------------------------------------------------------------

    async def order_socket(self, request: web.Request) -> web.WebSocketResponse:
        def make(ws: web.WebSocketResponse, faults: SessionFaults, name: str) -> Session:
            return _OrderSession(ws, self, faults, name)

        return await serve_private(self.context, request, "binance-orders", make)

    async def user_socket(self, request: web.Request) -> web.WebSocketResponse | web.Response:
        key = request.match_info.get("listen_key") or request.query.get("listenKey")
        if self.listen_key is None or key != self.listen_key:
            return json_response({"code": -1125, "msg": "This listenKey does not exist."}, 400)

        def make(ws: web.WebSocketResponse, faults: SessionFaults, name: str) -> Session:
            return _UserSession(ws, self, faults, name)

        return await serve_private(self.context, request, "binance-user", make)

    def attach(self, session: Session, on: bool) -> None:
        if on:
            self._users[session] = None
        else:
            self._users.pop(session, None)

    # -- the user stream -----------------------------------------------------------------

    def listeners(self) -> int:
        """Open user streams of the account."""
        return len(self._users)

    def stream(self, delivery: Delivery, told: Told) -> None:
        exec_type = _EXEC.get(delivery.update.kind)
        if exec_type is None or not self._users:
            return
        spec = self.hub.spec(self.protocol, delivery.update.symbol)
        assert spec is not None
        events = [self._order_event(delivery, exec_type, spec)]
        if delivery.fill is not None:
            events.append(self._account_event(delivery.fill, told))
        for session in self._users:
            for event in events:
                session.push_private(event)

    def _order_event(self, delivery: Delivery, exec_type: str,
                     spec: InstrumentSpec) -> dict[str, Any]:
        update, fill = delivery.update, delivery.fill
        t = ms(update.exchange_ts)
        order = self.order_object(update, spec)
        price, qty = spec.price_precision, spec.quantity_precision
        last = {"l": _text(fill.size, qty), "L": _text(fill.price, price), "t": int(fill.trade_id),
                "n": format(fill.fee, "f"), "N": fill.fee_asset, "m": fill.is_maker} if fill \
            else {"l": "0", "L": "0", "t": 0, "n": "0", "N": "USDT", "m": False}
        return {"e": "ORDER_TRADE_UPDATE", "E": t, "T": t, "o": {
            "s": update.symbol, "c": order["clientOrderId"], "S": order["side"],
            "o": order["type"], "f": order["timeInForce"], "q": order["origQty"],
            "p": order["price"], "ap": "0", "sp": "0", "x": exec_type, "X": order["status"],
            "i": order["orderId"], "z": order["executedQty"], "T": t, "b": "0", "a": "0",
            "R": update.reduce_only, "wt": "CONTRACT_PRICE", "ot": order["type"],
            "ps": "BOTH", "cp": False, "rp": "0", "pP": False, "si": 0, "ss": 0,
            "V": "NONE", "pm": "NONE", "gtd": 0, **last}}

    def _account_event(self, fill: Fill, told: Told) -> dict[str, Any]:
        t = ms(fill.exchange_ts)
        pos = told.positions.get(fill.symbol)
        amount, entry = (pos.amount, pos.entry) if pos else (Decimal(0), Decimal(0))
        wallet = format(told.wallet, "f")
        return {"e": "ACCOUNT_UPDATE", "E": t, "T": t, "a": {
            "m": "ORDER", "B": [{"a": "USDT", "wb": wallet, "cw": wallet, "bc": "0"}],
            "P": [{"s": fill.symbol, "pa": format(amount, "f"), "ep": format(entry, "f"),
                   "bep": format(entry, "f"), "cr": "0",
                   "up": format(told.unrealized(fill.symbol, float(fill.price)), "f"),
                   "mt": "cross", "iw": "0", "ps": "BOTH", "ma": "USDT"}]}}


class _UserSession(Session):
    """A user-stream socket: nothing to read, deliveries to write."""

    def __init__(self, ws: web.WebSocketResponse, private: BinancePrivate,
                 faults: SessionFaults, name: str) -> None:
        super().__init__(ws, private.context.hub, faults, name)
        self._private = private

    async def serve(self) -> None:
        self._private.attach(self, True)
        try:
            await super().serve()
        finally:
            self._private.attach(self, False)

    def handle(self, message: Any) -> None:
        """The user stream takes no requests."""


class _OrderSession(Session):
    """A WS API socket: each request answered in turn."""

    def __init__(self, ws: web.WebSocketResponse, private: BinancePrivate,
                 faults: SessionFaults, name: str) -> None:
        super().__init__(ws, private.context.hub, faults, name)
        self._private = private

    def handle(self, message: Any) -> None:
        self._private.hub.received()
        self.spawn(self._answer(message))

    async def _answer(self, message: Any) -> None:
        private = self._private
        ident = message.get("id") if isinstance(message, dict) else None
        try:
            result = await self._run(message)
        except Refused as refused:
            error: dict[str, Any] = {"code": refused.code, "msg": refused.msg}
            if refused.retry_after is not None:
                error["data"] = {"retryAfter": refused.retry_after * 1000}
            self.reply({"id": ident, "status": refused.status, "error": error,
                        "rateLimits": private.rate_limits()})
            return
        self.reply({"id": ident, "status": 200, "result": result,
                    "rateLimits": private.rate_limits()})

    async def _run(self, message: Any) -> dict[str, Any]:
        private = self._private
        method = message.get("method") if isinstance(message, dict) else None
        params = message.get("params") if isinstance(message, dict) else None
        ops = {"order.place": (private.place, "place"), "order.cancel": (private.cancel, "cancel"),
               "order.modify": (private.modify, "modify")}
        if method not in ops or not isinstance(params, dict):
            raise Refused(-1102, f"Unknown method or params for {str(method)[:40]!r}.")
        secret = private.check_key(params.get("apiKey"))
        if not binance_ws_ok(secret, params):
            raise Refused(-1022, "Signature for this request is not valid.")
        private.check_time(params)
        op, what = ops[method]
        private.spend(what)
        return await op({k: v if isinstance(v, str) else str(v).lower() if isinstance(
            v, bool) else str(v) for k, v in params.items() if k != "signature"})
