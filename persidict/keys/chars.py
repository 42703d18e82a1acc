"""The characters a key component may hold: letters, digits and ``()_-~.=``.

Keys double as file and object names, so a component may use only
characters that are safe in paths and URLs on every platform.
(persidict 0.x's paths ``persidict.safe_chars``, ``persidict.safe_str_tuple`` and
``persidict.safe_str_tuple_signing`` name the modules of this folder, see ``_compat``.)
"""

from __future__ import annotations

import string

__all__ = [
    "SAFE_CHARS_SET",
    "SAFE_STRING_MAX_LENGTH",
    "contains_unsafe_chars",
    "get_safe_chars",
    "replace_unsafe_chars",
]

SAFE_CHARS_SET: frozenset[str] = frozenset(string.ascii_letters + string.digits + "()_-~.=")
"""The characters allowed in a key component: ASCII letters, digits and ``()_-~.=`` (69 in all)."""

SAFE_STRING_MAX_LENGTH = 254
"""Exclusive upper bound on a component's length: components have at most 253 characters."""

is_safe = SAFE_CHARS_SET.issuperset
"""``is_safe(s)``: whether every character of ``s`` is safe (bound once: it is on every key's path)."""


def get_safe_chars() -> set[str]:
    """Return a fresh, mutable copy of the allowed character set."""
    return set(SAFE_CHARS_SET)


def contains_unsafe_chars(a_str: str) -> bool:
    """Tell whether ``a_str`` has any character outside ``SAFE_CHARS_SET``."""
    return not is_safe(a_str)


def replace_unsafe_chars(a_str: str, replace_with: str) -> str:
    """Replace every character outside ``SAFE_CHARS_SET`` by ``replace_with``.

    Example:
        >>> replace_unsafe_chars("a b/c", "_")
        'a_b_c'
    """
    return "".join(c if c in SAFE_CHARS_SET else replace_with for c in a_str)
