"""The ``makerlab`` command line.

::

    makerlab convert SOURCE INPUT... --out DIR   convert real captures into an archive
    makerlab info ARCHIVE                        what an archive holds
    makerlab validate ARCHIVE [--fix]            check every file of an archive
    makerlab record --exchange X --symbols A,B --out DIR   record live data into an archive
    makerlab report RUN_DIR                      rebuild a saved run's simulation report
    makerlab sweep SCRIPT [ARGS] --param ... --out DIR   one backtest per configuration
    makerlab specs [MARKET...]                   the cached and bundled instrument specs
    makerlab paper --archive DIR --start H --end H [--page [PORT]]   serve an archive over
                                                 venue protocols (and the venue's page)
    makerlab parity SCRIPT --archive DIR --start H --end H   replay vs live fills of a script
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from collections.abc import Sequence
from decimal import Decimal
from typing import TYPE_CHECKING

from makerlab.errors import ConfigError, MakerlabError

if TYPE_CHECKING:
    from makerlab.core.instruments import InstrumentSpec


def _convert(args: argparse.Namespace) -> int:
    from makerlab.data.convert import convert
    from makerlab.data.storage import redact

    started = time.perf_counter()
    results = convert(
        args.source,
        args.inputs,
        args.out,
        exchange=args.exchange,
        symbol=args.symbol,
        depth=args.depth,
        repair=args.repair,
        progress=not args.quiet,
    )
    for converted in results:
        print(converted.summary())
    print(f"wrote {redact(args.out)} in {time.perf_counter() - started:.2f}s")
    return 0


def _info(args: argparse.Namespace) -> int:
    import pandas as pd

    from makerlab.data.archive import list_archive
    from makerlab.data.storage import existing, redact

    existing(args.archive)
    frame = list_archive(args.archive)
    if frame.empty:
        print(f"{redact(args.archive)}: empty archive")
        return 1
    with pd.option_context("display.width", 200, "display.max_rows", 500):
        print(frame.to_string(index=False))
    return 0


def _validate(args: argparse.Namespace) -> int:
    from makerlab.data.storage import redact
    from makerlab.data.validate import validate_archive

    report = validate_archive(args.archive, fix=args.fix, spool=args.spool)
    for line in report.fixed:
        print(f"FIXED {line}")
    for line in report.problems:
        print(f"ERROR {line}")
    for line in report.notes:
        print(f"NOTE {line}")
    shown = redact(args.archive)
    print(f"{shown}: {'OK' if report.ok else f'{len(report.problems)} problem(s)'}")
    return 0 if report.ok else 1


def _record(args: argparse.Namespace) -> int:
    import asyncio

    from makerlab.data.storage import redact
    from makerlab.live.recorder import record

    symbols = [s.strip() for s in args.symbols.split(",") if s.strip()]
    started = time.perf_counter()
    recorder = asyncio.run(record(args.exchange, symbols, args.depth, args.out,
                                  base_url=args.base_url, env=args.env,
                                  duration=args.duration, spool=args.spool))
    print(f"recorded {recorder.rows_received} rows of {args.exchange} "
          f"{','.join(symbols)} in {time.perf_counter() - started:.1f}s; committed "
          f"{recorder.rows_committed} rows into {len(recorder.hour_files)} hour files of "
          f"{redact(args.out)}")
    return 0


def _report(args: argparse.Namespace) -> int:
    from pathlib import Path

    from makerlab.analytics.record import RunRecord
    from makerlab.analytics.report import CODE_FILE, simulation_report

    run = Path(args.run)
    if not (run / "config.json").is_file():
        print(f"makerlab: error: {run} is not a saved run (no config.json); save one with "
              "Replayer(..., run_dir=...) or replayer.save(dir)", file=sys.stderr)
        return 2
    code = run / CODE_FILE
    written = simulation_report(RunRecord.load(run), args.out or run / "report",
                                code_file=code if code.is_file() else None,
                                html=not args.no_html)
    for path in written:
        print(f"wrote {path}")
    return 0


def _sweep(args: argparse.Namespace) -> int:
    from makerlab.sweep import sweep
    from makerlab.sweep.search import objective_column
    from makerlab.sweep.space import parse_params

    result = sweep(args.script, parse_params(args.param), out=args.out, args=args.script_args,
                   start=args.start, end=args.end, search=args.search, trials=args.trials,
                   objective=args.objective, backend=args.backend, workers=args.workers,
                   address=args.address, seed=args.seed, progress=not args.quiet,
                   report=not args.no_report, archive=args.archive)
    table, failed = result.table, result.failed
    for row in failed.itertuples(index=False):
        print(f"config {row.config} failed: {row.error}")
    column = objective_column(table.columns, args.objective)
    ok = table[table.status == "ok"]
    if column is not None and ok[column].notna().any():
        best = ok.loc[ok[column].astype(float).idxmax()]
        values = ", ".join(f"{name}={best[name]}" for name in result.space)
        print(f"best {column} = {best[column]:.6g}: config {best.config} ({values})")
    print(f"{len(table) - len(failed)}/{len(table)} configurations ran in "
          f"{result.wall_s:.1f}s; wrote {', '.join(str(p) for p in result.files.values())}")
    return 0 if len(ok) else 1


def _specs(args: argparse.Namespace) -> int:
    from pathlib import Path

    from makerlab.core.instruments import load_specs
    from makerlab.data.specs import SOURCES, default_cache_dir, read_spec_dir

    cache = Path(args.cache) if args.cache else default_cache_dir()
    found = [("cache", spec) for spec in read_spec_dir(cache).values()]
    found += [("bundled", spec) for spec in load_specs().values()]
    wanted = [(source, spec) for source, spec in found if _matches(spec, args.markets)]
    wanted.sort(key=lambda row: (row[1].exchange, row[1].symbol, SOURCES.index(row[0])))
    for source, spec in wanted:
        print(f"{source:8} {spec.exchange:14} {spec.symbol:12} {spec.kind:18} "
              f"tick {spec.tick_size:<8} lot {spec.lot_size:<8} "
              f"min notional {spec.min_notional}")
    print(f"({len(wanted)} specs; cache: {cache}; a replay takes the first of: specs passed, "
          "cache, bundled, inferred from the data)")
    return 0


def _matches(spec: InstrumentSpec, markets: Sequence[str]) -> bool:
    """``spec`` is one of ``markets`` (``exchange`` or ``exchange/symbol``), or no filter."""
    return not markets or spec.exchange in markets or \
        f"{spec.exchange}/{spec.symbol}" in markets


def _paper(args: argparse.Namespace) -> int:
    import asyncio

    from makerlab.paper import PaperExchange, serve_until_signalled
    from makerlab.paper.private import load_credentials
    from makerlab.paper.trading import TradingConfig, parse_latency, parse_queue_model

    serve = {}
    for pair in args.serve:
        protocol, sep, exchange = pair.partition("=")
        if not sep or not protocol or not exchange:
            raise ConfigError(f"--serve takes PROTOCOL=EXCHANGE (e.g. bybit=binance), got {pair!r}")
        serve[protocol] = exchange
    trading = TradingConfig(parse_latency(args.latency), _fee(args.maker_fee, "maker"),
                            _fee(args.taker_fee, "taker"), _fee(args.balance, "balance"),
                            parse_queue_model(args.queue_model))
    page = None
    if args.page is not None:
        from makerlab.monitor import PageConfig

        page = PageConfig(host=args.page_host, port=args.page, token=args.page_token or
                          os.environ.get("MAKERLAB_PAGE_TOKEN") or None)
    elif args.page_host != "127.0.0.1" or args.page_token:
        raise ConfigError("--page-host and --page-token go with --page")
    paper = PaperExchange(args.archive, args.start, args.end, speed=args.speed,
                          faults=args.faults, port=args.port, serve=serve,
                          credentials=load_credentials(args.key_file), trading=trading,
                          lockstep=args.lockstep, page=page)
    asyncio.run(serve_until_signalled(paper, lambda line: print(line, flush=True)))
    return 0


def _parity(args: argparse.Namespace) -> int:
    from makerlab.parity import main_parity

    return main_parity(args.script, args.archive, args.start, args.end, args.exchange)


def _fee(text: str, what: str) -> Decimal:
    try:
        return Decimal(text)
    except ArithmeticError:
        raise ConfigError(f"--{what.replace('_', '-')} takes a number, got {text!r}") from None


def build_parser() -> argparse.ArgumentParser:
    from makerlab.data.convert import SOURCES

    parser = argparse.ArgumentParser(prog="makerlab", description=__doc__.split("\n")[0])
    parser.add_argument("-v", "--verbose", action="store_true", help="log repairs and progress")
    sub = parser.add_subparsers(dest="command", required=True)

    conv = sub.add_parser("convert", help="convert real captures into a makerlab archive")
    conv.add_argument("source", choices=sorted(SOURCES))
    conv.add_argument("inputs", nargs="+", help="capture files (.gz read transparently)")
    conv.add_argument("--out", required=True, help="archive root (local path or URL)")
    conv.add_argument("--exchange", help="override the inferred exchange id")
    conv.add_argument("--symbol", help="override the inferred symbol")
    conv.add_argument("--depth", type=int, default=20, help="levels per materialised snapshot")
    conv.add_argument("--repair", action="store_true",
                      help="repair bad input (every repair is counted and logged) "
                           "instead of stopping at the first problem")
    conv.add_argument("--quiet", action="store_true", help="no progress bar")
    conv.set_defaults(handler=_convert)

    info = sub.add_parser("info", help="list what an archive holds")
    info.add_argument("archive")
    info.set_defaults(handler=_info)

    val = sub.add_parser("validate", help="check every file of an archive")
    val.add_argument("archive")
    val.add_argument("--fix", action="store_true",
                     help="first complete interrupted writes and delete their leftovers "
                          "(only while no writer is running)")
    val.add_argument("--spool", help="the recorders' local spool, if not the default "
                                     "(docs/recorder.md)")
    val.set_defaults(handler=_validate)

    rec = sub.add_parser("record", help="record live market data into an archive")
    rec.add_argument("--exchange", required=True,
                     help="exchange id: binance (USD-M), binance_spot, bybit, hyperliquid, "
                          "paradex, woox")
    rec.add_argument("--symbols", required=True, help="comma-separated venue symbols")
    rec.add_argument("--depth", type=int, default=20, help="levels per book_snapshot row")
    rec.add_argument("--out", required=True,
                     help="archive root: a local directory or a URL (s3://bucket/archive)")
    rec.add_argument("--spool", help="local directory of the write-ahead segments and the "
                                     "health log (default: the archive's _makerlab/, or "
                                     "~/.cache/makerlab/spool/... for a URL)")
    rec.add_argument("--base-url", help="the venue's REST base (websocket derived), e.g. "
                                        "a paper exchange: http://127.0.0.1:P/binance")
    rec.add_argument("--env", help="mainnet (default), testnet, demo or paper")
    rec.add_argument("--duration", type=float,
                     help="seconds to record (default: until SIGINT/SIGTERM)")
    rec.set_defaults(handler=_record)

    rep = sub.add_parser("report", help="rebuild the simulation report of a saved run")
    rep.add_argument("run", help="a run folder saved by Replayer(run_dir=...) or .save()")
    rep.add_argument("--out", help="output folder (default: RUN/report)")
    rep.add_argument("--no-html", action="store_true", help="PDF only")
    rep.set_defaults(handler=_report)

    _add_sweep(sub)

    specs = sub.add_parser("specs", help="print the cached and bundled instrument specs")
    specs.add_argument("markets", nargs="*", metavar="MARKET",
                       help="only these: EXCHANGE or EXCHANGE/SYMBOL")
    specs.add_argument("--cache", help="spec cache directory (default $MAKERLAB_SPEC_CACHE "
                                       "or ~/.cache/makerlab/specs)")
    specs.set_defaults(handler=_specs)

    paper = sub.add_parser("paper", help="serve an archive over the public protocols of "
                                         "Binance, Bybit and Hyperliquid on 127.0.0.1")
    paper.add_argument("--archive", required=True, help="archive root")
    paper.add_argument("--start", required=True, help="first hour, YYYY-MM-DD:HH")
    paper.add_argument("--end", required=True, help="last hour, YYYY-MM-DD:HH (inclusive)")
    paper.add_argument("--speed", type=float, default=1.0,
                       help="1 real time, 10 ten times faster, 0 as fast as clients read")
    paper.add_argument("--port", type=int, default=0, help="0 picks a free port")
    paper.add_argument("--faults", help="per-message fault probabilities, e.g. "
                                        "'drop=0.01,duplicate=0.01,reorder=0.01,gap=0.005,"
                                        "stale_snapshot=0.2,disconnect=0.001,seed=7'")
    paper.add_argument("--serve", action="append", default=[], metavar="PROTOCOL=EXCHANGE",
                       help="serve archive exchange EXCHANGE over PROTOCOL (binance, "
                            "binance_spot, bybit, hyperliquid); repeatable")
    paper.add_argument("--key-file", help="JSON {protocol: {key, secret}} of the accounts "
                                          "the private side serves (also MAKERLAB_PAPER_"
                                          "<PROTOCOL>_KEY / _SECRET)")
    paper.add_argument("--latency", help="ms on every channel ('0'), or CHANNEL=MS,... "
                                         "(req_private=5,ack_private=5; others: the "
                                         "Replayer's defaults, 100 public / 50 private)")
    paper.add_argument("--queue-model", help="risk_averse (default), power[:n], power2[:n], "
                                             "power3[:n], log, log2")
    paper.add_argument("--maker-fee", default="0.0001", help="fraction of notional "
                                                             "(negative: rebate)")
    paper.add_argument("--taker-fee", default="0.0003", help="fraction of notional")
    paper.add_argument("--balance", default="10000", help="starting balance of each "
                                                          "account (quote currency)")
    paper.add_argument("--lockstep", action="store_true",
                       help="play at one client's pace in the Replayer's virtual time "
                            "(makerlab parity; see docs/paper.md)")
    paper.add_argument("--page", type=int, nargs="?", const=8765, default=None,
                       metavar="PORT", help="serve the monitoring page of the traded "
                       "accounts (the venue's side; its kill switch halts them) on PORT "
                       "(default 8765; 0 picks a free port); docs/monitor.md")
    paper.add_argument("--page-host", default="127.0.0.1",
                       help="the page's bind address (not 127.0.0.1: --page-token required)")
    paper.add_argument("--page-token", help="the page's access token (also "
                       "MAKERLAB_PAGE_TOKEN; default: made up, printed in the page's URL)")
    paper.set_defaults(handler=_paper)

    parity = sub.add_parser("parity", help="run a strategy script in the Replayer and live "
                                           "against the paper exchange; compare the fills")
    parity.add_argument("script", help="the script (run as 'SCRIPT 0' and 'SCRIPT 1')")
    parity.add_argument("--archive", required=True, help="archive root")
    parity.add_argument("--start", required=True, help="first hour, YYYY-MM-DD:HH")
    parity.add_argument("--end", required=True, help="last hour, YYYY-MM-DD:HH (inclusive)")
    parity.add_argument("--exchange", default="binance",
                        help="the traded exchange (binance, bybit or hyperliquid)")
    parity.set_defaults(handler=_parity)
    return parser


def _add_sweep(sub: argparse._SubParsersAction) -> None:
    from makerlab.sweep.backends import BACKENDS

    sw = sub.add_parser("sweep", help="run a backtest script once per parameter configuration "
                                      "(docs/sweep.md)")
    sw.add_argument("script", help="the backtest script (it plays one Replayer)")
    sw.add_argument("script_args", nargs="*", metavar="ARGS",
                    help="the script's own arguments, right after it (0: the tutorial's "
                         "backtest mode; options starting with - need the Python API's args=)")
    sw.add_argument("--param", action="append", default=[], metavar="NAME=VALUES",
                    help="V1,V2,... or a range LOW:HIGH[:STEP|:log]; repeat per parameter")
    sw.add_argument("--start", help="the script's start parameter, e.g. 2024-08-08:23")
    sw.add_argument("--end", help="the script's end parameter")
    sw.add_argument("--archive", help="the archive the script reads, a path or URL "
                                      "(s3://bucket/archive): its MAKERLAB_ARCHIVE")
    sw.add_argument("--search", choices=["grid", "optuna"], default="grid")
    sw.add_argument("--trials", type=int, help="configurations optuna tries")
    sw.add_argument("--objective", default="pnl",
                    help="statistic to maximise and plot: pnl, sharpe, ... or EXC.KEY")
    sw.add_argument("--backend", choices=BACKENDS,
                    help="default: local (process pool), or ray with --address")
    sw.add_argument("--address", help="join the Ray cluster at this address")
    sw.add_argument("--workers", type=int, help="configurations at once (default: the cores)")
    sw.add_argument("--seed", type=int, default=0, help="optuna sampler seed")
    sw.add_argument("--out", required=True, help="output folder")
    sw.add_argument("--no-report", action="store_true", help="no summary plot and report")
    sw.add_argument("--quiet", action="store_true", help="no progress bar")
    sw.set_defaults(handler=_sweep)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    try:
        return args.handler(args)
    except MakerlabError as error:
        print(f"makerlab: error: {error}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # the reader went away (``| head``): stop quietly
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    except OSError as error:  # a missing or unreadable input: its message names the path
        from makerlab.data.storage import redact

        where = error.filename if error.filename is not None else error
        reason = error.strerror or type(error).__name__
        print(f"makerlab: error: {redact(f'{where}: {reason}')}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
