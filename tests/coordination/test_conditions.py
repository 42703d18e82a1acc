"""The self-test of conditional writes: no false alarm on honest stores, "not atomic" on a server that lies."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from persidict import FileDirDict, FsspecDict, PersiDict
from persidict.coordination import NonAtomicStoreError, WorkQueue, check_conditions
from persidict.coordination.conditions import PROBE_PREFIX
from persidict.pipelines.memoize import memoize

from ..servers.stripping_s3 import StrippingS3
from . import workers


def test_no_false_alarm_on_any_store_kind(d: Any) -> None:
    """Every kind of store that declares atomic conditions passes, and the probe leaves nothing behind."""
    report = d.check_conditions(refresh=True)
    assert report.atomic == d.atomic_conditions, report
    assert not any(key[0] == PROBE_PREFIX for key in d.keys())


@pytest.fixture(scope="module")
def stripping_s3() -> Iterator[StrippingS3]:
    with StrippingS3() as server:
        yield server


@pytest.fixture
def lying_store(stripping_s3: StrippingS3) -> FsspecDict[Any]:
    store: FsspecDict[Any] = FsspecDict(f"s3://{stripping_s3.new_bucket_name()}/data",
                                        storage_options=stripping_s3.storage_options())
    store["existing"] = "value"  # the bucket exists: the check's requests are the probe's alone
    return store


def test_a_server_that_ignores_conditions_is_found_out_within_six_requests(
    lying_store: FsspecDict[Any], stripping_s3: StrippingS3
) -> None:
    assert lying_store.atomic_conditions  # S3 declares them: only asking the server tells
    with stripping_s3.counting() as seen:
        report = check_conditions(lying_store, refresh=True)
    assert not report.atomic and "If-None-Match" in report.finding
    assert len(seen) <= 6, seen
    assert stripping_s3.stripped > 0
    assert lying_store.atomic_conditions is False
    assert list(lying_store.keys()) == [("existing",)]  # the scratch key was removed


def test_leases_the_queue_and_memoize_refuse_such_a_server_unless_allowed(lying_store: FsspecDict[Any]) -> None:
    check_conditions(lying_store, refresh=True)
    with pytest.raises(NonAtomicStoreError, match="allow_non_atomic=True") as refused:
        lying_store.lease("job", ttl=5)
    assert "If-None-Match" in str(refused.value)
    with pytest.raises(NonAtomicStoreError, match="memoize"):
        memoize(lying_store)(workers.square)(3)
    with pytest.raises(NonAtomicStoreError, match="a work queue"):
        WorkQueue(lying_store)
    with lying_store.lease("job", ttl=5, allow_non_atomic=True) as lease:
        assert lease.token == 1
    assert WorkQueue(lying_store, allow_non_atomic=True).put("task")


def test_the_verdict_is_remembered_per_endpoint(lying_store: FsspecDict[Any], stripping_s3: StrippingS3) -> None:
    check_conditions(lying_store, refresh=True)
    other: PersiDict[Any] = FsspecDict(f"s3://{stripping_s3.new_bucket_name()}/other",
                                       storage_options=stripping_s3.storage_options())
    sibling = lying_store.get_subdict("below")
    with stripping_s3.counting() as seen:
        assert not check_conditions(sibling).atomic  # the same bucket of the same server: not asked again
    assert seen == []
    with stripping_s3.counting() as seen:
        assert not other.check_conditions().atomic  # another bucket: asked itself
    assert seen


def test_an_append_only_store_is_not_probed_and_refused(tmp_path: Path) -> None:
    store = FileDirDict(base_dir=str(tmp_path), append_only=True)
    report = store.check_conditions()
    assert not report.atomic and "append-only" in report.finding and report.requests == 0
    assert len(store) == 0  # no scratch key left behind
    with pytest.raises(NonAtomicStoreError, match="mutable"):
        store.lease("job")
