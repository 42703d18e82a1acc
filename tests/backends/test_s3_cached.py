"""S3Dict: S3 with a local cache folder, against a real S3 API (moto's server)."""

from __future__ import annotations

import multiprocessing
import os
from pathlib import Path
from typing import Any

import pytest

from persidict import BasicS3Dict, FsspecDict, MutableDictCached, S3Dict, S3Dict_FileDirCached

from ..servers.moto_s3 import MotoS3


def _s3dict(s3: MotoS3, base_dir: Path, **kwargs: Any) -> S3Dict[Any]:
    options = s3.storage_options()
    return S3Dict(bucket_name="cached", root_prefix="r", base_dir=base_dir, storage_options=options, **kwargs)


def _requests_and_statuses(s3: MotoS3, action: Any) -> tuple[Any, list[tuple[str, str, int]]]:
    start = len(s3.requests)
    result = action()
    return result, [(*s3.requests[i], s3.status_of(i)) for i in range(start, len(s3.requests))]


def test_s3dict_is_the_cached_class(s3: MotoS3, tmp_path: Path) -> None:
    assert S3Dict is S3Dict_FileDirCached
    d = _s3dict(s3, tmp_path)
    assert d.base_url == "s3://cached/r/" and d.digest_len == 8
    assert d.get_params()["base_dir"] == str(tmp_path)


def _cache_root(tmp_path: Path) -> Path:
    """The folder of the copies of bucket "cached": one per bucket, endpoint and format below base_dir."""
    (folder,) = tmp_path.glob("s3-cached-*")
    return folder / "r_jnb3blxd"


def test_cache_layout_is_namespaced_by_the_remote_location(s3: MotoS3, tmp_path: Path) -> None:
    d = _s3dict(s3, tmp_path)
    d["a", "b"] = {"x": 1}
    assert (_cache_root(tmp_path) / "a_btaxlooa" / "b_slvv77xg.pkl").is_file()
    etag_file = _cache_root(tmp_path) / "a_btaxlooa" / "b_slvv77xg.pkl_etag"
    main_etag, _, copy_etag = etag_file.read_text(encoding="utf-8").partition("\n")
    assert main_etag == d.main_dict.etag(("a", "b")) and main_etag.startswith('"')
    assert copy_etag  # bound to the version of its copy (docs/concurrency.md#cache-sync-rule)


@pytest.mark.parametrize("append_only", [False, True], ids=["mutable", "append-only"])
def test_two_buckets_never_share_cached_values(s3: MotoS3, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                               append_only: bool) -> None:
    # The default cache folder is the same for every S3Dict: its copies must still be kept apart.
    monkeypatch.chdir(tmp_path)
    options = s3.storage_options()
    first = S3Dict(bucket_name="bucket-a", storage_options=options, append_only=append_only)
    second = S3Dict(bucket_name="bucket-b", storage_options=options, append_only=append_only)
    first["k"] = "from a"
    second["k"] = "from b"
    assert first["k"] == "from a" and second["k"] == "from b"
    fresh = S3Dict(bucket_name="bucket-b", storage_options=options, append_only=append_only)
    assert fresh["k"] == "from b"
    assert fresh.base_dir != first.base_dir


def test_an_unchanged_cached_value_costs_one_bodiless_conditional_get(s3: MotoS3, tmp_path: Path) -> None:
    d = _s3dict(s3, tmp_path)
    d["k"] = b"x" * 1024 * 1024
    value, seen = _requests_and_statuses(s3, lambda: d["k"])
    assert value == b"x" * 1024 * 1024
    assert seen == [("GET", "/cached/r/k.pkl", 304)]


def test_outside_writes_to_s3_are_healed_on_read(s3: MotoS3, tmp_path: Path) -> None:
    d = _s3dict(s3, tmp_path)
    d["k"] = "old"
    assert d["k"] == "old"
    FsspecDict("s3://cached/r", storage_options=s3.storage_options())["k"] = "new"
    value, seen = _requests_and_statuses(s3, lambda: d["k"])
    assert value == "new"
    assert seen == [("GET", "/cached/r/k.pkl", 206)]  # ranged: the first part_threshold bytes, all of a small value
    assert d["k"] == "new"


