"""kill -9 during ``makerlab convert`` and ``makerlab validate --fix``.

The archive starts with a prefix of the bundled Binance capture converted (so the full
conversion merges into, and replaces, every one of its 8 hour files). A child process runs
the real CLI and is SIGKILLed either right before a chosen filesystem operation (the phase
boundaries of a commit, deterministically) or after a seeded random delay. Then:

- validate reports exactly the interrupted write (every problem names its commit), or the
  archive equals the state before the conversion (leftover staged files aside) or after it;
- the loaders return the before or after data of each dataset, or raise DataError, never
  anything else (and always raise on a dataset an unfinished commit touches);
- re-running the conversion completes it: validate is clean, no ``.tmp-`` file is left,
  every dataset equals an uninterrupted conversion.
"""

from __future__ import annotations

import gzip
import os
import random
import shutil
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pytest

from makerlab.data import manifest
from makerlab.data.archive import list_archive, read_table
from makerlab.data.convert import convert
from makerlab.data.storage import resolve
from makerlab.data.validate import validate_archive
from makerlab.errors import DataError

SAMPLES = Path(__file__).resolve().parents[1] / "samples" / "binance"
CAPTURES = sorted(SAMPLES.glob("*.gz"))
PREFIX_LINES = 1500

# Run the CLI; SIGKILL this very process right before occurrence N (0-based) of the
# storage operation OP on a path containing PART. OP "none" never kills.
CHILD = r"""
import os, signal, sys
from makerlab.data.storage import Root

op, part, occurrence = sys.argv[1], sys.argv[2], int(sys.argv[3])
seen = [0]

def hook(name):
    real = getattr(Root, name)
    def call(self, *args):
        if name == op and part in args[0]:
            if seen[0] == occurrence:
                os.kill(os.getpid(), signal.SIGKILL)
            seen[0] += 1
        return real(self, *args)
    setattr(Root, name, call)

for name in ("write_bytes", "move", "delete"):
    hook(name)
from makerlab.cli import main
sys.exit(main(sys.argv[4:]))
"""

# (operation, path part, occurrence) -> what the archive must look like after the kill.
KILL_POINTS = {
    ("write_bytes", ".parquet.tmp-", 3): "before",  # staging: 3 of 8 files staged
    ("write_bytes", "/_makerlab/pending/", 0): "before",  # all staged, no journal yet
    ("move", ".parquet.tmp-", 0): "interrupted",  # journal written, nothing moved
    ("move", ".parquet.tmp-", 5): "interrupted",  # 5 of 8 files moved into place
    ("write_bytes", "/_makerlab/manifest/", 0): "interrupted",  # all moved, no shard
    ("move", "/_makerlab/manifest/", 3): "interrupted",  # 3 of 8 shards rewritten
    ("delete", "/_makerlab/pending/", 0): "interrupted",  # all done but the journal
}
RANDOM_KILLS = 1


@dataclass(frozen=True)
class States:
    pre: Path
    before: dict[tuple, pa.Table]
    after: dict[tuple, pa.Table]


def tables(root: Path) -> dict[tuple, pa.Table]:
    listing = list_archive(root)
    keys = {(r.kind, r.exchange, r.symbol, r.depth or None) for r in listing.itertuples()}
    return {key: load(root, key) for key in sorted(keys, key=str)}


def load(root: Path, key: tuple) -> pa.Table | DataError:
    kind, exchange, symbol, depth = key
    try:
        return read_table(root, kind, exchange, symbol, depth=depth)
    except DataError as error:
        return error


def dataset(key: tuple) -> str:
    kind, exchange, symbol, depth = key
    level = f"depth={depth}/" if depth else ""
    return f"kind={kind}/{level}exchange={exchange}/symbol={symbol}/"


@pytest.fixture(scope="module")
def states(tmp_path_factory) -> States:
    base = tmp_path_factory.mktemp("kill")
    prefixes = []
    for capture in CAPTURES:
        lines = gzip.decompress(capture.read_bytes()).splitlines(keepends=True)
        prefixes.append(base / capture.name)
        prefixes[-1].write_bytes(gzip.compress(b"".join(lines[:PREFIX_LINES])))
    convert("binance", prefixes, base / "pre", progress=False)
    shutil.copytree(base / "pre", base / "post")
    convert("binance", CAPTURES, base / "post", progress=False)
    return States(base / "pre", tables(base / "pre"), tables(base / "post"))


