"""The archive manifest: which hour files an archive holds, and how a write commits.

The manifest lives beside the hive tree, under ``_makerlab/`` (a name DuckDB globs,
``pyarrow.dataset`` and pandas skip)::

    root/_makerlab/manifest/<dataset>/date=YYYY-MM-DD.json   one shard per dataset and day
    root/_makerlab/pending/<commit>.json                     the journal of an unfinished commit
    root/_makerlab/segments/<session>/...                    a recorder's uncommitted rows
    root/_makerlab/health/<exchange>/YYYY-MM-DD.jsonl        a recorder's feed health log

(The last two belong to the streaming recorder, :mod:`makerlab.data.segments` and
:mod:`makerlab.live.recorder`; they are listed here so every path under ``_makerlab/`` is
known.)

``<dataset>`` is the dataset's directory (``kind=trades/exchange=binance/symbol=BTCUSDT``,
or with ``depth=N`` for ``book_snapshot``). A shard records every hour file of its day
(rows, bytes, sha256, first and last ``exchange_ts``, the commit that wrote it) and every
commit that wrote into it (when, converter, makerlab version, the shards it wrote). One
file per dataset and day keeps writers of different instruments apart, keeps a shard small
for a recorder that commits every hour, and lets a reader open only the days it needs.

A commit (:class:`Manifest`) goes through four steps, each safe to be killed after:

1. every file is written under a hidden staged name (``.HH.parquet.tmp-<commit>``) that
   readers ignore; killed here, nothing changed and the staged files are leftovers;
2. the journal ``_makerlab/pending/<commit>.json`` is written: the point of no return;
3. the staged files are moved over their final names;
4. the shards are rewritten (each to a staged name, then moved) and the journal deleted.

The crash rule: a journal that exists and parses names a commit that must be *completed*
(:func:`complete` redoes steps 3-4, checking every file against its sha256); a journal
that does not parse was cut short in step 2, so nothing was moved and it is removed with
the staged files. The next write to a dataset completes or removes what touches it, and
``makerlab validate --fix`` does so for the whole archive.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pyarrow.fs as pafs

from makerlab.data.storage import Root, staged_commit, staged_name
from makerlab.errors import DataError

__all__ = [
    "FORMAT",
    "HEALTH_DIR",
    "META_DIR",
    "SEGMENTS_DIR",
    "Commit",
    "FileEntry",
    "Incomplete",
    "Manifest",
    "Pending",
    "Shard",
    "clean_leftovers",
    "complete",
    "dataset_files",
    "describe",
    "journal_rel",
    "meta_file",
    "read_pending",
    "read_shard",
    "shard_keys",
    "shard_keys_under",
]

FORMAT = 1
"""Version of the manifest's JSON format."""

META_DIR = "_makerlab"
"""The directory, at the archive root, that holds the manifest."""

_SHARDS = f"{META_DIR}/manifest"
_PENDING = f"{META_DIR}/pending"
SEGMENTS_DIR = f"{META_DIR}/segments"
"""The streaming recorder's write-ahead segments (:mod:`makerlab.data.segments`)."""
HEALTH_DIR = f"{META_DIR}/health"
"""The streaming recorder's feed health logs (:mod:`makerlab.live.recorder`)."""


# --------------------------------------------------------------------------- records


@dataclass(frozen=True)
class FileEntry:
    """One hour file as committed: ``path`` is relative to the archive root."""

    path: str
    rows: int
    bytes: int
    sha256: str
    first_exchange_ts: int
    last_exchange_ts: int
    commit: str = ""

    @property
    def shard(self) -> str:
        """The shard key: the file's dataset and ``date=`` directory."""
        return self.path.rsplit("/", 1)[0]

    def to_json(self) -> dict[str, Any]:
        return {"rows": self.rows, "bytes": self.bytes, "sha256": self.sha256,
                "first_exchange_ts": self.first_exchange_ts,
                "last_exchange_ts": self.last_exchange_ts, "commit": self.commit}

    @classmethod
    def from_json(cls, path: str, data: Mapping[str, Any]) -> FileEntry:
        return cls(path, int(data["rows"]), int(data["bytes"]), str(data["sha256"]),
                   int(data["first_exchange_ts"]), int(data["last_exchange_ts"]),
                   str(data.get("commit", "")))


