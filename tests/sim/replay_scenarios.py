"""Small synthetic markets and scripted strategies for the replay-engine tests."""

from __future__ import annotations

from typing import Any

import numpy as np

from makerlab.sim import Latencies, Replayer

EXC, TICKER = "binance", "BTCUSDT"  # tick 0.10, lot 0.001, min notional 100


def zero_latencies(**ms: float) -> dict[Latencies, float]:
    """All six channels at 0 ms except those given (``req_private=5`` ...)."""
    out = {c: 0 for c in Latencies if c is not Latencies.NULL}
    out.update({Latencies(k): v for k, v in ms.items()})
    return out


def book(ts: int, bid: float, ask: float, size: float = 1.0) -> dict[str, Any]:
    """A 3-level snapshot with ``bid``/``ask`` on top, 0.1 apart."""
    return {"ts": ts, "b": [[round(bid - 0.1 * i, 1), size] for i in range(3)],
            "a": [[round(ask + 0.1 * i, 1), size] for i in range(3)]}


def flat_market(n: int = 20, step_ms: int = 100, bid: float = 60000.0
                ) -> tuple[list[dict[str, Any]], list[tuple[int, float, float, int]]]:
    """``n`` identical books every ``step_ms`` and no trades."""
    return [book(1_000 + i * step_ms, bid, bid + 0.1) for i in range(n)], []


def random_market(seed: int, n: int = 200, step_ms: int = 50
                  ) -> tuple[list[dict[str, Any]], np.ndarray]:
    """A random-walk book (1-tick spread) and random trades around it."""
    rng = np.random.default_rng(seed)
    bids = 60000.0 + np.round(np.cumsum(rng.integers(-1, 2, n)) * 0.1, 1)
    books = [book(1_000 + i * step_ms, float(b), round(float(b) + 0.1, 1),
                  float(rng.uniform(0.01, 0.5))) for i, b in enumerate(bids)]
    rows = []
    for i, b in enumerate(bids):
        for _ in range(int(rng.integers(0, 3))):
            side = int(rng.choice([-1, 1]))
            price = round(float(b) + (0.1 if side > 0 else 0.0) - side * 0.1
                          * int(rng.integers(0, 2)), 1)
            rows.append((1_000 + i * step_ms + int(rng.integers(0, step_ms)), price,
                         float(rng.uniform(0.001, 0.2)), side))
    rows.sort(key=lambda r: r[0])
    return books, np.array(rows, dtype=float).reshape(-1, 4)


def replayer(books: list[dict[str, Any]], trades: Any, **kwargs: Any) -> Replayer:
    kwargs.setdefault("latencies", zero_latencies())
    return Replayer({EXC: {TICKER: books}}, {EXC: {TICKER: trades}}, **kwargs)


def fill_records(rep: Replayer) -> list[tuple]:
    """Every fill as a comparable tuple (all fields)."""
    return [tuple(sorted(f.items())) for f in rep.fills]
