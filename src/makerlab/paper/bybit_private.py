"""Bybit v5 (linear) private protocol on the paper exchange (under ``/bybit``).

- **REST** (headers ``X-BAPI-API-KEY``, ``X-BAPI-TIMESTAMP``, ``X-BAPI-RECV-WINDOW``,
  ``X-BAPI-SIGN`` = HMAC of ``timestamp + key + recvWindow + (query | body)``):
  ``POST /v5/order/create``, ``/amend``, ``/cancel``, ``/create-batch`` (≤ 10),
  ``/cancel-all`` (a symbol or ``settleCoin``), ``/disconnected-cancel-all`` (DCP:
  ``timeWindow`` 3 to 300 s); ``GET /v5/order/realtime``, ``/v5/position/list``,
  ``/v5/account/wallet-balance``. Answers in the ``{"retCode", "retMsg", "result",
  "retExtInfo", "time"}`` envelope.
- **trade socket** ``/v5/trade``: ``{"op": "auth", "args": [key, expires, sign]}`` then
  ``order.create`` / ``order.amend`` / ``order.cancel`` (``{"reqId", "header", "op",
  "args"}`` → ``{"reqId", "retCode", "retMsg", "op", "data", "header", "connId"}``).
- **private stream** ``/v5/private``: the same ``auth``, then ``subscribe`` to ``order``,
  ``execution``, ``position``, ``wallet`` (a fill sends ``execution``, ``order``,
  ``position`` and ``wallet`` in that order); ``ping`` → ``pong``.
- **post-only** as on Bybit: a ``PostOnly`` order that would cross is accepted, then
  cancelled (``orderStatus`` ``Cancelled``, ``rejectReason``
  ``EC_PostOnlyWillTakeLiquidity``). Other refusals are answers: ``10001`` (tick, lot,
  minimum size, time in force, nothing to amend), ``110094`` (min notional), ``110017``
  (reduce-only), ``110072`` (duplicate ``orderLinkId``), ``110001`` (unknown order);
  ``10003`` (unknown key), ``10004`` (bad signature), ``10002`` (timestamp outside
  ``recvWindow``), ``10006`` (rate limit: 10 requests per second per order endpoint).
- **rate-limit headers** ``X-Bapi-Limit``, ``X-Bapi-Limit-Status``,
  ``X-Bapi-Limit-Reset-Timestamp`` (and in the trade socket's answer header).
- **DCP**: when every private socket of the account is closed for ``timeWindow``
  seconds (wall time), its orders are cancelled.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
from collections.abc import Awaitable, Callable
from decimal import Decimal, InvalidOperation
from typing import Any
from urllib.parse import parse_qsl

import orjson
from aiohttp import web

from makerlab.core.events import OrderEventKind, OrderUpdate
from makerlab.core.instruments import InstrumentSpec
from makerlab.paper.auth import bybit_rest_ok, bybit_ws_ok
from makerlab.paper.desk import Delivery, RequestKind
from makerlab.paper.limits import Budget
from makerlab.paper.private import PrivateHub, Told, desk_filled, serve_private
from makerlab.paper.session import Session, SessionFaults
from makerlab.paper.venue import VenueContext, json_response, ms
from makerlab.sim.matching import REJECT_HALTED
from makerlab.trading.protocols import AmendRequest, CancelRequest, OrderRequest
from makerlab.units import NS_PER_S

__all__ = ["BybitPrivate"]

_STATUS = {"NEW": "New", "PARTIAL": "PartiallyFilled", "FILLED": "Filled",
           "CANCELLED": "Cancelled", "REJECTED": "Rejected"}
_TIFS = {"GTC": "GTC", "IOC": "IOC", "FOK": "FOK", "PostOnly": "GTX"}
_WIRE_TIF = {"GTX": "PostOnly", "ALO": "PostOnly", "POST_ONLY": "PostOnly"}
_STREAMED = frozenset({OrderEventKind.ACK, OrderEventKind.FILL, OrderEventKind.CANCEL_ACK,
                       OrderEventKind.EXPIRE, OrderEventKind.AMEND_ACK})
_POST_ONLY_CROSS = "-5022"
# the engine's refusals (Binance codes) as Bybit's
_CODES = {"-4014": (10001, "params error: price is not a multiple of the tick size"),
          "-1111": (10001, "params error: qty is not a multiple of the qty step"),
          "-4003": (10001, "The number of contracts exceeds minimum limit allowed"),
          "-4164": (110094, "Order does not meet minimum order value"),
          "-2022": (110017, "Reduce-only rule not satisfied"),
          "-4015": (110072, "OrderLinkedID is duplicate"),
          "-2011": (110001, "Order does not exist"),
          "-5027": (10001, "The order remains unchanged as the parameters entered match "
                           "the existing ones."),
          "-1115": (10001, "params error: timeInForce invalid"),
          "-2010": (10001, "params error: no market price for a market order")}
_TRADE_OPS = {"order.create": "create", "order.amend": "amend", "order.cancel": "cancel"}
_ORDER_PATHS = ("create", "amend", "cancel", "create-batch", "cancel-all",
                "disconnected-cancel-all")


class Refused(Exception):
    """A refusal: Bybit's ``retCode`` and ``retMsg`` (HTTP ``status``; the rate-limit
    ``headers`` of a ``10006``)."""

    def __init__(self, code: int, msg: str, status: int = 200,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(f"{code} {msg}")
        self.code, self.msg, self.status = code, msg, status
        self.headers = headers or {}


def _decimal(params: dict[str, Any], name: str) -> Decimal:
    try:
        value = Decimal(str(params[name]))
    except (KeyError, InvalidOperation):
        raise Refused(10001, f"params error: {name} invalid") from None
    if not value.is_finite() or value <= 0:
        raise Refused(10001, f"params error: {name} invalid")
    return value


def _text(value: Decimal, places: int) -> str:
    return format(value.quantize(Decimal(1).scaleb(-places)), "f")


class BybitPrivate:
    """The private side of the ``bybit`` protocol (see the module docstring)."""

    protocol = "bybit"

    def __init__(self, context: VenueContext, hub: PrivateHub) -> None:
        self.context, self.hub = context, hub
        self._users: dict[Session, None] = {}
        self._sockets = 0  # open private and trade sockets (DCP)
        self._dcp_s = 0
        self._dcp_task: asyncio.Task[None] | None = None
        self._budgets: dict[str, Budget] = {}
        hub.add_streamer(self.protocol, self)

    def routes(self) -> list[web.RouteDef]:
        table = [web.post(f"/v5/order/{name}", self._rest(name)) for name in _ORDER_PATHS]
        return [*table,
                web.get("/v5/order/realtime", self._rest("realtime")),
                web.get("/v5/position/list", self._rest("positions")),
                web.get("/v5/account/wallet-balance", self._rest("wallet")),
                web.get("/v5/trade", self.trade_socket),
                web.get("/v5/private", self.private_socket)]

    # -- authentication ------------------------------------------------------------------

    def check_key(self, key: object) -> str:
        creds = self.hub.credentials(self.protocol)
        if creds is None or key != creds.key:
            raise Refused(10003, "API key is invalid.")
        return creds.secret

    def check_time(self, stamp: object, window: object) -> None:
        try:
            stamp_ms, window_ms = int(str(stamp)), int(str(window or 5000))
        except ValueError:
            raise Refused(10002, "invalid request, please check your server timestamp or "
                                 "recv_window param") from None
        now = self.hub.client_ms()
        if stamp_ms > now + 1000 or now - stamp_ms > window_ms:
            raise Refused(10002, "invalid request, please check your server timestamp or "
                                 "recv_window param")

    async def _signed(self, request: web.Request) -> dict[str, Any]:
        headers = request.headers
        if "X-BAPI-API-KEY" not in headers or "X-BAPI-SIGN" not in headers:
            raise Refused(10003, "API key is invalid.", 401)
        secret = self.check_key(headers["X-BAPI-API-KEY"])
        body = (await request.read()).decode()
        payload = request.rel_url.raw_query_string if request.method == "GET" else body
        window = headers.get("X-BAPI-RECV-WINDOW", "5000")
        if not bybit_rest_ok(secret, headers.get("X-BAPI-TIMESTAMP", ""),
                             headers["X-BAPI-API-KEY"], window, payload,
                             headers.get("X-BAPI-SIGN")):
            raise Refused(10004, "error sign! origin_string[...]")
        self.check_time(headers.get("X-BAPI-TIMESTAMP"), window)
        if request.method == "GET":
            return dict(parse_qsl(request.rel_url.raw_query_string))
        try:
            params = orjson.loads(body or b"{}")
        except orjson.JSONDecodeError:
            raise Refused(10001, "params error: the body is not JSON") from None
        if not isinstance(params, dict):
            raise Refused(10001, "params error: the body is not a JSON object")
        return params

    # -- budgets -------------------------------------------------------------------------

    def spend(self, endpoint: str) -> dict[str, str]:
        """Spend one request of ``endpoint``'s per-second budget; its limit headers."""
        budget = self._budgets.setdefault(endpoint, Budget(10, NS_PER_S))
        now = self.hub.send_ns()
        if not budget.allows(now):  # with the headers, as Bybit: when the window resets
            raise Refused(10006, "Too many visits. Exceeded the API Rate Limit.",
                          headers=self._limit_headers(budget, now))
        budget.spend(now)
        return self._limit_headers(budget, now)

    def _limit_headers(self, budget: Budget, now: int) -> dict[str, str]:
        return {"X-Bapi-Limit": str(budget.limit),
                "X-Bapi-Limit-Status": str(budget.limit - budget.count(now)),
                "X-Bapi-Limit-Reset-Timestamp": str(ms(budget.reset_ns(now))),
                "Timenow": str(ms(now))}

    # -- REST plumbing -------------------------------------------------------------------

    def _envelope(self, result: Any, code: int = 0, msg: str = "OK",
                  ext: Any = None) -> dict[str, Any]:
        return {"retCode": code, "retMsg": msg, "result": result, "retExtInfo": ext or {},
                "time": ms(self.hub.send_ns())}

    def _rest(self, name: str) -> Callable[[web.Request], Awaitable[web.Response]]:
        counted = name in _ORDER_PATHS

        async def handler(request: web.Request) -> web.Response:
            if counted:
                self.hub.received()
            headers: dict[str, str] = {}
            try:
                params = await self._signed(request)
                headers = self.spend(name)
                body = await self._operation(name, params)
            except Refused as refused:
                return json_response(self._envelope({}, refused.code, refused.msg),
                                     refused.status, headers=refused.headers or headers)
            return json_response(body, headers=headers)

        return handler

    async def _operation(self, name: str, params: dict[str, Any]) -> dict[str, Any]:
        ops: dict[str, Callable[[dict[str, Any]], Awaitable[Any]]] = {
            "create": self.create, "amend": self.amend, "cancel": self.cancel,
            "create-batch": self.create_batch, "cancel-all": self.cancel_all,
            "disconnected-cancel-all": self.dcp, "realtime": self.open_orders,
            "positions": self.positions, "wallet": self.wallet}
        result = await ops[name](params)
        if name == "create-batch":
            results, infos = result
            return self._envelope({"list": results}, ext={"list": infos})
        return self._envelope(result)

    # -- orders --------------------------------------------------------------------------

    def _spec(self, params: dict[str, Any]) -> InstrumentSpec:
        if params.get("category") != "linear":
            raise Refused(10001, "params error: the paper exchange trades category=linear")
        spec = self.hub.spec(self.protocol, str(params.get("symbol", "")))
        if spec is None:
            raise Refused(10001, "params error: symbol invalid")
        return spec

    def order_request(self, params: dict[str, Any]) -> OrderRequest:
        spec = self._spec(params)
        side, kind = params.get("side"), params.get("orderType")
        if side not in ("Buy", "Sell") or kind not in ("Limit", "Market"):
            raise Refused(10001, "params error: side or orderType invalid")
        qty = _decimal(params, "qty")
        price, tif = None, "IOC"
        if kind == "Limit":
            price = _decimal(params, "price")
            tif = _TIFS.get(str(params.get("timeInForce", "GTC")), "")
            if not tif:
                raise Refused(10001, "params error: timeInForce invalid")
        cloid = str(params.get("orderLinkId") or f"paper-{secrets.token_hex(8)}")
        return OrderRequest(self.protocol, spec.symbol, cloid, qty if side == "Buy" else -qty,
                            price, kind.lower(), tif, bool(params.get("reduceOnly", False)))

    async def create(self, params: dict[str, Any]) -> dict[str, Any]:
        outcome = await self.hub.request(self.protocol, RequestKind.PLACE,
                                         self.order_request(params))
        return self._answer(outcome.answer)

    def _ids(self, params: dict[str, Any]) -> tuple[str | None, str | None]:
        oid, cloid = params.get("orderId"), params.get("orderLinkId")
        if not oid and not cloid:
            raise Refused(10001, "params error: orderId or orderLinkId is required")
        return (None, str(oid)) if oid else (str(cloid), None)

    async def cancel(self, params: dict[str, Any]) -> dict[str, Any]:
        spec = self._spec(params)
        cloid, oid = self._ids(params)
        outcome = await self.hub.request(self.protocol, RequestKind.CANCEL,
                                         CancelRequest(self.protocol, spec.symbol, cloid, oid))
        return self._answer(outcome.answer)

    async def amend(self, params: dict[str, Any]) -> dict[str, Any]:
        spec = self._spec(params)
        cloid, oid = self._ids(params)
        order = self._find(cloid, oid)
        qty = _decimal(params, "qty") if "qty" in params else None
        price = _decimal(params, "price") if "price" in params else None
        amount = None if qty is None else qty if order is None or order.amount > 0 else -qty
        outcome = await self.hub.request(self.protocol, RequestKind.AMEND, AmendRequest(
            self.protocol, spec.symbol, cloid, oid, price, amount))
        return self._answer(outcome.answer)

    def _find(self, cloid: str | None, oid: str | None) -> OrderUpdate | None:
        """The order as last told (an amend's qty is unsigned: the side is the order's)."""
        for update in self.hub.told(self.protocol).orders.values():
            if (cloid is not None and update.cloid == cloid) or update.oid == oid:
                return update
        return None

    async def create_batch(self, params: dict[str, Any]
                           ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        items = params.get("request")
        if not isinstance(items, list) or not 1 <= len(items) <= 10:
            raise Refused(10001, "params error: request must hold 1 to 10 orders")
        results, infos = [], []
        for item in items:
            try:
                result = await self.create({"category": params.get("category"), **item})
                results.append({"category": "linear", "symbol": item.get("symbol"),
                                **result, "createAt": str(ms(self.hub.send_ns()))})
                infos.append({"code": 0, "msg": "OK"})
            except Refused as refused:
                results.append({"category": "linear", "symbol": item.get("symbol"),
                                "orderId": "", "orderLinkId": item.get("orderLinkId", ""),
                                "createAt": ""})
                infos.append({"code": refused.code, "msg": refused.msg})
        return results, infos

    async def cancel_all(self, params: dict[str, Any]) -> dict[str, Any]:
        symbol = None
        if params.get("symbol"):
            symbol = self._spec(params).symbol
        elif params.get("category") != "linear" or not params.get("settleCoin"):
            raise Refused(10001, "params error: symbol or settleCoin is required")
        outcome = await self.hub.request(self.protocol, RequestKind.CANCEL_ALL, symbol)
        return {"list": [{"orderId": a.oid, "orderLinkId": a.cloid or ""}
                         for a in outcome.answers], "success": "1"}

    async def dcp(self, params: dict[str, Any]) -> dict[str, Any]:
        try:
            window = int(params["timeWindow"])
        except (KeyError, TypeError, ValueError):
            raise Refused(10001, "params error: timeWindow invalid") from None
        if not 3 <= window <= 300:
            raise Refused(10001, "params error: timeWindow must be 3 to 300 seconds")
        self._dcp_s = window
        return {}

    def _answer(self, update: OrderUpdate) -> dict[str, Any]:
        refused = update.kind in (OrderEventKind.REJECT, OrderEventKind.CANCEL_REJECT,
                                  OrderEventKind.AMEND_REJECT)
        if refused and not (update.kind is OrderEventKind.REJECT and
                            update.code == _POST_ONLY_CROSS):
            code, msg = _CODES.get(update.code, (10001, update.reason))
            if f"{update.code} {update.reason}" == REJECT_HALTED:
                code, msg = 10027, "Transactions are banned: trading halted by the venue"
            raise Refused(code, msg)
        return {"orderId": update.oid or "", "orderLinkId": update.cloid or ""}

    # -- account snapshots ---------------------------------------------------------------

    async def open_orders(self, params: dict[str, Any]) -> dict[str, Any]:
        """Open orders; with ``orderId``/``orderLinkId`` one order, recently closed ones
        included (an empty list: unknown)."""
        told, symbol = self.hub.told(self.protocol), params.get("symbol")
        if params.get("orderId") or params.get("orderLinkId"):
            found = told.find(params.get("orderLinkId") or None, params.get("orderId") or None)
            rows = [] if found is None else [self.order_row(found)]
        else:
            rows = [self.order_row(u) for u in told.orders.values()
                    if symbol in (None, u.symbol)]
        return {"category": "linear", "list": rows, "nextPageCursor": ""}

    async def positions(self, params: dict[str, Any]) -> dict[str, Any]:
        told, marks = self.hub.told(self.protocol), self.hub.marks(self.protocol)
        rows = [self.position_row(told, s, marks.get(s, float("nan")))
                for s in self.hub.desk.markets(self.protocol)
                if params.get("symbol") in (None, s)]
        return {"category": "linear", "list": rows, "nextPageCursor": ""}

    async def wallet(self, params: dict[str, Any]) -> dict[str, Any]:
        told, marks = self.hub.told(self.protocol), self.hub.marks(self.protocol)
        return {"list": [self.wallet_row(told, marks)]}

    def order_row(self, update: OrderUpdate, reject_reason: str = "EC_NoError"
                  ) -> dict[str, Any]:
        spec = self.hub.spec(self.protocol, update.symbol)
        assert spec is not None
        price, qty = spec.price_precision, spec.quantity_precision
        t = str(ms(update.exchange_ts))
        status = _STATUS.get(update.status, "New")
        if reject_reason != "EC_NoError":
            status = "Cancelled"
        left = abs(update.amount) - desk_filled(update) if status in ("New", "PartiallyFilled") \
            else Decimal(0)
        return {"category": "linear", "symbol": update.symbol, "orderId": update.oid or "",
                "orderLinkId": update.cloid or "", "side": "Buy" if update.amount > 0 else
                "Sell", "orderType": "Market" if update.price is None else "Limit",
                "price": _text(update.price or Decimal(0), price),
                "qty": _text(abs(update.amount), qty), "orderStatus": status,
                "cancelType": "CancelByUser" if update.kind is OrderEventKind.CANCEL_ACK
                else "UNKNOWN",
                "rejectReason": reject_reason, "avgPrice": "0",
                "leavesQty": _text(left, qty), "cumExecQty": _text(desk_filled(update), qty),
                "cumExecValue": "0", "cumExecFee": "0",
                "timeInForce": _WIRE_TIF.get(update.tif, update.tif or "GTC"),
                "reduceOnly": update.reduce_only, "positionIdx": 0,
                "createdTime": t, "updatedTime": t}

    def position_row(self, told: Told, symbol: str, mark: float) -> dict[str, Any]:
        pos = told.positions.get(symbol)
        amount, entry = (pos.amount, pos.entry) if pos else (Decimal(0), Decimal(0))
        side = "Buy" if amount > 0 else "Sell" if amount < 0 else ""
        t = str(ms(told.fill_ns.get(symbol, 0)))
        return {"positionIdx": 0, "symbol": symbol, "side": side, "size": format(abs(amount),
                                                                                 "f"),
                "avgPrice": format(entry, "f"), "entryPrice": format(entry, "f"),
                "markPrice": "0" if mark != mark else repr(mark),
                "unrealisedPnl": format(told.unrealized(symbol, mark), "f"),
                "positionValue": "0", "leverage": "10", "tradeMode": 0,
                "positionStatus": "Normal", "createdTime": t, "updatedTime": t}

    def wallet_row(self, told: Told, marks: dict[str, float]) -> dict[str, Any]:
        upnl = sum((told.unrealized(s, m) for s, m in marks.items()), Decimal(0))
        equity = told.wallet + upnl
        # a unified cross-margin account as the references show it since 9 Jan 2025: the
        # coin's availableToWithdraw is deprecated (""), the account's totalAvailableBalance
        # (USD) is what orders may use; no margin is modelled here, so it is the wallet,
        # and USDT is worth one USD
        coin = {"coin": "USDT", "walletBalance": format(told.wallet, "f"),
                "equity": format(equity, "f"), "usdValue": format(equity, "f"),
                "unrealisedPnl": format(upnl, "f"), "availableToWithdraw": "",
                "totalPositionIM": "0", "totalOrderIM": "0", "locked": "0", "bonus": "0",
                "cumRealisedPnl": format(told.wallet - told.start, "f")}
        return {"accountType": "UNIFIED", "totalEquity": coin["equity"],
                "totalWalletBalance": coin["walletBalance"],
                "totalMarginBalance": coin["equity"],
                "totalAvailableBalance": coin["walletBalance"], "totalInitialMargin": "0",
                "totalMaintenanceMargin": "0", "coin": [coin]}

    # -- sockets -------------------------------------------------------------------------

    async def trade_socket(self, request: web.Request) -> web.WebSocketResponse:
        def make(ws: web.WebSocketResponse, faults: SessionFaults, name: str) -> Session:
            return _TradeSession(ws, self, faults, name)

        return await serve_private(self.context, request, "bybit-trade", make)

    async def private_socket(self, request: web.Request) -> web.WebSocketResponse:
        def make(ws: web.WebSocketResponse, faults: SessionFaults, name: str) -> Session:
            return _PrivateSession(ws, self, faults, name)

        return await serve_private(self.context, request, "bybit-private", make)

    def opened(self, on: bool) -> None:
        """A private or trade socket opened (or closed): DCP watches the count."""
        self._sockets += 1 if on else -1
        if on and self._dcp_task is not None:
            self._dcp_task.cancel()
            self._dcp_task = None
        elif not on and not self._sockets and self._dcp_s:
            self._dcp_task = asyncio.create_task(self._disconnected(self._dcp_s))

    async def _disconnected(self, window_s: int) -> None:
        await asyncio.sleep(window_s)
        self._dcp_task = None
        await self.hub.request(self.protocol, RequestKind.CANCEL_ALL, None)

    def subscribe_user(self, session: Session, on: bool) -> None:
        if on:
            self._users[session] = None
        else:
            self._users.pop(session, None)

    async def close(self) -> None:
        if self._dcp_task is not None:
            self._dcp_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._dcp_task

    # -- the private stream --------------------------------------------------------------

    def listeners(self) -> int:
        """Open user streams of the account."""
        return len(self._users)

    def stream(self, delivery: Delivery, told: Told) -> None:
        update = delivery.update
        cross = update.kind is OrderEventKind.REJECT and update.code == _POST_ONLY_CROSS
        if (update.kind not in _STREAMED and not cross) or not self._users:
            return
        t = ms(update.exchange_ts)
        reason = "EC_PostOnlyWillTakeLiquidity" if cross else "EC_NoError"
        messages = []
        if delivery.fill is not None:
            messages.append(self._message("execution", t, [self._execution(delivery)]))
        messages.append(self._message("order", t, [self.order_row(update, reason)]))
        if delivery.fill is not None:
            marks = {update.symbol: float(delivery.fill.price)}
            messages.append(self._message("position", t, [
                self.position_row(told, update.symbol, marks[update.symbol])]))
            messages.append(self._message("wallet", t, [self.wallet_row(told, marks)]))
        for session in self._users:
            for message in messages:
                session.push_private(message)

    def _message(self, topic: str, t: int, data: list[dict[str, Any]]) -> dict[str, Any]:
        return {"id": f"{topic}-{secrets.token_hex(6)}", "topic": topic, "creationTime": t,
                "data": data}

    def _execution(self, delivery: Delivery) -> dict[str, Any]:
        fill, update = delivery.fill, delivery.update
        assert fill is not None
        spec = self.hub.spec(self.protocol, fill.symbol)
        assert spec is not None
        return {"category": "linear", "symbol": fill.symbol, "execId": fill.trade_id,
                "execPrice": _text(fill.price, spec.price_precision),
                "execQty": _text(fill.size, spec.quantity_precision),
                "execFee": format(fill.fee, "f"), "feeCurrency": fill.fee_asset,
                "execType": "Trade", "execValue": format(fill.price * fill.size, "f"),
                "side": "Buy" if fill.side > 0 else "Sell", "orderId": update.oid or "",
                "orderLinkId": update.cloid or "", "isMaker": fill.is_maker,
                "orderPrice": _text(update.price or Decimal(0), spec.price_precision),
                "orderQty": _text(abs(update.amount), spec.quantity_precision),
                "leavesQty": _text(abs(update.amount) - desk_filled(update),
                                   spec.quantity_precision),
                "execTime": str(ms(fill.exchange_ts)), "seq": int(fill.trade_id)}


class _Authed(Session):
    """A Bybit private socket: ``auth`` first, then the socket's own ops."""

    def __init__(self, ws: web.WebSocketResponse, private: BybitPrivate,
                 faults: SessionFaults, name: str) -> None:
        super().__init__(ws, private.context.hub, faults, name)
        self.private = private
        self.authed = False
        self.conn_id = f"paper-{name.replace('#', '-')}"

    async def serve(self) -> None:
        self.private.opened(True)
        try:
            await super().serve()
        finally:
            self.private.opened(False)

    def authenticate(self, args: Any) -> tuple[int, str]:
        """``(retCode, retMsg)`` of an ``auth`` op."""
        try:
            key, expires, sign = args
            secret = self.private.check_key(key)
        except (TypeError, ValueError):
            return 10001, "Params Error"
        except Refused as refused:
            return refused.code, refused.msg
        if not bybit_ws_ok(secret, expires, sign):
            return 10004, "Invalid sign"
        if int(expires) <= self.private.hub.client_ms():
            return 10002, "Request expired"
        self.authed = True
        return 0, "OK"


class _PrivateSession(_Authed):
    """``/v5/private``: auth, subscribe, ping; then the account's messages."""

    def handle(self, message: Any) -> None:
        op = message.get("op") if isinstance(message, dict) else None
        if op == "auth":
            code, msg = self.authenticate(message.get("args"))
            self._ack("auth", code == 0, "" if code == 0 else msg)
        elif op == "ping":
            self.reply({"req_id": message.get("req_id", ""), "op": "pong",
                        "args": [str(self.private.hub.client_ms())], "conn_id": self.conn_id})
        elif op == "subscribe" and self.authed:
            self.private.subscribe_user(self, True)
            self._ack("subscribe", True, "")
        else:
            self._ack(str(op), False, "Request not authorized" if op == "subscribe" else
                      f"error:unknown op {str(op)[:40]}")

    def _ack(self, op: str, ok: bool, msg: str) -> None:
        self.reply({"success": ok, "ret_msg": msg, "op": op, "conn_id": self.conn_id})

    async def serve(self) -> None:
        try:
            await super().serve()
        finally:
            self.private.subscribe_user(self, False)


class _TradeSession(_Authed):
    """``/v5/trade``: auth, then orders answered in turn."""


    def handle(self, message: Any) -> None:
        op = message.get("op") if isinstance(message, dict) else None
        if op == "auth":
            code, msg = self.authenticate(message.get("args"))
            self.reply({"retCode": code, "retMsg": msg, "op": "auth", "connId": self.conn_id})
        elif op == "ping":
            self.reply({"retCode": 0, "retMsg": "OK", "op": "pong",
                        "data": [str(self.private.hub.client_ms())], "connId": self.conn_id})
        else:
            self.private.hub.received()
            self.spawn(self._order(message))

    async def _order(self, message: Any) -> None:
        op = message.get("op") if isinstance(message, dict) else None
        header: dict[str, str] = {}
        try:
            header, data = await self._run(op, message)
            code, msg = 0, "OK"
        except Refused as refused:
            data, code, msg, header = {}, refused.code, refused.msg, refused.headers
        self.reply({"reqId": message.get("reqId") if isinstance(message, dict) else None,
                    "retCode": code, "retMsg": msg, "op": op, "data": data,
                    "header": header, "connId": self.conn_id})

    async def _run(self, op: object, message: Any) -> tuple[dict[str, str], dict[str, Any]]:
        if not self.authed:
            raise Refused(10007, "User authentication failed.")
        if op not in _TRADE_OPS or not isinstance(message.get("args"), list) or \
                len(message["args"]) != 1 or not isinstance(message["args"][0], dict):
            raise Refused(10404, "op type is not found")
        head = message.get("header") or {}
        self.private.check_time(head.get("X-BAPI-TIMESTAMP"),
                                head.get("X-BAPI-RECV-WINDOW"))
        endpoint = _TRADE_OPS[str(op)]
        header = self.private.spend(endpoint)
        run = {"create": self.private.create, "amend": self.private.amend,
               "cancel": self.private.cancel}[endpoint]
        return header, await run(message["args"][0])

