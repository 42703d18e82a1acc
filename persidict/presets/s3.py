"""S3 stores under the names users of persidict know: ``BasicS3Dict`` and ``S3Dict``.

Both are thin presets of FsspecDict on an ``s3://`` URL: the bucket, an
optional key prefix and region, and object names without digest suffixes
(``<root_prefix><k1>/<k2>.<format>``).  They honour the standard AWS
configuration (``AWS_ENDPOINT_URL``, ``AWS_PROFILE``, credential files);
``storage_options`` passes anything else to s3fs (an endpoint, keys).
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from ..backends import DEFAULT_TIMEOUT
from ..core.front import NonEmptyPersiDictKey, PersiDict
from ..core.fsspec_dict import FsspecDict
from ..keys.tuples import SafeStrTuple
from ..protocol.flags import ValueType
from ..wrappers.pass_through import PassThroughDict
from .local_cache import cached_by, local_cache_folders

if TYPE_CHECKING:
    from ..backends.s3 import S3Backend

__all__ = ["BasicS3Dict", "S3Dict", "S3Dict_FileDirCached"]

_S3_ERROR_CLASSIFIERS = ("conditional_request_failed", "not_found_error", "not_modified_error")


def __getattr__(name: str) -> Any:
    """The S3 error classifiers persidict 0.x's ``basic_s3_dict`` had, loaded with the S3 backend on first use."""
    if name not in _S3_ERROR_CLASSIFIERS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from ..backends import s3

    return getattr(s3, name)


class BasicS3Dict(FsspecDict[ValueType]):
    """One S3 object per value; the bucket is created if it does not exist."""

    def __init__(
        self,
        *,
        bucket_name: str = "my_bucket",
        region: str | None = None,
        root_prefix: str = "",
        serialization_format: str = "pkl",
        append_only: bool = False,
        base_class_for_values: type | None = None,
        storage_options: dict[str, Any] | None = None,
        safe_json: bool = False,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> None:
        if root_prefix and not root_prefix.endswith("/"):
            root_prefix += "/"
        options = dict(storage_options or {})
        if region:
            options["client_kwargs"] = {**options.get("client_kwargs", {}), "region_name": region}
        self.region = region
        super().__init__(
            f"s3://{bucket_name}/{root_prefix}",
            storage_options=options,
            serialization_format=serialization_format,
            append_only=append_only,
            base_class_for_values=base_class_for_values,
            safe_json=safe_json,
            timeout=timeout,
        )
        self._storage_options = storage_options

    @property
    def _s3(self) -> S3Backend:
        return self._backend  # type: ignore[return-value]  # an s3:// URL always opens an S3Backend

    @property
    def bucket_name(self) -> str:
        """The bucket holding the objects."""
        return self._s3.bucket

    @property
    def root_prefix(self) -> str:
        """The key prefix of every object, ending in ``/`` (or empty)."""
        return self._s3.prefix

    @property
    def base_url(self) -> str:
        """``s3://<bucket>/<root_prefix>``."""
        return f"s3://{self.bucket_name}/{self.root_prefix}"

    def get_params(self) -> dict[str, Any]:
        params = PersiDict.get_params(self)
        params.update(
            bucket_name=self.bucket_name,
            region=self.region,
            root_prefix=self.root_prefix,
            safe_json=self.safe_json,
            storage_options=self._storage_options,
            timeout=self.timeout,
        )
        return dict(sorted(params.items()))


class S3Dict_FileDirCached(PassThroughDict[ValueType]):
    """S3 storage with a local cache folder: ``S3Dict``.

    Values live in S3 (a BasicS3Dict); ``base_dir`` keeps local copies.  A
    mutable store validates every cached read with one conditional GET
    (``If-None-Match``, answered 304 without a body when nothing changed); an
    append-only store trusts its cache and sends nothing for a hit.  Writes,
    deletes and conditional operations go to S3 first, so they are as atomic
    as S3's own.
    """

    def __init__(
        self,
        *,
        bucket_name: str = "my_bucket",
        region: str | None = None,
        root_prefix: str = "",
        base_dir: str | os.PathLike[str] = "__s3_dict__",
        serialization_format: str = "pkl",
        digest_len: int = 8,
        append_only: bool = False,
        base_class_for_values: type | None = None,
        storage_options: dict[str, Any] | None = None,
        safe_json: bool = False,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> None:
        main: BasicS3Dict[ValueType] = BasicS3Dict(
            bucket_name=bucket_name,
            region=region,
            root_prefix=root_prefix,
            serialization_format=serialization_format,
            append_only=append_only,
            base_class_for_values=base_class_for_values,
            storage_options=storage_options,
            safe_json=safe_json,
            timeout=timeout,
        )
        cache_dir = os.path.abspath(os.fspath(base_dir))
        self.local_cache = local_cache_folders(main, base_dir=cache_dir, digest_len=digest_len)
        self._setup(main, cached_by(main, self.local_cache), digest_len)

    def _setup(self, main: BasicS3Dict[ValueType], cached: PersiDict[ValueType], digest_len: int) -> None:
        PassThroughDict.__init__(self, cached, append_only=main.append_only)
        self._main = main
        self._digest_len = digest_len

    @property
    def main_dict(self) -> BasicS3Dict[ValueType]:
        """The S3 store behind the cache."""
        return self._main

    @property
    def bucket_name(self) -> str:
        """The bucket holding the objects."""
        return self._main.bucket_name

    @property
    def region(self) -> str | None:
        """The AWS region given at construction, if any."""
        return self._main.region

    @property
    def root_prefix(self) -> str:
        """The key prefix of every object, ending in ``/`` (or empty)."""
        return self._main.root_prefix

    @property
    def base_url(self) -> str:
        """``s3://<bucket>/<root_prefix>``."""
        return self._main.base_url

    @property
    def fs(self) -> Any:
        """The s3fs filesystem of the S3 store."""
        return self._main.fs

    @property
    def url(self) -> str:
        """The S3 store's root as an ``s3://`` URL."""
        return self._main.url

    def key_to_path(self, key: NonEmptyPersiDictKey) -> str:
        """The S3 path (``bucket/prefix/...``) where the value of ``key`` is stored."""
        return self._main.key_to_path(key)

    def key_to_url(self, key: NonEmptyPersiDictKey) -> str:
        """The S3 URL of the value of ``key`` (``s3://bucket/...``), for other tools."""
        return self._main.key_to_url(key)

    @property
    def base_dir(self) -> str:
        """The local cache folder (of this subdict)."""
        return str(self._inner.data_cache.base_dir)  # type: ignore[attr-defined]

    @property
    def digest_len(self) -> int:
        """Digest suffix length of the cache's file names."""
        return self._digest_len

    def get_params(self) -> dict[str, Any]:
        params = self._main.get_params()
        params.update(base_dir=self.base_dir, digest_len=self._digest_len)
        return dict(sorted(params.items()))

    def _rewrap(self, inner: PersiDict[ValueType], prefix: SafeStrTuple) -> S3Dict_FileDirCached[ValueType]:
        """The same arrangement one prefix down: a longer S3 prefix, a deeper cache folder."""
        subdict: S3Dict_FileDirCached[ValueType] = object.__new__(type(self))
        subdict._setup(inner.main_dict, inner, self._digest_len)  # type: ignore[attr-defined]
        return subdict


S3Dict = S3Dict_FileDirCached
"""The name users of persidict know for ``S3Dict_FileDirCached``: the same class."""
