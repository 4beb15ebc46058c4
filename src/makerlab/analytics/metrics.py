"""Replay statistics: one small function per metric, each defined in its docstring.

``statistics(record)`` returns ``{exc: dict | None}`` (``None`` for an exchange without
fills) with the tutorial's keys and the market-making ones; ``docs/analytics.md`` lists
every definition. Conventions used throughout:

- ``p_i``, ``q_i > 0``, ``d_i = ±1`` are a fill's price, size and direction (+1 buy);
- ``m(t)`` is the mid of the fill's market at ``t``: the last book state at or before ``t``
  (exchange time); ``m(t_i)`` is the mid prevailing at the fill;
- markouts are **fractions** (``1e-4`` = 1 bp); metrics named ``(bps)`` are in basis points;
- equity, pnl, inventory and volume are in quote currency; times in seconds unless named.

Every statistics dict also says how far to trust it: ``fills_excluded`` counts, per key,
the fills a mean left out for want of a mid (past the end of the data), and ``warnings``
holds one ``'<key>: <note>'`` line per number that needs one (an annualised Sharpe from too
short a sample, a mean over fewer fills than the others); reports print each note next to
its number.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any

import numpy as np
import pandas as pd

from makerlab.analytics.record import RunRecord
from makerlab.units import NS_PER_MS

__all__ = [
    "DEFAULT_INTERVALS_MS",
    "SECONDS_PER_YEAR",
    "adverse_selection_bps",
    "fees_paid",
    "fill_markouts",
    "fill_ratio",
    "fills_excluded",
    "flip_win_ratio",
    "horizon_label",
    "interval_quartiles",
    "inventory_flips",
    "inventory_half_life_s",
    "maker_share",
    "markout_table",
    "max_drawdown_pct",
    "max_leverage",
    "max_norm_beta",
    "n_trades",
    "pnl",
    "roi",
    "sample_warnings",
    "sharpe",
    "sharpe_note",
    "spread_capture_bps",
    "statistics",
    "statistics_exc",
    "terminal_equity",
    "ticker_inventory",
    "time_in_queue_s",
    "turnover",
    "volume",
    "volume_per_second",
]

DEFAULT_INTERVALS_MS: list[float] = list(np.linspace(1, 151, 31) * 1000)
SECONDS_PER_YEAR = 365 * 24 * 3600  # crypto trades every second of the year
ADVERSE_HORIZONS_S = (1, 10, 60)
SHARPE_MIN_SPAN_S = 24 * 3600  # an annualised Sharpe from less than a day gets a note
SHARPE_MIN_NONZERO = 30  # ... and from fewer non-zero stamp-to-stamp returns
CENT = Decimal("0.01")
NAN = float("nan")


def statistics(record: RunRecord, intervals_ms: Sequence[float] = DEFAULT_INTERVALS_MS,
               betas: Mapping[str, float] | None = None) -> dict[str, dict[str, Any] | None]:
    """Per-exchange statistics: ``{exc: dict}``, ``None`` for an exchange that never traded."""
    return {exc: statistics_exc(record, exc, intervals_ms, betas)
            for exc in record.exchanges()}


def statistics_exc(record: RunRecord, exc: str,
                   intervals_ms: Sequence[float] = DEFAULT_INTERVALS_MS,
                   betas: Mapping[str, float] | None = None) -> dict[str, Any] | None:
    """One exchange's statistics dict (``None`` without fills)."""
    fills = record.fills_of(exc)
    if fills.empty:
        return None
    stamps, start = record.stamps_of(exc), record.start_balance
    inventory = ticker_inventory(record, exc)
    equity = stamps.set_index("ts").equity.groupby(level=0).last()
    vol = volume(fills)
    out: dict[str, Any] = {
        "#trades": n_trades(fills), "pnl": pnl(stamps, start), "roi": roi(stamps, start),
        "terminal": terminal_equity(stamps), "sharpe": sharpe(stamps, record.stamp_cycle_s),
        "maxdd(%)": max_drawdown_pct(stamps), "volume": vol,
        "volume/s($)": volume_per_second(fills, record.duration_s),
        "turnover": turnover(fills, start), "fees": fees_paid(fills),
        "max_leverage": max_leverage(inventory, equity),
        "max_norm_beta": max_norm_beta(inventory, equity, betas),
        "inventory_flips": inventory_flips(fills),
        "flip_win_ratio": flip_win_ratio(record, fills),
    }
    out.update(_markout_stats(record, fills, intervals_ms))
    out.update(_maker_stats(record, exc, fills, stamps))
    out["fills_excluded"] = fills_excluded(record, fills, out["interval_quartiles"])
    out["warnings"] = sample_warnings(stamps, record.stamp_cycle_s, out["fills_excluded"],
                                      len(fills))
    return out


