"""Write ids and lineages: telling, after a lost answer, whether our request happened.

A conditional write whose answer was lost either happened or did not.  The
object's metadata says which: every write stores a random write id, and the
lineage of the version it replaced: the chain of versions before it, oldest
first, each as ``write-id:etag``, as far as they fit in ``LINEAGE_BUDGET``
characters (S3 allows 2 KB of metadata in all; an MD5 ETag is written in
base64url there, so 44 S3 versions fit).  Two markers make the chain
say more than who wrote:

- ``+`` is the absent state: the version after it was an insert-if-absent;
- ``-:<etag>`` is a version whose writer is unknown (a compare-and-swap on an
  ETag this process never read with its metadata).

So a chain shows both who wrote and what each write replaced.  Reading the
object after a lost answer gives a ``Verdict`` (``Lineages.verdict``): our
write id in the chain means *applied* (with the ETag recorded there, even if
other writers have written on top since: each of them wrote on a version
they had read, so ours is in their lineage); the version we expected still
there means *not applied yet* (sending again is safe); the version we
expected followed by someone else's write means *refused* (a compare-and-swap
on one version succeeds once); anything else (the chain no longer reaches
back to the version we expected) means the evidence is gone: *unknown*,
unless the chains this process learned since it read that version (one
``Lineages`` per bucket and filesystem, shared by every store and thread)
still show it: a busy process's readers see most versions go by.
"""

from __future__ import annotations

import base64
import enum
import re
import secrets
import threading
import weakref
from collections import OrderedDict
from collections.abc import Mapping
from typing import Any

__all__ = ["ABSENT_MARK", "LINEAGE_BUDGET", "EvidenceGone", "Lineages", "Verdict", "shared_lineages"]

LINEAGE_BUDGET = 1600
"""Characters of lineage a write carries: 44 S3 versions, about 50 GCS or Azure ones.

S3 limits an object's user metadata to 2 KB (names and values); this leaves
room for the names and the write id.  The chain must outlast the writes that
other writers can land between a lost answer and the read that follows it
at once (about one per round trip).
"""

MEMORY_SIZE = 10_000
"""Versions whose lineage one backend remembers (the least recently used are forgotten first)."""

ABSENT_MARK = "+"
"""The chain entry of the absent state: the version after it was an insert."""

UNKNOWN_WRITER = "-"
"""The write id of a version whose writer is unknown (its ETag is all the chain knows)."""


class Verdict(enum.Enum):
    """What reading the object after a lost answer proves about our request."""

    APPLIED = "applied"
    NOT_YET = "not applied, and what it expected is still there: sending it again is safe"
    REFUSED = "not applied: what it expected was replaced by another writer"
    UNKNOWN = "the stored object no longer shows whether it was applied"


class EvidenceGone(Exception):
    """After a lost answer, the stored object no longer shows whether our request was applied (internal)."""


