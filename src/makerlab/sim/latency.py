"""Latency models: how long a message takes on each channel, in integer nanoseconds.

The replay engine asks ``model.sample(channel, ts_ns)`` when a message leaves its sender
at ``ts_ns`` and delivers it ``sample(...)`` nanoseconds later. Channels follow the
tutorial's ``Latencies``: REQ is a request travelling to the exchange, ACK its reply
travelling back, FEED a pushed stream; PUBLIC is market data, PRIVATE orders and account.
The tutorial passes latencies in **milliseconds**; models convert them to ns exactly.

Rules shared by every model:

- **null is instant**: ``Latencies.NULL`` always samples ``0``.
- **never negative**: a sample is an ``int`` ``>= 0``.
- **a model is its parameters**: every model is a frozen dataclass whose fields are its
  parameters, per channel keyed by the channel's value (``"req_private"``) in ms, so
  :func:`makerlab.sim.models.to_config` records it and ``from_config`` rebuilds it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import ROUND_HALF_EVEN, Decimal
from enum import StrEnum
from typing import Any, Protocol, runtime_checkable

import numpy as np

from makerlab.errors import ConfigError
from makerlab.units import NS_PER_MS

__all__ = [
    "DEFAULT_LATENCIES_MS",
    "ConstantLatency",
    "Latencies",
    "LatencyModel",
    "LognormalLatency",
    "ReplayedLatency",
    "latency_model_from",
    "latency_models_by_exchange",
]



class Latencies(StrEnum):
    """Message channels (values are the lower-case names, as in the tutorial's reports)."""

    NULL = "null"
    REQ_PUBLIC = "req_public"
    REQ_PRIVATE = "req_private"
    ACK_PUBLIC = "ack_public"
    ACK_PRIVATE = "ack_private"
    FEED_PUBLIC = "feed_public"
    FEED_PRIVATE = "feed_private"


#: The tutorial Replayer's defaults: 100 ms public, 50 ms private.
DEFAULT_LATENCIES_MS: Mapping[Latencies, int] = {
    Latencies.REQ_PUBLIC: 100, Latencies.REQ_PRIVATE: 50,
    Latencies.ACK_PUBLIC: 100, Latencies.ACK_PRIVATE: 50,
    Latencies.FEED_PUBLIC: 100, Latencies.FEED_PRIVATE: 50,
}


@runtime_checkable
class LatencyModel(Protocol):
    """Anything that says how long a message on ``channel`` sent at ``ts_ns`` takes."""

    def sample(self, channel: Latencies | str, ts_ns: int) -> int:
        """Latency in ns (``>= 0``) of a message on ``channel`` sent at ``ts_ns``."""
        ...


def ms_to_ns(ms: Decimal | float | int | str) -> int:
    """Milliseconds as integer ns, exact for decimal inputs (``0.3`` -> ``300000``).

    Floats go through ``str`` so ``0.1`` is exactly 100 µs; finer than 1 ns rounds half-even.
    """
    value = Decimal(str(ms)) * NS_PER_MS
    if not value.is_finite():
        raise ConfigError(f"latency must be a finite number of ms, got {ms!r}")
    return int(value.quantize(Decimal(1), rounding=ROUND_HALF_EVEN))


def ns_to_ms(ns: int) -> int | float:
    """Integer ns as ms, an ``int`` when whole (the inverse of :func:`ms_to_ns`)."""
    return ns // NS_PER_MS if ns % NS_PER_MS == 0 else ns / NS_PER_MS


def _channel(channel: Latencies | str) -> Latencies:
    try:
        return Latencies(channel)
    except ValueError:
        known = ", ".join(c.value for c in Latencies)
        raise ConfigError(f"unknown latency channel {channel!r}; known: {known}") from None


def _per_channel(values: Mapping[Any, Any], what: str) -> dict[Latencies, Any]:
    out = {_channel(k): v for k, v in values.items()}
    if out.get(Latencies.NULL, 0) != 0:
        raise ConfigError(f"{what}: the NULL channel is always 0")
    out.pop(Latencies.NULL, None)
    return out


@dataclass(frozen=True)
class ConstantLatency:
    """A fixed delay per channel, given in ms as the tutorial does.

    - **constant**: every sample on a channel is the same integer ns.
    - **exact ms to ns**: ``0.3`` ms is ``300_000`` ns (decimal conversion, no float error).
    - **missing channels take the tutorial defaults** (100 ms public, 50 ms private).
    - **negative latencies are refused** with :class:`ConfigError`.

    ``latencies_ms`` holds every channel after construction (defaults filled in).
    """

    latencies_ms: Mapping[Latencies | str, Any] | None = None
    ns: dict[Latencies, int] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        given = _per_channel(self.latencies_ms or {}, "ConstantLatency")
        ns = {c: ms_to_ns(v) for c, v in {**DEFAULT_LATENCIES_MS, **given}.items()}
        bad = [c.value for c, v in ns.items() if v < 0]
        if bad:
            raise ConfigError(f"ConstantLatency: negative latency on {bad}")
        object.__setattr__(self, "latencies_ms", {c.value: ns_to_ms(v) for c, v in ns.items()})
        object.__setattr__(self, "ns", {**ns, Latencies.NULL: 0})

    def sample(self, channel: Latencies | str, ts_ns: int) -> int:
        """The channel's fixed latency in ns (``ts_ns`` is ignored)."""
        return self.ns[_channel(channel)]


@dataclass(frozen=True)
class LognormalLatency:
    """Random latency: ``median · exp(sigma · Z)``, ``Z`` standard normal, per channel.

    - **seeded**: the same ``seed`` and the same calls give the same samples, bit for bit.
    - **channels are independent streams**: each channel draws from its own generator
      (spawned from ``seed``), so traffic on one channel never shifts another's samples.
    - **median is the median**: half the samples fall below ``median_ms``.
    - **channels without a median are 0**.

    ``sigma`` (one number for every channel, or per channel) holds one value per channel
    with a median after construction.
    """

    median_ms: Mapping[Latencies | str, Any]
    sigma: float | Mapping[Latencies | str, float] = 0.5
    seed: int = field(default=0, kw_only=True)
    median_ns: dict[Latencies, int] = field(init=False, repr=False, compare=False)
    _sigma: dict[Latencies, float] = field(init=False, repr=False, compare=False)
    _rngs: dict[Latencies, np.random.Generator] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        median_ns = {c: ms_to_ns(v) for c, v in _per_channel(self.median_ms,
                                                             "LognormalLatency").items()}
        sigmas = self.sigma if isinstance(self.sigma, Mapping) else dict.fromkeys(
            median_ns, self.sigma)
        sigma = {c: float(v) for c, v in _per_channel(sigmas, "sigma").items()}
        _check_lognormal(median_ns, sigma)
        children = np.random.SeedSequence(self.seed).spawn(len(Latencies))
        for name, value in (
                ("median_ms", {c.value: ns_to_ms(v) for c, v in median_ns.items()}),
                ("sigma", {c.value: v for c, v in sigma.items()}), ("median_ns", median_ns),
                ("_sigma", sigma),
                ("_rngs", {c: np.random.default_rng(s)
                           for c, s in zip(Latencies, children, strict=True)})):
            object.__setattr__(self, name, value)

    def sample(self, channel: Latencies | str, ts_ns: int) -> int:
        """One random latency in ns for ``channel`` (``ts_ns`` is ignored)."""
        ch = _channel(channel)
        median = self.median_ns.get(ch)
        if median is None:
            return 0
        z = self._rngs[ch].standard_normal()
        return round(median * float(np.exp(self._sigma[ch] * z)))


def _check_lognormal(median_ns: dict[Latencies, int], sigma: dict[Latencies, float]) -> None:
    if any(v <= 0 for v in median_ns.values()):
        raise ConfigError("LognormalLatency: medians must be positive")
    if any(not s >= 0 for s in sigma.values()):
        raise ConfigError("LognormalLatency: sigma must be >= 0")
    missing = set(median_ns) - set(sigma)
    if missing:
        raise ConfigError(f"LognormalLatency: no sigma for {sorted(c.value for c in missing)}")


@dataclass(frozen=True, eq=False)
class ReplayedLatency:
    """Latencies recorded live, replayed by time.

    ``samples`` maps a channel to ``(ts_ns, latency_ns)`` arrays, ``ts_ns`` sorted.

    - **interpolated**: between two samples the latency is linear in time, computed in
      integers (floor), so nanosecond timestamps lose no precision.
    - **held at the ends**: before the first sample the first latency applies; after the
      last, the last.
    - **unrecorded channels use the fallback**; with no ``fallback`` they raise
      :class:`ConfigError`.
    - **negative or unsorted samples are refused** with :class:`ConfigError`.
    """

    samples: Mapping[Latencies | str, tuple[Any, Any]]
    fallback: LatencyModel | None = field(default=None, kw_only=True)

    def __post_init__(self) -> None:
        series = {c: _series(c, ts, lat)
                  for c, (ts, lat) in _per_channel(self.samples, "ReplayedLatency").items()}
        object.__setattr__(self, "samples", {c.value: v for c, v in series.items()})

    @classmethod
    def from_order_latency(cls, data: Any, *,
                           fallback: LatencyModel | None = None) -> ReplayedLatency:
        """From hftbacktest-style order latency rows ``(req_ts, exch_ts, resp_ts)`` in ns.

        ``data`` is an ``Nx3`` array or a structured array with those field names. The
        request leg ``exch_ts - req_ts`` becomes REQ_PRIVATE (looked up at ``req_ts``) and
        the response leg ``resp_ts - exch_ts`` becomes ACK_PRIVATE (looked up at
        ``exch_ts``).
        """
        arr = np.asarray(data)
        if arr.dtype.names:
            req, exch, resp = (arr[n].astype(np.int64) for n in ("req_ts", "exch_ts", "resp_ts"))
        else:
            if arr.ndim != 2 or arr.shape[1] < 3:
                raise ConfigError(f"order latency rows must be Nx3, got shape {arr.shape}")
            req, exch, resp = (arr[:, i].astype(np.int64) for i in range(3))
        return cls({Latencies.REQ_PRIVATE: (req, exch - req),
                    Latencies.ACK_PRIVATE: (exch, resp - exch)}, fallback=fallback)

    def sample(self, channel: Latencies | str, ts_ns: int) -> int:
        """Recorded latency in ns on ``channel`` at ``ts_ns``."""
        ch = _channel(channel)
        if ch is Latencies.NULL:
            return 0
        series = self.samples.get(ch.value)
        if series is None:
            if self.fallback is None:
                raise ConfigError(f"ReplayedLatency: no samples for {ch.value}; "
                                  "record it or pass fallback=")
            return self.fallback.sample(ch, ts_ns)
        return _interpolate(*series, int(ts_ns))


def _series(channel: Latencies, ts: Any, lat: Any) -> tuple[np.ndarray, np.ndarray]:
    t = np.asarray(ts, dtype=np.int64)
    v = np.asarray(lat, dtype=np.int64)
    if t.ndim != 1 or t.shape != v.shape or not len(t):
        raise ConfigError(f"ReplayedLatency {channel.value}: need equal, non-empty 1-D arrays")
    if np.any(np.diff(t) < 0):
        raise ConfigError(f"ReplayedLatency {channel.value}: timestamps must be sorted")
    if np.any(v < 0):
        raise ConfigError(f"ReplayedLatency {channel.value}: negative latency samples")
    return t, v


def _interpolate(ts: np.ndarray, lat: np.ndarray, t: int) -> int:
    """Linear interpolation of ``lat`` over ``ts`` at ``t`` in exact integers."""
    i = int(np.searchsorted(ts, t, side="right")) - 1
    if i < 0:
        return int(lat[0])
    if i >= len(ts) - 1:
        return int(lat[-1])
    t0, t1, v0, v1 = int(ts[i]), int(ts[i + 1]), int(lat[i]), int(lat[i + 1])
    if t1 == t0:
        return v1
    return v0 + (v1 - v0) * (t - t0) // (t1 - t0)


def latency_model_from(latencies: LatencyModel | Mapping[Latencies | str, Any] | None
                       ) -> LatencyModel:
    """A latency model from the tutorial's ``latencies`` argument.

    ``None`` gives the tutorial defaults; a dict ``{Latencies.REQ_PUBLIC: 0, ...}`` (ms)
    gives a :class:`ConstantLatency`; an object with ``sample`` is returned as is.
    """
    if latencies is None or isinstance(latencies, Mapping):
        return ConstantLatency(latencies)
    if isinstance(latencies, LatencyModel):
        return latencies
    raise ConfigError(f"latencies must be a dict of ms per channel or a latency model, "
                      f"got {type(latencies).__name__}")


def latency_models_by_exchange(exchanges: list[str] | tuple[str, ...],
                               latencies: Any = None,
                               exchange_latencies: Mapping[str, Any] | None = None,
                               ) -> dict[str, LatencyModel]:
    """One model per exchange: ``exchange_latencies[exc]`` if given, else ``latencies``.

    Mirrors the tutorial Replayer's ``latencies=`` / ``exchange_latencies=`` arguments;
    venues named only in ``exchange_latencies`` are included too.
    """
    per_venue = dict(exchange_latencies or {})
    default = latency_model_from(latencies)
    names = list(dict.fromkeys([*exchanges, *per_venue]))
    return {exc: latency_model_from(per_venue[exc]) if exc in per_venue else default
            for exc in names}
