"""Signing golden vectors: the venues' own documentation examples where they publish one,
the venue SDK (Hyperliquid) or starknet-py (Paradex) as oracles otherwise.

Sources of the documented vectors:
- Binance USD-M REST, "SIGNED Endpoint Examples for POST /fapi/v1/order"
  (https://developers.binance.com/docs/derivatives/usds-margined-futures/general-info).
- Binance WS API, "SIGNED request example (HMAC)"
  (https://developers.binance.com/docs/binance-spot-api-docs/websocket-api/request-security;
  ws-fapi signs the same way: https://developers.binance.com/docs/derivatives/usds-margined-futures/websocket-api-general-info).
- Binance spot REST HMAC example (https://developers.binance.com/docs/binance-spot-api-docs/rest-api/request-security).
- Bybit v5: the documented string to sign (https://bybit-exchange.github.io/docs/v5/guide,
  example request ``category=option&symbol=BTC-29JUL22-25000-C`` at 1658384314791) and the
  socket auth string (https://bybit-exchange.github.io/docs/v5/ws/connect). Bybit publishes
  no signature value, so the HMAC is recomputed with the standard library.
- WOO X v3, "Request Example" (https://developer.woox.io/api-reference/guide): key
  ``AbmyVJGUpN064ks5ELjLfA==``, timestamp 1578565539808, the normalized strings quoted there.
"""

from __future__ import annotations

import hashlib
import hmac
from decimal import Decimal

import fast_stark_crypto
import pytest
from eth_account import Account
from hyperliquid.utils import signing as hl_sdk
from starknet_py.utils.typed_data import TypedData

from makerlab.live import signing

BINANCE_FUTURES_SECRET = "2b5eb11e18796d12d88f13dc27dbbd02c2cc51ff7059765ed9821957d82bb4d9"
BINANCE_DOC_SECRET = "NhqPtmdSJYdKjVHjA7PZj4Mge3R5YNiP1e3UZjInClVN65XAbvqqM6A7H5fATj0j"
BINANCE_DOC_KEY = "vmPUZE6mv9SD5VNHk4HlWFsOr6aKE2zvsw0MuIgwCIPy6utIco14y7Ju91duEh8A"


def test_binance_futures_rest_doc_vector():
    params = {"symbol": "BTCUSDT", "side": "BUY", "type": "LIMIT", "quantity": 1,
              "price": 9000, "timeInForce": "GTC", "recvWindow": 5000,
              "timestamp": 1591702613943}
    query = signing.binance_query(params)
    assert query == ("symbol=BTCUSDT&side=BUY&type=LIMIT&quantity=1&price=9000&timeInForce=GTC"
                     "&recvWindow=5000&timestamp=1591702613943")
    assert signing.hmac_hex(BINANCE_FUTURES_SECRET, query) == \
        "3c661234138461fcc7a7d8746c6558c9842d4e10870d2ecbedf7777cad694af9"


def test_binance_spot_rest_doc_vector():
    query = signing.binance_query({"symbol": "LTCBTC", "side": "BUY", "type": "LIMIT",
                                   "timeInForce": "GTC", "quantity": 1, "price": "0.1",
                                   "recvWindow": 5000, "timestamp": 1499827319559})
    assert signing.hmac_hex(BINANCE_DOC_SECRET, query) == \
        "c8db56825ae71d6d79447849e617115f4a920fa2acdcab2b053c4b2838bd6b71"


def test_binance_ws_api_doc_vector_sorts_params_and_skips_the_signature():
    params = {"symbol": "BTCUSDT", "side": "SELL", "type": "LIMIT", "timeInForce": "GTC",
              "quantity": "0.01000000", "price": "52000.00", "newOrderRespType": "ACK",
              "recvWindow": 100, "timestamp": 1645423376532, "apiKey": BINANCE_DOC_KEY,
              "signature": "ignored"}
    payload = signing.binance_ws_payload(params)
    assert payload.startswith(f"apiKey={BINANCE_DOC_KEY}&newOrderRespType=ACK&price=52000.00")
    assert payload.endswith("timeInForce=GTC&timestamp=1645423376532&type=LIMIT")
    assert signing.hmac_hex(BINANCE_DOC_SECRET, payload) == \
        "cc15477742bd704c29492d96c7ead9414dfd8e0ec4a00f947bb5bb454ddbd08a"


def test_bybit_strings_to_sign():
    payload = signing.bybit_rest_payload(1658384314791, "XXXXXXXXXX", 5000,
                                         "category=option&symbol=BTC-29JUL22-25000-C")
    assert payload == "1658384314791XXXXXXXXXX5000category=option&symbol=BTC-29JUL22-25000-C"
    assert signing.bybit_ws_payload(1662350400000) == "GET/realtime1662350400000"
    expected = hmac.new(b"secret", payload.encode(), hashlib.sha256).hexdigest()
    assert signing.hmac_hex("secret", payload) == expected


def test_woo_v3_doc_strings():
    assert signing.woo_payload(1578565539808, "get", "/v3/algo/orders?algoType=STOP", "") == \
        "1578565539808GET/v3/algo/orders?algoType=STOP"
    body = ('{"symbol": "PERP_BTC_USDT", "side": "BUY", "reduceOnly": false, "type": "MARKET", '
            '"quantity": "1", "algoType": "TRAILING_STOP", "callbackRate": "100"}')
    assert signing.woo_payload(1578565539808, "POST", "/v3/algo/order", body) == \
        "1578565539808POST/v3/algo/order" + body


