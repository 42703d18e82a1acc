"""Every storage failure leaves a store as ``BackendError``, chained from its cause.

The store's error boundary (``FsspecDict._fail``) is the one place where
storage failures become the documented exceptions (docs/errors.md#error-boundary).  These tests break one
``StorageBackend`` primitive of a live store at a time (patched on the
backend instance, so everything else stays real) and then call every public
method that may reach storage, on a store that holds a key:

* a call that reaches the broken primitive must raise ``BackendError`` whose
  ``__cause__`` chain holds the very exception the primitive raised: never the
  raw ``OSError``, never ``KeyError``, ``PreconditionFailed`` or anything else;
* a call that does not reach it must succeed.

A second family injects the internal ``PreconditionFailed`` where no
precondition was asked for (a read, a stat, a listing, an unconditional write
or delete): it too must come out as ``BackendError``.
"""

from __future__ import annotations

import contextlib
import errno
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import fsspec
import pytest

from persidict import (
    ALWAYS_RETRIEVE,
    ANY_ETAG,
    DELETE_CURRENT,
    ETAG_IS_THE_SAME,
    ITEM_NOT_AVAILABLE,
    NEVER_RETRIEVE,
    BackendError,
    FileDirDict,
    FsspecDict,
    LocalDict,
)
from persidict.backends import ANY
from persidict.protocol.versions import PreconditionFailed
from tests.servers.azurite import make_azure_dict
from tests.servers.fake_gcs import make_gcs_dict
from tests.servers.registry import SERVERS

INA = ITEM_NOT_AVAILABLE
KEY = ("k",)
"""The key every store holds before the call (value 1)."""
NESTED = ("sub", "x")
"""A second stored key (value 2), so that subdicts have something to show."""
MISSING = ("missing",)

PRIMITIVES = (
    "read",
    "read_versioned",
    "read_if_changed",
    "read_decoded",
    "open_read",
    "read_many",
    "stat",
    "exists",
    "put",
    "put_stream",
    "remove",
    "walk",
    "walk_folders",
    "count_keys",
    "prune_empty_dirs",
    "ensure_root",
    "child",
)
"""Every primitive of ``StorageBackend`` (persidict/backends/base.py)."""
GENERATORS = frozenset({"read_many", "walk", "walk_folders"})
"""Primitives that return iterators: they fail when iterated, as a real listing does."""


# --- the public calls ------------------------------------------------------------------------
def _transform_delete(value: Any) -> Any:
    return DELETE_CURRENT


def _ior(d: Any, etag: str) -> Any:
    d |= {KEY: 3}
    return d


