"""Folders below a trusted one, reached without following any symbolic link on the way.

A store's folder is often shared, so someone may plant ``link -> /elsewhere``
inside it.  Everything the local backend does below its *anchor* (the folder
the user named, which may itself be a link or lie below one) goes through
``Folder`` handles: each subfolder is opened with ``O_NOFOLLOW | O_DIRECTORY``
relative to its parent's descriptor, and files are then opened, created,
renamed and removed relative to that descriptor (``openat``, ``renameat``,
``unlinkat``...).  No path is looked up twice, so a link swapped in between two
steps is never followed either: the walk is race-free.

The anchor itself is addressed by its path, so a value directly in it costs no
extra system call.  Where the platform has no ``openat`` (Windows), each
folder is checked with ``lstat`` before it is used instead: links planted
beforehand are refused, but not one swapped in at the same moment.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = ["AT_FUNCTIONS", "O_NOFOLLOW", "Folder", "close_chain", "descend", "link_in_the_way", "open_chain",
           "scan", "subfolder"]

O_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_DIR_FLAGS = os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) | O_NOFOLLOW
AT_FUNCTIONS = O_NOFOLLOW != 0 and {os.open, os.stat, os.mkdir, os.rmdir, os.unlink, os.link} <= os.supports_dir_fd
"""Whether files can be reached relative to a folder's descriptor (POSIX), so that walks are race-free."""

_LINK_ERRNOS = frozenset({errno.ELOOP, errno.EMLINK})  # O_NOFOLLOW on a link: ELOOP (Linux, macOS), EMLINK (BSD)


@dataclass(frozen=True, slots=True)
class Folder:
    """A folder reached without following links: by descriptor, or (the anchor) by path."""

    fd: int | None
    path: str

    def at(self, name: str) -> str:
        """What to pass, with ``dir_fd=self.fd``, to reach ``name`` in this folder."""
        return name if self.fd is not None else f"{self.path}/{name}"


def link_in_the_way(path: str) -> OSError:
    """The error of an operation that would have to follow (or replace) the link at ``path``."""
    return OSError(errno.ELOOP, "a symbolic link is in the way (a store never follows links below its root)", path)


def is_link_error(exc: OSError) -> bool:
    """Whether ``exc`` is an ``O_NOFOLLOW`` open refusing a link (or ``link_in_the_way``)."""
    return exc.errno in _LINK_ERRNOS


def _is_link(folder: Folder, name: str) -> bool:
    try:
        return stat.S_ISLNK(os.stat(folder.at(name), dir_fd=folder.fd, follow_symlinks=False).st_mode)
    except OSError:
        return False


def _not_a_folder(folder: Folder, name: str) -> OSError:
    """Why ``name`` in ``folder`` cannot be opened as a folder: a link, or a file in the way."""
    path = f"{folder.path}/{name}"
    if _is_link(folder, name):
        return link_in_the_way(path)
    return NotADirectoryError(errno.ENOTDIR, "Not a directory (a file is in the way)", path)


def subfolder(folder: Folder, name: str) -> Folder:
    """The subfolder ``name`` of ``folder``; ``FileNotFoundError`` if missing, ``OSError`` if not a real folder."""
    path = f"{folder.path}/{name}"
    if not AT_FUNCTIONS:
        mode = os.stat(path, follow_symlinks=False).st_mode
        if not stat.S_ISDIR(mode):
            raise _not_a_folder(folder, name)
        return Folder(None, path)
    try:
        return Folder(os.open(folder.at(name), _DIR_FLAGS, dir_fd=folder.fd), path)
    except NotADirectoryError:  # Linux answers ENOTDIR for a link too: tell them apart for the message
        raise _not_a_folder(folder, name) from None
    except OSError as exc:
        if is_link_error(exc):
            raise link_in_the_way(path) from None
        raise


def descend(folder: Folder, name: str, *, create: bool) -> Folder:
    """Like ``subfolder``, but with ``create`` a missing folder is made first.

    ``FileNotFoundError`` then means that ``folder`` itself was removed meanwhile
    (a delete pruned it): the caller starts again from the anchor.
    """
    while True:
        try:
            return subfolder(folder, name)
        except FileNotFoundError:
            if not create:
                raise
        with contextlib.suppress(FileExistsError):  # another writer made it meanwhile
            os.mkdir(folder.at(name), dir_fd=folder.fd)


def open_chain(anchor: str, names: Sequence[str], *, create: bool = False) -> list[Folder]:
    """``anchor`` and each folder of ``names`` below it, in order; close them with ``close_chain``."""
    chain = [Folder(None, anchor)]
    try:
        for name in names:
            chain.append(descend(chain[-1], name, create=create))
    except BaseException:
        close_chain(chain)
        raise
    return chain


def close_chain(chain: Sequence[Folder]) -> None:
    """Close the descriptors of ``open_chain``'s folders."""
    for folder in chain:
        if folder.fd is not None:
            os.close(folder.fd)


def scan(folder: Folder) -> list[os.DirEntry[str]]:
    """The entries of ``folder``, read through its descriptor where it has one (read at once: closed at once)."""
    with os.scandir(folder.path if folder.fd is None else folder.fd) as entries:
        return list(entries)
