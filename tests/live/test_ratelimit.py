"""One test per rule of makerlab.live.ratelimit (named after it): the request budget of
one exchange, as the venue reports it or as counted here."""

from __future__ import annotations

import pytest

from makerlab.live.ratelimit import Observation, RateLimitState
from makerlab.units import NS_PER_S

S = NS_PER_S


def test_counted_usage_spends_in_a_fixed_window_that_starts_again_at_its_end():
    state = RateLimitState("x")
    state.spend("orders", 6, 10, 1.0, 0)
    state.spend("orders", 3, 10, 1.0, S // 2)
    assert state.usage["orders"].used == 9 and state.headroom(S // 2) == pytest.approx(0.1)
    state.spend("orders", 2, 10, 1.0, S)  # the window's end: a new one
    assert state.usage["orders"].used == 2 and state.usage["orders"].reset_ns == 2 * S


def test_a_refusal_for_rate_sets_retry_at_until_which_calls_wait():
    state = RateLimitState("x")
    state.limited(2.0, 10 * S)
    assert state.retry_after(11 * S) == pytest.approx(1.0)
    assert state.retry_after(12 * S) == 0.0
    state.limited(None, 0)  # no Retry-After: 60 s
    assert state.retry_after(0) == pytest.approx(60.0)


def test_headroom_is_what_is_left_of_the_tightest_current_budget():
    state = RateLimitState("x")
    state.observe([Observation("weight_1m", 600, 2400),
                   Observation("orders_10s", 240, 300)], 0)
    assert state.headroom(0) == pytest.approx(0.2)  # orders_10s: 1 - 240/300
    assert state.headroom(10 * S) == pytest.approx(0.75)  # orders_10s no longer current
    assert state.headroom(60 * S) == 1.0  # neither is


def test_headroom_a_name_without_a_window_counts_for_60_s_and_a_reset_time_rules():
    state = RateLimitState("x")
    state.observe([Observation("order_create", 5, 10),
                   Observation("ip_weight", 9, 10, reset_ns=5 * S)], 0)
    assert state.headroom(4 * S) == pytest.approx(0.1)
    assert state.headroom(5 * S) == pytest.approx(0.5)  # ip_weight reset at 5 s
    assert state.headroom(59 * S) == pytest.approx(0.5)
    assert state.headroom(60 * S) == 1.0


def test_headroom_is_never_below_zero():
    state = RateLimitState("x")
    state.observe([Observation("orders_1m", 1300, 1200)], 0)  # over: the venue refuses
    assert state.headroom(0) == 0.0
