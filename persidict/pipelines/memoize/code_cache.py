"""A per-machine cache of normalized code, keyed by the exact source text it was computed from.

Parsing and normalizing a function costs milliseconds; a new process (a
restarted kernel, a worker, a re-run script) would pay that again for code it
has seen before.  So every result of ``normalize`` is also written to one small
file, named by the SHA-256 of what it is a function of: the source text, the
qualified name looked for in it, the variant (whole decorators or not),
``NORMALIZATION`` (this module's version of the normalization) and the
interpreter (``sys.implementation.cache_tag``: its ``ast`` module).  Same text,
same parser, same normalization: same result, so an entry is exact, and an
edited function has new text, hence a new entry.

Where: this machine's cache (``backends/machine_cache.py``), kind ``code``:
``$PERSIDICT_CACHE_DIR/code``, else ``$XDG_CACHE_HOME/persidict/code``, else
``~/.cache/persidict/code``; ``PERSIDICT_CACHE_DIR=""`` disables it.  A missing,
unreadable or malformed entry is computed again: the cache only ever saves time.
"""

from __future__ import annotations

import hashlib
import sys
from dataclasses import dataclass
from typing import Any

from ...backends import machine_cache

__all__ = ["Normalized", "cache_folder", "entry_name", "read", "write"]

NORMALIZATION = 1
"""The version of ``source.normalize``'s token stream: bump it when that changes (old entries are then ignored)."""

@dataclass(frozen=True)
class Normalized:
    """What normalizing a definition's text yields: its digest, the names and attributes it loads, its state."""

    digest: bytes
    names: frozenset[str]
    attributes: frozenset[str]
    state: frozenset[str]


def cache_folder() -> str | None:
    """The folder of the entries (read from the environment on each use), or None when disabled."""
    return machine_cache.cache_folder("code")


def entry_name(*parts: str) -> str:
    """The name of the entry for ``parts`` (variant, qualified name, source text), with the versions it depends on."""
    hasher = hashlib.sha256(f"persidict-code {NORMALIZATION} {sys.implementation.cache_tag}".encode())
    for part in parts:
        hasher.update(b"\x00" + part.encode("utf-8", "surrogatepass"))
    return hasher.hexdigest()


def read(entry: str) -> Normalized | None:
    """The entry's record, or None if there is none or it is not a whole, well-formed record of this entry."""
    folder = cache_folder()
    if folder is None:
        return None
    try:
        return _parse(machine_cache.read_record(folder, entry), entry)
    except (ValueError, TypeError, KeyError, AttributeError):
        return None


def _parse(record: dict[str, Any], entry: str) -> Normalized | None:
    """A record as it was written (its own entry name inside: a file copied to another name does not count)."""
    if record["entry"] != entry:
        return None
    digest = bytes.fromhex(record["digest"])
    sets = [record[name] for name in ("names", "attributes", "state")]
    if len(digest) != hashlib.sha256().digest_size or not all(
        isinstance(names, list) and all(isinstance(name, str) for name in names) for names in sets
    ):
        return None
    return Normalized(digest, *(frozenset(names) for names in sets))


def write(entry: str, normalized: Normalized) -> None:
    """Store ``normalized`` as the entry, atomically; silently nothing if the folder cannot be written."""
    folder = cache_folder()
    if folder is not None:
        machine_cache.write_record(folder, entry, {
            "entry": entry, "digest": normalized.digest.hex(), "names": sorted(normalized.names),
            "attributes": sorted(normalized.attributes), "state": sorted(normalized.state)})
