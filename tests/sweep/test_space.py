"""--param syntax, ranges and the grid."""

import pytest

from makerlab.errors import ConfigError
from makerlab.sweep.space import Range, grid, literal, parse_param, parse_params


def test_values_are_read_as_int_float_bool_or_text():
    assert parse_param("spread_bps=4,6.5,true,risk_averse") == (
        "spread_bps", [4, 6.5, True, "risk_averse"])
    assert [type(v) for v in parse_param("x=1,2.0")[1]] == [int, float]


def test_texts_with_colons_that_are_not_number_ranges_stay_text():
    assert parse_param("start=2024-08-08:23") == ("start", ["2024-08-08:23"])
    assert parse_param("queue_model=power:3,log") == ("queue_model", ["power:3", "log"])


def test_ranges_with_step_log_and_none():
    assert parse_param("spread_bps=2:10") == ("spread_bps", Range(2, 10))
    assert parse_param("fee=0.1:0.5:0.1")[1] == Range(0.1, 0.5, 0.1)
    assert parse_param("lr=1e-4:1e-1:log")[1] == Range(1e-4, 1e-1, log=True)


def test_a_stepped_range_lists_its_values_ends_included():
    assert Range(2, 10, 2).values() == [2, 4, 6, 8, 10]
    assert Range(0.1, 0.5, 0.1).values() == [0.1, 0.2, 0.3, 0.4, 0.5]
    with pytest.raises(ConfigError, match="has no step"):
        Range(2, 10).values()


@pytest.mark.parametrize("text", ["x", "x=", "=1", "x=1:2,3", "x=1:2:fast"])
def test_malformed_params_are_refused(text):
    with pytest.raises(ConfigError):
        parse_param(text)


def test_bad_ranges_are_refused():
    with pytest.raises(ConfigError, match="low must be below high"):
        Range(3, 3)
    with pytest.raises(ConfigError, match="log range needs low > 0"):
        Range(0, 1, log=True)


def test_a_parameter_given_twice_is_refused():
    with pytest.raises(ConfigError, match="given twice"):
        parse_params(["a=1", "a=2"])


def test_grid_is_the_cartesian_product_first_parameter_slowest():
    configs = grid({"a": [1, 2], "b": Range(0, 4, 2), "c": ["x"]})
    assert configs == [{"a": 1, "b": 0, "c": "x"}, {"a": 1, "b": 2, "c": "x"},
                       {"a": 1, "b": 4, "c": "x"}, {"a": 2, "b": 0, "c": "x"},
                       {"a": 2, "b": 2, "c": "x"}, {"a": 2, "b": 4, "c": "x"}]


def test_literal():
    assert literal(" 7 ") == 7 and literal("FALSE") is False and literal("a b") == "a b"