def test_outside_deletes_are_seen(s3: MotoS3, tmp_path: Path) -> None:
    d = _s3dict(s3, tmp_path)
    d["k"] = 1
    del FsspecDict("s3://cached/r", storage_options=s3.storage_options())["k"]
    with pytest.raises(KeyError):
        d["k"]
    assert "k" not in d and len(d) == 0


def test_append_only_hits_send_no_request(s3: MotoS3, tmp_path: Path) -> None:
    d = _s3dict(s3, tmp_path, append_only=True)
    d["k"] = 1
    value, seen = _requests_and_statuses(s3, lambda: d["k"])
    assert value == 1 and seen == []
    assert (_cache_root(tmp_path) / "k_rtslc2zc.pkl").exists()
    assert not (_cache_root(tmp_path) / "k_rtslc2zc.pkl_etag").exists()  # append-only keeps no ETag files


def test_subdicts_extend_prefix_and_cache_folder(s3: MotoS3, tmp_path: Path) -> None:
    d = _s3dict(s3, tmp_path)
    d["a", "b"] = 1
    sub = d.get_subdict("a")
    assert isinstance(sub, S3Dict_FileDirCached)
    assert sub.base_url == "s3://cached/r/a/"
    assert sub.base_dir == str(_cache_root(tmp_path) / "a_btaxlooa")
    assert sub["b"] == 1
    reopened = S3Dict(**sub.get_params())
    assert reopened["b"] == 1 and reopened.base_dir == sub.base_dir


def test_any_remote_fsspec_dict_can_switch_the_cache_on(s3: MotoS3, tmp_path: Path) -> None:
    store = FsspecDict("s3://cached/plain", storage_options=s3.storage_options())
    store["k"] = [1, 2]
    cached = store.with_local_cache(tmp_path)
    assert isinstance(cached, MutableDictCached)
    assert cached["k"] == [1, 2]
    value, seen = _requests_and_statuses(s3, lambda: cached["k"])
    assert value == [1, 2] and seen == [("GET", "/cached/plain/k.pkl", 304)]


def _overwrite(params: dict[str, Any]) -> None:
    BasicS3Dict(**params)["k"] = "from another process"


@pytest.mark.processes
def test_cache_stays_coherent_when_another_process_writes(s3: MotoS3, tmp_path: Path) -> None:
    d = _s3dict(s3, tmp_path)
    d["k"] = "mine"
    assert d["k"] == "mine"
    process = multiprocessing.get_context("spawn").Process(target=_overwrite, args=(d.main_dict.get_params(),))
    process.start()
    process.join(timeout=120)
    assert process.exitcode == 0
    assert d["k"] == "from another process"
    assert os.path.exists(_cache_root(tmp_path) / "k_rtslc2zc.pkl")


def test_a_bounded_cache_hit_still_costs_one_bodiless_conditional_get(s3: MotoS3, tmp_path: Path) -> None:
    d = _s3dict(s3, tmp_path, max_bytes=4 * 1024 * 1024)
    d["k"] = b"x" * 1024 * 1024
    value, seen = _requests_and_statuses(s3, lambda: d["k"])
    assert value == b"x" * 1024 * 1024 and seen == [("GET", "/cached/r/k.pkl", 304)]
    for index in range(6):  # 6 MiB more than the budget holds: k, the least recently used, is evicted
        d[f"other{index}"] = b"y" * 1024 * 1024
    value, seen = _requests_and_statuses(s3, lambda: d["k"])
    assert value == b"x" * 1024 * 1024 and seen == [("GET", "/cached/r/k.pkl", 206)]  # fetched again, once
    assert d.get_params()["max_bytes"] == 4 * 1024 * 1024
