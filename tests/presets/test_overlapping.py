"""OverlappingMultiDict (docs/stores.md#overlappingmultidict): one dict per format on one storage location."""

from __future__ import annotations

import os
import pickle

import pytest

from persidict import FileDirDict, LocalDict, OverlappingMultiDict, PersiDict
from persidict.core.layout import LAYOUT_NAME


@pytest.fixture
def omd(tmp_path) -> OverlappingMultiDict:
    return OverlappingMultiDict(
        dict_type=FileDirDict,
        shared_subdicts_params={"base_dir": tmp_path, "fsync": False},
        pkl={}, json={}, txt={"base_class_for_values": str}, py={"base_class_for_values": str},
    )


def _files(root) -> list[str]:
    """The value files below ``root`` (not the layout record the formats share at the root)."""
    return sorted(os.path.relpath(os.path.join(d, f), root) for d, _, fs in os.walk(root) for f in fs
                  if f != LAYOUT_NAME)


# --- construction ---------------------------------------------------------------------
def test_attributes(omd, tmp_path):
    assert omd.dict_type is FileDirDict
    assert omd.shared_subdicts_params == {"base_dir": tmp_path, "fsync": False}
    assert omd.subdicts_names == ["pkl", "json", "txt", "py"]
    assert omd.individual_subdicts_params["txt"] == {"base_class_for_values": str}
    for name in omd.subdicts_names:
        sub = getattr(omd, name)
        assert type(sub) is FileDirDict and sub.serialization_format == name
        assert sub.base_dir == str(tmp_path)
    assert omd.txt.base_class_for_values is str and omd.pkl.base_class_for_values is None


def test_individual_params_override_shared_ones(tmp_path):
    omd = OverlappingMultiDict(dict_type=FileDirDict,
                               shared_subdicts_params={"base_dir": tmp_path, "digest_len": 4},
                               pkl={"digest_len": 0}, json={"serialization_format": "ignored"})
    assert omd.pkl.digest_len == 0 and omd.json.digest_len == 4
    assert omd.json.serialization_format == "json"  # the keyword name always wins


@pytest.mark.parametrize("dict_type", [dict, "FileDirDict", 3, None, PersiDict.__init__])
def test_dict_type_must_be_a_persidict_class(dict_type):
    with pytest.raises(TypeError):
        OverlappingMultiDict(dict_type=dict_type, shared_subdicts_params={}, pkl={})


@pytest.mark.parametrize("shared", [None, [], "base_dir=x", (("a", 1),)])
def test_shared_params_must_be_a_dict(shared):
    with pytest.raises(TypeError):
        OverlappingMultiDict(dict_type=LocalDict, shared_subdicts_params=shared, pkl={})


@pytest.mark.parametrize("params", [None, [], "x", 1])
def test_individual_params_must_be_dicts(params):
    with pytest.raises(TypeError):
        OverlappingMultiDict(dict_type=LocalDict, shared_subdicts_params={}, pkl=params)


def test_names_that_would_shadow_attributes_are_refused():
    with pytest.raises(ValueError):
        OverlappingMultiDict(dict_type=LocalDict, shared_subdicts_params={},
                             subdicts_names={"base_class_for_values": str})


def test_no_sub_dicts_is_allowed():
    omd = OverlappingMultiDict(dict_type=LocalDict, shared_subdicts_params={})
    assert omd.subdicts_names == []
    with pytest.raises(AttributeError):
        omd.pkl


# --- formats (docs/concepts.md#formats) -----------------------------------------------------------
@pytest.mark.parametrize("fmt", ["txt", "py", "csv", "md"])
def test_exotic_format_without_str_base_class_is_a_value_error(tmp_path, fmt):
    with pytest.raises(ValueError):
        OverlappingMultiDict(dict_type=FileDirDict, shared_subdicts_params={"base_dir": tmp_path}, **{fmt: {}})
    with pytest.raises(ValueError):
        OverlappingMultiDict(dict_type=FileDirDict, shared_subdicts_params={"base_dir": tmp_path},
                             **{fmt: {"base_class_for_values": int}})


