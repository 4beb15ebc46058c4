"""A fixed-capacity, numpy-backed ring buffer, and time-window sampling over one.

The buffer writes every element twice, at slot ``i`` and ``i + capacity`` of a backing array
of ``2 * capacity`` elements. The live window (oldest to newest) is therefore always one
contiguous slice, so appends are O(1) and reading the last ``n`` items is a single slice.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, TypeGuard

import numpy as np
from numpy.typing import ArrayLike, DTypeLike

from makerlab.errors import ConfigError, DataError


class RingBuffer:
    """A first-in first-out buffer of at most ``capacity`` elements of one dtype and shape.

    Appending to a full buffer drops the element at the other end: ``append`` drops the
    oldest, ``appendleft`` drops the newest. Indexing and iteration run oldest first;
    indexing and ``np.asarray(buffer)`` return copies, so later appends never change them.

    Args:
        capacity: maximum number of elements; must be a positive integer.
        dtype: numpy dtype of the elements.
        shape: shape of one element, e.g. ``(depth, 2)`` for one side of a book.

    Raises:
        ConfigError: (a ``ValueError``) if ``capacity`` is not a positive integer.
    """

    def __init__(self, capacity: int, dtype: DTypeLike = float, shape: tuple[int, ...] = ()):
        if isinstance(capacity, bool) or not isinstance(capacity, int | np.integer):
            raise ConfigError(f"RingBuffer capacity must be an int, got {capacity!r}")
        if capacity <= 0:
            raise ConfigError(f"RingBuffer capacity must be positive, got {capacity}")
        self._capacity = int(capacity)
        self._elem_shape = tuple(shape)
        self._data = np.empty((2 * self._capacity, *self._elem_shape), dtype=dtype)
        self._start = 0
        self._len = 0

    # -- mutation -------------------------------------------------------------------------

    def append(self, value: ArrayLike) -> None:
        """Add ``value`` as the newest element, dropping the oldest one if full."""
        if self._len == self._capacity:
            self._start = (self._start + 1) % self._capacity
            self._len -= 1
        self._write((self._start + self._len) % self._capacity, value)
        self._len += 1

    def _push(self, value: Any) -> None:
        """:meth:`append` for a value the caller guarantees has the element shape.

        The trusted fast path of the replay engine (no shape check); same result.
        """
        cap, start = self._capacity, self._start
        if self._len == cap:
            start = self._start = start + 1 if start + 1 < cap else 0
            slot = start + cap - 1
        else:
            slot = start + self._len
            self._len += 1
        if slot >= cap:
            slot -= cap
        data = self._data
        data[slot] = value
        data[slot + cap] = value

    def _extend(self, values: np.ndarray) -> None:
        """:meth:`_push` of each element of ``values`` in order (only the newest
        ``capacity`` can remain, so only they are written), as at most two slices (the
        slots up to the end of the ring, then those wrapped to its start), each written
        twice (the ring and its copy beyond ``capacity``)."""
        cap = self._capacity
        values = values[-cap:]
        n = len(values)
        end = self._start + self._len  # the next slot, before wrapping
        first = end % cap
        k = min(n, cap - first)  # slots before the ring wraps
        data = self._data
        data[first:first + k] = data[first + cap:first + cap + k] = values[:k]
        if k < n:
            data[:n - k] = data[cap:cap + n - k] = values[k:]
        length = min(self._len + n, cap)
        self._start, self._len = (end + n - length) % cap, length

    def appendleft(self, value: ArrayLike) -> None:
        """Add ``value`` as the oldest element, dropping the newest one if full."""
        if self._len == self._capacity:
            self._len -= 1
        self._start = (self._start - 1) % self._capacity
        self._write(self._start, value)
        self._len += 1

    def pop(self) -> Any:
        """Remove and return the newest element. Raises ``IndexError`` if empty."""
        value = self.peek()
        self._len -= 1
        return value

    def popleft(self) -> Any:
        """Remove and return the oldest element. Raises ``IndexError`` if empty."""
        value = self.peekleft()
        self._start = (self._start + 1) % self._capacity
        self._len -= 1
        return value

    def peek(self) -> Any:
        """Return (a copy of) the newest element. Raises ``IndexError`` if empty."""
        self._check_not_empty()
        return self._copy(self._data[self._start + self._len - 1])

    def peekleft(self) -> Any:
        """Return (a copy of) the oldest element. Raises ``IndexError`` if empty."""
        self._check_not_empty()
        return self._copy(self._data[self._start])

    def clear(self) -> None:
        """Remove every element (capacity, dtype and shape are kept)."""
        self._start = 0
        self._len = 0

    # -- reading --------------------------------------------------------------------------

    def view(self) -> np.ndarray:
        """A read-only view of the live window, oldest first, without copying.

        The view is valid only until the next mutation of the buffer; copy it to keep it.
        """
        out = self._data[self._start : self._start + self._len]
        out.flags.writeable = False
        return out

    def tail(self, n: int) -> np.ndarray:
        """A copy of the newest ``n`` elements (all if fewer), oldest first."""
        start, end = self._start, self._start + self._len
        return self._data[max(start, end - n) : end].copy()

    def __getitem__(self, key: Any) -> Any:
        return self._copy(self.view()[key])

    def __iter__(self) -> Iterator[Any]:
        return iter(np.array(self.view()))

    def __len__(self) -> int:
        return self._len

    def __array__(self, dtype: DTypeLike = None, copy: bool | None = None) -> np.ndarray:
        return np.array(self.view(), dtype=dtype)

    def __repr__(self) -> str:
        return f"RingBuffer({np.array(self.view())!r}, maxlen={self._capacity})"

    @property
    def dtype(self) -> np.dtype:
        """The element dtype."""
        return self._data.dtype

    @property
    def is_full(self) -> bool:
        """Whether the buffer holds ``maxlen`` elements."""
        return self._len == self._capacity

    @property
    def maxlen(self) -> int:
        """The capacity."""
        return self._capacity

    @property
    def shape(self) -> tuple[int, ...]:
        """``(len(self), *element_shape)``, the shape of ``np.asarray(self)``."""
        return (self._len, *self._elem_shape)

    # -- internals ------------------------------------------------------------------------

    def _write(self, slot: int, value: ArrayLike) -> None:
        if np.shape(value) != self._elem_shape:
            raise DataError(
                f"RingBuffer element must have shape {self._elem_shape}, got {np.shape(value)}"
            )
        self._data[slot] = value
        self._data[slot + self._capacity] = value

    def _check_not_empty(self) -> None:
        if self._len == 0:
            raise IndexError("RingBuffer is empty")

    @staticmethod
    def _copy(value: Any) -> Any:
        return value.copy() if isinstance(value, np.ndarray) else value


def _given(value: float | None) -> TypeGuard[float]:
    """Whether a sampling argument was passed (``None`` and negative values mean 'not')."""
    return value is not None and value >= 0


def sample_slice(
    timestamps: np.ndarray,
    n: int | None = None,
    tau: float | None = None,
    T: float | None = None,
) -> slice:
    """The index range of the sample selected by ``n``, ``tau`` and ``T``.

    ``timestamps`` must be non-decreasing. The sample is every observation with
    ``timestamp <= T`` (``T`` defaults to the last timestamp), further restricted to the
    last ``n`` of them, or to those with ``timestamp >= T - tau``. ``None`` or a negative
    value means "not given". ``tau`` and ``T`` are in the timestamps' unit.

    Raises:
        ConfigError: if both ``n`` and ``tau`` are given.
    """
    if _given(n) and _given(tau):
        raise ConfigError("pass either n (a count) or tau (a time window), not both")
    hi = len(timestamps)
    if _given(T) and hi:
        hi = int(np.searchsorted(timestamps, T, side="right"))
    if _given(n):
        return slice(max(0, hi - int(n)), hi)
    if _given(tau) and hi:
        end = T if _given(T) else timestamps[hi - 1]
        return slice(int(np.searchsorted(timestamps[:hi], end - tau, side="left")), hi)
    return slice(0, hi)
