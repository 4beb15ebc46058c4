"""Where an archive lives: a filesystem, the root's path on it, and the few file operations
the archive and its manifest need, the same on a local disk and on an object store.

The root is a local path, a URL (``file://``, ``s3://``, ``memory://``, anything
``pyarrow.fs`` or fsspec understands), or a path inside ``filesystem=`` (a
``pyarrow.fs.FileSystem`` or an fsspec filesystem). Writes and moves that fail raise
:class:`~makerlab.errors.DataError` naming the path, never a bare ``OSError``.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
import pyarrow.fs as pafs

from makerlab.errors import DataError

__all__ = ["Root", "os_reason", "resolve", "staged_commit", "staged_name"]

_STAGED = re.compile(r"^\.(?P<name>.+)\.tmp-(?P<commit>[^/]+)$")


def staged_name(name: str, commit: str) -> str:
    """The hidden name a file ``name`` is written under before commit ``commit`` moves it."""
    return f".{name}.tmp-{commit}"


def staged_commit(name: str) -> tuple[str, str] | None:
    """``(final name, commit)`` of a staged file name, or None if ``name`` is not one."""
    match = _STAGED.match(name)
    return None if match is None else (match["name"], match["commit"])


@dataclass(frozen=True)
class Root:
    """An archive root: the filesystem, the root's path on it and as the user wrote it.

    Paths given to the methods are paths on ``fs`` (build them with :meth:`path`).
    """

    fs: pafs.FileSystem
    base: str
    shown: str

    def path(self, rel: str) -> str:
        """The path on ``fs`` of ``rel`` (relative to the root)."""
        return f"{self.base}/{rel}" if rel else self.base

    def rel(self, path: str) -> str:
        """``path`` (on ``fs``) relative to the root."""
        return path[len(self.base) + 1:] if path.startswith(self.base + "/") else path

    def show(self, path: str) -> str:
        """``path`` (on ``fs``) as the user would address it, i.e. under their root."""
        if path.startswith(self.base):
            return self.shown + path[len(self.base):]
        return path

    def is_file(self, path: str) -> bool:
        return self.fs.get_file_info(path).type == pafs.FileType.File

    def listing(self, path: str) -> list[pafs.FileInfo]:
        """Every file and directory below ``path`` (recursive; empty if it does not exist)."""
        selector = pafs.FileSelector(path, recursive=True, allow_not_found=True)
        return self.fs.get_file_info(selector)

    def read_bytes(self, path: str) -> bytes:
        """The bytes of ``path``; ``FileNotFoundError`` if absent, DataError if unreadable."""
        try:
            with self.fs.open_input_stream(path) as source:
                return source.read()
        except FileNotFoundError:
            raise
        except (OSError, pa.ArrowException) as exc:
            raise DataError(f"cannot read ({exc})", source=self.show(path)) from exc

    def write_bytes(self, path: str, data: bytes) -> None:
        """Write ``data`` to ``path``, creating its directory (not atomic by itself)."""
        try:
            self.fs.create_dir(path.rsplit("/", 1)[0], recursive=True)
            with self.fs.open_output_stream(path) as sink:
                sink.write(data)
        except (OSError, pa.ArrowException) as exc:
            raise _write_error(self.show(path), exc) from exc

    def move(self, source: str, target: str) -> None:
        """Rename ``source`` over ``target`` (a server-side copy on object stores)."""
        try:
            self.fs.move(source, target)
        except (OSError, pa.ArrowException) as exc:
            raise _write_error(self.show(target), exc) from exc

    def delete(self, path: str) -> None:
        """Delete the file ``path``; nothing if it is already gone."""
        try:
            self.fs.delete_file(path)
        except FileNotFoundError:
            return
        except (OSError, pa.ArrowException) as exc:
            raise _write_error(self.show(path), exc) from exc

    def remove_empty_dir(self, path: str) -> None:
        """Delete directory ``path`` if it exists and holds nothing."""
        info = self.fs.get_file_info(path)
        if info.type == pafs.FileType.Directory and not self.listing(path):
            self.fs.delete_dir(path)


def os_reason(exc: BaseException) -> str:
    """The short reason of an I/O error (``Permission denied``), else its message."""
    return exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)


def _write_error(shown: str, exc: BaseException) -> DataError:
    return DataError(f"cannot write ({os_reason(exc)}); is the archive writable and the "
                     "disk not full?", source=shown)


def _arrow_fs(filesystem: Any) -> pafs.FileSystem:
    if isinstance(filesystem, pafs.FileSystem):
        return filesystem
    return pafs.PyFileSystem(pafs.FSSpecHandler(filesystem))


def resolve(root: str | os.PathLike, filesystem: Any = None) -> Root:
    """The :class:`Root` of ``root`` (see the module docstring)."""
    shown = os.fspath(root).rstrip("/") or "/"
    if filesystem is not None:
        fs = _arrow_fs(filesystem)
        if isinstance(fs, pafs.LocalFileSystem):
            return Root(fs, os.path.abspath(shown), shown)
        strip = getattr(filesystem, "_strip_protocol", None)
        base = strip(shown) if strip is not None else shown
        return Root(fs, str(base).rstrip("/") or "/", shown)
    if "://" not in shown:
        return Root(pafs.LocalFileSystem(), os.path.abspath(shown), shown)
    try:
        fs, base = pafs.FileSystem.from_uri(shown)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        import fsspec

        ffs, base = fsspec.core.url_to_fs(shown)
        fs = _arrow_fs(ffs)
    return Root(fs, base.rstrip("/") or "/", shown)
