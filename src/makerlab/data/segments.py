"""The write-ahead segments of a streaming recorder: rows received but not yet committed
as hour files, kept under ``_makerlab/segments/`` so that a ``kill -9`` loses at most the
last flush (about one second) and never leaves a file that loads wrong.

Layout (one directory per recorder session, in the archive's **spool**)::

    <spool>/segments/<session>/flushed                    the number of the last whole flush
    <spool>/segments/<session>/archive                    the archive it records into
    <spool>/segments/<session>/<dataset>/date=YYYY-MM-DD/HH.<generation>.arrows
    <spool>/health/<exchange>/YYYY-MM-DD.jsonl            the recorder's health log

The spool is a local directory (segments are appended to, and locked with ``flock``): for
an archive on a local disk its own ``_makerlab/``; for an archive elsewhere (``s3://``)
``--spool DIR`` or, by default, ``~/.cache/makerlab/spool/<archive>/``
(``$XDG_CACHE_HOME`` respected; :func:`spool_dir`). Only hour files go to the archive.

Each ``.arrows`` file is an Arrow IPC stream holding rows of one hour file of one dataset
(``<dataset>/date=.../HH.parquet``), one record batch per flush, each batch tagged with its
flush number (batch metadata ``flush``).

Rules:

- **a flush is all or nothing across files**: :meth:`SegmentLog.append` writes one batch per
  (dataset, hour), then replaces ``flushed`` (written aside, renamed). Readers ignore
  batches tagged after ``flushed``, and a tail cut short by a kill, so the kinds of an
  instrument never disagree about which messages were received.
- **a session is alive while its directory is locked**: the recorder holds an exclusive
  ``flock`` on the session directory (created under a hidden name, locked, then renamed,
  so a visible session is never unlocked while its recorder runs). The kernel drops the
  lock when the process dies, however it dies.
- **sealing an hour closes its files**; :func:`commit_segments` writes their rows through
  one :class:`~makerlab.data.archive.ArchiveWriter` commit (every kind and instrument at
  once), then deletes them. Rows of a sealed hour that arrive later go to the next
  generation's file and a later commit merges them in.
- **a dead session is recovered** by :func:`recover_segments` (run by the next recorder on
  the archive, ``makerlab validate --fix`` and ``Feed.squash_archives``): the same commit,
  then the session directory is removed. Committing is idempotent (the archive writer's
  merge drops rows already in an hour file), so a kill during a commit or a recovery is
  repaired by recovering again.

A spool may serve several archives: a session commits into, and is recovered into, the
archive its ``archive`` file names. There is no fsync: a power cut (unlike a kill) can lose
what the page cache held.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import logging
import os
import re
import shutil
import uuid
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import pyarrow as pa
import pyarrow.fs as pafs

from makerlab.data.archive import ArchiveWriter, _split_hours
from makerlab.data.layout import HourPath, classify, hour_file
from makerlab.data.manifest import META_DIR
from makerlab.data.storage import Root, resolve
from makerlab.errors import ConfigError

log = logging.getLogger(__name__)

__all__ = [
    "Committed",
    "SegmentFile",
    "SegmentLog",
    "SessionInfo",
    "commit_segments",
    "recover_segments",
    "segment_sessions",
    "spool_dir",
]

_FLUSHED = "flushed"
_TARGET = "archive"
_SUFFIX = ".arrows"
_FLUSH_KEY = b"flush"


@dataclass(frozen=True)
class SegmentFile:
    """One segment file (``path`` on the root's filesystem) and the hour file its rows
    belong to."""

    path: str
    where: HourPath


@dataclass(frozen=True)
class Committed:
    """What one commit of segments wrote: rows, and the hour files they went to."""

    rows: int
    files: tuple[str, ...]


@dataclass(frozen=True)
class SessionInfo:
    """A session directory found under ``_makerlab/segments/`` (``path`` as the user
    addresses it)."""

    session: str
    path: str
    alive: bool
    files: int


# --------------------------------------------------------------------------- locking


class _Lock:
    """An exclusive ``flock`` on a directory, held until :meth:`release`."""

    def __init__(self, fd: int) -> None:
        self._fd: int | None = fd

    @classmethod
    def take(cls, path: str) -> _Lock | None:
        """The lock of directory ``path``, or None when another holder has it (or the
        directory is gone)."""
        try:
            fd = os.open(path, os.O_RDONLY)
        except FileNotFoundError:
            return None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return None
        return cls(fd)

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing drops the flock
            self._fd = None


def _is_local(arc: Root) -> bool:
    return isinstance(arc.fs, pafs.LocalFileSystem)


def spool_dir(root: str | os.PathLike, spool: str | os.PathLike | None = None, *,
              filesystem: object = None) -> str:
    """The local spool of the archive at ``root`` (see the module docstring)."""
    if spool is not None:
        return os.path.abspath(os.fspath(spool))
    arc = resolve(root, filesystem)
    if _is_local(arc):
        return arc.path(META_DIR)
    cache = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    name = re.sub(r"[^A-Za-z0-9._-]+", "_", arc.shown).strip("_")[:80]
    digest = hashlib.sha256(arc.shown.encode()).hexdigest()[:8]
    return os.path.join(cache, "makerlab", "spool", f"{name}-{digest}")


def _sessions(root: str | os.PathLike, spool: str | os.PathLike | None,
              filesystem: object) -> tuple[Root, str]:
    """The archive and the local directory of its recorder sessions."""
    folder = os.path.join(spool_dir(root, spool, filesystem=filesystem), "segments")
    return resolve(root, filesystem), folder


# --------------------------------------------------------------------------- writing


class _Writer:
    """One segment file: an Arrow IPC stream, one batch per flush, written straight to
    the operating system (no buffering in this process)."""

    def __init__(self, path: str, schema: pa.Schema) -> None:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        self.path = path
        self._sink = pa.OSFile(path, "wb")
        self._stream = pa.ipc.new_stream(self._sink, schema)

    def write(self, table: pa.Table, flush: int) -> None:
        for batch in table.combine_chunks().to_batches():
            self._stream.write_batch(batch, custom_metadata={_FLUSH_KEY: str(flush).encode()})

    def close(self) -> None:
        self._stream.close()
        self._sink.close()


def _session_id() -> str:
    return f"{datetime.now(UTC):%Y%m%dT%H%M%S%fZ}-{os.getpid()}-{uuid.uuid4().hex[:6]}"


class SegmentLog:
    """The write-ahead segments of one recorder session (rules in the module docstring).

    Creating it creates and locks the session directory; :meth:`close` removes it once
    everything was committed, :meth:`abandon` leaves it for recovery.

    Args:
        root: the archive root (local or a URL).
        spool: the local spool (default: :func:`spool_dir`).
    """

    def __init__(self, root: str | os.PathLike, *, spool: str | os.PathLike | None = None,
                 filesystem: object = None) -> None:
        arc, base = _sessions(root, spool, filesystem)
        self.spool = os.path.dirname(base)
        """The spool (local) holding this session and the health log."""
        self.session = _session_id()
        os.makedirs(base, exist_ok=True)
        hidden = f"{base}/.{self.session}.tmp"
        os.mkdir(hidden)
        with open(f"{hidden}/{_TARGET}", "w", encoding="utf-8") as out:
            out.write(_target(arc))
        lock = _Lock.take(hidden)
        assert lock is not None  # nobody else knows the hidden name
        self._lock = lock
        self.path = f"{base}/{self.session}"
        os.rename(hidden, self.path)
        self._writers: dict[str, tuple[HourPath, _Writer]] = {}
        self._generation: dict[str, int] = {}
        self.flushes = 0

    def append(self, tables: Iterable[tuple[str, pa.Table]]) -> int:
        """Append ``(dataset, table)`` rows as the next flush; returns the rows written.

        ``dataset`` is the table's dataset directory (``kind=trades/exchange=.../symbol=...``);
        rows are split by UTC hour of ``exchange_ts``. The flush counts once ``flushed``
        names it.
        """
        flush, rows = self.flushes + 1, 0
        for dataset, table in tables:
            for hour, part in _split_hours(table):
                self._writer(f"{dataset}/{hour_file(hour)}", part.schema).write(part, flush)
                rows += part.num_rows
        if rows:
            _put_flushed(self.path, flush)
            self.flushes = flush
        return rows

    def _writer(self, hour_rel: str, schema: pa.Schema) -> _Writer:
        found = self._writers.get(hour_rel)
        if found is None:
            where = classify(hour_rel)
            assert isinstance(where, HourPath), hour_rel
            generation = self._generation.get(hour_rel, 0)
            path = f"{self.path}/{hour_rel.removesuffix('.parquet')}.{generation}{_SUFFIX}"
            found = self._writers[hour_rel] = (where, _Writer(path, schema))
        return found[1]

    def open_hours(self) -> set[int]:
        """Epoch hours with a segment file open."""
        return {where.hour for where, _ in self._writers.values()}

    def seal(self, hours: Iterable[int] | None = None) -> list[SegmentFile]:
        """Close the files of ``hours`` (every hour when None) and return them: they are
        ready for :func:`commit_segments` (with ``upto=self.flushes``)."""
        wanted = None if hours is None else set(hours)
        sealed = []
        for rel, (where, writer) in list(self._writers.items()):
            if wanted is None or where.hour in wanted:
                writer.close()
                del self._writers[rel]
                self._generation[rel] = self._generation.get(rel, 0) + 1
                sealed.append(SegmentFile(writer.path, where))
        return sealed

    def close(self) -> None:
        """Remove the session (every file must have been sealed and committed)."""
        if self._writers:
            raise ConfigError(f"segment session {self.session} still has open files")
        shutil.rmtree(self.path)
        self._lock.release()

    def abandon(self) -> None:
        """Close the files and release the lock, leaving the session for recovery."""
        self.seal()
        self._lock.release()


def _put_flushed(folder: str, flush: int) -> None:
    aside = f"{folder}/.{_FLUSHED}.tmp"
    with open(aside, "w", encoding="ascii") as out:
        out.write(str(flush))
    os.replace(aside, f"{folder}/{_FLUSHED}")


# --------------------------------------------------------------------------- reading


def _read_segment(path: str, upto: int) -> pa.Table | None:
    """Rows of the batches of ``path`` tagged with flush ``<= upto``, up to a tail cut
    short by a kill; None when not even the schema was written."""
    try:
        with pa.OSFile(path) as source:
            reader = pa.ipc.open_stream(source)
            batches = list(_whole_batches(reader, upto))
            return pa.Table.from_batches(batches, schema=reader.schema)
    except (pa.ArrowInvalid, OSError):
        return None


def _whole_batches(reader: pa.ipc.RecordBatchStreamReader,
                   upto: int) -> Iterator[pa.RecordBatch]:
    while True:
        try:
            batch, meta = reader.read_next_batch_with_custom_metadata()
        except StopIteration:
            return
        except (pa.ArrowInvalid, OSError):
            return  # the tail a kill cut short
        if int((meta or {}).get(_FLUSH_KEY, b"0")) > upto:
            return
        yield batch


def _read_text(path: str) -> str | None:
    try:
        with open(path, encoding="utf-8") as source:
            return source.read()
    except (FileNotFoundError, UnicodeDecodeError):
        return None


def _read_flushed(folder: str) -> int:
    text = _read_text(f"{folder}/{_FLUSHED}")
    return int(text) if text is not None and text.isdigit() else 0  # 0: no whole flush


def _session_files(folder: str) -> list[SegmentFile]:
    files = []
    for parent, _, names in os.walk(folder):
        for name in names:
            if not name.endswith(_SUFFIX):
                continue
            path = os.path.join(parent, name)
            stem = os.path.relpath(path, folder).removesuffix(_SUFFIX)
            where = classify(stem.rsplit(".", 1)[0] + ".parquet")
            if isinstance(where, HourPath):
                files.append(SegmentFile(path, where))
            else:
                log.warning("%s: not a segment file, left alone", path)
    return sorted(files, key=lambda f: f.path)


# --------------------------------------------------------------------------- committing


def commit_segments(root: str | os.PathLike, files: Sequence[SegmentFile], *, upto: int,
                    converter: str = "recorder", filesystem: object = None) -> Committed:
    """Commit the rows of ``files`` (flushes ``<= upto``) as hour files of the archive at
    ``root`` in one :class:`~makerlab.data.archive.ArchiveWriter` commit, then delete
    ``files`` (local paths, in a spool)."""
    tables: dict[str, tuple[HourPath, list[pa.Table]]] = {}
    for segment in files:
        table = _read_segment(segment.path, upto)
        if table is not None and table.num_rows:
            tables.setdefault(segment.where.dataset, (segment.where, []))[1].append(table)
    written: dict[str, None] = {}
    rows = 0
    if tables:
        with ArchiveWriter(root, converter=converter, filesystem=filesystem) as writer:
            for where, parts in tables.values():
                table = pa.concat_tables(parts)
                rows += table.num_rows
                written.update(dict.fromkeys(
                    writer.write(where.kind, where.exchange, where.symbol, table)))
    disk = resolve("/")  # the spool's
    for segment in files:
        disk.delete(segment.path)
    return Committed(rows, tuple(written))


def _target(arc: Root) -> str:
    """How a session names the archive it records into."""
    return arc.base if _is_local(arc) else arc.shown


def _session_dirs(root: str | os.PathLike, spool: str | os.PathLike | None,
                  filesystem: object) -> list[str]:
    """The visible session directories recording into the archive at ``root`` (a hidden
    one is a session still being created); sessions kept in the archive itself are its."""
    arc, folder = _sessions(root, spool, filesystem)
    own = _is_local(arc) and folder == arc.path(f"{META_DIR}/segments")
    try:
        names = sorted(os.listdir(folder))
    except FileNotFoundError:
        return []
    paths = [os.path.join(folder, name) for name in names if not name.startswith(".")]
    return [path for path in paths if os.path.isdir(path)
            and (own or _read_text(f"{path}/{_TARGET}") == _target(arc))]


@contextlib.contextmanager
def _claimed(folder: str) -> Iterator[bool]:
    """Whether the session at ``folder`` is dead (its lock is held here meanwhile)."""
    lock = _Lock.take(folder)
    try:
        yield lock is not None
    finally:
        if lock is not None:
            lock.release()


def segment_sessions(root: str | os.PathLike, *, spool: str | os.PathLike | None = None,
                     filesystem: object = None) -> list[SessionInfo]:
    """Every recorder session with segments for the archive at ``root`` (in its spool,
    :func:`spool_dir`), and whether it is running."""
    found = []
    for path in _session_dirs(root, spool, filesystem):
        with _claimed(path) as dead:
            files = len(_session_files(path))
        found.append(SessionInfo(os.path.basename(path), path, not dead, files))
    return found


def recover_segments(root: str | os.PathLike, *, spool: str | os.PathLike | None = None,
                     filesystem: object = None) -> list[str]:
    """Commit the segments of every dead recorder session of the archive at ``root`` (in
    its spool, :func:`spool_dir`) into hour files and remove the session; running sessions
    are left alone. Returns one line per session recovered."""
    lines = []
    for path in _session_dirs(root, spool, filesystem):
        with _claimed(path) as dead:
            if not dead:
                continue
            done = commit_segments(root, _session_files(path), upto=_read_flushed(path),
                                   converter="recorder-recovery", filesystem=filesystem)
            shutil.rmtree(path)
        lines.append(f"{path}: recovered recorder session {os.path.basename(path)}: "
                     f"{done.rows} rows into {len(done.files)} hour files")
        log.warning("%s", lines[-1])
    return lines
