"""Keys: flat, immutable sequences of filename- and URL-safe strings.

Every item of a persistent dict is addressed by a ``NonEmptySafeStrTuple``:
a flat tuple of 1-253 character strings drawn from ``SAFE_CHARS_SET``.  Keys
double as paths (one component per directory level), which is why ``/``,
``\\``, ``.`` and ``..`` can never appear as a component.

This module also holds the digest-suffix scheme that keeps keys differing
only in letter case apart on case-insensitive file systems::

    >>> sign_safe_str_tuple(("a", "Key"), 4)
    SafeStrTuple(('a_btax', 'Key_rfzv'))
"""

from __future__ import annotations

import base64
import functools
import hashlib
import string
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, ClassVar, overload

__all__ = [
    "SAFE_CHARS_SET",
    "SAFE_STRING_MAX_LENGTH",
    "NonEmptySafeStrTuple",
    "SafeStrTuple",
    "contains_unsafe_chars",
    "get_safe_chars",
    "replace_unsafe_chars",
    "sign_component",
    "sign_safe_str_tuple",
    "to_nonempty_key",
    "unsign_component",
    "unsign_safe_str_tuple",
]

SAFE_CHARS_SET: frozenset[str] = frozenset(string.ascii_letters + string.digits + "()_-~.=")
"""The characters allowed in a key component: ASCII letters, digits and ``()_-~.=`` (69 in all)."""

SAFE_STRING_MAX_LENGTH = 254
"""Exclusive upper bound on a component's length: components have at most 253 characters."""

# Exactly "." and ".." would walk the directory tree; longer dotted names are fine.
_RESERVED_NAMES = frozenset({".", ".."})

# Bound once: these are called on every key access.
_is_safe = SAFE_CHARS_SET.issuperset
_new_object = object.__new__

# Entries per memo of to_nonempty_key (a few MB at most).
_KEY_CACHE_SIZE = 16384


def get_safe_chars() -> set[str]:
    """Return a fresh, mutable copy of the allowed character set."""
    return set(SAFE_CHARS_SET)


def contains_unsafe_chars(a_str: str) -> bool:
    """Tell whether ``a_str`` has any character outside ``SAFE_CHARS_SET``."""
    return not _is_safe(a_str)


def replace_unsafe_chars(a_str: str, replace_with: str) -> str:
    """Replace every character outside ``SAFE_CHARS_SET`` by ``replace_with``.

    >>> replace_unsafe_chars("a b/c", "_")
    'a_b_c'
    """
    return "".join(c if c in SAFE_CHARS_SET else replace_with for c in a_str)


def _is_valid_component(s: str) -> bool:
    """Fast yes/no check of one component (``_check_component`` explains a no)."""
    return 0 < len(s) < SAFE_STRING_MAX_LENGTH and _is_safe(s) and s not in _RESERVED_NAMES


def _check_component(s: str) -> str:
    """Validate one component and return it as a plain ``str``.

    The checks run in the contract's order (empty, reserved, length,
    characters), so the first failing rule names the error.
    """
    if not s:
        raise ValueError("Key components must be non-empty strings, got ''")
    if s in _RESERVED_NAMES:
        raise ValueError(f"{s!r} is not allowed as a key component (it is a reserved path name)")
    if len(s) >= SAFE_STRING_MAX_LENGTH:
        raise ValueError(
            f"Key component is too long: {len(s)} characters, the maximum is "
            f"{SAFE_STRING_MAX_LENGTH - 1}: {s[:40]!r}..."
        )
    if not _is_safe(s):
        bad = sorted({c for c in s if c not in SAFE_CHARS_SET})
        raise ValueError(f"Key component {s!r} contains unsafe characters: {bad!r}")
    # Plain str only: a str subclass (numpy.str_) would drag its type into pickles.
    return s if type(s) is str else str.__str__(s)


def _is_sequence(arg: object) -> bool:
    """Tell whether ``arg`` is to be flattened (a sequence that is not a mapping)."""
    if isinstance(arg, Sequence):
        return not isinstance(arg, Mapping)
    if isinstance(arg, Mapping) or callable(getattr(arg, "keys", None)):
        return False
    # Duck typing, so that numpy string arrays are accepted.
    return all(callable(getattr(arg, name, None)) for name in ("__getitem__", "__len__", "__iter__"))


def _flatten_into(args: Any, out: list[str]) -> None:
    """Append the validated strings of ``args`` (an iterable of key parts) to ``out``."""
    for arg in args:
        arg_type = type(arg)
        if arg_type is str:
            out.append(arg if _is_valid_component(arg) else _check_component(arg))
        elif arg_type is tuple or arg_type is list:  # the common sequences, without ABC checks
            _flatten_into(arg, out)
        elif isinstance(arg, SafeStrTuple):
            out.extend(arg.strings)
        elif isinstance(arg, str):
            out.append(_check_component(arg))
        elif _is_sequence(arg):
            _flatten_into(arg, out)
        else:
            raise TypeError(f"Invalid argument type: {type(arg)}")


