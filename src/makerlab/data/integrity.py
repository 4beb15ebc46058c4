"""Whole-archive checks behind ``makerlab validate`` (and its ``--fix``).

Every path is checked against the layout; every hour file is read (readable, schema, its
rows in its own hour, the dataset its metadata names, then the content checks) and
compared with the manifest: missing, duplicated, moved, extra and changed files;
unfinished and cut-short commits, leftover staged files and half-written instruments;
segments a killed recorder left uncommitted (:mod:`makerlab.data.segments`).
Nothing here raises on a damaged archive: each problem is one line naming its path.
"""

from __future__ import annotations

import logging
import os
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
import pyarrow.fs as pafs

from makerlab.data import manifest
from makerlab.data.archive import check_hour, read_hour_bytes
from makerlab.data.layout import HourPath, StagedPath, StrayPath, classify
from makerlab.data.manifest import META_DIR, FileEntry, Incomplete, Pending, Shard
from makerlab.data.segments import recover_segments, segment_sessions
from makerlab.data.storage import Root, existing, resolve, staged_name
from makerlab.errors import DataError

log = logging.getLogger(__name__)

__all__ = ["ArchiveReport", "TableCheck", "check_archive", "repair_archive"]

TableCheck = Callable[[str, pa.Table, str], None]
"""``check(kind, table, source)``: raise DataError at the table's first problem."""


@dataclass(frozen=True)
class ArchiveReport:
    """What ``makerlab validate`` found: problems (the archive is not sound), notes (what
    could not be checked) and what ``--fix`` repaired; one line each, naming the path."""

    problems: tuple[str, ...]
    notes: tuple[str, ...] = ()
    fixed: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return not self.problems


# --------------------------------------------------------------------------- gathering


@dataclass(frozen=True)
class _Scan:
    """Every path of the archive, sorted into the layout's categories."""

    hours: tuple[tuple[HourPath, pafs.FileInfo], ...]
    staged: tuple[StagedPath, ...]
    strays: tuple[StrayPath, ...]
    meta: tuple[str, ...]


def _scan(arc: Root) -> _Scan:
    hours: list[tuple[HourPath, pafs.FileInfo]] = []
    staged: list[StagedPath] = []
    strays: dict[str, StrayPath] = {}
    meta: list[str] = []
    for info in arc.listing(arc.base):
        rel = arc.rel(info.path)
        is_dir = info.type == pafs.FileType.Directory
        if rel.split("/", 1)[0] == META_DIR:
            meta.extend([] if is_dir else [rel])
            continue
        what = classify(rel, is_dir=is_dir)
        if isinstance(what, HourPath):
            hours.append((what, info))
        elif isinstance(what, StagedPath):
            staged.append(what)
        elif isinstance(what, StrayPath):
            strays.setdefault(what.rel, what)
    hours.sort(key=lambda found: found[0].rel)
    return _Scan(tuple(hours), tuple(staged), tuple(strays.values()), tuple(sorted(meta)))


@dataclass(frozen=True)
class _State:
    """The manifest as found: shards, unreadable shards, journals, its own stray files."""

    shards: dict[str, Shard]
    broken: frozenset[str]
    pending: tuple[Pending, ...]
    incomplete: tuple[Incomplete, ...]
    staged: tuple[tuple[str, str], ...]
    problems: tuple[str, ...]

    @property
    def entries(self) -> dict[str, FileEntry]:
        return {path: e for shard in self.shards.values() for path, e in shard.files.items()}

    @property
    def datasets(self) -> set[str]:
        return {key.rsplit("/", 1)[0] for key in [*self.shards, *self.broken]}


def _read_state(arc: Root, meta: tuple[str, ...]) -> _State:
    shards, broken, staged, problems = {}, set(), [], []
    for rel in meta:
        what = manifest.meta_file(rel)
        if what is None:
            problems.append(_line(arc, rel, "unexpected file in the manifest directory"))
        elif what[0] == "staged":
            staged.append((rel, what[1]))
        elif what[0] == "shard":
            try:
                shard = manifest.read_shard(arc, what[1])
            except DataError as error:
                broken.add(what[1])
                problems.append(str(error))
            else:
                shards.update({shard.key: shard} if shard is not None else {})
    pending, incomplete = manifest.read_pending(arc)
    return _State(shards, frozenset(broken), tuple(pending), tuple(incomplete), tuple(staged),
                  tuple(problems))


@dataclass(frozen=True)
class _Facts:
    """One hour file as read: its sha256 (None if unreadable), rows, whether it sits in
    the wrong place, and its other problems (each a full line)."""

    where: HourPath
    sha256: str | None
    rows: int
    misplaced: str | None
    problems: tuple[str, ...]


