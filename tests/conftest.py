"""Store kinds the contract suite runs on, and the fixtures that open them.

``STORE_KINDS`` is the registry: one row per kind of store. Each row says how
to pick a fresh storage location for one test and how to open a dict there.
Adding a backend (S3 on a moto server, GCS, Azure, ...) means adding one row;
every test that uses ``make_dict`` then runs on it too.

``make_dict(**overrides)`` opens a store on the test's own location; calling it
twice in one test gives two objects on the SAME storage, like two processes
opening one folder.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import tempfile
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from time import sleep as _real_sleep
from typing import Any

import pytest
from hypothesis import HealthCheck, settings

from .compat.reference import reference_python
from .servers import fake_gcs
from .servers.azurite import make_azure_dict
from .servers.registry import SERVERS

# No test asserts time: hypothesis' 200 ms deadline per example failed a key test on a busy machine.
settings.register_profile("persidict", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("persidict")

State = dict[str, Any]


@dataclass(frozen=True)
class StoreKind:
    """How to make a fresh storage location and open stores on it.

    ``new_location(tmp_path)`` returns a mutable state dict for one test
    (``tmp_path`` is None unless ``local_files``); ``open(state, overrides)``
    opens a store there; ``cleanup(state)`` frees shared resources afterwards.
    ``local_files`` says the data lives in real files under ``tmp_path``;
    ``cross_process`` says another process can open the same storage with
    ``type(d)(**d.get_params())``;
    ``timestamp_resolution`` is how far apart (in seconds) two writes must be
    for their timestamps to differ (S3's LastModified, for example, has 1 s).
    """

    id: str
    format: str
    new_location: Callable[[Path | None], State]
    open: Callable[[State, dict[str, Any]], Any]
    cleanup: Callable[[State], None] = field(default=lambda state: None)
    local_files: bool = False
    cross_process: bool = False
    timestamp_resolution: float = 0.001
    options: dict[str, Any] = field(default_factory=dict)
    """Constructor options every store of this kind is opened with (``safe_json``, ...)."""
    mutable: bool = True
    """Keys can be overwritten and deleted.  A write-once store is not: it joins only the
    tests marked ``insert_only`` (inserts, reads and conditional reads)."""
    known_failures: tuple[tuple[str, str], ...] = ()
    """``(node id regex, reason)``: tests this kind cannot pass, each a strict xfail with its reason."""
    cached: CachedParts | None = None
    """For a read-through cache kind: its main store and its caches, which tests/presets reach separately."""

    @property
    def holds_any_value(self) -> bool:
        """Its format holds any value (pkl, json, dill), not only text, arrays or tables.

        Tests of what only such formats do (a dict that looks like a tagged value, a
        ``base_class_for_values`` of ``int``) are marked ``store_kinds_with("holds_any_value")``.
        """
        from persidict.codecs.names import ANY_VALUE
        from persidict.codecs.registry import values_held

        return values_held(self.format) == ANY_VALUE


@dataclass(frozen=True)
class CachedParts:
    """A cached kind's parts: the kind of its main store and of its cache pair ("files" or "memory")."""

    main: str
    caches: str


def _deep_store_dir(tmp_path: Path) -> Path:
    # The store sits two levels below tmp_path, so a key that escaped the
    # root by one or two ".." would still land inside tmp_path, where the
    # bad-input tests look for stray files.
    return tmp_path / "outer" / "inner" / "store"


def _file_dir_location(tmp_path: Path) -> State:
    return {"base_dir": str(_deep_store_dir(tmp_path))}


def _open_file_dir(state: State, overrides: dict[str, Any]) -> Any:
    from persidict import FileDirDict

    return FileDirDict(base_dir=state["base_dir"], **overrides)


def _local_dict_location(tmp_path: Path | None) -> State:
    return {}


def _open_local_dict(state: State, overrides: dict[str, Any]) -> Any:
    from persidict import LocalDict

    if "backend" not in state:
        store = LocalDict(**overrides)
        state["backend"] = store.backend
        return store
    return LocalDict(backend=state["backend"], **overrides)


def _file_url_location(tmp_path: Path) -> State:
    return {"url": _deep_store_dir(tmp_path).as_uri()}


def _dirfs_location(tmp_path: Path | None) -> State:
    # fsspec's DirFileSystem is none of the filesystems persidict knows: it exercises GenericBackend.
    folder = tempfile.mkdtemp(prefix="persidict-dirfs-")
    return {"url": "dir://store", "folder": folder,
            "storage_options": {"path": folder, "target_protocol": "file", "skip_instance_cache": True}}


def _cleanup_folder(state: State) -> None:
    shutil.rmtree(state["folder"], ignore_errors=True)


def _memory_url_location(tmp_path: Path | None) -> State:
    return {"url": f"memory://persidict-contract/{uuid.uuid4().hex}"}


def _open_fsspec_url(state: State, overrides: dict[str, Any]) -> Any:
    from persidict import FsspecDict

    return FsspecDict(state["url"], **overrides)


def _cleanup_memory_url(state: State) -> None:
    # memory:// URLs share fsspec's global store: remove what this test left.
    import fsspec

    fs, path = fsspec.core.url_to_fs(state["url"])
    if fs.exists(path):
        fs.rm(path, recursive=True)


def _s3_location(tmp_path: Path | None) -> State:
    server = SERVERS.get("s3")
    server.reset()  # one moto server per session, its state wiped for every test
    return {"url": f"s3://contract/{uuid.uuid4().hex}", "storage_options": server.storage_options()}


def _open_with_options(state: State, overrides: dict[str, Any]) -> Any:
    from persidict import FsspecDict

    # The contract is the dict's: a fresh store is an empty one, so its bucket exists from the start (a store
    # opened lazily on a missing bucket is tested in tests/core/test_first_use.py).
    return FsspecDict(state["url"], storage_options=state["storage_options"], **{"create_root": True, **overrides})


def _gcs_location(tmp_path: Path | None) -> State:
    server = SERVERS.get("gcs")
    fake_gcs.reset(server)
    return {"server": server, "name": uuid.uuid4().hex}


def _open_gcs(state: State, overrides: dict[str, Any]) -> Any:
    return fake_gcs.make_gcs_dict(state["server"], state["name"], **overrides)


def _azure_location(tmp_path: Path | None) -> State:
    return {"server": SERVERS.get("azure"), "name": uuid.uuid4().hex}


def _open_azure(state: State, overrides: dict[str, Any]) -> Any:
    return make_azure_dict(state["server"], state["name"], **overrides)


def _cleanup_azure(state: State) -> None:
    store = make_azure_dict(state["server"], state["name"])
    store.fs.invalidate_cache()
    root = store.url.split("://", 1)[1]
    if store.fs.exists(root):
        store.fs.rm(root, recursive=True)


def _s3_cached_location(tmp_path: Path | None) -> State:
    state = _s3_location(tmp_path)
    state["base_dir"] = tempfile.mkdtemp(prefix="persidict-s3-cache-")
    return state


def _open_s3_cached(state: State, overrides: dict[str, Any]) -> Any:
    from persidict import S3Dict

    bucket, _, prefix = state["url"].removeprefix("s3://").partition("/")
    return S3Dict(bucket_name=bucket, root_prefix=prefix, base_dir=state["base_dir"],
                  storage_options=state["storage_options"], **overrides)


def _cleanup_s3_cached(state: State) -> None:
    shutil.rmtree(state["base_dir"], ignore_errors=True)


_S3_KNOWN_FAILURES = (
    (r"::test_identity_transformer_still_writes\[",
     "S3's ETag is the MD5 of the body, kept verbatim (docs/concepts.md#etags): rewriting identical bytes keeps it"),
)
_GCS_IGNORES_DELETE_PRECONDITIONS = "fake-gcs-server 1.54 ignores ifGenerationMatch on DELETE (upstream issue 1282)"
_GCS_KNOWN_FAILURES = (
    (r"::test_discard_if\[gcs-\w+-present_stale-ETAG_IS_THE_SAME\]", _GCS_IGNORES_DELETE_PRECONDITIONS),
    (r"::test_delete_conflict_is_retried\[", _GCS_IGNORES_DELETE_PRECONDITIONS),
)


def _cached_location(tmp_path: Path | None) -> State:
    # Caches live outside tmp_path: tests that watch tmp_path for writes outside the store's root watch main.
    base = _deep_store_dir(tmp_path) if tmp_path is not None else None
    return {"base_dir": str(base), "folder": tempfile.mkdtemp(prefix="persidict-cache-")}


def open_cached_main(parts: CachedParts, state: State, overrides: dict[str, Any]) -> Any:
    """A new object on the cached kind's main storage (another process's view of it)."""
    from persidict import FileDirDict

    if parts.main == "files":
        return FileDirDict(base_dir=state["base_dir"], fsync=False, **overrides)
    return _open_local_dict(state, overrides)


def open_cached_caches(parts: CachedParts, state: State, fmt: str, append_only: bool, name: str,
                       base_class: type | None = None) -> tuple[Any, Any]:
    """The ``(data_cache, etag_cache)`` pair called ``name`` (the same storage every time it is asked for);
    the data cache holds values of ``base_class``, as its main store does."""
    from persidict import FileDirDict, LocalDict, OverlappingMultiDict

    if parts.caches == "files":
        # The layout S3Dict's cache uses: one tree, values in .<fmt>, ETags in .<fmt>_etag.
        shared = {"base_dir": os.path.join(state["folder"], name), "digest_len": 8, "fsync": False,
                  "append_only": append_only}
        family = OverlappingMultiDict(dict_type=FileDirDict, shared_subdicts_params=shared,
                                      **{fmt: {"base_class_for_values": base_class},
                                         f"{fmt}_etag": {"base_class_for_values": str}})
        return getattr(family, fmt), getattr(family, f"{fmt}_etag")
    backends = state.setdefault("caches", {}).setdefault((name, fmt, append_only), (LocalDict().backend,
                                                                                    LocalDict().backend))
    return (LocalDict(backend=backends[0], serialization_format=fmt, append_only=append_only,
                      base_class_for_values=base_class),
            LocalDict(backend=backends[1], serialization_format="etag", base_class_for_values=str,
                      append_only=append_only))


def _cached_opener(parts: CachedParts) -> Callable[[State, dict[str, Any]], Any]:
    """The contract's opener of a cached kind: MutableDictCached, or AppendOnlyDictCached when append-only."""

    def open_cached(state: State, overrides: dict[str, Any]) -> Any:
        from persidict import AppendOnlyDictCached, MutableDictCached

        main = open_cached_main(parts, state, overrides)
        data_cache, etag_cache = open_cached_caches(parts, state, main.serialization_format, main.append_only,
                                                    "cache", main.base_class_for_values)
        if main.append_only:
            return AppendOnlyDictCached(main_dict=main, data_cache=data_cache)
        return MutableDictCached(main_dict=main, data_cache=data_cache, etag_cache=etag_cache)

    return open_cached


def _cached_kind(main: str, fmt: str, caches: str) -> StoreKind:
    parts = CachedParts(main, caches)
    return StoreKind(f"cached-{main}-{fmt}-{caches}-caches", fmt, _cached_location, _cached_opener(parts),
                     cleanup=_cleanup_folder, local_files=main == "files", cached=parts)


def _open_overlapping(state: State, overrides: dict[str, Any]) -> Any:
    # One format's sub-dict of an OverlappingMultiDict (tests/presets has the shared-folder cases).
    from persidict import FileDirDict, OverlappingMultiDict

    fmt = overrides.pop("serialization_format")
    shared_params = {"base_dir": state["base_dir"], **overrides}
    omd = OverlappingMultiDict(dict_type=FileDirDict, shared_subdicts_params=shared_params, **{fmt: {}})
    return getattr(omd, fmt)


def _open_write_once(state: State, overrides: dict[str, Any]) -> Any:
    # Always over an append-only folder store, whatever append_only the test asks for.
    from persidict import FileDirDict, WriteOnceDict

    overrides = {**overrides, "append_only": True}
    return WriteOnceDict(wrapped_dict=FileDirDict(base_dir=state["base_dir"], **overrides), p_consistency_checks=1)


def _kinds(*kinds: StoreKind) -> dict[str, StoreKind]:
    return {kind.id: kind for kind in kinds}


STORE_KINDS: dict[str, StoreKind] = _kinds(
    StoreKind("local-pkl", "pkl", _file_dir_location, _open_file_dir,
              local_files=True, cross_process=True),
    StoreKind("local-json", "json", _file_dir_location, _open_file_dir,
              local_files=True, cross_process=True),
    StoreKind("memory-pkl", "pkl", _local_dict_location, _open_local_dict),
    StoreKind("memory-json", "json", _local_dict_location, _open_local_dict),
    StoreKind("memory-safejson", "json", _local_dict_location, _open_local_dict, options={"safe_json": True}),
    StoreKind("fsspec-url-pkl", "pkl", _file_url_location, _open_fsspec_url,
              local_files=True, cross_process=True),
    StoreKind("memory-url-json", "json", _memory_url_location, _open_fsspec_url,
              cleanup=_cleanup_memory_url),
    StoreKind("generic-dirfs-pkl", "pkl", _dirfs_location, _open_with_options, cleanup=_cleanup_folder),
    StoreKind("s3-pkl", "pkl", _s3_location, _open_with_options, cross_process=True, timestamp_resolution=1.0,
              known_failures=_S3_KNOWN_FAILURES),
    StoreKind("s3-json", "json", _s3_location, _open_with_options, cross_process=True, timestamp_resolution=1.0,
              known_failures=_S3_KNOWN_FAILURES),
    StoreKind("s3-cached-pkl", "pkl", _s3_cached_location, _open_s3_cached, cleanup=_cleanup_s3_cached,
              cross_process=True, timestamp_resolution=1.0, known_failures=_S3_KNOWN_FAILURES),
    StoreKind("gcs-pkl", "pkl", _gcs_location, _open_gcs, cross_process=True,
              known_failures=_GCS_KNOWN_FAILURES),
    StoreKind("azure-pkl", "pkl", _azure_location, _open_azure, cleanup=_cleanup_azure, cross_process=True,
              timestamp_resolution=1.0),
    # The wrappers, so that none can drift from the contract: every main store with every kind of cache.
    _cached_kind("files", "pkl", "files"),
    _cached_kind("files", "json", "memory"),
    _cached_kind("memory", "pkl", "files"),
    _cached_kind("memory", "json", "memory"),
    StoreKind("overlapping-local-json", "json", _file_dir_location, _open_overlapping, local_files=True,
              cross_process=True),
    StoreKind("write-once-local-pkl", "pkl", _file_dir_location, _open_write_once, local_files=True,
              mutable=False),
    # Formats that hold only some types: the contract tests store the kind's own values in them
    # (tests/contract/contract_helpers.py, FAMILIES): tables, arrays, text.
    StoreKind("local-parquet", "parquet", _file_dir_location, _open_file_dir, local_files=True,
              cross_process=True),
    StoreKind("memory-npy", "npy", _local_dict_location, _open_local_dict),
    StoreKind("memory-txt", "txt", _local_dict_location, _open_local_dict, options={"base_class_for_values": str}),
)


class DictFactory:
    """Opens stores of one kind on one storage location (see ``make_dict``)."""

    def __init__(self, kind: StoreKind, state: State) -> None:
        self.kind = kind
        self.format = kind.format
        self._state = state

    def __call__(self, **overrides: Any) -> Any:
        options = dict(self.kind.options)
        if overrides.get("serialization_format") in ("pkl", "dill"):
            options.pop("safe_json", None)  # a kind's safe_json is for its json: pickles cannot be safe
        overrides = {"serialization_format": self.kind.format, **options, **overrides}
        return self.kind.open(self._state, overrides)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "processes: spawns worker processes (slower)")
    config.addinivalue_line("markers", "many_runs: a race repeated many times; outside the default suite")
    config.addinivalue_line(
        "markers", "store_kinds_with(*flags): run only on store kinds whose StoreKind flags are all true")
    config.addinivalue_line(
        "markers", "insert_only: the test only inserts and reads, so write-once store kinds run it too")


