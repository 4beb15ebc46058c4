"""The monitoring page's configuration: one frozen :class:`PageConfig`.

Rules (checked when it is built; a bad value is a :class:`~makerlab.errors.ConfigError`
naming it, an unknown keyword a ``TypeError``):

- **local by default**: ``host`` is ``127.0.0.1``. Any other bind (``0.0.0.0``, a LAN
  address, even ``127.0.0.2``) needs a ``token``: every request and the websocket must
  then present it.
- **the kill switch always needs the token**: without one given, a random one is made
  (``secrets.token_urlsafe``) and shown in the page's URL printed at start; a token is
  16 to 128 characters of ``A-Z a-z 0-9 - _``.
- **bounded work**: a snapshot is taken every ``interval_s`` (0.05 to 60 s) whatever
  the number of viewers; ``history`` snapshots are kept for the charts, ``fills`` fills
  for the table, ``depth`` book levels per side are shown.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass, field

from makerlab.errors import ConfigError

__all__ = ["LOCAL_HOSTS", "PageConfig"]

LOCAL_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})
_TOKEN = re.compile(r"^[A-Za-z0-9_-]{16,128}$")


@dataclass(frozen=True, slots=True)
class PageConfig:
    """Where and how the page is served (rules in the module docstring).

    Attributes:
        host: the address to bind (``127.0.0.1``).
        port: the TCP port; ``0`` takes a free one (see ``Monitor.url``).
        token: the access token (required off ``127.0.0.1``; made up when not given).
        interval_s: seconds between snapshots (and websocket pushes).
        history: snapshots kept for the charts.
        fills: latest fills shown.
        depth: book levels per side shown against the open orders.
        horizons_s: markout horizons in seconds.
    """

    host: str = "127.0.0.1"
    port: int = 8765
    token: str | None = None
    interval_s: float = 0.5
    history: int = 1200
    fills: int = 50
    depth: int = 5
    horizons_s: tuple[float, ...] = (1.0, 5.0, 30.0, 60.0)
    generated: bool = field(default=False, init=False)

    def __post_init__(self) -> None:
        if not isinstance(self.host, str) or not self.host:
            raise ConfigError(f"PageConfig: host={self.host!r} must be a non-empty str")
        _int("port", self.port, 0, 65535)
        if self.token is None:
            if not self.local:
                raise ConfigError(f"PageConfig: host={self.host!r} is not 127.0.0.1: a "
                                  "token is required (every request must present it)")
            object.__setattr__(self, "token", secrets.token_urlsafe(24))
            object.__setattr__(self, "generated", True)
        elif not isinstance(self.token, str) or not _TOKEN.match(self.token):
            raise ConfigError("PageConfig: token must be 16 to 128 characters of "
                              "A-Z a-z 0-9 - _ (try secrets.token_urlsafe(24))")
        _number("interval_s", self.interval_s, 0.05, 60)
        _int("history", self.history, 10, 100_000)
        _int("fills", self.fills, 1, 10_000)
        _int("depth", self.depth, 1, 50)
        horizons = tuple(self.horizons_s) if isinstance(self.horizons_s, tuple | list) else ()
        if not horizons or len(horizons) > 8:
            raise ConfigError(f"PageConfig: horizons_s={self.horizons_s!r} must be 1 to 8 "
                              "positive numbers of seconds")
        for h in horizons:
            _number("horizons_s", h, 0.001, 86_400)
        object.__setattr__(self, "horizons_s", tuple(float(h) for h in horizons))

    @property
    def local(self) -> bool:
        """True when bound to the local machine only (no token needed to look)."""
        return self.host in LOCAL_HOSTS

    def __repr__(self) -> str:  # the token is never shown
        return (f"PageConfig(host={self.host!r}, port={self.port}, token=<hidden>, "
                f"interval_s={self.interval_s})")


def _int(name: str, value: object, low: int, high: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ConfigError(f"PageConfig: {name}={value!r} must be an integer in "
                          f"[{low}, {high}]")


def _number(name: str, value: object, low: float, high: float) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) \
            or not low <= value <= high:
        raise ConfigError(f"PageConfig: {name}={value!r} must be a number in "
                          f"[{low:g}, {high:g}]")
