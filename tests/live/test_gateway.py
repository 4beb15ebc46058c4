"""Gateway configuration, secrets, offline behaviour, backoff and the spec cache."""

from __future__ import annotations

import asyncio
import logging
import random
from decimal import Decimal

import pytest
from fake_venue import FakeVenue

from makerlab import Gateway as PublicGateway
from makerlab.core.instruments import InstrumentSpec, SigFigSpec
from makerlab.data.specs import read_specs, write_specs
from makerlab.errors import ConfigError, ConnectionLost
from makerlab.live.gateway import Gateway
from makerlab.live.transport import Backoff, ReconnectPolicy
from makerlab.trading.feed import Feed
from makerlab.trading.protocols import MarketDataSource

SECRET = "s3cr3t-VALUE-never-shown"


def test_public_name_and_one_market_data_per_gateway():
    gw = PublicGateway({"binance": {}, "binance_spot": {}})
    assert gw is not None and isinstance(gw.market_data(), MarketDataSource)
    assert gw.market_data() is gw.market_data() and not gw.connected


def test_real_endpoints_per_env():
    gw = Gateway({"binance": {}, "bybit": {"env": "demo"}, "hyperliquid": {"env": "testnet"},
                  "paradex": {}, "woox": {"app_id": "abc"}})
    eps = {exc: cfg.endpoints for exc, cfg in gw.configs.items()}
    assert eps["binance"].rest == "https://fapi.binance.com"
    assert eps["binance"].ws == "wss://fstream.binance.com"
    assert eps["bybit"].rest == "https://api-demo.bybit.com"
    assert eps["hyperliquid"].ws == "wss://api.hyperliquid-testnet.xyz"
    assert gw.configs["woox"].make_venue().stream_url("wss://w", []) == "wss://w/ws/stream/abc"


def test_paper_base_url_derives_the_websocket_url():
    gw = Gateway({"binance": {"env": "paper", "base_url": "http://127.0.0.1:8765/binance"},
                  "bybit": {"rest_url": "http://h/r", "ws_url": "ws://h/w"}})
    assert gw.configs["binance"].endpoints.ws == "ws://127.0.0.1:8765/binance"
    assert gw.configs["binance"].endpoints.rest == "http://127.0.0.1:8765/binance"
    assert gw.configs["bybit"].endpoints.rest == "http://h/r"


@pytest.mark.parametrize(("cfg", "match"), [
    ({"kraken": {}}, "unknown exchange 'kraken'"),
    ({"binance": {"apikey": "X"}}, "unknown config key"),
    ({"binance": {"env": "demo"}}, "unknown env 'demo'; known: mainnet, testnet, paper"),
    ({"binance": {"env": "paper"}}, "needs base_url"),
    ({"binance": {"key": "K"}}, "both 'key' and 'secret'"),
    ({"binance": {"base_url": "ftp://x"}}, "http"),
    ({"bybit": {"app_id": "x"}}, "unknown config key"),
])
def test_config_errors(cfg, match):
    with pytest.raises(ConfigError, match=match):
        Gateway(cfg)


def test_a_pasted_credential_is_refused_without_echoing_it():
    with pytest.raises(ConfigError) as err:
        Gateway({"bybit": {"key": "BYBIT_KEY", "secret": SECRET + "/+="}})
    assert SECRET not in str(err.value)


def test_secrets_are_read_at_init_and_never_shown(monkeypatch, caplog, tmp_path):
    monkeypatch.setenv("MK_TEST_KEY", "key-" + SECRET)
    monkeypatch.setenv("MK_TEST_SECRET", SECRET)
    monkeypatch.chdir(tmp_path)  # no stray .env
    gw = Gateway({"bybit": {"key": "MK_TEST_KEY", "secret": "MK_TEST_SECRET", "env": "demo"}},
                 spec_cache=tmp_path)
    caplog.set_level(logging.DEBUG)

    async def main():
        async with gw:
            key, secret = gw.credentials("bybit")
            shown = [repr(gw), repr(gw.configs), repr(key), str(secret), f"{secret}",
                     repr(gw.credentials("bybit"))]
            return key.reveal(), secret.reveal(), shown

    key, secret, shown = asyncio.run(main())
    assert (key, secret) == ("key-" + SECRET, SECRET)
    for text in [*shown, caplog.text]:
        assert SECRET not in text


