"""Order, OrderStatus and the Orders container: queries and the upsert_order rules."""

from __future__ import annotations

import asyncio
from decimal import Decimal as D

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from makerlab.core.events import OrderEventKind, OrderUpdate
from makerlab.core.orders import Order, Orders, OrderStatus
from makerlab.errors import ConfigError


def run(coro):
    return asyncio.run(coro)


def book() -> Orders:
    """Two bids, two asks on BTC (one of each pending), one bid on ETH."""
    return Orders([
        Order(exc="bybit", oid="1", cloid="c1", ticker="BTC", amount=D("1"), price=D("100"),
              ord_status=OrderStatus.NEW, timestamp=10),
        Order(exc="bybit", cloid="c2", ticker="BTC", amount=D("2"), price=D("101"),
              ord_status=OrderStatus.PENDING, timestamp=11),
        Order(exc="bybit", oid="3", cloid="c3", ticker="BTC", amount=D("-1"), price=D("103"),
              ord_status=OrderStatus.NEW, timestamp=12),
        Order(exc="bybit", cloid="c4", ticker="BTC", amount=D("-3"), price=D("102"),
              ord_status=OrderStatus.PENDING, timestamp=13),
        Order(exc="bybit", oid="5", cloid="c5", ticker="ETH", amount=D("4"), price=D("10"),
              ord_status=OrderStatus.NEW, timestamp=14),
    ])


# ---- Order and OrderStatus -------------------------------------------------------------

def test_order_status_of_is_the_constructor():
    for value in [*(s.value for s in OrderStatus), "create_pending", "new", *OrderStatus]:
        assert OrderStatus.of(value) is OrderStatus(value)
    with pytest.raises(ValueError):
        OrderStatus.of("OPEN")


def test_order_status_values_and_aliases():
    assert OrderStatus("CREATE_PENDING") is OrderStatus.PENDING
    assert OrderStatus("filled") is OrderStatus.FILLED
    assert OrderStatus.NEW == "NEW"
    alive = {s for s in OrderStatus if s.is_alive}
    assert alive == {OrderStatus.PENDING, OrderStatus.NEW, OrderStatus.PARTIAL,
                     OrderStatus.CANCEL_PENDING}
    assert OrderStatus.CANCEL_PENDING.is_local and not OrderStatus.NEW.is_local


def test_order_coerces_numbers_to_decimal_and_reports_side_and_remaining():
    o = Order(ticker="BTC", amount=-0.3, price=0.1, filled_sz="0.1", ord_status="PARTIAL")
    assert o.amount == D("-0.3") and o.price == D("0.1")
    assert o.side == -1 and o.remaining == D("0.2")
    assert o.ord_status is OrderStatus.PARTIAL and o.is_alive()
    assert Order(amount=D(2)).side == 1 and Order().side == 0


def test_order_as_dict_has_the_tutorial_keys():
    d = Order(exc="bybit", cloid="c", ticker="BTC", amount=D(1), price=D(5)).as_dict()
    assert {"amount", "cloid", "exc", "filled_sz", "last_fill_sz", "oid", "ord_status",
            "ord_type", "price", "reduce_only", "ticker", "tif", "timestamp",
            "avg_fill_price", "reject_reason", "update_id"} == set(d)
    assert d["ord_status"] == "PENDING"


def test_order_rejects_negative_filled_size():
    with pytest.raises(ConfigError):
        Order(amount=D(1), filled_sz=D(-1))


# ---- queries ---------------------------------------------------------------------------

def test_bids_sorted_best_first_and_asks_sorted_best_first():
    orders = book()
    assert [o.price for o in orders.get_bid_orders("BTC")] == [D("101"), D("100")]
    assert [o.price for o in orders.get_ask_orders("BTC")] == [D("102"), D("103")]


def test_market_orders_sort_first():
    orders = book()
    run(orders.upsert_order(cloid="m", ticker="BTC", amount=D(1), ord_type="market"))
    assert orders.get_bid_orders("BTC")[0].cloid == "m"


def test_unsorted_keeps_insertion_order():
    assert [o.cloid for o in book().get_bid_orders("BTC", sort=False)] == ["c1", "c2"]


def test_include_pending_false_drops_unacknowledged_orders():
    orders = book()
    assert [o.cloid for o in orders.get_bid_orders("BTC", include_pending=False)] == ["c1"]
    assert [o.cloid for o in orders.get_ask_orders("BTC", include_pending=False)] == ["c3"]


