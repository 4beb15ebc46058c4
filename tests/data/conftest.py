"""Filesystems that fail like real targets do (the suite may run as root, where chmod
cannot make a directory read-only)."""

from __future__ import annotations

import errno
import uuid

import fsspec
import pytest
from fsspec.implementations.local import LocalFileSystem
from fsspec.implementations.memory import MemoryFileSystem


class ReadOnlyMemory(MemoryFileSystem):
    """fsspec's memory store seen through a read-only mount (``romemory://``)."""

    protocol = ("romemory",)

    @classmethod
    def _strip_protocol(cls, path):
        return super()._strip_protocol(str(path).replace("romemory://", "memory://", 1))

    def _open(self, path, mode="rb", **kwargs):
        if "r" not in mode:
            raise PermissionError(errno.EROFS, "Read-only file system", path)
        return super()._open(path, mode, **kwargs)

    def mkdir(self, path, create_parents=True, **kwargs):
        raise PermissionError(errno.EROFS, "Read-only file system", path)

    def mv(self, *args, **kwargs):
        raise PermissionError(errno.EROFS, "Read-only file system", args[0])


class FullDisk(LocalFileSystem):
    """The local disk, full after ``room`` more files have been written."""

    def __init__(self, room: int, **kwargs):
        super().__init__(**kwargs)
        self.room = room

    def _open(self, path, mode="rb", block_size=None, **kwargs):
        if "r" not in mode:
            if self.room <= 0:
                raise OSError(errno.ENOSPC, "No space left on device", path)
            self.room -= 1
        return super()._open(path, mode, block_size, **kwargs)


class ReadOnlyTrades(LocalFileSystem):
    """The local disk with every ``kind=trades`` directory read-only (``rotrades://``)."""

    protocol = ("rotrades",)

    @classmethod
    def _strip_protocol(cls, path):
        return super()._strip_protocol(str(path).removeprefix("rotrades://"))

    def _open(self, path, mode="rb", block_size=None, **kwargs):
        if "r" not in mode and "kind=trades" in str(path):
            raise PermissionError(errno.EACCES, "Permission denied", path)
        return super()._open(path, mode, block_size, **kwargs)


@pytest.fixture
def read_only_trades():
    """The ``rotrades://`` protocol: local paths whose trades cannot be written."""
    fsspec.register_implementation("rotrades", ReadOnlyTrades, clobber=True)


@pytest.fixture
def read_only_memory():
    """The ``romemory://`` protocol (registered) and a read-only instance of it."""
    fsspec.register_implementation("romemory", ReadOnlyMemory, clobber=True)
    return ReadOnlyMemory(skip_instance_cache=True)


@pytest.fixture
def full_disk():
    """``full_disk(room)``: a local filesystem that fails after ``room`` file writes."""
    return lambda room: FullDisk(room, skip_instance_cache=True)


@pytest.fixture
def memory_root():
    """A fresh memory:// root, removed afterwards (fsspec's memory store is global)."""
    name = f"archive-{uuid.uuid4().hex}"
    yield f"memory://{name}"
    fs = fsspec.filesystem("memory")
    if fs.exists(f"/{name}"):
        fs.rm(f"/{name}", recursive=True)
