"""Digest suffixes: keys that differ only in letter case stay apart on case-insensitive disks.

Each component ``s`` of a key becomes ``s + "_" + base32(md5(s))[:digest_len].lower()``
in file names (the on-disk layout of persidict 0.x, reproduced bit for bit)::

    >>> sign_safe_str_tuple(("a", "Key"), 4)
    SafeStrTuple(('a_btax', 'Key_rfzv'))
"""

from __future__ import annotations

import base64
import functools
from collections.abc import Sequence

from .chars import SAFE_CHARS_SET, SAFE_STRING_MAX_LENGTH
from .tuples import SafeStrTuple, is_valid_component

try:  # CPython's own md5: on names of a few bytes it costs half of what OpenSSL's (hashlib.md5) does
    from _md5 import md5  # type: ignore[import-not-found]
except ImportError:  # pragma: no cover - an interpreter built without it
    from hashlib import md5
_HEXDIGEST = type(md5(b"")).hexdigest  # the method itself: map() calls it with no Python frame

__all__ = [
    "NAMING_RULES",
    "sign_component",
    "sign_safe_str_tuple",
    "signed_stems",
    "stem_of",
    "unsign_component",
    "unsign_safe_str_tuple",
]


NAMING_RULES = 1
"""The version of the rules that tell which file names are keys' (and whose): bump it when they change,
so that counts remembered under the old rules (``backends/local_counts.py``) are not trusted."""


def _check_digest_len(digest_len: object) -> int:
    """Return ``digest_len`` as an int, or raise for a non-int (bool included) or a negative."""
    if isinstance(digest_len, bool) or not isinstance(digest_len, int):
        raise TypeError(f"digest_len must be an int, got {type(digest_len)}")
    if digest_len < 0:
        raise ValueError(f"digest_len must be non-negative, got {digest_len}")
    return int(digest_len)


_B32_LOWER = "abcdefghijklmnopqrstuvwxyz234567"
_B32_SET = frozenset(_B32_LOWER)
_SAFE_OR_SLASH = SAFE_CHARS_SET | {"/"}
_B32_TO_INT_DIGITS = str.maketrans(_B32_LOWER, "0123456789abcdefghijklmnopqrstuv")  # for int(..., 32)


# Every pair of base32 characters, indexed by its 10 bits: a listing of a million files
# computes a million suffixes, two characters per lookup.
_B32_PAIRS = tuple(a + b for a in _B32_LOWER for b in _B32_LOWER)