def _markout_stats(record: RunRecord, fills: pd.DataFrame,
                   intervals_ms: Sequence[float]) -> dict[str, Any]:
    labels = interval_quartiles(fills, intervals_ms)
    out: dict[str, Any] = {"interval_quartiles": labels,
                           "Tick Markouts": _nanmean(fill_markouts(record, fills, None))}
    for label in dict.fromkeys(labels):
        seconds = float(label[:-1])
        out[f"{label} Markouts"] = _nanmean(fill_markouts(record, fills, seconds * 1000))
    return out


def _maker_stats(record: RunRecord, exc: str, fills: pd.DataFrame,
                 stamps: pd.DataFrame) -> dict[str, Any]:
    out: dict[str, Any] = {"spread_capture(bps)": spread_capture_bps(record, fills),
                           "fill_ratio": fill_ratio(record, exc),
                           "maker_share": maker_share(fills)}
    for h in ADVERSE_HORIZONS_S:
        out[f"adverse_selection_{h}s(bps)"] = adverse_selection_bps(record, fills, h)
    out["time_in_queue(s)"] = time_in_queue_s(fills)
    out["inventory_half_life(s)"] = inventory_half_life_s(stamps, record.stamp_cycle_s)
    return out


# -- equity curve -----------------------------------------------------------------------

def terminal_equity(stamps: pd.DataFrame) -> float:
    """``terminal``: equity at the last stamp (the closing stamp), quote currency."""
    return float(stamps.equity.iloc[-1]) if len(stamps) else NAN


def pnl(stamps: pd.DataFrame, start_balance: float) -> float:
    """``pnl = terminal - start_balance``, quote currency, fees and rebates included."""
    return terminal_equity(stamps) - start_balance


def roi(stamps: pd.DataFrame, start_balance: float) -> float:
    """``roi = pnl / start_balance``, a fraction (not annualised)."""
    return pnl(stamps, start_balance) / start_balance


def sharpe(stamps: pd.DataFrame, stamp_cycle_s: float) -> float:
    """Annualised Sharpe ratio of stamp-to-stamp equity returns (zero risk-free rate).

    ``r_j = E_j / E_{j-1} - 1`` over consecutive stamps; ``sharpe = mean(r) / std(r, ddof=1)
    * sqrt(SECONDS_PER_YEAR / stamp_cycle_s)`` with a 365-day year. NaN with fewer than two
    returns or a flat equity curve.
    """
    r = stamps.equity.to_numpy(float)
    r = r[1:] / r[:-1] - 1
    if len(r) < 2 or not np.std(r) > 0:
        return NAN
    return float(np.mean(r) / np.std(r, ddof=1) * math.sqrt(SECONDS_PER_YEAR / stamp_cycle_s))


def sharpe_note(stamps: pd.DataFrame, stamp_cycle_s: float) -> str | None:
    """Why the annualised :func:`sharpe` of ``stamps`` says little, or None if its sample
    is fair: it spans less than ``SHARPE_MIN_SPAN_S`` (a day) or has fewer than
    ``SHARPE_MIN_NONZERO`` non-zero returns. None when the Sharpe ratio is NaN."""
    if math.isnan(sharpe(stamps, stamp_cycle_s)):
        return None
    equity = stamps.equity.to_numpy(float)
    returns = equity[1:] / equity[:-1] - 1
    nonzero = int(np.count_nonzero(returns))
    span_s = (int(stamps.ts.iloc[-1]) - int(stamps.ts.iloc[0])) / 1e9
    if span_s >= SHARPE_MIN_SPAN_S and nonzero >= SHARPE_MIN_NONZERO:
        return None
    return (f"annualised from {_duration(span_s)} of equity stamps with {nonzero} non-zero "
            f"returns (of {len(returns)}); under a day or {SHARPE_MIN_NONZERO} non-zero "
            "returns it says little about a year")


