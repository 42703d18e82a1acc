"""FileDirDict: what only the local-folder store has (docs/stores.md#filedirdict).

See also docs/concepts.md#on-disk-layout and docs/concepts.md#etags.

These tests look at the files themselves, so they pin the on-disk layout, the
ETag format and the retry policy, none of which the contract suite can see.
"""

from __future__ import annotations

import base64
import errno
import hashlib
import os
import pickle
import time

import pytest

import persidict.backends.local as local_backend
from persidict import (
    ANY_ETAG,
    ITEM_NOT_AVAILABLE,
    BackendError,
    FileDirDict,
    NonEmptySafeStrTuple,
    RetryConfig,
    SafeStrTuple,
)
from persidict.core.layout import LAYOUT_NAME

TEMP_PREFIX = ".__tmp__"


def _suffix(s: str, n: int) -> str:
    """The digest suffix (docs/concepts.md#digest-suffixes), computed independently of the package."""
    return "_" + base64.b32encode(hashlib.md5(s.encode("utf-8")).digest()).decode()[:n].lower()


def _all_files(root: str) -> set[str]:
    """Every file below ``root`` but the layout record at the root (tests/core/test_layout.py has that),
    as a root-relative path with ``/`` separators."""
    found = set()
    for folder, _dirs, files in os.walk(root):
        for name in files:
            found.add(os.path.relpath(os.path.join(folder, name), root).replace(os.sep, "/"))
    return found - {LAYOUT_NAME}


def _temp_name() -> str:
    """A name of the pattern writers use for their temporary files (see backends/temporary.py)."""
    return TEMP_PREFIX + os.urandom(8).hex()


def _temp_files(root: str) -> set[str]:
    return {f for f in _all_files(root) if os.path.basename(f).startswith(TEMP_PREFIX)}


def _etag_of_stat(st: os.stat_result) -> str:
    return f"{st.st_mtime_ns}:{st.st_size}:{st.st_ino}"


@pytest.fixture
def base(tmp_path) -> str:
    return str(tmp_path / "store")


@pytest.fixture
def d(base) -> FileDirDict:
    # fsync=False: durability across a power loss is not what these tests check.
    return FileDirDict(base_dir=base, fsync=False)


# --- layout -----------------------------------------------------------------------


def test_layout_with_digest_4_is_bit_exact(d, base):
    d["a", "Key", "hello"] = 42
    assert _all_files(base) == {"a_btax/Key_rfzv/hello_lvau.pkl"}
    path = os.path.join(base, "a_btax", "Key_rfzv", "hello_lvau.pkl")
    with open(path, "rb") as f:
        assert pickle.loads(f.read()) == 42
    assert d.key_to_path(("a", "Key", "hello")) == path


def test_layout_suffixes_match_the_md5_base32_scheme(d, base):
    components = ("top", "s", "k", "Mixed-Case_Name.v2")
    d[components] = "v"
    expected = "/".join(c + _suffix(c, 4) for c in components) + ".pkl"
    assert _all_files(base) == {expected}


def test_layout_with_digest_8(base):
    d8 = FileDirDict(base_dir=base, digest_len=8, fsync=False)
    d8["a", "b", "c"] = 1
    assert _all_files(base) == {"a_btaxlooa/b_slvv77xg/c_jkfar4e5.pkl"}


def test_layout_without_digest_json(base):
    dj = FileDirDict(base_dir=base, digest_len=0, serialization_format="json", fsync=False)
    dj["key"] = {"x": 1}
    assert _all_files(base) == {"key.json"}
    with open(os.path.join(base, "key.json"), encoding="utf-8") as f:
        text = f.read()
    assert text == '{\n    "x": 1\n}'  # persidict 0.x's json: jsonpickle, indented by 4
    assert dj["key"] == {"x": 1}


def test_keys_differing_only_in_case_are_distinct_files(d, base):
    for k in ("aaAA", "AAaa", "AAAA", "aaaa"):
        d[k] = k
    assert len(_all_files(base)) == 4
    assert {d[k] for k in ("aaAA", "AAaa", "AAAA", "aaaa")} == {"aaAA", "AAaa", "AAAA", "aaaa"}


