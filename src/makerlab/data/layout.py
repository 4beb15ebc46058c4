"""The archive's layout: directory names, hour files, and what any path in an archive is.

::

    root/kind=<kind>/exchange=<exchange>/symbol=<symbol>/date=YYYY-MM-DD/HH.parquet
    root/kind=book_snapshot/depth=<N>/exchange=<exchange>/symbol=<symbol>/date=.../HH.parquet
    root/.../date=YYYY-MM-DD/.HH.parquet.tmp-<commit>      staged by an unfinished commit
    root/_makerlab/...                                     the manifest

:func:`classify` sorts any path into an hour file, a staged file, a stray path (with the
first component that breaks the layout, and why) or a layout directory. Readers skip stray
paths with a logged warning (:func:`hour_files`); ``makerlab validate`` reports them.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

import pyarrow.fs as pafs

from makerlab.data.manifest import META_DIR
from makerlab.data.schema import BOOK_SNAPSHOT, KINDS
from makerlab.data.storage import Root, staged_commit
from makerlab.errors import ConfigError

log = logging.getLogger("makerlab.data.archive")  # the readers' logger: they log for it

__all__ = [
    "EPOCH",
    "HourPath",
    "StagedPath",
    "StrayPath",
    "check_kind",
    "check_name",
    "classify",
    "dataset_dir",
    "day_of",
    "hour_file",
    "hour_files",
    "hour_label",
]

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]*$")
_HOUR_FILE = re.compile(r"^([01][0-9]|2[0-3])\.parquet$")
_DEPTH = re.compile(r"^[1-9][0-9]*$")


def check_kind(kind: str) -> None:
    """ConfigError unless ``kind`` is one of the record kinds."""
    if kind not in KINDS:
        raise ConfigError(f"unknown kind {kind!r}; expected one of {', '.join(KINDS)}")


def check_name(what: str, value: str) -> None:
    """ConfigError unless ``value`` can be an ``exchange=``/``symbol=`` directory name."""
    if not isinstance(value, str) or not _NAME.match(value):
        raise ConfigError(
            f"{what} {value!r} cannot be an archive directory name: use letters, digits "
            "and . _ @ - only (map e.g. 'PURR/USDC' to 'PURR-USDC' first)"
        )


def dataset_dir(kind: str, exchange: str, symbol: str, depth: int | None = None) -> str:
    """Path of one instrument's dataset relative to the archive root."""
    check_kind(kind)
    check_name("exchange", exchange)
    check_name("symbol", symbol)
    if kind == BOOK_SNAPSHOT:
        if not isinstance(depth, int) or depth < 1:
            raise ConfigError(f"book_snapshot needs a positive integer depth, got {depth!r}")
        return f"kind={kind}/depth={depth}/exchange={exchange}/symbol={symbol}"
    return f"kind={kind}/exchange={exchange}/symbol={symbol}"


def hour_file(hour: int) -> str:
    """Path of the file of epoch hour ``hour`` (``exchange_ts // HOUR_NS``) in a dataset."""
    day = EPOCH + timedelta(hours=int(hour))
    return f"date={day:%Y-%m-%d}/{day:%H}.parquet"


def hour_label(hour: int) -> str:
    """Epoch hour ``hour`` as ``YYYY-MM-DD HH:00``."""
    return f"{EPOCH + timedelta(hours=int(hour)):%Y-%m-%d %H:00}"


def day_of(hour: int | None) -> str | None:
    """The ``YYYY-MM-DD`` of epoch hour ``hour`` (None stays None)."""
    return None if hour is None else f"{EPOCH + timedelta(hours=int(hour)):%Y-%m-%d}"


@dataclass(frozen=True)
class HourPath:
    """A path that follows the layout: the hour file of one dataset."""

    rel: str
    dataset: str
    kind: str
    exchange: str
    symbol: str
    depth: int | None
    hour: int

    @property
    def date(self) -> str:
        return f"{EPOCH + timedelta(hours=self.hour):%Y-%m-%d}"


