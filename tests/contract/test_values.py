"""Value round-trips, stored bytes and base_class_for_values.

See docs/concepts.md#formats and docs/concepts.md#value-types.
"""

from __future__ import annotations

import json
import pickle

import numpy as np
import pytest

from persidict import (
    ALWAYS_RETRIEVE,
    ANY_ETAG,
    DELETE_CURRENT,
    ETAG_IS_THE_SAME,
    IF_ETAG_CHANGED,
    KEEP_CURRENT,
    LocalDict,
)

from ..conftest import storage_of
from .contract_helpers import (
    ALL_VALUES,
    INA,
    JSON_OPTIONAL,
    JSONPICKLE_ALTERED,
    JSONPICKLE_REFUSED,
    exact_type_equal,
    foreign_value,
    holds_none,
    large_value,
    plain_value,
    roundtrip_values,
    stored_plain_value,
)

_SAFE_JSON_NAMES = {name for name, _ in roundtrip_values("safejson")}
_JSON_OPTIONAL = {name for name, _ in JSON_OPTIONAL}


def _write_or_refuse(make_dict, codec, name, value):
    """Store ``value`` under "k"; False if the codec refused it, leaving the previous value."""
    d = make_dict()
    restricted = not holds_none(d)  # text, arrays or tables only: everything else is refused
    refusable = restricted or (codec == "safejson" and name not in _SAFE_JSON_NAMES) or (
        codec == "jsonpickle" and name in JSONPICKLE_REFUSED
    )
    d["k"] = plain_value(0)
    if not refusable:
        d["k"] = value
        return True
    try:
        d["k"] = value
    except TypeError:
        assert make_dict()["k"] == plain_value(0)
        return False
    # Safe JSON may hold the optional stdlib types instead, exactly; a text format its str; nothing else.
    assert (codec == "safejson" and name in _JSON_OPTIONAL) or (codec == "txt" and isinstance(value, str)), \
        f"{codec} accepted {value!r}"
    return True


@pytest.mark.parametrize("name", sorted(ALL_VALUES))
def test_roundtrip(make_dict, codec, raw_bytes, name):
    value = ALL_VALUES[name]
    if not _write_or_refuse(make_dict, codec, name, value):
        return
    expected = JSONPICKLE_ALTERED.get(name, value) if codec == "jsonpickle" else value
    back = make_dict()["k"]
    assert exact_type_equal(back, expected), (back, expected)
    assert exact_type_equal(dict(make_dict().items())[("k",)], expected)
    raw = raw_bytes(make_dict(), "k")
    if codec == "pkl":
        assert exact_type_equal(pickle.loads(raw), value)
    elif codec in ("jsonpickle", "safejson"):
        json.loads(raw.decode("utf-8"))  # valid JSON text, whatever the tags look like
    else:
        assert raw == value.encode("utf-8")


@pytest.mark.insert_only
def test_stored_bytes_of_a_restricted_format(make_dict, codec, raw_bytes):
    """Text is its UTF-8, an array a .npy file, a table a Parquet file: files other tools read."""
    d = make_dict()
    if holds_none(d):
        return  # test_stored_bytes below
    d["k"] = plain_value(7)
    raw = raw_bytes(d, "k")
    prefix, suffix = {"txt": (b"value-7", b"value-7"), "npy": (b"\x93NUMPY", b""), "parquet": (b"PAR1", b"PAR1")}[codec]
    assert raw.startswith(prefix) and raw.endswith(suffix)
    assert stored_plain_value(d, "k") == plain_value(7)


@pytest.mark.store_kinds_with("holds_any_value")
@pytest.mark.insert_only
def test_stored_bytes(make_dict, codec, raw_bytes):
    d = make_dict()
    value = {"a": [1, 2.5, None, True], "s": "ключ 🎉", "n": {"deep": []}}
    d["k"] = value
    raw = raw_bytes(d, "k")
    if codec == "pkl":
        assert pickle.loads(raw) == value
        return
    assert json.loads(raw.decode("utf-8")) == value
    if codec == "jsonpickle":  # persidict 0.x's bytes exactly: indented by 4, no final newline
        assert raw == json.dumps(value, indent=4).encode("ascii")
    else:
        assert raw.endswith(b"\n")


@pytest.mark.parametrize("value", [(1, 2), {3, 4}, b"xy", complex(1, 2), (1, [2, (3,)])],
                         ids=["tuple", "set", "bytes", "complex", "nested"])
@pytest.mark.store_kinds_with("holds_any_value")
@pytest.mark.insert_only
def test_dict_looking_like_a_stored_value_roundtrips(make_dict, codec, raw_bytes, value):
    """A plain dict equal to the encoding of a tagged value comes back as that dict.

    Except in the jsonpickle dialect (persidict 0.x's json), which cannot hold it:
    jsonpickle drops dict entries keyed by its own tags (0.x stored ``{}``), so the
    write is refused with TypeError and the previous value stays.
    """
    d = make_dict()
    d["tagged"] = value
    raw = raw_bytes(d, "tagged")
    lookalike = json.loads(raw.decode("utf-8")) if codec != "pkl" else {"__raw__": list(raw[:8])}
    if codec == "jsonpickle":
        with pytest.raises(TypeError, match="read as a tag"):
            d["tagged"] = lookalike
    else:
        d["lookalike"] = lookalike
        back = make_dict()["lookalike"]
        assert exact_type_equal(back, lookalike), (back, lookalike)
    assert exact_type_equal(make_dict()["tagged"], value)