def test_file_and_directory_can_share_a_stem(d, base):
    d["good"] = 1
    d["good", "inner"] = 2
    good = "good" + _suffix("good", 4)
    assert os.path.isfile(os.path.join(base, good + ".pkl"))
    assert os.path.isdir(os.path.join(base, good))
    assert sorted(d.keys(), key=len) == [("good",), ("good", "inner")]


# --- files that are not items ----------------------------------------------------------

JUNK_NAMES = ["junk.tmp", ".DS_Store", "note.txt", "backup.json.bak", ".gitkeep", "pkl", "x.pkl.bak", "x.pklx"]


def _plant_junk(folder: str) -> None:
    os.makedirs(folder, exist_ok=True)
    for name in JUNK_NAMES:
        with open(os.path.join(folder, name), "wb") as f:
            f.write(b"\x00not a value\xff")


def test_files_of_other_extensions_are_ignored(d, base):
    d["a"] = 1
    d["sub", "b"] = 2
    _plant_junk(base)
    _plant_junk(os.path.join(base, "sub" + _suffix("sub", 4)))
    _plant_junk(os.path.join(base, "junkdir"))
    # Another format's files in the same tree.
    other = FileDirDict(base_dir=base, serialization_format="json", fsync=False)
    other["a"] = "json-a"
    other["c"] = "json-c"

    assert len(d) == 2
    assert sorted(d.keys(), key=len) == [("a",), ("sub", "b")]
    assert sorted(d.values()) == [1, 2]
    assert dict(d.items()) == {("a",): 1, ("sub", "b"): 2}
    assert len(list(d.items_and_timestamps())) == 2
    assert len(other) == 2
    assert dict(other.items()) == {("a",): "json-a", ("c",): "json-c"}
    assert d.random_key() in {("a",), ("sub", "b")}


def test_stray_temporary_file_is_not_an_item(d, base):
    d["a"] = 1
    for folder in (base, os.path.join(base, "deep")):
        os.makedirs(folder, exist_ok=True)
        with open(os.path.join(folder, TEMP_PREFIX + "abcd1234"), "wb") as f:
            f.write(b"half-written")
    assert len(d) == 1
    assert list(d.keys()) == [("a",)]
    assert list(d.values()) == [1]


@pytest.mark.parametrize("stray", ["bad name.pkl", "notes (copy).pkl", "fine.pkl", "sub dir/x_xxxx.pkl",
                                   "fine_rtsl/unsigned.pkl", "fine_abcd.pkl"])
def test_files_that_are_no_keys_are_skipped_by_every_listing(d, base, stray):
    # Unsafe names, and names that do not carry their digest suffix, are no key's file
    # (0.x raised ValueError for the first kind): skipped, and len() agrees with keys().
    d["fine"] = 1
    os.makedirs(os.path.dirname(os.path.join(base, stray)), exist_ok=True)
    with open(os.path.join(base, stray), "wb") as f:
        f.write(pickle.dumps(2))
    assert list(d.keys()) == [("fine",)]
    assert dict(d.items()) == {("fine",): 1}
    assert [v for v, _ in d.values_and_timestamps()] == [1]
    assert d.random_key() == ("fine",)
    assert d.newest_keys() == [("fine",)]
    assert len(d) == 1  # a forged digest suffix too: len() counts exactly the keys listed


def test_a_key_that_would_share_another_keys_file_is_refused(base):
    signed = FileDirDict(base_dir=os.path.join(base, "signed"), fsync=False)
    signed["a"] = 1
    for alias in ("a_btax", ("x", "a_btax"), ("a_btax", "y")):
        with pytest.raises(ValueError, match="digest suffix"):
            signed[alias] = 2
    with pytest.raises(ValueError, match="digest suffix"):
        signed.setdefault_if(("x", "a_btax"), default_value=2, condition=ANY_ETAG, expected_etag=ITEM_NOT_AVAILABLE)
    assert signed["a"] == 1 and signed["a_btax"] == 1  # what is on disk stays readable
    # Without suffixes, a folder named like a key's file: refused at write time, both ways round.
    plain = FileDirDict(base_dir=os.path.join(base, "plain"), digest_len=0, fsync=False)
    plain["c"] = 1
    with pytest.raises(ValueError, match="another key's file"):
        plain["c.pkl", "x"] = 2
    plain["d.pkl", "x"] = 3
    with pytest.raises(ValueError, match="another key's folder"):
        plain["d"] = 4
    assert "d" not in plain and plain.get("d") is None and ("c.pkl", "x") not in plain
    with pytest.raises(KeyError):
        plain.etag("d")
    assert dict(plain.items()) == {("c",): 1, ("d.pkl", "x"): 3}


