"""RunRecord: everything a finished replay leaves behind, as plain DataFrames.

The analytics never read a Replayer directly: :meth:`RunRecord.from_replayer` is the one
place that touches its internals, and a record can be saved (Parquet + JSON) and loaded
later to rebuild statistics, frames and reports without replaying.

Tables (times are integer epoch **nanoseconds** unless stated, prices in quote currency):

- ``fills``: ts, exc, ticker, oid, cloid, price, size (> 0, base units), dir (+1 buy, -1
  sell), is_maker, fee (quote, negative = rebate), rule, arrival_ts (the order's arrival at
  the venue), position (venue position in the ticker after the fill, signed base units);
- ``actions``: ts, event (submit, ack, reject, cancel, cancelled, cancel_reject, expired,
  amend, amended, amend_reject, cancel_all), exc, ticker, cloid, oid, amount (signed base
  units: submits and amends), price, tif, reason;
- ``stamps``: ts, exc, equity, balance, inventory (net notional) every ``stamp_cycle``,
  plus one closing stamp at the end of the replay;
- ``declarations``: ts (epoch **ms**, as the tutorial), key, value, exc, ticker, group;
- ``mids[(exc, ticker)]``: ts (exchange time), local_ts (when the strategy received it),
  bid, ask, mid of every book state with both sides present. Fills happen on exchange time,
  declarations on the strategy's (local) time: :meth:`RunRecord.mid_at` looks up either
  clock;
- ``trades[(exc, ticker)]``: ts (exchange time), price, size, dir (taker side).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from makerlab.units import NS_PER_MS

__all__ = ["Market", "RunRecord"]

Market = tuple[str, str]

FILL_COLUMNS = ["ts", "exc", "ticker", "oid", "cloid", "price", "size", "dir", "is_maker",
                "fee", "rule", "arrival_ts", "position"]
ACTION_COLUMNS = ["ts", "event", "exc", "ticker", "cloid", "oid", "amount", "price", "tif",
                  "reason"]
STAMP_COLUMNS = ["ts", "exc", "equity", "balance", "inventory"]
DECLARATION_COLUMNS = ["ts", "key", "value", "exc", "ticker", "group"]
MID_COLUMNS = ["ts", "local_ts", "bid", "ask", "mid"]
TRADE_COLUMNS = ["ts", "price", "size", "dir"]
_FLOATS = ("price", "size", "fee", "position", "amount", "equity", "balance", "inventory")


@dataclass(frozen=True, eq=False)
class RunRecord:
    """The frozen tables of one replay run (see the module docstring for the columns).

    ``config`` is JSON-able: ``start_balance`` (quote), ``start_ns``/``end_ns`` (the replayed
    data's span), ``stamp_cycle_ms``, ``fees`` (the fee schedule) and ``latencies`` (the
    latency model of each exchange) as :func:`makerlab.sim.models.to_config` dicts, and the
    Replayer's own ``replayer`` config (its arguments, models as such dicts).
    """

    fills: pd.DataFrame
    actions: pd.DataFrame
    stamps: pd.DataFrame
    declarations: pd.DataFrame
    mids: Mapping[Market, pd.DataFrame] = field(default_factory=dict)
    trades: Mapping[Market, pd.DataFrame] = field(default_factory=dict)
    config: Mapping[str, Any] = field(default_factory=dict)

    # -- construction -----------------------------------------------------------------

    @classmethod
    def build(cls, fills: Any = (), actions: Any = (), stamps: Any = (),
              declarations: Any = (), mids: Mapping[Market, Any] | None = None,
              trades: Mapping[Market, Any] | None = None,
              config: Mapping[str, Any] | None = None) -> RunRecord:
        """A record from lists of dicts/tuples or DataFrames, with columns normalised."""
        return cls(fills=_frame(fills, FILL_COLUMNS), actions=_frame(actions, ACTION_COLUMNS),
                   stamps=_frame(stamps, STAMP_COLUMNS),
                   declarations=_frame(declarations, DECLARATION_COLUMNS),
                   mids={m: _mid_frame(df) for m, df in (mids or {}).items()},
                   trades={m: _frame(df, TRADE_COLUMNS) for m, df in (trades or {}).items()},
                   config=dict(config or {}))

    @classmethod
    def from_replayer(cls, replayer: Any) -> RunRecord:
        """Snapshot a (played) Replayer: the only function that reads Replayer internals."""
        parts = _replayer_parts(replayer)
        tapes = {"mids": parts.pop("mids"), "trades": parts.pop("trades")}
        return replace(cls.build(**parts), **tapes)  # the tapes' frames are built normalised

    # -- persistence ------------------------------------------------------------------

    def save(self, folder: str | Path) -> Path:
        """Write ``<folder>/{fills,actions,stamps,declarations,mids,trades}.parquet`` and
        ``config.json`` (folders are created); returns the folder."""
        path = Path(folder)
        path.mkdir(parents=True, exist_ok=True)
        for name in ("fills", "actions", "stamps", "declarations"):
            _write_parquet(_parquet_safe(getattr(self, name)), path / f"{name}.parquet")
        _write_parquet(_stack(self.mids, MID_COLUMNS), path / "mids.parquet")
        _write_parquet(_stack(self.trades, TRADE_COLUMNS), path / "trades.parquet")
        (path / "config.json").write_text(json.dumps(self.config, indent=2, default=str))
        return path

    @classmethod
    def load(cls, folder: str | Path) -> RunRecord:
        """Read a record written by :meth:`save`."""
        path = Path(folder)
        tables = {name: pd.read_parquet(path / f"{name}.parquet")
                  for name in ("fills", "actions", "stamps", "declarations")}
        return cls.build(**tables, mids=_unstack(pd.read_parquet(path / "mids.parquet")),
                         trades=_unstack(pd.read_parquet(path / "trades.parquet")),
                         config=json.loads((path / "config.json").read_text()))

    # -- lookups ----------------------------------------------------------------------

    @property
    def start_balance(self) -> float:
        """Starting balance per exchange, quote currency."""
        return float(self.config.get("start_balance", 10_000))

    @property
    def stamp_cycle_s(self) -> float:
        """Seconds between stamps."""
        return float(self.config.get("stamp_cycle_ms", 1000)) / 1000

    @property
    def duration_s(self) -> float:
        """Replayed span ``end_ns - start_ns`` in seconds (from the stamps if not given)."""
        start = self.config.get("start_ns", _first(self.stamps.ts))
        end = self.config.get("end_ns", _last(self.stamps.ts))
        return max(float(end - start) / 1e9, 0.0) if start is not None else 0.0

    def markets(self) -> list[Market]:
        """Every replayed ``(exc, ticker)``, in first-seen order."""
        return list(dict.fromkeys([*self.mids, *self.trades]))

    def exchanges(self) -> list[str]:
        """Every exchange with market data, stamps or fills, in first-seen order."""
        names = [m[0] for m in self.markets()]
        return list(dict.fromkeys([*names, *self.stamps.exc, *self.fills.exc]))

    def fills_of(self, exc: str | None = None, ticker: str | None = None) -> pd.DataFrame:
        """Our fills, optionally of one exchange and/or ticker, in time order."""
        return _select(self.fills, exc, ticker).sort_values("ts", kind="stable")

    def stamps_of(self, exc: str) -> pd.DataFrame:
        """One exchange's stamps in time order."""
        return self.stamps[self.stamps.exc == exc].sort_values("ts", kind="stable")

    def mid_series(self, exc: str, ticker: str) -> pd.DataFrame:
        """The ``(ts, bid, ask, mid)`` frame of a market (``KeyError`` naming known ones)."""
        try:
            return self.mids[(exc, ticker)]
        except KeyError:
            known = ", ".join(f"{e}/{t}" for e, t in self.mids)
            raise KeyError(f"no mids for {exc}/{ticker}; known: {known}") from None

    def mid_at(self, exc: str, ticker: str, ts: Any, after: bool = False,
               stale: bool = True, clock: str = "exchange") -> np.ndarray:
        """Mid at each time of ``ts`` (ns): the last state at or before it, or with ``after``
        the first state strictly after it. NaN where there is none, and with
        ``stale=False`` also after the market's last book state (no data to say).
        ``clock="local"`` looks states up by their receive time instead of exchange time."""
        mids = self.mid_series(exc, ticker)
        if clock == "local":
            mids = mids.sort_values("local_ts", kind="stable")
        times = mids["local_ts" if clock == "local" else "ts"].to_numpy(np.int64)
        values = mids.mid.to_numpy(float)
        t = np.asarray(ts, dtype=np.int64)
        if not len(values):
            return np.full(t.shape, np.nan)
        idx = np.searchsorted(times, t, side="right") - (0 if after else 1)
        ok = (idx >= 0) & (idx < len(values))
        if not stale:
            ok &= t <= times[-1]
        return np.where(ok, values[np.clip(idx, 0, len(values) - 1)], np.nan)