@pytest.mark.insert_only
def test_numpy_roundtrip(make_dict, codec):
    d = make_dict()
    arr = np.arange(12, dtype=np.float32).reshape(3, 4)
    if codec in ("safejson", "txt", "parquet"):
        d["arr"] = plain_value(1)
        with pytest.raises(TypeError):
            d["arr"] = arr
        assert d["arr"] == plain_value(1)
        return
    d["arr"] = arr
    back = make_dict()["arr"]
    assert isinstance(back, np.ndarray) and back.dtype == np.float32
    assert np.array_equal(back, arr)


@pytest.mark.store_kinds_with("holds_any_value")
@pytest.mark.insert_only
def test_read_values_are_copies(d):
    value = {"list": [1, 2]}
    d["k"] = value
    value["list"].append(3)  # mutating the original after writing
    got = d["k"]
    assert got == {"list": [1, 2]}
    got["list"].append(99)  # mutating what was read
    assert d["k"] == {"list": [1, 2]}
    default = {"list": [7]}
    assert d.setdefault("s", default) is default
    default["list"].append(8)
    assert d["s"] == {"list": [7]}


# --- text formats --------------------------------------------------------------

TEXTS = ["plain", "", "Ünïcødé ключ 中文 🎉", "line1\nline2\n", "crlf\r\nkept\r", "tabs\tand \\ backslashes",
         "def f(x):\n    return x + 1\n"]


@pytest.mark.parametrize("text_fmt", ["txt", "py", "md"])
@pytest.mark.insert_only
def test_text_formats_roundtrip_utf8(make_dict, raw_bytes, text_fmt):
    d = make_dict(serialization_format=text_fmt, base_class_for_values=str)
    for i, text in enumerate(TEXTS):
        d[f"t{i}"] = text
    fresh = make_dict(serialization_format=text_fmt, base_class_for_values=str)
    for i, text in enumerate(TEXTS):
        assert fresh[f"t{i}"] == text
        assert type(fresh[f"t{i}"]) is str
        assert raw_bytes(fresh, f"t{i}") == text.encode("utf-8")
    assert dict(fresh.items()) == {(f"t{i}",): t for i, t in enumerate(TEXTS)}
    assert fresh.serialization_format == text_fmt
    assert storage_of(d).key_to_path("t0").endswith("." + text_fmt)


@pytest.mark.insert_only
def test_text_format_rejects_non_str(make_dict):
    d = make_dict(serialization_format="txt", base_class_for_values=str)
    d["k"] = "kept"
    for bad in [1, b"bytes", ["list"], None]:
        with pytest.raises(TypeError):
            d["k"] = bad
    assert d["k"] == "kept"


@pytest.mark.parametrize("text_fmt", ["txt", "py", "csv", "pkl_etag"])
@pytest.mark.parametrize("base", [None, int, object], ids=["none", "int", "object"])
@pytest.mark.insert_only
def test_exotic_format_needs_a_str_base_class(make_dict, text_fmt, base):
    with pytest.raises(ValueError):
        make_dict(serialization_format=text_fmt, base_class_for_values=base)


@pytest.mark.insert_only
def test_str_subclass_base_class_allows_text_format(make_dict):
    class Text(str):
        pass

    d = make_dict(serialization_format="txt", base_class_for_values=Text)
    d["k"] = Text("hello")
    with pytest.raises(TypeError, match="Text"):
        d["plain"] = "plain str"
    assert storage_of(d).fs.cat_file(storage_of(d).key_to_path("k")) == b"hello"
    assert "plain" not in d


@pytest.mark.insert_only
def test_dill_format(make_dict, raw_bytes):
    import dill

    d = make_dict(serialization_format="dill", base_class_for_values=None)
    factor = 3
    d["lambda"] = lambda x: x * factor
    d["plain"] = {"a": (1, 2)}
    fresh = make_dict(serialization_format="dill", base_class_for_values=None)
    assert fresh["lambda"](5) == 15
    assert fresh["plain"] == {"a": (1, 2)}
    assert dill.loads(raw_bytes(fresh, "plain")) == {"a": (1, 2)}


# --- base_class_for_values --------------------------------------------------------


@pytest.mark.store_kinds_with("holds_any_value")
@pytest.mark.insert_only
def test_base_class_accepts_instances_and_subclasses(make_dict):
    d = make_dict(base_class_for_values=int)
    d["i"] = 5
    d["b"] = True
    assert d["i"] == 5 and d["b"] is True