def test_pending_bids_and_asks_only_unacknowledged():
    orders = book()
    assert [o.cloid for o in orders.pending_bids("BTC")] == ["c2"]
    assert [o.cloid for o in orders.pending_asks("BTC")] == ["c4"]


def test_query_results_are_copies_unless_asked():
    orders = book()
    orders.get_bid_orders("BTC")[0].price = D(1)
    assert orders.cloid_query("c2").price == D("101")
    orders.get_bid_orders("BTC", copy=False)[0].price = D(1)
    assert orders.cloid_query("c2").price == D(1)


def test_queries_follow_every_accepted_change():
    orders = book()
    assert [o.cloid for o in orders.get_bid_orders("BTC")] == ["c2", "c1"]
    orders.get_bid_orders("BTC", copy=False).clear()  # the caller's list, not the mirror's
    run(orders.upsert_order(cloid="c2", price=D("99")))  # amended below c1
    assert [o.cloid for o in orders.get_bid_orders("BTC")] == ["c1", "c2"]
    run(orders.upsert_order(cloid="c1", oid="1", ord_status="FILLED", timestamp=20))
    assert [o.cloid for o in orders.get_bid_orders("BTC")] == ["c2"]
    run(orders.upsert_order(exc="bybit", cloid="c6", ticker="BTC", amount=D("1"),
                            price=D("100.5")))
    assert [o.cloid for o in orders.get_bid_orders("BTC")] == ["c6", "c2"]
    assert [o.cloid for o in orders.pending_bids("BTC")] == ["c6", "c2"]
    assert [o.cloid for o in orders.get_bid_orders("BTC", include_pending=False)] == []


def test_as_dict_option_returns_dicts():
    out = book().get_ask_orders("BTC", as_dict=True)
    assert [d["cloid"] for d in out] == ["c4", "c3"]


def test_level_exists_compares_decimal_prices():
    orders = book()
    assert orders.bid_level_exists("BTC", 101) and orders.bid_level_exists("BTC", "100.0")
    assert not orders.bid_level_exists("BTC", D("102"))
    assert orders.ask_level_exists("BTC", 102.0) and not orders.ask_level_exists("ETH", 102)


def test_totals_are_unsigned_remaining_sizes():
    orders = book()
    assert orders.get_total_bid_amount("BTC") == D(3)
    assert orders.get_total_bid_amount("BTC", include_pending=False) == D(1)
    assert orders.get_total_ask_amount("BTC") == D(4)
    run(orders.upsert_order(oid="1", ord_status="PARTIAL", filled_sz=D("0.4"), timestamp=20))
    assert orders.get_total_bid_amount("BTC") == D("2.6")


def test_get_orders_oid_and_cloid_queries():
    orders = book()
    assert [o.cloid for o in orders.get_orders("ETH")] == ["c5"]
    assert len(orders.get_orders()) == 5 == len(orders)
    assert orders.oid_query("3").cloid == "c3" and orders.oid_query("9") is None
    assert orders.cloid_query("c2").oid is None and orders.cloid_query("zz") is None


def test_as_dict_lists_only_known_oids_and_as_list_everything():
    orders = book()
    assert set(orders.as_dict()) == {"1", "3", "5"}
    assert len(orders.as_list()) == 5


def test_construction_needs_an_id():
    with pytest.raises(ConfigError):
        Orders([Order(ticker="BTC", amount=D(1))])


def test_unknown_update_fields_raise():
    with pytest.raises(ConfigError):
        run(book().upsert_order(cloid="c1", colour="red"))


# ---- the upsert rules (named after the Orders docstring bullets) ------------------------

def test_match_by_oid_then_cloid():
    orders = book()
    acked = run(orders.upsert_order(cloid="c2", oid="2", ord_status="NEW", timestamp=30))
    assert acked is orders.oid_query("2") is orders.cloid_query("c2")
    assert run(orders.upsert_order(oid="2", ord_status="PARTIAL", filled_sz=D(1),
                                   timestamp=31)).cloid == "c2"
    assert run(orders.upsert_order(oid="1", cloid="c3", timestamp=40)) is None


