"""``python -m tests.data.mutation [--seeds N] [--converter NAME] [--kind NAME]``: run the
mutation campaign, print the outcome table and every failure; exit 1 on any failure."""

from __future__ import annotations

import argparse
import sys
import time

from .harness import FAILURES, run
from .mutations import MUTATIONS


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seeds", type=int, default=10, help="seeds per mutation kind")
    parser.add_argument("--first-seed", type=int, default=0)
    parser.add_argument("--converter", action="append",
                        choices=["binance", "tardis", "hyperliquid", "lobster"])
    parser.add_argument("--kind", action="append", choices=sorted(MUTATIONS))
    args = parser.parse_args()
    start = time.perf_counter()
    report = run(range(args.first_seed, args.first_seed + args.seeds),
                 converters=set(args.converter or ()), kinds=set(args.kind or ()))
    print(report.table())
    for failure in report.failures:
        print(failure)
    cases = sum(report.counts.values())
    print(f"{cases} conversions in {time.perf_counter() - start:.0f} s")
    return 1 if any(report.total(o) for o in FAILURES) else 0


if __name__ == "__main__":
    sys.exit(main())