def test_a_missing_variable_names_it(monkeypatch, tmp_path):
    monkeypatch.delenv("MK_ABSENT", raising=False)
    monkeypatch.chdir(tmp_path)
    gw = Gateway({"bybit": {"key": "MK_ABSENT", "secret": "MK_ABSENT"}})
    with pytest.raises(ConfigError, match="MK_ABSENT"):
        asyncio.run(gw.init_clients())


def test_offline_gateway_opens_nothing():
    gw = Gateway({"binance": {}})

    async def main():
        feed = Feed(gateway=gw)
        with pytest.raises(ConfigError, match="init_clients"):
            await feed.add_l2_book_feed("binance", "BTCUSDT")
        await gw.init_clients()  # a backtest calls it too: no request is sent
        assert gw.connected and gw.market_data().streams() == {}
        await gw.cleanup_clients()
        assert not gw.connected

    asyncio.run(main())


def test_backoff_grows_to_the_ceiling_with_bounded_jitter():
    policy = ReconnectPolicy(initial_delay=0.5, max_delay=4.0, jitter=0.2)
    backoff = Backoff(policy, random.Random(7))
    delays = [backoff.next() for _ in range(7)]
    for delay, base in zip(delays, [0.5, 1, 2, 4, 4, 4, 4], strict=True):
        assert base * 0.8 <= delay <= base * 1.2
    assert len(set(delays)) == 7  # jittered
    backoff.reset()
    assert backoff.next() <= 0.6


def test_spec_cache_round_trip_is_atomic(tmp_path):
    specs = [InstrumentSpec("binance", "BTCUSDT", "BTC", "USDT", "linear_perpetual",
                            Decimal("0.1"), Decimal("0.001"), Decimal("0.001"), Decimal(5)),
             SigFigSpec.hyperliquid("ETH", 4)]
    path = write_specs(tmp_path, "mixed", specs)
    assert [p.name for p in tmp_path.iterdir()] == ["mixed.json"]  # no temporary left
    back = read_specs(path)
    assert back["BTCUSDT"] == specs[0] and back["ETH"] == specs[1]
    assert back["ETH"].round_price("3500.12345") == Decimal("3500.1")
    with pytest.raises(ConfigError, match="not a readable spec file"):
        read_specs(tmp_path / "absent.json")


def test_specs_fall_back_to_the_cache_when_the_venue_is_down(tmp_path, caplog):
    write_specs(tmp_path, "binance", [InstrumentSpec(
        "binance", "BTCUSDT", "BTC", "USDT", "linear_perpetual", Decimal("0.1"),
        Decimal("0.001"), Decimal("0.001"), Decimal(5))])

    async def main(cache):
        async with FakeVenue() as venue:  # no exchangeInfo route: HTTP 404
            policy = ReconnectPolicy(rest_timeout=2.0)
            async with Gateway({"binance": {"env": "paper", "base_url": venue.url}},
                               spec_cache=cache, policy=policy) as gw:
                return await gw.load_specs("binance")

    assert list(asyncio.run(main(tmp_path))) == ["BTCUSDT"]
    assert "using" in caplog.text
    with pytest.raises(Exception, match="404"):
        asyncio.run(main(tmp_path / "empty"))


def test_rest_errors_map_to_venue_errors(tmp_path):
    async def main():
        gw = Gateway({"binance": {"env": "paper", "base_url": "http://127.0.0.1:9"}},
                     spec_cache=tmp_path, policy=ReconnectPolicy(rest_timeout=1.0))
        async with gw:
            await gw.load_specs("binance")

    with pytest.raises(ConnectionLost, match="binance"):
        asyncio.run(main())
