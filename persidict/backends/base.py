"""The byte-level storage interface every FsspecDict talks to.

A backend stores opaque bytes at fsspec paths and reports each file's version
(an ETag plus a timestamp) from the filesystem's own metadata.  FsspecDict
builds the whole dict API and the concurrency contract (docs/concurrency.md)
on these few primitives; a backend adds only
what fsspec cannot do uniformly: atomic replacement, conditional writes and
deletes, and metadata that is fresh rather than cached.
"""

from __future__ import annotations

import io
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator
from typing import IO, Any, Protocol

from fsspec import AbstractFileSystem

from ..protocol.retry import DEFAULT_RETRY, RetryConfig
from ..protocol.versions import ABSENT, ANY, Expected, PreconditionFailed, Version

DEFAULT_TIMEOUT = 30.0
"""The default of ``timeout``."""

__all__ = ["ABSENT", "ANY", "DEFAULT_TIMEOUT", "Decoder", "Expected", "Payload", "PreconditionFailed",
           "ReplacedMidRead", "StorageBackend", "Version"]


class ReplacedMidRead(OSError):
    """A read pinned to one version (``If-Match``) met another: the object was replaced while it was read.

    An object store's runner never sends such a request again (the version is gone); whoever
    reads the whole value starts again from its first request, and gives up
    after ``attempts`` of them.
    """

    attempts: int = 1


class Payload(Protocol):
    """What a write stores: as one ``bytes``, or written into an open file by a backend that streams."""

    def to_bytes(self) -> bytes:
        """All the bytes at once (``TypeError`` for a value the format cannot hold)."""
        ...

    def write_to(self, file: IO[bytes]) -> None:
        """Write the bytes into ``file`` (same errors; part may be written before one)."""
        ...

    def starting(self) -> None:
        """Make ready what a write needs before it sends part of a value that is not whole yet (a lazy
        store's bucket): a backend that uploads in parts calls it before its first part."""
        ...


class Decoder(Protocol):
    """What a read makes of the stored bytes: from one ``bytes``, or from an open file."""

    def from_bytes(self, data: bytes) -> Any:
        """The value of ``data``."""
        ...

    def from_file(self, file: IO[bytes]) -> Any:
        """The value of the rest of ``file`` (an ``OSError`` of the file passes unchanged)."""
        ...


