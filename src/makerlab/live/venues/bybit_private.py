"""Bybit v5 linear (``bybit``): private wire translation.

- **Orders**: the trade socket ``/v5/trade`` (``auth`` with ``HMAC("GET/realtime" +
  expires)``, then ``order.create`` / ``order.amend`` / ``order.cancel`` with a timestamp
  header); REST ``/v5/order/*`` (headers ``X-BAPI-*``, ``HMAC(timestamp + key + recvWindow
  + body)``) as the fallback and for ``create-batch`` (≤ 10), ``cancel-all`` and the
  dead-man switch ``disconnected-cancel-all`` (``timeWindow`` in seconds, 3 to 300, needs DCP
  enabled on the account). Post-only is ``PostOnly``; our ids go as ``orderLinkId`` (≤ 36
  characters, others mapped). Demo trading has no trade socket: REST only.
- **User stream**: ``/v5/private`` with the same ``auth``, topics ``order`` (full state,
  ``update_id`` = ``updatedTime``), ``execution`` (fills with ``execFee``/``isMaker``; fee
  in the contract's settle coin; funding rows skipped), ``position`` (one-way,
  ``positionIdx`` 0) and ``wallet``; ``execution.fast`` is not used (no fees). Ping
  ``{"op":"ping"}`` every 20 s.
- **Balances** (``wallet`` and ``wallet-balance`` alike): wallet ``walletBalance``, equity
  ``equity``; available as the references state it since the coin's
  ``availableToWithdraw`` was deprecated for unified accounts (9 Jan 2025): cross and
  portfolio margin, the account's ``totalAvailableBalance`` (USD) in the coin at its
  index price (``usdValue / equity``); isolated margin (the account-wide fields empty),
  ``walletBalance - totalPositionIM - totalOrderIM - locked - bonus``, also the reading of
  a coin with no value to convert by.
- **Reconciliation**: ``/v5/order/realtime`` (open orders; one order by ``orderLinkId``
  or ``orderId``, recently closed ones included: an empty list = unknown),
  ``/v5/position/list``, ``/v5/account/wallet-balance``. Funding: ``/v5/market/tickers``
  (rate, next time, mark) and ``instruments-info`` (``fundingInterval``, minutes).
- **Rate limits**: ``X-Bapi-Limit`` / ``-Status`` / ``-Reset-Timestamp`` (REST headers
  and the trade socket's answer header); ``retCode 10006`` and HTTP 429 →
  :class:`RateLimited` until the reset; HTTP 403 (IP ban) → 10 minutes.
"""