def test_item_deleted_during_value_iteration_is_skipped(d, monkeypatch):
    for i in range(5):
        d[f"k{i}"] = i
    victim = d.key_to_path("k3")
    real_open = local_backend.os.open

    def open_after_a_concurrent_delete(path, *args, **kwargs):  # by its path, or by its name in its folder
        if os.path.basename(os.fspath(path)) == os.path.basename(victim) and os.path.exists(victim):
            os.remove(victim)  # another process deletes it just before we read it
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr(local_backend.os, "open", open_after_a_concurrent_delete)
    assert dict(d.items()) == {(f"k{i}",): i for i in (0, 1, 2, 4)}


def test_items_and_timestamps_pair_each_value_with_its_own_mtime(d):
    for i in range(3):
        d[f"k{i}"] = i
    rows = list(d.items_and_timestamps())
    assert len(rows) == 3
    for key, value, ts in rows:
        assert value == int(key[0][1:])
        assert ts == os.path.getmtime(d.key_to_path(key))
    assert dict(d.keys_and_timestamps()) == {k: ts for k, _, ts in rows}


# --- base_dir -------------------------------------------------------------------------


def test_base_dir_that_is_a_file_raises_value_error(tmp_path):
    target = tmp_path / "a_file"
    target.write_text("x")
    with pytest.raises(ValueError, match="not a directory"):
        FileDirDict(base_dir=str(target))
    assert target.read_text() == "x"


def test_base_dir_below_a_file_raises_backend_error(tmp_path):
    target = tmp_path / "a_file"
    target.write_text("x")
    with pytest.raises(BackendError) as info:
        FileDirDict(base_dir=str(target / "below"))
    assert info.value.backend == "filesystem"
    assert info.value.operation == "init"
    assert isinstance(info.value.__cause__, OSError)


def test_base_dir_accepts_pathlib_and_is_absolute(tmp_path, monkeypatch):
    p = tmp_path / "as_path"
    d = FileDirDict(base_dir=p, fsync=False)
    assert os.path.isdir(p)  # created eagerly
    assert d.base_dir == str(p)
    assert os.path.isabs(d.base_dir)
    d["x"] = 1
    assert (p / ("x" + _suffix("x", 4) + ".pkl")).is_file()

    monkeypatch.chdir(tmp_path)
    rel = FileDirDict(base_dir="relative_dir", fsync=False)
    assert rel.base_dir == str(tmp_path / "relative_dir")
    assert os.path.isabs(rel.base_dir)
    assert rel.get_params()["base_dir"] == rel.base_dir


def test_get_params_rebuilds_and_reports_fsync(base):
    for fsync in (True, False):
        d = FileDirDict(base_dir=base, digest_len=6, fsync=fsync)
        params = d.get_params()
        assert list(params) == sorted(params)
        assert params["fsync"] is fsync
        assert params["digest_len"] == 6
        again = FileDirDict(**params)
        assert again.get_params() == params
        assert again == d


# --- subdicts and clear -------------------------------------------------------------------


def test_get_subdict_creates_the_directory(d, base):
    sub = d.get_subdict(("p", "q"))
    expected = os.path.join(base, "p" + _suffix("p", 4), "q" + _suffix("q", 4))
    assert os.path.isdir(expected)
    assert sub.base_dir == expected
    assert len(sub) == 0
    sub["r"] = 1
    assert d["p", "q", "r"] == 1
    assert d.get_subdict(()).base_dir == d.base_dir
    assert d.get_subdict(SafeStrTuple()).base_dir == d.base_dir