def pytest_sessionstart(session: pytest.Session) -> None:
    # moto's server logs every request through werkzeug: keep test reports readable.
    logging.getLogger("werkzeug").setLevel(logging.WARNING)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    SERVERS.close()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    # Emulator gaps: each is a strict xfail with its reason, so a fixed emulator shows up as XPASS.
    for item in items:
        callspec = getattr(item, "callspec", None)
        kind = STORE_KINDS.get(callspec.params.get("store_kind", "")) if callspec else None
        for pattern, reason in kind.known_failures if kind else ():
            if re.search(pattern, item.nodeid):
                item.add_marker(pytest.mark.xfail(strict=True, reason=reason))


def pytest_collection_finish(session: pytest.Session) -> None:
    # The compatibility tests run persidict 0.309.0 in a venv built on first use: build it here,
    # outside every test's timeout (a fresh pip install takes minutes on a busy machine).
    if not session.config.option.collectonly and any(item.nodeid.startswith("tests/compat/") for item in session.items):
        reference_python()


@pytest.fixture(scope="session")
def moto_s3() -> Any:
    """The session's moto S3 server (started on first use)."""
    return SERVERS.get("s3")


@pytest.fixture
def s3(moto_s3: Any) -> Any:
    """The session's moto S3 server, emptied: no buckets, no request log."""
    moto_s3.reset()
    return moto_s3


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    # Every test that uses a store runs once per registry row, or once per row
    # that has the capabilities named by its store_kinds_with marker.
    if "store_kind" not in metafunc.fixturenames:
        return
    marker = metafunc.definition.get_closest_marker("store_kinds_with")
    flags = marker.args if marker else ()
    insert_only = metafunc.definition.get_closest_marker("insert_only") is not None
    ids = [kid for kid, kind in sorted(STORE_KINDS.items())
           if all(getattr(kind, f) for f in flags) and (kind.mutable or insert_only)]
    metafunc.parametrize("store_kind", ids, indirect=True)


