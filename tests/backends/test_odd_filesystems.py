"""Filesystems that cannot write or that cache: read-only ones serve every read, caching ones are refused.

Read-only stores are real: a zip archive on disk, and a folder served by an
HTTP server on 127.0.0.1 (Python's own ``http.server``).  Every listing and
read must agree with the others (``len`` = keys = values = items), and every
write, delete or clear must fail with a ``BackendError`` that says the
filesystem is read-only.  ``type(d)(**d.get_params())`` reopens each store,
chained URLs included.
"""

from __future__ import annotations

import functools
import http.server
import threading
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from persidict import ANY_ETAG, ITEM_NOT_AVAILABLE, BackendError, FsspecDict

VALUES = {("k0",): 0, ("k1",): "one", ("sub", "x"): [1, 2], ("sub", "deeper", "y"): {"z": 3}}


def _write_store(folder: Path) -> None:
    store = FsspecDict(str(folder / "store"))
    for key, value in VALUES.items():
        store[key] = value


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder holding ``store/`` with VALUES, written by FsspecDict."""
    folder = tmp_path_factory.mktemp("read-only-source")
    _write_store(folder)
    return folder


@pytest.fixture(scope="module")
def zip_url(source: Path, tmp_path_factory: pytest.TempPathFactory) -> str:
    archive = tmp_path_factory.mktemp("zip") / "store.zip"
    with zipfile.ZipFile(archive, "w") as zipped:
        for path in sorted((source / "store").rglob("*")):
            if path.is_file():
                zipped.write(path, path.relative_to(source).as_posix())
    return f"zip://store::file://{archive}"


@pytest.fixture(scope="module")
def http_url(source: Path) -> Iterator[str]:
    handler = functools.partial(_QuietHandler, directory=str(source))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/store"
    finally:
        server.shutdown()
        server.server_close()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture(params=["zip", "http"])
def read_only(request: pytest.FixtureRequest) -> FsspecDict[Any]:
    url = request.getfixturevalue(f"{request.param}_url")
    return FsspecDict(url)


def test_every_read_works_and_agrees(read_only: FsspecDict[Any]) -> None:
    keys = sorted(read_only.keys())
    assert keys == sorted(VALUES)
    assert len(read_only) == len(keys) == len(list(read_only.values())) == len(dict(read_only.items()))
    assert dict(read_only.items()) == VALUES
    assert {k: v for k, v, _ in read_only.items_and_timestamps()} == VALUES
    for key, value in VALUES.items():
        assert key in read_only and read_only[key] == value
        assert read_only.etag(key) == read_only.get_with_etag(key).actual_etag
        assert read_only.timestamp(key) > 0
    assert "absent" not in read_only and read_only.get("absent") is None
    assert read_only.random_key() in VALUES
    assert read_only.get_subdict("sub")["x"] == [1, 2]


def test_writes_and_deletes_say_the_filesystem_is_read_only(read_only: FsspecDict[Any]) -> None:
    calls = {
        "set": lambda: read_only.__setitem__("new", 1),
        "overwrite": lambda: read_only.__setitem__("k0", 9),
        "del": lambda: read_only.__delitem__("k0"),
        "discard": lambda: read_only.discard("k0"),
        "clear": read_only.clear,
        "setdefault_if": lambda: read_only.setdefault_if(
            "new", default_value=1, condition=ANY_ETAG, expected_etag=ITEM_NOT_AVAILABLE),
        "transform_item": lambda: read_only.transform_item("k0", transformer=lambda v: v + 1),
        "pop": lambda: read_only.pop("k0"),
    }
    for call in calls.values():
        with pytest.raises(BackendError, match="read-only"):
            call()
    assert dict(read_only.items()) == VALUES, "nothing changed"


def test_stores_reopen_from_their_params(read_only: FsspecDict[Any]) -> None:
    reopened = type(read_only)(**read_only.get_params())
    assert dict(reopened.items()) == VALUES
    sub = read_only.get_subdict(("sub", "deeper"))
    assert dict(type(sub)(**sub.get_params()).items()) == {("y",): {"z": 3}}


def test_a_directory_filesystem_reopens_from_its_params(source: Path) -> None:
    store = FsspecDict("dir://store", storage_options={"path": str(source), "target_protocol": "file"})
    assert dict(store.items()) == VALUES
    assert dict(type(store)(**store.get_params()).items()) == VALUES


@pytest.mark.parametrize("cache", ["simplecache", "filecache", "blockcache"])
def test_caching_filesystems_are_refused_with_the_alternative(source: Path, cache: str) -> None:
    # They serve a file's first cached copy after it was overwritten: a store would read stale values.
    with pytest.raises(ValueError, match="with_local_cache") as info:
        FsspecDict(f"{cache}::file://{source}/store")
    assert f"{cache}::" in str(info.value)