class SafeStrTuple(Sequence[str]):
    """An immutable, flat sequence of safe strings; it may be empty (used for prefixes).

    Arguments are flattened left to right: strings, SafeStrTuples and any
    nested sequences of them.  ``SafeStrTuple("a", ["b", ("c",)])`` holds
    ``('a', 'b', 'c')``.  Instances hash and compare like the plain tuple
    in ``.strings``, so ``{SafeStrTuple("a"): 1}[("a",)]`` works.

    Raises:
        TypeError: keyword arguments, or a part that is neither a string nor a sequence.
        ValueError: a string that is empty, ``"."``/``".."``, too long or unsafe.
    """

    __slots__ = ("strings",)
    strings: tuple[str, ...]
    _allow_empty: ClassVar[bool] = True

    def __init__(self, *args: object, **kwargs: object) -> None:
        if kwargs:
            raise TypeError(f"Unexpected keyword arguments: {list(kwargs)}")
        out: list[str] = []
        _flatten_into(args, out)
        if not out and not self._allow_empty:
            raise ValueError(f"{type(self).__name__} must contain at least one string")
        _set_strings(self, tuple(out))

    @classmethod
    def _from_valid(cls, strings: tuple[str, ...]) -> SafeStrTuple:
        """Build an instance from a tuple of already validated plain strings (no checks)."""
        obj = _new_object(cls)
        _set_strings(obj, strings)
        return obj

    @property
    def str_chain(self) -> tuple[str, ...]:
        """Alias of ``.strings``."""
        return self.strings

    # Immutability: instances are hashed into dicts, so they must never change.
    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"{type(self).__name__} is immutable")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"{type(self).__name__} is immutable")

    # Explicit state: __setattr__ refuses the slot assignment default unpickling does.
    def __getstate__(self) -> dict[str, tuple[str, ...]]:
        return {"strings": self.strings}

    def __setstate__(self, state: dict[str, tuple[str, ...]]) -> None:
        strings = SafeStrTuple(state["strings"]).strings
        if not strings and not self._allow_empty:
            raise ValueError(f"{type(self).__name__} must contain at least one string")
        _set_strings(self, strings)

    def __copy__(self) -> SafeStrTuple:
        return self

    def __deepcopy__(self, memo: dict[int, Any]) -> SafeStrTuple:
        return self

    @overload
    def __getitem__(self, index: int) -> str: ...

    @overload
    def __getitem__(self, index: slice) -> tuple[str, ...]: ...

    def __getitem__(self, index: int | slice) -> str | tuple[str, ...]:
        return self.strings[index]

    def __len__(self) -> int:
        return len(self.strings)

    def __iter__(self) -> Iterator[str]:
        return iter(self.strings)

    def __contains__(self, item: object) -> bool:
        return item in self.strings

    def __reversed__(self) -> SafeStrTuple:  # type: ignore[override]  # contract: a SafeStrTuple, not an iterator
        return SafeStrTuple._from_valid(self.strings[::-1])

    def __hash__(self) -> int:
        return hash(self.strings)

    def __eq__(self, other: object) -> bool:
        """Compare strings, coercing plain strings, tuples and lists first.

        A SafeStrTuple subclass that overrides ``__eq__`` gets the final word,
        on either side of ``==``.  Uncoercible operands give ``NotImplemented``,
        so ``key == 5`` is simply False.
        """
        if type(other) is type(self):  # fast path: one class, one __eq__
            return self.strings == other.strings
        if isinstance(other, SafeStrTuple):
            other_eq = type(other).__eq__
            # Delegate only from the base implementation: an overriding class
            # that calls super().__eq__ must not be bounced back to (recursion).
            if other_eq is not _BASE_EQ and type(self).__eq__ is _BASE_EQ:
                return other_eq(other, self)
            return self.strings == other.strings
        try:
            coerced = SafeStrTuple(other)
        except (TypeError, ValueError):
            return NotImplemented
        return self.strings == coerced.strings

    def __add__(self, other: object) -> SafeStrTuple:
        try:
            tail = other.strings if isinstance(other, SafeStrTuple) else SafeStrTuple(other).strings
        except TypeError:
            return NotImplemented
        return SafeStrTuple._from_valid(self.strings + tail)

    def __radd__(self, other: object) -> SafeStrTuple:
        try:
            head = SafeStrTuple(other).strings
        except TypeError:
            return NotImplemented
        return SafeStrTuple._from_valid(head + self.strings)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.strings!r})"


_BASE_EQ = SafeStrTuple.__eq__
# The slot's own setter bypasses the class's __setattr__, which refuses writes.
_set_strings = SafeStrTuple.__dict__["strings"].__set__


class NonEmptySafeStrTuple(SafeStrTuple):
    """A ``SafeStrTuple`` with at least one string: the normalized form of every item key.

    Raises:
        ValueError: the flattened result is empty (``()``, ``[[]]``, no arguments),
            besides everything ``SafeStrTuple`` raises.
    """

    __slots__ = ()
    _allow_empty: ClassVar[bool] = False

    @classmethod
    def _from_valid(cls, strings: tuple[str, ...]) -> NonEmptySafeStrTuple:
        """Build an instance from a non-empty tuple of already validated plain strings."""
        obj = _new_object(cls)
        _set_strings(obj, strings)
        return obj


