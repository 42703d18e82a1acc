"""Walks over a local store's tree: listings, garbage collection of temporary files, pruning.

Every walk starts at the store's root, reached from the anchor without
following links (``beneath.open_chain``), and descends only into real folders,
each opened relative to its parent's descriptor: a link is never listed,
never descended into and never removed, so no walk reaches outside the root.
"""

from __future__ import annotations

import contextlib
import os
import stat
from collections.abc import Iterator

from .beneath import Folder, close_chain, is_link_error, open_chain, scan, subfolder
from .temporary import is_temporary_name

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: no locks, gc goes by age alone
    fcntl = None  # type: ignore[assignment]

__all__ = ["file_names", "open_root", "prune_empty_folders", "real_subfolder", "remove_temporary_files",
           "subfolder_names", "walk_folders", "walk_values"]

_NONBLOCK = getattr(os, "O_NONBLOCK", 0)
_PROBE_FLAGS = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | _NONBLOCK


def open_root(anchor: str, root_names: list[str]) -> list[Folder] | None:
    """The chain down to the store's root, or None where there is no real folder to walk."""
    try:
        return open_chain(anchor, root_names)
    except (FileNotFoundError, NotADirectoryError, PermissionError):
        return None
    except OSError as exc:
        if is_link_error(exc):
            return None  # the root was swapped for a link: it holds nothing of ours
        raise


def _folders(folder: Folder, relative: str) -> Iterator[tuple[Folder, str, list[os.DirEntry[str]]]]:
    """``folder`` and every real folder below it: each with its path below the root and its entries."""
    try:
        entries = scan(folder)
    except (FileNotFoundError, NotADirectoryError, PermissionError):
        return  # removed while we walked, or not ours to read
    yield folder, relative, entries
    for name in subfolder_names(entries):
        child = real_subfolder(folder, name)
        if child is not None:
            try:
                yield from _folders(child, relative + name + "/")
            finally:
                close_chain([child])


def subfolder_names(entries: list[os.DirEntry[str]]) -> list[str]:
    """The names of the real folders among ``entries`` (links to folders are not).

    ``is_dir`` answers from the listing's file types: a folder of files costs no call per file."""
    return [entry.name for entry in entries if entry.is_dir(follow_symlinks=False)]


def file_names(entries: list[os.DirEntry[str]], suffix: str) -> list[str]:
    """The names of the regular files ending in ``suffix`` among ``entries``.

    ``is_file`` answers from the listing's file types too (no stat), and a file deleted meanwhile
    is no file to it (it raises no FileNotFoundError)."""
    return [entry.name for entry in entries if entry.name.endswith(suffix) and entry.is_file(follow_symlinks=False)]


def real_subfolder(folder: Folder, name: str) -> Folder | None:
    """The real folder ``name`` in ``folder``, opened without following links; None for anything else."""
    try:
        return subfolder(folder, name)
    except OSError:
        return None  # removed meanwhile, or swapped for a link or a file since it was listed


def walk_values(anchor: str, root_names: list[str], suffix: str, with_timestamps: bool) -> Iterator[tuple[str, float]]:
    """Root-relative paths of the regular files ending in ``suffix``, with their mtimes if asked."""
    chain = open_root(anchor, root_names)
    if chain is None:
        return
    try:
        for _folder, relative, entries in _folders(chain[-1], ""):
            for entry in entries:
                name = entry.name
                try:
                    # Temporary names have no suffix; links and other non-files are no values.
                    if name.endswith(suffix) and entry.is_file(follow_symlinks=False):
                        yield relative + name, entry.stat(follow_symlinks=False).st_mtime if with_timestamps else 0.0
                except FileNotFoundError:
                    continue  # deleted while we were listing
    finally:
        close_chain(chain)


def walk_folders(anchor: str, root_names: list[str], suffix: str) -> Iterator[tuple[str, list[str]]]:
    """Every real folder below the root (its path below the root, ``""`` for the root itself) with
    the names of its regular files that end in ``suffix``: one list per folder, no call per file
    (the root's first, then each folder's before its subfolders')."""
    chain = open_root(anchor, root_names)
    if chain is None:
        return
    try:
        for _folder, relative, entries in _folders(chain[-1], ""):
            names = file_names(entries, suffix)
            if names:
                yield relative[:-1], names
    finally:
        close_chain(chain)


def remove_temporary_files(anchor: str, root_names: list[str], deadline: float) -> int:
    """Delete the temporary files below the root last modified before ``deadline`` that no writer holds."""
    chain = open_root(anchor, root_names)
    if chain is None:
        return 0
    removed = 0
    try:
        for folder, _relative, entries in _folders(chain[-1], ""):
            removed += sum(1 for entry in entries if is_temporary_name(entry.name) and _collect(folder, entry.name,
                                                                                                  deadline))
    finally:
        close_chain(chain)
    return removed


def _collect(folder: Folder, name: str, deadline: float) -> bool:
    """Delete the temporary file ``name`` if it is old and unlocked; whether it was deleted.

    A live writer holds an ``flock`` on its temporary file until the file is in
    place: a lock we cannot take means a write in progress, whatever its age.
    We unlink only the inode we locked (the name may have moved on meanwhile).
    """
    try:
        fd = os.open(folder.at(name), _PROBE_FLAGS, dir_fd=folder.fd)
    except OSError:
        return False  # gone (its write finished), or a link: not a temporary file of ours
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode) or st.st_mtime >= deadline:
            return False
        if fcntl is not None:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return False  # a writer holds it: a live write
        current = os.stat(folder.at(name), dir_fd=folder.fd, follow_symlinks=False)
        if (current.st_ino, current.st_dev) != (st.st_ino, st.st_dev):
            return False
        os.unlink(folder.at(name), dir_fd=folder.fd)
        return True
    except FileNotFoundError:
        return False
    finally:
        os.close(fd)


def prune_empty_folders(anchor: str, root_names: list[str]) -> None:
    """Remove the empty folders below the root (never the root itself), deepest first."""
    chain = open_root(anchor, root_names)
    if chain is None:
        return
    try:
        _prune_below(chain[-1])
    finally:
        close_chain(chain)


def _prune_below(folder: Folder) -> None:
    try:
        entries = scan(folder)
    except (FileNotFoundError, NotADirectoryError, PermissionError):
        return
    for name in subfolder_names(entries):
        child = real_subfolder(folder, name)
        if child is None:
            continue
        try:
            _prune_below(child)
        finally:
            close_chain([child])
        with contextlib.suppress(OSError):  # not empty, or removed by someone else: both fine
            os.rmdir(folder.at(name), dir_fd=folder.fd)