class Lineages:
    """What one backend has seen of its objects' versions: ``(name, etag) -> chain``.

    ``id_key`` and ``lineage_key`` are the metadata names (clouds differ in
    what they allow).
    """

    def __init__(self, id_key: str, lineage_key: str) -> None:
        self.id_key = id_key
        self.lineage_key = lineage_key
        self._seen: OrderedDict[tuple[str, str], tuple[int, str]] = OrderedDict()
        """``(name, etag) -> (when it was learned, chain)``: "when" counts the chains learned."""
        self._learned = 0
        self._lock = threading.Lock()  # one backend serves many threads

    @staticmethod
    def new_write_id() -> str:
        """A random id for one write: 64 bits in 11 characters (base64url), so a chain holds more versions."""
        return secrets.token_urlsafe(8)

    def learn(self, name: str, etag: str, metadata: Mapping[str, str] | None) -> None:
        """Remember the chain that ends with a version we read (that version included)."""
        write_id = (metadata or {}).get(self.id_key)
        if not write_id:
            return  # not written by persidict: nothing to carry forward
        chain = _extended((metadata or {}).get(self.lineage_key, ""), f"{write_id}:{_compact(etag)}")
        with self._lock:
            self._learned += 1
            self._seen[name, etag] = (self._learned, chain)
            self._seen.move_to_end((name, etag))
            if len(self._seen) > MEMORY_SIZE:
                self._seen.popitem(last=False)

    def metadata_for(self, name: str, replaced: str | None, write_id: str, *, insert: bool = False) -> dict[str, str]:
        """The metadata of a write that replaces version ``replaced``, or inserts (``insert``), or neither.

        A blind write (neither) starts a chain with no history: it cannot know what it replaces.
        """
        metadata = {self.id_key: write_id}
        if insert:
            metadata[self.lineage_key] = ABSENT_MARK
        elif replaced:
            with self._lock:
                _, chain = self._seen.get((name, replaced), (0, ""))
            metadata[self.lineage_key] = chain or f"{UNKNOWN_WRITER}:{_compact(replaced)}"
        return metadata

    def verdict(
        self,
        write_id: str | None,
        expected: str | None,
        etag: str,
        metadata: Mapping[str, str] | None,
        *,
        insert: bool = False,
        seen_since: tuple[str, int] | None = None,
    ) -> tuple[Verdict, str | None]:
        """What the stored version ``etag`` (with ``metadata``) proves about our request.

        ``write_id`` is our write's (``None`` for a delete, which leaves none);
        ``expected`` the ETag our request replaces or deletes (``None``: an
        insert if ``insert``, else a blind write).  Returns the verdict, with
        the ETag our write produced when it was applied.  When the stored
        chain no longer reaches back that far, the chains of the object this
        backend has learned since (``seen_since``: its name and ``mark()``,
        taken as the request left; any thread's reads) may still show it.
        """
        chain = self.chain_of(etag, metadata)
        for entry_id, entry_etag in chain:
            if entry_id == write_id:
                return Verdict.APPLIED, entry_etag
        if not insert and expected is None:
            return Verdict.NOT_YET, None  # a blind write replaces whatever is there: sending it again is safe
        if expected is not None and etag == expected:
            return Verdict.NOT_YET, None
        if _replaced_by_another(chain, expected):
            return Verdict.REFUSED, None
        return (Verdict.UNKNOWN, None) if seen_since is None else self._learned_since(*seen_since, write_id, expected)

    def mark(self, name: str, replaced: str | None) -> int:
        """A point in this backend's learning, for ``verdict``'s ``seen_since``: when version ``replaced``
        of ``name`` was last learned (every chain since shows what became of it), else now."""
        with self._lock:
            return self._seen.get((name, replaced), (self._learned, ""))[0] if replaced else self._learned

    def _learned_since(
        self, name: str, since: int, write_id: str | None, expected: str | None
    ) -> tuple[Verdict, str | None]:
        """The verdict the chains of ``name`` learned after ``since`` prove (each is a true part of its history).

        Our write id in any of them means applied; what we expected replaced by
        a write in any of them means refused (that write is not ours: ours
        would have been found first).  Only chains learned after the version
        we replace was (or, for an insert, after the request left) count: an
        older one may show an earlier life of the object (an absence before a
        delete and an insert, a value stored again).
        """
        with self._lock:
            chains = [_chain(text) for (seen, _), (when, text) in self._seen.items() if seen == name and when > since]
        for chain in chains:
            for entry_id, entry_etag in chain:
                if write_id is not None and entry_id == write_id:
                    return Verdict.APPLIED, entry_etag
        if any(_replaced_by_another(chain, expected) for chain in chains):
            return Verdict.REFUSED, None
        return Verdict.UNKNOWN, None

    def gone(self, expected: str | None, etag: str, metadata: Mapping[str, str] | None) -> EvidenceGone:
        """The error for an ``UNKNOWN`` verdict, saying how far back the object's chain reaches."""
        chain = self.chain_of(etag, metadata)
        created = chain[0][0] == ABSENT_MARK
        start = "its creation" if created else f"version {chain[0][1] or '?'}"
        wanted = "the absence" if expected is None else f"version {expected}"
        return EvidenceGone(f"its chain of {len(chain) - created} versions reaches back to {start}, "
                            f"not to {wanted} our request replaced")

    def chain_of(self, etag: str, metadata: Mapping[str, str] | None) -> list[tuple[str, str]]:
        """The versions of a stored object's chain, oldest first, ending with the object itself."""
        metadata = metadata or {}
        return [*_chain(metadata.get(self.lineage_key, "")), (metadata.get(self.id_key, UNKNOWN_WRITER), etag)]