def test_clear_removes_only_this_format_and_empty_dirs(d, base):
    d["top"] = 1
    d["only_pkl", "x"] = 2
    d["only_pkl", "deeper", "y"] = 3
    d["mixed", "z"] = 4
    other = FileDirDict(base_dir=base, serialization_format="json", fsync=False)
    other["mixed", "j"] = "kept"
    junk_dir = os.path.join(base, "junk_holder")
    os.makedirs(junk_dir)
    with open(os.path.join(junk_dir, "note.txt"), "w") as f:
        f.write("keep me")

    d.clear()

    assert len(d) == 0
    assert os.path.isdir(base)
    remaining = _all_files(base)
    mixed = "mixed" + _suffix("mixed", 4)
    assert remaining == {f"{mixed}/j{_suffix('j', 4)}.json", "junk_holder/note.txt"}
    assert not os.path.exists(os.path.join(base, "only_pkl" + _suffix("only_pkl", 4)))
    assert other["mixed", "j"] == "kept"


def test_clear_on_an_empty_store_keeps_base_dir(d, base):
    d.clear()
    assert os.path.isdir(base)
    sub = d.get_subdict("s")
    sub["k"] = 1
    sub.clear()
    assert os.path.isdir(base)
    assert os.path.isdir(sub.base_dir)  # a subdict never removes its own root


def test_delete_leaves_no_file(d, base):
    d["a", "b"] = 1
    del d["a", "b"]
    assert _all_files(base) == set()


# --- ETags ----------------------------------------------------------------------------------


def test_etag_is_mtime_ns_size_inode_of_the_file(d):
    d["k"] = b"some bytes"
    st = os.stat(d.key_to_path("k"))
    assert d.etag("k") == _etag_of_stat(st)
    mtime_ns, size, inode = d.etag("k").split(":")
    assert (int(mtime_ns), int(size), int(inode)) == (st.st_mtime_ns, st.st_size, st.st_ino)


def test_get_with_etag_matches_os_stat(d):
    d["k"] = [1, 2, 3]
    r = d.get_with_etag("k")
    assert r.new_value == [1, 2, 3]
    assert r.actual_etag == _etag_of_stat(os.stat(d.key_to_path("k")))


def test_set_item_if_reports_the_etag_on_disk(d):
    from persidict import ANY_ETAG, ITEM_NOT_AVAILABLE

    r = d.set_item_if("k", value=1, condition=ANY_ETAG, expected_etag=ITEM_NOT_AVAILABLE)
    assert r.resulting_etag == _etag_of_stat(os.stat(d.key_to_path("k")))


def test_etag_changes_when_only_the_size_changes(d):
    d["k"] = b"12345"
    path = d.key_to_path("k")
    before_stat = os.stat(path)
    before = d.etag("k")
    with open(path, "ab") as f:  # in place: same inode
        f.write(b"\x00")
    os.utime(path, ns=(before_stat.st_atime_ns, before_stat.st_mtime_ns))
    after_stat = os.stat(path)
    assert after_stat.st_ino == before_stat.st_ino
    assert after_stat.st_mtime_ns == before_stat.st_mtime_ns
    assert after_stat.st_size != before_stat.st_size
    assert d.etag("k") != before


def test_etag_changes_when_only_the_inode_changes(d):
    d["k"] = b"12345"
    path = d.key_to_path("k")
    before_stat = os.stat(path)
    before = d.etag("k")
    copy_path = path + ".copy"
    with open(path, "rb") as src, open(copy_path, "wb") as dst:
        dst.write(src.read())
    os.utime(copy_path, ns=(before_stat.st_atime_ns, before_stat.st_mtime_ns))
    os.replace(copy_path, path)
    after_stat = os.stat(path)
    assert after_stat.st_ino != before_stat.st_ino
    assert (after_stat.st_mtime_ns, after_stat.st_size) == (before_stat.st_mtime_ns, before_stat.st_size)
    assert d.etag("k") != before
    assert d["k"] == b"12345"


def test_every_write_gets_a_new_etag_even_with_equal_content(d):
    etags = set()
    for _ in range(20):
        d["k"] = "same"
        etags.add(d.etag("k"))
    assert len(etags) == 20


def test_timestamp_is_the_file_mtime(d):
    d["k"] = 1
    assert d.timestamp("k") == os.path.getmtime(d.key_to_path("k"))
    assert abs(d.timestamp("k") - time.time()) < 60


