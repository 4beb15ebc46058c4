"""A replay's tapes become the record's mids and trades tables without intermediate frames,
equal to what RunRecord.build makes of the same rows."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from makerlab.analytics.record import TRADE_COLUMNS, _frame, _mid_frame, _tape_mids, _tape_trades


@dataclass
class _Tape:
    exchange_ts: np.ndarray
    local_ts: np.ndarray
    bid_price: np.ndarray
    ask_price: np.ndarray

    def __len__(self) -> int:
        return len(self.exchange_ts)


def test_mids_drop_one_sided_states_and_sort_stably_by_exchange_time() -> None:
    ets = np.array([5, 3, 3, 7, 1, 3], np.int64)  # in local-time order, not exchange time
    tape = _Tape(ets, ets + 10, np.array([[1.0], [2.0], [np.nan], [4.0], [5.0], [6.0]]),
                 np.array([[2.0], [3.0], [4.0], [np.nan], [6.0], [7.0]]))
    got = _tape_mids(tape)
    want = _mid_frame(pd.DataFrame({"ts": ets, "local_ts": ets + 10, "bid": tape.bid_price[:, 0],
                                    "ask": tape.ask_price[:, 0]}))
    pd.testing.assert_frame_equal(got, want, check_exact=True)
    assert got.ts.tolist() == [1, 3, 3, 5] and got.bid.tolist() == [5.0, 2.0, 6.0, 1.0]


def test_trades_are_the_built_table() -> None:
    @dataclass
    class Trades:
        exchange_ts: np.ndarray
        price: np.ndarray
        size: np.ndarray
        side: np.ndarray

    tape = Trades(np.array([1, 2], np.int64), np.array([10.0, 11.0]), np.array([1.0, 2.0]),
                  np.array([1, -1], np.int8))
    pd.testing.assert_frame_equal(_tape_trades(tape), _frame(_tape_trades(tape), TRADE_COLUMNS),
                                  check_exact=True)
