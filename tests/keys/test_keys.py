"""Keys: the safe character set, SafeStrTuple / NonEmptySafeStrTuple, key
normalization and the digest-suffix scheme (docs/concepts.md#keys)."""

from __future__ import annotations

import base64
import copy
import hashlib
import itertools
import pickle
import re
import string
from collections.abc import Hashable, Iterator, Mapping, Sequence
from typing import Any

import persidict.safe_chars as safe_chars_module
import persidict.safe_str_tuple as keys_module
import persidict.safe_str_tuple_signing as signing_module
import pytest
from hypothesis import given
from hypothesis import strategies as st
from persidict.safe_chars import (
    SAFE_CHARS_SET,
    SAFE_STRING_MAX_LENGTH,
    contains_unsafe_chars,
    get_safe_chars,
    replace_unsafe_chars,
)
from persidict.safe_str_tuple import NonEmptySafeStrTuple, SafeStrTuple, to_nonempty_key
from persidict.safe_str_tuple_signing import (
    sign_component,
    sign_safe_str_tuple,
    unsign_component,
    unsign_safe_str_tuple,
)

# --------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------


def stable_id(value: Any) -> str:
    """``repr`` without memory addresses, so that every pytest-xdist worker collects the same ids."""
    return re.sub(r" at 0x[0-9a-fA-F]+", "", repr(value))


SAFE_ALPHABET = string.ascii_letters + string.digits + "()_-~.="

safe_components = st.text(alphabet=SAFE_ALPHABET, min_size=1, max_size=120).filter(
    lambda s: s not in (".", "..")
)


def reference_suffix(s: str, n: int) -> str:
    """The suffix of docs/concepts.md#digest-suffixes, written independently of the module under test."""
    if n == 0:
        return ""
    return "_" + base64.b32encode(hashlib.md5(s.encode("utf-8")).digest()).decode()[:n].lower()


def looks_signed(s: str, n: int) -> bool:
    return n > 0 and len(s) > n + 1 and s.endswith(reference_suffix(s[: -(n + 1)], n))


class DuckSequence:
    """A numpy-array-like container: not a registered Sequence, only the three methods."""

    def __init__(self, items: list[Any]) -> None:
        self._items = list(items)

    def __getitem__(self, index: int) -> Any:
        return self._items[index]

    def __len__(self) -> int:
        return len(self._items)

    def __iter__(self) -> Iterator[Any]:
        return iter(self._items)


class DuckWithKeys(DuckSequence):
    """Looks like a sequence, but has a callable ``keys``: treated as a mapping."""

    def keys(self) -> list[int]:
        return list(range(len(self)))


class StrSubclass(str):
    """Stands in for ``numpy.str_``."""


class TinyMapping(Mapping[str, str]):
    def __getitem__(self, key: str) -> str:
        return {"a": "b"}[key]

    def __len__(self) -> int:
        return 1

    def __iter__(self) -> Iterator[str]:
        return iter(["a"])


class AlwaysEqual(SafeStrTuple):
    """A subclass whose ``__eq__`` override must win on both sides of ``==``."""

    __slots__ = ()

    def __eq__(self, other: object) -> bool:
        return True

    __hash__ = SafeStrTuple.__hash__


class CaseInsensitive(SafeStrTuple):
    """An override that defers to the base ``__eq__`` through ``super()``."""

    __slots__ = ()

    def __eq__(self, other: object) -> bool:
        if isinstance(other, SafeStrTuple):
            return tuple(s.lower() for s in self) == tuple(s.lower() for s in other)
        return super().__eq__(other)

    __hash__ = SafeStrTuple.__hash__


class SuperCaller(SafeStrTuple):
    """Overrides ``__eq__`` but only calls ``super()``: must not recurse."""

    __slots__ = ()

    def __eq__(self, other: object) -> bool:
        return super().__eq__(other)

    __hash__ = SafeStrTuple.__hash__


class OtherSuperCaller(SuperCaller):
    __slots__ = ()

    def __eq__(self, other: object) -> bool:
        return super().__eq__(other)

    __hash__ = SafeStrTuple.__hash__


# --------------------------------------------------------------------------
# Character set and length (docs/concepts.md#safe-characters)
# --------------------------------------------------------------------------


def test_safe_chars_set_is_exactly_the_contract_characters() -> None:
    # Letters, digits and seven characters (docs/concepts.md#safe-characters):
    # 26 + 26 + 10 + 7 = 69.  All seven are needed ("=" pads long digests).
    assert isinstance(SAFE_CHARS_SET, frozenset)
    assert len(SAFE_CHARS_SET) == 69
    assert set(string.ascii_letters) | set(string.digits) | set("()_-~.=") == SAFE_CHARS_SET


def test_safe_string_max_length_is_254() -> None:
    assert SAFE_STRING_MAX_LENGTH == 254


