"""The layout travels with the data (docs/architecture.md#layout): a store reopened with other settings
shows the same keys, or refuses with the parameters that would open it."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from persidict import BackendError, FileDirDict, FsspecDict, LocalDict
from persidict.core.layout import LAYOUT_NAME, Layout, Naming


def _keys(store) -> set[tuple[str, ...]]:
    return {tuple(key) for key in store.keys()}


def test_fsspec_dict_on_a_file_dir_dict_folder_sees_its_keys(tmp_path: Path) -> None:
    FileDirDict(tmp_path)["k"] = 1  # digest suffixes on: the file is k_rtsl.pkl
    reopened = FsspecDict(str(tmp_path))
    assert _keys(reopened) == {("k",)}
    assert "k" in reopened and reopened["k"] == 1
    assert reopened.digest_len == 4 and reopened.get_params()["digest_len"] == 4


def test_file_dir_dict_on_an_fsspec_dict_folder_sees_its_keys(tmp_path: Path) -> None:
    FsspecDict(str(tmp_path))["a", "b"] = 1  # plain names: a/b.pkl
    assert _keys(FileDirDict(tmp_path)) == {("a", "b")}


def test_a_contradicting_digest_len_is_refused_with_the_parameters_that_open_it(tmp_path: Path) -> None:
    FileDirDict(tmp_path)["k"] = 1
    with pytest.raises(ValueError, match=r"pkl files were written with digest_len=4 \(recorded in "
                                         r"\.persidict@layout\).*FsspecDict\(\.\.\., digest_len=4\)"):
        FsspecDict(str(tmp_path), digest_len=0)


def test_the_recorded_format_and_json_dialect_are_adopted(tmp_path: Path) -> None:
    FileDirDict(tmp_path, serialization_format="json", safe_json=True)["k"] = (1, 2)
    reopened = FileDirDict(tmp_path)
    assert reopened.serialization_format == "json" and reopened.safe_json
    assert reopened["k"] == (1, 2)
    with pytest.raises(ValueError, match="safe_json=True"):
        FileDirDict(tmp_path, serialization_format="json", safe_json=False)


def test_another_format_may_join_a_folder_and_is_recorded(tmp_path: Path) -> None:
    FileDirDict(tmp_path)["k"] = 1
    FileDirDict(tmp_path, serialization_format="json")["k"] = [1]
    recorded = Layout.from_bytes((tmp_path / LAYOUT_NAME).read_bytes())
    assert recorded.formats == {"pkl": Naming(4), "json": Naming(4)}
    assert FileDirDict(tmp_path, serialization_format="pkl")["k"] == 1  # several formats: no adoption, as asked


def test_formats_in_one_folder_may_be_named_differently(tmp_path: Path) -> None:
    # persidict 0.x's users keep json logs without digest suffixes beside txt files with them.
    logs = FileDirDict(tmp_path, serialization_format="json", digest_len=0)
    texts = FileDirDict(tmp_path, serialization_format="txt", base_class_for_values=str)
    logs["k"] = {"a": 1}
    texts["k"] = "hello"
    assert sorted(os.listdir(tmp_path)) == [LAYOUT_NAME, "k.json", "k_rtsl.txt"]
    recorded = Layout.from_bytes((tmp_path / LAYOUT_NAME).read_bytes())
    assert recorded.formats == {"json": Naming(0), "txt": Naming(4)}
    assert FileDirDict(tmp_path, serialization_format="json").digest_len == 0
    assert FileDirDict(tmp_path, serialization_format="txt", base_class_for_values=str)["k"] == "hello"


def test_a_folder_without_a_record_opens_as_persidict_0x_opens_it(tmp_path: Path) -> None:
    (tmp_path / "k.pkl").write_bytes(b"\x80\x04K\x01.")  # pickle of 1, a plain name
    (tmp_path / "j_gy5r.pkl").write_bytes(b"\x80\x04K\x02.")
    assert _keys(FsspecDict(str(tmp_path))) == {("k",), ("j_gy5r",)}
    assert _keys(FileDirDict(tmp_path)) == {("j",)}


def test_opening_and_reading_record_nothing(tmp_path: Path) -> None:
    store = FileDirDict(tmp_path)
    assert store.get("k") is None and len(store) == 0 and list(store.keys()) == []
    assert not (tmp_path / LAYOUT_NAME).exists()
    store["k"] = 1
    assert (tmp_path / LAYOUT_NAME).is_file()


def test_the_record_is_never_a_key_in_any_format(tmp_path: Path) -> None:
    for fmt, options in (("pkl", {}), ("json", {}), ("txt", {"base_class_for_values": str}),
                         ("persidict@layout".replace("@", "-"), {"base_class_for_values": str})):
        store = FsspecDict(str(tmp_path / fmt), serialization_format=fmt, **options)
        store["k"] = "v"
        assert _keys(store) == {("k",)} and len(store) == 1
        assert sorted(os.listdir(tmp_path / fmt)) == sorted([LAYOUT_NAME, f"k.{fmt}"])


def test_subdicts_share_the_root_record_and_write_none_of_their_own(tmp_path: Path) -> None:
    sub = FileDirDict(tmp_path).get_subdict("a")
    sub["k"] = 1
    assert (tmp_path / LAYOUT_NAME).is_file()
    assert LAYOUT_NAME not in os.listdir(tmp_path / "a_btax")


def test_memory_stores_record_nothing() -> None:
    store = LocalDict()
    store["k"] = 1
    assert [path for path in store.fs.store if LAYOUT_NAME in path] == []


def test_safe_json_opens_any_json_store_and_refuses_what_would_run_code(tmp_path: Path) -> None:
    # safe_json=True only restricts what reading may build, so it opens a folder of 0.x's json as well.
    FileDirDict(tmp_path, serialization_format="json")["k"] = ValueError("disk full")
    safe = FileDirDict(tmp_path, serialization_format="json", safe_json=True)
    with pytest.raises(BackendError, match=r"jsonpickle tag .py/type., which safe JSON does not decode"):
        safe["k"]
