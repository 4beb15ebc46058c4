"""Replay statistics, per exchange, from the Replayer's records.

``statistics(replayer)`` returns ``{exc: dict or None}`` (``None``: the exchange never
traded). Each dict:

- ``#trades``: number of our fills (a partial fill counts once per fill).
- ``pnl``: terminal equity minus the starting balance, quote currency (fees included).
- ``roi``: ``pnl`` / starting balance.
- ``terminal``: equity at the end (balance plus open positions marked at the last mid).
- ``volume``: traded notional, sum of ``|size| x price`` over fills (Decimal).
- ``fees``: fees paid, quote currency (negative: net rebates received).
- ``maker_ratio``: share of fills that were maker fills.
- ``max_leverage``: largest ``|inventory notional| / equity`` over the stamps.
- ``position``: final signed position per ticker.
"""

from __future__ import annotations

from typing import Any

__all__ = ["statistics"]


def statistics(replayer: Any) -> dict[str, dict[str, Any] | None]:
    """Per-exchange statistics (definitions in the module docstring)."""
    venue = replayer.venue
    names = list(dict.fromkeys([*(t.exc for t in [*replayer.books, *replayer.trades]),
                                *venue.accounts]))
    return {exc: _exchange_stats(replayer, exc) for exc in names}


def _exchange_stats(replayer: Any, exc: str) -> dict[str, Any] | None:
    venue = replayer.venue
    account = venue.accounts.get(exc)
    if account is None or account.n_fills == 0:
        return None
    fills = [f for f in venue.fills if f["exc"] == exc]
    start = float(account.start)
    terminal = account.equity(venue.marks(exc))
    return {
        "#trades": len(fills),
        "pnl": terminal - start,
        "roi": (terminal - start) / start,
        "terminal": terminal,
        "volume": account.volume,
        "fees": account.fees,
        "maker_ratio": sum(f["is_maker"] for f in fills) / len(fills),
        "max_leverage": _max_leverage(replayer.stamps, exc),
        "position": {t: p.amount for t, p in account.positions.items()},
    }


def _max_leverage(stamps: list[tuple[int, str, float, float, float]], exc: str) -> float:
    levels = [abs(inv) / eq for _, e, eq, _, inv in stamps if e == exc and eq > 0
              and inv == inv]
    return max(levels, default=0.0)