def test_get_safe_chars_returns_a_fresh_mutable_copy() -> None:
    chars = get_safe_chars()
    assert type(chars) is set
    assert chars == SAFE_CHARS_SET
    chars.add("/")
    chars.discard("a")
    assert "/" not in get_safe_chars()
    assert "a" in get_safe_chars()
    assert get_safe_chars() is not get_safe_chars()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("abc", False),
        ("", False),
        ("A-Z_0.9(x)=~", False),
        ("a b", True),
        ("a/b", True),
        ("a\\b", True),
        ("%", True),
        ("\t", True),
        ("@", True),
        ("*", True),
        ("&", True),
        ("é", True),
    ],
)
def test_contains_unsafe_chars(text: str, expected: bool) -> None:
    assert contains_unsafe_chars(text) is expected


@pytest.mark.parametrize(
    ("text", "replace_with", "expected"),
    [
        ("a b/c", "_", "a_b_c"),
        ("safe_already", "_", "safe_already"),
        ("ü@x", "--", "----x"),
        ("a\nb", "", "ab"),
        ("", "_", ""),
    ],
)
def test_replace_unsafe_chars(text: str, replace_with: str, expected: str) -> None:
    result = replace_unsafe_chars(text, replace_with)
    assert result == expected


@given(st.text(max_size=50))
def test_replace_unsafe_chars_always_yields_safe_text(text: str) -> None:
    result = replace_unsafe_chars(text, "_")
    assert not contains_unsafe_chars(result)
    assert len(result) == len(text)


# --------------------------------------------------------------------------
# Construction (docs/concepts.md#safestrtuple)
# --------------------------------------------------------------------------


def test_flattens_arbitrarily_nested_parts() -> None:
    inner = SafeStrTuple("d", ["e"])
    key = SafeStrTuple("a", ["b", ("c", inner, [[], ()])], (), "f", NonEmptySafeStrTuple("g"))
    assert key.strings == ("a", "b", "c", "d", "e", "f", "g")


def test_nested_tuple_equals_flat_tuple() -> None:
    assert NonEmptySafeStrTuple(("a", ("b", "c"))) == NonEmptySafeStrTuple(("a", "b", "c"))
    assert NonEmptySafeStrTuple(("a", ("b", "c"))).strings == ("a", "b", "c")


@pytest.mark.parametrize("args", [(), ([],), ((),), ([[], ()],), (SafeStrTuple(),)])
def test_empty_safe_str_tuple_is_valid(args: tuple[Any, ...]) -> None:
    key = SafeStrTuple(*args)
    assert key.strings == ()
    assert len(key) == 0
    assert not key


@pytest.mark.parametrize("args", [(), ([],), ((),), ([[]],), (SafeStrTuple(),), ([[], ()],)])
def test_non_empty_rejects_empty_results(args: tuple[Any, ...]) -> None:
    with pytest.raises(ValueError, match="at least one"):
        NonEmptySafeStrTuple(*args)


def test_keyword_arguments_are_rejected() -> None:
    with pytest.raises(TypeError, match=r"Unexpected keyword arguments: \['strings'\]"):
        SafeStrTuple("a", strings=("b",))
    with pytest.raises(TypeError, match="Unexpected keyword arguments"):
        NonEmptySafeStrTuple(x=1)


@pytest.mark.parametrize(
    "bad",
    [1, 1.5, None, True, False, {"a": 1}, {"a"}, frozenset({"a"}), object(), 3j, TinyMapping()],
    ids=stable_id,
)
def test_invalid_argument_types_raise_type_error(bad: Any) -> None:
    with pytest.raises(TypeError, match=f"Invalid argument type: {type(bad)}"):
        SafeStrTuple(bad)
    with pytest.raises(TypeError, match="Invalid argument type"):
        SafeStrTuple(["ok", [bad]])
    with pytest.raises(TypeError, match="Invalid argument type"):
        NonEmptySafeStrTuple("ok", bad)


@pytest.mark.parametrize("bad", [b"ab", bytearray(b"ab"), range(2), memoryview(b"ab")], ids=stable_id)
def test_byte_strings_and_int_sequences_fail_on_their_int_elements(bad: Any) -> None:
    with pytest.raises(TypeError, match="Invalid argument type: <class 'int'>"):
        SafeStrTuple(bad)


def test_empty_bytes_is_an_empty_sequence() -> None:
    # bytes counts as a Sequence: an empty one contributes nothing.
    assert SafeStrTuple(b"").strings == ()


def test_mappings_and_objects_with_keys_are_rejected() -> None:
    with pytest.raises(TypeError, match="Invalid argument type"):
        SafeStrTuple(TinyMapping())
    with pytest.raises(TypeError, match="Invalid argument type"):
        SafeStrTuple(DuckWithKeys(["a", "b"]))
    with pytest.raises(TypeError, match="Invalid argument type"):
        SafeStrTuple({"a": "b"}.keys())


def test_duck_typed_sequences_are_flattened() -> None:
    key = SafeStrTuple(DuckSequence(["a", DuckSequence(["b", "c"])]), "d")
    assert key.strings == ("a", "b", "c", "d")
    assert NonEmptySafeStrTuple(DuckSequence([StrSubclass("x")])).strings == ("x",)
    with pytest.raises(ValueError):
        NonEmptySafeStrTuple(DuckSequence([]))


def test_str_subclasses_are_accepted_and_stored_as_plain_str() -> None:
    key = SafeStrTuple(StrSubclass("abc"), [StrSubclass("d")])
    assert key.strings == ("abc", "d")
    assert all(type(s) is str for s in key.strings)
    with pytest.raises(ValueError):
        SafeStrTuple(StrSubclass("a/b"))


