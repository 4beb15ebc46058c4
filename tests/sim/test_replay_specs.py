"""Any archived market can be replayed: the tutorial's bybit/SOLUSDT setup, with its
instrument spec from a file the user passes, from the venue spec cache, or inferred from
the data with a warning (docs/replay.md, "Instrument specs")."""

from __future__ import annotations

import asyncio
import json
from decimal import Decimal
from pathlib import Path

import pytest
from replay_scenarios import zero_latencies

from makerlab.core.instruments import InstrumentSpec, spec_rows
from makerlab.data.convert import convert
from makerlab.data.specs import write_specs
from makerlab.sim import Replayer
from makerlab.trading.feed import Feed

D = Decimal
EXC, TICKER = "bybit", "SOLUSDT"
HOURS = {"start": "2025-09-04:19", "end": "2025-09-04:19"}
SAMPLES = Path(__file__).resolve().parents[1] / "samples"
ON_TICK, OFF_TICK = D("109750"), D("109751")  # on and off a tick of 5


@pytest.fixture(scope="module")
def archive(tmp_path_factory) -> Path:
    """The bundled Hyperliquid sample converted as bybit/SOLUSDT (no bundled spec)."""
    root = tmp_path_factory.mktemp("bybit_archive")
    convert("hyperliquid", [SAMPLES / "hyperliquid" / "orderbooks_BTC.csv.gz",
                            SAMPLES / "hyperliquid" / "trades_BTC.csv.gz"],
            root, exchange=EXC, symbol=TICKER, progress=False)
    return root


def _spec(tick: str) -> InstrumentSpec:
    return InstrumentSpec(EXC, TICKER, "SOL", "USDT", "linear_perpetual", D(tick), D("0.001"),
                          D("0.001"), D(0))


def _tutorial_replayer(archive: Path, **options) -> Replayer:
    """The tutorial's path: Feed.load_*_archives, then Replayer(l2_data, trade_data)."""
    l2 = Feed.load_lob_archives(EXC, TICKER, 20, path=archive, **HOURS)
    trades = Feed.load_trade_archives(EXC, TICKER, path=archive, **HOURS)
    return Replayer(l2_data={EXC: {TICKER: l2}}, trade_data={EXC: {TICKER: trades}},
                    latencies=zero_latencies(), **options)


def _quote_once(rep: Replayer) -> dict[str, str]:
    """Bid on and off a tick of 5 at the first book; each order's first answer."""
    oms, cloids = rep.get_oms(), {}

    async def on_book(lob):
        if not cloids:
            for name, price in (("on", ON_TICK), ("off", OFF_TICK)):
                cloids[name] = await oms.limit_order(EXC, TICKER, D("0.01"), price)

    async def go():
        await rep.get_feed().add_l2_book_feed(exc=EXC, ticker=TICKER, depth=20,
                                              handler=on_book)
        await rep.play(progress=False)

    asyncio.run(go())
    answers = {a["cloid"]: a for a in rep.actions if a["event"] in ("ack", "reject")}
    return {name: answers[cloid].get("reason") or answers[cloid]["event"]
            for name, cloid in cloids.items()}


def test_a_spec_file_the_user_passes(archive, tmp_path):
    path = tmp_path / "specs.json"
    path.write_text(json.dumps({"instruments": spec_rows([_spec("5")])}))
    rep = _tutorial_replayer(archive, specs=path)
    assert rep.config["specs"][EXC][TICKER]["source"] == "passed"
    assert rep.config["specs"][EXC][TICKER]["tick_size"] == "5"
    assert _quote_once(rep) == {"on": "ack", "off": "-4014 Price not increased by tick size."}


def test_the_venue_spec_cache(archive, spec_cache):
    write_specs(spec_cache, EXC, [_spec("5")])  # as the live Gateway writes it
    rep = _tutorial_replayer(archive)
    assert rep.config["specs"][EXC][TICKER]["source"] == "cache"
    assert _quote_once(rep)["off"].startswith("-4014")


def test_inferred_from_the_data_with_a_warning(archive):
    with pytest.warns(UserWarning, match=r"bybit/SOLUSDT: .* inferred from the data: tick 1, "
                                         r"lot 0\.00001, min notional 0"):
        rep = _tutorial_replayer(archive)
    assert rep.config["specs"][EXC][TICKER] == {
        "source": "inferred", "base": "SOL", "quote": "USDT", "kind": "linear_perpetual",
        "tick_size": "1", "lot_size": "0.00001", "min_qty": "0.00001", "min_notional": "0",
        "contract_size": "1"}
    assert _quote_once(rep) == {"on": "ack", "off": "ack"}


def test_from_archive_takes_specs_too_and_the_record_replays_the_same(archive):
    rep = Replayer.from_archive({EXC: [TICKER]}, path=archive,
                                specs={EXC: {TICKER: {"tick_size": "5", "lot_size": "0.001"}}},
                                latencies=zero_latencies(), **HOURS)
    assert _quote_once(rep)["off"].startswith("-4014")
    again = Replayer.from_archive({EXC: [TICKER]}, path=archive,
                                  specs=rep.config["specs"], latencies=zero_latencies(),
                                  **HOURS)
    assert again.config["specs"] == rep.config["specs"]
    assert again.venue.spec(EXC, TICKER) == rep.venue.spec(EXC, TICKER)


def test_only_traded_exchanges_need_a_spec(archive):
    l2 = Feed.load_lob_archives(EXC, TICKER, 20, path=archive, **HOURS)
    rep = Replayer(l2_data={EXC: {TICKER: l2}}, trade_data={}, exchanges=[],
                   latencies=zero_latencies())  # no warning: nothing is traded
    assert rep.config["specs"] == {}
