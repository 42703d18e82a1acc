"""``len()`` of a local store: each folder counted again only once it has changed, in any process.

Adding, removing or renaming an entry changes its folder's mtime and ctime, so a
folder whose ``stat`` is as it was holds the same names, hence the same number of
keys.  A count remembers, per folder, that signature (device, inode, mtime, ctime,
size), the folder's count and its subfolders, and the next count lists only the
folders whose signature moved.  A folder whose mtime is less than
``SETTLE_SECONDS`` old is not remembered: timestamps may be a clock tick coarse,
and a change within the tick would leave them as they were (a later one moves
them: never back to a settled time, and an mtime set back by hand moves the
ctime).  That is git's rule for its index of a working tree, for the same reason.

What a count found is also kept in this machine's cache (``machine_cache``, kind
``counts``): one record per store folder, way of counting and host, rewritten when
a count finds something new.  So a new process (a restarted kernel, a worker, a
dashboard) counting an unchanged store of a million keys lists nothing: it checks
each folder's ``stat`` against the record.  The first count on a machine lists
and checks every name (one md5 each: only names that are keys count).
"""

from __future__ import annotations

import functools
import hashlib
import os
import socket
import time
from collections.abc import Callable
from typing import Any

from . import machine_cache
from .beneath import Folder, close_chain, scan
from .local_tree import file_names, open_root, real_subfolder, subfolder_names

__all__ = ["CountNames", "FolderCounts"]

CountNames = Callable[[str, list[str]], int]
"""Counts the keys of a folder: given its path below the root and the names of its files."""

Counted = tuple[tuple[int, ...], int, list[str]]
"""A folder's stat signature, how many keys it held and the names of its subfolders."""

RECORD_FORMAT = 1
"""The version of the records' layout (and of what a signature is): records of another are ignored."""


class FolderCounts:
    """The counts of one local backend's folders, by way of counting (see the module's docstring)."""

    SETTLE_SECONDS = 2.0
    LIMIT = 1 << 16  # folders remembered per way of counting (a tree with more counts the rest each time)

    def __init__(self) -> None:
        self._known: dict[tuple[str, str], dict[str, Counted]] = {}  # (suffix, counting) -> folder -> counted

    def count(self, anchor: str, root_names: list[str], suffix: str, count_names: CountNames, counting: str) -> int:
        """How many names below the root ``count_names`` counts (it gets a folder's path below the root
        and the names of its regular files ending in ``suffix``), folder by folder.  ``counting`` names
        what ``count_names`` counts, changing whenever its answer for the same names could."""
        chain = open_root(anchor, root_names)
        if chain is None:
            return 0
        record = _record(chain[-1].path, suffix, counting)
        known = self._known.get((suffix, counting))
        if known is None:
            known = record.read()
        found: dict[str, Counted] = {}
        settled_before = time.time_ns() - int(self.SETTLE_SECONDS * 1e9)
        try:
            total = self._count_in(chain[-1], "", suffix, count_names, _Walk(known, found, settled_before))
        finally:
            close_chain(chain)
        self._known[suffix, counting] = found  # folders gone since are forgotten
        if found != known:
            record.write(found)
        return total

    def _count_in(self, folder: Folder, relative: str, suffix: str, count_names: CountNames, walk: _Walk) -> int:
        try:
            st = os.stat(folder.path) if folder.fd is None else os.fstat(folder.fd)  # before listing: a change
            signature = (st.st_dev, st.st_ino, st.st_mtime_ns, st.st_ctime_ns, st.st_size)  # after it shows
            counted = walk.known.get(relative)
            if counted is None or counted[0] != signature:
                entries = scan(folder)
                counted = (signature, count_names(relative[:-1], file_names(entries, suffix)),
                           subfolder_names(entries))
            if st.st_mtime_ns < walk.settled_before and len(walk.found) < self.LIMIT:
                walk.found[relative] = counted
        except (FileNotFoundError, NotADirectoryError, PermissionError):
            return 0  # removed while we counted, or not ours to read
        count = counted[1]
        for name in counted[2]:
            child = real_subfolder(folder, name)
            if child is not None:
                try:
                    count += self._count_in(child, relative + name + "/", suffix, count_names, walk)
                finally:
                    close_chain([child])
        return count


class _Walk:
    """One count's state: what was known before it, what it found settled, and what counts as settled."""

    __slots__ = ("found", "known", "settled_before")

    def __init__(self, known: dict[str, Counted], found: dict[str, Counted], settled_before: int) -> None:
        self.known, self.found, self.settled_before = known, found, settled_before


@functools.lru_cache(maxsize=256)
def _record(root: str, suffix: str, counting: str) -> _Record:
    """The record of one store folder's counts (its name hashed once per process, not per count)."""
    return _Record(root, suffix, counting)


class _Record:
    """The machine-cache record of one store folder's counts, for one suffix, way of counting and host."""

    def __init__(self, root: str, suffix: str, counting: str) -> None:
        self.identity = [RECORD_FORMAT, socket.gethostname(), root, suffix, counting]
        self.name = hashlib.sha256(repr(self.identity).encode("utf-8", "surrogatepass")).hexdigest()

    def read(self) -> dict[str, Counted]:
        """The counts recorded (none if there is no whole, well-formed record of this very identity)."""
        folder = machine_cache.cache_folder("counts")
        if folder is None:
            return {}
        try:
            return _parse(machine_cache.read_record(folder, self.name), self.identity)
        except (TypeError, KeyError, ValueError, AttributeError):
            return {}

    def write(self, found: dict[str, Counted]) -> None:
        """Record ``found`` in place of what was recorded (nothing if the cache is off or cannot be written)."""
        folder = machine_cache.cache_folder("counts")
        if folder is not None:
            folders = {relative: [*signature, count, subfolders] for relative, (signature, count, subfolders)
                       in found.items()}
            machine_cache.write_record(folder, self.name, {"identity": self.identity, "folders": folders})


def _parse(record: Any, identity: list[Any]) -> dict[str, Counted]:
    """The counts of a record written for ``identity``; raises on anything that is not one."""
    if record["identity"] != identity:
        return {}  # another store's record under this name: never trusted
    known: dict[str, Counted] = {}
    for relative, (*signature, count, subfolders) in record["folders"].items():
        if (len(signature) != 5 or not all(type(number) is int for number in (*signature, count))
                or not isinstance(relative, str) or not all(map(_is_plain_name, subfolders))):
            raise ValueError("malformed count record")
        known[relative] = (tuple(signature), count, list(subfolders))
    return known


def _is_plain_name(name: object) -> bool:
    """Whether ``name`` names an entry of a folder, not a path to somewhere else."""
    return isinstance(name, str) and name not in ("", ".", "..") and "/" not in name and "\0" not in name