def test_unknown_orders_need_ticker_and_amount():
    orders = Orders()
    assert run(orders.upsert_order(oid="9", ord_status="NEW")) is None
    assert run(orders.upsert_order(ticker="BTC", amount=D(1))) is None
    assert run(orders.upsert_order(oid="9", ticker="BTC", amount=D(0))) is None
    assert run(orders.upsert_order(oid="9", ticker="BTC", amount=D(1), ord_status="NEW"))
    assert len(orders) == 1


def test_dead_orders_stay_dead():
    orders = book()
    run(orders.upsert_order(oid="1", ord_status="CANCELLED", timestamp=50))
    late = run(orders.upsert_order(oid="1", ord_status="PARTIAL", filled_sz=D("0.5"),
                                   timestamp=60))
    assert late is None and orders.oid_query("1") is None
    assert run(orders.upsert_order(cloid="c1", ticker="BTC", amount=D(1),
                                   ord_status="NEW", timestamp=70)) is None


def test_dead_orders_stay_dead_when_kept():
    orders = book()
    run(orders.upsert_order(clear_unalived=False, oid="1", ord_status="CANCELLED", timestamp=50))
    assert orders.oid_query("1").ord_status is OrderStatus.CANCELLED
    assert orders.get_bid_orders("BTC", include_pending=False) == []
    assert run(orders.upsert_order(oid="1", ord_status="NEW", timestamp=60)) is None


def test_tombstones_are_bounded():
    orders = Orders(max_tombstones=2)
    for i in range(4):
        run(orders.upsert_order(oid=str(i), ticker="X", amount=D(1), ord_status="FILLED"))
    assert len(orders._dead) == 2


def test_no_going_back_to_pending():
    orders = book()
    assert run(orders.upsert_order(oid="1", ord_status="PENDING", timestamp=20)) is None
    assert orders.oid_query("1").ord_status is OrderStatus.NEW


def test_exchange_time_is_monotonic():
    orders = book()
    assert run(orders.upsert_order(oid="1", ord_status="PARTIAL", filled_sz=D("0.2"),
                                   timestamp=9)) is None
    assert run(orders.upsert_order(oid="1", ord_status="PARTIAL", filled_sz=D("0.2"),
                                   timestamp=10)) is not None


def test_exchange_time_is_not_checked_while_pending():
    orders = book()  # c2 is PENDING with local timestamp 11
    assert run(orders.upsert_order(cloid="c2", oid="2", ord_status="NEW", timestamp=5))
    assert orders.cloid_query("c2").timestamp == 5


def test_venue_updates_are_ordered_by_update_id():
    orders = book()
    run(orders.upsert_order(oid="1", ord_status="PARTIAL", filled_sz=D("0.2"), update_id=7,
                            timestamp=20))
    # an older update (a lower id) is stale even if its time looks newer
    assert run(orders.upsert_order(oid="1", ord_status="PARTIAL", filled_sz=D("0.3"),
                                   update_id=6, timestamp=30)) is None
    assert run(orders.upsert_order(oid="1", price=D(99), update_id=8, timestamp=20))
    local = run(orders.upsert_order(oid="1", ord_status="CANCEL_PENDING"))
    assert local.update_id == 8  # local updates keep the order's id


def test_cancel_pending_keeps_the_exchange_time():
    orders = book()
    run(orders.upsert_order(oid="1", ord_status="CANCEL_PENDING", timestamp=99))
    order = orders.oid_query("1")
    assert order.ord_status is OrderStatus.CANCEL_PENDING and order.timestamp == 10
    # a fill stamped before the local cancel time still lands
    assert run(orders.upsert_order(oid="1", ord_status="PARTIAL", filled_sz=D("0.5"),
                                   timestamp=12))


def test_leaving_cancel_pending_needs_news():
    orders = book()
    run(orders.upsert_order(oid="1", ord_status="CANCEL_PENDING"))
    assert run(orders.upsert_order(oid="1", ord_status="NEW", timestamp=10)) is None
    assert run(orders.upsert_order(oid="1", ord_status="NEW", timestamp=11)) is not None
    run(orders.upsert_order(oid="1", ord_status="CANCEL_PENDING"))
    assert run(orders.upsert_order(oid="1", ord_status="PARTIAL", filled_sz=D("0.1"),
                                   timestamp=11)) is not None