def _duration(seconds: float) -> str:
    for unit, size in (("days", 86400), ("h", 3600), ("min", 60)):
        if seconds >= 2 * size:
            return f"{seconds / size:.1f} {unit}"
    return f"{seconds:.0f} s"


def max_drawdown_pct(stamps: pd.DataFrame) -> float:
    """``maxdd(%) = 100 * max_j (P_j - E_j) / P_j`` with ``P_j = max_{k<=j} E_k``: the
    largest fall of equity from its running peak, percent of the peak (>= 0)."""
    equity = stamps.equity.to_numpy(float)
    if not len(equity):
        return NAN
    peak = np.maximum.accumulate(equity)
    return float(np.max((peak - equity) / peak) * 100)


# -- volume -----------------------------------------------------------------------------

def n_trades(fills: pd.DataFrame) -> int:
    """``#trades``: number of our fills (each partial fill counts once)."""
    return len(fills)


def volume(fills: pd.DataFrame) -> Decimal:
    """``volume = sum_i p_i q_i``: traded notional, quote currency, Decimal to the cent."""
    return _cents(float(np.dot(fills.price, fills["size"])))


def volume_per_second(fills: pd.DataFrame, duration_s: float) -> Decimal:
    """``volume/s($) = volume / duration``, duration being the replayed data span
    (``end_ns - start_ns``) in seconds; Decimal to the cent."""
    if duration_s <= 0:
        return Decimal("NaN")
    return _cents(float(np.dot(fills.price, fills["size"])) / duration_s)


def turnover(fills: pd.DataFrame, start_balance: float) -> float:
    """``turnover = volume / start_balance``: times the capital was traded."""
    return float(np.dot(fills.price, fills["size"])) / start_balance


def fees_paid(fills: pd.DataFrame) -> float:
    """``fees = sum_i fee_i``, quote currency; negative when rebates exceed fees."""
    return float(fills.fee.sum())


def _cents(value: float) -> Decimal:
    return Decimal(repr(value)).quantize(CENT)


# -- inventory --------------------------------------------------------------------------

def ticker_inventory(record: RunRecord, exc: str) -> pd.DataFrame:
    """Per-ticker inventory notional at each stamp: ``N_k(t) = pos_k(t) * m_k(t)``.

    ``pos_k(t)`` is the venue position after the last fill at or before ``t`` (0 before any
    fill); index stamp ``ts`` (ns), one column per traded ticker, quote currency (linear
    contracts: base quantity times mid).
    """
    ts = record.stamps_of(exc).ts.drop_duplicates().to_numpy(np.int64)
    fills = record.fills_of(exc)
    columns = {}
    for ticker, group in fills.groupby("ticker", sort=False):
        idx = np.searchsorted(group.ts.to_numpy(), ts, side="right") - 1
        pos = np.where(idx >= 0, group.position.to_numpy(float)[np.maximum(idx, 0)], 0.0)
        mids = _mids_or_nan(record, exc, str(ticker), ts)
        columns[ticker] = np.where(pos == 0, 0.0, pos * mids)
    return pd.DataFrame(columns, index=pd.Index(ts, name="ts"))


def max_leverage(inventory: pd.DataFrame, equity: pd.Series) -> float:
    """``max_leverage = max_t sum_k |N_k(t)| / E(t)``: the largest gross inventory
    notional over equity at the stamps (a fraction, 1.0 = fully invested)."""
    if inventory.empty:
        return 0.0
    gross = inventory.abs().sum(axis=1) / equity.reindex(inventory.index)
    return float(np.nanmax(gross.to_numpy(float), initial=0.0))