def test_text_formats_with_str_work(omd):
    omd.txt["note"] = "plain text\nsecond line\n"
    source = "def f(x):\n    return x + 1\n"
    omd.py["module"] = source
    assert omd.txt["note"] == "plain text\nsecond line\n" and omd.py["module"] == source
    with pytest.raises(TypeError):
        omd.txt["n"] = 1


@pytest.mark.parametrize("fmt", ["json", "txt"])
def test_non_ascii_text_round_trips_exactly(omd, fmt):
    texts = ["Ünïcødé", "ключ", "中文テキスト", "emoji 🎉🚀", "mixed\r\nlines\n"]
    sub = getattr(omd, fmt)
    for i, text in enumerate(texts):
        sub[f"k{i}"] = text
    assert [sub[f"k{i}"] for i in range(len(texts))] == texts
    assert dict(sub.items()) == {(f"k{i}",): text for i, text in enumerate(texts)}


def test_sub_dicts_share_one_tree_but_see_only_their_format(omd, tmp_path):
    omd.pkl["a", "k"] = {"p": 1}
    omd.json["a", "k"] = {"j": 2}
    omd.txt["a", "k"] = "t"
    omd.json["only_json"] = 3
    files = _files(tmp_path)
    stems = {os.path.splitext(f)[0] for f in files if "k" in os.path.basename(f)}
    assert len(stems) == 1 and {os.path.splitext(f)[1] for f in files} == {".pkl", ".json", ".txt"}
    assert omd.pkl["a", "k"] == {"p": 1} and omd.json["a", "k"] == {"j": 2} and omd.txt["a", "k"] == "t"
    assert (len(omd.pkl), len(omd.json), len(omd.txt), len(omd.py)) == (1, 2, 1, 0)
    omd.json.clear()
    assert (len(omd.pkl), len(omd.json), len(omd.txt)) == (1, 0, 1)
    assert omd.pkl["a", "k"] == {"p": 1} and omd.txt["a", "k"] == "t"
    assert "only_json" not in omd.json and not any(f.endswith(".json") for f in _files(tmp_path))


def test_works_with_other_store_types():
    backend = LocalDict().backend
    omd = OverlappingMultiDict(dict_type=LocalDict, shared_subdicts_params={"backend": backend},
                               pkl={}, json={})
    omd.pkl["k"] = 1
    omd.json["k"] = 2
    assert (omd.pkl["k"], omd.json["k"], len(omd.pkl), len(omd.json)) == (1, 2, 1, 1)


# --- not a PersiDict ----------------------------------------------------------------------------
def test_item_access_is_refused_naming_the_sub_dicts(omd):
    for access in (lambda: omd["k"], lambda: omd.__setitem__("k", 1), lambda: omd.__delitem__("k")):
        with pytest.raises(TypeError, match=r"\.pkl.*\.json.*\.txt.*\.py"):
            access()
    assert not isinstance(omd, PersiDict)


def test_pickles_as_the_arguments_that_reopen_it(omd):
    omd.pkl["k"] = 1
    clone = pickle.loads(pickle.dumps(omd))
    assert type(clone) is OverlappingMultiDict and clone.subdicts_names == omd.subdicts_names
    assert clone.pkl["k"] == 1
    clone.json["j"] = [2]
    assert omd.json["j"] == [2]


def test_repr_and_unknown_attributes(omd):
    assert repr(omd).startswith("OverlappingMultiDict(dict_type=FileDirDict")
    with pytest.raises(AttributeError, match="csv"):
        omd.csv
    bare = OverlappingMultiDict.__new__(OverlappingMultiDict)  # no recursion before __init__
    with pytest.raises(AttributeError):
        bare.pkl
