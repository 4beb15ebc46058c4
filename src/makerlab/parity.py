"""Sim-live parity: one strategy script, run once in the Replayer and once live against
the paper exchange in lockstep, and their fills compared (``makerlab parity``).

::

    makerlab parity examples/market_maker.py --archive data/archive \\
        --start 2024-08-08:23 --end 2024-08-08:23 [--exchange binance]

How it runs (docs/paper.md, "Sim-live parity"):

1. **replay**: ``python SCRIPT 0`` in a scratch folder (``MAKERLAB_ARCHIVE`` = the
   archive); the script's Replayer saves its run (``run_dir``), whose record gives the
   replay's fills and its models (latencies, fees, queue and fill models, balance).
2. **live**: a :class:`~makerlab.paper.PaperExchange` serves the same archive and range
   in lockstep (:mod:`makerlab.paper.lockstep`) with those models and a fresh account on
   ``--exchange``; ``python SCRIPT 1`` runs with ``MAKERLAB_CONFIG_KEYS`` set: the
   Gateway config (JSON) of every protocol the paper serves (``env: paper``, its base URL,
   ``lockstep: true``; the account's key and secret in ``MAKERLAB_PAPER_<EXCHANGE>_KEY`` /
   ``_SECRET``), which the script uses as its ``config_keys`` (as
   examples/market_maker.py does). Once the paper played the range and the script handled
   every event, the script is stopped (SIGINT) and the paper's fill journal is the live
   run's fills.
3. **compare**: both fill lists in order, and their agreement on count, side, price and
   size and on fill time (exchange time; lockstep has the paper decide at the Replayer's
   virtual times, so no difference is allowed). The command exits 0 only when all agree.

Requirements: the replay uses the Replayer's constructor path (local time = exchange
time + FEED_PUBLIC) with constant latencies (the same FEED_PUBLIC for every exchange),
and trades on the one ``--exchange``.
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import signal
import sys
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from makerlab.analytics.record import RunRecord
from makerlab.data.storage import existing
from makerlab.errors import ConfigError
from makerlab.paper import PaperExchange
from makerlab.paper.private import Credentials
from makerlab.paper.trading import TradingConfig
from makerlab.sim.latency import Latencies
from makerlab.sim.models import from_config

__all__ = ["FillRow", "ParityResult", "run_parity"]

_STOP_S = 15.0  # for the live script to exit after SIGINT


@dataclass(frozen=True, slots=True)
class FillRow:
    """One fill: exchange time (ns), side (+1 buy / -1 sell), price, size."""

    ts: int
    side: int
    price: Decimal
    size: Decimal

    @classmethod
    def of(cls, fill: Mapping[str, Any]) -> FillRow:
        return cls(int(fill["ts"]), int(fill["dir"]), Decimal(str(fill["price"])),
                   Decimal(str(fill["size"])))

    def terms(self) -> tuple[int, Decimal, Decimal]:
        return self.side, self.price.normalize(), self.size.normalize()


@dataclass(frozen=True)
class ParityResult:
    """Both runs' fills (in time order) and what the live script printed."""

    replay: list[FillRow]
    live: list[FillRow]
    exchange: str

    @property
    def same_terms(self) -> bool:
        """Same count, and each fill the same side, price and size."""
        return [f.terms() for f in self.replay] == [f.terms() for f in self.live]

    @property
    def same_times(self) -> bool:
        return [f.ts for f in self.replay] == [f.ts for f in self.live]

    @property
    def identical(self) -> bool:
        """Parity: the same fills (side, price, size) at the same exchange times."""
        return self.same_terms and self.same_times

    def report(self) -> str:
        """Both fill lists side by side and their agreement."""
        lines = [f"{'#':>4}  {'replay (Replayer)':<48}  live (paper exchange, lockstep)"]
        for i in range(max(len(self.replay), len(self.live))):
            left = _row(self.replay[i]) if i < len(self.replay) else ""
            right = _row(self.live[i]) if i < len(self.live) else ""
            mark = "" if i < min(len(self.replay), len(self.live)) and \
                self.replay[i].terms() == self.live[i].terms() else "  <> differs"
            lines.append(f"{i + 1:>4}  {left:<48}  {right}{mark}")
        return "\n".join([*lines, "", *self.summary()])

    def summary(self) -> list[str]:
        n, m = len(self.replay), len(self.live)
        same = sum(a.terms() == b.terms() for a, b in zip(self.replay, self.live,
                                                           strict=False))
        out = [f"fills: replay {n}, live {m}; {same} of {max(n, m)} agree on side, price "
               f"and size ({'identical' if self.same_terms else 'NOT identical'})"]
        if self.same_times:
            out.append("times: identical (every fill at the same exchange time)")
        else:
            out += _time_differences(self.replay, self.live)
        return [*out, self.verdict()]

    def verdict(self) -> str:
        if self.identical:
            return "parity: OK"
        if not self.same_terms:
            return "parity: FAILED, the fills differ in count, side, price or size"
        return ("parity: FAILED, the same fills at other exchange times (lockstep decides at "
                "the Replayer's virtual times: no difference is allowed)")