# --- missing keys ----------------------------------------------------------------------------


def test_missing_key_error_is_normalized_and_chained(d):
    with pytest.raises(KeyError) as info:
        d["no", "such"]
    assert isinstance(info.value.args[0], NonEmptySafeStrTuple)
    assert info.value.args[0] == ("no", "such")
    assert isinstance(info.value.__cause__, FileNotFoundError)


@pytest.mark.parametrize("operation", ["etag", "timestamp", "delitem"])
def test_missing_key_other_operations_raise_key_error(d, operation):
    with pytest.raises(KeyError) as info:
        if operation == "delitem":
            del d["nope"]
        else:
            getattr(d, operation)("nope")
    assert info.value.args[0] == ("nope",)


# --- fsync ------------------------------------------------------------------------------------


@pytest.mark.parametrize("fsync", [True, False])
def test_fsync_flag_stores_and_reads_values(base, monkeypatch, fsync):
    calls = []
    real_fsync = os.fsync

    def counting_fsync(fd):
        calls.append(fd)
        return real_fsync(fd)

    monkeypatch.setattr(os, "fsync", counting_fsync)
    d = FileDirDict(base_dir=base, fsync=fsync)
    d["k"] = {"v": 1}
    d["k"] = {"v": 2}
    assert d["k"] == {"v": 2}
    assert d.fsync is fsync
    assert d.get_params()["fsync"] is fsync
    if fsync:
        assert len(calls) >= 2  # at least the file, each write
    else:
        assert calls == []
    assert d.get_subdict("s").get_params()["fsync"] is fsync


# --- transient and persistent errors ------------------------------------------------------------


class _FailFor:
    """Wrap an os function so that it raises for one path: ``times`` times, or forever."""

    def __init__(self, real, path, exc_factory, times=None):
        self.real = real
        self.path = os.fspath(path)
        self.exc_factory = exc_factory
        self.times = times
        self.failures = 0
        self.calls = 0

    def __call__(self, path, *args, **kwargs):
        if isinstance(path, (str, bytes, os.PathLike)) and os.fspath(path) == self.path:
            self.calls += 1
            if self.times is None or self.failures < self.times:
                self.failures += 1
                raise self.exc_factory()
        return self.real(path, *args, **kwargs)


def _permission_error():
    return PermissionError(errno.EACCES, "Permission denied (simulated scanner)")


@pytest.fixture
def no_sleep(monkeypatch):
    """Retries sleep for real elsewhere; here only their count matters."""
    sleeps = []
    monkeypatch.setattr(time, "sleep", lambda s: sleeps.append(s))
    return sleeps


def _patch(monkeypatch, module, name, path, times=None, exc_factory=_permission_error):
    wrapper = _FailFor(getattr(module, name), path, exc_factory, times)
    monkeypatch.setattr(module, name, wrapper)
    return wrapper


def test_get_retries_transient_permission_error(d, monkeypatch, no_sleep):
    d["k"] = "value"
    failing = _patch(monkeypatch, local_backend.os, "open", d.key_to_path("k"), times=2)
    assert d["k"] == "value"
    assert failing.failures == 2
    assert failing.calls == 3


@pytest.mark.parametrize("attempts", [1, 3, 9])
def test_the_stores_retry_policy_sets_how_often_a_permission_error_is_tried(base, monkeypatch, no_sleep, attempts):
    d = FileDirDict(base_dir=base, fsync=False, retry=RetryConfig(transient_attempts=attempts))
    d["k"] = "value"
    failing = _patch(monkeypatch, local_backend.os, "open", d.key_to_path("k"))
    with pytest.raises(BackendError):
        d["k"]
    assert failing.calls == attempts


def test_get_with_etag_retries_transient_permission_error(d, monkeypatch, no_sleep):
    d["k"] = "value"
    failing = _patch(monkeypatch, local_backend.os, "open", d.key_to_path("k"), times=2)
    r = d.get_with_etag("k")
    assert r.new_value == "value"
    assert failing.failures == 2


def test_contains_retries_transient_permission_error(d, monkeypatch, no_sleep):
    d["k"] = "value"
    failing = _patch(monkeypatch, local_backend.os, "stat", d.key_to_path("k"), times=2)
    assert "k" in d
    assert failing.failures == 2


