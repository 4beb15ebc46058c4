"""Decay weights and volatility helpers used by the book and tape statistics.

A decay function maps an array of *ages* (how long ago each observation happened, e.g.
``T - ts`` in ms; larger is older) to one non-negative weight per observation.
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view
from numpy.typing import ArrayLike


def _normalized(weights: np.ndarray, normalize: bool) -> np.ndarray:
    if normalize and weights.size:
        return weights / weights.sum()
    return weights


def simple_weights(arr: ArrayLike, normalize: bool = False) -> np.ndarray:
    """Equal weights: one per element of ``arr`` (``1/len`` each if ``normalize``)."""
    return _normalized(np.ones(np.shape(arr)[0]), normalize)


def exponential_weights(
    arr: ArrayLike, unique_values: bool = False, normalize: bool = False
) -> np.ndarray:
    """Weights decaying exponentially with the age *rank* of each element.

    Elements are ranked by age, youngest first: ``r = 0`` for the smallest value of ``arr``
    up to ``R`` for the largest. The weight is ``exp(-r / R)``, from ``1`` for the youngest
    down to ``exp(-1)`` for the oldest (all ``1`` when ``R = 0``). Without ``unique_values``
    every element has its own rank (ties broken by position, later elements younger); with
    it, equal values share a rank, so e.g. fills of one taker order at one timestamp weigh
    the same. ``normalize`` scales the weights to sum to 1.
    """
    ages = np.asarray(arr, dtype=float)
    if unique_values:
        ranks = np.unique(ages, return_inverse=True)[1]
    else:
        order = np.lexsort((-np.arange(ages.size), ages))
        ranks = np.empty(ages.size, dtype=np.int64)
        ranks[order] = np.arange(ages.size)
    top = ranks.max() if ranks.size else 0
    weights = np.exp(-ranks / top) if top > 0 else np.ones(ages.size)
    return _normalized(weights, normalize)


def vol(sample: ArrayLike, exp: bool = False) -> float:
    """Volatility of a price series: root mean square of its non-zero changes.

    ``sqrt(sum(w * d**2) / sum(w))`` over the changes ``d = diff(sample)`` that are non-zero
    and finite, in the sample's price unit per change. ``w`` is 1, or with ``exp`` the
    :func:`exponential_weights` of the changes' age (the newest change weighs most).
    Returns NaN when there is no non-zero change.
    """
    changes = np.diff(np.asarray(sample, dtype=float))
    changes = changes[np.isfinite(changes) & (changes != 0)]
    if changes.size == 0:
        return float("nan")
    ages = np.arange(changes.size)[::-1]
    weights = exponential_weights(ages) if exp else simple_weights(ages)
    return float(np.sqrt(np.sum(weights * changes**2) / np.sum(weights)))


def rolling_vol(mids: ArrayLike, n: int, exp: bool = False) -> np.ndarray:
    """:func:`vol` over each trailing window of ``n`` observations of ``mids``.

    Element ``i`` is ``vol(mids[i - n + 1 : i + 1], exp)``; the first ``n - 1`` elements
    (and windows without a non-zero change) are NaN.
    """
    values = np.asarray(mids, dtype=float)
    out = np.full(values.size, np.nan)
    if n < 2 or values.size < n:
        return out
    windows = sliding_window_view(values, n)
    out[n - 1 :] = [vol(window, exp) for window in windows]
    return out
