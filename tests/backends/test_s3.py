"""What only the S3 store has: object naming, request counts, server-side atomicity, errors.

Everything runs against a real S3 API (moto's server on 127.0.0.1), so these
tests see the HTTP requests s3fs really sends.
"""

from __future__ import annotations

import multiprocessing
import time
from typing import Any

import pytest

from persidict import (
    ANY_ETAG,
    ETAG_HAS_CHANGED,
    ETAG_IS_THE_SAME,
    ITEM_NOT_AVAILABLE,
    NEVER_RETRIEVE,
    BackendError,
    FsspecDict,
    MutationPolicyError,
    Transfers,
)
from persidict.presets.s3 import BasicS3Dict

from ..servers.moto_s3 import MotoS3


@pytest.fixture
def store(s3: MotoS3) -> FsspecDict[Any]:
    return FsspecDict(f"s3://{s3.new_bucket_name()}/root", storage_options=s3.storage_options(), create_root=True)


def _requests_of(s3: MotoS3, action: Any) -> list[tuple[str, str]]:
    with s3.counting() as seen:
        action()
    return seen


# --- naming and parameters ---------------------------------------------------------


def test_basic_s3_dict_names_objects_without_digest_suffixes(s3: MotoS3) -> None:
    d = BasicS3Dict(bucket_name="naming", root_prefix="root", storage_options=s3.storage_options())
    d["a", "b"] = 1
    assert d.root_prefix == "root/"
    assert d.base_url == "s3://naming/root/"
    assert d.key_to_path(("a", "b")) == "naming/root/a/b.pkl"
    assert ("PUT", "/naming/root/a/b.pkl") in s3.requests


def test_basic_s3_dict_params_rebuild_the_same_store(s3: MotoS3) -> None:
    d = BasicS3Dict(bucket_name="params", root_prefix="p", storage_options=s3.storage_options())
    d["k"] = "v"
    params = d.get_params()
    assert list(params) == sorted(params)
    assert params["root_prefix"] == "p/" and params["bucket_name"] == "params"
    assert BasicS3Dict(**params)["k"] == "v"


def test_subdict_extends_the_prefix(s3: MotoS3) -> None:
    d = BasicS3Dict(bucket_name="subs", root_prefix="p", storage_options=s3.storage_options())
    d["x", "y"] = 1
    sub = d.get_subdict("x")
    assert sub.base_url == "s3://subs/p/x/"
    assert sub["y"] == 1
    assert d.get_subdict(()).base_url == d.base_url


def test_listing_ignores_objects_with_other_suffixes(store: FsspecDict[Any]) -> None:
    store["a"] = 1
    store.fs.pipe_file(store.url.removeprefix("s3://") + "/raw.txt", b"not ours")
    assert list(store.keys()) == [("a",)]
    assert len(store) == 1


def test_etag_is_the_s3_etag_verbatim(store: FsspecDict[Any]) -> None:
    store["k"] = "v"
    info = store.fs.info(store.key_to_path("k"), refresh=True)
    assert store.etag("k") == info["ETag"]
    assert store.etag("k").startswith('"')


def test_aws_endpoint_url_from_the_environment_is_honoured(s3: MotoS3, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", s3.url)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    d = FsspecDict("s3://from-env/x", storage_options={"skip_instance_cache": True})
    d["k"] = 1
    assert ("PUT", "/from-env/x/k.pkl") in s3.requests


# --- requests at the minimum -----------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "operation", "expected"),
    [
        ("get", lambda d: d["k"], 1),
        ("set", lambda d: d.__setitem__("k", 2), 1),
        ("etag", lambda d: d.etag("k"), 1),
        ("contains", lambda d: "k" in d, 1),
        ("get_with_etag", lambda d: d.get_with_etag("k"), 1),
        (
            "set_item_if success",
            lambda d: d.set_item_if("k", value=3, condition=ETAG_IS_THE_SAME, expected_etag=d.etag("k")),
            2,  # one of them is the etag() call that produced the expected ETag
        ),
        (
            "setdefault_if on an absent key",
            lambda d: d.setdefault_if(
                "new", default_value=1, condition=ETAG_IS_THE_SAME, expected_etag=ITEM_NOT_AVAILABLE
            ),
            2,  # a look (GET), then the conditional PUT
        ),
        (
            "setdefault_if on a present key (a write-once result written again)",
            lambda d: d.setdefault_if(
                "k", default_value=1, condition=ANY_ETAG, expected_etag=ITEM_NOT_AVAILABLE,
                retrieve_value=NEVER_RETRIEVE,
            ),
            1,  # one HEAD, no upload
        ),
        (
            "discard_if with a known etag",
            lambda d: d.discard_if("k", condition=ETAG_IS_THE_SAME, expected_etag=d.etag("k")),
            2,  # the etag() call, then one conditional DELETE
        ),
        ("transform_item uncontended", lambda d: d.transform_item("k", transformer=lambda v: v + 1), 2),
        (
            "unchanged get_item_if",
            lambda d: d.get_item_if("k", condition=ETAG_HAS_CHANGED, expected_etag=d.etag("k")),
            2,  # the etag() call, then one GET answered 304
        ),
    ],
)
def test_requests_per_operation(s3: MotoS3, store: FsspecDict[Any], name: str, operation: Any, expected: int) -> None:
    store["k"] = 1
    seen = _requests_of(s3, lambda: operation(store))
    assert len(seen) == expected, (name, seen)