def run(argv: list[str], kill: tuple = ("none", "", 0), delay: float | None = None) -> int:
    command = [sys.executable, "-c", CHILD, kill[0], kill[1], str(kill[2]), *argv]
    child = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                             env={**os.environ, "PYTHONWARNINGS": "ignore"})
    if delay is not None:
        try:
            child.wait(delay)
        except subprocess.TimeoutExpired:
            child.send_signal(signal.SIGKILL)
    _, err = child.communicate(timeout=120)
    assert child.returncode in (0, -signal.SIGKILL), err.decode()
    return child.returncode


def convert_argv(root: Path) -> list[str]:
    return ["convert", "binance", *map(str, CAPTURES), "--out", str(root), "--quiet"]


def judge(root: Path, states: States) -> str:
    """'before', 'after' or 'interrupted'; fails on any other state."""
    report = validate_archive(root)
    pending, _ = manifest.read_pending(resolve(root))
    data = {key: load(root, key) for key in states.after}
    if pending:
        [journal] = pending
        assert report.problems and all(journal.commit.id in p for p in report.problems), \
            report.problems
        touched = {dataset(key) for key in data
                   if any(e.path.startswith(dataset(key)) for e in journal.files)}
        assert touched
        for key, got in data.items():
            if dataset(key) in touched:
                assert isinstance(got, DataError), key
            else:
                assert got.equals(states.before[key]) or got.equals(states.after[key]), key
        return "interrupted"
    assert all("leftover of write" in p or "never committed" in p for p in report.problems)
    if all(isinstance(got, pa.Table) and got.equals(states.before[key])
           for key, got in data.items()):
        return "before"
    assert all(got.equals(states.after[key]) for key, got in data.items())
    assert not report.problems
    return "after"


def assert_completed(root: Path, states: States) -> None:
    report = validate_archive(root)
    assert report.ok and not report.notes, report
    assert not list(root.rglob("*.tmp-*"))
    assert manifest.read_pending(resolve(root)) == ([], [])
    for key, got in tables(root).items():
        assert got.equals(states.after[key]), key


def test_kill_9_during_conversion_leaves_a_state_validate_explains_and_a_rerun_completes(
        states, tmp_path):
    outcomes = {}
    delays = random.Random(20261204).sample(range(70, 170), RANDOM_KILLS)
    points = [*KILL_POINTS.items(), *((("none", "", 0), d / 100) for d in delays)]
    for i, (kill, expected) in enumerate(points):
        root = tmp_path / f"run{i}"
        shutil.copytree(states.pre, root)
        delay = expected if isinstance(expected, float) else None
        code = run(convert_argv(root), kill, delay)
        assert delay is not None or code == -signal.SIGKILL
        outcome = judge(root, states)
        assert delay is not None or outcome == expected, (kill, outcome)
        outcomes[kill if delay is None else f"random kill after {delay:.2f}s"] = outcome
        convert("binance", CAPTURES, root, progress=False)  # the re-run
        assert_completed(root, states)
    print("\n".join(f"{k}: {v}" for k, v in outcomes.items()))


def test_kill_9_during_validate_fix_leaves_a_state_the_next_fix_completes(states, tmp_path):
    interrupted = tmp_path / "interrupted"
    shutil.copytree(states.pre, interrupted)
    run(convert_argv(interrupted), ("move", ".parquet.tmp-", 5))
    for i, kill in enumerate([("move", ".parquet.tmp-", 1),
                              ("write_bytes", "/_makerlab/manifest/", 2)]):
        root = tmp_path / f"fix{i}"
        shutil.copytree(interrupted, root)
        assert run(["validate", "--fix", str(root)], kill) == -signal.SIGKILL
        assert judge(root, states) == "interrupted"
        assert validate_archive(root, fix=True).fixed
        assert_completed(root, states)
