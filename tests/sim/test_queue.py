"""Queue-position models: shared rules, each model's split of decreases, properties."""

from __future__ import annotations

import math
from dataclasses import fields

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from makerlab.errors import ConfigError
from makerlab.sim.queue import (
    QUEUE_STATE_DTYPE,
    LogProbQueue,
    LogProbQueue2,
    PowerProbQueue,
    PowerProbQueue2,
    PowerProbQueue3,
    QueueModel,
    QueueState,
    RiskAverseQueue,
    after_decrease,
    log_prob,
    log_prob2,
    power_prob,
    power_prob2,
    power_prob3,
)

PROB_MODELS = [PowerProbQueue(1), PowerProbQueue(3), PowerProbQueue2(2), PowerProbQueue3(2),
               LogProbQueue(), LogProbQueue2()]
ALL_MODELS = [RiskAverseQueue(), *PROB_MODELS]
ids = lambda m: repr(m)  # noqa: E731


def joined(model, level_qty: float) -> QueueState:
    state = QueueState()
    model.on_new(state, level_qty)
    return state


# ---- shared rules (module docstring bullets) -------------------------------------------------

@pytest.mark.parametrize("model", ALL_MODELS, ids=ids)
def test_join_at_the_back(model):
    state = QueueState(ahead=1.0, traded=2.0, fillable=3.0)
    model.on_new(state, 12.5)
    assert state == QueueState(12.5, 0.0, 0.0)


@pytest.mark.parametrize("model", ALL_MODELS, ids=ids)
@given(st.floats(0, 5), st.floats(0, 5), st.floats(0, 5))
def test_an_empty_level_that_stays_empty_changes_nothing(model, level, trade, new):
    """Whatever happened before, once the level shows nothing, a (0 -> 0) report with no
    trade since is a no-op (the engine skips it for levels far from the touch)."""
    state = joined(model, level)
    model.on_trade(state, trade)
    model.on_level_change(state, level, new)
    model.on_level_change(state, new, 0.0)
    before = QueueState(state.ahead, state.traded, state.fillable)
    model.on_level_change(state, 0.0, 0.0)
    assert state == before


@pytest.mark.parametrize("model", ALL_MODELS, ids=ids)
def test_trades_eat_the_front_first(model):
    state = joined(model, 5)
    model.on_trade(state, 3)
    assert (state.ahead, model.fillable(state)) == (2, 0)
    model.on_trade(state, 4)
    assert (state.ahead, model.fillable(state)) == (0, 2)
    model.on_trade(state, 1)
    assert model.fillable(state) == 3


@pytest.mark.parametrize("model", ALL_MODELS, ids=ids)
def test_trades_are_not_counted_twice(model):
    state = joined(model, 10)
    model.on_trade(state, 3)
    model.on_level_change(state, 10, 7)  # the trade, now reflected in the book
    assert state.ahead == 7 and state.traded == 0


@pytest.mark.parametrize("model", ALL_MODELS, ids=ids)
def test_increases_go_behind(model):
    state = joined(model, 4)
    model.on_level_change(state, 4, 9)
    assert state.ahead == 4
    model.on_trade(state, 3)
    model.on_level_change(state, 9, 7)  # -2 with 3 traded: a net increase of 1
    assert state.ahead == 1


@pytest.mark.parametrize("model", ALL_MODELS, ids=ids)
def test_ahead_never_exceeds_the_level_and_is_never_negative(model):
    state = joined(model, 10)
    model.on_level_change(state, 10, 3)
    assert 0 <= state.ahead <= 3
    model.on_level_change(state, 3, 0)
    assert state.ahead == 0
    model.on_new(state, -1)
    assert state.ahead == 0


@pytest.mark.parametrize("model", ALL_MODELS, ids=ids)
def test_fillable_never_exceeds_what_traded(model):
    state = joined(model, 1)
    model.on_trade(state, 4)
    assert model.fillable(state) == 3
    model.consume(state, 2)
    assert model.fillable(state) == 1
    with pytest.raises(ConfigError):
        model.consume(state, 1.5)
    with pytest.raises(ConfigError):
        model.consume(state, -1)
    with pytest.raises(ConfigError):
        model.on_trade(state, -1)


# ---- each model's split --------------------------------------------------------------------

def _after_cancel(model, front: float, back: float, chg: float) -> float:
    state = joined(model, front + back)
    state.ahead = front  # place the order with `back` behind it
    model.on_level_change(state, front + back, front + back - chg)
    return state.ahead


def test_cancels_are_behind_us():
    assert _after_cancel(RiskAverseQueue(), 4, 6, 5) == 4
    assert _after_cancel(RiskAverseQueue(), 4, 6, 8) == 2  # capped at the new level


def _expected(front: float, back: float, chg: float, prob: float) -> float:
    est = front - (1 - prob) * chg + min(back - prob * chg, 0)
    return min(max(est, 0), front + back - chg)


