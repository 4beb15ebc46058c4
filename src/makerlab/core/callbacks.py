"""Calling user callbacks that may be sync or async: the one place it is done.

Handlers of feeds and mirrors, clock callbacks and custom events may be plain functions
or coroutine functions; :func:`run_handlers` calls each and awaits what it returns when
that is awaitable; the replay's per-row delivery begins the same run with
:func:`begin_handlers` (one coroutine frame less per row). The replay, the live feed,
the order and position mirrors, the timers and the paper exchange's desk all go through
them.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Sequence
from inspect import isawaitable
from types import CoroutineType

__all__ = ["begin_handlers", "run_handlers"]


async def run_handlers(handlers: Iterable[Callable[..., object]], *args: object) -> None:
    """Call each handler with ``args`` in order, awaiting those that return an awaitable."""
    for handler in handlers:
        result = handler(*args)
        if result is not None and isawaitable(result):
            await result


def begin_handlers(handlers: Sequence[Callable[..., object]],
                   *args: object) -> Awaitable[None] | None:
    """:func:`run_handlers` for a caller that awaits what it gets at once: a single
    handler is called now and its awaitable returned (``None`` when it returned none);
    several are left to :func:`run_handlers`, whose coroutine is returned."""
    if len(handlers) != 1:
        return run_handlers(handlers, *args) if handlers else None
    result = handlers[0](*args)
    if type(result) is CoroutineType:  # an ``async def`` handler's: the common case
        return result
    return result if result is not None and isawaitable(result) else None
