"""Run mutated captures through their converter and classify every outcome."""

from __future__ import annotations

import logging
import random
import tempfile
import traceback
import warnings
from collections import Counter
from collections.abc import Iterable
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from makerlab.data.convert import reader
from makerlab.errors import DataError, MakerlabError

from .captures import Capture, load_captures
from .invariants import Baseline, violations
from .mutations import MUTATIONS

OUTCOMES = ("clean", "identical", "different", "wrong", "vague", "crash")
FAILURES = ("wrong", "vague", "crash")
MODES = {"strict": False, "repair": True}


@dataclass
class Report:
    """Outcome counts per (mode, converter, mutation), and an example of each failure."""

    counts: Counter = field(default_factory=Counter)
    failures: list[str] = field(default_factory=list)

    def add(self, mode: str, capture: Capture, kind: str, seed: int, outcome: str,
            detail: str) -> None:
        self.counts[mode, capture.converter, kind, outcome] += 1
        if outcome in FAILURES:
            self.failures.append(f"{mode} {capture.label} {kind} seed {seed}: {outcome}: "
                                 f"{detail}")

    def total(self, outcome: str, mode: str | None = None) -> int:
        return sum(n for (m, _, _, o), n in self.counts.items()
                   if o == outcome and mode in (None, m))

    def table(self) -> str:
        """The outcome counts: a row per converter and mutation, strict then repair."""
        keys = sorted({(c, k) for (_, c, k, _) in self.counts})
        head = f"{'converter':<12}{'mutation':<16}"
        for mode in MODES:
            head += f"| {mode:<7}" + "".join(f"{o:>10}" for o in OUTCOMES) + " "
        lines = [head, "-" * len(head)]
        for converter, kind in keys:
            line = f"{converter:<12}{kind:<16}"
            for mode in MODES:
                line += "| " + " " * 7 + "".join(
                    f"{self.counts[mode, converter, kind, o]:>10}" for o in OUTCOMES) + " "
            lines.append(line)
        total = f"{'all':<28}"
        for mode in MODES:
            total += "| " + " " * 7 + "".join(f"{self.total(o, mode):>10}"
                                              for o in OUTCOMES) + " "
        return "\n".join([*lines, "-" * len(head), total])


def run(seeds: Iterable[int], *, converters: set[str] | None = None,
        kinds: set[str] | None = None) -> Report:
    """Every mutation kind with every seed on every capture, strict and repairing."""
    report = Report()
    with _quiet(), tempfile.TemporaryDirectory() as tmp:
        for capture in load_captures():
            if converters and capture.converter not in converters:
                continue
            baseline = {mode: _convert(capture, _written(capture, None, Path(tmp)), repair)
                        for mode, repair in MODES.items()}
            base = Baseline.of(baseline["strict"])
            for kind, mutate in MUTATIONS.items():
                if kinds and kind not in kinds:
                    continue
                for seed in seeds:
                    files = mutate(capture, random.Random(f"{capture.label}/{kind}/{seed}"))
                    if files is None:
                        continue
                    paths = _written(capture, files, Path(tmp) / f"{kind}{seed}")
                    for mode, repair in MODES.items():
                        outcome, detail = classify(capture, paths, repair, baseline[mode], base)
                        report.add(mode, capture, kind, seed, outcome, detail)
    return report


def classify(capture: Capture, paths: list[Path], repair: bool, baseline: list,
             base: Baseline) -> tuple[str, str]:
    """``(outcome, detail)`` of converting ``paths``."""
    try:
        converted = _convert(capture, paths, repair)
    except DataError as e:
        named = e.line is not None and any(p.name in str(e.source) for p in paths)
        return ("clean" if named else "vague"), str(e)
    except MakerlabError as e:
        return "vague", f"{type(e).__name__}: {e}"
    except Exception as e:  # any other exception is the finding
        return "crash", "".join(traceback.format_exception_only(e)).strip()
    if _same(converted, baseline):
        return "identical", ""
    faults = violations(converted, base, capture.converter)
    return ("wrong", "; ".join(faults)) if faults else ("different", "")


def _convert(capture: Capture, paths: list[Path], repair: bool) -> list:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        warnings.filterwarnings("ignore", category=DeprecationWarning, module="numba")
        return reader(capture.converter)(paths, repair=repair, progress=False)


def _same(converted: list, baseline: list) -> bool:
    if [(c.exchange, c.symbol) for c in converted] != [(c.exchange, c.symbol) for c in baseline]:
        return False
    return all(c.tables.keys() == b.tables.keys()
               and all(c.tables[k].equals(b.tables[k], check_metadata=True) for k in c.tables)
               for c, b in zip(converted, baseline, strict=True))


def _written(capture: Capture, files: dict[str, bytes] | None, folder: Path) -> list[Path]:
    """The capture's files (``files`` instead where given) written into ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    files = files or {f.name: f.encode() for f in capture.files}
    paths = []
    for name, data in files.items():
        (folder / name).write_bytes(data)
        paths.append(folder / name)
    return paths


@contextmanager
def _quiet():
    """Repairs log a warning each; a campaign makes thousands."""
    logger = logging.getLogger("makerlab")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)
