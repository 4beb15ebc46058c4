"""The makerlab exception tree.

::

    MakerlabError
    ├── ConfigError          bad arguments or configuration given by the user
    │   └── OrderRejected    an order or cancel the OMS refuses at the call (nothing sent)
    ├── DataError            input data that would produce a wrong result
    │   ├── SequenceGap      an update id is missing between two book deltas
    │   ├── CrossedBook      a book whose best bid is at or above its best ask
    │   └── UnsortedData     timestamps that go backwards
    └── VenueError           a live venue failed or refused a request
        ├── ConnectionLost   a websocket closed, timed out or could not connect
        │   └── RequestTimeout   a request was sent but no answer came in time
        ├── RateLimited      the venue answered 429/418 or its own rate-limit code
        └── AuthError        credentials missing, unknown or rejected

A ``DataError`` always says *where* (file and line or row) and *what to do*; converters
raise it instead of silently producing a wrong book, unless an explicit repair option
is given, in which case every repair is counted and logged.
"""

from __future__ import annotations


class MakerlabError(Exception):
    """Root of every error makerlab raises on purpose."""


class ConfigError(MakerlabError, ValueError):
    """An argument or configuration value is invalid."""


class OrderRejected(ConfigError):
    """An order or cancel refused by the OMS when it is called; nothing reaches the venue.

    Attributes:
        argument: the refused argument's name (``amount``, ``price``, ``tif``, ``cloid``...).
        value: the value it was given.
        code: the venue-style code where a live venue has one: ``-4015`` for a client
            order id already in use, ``-2011`` (Unknown order sent.) for a cancel naming
            no live order; the risk check's name for a refused limit (``"RISK_POSITION"``,
            ``"RISK_RATE"``, ``"KILL_SWITCH"``, see :mod:`makerlab.trading.risk`);
            ``None`` otherwise.
    """

    def __init__(self, message: str, *, argument: str, value: object,
                 code: int | str | None = None) -> None:
        self.argument = argument
        self.value = value
        self.code = code
        super().__init__(message)


class DataError(MakerlabError, ValueError):
    """Input data is malformed or inconsistent.

    Attributes:
        source: file name (or other description of the input), if known.
        line: 1-based line or row number in ``source``, if known.
    """

    def __init__(self, message: str, *, source: str | None = None, line: int | None = None):
        self.source = source
        self.line = line
        where = ""
        if source is not None:
            where = f"{source}:{line}: " if line is not None else f"{source}: "
        super().__init__(where + message)


class SequenceGap(DataError):
    """A book delta does not continue the previous one's update id."""


class CrossedBook(DataError):
    """The best bid is at or above the best ask."""


class UnsortedData(DataError):
    """Timestamps are not in non-decreasing order."""


class VenueError(MakerlabError):
    """A live venue failed or refused a request.

    Attributes:
        venue: the exchange id (``binance``, ``bybit``, ...).
    """

    def __init__(self, message: str, *, venue: str = ""):
        self.venue = venue
        super().__init__(f"{venue}: {message}" if venue else message)


class ConnectionLost(VenueError):
    """A websocket closed, went silent past its watchdog, or could not connect."""


class RequestTimeout(ConnectionLost):
    """A request reached the socket but no answer came within the timeout: its outcome is
    unknown until the venue's user stream (or a snapshot) reports it."""


class RateLimited(VenueError):
    """The venue answered with a rate-limit status (HTTP 429/418 or its own code).

    Attributes:
        retry_after: seconds to wait before the next request, as the venue said
            (``Retry-After`` header, reset timestamp) or ``None`` when it did not.
    """

    def __init__(self, message: str, *, venue: str = "", retry_after: float | None = None):
        self.retry_after = retry_after
        super().__init__(message, venue=venue)


class AuthError(VenueError):
    """Credentials are missing, unknown or rejected by the venue."""
