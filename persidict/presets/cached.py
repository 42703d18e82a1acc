"""Read-through caches in front of a main store: ``MutableDictCached``, ``AppendOnlyDictCached``, ``with_local_cache``.

Each is a thin constructor over the caching layer (``layers/caching.py``):
the main dict is the truth, the cache dicts hold copies.  Any PersiDict can be
main (a remote store, a local one, a class written for persidict 0.x), and any
PersiDicts can be the caches.  ``with_local_cache`` picks the caches for you:
a local folder, namespaced by the main store's location so that two stores can
never share entries, and bounded by ``max_bytes`` if you ask.
"""

from __future__ import annotations

import hashlib
import os
from typing import Any

from ..core.front import PersiDict, StoreDict
from ..core.settings import Settings
from ..keys.digests import sign_component
from ..keys.tuples import is_valid_component
from ..layers.caching import CachingStore
from ..protocol.flags import ValueType
from .local import FileDirDict, local_folder

__all__ = ["AppendOnlyDictCached", "MutableDictCached", "cache_folder", "require_persidict", "with_local_cache"]


def require_persidict(name: str, value: Any) -> PersiDict[Any]:
    """Return ``value`` if it is a PersiDict, else raise ``TypeError`` naming the argument."""
    if not isinstance(value, PersiDict):
        raise TypeError(f"{name} must be a PersiDict, got {type(value).__name__}")
    return value


class _ReadThroughCache(StoreDict[ValueType]):
    """What both caches share: a ``CachingStore`` over their main dict's store, settings from it."""

    def _open_cache(self, params: dict[str, Any], etag_cache: PersiDict[str] | None) -> None:
        main, data_cache = params["main_dict"], params["data_cache"]
        store = CachingStore(main._items, data_cache._items, None if etag_cache is None else etag_cache._items)
        self._open(store, Settings(type(self), params), base_class_for_values=main.base_class_for_values,
                   serialization_format=main.serialization_format, retry=main._retry)

    @property
    def main_dict(self) -> PersiDict[ValueType]:
        """The source of truth."""
        return self._settings.params["main_dict"]  # type: ignore[no-any-return]

    @property
    def data_cache(self) -> PersiDict[ValueType]:
        """The dict holding copies of main's values."""
        return self._settings.params["data_cache"]  # type: ignore[no-any-return]


class MutableDictCached(_ReadThroughCache[ValueType]):
    """A read-through cache over a mutable main dict, validated by ETags.

    ``data_cache`` holds values and ``etag_cache`` the main ETag each value
    belongs to.  A read with both cached asks main one conditional question,
    which transfers nothing while the value is unchanged; a changed one is
    fetched and cached again, so writes made to main by others heal on the
    next read.  ``in``, ``len``, iteration, ``timestamp`` and ``etag`` ask main.
    """

    def __init__(
        self, *, main_dict: PersiDict[ValueType], data_cache: PersiDict[ValueType], etag_cache: PersiDict[str]
    ) -> None:
        for name, value in (("main_dict", main_dict), ("data_cache", data_cache), ("etag_cache", etag_cache)):
            require_persidict(name, value)
        if main_dict.append_only or data_cache.append_only or etag_cache.append_only:
            raise ValueError("main_dict, data_cache and etag_cache must not be append-only")
        self._open_cache({"main_dict": main_dict, "data_cache": data_cache, "etag_cache": etag_cache}, etag_cache)

    @property
    def etag_cache(self) -> PersiDict[str]:
        """The dict holding main's ETag of each cached value."""
        return self._settings.params["etag_cache"]  # type: ignore[no-any-return]


class AppendOnlyDictCached(_ReadThroughCache[ValueType]):
    """A read-through cache over an append-only main dict.

    Nothing is ever changed or removed, so a cached value is trusted without
    asking main: ``in`` and ``[]`` answer from the cache when they can.
    ``len``, iteration, ``timestamp`` and ``etag`` always come from main.
    """

    def __init__(self, *, main_dict: PersiDict[ValueType], data_cache: PersiDict[ValueType]) -> None:
        require_persidict("main_dict", main_dict)
        require_persidict("data_cache", data_cache)
        if not main_dict.append_only or not data_cache.append_only:
            raise ValueError("main_dict and data_cache must both be append-only")
        if main_dict.base_class_for_values != data_cache.base_class_for_values:
            raise ValueError(
                "main_dict and data_cache must have the same base_class_for_values, got "
                f"{main_dict.base_class_for_values!r} and {data_cache.base_class_for_values!r}"
            )
        self._open_cache({"main_dict": main_dict, "data_cache": data_cache}, None)