METHODS: dict[str, Callable[[Any, str], Any]] = {
    "getitem": lambda d, e: d[KEY],
    "setitem": lambda d, e: d.__setitem__(KEY, 2),
    "setitem_new": lambda d, e: d.__setitem__(MISSING, 2),
    "delitem": lambda d, e: d.__delitem__(KEY),
    "contains": lambda d, e: KEY in d,
    "len": lambda d, e: len(d),
    "bool": lambda d, e: bool(d),
    "iter": lambda d, e: list(d),
    "keys": lambda d, e: list(d.keys()),
    "values": lambda d, e: list(d.values()),
    "items": lambda d, e: list(d.items()),
    "keys_and_timestamps": lambda d, e: list(d.keys_and_timestamps()),
    "values_and_timestamps": lambda d, e: list(d.values_and_timestamps()),
    "items_and_timestamps": lambda d, e: list(d.items_and_timestamps()),
    "get": lambda d, e: d.get(KEY),
    "get_missing": lambda d, e: d.get(MISSING, 0),
    "setdefault": lambda d, e: d.setdefault(KEY, 5),
    "setdefault_missing": lambda d, e: d.setdefault(MISSING, 5),
    "pop": lambda d, e: d.pop(KEY),
    "pop_missing_default": lambda d, e: d.pop(MISSING, None),
    "popitem": lambda d, e: d.popitem(),
    "discard": lambda d, e: d.discard(KEY),
    "delete_if_exists": lambda d, e: d.delete_if_exists(KEY),
    "clear": lambda d, e: d.clear(),
    "etag": lambda d, e: d.etag(KEY),
    "timestamp": lambda d, e: d.timestamp(KEY),
    "get_item_if_unchanged": lambda d, e: d.get_item_if(KEY, condition=ETAG_IS_THE_SAME, expected_etag=e),
    "get_item_if_always": lambda d, e: d.get_item_if(
        KEY, condition=ANY_ETAG, expected_etag=INA, retrieve_value=ALWAYS_RETRIEVE),
    "get_item_if_never": lambda d, e: d.get_item_if(
        KEY, condition=ANY_ETAG, expected_etag=INA, retrieve_value=NEVER_RETRIEVE),
    "set_item_if_cas": lambda d, e: d.set_item_if(KEY, value=3, condition=ETAG_IS_THE_SAME, expected_etag=e),
    "set_item_if_insert": lambda d, e: d.set_item_if(
        MISSING, value=3, condition=ETAG_IS_THE_SAME, expected_etag=INA),
    "set_item_if_any": lambda d, e: d.set_item_if(KEY, value=3, condition=ANY_ETAG, expected_etag=e),
    "set_item_if_delete": lambda d, e: d.set_item_if(
        KEY, value=DELETE_CURRENT, condition=ETAG_IS_THE_SAME, expected_etag=e),
    "setdefault_if": lambda d, e: d.setdefault_if(
        MISSING, default_value=9, condition=ANY_ETAG, expected_etag=INA),
    "discard_if": lambda d, e: d.discard_if(KEY, condition=ETAG_IS_THE_SAME, expected_etag=e),
    "discard_if_any": lambda d, e: d.discard_if(KEY, condition=ANY_ETAG, expected_etag=INA),
    "transform_item": lambda d, e: d.transform_item(KEY, transformer=lambda v: v + 1),
    "transform_item_delete": lambda d, e: d.transform_item(KEY, transformer=_transform_delete),
    "get_with_etag": lambda d, e: d.get_with_etag(KEY),
    "random_key": lambda d, e: d.random_key(),
    "newest_keys": lambda d, e: d.newest_keys(),
    "oldest_keys": lambda d, e: d.oldest_keys(max_n=1),
    "newest_values": lambda d, e: d.newest_values(max_n=1),
    "oldest_values": lambda d, e: d.oldest_values(),
    "get_subdict": lambda d, e: d.get_subdict("sub"),
    "subdicts": lambda d, e: d.subdicts(),
    "update": lambda d, e: d.update({KEY: 3, MISSING: 4}),
    "ior": _ior,
    "eq": lambda d, e: d == {KEY: 1, NESTED: 2},
    "ne": lambda d, e: d != {KEY: 1},
    "str": lambda d, e: str(d),
    "open": lambda d, e: d.open(KEY).close(),
    "get_many": lambda d, e: d.get_many([KEY, MISSING]),
}

S3_METHODS = (
    "getitem", "setitem", "delitem", "contains", "len", "values", "items_and_timestamps", "get", "setdefault",
    "pop", "popitem", "discard", "clear", "etag", "timestamp", "get_item_if_unchanged", "set_item_if_cas",
    "set_item_if_insert", "setdefault_if", "discard_if", "transform_item", "get_with_etag", "random_key",
    "newest_values", "get_subdict", "subdicts", "update", "eq", "str",
)
"""The S3 kind runs a smaller subset (each case costs real requests to the moto server)."""


# --- the stores ------------------------------------------------------------------------------
LOCAL_KINDS = ("FileDirDict", "LocalDict", "FsspecDict_memory", "FsspecDict_file")
OBJECT_KINDS = ("S3", "GCS", "Azure")
KINDS = (*LOCAL_KINDS, *OBJECT_KINDS)
STREAMING_KINDS = ("FileDirDict", "FsspecDict_file", *OBJECT_KINDS)
"""Kinds whose backends stream values (``streams_values``)."""