def _row(fill: FillRow) -> str:
    moment = datetime.fromtimestamp(fill.ts / 1e9, tz=UTC).strftime("%H:%M:%S.%f")[:-3]
    side = "buy" if fill.side > 0 else "sell"
    return (f"{moment}  {side:<4} {format(fill.price.normalize(), 'f'):>12} x "
            f"{format(fill.size.normalize(), 'f')}")


def _time_differences(replay: list[FillRow], live: list[FillRow]) -> list[str]:
    shifts = [(b.ts - a.ts) / 1e6 for a, b in zip(replay, live, strict=False)
              if a.terms() == b.terms() and a.ts != b.ts]
    out = [f"times: {len(shifts)} matching fills at another exchange time"]
    if shifts:
        out.append(f"  live - replay: min {min(shifts):+.3f} ms, max {max(shifts):+.3f} ms "
                   "(the engine decided at another time: a request reached it at another "
                   "virtual time, or a fill came from another book row or print)")
    return out


# --------------------------------------------------------------------------- running


async def run_parity(script: str | os.PathLike, archive: str | os.PathLike, start: str,
                     end: str, *, exchange: str = "binance", python: str = sys.executable,
                     timeout_s: float = 900.0, workdir: str | os.PathLike | None = None
                     ) -> ParityResult:
    """Run ``script`` in both modes and compare their fills (see the module docstring).

    Raises :class:`~makerlab.errors.ConfigError` when the script or the archive is absent,
    a run fails or the replay's models cannot be served in lockstep.
    """
    script, archive = Path(script).resolve(), Path(archive).resolve()
    if not script.is_file():
        raise ConfigError(f"no script at {script}")
    existing(archive)
    with tempfile.TemporaryDirectory(prefix="makerlab-parity-") as scratch:
        work = Path(workdir) if workdir is not None else Path(scratch)
        record = await _replay(script, archive, work / "replay", python, timeout_s)
        trading = trading_config(record, exchange)
        live = await _live(script, archive, start, end, exchange, trading, work / "live",
                           python, timeout_s)
    replay = [FillRow.of(f) for f in record.fills.to_dict("records") if f["exc"] == exchange]
    return ParityResult(sorted(replay, key=lambda f: f.ts),
                        sorted((FillRow.of(f) for f in live), key=lambda f: f.ts), exchange)


def trading_config(record: RunRecord, exchange: str) -> TradingConfig:
    """The paper's models from a replay's record (its latencies, fees, queue and fill
    models, balance); ConfigError for what lockstep cannot reproduce."""
    replayer = record.config.get("replayer") or {}
    if replayer.get("recorded_local_time"):
        raise ConfigError("parity needs the Replayer's constructor path (local time = "
                          "exchange time + FEED_PUBLIC), not recorded local times")
    models = {exc: from_config(cfg) for exc, cfg in record.config["latencies"].items()}
    if exchange not in models:
        raise ConfigError(f"the replay did not trade {exchange!r}; it has "
                          f"{', '.join(models) or 'nothing'}")
    feeds = {m.sample(Latencies.FEED_PUBLIC, 0) for m in models.values()}
    if len(feeds) > 1:
        raise ConfigError("parity needs the same FEED_PUBLIC latency on every exchange")
    fees = from_config(record.config["fees"]).for_exchange(exchange)
    return TradingConfig(models[exchange], fees.maker, fees.taker,
                         Decimal(str(record.config["start_balance"])),
                         from_config(replayer["queue_model"]),
                         from_config(replayer["fill_model"]))


async def _run(args: list[str], cwd: Path, env: Mapping[str, str], timeout_s: float,
               what: str) -> None:
    cwd.mkdir(parents=True, exist_ok=True)
    with open(cwd / "output.txt", "wb") as output:
        proc = await asyncio.create_subprocess_exec(*args, cwd=cwd, env=dict(env),
                                                    stdout=output, stderr=output)
        try:
            code = await asyncio.wait_for(proc.wait(), timeout_s)
        except TimeoutError:
            proc.kill()
            await proc.wait()
            raise ConfigError(f"{what} did not finish in {timeout_s:.0f} s") from None
    if code != 0:
        raise ConfigError(f"{what} failed (exit {code}):\n{_tail(cwd / 'output.txt')}")