def cache_folder(base_dir: str | os.PathLike[str], url: str, options: dict[str, Any] | None, *,
                 serialization_format: str, safe_json: bool, digest_len: int) -> str:
    """Where the copies of the store at ``url`` live below ``base_dir``: one folder per remote location.

    The folder's name carries the protocol and bucket and a digest of everything
    that tells two remote stores apart (the endpoint, the bucket, the format
    and its JSON dialect), and the prefix follows as folders named as the
    cache names key components (``digest_len``), so two stores can never share
    entries while a subdict's copies are its parent's.
    """
    protocol, _, path = url.partition("://")
    bucket, _, prefix = path.strip("/").partition("/")
    endpoint = _endpoint_of(options or {})
    digest = hashlib.sha256(repr((protocol, endpoint, bucket, serialization_format, safe_json)).encode())
    name = f"{protocol}-{bucket}-{digest.hexdigest()[:10]}" if is_valid_component(bucket) else digest.hexdigest()[:16]
    parts = [part for part in prefix.split("/") if part]
    if not all(is_valid_component(part) for part in parts):
        parts = ["~" + hashlib.sha256(prefix.encode()).hexdigest()[:16]]
    elif digest_len:
        parts = [sign_component(part, digest_len) for part in parts]
    return os.path.join(local_folder(base_dir), name, *parts)


def _endpoint_of(options: dict[str, Any]) -> str:
    """The service endpoint a store's options name (S3-compatible servers, emulators), or ''."""
    client_kwargs = options.get("client_kwargs") or {}
    endpoint = options.get("endpoint_url") or client_kwargs.get("endpoint_url") or options.get("account_name")
    return str(endpoint or os.environ.get("AWS_ENDPOINT_URL", ""))


def local_caches(
    main: PersiDict[Any], folder: str, *, digest_len: int, max_bytes: int | None
) -> tuple[FileDirDict[Any], FileDirDict[str] | None]:
    """The value cache and (for a mutable main) the ETag cache in ``folder``: ``<key>.<format>`` and
    ``<key>.<format>_etag`` files side by side, unflushed (a cache lost in a power cut is refilled)."""
    def cache(serialization_format: str, base_class: type | None, safe_json: bool) -> FileDirDict[Any]:
        return FileDirDict(folder, serialization_format=serialization_format, base_class_for_values=base_class,
                           safe_json=safe_json, digest_len=digest_len, fsync=False, max_bytes=max_bytes,
                           append_only=main.append_only)

    values = cache(main.serialization_format, main.base_class_for_values, getattr(main, "safe_json", False))
    if main.append_only:
        return values, None
    return values, cache(f"{main.serialization_format}_etag", str, False)


def with_local_cache(
    main: Any, *, base_dir: str | os.PathLike[str], digest_len: int = 8, max_bytes: int | None = None
) -> StoreDict[Any]:
    """``main`` (an FsspecDict) behind a read-through cache in the local folder ``base_dir``.

    Append-only stores trust the cache; mutable ones validate every cached read
    with one conditional request.  ``max_bytes`` bounds the folder: the least
    recently used copies are evicted (by whichever process crosses the limit).
    """
    folder = cache_folder(base_dir, main.url, main.get_params().get("storage_options"),
                          serialization_format=main.serialization_format, safe_json=main.safe_json,
                          digest_len=digest_len)
    values, etags = local_caches(main, folder, digest_len=digest_len, max_bytes=max_bytes)
    if etags is None:
        return AppendOnlyDictCached(main_dict=main, data_cache=values)
    return MutableDictCached(main_dict=main, data_cache=values, etag_cache=etags)
