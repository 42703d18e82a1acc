"""Any other fsspec filesystem, through fsspec's public API alone.

Writes go to a hidden temporary name and are then moved into place, so they
are as atomic as the filesystem's rename; versions come from ``info()``.
Conditional operations are checked and applied under one lock held by this
process: atomic between the threads of one process, best effort across
processes.  Filesystems that can do better get a backend of their own.

Read-only filesystems (``http://``, ``zip://`` opened for reading, ``tar://``,
``github://``, ...) serve every read; a write or delete fails with an
``OSError`` (``EROFS``) that says so.

Links: where ``info()`` reports them (``islink``: the local filesystem, and
``dir://`` over it), a link below the store's anchor is no key and no folder
of keys, as in the local backend: listings skip it, reads and deletes find
nothing there, writes fail naming it.  fsspec has no way to open a path
without following links, so each component is checked with ``info()`` before
the operation: a link planted beforehand is refused, but one swapped in
between the check and the operation is followed.  Shared local folders are
safe only through ``FileDirDict`` or ``file://`` URLs, whose backend never
follows a link at all.
"""

from __future__ import annotations

import errno
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from email.utils import parsedate_to_datetime
from typing import Any

from fsspec import AbstractFileSystem

from .base import ABSENT, ANY, Expected, PreconditionFailed, StorageBackend, Version
from .beneath import link_in_the_way
from .temporary import is_temporary_name, new_temporary_name

__all__ = ["GenericBackend", "is_read_only", "version_from_info"]

_ETAG_FIELDS = ("etag", "ETag", "generation", "version_id")
_TIME_FIELDS = ("mtime", "LastModified", "last_modified", "Last-Modified", "updated", "modified", "created",
                "date_time")
_READ_ONLY_PROTOCOLS = frozenset({"http", "https", "tar", "github", "git", "libarchive", "reference", "ftp"})
READ_ATTEMPTS = 3
WRITE_ATTEMPTS = 10
"""Writes started again when someone else deleted their temporary file before it was moved into place."""
_PROCESS_LOCK = threading.RLock()
"""Shared by every generic store: filesystem instances with different options may reach the same files."""


def _timestamp(info: dict[str, Any]) -> float:
    for field in _TIME_FIELDS:
        value = info.get(field)
        if isinstance(value, datetime):
            return value.timestamp()
        if isinstance(value, (int, float)):
            return float(value)
        if isinstance(value, tuple) and len(value) == 6:  # zip's date_time
            return datetime(*value).timestamp()
        if isinstance(value, str):
            parsed = _parse_time(value)
            if parsed is not None:
                return parsed
    return 0.0


def _parse_time(text: str) -> float | None:
    """ISO 8601 (most filesystems) or an HTTP date (``Last-Modified``)."""
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
    except ValueError:
        pass
    try:
        return parsedate_to_datetime(text).timestamp()
    except (TypeError, ValueError):
        return None


def is_read_only(fs: AbstractFileSystem) -> bool:
    """Whether ``fs`` can only be read: by its protocol, or an archive opened for reading."""
    protocols = {fs.protocol} if isinstance(fs.protocol, str) else set(fs.protocol)
    return bool(protocols & _READ_ONLY_PROTOCOLS) or getattr(fs, "mode", None) == "r"


def version_from_info(info: dict[str, Any]) -> Version:
    """A version from an ``info()`` record: the native ETag if any, else time, size and inode."""
    timestamp = _timestamp(info)
    for field in _ETAG_FIELDS:
        value = info.get(field)
        if value:
            return Version(str(value), timestamp)
    return Version(f"{timestamp!r}:{info.get('size')}:{info.get('ino', info.get('CRC', ''))}", timestamp)


@contextmanager
def _as_os_errors() -> Iterator[None]:
    """Any filesystem's own exceptions as ``OSError`` (missing paths and preconditions pass through)."""
    try:
        yield
    except (OSError, PreconditionFailed):
        raise
    except Exception as exc:  # fsspec filesystems raise what their libraries raise: ValueError, HTTP errors...
        raise OSError(errno.EIO, f"{type(exc).__name__}: {exc}") from exc