def describe(path: str, data: bytes, exchange_ts: np.ndarray) -> FileEntry:
    """The entry of the hour file ``path`` whose bytes are ``data``."""
    first = int(exchange_ts.min()) if exchange_ts.size else 0
    last = int(exchange_ts.max()) if exchange_ts.size else 0
    return FileEntry(path, int(exchange_ts.size), len(data), sha256(data), first, last)


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@dataclass(frozen=True)
class Commit:
    """One commit: when, by which converter and makerlab, into which shards."""

    id: str
    written: str
    converter: str
    makerlab: str
    shards: tuple[str, ...]

    def to_json(self) -> dict[str, Any]:
        return {"written": self.written, "converter": self.converter,
                "makerlab": self.makerlab, "shards": list(self.shards)}

    @classmethod
    def from_json(cls, commit: str, data: Mapping[str, Any]) -> Commit:
        return cls(commit, str(data["written"]), str(data["converter"]),
                   str(data["makerlab"]), tuple(data["shards"]))

    def describe(self) -> str:
        return f"{self.id} ({self.converter}, makerlab {self.makerlab}, {self.written})"


@dataclass(frozen=True)
class Shard:
    """The manifest of one dataset on one day: files by path, and the commits into it."""

    key: str
    files: Mapping[str, FileEntry]
    commits: Mapping[str, Commit]


@dataclass(frozen=True)
class Pending:
    """The journal of a commit that has not finished (or is running now)."""

    commit: Commit
    files: tuple[FileEntry, ...]

    def touches(self, dataset: str) -> bool:
        return any(entry.path.startswith(dataset + "/") for entry in self.files)


@dataclass(frozen=True)
class Incomplete:
    """A journal cut short while being written: its commit never started moving files."""

    commit: str
    path: str
    reason: str


# --------------------------------------------------------------------------- reading


def _shard_rel(key: str) -> str:
    return f"{_SHARDS}/{key}.json"


def journal_rel(commit: str) -> str:
    """Path of the journal of ``commit``, relative to the archive root."""
    return f"{_PENDING}/{commit}.json"


def _load_json(root: Root, rel: str) -> dict[str, Any]:
    """The JSON object at ``rel``; DataError naming it if unreadable or too new."""
    path = root.path(rel)
    try:
        data = json.loads(root.read_bytes(path))
    except ValueError as exc:
        raise DataError(f"unreadable manifest file ({exc})", source=root.show(path)) from exc
    if not isinstance(data, dict) or not isinstance(data.get("format"), int):
        raise DataError("not a makerlab manifest file", source=root.show(path))
    if data["format"] > FORMAT:
        raise DataError(f"manifest format {data['format']} is newer than this makerlab's "
                        f"{FORMAT}; upgrade makerlab", source=root.show(path))
    return data


def meta_file(rel: str) -> tuple[str, str] | None:
    """What the file ``rel`` under ``_makerlab/`` is: ``("shard", key)``,
    ``("journal", commit)``, ``("staged", commit)``, a recorder's ``("segment", session)``
    or ``("health", exchange)``; None when it is none of those."""
    name = rel.rsplit("/", 1)[-1]
    parts = rel.split("/")
    if rel.startswith(f"{SEGMENTS_DIR}/") and len(parts) > 3:
        return ("segment", parts[2])
    if rel.startswith(f"{HEALTH_DIR}/") and len(parts) == 4 and name.endswith(".jsonl"):
        return ("health", parts[2])
    staged = staged_commit(name)
    if staged is not None:
        return ("staged", staged[1])
    if not name.endswith(".json"):
        return None
    if rel.startswith(f"{_SHARDS}/") and name.startswith("date="):
        return ("shard", rel[len(_SHARDS) + 1:].removesuffix(".json"))
    if rel.startswith(f"{_PENDING}/") and rel.count("/") == 2:
        return ("journal", name.removesuffix(".json"))
    return None


def shard_keys(root: Root, dataset: str) -> list[str]:
    """Keys of the shards of ``dataset`` (``<dataset>/date=YYYY-MM-DD``), sorted."""
    keys = []
    for info in root.listing(root.path(f"{_SHARDS}/{dataset}")):
        name = info.path.rsplit("/", 1)[-1]
        if name.startswith("date=") and name.endswith(".json"):
            keys.append(f"{dataset}/{name.removesuffix('.json')}")
    return sorted(keys)


def shard_keys_under(root: Root) -> list[str]:
    """Keys of every shard of the archive (one listing of the manifest directory)."""
    keys = []
    for info in root.listing(root.path(_SHARDS)):
        rel = root.rel(info.path)
        what = meta_file(rel) if info.type == pafs.FileType.File else None
        if what is not None and what[0] == "shard":
            keys.append(what[1])
    return sorted(keys)