def test_parts_are_processed_left_to_right() -> None:
    with pytest.raises(TypeError):
        SafeStrTuple("ok", 5, "")
    with pytest.raises(ValueError):
        SafeStrTuple("ok", "", 5)


@pytest.mark.parametrize(
    "args",
    [("..",), (".",), ("a", ".."), (["a", ["b", "."]],), (("x", ("..", "y")),), ("a", SafeStrTuple("b"), [[".."]])],
    ids=stable_id,
)
def test_dot_and_dot_dot_are_rejected_at_any_depth(args: tuple[Any, ...]) -> None:
    with pytest.raises(ValueError, match="reserved"):
        SafeStrTuple(*args)
    with pytest.raises(ValueError, match="reserved"):
        NonEmptySafeStrTuple(*args)


@pytest.mark.parametrize("name", [".hidden", "..name", "a.b", "...", "....", "a..", ".a.", "=", "~"])
def test_names_that_merely_contain_dots_are_accepted(name: str) -> None:
    assert SafeStrTuple(name).strings == (name,)
    assert SafeStrTuple(["d", [name]]).strings == ("d", name)
    assert to_nonempty_key(name).strings == (name,)


def test_length_limit_is_253_characters() -> None:
    ok = "a" * 253
    assert SafeStrTuple(ok).strings == (ok,)
    assert to_nonempty_key(ok).strings == (ok,)
    for too_long in ("a" * 254, "b" * 1000):
        with pytest.raises(ValueError, match="too long"):
            SafeStrTuple(too_long)
        with pytest.raises(ValueError, match="too long"):
            to_nonempty_key(too_long)
        with pytest.raises(ValueError, match="too long"):
            to_nonempty_key(("x", too_long))


def test_empty_string_is_rejected() -> None:
    for args in [("",), ("a", ""), ([""],), (("a", ("",)),)]:
        with pytest.raises(ValueError, match="non-empty"):
            SafeStrTuple(*args)


def test_check_order_empty_reserved_length_characters() -> None:
    # A string breaking several rules reports the first rule in the documented order (docs/concepts.md#safe-characters).
    with pytest.raises(ValueError, match="too long"):
        SafeStrTuple("/" * 300)
    with pytest.raises(ValueError, match="reserved"):
        SafeStrTuple("..")
    with pytest.raises(ValueError, match="unsafe"):
        SafeStrTuple("a/b")


@pytest.mark.parametrize(
    "bad",
    ["a b", "a/b", "/", "a\\b", "tab\there", "new\nline", "nul\x00", "del\x7f", "bell\x07", "%20", "a@b",
     "a*b", "a&b", "café", "日本", "ｆｕｌｌ", "a\u200bb", "emoji🙂", "a:b", "a?b", "a#b", "a+b", "a,b", "a'b"],
    ids=stable_id,
)
def test_unsafe_characters_are_rejected_and_named(bad: str) -> None:
    offending = sorted({c for c in bad if c not in SAFE_CHARS_SET})
    with pytest.raises(ValueError, match="unsafe characters") as info:
        SafeStrTuple(bad)
    assert repr(offending) in str(info.value)
    assert repr(bad) in str(info.value)
    with pytest.raises(ValueError):
        SafeStrTuple(["ok", (bad,)])
    with pytest.raises(ValueError):
        to_nonempty_key(bad)


@pytest.mark.parametrize("char", sorted(SAFE_CHARS_SET))
def test_every_safe_character_is_accepted(char: str) -> None:
    assert SafeStrTuple("x" + char + "y").strings == ("x" + char + "y",)


@given(st.lists(safe_components, max_size=5))
def test_valid_components_round_trip_through_construction(parts: list[str]) -> None:
    assert SafeStrTuple(parts).strings == tuple(parts)
    assert SafeStrTuple(*parts).strings == tuple(parts)


# --------------------------------------------------------------------------
# Object behaviour (docs/concepts.md#safestrtuple)
# --------------------------------------------------------------------------


def test_strings_attribute_and_str_chain_alias() -> None:
    key = SafeStrTuple("a", "b")
    assert key.strings == ("a", "b")
    assert type(key.strings) is tuple
    assert key.str_chain is key.strings


def test_is_a_hashable_sequence_but_not_a_tuple() -> None:
    key = NonEmptySafeStrTuple("a", "b")
    assert isinstance(key, Sequence)
    assert isinstance(key, Hashable)
    assert isinstance(key, SafeStrTuple)
    assert not isinstance(key, tuple)
    assert not isinstance(SafeStrTuple("a"), NonEmptySafeStrTuple)
    assert tuple(key) == ("a", "b")
    assert list(key) == ["a", "b"]


def test_hash_equals_the_plain_tuple_hash() -> None:
    assert hash(SafeStrTuple("a", "b")) == hash(("a", "b"))
    assert hash(NonEmptySafeStrTuple("a")) == hash(("a",))
    assert hash(SafeStrTuple()) == hash(())


