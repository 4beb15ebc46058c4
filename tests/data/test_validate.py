import numpy as np
import pytest

from makerlab.data.convert import Repairs
from makerlab.data.validate import check_finite, check_sorted, check_uncrossed
from makerlab.errors import CrossedBook, DataError, UnsortedData


def test_check_sorted_names_the_first_backward_row():
    ts = np.array([1, 2, 5, 4, 6, 3])
    with pytest.raises(UnsortedData, match=r"capture\.csv:5: timestamp 4 goes back from 5"):
        check_sorted(ts, source="capture.csv", first_line=2)


def test_check_sorted_repair_sorts_stably_and_counts():
    repairs = Repairs()
    order = check_sorted(np.array([1, 3, 2, 3]), source="f", repairs=repairs)
    assert order.tolist() == [0, 2, 1, 3]
    assert repairs.counts["unsorted"] == 1


def test_check_finite_reports_column_and_line():
    with pytest.raises(DataError, match=r"f:3: non-finite price"):
        check_finite({"price": np.array([1.0, 2.0, np.nan]), "size": np.ones(3)}, source="f")
    repairs = Repairs()
    keep = check_finite({"price": np.array([1.0, np.inf])}, source="f", repairs=repairs)
    assert keep.tolist() == [True, False]
    assert repairs.total == 1


def test_check_uncrossed_allows_empty_sides_and_optionally_locked():
    bid = np.array([10.0, np.nan, 10.0])
    ask = np.array([11.0, 9.0, 10.0])
    with pytest.raises(CrossedBook, match=r"f:3: crossed book"):
        check_uncrossed(bid, ask, source="f")
    assert check_uncrossed(bid, ask, source="f", allow_locked=True).all()


def test_check_uncrossed_with_explicit_line_numbers():
    with pytest.raises(CrossedBook, match=r"f:42:"):
        check_uncrossed(np.array([2.0]), np.array([1.0]), source="f", lines=np.array([42]))