@pytest.fixture
def store_kind(request: pytest.FixtureRequest) -> StoreKind:
    """The kind of store under test (parametrized over ``STORE_KINDS``)."""
    return STORE_KINDS[request.param]


@pytest.fixture
def fmt(store_kind: StoreKind) -> str:
    """The serialization format of the store kind under test."""
    return store_kind.format


@pytest.fixture
def codec(store_kind: StoreKind) -> str:
    """The codec of the store kind under test: "pkl", "jsonpickle" or "safejson"."""
    if store_kind.format != "json":
        return store_kind.format
    return "safejson" if store_kind.options.get("safe_json") else "jsonpickle"


def _tmp_path_if_needed(kind: StoreKind, request: pytest.FixtureRequest) -> Path | None:
    # Only kinds that keep files get a tmp_path: creating one costs more than
    # a whole in-memory test.
    return request.getfixturevalue("tmp_path") if kind.local_files else None


@pytest.fixture
def make_dict(store_kind: StoreKind, request: pytest.FixtureRequest):
    """Factory of stores on this test's own fresh storage location."""
    state = store_kind.new_location(_tmp_path_if_needed(store_kind, request))
    yield DictFactory(store_kind, state)
    store_kind.cleanup(state)


@pytest.fixture
def tick(store_kind: StoreKind) -> Callable[[], None]:
    """``tick()``: wait long enough for the next write to get a later timestamp."""
    # _real_sleep: some tests cap time.sleep to speed up retry back-off.
    return lambda: _real_sleep(store_kind.timestamp_resolution + 0.01)


