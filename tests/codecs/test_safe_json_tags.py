"""Safe JSON refuses every jsonpickle tag that builds objects, wherever it stands, naming the tag.

Real jsonpickle output always meets ``py/object`` (or ``py/type``) first, so
a decoder that stopped refusing ``py/reduce``, ``py/function`` or
``py/newobj`` and returned them as raw dicts would pass every test built on
real output.  These payloads are written by hand, one per tag of
``jsonpickle.tags`` (enumerated from the installed jsonpickle, so a tag it
adds is tested too): each alone, beside ordinary keys, nested in a list and
a dict, and inside the two harmless containers safe JSON does read
(``py/tuple``, ``py/set``, and its own ``$py`` tuple).  Every one must raise
``ValueError`` naming the tag, and loading must import nothing.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from typing import Any

import jsonpickle.tags
import pytest

from persidict.codecs.safe_json import SafeJsonCodec

HARMLESS = {jsonpickle.tags.TUPLE, jsonpickle.tags.SET}
"""The two tags safe JSON reads: they build only a tuple or a set of already decoded items."""

TAGS = sorted(
    value for name, value in vars(jsonpickle.tags).items()
    if name.isupper() and isinstance(value, str) and value.startswith("py/")
)
OBJECT_TAGS = [tag for tag in TAGS if tag not in HARMLESS]

PAYLOADS: dict[str, Any] = {
    "py/b64": "aGVsbG8=",
    "py/b85": "Xk~0{Zv",
    "py/bytes": "hello",
    "py/function": "os.system",
    "py/id": 1,
    "py/initargs": ["rm -rf /"],
    "py/iterator": [1, 2],
    "py/mod": "antigravity",
    "py/newargs": ["echo", "pwned"],
    "py/newargsex": [[], {}],
    "py/newobj": "subprocess.Popen",
    "py/object": "subprocess.Popen",
    "py/property": "builtins.property",
    "py/reduce": ["os.system", ["echo pwned"]],
    "py/ref": "/",
    "py/repr": "os/os.system('echo pwned')",
    "py/seq": [1, 2],
    "py/state": {"args": ["x"]},
    "py/type": "subprocess.Popen",
}
"""A plausible (where it can be, harmful) payload per tag, with no other tag inside it, so that each
tag's own refusal is tested; a tag jsonpickle adds gets a string."""


def _payload(tag: str) -> Any:
    return PAYLOADS.get(tag, "os.system")


PLACEMENTS: dict[str, Callable[[str], Any]] = {
    "alone": lambda tag: {tag: _payload(tag)},
    "beside-ordinary-keys": lambda tag: {"name": "report", tag: _payload(tag), "size": 3},
    "in-a-list": lambda tag: {"rows": [1, {tag: _payload(tag)}, 3]},
    "in-a-dict": lambda tag: {"outer": {"inner": {tag: _payload(tag)}}},
    "in-py/tuple": lambda tag: {"py/tuple": [1, {tag: _payload(tag)}]},
    "in-py/set": lambda tag: {"py/set": [{tag: _payload(tag)}]},
    "in-our-tuple": lambda tag: {"$py": "tuple", "v": [{tag: _payload(tag)}]},
}


def _load(tree: Any) -> Any:
    return SafeJsonCodec().loads((json.dumps(tree) + "\n").encode("utf-8"))


def test_the_tags_come_from_jsonpickle_and_include_the_dangerous_ones() -> None:
    assert {"py/reduce", "py/function", "py/newobj", "py/object", "py/type", "py/mod", "py/repr"} <= set(OBJECT_TAGS)
    assert set(TAGS) >= HARMLESS


@pytest.mark.parametrize("placement", sorted(PLACEMENTS))
@pytest.mark.parametrize("tag", OBJECT_TAGS)
def test_every_object_tag_is_refused_by_name(tag: str, placement: str) -> None:
    modules_before = set(sys.modules)
    with pytest.raises(ValueError, match=f"jsonpickle tag '{tag}'"):
        _load(PLACEMENTS[placement](tag))
    assert set(sys.modules) == modules_before  # nothing was imported to build anything


@pytest.mark.parametrize("tag", sorted(HARMLESS))
def test_a_harmless_tag_beside_other_keys_is_refused_by_name(tag: str) -> None:
    """``py/tuple`` and ``py/set`` are read only alone: beside other keys they are not jsonpickle's shape."""
    with pytest.raises(ValueError, match=f"jsonpickle tag '{tag}'"):
        _load({tag: [1, 2], "extra": 1})


@pytest.mark.parametrize("tag", OBJECT_TAGS)
def test_an_ordinary_string_holding_a_tag_is_just_a_string(tag: str) -> None:
    """Only a dict key in jsonpickle's namespace is a tag; the same text as a value or in a list is data."""
    assert _load({"note": tag, "items": [tag]}) == {"note": tag, "items": [tag]}


def test_jsonpickle_json_keys_stay_plain_strings() -> None:
    """jsonpickle's ``json://`` key prefix (non-string dict keys) is not decoded: the key stays the text."""
    key = f"{jsonpickle.tags.JSON_KEY}1"
    assert _load({key: "one"}) == {key: "one"}