@pytest.fixture
def open_store(request: pytest.FixtureRequest) -> Iterator[Callable[[str], Any]]:
    """``open_store(kind)``: a fresh store of that kind holding ``KEY: 1`` and ``NESTED: 2``."""
    memory_urls: list[str] = []

    def folder(name: str) -> Path:
        tmp_path: Path = request.getfixturevalue("tmp_path")  # only where needed: it costs more than a test
        return tmp_path / f"{name}-{uuid.uuid4().hex[:8]}"

    def open_(kind: str) -> Any:
        if kind == "FileDirDict":
            d: Any = FileDirDict(base_dir=folder("store"), fsync=False)
        elif kind == "LocalDict":
            d = LocalDict()
        elif kind == "FsspecDict_memory":
            memory_urls.append(f"memory://persidict-error-boundary/{uuid.uuid4().hex}")
            d = FsspecDict(memory_urls[-1])
        elif kind == "FsspecDict_file":
            d = FsspecDict(folder("url-store").as_uri())
        elif kind == "S3":
            server = request.getfixturevalue("moto_s3")
            d = FsspecDict(f"s3://error-boundary/{uuid.uuid4().hex}", storage_options=server.storage_options())
        elif kind == "GCS":
            d = make_gcs_dict(SERVERS.get("gcs"), uuid.uuid4().hex, create_root=True)
        elif kind == "Azure":
            d = make_azure_dict(SERVERS.get("azure"), uuid.uuid4().hex, create_root=True)
        else:
            raise AssertionError(kind)
        d[KEY] = 1
        d[NESTED] = 2
        return d

    yield open_
    for url in memory_urls:
        fs, path = fsspec.core.url_to_fs(url)
        if fs.exists(path):
            fs.rm(path, recursive=True)


