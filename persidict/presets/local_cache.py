"""A local-folder cache in front of any store: what makes ``S3Dict`` fast on repeated reads.

The cache is two FileDirDicts sharing one folder (an OverlappingMultiDict):
``<key>.<format>`` holds a value and, for mutable stores, ``<key>.<format>_etag``
holds the main store's ETag of that value.  Mutable stores validate each
cached read with one conditional request that transfers no body when the
value is unchanged (S3 ``If-None-Match`` answered 304, GCS ``ifGenerationNotMatch``,
Azure ``If-None-Match``); append-only stores trust the cache and ask nothing.
"""

from __future__ import annotations

import os
from typing import Any

from ..core.front import PersiDict
from ..protocol.flags import ValueType
from ..wrappers.cached import AppendOnlyDictCached, MutableDictCached
from ..wrappers.overlapping import OverlappingMultiDict
from .local import FileDirDict

__all__ = ["cached_by", "local_cache_folders", "with_local_cache"]


def local_cache_folders(
    main: PersiDict[Any], *, base_dir: str | os.PathLike[str], digest_len: int = 8
) -> OverlappingMultiDict:
    """The cache dicts for ``main`` under ``base_dir``: ``<format>`` (values) and ``<format>_etag``."""
    fmt = main.serialization_format
    formats: dict[str, dict[str, Any]] = {fmt: {}}
    if not main.append_only:
        formats[f"{fmt}_etag"] = {"base_class_for_values": str}
    shared = {
        "base_dir": os.fspath(base_dir),
        "append_only": main.append_only,
        "base_class_for_values": main.base_class_for_values,
        "digest_len": digest_len,
        "safe_json": getattr(main, "safe_json", False),
    }
    return OverlappingMultiDict(dict_type=FileDirDict, shared_subdicts_params=shared, **formats)


def with_local_cache(
    main: PersiDict[ValueType], *, base_dir: str | os.PathLike[str], digest_len: int = 8
) -> AppendOnlyDictCached[ValueType] | MutableDictCached[ValueType]:
    """``main`` behind a read-through cache in the local folder ``base_dir``.

    The cache never changes what ``main`` holds: writes go to main first, and
    conditional operations are exactly as atomic as main's.
    """
    return cached_by(main, local_cache_folders(main, base_dir=base_dir, digest_len=digest_len))


def cached_by(
    main: PersiDict[ValueType], folders: OverlappingMultiDict
) -> AppendOnlyDictCached[ValueType] | MutableDictCached[ValueType]:
    """``main`` behind the caches of ``local_cache_folders`` (append-only trusts them, mutable validates)."""
    data_cache = getattr(folders, main.serialization_format)
    if main.append_only:
        return AppendOnlyDictCached(main_dict=main, data_cache=data_cache)
    etag_cache = getattr(folders, f"{main.serialization_format}_etag")
    return MutableDictCached(main_dict=main, data_cache=data_cache, etag_cache=etag_cache)