HL_KEY = "0x" + "12" * 32
HL_ORDER = {"type": "order", "orders": [{"a": 0, "b": True, "p": "100000", "s": "0.0014",
                                         "r": False, "t": {"limit": {"tif": "Alo"}},
                                         "c": "0x" + "ab" * 16}], "grouping": "na"}
HL_CANCEL = {"type": "cancelByCloid", "cancels": [{"asset": 3, "cloid": "0x" + "01" * 16}]}
HL_SCHEDULE = {"type": "scheduleCancel", "time": 1732702760305}


@pytest.mark.parametrize("action", [HL_ORDER, HL_CANCEL, HL_SCHEDULE])
@pytest.mark.parametrize(("mainnet", "vault", "expires"), [
    (True, None, None), (False, "0x" + "cd" * 20, None), (True, None, 1732702800000)])
def test_hyperliquid_l1_signature_matches_the_sdk(action, mainnet, vault, expires):
    ours = signing.hl_sign_l1_action(HL_KEY, action, 1732702700305, mainnet=mainnet,
                                     vault=vault, expires_after=expires)
    sdk = hl_sdk.sign_l1_action(Account.from_key(HL_KEY), action, vault, 1732702700305,
                                expires, mainnet)
    assert ours == sdk
    recovered = hl_sdk.recover_agent_or_user_from_l1_action(action, ours, vault, 1732702700305,
                                                            expires, mainnet)
    assert recovered == Account.from_key(HL_KEY).address


def test_hyperliquid_golden_vector():
    """Generated with hyperliquid-python-sdk 0.24.0 (the oracle above), kept as a literal so
    a change of the SDK cannot move both sides."""
    assert signing.hl_sign_l1_action(HL_KEY, HL_ORDER, 1732702700305, mainnet=True) == {
        "r": "0x75f185f24fdfb375d0e572c7c0fbba0d81d612667b55d540e88e80ae19598c00",
        "s": "0x7212fbcc4c427c9e79b76f48b4a8f4f501f4d0eb84049a8e893b4cdca8b76f20", "v": 28}


PDX_ACCOUNT = "0x129f3dc1b8962d8a87abc692424c78fda963ade0e1cd17bf3d1c26f8d41ee7a"
PDX_CHAIN = "PRIVATE_SN_PARACLEAR_MAINNET"
PDX_KEY = "0x" + "0123456789abcdef" * 3 + "01"
_DOMAIN_TYPES = [{"name": n, "type": "felt"} for n in ("name", "chainId", "version")]


def _typed(primary, names, message):
    return TypedData.from_dict({
        "message": message, "primaryType": primary,
        "domain": {"name": "Paradex", "chainId": hex(signing.short_string(PDX_CHAIN)),
                   "version": "1"},
        "types": {"StarkNetDomain": _DOMAIN_TYPES,
                  primary: [{"name": n, "type": "felt"} for n in names]}})


@pytest.mark.parametrize(("buy", "kind", "size", "price"), [
    (True, "LIMIT", "0.01", "29500.00"), (False, "MARKET", "1.5", "0"),
    (False, "LIMIT", "123.45678901", "0.00012345")])
def test_paradex_order_hash_matches_starknet_py(buy, kind, size, price):
    message = {"timestamp": "1696291200000", "market": "BTC-USD-PERP", "side": "1" if buy else "2",
               "orderType": kind, "size": str(int(Decimal(size) * 10**8)),
               "price": str(int(Decimal(price) * 10**8))}
    oracle = _typed("Order", list(message), message).message_hash(int(PDX_ACCOUNT, 16))
    ours = signing.paradex_order_hash(PDX_ACCOUNT, PDX_CHAIN, timestamp_ms=1696291200000,
                                      market="BTC-USD-PERP", buy=buy, order_type=kind,
                                      size=Decimal(size), price=Decimal(price))
    assert ours == oracle


def test_paradex_auth_hash_matches_starknet_py_and_signature_verifies():
    message = {"method": "POST", "path": "/v1/auth", "body": "", "timestamp": 1700000000,
               "expiration": 1700086400}
    oracle = _typed("Request", list(message), message).message_hash(int(PDX_ACCOUNT, 16))
    ours = signing.paradex_auth_hash(PDX_ACCOUNT, PDX_CHAIN, timestamp=1700000000,
                                     expiration=1700086400)
    assert ours == oracle
    r, s = signing.stark_sign(PDX_KEY, ours)
    public = fast_stark_crypto.get_public_key(int(PDX_KEY, 16))
    assert fast_stark_crypto.verify(public, ours, r, s)
    assert not fast_stark_crypto.verify(public, ours + 1, r, s)


def test_paradex_golden_order_hash():
    """starknet-py 0.30.0's value for the first case above."""
    assert signing.paradex_order_hash(
        PDX_ACCOUNT, PDX_CHAIN, timestamp_ms=1696291200000, market="BTC-USD-PERP", buy=True,
        order_type="LIMIT", size=Decimal("0.01"), price=Decimal("29500.00")) == \
        0x14315c73e4a0d2973511bffed8254a2ab00573edde0dcc5fb04e84c9972980b


def test_short_string_limits():
    assert signing.short_string("POST") == int.from_bytes(b"POST", "big")
    with pytest.raises(ValueError, match="short string"):
        signing.short_string("x" * 32)
