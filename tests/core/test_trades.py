import math

import numpy as np
import pytest

from makerlab.core.trades import Trades
from makerlab.core.weights import exponential_weights, rolling_vol, simple_weights, vol
from makerlab.errors import ConfigError, DataError, UnsortedData

E = math.exp


def tape(rows, buffer_size=100):
    trades = Trades(buffer_size)
    for row in rows:
        trades.append(row)
    return trades


IMBALANCE_ROWS = [(1_000, 100.0, 1.0, 1), (2_000, 100.0, 3.0, -1), (3_000, 101.0, 4.0, 1)]
FLOW_ROWS = [(1, 100.0, 1.0, 1), (2, 102.0, 2.0, -1), (3, 101.0, 1.0, 1)]


def test_append_forms_and_buffer():
    trades = Trades(buffer_size=2)
    trades.append((1_000, 100.0, 1.0, 1))
    trades.append(ts=2_000, price=101.0, size=2.0, dir=-1)
    trades.append(trade=(3_000, 102.0, 0.5, 1))
    assert trades.buffer_len() == 2
    np.testing.assert_array_equal(
        trades.get_buffer(), [[2_000, 101.0, 2.0, -1], [3_000, 102.0, 0.5, 1]])
    np.testing.assert_array_equal(trades.get_ts_buffer(), [2_000, 3_000])
    trades.clear_buffer()
    assert trades.get_buffer().shape == (0, 4)


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"ts": 1, "price": 100.0, "size": 1.0}, ConfigError),
        ({"trade": (1, 100.0, 1.0, 0)}, DataError),
        ({"trade": (1, 100.0, -1.0, 1)}, DataError),
        ({"trade": (1, 100.0, 1.0)}, ConfigError),
    ],
)
def test_append_rejects_bad_trades(kwargs, error):
    with pytest.raises(error):
        Trades().append(**kwargs)


def test_append_rejects_older_trade():
    trades = tape([(2_000, 100.0, 1.0, 1)])
    with pytest.raises(UnsortedData):
        trades.append((1_000, 100.0, 1.0, 1))


def test_sample_selection():
    trades = tape(IMBALANCE_ROWS)
    np.testing.assert_array_equal(trades.get_sample(n=2)[:, 0], [2_000, 3_000])
    np.testing.assert_array_equal(trades.get_sample(tau=1_000)[:, 0], [2_000, 3_000])
    np.testing.assert_array_equal(trades.get_sample(T=2_500)[:, 0], [1_000, 2_000])
    assert trades.sample_len() == 3
    assert trades.sample_len(n=1, T=1_500) == 1
    sample = trades.get_sample(n=15)
    assert np.sum(sample[:, 1] * sample[:, 2]) == 100.0 + 300.0 + 404.0


def test_imbalance_simple_weights():
    trades = tape(IMBALANCE_ROWS)
    assert trades.get_imbalance(min_n=1) == pytest.approx((1 - 3 + 4) / 8)
    assert trades.get_imbalance(T=2_500, min_n=1) == pytest.approx((1 - 3) / 4)


def test_imbalance_below_min_n_returns_default():
    trades = tape(IMBALANCE_ROWS)
    assert trades.get_imbalance() == 0
    assert trades.get_imbalance(min_n=4, default=0.7) == 0.7
    assert Trades().get_imbalance(min_n=0, default=0.3) == 0.3


def test_imbalance_with_exponential_decay():
    trades = tape(IMBALANCE_ROWS)
    weights = np.array([E(-1), E(-0.5), 1.0]) * [1.0, 3.0, 4.0]  # ages 2000, 1000, 0 ms
    expected = np.dot(weights, [1, -1, 1]) / weights.sum()
    got = trades.get_imbalance(min_n=1, decay_function=exponential_weights)
    assert got == pytest.approx(expected)


def test_imbalance_with_custom_decay_of_age():
    trades = tape(IMBALANCE_ROWS)
    recent = lambda ages: (ages < 1_500).astype(float)  # noqa: E731
    assert trades.get_imbalance(min_n=1, decay_function=recent) == pytest.approx((-3 + 4) / 7)
    nothing = lambda ages: np.zeros_like(ages)  # noqa: E731
    assert trades.get_imbalance(min_n=1, default=9, decay_function=nothing) == 9


def test_flow_pnl():
    trades = tape(FLOW_ROWS)
    # Marked at 101: the maker sold 1 at 100 (-1) and bought 2 at 102 (-2).
    assert trades.get_flow_pnl(min_n=1, norm_volume=False) == pytest.approx(-3.0)
    assert trades.get_flow_pnl(min_n=1) == pytest.approx(-3.0 / 405.0)
    expected = -3.0 / 405.0 / math.sqrt(3)
    assert trades.get_flow_pnl(min_n=1, norm_variance=True) == pytest.approx(expected)
    assert trades.get_flow_pnl(n=1, min_n=1) == 0.0
    assert trades.get_flow_pnl(default=-1) == -1


def test_exponential_weights_ranks_and_ties():
    np.testing.assert_allclose(exponential_weights([5, 5, 0]), [E(-1), E(-0.5), 1.0])
    np.testing.assert_allclose(exponential_weights([5, 5, 0], unique_values=True),
                               [E(-1), E(-1), 1.0])
    np.testing.assert_allclose(exponential_weights([3, 3]), [E(-1), 1.0])
    assert exponential_weights([7.0]).tolist() == [1.0]
    assert exponential_weights([2, 1, 0], normalize=True).sum() == pytest.approx(1.0)


def test_simple_weights():
    assert simple_weights([4, 2, 0]).tolist() == [1.0, 1.0, 1.0]
    np.testing.assert_allclose(simple_weights([4, 2], normalize=True), [0.5, 0.5])


def test_vol_and_rolling_vol():
    mids = [100.0, 101.0, 101.0, 99.0]
    assert vol(mids) == pytest.approx(math.sqrt((1 + 4) / 2))
    rolled = rolling_vol(mids, 3)
    assert np.isnan(rolled[:2]).all()
    np.testing.assert_allclose(rolled[2:], [1.0, 2.0])
    assert np.isnan(rolling_vol(mids, 5)).all()