class StorageBackend(ABC):
    """Bytes in, bytes and versions out, at paths under one root.

    Reads raise ``FileNotFoundError`` for a missing path; conditional writes
    and deletes raise ``PreconditionFailed`` when the stored version differs
    from the expected one.  ``atomic_conditions`` says whether those checks
    are atomic with respect to every other writer (other processes included).
    """

    backend_name: str = "fsspec"
    atomic_conditions: bool = False
    lazy_root: bool = False
    """Whether ``FsspecDict`` leaves the root (a bucket) to its first write instead of creating it at open."""
    streams_values: bool = False
    """Whether stores write values through ``put_stream`` and read them through ``read_decoded`` (local
    folders, S3, GCS, Azure); else they pass whole bytes to ``put`` and from ``read``."""
    timeout: float = DEFAULT_TIMEOUT
    """Seconds one call may take, retries included, where the backend can bound it (remote stores)."""
    retry: RetryConfig = DEFAULT_RETRY
    """The store's retry policy: pauses and budgets of the requests the backend sends again."""

    def __init__(self, fs: AbstractFileSystem, root: str) -> None:
        self.fs = fs
        self.root = root.rstrip("/")

    @property
    def url(self) -> str:
        """The root as a protocol-qualified URL."""
        return str(self.fs.unstrip_protocol(self.root or "/"))

    def path_for(self, relative: str) -> str:
        """The full fsspec path of a root-relative path."""
        return f"{self.root}/{relative}"

    @abstractmethod
    def child(self, relative: str) -> StorageBackend:
        """A backend on the same storage, rooted at ``relative`` below this root."""

    # --- reads ---------------------------------------------------------------
    @abstractmethod
    def read(self, path: str) -> bytes:
        """The bytes stored at ``path``."""

    @abstractmethod
    def read_versioned(self, path: str) -> tuple[bytes, Version]:
        """The bytes at ``path`` together with the version they belong to."""

    def read_if_changed(self, path: str, etag: str) -> tuple[bytes | None, Version]:
        """Like ``read_versioned``, but with ``None`` for the bytes when the ETag still matches."""
        version = self.stat(path)
        if version.etag == etag:
            return None, version
        return self.read_versioned(path)

    def read_many(self, paths: Iterable[str]) -> Iterator[tuple[str, bytes, Version] | None]:
        """Versioned reads of many paths, in order; ``None`` for a path that vanished."""
        for path in paths:
            try:
                data, version = self.read_versioned(path)
            except FileNotFoundError:
                yield None
            else:
                yield path, data, version

    def read_decoded(self, path: str, decoder: Decoder, *, versioned: bool = True) -> tuple[Any, Version | None]:
        """The value ``decoder`` makes of the bytes at ``path``, and their version (None unless ``versioned``).

        Here from the bytes; a backend on local files decodes big values from the open file.
        """
        if not versioned:
            return decoder.from_bytes(self.read(path)), None
        data, version = self.read_versioned(path)
        return decoder.from_bytes(data), version

    def open_read(self, path: str) -> tuple[IO[bytes], Version]:
        """A binary file object of the bytes at ``path`` (the caller closes it), and their version.

        Here the bytes are fetched whole; a local backend opens the file itself.
        """
        data, version = self.read_versioned(path)
        return io.BytesIO(data), version

    @abstractmethod
    def stat(self, path: str) -> Version:
        """The current version of ``path``."""

    @abstractmethod
    def exists(self, path: str) -> bool:
        """Whether a value is stored at ``path``."""

    # --- writes --------------------------------------------------------------
    @abstractmethod
    def put(self, path: str, data: bytes, expected: Expected = ANY) -> str:
        """Store ``data`` at ``path`` atomically if ``expected`` holds; return the new ETag.

        Readers see the old bytes or the new ones, never a mix.
        """

    def put_stream(self, path: str, payload: Payload, expected: Expected = ANY) -> str:
        """``put`` of what ``payload`` writes; the new ETag.

        Here its bytes are made whole and ``put``; a backend that can write into its
        temporary file (local folders) or send parts streams them instead.
        """
        return self.put(path, payload.to_bytes(), expected)

    @abstractmethod
    def remove(self, path: str, expected: Expected = ANY) -> None:
        """Delete ``path`` if ``expected`` holds (``FileNotFoundError`` if it is absent).

        With an ETag, an absent path may also raise ``PreconditionFailed``: a
        missing object has no version (some services answer 412 for it).
        """

    def put_many(self, writes: Iterable[tuple[str, bytes, Expected]]) -> dict[str, Exception]:
        """Many ``put``s; returns the failed paths with their errors (the others are done).

        One by one here; object stores send them concurrently.
        """
        failures: dict[str, Exception] = {}
        for path, data, expected in writes:
            try:
                self.put(path, data, expected)
            except (OSError, PreconditionFailed) as exc:
                failures[path] = exc
        return failures

    def remove_many(self, paths: Iterable[str]) -> dict[str, Exception]:
        """Delete many paths, whatever their versions (a missing one is fine); returns the failures."""
        failures: dict[str, Exception] = {}
        for path in paths:
            try:
                self.remove(path)
            except FileNotFoundError:
                continue
            except OSError as exc:
                failures[path] = exc
        return failures

    # --- listing -------------------------------------------------------------
    def count(self, suffix: str) -> int | None:
        """How many files end in ``suffix`` below the root, if known without listing (else None)."""
        return None

    def count_keys(self, suffix: str, count_names: Callable[[str, list[str]], int], counting: str) -> int | None:
        """The sum of ``count_names(folder, names)`` over the folders ``walk_folders`` yields, where the
        backend can count folder by folder (it may remember the folders unchanged since, even across
        processes, under ``counting``: the text of what ``count_names`` counts, which changes whenever
        its answer for the same names could); None where it cannot (then the listing is counted)."""
        return None

    def walk_folders(self, suffix: str) -> Iterator[tuple[str, list[str]]] | None:
        """The files ending in ``suffix``, folder by folder: each folder's path below the root (``""``
        for the root itself) with the names of its files; None where the backend does not list a
        folder at once (then ``walk`` lists)."""
        return None

    @abstractmethod
    def walk(self, suffix: str, *, with_timestamps: bool) -> Iterator[tuple[str, float]]:
        """Root-relative paths of files ending in ``suffix``, with timestamps if asked (else 0.0)."""

    def remove_temporary_files(self, older_than: float) -> int:
        """Delete the hidden temporary files of writes that never finished (writers killed
        mid-write), if older than ``older_than`` seconds; return how many.  Backends that
        write in one request have none."""
        return 0

    def prune_empty_dirs(self) -> None:
        """Remove empty directories below the root (a no-op where directories are implicit)."""

    def missing_root(self, exc: BaseException) -> str | None:
        """What is missing if ``exc``, raised by this backend, says the root itself does not exist
        (``"bucket 'b'"``), else None.  Only roots that writes need and keys cannot create (buckets,
        containers) are reported: a missing folder holds no keys."""
        return None

    def check_root(self) -> None:
        """Refuse a root the storage could never hold (a bad container name) without a request: a store
        that leaves its root to the first write still fails at open."""

    def ensure_root(self) -> None:
        """Make the root exist where the filesystem needs directories."""