def test_plain_tuples_find_safe_str_tuple_keys_in_dicts() -> None:
    assert {SafeStrTuple("a"): 1}[("a",)] == 1  # type: ignore[index]
    assert {NonEmptySafeStrTuple("a", "b"): 2}[("a", "b")] == 2  # type: ignore[index]
    assert {("x", "y"): 3}[NonEmptySafeStrTuple("x", "y")] == 3  # type: ignore[index]
    assert len({SafeStrTuple("a"), NonEmptySafeStrTuple("a"), ("a",)}) == 1


@pytest.mark.parametrize(
    "other", ["a", ("a",), ["a"], SafeStrTuple("a"), NonEmptySafeStrTuple("a"), [("a",)]], ids=stable_id
)
def test_equality_coerces_in_either_operand_order(other: Any) -> None:
    key = SafeStrTuple("a")
    assert key == other
    assert other == key
    assert not (key != other)
    assert not (other != key)


def test_equality_inside_containers() -> None:
    assert [SafeStrTuple("single")] == ["single"]
    assert [SafeStrTuple("single")] == ["single"]
    assert (NonEmptySafeStrTuple("a", "b"),) == (("a", "b"),)


def test_multi_component_equality() -> None:
    key = SafeStrTuple("a", "b")
    assert key == ("a", "b")
    assert key == ["a", ("b",)]
    assert key != ("b", "a")
    assert key != "a"
    assert key != ("a",)
    assert SafeStrTuple() == ()
    assert SafeStrTuple() == []
    assert SafeStrTuple() != ""


@pytest.mark.parametrize(
    "other",
    [5, 0, None, True, 1.5, {"a": 1}, {"a"}, object(), ["a", 1], ["a/b"], "a/b", "", [".."], b"a", TinyMapping()],
    ids=stable_id,
)
def test_equality_with_unrelated_or_invalid_values_is_false(other: Any) -> None:
    key = SafeStrTuple("a")
    assert (key == other) is False
    assert (other == key) is False
    assert (key != other) is True
    assert (other != key) is True
    assert key.__eq__(other) is NotImplemented


def test_keys_order_like_tuples_of_strings() -> None:
    keys = [NonEmptySafeStrTuple("b"), SafeStrTuple("a", "z"), NonEmptySafeStrTuple("a"), SafeStrTuple("B")]
    assert [k.strings for k in sorted(keys)] == sorted(k.strings for k in keys)
    assert SafeStrTuple("a") < SafeStrTuple("b") and SafeStrTuple("a") < ("a", "b") and SafeStrTuple("a") < ["b"]
    assert SafeStrTuple("a") >= "a" and SafeStrTuple("a") <= ("a",)
    with pytest.raises(TypeError):
        _ = SafeStrTuple("a") < 5  # type: ignore[operator]
    with pytest.raises(TypeError):
        _ = SafeStrTuple("a") >= ("not safe!",)


@pytest.mark.parametrize("base", [SafeStrTuple("a"), NonEmptySafeStrTuple("a"), SafeStrTuple()], ids=stable_id)
def test_subclass_eq_override_wins_on_both_sides(base: SafeStrTuple) -> None:
    odd = AlwaysEqual("zzz")
    assert base == odd
    assert odd == base
    assert not (base != odd)
    assert not (odd != base)


def test_subclass_eq_override_is_used_against_sibling_classes() -> None:
    # NonEmptySafeStrTuple is not a superclass of CaseInsensitive, so Python
    # alone would not prefer the subclass: the base __eq__ must delegate.
    assert NonEmptySafeStrTuple("ABC") == CaseInsensitive("abc")
    assert CaseInsensitive("abc") == NonEmptySafeStrTuple("ABC")
    assert NonEmptySafeStrTuple("ABC") != CaseInsensitive("abd")
    assert CaseInsensitive("abc") == "abc"
    assert CaseInsensitive("abc") != "ABC"  # plain str goes to the base comparison


def test_overrides_calling_super_do_not_recurse() -> None:
    a = SuperCaller("a")
    b = OtherSuperCaller("a")
    assert a == b
    assert b == a
    assert a == NonEmptySafeStrTuple("a")
    assert NonEmptySafeStrTuple("a") == a
    assert SafeStrTuple("a") == b
    assert a != OtherSuperCaller("b")
    assert CaseInsensitive("A") == a  # two unrelated overrides: no RecursionError


def test_indexing_delegates_to_the_tuple() -> None:
    key = NonEmptySafeStrTuple("a", "b", "c")
    assert key[0] == "a"
    assert key[-1] == "c"
    sliced = key[1:]
    assert type(sliced) is tuple
    assert sliced == ("b", "c")
    assert type(key[:0]) is tuple
    with pytest.raises(IndexError):
        key[3]


def test_len_iter_contains_count_index() -> None:
    key = SafeStrTuple("a", "b", "a")
    assert len(key) == 3
    assert list(iter(key)) == ["a", "b", "a"]
    assert "b" in key
    assert "c" not in key
    assert ("a",) not in key
    assert key.count("a") == 2
    assert key.count("z") == 0
    assert key.index("b") == 1
    with pytest.raises(ValueError):
        key.index("z")


