"""Hyperliquid perpetuals (``hyperliquid``): private wire translation (native).

Credentials: ``key`` names the **account address** (the master account, whose orders and
fills the streams follow), ``secret`` the **API wallet's private key** (an agent approved
by that account) that signs every action.

- **Orders**: L1 actions signed as EIP-712 phantom agents
  (:func:`~makerlab.live.signing.hl_sign_l1_action`; ``source`` "a" on mainnet, "b"
  elsewhere), nonce = ms time, strictly increasing. Sent over the websocket ``post``
  method (``/ws``), REST ``POST /exchange`` as the fallback. ``order`` (one or a batch;
  tif ``Alo`` = post-only, ``Gtc``, ``Ioc``; no market orders: send an IOC limit),
  ``cancel`` / ``cancelByCloid``, ``batchModify`` (needs price and amount; keeps the tif
  the order was placed with) and ``scheduleCancel`` (the dead-man switch: at least 5 s
  ahead; 0 unsets it). Hyperliquid has no cancel-all: the order venue cancels each open
  order. Asset ids are indexes in ``meta``'s universe (the login call). Client ids are
  ``0x`` + 32 hex characters (others mapped).
- **User stream**: ``orderUpdates`` (``update_id`` = ``statusTimestamp``; the documented
  ``...Rejected`` statuses are rejections, the other closing ones expiries, the status
  kept as the reason), ``userFills`` (the first message, ``isSnapshot``, replays history
  and is skipped; ``crossed`` means taker; fee in ``feeToken``) and ``webData2``'s
  ``clearinghouseState`` (positions; USDC balance: equity = ``accountValue``, available =
  ``withdrawable``).
- **Reconciliation**: ``/info`` ``frontendOpenOrders`` (not ``openOrders``: its rows carry
  only the remaining ``sz``, so a partly filled order would read as unfilled; the frontend
  rows add ``origSz``, the placed size; untriggered trigger orders, ``isTrigger``, are not
  on the book and are skipped) and ``clearinghouseState``; one order by ``orderStatus``
  (``unknownOid`` = unknown). Funding: ``metaAndAssetCtxs`` (the hourly
  rate of the current hour, settled on the hour; mark ``markPx``).
- **Rate limits**: no headers; each action spends ``1 + floor(orders / 40)`` of the
  documented 1200 per minute (``weight_1m``); HTTP 429 → :class:`RateLimited`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import replace
from decimal import Decimal
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
from makerlab.errors import ConfigError, RateLimited, VenueError
from makerlab.live.config import Secret
from makerlab.live.ratelimit import Observation
from makerlab.live.signing import hl_sign_l1_action
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
    as_type,
    dec,
    is_post_only,
    order_state,
    signed,
    wire_number,
)
from makerlab.trading.protocols import AmendRequest, CancelRequest, OrderRequest

__all__ = ["HyperliquidPrivate"]

_CLOID = re.compile(r"^0x[0-9a-f]{32}$")
_TIF = {"GTC": "Gtc", "IOC": "Ioc"}
_STATUS = {"open": ("NEW", OrderEventKind.ACK), "filled": ("FILLED", OrderEventKind.FILL),
           "canceled": ("CANCELLED", OrderEventKind.CANCEL_ACK),
           "rejected": ("REJECTED", OrderEventKind.REJECT)}


class _Order(msgspec.Struct):
    coin: str
    side: str
    limitPx: str
    sz: str
    oid: int
    timestamp: int
    origSz: str = ""
    cloid: str | None = None
    isTrigger: bool = False  # frontendOpenOrders: an untriggered TP/SL, not on the book


class _OrderUpdate(msgspec.Struct):
    order: _Order
    status: str
    statusTimestamp: int


class _Fill(msgspec.Struct):
    coin: str
    px: str
    sz: str
    side: str
    time: int
    oid: int
    tid: int
    fee: str = "0"
    feeToken: str = "USDC"
    crossed: bool = True
    cloid: str | None = None


class _Fills(msgspec.Struct):
    fills: msgspec.Raw = msgspec.Raw()  # read only when not a snapshot replay
    isSnapshot: bool = False


class _Envelope(msgspec.Struct):
    channel: str = ""
    data: msgspec.Raw = msgspec.Raw()


class _OrderStatus(msgspec.Struct):
    status: str
    order: _OrderUpdate | None = None


_envelope = msgspec.json.Decoder(_Envelope)
_order_status = msgspec.json.Decoder(_OrderStatus)
_order_updates = msgspec.json.Decoder(list[_OrderUpdate])
_fills = msgspec.json.Decoder(_Fills)
_open_orders = msgspec.json.Decoder(list[_Order])
_fill_rows = msgspec.json.Decoder(list[_Fill])


class HyperliquidPrivate:
    """Hyperliquid order entry and account stream (see the module docstring)."""

    exchange: ClassVar[str] = "hyperliquid"
    max_batch: ClassVar[int] = 40
    has_cancel_all: ClassVar[bool] = False
    ping_frame: ClassVar[bytes | None] = b'{"method":"ping"}'
    ping_interval: ClassVar[float] = 30.0
    refresh_interval: ClassVar[float] = 0.0
    symbol_scoped: ClassVar[frozenset[OpKind]] = frozenset()

    def __init__(self, creds: tuple[Secret, Secret], env: str, endpoints: Endpoints) -> None:
        address, self._key = creds
        self.address = address.reveal().lower()
        self.mainnet = env == "mainnet"
        self.assets: dict[str, int] = {}
        self.cloids = CloidMap(lambda c: bool(_CLOID.match(c)), lambda c: "0x" + sha_hex(c, 32))
        self._tifs: dict[str, dict[str, object]] = {}
        self._nonce = 0

    def __repr__(self) -> str:
        return f"HyperliquidPrivate({self.address})"

    @property
    def order_socket(self) -> bool:
        return True

    def login_call(self, now_ms: int) -> Request:
        return Request("POST", "/info", body=b'{"type":"meta"}')

    def read_login(self, body: bytes) -> None:
        universe = orjson.loads(body)["universe"]
        self.assets = {row["name"]: index for index, row in enumerate(universe)}

    def refresh_call(self, now_ms: int) -> None:
        return None

    def read_refresh(self, status: int, body: bytes) -> bool:
        return True

    def budget(self, op: Op) -> tuple[str, int, int, float]:
        return ("weight_1m", 1 + len(op.orders) // 40, 1200, 60.0)

    # -- actions ------------------------------------------------------------------------

    def _asset(self, symbol: str) -> int:
        try:
            return self.assets[symbol]
        except KeyError:
            raise ConfigError(f"hyperliquid: unknown coin {symbol!r} (not in meta)") from None

    def _wire(self, req: OrderRequest | AmendRequest, tif: dict[str, object],
              reduce_only: bool) -> dict[str, object]:
        assert req.price is not None and req.amount is not None
        wire: dict[str, object] = {"a": self._asset(req.symbol), "b": req.amount > 0,
                                   "p": wire_number(req.price),
                                   "s": wire_number(abs(req.amount)), "r": reduce_only,
                                   "t": tif}
        if req.cloid is not None:
            wire["c"] = self.cloids.wire(req.cloid)
        return wire

    def _place(self, req: OrderRequest) -> dict[str, object]:
        if req.price is None:
            raise ConfigError("hyperliquid has no market orders: send an IOC limit order")
        if not is_post_only(req.tif) and req.tif.upper() not in _TIF:
            raise ConfigError(f"hyperliquid: time in force {req.tif!r} not supported "
                              "(GTC, IOC, post-only)")
        tif: dict[str, object] = {"limit": {"tif": "Alo" if is_post_only(req.tif)
                                            else _TIF[req.tif.upper()]}}
        self._tifs[req.cloid] = tif
        return self._wire(req, tif, req.reduce_only)

    def action(self, op: Op, now_ms: int) -> dict[str, object]:
        """The unsigned action of ``op`` (keys in the order the venue's SDK builds them)."""
        if op.kind in (OpKind.PLACE, OpKind.BATCH):
            return {"type": "order", "orders": [self._place(as_type(o, OrderRequest))
                                                for o in op.orders], "grouping": "na"}
        if op.kind is OpKind.CANCEL:
            return self._cancel(as_type(op.order, CancelRequest))
        if op.kind is OpKind.AMEND:
            return self._modify(as_type(op.order, AmendRequest))
        if op.kind is OpKind.DEAD_MAN:
            return {"type": "scheduleCancel", "time": now_ms + op.timeout_ms} \
                if op.timeout_ms else {"type": "scheduleCancel"}
        raise ConfigError("hyperliquid has no cancel-all action")

    def _cancel(self, req: CancelRequest) -> dict[str, object]:
        if req.oid is not None:
            return {"type": "cancel", "cancels": [{"a": self._asset(req.symbol),
                                                   "o": int(req.oid)}]}
        assert req.cloid is not None
        return {"type": "cancelByCloid", "cancels": [{"asset": self._asset(req.symbol),
                                                      "cloid": self.cloids.wire(req.cloid)}]}

    def _modify(self, req: AmendRequest) -> dict[str, object]:
        if req.price is None or req.amount is None:
            raise ConfigError("hyperliquid: an amend needs both price and amount")
        tif = self._tifs.get(req.cloid or "", {"limit": {"tif": "Gtc"}})
        target: object = int(req.oid) if req.oid is not None else \
            self.cloids.wire(req.cloid or "")
        return {"type": "batchModify", "modifies": [
            {"oid": target, "order": self._wire(req, tif, False)}]}

    def _payload(self, op: Op, now_ms: int) -> dict[str, object]:
        self._nonce = max(now_ms, self._nonce + 1)
        action = self.action(op, self._nonce)
        signature = hl_sign_l1_action(self._key.reveal(), action, self._nonce,
                                      mainnet=self.mainnet)
        return {"action": action, "nonce": self._nonce, "signature": signature,
                "vaultAddress": None}

    def rest_call(self, op: Op, now_ms: int) -> Request:
        return Request("POST", "/exchange", body=orjson.dumps(self._payload(op, now_ms)))

    def read_rest(self, op: Op, status: int, body: bytes,
                  headers: Mapping[str, str]) -> list[Answer]:
        if status == 429:
            raise RateLimited("HTTP 429", venue="hyperliquid", retry_after=None)
        if status >= 400:
            raise VenueError(f"HTTP {status}: {body[:200]!r}", venue="hyperliquid")
        return _answers(op, orjson.loads(body))

    def uses_ws(self, op: Op) -> bool:
        return op.kind is not OpKind.CANCEL_ALL

    def order_socket_url(self, ws: str) -> str:
        return f"{ws}/ws"

    def order_socket_open(self, now_ms: int) -> list[bytes]:
        return []

    def ws_call(self, op: Op, now_ms: int, req_id: str) -> bytes:
        return orjson.dumps({"method": "post", "id": int(req_id), "request": {
            "type": "action", "payload": self._payload(op, now_ms)}})

    def read_ws(self, frame: bytes | str) -> WsAnswer | None:
        data = orjson.loads(frame)
        if data.get("channel") != "post":
            return None
        post = data["data"]
        response = post["response"]
        if response.get("type") == "error":
            return WsAnswer(str(post["id"]), [Answer(False, "error", str(response["payload"]))])
        return WsAnswer(str(post["id"]), _answers(None, response["payload"]))

    # -- user stream ------------------------------------------------------------------------

    def user_socket_url(self, ws: str) -> str:
        return f"{ws}/ws"

    def user_socket_open(self, now_ms: int) -> list[bytes]:
        return [orjson.dumps({"method": "subscribe", "subscription": {"type": kind,
                                                                      "user": self.address}})
                for kind in ("orderUpdates", "userFills", "webData2")]

    def parse_user(self, frame: bytes | str, local_ts: int) -> list[PrivateEvent]:
        env = _envelope.decode(frame)
        if not env.data:
            return []
        if env.channel == "orderUpdates":
            return [self._update(u, local_ts) for u in _order_updates.decode(env.data)]
        if env.channel in ("userFills", "user"):
            fills = _fills.decode(env.data)
            if fills.isSnapshot or not fills.fills:
                return []
            return [self._fill(f, local_ts) for f in _fill_rows.decode(fills.fills)]
        if env.channel == "webData2":
            return _account(orjson.loads(bytes(env.data)).get("clearinghouseState") or {},
                            local_ts)
        return []  # subscriptionResponse, pong

    def _update(self, u: _OrderUpdate, local_ts: int) -> OrderUpdate:
        o = u.order
        status, kind = _STATUS.get(u.status) or _closed(u.status)
        orig = dec(o.origSz or o.sz)
        filled = orig - dec(o.sz) if status != "FILLED" else orig
        if status == "NEW" and filled > 0:
            status = "PARTIAL"
        return order_state("hyperliquid", o.coin, kind=kind, status=status,
                           cloid=self.cloids.ours(o.cloid), oid=str(o.oid),
                           amount=signed(orig, o.side == "B"), price=dec(o.limitPx),
                           filled=filled, ts_ms=u.statusTimestamp, local_ts=local_ts,
                           reason="" if u.status in _STATUS else u.status)

    def _fill(self, f: _Fill, local_ts: int) -> Fill:
        return Fill("hyperliquid", f.coin, ms_to_ns(f.time), local_ts, self.cloids.ours(f.cloid),
                    str(f.oid), str(f.tid), 1 if f.side == "B" else -1, dec(f.px), dec(f.sz),
                    dec(f.fee), f.feeToken, not f.crossed)

    # -- snapshots ----------------------------------------------------------------------

    def snapshot_call(self, kind: Snapshot, now_ms: int) -> Request:
        info = "frontendOpenOrders" if kind is Snapshot.ORDERS else "clearinghouseState"
        return Request("POST", "/info", body=orjson.dumps({"type": info, "user": self.address}))

    def parse_snapshot(self, kind: Snapshot, body: bytes, local_ts: int
                       ) -> Sequence[OrderUpdate | PositionState | BalanceState]:
        if kind is Snapshot.ORDERS:
            return [self._update(_OrderUpdate(o, "open", o.timestamp), local_ts)
                    for o in _open_orders.decode(body) if not o.isTrigger]
        wanted = PositionState if kind is Snapshot.POSITIONS else BalanceState
        return [e for e in _account(orjson.loads(body), local_ts) if isinstance(e, wanted)]

    def query_call(self, symbol: str, cloid: str | None, oid: str | None,
                   now_ms: int) -> Request:
        target: object = int(oid) if oid is not None else self.cloids.wire(cloid or "")
        return Request("POST", "/info", body=orjson.dumps(
            {"type": "orderStatus", "user": self.address, "oid": target}))

    def parse_query(self, status: int, body: bytes, local_ts: int) -> OrderUpdate | None:
        if status >= 400:
            raise VenueError(f"order query answered HTTP {status}: {body[:200]!r}",
                             venue="hyperliquid")
        answer = _order_status.decode(body)
        if answer.order is None:
            return None  # {"status": "unknownOid"}
        update = self._update(answer.order, local_ts)
        return replace(update, kind=OrderEventKind.STATE)

    def funding_calls(self, symbol: str) -> list[Request]:
        return [Request("POST", "/info", body=b'{"type":"metaAndAssetCtxs"}')]

    def parse_funding(self, symbol: str, bodies: list[bytes], now_ms: int,
                      local_ts: int) -> FundingState:
        meta, contexts = orjson.loads(bodies[0])
        names = [row["name"] for row in meta["universe"]]
        if symbol not in names:
            raise ConfigError(f"hyperliquid: unknown coin {symbol!r} (not in meta)")
        ctx = contexts[names.index(symbol)]
        hour = 3600 * 1000
        return FundingState("hyperliquid", symbol, ms_to_ns(now_ms), local_ts,
                            dec(ctx["funding"]), hour * 10**6,
                            ms_to_ns((now_ms // hour + 1) * hour), dec(ctx.get("markPx")))

    def rate_limits(self, headers: Mapping[str, str], now_ms: int) -> list[Observation]:
        return []


def _closed(status: str) -> tuple[str, OrderEventKind]:
    """A status outside ``_STATUS``: the documented ``...Rejected`` ones (``tickRejected``,
    ``badAloPxRejected``, ``perpMarginRejected``, ...) refused the order; the others
    (``marginCanceled``, ``reduceOnlyCanceled``, ``scheduledCancel``, ...) cancelled it."""
    if status.endswith("Rejected"):
        return "REJECTED", OrderEventKind.REJECT
    return "CANCELLED", OrderEventKind.EXPIRE


def _answers(op: Op | None, payload: dict) -> list[Answer]:
    if payload.get("status") != "ok":
        return [Answer(False, "error", str(payload.get("response")))]
    data = (payload.get("response") or {}).get("data") or {}
    statuses = data.get("statuses")
    if statuses is None:  # scheduleCancel and other actions on no single order
        return [Answer(True)]
    return [_status(s) for s in statuses]


def _status(status: object) -> Answer:
    if status == "success":
        return Answer(True)
    assert isinstance(status, dict)
    if "error" in status:
        return Answer(False, "error", str(status["error"]))
    inner = status.get("resting") or status.get("filled") or {}
    return Answer(True, oid=str(inner["oid"]) if "oid" in inner else None)


def _account(state: dict, local_ts: int) -> list[PrivateEvent]:
    if not state:
        return []
    ts = ms_to_ns(state.get("time", 0))
    positions = [p["position"] for p in state.get("assetPositions", [])]
    out: list[PrivateEvent] = [
        PositionState("hyperliquid", p["coin"], ts, local_ts, dec(p["szi"]),
                      dec(p.get("entryPx")), dec(p.get("unrealizedPnl"))) for p in positions]
    summary = state.get("marginSummary") or state.get("crossMarginSummary") or {}
    equity = dec(summary.get("accountValue"))
    upnl = sum((dec(p.get("unrealizedPnl")) for p in positions), Decimal(0))
    out.append(BalanceState("hyperliquid", "USDC", ts, local_ts, equity - upnl, equity,
                            dec(state.get("withdrawable"))))
    return out