def test_power_split():
    p = 6**3 / (6**3 + 4**3)
    assert _after_cancel(PowerProbQueue(3), 4, 6, 5) == pytest.approx(_expected(4, 6, 5, p))
    assert power_prob(4, 6, 3) == pytest.approx(p)


def test_power_split_2():
    p = 6**2 / 10**2
    assert _after_cancel(PowerProbQueue2(2), 4, 6, 5) == pytest.approx(_expected(4, 6, 5, p))
    assert power_prob2(4, 6, 2) == pytest.approx(p)


def test_power_split_3():
    p = 1 - (4 / 10) ** 2
    assert _after_cancel(PowerProbQueue3(2), 4, 6, 5) == pytest.approx(_expected(4, 6, 5, p))
    assert power_prob3(4, 6, 2) == pytest.approx(p)


def test_log_split():
    p = math.log(7) / (math.log(7) + math.log(5))
    assert _after_cancel(LogProbQueue(), 4, 6, 5) == pytest.approx(_expected(4, 6, 5, p))
    assert log_prob(4, 6) == pytest.approx(p)


def test_log_split_2():
    p = math.log(7) / math.log(11)
    assert _after_cancel(LogProbQueue2(), 4, 6, 5) == pytest.approx(_expected(4, 6, 5, p))
    assert log_prob2(4, 6) == pytest.approx(p)


def test_back_excludes_trades_not_yet_in_the_book():
    model = PowerProbQueue(1)
    state = joined(model, 10)
    state.ahead = 5
    model.on_trade(state, 3)  # ahead 2; the book still shows 10 = 2 ahead + 3 traded + 5 behind
    model.on_level_change(state, 10, 5)  # 2 cancelled: split 5:2 behind:front
    assert state.ahead == pytest.approx(2 - (2 / 7) * 2)


def test_decrease_beyond_the_back_comes_from_the_front():
    assert after_decrease(front=4, back=1, chg=3, prob_back=1.0, new_qty=2) == 2
    assert after_decrease(front=0, back=0, chg=1, prob_back=float("nan"), new_qty=0) == 0


@pytest.mark.parametrize("fn", [power_prob, power_prob2, power_prob3])
def test_empty_level_splits_behind(fn):
    assert fn(0.0, 0.0, 2.0) == 1.0


def test_log_empty_level_splits_behind():
    assert log_prob(0.0, 0.0) == 1.0 == log_prob2(0.0, 0.0)


@pytest.mark.parametrize("cls", [PowerProbQueue, PowerProbQueue2, PowerProbQueue3])
@pytest.mark.parametrize("n", [0, -1, float("inf"), float("nan")])
def test_power_must_be_positive(cls, n):
    with pytest.raises(ConfigError):
        cls(n)


def test_state_dtype_matches_the_state_record():
    assert list(QUEUE_STATE_DTYPE.names) == [f.name for f in fields(QueueState)]


# ---- properties ----------------------------------------------------------------------------

events = st.lists(st.one_of(
    st.tuples(st.just("trade"), st.floats(0, 20)),
    st.tuples(st.just("level"), st.floats(0, 50)),
    st.tuples(st.just("fill"), st.floats(0, 1)),
), max_size=40)


def _play(model, start: float, seq) -> list[tuple[float, float, float, float]]:
    """Run events; after each, ``(ahead, level, fillable, traded - filled)``."""
    state, level, traded, filled, out = joined(model, start), start, 0.0, 0.0, []
    for kind, x in seq:
        if kind == "trade":
            model.on_trade(state, x)
            traded += x
        elif kind == "level":
            model.on_level_change(state, level, x)
            level = x
        else:
            qty = model.fillable(state) * x
            model.consume(state, qty)
            filled += qty
        out.append((state.ahead, level, model.fillable(state), traded - filled))
    return out


@settings(max_examples=150, deadline=None)
@given(st.sampled_from(ALL_MODELS), st.floats(0, 50), events)
def test_queue_invariants_hold_for_any_event_sequence(model, start, seq):
    for ahead, level, fillable, unfilled_traded in _play(model, start, seq):
        assert ahead >= 0 and fillable >= 0
        assert ahead <= level + 1e-9
        assert fillable <= unfilled_traded + 1e-9


@settings(max_examples=150, deadline=None)
@given(st.sampled_from(PROB_MODELS), st.floats(0, 50),
       st.lists(st.one_of(st.tuples(st.just("trade"), st.floats(0, 20)),
                          st.tuples(st.just("level"), st.floats(0, 50))), max_size=40))
def test_probabilistic_models_are_never_behind_risk_averse(model, start, seq):
    for mine, safe in zip(_play(model, start, seq), _play(RiskAverseQueue(), start, seq),
                          strict=True):
        assert mine[0] <= safe[0] + 1e-9
        assert mine[2] >= safe[2] - 1e-9


@pytest.mark.parametrize("model", ALL_MODELS, ids=ids)
def test_models_satisfy_the_protocol(model):
    assert isinstance(model, QueueModel)