def _suffix(s: str, digest_len: int) -> str:
    """``"_"`` + the first ``digest_len`` chars of base32(md5(s)), lowercased (``digest_len > 0``)."""
    digest = md5(s.encode("utf-8")).digest()
    if digest_len > 25:  # reaches the padded tail: let the standard encoder produce it
        return "_" + base64.b32encode(digest).decode()[:digest_len].lower()
    # The first 25 characters are plain 5-bit groups of the 128-bit digest
    # (base64.b32encode is pure Python in 3.11 and dominated this hot path).
    bits = int.from_bytes(digest, "big")
    if digest_len <= 4:  # the default of FileDirDict: two lookups
        return ("_" + _B32_PAIRS[bits >> 118] + _B32_PAIRS[(bits >> 108) & 1023])[:digest_len + 1]
    bits <<= 2  # 130 bits: 13 whole pairs
    pairs = (_B32_PAIRS[(bits >> (120 - 10 * i)) & 1023] for i in range((digest_len + 1) // 2))
    return ("_" + "".join(pairs))[:digest_len + 1]


def _has_own_suffix(s: str, digest_len: int) -> bool:
    """Tell whether ``s`` already ends with the suffix of its own stem."""
    cut = digest_len + 1
    # Most names cannot end in a suffix (no "_" where it would start): no md5 for them.
    return len(s) > cut and s[-cut] == "_" and s.endswith(_suffix(s[:-cut], digest_len))


# Cached: every file access signs or unsigns each component of its key.
@functools.lru_cache(maxsize=65536)
def _sign_cached(s: str, digest_len: int) -> str:
    signed = s if _has_own_suffix(s, digest_len) else s + _suffix(s, digest_len)
    if len(signed) >= SAFE_STRING_MAX_LENGTH:
        raise ValueError(
            f"Key component {s[:40]!r}... is too long to sign: with its digest suffix it "
            f"would have {len(signed)} characters, the maximum is {SAFE_STRING_MAX_LENGTH - 1}"
        )
    return signed


@functools.lru_cache(maxsize=65536)
def _unsign_cached(s: str, digest_len: int) -> str:
    return s[: -(digest_len + 1)] if _has_own_suffix(s, digest_len) else s


def stem_of(name: str, digest_len: int) -> str | None:
    """The component whose signed form is ``name``, or None if none is (``digest_len > 0``).

    ``name`` must end in the suffix of its stem, and the stem must not end in its own
    suffix (signing is idempotent, so such a stem signs to itself, not to ``name``).
    Uncached: a listing meets each name once.
    """
    cut = digest_len + 1
    if len(name) <= cut or name[-cut] != "_":
        return None
    stem = name[:-cut]
    if _suffix(stem, digest_len) != name[-cut:] or (len(stem) > cut and _has_own_suffix(stem, digest_len)):
        return None
    return stem


def signed_stems(names: Sequence[str], digest_len: int, ending: str) -> Sequence[str]:
    """The key components whose file names are among ``names`` (names that end in ``ending``), in
    order: ``stem_of`` of each name without ``ending``, for a whole folder at once (with
    ``digest_len == 0``, the names without ``ending`` that are valid components).

    Names of the wrong shape or with unsafe characters are dropped before any md5; the others
    cost one md5 each and no Python call (a listing of a million files checks a million digests).
    """
    cut = digest_len + 1 + len(ending) if digest_len else len(ending)
    named = [name for name in names if name[-cut:1 - cut] == "_"] if digest_len else names
    stems = [name[:-cut] for name in named]
    joined = "/".join(stems)  # "/" is in no component: each one is between two
    if not _all_valid(joined, stems):
        named = [name for name, stem in zip(named, stems, strict=True) if is_valid_component(stem)]
        stems = [name[:-cut] for name in named]
        joined = "/".join(stems)
    if not digest_len or not stems:
        return stems
    start, stop = 1 - cut, -len(ending) or None  # where a name's digest suffix is, after its "_"
    suffixes = [name[start:stop] for name in named]
    signed = _hex_checked(joined, stems, suffixes, digest_len)
    if signed is None:  # suffixes with characters no suffix has, or digests of odd lengths: one at a time
        signed = [stem for stem, suffix in zip(stems, suffixes, strict=True) if _suffix(stem, digest_len)[1:] == suffix]
    if "_" in (joined if signed is stems else "".join(signed)):  # a stem ending in its own suffix signs to
        signed = [stem for stem in signed if not _has_own_suffix(stem, digest_len)]  # itself, not to its name
    return signed


def _hex_checked(joined: str, stems: list[str], suffixes: list[str], digest_len: int) -> list[str] | None:
    """The ``stems`` (``joined`` by "/") whose ``suffixes`` are their digest suffixes; None where this
    way cannot tell.

    Every 4 base32 characters are 20 bits, 5 hex digits: the suffixes of a folder, read as one
    base32 number, are written in hex in C and compared at once with the start of each name's
    md5 in hex, so the md5s are the only work per name.
    """
    text = "".join(suffixes)
    if digest_len % 4 or digest_len > 24 or not _B32_SET.issuperset(text):
        return None
    width = digest_len * 5 // 4
    # Every md5 in hex (32 digits each), one after the other: no Python call per name.
    digests = "".join(map(_HEXDIGEST, map(md5, joined.encode().split(b"/"))))
    written = format(int(text.translate(_B32_TO_INT_DIGITS), 32), "x").zfill(width * len(stems))
    # Digit j of every suffix against digit j of every md5, all names at once (strided slices, in C).
    if all(written[j::width] == digests[j::32] for j in range(width)):
        return stems  # the usual case: every name is its key's
    return [stem for i, stem in enumerate(stems)
            if digests[32 * i:32 * i + width] == written[width * i:width * (i + 1)]]


def _all_valid(joined: str, stems: list[str]) -> bool:
    """Whether every one of ``stems`` (``joined`` by "/") is a valid key component, checked at once in C
    (the usual case)."""
    text = "/" + joined + "/"  # each component between two "/"
    return (_SAFE_OR_SLASH.issuperset(text) and "//" not in text and "/./" not in text and "/../" not in text
            and (not stems or max(map(len, stems)) < SAFE_STRING_MAX_LENGTH))


def sign_component(s: str, digest_len: int) -> str:
    """Append the digest suffix to one safe component (idempotent; no-op for ``digest_len == 0``).

    >>> sign_component("a", 4)
    'a_btax'

    Raises:
        TypeError: ``digest_len`` is not an int (``bool`` included).
        ValueError: ``digest_len`` is negative, or the signed component exceeds 253 characters.
    """
    if type(digest_len) is not int or digest_len < 0:
        # Validate before the cache: 1 == 1.0 == True would share cache entries.
        digest_len = _check_digest_len(digest_len)
    if digest_len == 0:
        return s
    return _sign_cached(s, digest_len)


def unsign_component(s: str, digest_len: int) -> str:
    """Strip the digest suffix from one component if it carries the suffix of its own stem.

    >>> unsign_component("a_btax", 4)
    'a'

    Raises:
        TypeError: ``digest_len`` is not an int (``bool`` included).
        ValueError: ``digest_len`` is negative.
    """
    if type(digest_len) is not int or digest_len < 0:
        digest_len = _check_digest_len(digest_len)
    if digest_len == 0:
        return s
    return _unsign_cached(s, digest_len)


def sign_safe_str_tuple(seq: SafeStrTuple | Sequence[str] | str, digest_len: int) -> SafeStrTuple:
    """Sign every component of ``seq`` (directories and file name alike).

    Raises:
        TypeError: a non-int ``digest_len`` or an invalid key part.
        ValueError: a negative ``digest_len``, an invalid string, or a component
            that becomes longer than 253 characters once signed.
    """
    digest_len = _check_digest_len(digest_len)
    strings = SafeStrTuple(seq).strings
    if digest_len:
        strings = tuple(_sign_cached(s, digest_len) for s in strings)
    return SafeStrTuple(strings)


def unsign_safe_str_tuple(seq: SafeStrTuple | Sequence[str] | str, digest_len: int) -> SafeStrTuple:
    """Strip the digest suffix from every component of ``seq`` that carries one.

    Raises:
        TypeError: a non-int ``digest_len`` or an invalid key part.
        ValueError: a negative ``digest_len`` or an invalid string (before or after stripping).
    """
    digest_len = _check_digest_len(digest_len)
    strings = SafeStrTuple(seq).strings
    if digest_len:
        strings = tuple(_unsign_cached(s, digest_len) for s in strings)
    # Re-validated: stripping "._<suffix of '.'>" would leave the reserved ".".
    return SafeStrTuple(strings)
