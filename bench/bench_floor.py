"""What a strategy's own Python costs: its handler run with every makerlab call free.

Issue 12 sets makerlab's replay against hftbacktest's numba loop. Part of makerlab's time is
the strategy itself, which no library can take away: the handler's own lines, its numpy and
``Decimal`` calls, its ``asyncio.gather``. This bench measures that floor. Each handler is
run twice:

1. in a real replay, where every call it makes to makerlab (``get_mid``, ``get_vamp``,
   ``get_bid_orders``, ``rounded_price``, ``limit_order``, ``time``, ...) is recorded, in
   order, with its answer;
2. alone, ``calls`` times in an asyncio loop, its code unchanged, with every makerlab
   object replaced by one that hands back the recorded answers (one ``next`` per call,
   about 0.05 us, counted in the floor).

The handlers are the tutorial's ``l2_handler`` (``examples/market_maker.py 0``: its own
code object, rebuilt over the answering objects) and ``bench_quoter.py``'s every-event
``Quoter``. Their floors are printed beside what hftbacktest's numba loops take for the same
runs (``bench_hftbacktest.py``, ``bench_quoter.py``), and the target that issue 12 sets
(4x and 2x those). CPU seconds, best of ``--repeat`` runs.

    python bench/bench_floor.py [--repeat N]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import copy
import gc
import io
import os
import sys
import tempfile
import time
import types
from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))


class Recording:
    """Answers of makerlab calls made from the frames ``mine`` accepts, in call order.

    ``targets`` lists ``(class, method name)``; coroutine methods are recorded when
    awaited. Patched on entry, restored on exit.
    """

    def __init__(self, targets: list[tuple[type, str]],
                 mine: Callable[[types.FrameType], bool]) -> None:
        self.targets, self.mine = targets, mine
        self.answers: list[Any] = []
        self.names: list[str] = []  # the method each answer came from

    def _wrap(self, method: Callable[..., Any]) -> Callable[..., Any]:
        answers, names, mine = self.answers, self.names, self.mine

        def recorded(*args: Any, **kwargs: Any) -> Any:
            result = method(*args, **kwargs)
            if not mine(sys._getframe(1)):
                return result
            names.append(method.__qualname__)
            if asyncio.iscoroutine(result):
                return _recorded_await(result, answers)
            answers.append(copy.deepcopy(result))  # makerlab may reuse what it returned
            return result

        return recorded

    @contextlib.contextmanager
    def patched(self) -> Iterator[Recording]:
        originals = [(cls, name, vars(cls)[name]) for cls, name in self.targets]
        for cls, name, method in originals:
            setattr(cls, name, self._wrap(method))
        try:
            yield self
        finally:
            for cls, name, method in originals:
                setattr(cls, name, method)


async def _recorded_await(coro: Any, answers: list[Any]) -> Any:
    result = await coro
    answers.append(copy.deepcopy(result))
    return result


class Answering:
    """Stands for every makerlab object a handler holds: each method hands back the next
    recorded answer, whatever it is asked. With ``names`` (the recording's), it first
    checks that the method asked is the one that gave the answer (the checking run)."""

    def __init__(self, answers: list[Any], sync: list[str], coroutines: list[str],
                 names: list[str] | None = None) -> None:
        self.next = iter(answers).__next__
        expected = None if names is None else iter(names).__next__
        for name in sync + coroutines:
            later = name in coroutines
            if expected is not None:
                setattr(self, name, self._checked(name, expected, later))
            else:
                setattr(self, name, self._answer_later if later else self._answer)

    def _checked(self, name: str, expected: Callable[[], str], later: bool) -> Callable[..., Any]:
        def check() -> None:
            recorded = expected()
            if recorded.rpartition(".")[2] != name:
                raise RuntimeError(f"the handler alone asked {name}() where the replay's "
                                   f"asked {recorded}(): it did not take the same path")

        def answer(*_: Any, **__: Any) -> Any:
            check()
            return self.next()

        async def answer_later(*_: Any, **__: Any) -> Any:
            check()
            return self.next()

        return answer_later if later else answer

    def _answer(self, *_: Any, **__: Any) -> Any:
        return self.next()

    def orders_peek(self, *_: Any) -> Answering:
        """The OMS's order mirror, answering in its turn (not a recorded answer)."""
        return self

    async def _answer_later(self, *_: Any, **__: Any) -> Any:
        return self.next()


def best_alone(recording: Recording, calls: int, repeat: int,
               build: Callable[[Answering], tuple[Callable[[Any], Any], Any]]) -> float:
    """Best CPU seconds of ``repeat`` runs of the handler ``build`` makes over an
    :class:`Answering`, called ``calls`` times with its argument; one more run first,
    not counted, checks that every answer goes to the method that gave it."""
    best = float("inf")
    for run in range(repeat + 1):
        answering = Answering(recording.answers, _SYNC, _ASYNC,
                              None if run else recording.names)
        handler, arg = build(answering)
        took = time_alone(handler, arg, calls)
        left = sum(1 for _ in iter(answering.next, None))
        if left:
            raise RuntimeError(f"the handler alone left {left} recorded answers unasked: "
                               "it did not take the replay's path")
        if run:
            best = min(best, took)
    return best


def time_alone(handler: Callable[[Any], Any], arg: Any, calls: int) -> float:
    """CPU seconds of ``calls`` awaited calls of ``handler(arg)`` in a fresh asyncio loop."""

    async def drive() -> None:
        for _ in range(calls):
            await handler(arg)

    gc.collect()
    with contextlib.redirect_stdout(io.StringIO()):  # the tutorial prints every 2 minutes
        c0 = time.process_time()
        asyncio.run(drive())
        return time.process_time() - c0


# ---- the tutorial's market maker ------------------------------------------------------


def _library_targets() -> list[tuple[type, str]]:
    """The makerlab methods the two handlers call (their answers are recorded)."""
    from makerlab.core.lob import LOB
    from makerlab.core.orders import Orders
    from makerlab.core.positions import Positions
    from makerlab.core.trades import Trades
    from makerlab.sim import Replayer
    from makerlab.trading.oms import OMS

    return [*((LOB, n) for n in ("get_mid", "get_bid", "get_ask", "get_bids", "get_asks",
                                 "get_vamp")),
            (Orders, "get_bid_orders"), (Orders, "get_ask_orders"),
            (Positions, "get_ticker_amount"), (Trades, "get_sample"), (Replayer, "time"),
            (OMS, "rounded_price"), (OMS, "limit_order"), (OMS, "cancel_order")]


_SYNC = ["get_mid", "get_bid", "get_ask", "get_bids", "get_asks", "get_vamp",
         "get_bid_orders", "get_ask_orders", "get_ticker_amount", "rounded_price",
         "get_sample", "time"]
_ASYNC = ["limit_order", "cancel_order"]


def tutorial_floor(repeat: int) -> tuple[float, int]:
    """(best CPU seconds of the tutorial's handler alone, its calls in the replay)."""
    from bench_replay import run_market_maker

    from makerlab.trading.feed import Feed

    handlers: list[Any] = []
    first: list[Any] = []
    calls = [0]
    add_book = Feed.add_l2_book_feed

    async def keep_handler(self: Feed, *args: Any, **kwargs: Any) -> Any:
        handler = kwargs.get("handler")
        if handler is not None:
            handlers.append(handler)

            async def counted(lob: Any) -> None:
                if not calls[0]:  # what the handler closes over when first called
                    first.extend(c.cell_contents for c in handler.__closure__)
                calls[0] += 1
                await handler(lob)

            kwargs["handler"] = counted
        return await add_book(self, *args, **kwargs)

    def in_handler(code: Any) -> bool:  # the handler or a comprehension in it
        return code.co_filename.endswith("market_maker.py") and ".l2_handler" in code.co_qualname

    def mine(frame: Any) -> bool:  # called by the handler, or by time()'s lambda it calls
        if frame.f_code.co_name == "<lambda>" and frame.f_back is not None:
            frame = frame.f_back
        return in_handler(frame.f_code)

    recording = Recording(_library_targets(), mine)
    Feed.add_l2_book_feed = keep_handler  # type: ignore[method-assign]
    try:
        with recording.patched():
            run_market_maker()
    finally:
        Feed.add_l2_book_feed = add_book  # type: ignore[method-assign]
    (handler,) = handlers

    def build(answering: Answering) -> tuple[Callable[[Any], Any], Any]:
        closure = tuple(types.CellType(_stand_in(value, answering)) for value in first)
        # the script's globals, its clock (``time = lambda: replayer.time()``) answering
        script = dict(handler.__globals__, time=answering.time)
        return types.FunctionType(handler.__code__, script, handler.__name__,
                                  handler.__defaults__, closure), answering

    return best_alone(recording, calls[0], repeat, build), calls[0]


def _stand_in(value: Any, answering: Answering) -> Any:
    """``answering`` for a makerlab object the handler closes over, the value otherwise."""
    return answering if type(value).__module__.startswith("makerlab") else value


# ---- bench_quoter's every-event quoter --------------------------------------------------


def quoter_floor(repeat: int, capture: str) -> tuple[float, int, float] | None:
    """(best CPU seconds of the quoter's handler alone, its calls, best CPU seconds of
    hftbacktest's loop on the same capture), or None without the capture."""
    import bench_quoter as bq

    raw, ticker, tick, qty = bq.CAPTURES[capture]
    if not raw.exists():
        return None
    events = bq.hbt_convert(raw)
    start_ns = bq.hbt_start(events)
    bq.hbt_run(events, start_ns, tick, qty)  # compiles
    hbt = min(bq.hbt_run(events, start_ns, tick, qty)[0].cpu for _ in range(repeat))

    def mine(frame: types.FrameType) -> bool:
        return frame.f_code.co_qualname in ("Quoter.on_event", "Quoter.side")

    recording = Recording(_library_targets(), mine)
    with tempfile.TemporaryDirectory() as tmp:
        archive = bq.convert_archive(raw, 20, Path(tmp))
        with recording.patched():
            _, _, calls = bq.makerlab_run(
                lambda: bq.makerlab_replayer(archive, ticker, 20, events),
                ticker, tick, qty, start_ns, 20)

    def build(answering: Answering) -> tuple[Callable[[Any], Any], Any]:
        quoter = object.__new__(bq.Quoter)
        quoter.rep = quoter.oms = quoter.lob = answering
        quoter.ticker, quoter.start_ms = ticker, start_ns / 1e6
        quoter.tick, quoter.qty = Decimal(str(tick)), Decimal(str(qty))
        quoter.cancel_sent, quoter.calls = set(), 0
        return quoter.on_event, None

    return best_alone(recording, calls, repeat, build), calls, hbt


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, default=5, help="best of N runs alone")
    args = parser.parse_args()
    try:
        import hftbacktest  # noqa: F401
    except ImportError:
        print("hftbacktest not importable: `pip install -e '.[test]'`; skipped")
        return 0
    from bench_hftbacktest import convert, run_once

    print(f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores")
    data, _ = convert()
    run_once(data)  # compiles
    numba = min(run_once(data)[2] for _ in range(args.repeat))
    floor, calls = tutorial_floor(args.repeat)
    print(f"tutorial market maker: its handler alone {floor:.3f} s CPU for {calls:,} calls "
          f"({floor / calls * 1e6:.1f} us each); numba equivalent {numba:.3f} s CPU: the "
          f"handler alone is {floor / numba:.2f}x it (issue 12's target for the whole "
          f"replay: 4x = {4 * numba:.3f} s)")
    quoter = quoter_floor(args.repeat, "btc")
    if quoter is None:
        print("every-event quoter: capture absent, skipped")
        return 0
    floor, calls, hbt = quoter
    print(f"every-event quoter, BTCUSDT depth 20: its handler alone {floor:.3f} s CPU for "
          f"{calls:,} calls ({floor / calls * 1e6:.2f} us each); hftbacktest {hbt:.3f} s "
          f"CPU: the handler alone is {floor / hbt:.2f}x it (issue 12's target for the "
          f"whole replay: 2x = {2 * hbt:.3f} s)")
    print(f"load average after: {os.getloadavg()[0]:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
