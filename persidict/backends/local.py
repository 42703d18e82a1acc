"""Local folders: atomic replacement, per-version locks, stat-derived ETags, nothing followed below the root.

Writes go to a hidden temporary file in the target folder, which is then
moved into place with ``os.replace`` (or ``os.link`` when the path must not
exist yet), so a reader sees the old bytes or the new ones, never a torn
file.  Every version of a value is therefore its own inode, and
``mtime_ns:size:inode`` identifies it.  The writer holds an ``flock`` on its
temporary file from creation until the file is in place, and garbage
collection leaves locked files alone, whatever their age.

Mutations are serialized per key with ``flock`` on the *current version's
inode*: a writer opens the file, locks it, and checks that the name still
names the inode it locked (another writer may have replaced it meanwhile).
Holding that lock, it compares ETags and replaces or unlinks the file.
Because every mutation of a present key holds the lock of the version it
replaces, and every creation of an absent key uses ``os.link`` (which fails
if the name exists), compare-and-swap is atomic across the processes of one
machine.  This needs a local POSIX filesystem with ``flock``; readers never
lock.

Below the store's anchor (the folder its user named) no symbolic link is ever
followed (``beneath``): a link is no key and no folder of keys.  Reads and
deletes treat it as absent; writes that would go through it or replace it
fail with an ``OSError`` naming it.  A delete removes the folders it empties,
up to (never including) the store's root; a writer whose folder is removed
under it (or whose temporary file someone deletes) simply writes again.
"""

from __future__ import annotations

import contextlib
import errno
import io
import os
import stat
import time
from collections.abc import Callable, Iterable, Iterator
from typing import IO, Any, TypeVar

from fsspec.implementations.local import LocalFileSystem

from .base import ABSENT, ANY, Decoder, Expected, Payload, PreconditionFailed, StorageBackend, Version
from .beneath import AT_FUNCTIONS, O_NOFOLLOW, Folder, close_chain, is_link_error, link_in_the_way, open_chain
from .local_counts import FolderCounts
from .local_tree import prune_empty_folders, remove_temporary_files, walk_folders, walk_values
from .temporary import new_temporary_name

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: conditional operations are not atomic there
    fcntl = None  # type: ignore[assignment]

__all__ = ["LocalBackend"]

T = TypeVar("T")

_NONBLOCK = getattr(os, "O_NONBLOCK", 0)  # a planted FIFO must not block the open: it is then no value
_READ_FLAGS = os.O_RDONLY | getattr(os, "O_BINARY", 0) | O_NOFOLLOW | _NONBLOCK
_TEMP_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0) | O_NOFOLLOW
# Folders a read only passes through: O_PATH (Linux) opens them for lookups alone, a little faster.
_LOOKUP_FLAGS = getattr(os, "O_PATH", os.O_RDONLY) | getattr(os, "O_DIRECTORY", 0) | O_NOFOLLOW
_NOT_A_VALUE_ERRNOS = frozenset({errno.ENOTDIR, errno.ELOOP, errno.EMLINK})
STREAM_ABOVE = 1 << 20
"""Values of at least this many bytes are decoded from the open file, smaller ones from their bytes."""
WRITE_ATTEMPTS = 100
"""Writes started again when their folder or temporary file vanished (each time someone else progressed)."""


class _Vanished(Exception):
    """The folder of a write, or its temporary file, was removed under it: write again."""


def _etag(st: os.stat_result) -> str:
    return f"{st.st_mtime_ns}:{st.st_size}:{st.st_ino}"


def _not_a_value(path: str) -> FileNotFoundError:
    # A folder (of longer keys) where a value's file would be, a file where a folder of
    # the path would be, or a symbolic link: either way, no value is stored under this key.
    return FileNotFoundError(errno.ENOENT, "No value here (a folder, a file or a link is in the way)", path)


def _in_the_way(exc: OSError) -> bool:
    """Whether ``exc`` says a link, or a file where a folder should be, stands on the path."""
    return exc.errno in _NOT_A_VALUE_ERRNOS and not isinstance(exc, FileNotFoundError)


@contextlib.contextmanager
def _absent_if_not_a_value(path: str) -> Iterator[None]:
    """Reads and deletes: a link, or a file or folder in the way, means the key is absent."""
    try:
        yield
    except OSError as exc:
        if _in_the_way(exc):
            raise _not_a_value(path) from None
        raise


