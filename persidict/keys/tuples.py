"""Keys: flat sequences of filename- and URL-safe strings.

Every item of a persistent dict is addressed by a ``NonEmptySafeStrTuple``:
a flat tuple of 1-253 character strings drawn from ``SAFE_CHARS_SET``.  Keys
double as paths (one component per directory level), which is why ``/``,
``\\``, ``.`` and ``..`` can never appear as a component.

``SafeStrTuple`` is a plain class, as in persidict 0.x: a subclass may keep
attributes of its own (set them in ``__init__``, delete them, restore
``strings`` in its own ``__setstate__``), and instances pickle as their
``__dict__``, so pickles written by either package load in the other.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any, ClassVar, overload

from .chars import SAFE_CHARS_SET, SAFE_STRING_MAX_LENGTH, is_safe

__all__ = [
    "NonEmptySafeStrTuple",
    "SafeStrTuple",
    "forget_key",
    "is_valid_component",
    "key_text",
    "keys_in_folder",
    "to_nonempty_key",
]

# Exactly "." and ".." would walk the directory tree; longer dotted names are fine.
_RESERVED_NAMES = frozenset({".", ".."})

_new_object = object.__new__  # bound once: it builds every normalized key

# Entries per memo of to_nonempty_key (a few MB at most).
_KEY_CACHE_SIZE = 16384


def is_valid_component(s: str) -> bool:
    """Fast yes/no check of one component (``_check_component`` explains a no)."""
    return 0 < len(s) < SAFE_STRING_MAX_LENGTH and is_safe(s) and s not in _RESERVED_NAMES


def _check_component(s: str) -> str:
    """Validate one component and return it as a plain ``str``.

    The checks run in the documented order (docs/concepts.md#safe-characters: empty, reserved, length,
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
    if not is_safe(s):
        raise ValueError(_unsafe_message(s))
    # Plain str only: a str subclass (numpy.str_) would drag its type into pickles.
    return s if type(s) is str else str.__str__(s)


def _unsafe_message(s: str) -> str:
    """Why ``s`` cannot be a key component, and what to write instead."""
    bad = sorted({c for c in s if c not in SAFE_CHARS_SET})
    message = f"Key component {s!r} contains unsafe characters: {bad!r} (allowed: a-z A-Z 0-9 ( ) _ - ~ . =)"
    parts = [part for part in s.split("/") if part]
    if "/" in bad and len(parts) > 1 and all(is_valid_component(part) for part in parts):
        return f"{message}; a key with several parts is a tuple: write d[{', '.join(map(repr, parts))}]"
    replaced = "".join(c if c in SAFE_CHARS_SET else "_" for c in s)
    return (f"{message}; persidict.replace_unsafe_chars({s!r}, '_') gives {replaced!r}, "
            "and a key with several parts is a tuple of strings: d['folder', 'name']")


def _type_message(arg: object) -> str:
    """Why ``arg`` cannot be (part of) a key, and what to write instead."""
    message = f"Invalid argument type: {type(arg)}: keys are strings or tuples of strings (d['a'], d['a', 'b'])"
    if isinstance(arg, (int, float)):
        return f"{message}; for a key made of a number, write d[str({arg!r})]"
    return message


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
            out.append(arg if is_valid_component(arg) else _check_component(arg))
        elif arg_type is tuple or arg_type is list:  # the common sequences, without ABC checks
            _flatten_into(arg, out)
        elif isinstance(arg, SafeStrTuple):
            out.extend(arg.strings)
        elif isinstance(arg, str):
            out.append(_check_component(arg))
        elif _is_sequence(arg):
            _flatten_into(arg, out)
        else:
            raise TypeError(_type_message(arg))


class SafeStrTuple(Sequence[str]):
    """A flat sequence of safe strings; it may be empty (used for prefixes).

    Arguments are flattened left to right: strings, SafeStrTuples and any
    nested sequences of them.  ``SafeStrTuple("a", ["b", ("c",)])`` holds
    ``('a', 'b', 'c')``.  Instances hash and compare like the plain tuple
    in ``.strings``, so ``{SafeStrTuple("a"): 1}[("a",)]`` works.  The
    strings are a tuple and never change once a key is in use; subclasses
    may add attributes of their own.

    Raises:
        TypeError: keyword arguments, or a part that is neither a string nor a sequence.
        ValueError: a string that is empty, ``"."``/``".."``, too long or unsafe.
    """

    strings: tuple[str, ...]
    _allow_empty: ClassVar[bool] = True

    def __init__(self, *args: object, **kwargs: object) -> None:
        if kwargs:
            raise TypeError(f"Unexpected keyword arguments: {list(kwargs)}")
        out: list[str] = []
        _flatten_into(args, out)
        if not out and not self._allow_empty:
            raise ValueError(f"{type(self).__name__} must contain at least one string")
        self.__dict__["strings"] = tuple(out)

    @classmethod
    def _from_valid(cls, strings: tuple[str, ...]) -> SafeStrTuple:
        """Build an instance from a tuple of already validated plain strings (no checks)."""
        obj = _new_object(cls)
        obj.__dict__["strings"] = strings
        return obj

    @property
    def str_chain(self) -> tuple[str, ...]:
        """Alias of ``.strings``."""
        return self.strings

    # Normalized keys are memoized and shared (see to_nonempty_key), so the strings of
    # the two base classes are set once; a subclass's instances are its own business,
    # as in persidict 0.x (its __init__ and __setstate__ may assign them freely).
    def __setattr__(self, name: str, value: Any) -> None:
        if name == "strings" and type(self) in _SHARED_TYPES and "strings" in self.__dict__:
            raise AttributeError(f"the strings of a {type(self).__name__} cannot change")
        object.__setattr__(self, name, value)

    def __delattr__(self, name: str) -> None:
        if name == "strings" and type(self) in _SHARED_TYPES:
            raise AttributeError(f"the strings of a {type(self).__name__} cannot be deleted")
        object.__delattr__(self, name)

    def __setstate__(self, state: dict[str, Any]) -> None:
        """Restore a pickled instance (its ``__dict__``), validating the strings again."""
        strings = SafeStrTuple(state["strings"]).strings
        if not strings and not self._allow_empty:
            raise ValueError(f"{type(self).__name__} must contain at least one string")
        self.__dict__.update(state)
        self.__dict__["strings"] = strings

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

    def __reversed__(self) -> SafeStrTuple:  # type: ignore[override]  # a SafeStrTuple, not an iterator (docs/concepts.md#safestrtuple)
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

    # Keys order like tuples of strings, so sorted(d.keys()) works.
    def _other_strings(self, other: object) -> tuple[str, ...] | None:
        if isinstance(other, SafeStrTuple):
            return other.strings
        try:
            return SafeStrTuple(other).strings
        except (TypeError, ValueError):
            return None

    def __lt__(self, other: object) -> bool:
        strings = self._other_strings(other)
        return NotImplemented if strings is None else self.strings < strings

    def __le__(self, other: object) -> bool:
        strings = self._other_strings(other)
        return NotImplemented if strings is None else self.strings <= strings

    def __gt__(self, other: object) -> bool:
        strings = self._other_strings(other)
        return NotImplemented if strings is None else self.strings > strings

    def __ge__(self, other: object) -> bool:
        strings = self._other_strings(other)
        return NotImplemented if strings is None else self.strings >= strings

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


class NonEmptySafeStrTuple(SafeStrTuple):
    """A ``SafeStrTuple`` with at least one string: the normalized form of every item key.

    Raises:
        ValueError: the flattened result is empty (``()``, ``[[]]``, no arguments),
            besides everything ``SafeStrTuple`` raises.
    """

    _allow_empty: ClassVar[bool] = False

    @classmethod
    def _from_valid(cls, strings: tuple[str, ...]) -> NonEmptySafeStrTuple:
        """Build an instance from a non-empty tuple of already validated plain strings."""
        obj = _new_object(cls)
        obj.__dict__["strings"] = strings
        return obj


_SHARED_TYPES = frozenset({SafeStrTuple, NonEmptySafeStrTuple})


def keys_in_folder(folder: tuple[str, ...], stems: Iterable[str]) -> list[NonEmptySafeStrTuple]:
    """The keys ``(*folder, stem)`` of already validated plain strings: a listing builds one per
    file, so this loop makes no call per key."""
    keys: list[NonEmptySafeStrTuple] = []
    new, cls, append = _new_object, NonEmptySafeStrTuple, keys.append
    for strings in map(folder.__add__, zip(stems)):
        key = new(cls)
        key.__dict__["strings"] = strings
        append(key)
    return keys


def _build_nonempty(strings: tuple[str, ...]) -> NonEmptySafeStrTuple:
    """Wrap a non-empty tuple of valid plain strings, skipping ``__init__``."""
    obj: NonEmptySafeStrTuple = _new_object(NonEmptySafeStrTuple)
    obj.__dict__["strings"] = strings
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


def forget_key(strings: tuple[str, ...]) -> None:
    """Drop a key from the memo of normalized keys (its item was deleted: a churning process stays flat)."""
    _TUPLE_KEYS.pop(strings, None)
    if len(strings) == 1:
        _STR_KEYS.pop(strings[0], None)


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
            if not is_valid_component(key):  # type: ignore[arg-type]
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
            if type(part) is not str or not is_valid_component(part):
                return NonEmptySafeStrTuple(key)  # nested parts, or an error to raise
        if not key:
            return NonEmptySafeStrTuple(key)  # raises: empty
        result = _build_nonempty(key)
        _remember(_TUPLE_KEYS, key, result)
    return result


def key_text(key: SafeStrTuple) -> str:
    """A key as messages, logs and the command line show it: its parts joined by ``/``."""
    return "/".join(key.strings)


# Keys are stored inside values (pickles, jsonpickle): they keep persidict 0.x's module path.
for _cls in (SafeStrTuple, NonEmptySafeStrTuple):
    _cls.__module__ = "persidict.safe_str_tuple"