def test_etag_and_timestamp_retry_transient_permission_error(d, monkeypatch, no_sleep):
    d["k"] = "value"
    expected = d.etag("k")
    failing = _patch(monkeypatch, local_backend.os, "stat", d.key_to_path("k"), times=2)
    assert d.etag("k") == expected
    assert failing.failures == 2
    failing.failures = 0
    assert d.timestamp("k") > 0
    assert failing.failures == 2


def test_delete_retries_transient_permission_error(d, monkeypatch, no_sleep):
    d["k"] = "value"
    path = d.key_to_path("k")
    failing = _patch(monkeypatch, local_backend.os, "open", path, times=2)
    del d["k"]
    assert failing.failures == 2
    assert not os.path.exists(path)


def test_setdefault_retries_transient_permission_error(d, monkeypatch, no_sleep):
    d["k"] = "old"
    failing = _patch(monkeypatch, local_backend.os, "open", d.key_to_path("k"), times=2)
    assert d.setdefault("k", "new") == "old"
    assert failing.failures == 2
    assert d["k"] == "old"


def test_write_retries_transient_permission_error_on_the_temporary_file(d, base, monkeypatch, no_sleep):
    real_open = local_backend.os.open
    failures = []

    def flaky_open(path, *args, **kwargs):
        if os.path.basename(os.fspath(path)).startswith(TEMP_PREFIX) and len(failures) < 2:
            failures.append(path)
            raise _permission_error()
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr(local_backend.os, "open", flaky_open)
    d["k"] = "written"
    assert len(failures) == 2
    assert d["k"] == "written"
    assert _temp_files(base) == set()


def _assert_backend_error_from_permission(info):
    assert isinstance(info.value, BackendError)
    assert isinstance(info.value.__cause__, PermissionError)
    assert info.value.backend == "filesystem"


@pytest.mark.parametrize("operation", ["get", "get_with_etag", "delete", "etag", "contains"])
def test_persistent_permission_error_surfaces_as_backend_error_quickly(d, monkeypatch, operation):
    # Real sleeps here: the whole retry budget must stay well under 5 seconds.
    d["k"] = "value"
    path = d.key_to_path("k")
    if operation in ("etag", "contains"):
        failing = _patch(monkeypatch, local_backend.os, "stat", path)
    else:
        failing = _patch(monkeypatch, local_backend.os, "open", path)
    actions = {
        "get": lambda: d["k"],
        "get_with_etag": lambda: d.get_with_etag("k"),
        "delete": lambda: d.discard("k"),
        "etag": lambda: d.etag("k"),
        "contains": lambda: "k" in d,
    }
    start = time.monotonic()
    with pytest.raises(BackendError) as info:
        actions[operation]()
    elapsed = time.monotonic() - start
    _assert_backend_error_from_permission(info)
    assert info.value.key == ("k",)
    assert failing.calls >= 2, "a PermissionError must be retried before giving up"
    assert elapsed < 5
    monkeypatch.undo()
    assert d["k"] == "value"  # nothing was lost


def test_file_not_found_is_not_retried(d, monkeypatch, no_sleep):
    path = d.key_to_path("missing")
    opener = _patch(monkeypatch, local_backend.os, "open", path, times=0)
    stat = _patch(monkeypatch, local_backend.os, "stat", path, times=0)
    with pytest.raises(KeyError) as info:
        d["missing"]
    assert isinstance(info.value.__cause__, FileNotFoundError)
    assert opener.calls == 1
    with pytest.raises(KeyError):
        d.etag("missing")
    assert stat.calls == 1
    assert no_sleep == []


def test_corrupt_pickle_fails_at_once_with_a_decode_error(d, monkeypatch):
    d["k"] = "value"
    with open(d.key_to_path("k"), "wb") as f:
        f.write(b"\x80\x05this is not a pickle")
    sleeps = []
    real_sleep = time.sleep
    monkeypatch.setattr(time, "sleep", lambda s: (sleeps.append(s), real_sleep(s)))
    start = time.monotonic()
    with pytest.raises(BackendError) as info:
        d["k"]
    assert time.monotonic() - start < 1
    assert sleeps == []
    assert info.value.operation == "decode"
    assert info.value.key == ("k",)
    assert info.value.__cause__ is not None
    with pytest.raises(BackendError):
        d.get_with_etag("k")
    with pytest.raises(BackendError):
        list(d.values())
    # Metadata-only operations do not need to decode.
    assert "k" in d
    assert isinstance(d.etag("k"), str)


