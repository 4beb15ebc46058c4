from collections import deque

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from makerlab.core.ringbuffer import RingBuffer, sample_slice
from makerlab.errors import ConfigError, DataError


@pytest.mark.parametrize("capacity", [0, -3, 2.5, True])
def test_rejects_bad_capacity(capacity):
    with pytest.raises(ValueError, match="capacity"):
        RingBuffer(capacity)


def test_append_drops_oldest_when_full():
    rb = RingBuffer(3)
    for value in range(5):
        rb.append(value)
    assert rb.is_full
    assert list(rb) == [2, 3, 4]
    assert rb.peek() == 4
    assert rb.peekleft() == 2


def test_appendleft_drops_newest_when_full():
    rb = RingBuffer(3, dtype=int)
    for value in range(5):
        rb.appendleft(value)
    assert list(rb) == [4, 3, 2]


def test_pop_and_popleft():
    rb = RingBuffer(4, dtype=int)
    for value in (1, 2, 3):
        rb.append(value)
    assert rb.pop() == 3
    assert rb.popleft() == 1
    assert list(rb) == [2]
    rb.clear()
    with pytest.raises(IndexError):
        rb.pop()
    with pytest.raises(IndexError):
        rb.peekleft()


def test_indexing_slicing_and_array_are_oldest_first_copies():
    rb = RingBuffer(3)
    for value in (1.0, 2.0, 3.0, 4.0):
        rb.append(value)
    assert rb[0] == 2.0
    assert rb[-1] == 4.0
    tail = rb[-2:]
    np.testing.assert_array_equal(tail, [3.0, 4.0])
    snapshot = np.asarray(rb)
    rb.append(5.0)
    np.testing.assert_array_equal(tail, [3.0, 4.0])
    np.testing.assert_array_equal(snapshot, [2.0, 3.0, 4.0])
    with pytest.raises(IndexError):
        rb[3]


def test_element_shape_and_properties():
    rb = RingBuffer(2, dtype=float, shape=(3, 2))
    rb.append(np.ones((3, 2)))
    rb.append(np.full((3, 2), 2.0))
    rb.append(np.full((3, 2), 3.0))
    assert rb.shape == (2, 3, 2)
    assert rb.maxlen == 2
    assert rb.dtype == np.float64
    assert np.asarray(rb)[:, 0, 0].tolist() == [2.0, 3.0]
    element = rb.peek()
    element[:] = 0
    assert rb.peek()[0, 0] == 3.0


def test_wrong_element_shape_is_rejected():
    rb = RingBuffer(2, shape=(2,))
    with pytest.raises(DataError, match="shape"):
        rb.append(1.0)


def test_view_is_read_only():
    rb = RingBuffer(2)
    rb.append(1.0)
    with pytest.raises(ValueError, match="read-only"):
        rb.view()[0] = 5.0


OPS = st.lists(
    st.one_of(
        st.tuples(st.just("append"), st.integers(0, 99)),
        st.tuples(st.just("appendleft"), st.integers(0, 99)),
        st.tuples(st.just("pop"), st.none()),
        st.tuples(st.just("popleft"), st.none()),
    ),
    max_size=60,
)


@settings(max_examples=200, deadline=None)
@given(capacity=st.integers(1, 6), ops=OPS)
def test_matches_a_bounded_deque(capacity, ops):
    rb, model = RingBuffer(capacity, dtype=int), deque(maxlen=capacity)
    for name, value in ops:
        if name.startswith("pop") and not model:
            continue
        if value is None:
            assert getattr(rb, name)() == getattr(model, name)()
        else:
            getattr(rb, name)(value)
            getattr(model, name)(value)
        assert list(rb) == list(model)
        assert len(rb) == len(model)


def test_sample_slice_selection():
    ts = np.array([1000, 2000, 3000, 3000, 5000])
    assert sample_slice(ts) == slice(0, 5)
    assert sample_slice(ts, n=2) == slice(3, 5)
    assert sample_slice(ts, n=10) == slice(0, 5)
    assert sample_slice(ts, n=0) == slice(5, 5)
    assert sample_slice(ts, tau=2000) == slice(2, 5)  # ts >= 3000
    assert sample_slice(ts, T=3000) == slice(0, 4)  # ts <= 3000
    assert sample_slice(ts, n=1, T=2500) == slice(1, 2)
    assert sample_slice(ts, tau=1000, T=3500) == slice(2, 4)  # 2500 <= ts <= 3500
    assert sample_slice(ts, n=-1, tau=-1, T=-1) == slice(0, 5)
    assert sample_slice(np.array([], dtype=np.int64), tau=10) == slice(0, 0)


def test_sample_slice_rejects_n_and_tau_together():
    with pytest.raises(ConfigError, match="not both"):
        sample_slice(np.arange(3), n=1, tau=1)


@settings(max_examples=200, deadline=None)
@given(st.integers(1, 12), st.integers(0, 30), st.lists(st.integers(0, 40), max_size=6))
def test_extend_is_push_one_by_one(capacity, before, batches):
    pushed, extended = RingBuffer(capacity, float, (2,)), RingBuffer(capacity, float, (2,))
    for i in range(before):  # any start and length
        pushed._push((i, -i))
        extended._push((i, -i))
    start = before
    for n in batches:
        values = np.column_stack((np.arange(start, start + n), -np.arange(start, start + n)))
        start += n
        for value in values:
            pushed._push(value)
        extended._extend(values.astype(float))
        np.testing.assert_array_equal(extended.view(), pushed.view())
        assert len(extended) == len(pushed)
        extended._push((-1, 1))  # and the next push lands where it would have
        pushed._push((-1, 1))
        np.testing.assert_array_equal(extended.view(), pushed.view())
