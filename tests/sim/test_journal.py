"""OrderJournal: the venue's journal as columns reads back as the dicts it was given."""

from __future__ import annotations

import copy
import enum
import gc
import pickle
from decimal import Decimal
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from makerlab.analytics.record import _plain_value
from makerlab.sim.journal import OrderJournal


class Side(enum.Enum):
    BUY = "buy"


def _rows(n: int) -> list[dict[str, Any]]:
    """Events of every shape the venue writes, and values that compare equal across types
    (``1``/``True``/``Decimal("1.0")``) or spellings (``Decimal("0.0030")``)."""
    out: list[dict[str, Any]] = []
    for i in range(n):
        ts = 1_700_000_000_000_000_000 + i
        k = i % 6
        if k == 0:
            out.append({"ts": ts, "event": "submit", "exc": "binance", "ticker": "BTCUSDT",
                        "cloid": f"c{i}", "amount": Decimal("0.0030") if i % 4 else
                        Decimal("0.003"), "price": Decimal(60_000 + i % 7) / 10,
                        "tif": "GTC", "reduce_only": i % 3 == 0, "ord_type": "limit"})
        elif k == 1:
            out.append({"ts": ts, "event": "ack", "exc": "binance", "ticker": "BTCUSDT",
                        "cloid": f"c{i - 1}", "oid": str(i)})
        elif k == 2:
            out.append({"ts": ts, "event": "reject", "exc": "binance", "ticker": "BTCUSDT",
                        "cloid": f"c{i}", "reason": -5022 if i % 4 else "-2011 Unknown"})
        elif k == 3:
            out.append({"ts": ts, "event": "cancel_all", "exc": "bybit", "ticker": None})
        elif k == 4:
            out.append({"ts": ts, "event": "amend", "exc": "binance", "ticker": "BTCUSDT",
                        "cloid": None, "oid": str(i), "amount": None,
                        "price": True if i % 3 else 1})
        else:
            out.append({"ts": ts, "event": "cancel", "exc": "binance", "ticker": "ETHUSDT",
                        "cloid": f"c{i}", "side": Side.BUY})
    return out


@pytest.fixture(params=[False, True], ids=["memory", "spill"])
def spill(request: pytest.FixtureRequest) -> bool:
    return bool(request.param)


@pytest.mark.parametrize("chunk_rows", [1, 7, 1000])
def test_rows_read_back_as_given(spill: bool, chunk_rows: int) -> None:
    rows = _rows(100)
    journal = OrderJournal(spill=spill, chunk_rows=chunk_rows)
    for row in rows:
        journal.append(dict(row))
    assert len(journal) == 100 and journal == rows and bool(journal)
    got = list(journal)
    assert [list(r) for r in got] == [list(r) for r in rows]  # key order, absent keys
    assert [[(type(v), str(v)) for v in r.values()] for r in got] == \
        [[(type(v), str(v)) for v in r.values()] for r in rows]  # types and spellings
    assert journal[0] == rows[0] and journal[-1] == rows[-1] and journal[42] == rows[42]
    assert journal[95:-1] == rows[95:-1] and journal[::-13] == rows[::-13]
    with pytest.raises(IndexError):
        journal[100]


def test_the_table_is_the_one_a_list_of_dicts_gives(spill: bool) -> None:
    rows = _rows(200)
    rows = [r for r in rows if r["event"] == "submit"] + rows  # chunks without some keys
    journal = OrderJournal(spill=spill, chunk_rows=33)
    for row in rows:
        journal.append(row)
    want = pd.DataFrame([{k: _plain_value(v) for k, v in r.items()} for r in rows])
    pd.testing.assert_frame_equal(journal.to_frame(_plain_value), want, check_exact=True)
    got, want = journal.to_frame(), pd.DataFrame(rows)
    pd.testing.assert_frame_equal(got, want, check_exact=True)
    assert got.astype(object).map(type).equals(want.astype(object).map(type))  # NaN, None


def test_a_spilling_journal_keeps_closed_chunks_on_disk() -> None:
    journal = OrderJournal(spill=True, chunk_rows=10)
    for row in _rows(35):
        journal.append(row)
    folder = Path(repr(journal).split("spilled to ")[1].rstrip(")"))
    assert len(list(folder.glob("*.arrow"))) == 3  # 30 rows closed, 5 still open
    del journal
    assert not folder.exists()


def test_a_copy_of_a_spilled_journal_outlives_the_original(spill: bool) -> None:
    """A pickled or copied journal holds its chunks itself: the original's spill folder
    is removed with the original, not with (or from under) the copy."""
    journal = OrderJournal(spill=spill, chunk_rows=10)
    rows = _rows(35)
    for row in rows:
        journal.append(row)
    copies = [pickle.loads(pickle.dumps(journal)), copy.deepcopy(journal)]
    del journal
    gc.collect()
    for journal_copy in copies:
        assert journal_copy == rows and "in memory" in repr(journal_copy)
        journal_copy.append(rows[0])
        assert len(journal_copy) == 36 and journal_copy[-1] == rows[0]


def test_empty_journal() -> None:
    journal = OrderJournal()
    assert not journal and list(journal) == [] and journal == []
    assert journal.to_frame().empty
    with pytest.raises(ValueError, match="chunk_rows"):
        OrderJournal(chunk_rows=0)