def test_leaving_cancel_pending_needs_news_by_update_id():
    orders = book()
    run(orders.upsert_order(oid="1", ord_status="NEW", update_id=3, timestamp=10))
    run(orders.upsert_order(oid="1", ord_status="CANCEL_PENDING"))
    # the same venue update again (same id) is no news, even with a later time
    assert run(orders.upsert_order(oid="1", ord_status="NEW", update_id=3,
                                   timestamp=11)) is None
    # a newer venue update at the same millisecond is
    assert run(orders.upsert_order(oid="1", ord_status="NEW", price=D(99), update_id=4,
                                   timestamp=10)) is not None


def test_fills_never_regress():
    orders = book()
    run(orders.upsert_order(oid="1", ord_status="PARTIAL", filled_sz=D("0.5"), timestamp=20))
    assert run(orders.upsert_order(oid="1", ord_status="PARTIAL", filled_sz=D("0.4"),
                                   timestamp=21)) is None
    assert run(orders.upsert_order(oid="1", ord_status="PARTIAL", filled_sz=D("1.5"),
                                   timestamp=22)) is None
    assert orders.oid_query("1").filled_sz == D("0.5")


def test_identity_is_fixed():
    orders = book()
    assert run(orders.upsert_order(oid="1", ticker="ETH", timestamp=20)) is None
    assert run(orders.upsert_order(oid="1", exc="binance", timestamp=20)) is None
    assert run(orders.upsert_order(oid="1", amount=D(-1), timestamp=20)) is None
    assert run(orders.upsert_order(oid="3", cloid="other", timestamp=20)) is None
    assert run(orders.upsert_order(cloid="c1", oid="9", timestamp=20)) is None  # a new oid
    assert run(orders.upsert_order(oid="1", cloid="c9", timestamp=20)) is None  # a new cloid
    assert run(orders.upsert_order(oid="1", amount=D(2), timestamp=20)).amount == D(2)


def test_duplicates_are_rejected():
    orders = book()
    kw = {"oid": "1", "ord_status": "PARTIAL", "filled_sz": D("0.3"), "timestamp": 20}
    assert run(orders.upsert_order(**kw)) is not None
    assert run(orders.upsert_order(**kw)) is None


def test_last_fill_is_inferred():
    orders = book()
    run(orders.upsert_order(oid="1", ord_status="PARTIAL", filled_sz=D("0.3"), timestamp=20))
    assert orders.oid_query("1").last_fill_sz == D("0.3")
    run(orders.upsert_order(oid="3", ord_status="FILLED", timestamp=20, clear_unalived=False))
    filled = orders.oid_query("3")
    assert filled.filled_sz == D(1) and filled.last_fill_sz == D(1)
    run(orders.upsert_order(oid="1", ord_status="PARTIAL", filled_sz=D("0.8"),
                            last_fill_sz=D("0.25"), timestamp=21))
    assert orders.oid_query("1").last_fill_sz == D("0.25")


def test_last_fill_is_inferred_for_orders_first_seen_filled():
    orders = Orders()
    o = run(orders.upsert_order(oid="7", ticker="BTC", amount=D(-2), ord_status="FILLED"))
    assert o.filled_sz == D(2) == o.last_fill_sz


def test_dead_orders_are_removed():
    orders = book()
    run(orders.upsert_order(oid="1", ord_status="PARTIAL", filled_sz=D("0.5"), timestamp=20))
    done = run(orders.upsert_order(oid="1", ord_status="FILLED", filled_sz=D(1), timestamp=21))
    assert done.ord_status is OrderStatus.FILLED and done.last_fill_sz == D("0.5")
    assert orders.oid_query("1") is None and orders.cloid_query("c1") is None
    assert run(orders.upsert_order(cloid="c4", ord_status="REJECTED",
                                   reject_reason="post-only would cross")) is not None
    assert [o.cloid for o in orders.get_ask_orders("BTC")] == ["c3"]


def test_handlers_see_every_accepted_change():
    seen_async, seen_sync = [], []

    async def on_delta(d):
        seen_async.append((d["cloid"], d["ord_status"], d["last_fill_sz"]))

    orders = book()
    orders.add_delta_handler(on_delta)
    orders.add_delta_handler(seen_sync.append)
    run(orders.upsert_order(cloid="c2", oid="2", ord_status="NEW", timestamp=20))
    run(orders.upsert_order(cloid="c2", oid="2", ord_status="NEW", timestamp=20))  # duplicate
    run(orders.upsert_order(oid="2", ord_status="FILLED", timestamp=21))
    run(orders.upsert_order(oid="2", ord_status="FILLED", timestamp=22))  # dead
    run(orders.upsert_order(oid="1", ord_status="CANCELLED", trigger_handlers=False))
    assert seen_async == [("c2", "NEW", D(0)), ("c2", "FILLED", D(2))]
    assert [d["ord_status"] for d in seen_sync] == ["NEW", "FILLED"]


