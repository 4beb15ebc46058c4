"""Calling user callbacks that may be sync or async: the one place it is done.

Handlers of feeds and mirrors, clock callbacks and custom events may be plain functions
or coroutine functions; :func:`run_handlers` calls each and awaits what it returns when
that is awaitable. The replay, the live feed, the order and position mirrors, the
timers and the paper exchange's desk all go through it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from inspect import isawaitable

__all__ = ["run_handlers"]


async def run_handlers(handlers: Iterable[Callable[..., object]], *args: object) -> None:
    """Call each handler with ``args`` in order, awaiting those that return an awaitable."""
    for handler in handlers:
        result = handler(*args)
        if result is not None and isawaitable(result):
            await result
