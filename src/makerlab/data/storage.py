"""Where an archive lives: a filesystem, the root's path on it, and the few file operations
the archive and its manifest need, the same on a local disk and on an object store.

The root is a local path, a URL (``file://``, ``s3://``, ``memory://``, anything
``pyarrow.fs`` or fsspec understands), or a path inside ``filesystem=`` (a
``pyarrow.fs.FileSystem`` or an fsspec filesystem). Writes and moves that fail raise
:class:`~makerlab.errors.DataError` naming the path, never a bare ``OSError``.

**Object stores** (``s3://`` through pyarrow's native S3 filesystem, ``gs://``, and fsspec's
``s3``/``gcs``/``abfs``): a whole-object write (PUT) and a server-side copy are atomic, there
are no directories, and there is no rename: :meth:`Root.move` is a copy, then a delete, and
a kill between the two leaves both (docs/archive.md, the crash rule on object storage).
Credentials come from the environment (``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``,
``AWS_SESSION_TOKEN``, ``AWS_ENDPOINT_URL`` / ``AWS_ENDPOINT_URL_S3``, ``AWS_REGION``) or
the SDK's other usual sources, never from makerlab's arguments: :func:`redact` keeps them
out of every path shown to the user and every error message made here.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
import pyarrow.fs as pafs

from makerlab.errors import ConfigError, DataError

__all__ = ["CREDENTIAL_ENV", "Root", "existing", "is_object_store", "os_reason", "redact",
           "resolve", "staged_commit", "staged_name"]

_STAGED = re.compile(r"^\.(?P<name>.+)\.tmp-(?P<commit>[^/]+)$")
_USERINFO = re.compile(  # user@ or user:password@ (a raw password may hold a /)
    r"(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*://)(?:[^@\s/]*|[^@\s/:]*:[^@\s]*)@")
_OBJECT_STORES = frozenset({"s3", "s3a", "gcs", "gs", "abfs", "abfss", "az", "adl", "oss"})
_S3_OPTIONS = "allow_delayed_open=true"  # small writes as one PUT, not a multipart upload

CREDENTIAL_ENV = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN")
"""Environment variables whose values never appear in what makerlab shows or raises."""


def redact(text: str) -> str:
    """``text`` without credentials: a URL's ``user:password@`` becomes ``***@`` and the
    values of the :data:`CREDENTIAL_ENV` variables become ``***``."""
    text = _USERINFO.sub(r"\g<scheme>***@", text)
    for name in CREDENTIAL_ENV:
        value = os.environ.get(name, "")
        if len(value) >= 4:
            text = text.replace(value, "***")
    return text


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
    ``shown`` never holds credentials (:func:`redact`); ``object_store`` says whether
    ``fs`` is an object store (see the module docstring).
    """

    fs: pafs.FileSystem
    base: str
    shown: str
    object_store: bool = False

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

    def exists(self) -> bool:
        """Whether anything is at the root (on an object store: any object below it);
        DataError if the filesystem cannot be asked (refused, unreachable)."""
        try:
            return self.fs.get_file_info(self.base).type != pafs.FileType.NotFound
        except (OSError, pa.ArrowException) as exc:
            raise DataError(f"cannot look up ({os_reason(exc)})", source=self.shown) from exc

    def listing(self, path: str) -> list[pafs.FileInfo]:
        """Every file and directory below ``path`` (recursive; empty if it does not exist)."""
        selector = pafs.FileSelector(path, recursive=True, allow_not_found=True)
        try:
            return self.fs.get_file_info(selector)
        except (OSError, pa.ArrowException) as exc:  # refused, unreachable
            raise DataError(f"cannot list ({os_reason(exc)})", source=self.show(path)) from exc

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
        """Write ``data`` to ``path``, creating its directory: not atomic on a disk (a
        reader may see it half-written), atomic on an object store (one PUT)."""
        try:
            if not self.object_store:
                self.fs.create_dir(path.rsplit("/", 1)[0], recursive=True)
            with self.fs.open_output_stream(path) as sink:
                sink.write(data)
        except (OSError, pa.ArrowException) as exc:
            raise _write_error(self.show(path), exc) from exc

    def move(self, source: str, target: str) -> None:
        """Rename ``source`` over ``target``; on an object store a server-side copy (atomic:
        ``target`` is the old or the new object, never part of one), then a delete."""
        try:
            if self.object_store:
                self.fs.copy_file(source, target)
            else:
                self.fs.move(source, target)
        except (OSError, pa.ArrowException) as exc:
            raise _write_error(self.show(target), exc) from exc
        if self.object_store:
            self.delete(source)

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
    """The short reason of an I/O error (``Permission denied``), else its message;
    credentials redacted."""
    return redact(exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc))