# -- the Replayer adapter ---------------------------------------------------------------

def _replayer_parts(replayer: Any) -> dict[str, Any]:
    """Every Replayer attribute the analytics use, read in one place."""
    venue = replayer.venue
    stamps = [*replayer.stamps, *_closing_stamps(replayer)]
    books, trades = replayer.market_tapes()  # the range's (a streamed replay reads them again)
    return {
        "fills": [_plain(f) for f in replayer.fills],
        "actions": replayer.actions.to_frame(_plain_value),  # an OrderJournal, by column
        "stamps": stamps,
        "declarations": list(replayer.declarations),
        "mids": {(b.exc, b.ticker): _tape_mids(b) for b in books},
        "trades": {(t.exc, t.ticker): _tape_trades(t) for t in trades},
        "config": {
            "start_balance": float(venue.start_balance),
            "start_ns": int(replayer.start_ns), "end_ns": int(replayer.end_ns),
            "stamp_cycle_ms": int(replayer.stamp_cycle_ns // NS_PER_MS),
            "fees": replayer.config["fees"], "latencies": replayer.config["latency_models"],
            "replayer": _jsonable(replayer.config),
        },
    }


def _closing_stamps(replayer: Any) -> list[tuple[int, str, float, float, float]]:
    """A stamp per exchange at the replay's final time, if the last regular one is earlier."""
    venue, now = replayer.venue, int(replayer.clock.ns)
    last = max((s[0] for s in replayer.stamps), default=None)
    if not getattr(replayer, "started", False) or last is None or last >= now:
        return []
    out = []
    for exc in venue.accounts:
        out.append((now, exc, *venue.valuation(exc)))
    return out


def _tape_mids(tape: Any) -> pd.DataFrame:
    """A book tape's mids as :func:`_mid_frame` leaves them (one-sided states dropped,
    stably sorted by exchange time), taken from the arrays once: a day of book rows makes
    no intermediate frames."""
    ts = np.asarray(tape.exchange_ts, np.int64)
    bid = np.asarray(tape.bid_price[:, 0], float) if len(tape) else np.empty(0)
    ask = np.asarray(tape.ask_price[:, 0], float) if len(tape) else np.empty(0)
    mid = (bid + ask) / 2
    keep = np.flatnonzero(np.isfinite(mid))
    if np.any(np.diff(ts[keep]) < 0):
        keep = keep[np.argsort(ts[keep], kind="stable")]
    return pd.DataFrame({"ts": ts[keep], "local_ts": np.asarray(tape.local_ts, np.int64)[keep],
                         "bid": bid[keep], "ask": ask[keep], "mid": mid[keep]}, copy=False)


def _tape_trades(tape: Any) -> pd.DataFrame:
    """A trade tape as the record's ``trades`` table (:func:`_frame`'s columns and types),
    its columns the tape's arrays where their types already match (tapes are never
    written to once built: a day of prints is not held twice)."""
    return pd.DataFrame({"ts": np.asarray(tape.exchange_ts, np.int64),
                         "price": np.asarray(tape.price, float),
                         "size": np.asarray(tape.size, float),
                         "dir": np.asarray(tape.side, np.int8)}, copy=False)


# -- table helpers ----------------------------------------------------------------------

_PLAIN_TYPES = frozenset({str, int, float, bool, type(None)})  # values kept as they are


def _plain(row: Mapping[str, Any]) -> dict[str, Any]:
    """A record dict with Decimals as floats and enums as their values."""
    return {k: v if type(v) in _PLAIN_TYPES else _plain_value(v) for k, v in row.items()}


def _plain_value(value: Any) -> Any:
    return float(value) if isinstance(value, Decimal) else getattr(value, "value", value)


def _jsonable(obj: Any) -> Any:
    return json.loads(json.dumps(obj, default=str))


def _frame(data: Any, columns: list[str]) -> pd.DataFrame:
    """``data`` (records, tuples or a DataFrame) with ``columns`` first, floats as float."""
    if isinstance(data, pd.DataFrame):
        df = data.copy()
    else:
        rows = list(data)
        is_tuple = bool(rows) and not isinstance(rows[0], Mapping)
        df = pd.DataFrame(rows, columns=columns if is_tuple else None)
    for col in columns:
        if col not in df:
            df[col] = pd.Series(dtype=float if col in _FLOATS else object)
    for col in _FLOATS:
        if col in df and col in columns:
            df[col] = pd.to_numeric(df[col], errors="coerce").astype(float)
    extra = [c for c in df.columns if c not in columns]
    return df[columns + extra].reset_index(drop=True)


def _mid_frame(data: Any) -> pd.DataFrame:
    """``(ts, local_ts, bid, ask, mid)`` sorted by exchange time, one-sided states dropped;
    ``local_ts`` defaults to ``ts`` (no feed latency)."""
    df = _frame(data, ["ts", "bid", "ask"])
    if "local_ts" not in df or df.local_ts.isna().all():
        df["local_ts"] = df.ts
    df["mid"] = (df.bid.astype(float) + df.ask.astype(float)) / 2
    df = df[np.isfinite(df.mid)].sort_values("ts", kind="stable")
    return df[MID_COLUMNS].astype({"ts": np.int64, "local_ts": np.int64}).reset_index(drop=True)


def _select(df: pd.DataFrame, exc: str | None, ticker: str | None) -> pd.DataFrame:
    mask = np.ones(len(df), dtype=bool)
    if exc is not None:
        mask &= (df.exc == exc).to_numpy()
    if ticker is not None:
        mask &= (df.ticker == ticker).to_numpy()
    return df[mask]


def _parquet_safe(df: pd.DataFrame) -> pd.DataFrame:
    """Object columns: all-numeric ones as numbers, mixed ones (codes and text) as text.

    Text columns (pandas' ``str`` dtype) hold text only and are left as they are, without
    looking at each value."""
    out = df.copy()
    for col in [c for c in out.columns
                if out[c].dtype.kind == "O" and not isinstance(out[c].dtype, pd.StringDtype)]:
        kinds = {type(v) for v in out[col].dropna()}
        if kinds and kinds <= {int, float}:
            out[col] = pd.to_numeric(out[col])
        elif len(kinds) > 1:
            out[col] = out[col].map(lambda v: None if v is None or v != v else str(v))
    return out


def _write_parquet(df: pd.DataFrame, path: Path) -> None:
    """``df.to_parquet(path)`` (the same file) converted on this thread: pyarrow's
    conversion otherwise starts a thread pool per table, which costs more than a run
    record's tables take to convert."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.Table.from_pandas(df, nthreads=1), path, compression="snappy")


def _stack(tables: Mapping[Market, pd.DataFrame], columns: list[str]) -> pd.DataFrame:
    parts = [df[columns].assign(exc=exc, ticker=ticker) for (exc, ticker), df in tables.items()]
    if not parts:
        return pd.DataFrame({c: pd.Series(dtype=object) for c in [*columns, "exc", "ticker"]})
    return pd.concat(parts, ignore_index=True)


def _unstack(df: pd.DataFrame) -> dict[Market, pd.DataFrame]:
    keys: Iterable[Market] = dict.fromkeys(zip(df.exc, df.ticker, strict=True))
    return {(e, t): df[(df.exc == e) & (df.ticker == t)].drop(columns=["exc", "ticker"])
            for e, t in keys}


def _first(s: pd.Series) -> Any:
    return int(s.min()) if len(s) else None


def _last(s: pd.Series) -> Any:
    return int(s.max()) if len(s) else None