def _build_nonempty(strings: tuple[str, ...]) -> NonEmptySafeStrTuple:
    """Wrap a non-empty tuple of valid plain strings, skipping ``__init__``."""
    obj: NonEmptySafeStrTuple = _new_object(NonEmptySafeStrTuple)
    _set_strings(obj, strings)
    return obj


# Memo of normalized keys, because the same keys are normalized again and again.
# Plain dicts rather than lru_cache: a miss costs one failed lookup, not an
# eviction, and when full they are simply emptied.  Only valid keys made of
# plain strings are stored, and the values are immutable, so sharing them is
# safe.  Concurrent use needs no lock: a lost insertion only costs a rebuild.
_STR_KEYS: dict[str, NonEmptySafeStrTuple] = {}
_TUPLE_KEYS: dict[tuple[str, ...], NonEmptySafeStrTuple] = {}


def _remember(memo: dict[Any, NonEmptySafeStrTuple], key: Any, result: NonEmptySafeStrTuple) -> None:
    if len(memo) >= _KEY_CACHE_SIZE:
        memo.clear()
    memo[key] = result


def to_nonempty_key(key: object) -> NonEmptySafeStrTuple:
    """Normalize a key argument to a ``NonEmptySafeStrTuple``; the hot path of every dict method.

    Same result and same errors as ``NonEmptySafeStrTuple(key)``, but an
    existing ``NonEmptySafeStrTuple`` is returned as is, and strings and
    tuples of strings are memoized.
    """
    key_type = type(key)
    if key_type is NonEmptySafeStrTuple:
        return key  # type: ignore[return-value]  # checked by the type test above
    if key_type is str:
        result = _STR_KEYS.get(key)  # type: ignore[call-overload]
        if result is None:
            if not _is_valid_component(key):  # type: ignore[arg-type]
                return NonEmptySafeStrTuple(key)  # raises the precise error
            result = _build_nonempty((key,))  # type: ignore[arg-type]
            _remember(_STR_KEYS, key, result)
        return result  # type: ignore[no-any-return]
    if key_type is tuple:
        return _tuple_to_nonempty_key(key)  # type: ignore[arg-type]
    if isinstance(key, list):
        return _tuple_to_nonempty_key(tuple(key))
    if isinstance(key, SafeStrTuple) and key.strings:
        return _build_nonempty(key.strings)
    return NonEmptySafeStrTuple(key)


def _tuple_to_nonempty_key(key: tuple[Any, ...]) -> NonEmptySafeStrTuple:
    """The tuple branch of ``to_nonempty_key``."""
    try:
        result = _TUPLE_KEYS.get(key)
    except TypeError:  # an unhashable part, such as a list: the general path decides
        return NonEmptySafeStrTuple(key)
    if result is None:
        for part in key:
            if type(part) is not str or not _is_valid_component(part):
                return NonEmptySafeStrTuple(key)  # nested parts, or an error to raise
        if not key:
            return NonEmptySafeStrTuple(key)  # raises: empty
        result = _build_nonempty(key)
        _remember(_TUPLE_KEYS, key, result)
    return result


# ---------------------------------------------------------------------------
# Digest suffixes (on-disk layout: reproduce bit for bit)
# ---------------------------------------------------------------------------


def _check_digest_len(digest_len: object) -> int:
    """Return ``digest_len`` as an int, or raise for a non-int (bool included) or a negative."""
    if isinstance(digest_len, bool) or not isinstance(digest_len, int):
        raise TypeError(f"digest_len must be an int, got {type(digest_len)}")
    if digest_len < 0:
        raise ValueError(f"digest_len must be non-negative, got {digest_len}")
    return int(digest_len)


_B32_LOWER = "abcdefghijklmnopqrstuvwxyz234567"


def _suffix(s: str, digest_len: int) -> str:
    """``"_"`` + the first ``digest_len`` chars of base32(md5(s)), lowercased (``digest_len > 0``)."""
    digest = hashlib.md5(s.encode("utf-8")).digest()
    if digest_len > 25:  # reaches the padded tail: let the standard encoder produce it
        return "_" + base64.b32encode(digest).decode()[:digest_len].lower()
    # The first 25 characters are plain 5-bit groups of the 128-bit digest
    # (base64.b32encode is pure Python in 3.11 and dominated this hot path).
    bits = int.from_bytes(digest, "big")
    return "_" + "".join(_B32_LOWER[(bits >> (123 - 5 * i)) & 31] for i in range(digest_len))


def _has_own_suffix(s: str, digest_len: int) -> bool:
    """Tell whether ``s`` already ends with the suffix of its own stem."""
    cut = digest_len + 1
    return len(s) > cut and s.endswith(_suffix(s[:-cut], digest_len))


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