class GenericBackend(StorageBackend):
    """A root on any fsspec filesystem.

    ``anchor`` is the root the store was opened on (a subdict's is its parent's):
    links are looked for below it.
    """

    def __init__(self, fs: AbstractFileSystem, root: str, *, anchor: str | None = None) -> None:
        super().__init__(fs, root)
        self._lock = _PROCESS_LOCK
        self.read_only = is_read_only(fs)
        self.anchor = self.root if anchor is None else anchor
        self._shows_links: bool | None = None

    def child(self, relative: str) -> GenericBackend:
        return GenericBackend(self.fs, self.path_for(relative), anchor=self.anchor)

    # --- links -----------------------------------------------------------------
    def _reports_links(self) -> bool:
        """Whether this filesystem's ``info()`` tells links apart (asked once, of the anchor)."""
        if self._shows_links is None:
            try:
                self._shows_links = "islink" in self.fs.info(self.anchor)
            except Exception:  # no anchor yet, or a filesystem that cannot say: ask again next time
                return False
        return self._shows_links

    def _first_link(self, path: str) -> str | None:
        """The first link on ``path`` below the anchor (``path`` itself included), or None."""
        if not self._reports_links() or not path.startswith(self.anchor + "/"):
            return None
        current = self.anchor
        for name in path[len(self.anchor) + 1:].split("/"):
            current = f"{current}/{name}"
            try:
                if self.fs.info(current).get("islink"):
                    return current
            except FileNotFoundError:
                return None  # nothing below a missing folder: no link either
        return None

    def _absent_if_link(self, path: str) -> None:
        """Reads and deletes: a link on the way means no value is stored there."""
        if self._first_link(path) is not None:
            raise FileNotFoundError(errno.ENOENT, "No value here (a link is in the way)", path)

    def _refuse_link(self, path: str) -> None:
        """Writes: never through a link, never over one."""
        link = self._first_link(path)
        if link is not None:
            raise link_in_the_way(self.fs.unstrip_protocol(link))

    # --- reads -----------------------------------------------------------------
    def read(self, path: str) -> bytes:
        with _as_os_errors():
            self._absent_if_link(path)
            return self.fs.cat_file(path)  # type: ignore[no-any-return]

    def read_versioned(self, path: str) -> tuple[bytes, Version]:
        with _as_os_errors():
            self._absent_if_link(path)
        # fsspec reads bytes and metadata in separate calls: pair them only if no write fell between.
        for _ in range(READ_ATTEMPTS):
            before = self._stat(path)
            with _as_os_errors():
                data = self.fs.cat_file(path)
            if self._stat(path) == before:
                return data, before
        raise OSError(errno.EAGAIN, f"{path} kept changing while it was read")

    def stat(self, path: str) -> Version:
        with _as_os_errors():
            self._absent_if_link(path)
        return self._stat(path)

    def _stat(self, path: str) -> Version:
        with _as_os_errors():
            self.fs.invalidate_cache(path)  # not every filesystem takes info(refresh=True)
            info = self.fs.info(path)
        if info.get("type") == "directory":
            raise FileNotFoundError(path)
        return version_from_info(info)

    def exists(self, path: str) -> bool:
        with _as_os_errors():
            return self._first_link(path) is None and bool(self.fs.isfile(path))

    # --- writes ----------------------------------------------------------------
    def _refuse_if_read_only(self, path: str) -> None:
        if self.read_only:
            raise OSError(errno.EROFS, f"{self.fs.unstrip_protocol(path)}: the filesystem is read-only")

    def put(self, path: str, data: bytes, expected: Expected = ANY) -> str:
        self._refuse_if_read_only(path)
        with self._lock, _as_os_errors():
            self._refuse_link(path)
            if expected is not ANY:
                self._check(path, expected)
            for _ in range(WRITE_ATTEMPTS):
                if self._write_aside(path, data):
                    return self._stat(path).etag  # stat reads past the listing cache
        raise OSError(errno.EAGAIN, f"the temporary file of this write kept being deleted ({WRITE_ATTEMPTS} attempts)",
                      path)

    def _write_aside(self, path: str, data: bytes) -> bool:
        """Write ``data`` to a temporary name, then move it into place; False if it vanished on the way.

        Where the filesystem can rename, a reader never sees a half-written value
        (``pipe_file`` writes in place).  Someone else's ``rm`` (or gc) may delete the
        temporary file before the move: nothing was written then, so the caller writes again.
        """
        parent = self.fs._parent(path)
        temp = f"{parent}/{new_temporary_name()}"
        try:
            self.fs.pipe_file(temp, data)
        except FileNotFoundError:  # a filesystem with real folders: make the parents, once
            self.fs.makedirs(parent, exist_ok=True)
            self.fs.pipe_file(temp, data)
        try:
            self.fs.mv(temp, path)
        except FileNotFoundError:
            return False
        return True

    def remove(self, path: str, expected: Expected = ANY) -> None:
        self._refuse_if_read_only(path)
        with self._lock, _as_os_errors():
            self._absent_if_link(path)
            if expected is not ANY:
                self._check(path, expected)
            self.fs.rm_file(path)
            self.fs.invalidate_cache(path)

    def _check(self, path: str, expected: Expected) -> None:
        try:
            actual = self._stat(path).etag
        except FileNotFoundError:
            if expected is not ABSENT:
                raise PreconditionFailed(path) from None
            return
        if expected is ABSENT or actual != expected:
            raise PreconditionFailed(path)

    # --- listing ---------------------------------------------------------------
    def _files(self) -> dict[str, dict[str, Any]]:
        """Every file below the root with its ``info()``: links are skipped (and not descended into)."""
        if self._first_link(self.root) is not None:
            return {}  # the root itself lies behind a link planted below the anchor
        found = self.fs.find(self.root, detail=True, withdirs=False)
        return {path: info for path, info in found.items() if not info.get("islink")}

    def walk(self, suffix: str, *, with_timestamps: bool) -> Iterator[tuple[str, float]]:
        start = len(self.root) + 1
        with _as_os_errors():
            found = self._files()
        for path, info in found.items():
            if path.endswith(suffix):
                yield path[start:], _timestamp(info) if with_timestamps else 0.0

    def remove_temporary_files(self, older_than: float) -> int:
        """Delete old temporary files (by age alone: fsspec has no locks to tell a live write)."""
        if self.read_only:
            return 0
        deadline = time.time() - older_than
        with _as_os_errors():
            stale = [path for path, info in self._files().items()
                     if is_temporary_name(path.rpartition("/")[2]) and _timestamp(info) < deadline]
            for path in stale:
                self.fs.rm_file(path)
        return len(stale)

    def ensure_root(self) -> None:
        if not self.read_only:
            with _as_os_errors():
                self._refuse_link(self.root)
                self.fs.makedirs(self.root, exist_ok=True)
