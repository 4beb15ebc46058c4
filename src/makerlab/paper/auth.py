"""Signature checks of the paper exchange's private protocols, written from the venues'
documentation (not from makerlab's client code, so a client bug cannot hide behind the
same bug here). Pure functions; secrets are passed in and never kept or logged.

- **Binance USD-M REST**: HMAC-SHA256 (hex) of the total params: the query string as
  sent, then the form body, without the ``signature`` parameter.
- **Binance WS API**: HMAC-SHA256 of every param but ``signature``, sorted by name,
  joined as ``k=v&k=v`` (booleans as ``true``/``false``).
- **Bybit v5 REST**: HMAC-SHA256 of ``timestamp + api key + recv window + (query string |
  JSON body)``; sockets: of ``"GET/realtime" + expires``.
- **Hyperliquid L1 actions**: the signer recovered from the EIP-712 signature of the
  phantom agent ``{source: "a" (mainnet) | "b", connectionId: keccak(msgpack(action) ‖
  nonce ‖ vault flag (‖ vault))}`` in domain ``Exchange``/``1``/chain 1337, built with
  ``eth_account``'s typed-data encoder.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from typing import Any

import msgpack
from eth_account import Account
from eth_account.messages import encode_typed_data
from eth_utils import keccak

__all__ = ["binance_rest_ok", "binance_ws_ok", "bybit_rest_ok", "bybit_ws_ok", "hl_address",
           "hl_signer", "split_signature"]


def _hmac(secret: str, message: str) -> str:
    return hmac.new(secret.encode(), message.encode(), hashlib.sha256).hexdigest()


def _same(expected: str, given: object) -> bool:
    return isinstance(given, str) and hmac.compare_digest(expected, given.lower())


def split_signature(raw_query: str) -> tuple[str, str | None]:
    """``(query without its signature parameter, the signature)`` of a raw query."""
    kept, signature = [], None
    for part in raw_query.split("&") if raw_query else []:
        if part.startswith("signature="):
            signature = part[len("signature="):]
        else:
            kept.append(part)
    return "&".join(kept), signature


def binance_rest_ok(secret: str, raw_query: str, body: str) -> bool:
    """Whether a Binance REST call's ``signature`` (in its query or body) is right."""
    query, in_query = split_signature(raw_query)
    form, in_body = split_signature(body)
    total = query + form
    return _same(_hmac(secret, total), in_query or in_body)


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def binance_ws_ok(secret: str, params: Mapping[str, Any]) -> bool:
    """Whether a Binance WS API request's ``signature`` is right."""
    payload = "&".join(f"{k}={_text(params[k])}" for k in sorted(params) if k != "signature")
    return _same(_hmac(secret, payload), params.get("signature"))


def bybit_rest_ok(secret: str, timestamp: str, key: str, recv_window: str, payload: str,
                  sign: str | None) -> bool:
    """Whether a Bybit v5 REST call's ``X-BAPI-SIGN`` is right."""
    return _same(_hmac(secret, f"{timestamp}{key}{recv_window}{payload}"), sign)


def bybit_ws_ok(secret: str, expires: object, sign: object) -> bool:
    """Whether a Bybit socket ``auth`` signature is right."""
    return _same(_hmac(secret, f"GET/realtime{expires}"), sign)


def _connection_id(action: Any, nonce: int, vault: str | None) -> bytes:
    data = msgpack.packb(action) + nonce.to_bytes(8, "big")
    data += b"\x00" if vault is None else b"\x01" + bytes.fromhex(vault.removeprefix("0x"))
    return keccak(data)


def hl_signer(action: Any, nonce: int, signature: Mapping[str, Any], *, mainnet: bool,
              vault: str | None = None) -> str | None:
    """The address that signed an L1 action (lower case), or None for a malformed
    signature."""
    typed = {
        "domain": {"name": "Exchange", "version": "1", "chainId": 1337,
                   "verifyingContract": "0x" + "00" * 20},
        "types": {"EIP712Domain": [{"name": "name", "type": "string"},
                                   {"name": "version", "type": "string"},
                                   {"name": "chainId", "type": "uint256"},
                                   {"name": "verifyingContract", "type": "address"}],
                  "Agent": [{"name": "source", "type": "string"},
                            {"name": "connectionId", "type": "bytes32"}]},
        "primaryType": "Agent",
        "message": {"source": "a" if mainnet else "b",
                    "connectionId": _connection_id(action, nonce, vault)},
    }
    try:
        vrs = (int(signature["v"]), int(str(signature["r"]), 16), int(str(signature["s"]), 16))
        return str(Account.recover_message(encode_typed_data(full_message=typed),
                                           vrs=vrs)).lower()
    except (KeyError, TypeError, ValueError):
        return None


def hl_address(private_key: str) -> str:
    """The (lower-case) address of an API wallet's private key."""
    return str(Account.from_key(private_key).address).lower()
