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

Where: ``$PERSIDICT_CACHE_DIR/code``, else ``$XDG_CACHE_HOME/persidict/code``,
else ``~/.cache/persidict/code``; ``PERSIDICT_CACHE_DIR=""`` disables it.  An
entry is written to a temporary file and renamed into place (a reader sees all
of it or nothing); a missing, unreadable or malformed entry is computed again,
and a folder that cannot be written is skipped: the cache only ever saves time.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import sys
from dataclasses import dataclass
from typing import Any

__all__ = ["Normalized", "cache_folder", "entry_name", "read", "write"]

NORMALIZATION = 1
"""The version of ``source.normalize``'s token stream: bump it when that changes (old entries are then ignored)."""

_VARIABLE = "PERSIDICT_CACHE_DIR"


@dataclass(frozen=True)
class Normalized:
    """What normalizing a definition's text yields: its digest, the names and attributes it loads, its state."""

    digest: bytes
    names: frozenset[str]
    attributes: frozenset[str]
    state: frozenset[str]


def cache_folder() -> str | None:
    """The folder of the entries (read from the environment on each use), or None when disabled."""
    configured = os.environ.get(_VARIABLE)
    if configured is not None:
        return os.path.join(os.path.abspath(configured), "code") if configured else None
    base = os.environ.get("XDG_CACHE_HOME", "")
    if not os.path.isabs(base):  # the XDG spec: a relative path is invalid and ignored
        base = os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "persidict", "code")


def entry_name(*parts: str) -> str:
    """The name of the entry for ``parts`` (variant, qualified name, source text), with the versions it depends on."""
    hasher = hashlib.sha256(f"persidict-code {NORMALIZATION} {sys.implementation.cache_tag}".encode())
    for part in parts:
        hasher.update(b"\x00" + part.encode("utf-8", "surrogatepass"))
    return hasher.hexdigest()


def _path(folder: str, entry: str) -> str:
    return os.path.join(folder, entry[:2], entry[2:] + ".json")


def read(entry: str) -> Normalized | None:
    """The entry's record, or None if there is none or it is not a whole, well-formed record of this entry."""
    folder = cache_folder()
    if folder is None:
        return None
    try:
        with open(_path(folder, entry), encoding="utf-8") as file:
            return _parse(json.load(file), entry)
    except (OSError, ValueError, TypeError, KeyError, AttributeError):
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
    if folder is None:
        return
    record = {"entry": entry, "digest": normalized.digest.hex(), "names": sorted(normalized.names),
              "attributes": sorted(normalized.attributes), "state": sorted(normalized.state)}
    path = _path(folder, entry)
    temporary = os.path.join(os.path.dirname(path), f".tmp-{os.getpid()}-{os.urandom(6).hex()}")
    try:
        handle = _create(temporary, folder)
    except OSError:
        return
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as file:
            json.dump(record, file)
        os.replace(temporary, path)  # atomic: a concurrent reader sees the old entry, none, or this one
    except OSError:
        with contextlib.suppress(OSError):
            os.unlink(temporary)


def _create(temporary: str, folder: str) -> int:
    """A new file open for writing, its folders made first if missing (private: entries are trusted as they are)."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL
    try:
        return os.open(temporary, flags, 0o600)
    except FileNotFoundError:
        os.makedirs(folder, mode=0o700, exist_ok=True)
        os.makedirs(os.path.dirname(temporary), mode=0o700, exist_ok=True)
        return os.open(temporary, flags, 0o600)