@pytest.mark.parametrize(
    ("left", "right", "expected"),
    [
        (SafeStrTuple("a"), "b", ("a", "b")),
        (SafeStrTuple("a"), ("b", "c"), ("a", "b", "c")),
        (SafeStrTuple("a"), ["b"], ("a", "b")),
        (NonEmptySafeStrTuple("a"), SafeStrTuple("b"), ("a", "b")),
        (NonEmptySafeStrTuple("a"), NonEmptySafeStrTuple("b"), ("a", "b")),
        (SafeStrTuple(), (), ()),
        ("x", NonEmptySafeStrTuple("a"), ("x", "a")),
        (("x", "y"), NonEmptySafeStrTuple("a"), ("x", "y", "a")),
        (["x"], SafeStrTuple("a"), ("x", "a")),
        ((), SafeStrTuple(), ()),
    ],
    ids=stable_id,
)
def test_add_and_radd_return_a_base_safe_str_tuple(left: Any, right: Any, expected: tuple[str, ...]) -> None:
    result = left + right
    assert type(result) is SafeStrTuple
    assert result.strings == expected


def test_add_rejects_what_cannot_be_coerced() -> None:
    key = SafeStrTuple("a")
    with pytest.raises(TypeError):
        key + 5  # type: ignore[operator]
    with pytest.raises(TypeError):
        5 + key  # type: ignore[operator]
    with pytest.raises(ValueError):
        key + "a/b"
    with pytest.raises(ValueError):
        ".." + key


def test_reversed_returns_a_safe_str_tuple() -> None:
    result = reversed(NonEmptySafeStrTuple("a", "b", "c"))
    assert isinstance(result, SafeStrTuple)
    assert result.strings == ("c", "b", "a")
    assert reversed(SafeStrTuple()).strings == ()


def test_repr_uses_the_class_name() -> None:
    assert repr(SafeStrTuple("a", "b")) == "SafeStrTuple(('a', 'b'))"
    assert repr(NonEmptySafeStrTuple("a")) == "NonEmptySafeStrTuple(('a',))"
    assert repr(SafeStrTuple()) == "SafeStrTuple(())"
    assert repr(CaseInsensitive("x")) == "CaseInsensitive(('x',))"


def test_copy_and_deepcopy_return_the_same_object() -> None:
    for key in (SafeStrTuple("a", "b"), NonEmptySafeStrTuple("a"), SafeStrTuple()):
        assert copy.copy(key) is key
        assert copy.deepcopy(key) is key
        container = {"k": [key, (key,)]}
        deep = copy.deepcopy(container)
        assert deep["k"][0] is key
        assert deep["k"][1][0] is key
        assert copy.copy([key])[0] is key


@pytest.mark.parametrize("protocol", range(pickle.HIGHEST_PROTOCOL + 1))
@pytest.mark.parametrize(
    "key", [SafeStrTuple("a", "b"), NonEmptySafeStrTuple("x"), SafeStrTuple(), CaseInsensitive("Q")], ids=stable_id
)
def test_pickling_round_trips(key: SafeStrTuple, protocol: int) -> None:
    restored = pickle.loads(pickle.dumps(key, protocol=protocol))
    assert type(restored) is type(key)
    assert restored.strings == key.strings
    assert hash(restored) == hash(key)


def test_pickled_keys_inside_containers_round_trip() -> None:
    data = {NonEmptySafeStrTuple("a", "b"): [SafeStrTuple("c")]}
    restored = pickle.loads(pickle.dumps(data))
    assert restored[("a", "b")] == [("c",)]


@pytest.mark.parametrize("cls", [SafeStrTuple, NonEmptySafeStrTuple])
def test_the_strings_of_the_base_classes_never_change(cls: type[SafeStrTuple]) -> None:
    # Normalized keys are memoized and shared, so their strings are set once.
    key = cls("a")
    with pytest.raises(AttributeError, match="cannot change"):
        key.strings = ("b",)  # type: ignore[misc]
    with pytest.raises(AttributeError, match="cannot be deleted"):
        del key.strings
    assert key.strings == ("a",)
    assert to_nonempty_key("a").strings == ("a",)


class _Address(NonEmptySafeStrTuple):
    """A client's subclass, as in persidict 0.x: attributes of its own, its own __setstate__."""

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self._containing_portals: set[str] = set()
        self._ready_cache = "ready"

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.strings = state["strings"]
        self._containing_portals = set()


def test_a_subclass_keeps_attributes_of_its_own_and_restores_them_itself() -> None:
    address = _Address("ns", "obj")
    address._containing_portals.add("portal")
    del address._ready_cache
    address.extra = 1
    restored = pickle.loads(pickle.dumps(address))
    assert type(restored) is _Address and restored.strings == ("ns", "obj")
    assert restored._containing_portals == set() and not hasattr(restored, "_ready_cache")
    assert hash(restored) == hash(("ns", "obj")) and restored == ("ns", "obj")
    restored.strings = ("other",)  # a subclass's own business, as in 0.x
    assert restored == ("other",)


