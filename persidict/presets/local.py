"""Preconfigured FsspecDicts: a local folder and a private in-memory store."""

from __future__ import annotations

import os
from typing import Any

from ..backends import LocalBackend, MemoryBackend
from ..core.front import PersiDict
from ..core.fsspec_dict import FsspecDict
from ..protocol.flags import ValueType

__all__ = ["FileDirDict", "LocalDict", "add_long_path_prefix", "drop_long_path_prefix"]

_LONG_PATH_PREFIX = "\\\\?\\"  # \\?\ lifts Windows' 260-character limit on paths
_UNC_PREFIX = "\\\\"


def add_long_path_prefix(path: str) -> str:
    """On Windows, an absolute ``path`` with the ``\\\\?\\`` prefix; elsewhere ``path`` unchanged."""
    if os.name != "nt" or path.startswith(_LONG_PATH_PREFIX) or not os.path.isabs(path):
        return path
    if path.startswith(_UNC_PREFIX):
        return _LONG_PATH_PREFIX + "UNC\\" + path[len(_UNC_PREFIX):]
    return _LONG_PATH_PREFIX + path


def drop_long_path_prefix(path: str) -> str:
    """``path`` without the prefix ``add_long_path_prefix`` adds (unchanged if it has none)."""
    if path.startswith(_LONG_PATH_PREFIX + "UNC\\"):
        return _UNC_PREFIX + path[len(_LONG_PATH_PREFIX) + 4:]
    if path.startswith(_LONG_PATH_PREFIX):
        return path[len(_LONG_PATH_PREFIX):]
    return path


class FileDirDict(FsspecDict[ValueType]):
    """One file per value in a local folder tree.

    Key components carry a short digest suffix (``digest_len``, default 4) so
    that keys differing only in case stay distinct on case-insensitive disks.
    With ``fsync=True`` (the default) every write is flushed to disk, file and
    folder, before it is reported done; ``fsync=False`` trades durability
    across a power loss for speed, never atomicity.
    """

    def __init__(
        self,
        *,
        base_dir: str | os.PathLike[str] = "__file_dir_dict__",
        serialization_format: str = "pkl",
        append_only: bool = False,
        digest_len: int = 4,
        base_class_for_values: type | None = None,
        fsync: bool = True,
        safe_json: bool = False,
    ) -> None:
        super().__init__(
            LocalBackend(os.path.abspath(os.fspath(base_dir)), fsync=bool(fsync)),
            serialization_format=serialization_format,
            append_only=append_only,
            base_class_for_values=base_class_for_values,
            digest_len=digest_len,
            safe_json=safe_json,
        )

    @property
    def base_dir(self) -> str:
        """The absolute path of the store's root folder."""
        return self._backend.root

    @property
    def fsync(self) -> bool:
        """Whether writes are flushed to disk before they return."""
        return bool(self._backend.fsync)  # type: ignore[attr-defined]

    def get_params(self) -> dict[str, Any]:
        params = PersiDict.get_params(self)
        params.update(base_dir=self.base_dir, digest_len=self.digest_len, fsync=self.fsync, safe_json=self.safe_json)
        return dict(sorted(params.items()))


class LocalDict(FsspecDict[ValueType]):
    """An in-memory store on a private fsspec memory filesystem.

    Thread-safe, O(1) per item operation.  Values are serialized like in
    every other store, so a value read back is a new object.  Pass
    ``backend=other.backend`` to share one store on purpose.
    ``prune_interval`` is accepted and reported for compatibility only.
    """

    def __init__(
        self,
        *,
        backend: MemoryBackend | None = None,
        serialization_format: str = "pkl",
        append_only: bool = False,
        base_class_for_values: type | None = None,
        prune_interval: Any = 64,
        safe_json: bool = False,
    ) -> None:
        self.prune_interval = _normalize_prune_interval(prune_interval)
        if backend is not None and not isinstance(backend, MemoryBackend):
            raise TypeError(f"backend must be a MemoryBackend (another LocalDict's .backend), got {backend!r}")
        super().__init__(
            MemoryBackend() if backend is None else backend,
            serialization_format=serialization_format,
            append_only=append_only,
            base_class_for_values=base_class_for_values,
            safe_json=safe_json,
        )

    @property
    def backend(self) -> MemoryBackend:
        """The memory store this dict lives on; pass it to another LocalDict to share it."""
        return self._backend  # type: ignore[return-value]

    def get_params(self) -> dict[str, Any]:
        params = PersiDict.get_params(self)
        params.update(backend=self.backend, prune_interval=self.prune_interval, safe_json=self.safe_json)
        return dict(sorted(params.items()))


def _normalize_prune_interval(value: Any) -> int | None:
    """The reference's rule (None stays None, unparsable gives 64, <= 0 disables).

    Accepted so code written for the reference keeps working: fsspec's memory
    store keeps no empty nodes, so LocalDict has nothing to prune.
    """
    if value is None:
        return None
    try:
        interval = int(value)
    except (TypeError, ValueError):
        interval = 64
    return interval if interval > 0 else None