def _examine(arc: Root, where: HourPath, info: pafs.FileInfo, check: TableCheck) -> _Facts:
    shown = arc.show(info.path)
    try:
        data = arc.read_bytes(info.path)
        table = read_hour_bytes(data, where, shown)
    except FileNotFoundError:
        return _Facts(where, None, 0, None, (f"{shown}: disappeared while being validated",))
    except DataError as error:
        return _Facts(where, None, 0, None, (str(error),))
    try:
        check(where.kind, table, shown)
    except DataError as error:
        problems: tuple[str, ...] = (str(error),)
    else:
        problems = ()
    return _Facts(where, manifest.sha256(data), table.num_rows,
                  _misplaced(table, where, shown), problems)


def _misplaced(table: pa.Table, where: HourPath, shown: str) -> str | None:
    """Why ``table`` does not belong at ``where`` (another hour, another dataset), if so."""
    try:
        check_hour(table, where.hour, shown)
    except DataError as error:
        return str(error)
    meta = table.schema.metadata or {}
    said = {k: meta.get(f"makerlab.{k}".encode(), b"").decode()
            for k in ("kind", "exchange", "symbol", "depth")}
    if not said["kind"]:
        return None  # not written by makerlab: nothing to compare
    expected = {"kind": where.kind, "exchange": where.exchange, "symbol": where.symbol,
                "depth": str(where.depth or "")}
    wrong = [f"{k}={said[k]!r}" for k in expected if said[k] != expected[k]]
    if not wrong:
        return None
    return (f"{shown}: its metadata says {', '.join(wrong)}: the file was moved or copied "
            "here from another dataset")


# --------------------------------------------------------------------------- judging


@dataclass(frozen=True)
class _Context:
    arc: Root
    state: _State
    entries: dict[str, FileEntry]
    sha_of: dict[str, str]
    by_sha: dict[str, list[str]]
    recorded_by_sha: dict[str, list[str]]
    staged: frozenset[str]
    pending_paths: frozenset[str]

    def show(self, rel: str) -> str:
        return self.arc.show(self.arc.path(rel))

    def covered(self, where: HourPath) -> bool:
        """Whether the manifest speaks for this file's day (its dataset has shards)."""
        key = where.rel.rsplit("/", 1)[0]
        return where.dataset in self.state.datasets and key not in self.state.broken


def _context(arc: Root, scan: _Scan, state: _State, facts: list[_Facts]) -> _Context:
    entries = state.entries
    sha_of = {f.where.rel: f.sha256 for f in facts if f.sha256 is not None}
    by_sha, recorded = defaultdict(list), defaultdict(list)
    for rel, digest in sha_of.items():
        by_sha[digest].append(rel)
    for rel, entry in sorted(entries.items()):
        recorded[entry.sha256].append(rel)
    staged = frozenset([s.rel for s in scan.staged] + [rel for rel, _ in state.staged])
    pending = frozenset(e.path for journal in state.pending for e in journal.files)
    return _Context(arc, state, entries, sha_of, dict(by_sha), dict(recorded), staged, pending)


def _line(arc: Root, rel: str, message: str) -> str:
    return f"{arc.show(arc.path(rel))}: {message}"


def _file_lines(ctx: _Context, facts: _Facts) -> list[str]:
    """The problems of one hour file, the manifest's view included."""
    own = [*([facts.misplaced] if facts.misplaced else []), *facts.problems]
    if facts.sha256 is None or facts.where.rel in ctx.pending_paths:
        return own
    entry = ctx.entries.get(facts.where.rel)
    if _intact(ctx, facts, entry):
        return own
    source = _same_bytes(ctx, facts)
    if source is not None:
        return [_copy_line(ctx, facts, source, entry)]
    unrecorded = _unrecorded_line(ctx, facts, entry)
    return own + ([unrecorded] if unrecorded else [])


def _intact(ctx: _Context, facts: _Facts, entry: FileEntry | None) -> bool:
    if entry is not None:
        return entry.sha256 == facts.sha256
    return not ctx.covered(facts.where) and facts.misplaced is None


def _same_bytes(ctx: _Context, facts: _Facts) -> str | None:
    """Another path (existing first, else recorded) holding exactly these bytes."""
    digest = facts.sha256 or ""
    others = [*ctx.by_sha.get(digest, []), *ctx.recorded_by_sha.get(digest, [])]
    return next((rel for rel in others if rel != facts.where.rel), None)


def _copy_line(ctx: _Context, facts: _Facts, source: str, entry: FileEntry | None) -> str:
    lost = f"; the {entry.rows} rows committed under this name are gone" if entry else ""
    if source in ctx.sha_of:
        message = f"duplicate: the same bytes as {ctx.show(source)} (a copy of it)"
    else:
        message = f"moved: the same bytes as the missing {ctx.show(source)}"
    return _line(ctx.arc, facts.where.rel, message + lost)