_SHARED: weakref.WeakKeyDictionary[Any, dict[tuple[str, str, str], Lineages]] = weakref.WeakKeyDictionary()
_SHARED_LOCK = threading.Lock()


def shared_lineages(fs: Any, bucket: str, id_key: str, lineage_key: str) -> Lineages:
    """The one ``Lineages`` of a bucket on filesystem ``fs`` in this process.

    Every store and thread on the bucket then learns for all: after a lost
    answer, the versions any of them read meanwhile can still show what became
    of it when the stored chain no longer reaches back that far.  (fsspec
    filesystems with the same options are one instance, and compare equal.)
    """
    with _SHARED_LOCK:
        try:
            per_bucket = _SHARED.setdefault(fs, {})
        except TypeError:  # a filesystem that cannot be weakly referenced: this store learns alone
            return Lineages(id_key, lineage_key)
        return per_bucket.setdefault((bucket, id_key, lineage_key), Lineages(id_key, lineage_key))


def _chain(text: str) -> list[tuple[str, str]]:
    """The entries of a chain's text, oldest first."""
    return [_parsed(entry) for entry in text.split()]


def _parsed(entry: str) -> tuple[str, str]:
    """``(write id, etag)`` of a chain entry; the absent marker is ``("+", "")``."""
    entry_id, _, entry_etag = entry.partition(":")
    return entry_id, _expanded(entry_etag)


_QUOTED_MD5 = re.compile(r'"[0-9a-f]{32}"')
_COMPACT_MARK = "~"  # no ETag starts with it: S3's and Azure's are quoted, GCS's are generation numbers


def _compact(etag: str) -> str:
    """An ETag as a chain entry holds it: a quoted MD5 in hex (S3's ETag of a single PUT, 34 characters)
    as ``~`` and its 16 bytes in unpadded base64url (23 characters); any other ETag as it is."""
    if _QUOTED_MD5.fullmatch(etag):
        return _COMPACT_MARK + base64.urlsafe_b64encode(bytes.fromhex(etag[1:-1])).decode().rstrip("=")
    return etag


def _expanded(text: str) -> str:
    """The ETag a chain entry's ``_compact`` form stands for, exactly as the store gave it."""
    if text.startswith(_COMPACT_MARK):
        return '"' + base64.urlsafe_b64decode(text[1:] + "==").hex() + '"'
    return text


def _replaced_by_another(chain: list[tuple[str, str]], expected: str | None) -> bool:
    """Whether the chain shows what our write expected (a version, or ``None``: absence) replaced by a write.

    Our own write is not in the chain (checked first), so that write was another's.
    """
    for entry_id, entry_etag in chain[:-1]:  # the versions that something was written on top of
        if expected is None and entry_id == ABSENT_MARK:
            return True
        if expected is not None and entry_id != ABSENT_MARK and entry_etag == expected:
            return True
    return False


def _extended(chain: str, entry: str) -> str:
    """``chain`` plus one more version, dropping the oldest versions beyond ``LINEAGE_BUDGET`` characters."""
    entries = [*chain.split(), entry]
    size = sum(len(e) + 1 for e in entries) - 1
    start = 0
    while size > LINEAGE_BUDGET and start < len(entries) - 1:
        size -= len(entries[start]) + 1
        start += 1
    return " ".join(entries[start:])
