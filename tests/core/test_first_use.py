"""What a newcomer meets first: a bucket that is not there, no credentials, a missing key, a conflict.

Opening ``FsspecDict`` on a bucket creates nothing (a typo must not make a
bucket); the first write does.  The 0.x presets keep creating their bucket at
open.  The messages are matched in full: they are what people read.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from persidict import (
    BackendError,
    ConcurrencyConflictError,
    FileDirDict,
    FsspecDict,
    MissingRootError,
    NonEmptySafeStrTuple,
    memoize,
)
from persidict.presets.s3 import BasicS3Dict, S3Dict

from ..servers.moto_s3 import MotoS3


def _missing(bucket: str, url: str) -> str:
    return (f"the bucket {bucket!r} does not exist: {url}. Check the name; a store on it creates it with its first "
            "write (FsspecDict(..., create_root=True) creates it at once)")


# --- a bucket that does not exist ---------------------------------------------------------------------
def test_opening_and_reading_a_missing_bucket_creates_nothing(s3: MotoS3) -> None:
    d: FsspecDict[Any] = FsspecDict("s3://typo-bukcet/runs", storage_options=s3.storage_options())
    assert "k" not in d
    assert d.get("k") is None
    for read in (lambda: d["k"], lambda: len(d), lambda: list(d), lambda: d.timestamp("k")):
        with pytest.raises(MissingRootError) as info:
            read()
        assert str(info.value) == _missing("typo-bukcet", "s3://typo-bukcet/runs")
        assert isinstance(info.value, KeyError) and isinstance(info.value, BackendError)
    assert "typo-bukcet" not in s3.buckets()


def test_the_first_write_creates_the_bucket(s3: MotoS3) -> None:
    d: FsspecDict[Any] = FsspecDict("s3://fresh-bucket/runs", storage_options=s3.storage_options())
    sub = d.get_subdict("a")
    assert "fresh-bucket" not in s3.buckets()
    sub["k"] = 1  # a subdict's first write creates the bucket too
    assert "fresh-bucket" in s3.buckets()
    assert d["a", "k"] == 1 and len(d) == 1
    assert FsspecDict("s3://fresh-bucket/runs", storage_options=s3.storage_options())["a", "k"] == 1


def test_memoize_on_a_missing_bucket_just_works(s3: MotoS3) -> None:
    calls: list[int] = []

    @memoize(FsspecDict("s3://cache-bucket/f", storage_options=s3.storage_options()), name="square")
    def square(x: int) -> int:
        calls.append(x)
        return x * x

    assert square(3) == 9 and square(3) == 9
    assert calls == [3]


def test_create_root_and_the_0x_presets_create_the_bucket_at_open(s3: MotoS3) -> None:
    FsspecDict("s3://eager-bucket/x", storage_options=s3.storage_options(), create_root=True)
    BasicS3Dict(bucket_name="basic-bucket", root_prefix="p", storage_options=s3.storage_options())
    S3Dict(bucket_name="cached-bucket", storage_options=s3.storage_options(), base_dir=os.devnull + "-unused")
    assert {"eager-bucket", "basic-bucket", "cached-bucket"} <= s3.buckets()


# --- no credentials ----------------------------------------------------------------------------------
_NO_CREDENTIALS = """
    from persidict import FsspecDict
    d = FsspecDict("s3://cli-bucket/big", storage_options={{"endpoint_url": {url!r}}})
    try:
        d["x"] = 1
    except Exception as exc:
        print(type(exc).__name__, exc, sep=": ")
"""


def test_missing_credentials_say_where_they_are_looked_for(s3: MotoS3, tmp_path: Path) -> None:
    env = {name: value for name, value in os.environ.items() if not name.startswith("AWS_")}
    env.update(HOME=str(tmp_path), AWS_CONFIG_FILE=str(tmp_path / "none"), AWS_EC2_METADATA_DISABLED="true",
               AWS_SHARED_CREDENTIALS_FILE=str(tmp_path / "none"))
    script = textwrap.dedent(_NO_CREDENTIALS.format(url=s3.url))
    run = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=300,
                         cwd=tmp_path)
    assert run.stdout.strip() == (
        "BackendError: cannot create the store's root s3://cli-bucket/big: no AWS credentials were found. They "
        "are looked for in the environment (AWS_PROFILE, or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY), in "
        "~/.aws/credentials and ~/.aws/config, and in the instance's or container's role; or give them to the store: "
        "storage_options={'key': ..., 'secret': ...}"
    ), run.stderr


# --- a missing key, a conflict -------------------------------------------------------------------------
def test_a_missing_key_is_shown_as_people_write_it(tmp_path: Path) -> None:
    d: FileDirDict[Any] = FileDirDict(base_dir=str(tmp_path))
    with pytest.raises(KeyError) as info:
        d["runs", "r1"]
    assert str(info.value) == "'runs/r1'"
    assert info.value.args == (NonEmptySafeStrTuple("runs", "r1"),)  # as in persidict 0.x
    assert isinstance(info.value.__cause__, FileNotFoundError)


def test_a_conflict_names_the_key_and_what_to_do(tmp_path: Path) -> None:
    d: FileDirDict[Any] = FileDirDict(base_dir=str(tmp_path))
    d["total"] = 0

    def interfering(value: int) -> int:
        d["total"] = value + 100  # another writer wins every race
        return value + 1

    with pytest.raises(ConcurrencyConflictError) as info:
        d.transform_item("total", transformer=interfering, n_retries=1)
    assert str(info.value) == (
        "other writers kept changing key 'total': gave up after 2 attempt(s), nothing was written. Call again, let "
        "it retry longer (n_retries=None retries until it succeeds; RetryConfig(conflict_timeout=SECONDS) gives "
        "every call of the store more time), or have fewer writers on one key")