# ---- out-of-order delivery, as a property -------------------------------------------------

def _lifecycle(n_fills: int) -> list[dict]:
    """Exchange updates of one 10-lot order, timestamps and fills increasing."""
    ups = [{"oid": "1", "ticker": "BTC", "amount": D(10), "ord_status": "NEW", "timestamp": 0}]
    for i in range(1, n_fills + 1):
        ups.append({"oid": "1", "ord_status": "PARTIAL", "filled_sz": D(i), "timestamp": i})
    ups.append({"oid": "1", "ord_status": "FILLED", "filled_sz": D(10), "timestamp": 99})
    return ups


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 6).flatmap(lambda n: st.permutations(_lifecycle(n))))
def test_out_of_order_updates_never_regress(updates):
    orders = Orders()
    fills: list[D] = []
    orders.add_delta_handler(lambda d: fills.append(d["last_fill_sz"] or D(0)))
    best_fill, best_ts, finished = D(0), -1, False
    for up in updates:
        before = orders.oid_query("1")
        got = run(orders.upsert_order(**up))
        if got is None:
            assert orders.oid_query("1") is before
            continue
        assert not finished
        assert got.filled_sz >= best_fill and got.timestamp >= best_ts
        best_fill, best_ts = got.filled_sz, got.timestamp
        finished = not got.is_alive()
    assert sum(fills) == best_fill <= D(10)
    assert finished == (orders.oid_query("1") is None and best_fill == D(10))


def test_none_fields_count_as_not_reported():
    orders = book()
    got = run(orders.upsert_order(oid=None, cloid="c1", price=None, ord_status="PARTIAL",
                                  filled_sz=D("0.1"), timestamp=20))
    assert got.oid == "1" and got.price == D(100)


# ---- typed venue updates ---------------------------------------------------------------

def venue_update(kind: OrderEventKind, status: str, update_id: int, **fields) -> OrderUpdate:
    base = {"exchange": "bybit", "symbol": "BTC", "exchange_ts": 20_000_000,
            "local_ts": 21_000_000, "cloid": "c2", "oid": "2", "amount": D(2),
            "price": D(101), "filled": D(0), "tif": "GTC"}
    return OrderUpdate(kind=kind, status=status, update_id=update_id, **{**base, **fields})


def test_venue_events_are_upserts():
    orders = book()  # c2 is PENDING
    acked = run(orders.apply_update(venue_update(OrderEventKind.ACK, "NEW", 1)))
    assert (acked.oid, acked.ord_status, acked.update_id, acked.timestamp) == (
        "2", OrderStatus.NEW, 1, 20)
    fill = venue_update(OrderEventKind.FILL, "PARTIAL", 3, filled=D("0.5"))
    assert run(orders.apply_update(fill)).last_fill_sz == D("0.5")
    assert run(orders.apply_update(venue_update(OrderEventKind.ACK, "NEW", 1))) is None
    rejected = run(orders.apply_update(venue_update(
        OrderEventKind.REJECT, "REJECTED", 4, cloid="c4", oid="4", amount=D(-3),
        price=D(102), code="-5022", reason="Post Only order would be executed.")))
    assert rejected.reject_reason == "-5022 Post Only order would be executed."
    assert orders.cloid_query("c4") is None  # dead orders are removed
    cancelled = venue_update(OrderEventKind.CANCEL_ACK, "CANCELLED", 5, amount=D(0),
                             price=None, filled=D("0.5"))  # an answer without the size
    assert run(orders.apply_update(cancelled)).amount == D(2)