class LocalBackend(StorageBackend):
    """A folder on the local disk.

    ``anchor`` is the folder the store was opened on (the root of a subdict's
    parent): links in it and above it are followed, none below it.
    """

    backend_name = "filesystem"
    atomic_conditions = fcntl is not None
    streams_values = True  # a big value is unpickled from its open file, small ones from one read

    def __init__(self, root: str, *, fsync: bool = True, anchor: str | None = None) -> None:
        super().__init__(LocalFileSystem(), os.path.abspath(root))
        self.fsync = fsync
        self.anchor = self.root if anchor is None else anchor
        self._anchor_slash = self.anchor + "/"
        self._skip = len(self._anchor_slash)
        self._root_names = self._names(self.root) if self.root != self.anchor else []
        self._counts = FolderCounts()  # len() counts again only the folders changed since the last count


    def _retrying(self, function: Callable[..., T], *args: Any) -> T:
        """Call ``function(*args)``; retry a ``PermissionError`` (virus scanners, sync clients) as the
        store's ``RetryConfig`` says (``transient_attempts``)."""
        return self.retry.call(function, (PermissionError,), *args)

    def child(self, relative: str) -> LocalBackend:
        return LocalBackend(self.path_for(relative), fsync=self.fsync, anchor=self.anchor)

    @property
    def url(self) -> str:
        return "file://" + self.root

    def _names(self, path: str) -> list[str]:
        """The names of ``path``'s components below the anchor."""
        if not path.startswith(self._anchor_slash):
            raise ValueError(f"{path!r} is not below the store's folder {self.anchor!r}")
        return path[self._skip:].split("/")

    def ensure_root(self) -> None:
        if os.path.isfile(self.anchor):
            raise ValueError(f"{self.anchor} is a file, not a directory.")
        os.makedirs(self.anchor, exist_ok=True)
        try:
            close_chain(open_chain(self.anchor, self._root_names, create=True))
        except NotADirectoryError as exc:
            raise ValueError(f"{exc.filename} is a file, not a directory.") from None

    # --- reads ---------------------------------------------------------------
    def _in_anchor(self, path: str) -> bool:
        """Whether ``path`` is directly in the anchor: then its last component is the only one to guard."""
        return path.find("/", self._skip) < 0 and path.startswith(self._anchor_slash)

    def _below(self, path: str, function: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """``function(name, *args, dir_fd=..., **kwargs)`` on ``path``, its folders opened one by one (no link)."""
        names = self._names(path)
        if not AT_FUNCTIONS:
            close_chain(chain := open_chain(self.anchor, names[:-1]))
            return function(chain[-1].at(names[-1]), *args, **kwargs)
        fd = self._descend(names[:-1])
        try:
            return function(names[-1], *args, dir_fd=fd, **kwargs)
        finally:
            os.close(fd)

    def _descend(self, names: list[str]) -> int:
        """A descriptor of the folder ``names`` below the anchor, each opened in the one before without
        following a link (raising as ``os.open`` does: a link or a file in the way is an ``OSError``)."""
        fd = os.open(f"{self.anchor}/{names[0]}", _LOOKUP_FLAGS)
        for name in names[1:]:
            parent, fd = fd, -1
            try:
                fd = os.open(name, _LOOKUP_FLAGS, dir_fd=parent)
            finally:
                os.close(parent)
        return fd

    def _open_value(self, path: str) -> tuple[int, os.stat_result]:
        """An open descriptor of the value file at ``path`` and its stat (the caller closes it)."""
        # The hot path: a value directly in the anchor is one open() of its path, whose
        # O_NOFOLLOW guards the only component below the anchor; deeper values open their
        # folders one by one.  A link, or a file or folder in the way: no value is stored there.
        try:
            fd = os.open(path, _READ_FLAGS) if self._in_anchor(path) else self._below(path, os.open, _READ_FLAGS)
        except OSError as exc:
            if _in_the_way(exc):
                raise _not_a_value(path) from None
            raise
        return fd, _value_stat(fd, path)

    def read_many(self, paths: Iterable[str]) -> Iterator[tuple[str, bytes, Version] | None]:
        """Versioned reads in order, ``None`` for a path with no value: the values of one folder are
        opened through its descriptor, opened once for each run of paths in it (a listing's order)."""
        if not AT_FUNCTIONS:
            yield from super().read_many(paths)
            return
        head: str | None = None
        folder: int | None = None  # the descriptor of ``head``; None where it holds no value
        try:
            for path in paths:
                parent, _, name = path.rpartition("/")
                if parent != head:
                    _close_quietly(folder)
                    folder = None  # closed: never closed again, even if opening the next one fails
                    head, folder = parent, self._retrying(self._open_folder, parent)
                found = None if folder is None else self._retrying(_read_in, folder, path, name)
                # Not in the folder as it was opened: it may have been removed and made again since.
                yield found if found is not None else next(super().read_many([path]))
        finally:
            _close_quietly(folder)

    def _open_folder(self, path: str) -> int | None:
        """A descriptor of the folder at ``path`` (the anchor or a real folder below it, reached without
        following a link); None where there is no such folder (its values are then looked up by path)."""
        if path == self.anchor:  # the anchor may be a link: it is trusted
            return _unless_absent(os.open, path, _LOOKUP_FLAGS & ~O_NOFOLLOW)
        return _unless_absent(self._descend, self._names(path + "/")[:-1])

    def _read(self, path: str) -> tuple[bytes, os.stat_result]:
        fd, st = self._open_value(path)
        try:
            return _read_all(fd, st.st_size), st
        finally:
            os.close(fd)

    def read(self, path: str) -> bytes:
        return self._retrying(self._read, path)[0]

    def read_versioned(self, path: str) -> tuple[bytes, Version]:
        data, st = self._retrying(self._read, path)
        return data, Version(_etag(st), st.st_mtime)

    def read_decoded(self, path: str, decoder: Decoder, *, versioned: bool = True) -> tuple[Any, Version | None]:
        """Small values from their bytes (one read); big ones decoded from the open file, so the
        value's memory is the only copy (``pickle.load`` reads an array's buffer into place)."""
        fd, st = self._retrying(self._open_value, path)
        try:
            if st.st_size < STREAM_ABOVE:
                value = decoder.from_bytes(_read_all(fd, st.st_size))
            else:
                with open(fd, "rb", closefd=False) as file:
                    value = decoder.from_file(file)
        finally:
            os.close(fd)
        return value, Version(_etag(st), st.st_mtime) if versioned else None

    def open_read(self, path: str) -> tuple[IO[bytes], Version]:
        fd, st = self._retrying(self._open_value, path)
        try:
            file = open(fd, "rb")  # noqa: SIM115  # the caller's to close
        except BaseException:
            os.close(fd)
            raise
        return file, Version(_etag(st), st.st_mtime)

    def _stat_value(self, path: str) -> os.stat_result:
        try:
            if self._in_anchor(path):
                st = os.stat(path, follow_symlinks=False)
            else:
                st = self._below(path, os.stat, follow_symlinks=False)
        except OSError as exc:
            if _in_the_way(exc):
                raise _not_a_value(path) from None
            raise
        if not stat.S_ISREG(st.st_mode):
            raise _not_a_value(path)
        return st

    def stat(self, path: str) -> Version:
        st = self._retrying(self._stat_value, path)
        return Version(_etag(st), st.st_mtime)

    def exists(self, path: str) -> bool:
        try:
            self._retrying(self._stat_value, path)
        except FileNotFoundError:
            return False
        return True

    # --- writes --------------------------------------------------------------
    def put(self, path: str, data: bytes, expected: Expected = ANY) -> str:
        return self._put(path, data, expected)

    def put_stream(self, path: str, payload: Payload, expected: Expected = ANY) -> str:
        """``put`` of a payload: a small one as its bytes, a big one written straight into the temporary file.

        The payload is first written to memory, up to ``STREAM_ABOVE`` bytes: a value
        that fails to serialize there (nearly every unencodable value) fails before
        anything on disk is touched, and a small one is stored exactly as ``put`` does.
        A bigger one is serialized again, into the temporary file (``_TooBig`` stopped
        the first pass as soon as it outgrew memory, so that pass cost little).
        """
        spool = _Spool(STREAM_ABOVE)
        try:
            payload.write_to(spool)
        except _TooBig:
            return self._put(path, payload, expected)
        return self._put(path, spool.getvalue(), expected)

    def _put(self, path: str, data: bytes | Payload, expected: Expected) -> str:
        names = self._names(path)
        for _ in range(WRITE_ATTEMPTS):
            # A folder of the path may be pruned by a delete at any moment (the anchor
            # too may be gone), and our temporary file deleted by someone else: nothing
            # was written then, so writing again is safe.
            try:
                chain = self._retrying(self._folders_for_write, names[:-1])
            except FileNotFoundError:
                os.makedirs(self.anchor, exist_ok=True)
                continue
            try:
                return self._put_in(chain[-1], names[-1], path, data, expected)
            except _Vanished:
                os.makedirs(self.anchor, exist_ok=True)
            finally:
                close_chain(chain)
        raise OSError(errno.EAGAIN, f"the folder of this write kept being removed ({WRITE_ATTEMPTS} attempts)", path)

    def _folders_for_write(self, names: list[str]) -> list[Folder]:
        return open_chain(self.anchor, names, create=True)

    def _put_in(self, folder: Folder, name: str, path: str, data: bytes | Payload, expected: Expected) -> str:
        if expected is ABSENT and self._retrying(_is_value, folder, name):
            # Insert-if-absent on a present key costs one stat, not a temporary file
            # and an fsync; when the key is absent, the link below keeps it atomic.
            raise PreconditionFailed(path)
        fd, temp, etag = self._retrying(self._write_temp, folder, data)
        try:
            if expected is ABSENT:
                self._retrying(_link_new, folder, temp, name, path)
                os.unlink(folder.at(temp), dir_fd=folder.fd)
            elif self._retrying(_replace_locked, folder, temp, name, path, expected) == "linked":
                os.unlink(folder.at(temp), dir_fd=folder.fd)
        except BaseException:
            _unlink_quietly(folder, temp)
            raise
        finally:
            os.close(fd)  # releases the lock that tells gc this file is a live write
        if self.fsync:
            _fsync_folder(folder)
        return etag

    def remove(self, path: str, expected: Expected = ANY) -> None:
        names = self._names(path)

        def unlink_if_expected() -> None:
            with _absent_if_not_a_value(path):
                chain = open_chain(self.anchor, names[:-1])
            try:
                _unlink_locked(chain[-1], names[-1], path, expected)
                self._prune(chain, names)
            finally:
                close_chain(chain)

        self._retrying(unlink_if_expected)

    def _prune(self, chain: list[Folder], names: list[str]) -> None:
        """Remove the folders a delete emptied, deepest first, up to (never including) the store's root.

        ``rmdir`` removes only empty folders, atomically: a writer that created one of
        them meanwhile either put its file there first (the folder stays) or finds its
        folder gone and writes again (``put``).
        """
        for depth in range(len(chain) - 1, len(self._root_names), -1):
            parent = chain[depth - 1]
            try:
                os.rmdir(parent.at(names[depth - 1]), dir_fd=parent.fd)
            except OSError:
                return  # not empty (the usual case), or already removed: higher folders are not empty either

    def _write_temp(self, folder: Folder, data: bytes | Payload) -> tuple[int, str, str]:
        """Write ``data`` to a fresh hidden file in ``folder``; return its locked descriptor, name and ETag.

        A payload writes itself into the file; if it fails (``TypeError``: a value its
        format cannot hold), the file is removed and nothing else was touched.

        ``rename`` and ``link`` keep the mtime, size and inode, so the temporary
        file's ETag is the ETag the value will have in place.
        """
        temp = new_temporary_name()
        try:
            fd = os.open(folder.at(temp), _TEMP_FLAGS, 0o666, dir_fd=folder.fd)
        except FileNotFoundError:
            raise _Vanished from None
        try:
            if fcntl is not None:
                fcntl.flock(fd, fcntl.LOCK_EX)  # held until the file is in place: gc leaves it alone
            _fill(fd, data)
            # The clock's nanoseconds, not the filesystem's coarse tick: with
            # inode numbers reused at once, a coarse mtime could repeat an ETag.
            now = time.time_ns()
            os.utime(fd, ns=(now, now))
            if self.fsync:
                os.fsync(fd)
            etag = _etag(os.fstat(fd))
        except BaseException:
            os.close(fd)
            _unlink_quietly(folder, temp)
            raise
        return fd, temp, etag

    # --- listing -------------------------------------------------------------
    def walk(self, suffix: str, *, with_timestamps: bool) -> Iterator[tuple[str, float]]:
        yield from walk_values(self.anchor, self._root_names, suffix, with_timestamps)

    def walk_folders(self, suffix: str) -> Iterator[tuple[str, list[str]]]:
        return walk_folders(self.anchor, self._root_names, suffix)

    def count_keys(self, suffix: str, count_names: Callable[[str, list[str]], int], counting: str) -> int | None:
        return self._counts.count(self.anchor, self._root_names, suffix, count_names, counting)

    def remove_temporary_files(self, older_than: float) -> int:
        return remove_temporary_files(self.anchor, self._root_names, time.time() - older_than)

    def prune_empty_dirs(self) -> None:
        prune_empty_folders(self.anchor, self._root_names)


def _is_value(folder: Folder, name: str) -> bool:
    """Whether a value file is at ``name``; a link there is refused (writes never replace one)."""
    try:
        mode = os.stat(folder.at(name), dir_fd=folder.fd, follow_symlinks=False).st_mode
    except FileNotFoundError:
        return False
    if stat.S_ISLNK(mode):
        raise link_in_the_way(f"{folder.path}/{name}")
    return stat.S_ISREG(mode)


def _fill(fd: int, data: bytes | Payload) -> None:
    """Write ``data`` (or what the payload writes) at the start of the empty file ``fd``."""
    if isinstance(data, (bytes, bytearray, memoryview)):
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
        return
    with io.BufferedWriter(_FdWriter(fd)) as file:  # buffered: it loops over partial writes (>2 GiB)
        data.write_to(file)


class _TooBig(BaseException):
    """The payload outgrew the memory spool (a ``BaseException``: no codec may catch it as a failure)."""


class _Spool(io.BytesIO):
    """An in-memory file that takes at most ``room`` bytes, then raises ``_TooBig``."""

    def __init__(self, room: int) -> None:
        super().__init__()
        self._room = room

    def write(self, data: Any) -> int:
        size = len(data) if type(data) is bytes else memoryview(data).nbytes  # pickle hands PickleBuffers too
        self._room -= size
        if self._room < 0:
            raise _TooBig
        return super().write(data)


class _FdWriter(io.RawIOBase):
    """The temporary file's descriptor as a raw file (left open): every byte goes through ``os.write``."""

    def __init__(self, fd: int) -> None:
        super().__init__()
        self._fd = fd

    def writable(self) -> bool:
        return True

    def fileno(self) -> int:
        return self._fd

    def write(self, data: Any) -> int:
        return os.write(self._fd, data)

    def seekable(self) -> bool:
        return True  # numpy writes an array through the descriptor, then seeks the file object after it

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        return os.lseek(self._fd, offset, whence)

    def tell(self) -> int:
        return os.lseek(self._fd, 0, os.SEEK_CUR)


def _value_stat(fd: int, path: str) -> os.stat_result:
    """The stat of the value file ``fd`` opened at ``path``; closes it and raises if it is no regular file."""
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise _not_a_value(path)
    except BaseException:
        os.close(fd)
        raise
    return st


def _read_in(folder: int, path: str, name: str) -> tuple[str, bytes, Version] | None:
    """The bytes and version of the value ``name`` in the folder open as ``folder`` (at ``path``); None if none."""
    fd = _unless_absent(os.open, name, _READ_FLAGS, dir_fd=folder)
    if fd is None:
        return None
    try:
        st = _value_stat(fd, path)
    except FileNotFoundError:
        return None  # no regular file (_value_stat closed it)
    try:
        return path, _read_all(fd, st.st_size), Version(_etag(st), st.st_mtime)
    finally:
        os.close(fd)


def _unless_absent(function: Callable[..., T], *args: Any, **kwargs: Any) -> T | None:
    """``function(*args, **kwargs)`` on a path, or None where nothing of ours is there (missing, or a
    link or a file or folder in the way)."""
    try:
        return function(*args, **kwargs)
    except FileNotFoundError:
        return None
    except OSError as exc:
        if _in_the_way(exc):
            return None
        raise


def _close_quietly(fd: int | None) -> None:
    if fd is not None:
        with contextlib.suppress(OSError):
            os.close(fd)


def _read_all(fd: int, size_hint: int) -> bytes:
    data = os.read(fd, size_hint + 1)
    if len(data) <= size_hint:
        return data
    chunks = [data]
    while chunk := os.read(fd, 1 << 20):
        chunks.append(chunk)
    return b"".join(chunks)


def _link(folder: Folder, temp: str, name: str) -> None:
    os.link(folder.at(temp), folder.at(name), src_dir_fd=folder.fd, dst_dir_fd=folder.fd, follow_symlinks=False)


def _link_new(folder: Folder, temp: str, name: str, path: str) -> None:
    try:
        _link(folder, temp, name)
    except FileExistsError as exc:
        _is_value(folder, name)  # a link planted there is refused, not reported as a present key
        raise PreconditionFailed(path) from exc
    except FileNotFoundError:
        raise _Vanished from None


def _replace_locked(folder: Folder, temp: str, name: str, path: str, expected: Expected) -> str:
    """Move ``temp`` to ``name`` while holding the lock of the version it replaces.

    Returns "linked" when ``name`` was created (``temp`` still exists), or
    "replaced" when an existing version was swapped out (``temp`` is gone).
    """
    while True:
        fd = _open_current_locked(folder, name, path)  # put() already retries this whole step
        if fd is None:
            if isinstance(expected, str):
                raise PreconditionFailed(path)
            try:
                _link(folder, temp, name)  # never clobber a value created meanwhile
                return "linked"
            except FileExistsError:
                _is_value(folder, name)
                continue
            except FileNotFoundError:
                raise _Vanished from None
        try:
            _check_expected(fd, expected)
            try:
                os.replace(folder.at(temp), folder.at(name), src_dir_fd=folder.fd, dst_dir_fd=folder.fd)
            except FileNotFoundError:
                raise _Vanished from None  # someone deleted our temporary file
            return "replaced"
        finally:
            os.close(fd)


def _unlink_locked(folder: Folder, name: str, path: str, expected: Expected) -> None:
    """Delete the value ``name`` if ``expected`` holds, under the lock of the version it removes."""
    with _absent_if_not_a_value(path):
        fd = _open_current_locked(folder, name, path)
    if fd is None:
        raise FileNotFoundError(errno.ENOENT, "No such file", path)
    try:
        _check_expected(fd, expected)
        os.unlink(folder.at(name), dir_fd=folder.fd)
    finally:
        os.close(fd)


def _open_current_locked(folder: Folder, name: str, path: str) -> int | None:
    """Open and lock the version currently at ``name``; ``None`` if there is none.

    A link there raises ``link_in_the_way``: it is never opened, so never locked or replaced.
    """
    while True:
        try:
            fd = os.open(folder.at(name), _READ_FLAGS, dir_fd=folder.fd)
        except FileNotFoundError:
            return None
        except OSError as exc:
            if is_link_error(exc):
                raise link_in_the_way(path) from None
            raise
        try:
            if fcntl is not None:
                fcntl.flock(fd, fcntl.LOCK_EX)
            locked = os.fstat(fd)
            current = os.stat(folder.at(name), dir_fd=folder.fd, follow_symlinks=False)
        except FileNotFoundError:
            os.close(fd)
            continue
        except BaseException:
            os.close(fd)
            raise
        if (current.st_ino, current.st_dev) == (locked.st_ino, locked.st_dev):
            return fd
        os.close(fd)  # replaced while we waited for the lock: lock the new version


def _check_expected(fd: int, expected: Expected) -> None:
    if isinstance(expected, str) and _etag(os.fstat(fd)) != expected:
        raise PreconditionFailed(expected)
    if expected is ABSENT:
        raise PreconditionFailed(expected)


def _unlink_quietly(folder: Folder, name: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.unlink(folder.at(name), dir_fd=folder.fd)


def _fsync_folder(folder: Folder) -> None:
    """Persist the rename itself; best effort, since some filesystems refuse directory fsync."""
    if folder.fd is not None:
        with contextlib.suppress(OSError):
            os.fsync(folder.fd)
        return
    try:
        fd = os.open(folder.path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
