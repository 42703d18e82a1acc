"""Storage backends: one per filesystem family, chosen from the URL's filesystem."""

from __future__ import annotations

import os
from typing import Any

import fsspec
from fsspec import AbstractFileSystem
from fsspec.implementations.local import LocalFileSystem
from fsspec.implementations.memory import MemoryFileSystem

from .base import ABSENT, ANY, Expected, PreconditionFailed, StorageBackend, Version
from .generic import GenericBackend
from .local import LocalBackend
from .memory import MemoryBackend

__all__ = [
    "ABSENT",
    "ANY",
    "Expected",
    "GenericBackend",
    "LocalBackend",
    "MemoryBackend",
    "PreconditionFailed",
    "StorageBackend",
    "Version",
    "backend_for_filesystem",
    "open_backend",
]


def _protocols(fs: AbstractFileSystem) -> set[str]:
    protocol = fs.protocol
    return {protocol} if isinstance(protocol, str) else set(protocol)


def backend_for_filesystem(fs: AbstractFileSystem, root: str) -> StorageBackend:
    """The most capable backend for an already opened filesystem.

    Cloud backends are imported only when used, so ``import persidict``
    never pulls in s3fs, gcsfs or adlfs.
    """
    if isinstance(fs, LocalFileSystem):
        return LocalBackend(root)
    if isinstance(fs, MemoryFileSystem):
        return MemoryBackend(fs, root)
    if _protocols(fs) & {"s3", "s3a"}:
        from .s3 import S3Backend

        return S3Backend(fs, root)
    return GenericBackend(fs, root)


def open_backend(location: Any, storage_options: dict[str, Any] | None = None) -> StorageBackend:
    """Open a URL, a local path or a ``UPath`` as a backend.

    A ``UPath`` carries its own filesystem and options; ``storage_options``
    then adds to them.
    """
    if hasattr(location, "fs") and hasattr(location, "path") and not isinstance(location, str):
        if storage_options:
            location = type(location)(str(location), **{**location.storage_options, **storage_options})
        return backend_for_filesystem(location.fs, location.path)
    if isinstance(location, os.PathLike):
        location = os.fspath(location)
    if not isinstance(location, str):
        raise TypeError(f"Expected a URL, a path or a UPath, got {type(location).__name__}")
    fs, root = fsspec.core.url_to_fs(location, **(storage_options or {}))
    return backend_for_filesystem(fs, root)