def test_len_and_keys_list_once_per_thousand_keys(s3: MotoS3, store: FsspecDict[Any]) -> None:
    store.fs.pipe({f"{store.url.removeprefix('s3://')}/k{i}.pkl": b"x" for i in range(1001)},
                  batch_size=16)  # a few connections at a time: a busy machine times out hundreds at once
    assert _requests_of(s3, lambda: len(store)) == [("GET", f"/{store.url.split('/')[2]}")] * 2
    seen = _requests_of(s3, lambda: list(store.keys()))
    assert len(seen) == 2 and all(method == "GET" for method, _ in seen)


def test_values_are_fetched_concurrently(s3: MotoS3, store: FsspecDict[Any]) -> None:
    for i in range(64):
        store[f"k{i}"] = i
    with s3.latency(0.05):
        s3.max_in_flight = 0
        assert sorted(store.values()) == list(range(64))
    assert s3.max_in_flight >= 8


def test_bulk_reads_hold_a_bounded_number_of_bytes(s3: MotoS3) -> None:
    store = FsspecDict(f"s3://{s3.new_bucket_name()}/root", storage_options=s3.storage_options(),
                       transfers=Transfers(read_budget=400_000))
    for i in range(10):
        store[f"k{i}"] = bytes([i]) * 100_000  # four of them fill the budget
    start = len(s3.requests)

    def value_gets() -> int:
        return sum(1 for method, path in s3.requests[start:] if method == "GET" and path.endswith(".pkl"))

    values = store.values()
    first = next(values)
    assert value_gets() <= 5  # the first, alone, then as many as the budget holds
    assert sorted([first, *values]) == [bytes([i]) * 100_000 for i in range(10)]
    assert value_gets() == 10
    assert len(dict(store.items())) == 10


# --- atomicity on the server -------------------------------------------------------------


def test_a_large_conditional_write_keeps_its_condition(s3: MotoS3, store: FsspecDict[Any]) -> None:
    big = b"a" * (101 * 1024 * 1024)  # s3fs would switch to multipart above 100 MiB and drop the condition
    store["big"] = b"small"
    stale = store.etag("big")
    store["big"] = b"changed"
    seen = _requests_of(
        s3, lambda: store.set_item_if("big", value=big, condition=ETAG_IS_THE_SAME, expected_etag=stale)
    )
    assert store["big"] == b"changed"
    assert ("POST", "/" + store.key_to_path("big")) in seen  # in parts, and the completion was refused


def test_append_only_insert_is_a_conditional_put(s3: MotoS3) -> None:
    d = FsspecDict(f"s3://{s3.new_bucket_name()}/ao", storage_options=s3.storage_options(), append_only=True)
    d["warm"] = 0  # a store's first write also records its layout (core/layout.py): once, not per write
    seen = _requests_of(s3, lambda: d.__setitem__("k", 1))
    assert seen == [("PUT", seen[0][1])]
    with pytest.raises(MutationPolicyError):
        d["k"] = 2
    assert d["k"] == 1


def _increment_many(params: dict[str, Any], count: int) -> None:
    d = FsspecDict(**params)
    for _ in range(count):
        d.transform_item("counter", transformer=lambda n: 1 if n is ITEM_NOT_AVAILABLE else n + 1, n_retries=None)