def test_refused_cancels_and_amends_are_notes():
    orders, seen = book(), []
    orders.add_delta_handler(seen.append)
    run(orders.apply_update(venue_update(OrderEventKind.ACK, "NEW", 1)))
    run(orders.upsert_order(cloid="c2", ord_status="CANCEL_PENDING"))
    refused = venue_update(OrderEventKind.CANCEL_REJECT, "", 5, amount=D(0), price=None,
                           code="-2011", reason="Unknown order sent.")
    noted = run(orders.apply_update(refused))
    assert noted.ord_status is OrderStatus.CANCEL_PENDING and noted.update_id == 1
    assert noted.reject_reason == "cancel rejected: -2011 Unknown order sent."
    amend = venue_update(OrderEventKind.AMEND_REJECT, "NEW", 6, code="-5022",
                         reason="Post only.")
    assert run(orders.apply_update(amend)).reject_reason == "amend rejected: -5022 Post only."
    assert [d["reject_reason"] for d in seen][-2:] == [
        "cancel rejected: -2011 Unknown order sent.", "amend rejected: -5022 Post only."]
    gone = venue_update(OrderEventKind.CANCEL_REJECT, "", 7, cloid="nope", oid=None)
    assert run(orders.apply_update(gone)) is None and len(orders) == 5


_STATUSES = st.sampled_from(list(OrderStatus))
_SIZES = st.sampled_from([D(0), D("0.000"), D("0.2"), D("0.50"), D("0.7")])


@settings(max_examples=300, deadline=None)
@given(status=_STATUSES, amount=st.sampled_from([D("0.5"), D("-0.5")]), filled=_SIZES,
       oid=st.sampled_from([None, "7"]), update_id=st.sampled_from([None, 3]),
       timestamp=st.sampled_from([None, 1_000]), copy=st.booleans())
def test_mark_cancel_pending_is_the_upsert_of_the_mark(status, amount, filled, oid, update_id,
                                                       timestamp, copy):
    """The OMS's cancel mark by its short path ends as ``upsert_order(cloid, oid,
    ord_status=CANCEL_PENDING)`` does: same answer, same orders, same handler calls (held
    orders in every state, filled beyond the amount included; a copy takes the general
    path)."""
    def held() -> tuple[Orders, Order, list[dict]]:
        seen: list[dict] = []
        orders = Orders([Order(exc="b", oid=oid, cloid="c1", ticker="T", amount=amount,
                               price=D("100.0"), ord_status=status, filled_sz=filled,
                               timestamp=timestamp, update_id=update_id)],
                        [seen.append])
        order = orders.cloid_query("c1")
        assert order is not None
        return orders, order, seen

    general, order, general_seen = held()
    expected = asyncio.run(general.upsert_order(cloid=order.cloid, oid=order.oid,
                                                ord_status=OrderStatus.CANCEL_PENDING))
    short, order, short_seen = held()
    got = asyncio.run(short.mark_cancel_pending(order.__copy__() if copy else order))
    assert (got is None) == (expected is None)
    assert got is None or got.as_dict() == expected.as_dict()
    assert short.as_list() == general.as_list()
    assert short_seen == general_seen
    assert [str(o["last_fill_sz"]) for o in short.as_list()] == [
        str(o["last_fill_sz"]) for o in general.as_list()]


@settings(max_examples=300, deadline=None)
@given(known=st.sampled_from(["new", "held", "dead"]),
       amount=st.sampled_from([D(0), D("0.00"), D("0.5"), D("-0.50")]),
       price=st.sampled_from([None, D("100.0")]), reduce_only=st.booleans())
def test_add_pending_is_the_upsert_of_the_pending_order(known, amount, price, reduce_only):
    """The OMS's insert of an order it sends, by its short path, ends as
    ``upsert_order(..., ord_status=PENDING)`` does: same answer, same orders, same handler
    calls, same ids known after (a cloid held or remembered dead takes the general path)."""
    def container() -> tuple[Orders, list[dict]]:
        seen: list[dict] = []
        orders = Orders(delta_handlers=[seen.append])
        if known != "new":
            asyncio.run(orders.upsert_order(exc="b", cloid="c1", oid="9", ticker="T",
                                            amount=D("-1"), price=D("99.0"),
                                            ord_status=OrderStatus.NEW, timestamp=5))
        if known == "dead":
            asyncio.run(orders.upsert_order(cloid="c1", ord_status=OrderStatus.CANCELLED,
                                            timestamp=6))
        return orders, seen

    fields = {"exc": "b", "cloid": "c1", "ticker": "T", "amount": amount, "price": price,
              "tif": "GTX", "ord_type": "limit", "reduce_only": reduce_only, "timestamp": 7}
    general, general_seen = container()
    expected = asyncio.run(general.upsert_order(ord_status=OrderStatus.PENDING, **fields))
    short, short_seen = container()
    got = asyncio.run(short.add_pending(**fields))
    assert (got is None) == (expected is None)
    assert got is None or got.as_dict() == expected.as_dict()
    assert short.as_list() == general.as_list()
    assert short_seen == general_seen
    assert short.cloid_known("c1") == general.cloid_known("c1")