def test_keys_pickle_as_persidict_0x_pickles_them() -> None:
    # Bytes taken from persidict 0.309.0: a plain class, its __dict__ as the state.
    reference = (
        b"\x80\x04\x95H\x00\x00\x00\x00\x00\x00\x00\x8c\x18persidict.safe_str_tuple\x94\x8c\x0cSafeStrTuple"
        b"\x94\x93\x94)\x81\x94}\x94\x8c\x07strings\x94\x8c\x01a\x94\x8c\x01b\x94\x86\x94sb."
    )
    assert pickle.dumps(SafeStrTuple("a", "b"), protocol=4) == reference
    assert pickle.loads(reference) == ("a", "b")


def test_from_valid_builds_without_checks() -> None:
    key = NonEmptySafeStrTuple._from_valid(("a", "b"))
    assert type(key) is NonEmptySafeStrTuple
    assert key == ("a", "b")
    assert type(SafeStrTuple._from_valid(())) is SafeStrTuple


# --------------------------------------------------------------------------
# Key normalization: to_nonempty_key (docs/concepts.md#key-normalization)
# --------------------------------------------------------------------------


def test_to_nonempty_key_returns_an_existing_key_itself() -> None:
    key = NonEmptySafeStrTuple("a", "b")
    assert to_nonempty_key(key) is key


@pytest.mark.parametrize(
    "raw",
    ["a", ("a",), ["a"], SafeStrTuple("a"), NonEmptySafeStrTuple("a"), [("a",)], DuckSequence(["a"]), StrSubclass("a")],
    ids=stable_id,
)
def test_equivalent_keys_normalize_to_the_same_item(raw: Any) -> None:
    key = to_nonempty_key(raw)
    assert type(key) is NonEmptySafeStrTuple
    assert key.strings == ("a",)
    assert all(type(s) is str for s in key.strings)


@pytest.mark.parametrize(
    "raw",
    [("a", ("b", "c")), ["a", ["b"], "c"], ("a", SafeStrTuple("b", "c")), SafeStrTuple("a", "b", "c")],
    ids=stable_id,
)
def test_nested_keys_normalize_flat(raw: Any) -> None:
    key = to_nonempty_key(raw)
    assert type(key) is NonEmptySafeStrTuple
    assert key.strings == ("a", "b", "c")


@pytest.mark.parametrize(
    "raw",
    ["", ".", "..", "a/b", "a" * 254, "é", (), [], [[]], SafeStrTuple(), ("a", ""), ("a", ".."), ["a", "b c"],
     ("a", ["b", ".."]), 123, None, 1.5, True, {"a": 1}, {"a"}, b"ab", ("a", 1), ["a", None], ("a", ["b", 2]),
     object, TinyMapping()],
    ids=stable_id,
)
def test_to_nonempty_key_raises_exactly_like_the_constructor(raw: Any) -> None:
    with pytest.raises((TypeError, ValueError)) as expected:
        NonEmptySafeStrTuple(raw)
    with pytest.raises(type(expected.value)) as actual:
        to_nonempty_key(raw)
    assert str(actual.value) == str(expected.value)


def test_to_nonempty_key_memo_never_confuses_keys() -> None:
    # The same input twice (second time from the memo) and near-identical inputs.
    for _ in range(2):
        assert to_nonempty_key("k1").strings == ("k1",)
        assert to_nonempty_key("K1").strings == ("K1",)
        assert to_nonempty_key(("k1", "k2")).strings == ("k1", "k2")
        assert to_nonempty_key(["k1", "k2"]).strings == ("k1", "k2")
        assert to_nonempty_key(("k1", ("k2",))).strings == ("k1", "k2")
        with pytest.raises(ValueError):
            to_nonempty_key("k 1")
        with pytest.raises(TypeError):
            to_nonempty_key(("k1", ["k2", 3]))


def test_to_nonempty_key_memo_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(keys_module, "_KEY_CACHE_SIZE", 8)
    for i in range(50):
        assert to_nonempty_key(f"bounded_{i}").strings == (f"bounded_{i}",)
        assert to_nonempty_key((f"bounded_{i}", "x")).strings == (f"bounded_{i}", "x")
    assert len(keys_module._STR_KEYS) <= 8
    assert len(keys_module._TUPLE_KEYS) <= 8


@given(st.lists(safe_components, min_size=1, max_size=4))
def test_to_nonempty_key_agrees_with_the_constructor(parts: list[str]) -> None:
    expected = NonEmptySafeStrTuple(parts)
    assert to_nonempty_key(tuple(parts)) == expected
    assert to_nonempty_key(list(parts)).strings == expected.strings
    assert to_nonempty_key(parts[0]).strings == (parts[0],)


# --------------------------------------------------------------------------
# Digest suffixes (docs/concepts.md#digest-suffixes)
# --------------------------------------------------------------------------

VECTORS_4 = {"a": "a_btax", "b": "b_slvv", "Key": "Key_rfzv", "hello": "hello_lvau", "k": "k_rtsl",
             "s": "s_apd4", "top": "top_wkbv"}
VECTORS_8 = {"a": "a_btaxlooa", "b": "b_slvv77xg", "c": "c_jkfar4e5"}


def test_reference_base32_of_md5_a() -> None:
    digest = base64.b32encode(hashlib.md5(b"a").digest()).decode()
    assert digest == "BTAXLOOA6G3KQMODTHRGS5ZGME======"


