"""A small hand-made RunRecord shared by the analytics tests (every number is by hand).

Market X/T, mids every second t = 0..10 s (bid/ask = mid -/+ 0.5)::

    mid   100 100 101 102 101 100 99 100 101 101 100

Fills (start balance 1000)::

    t=0.5 s  buy  1 @  99.5  maker fee 0.01  arrived 0.2 s  position  1  cloid a
    t=2.5 s  sell 2 @ 101.5  maker fee 0.02  arrived 1.5 s  position -1  cloid b
    t=6.5 s  buy  1 @  99.5  taker fee 0.03  arrived 6.5 s  position  0  cloid c

Market trades: t=0.5 s taker buy 1 @ 100.5; t=1.5 s taker sell 2 @ 99.5.
"""

from __future__ import annotations

import pandas as pd
import pytest

from makerlab.analytics.record import RunRecord

S = 1_000_000_000
MIDS = [100, 100, 101, 102, 101, 100, 99, 100, 101, 101, 100]


def fill(t: float, price: float, size: float, d: int, maker: bool, fee: float,
         arrival: float, position: float, cloid: str) -> dict:
    return {"ts": int(t * S), "exc": "X", "ticker": "T", "oid": cloid, "cloid": cloid,
            "price": price, "size": size, "dir": d, "is_maker": maker, "fee": fee,
            "rule": "test", "arrival_ts": int(arrival * S), "position": position}


def make_record() -> RunRecord:
    mids = {("X", "T"): {"ts": [i * S for i in range(11)],
                         "bid": [m - 0.5 for m in MIDS], "ask": [m + 0.5 for m in MIDS]}}
    fills = [fill(0.5, 99.5, 1, 1, True, 0.01, 0.2, 1, "a"),
             fill(2.5, 101.5, 2, -1, True, 0.02, 1.5, -1, "b"),
             fill(6.5, 99.5, 1, 1, False, 0.03, 6.5, 0, "c")]
    actions = [{"ts": int(0.1 * S), "event": "submit", "exc": "X", "ticker": "T",
                "cloid": "a", "amount": 1.0, "price": 99.5},
               {"ts": int(1.4 * S), "event": "submit", "exc": "X", "ticker": "T",
                "cloid": "b", "amount": -4.0, "price": 101.5},
               {"ts": int(6.5 * S), "event": "submit", "exc": "X", "ticker": "T",
                "cloid": "c", "amount": 1.0, "price": None},
               {"ts": int(6.6 * S), "event": "reject", "exc": "X", "ticker": "T",
                "cloid": "d", "reason": -5022}]
    stamps = [(i * S, "X", eq, eq, inv) for i, (eq, inv) in
              enumerate(zip([1000, 1001, 999, 1002, 1002], [0, 100, -101, 0, 0], strict=True))]
    trades = {("X", "T"): {"ts": [int(0.5 * S), int(1.5 * S)], "price": [100.5, 99.5],
                           "size": [1.0, 2.0], "dir": [1, -1]}}
    declarations = [{"ts": 500, "key": "good", "value": 100.0, "exc": "X", "ticker": "T",
                     "group": "fair"},
                    {"ts": 500, "key": "bad", "value": 101.0, "exc": "X", "ticker": "T",
                     "group": "fair"},
                    {"ts": 9500, "key": "good", "value": 101.0, "exc": "X", "ticker": "T",
                     "group": "fair"},
                    {"ts": 9500, "key": "bad", "value": 102.0, "exc": "X", "ticker": "T",
                     "group": "fair"}]
    config = {"start_balance": 1000.0, "start_ns": 0, "end_ns": 10 * S, "stamp_cycle_ms": 1000}
    return RunRecord.build(fills, actions, stamps, declarations,
                           mids={k: pd.DataFrame(v) for k, v in mids.items()},
                           trades={k: pd.DataFrame(v) for k, v in trades.items()},
                           config=config)


@pytest.fixture
def record() -> RunRecord:
    return make_record()
