"""Storage backends: one per filesystem family, chosen from the URL's filesystem."""

from __future__ import annotations

import os
from typing import Any

import fsspec
from fsspec import AbstractFileSystem
from fsspec.implementations.cached import CachingFileSystem
from fsspec.implementations.local import LocalFileSystem
from fsspec.implementations.memory import MemoryFileSystem

from .base import ABSENT, ANY, DEFAULT_TIMEOUT, Expected, PreconditionFailed, StorageBackend, Version
from .generic import GenericBackend
from .local import LocalBackend
from .memory import MemoryBackend

__all__ = [
    "ABSENT",
    "ANY",
    "DEFAULT_TIMEOUT",
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
    if isinstance(fs, CachingFileSystem):
        raise ValueError(
            f"{sorted(_protocols(fs))[0]}:: keeps the first copy it reads of each file and serves it after the file "
            "was overwritten, so a store on it would read stale values. Open the store on the target URL, "
            "and for a local cache use store.with_local_cache(folder), which validates every read by ETag."
        )
    if isinstance(fs, LocalFileSystem):
        return LocalBackend(root)
    if isinstance(fs, MemoryFileSystem):
        return MemoryBackend(fs, root)
    protocols = _protocols(fs)
    if protocols & {"s3", "s3a"}:
        from .s3 import S3Backend

        return S3Backend(fs, root)
    if protocols & {"gs", "gcs"}:
        from .gcs import GCSBackend

        return GCSBackend(fs, root)
    if protocols & {"az", "abfs", "abfss"}:
        from .azure import AzureBackend

        return AzureBackend(fs, root)
    return GenericBackend(fs, root)


def open_backend(location: Any, storage_options: dict[str, Any] | None = None) -> StorageBackend:
    """Open a URL, a local path or a ``UPath`` as a backend (a backend passes through as it is).

    A ``UPath`` carries its own options; ``storage_options`` adds to them.
    """
    if isinstance(location, StorageBackend):
        return location
    if hasattr(location, "fs") and hasattr(location, "path") and not isinstance(location, str):
        storage_options = {**location.storage_options, **(storage_options or {})}
        location = str(location)
    if isinstance(location, os.PathLike):
        location = os.fspath(location)
    if not isinstance(location, str):
        raise TypeError(f"Expected a URL, a path or a UPath, got {type(location).__name__}")
    options = dict(storage_options or {})
    protocol, _ = fsspec.core.split_protocol(location)
    if protocol in ("s3", "s3a"):
        from .s3 import client_config

        options["config_kwargs"] = client_config(options.get("config_kwargs"))
    fs, root = fsspec.core.url_to_fs(location, **options)
    return backend_for_filesystem(fs, root)
