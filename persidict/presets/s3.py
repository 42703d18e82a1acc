"""S3 stores under the names users of persidict know: ``BasicS3Dict`` and ``S3Dict``.

``BasicS3Dict`` is an FsspecDict on an ``s3://`` URL: the bucket, an optional
key prefix and region, and object names without digest suffixes
(``<root_prefix><k1>/<k2>.<format>``).  ``S3Dict`` is the same store behind a
read-through cache in a local folder (``presets/cached.py``).  Both honour the
standard AWS configuration (``AWS_ENDPOINT_URL``, ``AWS_PROFILE``, credential
files); ``storage_options`` passes anything else to s3fs (an endpoint, keys).
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from ..backends import DEFAULT_TIMEOUT, open_backend
from ..backends.transfers import Transfers
from ..core.front import StoreDict
from ..core.fsspec_dict import FsspecDict
from ..core.settings import Location, Settings
from ..layers.caching import CachingStore
from ..protocol.flags import ValueType
from ..protocol.retry import RetryConfig
from .cached import cache_folder, local_caches

if TYPE_CHECKING:
    from ..backends.s3 import S3Backend

__all__ = ["BasicS3Dict", "S3Dict", "S3Dict_FileDirCached"]

_S3_ERROR_CLASSIFIERS = ("conditional_request_failed", "not_found_error", "not_modified_error")
_PREFIX = Location("root_prefix", "prefix")
_MAIN_PARAMETERS = ("bucket_name", "region", "root_prefix", "serialization_format", "append_only",
                    "base_class_for_values", "storage_options", "safe_json", "timeout", "transfers")


def __getattr__(name: str) -> Any:
    """The S3 error classifiers persidict 0.x's ``basic_s3_dict`` had, loaded with the S3 backend on first use."""
    if name not in _S3_ERROR_CLASSIFIERS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from ..backends import s3

    return getattr(s3, name)


def _s3_options(storage_options: dict[str, Any] | None, region: str | None) -> dict[str, Any]:
    """s3fs's options: the caller's, with the region in ``client_kwargs``."""
    options = dict(storage_options or {})
    if region:
        options["client_kwargs"] = {**options.get("client_kwargs", {}), "region_name": region}
    return options


def _prefix(root_prefix: str) -> str:
    return root_prefix if not root_prefix or root_prefix.endswith("/") else root_prefix + "/"


class BasicS3Dict(FsspecDict[ValueType]):
    """One S3 object per value; the bucket is created if it does not exist."""

    def __init__(
        self,
        *,
        bucket_name: str = "my_bucket",
        region: str | None = None,
        root_prefix: str = "",
        serialization_format: str | None = None,
        append_only: bool = False,
        base_class_for_values: type | None = None,
        storage_options: dict[str, Any] | None = None,
        safe_json: bool | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        retry: RetryConfig | None = None,
        transfers: Transfers | None = None,
    ) -> None:
        root_prefix = _prefix(root_prefix)
        backend = open_backend(f"s3://{bucket_name}/{root_prefix}", _s3_options(storage_options, region))
        params = {"bucket_name": bucket_name, "region": region, "root_prefix": root_prefix,
                  "storage_options": storage_options, "timeout": timeout,
                  "serialization_format": serialization_format, "append_only": append_only,
                  "base_class_for_values": base_class_for_values, "safe_json": safe_json}
        self._open_files(backend, params, _PREFIX, defaults=(0, "pkl"), retry=retry, transfers=transfers)

    @property
    def _s3(self) -> S3Backend:
        return self._files.backend  # type: ignore[return-value]  # an s3:// URL always opens an S3Backend

    @property
    def bucket_name(self) -> str:
        """The bucket holding the objects."""
        return self._s3.bucket

    @property
    def region(self) -> str | None:
        """The AWS region given at construction, if any."""
        return self._settings.params["region"]  # type: ignore[no-any-return]

    @property
    def root_prefix(self) -> str:
        """The key prefix of every object, ending in ``/`` (or empty)."""
        return self._s3.prefix

    @property
    def base_url(self) -> str:
        """``s3://<bucket>/<root_prefix>``."""
        return f"s3://{self.bucket_name}/{self.root_prefix}"