def test_corrupt_json_fails_at_once_with_a_decode_error(base):
    dj = FileDirDict(base_dir=base, serialization_format="json", fsync=False)
    dj["k"] = [1]
    with open(dj.key_to_path("k"), "w", encoding="utf-8") as f:
        f.write("{not json")
    start = time.monotonic()
    with pytest.raises(BackendError) as info:
        dj["k"]
    assert time.monotonic() - start < 1
    assert info.value.operation == "decode"


def test_name_too_long_for_the_filesystem_fails_at_once(base):
    # Components may have 253 characters (docs/concepts.md#safe-characters), but "<253 chars>.pkl"
    # is 257 bytes, over the 255-byte NAME_MAX of ext4, tmpfs, xfs and btrfs.
    if os.pathconf(os.path.dirname(base), "PC_NAME_MAX") > 256:  # pragma: no cover
        pytest.skip("this filesystem allows file names over 256 bytes")
    d0 = FileDirDict(base_dir=base, digest_len=0, fsync=False)
    long_key = "x" * 253
    start = time.monotonic()
    with pytest.raises(ValueError, match="too long"):
        d0[long_key] = 1
    assert time.monotonic() - start < 2
    assert _all_files(base) == set()  # no temporary file left behind
    with pytest.raises(ValueError, match="too long"):
        d0[long_key]
    # The default digest_len 4 signs a 248-char component to 253 characters: same story.
    d4 = FileDirDict(base_dir=base + "4", fsync=False)
    with pytest.raises(ValueError, match="too long"):
        d4["y" * 248] = 1
    assert _all_files(base) == set()


# --- failed writes ---------------------------------------------------------------------------------


def test_unpicklable_value_leaves_previous_value_and_no_temp_file(d, base):
    import threading

    d["k"] = "previous"
    etag = d.etag("k")
    with pytest.raises(TypeError):
        d["k"] = threading.Lock()
    with pytest.raises(TypeError):
        d["k"] = lambda: None
    assert d["k"] == "previous"
    assert d.etag("k") == etag
    assert _temp_files(base) == set()
    assert len(d) == 1


def test_failed_disk_write_leaves_previous_value_and_no_temp_file(d, base, monkeypatch):
    d["k"] = "previous"
    etag = d.etag("k")
    real_write = local_backend.os.write

    def disk_full(fd, data):
        raise OSError(errno.ENOSPC, "No space left on device (simulated)")

    monkeypatch.setattr(local_backend.os, "write", disk_full)
    with pytest.raises(BackendError) as info:
        d["k"] = "x" * 1000
    assert isinstance(info.value.__cause__, OSError)
    assert info.value.operation == "write"
    monkeypatch.setattr(local_backend.os, "write", real_write)
    assert d["k"] == "previous"
    assert d.etag("k") == etag
    assert _temp_files(base) == set()


def test_failed_insert_creates_no_item(d, base):
    with pytest.raises(TypeError):
        d["new"] = lambda: None
    assert "new" not in d
    assert _temp_files(base) == set()
    assert len(d) == 0


# --- writes under transient errors, access denial, forged keys ---------------------------------------


def _flaky(real, target, times=2):
    """Wrap a two-path os function (replace, link): PermissionError ``times`` times for ``target``."""
    failures = []

    def wrapper(src, dst, *args, **kwargs):
        if os.fspath(dst) == target and len(failures) < times:
            failures.append(dst)
            raise _permission_error()
        return real(src, dst, *args, **kwargs)

    return wrapper, failures


def test_overwrite_retries_transient_permission_error_on_replace(d, base, monkeypatch, no_sleep):
    # Transient errors are retried (docs/errors.md#transient-errors): a scanner holding the target
    # for a moment must not fail the write.
    d["k"] = "old"
    wrapper, failures = _flaky(local_backend.os.replace, d.key_to_path("k"))
    monkeypatch.setattr(local_backend.os, "replace", wrapper)
    d["k"] = "new"
    assert len(failures) == 2
    assert d["k"] == "new"
    assert _temp_files(base) == set()


