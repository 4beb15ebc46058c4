"""Request signing for the private venue APIs: pure functions, no I/O, no logging.

- **HMAC-SHA256, hex** (Binance, Bybit, WOO X): the venues differ only in the string
  signed. Binance REST signs the query string as sent; the Binance WS API signs its
  params sorted by name (``apiKey`` and ``timestamp`` included); Bybit REST signs
  ``timestamp + apiKey + recvWindow + (query | body)`` and its sockets
  ``"GET/realtime" + expires``; WOO X v3 signs ``timestamp + METHOD + path?query + body``.
- **Hyperliquid L1 actions**: msgpack of the action (keys in the order the venue's SDK
  builds them) ‖ nonce (8 bytes big-endian) ‖ vault flag (‖ vault address) (‖ 0x00 ‖
  expiresAfter) → keccak → a "phantom agent" ``{source: "a" | "b", connectionId}`` signed
  as EIP-712 typed data (domain ``Exchange``, chainId 1337) with the API wallet's key.
- **Paradex**: StarkNet typed data (revision 0, Pedersen chain hashing) of an ``Order``
  or of the ``/auth`` ``Request``, signed on the Stark curve with ``fast-stark-crypto``.

Secrets arrive as plain strings at the call and are never stored here; callers keep them
in :class:`~makerlab.live.config.Secret`.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping, Sequence
from decimal import Decimal
from functools import cache
from urllib.parse import urlencode

import fast_stark_crypto
import msgpack
from eth_account import Account
from eth_utils import keccak

__all__ = [
    "binance_query",
    "binance_ws_payload",
    "bybit_rest_payload",
    "bybit_ws_payload",
    "hl_action_hash",
    "hl_l1_digest",
    "hl_sign_l1_action",
    "hmac_hex",
    "paradex_auth_hash",
    "paradex_order_hash",
    "short_string",
    "stark_sign",
    "woo_payload",
]


def hmac_hex(secret: str, message: str) -> str:
    """HMAC-SHA256 of ``message`` under ``secret``, lower-case hex."""
    return hmac.new(secret.encode(), message.encode(), hashlib.sha256).hexdigest()


# --------------------------------------------------------------------------- HMAC venues


def binance_query(params: Mapping[str, object]) -> str:
    """Binance REST: the query string exactly as sent (the signed string)."""
    return urlencode([(k, _text(v)) for k, v in params.items()])


def binance_ws_payload(params: Mapping[str, object]) -> str:
    """Binance WS API: every param but ``signature``, sorted by name, ``k=v`` joined by ``&``."""
    return "&".join(f"{k}={_text(params[k])}" for k in sorted(params) if k != "signature")


def bybit_rest_payload(timestamp: int, api_key: str, recv_window: int, payload: str) -> str:
    """Bybit v5 REST: ``timestamp + apiKey + recvWindow + (queryString | jsonBody)``."""
    return f"{timestamp}{api_key}{recv_window}{payload}"


def bybit_ws_payload(expires: int) -> str:
    """Bybit private and trade sockets: ``"GET/realtime" + expires`` (ms)."""
    return f"GET/realtime{expires}"


def woo_payload(timestamp: int, method: str, path: str, body: str) -> str:
    """WOO X v3: ``timestamp + METHOD + path(?query) + body``."""
    return f"{timestamp}{method.upper()}{path}{body}"


def _text(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


# --------------------------------------------------------------------------- Hyperliquid


def hl_action_hash(action: Mapping[str, object], nonce: int, vault: str | None = None,
                   expires_after: int | None = None) -> bytes:
    """The keccak of an L1 action (the phantom agent's ``connectionId``)."""
    data = msgpack.packb(action) + nonce.to_bytes(8, "big")
    if vault is None:
        data += b"\x00"
    else:
        data += b"\x01" + bytes.fromhex(vault.removeprefix("0x"))
    if expires_after is not None:
        data += b"\x00" + expires_after.to_bytes(8, "big")
    return keccak(data)


@cache
def _hl_domain_separator() -> bytes:
    domain_type = keccak(b"EIP712Domain(string name,string version,uint256 chainId,"
                         b"address verifyingContract)")
    return keccak(domain_type + keccak(b"Exchange") + keccak(b"1")
                  + (1337).to_bytes(32, "big") + bytes(32))


_HL_AGENT_TYPE = keccak(b"Agent(string source,bytes32 connectionId)")


def hl_l1_digest(connection_id: bytes, *, mainnet: bool) -> bytes:
    """The EIP-712 digest of the phantom agent ``{source, connectionId}``."""
    source = keccak(b"a" if mainnet else b"b")
    struct = keccak(_HL_AGENT_TYPE + source + connection_id)
    return keccak(b"\x19\x01" + _hl_domain_separator() + struct)


def hl_sign_l1_action(private_key: str, action: Mapping[str, object], nonce: int, *,
                      mainnet: bool, vault: str | None = None,
                      expires_after: int | None = None) -> dict[str, object]:
    """``{"r", "s", "v"}`` of an L1 action, signed with the API wallet's ``private_key``."""
    digest = hl_l1_digest(hl_action_hash(action, nonce, vault, expires_after), mainnet=mainnet)
    signed = Account.unsafe_sign_hash(digest, private_key)
    return {"r": hex(signed.r), "s": hex(signed.s), "v": signed.v}  # as the SDK writes them


# --------------------------------------------------------------------------- Paradex

_MASK_250 = (1 << 250) - 1
_DOMAIN = "StarkNetDomain(name:felt,chainId:felt,version:felt)"
_ORDER = "Order(timestamp:felt,market:felt,side:felt,orderType:felt,size:felt,price:felt)"
_REQUEST = "Request(method:felt,path:felt,body:felt,timestamp:felt,expiration:felt)"
PARADEX_SCALE = Decimal(10) ** 8  # sizes and prices are signed as integers of 1e-8


def short_string(text: str) -> int:
    """A Cairo short string (≤ 31 ASCII characters) as its felt."""
    if len(text) > 31 or not text.isascii():
        raise ValueError(f"not a Cairo short string: {text!r}")
    return int.from_bytes(text.encode(), "big")


@cache
def _selector(name: str) -> int:
    return int.from_bytes(keccak(name.encode()), "big") & _MASK_250


def _hash_elements(values: Sequence[int]) -> int:
    acc = 0
    for value in values:
        acc = fast_stark_crypto.pedersen_hash(acc, value)
    return fast_stark_crypto.pedersen_hash(acc, len(values))


@cache
def _domain_hash(chain_id: str) -> int:
    return _hash_elements([_selector(_DOMAIN), short_string("Paradex"),
                           short_string(chain_id), 1])


def _message_hash(account: str, chain_id: str, type_string: str, values: Sequence[int]) -> int:
    struct = _hash_elements([_selector(type_string), *values])
    return _hash_elements([short_string("StarkNet Message"), _domain_hash(chain_id),
                           int(account, 16), struct])


def paradex_order_hash(account: str, chain_id: str, *, timestamp_ms: int, market: str,
                       buy: bool, order_type: str, size: Decimal, price: Decimal) -> int:
    """The typed-data hash of an order (``price`` 0 for market orders)."""
    return _message_hash(account, chain_id, _ORDER, [
        timestamp_ms, short_string(market), 1 if buy else 2, short_string(order_type),
        int(size * PARADEX_SCALE), int(price * PARADEX_SCALE)])


def paradex_auth_hash(account: str, chain_id: str, *, timestamp: int, expiration: int) -> int:
    """The typed-data hash of ``POST /v1/auth`` (timestamps in seconds)."""
    return _message_hash(account, chain_id, _REQUEST, [
        short_string("POST"), short_string("/v1/auth"), 0, timestamp, expiration])


def stark_sign(private_key: str, message_hash: int) -> tuple[int, int]:
    """``(r, s)`` of ``message_hash`` on the Stark curve."""
    return fast_stark_crypto.sign(int(private_key, 16), message_hash)
