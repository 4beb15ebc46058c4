"""Hyperliquid (perps) private protocol on the paper exchange (under ``/hyperliquid``).

Credentials: ``key`` is the account address, ``secret`` the private key of the API
wallet (agent) allowed to trade it; every action must be signed by that agent.

- **actions**: ``POST /exchange`` and the websocket ``post`` method (``{"method":
  "post", "id": n, "request": {"type": "action" | "info", "payload": ...}}`` →
  ``{"channel": "post", "data": {"id": n, "response": {"type": ..., "payload": ...}}}``):
  ``order`` (``Alo`` post-only, ``Gtc``, ``Ioc``; statuses ``resting`` / ``filled`` /
  ``error``), ``cancel``, ``cancelByCloid``, ``modify``, ``batchModify``,
  ``scheduleCancel`` (at least 5 s ahead, in exchange time; no ``time`` unsets it).
  Each is an L1 action whose EIP-712 signature must recover to the agent (source ``b``:
  the paper exchange is not mainnet) and whose nonce was not used before; otherwise
  ``{"status": "err", "response": "User or API Wallet 0x... does not exist."}`` or
  ``"Invalid nonce: duplicate nonce"``.
- **refusals** are Hyperliquid's strings: ``Post only order would have immediately
  matched, bbo was B@A. asset=N``, ``Price must be divisible by tick size.``, ``Order has
  invalid size.``, ``Order must have minimum value of $X.``, ``Reduce only order would
  increase position.``, ``Order could not immediately match against any resting orders.``
  (an IOC that found nothing), ``Order was never placed, already canceled, or filled.``
- **user streams** on ``/ws``: ``orderUpdates`` (``open``, ``filled``, ``canceled``),
  ``userFills`` (a first ``isSnapshot`` message, then each fill: ``crossed`` = taker),
  ``userEvents`` (channel ``user``: fills) and ``webData2`` (``clearinghouseState``,
  sent on subscribe and after each fill), for the configured account.
- **info** (``POST /info`` and ``post`` info requests): ``clearinghouseState``,
  ``openOrders``, ``frontendOpenOrders``, ``userFills``, ``orderStatus`` (one order,
  open or recently closed; ``unknownOid``). Order rows have the info reference's shapes:
  ``openOrders`` states the remaining ``sz`` only; ``frontendOpenOrders``, ``orderStatus``
  and the stream's orders add ``origSz``, the placed size.
- **rate limits**: 1200 weight per minute of exchange time, an action weighing
  1 + floor(orders / 40); past it HTTP 429 (``post``: an ``error`` response).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from decimal import Decimal, InvalidOperation
from typing import Any

import orjson
from aiohttp import web

from makerlab.core.events import Fill, OrderEventKind, OrderUpdate
from makerlab.paper.auth import hl_address, hl_signer
from makerlab.paper.desk import Delivery, RequestKind
from makerlab.paper.limits import Budget
from makerlab.paper.private import Outcome, PrivateHub, Told, desk_filled
from makerlab.paper.session import Session
from makerlab.paper.venue import VenueContext, json_response, ms
from makerlab.trading.protocols import AmendRequest, CancelRequest, OrderRequest
from makerlab.units import NS_PER_S

__all__ = ["PRIVATE_SUBSCRIPTIONS", "HyperliquidPrivate"]

PRIVATE_SUBSCRIPTIONS = frozenset({"orderUpdates", "userFills", "userEvents", "webData2"})
_TIFS = {"Alo": "ALO", "Gtc": "GTC", "Ioc": "IOC"}
_WIRE_TIFS = {"ALO": "Alo", "GTX": "Alo", "POST_ONLY": "Alo", "GTC": "Gtc", "IOC": "Ioc"}
_ERRORS = {"-4014": "Price must be divisible by tick size.",
           "-1111": "Order has invalid size.", "-4003": "Order has invalid size.",
           "-2022": "Reduce only order would increase position.",
           "-2011": "Order was never placed, already canceled, or filled.",
           "-4015": "Order has a duplicate cloid.",
           "-5027": "Modify would not change the order.",
           "-1115": "Invalid order type."}
_STATUS = {OrderEventKind.ACK: "open", OrderEventKind.AMEND_ACK: "open",
           OrderEventKind.CANCEL_ACK: "canceled", OrderEventKind.EXPIRE: "canceled"}
_NONCES = 100  # a signer's newest nonces remembered


class Bad(Exception):
    """A refused action: ``{"status": "err", "response": message}``."""


def _number(value: object) -> Decimal:
    try:
        number = Decimal(str(value))
    except InvalidOperation:
        raise Bad("Failed to deserialize the JSON body into the target type") from None
    if not number.is_finite() or number <= 0:
        raise Bad("Order has invalid price or size.")
    return number


def _text(value: Decimal) -> str:
    """Hyperliquid's numbers: no trailing zeros (``"100"``, ``"0.0014"``)."""
    text = format(value.normalize(), "f")
    return "0" if text in ("", "-0") else text