_VENUE_UPDATES = st.builds(
    OrderUpdate, exchange=st.just("b"), symbol=st.just("T"),
    exchange_ts=st.sampled_from([900_000, 1_000_000, 1_500_000, 2_000_000]),
    local_ts=st.just(3_000_000),
    kind=st.sampled_from([k for k in OrderEventKind
                          if k not in (OrderEventKind.CANCEL_REJECT,
                                       OrderEventKind.AMEND_REJECT)]),
    status=st.sampled_from(["", "NEW", "PARTIAL", "FILLED", "CANCELLED", "REJECTED",
                            "CANCEL_PENDING", "PENDING"]),
    cloid=st.sampled_from([None, "c1", "c2"]), oid=st.sampled_from([None, "7", "8"]),
    amount=st.sampled_from([D(0), D("0.5"), D("-0.50"), D("0.7")]),
    price=st.sampled_from([None, D("100.0"), D("101")]),
    filled=st.sampled_from([None, D(0), D("0.2"), D("0.50"), D("0.7")]),
    update_id=st.sampled_from([0, 2, 3, 5]), code=st.sampled_from(["", "-5022"]),
    reason=st.sampled_from(["", "Post only."]), tif=st.sampled_from(["", "GTX"]),
    reduce_only=st.booleans())


def _reported_fields(update: OrderUpdate) -> dict:
    """What the rule **venue events are upserts** says an update reports, by Order name."""
    kw = {"exc": update.exchange, "ticker": update.symbol, "oid": update.oid,
          "cloid": update.cloid, "price": update.price, "filled_sz": update.filled,
          "update_id": update.update_id, "reduce_only": update.reduce_only,
          "timestamp": update.exchange_ts // 1_000_000}
    kw |= {name: value for name, value in (("amount", update.amount), ("tif", update.tif),
                                          ("ord_status", update.status)) if value}
    if update.kind is OrderEventKind.REJECT:
        kw["reject_reason"] = f"{update.code} {update.reason}".strip()
    return kw


def _known_ids(orders: Orders) -> list[tuple[bool, Order | None]]:
    return [(orders.cloid_known(c), orders.oid_query(o)) for c, o in (("c1", "7"), ("c2", "8"))]


@settings(max_examples=400, deadline=None)
@given(status=_STATUSES, filled=_SIZES, update_id=st.sampled_from([None, 3]),
       updates=st.lists(_VENUE_UPDATES, min_size=1, max_size=3))
@example(status=OrderStatus.NEW, filled=D("0.2"), update_id=None, updates=[
    venue_update(OrderEventKind.FILL, "FILLED", 4, exchange="b", symbol="T", cloid="c1",
                 oid="7", amount=D("0.5"), filled=None, exchange_ts=2_000_000)])
def test_venue_updates_are_the_upsert_of_what_they_report(status, filled, update_id, updates):
    """``apply_update`` (which builds its trial order from the update itself) ends as
    ``upsert_order`` of the fields the update reports does: same answers, same orders,
    same handler calls, same ids known, from held orders in every state and unknown ones."""
    def container() -> tuple[Orders, list[dict]]:
        seen: list[dict] = []
        orders = Orders([Order(exc="b", oid="7", cloid="c1", ticker="T", amount=D("0.5"),
                               price=D("100.0"), ord_status=status, filled_sz=filled,
                               timestamp=1, update_id=update_id)], [seen.append])
        return orders, seen

    general, general_seen = container()
    short, short_seen = container()
    for update in updates:
        expected = asyncio.run(general.upsert_order(**_reported_fields(update)))
        got = asyncio.run(short.apply_update(update))
        assert (got is None) == (expected is None)
        assert got is None or got.as_dict() == expected.as_dict()
        assert short.as_list() == general.as_list()
        assert [str(o["last_fill_sz"]) for o in short.as_list()] == [
            str(o["last_fill_sz"]) for o in general.as_list()]
        assert short_seen == general_seen
        assert _known_ids(short) == _known_ids(general)
