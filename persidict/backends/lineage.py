"""Write ids and lineages: telling, after a lost answer, whether our write happened.

A conditional write whose answer was lost and whose resend was refused (412)
either happened or did not.  The object's metadata says which: every write
stores a random write id, and the lineage of the version it replaced (the
write ids and ETags of the last few versions before it).  If our id is the
object's, or appears in its lineage, our write happened, with the ETag
recorded there, even if other writers have changed the object since (each of
them wrote on top of a version they had read, so our write is in their
lineage).  A write that replaces a version this process has not seen (a
blind overwrite, or an ETag from elsewhere) starts a new lineage.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping

__all__ = ["LINEAGE_LENGTH", "Lineages"]

LINEAGE_LENGTH = 8
"""Versions remembered in each object's metadata: enough for the writers racing one key."""

MEMORY_SIZE = 100_000
"""Versions whose lineage one backend remembers (forgotten all at once when full)."""


class Lineages:
    """What one backend has seen of its objects' versions: ``(name, etag) -> "id:etag ..."``.

    ``id_key`` and ``lineage_key`` are the metadata names (clouds differ in
    what they allow).
    """

    def __init__(self, id_key: str, lineage_key: str) -> None:
        self.id_key = id_key
        self.lineage_key = lineage_key
        self._seen: dict[tuple[str, str], str] = {}

    @staticmethod
    def new_write_id() -> str:
        """A random id for one write."""
        return secrets.token_hex(8)

    def learn(self, name: str, etag: str, metadata: Mapping[str, str] | None) -> None:
        """Remember the lineage of a version we read (including that version itself)."""
        write_id = (metadata or {}).get(self.id_key)
        if not write_id:
            return
        if len(self._seen) >= MEMORY_SIZE:
            self._seen.clear()
        self._seen[name, etag] = _extended((metadata or {}).get(self.lineage_key, ""), write_id, etag)

    def metadata_for(self, name: str, replaced: str | None, write_id: str) -> dict[str, str]:
        """The metadata of a write that replaces version ``replaced`` (``None``: no known version)."""
        metadata = {self.id_key: write_id}
        lineage = self._seen.get((name, replaced), "") if replaced else ""
        if lineage:
            metadata[self.lineage_key] = lineage
        return metadata

    def our_etag(self, write_id: str, etag: str, metadata: Mapping[str, str] | None) -> str | None:
        """The ETag our write ``write_id`` produced, if version ``etag`` or one it descends from is ours."""
        metadata = metadata or {}
        if metadata.get(self.id_key) == write_id:
            return etag
        for entry in metadata.get(self.lineage_key, "").split():
            entry_id, _, entry_etag = entry.partition(":")
            if entry_id == write_id:
                return entry_etag
        return None


def _extended(lineage: str, write_id: str, etag: str) -> str:
    """``lineage`` plus one more version, keeping the last ``LINEAGE_LENGTH``."""
    entries = lineage.split()
    entries.append(f"{write_id}:{etag}")
    return " ".join(entries[-LINEAGE_LENGTH:])