class S3Dict_FileDirCached(StoreDict[ValueType]):
    """S3 storage with a local cache folder: ``S3Dict``.

    Values live in S3 (a ``BasicS3Dict``); ``base_dir`` keeps local copies, in
    a folder of their own per bucket, endpoint and format, so two S3Dicts on
    different buckets never serve each other's values.  A mutable store
    validates every cached read with one conditional GET (``If-None-Match``,
    answered 304 without a body when nothing changed); an append-only store
    trusts its cache and sends nothing for a hit.  Writes, deletes and
    conditional operations go to S3 first, so they are as atomic as S3's own.
    ``max_bytes`` bounds the cache folder (least recently used copies go first).
    """

    def __init__(
        self,
        *,
        bucket_name: str = "my_bucket",
        region: str | None = None,
        root_prefix: str = "",
        base_dir: str | os.PathLike[str] = "__s3_dict__",
        serialization_format: str | None = None,
        digest_len: int = 8,
        append_only: bool = False,
        base_class_for_values: type | None = None,
        storage_options: dict[str, Any] | None = None,
        safe_json: bool | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        max_bytes: int | None = None,
        retry: RetryConfig | None = None,
        transfers: Transfers | None = None,
    ) -> None:
        main: BasicS3Dict[ValueType] = BasicS3Dict(
            bucket_name=bucket_name, region=region, root_prefix=root_prefix,
            serialization_format=serialization_format, append_only=append_only,
            base_class_for_values=base_class_for_values, storage_options=storage_options, safe_json=safe_json,
            timeout=timeout, retry=retry, transfers=transfers,
        )
        folder = cache_folder(base_dir, main.url, _s3_options(storage_options, region),
                              serialization_format=main.serialization_format, safe_json=main.safe_json,
                              digest_len=digest_len)
        values, etags = local_caches(main, folder, digest_len=digest_len, max_bytes=max_bytes)
        store = CachingStore(main._items, values._items, None if etags is None else etags._items)
        params = {**{name: value for name, value in main.get_params().items() if name in _MAIN_PARAMETERS},
                  "base_dir": os.path.abspath(os.fspath(base_dir)), "digest_len": digest_len}
        if max_bytes is not None:
            params["max_bytes"] = max_bytes
        if retry is not None:
            params["retry"] = retry
        self._open(store, Settings(type(self), params, _PREFIX), base_class_for_values=base_class_for_values,
                   serialization_format=main.serialization_format, retry=retry)

    @property
    def _cache(self) -> CachingStore:
        return self._store  # type: ignore[return-value]

    @property
    def main_dict(self) -> BasicS3Dict[ValueType]:
        """The S3 store behind the cache."""
        params = {name: value for name, value in self.get_params().items() if name in _MAIN_PARAMETERS}
        main: BasicS3Dict[ValueType] = object.__new__(BasicS3Dict)
        main._open(self._cache.inner, Settings(BasicS3Dict, params, _PREFIX),
                   base_class_for_values=self.base_class_for_values, serialization_format=self.serialization_format,
                   retry=self._retry)
        return main

    @property
    def bucket_name(self) -> str:
        """The bucket holding the objects."""
        return str(self._settings.params["bucket_name"])

    @property
    def region(self) -> str | None:
        """The AWS region given at construction, if any."""
        return self._settings.params["region"]  # type: ignore[no-any-return]

    @property
    def root_prefix(self) -> str:
        """The key prefix of every object, ending in ``/`` (or empty)."""
        return str(self._settings.params["root_prefix"])

    @property
    def base_url(self) -> str:
        """``s3://<bucket>/<root_prefix>``."""
        return f"s3://{self.bucket_name}/{self.root_prefix}"

    @property
    def fs(self) -> Any:
        """The s3fs filesystem of the S3 store."""
        return self.main_dict.fs

    @property
    def url(self) -> str:
        """The S3 store's root as an ``s3://`` URL."""
        return self.main_dict.url

    def key_to_path(self, key: Any) -> str:
        """The S3 path (``bucket/prefix/...``) where the value of ``key`` is stored."""
        return self.main_dict.key_to_path(key)

    def key_to_url(self, key: Any) -> str:
        """The S3 URL of the value of ``key`` (``s3://bucket/...``), for other tools."""
        return self.main_dict.key_to_url(key)

    @property
    def base_dir(self) -> str:
        """The local folder holding this store's cached copies."""
        values = self._cache.values
        while hasattr(values, "inner"):
            values = values.inner
        return str(values.backend.root)  # type: ignore[attr-defined]

    @property
    def digest_len(self) -> int:
        """Digest suffix length of the cache's file names."""
        return int(self._settings.params["digest_len"])


S3Dict = S3Dict_FileDirCached
"""The name users of persidict know for ``S3Dict_FileDirCached``: the same class."""