def _unrecorded_line(ctx: _Context, facts: _Facts, entry: FileEntry | None) -> str | None:
    if entry is not None:
        return _line(ctx.arc, facts.where.rel,
                     f"changed after it was committed: {facts.rows} rows, sha256 "
                     f"{(facts.sha256 or '')[:12]}..., but the manifest recorded {entry.rows} "
                     f"rows, sha256 {entry.sha256[:12]}... (commit {entry.commit})")
    if ctx.covered(facts.where):
        return _line(ctx.arc, facts.where.rel,
                     "extra: not in the manifest (written by another tool, or by a write "
                     "that never committed)")
    return None


def _missing_lines(ctx: _Context) -> Iterator[str]:
    for rel, entry in sorted(ctx.entries.items()):
        if rel in ctx.sha_of or rel in ctx.pending_paths:
            continue
        if ctx.arc.is_file(ctx.arc.path(rel)):
            continue  # present but unreadable: reported with the file
        moved = [other for other in ctx.by_sha.get(entry.sha256, []) if other != rel]
        where = f"; the same bytes are at {ctx.show(moved[0])}" if moved else ""
        yield _line(ctx.arc, rel, f"missing: the manifest lists it ({entry.rows} rows, commit "
                                  f"{entry.commit}) but the file is gone{where}")


def _pending_lines(ctx: _Context) -> Iterator[str]:
    for journal in ctx.state.pending:
        placed = 0
        for entry in journal.files:
            status, in_place = _pending_status(ctx, journal, entry)
            placed += in_place
            yield _line(ctx.arc, entry.path, f"unfinished write {journal.commit.id}: {status}")
        yield _line(ctx.arc, manifest.journal_rel(journal.commit.id),
                    f"unfinished write {journal.commit.describe()}: {placed} of "
                    f"{len(journal.files)} files in place, manifest not updated; if no "
                    "writer is running it was interrupted: `makerlab validate --fix` or the "
                    "next write to its datasets completes it")


def _pending_status(ctx: _Context, journal: Pending, entry: FileEntry) -> tuple[str, bool]:
    folder, name = entry.path.rsplit("/", 1)
    exists = entry.path in ctx.sha_of or ctx.arc.is_file(ctx.arc.path(entry.path))
    if f"{folder}/{staged_name(name, journal.commit.id)}" in ctx.staged:
        if ctx.sha_of.get(entry.path) == entry.sha256:  # an object store's copy landed
            return "copied into place, its staged copy not yet deleted", True
        previous = " (the file there is the previous version)" if exists else ""
        return f"staged, not yet moved into place{previous}", False
    if ctx.sha_of.get(entry.path) == entry.sha256:
        return "in place, not yet recorded in the manifest", True
    if exists:
        return "the file in place is not the one this write staged", False
    return "lost: neither its staged copy nor the hour file exists", False


def _incomplete_lines(ctx: _Context) -> Iterator[str]:
    for journal in ctx.state.incomplete:
        yield (f"{ctx.arc.show(journal.path)}: write {journal.commit} never committed (its "
               "journal is incomplete), nothing was moved into place: `makerlab validate "
               "--fix` or the next write to its datasets deletes it and its staged files")


def _leftover_lines(ctx: _Context, scan: _Scan) -> Iterator[str]:
    live = {journal.commit.id for journal in ctx.state.pending}
    staged = [(s.rel, s.commit) for s in scan.staged] + list(ctx.state.staged)
    for rel, commit in sorted(staged):
        if commit not in live:
            yield _line(ctx.arc, rel, f"leftover of write {commit}, which never committed: "
                                      "the next write to this dataset or `makerlab validate "
                                      "--fix` deletes it")


def _half_written_lines(ctx: _Context) -> Iterator[str]:
    """Shards that a commit wrote (same day, other kind or instrument) but that lack it."""
    live = {journal.commit.id for journal in ctx.state.pending}
    seen: set[tuple[str, str]] = set()
    for key, shard in sorted(ctx.state.shards.items()):
        for commit, other in _partners(key, shard, live):
            if (other, commit.id) in seen or _knows(ctx.state, other, commit.id):
                continue
            seen.add((other, commit.id))
            yield _line(ctx.arc, other,
                        f"half-written: commit {commit.describe()} wrote this together with "
                        f"{ctx.show(key)}, but this dataset has no record of it (that part "
                        "of the write never completed, or was deleted)")