@pytest.mark.parametrize(("n", "vectors"), [(4, VECTORS_4), (8, VECTORS_8)])
def test_contract_test_vectors(n: int, vectors: dict[str, str]) -> None:
    for plain, signed in vectors.items():
        assert sign_component(plain, n) == signed
        assert unsign_component(signed, n) == plain
        assert sign_safe_str_tuple(plain, n) == SafeStrTuple(signed)
        assert unsign_safe_str_tuple(signed, n) == SafeStrTuple(plain)
    plains, signeds = list(vectors), list(vectors.values())
    assert sign_safe_str_tuple(plains, n).strings == tuple(signeds)
    assert unsign_safe_str_tuple(signeds, n).strings == tuple(plains)


def test_every_component_of_a_path_is_signed() -> None:
    signed = sign_safe_str_tuple(("a", "Key", "hello"), 4)
    assert signed.strings == ("a_btax", "Key_rfzv", "hello_lvau")
    assert type(signed) is SafeStrTuple
    assert sign_safe_str_tuple(NonEmptySafeStrTuple("a", "b"), 8).strings == ("a_btaxlooa", "b_slvv77xg")
    assert type(sign_safe_str_tuple(NonEmptySafeStrTuple("a"), 4)) is SafeStrTuple
    assert type(unsign_safe_str_tuple(NonEmptySafeStrTuple("a_btax"), 4)) is SafeStrTuple


def test_signing_is_idempotent_and_the_quirk_holds() -> None:
    assert sign_component("a_btax", 4) == "a_btax"
    assert unsign_component("a_btax", 4) == "a"
    assert sign_safe_str_tuple(sign_safe_str_tuple(("a", "b"), 4), 4).strings == ("a_btax", "b_slvv")
    # The quirk: the user key "a_btax" lands on the same name as "a" ...
    assert sign_component("a_btax", 4) == sign_component("a", 4)
    # ... and reads back as ("a",).
    assert unsign_safe_str_tuple(sign_safe_str_tuple("a_btax", 4), 4).strings == ("a",)


def test_digest_len_zero_is_a_no_op() -> None:
    assert sign_component("a", 0) == "a"
    assert unsign_component("a_btax", 0) == "a_btax"
    result = sign_safe_str_tuple(("a", "b_x"), 0)
    assert type(result) is SafeStrTuple
    assert result.strings == ("a", "b_x")
    assert unsign_safe_str_tuple(("a_btax",), 0).strings == ("a_btax",)
    assert sign_safe_str_tuple((), 4).strings == ()


@pytest.mark.parametrize("bad", ["1", 1.5, 1.0, None, True, False, [4], "4"], ids=stable_id)
def test_non_int_digest_len_raises_type_error(bad: Any) -> None:
    sign_component("a", 1)  # a cached int entry must not let equal non-ints through
    with pytest.raises(TypeError, match="digest_len"):
        sign_component("a", bad)
    with pytest.raises(TypeError, match="digest_len"):
        unsign_component("a", bad)
    with pytest.raises(TypeError, match="digest_len"):
        sign_safe_str_tuple(("a",), bad)
    with pytest.raises(TypeError, match="digest_len"):
        unsign_safe_str_tuple(("a",), bad)


@pytest.mark.parametrize("bad", [-1, -4, -100])
def test_negative_digest_len_raises_value_error(bad: int) -> None:
    for func in (sign_component, unsign_component, sign_safe_str_tuple, unsign_safe_str_tuple):
        with pytest.raises(ValueError, match="digest_len"):
            func("a", bad)  # type: ignore[operator]


def test_long_digests_include_padding_and_stop_at_32() -> None:
    assert sign_component("a", 26) == "a_btaxlooa6g3kqmodthrgs5zgme"
    assert sign_component("a", 30) == "a_btaxlooa6g3kqmodthrgs5zgme===="
    assert sign_component("a", 32) == "a_btaxlooa6g3kqmodthrgs5zgme======"
    assert sign_component("a", 40) == "a_btaxlooa6g3kqmodthrgs5zgme======"
    assert unsign_component("a_btaxlooa6g3kqmodthrgs5zgme====", 30) == "a"
    # "=" is a safe character, so the signed tuple stays valid.
    assert sign_safe_str_tuple("a", 30).strings == ("a_btaxlooa6g3kqmodthrgs5zgme====",)


def test_signing_revalidates_the_length() -> None:
    n = 4
    longest = "a" * (253 - (n + 1))
    assert len(sign_component(longest, n)) == 253
    assert len(sign_safe_str_tuple(("d", longest), n)[1]) == 253
    too_long = longest + "a"
    with pytest.raises(ValueError, match="too long"):
        sign_component(too_long, n)
    with pytest.raises(ValueError, match="too long"):
        sign_safe_str_tuple(("d", too_long), n)
    # Without signing the same string is fine.
    assert sign_safe_str_tuple(too_long, 0).strings == (too_long,)


def test_sign_and_unsign_validate_their_input() -> None:
    with pytest.raises(ValueError):
        sign_safe_str_tuple("a/b", 4)
    with pytest.raises(ValueError):
        unsign_safe_str_tuple(("a", ".."), 4)
    with pytest.raises(TypeError):
        sign_safe_str_tuple(5, 4)  # type: ignore[arg-type]