def max_norm_beta(inventory: pd.DataFrame, equity: pd.Series,
                  betas: Mapping[str, float] | None = None) -> float:
    """``max_norm_beta = max_t |sum_k beta_k N_k(t)| / E(t)``: the largest net,
    beta-weighted exposure over equity. ``beta_k`` defaults to 1 (every crypto pair moves
    with the market one for one), so with one ticker it equals ``max_leverage``."""
    if inventory.empty:
        return 0.0
    weights = np.array([(betas or {}).get(str(c), 1.0) for c in inventory.columns])
    net = (inventory.to_numpy(float) @ weights) / equity.reindex(inventory.index).to_numpy()
    return float(np.nanmax(np.abs(net), initial=0.0))


def inventory_flips(fills: pd.DataFrame) -> int:
    """``inventory_flips``: times a ticker's position changed sign (long to short or back;
    passing through flat counts once), summed over tickers."""
    return sum(len(_flip_rows(g)) for _, g in fills.groupby("ticker", sort=False))


def flip_win_ratio(record: RunRecord, fills: pd.DataFrame) -> float:
    """``flip_win_ratio = wins / inventory_flips``.

    The ``n``-th cycle of a ticker runs from its previous flip (or its first fill) to its
    ``n``-th flip; it wins if the ticker's PnL ``sum_{j<=i}(-d_j p_j q_j - fee_j) + pos_i *
    m(t_i)`` (linear contracts, marked at the mid) rose over the cycle. NaN without flips.
    """
    wins = flips = 0
    for ticker, group in fills.groupby("ticker", sort=False):
        rows = _flip_rows(group)
        marks = _ticker_pnl(record, group, str(ticker))[rows]
        wins += int(np.sum(np.diff(marks, prepend=0.0) > 0))
        flips += len(rows)
    return wins / flips if flips else NAN


def inventory_half_life_s(stamps: pd.DataFrame, stamp_cycle_s: float) -> float:
    """Half-life of the net inventory notional ``I`` under an AR(1) toward zero, seconds.

    ``phi = sum I_j I_{j+1} / sum I_j^2`` (least squares of ``I_{j+1} = phi I_j``, no
    intercept: a market maker's inventory reverts to flat); ``half-life = stamp_cycle *
    ln(1/2) / ln(phi)``. ``phi <= 0`` gives 0 (reverts within a stamp), ``phi >= 1`` inf
    (no reversion), a never-held inventory NaN.
    """
    inv = stamps.inventory.fillna(0.0).to_numpy(float)
    denom = float(np.dot(inv[:-1], inv[:-1]))
    if len(inv) < 2 or denom == 0:
        return NAN
    phi = float(np.dot(inv[:-1], inv[1:])) / denom
    if phi <= 0:
        return 0.0
    return math.inf if phi >= 1 else stamp_cycle_s * math.log(0.5) / math.log(phi)


def _flip_rows(group: pd.DataFrame) -> np.ndarray:
    """Positions (0-based rows of ``group``) of the fills that flipped its sign."""
    sign = np.sign(group.position.to_numpy(float))
    rows = np.flatnonzero(sign != 0)
    changed = rows[1:][sign[rows[1:]] != sign[rows[:-1]]]
    return changed


def _ticker_pnl(record: RunRecord, group: pd.DataFrame, ticker: str) -> np.ndarray:
    exc = str(group.exc.iloc[0])
    cash = (-group.dir * group.price * group["size"] - group.fee).cumsum().to_numpy(float)
    mids = _mids_or_nan(record, exc, ticker, group.ts.to_numpy())
    return cash + group.position.to_numpy(float) * mids


# -- markouts ---------------------------------------------------------------------------

def horizon_label(ms: float) -> str:
    """A horizon's label: ``1000`` ms -> ``'1s'``, ``500`` -> ``'0.5s'``."""
    return f"{ms / 1000:g}s"


