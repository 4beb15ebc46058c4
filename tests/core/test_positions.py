"""Position, fill accounting (linear and inverse) and the Positions container."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, replace
from decimal import Decimal as D

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from makerlab.core.events import Fill
from makerlab.core.instruments import get_spec
from makerlab.core.positions import (
    Accounting,
    InverseAccounting,
    LinearAccounting,
    Position,
    Positions,
    accounting_for,
    apply_fill,
)
from makerlab.errors import ConfigError

LINEAR, INVERSE = LinearAccounting(), InverseAccounting(contract_size=D(100))


def run(coro):
    return asyncio.run(coro)


def close_to(a: D, b: D, rel: D = D("1e-20")) -> bool:
    return abs(a - b) <= rel * max(D(1), abs(a), abs(b))


# ---- Position ---------------------------------------------------------------------------

def test_position_accessors_and_dict():
    p = Position("BTC", 0.5, "100", 1)
    assert p.get_amount() == D("0.5") and p.get_entry() == D(100)
    assert p.get_entry_value() == D(50)
    assert p.as_dict() == {"ticker": "BTC", "amount": D("0.5"), "entry": D(100),
                           "realized_pnl": D(1)}


# ---- accounting rules (module docstring bullets) ------------------------------------------

def test_opening_or_adding():
    p = apply_fill(Position("X"), D(2), D(100))
    assert (p.amount, p.entry) == (D(2), D(100))
    p = apply_fill(p, D(1), D(130))
    assert (p.amount, p.entry) == (D(3), D(110))
    s = apply_fill(apply_fill(Position("X"), D(-1), D(10)), D(-3), D(14))
    assert (s.amount, s.entry) == (D(-4), D(13))


def test_reducing():
    p = apply_fill(Position("X", D(3), D(110)), D(-1), D(120))
    assert (p.amount, p.entry, p.realized_pnl) == (D(2), D(110), D(10))
    s = apply_fill(Position("X", D(-4), D(13)), D(1), D(10))
    assert (s.amount, s.entry, s.realized_pnl) == (D(-3), D(13), D(3))


def test_flipping_through_zero():
    p = apply_fill(Position("X", D(2), D(100)), D(-5), D(90))
    assert (p.amount, p.entry, p.realized_pnl) == (D(-3), D(90), D(-20))


def test_flat_means_entry_zero():
    p = apply_fill(Position("X", D(2), D(100)), D(-2), D(105))
    assert (p.amount, p.entry, p.realized_pnl) == (D(0), D(0), D(10))


def test_fills_keep_the_position_type_and_its_ticker():
    @dataclass(frozen=True, slots=True)
    class Tagged(Position):
        tag: str = ""

    for qty in (D(1), D(-2), D(-3)):  # adding, reducing, flipping
        p = apply_fill(Tagged("X", D(2), D(100), tag="t"), qty, D(110))
        assert type(p) is Tagged and p.tag == "t" and p.ticker == "X"
        q = apply_fill(Position("Y", D(2), D(100)), qty, D(110))
        assert type(q) is Position and q.ticker == "Y"
        assert (q.amount, q.entry, q.realized_pnl) == (p.amount, p.entry, p.realized_pnl)


def test_flat_entry_reads_zero_exactly():
    positions = Positions({"BTC": Position("BTC", D(0), D("0.00"))})
    p = run(positions.update_position("BTC", amount=D(0)))
    assert str(p.entry) == "0"


def test_fees_are_realised():
    p = apply_fill(Position("X"), D(1), D(100), fee=D("0.03"))
    assert p.realized_pnl == D("-0.03")
    p = apply_fill(p, D(-1), D(100), fee=D("-0.01"))  # rebate
    assert p.realized_pnl == D("-0.02")


def test_linear_pnl():
    acct = LinearAccounting(contract_size=D("0.01"))
    p = acct.apply_fill(Position("X", D(5), D(100)), D(-5), D(120))
    assert p.realized_pnl == D(1)
    assert acct.unrealized_pnl(Position("X", D(-5), D(100)), D(90)) == D("0.5")


def test_arithmetic_average():
    p = LINEAR.apply_fill(Position("X", D(1), D(100)), D(3), D(200))
    assert p.entry == D(175)


def test_inverse_pnl():
    p = INVERSE.apply_fill(Position("X", D(10), D(20000)), D(-10), D(25000))
    assert p.realized_pnl == D(10) * 100 * (D(1) / 20000 - D(1) / 25000)
    assert INVERSE.unrealized_pnl(Position("X", D(-10), D(20000)), D(25000)) < 0


def test_harmonic_average():
    p = INVERSE.apply_fill(Position("X", D(10), D(20000)), D(10), D(40000))
    assert close_to(p.entry, D(20) / (D(10) / 20000 + D(10) / 40000))


def test_accounting_for_picks_the_contract_type():
    inverse = accounting_for(get_spec("binance_coinm", "BTCUSD_PERP"))
    assert isinstance(inverse, InverseAccounting) and inverse.contract_size == D(100)
    assert isinstance(accounting_for(get_spec("hyperliquid", "BTC")), LinearAccounting)


@pytest.mark.parametrize("qty, price", [(D(0), D(1)), (D(1), D(0)), (D(1), D(-5))])
def test_bad_fills_raise(qty, price):
    with pytest.raises(ConfigError):
        apply_fill(Position("X"), qty, price)


# ---- properties -----------------------------------------------------------------------------

prices = st.decimals(min_value=D("0.5"), max_value=D("1000"), places=2)
qtys = st.decimals(min_value=D("-50"), max_value=D("50"), places=3).filter(lambda q: q != 0)
fees = st.decimals(min_value=D("-0.5"), max_value=D("2"), places=4)
fills = st.lists(st.tuples(qtys, prices, fees), min_size=1, max_size=25)


def _run(acct, seq):
    pos, flows, paid = Position("X"), D(0), D(0)
    for q, p, f in seq:
        pos = acct.apply_fill(pos, q, p, f)
        flows += acct.cash_flow(q, p)
        paid += f
    return pos, flows, paid


@settings(max_examples=150, deadline=None)
@given(fills, prices)
def test_cash_plus_position_value_is_conserved_net_of_fees(seq, mark):
    start_cash = D(10_000)
    pos, flows, paid = _run(LINEAR, seq)
    equity = start_cash + flows - paid + pos.amount * mark
    assert close_to(equity - start_cash, pos.realized_pnl + LINEAR.unrealized_pnl(pos, mark))


@settings(max_examples=150, deadline=None)
@given(fills, prices, st.sampled_from([LINEAR, INVERSE, LinearAccounting(D("0.001"))]))
def test_realized_plus_unrealized_equals_cash_flows_plus_marked_position(seq, mark, acct):
    pos, flows, paid = _run(acct, seq)
    naive = flows - paid + acct.value(pos.amount, mark)
    assert close_to(pos.realized_pnl + acct.unrealized_pnl(pos, mark), naive)


@settings(max_examples=150, deadline=None)
@given(qtys, prices, qtys, prices, st.lists(st.integers(1, 5), min_size=1, max_size=6), fees,
       st.sampled_from([LINEAR, INVERSE]))
def test_partial_fills_match_one_full_fill(a, e, total, p, weights, fee, acct):
    start = acct.apply_fill(Position("X"), a, e)
    parts = _split(total, weights)
    fee_parts = _split(fee, weights)
    whole = acct.apply_fill(start, total, p, fee)
    pos = start
    for q, f in zip(parts, fee_parts, strict=True):
        if q:
            pos = acct.apply_fill(pos, q, p, f)
        else:
            pos = Position("X", pos.amount, pos.entry, pos.realized_pnl - f)
    assert pos.amount == whole.amount
    assert close_to(pos.entry, whole.entry)
    assert close_to(pos.realized_pnl, whole.realized_pnl)


def _split(total: D, weights: list[int]) -> list[D]:
    """``total`` cut into parts proportional to ``weights`` that sum to it exactly."""
    parts = [(total * w / sum(weights)).quantize(D("0.000001")) for w in weights[:-1]]
    return [*parts, total - sum(parts, D(0))]


# ---- Positions container -----------------------------------------------------------------

def test_unknown_tickers_are_flat():
    positions = Positions()
    assert positions.get_ticker_amount("BTC") == D("0")
    assert isinstance(positions.get_ticker_amount("BTC"), D)
    assert positions.get_ticker_position("BTC") is None


def test_flat_positions_are_kept_but_not_listed():
    positions = Positions({"BTC": {"amount": "1", "entry": "100"}, "ETH": Position("ETH")})
    assert list(positions.as_dict()) == ["BTC"]
    assert positions.as_list() == [positions.as_dict()["BTC"]]
    run(positions.update_position("BTC", fill_amount=D(-1), fill_entry=D(110)))
    assert positions.as_dict() == {}
    assert positions.get_ticker_position("BTC").realized_pnl == D(10)


def test_handlers_see_each_change():
    seen, seen_sync = [], []

    async def on_delta(d):
        seen.append(d)

    positions = Positions(delta_handlers=[on_delta])
    positions.add_delta_handler(seen_sync.append)
    run(positions.update_position("BTC", fill_amount=D(2), fill_entry=D(100)))
    run(positions.update_position("BTC", amount=D(2)))  # no change: no call
    run(positions.update_position("BTC", amount=D(-1), trigger_handlers=False))
    run(positions.update_position("BTC", amount=D(0)))
    assert seen == seen_sync == [
        {"ticker": "BTC", "amount": D(2), "delta": D(2), "entry": D(100), "realized_pnl": D(0)},
        {"ticker": "BTC", "amount": D(0), "delta": D(1), "entry": D(0), "realized_pnl": D(0)},
    ]


def test_update_position_sets_amount_and_entry_from_the_exchange():
    positions = Positions()
    p = run(positions.update_position("BTC", amount="0.5", entry="100"))
    assert (p.amount, p.entry) == (D("0.5"), D(100))
    p = run(positions.update_position("BTC", amount="0.7"))
    assert (p.amount, p.entry) == (D("0.7"), D(100))
    p = run(positions.update_position("BTC", entry="99"))
    assert p.entry == D(99) and positions.get_ticker_amount("BTC") == D("0.7")


def test_update_position_books_fills_with_fees_and_accounting():
    positions = Positions(accounting={"INV": INVERSE})
    run(positions.update_position("BTC", fill_amount=1, fill_entry=100, fee="0.1"))
    assert positions.get_ticker_position("BTC").realized_pnl == D("-0.1")
    run(positions.update_position("INV", fill_amount=10, fill_entry=20000))
    p = run(positions.update_position("INV", fill_amount=-10, fill_entry=25000))
    assert p.realized_pnl == INVERSE.closed_pnl(D(10), D(20000), D(25000))


def test_update_position_fill_entry_override():
    positions = Positions()
    p = run(positions.update_position("BTC", fill_amount=1, fill_entry=100, entry=101))
    assert p.entry == D(101)


@pytest.mark.parametrize("kwargs", [{"amount": 1, "fill_amount": 1, "fill_entry": 1},
                                    {"fill_amount": 1}, {}])
def test_update_position_rejects_ambiguous_calls(kwargs):
    with pytest.raises(ConfigError):
        run(Positions().update_position("BTC", **kwargs))


def test_add_positions_reset():
    positions = Positions({"BTC": {"amount": 1, "entry": 2}})
    positions.add_positions({"ETH": {"amount": -1, "entry": 3}}, reset=False)
    assert set(positions.as_dict()) == {"BTC", "ETH"}
    positions.add_positions({"SOL": Position("SOL", D(1), D(5))})
    assert set(positions.as_dict()) == {"SOL"}


def test_accountings_satisfy_the_protocol():
    assert isinstance(LINEAR, Accounting) and isinstance(INVERSE, Accounting)


def test_fills_are_booked_once():
    positions, deltas = Positions(), []
    positions.add_delta_handler(deltas.append)
    fill = Fill("binance", "BTC", 1_000, 2_000, "c1", "1", trade_id="7", side=-1,
                price=D(100), size=D(2), fee=D("0.1"), fee_asset="USDT", is_maker=True)
    assert run(positions.book_fill(fill)).amount == D(-2)
    assert run(positions.book_fill(fill)) is None  # delivered twice, booked once
    assert positions.get_ticker_position("BTC").realized_pnl == D("-0.1")
    other = run(positions.book_fill(replace(fill, trade_id="8", side=1, size=D(1))))
    assert other.amount == D(-1) and [d["delta"] for d in deltas] == [D(-2), D(1)]


def test_fills_are_booked_once_among_the_newest():
    positions = Positions(max_trade_ids=2)
    fill = Fill("binance", "BTC", 1, 1, None, None, trade_id="1", side=1, price=D(100),
                size=D(1), fee=D(0), fee_asset="USDT", is_maker=True)
    for trade_id in ("1", "2", "3", "1"):  # "1" was forgotten when "3" came
        run(positions.book_fill(replace(fill, trade_id=trade_id)))
    assert positions.get_ticker_amount("BTC") == D(4)


def test_accounting_may_be_a_function_of_the_ticker():
    asked = []
    positions = Positions(accounting=lambda t: asked.append(t) or INVERSE)
    run(positions.update_position("INV", fill_amount=D(100), fill_entry=D(50_000)))
    assert asked == ["INV"]