@pytest.fixture
def d(make_dict: DictFactory) -> Any:
    """A store of the kind under test, with default options."""
    return make_dict()


def storage_of(store: Any) -> Any:
    """The store that holds the data: a wrapper's main or wrapped store, down to one with a filesystem."""
    while not hasattr(store, "fs"):
        inner = getattr(store, "main_dict", None)
        store = store.wrapped_dict if inner is None else inner  # (an empty store is falsy)
    return store


@pytest.fixture
def raw_bytes() -> Callable[[Any, Any], bytes]:
    """``raw_bytes(store, key)``: the bytes really stored for the key."""

    def read(store: Any, key: Any) -> bytes:
        store = storage_of(store)
        return store.fs.cat_file(store.key_to_path(key))

    return read


@pytest.fixture
def storage_snapshot(store_kind: StoreKind, request: pytest.FixtureRequest) -> Callable[[Any], frozenset]:
    """``storage_snapshot(store)``: everything that exists in the storage world.

    Entries are tuples that start with an absolute path. File kinds: every
    file and directory under ``tmp_path`` with size and mtime, so any write
    (inside or outside the store root) shows up. Other kinds: every path in
    ``store.fs`` with its content.
    """

    tmp_path = _tmp_path_if_needed(store_kind, request)

    def snapshot(store: Any) -> frozenset:
        if tmp_path is not None:
            entries = set()
            for dirpath, dirnames, filenames in os.walk(tmp_path):
                for name in dirnames + filenames:
                    path = os.path.join(dirpath, name)
                    st = os.stat(path)
                    entries.add((path, st.st_size, st.st_mtime_ns))
            return frozenset(entries)
        store = storage_of(store)
        fs = store.fs
        fs.invalidate_cache()  # remote filesystems cache listings
        top = store.key_to_path("x").split("/")[0] or "/"  # the bucket, or the memory root
        return frozenset(
            (path, fs.cat_file(path) if fs.isfile(path) else None)
            for path in fs.find(top, withdirs=True)
        )

    return snapshot


@pytest.fixture(scope="session", autouse=True)
def _machine_cache_folder(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The per-machine cache (memoize's code, len()'s folder counts) in a folder of this session, not in ~/.cache.

    Set in ``os.environ`` (as ``PERSIDICT_CACHE_DIR``): the subprocesses, kernels and
    notebooks the tests start inherit it.
    """
    folder = tmp_path_factory.mktemp("persidict-cache")
    previous = os.environ.get("PERSIDICT_CACHE_DIR")
    os.environ["PERSIDICT_CACHE_DIR"] = str(folder)
    yield folder
    if previous is None:
        del os.environ["PERSIDICT_CACHE_DIR"]
    else:
        os.environ["PERSIDICT_CACHE_DIR"] = previous