def fill_markouts(record: RunRecord, fills: pd.DataFrame, horizon_ms: float | None
                  ) -> np.ndarray:
    """Fractional markout of each fill: ``d_i (m(t_i + h) - p_i) / p_i``.

    ``horizon_ms=None`` is the ``Tick`` markout: the mid of the first book state strictly
    after the fill. A horizon past the end of the market's book data gives NaN.
    """
    ts = fills.ts.to_numpy(np.int64)
    if horizon_ms is None:
        mids = _fill_mids(record, fills, ts, after=True)
    else:
        mids = _fill_mids(record, fills, ts + round(horizon_ms * NS_PER_MS))
    price = fills.price.to_numpy(float)
    return fills.dir.to_numpy(float) * (mids - price) / price


def markout_table(record: RunRecord, fills: pd.DataFrame,
                  intervals_ms: Sequence[float] = DEFAULT_INTERVALS_MS) -> pd.DataFrame:
    """Markouts per fill: column ``Tick`` then one per horizon (``'1s'``, ``'6s'``...)."""
    data = {"Tick": fill_markouts(record, fills, None)}
    for ms in intervals_ms:
        data[horizon_label(ms)] = fill_markouts(record, fills, ms)
    return pd.DataFrame(data, index=pd.to_datetime(fills.ts.to_numpy(), utc=True))


def interval_quartiles(fills: pd.DataFrame,
                       intervals_ms: Sequence[float] = DEFAULT_INTERVALS_MS) -> list[str]:
    """Quartiles (25/50/75 %) of the time between our consecutive distinct fill times,
    each floored onto the markout grid ``[0] + intervals`` and labelled (``'11s'``).
    Empty with fewer than two distinct fill times."""
    times = np.unique(fills.ts.to_numpy(np.int64))
    if len(times) < 2:
        return []
    gaps_s = np.diff(times) / 1e9
    grid = np.array([0.0, *sorted(intervals_ms)]) / 1000
    snapped = [grid[np.searchsorted(grid, q, side="right") - 1]
               for q in np.percentile(gaps_s, [25, 50, 75])]
    return [horizon_label(s * 1000) for s in snapped]


def spread_capture_bps(record: RunRecord, fills: pd.DataFrame) -> float:
    """``spread_capture(bps) = 1e4 * mean_i d_i (m(t_i) - p_i) / p_i``: how far inside the
    prevailing mid we traded (half the quoted spread for touch quotes; negative when
    crossing)."""
    mids = _fill_mids(record, fills, fills.ts.to_numpy(np.int64))
    price = fills.price.to_numpy(float)
    return _nanmean(fills.dir.to_numpy(float) * (mids - price) / price) * 1e4


def adverse_selection_bps(record: RunRecord, fills: pd.DataFrame, horizon_s: float) -> float:
    """``adverse_selection_h(bps) = -1e4 * mean_i d_i (m(t_i + h) - m(t_i)) / p_i``: how far
    the mid moved against our fills within ``h`` seconds (positive = adverse). By
    construction ``markout(h) = spread_capture - adverse_selection(h)`` (in bps)."""
    ts = fills.ts.to_numpy(np.int64)
    now = _fill_mids(record, fills, ts)
    later = _fill_mids(record, fills, ts + int(horizon_s * 1e9))
    move = fills.dir.to_numpy(float) * (later - now) / fills.price.to_numpy(float)
    return -_nanmean(move) * 1e4


def fills_excluded(record: RunRecord, fills: pd.DataFrame, quartile_labels: Sequence[str]
                   ) -> dict[str, int]:
    """``{key: n}`` for each markout-type mean that left out ``n`` fills for want of a mid
    (``spread_capture(bps)``, ``Tick Markouts``, ``<h> Markouts``,
    ``adverse_selection_<h>s(bps)``): a mid ``h`` after a fill past the market's last book
    state is unknown. Keys without exclusions are omitted."""
    ts = fills.ts.to_numpy(np.int64)
    now = np.isnan(_fill_mids(record, fills, ts))
    missing = {"spread_capture(bps)": now,
               "Tick Markouts": np.isnan(_fill_mids(record, fills, ts, after=True))}
    for label in dict.fromkeys(quartile_labels):
        later = ts + round(float(label[:-1]) * 1000 * NS_PER_MS)
        missing[f"{label} Markouts"] = np.isnan(_fill_mids(record, fills, later))
    for h in ADVERSE_HORIZONS_S:
        later = np.isnan(_fill_mids(record, fills, ts + int(h * 1e9)))
        missing[f"adverse_selection_{h}s(bps)"] = later | now
    return {key: int(mask.sum()) for key, mask in missing.items() if mask.any()}