class Injector:
    """Breaks one primitive of one backend instance and records the errors it raised."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, backend: Any, primitive: str,
                 make_error: Callable[[], BaseException],
                 when: Callable[[tuple[Any, ...], dict[str, Any]], bool] = lambda args, kwargs: True) -> None:
        self.raised: list[BaseException] = []
        original = getattr(backend, primitive)

        def fail(*args: Any, **kwargs: Any) -> Any:
            if not when(args, kwargs):
                return original(*args, **kwargs)
            error = make_error()
            self.raised.append(error)
            raise error

        if primitive in GENERATORS:
            def broken(*args: Any, **kwargs: Any) -> Iterator[Any]:
                yield from fail(*args, **kwargs)  # raises on the first next(), like a failing listing
        else:
            broken = fail
        monkeypatch.setattr(backend, primitive, broken)


def _causes(error: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    cause: BaseException | None = error.__cause__
    while cause is not None and id(cause) not in seen:
        seen.add(id(cause))
        yield cause
        cause = cause.__cause__


def check_call(d: Any, method: str, etag: str, injector: Injector) -> None:
    """The method succeeds if it never reached the broken primitive, else raises a chained BackendError."""
    try:
        METHODS[method](d, etag)
    except BackendError as error:
        assert injector.raised, f"BackendError without reaching the broken primitive: {error!r}"
        assert any(cause in injector.raised for cause in _causes(error)), (
            f"BackendError not chained from the injected error: cause chain {list(_causes(error))!r}")
        assert isinstance(error.backend, str) and error.backend
        assert isinstance(error.operation, str) and error.operation
    except BaseException as error:
        pytest.fail(f"{method} raised {type(error).__name__}: {error!r} (cause {error.__cause__!r}); "
                    f"expected BackendError or success")
    else:
        assert not injector.raised, f"{method} reached the broken primitive and swallowed {injector.raised[0]!r}"


def _os_error() -> OSError:
    return OSError(errno.EIO, "injected")


def _cases(kinds: tuple[str, ...], primitives: tuple[str, ...], methods: tuple[str, ...]) -> list[Any]:
    return [pytest.param(kind, primitive, method, id=f"{kind}-{primitive}-{method}")
            for kind in kinds for primitive in primitives for method in methods]


# --- an OSError from every primitive -------------------------------------------------------------
@pytest.mark.parametrize(
    ("kind", "primitive", "method"),
    _cases(LOCAL_KINDS, PRIMITIVES, tuple(METHODS)) + _cases(("S3",), PRIMITIVES, S3_METHODS),
)
def test_an_os_error_from_a_primitive_is_a_backend_error(
    open_store: Callable[[str], Any], monkeypatch: pytest.MonkeyPatch, kind: str, primitive: str, method: str
) -> None:
    """An ``OSError`` from any primitive reaches the caller only as ``BackendError`` chained from it."""
    d = open_store(kind)
    etag = d.etag(KEY)
    injector = Injector(monkeypatch, d._backend, primitive, _os_error)
    check_call(d, method, etag, injector)


REACHED_BY: dict[str, str | tuple[str, ...]] = {
    "read": "getitem",
    # Local folders: get_with_etag decodes from the file, and values() reads each folder's values through
    # it; a key not found there (MISSING) is looked up by its path.
    "read_versioned": ("get_with_etag", "values", "get_many"),
    "read_if_changed": "get_item_if_unchanged",
    "read_decoded": "getitem",
    "open_read": "open",
    "read_many": "values",
    "stat": "etag",
    "exists": "contains",
    "put": "update",  # d[k] = v goes through put_stream on local folders and object stores
    "put_stream": "setitem",
    "remove": "delitem",
    "walk": ("keys", "keys_and_timestamps"),  # local folders list keys folder by folder (walk_folders)
    "walk_folders": "keys",
    "count_keys": "len",
    "prune_empty_dirs": "clear",
    "ensure_root": "get_subdict",
    "child": "get_subdict",
}
"""A public method that reaches each primitive (so the matrix above is not vacuous)."""


@pytest.mark.parametrize(
    ("kind", "primitive"),
    [pytest.param(kind, primitive, id=f"{kind}-{primitive}") for kind in KINDS for primitive in PRIMITIVES
     # ensure_root runs at construction, and a local child is a new backend object that the patch
     # on the instance cannot reach (object store children are copies, and inherit it).
     if not (primitive == "ensure_root" and kind not in OBJECT_KINDS)
     # Local folders and object stores decode values from a file (read_decoded): read serves the layout record
     # only; other backends pass whole bytes, so nothing reaches their read_decoded and put_stream.
     and not (primitive == "read" and kind in STREAMING_KINDS)
     and not (primitive in ("read_decoded", "put_stream") and kind not in STREAMING_KINDS)
     # LocalDict keeps count of its keys: its len() counts nothing.
     and not (primitive == "count_keys" and kind == "LocalDict")],
)
def test_every_primitive_is_reached_by_a_public_method(
    open_store: Callable[[str], Any], monkeypatch: pytest.MonkeyPatch, kind: str, primitive: str
) -> None:
    """The matrix above is not vacuous: each broken primitive does fail some public call."""
    d = open_store(kind)
    etag = d.etag(KEY)
    injector = Injector(monkeypatch, d._backend, primitive, _os_error)
    methods = REACHED_BY[primitive]
    for method in (methods,) if isinstance(methods, str) else methods:
        with contextlib.suppress(Exception):  # which exception it is, is the matrix's business
            METHODS[method](d, etag)
    assert injector.raised


# --- an internal PreconditionFailed where no precondition was asked for -------------------------
def _precondition_failed() -> PreconditionFailed:
    return PreconditionFailed("injected")


def _unconditional_put(args: tuple[Any, ...], kwargs: dict[str, Any]) -> bool:
    return kwargs.get("expected", args[2] if len(args) > 2 else ANY) is ANY


def _unconditional_remove(args: tuple[Any, ...], kwargs: dict[str, Any]) -> bool:
    return kwargs.get("expected", args[1] if len(args) > 1 else ANY) is ANY


UNCONDITIONAL_PRIMITIVES = tuple(p for p in PRIMITIVES if p not in ("put", "put_stream", "remove"))
"""Primitives that never take a precondition: PreconditionFailed from them is always a storage fault."""


@pytest.mark.parametrize(
    ("kind", "primitive", "method"),
    _cases(("LocalDict", "FileDirDict"), UNCONDITIONAL_PRIMITIVES, tuple(METHODS)),
)
def test_precondition_failed_from_an_unconditional_primitive_is_a_backend_error(
    open_store: Callable[[str], Any], monkeypatch: pytest.MonkeyPatch, kind: str, primitive: str, method: str
) -> None:
    """``PreconditionFailed`` from a read, stat, listing or the like is a ``BackendError``, never leaked."""
    d = open_store(kind)
    etag = d.etag(KEY)
    injector = Injector(monkeypatch, d._backend, primitive, _precondition_failed)
    check_call(d, method, etag, injector)


@pytest.mark.parametrize(
    ("kind", "primitive", "method"),
    _cases(("LocalDict", "FileDirDict"), ("put", "put_stream", "remove"), tuple(METHODS)),
)
def test_precondition_failed_from_an_unconditional_write_or_delete_is_a_backend_error(
    open_store: Callable[[str], Any], monkeypatch: pytest.MonkeyPatch, kind: str, primitive: str, method: str
) -> None:
    """A put or remove with ``expected=ANY`` that reports an unmet precondition is a storage fault.

    Calls that carry a real precondition (``ABSENT`` or an ETag) are left alone:
    there the engine legitimately turns ``PreconditionFailed`` into a result.
    """
    d = open_store(kind)
    etag = d.etag(KEY)
    when = _unconditional_remove if primitive == "remove" else _unconditional_put
    injector = Injector(monkeypatch, d._backend, primitive, _precondition_failed, when)
    check_call(d, method, etag, injector)


# --- a FileNotFoundError that names no key ---------------------------------------------------------------
KEYLESS_PRIMITIVES = ("walk", "read_many", "exists", "prune_empty_dirs", "ensure_root", "child")
"""Primitives whose ``FileNotFoundError`` cannot mean "this key is absent" (a listing, a root, a child)."""


def _file_not_found() -> FileNotFoundError:
    return FileNotFoundError(errno.ENOENT, "injected")


@pytest.mark.parametrize(
    ("kind", "primitive", "method"),
    _cases(("LocalDict", "FileDirDict"), KEYLESS_PRIMITIVES, tuple(METHODS)),
)
def test_file_not_found_from_a_keyless_primitive_never_leaks_raw(
    open_store: Callable[[str], Any], monkeypatch: pytest.MonkeyPatch, kind: str, primitive: str, method: str
) -> None:
    """``FileNotFoundError`` is an ``OSError``: from a listing or a root it must not reach the caller raw.

    The boundary lets ``FileNotFoundError`` through for the caller to read as a
    missing key; where there is no key to be missing, the call may treat it
    as absence (an empty listing, ``False``, ``KeyError``) or fail with
    ``BackendError``, but never re-raise it as it is.
    """
    d = open_store(kind)
    etag = d.etag(KEY)
    injector = Injector(monkeypatch, d._backend, primitive, _file_not_found)
    try:
        METHODS[method](d, etag)
    except BackendError as error:
        assert any(cause in injector.raised for cause in _causes(error))
    except KeyError:
        pass
    except BaseException as error:
        pytest.fail(f"{method} raised {type(error).__name__}: {error!r}; expected a result, KeyError or BackendError")


# --- the documented absorption rules ---------------------------------------------------------------
@pytest.mark.parametrize("kind", LOCAL_KINDS)
def test_eq_and_get_do_not_absorb_backend_errors(
    open_store: Callable[[str], Any], monkeypatch: pytest.MonkeyPatch, kind: str
) -> None:
    """``==`` absorbs only KeyError/TypeError/AttributeError/ValueError, ``get`` only KeyError.

    See docs/concepts.md#equality.

    ``BackendError`` is a ``RuntimeError``: a broken store must not compare
    unequal, or look like a missing key, silently.
    """
    d = open_store(kind)
    Injector(monkeypatch, d._backend, "walk_folders", _os_error)  # local folders list folder by folder
    with pytest.raises(BackendError):
        _ = d == {KEY: 1, NESTED: 2}
    with pytest.raises(BackendError):
        _ = d != {KEY: 1, NESTED: 2}
    Injector(monkeypatch, d._backend, "read", _os_error)
    Injector(monkeypatch, d._backend, "read_decoded", _os_error)
    with pytest.raises(BackendError):
        d.get(KEY, "default")


@pytest.mark.parametrize("kind", LOCAL_KINDS)
def test_a_name_too_long_is_a_value_error_not_a_backend_error(
    open_store: Callable[[str], Any], monkeypatch: pytest.MonkeyPatch, kind: str
) -> None:
    """The boundary's one other translation: ``ENAMETOOLONG`` means the key is too long (``ValueError``)."""
    d = open_store(kind)
    for primitive in ("read", "read_decoded"):  # local folders decode from the open file
        Injector(monkeypatch, d._backend, primitive, lambda: OSError(errno.ENAMETOOLONG, "File name too long"))
    with pytest.raises(ValueError, match="too long"):
        d[KEY]