def test_unsigning_a_reserved_stem_is_rejected() -> None:
    crafted = "." + reference_suffix(".", 4)
    assert SafeStrTuple(crafted).strings == (crafted,)  # a valid key by itself
    assert unsign_component(crafted, 4) == "."
    with pytest.raises(ValueError, match="reserved"):
        unsign_safe_str_tuple(crafted, 4)


@pytest.mark.parametrize(
    "name",
    ["hello", "a_xxxx", "a_BTAX", "_btax", "a_btaxx", "b_btax", "x_btax"],
)
def test_unsign_leaves_names_without_their_own_suffix_alone(name: str) -> None:
    assert unsign_component(name, 4) == name
    assert unsign_safe_str_tuple(name, 4).strings == (name,)


@given(safe_components, st.integers(min_value=0, max_value=19))
def test_sign_matches_the_reference_formula(s: str, n: int) -> None:
    expected = s if looks_signed(s, n) else s + reference_suffix(s, n)
    if len(expected) >= SAFE_STRING_MAX_LENGTH:
        with pytest.raises(ValueError):
            sign_component(s, n)
    else:
        assert sign_component(s, n) == expected


@given(st.lists(safe_components, max_size=4), st.integers(min_value=0, max_value=19))
def test_sign_unsign_round_trip(parts: list[str], n: int) -> None:
    signed = sign_safe_str_tuple(parts, n)
    assert len(signed) == len(parts)
    assert sign_safe_str_tuple(signed, n) == signed  # idempotent
    # Round trip, except for the documented quirk: a name that already ends
    # with its own suffix loses it.
    expected = tuple(p[: -(n + 1)] if looks_signed(p, n) else p for p in parts)
    assert unsign_safe_str_tuple(signed, n).strings == expected
    for part, signed_part in zip(parts, signed):
        assert sign_component(part, n) == signed_part
        assert unsign_component(signed_part, n) == (part[: -(n + 1)] if looks_signed(part, n) else part)


# --------------------------------------------------------------------------
# Keys differing only in case stay distinct (docs/concepts.md#digest-suffixes)
# --------------------------------------------------------------------------

CASE_VARIANTS = ["".join(chars) for chars in itertools.product("aA", repeat=4)]


def test_case_variants_are_distinct_keys() -> None:
    keys = {to_nonempty_key(v) for v in CASE_VARIANTS}
    assert len(keys) == 16
    assert NonEmptySafeStrTuple("aaAA") != NonEmptySafeStrTuple("AAaa")
    assert SafeStrTuple("AAAA") != "aaaa"


@pytest.mark.parametrize("n", [4, 8])
def test_case_variants_get_names_distinct_even_on_case_insensitive_file_systems(n: int) -> None:
    folded = {sign_component(v, n).lower() for v in CASE_VARIANTS}
    assert len(folded) == len(CASE_VARIANTS)
    for variant in CASE_VARIANTS:
        assert unsign_component(sign_component(variant, n), n) == variant


# --------------------------------------------------------------------------
# Module surface
# --------------------------------------------------------------------------


@pytest.mark.parametrize("module", [safe_chars_module, keys_module, signing_module])
def test_all_lists_existing_names(module: Any) -> None:
    assert sorted(module.__all__) == sorted(set(module.__all__))
    for name in module.__all__:
        assert hasattr(module, name), name


def test_the_modules_hold_what_persidict_0x_users_import_from_them() -> None:
    assert {"SafeStrTuple", "NonEmptySafeStrTuple"} <= set(keys_module.__all__)
    assert {"sign_safe_str_tuple", "unsign_safe_str_tuple"} <= set(signing_module.__all__)
    assert {"SAFE_CHARS_SET", "get_safe_chars", "replace_unsafe_chars"} <= set(safe_chars_module.__all__)


# --- messages that say what to write instead ---------------------------------------------------------
def test_an_unsafe_character_points_to_replace_unsafe_chars_and_tuple_keys() -> None:
    with pytest.raises(ValueError) as info:
        SafeStrTuple("texts_my doc.txt")
    assert str(info.value) == (
        "Key component 'texts_my doc.txt' contains unsafe characters: [' '] (allowed: a-z A-Z 0-9 ( ) _ - ~ . =); "
        "persidict.replace_unsafe_chars('texts_my doc.txt', '_') gives 'texts_my_doc.txt', and a key with "
        "several parts is a tuple of strings: d['folder', 'name']")


def test_a_slash_suggests_the_tuple_key() -> None:
    with pytest.raises(ValueError) as info:
        NonEmptySafeStrTuple("a/b")
    assert str(info.value) == ("Key component 'a/b' contains unsafe characters: ['/'] (allowed: a-z A-Z 0-9 ( ) _ - "
                               "~ . =); a key with several parts is a tuple: write d['a', 'b']")


def test_a_number_key_says_keys_are_strings() -> None:
    with pytest.raises(TypeError) as info:
        NonEmptySafeStrTuple(5)
    assert str(info.value) == ("Invalid argument type: <class 'int'>: keys are strings or tuples of strings "
                               "(d['a'], d['a', 'b']); for a key made of a number, write d[str(5)]")
