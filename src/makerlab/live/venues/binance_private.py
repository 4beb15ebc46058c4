"""Binance USD-M futures (``binance``): private wire translation.

- **Orders**: the websocket API (``/ws-fapi/v1``: ``order.place`` / ``order.cancel`` /
  ``order.modify``, every request signed: HMAC over its params sorted by name, ``apiKey``
  and ``timestamp`` included); REST ``/fapi/v1/order`` (POST/DELETE/PUT, HMAC over the
  query string) as the fallback and for ``batchOrders`` (≤ 5), ``allOpenOrders`` and
  ``countdownCancelAll`` (the dead-man switch, per symbol). Post-only is ``GTX``; our
  client ids go as ``newClientOrderId`` (≤ 36 of ``[.A-Z:/a-z0-9_-]``, others mapped).
  An amend must carry price and amount (Binance modifies both at once).
- **User stream**: ``POST /fapi/v1/listenKey`` → ``/private/ws?listenKey=``; ``PUT`` every
  30 min keeps it; ``-1125`` (unknown key) or a ``listenKeyExpired`` event logs in again.
  ``ORDER_TRADE_UPDATE`` gives the order's update (``update_id`` = transaction time ``T``)
  and, for ``x == TRADE``, a :class:`Fill` first (trade id ``t``, fee ``n`` in ``N``,
  maker ``m``); ``TRADE_LITE`` is ignored (no fee: the full update follows).
  ``ACCOUNT_UPDATE`` gives balances (``wb`` wallet; equity is not in the event and is
  reported as the wallet; nor is the available balance, reported unknown, ``None``: the
  cross wallet ``cw`` is not it, and orders placed or cancelled push no event, so the
  stream cannot follow it; ``/fapi/v2/balance``'s ``availableBalance`` is it) and
  one-way-mode positions (``ps == BOTH``; hedge-mode legs are skipped).
- **Reconciliation**: ``GET /fapi/v1/openOrders`` / ``v2/positionRisk`` / ``v2/balance``;
  one order by ``GET /fapi/v1/order`` (``-2013`` "Order does not exist." = unknown).
  Cancel-all and the dead-man switch are per symbol. Funding: ``/fapi/v1/premiumIndex``
  (rate, next time, mark) and ``/fapi/v1/fundingInfo`` (symbols whose interval is not the
  default 8 h).
- **Rate limits**: ``X-MBX-USED-WEIGHT-1M``, ``X-MBX-ORDER-COUNT-10S`` / ``-1M`` headers and
  the WS API's ``rateLimits``; HTTP 429/418 → :class:`RateLimited` (``Retry-After``);
  ``-1022``/``-2014``/``-2015`` and HTTP 401 → :class:`AuthError`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import ClassVar

import msgspec
import orjson

from makerlab.core.events import (
    BalanceState,
    Fill,
    FundingState,
    OrderEventKind,
    OrderUpdate,
    PositionState,
)
from makerlab.errors import AuthError, ConfigError, RateLimited, VenueError
from makerlab.live.config import Secret
from makerlab.live.ratelimit import Observation
from makerlab.live.signing import binance_query, binance_ws_payload, hmac_hex
from makerlab.live.venues.base import Endpoints, Request, ms_to_ns
from makerlab.live.venues.private_base import (
    Answer,
    CloidMap,
    Op,
    OpKind,
    PrivateEvent,
    Relogin,
    Snapshot,
    WsAnswer,
    sha_hex,
)
from makerlab.live.venues.private_common import (
    HmacKeys,
    as_type,
    dec,
    is_post_only,
    order_state,
    signed,
    wire_number,
)
from makerlab.trading.protocols import AmendRequest, CancelRequest, OrderRequest

__all__ = ["BinancePrivate"]

_CLOID = re.compile(r"^[.A-Z:/a-z0-9_-]{1,36}$")
_ORDER_WS = {"mainnet": "wss://ws-fapi.binance.com", "testnet": "wss://testnet.binancefuture.com"}
_PUBLIC_WS = {"mainnet": "wss://fstream.binance.com", "testnet": "wss://fstream.binancefuture.com"}
_AUTH_CODES = frozenset({"-1022", "-2014", "-2015"})
_UNKNOWN_ORDER = "-2013"
_STATUS = {"NEW": "NEW", "PARTIALLY_FILLED": "PARTIAL", "FILLED": "FILLED",
           "CANCELED": "CANCELLED", "EXPIRED": "CANCELLED", "EXPIRED_IN_MATCH": "CANCELLED",
           "REJECTED": "REJECTED"}
_FILLS = frozenset({"TRADE", "CALCULATED"})  # CALCULATED: liquidation / ADL executions
_KIND = {"NEW": OrderEventKind.ACK, "TRADE": OrderEventKind.FILL,
         "CALCULATED": OrderEventKind.FILL,
         "CANCELED": OrderEventKind.CANCEL_ACK, "EXPIRED": OrderEventKind.EXPIRE,
         "AMENDMENT": OrderEventKind.AMEND_ACK}
_WS_METHOD = {OpKind.PLACE: "order.place", OpKind.CANCEL: "order.cancel",
              OpKind.AMEND: "order.modify"}
_REST = {OpKind.PLACE: ("POST", "/fapi/v1/order"), OpKind.CANCEL: ("DELETE", "/fapi/v1/order"),
         OpKind.AMEND: ("PUT", "/fapi/v1/order"),
         OpKind.BATCH: ("POST", "/fapi/v1/batchOrders"),
         OpKind.CANCEL_ALL: ("DELETE", "/fapi/v1/allOpenOrders"),
         OpKind.DEAD_MAN: ("POST", "/fapi/v1/countdownCancelAll")}
_SNAPSHOTS = {Snapshot.ORDERS: "/fapi/v1/openOrders", Snapshot.POSITIONS: "/fapi/v2/positionRisk",
              Snapshot.BALANCES: "/fapi/v2/balance"}
_HEADERS = {"x-mbx-used-weight-1m": ("weight_1m", 2400),
            "x-mbx-order-count-10s": ("orders_10s", 300),
            "x-mbx-order-count-1m": ("orders_1m", 1200)}


class _Order(msgspec.Struct):
    s: str
    c: str
    S: str
    o: str
    f: str
    q: str
    p: str
    x: str
    X: str
    i: int
    l: str  # noqa: E741 (the wire's name)
    z: str
    L: str
    T: int
    t: int = 0
    N: str | None = None
    n: str = "0"
    m: bool = False
    R: bool = False


class _OrderEvent(msgspec.Struct, tag_field="e", tag="ORDER_TRADE_UPDATE"):
    E: int
    o: _Order
    T: int = 0


class _Balance(msgspec.Struct):
    a: str
    wb: str  # no available balance: cw, the cross wallet, is a wallet, not what orders may use


class _Position(msgspec.Struct):
    s: str
    pa: str
    ep: str
    up: str
    ps: str = "BOTH"


class _Account(msgspec.Struct):
    B: list[_Balance] = []
    P: list[_Position] = []


class _AccountEvent(msgspec.Struct, tag_field="e", tag="ACCOUNT_UPDATE"):
    E: int
    a: _Account
    T: int = 0


class _Expired(msgspec.Struct, tag_field="e", tag="listenKeyExpired"):
    E: int = 0


class _Other(msgspec.Struct):
    e: str = ""
    data: msgspec.Raw = msgspec.Raw()  # a combined-stream envelope's payload


_user = msgspec.json.Decoder(_OrderEvent | _AccountEvent | _Expired)
_other = msgspec.json.Decoder(_Other)
_TRANSLATED = frozenset({"ORDER_TRADE_UPDATE", "ACCOUNT_UPDATE", "listenKeyExpired"})


class BinancePrivate:
    """Binance USD-M order entry and account stream (see the module docstring)."""

    exchange: ClassVar[str] = "binance"
    max_batch: ClassVar[int] = 5
    ping_frame: ClassVar[bytes | None] = None  # the server pings; aiohttp answers
    ping_interval: ClassVar[float] = 0.0
    has_cancel_all: ClassVar[bool] = True
    refresh_interval: ClassVar[float] = 30 * 60.0
    symbol_scoped: ClassVar[frozenset[OpKind]] = frozenset({OpKind.CANCEL_ALL, OpKind.DEAD_MAN})
    recv_window: ClassVar[int] = 5000

    def __init__(self, creds: tuple[Secret, Secret], env: str, endpoints: Endpoints) -> None:
        self._keys = HmacKeys(creds)
        overridden = endpoints.ws != _PUBLIC_WS.get(env)
        self._order_ws = endpoints.ws if overridden else _ORDER_WS[env]
        self.cloids = CloidMap(lambda c: bool(_CLOID.match(c)), lambda c: sha_hex(c, 32))
        self.listen_key = ""

    def __repr__(self) -> str:
        return "BinancePrivate()"

    def budget(self, op: Op) -> None:
        return None  # the venue reports usage in its headers

    @property
    def order_socket(self) -> bool:
        return True

    # -- login: the listen key ------------------------------------------------------------

    def _key_header(self) -> dict[str, str]:
        return {"X-MBX-APIKEY": self._keys.key.reveal()}

    def login_call(self, now_ms: int) -> Request:
        return Request("POST", "/fapi/v1/listenKey", headers=self._key_header())

    def read_login(self, body: bytes) -> None:
        self.listen_key = orjson.loads(body)["listenKey"]

    def refresh_call(self, now_ms: int) -> Request:
        return Request("PUT", "/fapi/v1/listenKey", headers=self._key_header())

    def read_refresh(self, status: int, body: bytes) -> bool:
        return status < 400  # -1125: the key is gone

    # -- order entry --------------------------------------------------------------------

    def _params(self, op: Op) -> dict[str, object]:
        if op.kind is OpKind.PLACE:
            return self._place(as_type(op.order, OrderRequest))
        if op.kind is OpKind.CANCEL:
            return self._ids(op.order, {"symbol": op.order.symbol})
        if op.kind is OpKind.AMEND:
            return self._amend(as_type(op.order, AmendRequest))
        if op.kind is OpKind.BATCH:
            orders = [self._place(as_type(o, OrderRequest)) for o in op.orders]
            return {"batchOrders": orders_json(orders)}
        symbol = _needs_symbol(op)
        if op.kind is OpKind.DEAD_MAN:
            return {"symbol": symbol, "countdownTime": op.timeout_ms}
        return {"symbol": symbol}

    def _place(self, req: OrderRequest) -> dict[str, object]:
        params: dict[str, object] = {
            "symbol": req.symbol, "side": "BUY" if req.amount > 0 else "SELL",
            "type": "MARKET" if req.price is None else "LIMIT",
            "quantity": wire_number(abs(req.amount))}
        if req.price is not None:
            params["price"] = wire_number(req.price)
            params["timeInForce"] = "GTX" if is_post_only(req.tif) else req.tif.upper()
        if req.reduce_only:
            params["reduceOnly"] = "true"
        params["newClientOrderId"] = self.cloids.wire(req.cloid)
        return params

    def _amend(self, req: AmendRequest) -> dict[str, object]:
        if req.price is None or req.amount is None:
            raise ConfigError("binance: an amend needs both price and amount (Binance "
                              "modifies them together)")
        return self._ids(req, {"symbol": req.symbol, "side": "BUY" if req.amount > 0 else "SELL",
                               "quantity": wire_number(abs(req.amount)),
                               "price": wire_number(req.price)})

    def _ids(self, req: CancelRequest | AmendRequest | OrderRequest,
             params: dict[str, object]) -> dict[str, object]:
        oid = getattr(req, "oid", None)  # an order being placed has none yet
        if oid is not None:
            params["orderId"] = int(oid)
        elif req.cloid is not None:
            params["origClientOrderId"] = self.cloids.wire(req.cloid)
        return params

    def rest_call(self, op: Op, now_ms: int) -> Request:
        method, path = _REST[op.kind]
        return self._signed(method, path, self._params(op), now_ms)

    def _signed(self, method: str, path: str, params: dict[str, object],
                now_ms: int) -> Request:
        params = {**params, "recvWindow": self.recv_window, "timestamp": now_ms}
        query = binance_query(params)
        signature = hmac_hex(self._keys.secret.reveal(), query)
        wire = {k: _text(v) for k, v in params.items()} | {"signature": signature}
        return Request(method, path, wire, headers=self._key_header())

    def read_rest(self, op: Op, status: int, body: bytes,
                  headers: Mapping[str, str]) -> list[Answer]:
        _raise_transport(status, body, headers)
        data = orjson.loads(body)
        if op.kind is OpKind.BATCH and isinstance(data, list):
            return [_answer(item) for item in data]
        return [_answer(data)]

    def order_socket_url(self, ws: str) -> str:
        return f"{self._order_ws}/ws-fapi/v1"

    def order_socket_open(self, now_ms: int) -> list[bytes]:
        return []  # every request is signed on its own

    def ws_call(self, op: Op, now_ms: int, req_id: str) -> bytes:
        method = _WS_METHOD.get(op.kind)
        if method is None:  # batch, cancel-all, dead-man: REST only
            raise ValueError(f"binance has no websocket {op.kind}")
        params = {**self._params(op), "apiKey": self._keys.key.reveal(),
                  "recvWindow": self.recv_window, "timestamp": now_ms}
        params["signature"] = hmac_hex(self._keys.secret.reveal(), binance_ws_payload(params))
        return orjson.dumps({"id": req_id, "method": method, "params": params})

    def read_ws(self, frame: bytes | str) -> WsAnswer | None:
        data = orjson.loads(frame)
        if "id" not in data or "status" not in data:
            return None
        observations = _ws_limits(data.get("rateLimits") or [])
        status, req_id = int(data["status"]), str(data["id"])
        if status in (418, 429):
            return WsAnswer(req_id, [], observations, _rate_limited(data.get("error"), None))
        error = data.get("error")
        if error is not None and str(error.get("code")) in _AUTH_CODES:
            return WsAnswer(req_id, [], observations, AuthError(str(error), venue="binance"))
        return WsAnswer(req_id, [_answer(error or data.get("result") or {})], observations)

    def uses_ws(self, op: Op) -> bool:
        return op.kind in _WS_METHOD

    # -- user stream ----------------------------------------------------------------------

    def user_socket_url(self, ws: str) -> str:
        return f"{ws}/private/ws?listenKey={self.listen_key}"

    def user_socket_open(self, now_ms: int) -> list[bytes]:
        return []

    def parse_user(self, frame: bytes | str, local_ts: int) -> list[PrivateEvent]:
        try:
            event = _user.decode(frame)
        except msgspec.ValidationError:
            other = _other.decode(frame)
            if other.data:
                return self.parse_user(other.data, local_ts)
            if other.e in _TRANSLATED:
                raise
            return []  # TRADE_LITE, ALGO_UPDATE, MARGIN_CALL, ...
        if isinstance(event, _OrderEvent):
            return self._order_events(event.o, local_ts)
        if isinstance(event, _AccountEvent):
            return _account(event, local_ts)
        return [Relogin("listenKeyExpired")]

    def _order_events(self, o: _Order, local_ts: int) -> list[PrivateEvent]:
        buy = o.S == "BUY"
        update = order_state(
            "binance", o.s, kind=_KIND.get(o.x, OrderEventKind.STATE),
            status=_STATUS.get(o.X, "NEW"), cloid=self.cloids.ours(o.c), oid=str(o.i),
            amount=signed(dec(o.q), buy), price=None if o.o == "MARKET" else dec(o.p),
            filled=dec(o.z), ts_ms=o.T, local_ts=local_ts, tif=o.f, reduce_only=o.R)
        if o.x not in _FILLS:
            return [update]
        fill = Fill("binance", o.s, ms_to_ns(o.T), local_ts, update.cloid, str(o.i), str(o.t),
                    1 if buy else -1, dec(o.L), dec(o.l), dec(o.n), o.N or "", o.m)
        return [fill, update]

    # -- snapshots ----------------------------------------------------------------------

    def snapshot_call(self, kind: Snapshot, now_ms: int) -> Request:
        return self._signed("GET", _SNAPSHOTS[kind], {}, now_ms)

    def parse_snapshot(self, kind: Snapshot, body: bytes, local_ts: int
                       ) -> Sequence[OrderUpdate | PositionState | BalanceState]:
        rows = orjson.loads(body)
        if kind is Snapshot.ORDERS:
            return [self._open_order(row, local_ts) for row in rows]
        if kind is Snapshot.POSITIONS:
            return [PositionState("binance", r["symbol"], ms_to_ns(r.get("updateTime", 0)),
                                  local_ts, dec(r["positionAmt"]), dec(r["entryPrice"]),
                                  dec(r["unRealizedProfit"]))
                    for r in rows if r.get("positionSide", "BOTH") == "BOTH"]
        return [BalanceState("binance", r["asset"], ms_to_ns(r.get("updateTime", 0)), local_ts,
                             dec(r["balance"]), dec(r["balance"]) + dec(r.get("crossUnPnl")),
                             dec(r["availableBalance"])) for r in rows]

    def _open_order(self, row: dict, local_ts: int) -> OrderUpdate:
        buy = row["side"] == "BUY"
        return order_state(
            "binance", row["symbol"], kind=OrderEventKind.STATE,
            status=_STATUS.get(row["status"], "NEW"), cloid=self.cloids.ours(row["clientOrderId"]),
            oid=str(row["orderId"]), amount=signed(dec(row["origQty"]), buy),
            price=None if row["type"] == "MARKET" else dec(row["price"]),
            filled=dec(row["executedQty"]), ts_ms=row["updateTime"], local_ts=local_ts,
            tif=row.get("timeInForce", ""), reduce_only=bool(row.get("reduceOnly")))

    def query_call(self, symbol: str, cloid: str | None, oid: str | None,
                   now_ms: int) -> Request:
        params = self._ids(CancelRequest("binance", symbol, cloid, oid), {"symbol": symbol})
        return self._signed("GET", "/fapi/v1/order", params, now_ms)

    def parse_query(self, status: int, body: bytes, local_ts: int) -> OrderUpdate | None:
        data = orjson.loads(body)
        if status >= 400:
            if str(data.get("code")) == _UNKNOWN_ORDER:
                return None
            raise VenueError(f"order query answered HTTP {status}: {body[:200]!r}",
                             venue="binance")
        return self._open_order(data, local_ts)

    def funding_calls(self, symbol: str) -> list[Request]:
        return [Request("GET", "/fapi/v1/premiumIndex", {"symbol": symbol}),
                Request("GET", "/fapi/v1/fundingInfo")]

    def parse_funding(self, symbol: str, bodies: list[bytes], now_ms: int,
                      local_ts: int) -> FundingState:
        index, info = (orjson.loads(body) for body in bodies)
        hours = next((int(row["fundingIntervalHours"]) for row in info
                      if row.get("symbol") == symbol), 8)
        return FundingState("binance", symbol, ms_to_ns(index.get("time", now_ms)), local_ts,
                            dec(index["lastFundingRate"]), hours * 3600 * 10**9,
                            ms_to_ns(index["nextFundingTime"]), dec(index["markPrice"]))

    def rate_limits(self, headers: Mapping[str, str], now_ms: int) -> list[Observation]:
        found = {k.lower(): v for k, v in headers.items() if k.lower() in _HEADERS}
        return [Observation(_HEADERS[k][0], int(v), _HEADERS[k][1]) for k, v in found.items()]


def orders_json(orders: list[dict[str, object]]) -> str:
    return orjson.dumps([{k: _text(v) for k, v in o.items()} for o in orders]).decode()


def _text(value: object) -> str:
    return value if isinstance(value, str) else str(value)


def _needs_symbol(op: Op) -> str:
    if op.symbol is None:
        raise ConfigError(f"binance: {op.kind} needs a symbol (Binance applies it per symbol)")
    return op.symbol


def _answer(data: dict) -> Answer:
    if "code" in data and "orderId" not in data:
        code = str(data["code"])
        if code == "200":  # cancel-all / countdown answer {"code": 200, "msg": "..."}
            return Answer(True, reason=str(data.get("msg", "")))
        return Answer(False, code, str(data.get("msg", "")))
    ts = data.get("updateTime") or 0
    return Answer(True, oid=str(data["orderId"]) if "orderId" in data else None,
                  exchange_ts=ms_to_ns(ts), status=_STATUS.get(data.get("status", ""), ""),
                  filled=dec(data["executedQty"]) if "executedQty" in data else None)


def _raise_transport(status: int, body: bytes, headers: Mapping[str, str]) -> None:
    if status in (418, 429):
        retry = headers.get("Retry-After")
        raise _rate_limited(body[:200].decode(errors="replace"),
                            float(retry) if retry else None)
    if status >= 500:
        raise VenueError(f"HTTP {status} (outcome unknown): {body[:200]!r}", venue="binance")
    if status == 401 or (status >= 400 and str(orjson.loads(body).get("code")) in _AUTH_CODES):
        raise AuthError(f"HTTP {status}: {body[:200].decode(errors='replace')}",
                        venue="binance")


def _rate_limited(detail: object, retry_after: float | None) -> RateLimited:
    return RateLimited(f"rate limited: {detail}", venue="binance", retry_after=retry_after)


def _ws_limits(rows: list[dict]) -> list[Observation]:
    kinds = {"REQUEST_WEIGHT": "weight", "ORDERS": "orders"}
    return [Observation(f"{kinds.get(r['rateLimitType'], r['rateLimitType'].lower())}_"
                        f"{r['intervalNum']}{r['interval'][0].lower()}", int(r["count"]),
                        int(r["limit"])) for r in rows]


def _account(event: _AccountEvent, local_ts: int) -> list[PrivateEvent]:
    ts = ms_to_ns(event.T or event.E)
    out: list[PrivateEvent] = [BalanceState("binance", b.a, ts, local_ts, dec(b.wb), dec(b.wb),
                                            None) for b in event.a.B]
    out += [PositionState("binance", p.s, ts, local_ts, dec(p.pa), dec(p.ep), dec(p.up))
            for p in event.a.P if p.ps == "BOTH"]
    return out