def _claim(params: dict[str, Any], key: str, worker: int, results: Any) -> None:
    d = FsspecDict(**params)
    r = d.setdefault_if(key, default_value=worker, condition=ETAG_IS_THE_SAME, expected_etag=ITEM_NOT_AVAILABLE)
    results.put((worker, r.condition_was_satisfied))


@pytest.mark.processes
def test_processes_incrementing_one_key_lose_no_update(store: FsspecDict[Any]) -> None:
    context = multiprocessing.get_context("spawn")
    workers = [context.Process(target=_increment_many, args=(store.get_params(), 100)) for _ in range(4)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=240)
        assert worker.exitcode == 0
    assert store["counter"] == 400


@pytest.mark.processes
def test_processes_racing_an_insert_have_exactly_one_winner(store: FsspecDict[Any]) -> None:
    context = multiprocessing.get_context("spawn")
    results = context.Queue()
    workers = [context.Process(target=_claim, args=(store.get_params(), "lock", i, results)) for i in range(6)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=120)
    outcomes = [results.get(timeout=10) for _ in workers]
    winners = [worker for worker, won in outcomes if won]
    assert len(winners) == 1
    assert store["lock"] == winners[0]


def _write_then_delete(params: dict[str, Any]) -> None:
    d = FsspecDict(**params)
    d["seen"] = "by another process"
    d["gone"] = 1
    del d["gone"]


@pytest.mark.processes
def test_another_process_writes_and_deletes_are_seen_at_once(store: FsspecDict[Any]) -> None:
    store["gone"] = 0
    assert sorted(store.keys()) == [("gone",)]  # primes any listing cache s3fs might keep
    assert "gone" in store and "seen" not in store
    process = multiprocessing.get_context("spawn").Process(target=_write_then_delete, args=(store.get_params(),))
    process.start()
    process.join(timeout=120)
    assert process.exitcode == 0
    assert "seen" in store and store["seen"] == "by another process"
    assert "gone" not in store
    assert sorted(store.keys()) == [("seen",)]
    assert len(store) == 1


# --- errors ----------------------------------------------------------------------------------


def test_bad_credentials_give_a_backend_error(s3: MotoS3, monkeypatch: pytest.MonkeyPatch) -> None:
    import moto.settings

    d = FsspecDict(f"s3://{s3.new_bucket_name()}/x", storage_options=s3.storage_options())
    monkeypatch.setattr(moto.settings, "INITIAL_NO_AUTH_ACTION_COUNT", 0)  # the server now checks keys
    with pytest.raises(BackendError) as caught:
        d["k"] = 1
    assert isinstance(caught.value.__cause__, PermissionError)
    assert caught.value.backend == "s3" and caught.value.operation == "write"


def test_a_bucket_that_cannot_be_created_gives_a_backend_error(s3: MotoS3) -> None:
    with pytest.raises(BackendError) as caught:
        FsspecDict("s3://ab/x", storage_options=s3.storage_options(), create_root=True)  # too short a name
    assert caught.value.operation == "init"
    assert caught.value.__cause__ is not None
    lazy: FsspecDict[Any] = FsspecDict("s3://ab/x", storage_options=s3.storage_options())
    with pytest.raises(BackendError, match="cannot create the store's root s3://ab/x") as caught:
        lazy["k"] = 1  # the first write creates the bucket, or says why it cannot
    assert caught.value.operation == "init"


def test_a_server_that_is_down_gives_a_backend_error_quickly() -> None:
    started = time.monotonic()
    with pytest.raises(BackendError) as caught:
        FsspecDict("s3://bucket/x", storage_options={"endpoint_url": "http://127.0.0.1:9", "key": "a", "secret": "b"},
                   create_root=True)
    assert time.monotonic() - started < 60, "bounded: no endless retries"
    assert caught.value.__cause__ is not None


def test_unsatisfied_conditions_are_results_not_errors(store: FsspecDict[Any]) -> None:
    store["k"] = 1
    r = store.set_item_if("k", value=2, condition=ETAG_IS_THE_SAME, expected_etag='"stale"')
    assert not r.condition_was_satisfied and store["k"] == 1
    r = store.discard_if("k", condition=ETAG_IS_THE_SAME, expected_etag='"stale"')
    assert not r.condition_was_satisfied and "k" in store
    r = store.set_item_if("k", value=3, condition=ANY_ETAG, expected_etag=ITEM_NOT_AVAILABLE)
    assert r.condition_was_satisfied and store["k"] == 3