class HyperliquidPrivate:
    """The private side of the ``hyperliquid`` protocol (see the module docstring)."""

    protocol = "hyperliquid"

    def __init__(self, context: VenueContext, hub: PrivateHub, coins: list[str]) -> None:
        self.context, self.hub = context, hub
        self.assets = {coin: index for index, coin in enumerate(coins)}
        creds = hub.credentials(self.protocol)
        self.user = creds.key.lower() if creds else ""
        self.agent = hl_address(creds.secret) if creds else ""
        self._subscribers: dict[str, dict[Session, None]] = {
            kind: {} for kind in PRIVATE_SUBSCRIPTIONS}
        self._nonces: list[int] = []
        self._weight = Budget(1200, 60 * NS_PER_S)
        self._fills: list[dict[str, Any]] = []
        self._cloids = itertools.count(1)
        hub.add_streamer(self.protocol, self)

    def routes(self) -> list[web.RouteDef]:
        return [web.post("/exchange", self.exchange)]

    # -- /exchange -----------------------------------------------------------------------

    async def exchange(self, request: web.Request) -> web.Response:
        self.hub.received()
        try:
            body = orjson.loads(await request.read())
        except orjson.JSONDecodeError:
            return web.Response(status=422, text="Failed to deserialize the JSON body into "
                                                 "the target type")
        if not self._weight.allows(self.hub.send_ns(), self._weight_of(body)):
            return web.Response(status=429, text="Too many requests")
        return json_response(await self.act(body))

    @staticmethod
    def _weight_of(body: Any) -> int:
        action = body.get("action") if isinstance(body, dict) else None
        orders = action.get("orders", []) if isinstance(action, dict) else []
        return 1 + len(orders if isinstance(orders, list) else []) // 40

    async def act(self, body: Any) -> dict[str, Any]:
        """One signed action's answer (``{"status": "ok" | "err", "response": ...}``)."""
        self._weight.spend(self.hub.send_ns(), self._weight_of(body))
        try:
            action = self._authenticate(body)
            return {"status": "ok", "response": await self._run(action)}
        except Bad as bad:
            return {"status": "err", "response": str(bad)}

    def _authenticate(self, body: Any) -> dict[str, Any]:
        if not isinstance(body, dict) or not isinstance(body.get("action"), dict):
            raise Bad("Failed to deserialize the JSON body into the target type")
        try:
            nonce = int(body["nonce"])
        except (KeyError, TypeError, ValueError):
            raise Bad("Failed to deserialize the JSON body into the target type") from None
        signature = body.get("signature")
        signer = hl_signer(body["action"], nonce, signature if isinstance(signature, dict)
                           else {}, mainnet=False, vault=body.get("vaultAddress"))
        if not self.agent or signer != self.agent:
            raise Bad(f"User or API Wallet {signer or '0x'} does not exist.")
        if nonce in self._nonces or (len(self._nonces) >= _NONCES and nonce < self._nonces[0]):
            raise Bad("Invalid nonce: duplicate nonce")
        self._nonces = sorted([*self._nonces, nonce])[-_NONCES:]
        return body["action"]

    async def _run(self, action: dict[str, Any]) -> dict[str, Any]:
        kind = action.get("type")
        runs: dict[str, Callable[[dict[str, Any]], Any]] = {
            "order": self._orders, "cancel": self._cancels, "cancelByCloid": self._cancels,
            "batchModify": self._modifies, "modify": self._modify,
            "scheduleCancel": self._schedule}
        run = runs.get(str(kind))
        if run is None:
            raise Bad(f"Unknown action type {str(kind)[:40]}")
        return await run(action)

    # -- orders --------------------------------------------------------------------------

    def _coin(self, asset: object) -> str:
        coins = {index: coin for coin, index in self.assets.items()}
        coin = coins.get(asset) if isinstance(asset, int) else None
        if coin is None:
            raise Bad(f"Invalid asset {asset}")
        return coin

    def _order(self, wire: Any) -> OrderRequest:
        if not isinstance(wire, dict):
            raise Bad("Failed to deserialize the JSON body into the target type")
        coin = self._coin(wire.get("a"))
        tif = _TIFS.get(str((wire.get("t") or {}).get("limit", {}).get("tif")))
        if tif is None:
            raise Bad("Invalid order type: only limit orders (Alo, Gtc, Ioc) are served")
        size, price = _number(wire.get("s")), _number(wire.get("p"))
        cloid = wire.get("c") or f"paper-{next(self._cloids)}"  # not reported back
        return OrderRequest(self.protocol, coin, str(cloid), size if wire.get("b") else -size,
                            price, "limit", tif, bool(wire.get("r")))

    async def _orders(self, action: dict[str, Any]) -> dict[str, Any]:
        statuses = []
        for wire in action.get("orders") or []:
            try:
                request = self._order(wire)
            except Bad as bad:
                statuses.append({"error": str(bad)})
                continue
            outcome = await self.hub.request(self.protocol, RequestKind.PLACE, request)
            statuses.append(self._status(request, outcome))
        return {"type": "order", "data": {"statuses": statuses}}

    def _status(self, request: OrderRequest, outcome: Outcome) -> dict[str, Any]:
        answer = outcome.answer
        if answer.kind in (OrderEventKind.REJECT, OrderEventKind.AMEND_REJECT):
            return {"error": self._error(answer)}
        fills = outcome.fills()
        if not fills and outcome.expired():
            return {"error": "Order could not immediately match against any resting orders. "
                             f"asset={self.assets[answer.symbol]}"}
        oid = int(answer.oid or 0)
        if fills and (outcome.expired() or sum(f.size for f in fills) >= abs(
                request.amount)):
            total = sum((f.size for f in fills), Decimal(0))
            avg = sum((f.size * f.price for f in fills), Decimal(0)) / total
            return {"filled": {"totalSz": _text(total), "avgPx": _text(avg), "oid": oid}}
        resting: dict[str, Any] = {"oid": oid}
        if request.cloid.startswith("0x"):
            resting["cloid"] = request.cloid
        return {"resting": resting}

    def _error(self, update: OrderUpdate) -> str:
        asset = self.assets.get(update.symbol, 0)
        if update.code == "-5022":
            engine = self.hub.desk.engine(self.protocol, update.symbol)
            return (f"Post only order would have immediately matched, bbo was "
                    f"{engine.best(1)}@{engine.best(-1)}. asset={asset}")
        if update.code == "-4164":
            spec = self.hub.spec(self.protocol, update.symbol)
            minimum = spec.min_notional if spec else Decimal(10)
            return f"Order must have minimum value of ${_text(minimum)}. asset={asset}"
        return f"{_ERRORS.get(update.code, update.reason)} asset={asset}"

    async def _cancels(self, action: dict[str, Any]) -> dict[str, Any]:
        statuses: list[Any] = []
        for wire in action.get("cancels") or []:
            try:
                request = self._cancel(wire)
            except Bad as bad:
                statuses.append({"error": str(bad)})
                continue
            answer = (await self.hub.request(self.protocol, RequestKind.CANCEL,
                                             request)).answer
            statuses.append("success" if answer.kind is OrderEventKind.CANCEL_ACK else
                            {"error": self._error(answer)})
        return {"type": "cancel", "data": {"statuses": statuses}}

    def _cancel(self, wire: Any) -> CancelRequest:
        if not isinstance(wire, dict):
            raise Bad("Failed to deserialize the JSON body into the target type")
        if "cloid" in wire:
            return CancelRequest(self.protocol, self._coin(wire.get("asset")),
                                 cloid=str(wire["cloid"]))
        return CancelRequest(self.protocol, self._coin(wire.get("a")), oid=str(wire.get("o")))

    async def _amend(self, modify: Any) -> dict[str, Any]:
        if not isinstance(modify, dict):
            raise Bad("Failed to deserialize the JSON body into the target type")
        order = self._order(modify.get("order"))
        target = modify.get("oid")
        cloid, oid = (str(target), None) if isinstance(target, str) else (None, str(target))
        answer = (await self.hub.request(self.protocol, RequestKind.AMEND, AmendRequest(
            self.protocol, order.symbol, cloid, oid, order.price, order.amount))).answer
        if answer.kind is OrderEventKind.AMEND_REJECT:
            return {"error": self._error(answer)}
        return {"resting": {"oid": int(answer.oid or 0)}}

    async def _modifies(self, action: dict[str, Any]) -> dict[str, Any]:
        statuses = []
        for modify in action.get("modifies") or []:
            try:
                statuses.append(await self._amend(modify))
            except Bad as bad:
                statuses.append({"error": str(bad)})
        return {"type": "batchModify", "data": {"statuses": statuses}}

    async def _modify(self, action: dict[str, Any]) -> dict[str, Any]:
        status = await self._amend(action)
        if "error" in status:
            raise Bad(status["error"])
        return {"type": "default"}

    async def _schedule(self, action: dict[str, Any]) -> dict[str, Any]:
        at = action.get("time")
        if at is None:
            self.hub.arm_dead_man(self.protocol, None, 0)
            return {"type": "default"}
        ahead = int(at) - self.hub.client_ms()
        if ahead < 5000:
            raise Bad("Scheduled cancel time too early, must be at least 5 seconds from now.")
        self.hub.arm_dead_man(self.protocol, None, ahead)
        return {"type": "default"}

    # -- websocket (called by the public /ws session) ------------------------------------

    def post(self, session: Session, message: dict[str, Any]) -> None:
        """A ``post`` request on a ``/ws`` socket: answered in turn."""
        request = message.get("request")
        if isinstance(request, dict) and request.get("type") == "action":
            self.hub.received()
        session.spawn(self._post(session, message.get("id"), request))

    async def _post(self, session: Session, ident: object, request: Any) -> None:
        kind = request.get("type") if isinstance(request, dict) else None
        payload = request.get("payload") if isinstance(request, dict) else None
        if kind == "action":
            if not self._weight.allows(self.hub.send_ns(), self._weight_of(payload)):
                response: dict[str, Any] = {"type": "error", "payload": "Too many requests"}
            else:
                response = {"type": "action", "payload": await self.act(payload)}
        elif kind == "info":
            response = {"type": "info", "payload": {
                "type": payload.get("type") if isinstance(payload, dict) else None,
                "data": self.info(payload)}}
        else:
            response = {"type": "error", "payload": "Invalid post request"}
        session.reply({"channel": "post", "data": {"id": ident, "response": response}})

    def serves(self, subscription: dict[str, Any]) -> bool:
        """Whether ``subscription`` is a private channel of the served account."""
        return bool(self.user) and str(subscription.get("user", "")).lower() == self.user

    def subscribe(self, session: Session, subscription: dict[str, Any], on: bool) -> None:
        """(Un)subscribe ``session`` to a private channel (:meth:`serves` it)."""
        kind = str(subscription.get("type"))
        subscribers = self._subscribers[kind]
        if on:
            subscribers[session] = None
            self._greet(session, kind)
        else:
            subscribers.pop(session, None)

    def _greet(self, session: Session, kind: str) -> None:
        if kind == "userFills":
            session.push_private({"channel": "userFills", "data": {
                "isSnapshot": True, "user": self.user, "fills": list(self._fills)}})
        elif kind == "webData2":
            session.push_private(self._web_data())

    def forget(self, session: Session) -> None:
        for subscribers in self._subscribers.values():
            subscribers.pop(session, None)

    # -- info ----------------------------------------------------------------------------

    def info(self, body: Any) -> Any:
        """A private info request's answer (None for an unknown type or user)."""
        if not isinstance(body, dict) or str(body.get("user", "")).lower() != self.user:
            return None
        kind = body.get("type")
        if kind == "clearinghouseState":
            return self.clearinghouse()
        if kind in ("openOrders", "frontendOpenOrders"):
            shape = "frontend" if kind == "frontendOpenOrders" else "open"
            return [self._order_row(u, shape)
                    for u in self.hub.told(self.protocol).orders.values()]
        if kind == "userFills":
            return list(reversed(self._fills))
        if kind == "orderStatus":
            return self._order_status(body.get("oid"))
        return None

    def _order_status(self, target: object) -> dict[str, Any]:
        told = self.hub.told(self.protocol)
        found = told.find(target, None) if isinstance(target, str) else told.find(
            None, str(target))
        if found is None:
            return {"status": "unknownOid"}
        status = "open" if found.status in ("NEW", "PARTIAL") else "filled" if \
            found.status == "FILLED" else "canceled"
        return {"status": "order", "order": {"order": self._order_row(found, "frontend"),
                                             "status": status,
                                             "statusTimestamp": ms(found.exchange_ts)}}

    def _order_row(self, update: OrderUpdate, shape: str) -> dict[str, Any]:
        """An order as the venue shapes it: ``open`` (``openOrders``: the remaining
        ``sz`` only), ``basic`` (``orderUpdates``' order: ``origSz`` added), ``frontend``
        (``frontendOpenOrders`` and ``orderStatus``: ``origSz`` and the order's settings)."""
        left = abs(update.amount) - desk_filled(update)
        row: dict[str, Any] = {
            "coin": update.symbol, "side": "B" if update.amount > 0 else "A",
            "limitPx": _text(update.price or Decimal(0)), "sz": _text(left),
            "oid": int(update.oid or 0), "timestamp": ms(update.exchange_ts)}
        if shape != "open":
            row["origSz"] = _text(abs(update.amount))
        if update.cloid and update.cloid.startswith("0x"):
            row["cloid"] = update.cloid
        if shape == "frontend":
            row |= {"orderType": "Limit", "tif": _WIRE_TIFS.get(update.tif, "Gtc"),
                    "reduceOnly": update.reduce_only, "isTrigger": False,
                    "triggerPx": "0.0", "triggerCondition": "N/A", "isPositionTpsl": False}
        return row

    def clearinghouse(self) -> dict[str, Any]:
        told, marks = self.hub.told(self.protocol), self.hub.marks(self.protocol)
        positions = []
        for coin, pos in told.positions.items():
            if not pos.amount:
                continue
            mark = marks.get(coin, float(pos.entry))
            value = abs(pos.amount) * Decimal(repr(mark))
            positions.append({"type": "oneWay", "position": {
                "coin": coin, "szi": _text(pos.amount) if pos.amount > 0 else
                "-" + _text(-pos.amount), "entryPx": _text(pos.entry),
                "positionValue": _text(value), "unrealizedPnl": format(
                    told.unrealized(coin, mark), "f"),
                "returnOnEquity": "0.0", "liquidationPx": None,
                "leverage": {"type": "cross", "value": 20}, "marginUsed": _text(value / 20),
                "maxLeverage": 50, "cumFunding": {"allTime": "0.0", "sinceOpen": "0.0",
                                                  "sinceChange": "0.0"}}})
        upnl = sum((told.unrealized(c, m) for c, m in marks.items()), Decimal(0))
        equity = format(told.wallet + upnl, "f")
        summary = {"accountValue": equity, "totalNtlPos": "0.0", "totalRawUsd": equity,
                   "totalMarginUsed": "0.0"}
        return {"assetPositions": positions, "marginSummary": summary,
                "crossMarginSummary": summary, "crossMaintenanceMarginUsed": "0.0",
                "withdrawable": format(told.wallet, "f"), "time": ms(told.as_of_ns)}

    def _web_data(self) -> dict[str, Any]:
        return {"channel": "webData2", "data": {"clearinghouseState": self.clearinghouse(),
                                                "user": self.user, "openOrders": []}}

    # -- the user streams ----------------------------------------------------------------

    def listeners(self) -> int:
        """Open user streams of the account."""
        return len(self._subscribers["orderUpdates"])

    def stream(self, delivery: Delivery, told: Told) -> None:
        update, fill = delivery.update, delivery.fill
        messages: list[tuple[str, dict[str, Any]]] = []
        if fill is not None:
            row = self._fill_row(fill, update, told)
            self._fills.append(row)
            messages += [("userFills", {"channel": "userFills", "data": {
                "user": self.user, "fills": [row]}}),
                ("userEvents", {"channel": "user", "data": {"fills": [row]}})]
        status = "filled" if update.status == "FILLED" else _STATUS.get(update.kind)
        if update.kind is OrderEventKind.FILL and update.status != "FILLED":
            status = "open"
        if status is not None:
            messages.append(("orderUpdates", {"channel": "orderUpdates", "data": [
                {"order": self._order_row(update, "basic"), "status": status,
                 "statusTimestamp": ms(update.exchange_ts)}]}))
        if fill is not None:
            messages.append(("webData2", self._web_data()))
        for kind, message in messages:
            for session in self._subscribers[kind]:
                session.push_private(message)

    def _fill_row(self, fill: Fill, update: OrderUpdate, told: Told) -> dict[str, Any]:
        pos = told.positions.get(fill.symbol)
        after = pos.amount if pos is not None else Decimal(0)
        row: dict[str, Any] = {
            "coin": fill.symbol, "px": _text(fill.price), "sz": _text(fill.size),
            "side": "B" if fill.side > 0 else "A", "time": ms(fill.exchange_ts),
            "startPosition": format(after - fill.side * fill.size, "f"),
            "dir": "Open Long" if fill.side > 0 else "Open Short", "closedPnl": "0.0",
            "hash": f"0x{int(fill.trade_id):064x}", "oid": int(update.oid or 0),
            "crossed": not fill.is_maker, "fee": format(fill.fee, "f"),
            "tid": int(fill.trade_id), "feeToken": fill.fee_asset or "USDC"}
        if update.cloid and update.cloid.startswith("0x"):
            row["cloid"] = update.cloid
        return row

