"""persidict: persistent dictionaries for distributed work.

A PersiDict looks and behaves like a ``dict``, but every value lives in its
own file or object: in a local folder (``FileDirDict``), in memory
(``LocalDict``), or on any fsspec filesystem (``FsspecDict``).  Per-key
ETags and compare-and-swap operations let many processes share one store.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from ._compat.modules import register_legacy_modules
from .backends.transfers import Transfers
from .core.front import NonEmptyPersiDictKey, PersiDict, PersiDictKey
from .core.fsspec_dict import FsspecDict
from .keys.chars import (  # the three extras are in the namespace, not in __all__
    SAFE_CHARS_SET,  # noqa: F401
    SAFE_STRING_MAX_LENGTH,  # noqa: F401
    contains_unsafe_chars,  # noqa: F401
    get_safe_chars,
    replace_unsafe_chars,
)
from .keys.tuples import NonEmptySafeStrTuple, SafeStrTuple
from .presets.cached import AppendOnlyDictCached, MutableDictCached
from .presets.empty import EmptyDict
from .presets.local import FileDirDict, LocalDict
from .presets.overlapping import OverlappingMultiDict
from .presets.s3 import BasicS3Dict, S3Dict, S3Dict_FileDirCached
from .presets.write_once import WriteOnceDict
from .protocol.exceptions import (
    BackendError,
    BulkOperationError,
    ConcurrencyConflictError,
    MissingKeyError,
    MissingRootError,
    MutationPolicyError,
    PersiDictError,
    ValueReplacedError,
)
from .protocol.flags import (
    ALWAYS_RETRIEVE,
    ANY_ETAG,
    DELETE_CURRENT,
    ETAG_HAS_CHANGED,
    ETAG_IS_THE_SAME,
    IF_ETAG_CHANGED,
    ITEM_NOT_AVAILABLE,
    KEEP_CURRENT,
    NEVER_RETRIEVE,
    VALUE_NOT_RETRIEVED,
    AlwaysRetrieveFlag,
    AnyETagFlag,
    ConditionalOperationResult,
    DeleteCurrentFlag,
    ETagConditionFlag,
    ETagHasChangedFlag,
    ETagIfExists,
    ETagIsTheSameFlag,
    ETagValue,
    IfETagChangedRetrieveFlag,
    ItemNotAvailableFlag,
    Joker,
    KeepCurrentFlag,
    NeverRetrieveFlag,
    OperationResult,
    RetrieveValueFlag,
    TransformingFunction,
    ValueNotRetrievedFlag,
    ValueType,
)
from .protocol.retry import RetryConfig

register_legacy_modules()

if TYPE_CHECKING:  # real types for checkers and the API reference; at run time they load on first use
    from .coordination.conditions import NonAtomicStoreError
    from .coordination.leases import LeaseLost
    from .coordination.queue import WorkQueue
    from .pipelines.copy import CopyError, CopyReport, copy_store
    from .pipelines.memoize import memoize


_PIPELINE_NAMES = {"memoize": "pipelines.memoize", "copy_store": "pipelines.copy", "CopyError": "pipelines.copy",
                   "CopyReport": "pipelines.copy", "WorkQueue": "coordination.queue",
                   "LeaseLost": "coordination.leases", "NonAtomicStoreError": "coordination.conditions"}
"""Public names imported on first use: the pipeline layer costs ~15 ms that a plain store does not need."""


def __getattr__(name: str) -> Any:
    """``__version__`` (importlib.metadata costs ~15 ms) and the pipeline layer, computed on first use."""
    if name == "__version__":
        value: Any = _version()
    elif name in _PIPELINE_NAMES:
        value = getattr(importlib.import_module(f".{_PIPELINE_NAMES[name]}", __name__), name)
    else:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    globals()[name] = value
    return value


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("persidict")
    except PackageNotFoundError:  # a source tree that was never installed
        return "unknown"


__all__ = [
    "ALWAYS_RETRIEVE",
    "ANY_ETAG",
    "AlwaysRetrieveFlag",
    "AnyETagFlag",
    "AppendOnlyDictCached",
    "BackendError",
    "BasicS3Dict",
    "BulkOperationError",
    "ConcurrencyConflictError",
    "ConditionalOperationResult",
    "CopyError",
    "CopyReport",
    "DELETE_CURRENT",
    "DeleteCurrentFlag",
    "ETAG_HAS_CHANGED",
    "ETAG_IS_THE_SAME",
    "ETagConditionFlag",
    "ETagHasChangedFlag",
    "ETagIfExists",
    "ETagIsTheSameFlag",
    "ETagValue",
    "EmptyDict",
    "FileDirDict",
    "FsspecDict",
    "IF_ETAG_CHANGED",
    "ITEM_NOT_AVAILABLE",
    "IfETagChangedRetrieveFlag",
    "ItemNotAvailableFlag",
    "Joker",
    "KEEP_CURRENT",
    "KeepCurrentFlag",
    "LeaseLost",
    "LocalDict",
    "MissingKeyError",
    "MissingRootError",
    "MutableDictCached",
    "MutationPolicyError",
    "NEVER_RETRIEVE",
    "NeverRetrieveFlag",
    "NonAtomicStoreError",
    "NonEmptyPersiDictKey",
    "NonEmptySafeStrTuple",
    "OperationResult",
    "OverlappingMultiDict",
    "PersiDict",
    "PersiDictError",
    "PersiDictKey",
    "RetrieveValueFlag",
    "RetryConfig",
    "S3Dict",
    "S3Dict_FileDirCached",
    "SafeStrTuple",
    "Transfers",
    "TransformingFunction",
    "VALUE_NOT_RETRIEVED",
    "ValueNotRetrievedFlag",
    "ValueReplacedError",
    "ValueType",
    "WorkQueue",
    "WriteOnceDict",
    "__version__",
    "copy_store",
    "get_safe_chars",
    "memoize",
    "replace_unsafe_chars",
]