def read_shard(root: Root, key: str) -> Shard | None:
    """The shard ``key``, or None if it does not exist; DataError if it is damaged."""
    try:
        data = _load_json(root, _shard_rel(key))
    except FileNotFoundError:
        return None
    try:
        files = {f"{key}/{name}": FileEntry.from_json(f"{key}/{name}", entry)
                 for name, entry in data["files"].items()}
        commits = {cid: Commit.from_json(cid, c) for cid, c in data["commits"].items()}
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise DataError(f"malformed manifest shard ({exc!r})",
                        source=root.show(root.path(_shard_rel(key)))) from exc
    return Shard(key, files, commits)


def dataset_files(root: Root, dataset: str, first_day: str | None = None,
                  last_day: str | None = None) -> dict[str, FileEntry] | None:
    """Committed files of ``dataset`` on days ``first_day..last_day`` (``YYYY-MM-DD``,
    inclusive, None unbounded), by path; None when the dataset has no manifest at all."""
    keys = shard_keys(root, dataset)
    if not keys:
        return None
    files: dict[str, FileEntry] = {}
    for key in keys:
        day = key.rsplit("date=", 1)[1]
        if (first_day is None or day >= first_day) and (last_day is None or day <= last_day):
            shard = read_shard(root, key)
            files.update(shard.files if shard is not None else {})
    return files


def read_pending(root: Root) -> tuple[list[Pending], list[Incomplete]]:
    """Journals of unfinished commits, oldest first, and those cut short while written."""
    pending, incomplete = [], []
    for info in sorted(root.listing(root.path(_PENDING)), key=lambda i: i.path):
        name = info.path.rsplit("/", 1)[-1]
        if not name.endswith(".json") or name.startswith("."):
            continue
        commit = name.removesuffix(".json")
        try:
            pending.append(_parse_pending(_load_json(root, journal_rel(commit))))
        except FileNotFoundError:
            continue  # finished while we listed
        except (DataError, KeyError, TypeError, ValueError) as exc:
            incomplete.append(Incomplete(commit, info.path, str(exc)))
    return pending, incomplete


def _parse_pending(data: Mapping[str, Any]) -> Pending:
    commit = Commit.from_json(data["commit"]["id"], data["commit"])
    files = tuple(FileEntry.from_json(f["path"], f) for f in data["files"])
    return Pending(commit, files)


# --------------------------------------------------------------------------- writing


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def _makerlab_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("makerlab")
    except PackageNotFoundError:
        return "unknown"


def _dump(data: Mapping[str, Any]) -> bytes:
    return json.dumps({"format": FORMAT, **data}, indent=1, sort_keys=True).encode()


def _put_atomic(root: Root, rel: str, data: bytes, commit: str) -> None:
    """Replace ``rel`` whole: on a disk written under a staged name, then moved over it; on
    an object store one PUT, which is atomic already."""
    final = root.path(rel)
    if root.object_store:
        root.write_bytes(final, data)
        return
    folder, name = final.rsplit("/", 1)
    staged = f"{folder}/{staged_name(name, commit)}"
    root.write_bytes(staged, data)
    root.move(staged, final)