def _partners(key: str, shard: Shard, live: set[str]) -> Iterator[tuple[manifest.Commit, str]]:
    """(commit, other shard of the same day it wrote) for each finished commit in ``shard``."""
    day = key.rsplit("/", 1)[1]
    for commit in shard.commits.values():
        if commit.id not in live:
            yield from ((commit, other) for other in commit.shards
                        if other != key and other.endswith(f"/{day}"))


def _knows(state: _State, key: str, commit: str) -> bool:
    """Whether shard ``key`` records ``commit`` (an unreadable shard is given the benefit
    of the doubt: it is reported on its own)."""
    shard = state.shards.get(key)
    return key in state.broken or (shard is not None and commit in shard.commits)


def _stray_lines(arc: Root, scan: _Scan) -> Iterator[str]:
    for stray in sorted(scan.strays, key=lambda s: s.rel):
        yield _line(arc, stray.rel, f"stray path: {stray.reason}")


def _notes(ctx: _Context, scan: _Scan) -> list[str]:
    state = ctx.state
    if not state.shards and not state.broken and not state.pending:
        if not scan.hours:
            return []
        return [f"{ctx.arc.shown}: no manifest (written by an older makerlab or another "
                "tool): files were checked one by one, so a missing or extra hour file "
                "cannot be detected; the next write to a dataset adopts its files"]
    uncovered = sorted({where.dataset for where, _ in scan.hours} - state.datasets)
    return [f"{ctx.show(dataset)}: no manifest for this dataset (written by an older "
            "makerlab or another tool): checked file by file" for dataset in uncovered]


def _segment_lines(root: str | os.PathLike, filesystem: Any,
                   spool: str | os.PathLike | None) -> tuple[list[str], list[str]]:
    """(problems, notes): recorder sessions that died with uncommitted rows, and those
    running now."""
    problems, notes = [], []
    for info in segment_sessions(root, spool=spool, filesystem=filesystem):
        if info.alive:
            notes.append(f"{info.path}: recorder session {info.session} is running "
                         f"({info.files} segment files not yet committed)")
        else:
            problems.append(f"{info.path}: uncommitted rows of recorder session "
                            f"{info.session}, which was interrupted ({info.files} segment "
                            "files): `makerlab validate --fix` or the next `makerlab record` "
                            "on this archive commits them")
    return problems, notes


# --------------------------------------------------------------------------- entry points


def check_archive(root: str | os.PathLike, *, check: TableCheck, filesystem: Any = None,
                  spool: str | os.PathLike | None = None) -> ArchiveReport:
    """Every problem of the archive at ``root`` (see the module docstring); ``check`` is
    run on the table of every readable hour file; ``spool``: where recorders keep their
    sessions, if not the default."""
    arc = existing(root, filesystem)
    scan = _scan(arc)
    state = _read_state(arc, scan.meta)
    facts = [_examine(arc, where, info, check) for where, info in scan.hours]
    ctx = _context(arc, scan, state, facts)
    segment_problems, segment_notes = _segment_lines(root, filesystem, spool)
    problems = [
        *_stray_lines(arc, scan),
        *state.problems,
        *(line for f in facts for line in _file_lines(ctx, f)),
        *_missing_lines(ctx),
        *_pending_lines(ctx),
        *_incomplete_lines(ctx),
        *_leftover_lines(ctx, scan),
        *_half_written_lines(ctx),
        *segment_problems,
    ]
    return ArchiveReport(tuple(problems), (*_notes(ctx, scan), *segment_notes))


def repair_archive(root: str | os.PathLike, *, filesystem: Any = None,
                   spool: str | os.PathLike | None = None) -> list[str]:
    """Complete interrupted commits, delete what commits that never happened left
    behind, then commit the segments of interrupted recorder sessions
    (``makerlab validate --fix``; run it while no writer is running).

    Returns one line per repair.
    """
    arc = resolve(root, filesystem)
    done = []
    pending, incomplete = manifest.read_pending(arc)
    for journal in pending:
        try:
            manifest.complete(arc, journal)
        except DataError as error:
            log.warning("%s", error)
            continue
        done.append(f"completed the interrupted write {journal.commit.describe()} "
                    f"({len(journal.files)} files)")
    for stale in incomplete:
        arc.delete(stale.path)
        done.append(f"{arc.show(stale.path)}: deleted the incomplete journal of write "
                    f"{stale.commit}, which never committed")
    live = {journal.commit.id for journal in manifest.read_pending(arc)[0]}
    scan = _scan(arc)
    staged = [(s.rel, s.commit) for s in scan.staged] + list(_read_state(arc, scan.meta).staged)
    for rel, commit in sorted(staged):
        if commit not in live:
            arc.delete(arc.path(rel))
            done.append(_line(arc, rel, f"deleted, left by write {commit}, which never "
                                        "committed"))
    return done + recover_segments(root, spool=spool, filesystem=filesystem)