from __future__ import annotations

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
from makerlab.errors import AuthError, RateLimited, VenueError
from makerlab.live.config import Secret
from makerlab.live.ratelimit import Observation
from makerlab.live.signing import bybit_rest_payload, bybit_ws_payload, hmac_hex
from makerlab.live.venues.base import Endpoints, Request, ms_to_ns
from makerlab.live.venues.private_base import (
    Answer,
    CloidMap,
    Op,
    OpKind,
    PrivateEvent,
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

__all__ = ["BybitPrivate"]

_DEMO_PRIVATE_WS = "wss://stream-demo.bybit.com"
_PUBLIC_WS = {"mainnet": "wss://stream.bybit.com", "testnet": "wss://stream-testnet.bybit.com",
              "demo": "wss://stream.bybit.com"}
_AUTH_CODES = frozenset({10003, 10004, 10005, 33004})
_RATE_CODES = frozenset({10006, 10018})
_PATHS = {OpKind.PLACE: "/v5/order/create", OpKind.CANCEL: "/v5/order/cancel",
          OpKind.AMEND: "/v5/order/amend", OpKind.BATCH: "/v5/order/create-batch",
          OpKind.CANCEL_ALL: "/v5/order/cancel-all",
          OpKind.DEAD_MAN: "/v5/order/disconnected-cancel-all"}
_WS_OPS = {OpKind.PLACE: "order.create", OpKind.CANCEL: "order.cancel",
           OpKind.AMEND: "order.amend"}
_STATUS = {"New": "NEW", "PartiallyFilled": "PARTIAL", "Filled": "FILLED",
           "Cancelled": "CANCELLED", "PartiallyFilledCanceled": "CANCELLED",
           "Rejected": "REJECTED", "Deactivated": "CANCELLED"}
_KIND = {"New": OrderEventKind.ACK, "PartiallyFilled": OrderEventKind.FILL,
         "Filled": OrderEventKind.FILL, "Rejected": OrderEventKind.REJECT}
_TRADES = frozenset({"Trade", "AdlTrade", "BustTrade", "BlockTrade"})
_TIF = {"GTC": "GTC", "IOC": "IOC", "FOK": "FOK"}


class _Order(msgspec.Struct):
    symbol: str
    orderId: str
    side: str
    orderType: str
    price: str
    qty: str
    orderStatus: str
    updatedTime: str
    orderLinkId: str = ""
    cumExecQty: str = "0"
    timeInForce: str = ""
    reduceOnly: bool = False
    cancelType: str = ""
    rejectReason: str = ""


class _Execution(msgspec.Struct):
    symbol: str
    execId: str
    execPrice: str
    execQty: str
    execFee: str
    side: str
    execTime: str
    orderId: str
    orderLinkId: str = ""
    execType: str = "Trade"
    isMaker: bool = False
    feeCurrency: str = ""


class _Position(msgspec.Struct):
    symbol: str
    side: str
    size: str
    updatedTime: str
    entryPrice: str = ""
    avgPrice: str = ""
    unrealisedPnl: str = "0"
    positionIdx: int = 0


class _Coin(msgspec.Struct):
    coin: str
    walletBalance: str
    equity: str
    usdValue: str = ""
    totalPositionIM: str = ""  # "" in portfolio margin
    totalOrderIM: str = ""
    locked: str = ""
    bonus: str = ""


class _Wallet(msgspec.Struct):
    coin: list[_Coin]
    totalAvailableBalance: str = ""  # USD; "" in isolated margin (account-wide fields)


class _Envelope(msgspec.Struct):
    topic: str = ""
    op: str = ""
    creationTime: int = 0
    data: msgspec.Raw = msgspec.Raw()
    success: bool | None = None
    retCode: int = 0
    retMsg: str = ""
    ret_msg: str = ""


_envelope = msgspec.json.Decoder(_Envelope)
_orders = msgspec.json.Decoder(list[_Order])
_executions = msgspec.json.Decoder(list[_Execution])
_positions = msgspec.json.Decoder(list[_Position])
_wallets = msgspec.json.Decoder(list[_Wallet])


class BybitPrivate:
    """Bybit v5 linear order entry and account stream (see the module docstring)."""

    exchange: ClassVar[str] = "bybit"
    max_batch: ClassVar[int] = 10
    ping_frame: ClassVar[bytes | None] = b'{"op":"ping"}'
    ping_interval: ClassVar[float] = 20.0
    has_cancel_all: ClassVar[bool] = True
    refresh_interval: ClassVar[float] = 0.0
    recv_window: ClassVar[int] = 5000
    settle_coin: ClassVar[str] = "USDT"
    symbol_scoped: ClassVar[frozenset[OpKind]] = frozenset()

    def __init__(self, creds: tuple[Secret, Secret], env: str, endpoints: Endpoints) -> None:
        self._keys = HmacKeys(creds)
        demo = env == "demo" and endpoints.ws == _PUBLIC_WS["demo"]
        self._private_ws = _DEMO_PRIVATE_WS if demo else endpoints.ws
        self._trade_socket = env != "demo"
        self.cloids = CloidMap(lambda c: 0 < len(c) <= 36, lambda c: sha_hex(c, 32))

    def __repr__(self) -> str:
        return "BybitPrivate()"

    def budget(self, op: Op) -> None:
        return None  # the venue reports usage in its headers

    @property
    def order_socket(self) -> bool:
        return self._trade_socket

    def login_call(self, now_ms: int) -> None:
        return None

    def read_login(self, body: bytes) -> None:
        return None

    def refresh_call(self, now_ms: int) -> None:
        return None

    def read_refresh(self, status: int, body: bytes) -> bool:
        return True

    # -- order entry ----------------------------------------------------------------------

    def _params(self, op: Op) -> dict[str, object]:
        if op.kind is OpKind.PLACE:
            return self._place(as_type(op.order, OrderRequest))
        if op.kind is OpKind.BATCH:
            return {"category": "linear", "request": [
                self._place(as_type(o, OrderRequest)) for o in op.orders]}
        if op.kind is OpKind.CANCEL:
            return self._ids(as_type(op.order, CancelRequest), {})
        if op.kind is OpKind.AMEND:
            return self._amend(as_type(op.order, AmendRequest))
        if op.kind is OpKind.DEAD_MAN:
            return {"timeWindow": max(3, min(300, op.timeout_ms // 1000))}
        if op.symbol is None:
            return {"category": "linear", "settleCoin": self.settle_coin}
        return {"category": "linear", "symbol": op.symbol}

    def _place(self, req: OrderRequest) -> dict[str, object]:
        params: dict[str, object] = {
            "category": "linear", "symbol": req.symbol, "side": "Buy" if req.amount > 0 else "Sell",
            "orderType": "Market" if req.price is None else "Limit",
            "qty": wire_number(abs(req.amount))}
        if req.price is not None:
            params["price"] = wire_number(req.price)
            params["timeInForce"] = "PostOnly" if is_post_only(req.tif) else \
                _TIF.get(req.tif.upper(), "GTC")
        if req.reduce_only:
            params["reduceOnly"] = True
        params["orderLinkId"] = self.cloids.wire(req.cloid)
        return params

    def _amend(self, req: AmendRequest) -> dict[str, object]:
        params: dict[str, object] = {}
        if req.amount is not None:
            params["qty"] = wire_number(abs(req.amount))
        if req.price is not None:
            params["price"] = wire_number(req.price)
        return self._ids(req, params)

    def _ids(self, req: CancelRequest | AmendRequest, extra: dict[str, object]
             ) -> dict[str, object]:
        params: dict[str, object] = {"category": "linear", "symbol": req.symbol}
        if req.oid is not None:
            params["orderId"] = req.oid
        elif req.cloid is not None:
            params["orderLinkId"] = self.cloids.wire(req.cloid)
        return params | extra

    def rest_call(self, op: Op, now_ms: int) -> Request:
        body = orjson.dumps(self._params(op))
        return Request("POST", _PATHS[op.kind], body=body,
                       headers=self._headers(now_ms, body.decode()))

    def _headers(self, now_ms: int, payload: str) -> dict[str, str]:
        key = self._keys.key.reveal()
        sign = hmac_hex(self._keys.secret.reveal(),
                        bybit_rest_payload(now_ms, key, self.recv_window, payload))
        return {"X-BAPI-API-KEY": key, "X-BAPI-TIMESTAMP": str(now_ms),
                "X-BAPI-RECV-WINDOW": str(self.recv_window), "X-BAPI-SIGN": sign}

    def read_rest(self, op: Op, status: int, body: bytes,
                  headers: Mapping[str, str]) -> list[Answer]:
        if status == 403:
            raise RateLimited("HTTP 403: IP rate limit (Bybit bans for 10 minutes)",
                              venue="bybit", retry_after=600.0)
        if status == 429:
            raise RateLimited(f"HTTP 429: {body[:200]!r}", venue="bybit",
                              retry_after=_reset_in(headers))
        if status == 401:
            raise AuthError(f"HTTP 401: {body[:200]!r}", venue="bybit")
        if status >= 400:
            raise VenueError(f"HTTP {status}: {body[:200]!r}", venue="bybit")
        data = orjson.loads(body)
        _raise_for_code(data, headers)
        if op.kind is OpKind.BATCH:
            return _batch(data)
        return [_answer(data["retCode"], data.get("retMsg", ""), data.get("result") or {},
                        data.get("time", 0))]

    def uses_ws(self, op: Op) -> bool:
        return op.kind in _WS_OPS

    def order_socket_url(self, ws: str) -> str:
        return f"{ws}/v5/trade"

    def order_socket_open(self, now_ms: int) -> list[bytes]:
        return [self._auth_frame(now_ms)]

    def _auth_frame(self, now_ms: int) -> bytes:
        expires = now_ms + 10_000
        sign = hmac_hex(self._keys.secret.reveal(), bybit_ws_payload(expires))
        return orjson.dumps({"op": "auth", "args": [self._keys.key.reveal(), expires, sign]})

    def ws_call(self, op: Op, now_ms: int, req_id: str) -> bytes:
        return orjson.dumps({"reqId": req_id, "header": {
            "X-BAPI-TIMESTAMP": str(now_ms), "X-BAPI-RECV-WINDOW": str(self.recv_window)},
            "op": _WS_OPS[op.kind], "args": [self._params(op)]})

    def read_ws(self, frame: bytes | str) -> WsAnswer | None:
        data = orjson.loads(frame)
        if data.get("op") == "auth":
            return WsAnswer("auth", [Answer(data.get("retCode") == 0, str(data.get("retCode")),
                                            data.get("retMsg", ""))])
        if "reqId" not in data:
            return None  # pong
        headers = data.get("header") or {}
        observations = self.rate_limits(headers, 0)
        req_id, code = str(data["reqId"]), int(data.get("retCode", 0))
        try:
            _raise_for_code(data, headers)
        except (RateLimited, AuthError) as exc:
            return WsAnswer(req_id, [], observations, exc)
        return WsAnswer(req_id, [_answer(code, data.get("retMsg", ""), data.get("data") or {},
                                         int(headers.get("Timenow", 0)))], observations)

    # -- user stream ------------------------------------------------------------------------

    def user_socket_url(self, ws: str) -> str:
        return f"{self._private_ws}/v5/private"

    def user_socket_open(self, now_ms: int) -> list[bytes]:
        return [self._auth_frame(now_ms), orjson.dumps(
            {"op": "subscribe", "args": ["order", "execution", "position", "wallet"]})]

    def parse_user(self, frame: bytes | str, local_ts: int) -> list[PrivateEvent]:
        env = _envelope.decode(frame)
        if not env.data:
            if env.success is False:
                raise AuthError(f"private stream refused {env.op}: {env.ret_msg or env.retMsg}",
                                venue="bybit")
            return []
        if env.topic == "order":
            return [self._order(o, local_ts) for o in _orders.decode(env.data)]
        if env.topic == "execution":
            return [self._fill(e, local_ts) for e in _executions.decode(env.data)
                    if e.execType in _TRADES]
        if env.topic == "position":
            return [_position(p, local_ts) for p in _positions.decode(env.data)
                    if p.positionIdx == 0]
        if env.topic == "wallet":
            ts = ms_to_ns(env.creationTime)
            return [_balance(w, c, ts, local_ts) for w in _wallets.decode(env.data)
                    for c in w.coin]
        return []

    def _order(self, o: _Order, local_ts: int, *, snapshot: bool = False) -> OrderUpdate:
        return order_state(
            "bybit", o.symbol, kind=OrderEventKind.STATE if snapshot else _kind(o),
            status=_STATUS.get(o.orderStatus, "NEW"), cloid=self.cloids.ours(o.orderLinkId),
            oid=o.orderId, amount=signed(dec(o.qty), o.side == "Buy"),
            price=None if o.orderType == "Market" else dec(o.price),
            filled=dec(o.cumExecQty), ts_ms=int(o.updatedTime), local_ts=local_ts,
            tif=o.timeInForce, reduce_only=o.reduceOnly,
            reason=o.rejectReason if o.rejectReason not in ("", "EC_NoError") else "")

    def _fill(self, e: _Execution, local_ts: int) -> Fill:
        return Fill("bybit", e.symbol, ms_to_ns(int(e.execTime)), local_ts,
                    self.cloids.ours(e.orderLinkId), e.orderId, e.execId,
                    1 if e.side == "Buy" else -1, dec(e.execPrice), dec(e.execQty),
                    dec(e.execFee), e.feeCurrency or _settle_coin(e.symbol), e.isMaker)

    # -- snapshots --------------------------------------------------------------------------

    def query_call(self, symbol: str, cloid: str | None, oid: str | None,
                   now_ms: int) -> Request:
        params = {"category": "linear", "symbol": symbol}
        params |= {"orderId": oid} if oid is not None else \
            {"orderLinkId": self.cloids.wire(cloid or "")}
        return self._get("/v5/order/realtime", params, now_ms)

    def parse_query(self, status: int, body: bytes, local_ts: int) -> OrderUpdate | None:
        if status >= 400:
            raise VenueError(f"order query answered HTTP {status}: {body[:200]!r}",
                             venue="bybit")
        data = orjson.loads(body)
        _raise_for_code(data, {})
        found = _orders.decode(orjson.dumps(data["result"]["list"]))
        return self._order(found[0], local_ts, snapshot=True) if found else None

    def funding_calls(self, symbol: str) -> list[Request]:
        query = {"category": "linear", "symbol": symbol}
        return [Request("GET", "/v5/market/tickers", query),
                Request("GET", "/v5/market/instruments-info", query)]

    def parse_funding(self, symbol: str, bodies: list[bytes], now_ms: int,
                      local_ts: int) -> FundingState:
        tickers, info = (orjson.loads(body) for body in bodies)
        ticker = tickers["result"]["list"][0]
        minutes = int(info["result"]["list"][0].get("fundingInterval") or 480)
        return FundingState("bybit", symbol, ms_to_ns(int(tickers.get("time", now_ms))),
                            local_ts, dec(ticker["fundingRate"]), minutes * 60 * 10**9,
                            ms_to_ns(int(ticker["nextFundingTime"])), dec(ticker["markPrice"]))

    def _get(self, path: str, params: dict[str, str], now_ms: int) -> Request:
        query = "&".join(f"{k}={v}" for k, v in params.items())
        return Request("GET", path, params, headers=self._headers(now_ms, query))

    def snapshot_call(self, kind: Snapshot, now_ms: int) -> Request:
        path, params = {
            Snapshot.ORDERS: ("/v5/order/realtime",
                              {"category": "linear", "settleCoin": self.settle_coin}),
            Snapshot.POSITIONS: ("/v5/position/list",
                                 {"category": "linear", "settleCoin": self.settle_coin}),
            Snapshot.BALANCES: ("/v5/account/wallet-balance", {"accountType": "UNIFIED"}),
        }[kind]
        return self._get(path, params, now_ms)

    def parse_snapshot(self, kind: Snapshot, body: bytes, local_ts: int
                       ) -> Sequence[OrderUpdate | PositionState | BalanceState]:
        data = orjson.loads(body)
        _raise_for_code(data, {})
        rows = orjson.dumps(data["result"]["list"])
        if kind is Snapshot.ORDERS:
            return [self._order(o, local_ts, snapshot=True) for o in _orders.decode(rows)]
        if kind is Snapshot.POSITIONS:
            return [_position(p, local_ts) for p in _positions.decode(rows)
                    if p.positionIdx == 0]
        ts = ms_to_ns(int(data.get("time", 0)))
        return [_balance(w, c, ts, local_ts) for w in _wallets.decode(rows) for c in w.coin]

    def rate_limits(self, headers: Mapping[str, str], now_ms: int) -> list[Observation]:
        lower = {k.lower(): v for k, v in headers.items()}
        if "x-bapi-limit" not in lower or "x-bapi-limit-status" not in lower:
            return []
        limit = int(lower["x-bapi-limit"])
        reset = lower.get("x-bapi-limit-reset-timestamp")
        return [Observation("endpoint", limit - int(lower["x-bapi-limit-status"]), limit,
                            ms_to_ns(int(reset)) if reset else None)]


def _reset_in(headers: Mapping[str, str]) -> float | None:
    lower = {k.lower(): v for k, v in headers.items()}
    reset, now = lower.get("x-bapi-limit-reset-timestamp"), lower.get("timenow")
    if reset is None or now is None:
        return None
    return max(0.0, (int(reset) - int(now)) / 1000)


def _raise_for_code(data: dict, headers: Mapping[str, str]) -> None:
    code = int(data.get("retCode", 0))
    if code in _RATE_CODES:
        raise RateLimited(f"retCode {code}: {data.get('retMsg')}", venue="bybit",
                          retry_after=_reset_in(headers))
    if code in _AUTH_CODES:
        raise AuthError(f"retCode {code}: {data.get('retMsg')}", venue="bybit")


def _answer(code: int, message: str, result: dict, time_ms: object) -> Answer:
    if code != 0:
        return Answer(False, str(code), message)
    return Answer(True, oid=result.get("orderId") or None,
                  exchange_ts=ms_to_ns(int(str(time_ms or 0))))


def _batch(data: dict) -> list[Answer]:
    results = (data.get("result") or {}).get("list") or []
    infos = (data.get("retExtInfo") or {}).get("list") or [{}] * len(results)
    return [_answer(int(info.get("code", 0)), info.get("msg", ""), result, data.get("time", 0))
            for result, info in zip(results, infos, strict=True)]


def _settle_coin(symbol: str) -> str:
    return "USDC" if symbol.endswith(("USDC", "PERP")) else "USDT"


def _position(p: _Position, local_ts: int) -> PositionState:
    size = dec(p.size)
    return PositionState("bybit", p.symbol, ms_to_ns(int(p.updatedTime or 0)), local_ts,
                         -size if p.side == "Sell" else size, dec(p.entryPrice or p.avgPrice),
                         dec(p.unrealisedPnl))


def _balance(w: _Wallet, c: _Coin, ts: int, local_ts: int) -> BalanceState:
    """A coin's balance; available as ``availableToWithdraw``'s deprecation note says
    (the ``wallet`` topic and ``wallet-balance`` references): cross and portfolio margin,
    the account's ``totalAvailableBalance`` (USD) converted into the coin at its index
    price, here ``usdValue / equity``; isolated margin, the coin's own formula."""
    wallet, equity, usd = dec(c.walletBalance), dec(c.equity), dec(c.usdValue)
    if w.totalAvailableBalance and usd > 0 and equity > 0:
        available = dec(w.totalAvailableBalance) * equity / usd
    else:
        available = wallet - dec(c.totalPositionIM) - dec(c.totalOrderIM) - dec(c.locked) \
            - dec(c.bonus)
    return BalanceState("bybit", c.coin, ts, local_ts, wallet, equity, available)



def _kind(o: _Order) -> OrderEventKind:
    if o.orderStatus in ("Cancelled", "PartiallyFilledCanceled", "Deactivated"):
        return OrderEventKind.CANCEL_ACK if o.cancelType == "CancelByUser" \
            else OrderEventKind.EXPIRE
    return _KIND.get(o.orderStatus, OrderEventKind.STATE)