def test_base_class_rejects_wrong_type_and_keeps_previous(make_dict, raw_bytes):
    base = type(plain_value(5))
    d = make_dict(base_class_for_values=base)
    d["k"] = plain_value(5)
    before = raw_bytes(d, "k"), d.etag("k")
    name, wrong = base.__name__, foreign_value()
    with pytest.raises(TypeError, match=name):
        d["k"] = wrong
    with pytest.raises(TypeError, match=name):
        d["new"] = wrong
    assert (raw_bytes(d, "k"), d.etag("k")) == before
    assert "new" not in d
    with pytest.raises(TypeError, match=name):
        d.set_item_if("k", value=wrong, condition=ANY_ETAG, expected_etag=INA)
    with pytest.raises(TypeError, match=name):
        d.setdefault_if("new", default_value=wrong, condition=ANY_ETAG, expected_etag=INA)
    with pytest.raises(TypeError, match=name):
        d.transform_item("k", transformer=lambda v: wrong)
    with pytest.raises(TypeError):
        d.update({"k": wrong})
    assert d["k"] == plain_value(5) and "new" not in d
    assert (raw_bytes(d, "k"), d.etag("k")) == before


def test_base_class_jokers_are_exempt(make_dict):
    d = make_dict(base_class_for_values=type(plain_value(1)))
    d["k"] = plain_value(1)
    d["k"] = KEEP_CURRENT
    assert d["k"] == plain_value(1)
    d["k"] = DELETE_CURRENT
    assert "k" not in d


@pytest.mark.insert_only
def test_persidict_values_are_rejected(make_dict):
    d = make_dict()
    d["k"] = plain_value(1)
    for value in (LocalDict(), make_dict()):
        with pytest.raises(TypeError):
            d["k"] = value
        with pytest.raises(TypeError):
            d["other"] = value
    assert d["k"] == plain_value(1) and "other" not in d


@pytest.fixture
def wrongly_typed(make_dict):
    """A str stored by an unchecked dict, read by a dict that requires int."""
    writer = make_dict()
    writer["bad"] = "not an int"
    writer["good"] = 1
    return make_dict(base_class_for_values=int)


@pytest.mark.store_kinds_with("holds_any_value")
@pytest.mark.insert_only
def test_read_side_getitem(wrongly_typed):
    with pytest.raises(TypeError, match="int"):
        wrongly_typed["bad"]
    assert wrongly_typed["good"] == 1
    with pytest.raises(TypeError, match="int"):
        wrongly_typed.get("bad")


@pytest.mark.store_kinds_with("holds_any_value")
@pytest.mark.insert_only
def test_read_side_iteration(wrongly_typed):
    assert {tuple(k) for k in wrongly_typed.keys()} == {("bad",), ("good",)}
    assert len(list(wrongly_typed.keys_and_timestamps())) == 2
    for method in ["values", "items", "values_and_timestamps", "items_and_timestamps"]:
        with pytest.raises(TypeError, match="int"):
            list(getattr(wrongly_typed, method)())


@pytest.mark.store_kinds_with("holds_any_value")
def test_read_side_conditional_ops(wrongly_typed):
    with pytest.raises(TypeError, match="int"):
        wrongly_typed.get_with_etag("bad")
    with pytest.raises(TypeError, match="int"):
        wrongly_typed.get_item_if("bad", condition=ANY_ETAG, expected_etag=INA,
                                  retrieve_value=ALWAYS_RETRIEVE)
    with pytest.raises(TypeError, match="int"):
        wrongly_typed.get_item_if("bad", condition=ANY_ETAG, expected_etag=INA,
                                  retrieve_value=IF_ETAG_CHANGED)
    with pytest.raises(TypeError, match="int"):
        wrongly_typed.setdefault_if("bad", default_value=1, condition=ANY_ETAG, expected_etag=INA,
                                    retrieve_value=ALWAYS_RETRIEVE)
    with pytest.raises(TypeError, match="int"):
        wrongly_typed.set_item_if("bad", value=2, condition=ETAG_IS_THE_SAME, expected_etag="stale",
                                  retrieve_value=ALWAYS_RETRIEVE)
    e = wrongly_typed.etag("bad")
    r = wrongly_typed.get_item_if("bad", condition=ETAG_IS_THE_SAME, expected_etag=e)
    assert r.condition_was_satisfied  # not fetched, so not checked
    assert wrongly_typed.etag("bad") == e


def test_value_survives_rewrite_cycles(d):
    for i in range(5):
        d["k"] = plain_value(i)
        assert d["k"] == plain_value(i)
    assert len(d) == 1


@pytest.mark.insert_only
def test_large_value(make_dict, raw_bytes):
    d = make_dict()
    big = large_value()
    d["big"] = big
    back = make_dict()["big"]
    assert type(back) is type(big)
    assert bool(np.array_equal(back, big)) if isinstance(big, np.ndarray) else back == big
    assert len(raw_bytes(d, "big")) >= 2_000_000