@dataclass(frozen=True)
class StagedPath:
    """A hidden file written before a commit moves it to ``final`` (see manifest)."""

    rel: str
    final: str
    commit: str


@dataclass(frozen=True)
class StrayPath:
    """The first component of a path that breaks the layout, and why."""

    rel: str
    reason: str


def _valid_date(value: str) -> bool:
    try:
        return date.fromisoformat(value).isoformat() == value
    except ValueError:
        return False


_LEVEL_CHECKS = {
    "kind": (lambda v: v in KINDS, f"unknown kind (expected one of {', '.join(KINDS)})"),
    "depth": (lambda v: bool(_DEPTH.match(v)), "depth is not a positive integer"),
    "exchange": (lambda v: bool(_NAME.match(v)), "not a valid exchange name"),
    "symbol": (lambda v: bool(_NAME.match(v)), "not a valid symbol name"),
    "date": (_valid_date, "not a calendar date (expected date=YYYY-MM-DD)"),
}


def _levels(parts: list[str]) -> tuple[str, ...]:
    if parts[0] == f"kind={BOOK_SNAPSHOT}":
        return ("kind", "depth", "exchange", "symbol", "date")
    return ("kind", "exchange", "symbol", "date")


def _bad_level(key: str, part: str) -> str | None:
    name, sep, value = part.partition("=")
    if name != key or not sep:
        return f"unexpected directory (expected {key}=...)"
    check, reason = _LEVEL_CHECKS[key]
    return None if check(value) else reason


def classify(rel: str, *, is_dir: bool = False) -> HourPath | StagedPath | StrayPath | None:
    """What the path ``rel`` (relative to the archive root) is in the layout.

    Returns None for a directory that belongs to the layout and for anything under
    ``_makerlab/`` (the manifest's own files).
    """
    parts = rel.split("/")
    if parts[0] == META_DIR:
        return None
    levels = _levels(parts)
    dirs = parts if is_dir else parts[:-1]
    for i, part in enumerate(dirs):
        if i >= len(levels):
            return StrayPath("/".join(parts[:i + 1]), "unexpected directory inside a date "
                             "directory")
        reason = _bad_level(levels[i], part)
        if reason is not None:
            return StrayPath("/".join(parts[:i + 1]), reason)
    if is_dir:
        return None
    if len(dirs) != len(levels):
        return StrayPath(rel, "unexpected file (hour files live in date=YYYY-MM-DD/)")
    return _leaf(rel, parts)


def _leaf(rel: str, parts: list[str]) -> HourPath | StagedPath | StrayPath:
    staged = staged_commit(parts[-1])
    if staged is not None and _HOUR_FILE.match(staged[0]):
        return StagedPath(rel, f"{rel.rsplit('/', 1)[0]}/{staged[0]}", staged[1])
    name = _HOUR_FILE.match(parts[-1])
    if name is None:
        return StrayPath(rel, "not an hour file (expected HH.parquet, 00 to 23)")
    pairs = dict(p.split("=", 1) for p in parts[:-1])
    days = (date.fromisoformat(pairs["date"]) - date(1970, 1, 1)).days
    depth = int(pairs["depth"]) if "depth" in pairs else None
    return HourPath(rel, "/".join(parts[:-2]), pairs["kind"], pairs["exchange"],
                    pairs["symbol"], depth, days * 24 + int(name.group(1)))


def hour_files(arc: Root, folder: str) -> dict[str, tuple[HourPath, pafs.FileInfo]]:
    """Hour files below ``folder`` by root-relative path; stray paths are logged once."""
    found, warned = {}, set()
    for info in arc.listing(folder):
        what = classify(arc.rel(info.path), is_dir=info.type == pafs.FileType.Directory)
        if isinstance(what, HourPath):
            found[what.rel] = (what, info)
        elif isinstance(what, StrayPath) and what.rel not in warned:
            warned.add(what.rel)
            log.warning("%s: ignored, %s (see `makerlab validate`)",
                        arc.show(arc.path(what.rel)), what.reason)
    return found