class Manifest:
    """One commit into an archive: record each staged file, then :meth:`commit` them all.

    The writer writes a file's bytes to :meth:`staged_path` and records its
    :class:`FileEntry`; a file recorded without a staged copy is taken as already in place
    (adopting files written before the manifest existed). Nothing is visible to readers
    until :meth:`commit`; :meth:`abort` removes the staged files. See the module docstring
    for what a kill at any moment leaves and how it is repaired.
    """

    def __init__(self, root: Root, *, converter: str) -> None:
        self.root = root
        self.converter = converter
        self.id = f"{datetime.now(UTC):%Y%m%dT%H%M%S%fZ}-{uuid.uuid4().hex[:8]}"
        self._files: dict[str, FileEntry] = {}
        self.journaled = False
        """Whether :meth:`commit` got past writing the journal (then it must be completed,
        never aborted)."""

    def staged_path(self, rel: str) -> str:
        """Where the file ``rel`` (relative to the root) is written before the commit."""
        folder, name = self.root.path(rel).rsplit("/", 1)
        return f"{folder}/{staged_name(name, self.id)}"

    def record(self, entry: FileEntry) -> None:
        """Add (or replace) the file ``entry.path`` in this commit."""
        self._files[entry.path] = replace(entry, commit=self.id)

    @property
    def files(self) -> Mapping[str, FileEntry]:
        """The files recorded so far, by path."""
        return self._files

    def commit(self) -> Commit | None:
        """Journal the recorded files, move them into place, update the shards.

        Returns the commit, or None when nothing was recorded.
        """
        if not self._files:
            return None
        shards = tuple(sorted({entry.shard for entry in self._files.values()}))
        info = Commit(self.id, _now(), self.converter, _makerlab_version(), shards)
        pending = Pending(info, tuple(self._files.values()))
        journal = {"commit": {"id": info.id, **info.to_json()},
                   "files": [{"path": f.path, **f.to_json()} for f in pending.files]}
        path = self.root.path(journal_rel(self.id))
        try:
            self.root.write_bytes(path, _dump(journal))
        except BaseException:
            with contextlib.suppress(DataError):
                self.root.delete(path)
            raise
        self.journaled = True
        try:
            complete(self.root, pending, verify=False)
        except DataError as error:
            raise DataError(f"the commit stopped after its journal was written ({error}); "
                            "the next write to these datasets or `makerlab validate --fix` "
                            "completes it", source=self.root.show(path)) from error
        return info

    def abort(self) -> None:
        """Remove every staged file of this commit (nothing else was changed)."""
        for rel in self._files:
            self.root.delete(self.staged_path(rel))


def complete(root: Root, pending: Pending, *, verify: bool = True) -> None:
    """Finish the commit ``pending`` (steps 3-4): move its staged files into place, update
    its shards, delete its journal. Idempotent. With ``verify`` each file is checked
    against its sha256 first; a file that is neither staged nor in place with the recorded
    content raises :class:`DataError` and leaves the journal."""
    for entry in pending.files:
        _into_place(root, pending.commit, entry, verify=verify)
    for key in pending.commit.shards:
        _update_shard(root, key, pending)
    root.delete(root.path(journal_rel(pending.commit.id)))


def _into_place(root: Root, commit: Commit, entry: FileEntry, *, verify: bool) -> None:
    final = root.path(entry.path)
    folder, name = final.rsplit("/", 1)
    staged = f"{folder}/{staged_name(name, commit.id)}"
    if root.is_file(staged):
        if verify:
            _verify(root, staged, entry, commit)
        root.move(staged, final)
    elif verify:
        _verify(root, final, entry, commit)


def _verify(root: Root, path: str, entry: FileEntry, commit: Commit) -> None:
    try:
        data = root.read_bytes(path)
    except FileNotFoundError:
        reason = "neither its staged copy nor the hour file exists"
    else:
        if sha256(data) == entry.sha256:
            return
        reason = "its content is not the one the commit recorded"
    raise DataError(f"cannot complete interrupted write {commit.describe()}: {reason}; "
                    f"delete {journal_rel(commit.id)} and write the data again",
                    source=root.show(root.path(entry.path)))


def _update_shard(root: Root, key: str, pending: Pending) -> None:
    old = read_shard(root, key) or Shard(key, {}, {})
    files = dict(old.files)
    files.update({e.path: e for e in pending.files if e.shard == key})
    commits = {**old.commits, pending.commit.id: pending.commit}
    data = {"shard": key, "updated": _now(),
            "files": {p.rsplit("/", 1)[1]: e.to_json() for p, e in sorted(files.items())},
            "commits": {c: info.to_json() for c, info in sorted(commits.items())}}
    _put_atomic(root, _shard_rel(key), _dump(data), pending.commit.id)


def clean_leftovers(root: Root, dataset: str, live: Iterable[str]) -> list[str]:
    """Delete staged files under ``dataset`` (its data and its shards) whose commit is not
    in ``live``, and the cut-short journals of those commits. Returns what was deleted."""
    keep, removed, dead = set(live), [], set()
    for folder in (root.path(dataset), root.path(f"{_SHARDS}/{dataset}")):
        for info in root.listing(folder):
            staged = staged_commit(info.path.rsplit("/", 1)[-1])
            if staged is not None and staged[1] not in keep:
                root.delete(info.path)
                removed.append(root.show(info.path))
                dead.add(staged[1])
    _, incomplete = read_pending(root)
    for journal in incomplete:
        if journal.commit in dead:
            root.delete(journal.path)
            removed.append(root.show(journal.path))
    return removed
