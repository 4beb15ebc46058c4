import numpy as np
import pytest

from makerlab.core.bars import (
    DistanceBars,
    DollarBars,
    ProbabilisticSignedTickBars,
    SignedDollarBars,
    SignedTickBars,
    SignedVolumeBars,
    TickBars,
    TimeBars,
    VolumeBars,
)
from makerlab.errors import ConfigError, UnsortedData


def feed(bars, trades):
    """Update with each trade; return the indices of the trades that returned a bar."""
    return [i for i, trade in enumerate(trades) if bars.update(trade) is not None]


def flat(sizes, dirs=None, price=100.0):
    dirs = dirs or [1] * len(sizes)
    rows = zip(sizes, dirs, strict=True)
    return [(1_000 * (i + 1), price, s, d) for i, (s, d) in enumerate(rows)]


def test_tick_bar_includes_the_rolling_trade():
    bars = TickBars(n_ticks=3)
    trades = [(1_000, 100.0, 1.0, 1), (2_000, 102.0, 1.0, -1), (3_000, 99.0, 2.0, 1)]
    assert bars.update(trades[0]) is None
    assert bars.update(trades[1]) is None
    bar = bars.update(trades[2])
    vwap = (100.0 + 102.0 + 2 * 99.0) / 4
    assert bar == [1_000, 100.0, 102.0, 99.0, 99.0, 4.0, 3, pytest.approx(vwap), 3_000]
    assert feed(bars, flat([1.0] * 7)) == [2, 5]
    assert bars.buffer_len() == 3


@pytest.mark.parametrize(
    ("bars", "trades", "rolls"),
    [
        (VolumeBars(n_volume=5), flat([2.0, 2.0, 1.0, 4.0]), [2]),
        (DollarBars(n_dollars=1_000), flat([4.0, 5.0, 2.0]), [2]),
        (SignedTickBars(n_ticks=2), flat([1.0] * 4, [1, -1, 1, 1]), [3]),
        (SignedVolumeBars(n_volume=3), flat([2.0, 1.0, 1.0, 1.0], [1, -1, 1, 1]), [3]),
        (SignedDollarBars(n_dollars=300), flat([2.0, 1.0, 2.0], [1, -1, 1]), [2]),
        (SignedTickBars(n_ticks=2), flat([1.0] * 4, [-1, -1, 1, 1]), [1, 3]),  # theta resets
    ],
)
def test_threshold_bars_roll_on_the_reaching_trade(bars, trades, rolls):
    assert feed(bars, trades) == rolls
    assert bars.get_buffer()[0, 6] == rolls[0] + 1  # the rolling trade is in the bar


def test_distance_bars():
    bars = DistanceBars(percent=0.01)
    prices = [100.0, 100.9, 99.5, 101.5, 101.6]
    trades = [(i, p, 1.0, 1) for i, p in enumerate(prices)]
    assert feed(bars, trades) == [3]
    assert bars.get_buffer()[0, 4] == 101.5


def test_time_bars_align_to_wall_clock_and_roll_before_the_late_trade():
    bars = TimeBars(granularity="s", granularity_multiplier=10)
    assert bars.update((1_000, 100.0, 1.0, 1)) is None
    assert bars.update((9_999, 101.0, 1.0, 1)) is None
    bar = bars.update((10_000, 105.0, 2.0, 1))
    assert bar[:7] == [0, 100.0, 101.0, 100.0, 101.0, 2.0, 2]
    assert bar[8] == 9_999
    bar = bars.update((25_000, 90.0, 1.0, -1))  # skips the empty [20s, 30s) start
    assert bar[0] == 10_000 and bar[1] == 105.0 and bar[6] == 1
    assert bars.update((29_999, 91.0, 1.0, 1)) is None
    assert bars.update((30_000, 91.0, 1.0, 1))[0] == 20_000


def test_time_bar_granularities():
    assert TimeBars("m", 5).interval == 300_000
    assert TimeBars("h", 1).interval == 3_600_000
    assert TimeBars("d", 1).interval == 86_400_000
    with pytest.raises(ConfigError, match="granularity"):
        TimeBars("w")


def test_probabilistic_signed_tick_bars_adapt_threshold():
    bars = ProbabilisticSignedTickBars(lamb=0.5, n_ticks=4, Ebt=0.5)
    assert bars.threshold == 2.0
    assert feed(bars, flat([1.0, 1.0])) == [1]
    assert bars.expected_imbalance == pytest.approx(0.5 * 1.0 + 0.5 * 0.5)  # threshold 3
    assert feed(bars, flat([1.0] * 5, [1, -1, 1, 1, 1])) == [4]
    assert bars.expected_imbalance == pytest.approx(0.5 * 3 / 5 + 0.5 * 0.75)


def test_reading_bars():
    bars = TickBars(n_ticks=1)
    feed(bars, flat([1.0, 2.0, 3.0]))
    frame = bars.as_df()
    assert list(frame.columns) == ["t", "o", "h", "l", "c", "v", "n", "vwap", "T"]
    assert frame["v"].tolist() == [1.0, 2.0, 3.0]
    np.testing.assert_array_equal(bars.get_sample(n=2)[:, 5], [2.0, 3.0])
    np.testing.assert_array_equal(bars.get_sample(T=2_000)[:, 5], [1.0, 2.0])
    assert bars.sample_len(tau=1_000) == 2
    bars.clear_buffer()
    assert bars.buffer_len() == 0


def test_bar_errors():
    bars = TickBars(n_ticks=5)
    bars.update((2_000, 100.0, 1.0, 1))
    with pytest.raises(UnsortedData):
        bars.update((1_000, 100.0, 1.0, 1))
    for make in (lambda: TickBars(0), lambda: VolumeBars(-1), lambda: DistanceBars(0),
                 lambda: ProbabilisticSignedTickBars(lamb=0)):
        with pytest.raises(ConfigError):
            make()
