"""Names of the hidden temporary files writers use, and how to tell them from values.

A write goes to ``.__tmp__<16 hex digits>`` in the target folder and is then
moved into place.  Garbage collection (``remove_temporary_files``, ``persidict
gc``, ``clear``) deletes leftovers of killed writers, so it must never take a
value for one: it recognises exactly two patterns, ours and the one persidict
0.x used (``.__tmp__`` plus 8 characters of ``[a-z0-9_]``, from ``tempfile``).
Neither has a dot after the leading one, while every value's file is
``<component>.<format>`` with a non-empty component, so it has a dot after its
first character: a key's file, of any format, can never match.  Such keys
(``".__tmp__x"``) are therefore ordinary keys, never refused and never collected.
"""

from __future__ import annotations

import os
import re

__all__ = ["TEMP_PREFIX", "is_temporary_name", "new_temporary_name"]

TEMP_PREFIX = ".__tmp__"
_TEMPORARY_NAME = re.compile(r"\.__tmp__(?:[0-9a-f]{16}|[a-z0-9_]{8})")


def new_temporary_name() -> str:
    """A fresh temporary file name (64 random bits: two writers never pick the same one)."""
    return f"{TEMP_PREFIX}{os.urandom(8).hex()}"


def is_temporary_name(name: str) -> bool:
    """Whether the file name ``name`` (no folder) is a writer's temporary file, never a value."""
    return _TEMPORARY_NAME.fullmatch(name) is not None