def sample_warnings(stamps: pd.DataFrame, stamp_cycle_s: float, excluded: Mapping[str, int],
                    n_fills: int) -> list[str]:
    """``'<key>: <note>'`` lines: the Sharpe ratio's sample (:func:`sharpe_note`) and each
    mean over fewer fills than the others (:func:`fills_excluded`)."""
    notes = []
    if (note := sharpe_note(stamps, stamp_cycle_s)) is not None:
        notes.append(f"sharpe: {note}")
    for key, n in excluded.items():
        note = (f"{key}: {n} of {n_fills} fills left out (no mid at the horizon: past the "
                "end of the data)")
        if key.startswith("adverse_selection"):
            note += ("; over different fills than spread_capture(bps), so markout = spread "
                     "capture - adverse selection holds fill by fill, not for these means")
        notes.append(note)
    return notes


# -- orders -----------------------------------------------------------------------------

def fill_ratio(record: RunRecord, exc: str) -> float:
    """``fill_ratio = sum_i p_i q_i / sum_o P_o |Q_o|``: filled notional over submitted
    notional (``P_o`` the limit price, the mid at submission for market orders)."""
    acts = record.actions
    subs = acts[(acts.event == "submit") & (acts.exc == exc)]
    if subs.empty:
        return NAN
    price = subs.price.to_numpy(float).copy()
    for ticker in subs.ticker.unique():
        rows = ((subs.ticker == ticker) & subs.price.isna()).to_numpy()
        price[rows] = _mids_or_nan(record, exc, str(ticker), subs.ts.to_numpy()[rows])
    submitted = float(np.nansum(price * subs.amount.abs().to_numpy(float)))
    fills = record.fills_of(exc)
    return float(np.dot(fills.price, fills["size"])) / submitted if submitted else NAN


def maker_share(fills: pd.DataFrame) -> float:
    """``maker_share``: maker fills' notional over all fills' notional (a fraction)."""
    notional = fills.price * fills["size"]
    return float(notional[fills.is_maker.astype(bool)].sum() / notional.sum())


def time_in_queue_s(fills: pd.DataFrame) -> float:
    """``time_in_queue(s)``: median over maker-filled orders of (first fill time - the
    order's arrival at the venue), seconds. NaN without maker fills."""
    maker = fills[fills.is_maker.astype(bool)]
    if maker.empty:
        return NAN
    first = maker.groupby(["ticker", "cloid"], sort=False).agg(
        ts=("ts", "min"), arrival=("arrival_ts", "first"))
    return float(np.median((first.ts - first.arrival).to_numpy(float)) / 1e9)


# -- helpers ----------------------------------------------------------------------------

def _fill_mids(record: RunRecord, fills: pd.DataFrame, ts: np.ndarray,
               after: bool = False) -> np.ndarray:
    """Mid of each fill's own market at ``ts`` (aligned with ``fills`` rows); NaN past the
    market's last book state."""
    out = np.full(len(fills), np.nan)
    tickers = fills.ticker.to_numpy()
    excs = fills.exc.to_numpy()
    for exc, ticker in dict.fromkeys(zip(excs, tickers, strict=True)):
        rows = (excs == exc) & (tickers == ticker)
        out[rows] = _mids_or_nan(record, str(exc), str(ticker), ts[rows], after, stale=False)
    return out


def _mids_or_nan(record: RunRecord, exc: str, ticker: str, ts: Any, after: bool = False,
                 stale: bool = True) -> np.ndarray:
    if (exc, ticker) not in record.mids:
        return np.full(np.shape(ts), np.nan)
    return record.mid_at(exc, ticker, ts, after, stale)


def _nanmean(values: np.ndarray) -> float:
    values = np.asarray(values, float)
    ok = np.isfinite(values)
    return float(values[ok].mean()) if ok.any() else NAN