def _tail(path: Path, lines: int = 30) -> str:
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


def _env(**extra: str) -> dict[str, str]:
    return {**os.environ, "MPLBACKEND": "Agg", **extra}


async def _replay(script: Path, archive: Path, cwd: Path, python: str,
                  timeout_s: float) -> RunRecord:
    await _run([python, str(script), "0"], cwd, _env(MAKERLAB_ARCHIVE=str(archive)),
               timeout_s, f"the replay ({script.name} 0)")
    runs = sorted((cwd / "logs" / "runs").glob("*/config.json")) if (
        cwd / "logs" / "runs").is_dir() else sorted(cwd.rglob("config.json"))
    if not runs:
        raise ConfigError(f"{script.name} 0 saved no run: give its Replayer a run_dir "
                          "(parity reads the replay's fills and models from it)")
    return RunRecord.load(runs[-1].parent)


async def _live(script: Path, archive: Path, start: str, end: str, exchange: str,
                trading: TradingConfig, cwd: Path, python: str,
                timeout_s: float) -> list[dict[str, Any]]:
    creds = Credentials(f"parity-{secrets.token_hex(8)}", secrets.token_hex(32))
    if exchange == "hyperliquid":
        creds = Credentials("0x" + secrets.token_hex(20), "0x" + secrets.token_hex(32))
    async with PaperExchange(archive, start, end, credentials={exchange: creds},
                             trading=trading, lockstep=True) as paper:
        key, secret = (f"MAKERLAB_PAPER_{exchange.upper()}_{what}" for what in ("KEY", "SECRET"))
        env = _env(MAKERLAB_ARCHIVE=str(archive), MAKERLAB_CONFIG_KEYS=json.dumps(
            live_config(paper, exchange, key, secret)), **{key: creds.key, secret: creds.secret})
        await _until_played(paper, [python, str(script), "1"], cwd, env, timeout_s)
        assert paper.desk is not None
        return list(paper.desk.fills)


def live_config(paper: PaperExchange, exchange: str, key: str, secret: str
                ) -> dict[str, dict[str, Any]]:
    """The live Gateway config of a script against ``paper`` in lockstep: every protocol it
    serves, and the account's key and secret (names of environment variables) on
    ``exchange``."""
    config: dict[str, dict[str, Any]] = {
        protocol: {"env": "paper", "base_url": urls["rest"], "lockstep": True}
        for protocol, urls in paper.urls.items()}
    config[exchange] |= {"key": key, "secret": secret}
    return config


async def _until_played(paper: PaperExchange, args: list[str], cwd: Path,
                        env: Mapping[str, str], timeout_s: float) -> None:
    """Run the live script until the paper has played the range, then stop it."""
    cwd.mkdir(parents=True, exist_ok=True)
    with open(cwd / "output.txt", "wb") as output:
        proc = await asyncio.create_subprocess_exec(*args, cwd=cwd, env=dict(env),
                                                    stdout=output, stderr=output)
        try:
            await _race(paper, proc, timeout_s, cwd)
        finally:
            await _stop(proc)


async def _race(paper: PaperExchange, proc: asyncio.subprocess.Process, timeout_s: float,
                cwd: Path) -> None:
    played = asyncio.ensure_future(paper.replay_done.wait())
    exited = asyncio.ensure_future(proc.wait())
    try:
        done, _ = await asyncio.wait({played, exited}, timeout=timeout_s,
                                     return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in (played, exited):
            task.cancel()
    if played not in done:
        why = "exited" if exited in done else f"did not finish in {timeout_s:.0f} s"
        raise ConfigError(f"the live run {why} before the paper exchange played the "
                          f"range:\n{_tail(cwd / 'output.txt')}")


async def _stop(proc: asyncio.subprocess.Process) -> None:
    if proc.returncode is not None:
        return
    proc.send_signal(signal.SIGINT)
    try:
        await asyncio.wait_for(proc.wait(), _STOP_S)
    except TimeoutError:
        proc.kill()
        await proc.wait()


def main_parity(script: str, archive: str, start: str, end: str, exchange: str) -> int:
    """The ``makerlab parity`` command: print both fill lists; 0 when the fills are
    identical (count, side, price, size and exchange time), 1 otherwise."""
    result = asyncio.run(run_parity(script, archive, start, end, exchange=exchange))
    print(result.report())
    return 0 if result.identical else 1