def _write_error(shown: str, exc: BaseException) -> DataError:
    return DataError(f"cannot write ({os_reason(exc)}); is the archive writable and the "
                     "disk not full?", source=shown)


def _arrow_fs(filesystem: Any) -> pafs.FileSystem:
    if isinstance(filesystem, pafs.FileSystem):
        return filesystem
    return pafs.PyFileSystem(pafs.FSSpecHandler(filesystem))


def is_object_store(fs: pafs.FileSystem) -> bool:
    """Whether ``fs`` is an object store (pyarrow's own, or fsspec's behind pyarrow)."""
    name = fs.type_name.removeprefix("py::fsspec+")
    return any(word in _OBJECT_STORES for word in re.findall(r"[a-z0-9]+", name))


def _root(fs: pafs.FileSystem, base: str, given: str) -> Root:
    return Root(fs, base.rstrip("/") or "/", redact(given), is_object_store(fs))


def _from_uri(url: str) -> tuple[pafs.FileSystem, str]:
    """pyarrow's filesystem for ``url`` (S3 writing small objects in one PUT); fsspec's
    for a scheme pyarrow does not know (``memory://``)."""
    given = url
    if url.startswith("s3://") and "allow_delayed_open" not in url:
        url += ("&" if "?" in url else "?") + _S3_OPTIONS
    try:  # errors quote the URL, credentials included: never chained, only redacted
        return pafs.FileSystem.from_uri(url)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        pass  # not pyarrow's: fsspec's, or not a URL
    except OSError as exc:  # e.g. the bucket's region cannot be looked up
        raise DataError(f"cannot open the archive's filesystem ({os_reason(exc)})",
                        source=redact(given)) from None
    import fsspec

    try:
        ffs, base = fsspec.core.url_to_fs(url)
    except (ImportError, ValueError):
        raise ConfigError(f"cannot open the archive at {redact(given)}: neither pyarrow nor "
                          "fsspec can parse this URL (percent-encode special characters; "
                          "better, keep credentials in the environment)") from None
    return _arrow_fs(ffs), base


def resolve(root: str | os.PathLike, filesystem: Any = None) -> Root:
    """The :class:`Root` of ``root`` (see the module docstring)."""
    shown = os.fspath(root).rstrip("/") or "/"
    if filesystem is not None:
        fs = _arrow_fs(filesystem)
        if isinstance(fs, pafs.LocalFileSystem):
            return _root(fs, os.path.abspath(shown), shown)
        strip = getattr(filesystem, "_strip_protocol", None)
        return _root(fs, str(strip(shown) if strip is not None else shown), shown)
    if "://" not in shown:
        return _root(pafs.LocalFileSystem(), os.path.abspath(shown), shown)
    fs, base = _from_uri(shown)
    return _root(fs, base, shown)


def existing(root: str | os.PathLike, filesystem: Any = None) -> Root:
    """:func:`resolve` of an archive that must be there: ConfigError ``no archive at ...``
    when nothing is at ``root``."""
    arc = resolve(root, filesystem)
    if not arc.exists():
        raise ConfigError(f"no archive at {arc.shown}")
    return arc