def test_insert_retries_transient_permission_error_on_link(d, base, monkeypatch, no_sleep):
    wrapper, failures = _flaky(local_backend.os.link, d.key_to_path("new"))
    monkeypatch.setattr(local_backend.os, "link", wrapper)
    d["new"] = "value"
    assert len(failures) == 2
    assert d["new"] == "value"
    assert _temp_files(base) == set()


def test_contains_does_not_turn_an_access_denial_into_false(d, monkeypatch):
    # An access denial fails with a specific exception (docs/errors.md#transient-errors); answering
    # "absent" for a present key is the exists()-mistake STYLE.md warns about.
    d["k"] = "value"
    _patch(monkeypatch, local_backend.os, "stat", d.key_to_path("k"))
    start = time.monotonic()
    with pytest.raises(BackendError) as info:
        "k" in d  # noqa: B015
    assert time.monotonic() - start < 5
    assert isinstance(info.value.__cause__, PermissionError)


def _forge(*strings: str) -> NonEmptySafeStrTuple:
    """A key that skipped validation, as a buggy caller or a subclass might build one."""
    forged = object.__new__(NonEmptySafeStrTuple)
    object.__setattr__(forged, "strings", strings)
    return forged


@pytest.mark.parametrize("strings", [("..", "escape"), ("a", "..", "..", "x"), ("a/../../x",), (".",)])
def test_forged_key_cannot_leave_base_dir(tmp_path, strings):
    base = tmp_path / "outer" / "inner" / "store"
    d0 = FileDirDict(base_dir=base, digest_len=0, fsync=False)
    before = _all_files(str(tmp_path))
    with pytest.raises(ValueError, match="outside"):
        d0[_forge(*strings)] = 1
    assert _all_files(str(tmp_path)) == before


def test_default_base_dir_is_under_the_working_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    d = FileDirDict()
    assert d.base_dir == str(tmp_path / "__file_dir_dict__")
    assert d.digest_len == 4
    assert d.get_params()["fsync"] is True


def test_random_key_repeats_after_seeding_and_covers_every_key(d, base):
    import random

    for i in range(6):
        d[("dir" + str(i % 2), f"k{i}")] = i
    _plant_junk(base)
    random.seed(42)
    first = [d.random_key() for _ in range(40)]
    random.seed(42)
    assert [d.random_key() for _ in range(40)] == first
    all_keys = set(d.keys())
    assert set(first) <= all_keys
    random.seed(7)
    seen = {d.random_key() for _ in range(300)}
    assert seen == all_keys
    assert FileDirDict(base_dir=os.path.join(base, "empty"), fsync=False).random_key() is None


def test_leftover_temporary_files_are_collected(base):
    d = FileDirDict(base_dir=base, fsync=False)
    d["a", "b"] = 1
    old = [os.path.join(base, _temp_name()) for i in range(3)]
    old.append(os.path.join(base, "a_btax", _temp_name()))
    fresh = os.path.join(base, _temp_name())
    for path in old + [fresh]:
        with open(path, "wb") as f:
            f.write(b"x" * 10)
    for path in old:
        os.utime(path, (time.time() - 7200, time.time() - 7200))
    assert d.remove_temporary_files(older_than=3600) == 4
    assert os.path.exists(fresh) and not any(os.path.exists(p) for p in old)
    assert d.remove_temporary_files(older_than=0) == 1  # a write in flight is only ever as old as the caller says
    assert dict(d.items()) == {("a", "b"): 1}


def test_clear_removes_leftover_temporary_files_but_not_live_ones(base):
    d = FileDirDict(base_dir=base, fsync=False)
    d["k"] = 1
    leftover, live = os.path.join(base, _temp_name()), os.path.join(base, _temp_name())
    for path in (leftover, live):
        with open(path, "wb") as f:
            f.write(b"x")
    os.utime(leftover, (time.time() - 600, time.time() - 600))
    d.clear()
    assert not os.path.exists(leftover) and os.path.exists(live) and len(d) == 0
